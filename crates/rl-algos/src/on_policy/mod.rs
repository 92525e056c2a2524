//! The on-policy core (SB3's `OnPolicyAlgorithm`): what A2C and PPO share, written once.
//!
//! [`OnPolicyAlgorithm`] owns the policy, the environments and the run: rollout collection
//! into a [`RolloutBuffer`] (observations → policy → sampling from the seeded generator →
//! action mapping and clipping → environment step → callbacks → timeout bootstrap → buffer),
//! returns and advantages by GAE, the counters, the episode-statistics window, logger dumps,
//! callbacks, `learn`, and checkpoints. What differs between algorithms is SB3's `train()`: an
//! [`OnPolicyTrainer`] (its configuration and optimizer) turns a full buffer into gradient
//! steps. [`crate::A2c`] and [`crate::Ppo`] are this struct with their trainer.
//!
//! One `learn` iteration, in SB3's order (`collect_rollouts`, then `train`):
//! 1. `n_steps` vector steps (with gSDE, the policy's exploration matrices are re-drawn from
//!    the seeded generator before the first step and, when `sde_sample_freq > 0`, before every
//!    `sde_sample_freq`-th step, as SB3's `reset_noise` calls): act on the current observations without gradients (values and
//!    log-probabilities kept), map the policy's actions to the environment's (index + `start`;
//!    Box actions clipped, the unclipped ones stored), step, add `n_envs` to the timestep
//!    counter, call every callback's `on_step` (a `false` stops training before the step is
//!    stored), record finished episodes, bootstrap truncated episodes from the value of their
//!    final observation (`r += γ·V(final_obs)`), store the transition;
//! 2. the values of the last observations, then GAE ([`crate::buffer::compute_gae`]);
//! 3. callbacks' `on_rollout_end`, a log dump every `log_interval` iterations;
//! 4. the trainer's `train` with `progress_remaining = 1 - num_timesteps / total_timesteps`.

mod checkpoint;
mod rollout;

use crate::buffer::RolloutBuffer;
use crate::callbacks::{Algorithm, Callback, Locals};
use crate::error::{AlgoError, Result};
use crate::logger::Logger;
use crate::optim::{all_finite, Optimizer};
use crate::run::{EpisodeWindow, RunState};
use candle_core::{DType, Device, Tensor, Var};
use rand::RngCore;
use rl_env::{AutoresetMode, Space, VecEnv};
use rl_policy::{ActionDist, ActorCritic, MlpEngine, Policy};
use rl_tensor_bridge::{ActionBuffer, ObsBatcher};
use std::path::Path;
use std::time::Instant;

use crate::envlog::ActionLog;

/// The rollout half of an on-policy configuration (SB3's `OnPolicyAlgorithm` arguments).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RolloutSettings {
    /// Vector steps per rollout.
    pub n_steps: usize,
    /// Discount factor.
    pub gamma: f64,
    /// GAE lambda.
    pub gae_lambda: f64,
    /// Seed of the environments (env `i` gets `seed + i`) and of the generator; `None` draws
    /// one from the OS.
    pub seed: Option<u64>,
    /// Dump the logger every this many iterations (0: never).
    pub log_interval: u64,
    /// Finished episodes averaged into `rollout/ep_rew_mean` and `ep_len_mean`.
    pub stats_window_size: usize,
    /// Print the logger's tables on dump.
    pub verbose: bool,
    /// gSDE exploration (SB3's `use_sde`): the policy's exploration matrices are re-drawn at
    /// the start of every rollout (the policy must be built with gSDE, the actions must be a
    /// `Box`).
    pub use_sde: bool,
    /// With gSDE, also re-draw the matrices before every rollout step whose index is a multiple
    /// of this; `<= 0` only at the rollout start (SB3's `sde_sample_freq`, default -1).
    pub sde_sample_freq: i64,
}

