//! Callbacks (SB3's `BaseCallback`): hooks an algorithm calls during `learn`.
//! `on_step` returning `Ok(false)` stops training.
//!
//! The concrete callbacks follow SB3's `common/callbacks.py`:
//!
//! - [`EvalCallback`]: evaluates the policy on its own environment every `eval_freq` calls,
//!   keeps the best mean reward and the learning curve, saves the best model, and runs
//!   [`EvalChild`] callbacks ([`StopTrainingOnRewardThreshold`],
//!   [`StopTrainingOnNoModelImprovement`]) after an evaluation or on a new best;
//! - [`CheckpointCallback`]: `Algorithm::save_checkpoint` every `save_freq` calls;
//! - [`StopTrainingOnRewardThreshold`] (also standalone, on the rolling mean return of the
//!   training episodes), [`StopTrainingOnMaxEpisodes`];
//! - [`ProgressBarCallback`] (an `indicatif` bar, drawn only on a terminal);
//! - [`CallbackList`], and the forwarding impls for `&mut C`, `Box<C>` and `()` (no-op), so a
//!   caller can keep ownership of a callback and read its state after training.
//!
//! Like SB3, frequencies count calls of `on_step` (vector steps): with `n_envs` environments
//! an `eval_freq` of `k` evaluates every `k * n_envs` environment steps.

use crate::error::Result;
use crate::logger::Logger;
use rl_env::Info;
use rl_policy::Policy;
use std::path::Path;

mod checkpoint;
mod eval;
mod list;
mod progress;
mod stop;

pub use checkpoint::CheckpointCallback;
pub use eval::{EvalCallback, EvalChild, EvalRecord, EvalSummary};
pub use list::CallbackList;
pub use progress::ProgressBarCallback;
pub use stop::{
    StopTrainingOnMaxEpisodes, StopTrainingOnNoModelImprovement, StopTrainingOnRewardThreshold,
};

/// What every algorithm exposes to callbacks.
pub trait Algorithm {
    /// The policy being trained.
    fn policy(&self) -> &dyn Policy;
    /// Environment steps taken so far, summed over the sub-environments.
    fn num_timesteps(&self) -> u64;
    /// Writes a checkpoint from which training resumes bit-for-bit (atomically).
    fn save_checkpoint(&self, path: &Path) -> Result<()>;
    /// The observation normalization of the training environments, when they are a
    /// `VecNormalize` ([`rl_env::VecEnv::normalization`]): evaluations act through it with
    /// frozen statistics, as SB3's `EvalCallback` does after `sync_envs_normalization`.
    fn normalization(&self) -> Option<rl_env::VecNormalizeSnapshot> {
        None
    }
}

/// The state a callback sees (SB3's `self.locals` / `self.num_timesteps`).
pub struct Locals<'a> {
    /// The algorithm (policy, counters, checkpointing).
    pub algo: &'a dyn Algorithm,
    /// Environment steps so far (all sub-environments).
    pub num_timesteps: u64,
    /// The `total_timesteps` passed to `learn`.
    pub total_timesteps: u64,
    /// Completed iterations (rollout + update).
    pub iteration: u64,
    /// Rewards of the last vector step (`[n_envs]`; empty outside steps).
    pub rewards: &'a [f64],
    /// `terminated || truncated` of the last vector step.
    pub dones: &'a [bool],
    /// Infos of the last vector step (finished episodes carry their statistics).
    pub infos: &'a [Info],
}

/// A training hook. Every method has a no-op default except `on_step`.
pub trait Callback {
    /// Before the first rollout.
    fn on_training_start(&mut self, _locals: &Locals<'_>, _logger: &mut Logger) -> Result<()> {
        Ok(())
    }
    /// After every vector-env step (on-policy algorithms: as SB3, after the step and the
    /// timestep counter, before the step is recorded in the episode statistics and the rollout
    /// buffer); `Ok(false)` stops training.
    fn on_step(&mut self, locals: &Locals<'_>, logger: &mut Logger) -> Result<bool>;
    /// After each rollout is collected, before the update.
    fn on_rollout_end(&mut self, _locals: &Locals<'_>, _logger: &mut Logger) -> Result<()> {
        Ok(())
    }
    /// When `learn` returns.
    fn on_training_end(&mut self, _locals: &Locals<'_>, _logger: &mut Logger) -> Result<()> {
        Ok(())
    }
}

impl<C: Callback + ?Sized> Callback for &mut C {
    fn on_training_start(&mut self, locals: &Locals<'_>, logger: &mut Logger) -> Result<()> {
        (**self).on_training_start(locals, logger)
    }
    fn on_step(&mut self, locals: &Locals<'_>, logger: &mut Logger) -> Result<bool> {
        (**self).on_step(locals, logger)
    }
    fn on_rollout_end(&mut self, locals: &Locals<'_>, logger: &mut Logger) -> Result<()> {
        (**self).on_rollout_end(locals, logger)
    }
    fn on_training_end(&mut self, locals: &Locals<'_>, logger: &mut Logger) -> Result<()> {
        (**self).on_training_end(locals, logger)
    }
}

impl<C: Callback + ?Sized> Callback for Box<C> {
    fn on_training_start(&mut self, locals: &Locals<'_>, logger: &mut Logger) -> Result<()> {
        (**self).on_training_start(locals, logger)
    }
    fn on_step(&mut self, locals: &Locals<'_>, logger: &mut Logger) -> Result<bool> {
        (**self).on_step(locals, logger)
    }
    fn on_rollout_end(&mut self, locals: &Locals<'_>, logger: &mut Logger) -> Result<()> {
        (**self).on_rollout_end(locals, logger)
    }
    fn on_training_end(&mut self, locals: &Locals<'_>, logger: &mut Logger) -> Result<()> {
        (**self).on_training_end(locals, logger)
    }
}

/// The callback that does nothing (SB3's `callback=None`): `algo.learn(..., &mut ())`.
impl Callback for () {
    fn on_step(&mut self, _locals: &Locals<'_>, _logger: &mut Logger) -> Result<bool> {
        Ok(true)
    }
}
