//! DQN (deep Q-network) with Stable-Baselines3's exact semantics.
//!
//! [`Dqn`] is the off-policy core ([`OffPolicyAlgorithm`]) with DQN's trainer:
//! - acting (SB3's `DQN.predict`): before `learning_starts` environment steps every action is
//!   uniform; afterwards one uniform draw `u` per vector step decides for all environments:
//!   `u < exploration_rate` samples every action uniformly, otherwise each environment takes
//!   the greedy action `argmax_a Q(s, a)`. The exploration rate starts at 0.0 and is updated
//!   after every vector step from a linear schedule (`exploration_initial_eps` to
//!   `exploration_final_eps` over the first `exploration_fraction` of training);
//! - after every vector step (SB3's `_on_step`): the call counter grows by one and the target
//!   network is moved towards the Q-network (`tau`, Polyak) whenever it is a multiple of
//!   `max(target_update_interval / n_envs, 1)`, even before learning starts;
//! - training (SB3's `DQN.train`): per gradient step a uniform batch from the replay buffer,
//!   the TD targets `r + (1 - done) * gamma^k * max_a Q_target(s', a)` (truncations are not
//!   terminations), the Huber loss of `Q(s, a)` against them, global-norm clipping at
//!   `max_grad_norm` and one Adam step.
//!
//! The pieces are public functions usable on recorded data and in a loop of one's own:
//! [`dqn_targets`], [`dqn_loss`], [`dqn_update`], [`polyak_update`].
//!
//! ```no_run
//! use candle_core::Device;
//! use rl_algos::dqn::{Dqn, DqnConfig};
//! use rl_algos::off_policy::{GradientSteps, TrainFreq};
//! use rl_algos::optim::Schedule;
//! use rl_env::{AutoresetMode, SyncVecEnv, VecEnv};
//! use rl_policy::{QNetwork, QNetworkConfig};
//!
//! // rl-zoo's CartPole-v1 settings.
//! let env = SyncVecEnv::make("CartPole-v1", 1, AutoresetMode::SameStep)?;
//! let q = QNetwork::new(
//!     env.observation_space(),
//!     env.action_space(),
//!     QNetworkConfig { net_arch: vec![256, 256], ..QNetworkConfig::default() },
//!     0,
//!     &Device::Cpu,
//! )?;
//! let config = DqnConfig {
//!     learning_rate: Schedule::Constant(2.3e-3),
//!     batch_size: 64,
//!     buffer_size: 100_000,
//!     learning_starts: 1000,
//!     gamma: 0.99,
//!     target_update_interval: 10,
//!     train_freq: TrainFreq::Steps(256),
//!     gradient_steps: GradientSteps::Fixed(128),
//!     exploration_fraction: 0.16,
//!     exploration_final_eps: 0.04,
//!     seed: Some(0),
//!     ..DqnConfig::default()
//! };
//! let mut model = Dqn::new(q, env, config)?;
//! model.learn(50_000, &mut [])?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod fast;
mod update;

pub use fast::{DqnFastUpdate, DqnHostBatch};
pub use update::{dqn_loss, dqn_targets, dqn_update, polyak_update, DqnBatch, DqnLoss, DqnStats};

use crate::a2c::check_positive;
use crate::codec::{Reader, Writer};
use crate::error::{AlgoError, Result};
use crate::logger::Logger;
use crate::off_policy::{
    check_target_copy, GradientSteps, OffPolicyAlgorithm, OffPolicySettings, OffPolicyTrainContext,
    OffPolicyTrainer, TrainFreq,
};
use crate::optim::{Adam, Optimizer, Schedule};
use crate::replay::ReplaySamples;
use candle_core::{Device, Tensor};
use rand::{Rng, RngCore};
use rl_env::{Space, VecEnv};
use rl_policy::{GreedyQPolicy, Policy, QFunction, QNetworkConfig};
use std::path::Path;