/// Most values one rollout buffer may hold (observations, actions and six per-sample arrays
/// together): 2^31 `f32`s, 8 GiB. Larger products of `n_steps`, `n_envs` and the space sizes
/// are configuration mistakes (or hostile files), refused before anything is allocated.
pub const MAX_ROLLOUT_VALUES: usize = 1 << 31;

impl RolloutSettings {
    /// Checks the values that do not depend on the environments, naming the first bad one.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(AlgoError::InvalidArgument(m));
        if self.n_steps == 0 {
            return bad("n_steps must be at least 1".into());
        }
        for (name, v) in [("gamma", self.gamma), ("gae_lambda", self.gae_lambda)] {
            if !(0.0..=1.0).contains(&v) {
                return bad(format!("{name} must lie in [0, 1], got {v}"));
            }
        }
        if self.stats_window_size == 0 {
            return bad("stats_window_size must be at least 1".into());
        }
        Ok(())
    }

    /// The number of values a rollout buffer of these settings holds for `n_envs` environments
    /// with observations of `obs_dim` and actions of `act_dim` values, or an error naming the
    /// sizes when it overflows or exceeds [`MAX_ROLLOUT_VALUES`].
    pub fn buffer_values(&self, n_envs: usize, obs_dim: usize, act_dim: usize) -> Result<usize> {
        let total = self
            .n_steps
            .checked_mul(n_envs)
            .and_then(|rows| {
                let per_row = obs_dim.checked_add(act_dim)?.checked_add(6)?;
                rows.checked_mul(per_row)
            })
            .filter(|&v| v <= MAX_ROLLOUT_VALUES);
        total.ok_or_else(|| {
            AlgoError::InvalidArgument(format!(
                "a rollout of n_steps {} x n_envs {n_envs} with observations of {obs_dim} and \
                 actions of {act_dim} values needs more than {MAX_ROLLOUT_VALUES} values",
                self.n_steps
            ))
        })
    }
}

/// What a trainer sees of the run when it trains on a full rollout buffer.
pub struct TrainContext<'a, P> {
    /// The policy (its variables are the optimizer's).
    pub policy: &'a P,
    /// The rollout, with advantages and returns computed.
    pub buffer: &'a RolloutBuffer,
    /// The action space (how stored actions become tensors, see
    /// [`crate::buffer::actions_to_tensor`]).
    pub action_space: &'a Space,
    /// The run's generator (minibatch shuffles).
    pub rng: &'a mut dyn RngCore,
    /// SB3's `1 - num_timesteps / total_timesteps`, for the schedules.
    pub progress_remaining: f64,
    /// The iteration being trained (1-based), named by divergence errors.
    pub iteration: u64,
    /// Gradient-step count (SB3's `_n_updates`), advanced by the trainer.
    pub n_updates: &'a mut u64,
}

/// The algorithm-specific half of an on-policy algorithm: its configuration, its optimizer and
/// SB3's `train()`. [`crate::a2c::A2cTrainer`] and [`crate::ppo::PpoTrainer`] implement it.
pub trait OnPolicyTrainer: Sized {
    /// The algorithm's configuration (SB3's constructor arguments).
    type Config: Clone + std::fmt::Debug;
    /// The algorithm's name, for messages and checkpoints (e.g. `"A2C"`).
    const NAME: &'static str;

    /// A trainer for `config` whose optimizer owns `vars` (the policy's, sorted by name).
    fn new(config: Self::Config, vars: Vec<(String, Var)>) -> Result<Self>;

    /// The configuration.
    fn config(&self) -> &Self::Config;

    /// The rollout half of the configuration.
    fn settings(&self) -> RolloutSettings;

    /// The optimizer.
    fn optimizer(&self) -> &dyn Optimizer;

    /// One `train()` on the full buffer: updates the policy through the optimizer, advances
    /// `n_updates`, and records SB3's `train/*` values in `logger`.
    fn train<P: ActorCritic>(
        &mut self,
        ctx: TrainContext<'_, P>,
        logger: &mut Logger,
    ) -> Result<()>;

