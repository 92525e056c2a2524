//! The off-policy core (SB3's `OffPolicyAlgorithm`): what DQN, SAC, TD3 and DDPG share,
//! written once.
//!
//! [`OffPolicyAlgorithm`] owns the environments, the [`ReplayBuffer`] and the run; an
//! [`OffPolicyTrainer`] owns the networks, their optimizers and targets, and supplies SB3's
//! `predict` (exploration), `_on_step` (target updates, schedules) and `train`. One `learn`
//! iteration, in SB3's order:
//! 1. collect until `train_freq` is met (vector steps, or finished episodes): before
//!    `learning_starts` environment steps every action is sampled uniformly from the action
//!    space with the run's generator, after it the trainer predicts; step the environments,
//!    add `n_envs` to the timestep counter, call every callback's `on_step` (a `false` stops
//!    training before the step is stored), record finished episodes, store the transition
//!    (the next observation of a finished episode is its final observation; truncations are
//!    flagged as timeouts), update `progress_remaining`, call the trainer's `on_step`, dump the
//!    logs every `log_interval` finished episodes;
//! 2. once `num_timesteps > learning_starts`: `gradient_steps` updates (or as many as
//!    environment steps were collected), each on a batch sampled uniformly with the run's
//!    generator.

mod checkpoint;
mod collect;

use crate::callbacks::{Algorithm, Callback, Locals};
use crate::codec::{Reader, Writer};
use crate::envlog::ActionLog;
use crate::error::{AlgoError, Result};
use crate::logger::Logger;
use crate::noise::{ActionNoise, NoiseState};
use crate::optim::Optimizer;
use crate::replay::{ReplayBuffer, ReplaySamples};
use crate::run::{EpisodeWindow, RunState};
use candle_core::{DType, Device, Var};
use rand::RngCore;
use rl_env::{AutoresetMode, Space, VecEnv};
use rl_policy::Policy;
use rl_tensor_bridge::{ActionBuffer, ObsBatcher};
use std::path::Path;
use std::time::Instant;

/// How often to train: every `n` vector steps, or every `n` finished episodes (SB3's
/// `train_freq`, `(n, "step")` or `(n, "episode")`; episodes need a single environment).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrainFreq {
    /// Every `n` vector steps (`n * n_envs` transitions).
    Steps(u64),
    /// Every `n` finished episodes.
    Episodes(u64),
}

/// Gradient steps per training round (SB3's `gradient_steps`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GradientSteps {
    /// This many.
    Fixed(u64),
    /// As many as environment steps were collected in the round (SB3's `-1`).
    AsCollected,
}

/// The rollout half of an off-policy configuration (SB3's `OffPolicyAlgorithm` arguments).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OffPolicySettings {
    /// Transitions the replay buffer holds.
    pub buffer_size: usize,
    /// Environment steps of uniformly random actions before the trainer acts and trains.
    pub learning_starts: u64,
    /// Samples per gradient step.
    pub batch_size: usize,
    /// Discount factor (the n-step returns' too).
    pub gamma: f64,
    /// How often to train.
    pub train_freq: TrainFreq,
    /// Gradient steps per training round.
    pub gradient_steps: GradientSteps,
    /// n-step returns (1: one-step).
    pub n_steps: usize,
    /// Seed of the environments (env `i` gets `seed + i`) and of the generator; `None` draws
    /// one from the OS.
    pub seed: Option<u64>,
    /// Dump the logger every this many finished episodes (0: never).
    pub log_interval: u64,
    /// Finished episodes averaged into `rollout/ep_rew_mean` and `ep_len_mean`.
    pub stats_window_size: usize,
    /// Print the logger's tables on dump.
    pub verbose: bool,
}

