//! Vectorized stepping: one [`VecEnv`] trait, an in-thread engine ([`SyncVecEnv`]) and a
//! multi-threaded one ([`ThreadVecEnv`]) that give bit-identical results.
//!
//! Observations of all sub-environments live in one contiguous `[n_envs, obs_dim]` `f32`
//! buffer ([`VecBuffers`]) that is rewritten in place on every step.

use crate::env::Info;
use crate::error::{EnvError, Result};
use crate::space::Space;

mod block;
mod normalize;
mod sync;
mod thread;

pub(crate) use block::panic_message;
pub use normalize::{RunningStats, VecNormalize, VecNormalizeConfig, VecNormalizeSnapshot};
pub use sync::SyncVecEnv;
pub use thread::ThreadVecEnv;

/// When a finished sub-environment is reset (Gymnasium 1.x's `AutoresetMode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum AutoresetMode {
    /// The step that ends an episode already returns the next episode's first observation; the
    /// final observation is kept in [`VecBuffers::final_observation`] (SB3's `DummyVecEnv`,
    /// `terminal_observation`). The default: A2C needs the final observation to bootstrap
    /// truncated episodes.
    #[default]
    SameStep,
    /// The step that ends an episode returns its final observation; the next step ignores that
    /// sub-environment's action, resets it, and returns reward 0 with both flags false
    /// (Gymnasium 1.x's `SyncVectorEnv` default).
    NextStep,
}

/// Actions for all sub-environments at once.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum VecAction<'a> {
    /// One discrete action per sub-environment.
    Discrete(&'a [i64]),
    /// Continuous actions, flat `[n_envs, act_dim]` in row-major order.
    Continuous(&'a [f32]),
}

impl<'a> VecAction<'a> {
    /// "discrete" or "continuous", for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            VecAction::Discrete(_) => "discrete",
            VecAction::Continuous(_) => "continuous",
        }
    }

    /// The action of sub-environment `i` given the per-env action width `act_dim`.
    #[inline]
    pub fn get(&self, i: usize, act_dim: usize) -> crate::Action<'a> {
        match *self {
            VecAction::Discrete(a) => crate::Action::Discrete(a[i]),
            VecAction::Continuous(a) => {
                crate::Action::Continuous(&a[i * act_dim..(i + 1) * act_dim])
            }
        }
    }

    /// Checks the batch length: `n_envs` discrete actions or `n_envs * act_dim` floats.
    pub fn check_len(&self, n_envs: usize, act_dim: usize) -> Result<()> {
        let (expected, actual) = match self {
            VecAction::Discrete(a) => (n_envs, a.len()),
            VecAction::Continuous(a) => (n_envs * act_dim, a.len()),
        };
        if expected == actual {
            Ok(())
        } else {
            Err(EnvError::BatchLength {
                what: "actions",
                expected,
                actual,
            })
        }
    }
}

/// The results of the last `reset`/`step` of a vector of environments, in flat buffers that are
/// reused from step to step.
#[derive(Clone, Debug, Default)]
pub struct VecBuffers {
    pub(crate) n_envs: usize,
    pub(crate) obs_dim: usize,
    pub(crate) obs: Vec<f32>,
    pub(crate) rewards: Vec<f64>,
    pub(crate) terminated: Vec<bool>,
    pub(crate) truncated: Vec<bool>,
    pub(crate) final_obs: Vec<f32>,
    pub(crate) has_final: Vec<bool>,
    pub(crate) infos: Vec<Info>,
}

impl VecBuffers {
    /// Zeroed buffers for `n_envs` environments with `obs_dim`-long observations.
    pub fn new(n_envs: usize, obs_dim: usize) -> Self {
        VecBuffers {
            n_envs,
            obs_dim,
            obs: vec![0.0; n_envs * obs_dim],
            rewards: vec![0.0; n_envs],
            terminated: vec![false; n_envs],
            truncated: vec![false; n_envs],
            final_obs: vec![0.0; n_envs * obs_dim],
            has_final: vec![false; n_envs],
            infos: vec![Info::default(); n_envs],
        }
    }

    /// Number of sub-environments.
    pub fn num_envs(&self) -> usize {
        self.n_envs
    }

    /// Flat observation length of one sub-environment.
    pub fn obs_dim(&self) -> usize {
        self.obs_dim
    }

    /// Observations, `[n_envs, obs_dim]` row-major.
    pub fn observations(&self) -> &[f32] {
        &self.obs
    }

    /// Observation of sub-environment `i`.
    pub fn observation(&self, i: usize) -> &[f32] {
        &self.obs[i * self.obs_dim..(i + 1) * self.obs_dim]
    }

    /// Rewards of the last step, `[n_envs]`.
    pub fn rewards(&self) -> &[f64] {
        &self.rewards
    }

    /// `terminated` flags of the last step, `[n_envs]`.
    pub fn terminated(&self) -> &[bool] {
        &self.terminated
    }

    /// `truncated` flags of the last step, `[n_envs]`. In same-step mode SB3's
    /// `TimeLimit.truncated` is `truncated[i] && !terminated[i]`.
    pub fn truncated(&self) -> &[bool] {
        &self.truncated
    }