/// DQN's configuration: SB3's `DQN` constructor arguments, with its defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct DqnConfig {
    /// Adam's learning rate (`1e-4`), a function of `progress_remaining`.
    pub learning_rate: Schedule,
    /// Transitions the replay buffer holds (`1_000_000`).
    pub buffer_size: usize,
    /// Environment steps of uniformly random actions before learning (`100`).
    pub learning_starts: u64,
    /// Samples per gradient step (`32`).
    pub batch_size: usize,
    /// Polyak coefficient of the target update (`1.0`: a hard copy).
    pub tau: f64,
    /// Discount factor (`0.99`).
    pub gamma: f64,
    /// How often to train (`4` vector steps).
    pub train_freq: TrainFreq,
    /// Gradient steps per training round (`1`).
    pub gradient_steps: GradientSteps,
    /// n-step returns (`1`; SB3's `n_steps` replay buffer argument).
    pub n_steps: usize,
    /// Environment steps between target updates (`10_000`; divided by the number of
    /// environments, at least 1 vector step).
    pub target_update_interval: u64,
    /// Fraction of training over which the exploration rate falls (`0.1`).
    pub exploration_fraction: f64,
    /// Exploration rate at the start (`1.0`).
    pub exploration_initial_eps: f64,
    /// Exploration rate after `exploration_fraction` of training (`0.05`).
    pub exploration_final_eps: f64,
    /// Global gradient-norm clip (`10.0`; `f64::INFINITY` turns clipping off).
    pub max_grad_norm: f64,
    /// The regression loss (Huber, SB3's `smooth_l1_loss`).
    pub loss: DqnLoss,
    /// Adam's epsilon (`1e-8`, torch's default, which SB3's DQN keeps).
    pub adam_eps: f64,
    /// Seed of the environments and of the generator; `None` draws one from the OS.
    pub seed: Option<u64>,
    /// Dump the logger every this many finished episodes (`4`, SB3's DQN `learn` default;
    /// 0: never).
    pub log_interval: u64,
    /// Finished episodes averaged into `rollout/ep_rew_mean` and `ep_len_mean` (`100`).
    pub stats_window_size: usize,
    /// Print the logger's tables on dump.
    pub verbose: bool,
}

impl Default for DqnConfig {
    fn default() -> Self {
        DqnConfig {
            learning_rate: Schedule::Constant(1e-4),
            buffer_size: 1_000_000,
            learning_starts: 100,
            batch_size: 32,
            tau: 1.0,
            gamma: 0.99,
            train_freq: TrainFreq::Steps(4),
            gradient_steps: GradientSteps::Fixed(1),
            n_steps: 1,
            target_update_interval: 10_000,
            exploration_fraction: 0.1,
            exploration_initial_eps: 1.0,
            exploration_final_eps: 0.05,
            max_grad_norm: 10.0,
            loss: DqnLoss::Huber,
            adam_eps: 1e-8,
            seed: None,
            log_interval: 4,
            stats_window_size: 100,
            verbose: false,
        }
    }
}

/// rl-zoo's DQN hyperparameters for one environment (`hyperparams/dqn.yml`): the config
/// (SB3's defaults for whatever the zoo leaves out), the Q-network and the step budget.
#[derive(Clone, Debug, PartialEq)]
pub struct RlZooDqn {
    /// The algorithm's settings (`seed` unset).
    pub config: DqnConfig,
    /// The Q-network's `policy_kwargs` (net_arch; ReLU).
    pub q_net: QNetworkConfig,
    /// The zoo's `n_timesteps`.
    pub n_timesteps: u64,
}