    /// The configuration, optimizer state and anything else the trainer needs to continue bit
    /// for bit, as bytes for a checkpoint.
    fn save_state(&self) -> Result<Vec<u8>>;

    /// A trainer from bytes of [`OnPolicyTrainer::save_state`] (read from `origin`, named in
    /// errors) whose optimizer owns `vars`.
    fn load_state(bytes: &[u8], origin: &Path, vars: Vec<(String, Var)>) -> Result<Self>;
}

/// Per-step host buffers, allocated once.
#[derive(Clone, Debug)]
struct Scratch {
    obs: Vec<f32>,
    policy_actions: Vec<f32>,
    rewards: Vec<f32>,
    values: Vec<f32>,
    log_probs: Vec<f32>,
    dones: Vec<bool>,
}

/// An on-policy algorithm: the shared rollout machinery and a trainer `T`; see the
/// [module docs](self).
pub struct OnPolicyAlgorithm<P: ActorCritic, V: VecEnv, T: OnPolicyTrainer> {
    policy: P,
    env: V,
    trainer: T,
    settings: RolloutSettings,
    run: RunState,
    iterations: u64,
    n_updates: u64,
    /// Whether the environments were reset with the seed (at the first `learn`).
    started: bool,
    /// Whether the environments took a step that is not recorded yet (callbacks run between
    /// the step and its storage, as in SB3).
    pending_step: bool,
    buffer: RolloutBuffer,
    logger: Logger,
    last_episode_starts: Vec<bool>,
    ep_returns: Vec<f64>,
    ep_lengths: Vec<u64>,
    episodes: EpisodeWindow,
    action_log: ActionLog,
    obs_batcher: ObsBatcher,
    actions: ActionBuffer,
    scratch: Scratch,
    /// The fast MLP path for acting and values, when the policy is a standard MLP.
    fast: Option<MlpEngine>,
}

impl<P: ActorCritic, V: VecEnv, T: OnPolicyTrainer> OnPolicyAlgorithm<P, V, T> {
    /// A learner for `policy` on `env` with the trainer of `config`. `env` must use same-step
    /// autoreset (truncated episodes bootstrap from their final observation); it is reset with
    /// the seed at the first [`OnPolicyAlgorithm::learn`].
    pub fn with_config(policy: P, env: V, config: T::Config) -> Result<Self> {
        let trainer = T::new(config, policy.trainable_vars())?;
        let seed = trainer.settings().seed;
        Self::from_parts(policy, env, trainer, RunState::new(seed))
    }

    fn from_parts(policy: P, env: V, trainer: T, run: RunState) -> Result<Self> {
        let settings = trainer.settings();
        settings.validate()?;
        if env.autoreset_mode() != AutoresetMode::SameStep {
            return Err(AlgoError::InvalidArgument(format!(
                "{} needs a VecEnv with AutoresetMode::SameStep (it bootstraps truncated \
                 episodes from their final observation)",
                T::NAME
            )));
        }
        let n_envs = env.num_envs();
        let obs_space = env.observation_space();
        let obs_dim = obs_space.flat_dim();
        let act_dim = env.action_space().flat_dim();
        if n_envs == 0 || obs_dim == 0 || act_dim == 0 {
            return Err(AlgoError::InvalidArgument(format!(
                "{} needs at least one environment with non-empty spaces: {n_envs} \
                 environments, observations of {obs_dim} and actions of {act_dim} values",
                T::NAME
            )));
        }
        settings.buffer_values(n_envs, obs_dim, act_dim)?;
        check_sde(&settings, &policy, env.action_space(), T::NAME)?;
        let obs_batcher = ObsBatcher::new(obs_space, n_envs, DType::F32, policy.device().clone())?;
        let actions = ActionBuffer::new(env.action_space(), n_envs);
        let action_log = ActionLog::for_space(env.action_space());
        // A standard MLP acts through the engine (gSDE policies have no layout).
        let fast = policy
            .mlp_layout()
            .filter(|_| !settings.use_sde)
            .and_then(|l| MlpEngine::new(l, n_envs).ok())
            .filter(|e| e.obs_dim() == obs_dim && e.act_dim() == act_dim);
        let scratch = Scratch {
            obs: vec![0.0; n_envs * obs_dim],
            policy_actions: vec![0.0; n_envs * act_dim],
            rewards: vec![0.0; n_envs],
            values: vec![0.0; n_envs],
            log_probs: vec![0.0; n_envs],
            dones: vec![false; n_envs],
        };
        Ok(OnPolicyAlgorithm {
            buffer: RolloutBuffer::new(settings.n_steps, n_envs, obs_dim, act_dim)?,
            logger: Logger::new(settings.verbose),
            episodes: EpisodeWindow::new(settings.stats_window_size),
            policy,
            env,
            trainer,
            settings,
            run,
            iterations: 0,
            n_updates: 0,
            started: false,
            pending_step: false,
            last_episode_starts: vec![true; n_envs],
            ep_returns: vec![0.0; n_envs],
            ep_lengths: vec![0; n_envs],
            action_log,
            obs_batcher,
            actions,
            scratch,
            fast,
        })
    }