impl OffPolicySettings {
    /// Checks the values that do not depend on the environments, naming the first bad one.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(AlgoError::InvalidArgument(m));
        if self.buffer_size == 0 {
            return bad("buffer_size must be at least 1".into());
        }
        if self.batch_size == 0 {
            return bad("batch_size must be at least 1".into());
        }
        if !(0.0..=1.0).contains(&self.gamma) {
            return bad(format!("gamma must lie in [0, 1], got {}", self.gamma));
        }
        match self.train_freq {
            TrainFreq::Steps(0) | TrainFreq::Episodes(0) => {
                return bad("train_freq must be at least 1".into())
            }
            _ => {}
        }
        if self.n_steps == 0 || self.n_steps > crate::replay::MAX_N_STEPS {
            return bad(format!(
                "n_steps must lie in 1..={}, got {}",
                crate::replay::MAX_N_STEPS,
                self.n_steps
            ));
        }
        if self.stats_window_size == 0 {
            return bad("stats_window_size must be at least 1".into());
        }
        Ok(())
    }

    /// Encodes the settings for a configuration's checkpoint codec.
    pub(crate) fn write(&self, w: &mut Writer) {
        w.usize(self.buffer_size);
        w.u64(self.learning_starts);
        w.usize(self.batch_size);
        w.f64(self.gamma);
        match self.train_freq {
            TrainFreq::Steps(n) => {
                w.u8(0);
                w.u64(n);
            }
            TrainFreq::Episodes(n) => {
                w.u8(1);
                w.u64(n);
            }
        }
        match self.gradient_steps {
            GradientSteps::Fixed(n) => {
                w.u8(0);
                w.u64(n);
            }
            GradientSteps::AsCollected => w.u8(1),
        }
        w.usize(self.n_steps);
        w.opt_u64(self.seed);
        w.u64(self.log_interval);
        w.usize(self.stats_window_size);
        w.bool(self.verbose);
    }

    /// Decodes settings written by [`OffPolicySettings::write`].
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self> {
        let buffer_size = r.usize("buffer_size")?;
        let learning_starts = r.u64("learning_starts")?;
        let batch_size = r.usize("batch_size")?;
        let gamma = r.f64("gamma")?;
        let train_freq = match r.u8("train_freq unit")? {
            0 => TrainFreq::Steps(r.u64("train_freq")?),
            1 => TrainFreq::Episodes(r.u64("train_freq")?),
            k => return Err(r.err(format!("unknown train_freq unit {k}"))),
        };
        let gradient_steps = match r.u8("gradient_steps kind")? {
            0 => GradientSteps::Fixed(r.u64("gradient_steps")?),
            1 => GradientSteps::AsCollected,
            k => return Err(r.err(format!("unknown gradient_steps kind {k}"))),
        };
        Ok(OffPolicySettings {
            buffer_size,
            learning_starts,
            batch_size,
            gamma,
            train_freq,
            gradient_steps,
            n_steps: r.usize("n_steps")?,
            seed: r.opt_u64("seed")?,
            log_interval: r.u64("log_interval")?,
            stats_window_size: r.usize("stats_window_size")?,
            verbose: r.bool("verbose")?,
        })
    }
}

/// Checks that a network's target copy (its `duplicate`) has the same variables (names,
/// shapes) and owns them: what every trainer with target networks needs.
pub(crate) fn check_target_copy(
    a: &[(String, Var)],
    b: &[(String, Var)],
    what: &str,
) -> Result<()> {
    if a.len() != b.len()
        || a.iter()
            .zip(b)
            .any(|((n1, x), (n2, y))| n1 != n2 || x.dims() != y.dims())
    {
        return Err(AlgoError::InvalidArgument(format!(
            "the {what}'s duplicate does not have the same variables"
        )));
    }
    if a.iter()
        .zip(b)
        .any(|((_, x), (_, y))| x.as_tensor().id() == y.as_tensor().id())
    {
        return Err(AlgoError::InvalidArgument(format!(
            "the {what}'s duplicate shares parameters with it (its `duplicate` must copy them)"
        )));
    }
    Ok(())
}