impl DqnConfig {
    /// rl-zoo's settings for `env_id` from the shipped `hyperparams/dqn.yml` (CartPole-v1,
    /// MountainCar-v0, Acrobot-v1); `None` for an environment it has no entry for. The
    /// learning tests use it.
    pub fn rl_zoo(env_id: &str) -> Option<RlZooDqn> {
        // The shipped hyperparams/dqn.yml is the one source: its entries are tested to read.
        let text = crate::zoo::shipped("dqn")?;
        let run = crate::zoo::ZooEntry::from_yaml(text, env_id)
            .ok()?
            .dqn()
            .ok()?;
        let defaults = QNetworkConfig::default();
        let q_net = QNetworkConfig {
            net_arch: match run.policy_kwargs.net_arch {
                Some(crate::zoo::NetArchKwarg::Same(layers)) => layers,
                _ => defaults.net_arch,
            },
            activation: run
                .policy_kwargs
                .activation_fn
                .unwrap_or(defaults.activation),
        };
        Some(RlZooDqn {
            config: run.config,
            q_net,
            n_timesteps: run.n_timesteps?,
        })
    }

    /// Checks every value, naming the first bad one.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(AlgoError::InvalidArgument(m));
        self.learning_rate.check_positive("learning_rate")?;
        self.settings().validate()?;
        if !(self.tau > 0.0 && self.tau <= 1.0) {
            return bad(format!("tau must lie in (0, 1], got {}", self.tau));
        }
        if self.target_update_interval == 0 {
            return bad("target_update_interval must be at least 1".into());
        }
        self.exploration_schedule()
            .check_within("the exploration rate", 0.0, 1.0)?;
        if self.max_grad_norm.is_nan() || self.max_grad_norm <= 0.0 {
            return bad(format!(
                "max_grad_norm must be > 0 (infinity turns clipping off), got {}",
                self.max_grad_norm
            ));
        }
        check_positive(&[("adam_eps", self.adam_eps)])?;
        Ok(())
    }

    /// The collection half of the configuration.
    pub fn settings(&self) -> OffPolicySettings {
        OffPolicySettings {
            buffer_size: self.buffer_size,
            learning_starts: self.learning_starts,
            batch_size: self.batch_size,
            gamma: self.gamma,
            train_freq: self.train_freq,
            gradient_steps: self.gradient_steps,
            n_steps: self.n_steps,
            seed: self.seed,
            log_interval: self.log_interval,
            stats_window_size: self.stats_window_size,
            verbose: self.verbose,
        }
    }

    /// SB3's `LinearSchedule(exploration_initial_eps, exploration_final_eps,
    /// exploration_fraction)`.
    pub fn exploration_schedule(&self) -> Schedule {
        Schedule::Linear {
            start: self.exploration_initial_eps,
            end: self.exploration_final_eps,
            end_fraction: self.exploration_fraction,
        }
    }

    fn write(&self, w: &mut Writer) {
        w.schedule(&self.learning_rate);
        self.settings().write(w);
        w.f64(self.tau);
        w.u64(self.target_update_interval);
        w.f64(self.exploration_fraction);
        w.f64(self.exploration_initial_eps);
        w.f64(self.exploration_final_eps);
        w.f64(self.max_grad_norm);
        w.u8(match self.loss {
            DqnLoss::Huber => 0,
            DqnLoss::Mse => 1,
        });
        w.f64(self.adam_eps);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self> {
        let learning_rate = r.schedule("learning_rate")?;
        let s = OffPolicySettings::read(r)?;
        Ok(DqnConfig {
            learning_rate,
            buffer_size: s.buffer_size,
            learning_starts: s.learning_starts,
            batch_size: s.batch_size,
            gamma: s.gamma,
            train_freq: s.train_freq,
            gradient_steps: s.gradient_steps,
            n_steps: s.n_steps,
            seed: s.seed,
            log_interval: s.log_interval,
            stats_window_size: s.stats_window_size,
            verbose: s.verbose,
            tau: r.f64("tau")?,
            target_update_interval: r.u64("target_update_interval")?,
            exploration_fraction: r.f64("exploration_fraction")?,
            exploration_initial_eps: r.f64("exploration_initial_eps")?,
            exploration_final_eps: r.f64("exploration_final_eps")?,
            max_grad_norm: r.f64("max_grad_norm")?,
            loss: match r.u8("loss")? {
                0 => DqnLoss::Huber,
                1 => DqnLoss::Mse,
                k => return Err(r.err(format!("unknown loss kind {k}"))),
            },
            adam_eps: r.f64("adam_eps")?,
        })
    }
}