    /// `terminated[i] || truncated[i]`.
    pub fn done(&self, i: usize) -> bool {
        self.terminated[i] || self.truncated[i]
    }

    /// In same-step mode, the last observation of the episode sub-environment `i` finished on
    /// the last step (SB3's `terminal_observation`); `None` when it did not finish one.
    pub fn final_observation(&self, i: usize) -> Option<&[f32]> {
        self.has_final[i].then(|| &self.final_obs[i * self.obs_dim..(i + 1) * self.obs_dim])
    }

    /// The info of every sub-environment for the last step (the finished episode's info, with
    /// its statistics, when it ended in same-step mode).
    pub fn infos(&self) -> &[Info] {
        &self.infos
    }
}

/// A batch of environments stepped together (SB3's `VecEnv`, Gymnasium's `VectorEnv`).
pub trait VecEnv: Send {
    /// Observation space of one sub-environment.
    fn observation_space(&self) -> &Space;

    /// Action space of one sub-environment.
    fn action_space(&self) -> &Space;

    /// The autoreset mode.
    fn autoreset_mode(&self) -> AutoresetMode;

    /// Resets every sub-environment; with `Some(seed)` sub-environment `i` is seeded with
    /// `seed + i`. The first observations land in [`VecBuffers::observations`]. A
    /// sub-environment that fails, panics or returns a non-finite observation fails the reset
    /// as in [`VecEnv::step`].
    fn reset(&mut self, seed: Option<u64>) -> Result<()>;

    /// Resets every sub-environment with its own seed (`None` continues its stream). Errors when
    /// `seeds.len()` is not the number of environments.
    fn reset_with_seeds(&mut self, seeds: &[Option<u64>]) -> Result<()>;

    /// Steps every sub-environment, resetting finished ones per the autoreset mode.
    ///
    /// A batch of the wrong length or kind, or with an action outside the action space
    /// ([`EnvError::SubEnv`] naming the first such sub-environment), is rejected before anything
    /// is stepped. A sub-environment that fails itself — returns an error
    /// ([`EnvError::SubEnv`]), panics ([`EnvError::Panicked`]) or hands back a NaN or infinite
    /// observation or reward ([`EnvError::NonFinite`]) — leaves the episodes half-stepped: the
    /// vector then needs a `reset` ([`EnvError::NeedsReset`]). Both engines behave alike; see
    /// [`SyncVecEnv`]'s "Failures".
    fn step(&mut self, actions: VecAction<'_>) -> Result<()>;

    /// The results of the last reset or step.
    fn buffers(&self) -> &VecBuffers;

    /// Number of sub-environments.
    fn num_envs(&self) -> usize {
        self.buffers().num_envs()
    }

    /// Observations, `[n_envs, obs_dim]` row-major.
    fn observations(&self) -> &[f32] {
        self.buffers().observations()
    }

    /// Rewards of the last step.
    fn rewards(&self) -> &[f64] {
        self.buffers().rewards()
    }

    /// `terminated` flags of the last step.
    fn terminated(&self) -> &[bool] {
        self.buffers().terminated()
    }

    /// `truncated` flags of the last step.
    fn truncated(&self) -> &[bool] {
        self.buffers().truncated()
    }

    /// Rewards of the last step before any scaling a wrapper of the vector applies (what
    /// SB3's `Monitor` records under a `VecNormalize`): [`VecNormalize`] forwards its inner
    /// vector's, every other vector its own [`VecEnv::rewards`]. Learners sum these into
    /// their episode statistics.
    fn unscaled_rewards(&self) -> &[f64] {
        self.rewards()
    }

    /// The observation normalization this vector applies, if it is (or forwards to) a
    /// [`VecNormalize`]: its current statistics and settings. Evaluations and saved models use
    /// it (SB3's `sync_envs_normalization`, rl-zoo's `vecnormalize.pkl`); `None` by default.
    fn normalization(&self) -> Option<VecNormalizeSnapshot> {
        None
    }
}

impl<V: VecEnv + ?Sized> VecEnv for Box<V> {
    fn observation_space(&self) -> &Space {
        (**self).observation_space()
    }
    fn action_space(&self) -> &Space {
        (**self).action_space()
    }
    fn autoreset_mode(&self) -> AutoresetMode {
        (**self).autoreset_mode()
    }
    fn reset(&mut self, seed: Option<u64>) -> Result<()> {
        (**self).reset(seed)
    }
    fn reset_with_seeds(&mut self, seeds: &[Option<u64>]) -> Result<()> {
        (**self).reset_with_seeds(seeds)
    }
    fn step(&mut self, actions: VecAction<'_>) -> Result<()> {
        (**self).step(actions)
    }
    fn buffers(&self) -> &VecBuffers {
        (**self).buffers()
    }
    fn unscaled_rewards(&self) -> &[f64] {
        (**self).unscaled_rewards()
    }
    fn normalization(&self) -> Option<VecNormalizeSnapshot> {
        (**self).normalization()
    }
}