/// Encodes an optional action noise for a configuration's checkpoint codec.
pub(crate) fn write_noise(w: &mut Writer, noise: &Option<ActionNoise>) {
    match noise {
        None => w.u8(0),
        Some(ActionNoise::Normal { mean, sigma }) => {
            w.u8(1);
            w.f64s(mean);
            w.f64s(sigma);
        }
        Some(ActionNoise::OrnsteinUhlenbeck {
            mean,
            sigma,
            theta,
            dt,
            initial_noise,
        }) => {
            w.u8(2);
            w.f64s(mean);
            w.f64s(sigma);
            w.f64(*theta);
            w.f64(*dt);
            w.bool(initial_noise.is_some());
            if let Some(init) = initial_noise {
                w.f64s(init);
            }
        }
    }
}

/// Decodes an action noise written by [`write_noise`].
pub(crate) fn read_noise(r: &mut Reader<'_>) -> Result<Option<ActionNoise>> {
    Ok(match r.u8("action noise kind")? {
        0 => None,
        1 => Some(ActionNoise::Normal {
            mean: r.f64s("noise mean")?,
            sigma: r.f64s("noise sigma")?,
        }),
        2 => Some(ActionNoise::OrnsteinUhlenbeck {
            mean: r.f64s("noise mean")?,
            sigma: r.f64s("noise sigma")?,
            theta: r.f64("noise theta")?,
            dt: r.f64("noise dt")?,
            initial_noise: if r.bool("initial noise flag")? {
                Some(r.f64s("initial noise")?)
            } else {
                None
            },
        }),
        k => return Err(r.err(format!("unknown action noise kind {k}"))),
    })
}

/// What a trainer sees of the run when it trains.
pub struct OffPolicyTrainContext<'a> {
    /// The replay buffer.
    pub buffer: &'a ReplayBuffer,
    /// Reused sample storage.
    pub samples: &'a mut ReplaySamples,
    /// The run's generator (batch sampling).
    pub rng: &'a mut dyn RngCore,
    /// SB3's `1 - num_timesteps / total_timesteps`, for the schedules.
    pub progress_remaining: f64,
    /// Environment steps so far (for divergence errors).
    pub num_timesteps: u64,
}

/// The algorithm-specific half of an off-policy algorithm: its networks, optimizers and
/// targets, and SB3's `predict`, `_on_step` and `train`. [`crate::dqn::DqnTrainer`]
/// implements it.
pub trait OffPolicyTrainer: Sized {
    /// The algorithm's configuration (SB3's constructor arguments).
    type Config: Clone + std::fmt::Debug;
    /// The networks a user hands in (DQN: the Q-network; its target is made from it).
    type Networks;
    /// The algorithm's name, for messages and checkpoints (e.g. `"DQN"`).
    const NAME: &'static str;

    /// A trainer for `config` over `networks`, for environments with these spaces.
    fn new(
        config: Self::Config,
        networks: Self::Networks,
        observation_space: &Space,
        action_space: &Space,
    ) -> Result<Self>;

    /// The configuration.
    fn config(&self) -> &Self::Config;

    /// The collection half of the configuration.
    fn settings(&self) -> OffPolicySettings;

    /// The main optimizer.
    fn optimizer(&self) -> &dyn Optimizer;

    /// Exploration noise added to the scaled actions of a `Box` action space while collecting
    /// (SB3's `action_noise`; TD3 and DDPG use it), if any.
    fn action_noise(&self) -> Option<&ActionNoise> {
        None
    }

    /// The policy evaluation and callbacks use (DQN: greedy in its Q-values).
    fn policy(&self) -> &dyn Policy;

    /// The device of the networks.
    fn device(&self) -> &Device;

    /// Gives back the networks.
    fn into_networks(self) -> Self::Networks;

    /// The policy's actions for `obs` `[n_envs, obs_dim]` while collecting after
    /// `learning_starts` (SB3's `predict(obs, deterministic=False)`): for a `Discrete` space the
    /// action indices an [`ActionBuffer`] takes with `fill_from_policy` (DQN's ε-greedy); for
    /// a `Box` space the *scaled* actions in `[-1, 1]`, `[n_envs, act_dim]` (the core adds the
    /// action noise, stores them and steps the environments with them mapped onto the
    /// bounds).
    fn predict(
        &mut self,
        obs: &candle_core::Tensor,
        rng: &mut dyn RngCore,
    ) -> Result<candle_core::Tensor>;