/// Statistics of the last `train()` call.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DqnTrainStats {
    /// Mean loss over the call's gradient steps (SB3's `train/loss`).
    pub loss: f64,
    /// Gradient norm (before clipping) of the last gradient step.
    pub grad_norm: f64,
    /// Gradient steps taken.
    pub gradient_steps: u64,
}

/// DQN's half of the off-policy core: the Q-network (behind its greedy policy), the target
/// network, Adam, the call and update counters and the exploration rate.
pub struct DqnTrainer<Q: QFunction> {
    config: DqnConfig,
    policy: GreedyQPolicy<Q>,
    q_target: Q,
    q_vars: Vec<(String, candle_core::Var)>,
    target_vars: Vec<(String, candle_core::Var)>,
    optimizer: Adam,
    /// The gradient step on the fast path, when both networks are plain MLPs on the CPU.
    fast: Option<DqnFastUpdate>,
    n_actions: u32,
    n_calls: u64,
    n_updates: u64,
    exploration_rate: f64,
    last_stats: Option<DqnTrainStats>,
}

impl<Q: QFunction> DqnTrainer<Q> {
    /// The Q-network being trained.
    pub fn q_net(&self) -> &Q {
        self.policy.q_function()
    }

    /// The target network.
    pub fn q_net_target(&self) -> &Q {
        &self.q_target
    }

    /// The current exploration rate (0.0 before the first step, as in SB3).
    pub fn exploration_rate(&self) -> f64 {
        self.exploration_rate
    }

    /// Vector steps seen by `on_step` (SB3's `_n_calls`).
    pub fn n_calls(&self) -> u64 {
        self.n_calls
    }

    /// Gradient steps taken (SB3's `_n_updates`).
    pub fn n_updates(&self) -> u64 {
        self.n_updates
    }

    /// Statistics of the last `train()` call.
    pub fn last_train(&self) -> Option<DqnTrainStats> {
        self.last_stats
    }

    fn n_actions(action_space: &Space) -> Result<u32> {
        match action_space {
            Space::Discrete { n, .. } => {
                u32::try_from(*n).ok().filter(|&n| n >= 1).ok_or_else(|| {
                    AlgoError::InvalidArgument(format!(
                        "DQN needs 1..={} discrete actions, got {action_space}",
                        u32::MAX
                    ))
                })
            }
            other => Err(AlgoError::InvalidArgument(format!(
                "DQN needs a Discrete action space, got {other}"
            ))),
        }
    }

    /// SB3's `_update_learning_rate`: sets Adam's learning rate from the schedule at
    /// `progress_remaining` and returns it.
    pub fn update_learning_rate(&mut self, progress_remaining: f64) -> f64 {
        let lr = self.config.learning_rate.value(progress_remaining);
        self.optimizer.set_learning_rate(lr);
        lr
    }