    /// Whether the rollouts act through the fast MLP path ([`rl_policy::MlpEngine`]).
    pub fn uses_fast_path(&self) -> bool {
        self.fast.is_some()
    }

    /// The configuration.
    pub fn config(&self) -> &T::Config {
        self.trainer.config()
    }

    /// The trainer (configuration, optimizer, last update's statistics).
    pub fn trainer(&self) -> &T {
        &self.trainer
    }

    /// The effective seed (the configured one, or the one drawn when none was given).
    pub fn seed(&self) -> u64 {
        self.run.seed
    }

    /// The policy.
    pub fn policy_ref(&self) -> &P {
        &self.policy
    }

    /// The environments.
    pub fn env(&self) -> &V {
        &self.env
    }

    /// The optimizer.
    pub fn optimizer(&self) -> &dyn Optimizer {
        self.trainer.optimizer()
    }

    /// The rollout buffer (the last rollout after `learn`, or the partial one a callback
    /// stopped).
    pub fn rollout_buffer(&self) -> &RolloutBuffer {
        &self.buffer
    }

    /// The logger (values recorded since the last dump).
    pub fn logger(&self) -> &Logger {
        &self.logger
    }

    /// The logger, mutably (to configure outputs).
    pub fn logger_mut(&mut self) -> &mut Logger {
        &mut self.logger
    }

    /// Environment steps taken so far, summed over the sub-environments.
    pub fn num_timesteps(&self) -> u64 {
        self.run.num_timesteps
    }

    /// Completed iterations (rollout + update).
    pub fn iterations(&self) -> u64 {
        self.iterations
    }

    /// Updates counted as SB3 counts `_n_updates` (A2C: one per iteration; PPO: one per epoch).
    pub fn n_updates(&self) -> u64 {
        self.n_updates
    }

    /// Returns and lengths of the last `stats_window_size` finished episodes.
    pub fn episode_info(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        self.episodes.episodes().iter().copied()
    }

    /// Gives back the policy and the environments.
    pub fn into_parts(self) -> (P, V) {
        (self.policy, self.env)
    }

    /// The device of the policy.
    pub fn device(&self) -> &Device {
        self.policy.device()
    }

    /// Trains until `num_timesteps` reaches `total_timesteps` (counted over the model's life,
    /// so a model restored from a checkpoint continues its run to the same total and a fresh
    /// model behaves as SB3's `learn`), calling `callbacks` as SB3 does. Any callback's
    /// `on_step` returning `false` stops training after that step, before it is stored; the
    /// next `learn` continues the partly filled rollout.
    pub fn learn(
        &mut self,
        total_timesteps: u64,
        callbacks: &mut [&mut dyn Callback],
    ) -> Result<()> {
        // Callbacks get `&self` and the logger at once: the logger lives outside `self` here.
        let mut logger = std::mem::replace(&mut self.logger, Logger::new(false));
        let result = self.learn_with(total_timesteps, callbacks, &mut logger);
        self.logger = logger;
        result
    }