    /// Before every vector step of a collection round, `collected_steps` steps into it (0 at
    /// the round's start, SB3's `collect_rollouts`): SAC with gSDE draws its exploration
    /// matrices here from the run's generator. Default: nothing.
    fn before_collect_step(
        &mut self,
        collected_steps: u64,
        n_envs: usize,
        rng: &mut dyn RngCore,
    ) -> Result<()> {
        let _ = (collected_steps, n_envs, rng);
        Ok(())
    }

    /// Whether the policy acts during the warm-up before `learning_starts` instead of uniform
    /// random actions (SB3: `use_sde and use_sde_at_warmup`). Default: no.
    fn policy_at_warmup(&self) -> bool {
        false
    }

    /// After every vector step (SB3's `_on_step`), with the updated `progress_remaining`.
    fn on_step(
        &mut self,
        progress_remaining: f64,
        n_envs: usize,
        logger: &mut Logger,
    ) -> Result<()>;

    /// `gradient_steps` updates from the replay buffer; records SB3's `train/*` values.
    fn train(
        &mut self,
        ctx: OffPolicyTrainContext<'_>,
        gradient_steps: u64,
        logger: &mut Logger,
    ) -> Result<()>;

    /// Everything the trainer needs to continue bit for bit (configuration, parameters of
    /// every network, optimizer states, counters), as bytes for a checkpoint.
    fn save_state(&self) -> Result<Vec<u8>>;

    /// A trainer from bytes of [`OffPolicyTrainer::save_state`] (read from `origin`, named in
    /// errors) over `networks` (their parameters are overwritten).
    fn load_state(
        bytes: &[u8],
        origin: &Path,
        networks: Self::Networks,
        observation_space: &Space,
        action_space: &Space,
    ) -> Result<Self>;
}

/// Per-step host buffers, allocated once.
#[derive(Clone, Debug)]
struct Scratch {
    obs: Vec<f32>,
    next_obs: Vec<f32>,
    policy_actions: Vec<f32>,
    rewards: Vec<f32>,
    dones: Vec<bool>,
    timeouts: Vec<bool>,
    random: Vec<u32>,
    /// `Box` actions in the environments' units, and the noise drawn for them.
    env_actions: Vec<f32>,
    noise: Vec<f32>,
}

/// An off-policy algorithm: the shared collection machinery, the replay buffer and a trainer
/// `T`; see the [module docs](self).
pub struct OffPolicyAlgorithm<V: VecEnv, T: OffPolicyTrainer> {
    env: V,
    trainer: T,
    settings: OffPolicySettings,
    run: RunState,
    n_updates_rounds: u64,
    episode_num: u64,
    started: bool,
    pending_step: bool,
    /// Vector steps and finished episodes of the current collection round.
    collected_steps: u64,
    collected_episodes: u64,
    buffer: ReplayBuffer,
    samples: ReplaySamples,
    logger: Logger,
    ep_returns: Vec<f64>,
    ep_lengths: Vec<u64>,
    episodes: EpisodeWindow,
    action_log: ActionLog,
    noise_state: Option<NoiseState>,
    obs_batcher: ObsBatcher,
    actions: ActionBuffer,
    scratch: Scratch,
    start: Option<(Instant, u64)>,
}

impl<V: VecEnv, T: OffPolicyTrainer> OffPolicyAlgorithm<V, T> {
    /// A learner over `networks` on `env` with the trainer of `config`. `env` must use
    /// same-step autoreset (transitions store the final observation of a finished episode);
    /// it is reset with the seed at the first [`OffPolicyAlgorithm::learn`].
    pub fn with_config(networks: T::Networks, env: V, config: T::Config) -> Result<Self> {
        let trainer = T::new(
            config,
            networks,
            env.observation_space(),
            env.action_space(),
        )?;
        let seed = trainer.settings().seed;
        Self::from_parts(env, trainer, RunState::new(seed))
    }