    /// One gradient step on `samples` (drawn from a replay buffer, or recorded): TD targets
    /// from the target network, loss, backward, clipping, Adam step; counts the update. Runs
    /// on the fast path ([`DqnFastUpdate`]) when both networks are plain MLPs on the CPU.
    pub fn gradient_step(&mut self, samples: &ReplaySamples) -> Result<DqnStats> {
        let b = samples.len();
        if b == 0 || !samples.observations.len().is_multiple_of(b) {
            return Err(AlgoError::InvalidArgument(format!(
                "DQN gradient step: {} observation values for {b} samples",
                samples.observations.len()
            )));
        }
        if let Some(fast) = self.fast.as_mut().filter(|f| b <= f.max_batch()) {
            let batch = DqnHostBatch {
                observations: &samples.observations,
                actions: &samples.actions,
                next_observations: &samples.next_observations,
                rewards: &samples.rewards,
                dones: &samples.dones,
                discounts: &samples.discounts,
            };
            let stats = fast.update(
                &mut self.optimizer,
                &batch,
                self.config.gamma,
                self.config.loss,
                self.config.max_grad_norm,
                self.n_updates,
            )?;
            self.n_updates = self.n_updates.saturating_add(1);
            return Ok(stats);
        }
        let obs_dim = samples.observations.len() / b;
        let device = self.policy.q_function().device().clone();
        let obs = Tensor::from_slice(&samples.observations, (b, obs_dim), &device)?;
        let next_obs = Tensor::from_slice(&samples.next_observations, (b, obs_dim), &device)?;
        let batch = DqnBatch {
            observations: &obs,
            actions: &samples.actions,
            next_observations: &next_obs,
            rewards: &samples.rewards,
            dones: &samples.dones,
            discounts: &samples.discounts,
        };
        let (_, targets) = dqn_targets(&self.q_target, &batch, self.config.gamma)?;
        let stats = dqn_update(
            self.policy.q_function(),
            &mut self.optimizer,
            &batch,
            &targets,
            self.config.loss,
            self.config.max_grad_norm,
            self.n_updates,
        )?;
        self.n_updates = self.n_updates.saturating_add(1);
        Ok(stats)
    }
}

impl<Q: QFunction> OffPolicyTrainer for DqnTrainer<Q> {
    type Config = DqnConfig;
    type Networks = Q;
    const NAME: &'static str = "DQN";

    fn new(
        config: DqnConfig,
        q_net: Q,
        _observation_space: &Space,
        action_space: &Space,
    ) -> Result<Self> {
        config.validate()?;
        let n_actions = Self::n_actions(action_space)?;
        let q_target = q_net.duplicate()?;
        let q_vars = q_net.trainable_vars();
        let target_vars = q_target.trainable_vars();
        check_target_copy(&q_vars, &target_vars, "Q-network")?;
        let optimizer = Adam::new(
            q_vars.clone(),
            config.learning_rate.value(1.0),
            config.adam_eps,
        )?;
        let fast = match (q_net.q_layout(), q_target.q_layout()) {
            (Some(online), Some(target)) => {
                DqnFastUpdate::new(online, target, config.batch_size, &optimizer).ok()
            }
            _ => None,
        };
        Ok(DqnTrainer {
            config,
            policy: GreedyQPolicy::new(q_net),
            q_target,
            q_vars,
            target_vars,
            optimizer,
            fast,
            n_actions,
            n_calls: 0,
            n_updates: 0,
            exploration_rate: 0.0,
            last_stats: None,
        })
    }

    fn config(&self) -> &DqnConfig {
        &self.config
    }

    fn settings(&self) -> OffPolicySettings {
        self.config.settings()
    }

    fn optimizer(&self) -> &dyn Optimizer {
        &self.optimizer
    }

    fn policy(&self) -> &dyn Policy {
        &self.policy
    }

    fn device(&self) -> &Device {
        self.policy.q_function().device()
    }

    fn into_networks(self) -> Q {
        self.policy.into_inner()
    }

    fn predict(&mut self, obs: &Tensor, rng: &mut dyn RngCore) -> Result<Tensor> {
        let n_envs = obs.dim(0)?;
        let u: f64 = rng.gen();
        if u < self.exploration_rate {
            let actions: Vec<u32> = (0..n_envs)
                .map(|_| rng.gen_range(0..self.n_actions))
                .collect();
            Ok(Tensor::from_vec(actions, n_envs, obs.device())?)
        } else {
            // The greedy action draws nothing.
            Ok(self.policy.act(obs, true, rng)?)
        }
    }

    fn on_step(
        &mut self,
        progress_remaining: f64,
        n_envs: usize,
        logger: &mut Logger,
    ) -> Result<()> {
        self.n_calls = self.n_calls.saturating_add(1);
        let interval = (self.config.target_update_interval / n_envs.max(1) as u64).max(1);
        if self.n_calls.is_multiple_of(interval) {
            polyak_update(&self.q_vars, &self.target_vars, self.config.tau)?;
        }
        self.exploration_rate = self.config.exploration_schedule().value(progress_remaining);
        logger.record("rollout/exploration_rate", self.exploration_rate);
        Ok(())
    }