    fn learn_with(
        &mut self,
        total_timesteps: u64,
        callbacks: &mut [&mut dyn Callback],
        logger: &mut Logger,
    ) -> Result<()> {
        self.run.total_timesteps = total_timesteps;
        if !self.started {
            self.env.reset(Some(self.run.seed))?;
            self.last_episode_starts.fill(true);
            self.started = true;
        }
        self.action_log
            .reserve_for(self.remaining_vector_steps(), &self.actions);
        let start = Instant::now();
        let start_steps = self.run.num_timesteps;
        for cb in callbacks.iter_mut() {
            cb.on_training_start(&self.locals(false), logger)?;
        }
        while self.run.num_timesteps < total_timesteps {
            if !self.collect_rollout(callbacks, logger)? {
                break;
            }
            self.iterations = self.iterations.saturating_add(1);
            if self.settings.log_interval > 0
                && self.iterations.is_multiple_of(self.settings.log_interval)
            {
                self.dump_logs(logger, start, start_steps);
            }
            let progress_remaining = self.run.progress_remaining();
            let ctx = TrainContext {
                policy: &self.policy,
                buffer: &self.buffer,
                action_space: self.env.action_space(),
                rng: &mut self.run.rng,
                progress_remaining,
                iteration: self.iterations,
                n_updates: &mut self.n_updates,
            };
            self.trainer.train(ctx, logger)?;
            check_finite_vars(self.trainer.optimizer().vars(), self.iterations)?;
            self.buffer.reset();
        }
        for cb in callbacks.iter_mut() {
            cb.on_training_end(&self.locals(false), logger)?;
        }
        Ok(())
    }

    /// Vector steps left until the budget, plus one rollout: what the action log may need.
    fn remaining_vector_steps(&self) -> u64 {
        let n = self.env.num_envs() as u64;
        self.run
            .total_timesteps
            .saturating_sub(self.run.num_timesteps)
            .div_ceil(n)
            .saturating_add(self.settings.n_steps as u64)
    }

    fn locals(&self, with_step: bool) -> Locals<'_> {
        let (rewards, dones, infos): (&[f64], &[bool], &[rl_env::Info]) = if with_step {
            (
                self.env.rewards(),
                &self.scratch.dones,
                self.env.buffers().infos(),
            )
        } else {
            (&[], &[], &[])
        };
        Locals {
            algo: self,
            num_timesteps: self.run.num_timesteps,
            total_timesteps: self.run.total_timesteps,
            iteration: self.iterations,
            rewards,
            dones,
            infos,
        }
    }

    /// SB3's `dump_logs`: time and episode statistics, then the logger's dump.
    fn dump_logs(&self, logger: &mut Logger, start: Instant, start_steps: u64) {
        let elapsed = start.elapsed().as_secs_f64().max(f64::EPSILON);
        let fps = ((self.run.num_timesteps - start_steps) as f64 / elapsed).floor();
        logger.record_int("time/iterations", self.iterations as i64);
        logger.record_episode_means(self.episodes.episodes());
        logger.record_int("time/fps", fps as i64);
        logger.record_int("time/time_elapsed", elapsed as i64);
        logger.record_int("time/total_timesteps", self.run.num_timesteps as i64);
        logger.dump(self.run.num_timesteps);
    }

    /// Writes a checkpoint (atomically) from which [`OnPolicyAlgorithm::load`] resumes this run
    /// bit for bit.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        checkpoint::save(self, path.as_ref())
    }

    /// Restores a run saved with [`OnPolicyAlgorithm::save`] (or a checkpoint callback) into
    /// `policy` (same architecture: parameters are set by name) and `env` (freshly built, not
    /// yet reset: the environments' state is rebuilt by replaying the recorded actions from the
    /// seeded reset, and checked against the saved observations).
    pub fn load(path: impl AsRef<Path>, policy: P, env: V) -> Result<Self> {
        checkpoint::load(path.as_ref(), policy, env)
    }
}