    fn from_parts(env: V, trainer: T, run: RunState) -> Result<Self> {
        let settings = trainer.settings();
        settings.validate()?;
        if env.autoreset_mode() != AutoresetMode::SameStep {
            return Err(AlgoError::InvalidArgument(format!(
                "{} needs a VecEnv with AutoresetMode::SameStep (transitions store the final \
                 observation of a finished episode)",
                T::NAME
            )));
        }
        let n_envs = env.num_envs();
        if matches!(settings.train_freq, TrainFreq::Episodes(_)) && n_envs != 1 {
            return Err(AlgoError::InvalidArgument(format!(
                "train_freq in episodes needs one environment (SB3's rule), got {n_envs}"
            )));
        }
        let obs_space = env.observation_space();
        let obs_dim = obs_space.flat_dim();
        let act_dim = env.action_space().flat_dim();
        let buffer = ReplayBuffer::new(settings.buffer_size, n_envs, obs_dim, act_dim)?
            .with_n_steps(settings.n_steps, settings.gamma)?;
        let obs_batcher = ObsBatcher::new(obs_space, n_envs, DType::F32, trainer.device().clone())?;
        let actions = ActionBuffer::new(env.action_space(), n_envs);
        let scratch = Scratch {
            obs: vec![0.0; n_envs * obs_dim],
            next_obs: vec![0.0; n_envs * obs_dim],
            policy_actions: vec![0.0; n_envs * act_dim],
            rewards: vec![0.0; n_envs],
            dones: vec![false; n_envs],
            timeouts: vec![false; n_envs],
            random: vec![0; n_envs],
            env_actions: vec![0.0; n_envs * act_dim],
            noise: vec![0.0; n_envs * act_dim],
        };
        let noise_state = match trainer.action_noise() {
            None => None,
            Some(noise) => {
                if !matches!(env.action_space(), Space::Box(_)) {
                    return Err(AlgoError::InvalidArgument(format!(
                        "action noise needs a Box action space, got {}",
                        env.action_space()
                    )));
                }
                noise.validate(act_dim)?;
                Some(noise.new_state(n_envs))
            }
        };
        Ok(OffPolicyAlgorithm {
            noise_state,
            action_log: ActionLog::for_space(env.action_space()),
            logger: Logger::new(settings.verbose),
            episodes: EpisodeWindow::new(settings.stats_window_size),
            ep_returns: vec![0.0; n_envs],
            ep_lengths: vec![0; n_envs],
            env,
            trainer,
            settings,
            run,
            n_updates_rounds: 0,
            episode_num: 0,
            started: false,
            pending_step: false,
            collected_steps: 0,
            collected_episodes: 0,
            buffer,
            samples: ReplaySamples::default(),
            obs_batcher,
            actions,
            scratch,
            start: None,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &T::Config {
        self.trainer.config()
    }

    /// The trainer (networks, optimizers, last statistics).
    pub fn trainer(&self) -> &T {
        &self.trainer
    }

    /// The effective seed (the configured one, or the one drawn when none was given).
    pub fn seed(&self) -> u64 {
        self.run.seed
    }

    /// The environments.
    pub fn env(&self) -> &V {
        &self.env
    }

    /// The replay buffer.
    pub fn replay_buffer(&self) -> &ReplayBuffer {
        &self.buffer
    }

    /// The main optimizer.
    pub fn optimizer(&self) -> &dyn Optimizer {
        self.trainer.optimizer()
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

    /// Training rounds run (each of one or more gradient steps).
    pub fn training_rounds(&self) -> u64 {
        self.n_updates_rounds
    }

    /// Finished episodes.
    pub fn episode_num(&self) -> u64 {
        self.episode_num
    }

    /// Returns and lengths of the last `stats_window_size` finished episodes.
    pub fn episode_info(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        self.episodes.episodes().iter().copied()
    }

    /// Gives back the networks and the environments.
    pub fn into_parts(self) -> (T::Networks, V) {
        (self.trainer.into_networks(), self.env)
    }

    /// Trains until `num_timesteps` reaches `total_timesteps` (counted over the model's life,
    /// as the on-policy learners do), calling `callbacks` as SB3 does. Any callback's `on_step`
    /// returning `false` stops training after that step, before it is stored.
    pub fn learn(
        &mut self,
        total_timesteps: u64,
        callbacks: &mut [&mut dyn Callback],
    ) -> Result<()> {
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
            self.started = true;
        }
        let n = self.env.num_envs() as u64;
        let remaining = total_timesteps
            .saturating_sub(self.run.num_timesteps)
            .div_ceil(n);
        self.action_log.reserve_for(remaining, &self.actions);
        self.start = Some((Instant::now(), self.run.num_timesteps));
        for cb in callbacks.iter_mut() {
            cb.on_training_start(&self.locals(false), logger)?;
        }
        while self.run.num_timesteps < total_timesteps {
            if !self.collect_round(callbacks, logger)? {
                break;
            }
            let learning = self.run.num_timesteps > 0
                && self.run.num_timesteps > self.settings.learning_starts;
            let steps = match self.settings.gradient_steps {
                GradientSteps::Fixed(k) => k,
                GradientSteps::AsCollected => self.collected_steps.saturating_mul(n),
            };
            self.collected_steps = 0;
            self.collected_episodes = 0;
            if learning && steps > 0 {
                let progress_remaining = self.run.progress_remaining();
                let ctx = OffPolicyTrainContext {
                    buffer: &self.buffer,
                    samples: &mut self.samples,
                    rng: &mut self.run.rng,
                    progress_remaining,
                    num_timesteps: self.run.num_timesteps,
                };
                self.trainer.train(ctx, steps, logger)?;
                self.n_updates_rounds = self.n_updates_rounds.saturating_add(1);
            }
        }
        for cb in callbacks.iter_mut() {
            cb.on_training_end(&self.locals(false), logger)?;
        }
        Ok(())
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
            iteration: self.n_updates_rounds,
            rewards,
            dones,
            infos,
        }
    }

    /// SB3's `dump_logs` for off-policy algorithms.
    fn dump_logs(&self, logger: &mut Logger) {
        let (start, start_steps) = self
            .start
            .unwrap_or_else(|| (Instant::now(), self.run.num_timesteps));
        let elapsed = start.elapsed().as_secs_f64().max(f64::EPSILON);
        let fps = ((self.run.num_timesteps - start_steps) as f64 / elapsed).floor();
        logger.record_int("time/episodes", self.episode_num as i64);
        logger.record_episode_means(self.episodes.episodes());
        logger.record_int("time/fps", fps as i64);
        logger.record_int("time/time_elapsed", elapsed as i64);
        logger.record_int("time/total_timesteps", self.run.num_timesteps as i64);
        logger.dump(self.run.num_timesteps);
    }

    /// Writes a checkpoint (atomically, the replay buffer included) from which
    /// [`OffPolicyAlgorithm::load`] resumes this run bit for bit.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        checkpoint::save(self, path.as_ref())
    }

    /// Restores a run saved with [`OffPolicyAlgorithm::save`] over `networks` (same
    /// architecture: parameters are set by name) and `env` (freshly built, not yet reset: its
    /// state is rebuilt by replaying the recorded actions from the seeded reset).
    pub fn load(path: impl AsRef<Path>, networks: T::Networks, env: V) -> Result<Self> {
        checkpoint::load(path.as_ref(), networks, env)
    }
}

impl<V: VecEnv, T: OffPolicyTrainer> Algorithm for OffPolicyAlgorithm<V, T> {
    fn normalization(&self) -> Option<rl_env::VecNormalizeSnapshot> {
        self.env.normalization()
    }

    fn policy(&self) -> &dyn Policy {
        self.trainer.policy()
    }

    fn num_timesteps(&self) -> u64 {
        self.run.num_timesteps
    }

    fn save_checkpoint(&self, path: &Path) -> Result<()> {
        self.save(path)
    }
}