    fn train(
        &mut self,
        ctx: OffPolicyTrainContext<'_>,
        gradient_steps: u64,
        logger: &mut Logger,
    ) -> Result<()> {
        let lr = self.update_learning_rate(ctx.progress_remaining);
        logger.record("train/learning_rate", lr);
        let mut loss_sum = 0.0;
        let mut last_norm = f64::NAN;
        for _ in 0..gradient_steps {
            let batch_size = self.config.batch_size;
            ctx.buffer
                .sample(batch_size, &mut *ctx.rng, &mut *ctx.samples)?;
            let stats = self.gradient_step(ctx.samples)?;
            loss_sum += stats.loss;
            last_norm = stats.grad_norm;
        }
        let stats = DqnTrainStats {
            loss: loss_sum / gradient_steps.max(1) as f64,
            grad_norm: last_norm,
            gradient_steps,
        };
        self.last_stats = Some(stats);
        logger.record_int("train/n_updates", self.n_updates as i64);
        logger.record("train/loss", stats.loss);
        Ok(())
    }

    fn save_state(&self) -> Result<Vec<u8>> {
        let mut w = Writer::part();
        self.config.write(&mut w);
        w.vars(&self.q_vars)?;
        w.vars(&self.target_vars)?;
        w.optimizer(&self.optimizer)?;
        w.u64(self.n_calls);
        w.u64(self.n_updates);
        w.f64(self.exploration_rate);
        Ok(w.into_bytes())
    }

    fn load_state(
        bytes: &[u8],
        origin: &Path,
        q_net: Q,
        observation_space: &Space,
        action_space: &Space,
    ) -> Result<Self> {
        let mut r = Reader::part(bytes, origin);
        let config = DqnConfig::read(&mut r)?;
        let mut trainer = DqnTrainer::new(config, q_net, observation_space, action_space)
            .map_err(|e| r.err(format!("stored configuration is invalid: {e}")))?;
        r.vars_into(&trainer.q_vars, "Q-network")?;
        r.vars_into(&trainer.target_vars, "target network")?;
        r.optimizer_into(&mut trainer.optimizer, "optimizer")?;
        trainer.n_calls = r.u64("n_calls")?;
        trainer.n_updates = r.u64("n_updates")?;
        let eps = r.f64("exploration rate")?;
        if !(0.0..=1.0).contains(&eps) {
            return Err(r.err(format!("exploration rate {eps} outside [0, 1]")));
        }
        trainer.exploration_rate = eps;
        r.finish()?;
        Ok(trainer)
    }
}

/// Deep Q-learning (SB3's `DQN`): the off-policy core with [`DqnTrainer`].
pub type Dqn<Q, V> = OffPolicyAlgorithm<V, DqnTrainer<Q>>;

impl<Q: QFunction, V: VecEnv> OffPolicyAlgorithm<V, DqnTrainer<Q>> {
    /// A DQN learner for `q_net` (its target network is a duplicate) on `env` (same-step
    /// autoreset is required: a finished episode's transition stores its final observation).
    /// The environments are reset with the seed at the first [`OffPolicyAlgorithm::learn`].
    pub fn new(q_net: Q, env: V, config: DqnConfig) -> Result<Self> {
        Self::with_config(q_net, env, config)
    }

    /// The Q-network being trained.
    pub fn q_net(&self) -> &Q {
        self.trainer().q_net()
    }

    /// The current exploration rate.
    pub fn exploration_rate(&self) -> f64 {
        self.trainer().exploration_rate()
    }

    /// Statistics of the last `train()` call.
    pub fn last_train(&self) -> Option<DqnTrainStats> {
        self.trainer().last_train()
    }
}