/// How many times SB3's `collect_rollouts` re-draws the gSDE exploration matrices
/// (`policy.reset_noise`) right before rollout step `step` (0-based): once before the loop
/// (step 0), plus once at every step that is a multiple of `sde_sample_freq` when that is
/// positive — so step 0 draws twice then.
pub fn sde_draws_before_step(step: usize, sde_sample_freq: i64) -> usize {
    let at_start = usize::from(step == 0);
    let periodic = sde_sample_freq > 0 && (step as u64).is_multiple_of(sde_sample_freq as u64);
    at_start + usize::from(periodic)
}

/// Checks that gSDE is asked for consistently: `use_sde` needs `Box` actions (SB3 refuses gSDE
/// for other spaces) and a policy built with gSDE, and a gSDE policy needs `use_sde` (without
/// it its exploration matrices would never be re-drawn).
fn check_sde<P: ActorCritic>(
    settings: &RolloutSettings,
    policy: &P,
    action_space: &Space,
    algo: &str,
) -> Result<()> {
    if settings.use_sde && action_space.as_box().is_none() {
        return Err(AlgoError::InvalidArgument(format!(
            "{algo}: gSDE (use_sde) can only be used with continuous (Box) actions, the \
             environments' action space is {action_space}"
        )));
    }
    match (settings.use_sde, policy.uses_sde()) {
        (true, false) => Err(AlgoError::InvalidArgument(format!(
            "{algo}: use_sde is set but the policy was built without gSDE (build it with \
             MlpPolicyConfig {{ use_sde: true, .. }})"
        ))),
        (false, true) => Err(AlgoError::InvalidArgument(format!(
            "{algo}: the policy was built with gSDE but use_sde is not set in the configuration"
        ))),
        _ => Ok(()),
    }
}

/// Errors with [`AlgoError::Diverged`] when any variable holds a NaN or infinity.
pub fn check_finite_vars(vars: &[(String, Var)], iteration: u64) -> Result<()> {
    for (name, var) in vars {
        if !all_finite(var.as_tensor())? {
            return Err(AlgoError::Diverged {
                iteration,
                what: format!("parameter {name}"),
            });
        }
    }
    Ok(())
}

/// Records SB3's `train/std` (the mean of `exp(log_std)`, over the `[latent, d]` matrix with
/// gSDE) for a Gaussian policy, from its distribution on the first stored observation; nothing
/// for other policies.
pub fn record_std<P: ActorCritic + ?Sized>(
    policy: &P,
    buffer: &RolloutBuffer,
    logger: &mut Logger,
) -> Result<()> {
    let d = buffer.obs_dim();
    let first = &buffer.observations()[..d];
    let one = Tensor::from_slice(first, (1, d), policy.device())?;
    let log_std = match policy.action_dist(&one)? {
        ActionDist::DiagGaussian(g) => Some(g.log_std().clone()),
        ActionDist::StateDependentNoise(s) => Some(s.log_std().clone()),
        ActionDist::Categorical(_) => None,
    };
    if let Some(log_std) = log_std {
        let std = log_std
            .exp()?
            .mean_all()?
            .to_dtype(DType::F64)?
            .to_scalar::<f64>()?;
        logger.record("train/std", std);
    }
    Ok(())
}

impl<P: ActorCritic, V: VecEnv, T: OnPolicyTrainer> Algorithm for OnPolicyAlgorithm<P, V, T> {
    fn normalization(&self) -> Option<rl_env::VecNormalizeSnapshot> {
        self.env.normalization()
    }

    fn policy(&self) -> &dyn Policy {
        &self.policy
    }

    fn num_timesteps(&self) -> u64 {
        self.run.num_timesteps
    }

    fn save_checkpoint(&self, path: &Path) -> Result<()> {
        self.save(path)
    }
}
