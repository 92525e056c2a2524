//! TD3 (twin delayed DDPG) and DDPG with Stable-Baselines3's exact semantics.
//!
//! [`Td3`] is the off-policy core ([`OffPolicyAlgorithm`]) with TD3's trainer:
//! - acting (SB3's `TD3.predict`): the deterministic actor's scaled action; the core adds the
//!   configured [`ActionNoise`], clips to `[-1, 1]` and maps onto the action space's bounds
//!   (uniform actions, plus noise, before `learning_starts`);
//! - training (SB3's `TD3.train`): per gradient step the update counter grows first, then
//!   [`td3_critic_update`] (target policy smoothing: noise `N(0, target_policy_noise)` clipped to
//!   `±target_noise_clip`; clipped double-Q targets; the critics' step), and whenever the
//!   counter is a multiple of `policy_delay`: [`td3_actor_update`] and the Polyak updates of
//!   the target critics and the target actor.
//!
//! DDPG is the same trainer with [`Td3Config::ddpg`] (`policy_delay` 1, no target policy
//! smoothing) and a one-headed critic, as SB3 defines it.
//!
//! ```no_run
//! use candle_core::Device;
//! use rl_algos::noise::ActionNoise;
//! use rl_algos::td3::{Td3, Td3Config};
//! use rl_algos::optim::Schedule;
//! use rl_env::{AutoresetMode, SyncVecEnv, VecEnv};
//! use rl_policy::{ContinuousCritic, MlpConfig, Td3Actor};
//!
//! // rl-zoo's Pendulum-v1 settings.
//! let env = SyncVecEnv::make("Pendulum-v1", 1, AutoresetMode::SameStep)?;
//! let (obs, act) = (env.observation_space(), env.action_space());
//! let actor = Td3Actor::new(obs, act, MlpConfig::td3(), 0, &Device::Cpu)?;
//! let critic = ContinuousCritic::new(obs, act, MlpConfig::td3(), 2, 1, &Device::Cpu)?;
//! let config = Td3Config {
//!     gamma: 0.98,
//!     buffer_size: 200_000,
//!     learning_starts: 10_000,
//!     action_noise: Some(ActionNoise::normal(1, 0.1)),
//!     seed: Some(0),
//!     ..Td3Config::default()
//! };
//! let mut model = Td3::new(actor, critic, env, config)?;
//! model.learn(20_000, &mut [])?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod update;

pub use update::{td3_actor_update, td3_critic_update, Td3CriticStats};

use crate::a2c::check_positive;
use crate::codec::{Reader, Writer};
use crate::critic::{BatchTensors, ContinuousBatch};
use crate::dqn::polyak_update;
use crate::error::{AlgoError, Result};
use crate::logger::Logger;
use crate::noise::ActionNoise;
use crate::off_policy::{
    check_target_copy, read_noise, write_noise, GradientSteps, OffPolicyAlgorithm,
    OffPolicySettings, OffPolicyTrainContext, OffPolicyTrainer, TrainFreq,
};
use crate::optim::{Adam, Optimizer, Schedule};
use candle_core::{Device, Tensor, Var};
use rand::{Rng, RngCore};
use rand_distr::StandardNormal;
use rl_env::{Space, VecEnv};
use rl_policy::{
    ContinuousCritic, Critic, DeterministicActor, DeterministicPolicy, Policy, Td3Actor,
    Td3Networks,
};
use std::path::Path;

/// TD3's configuration: SB3's `TD3` constructor arguments, with its defaults
/// ([`Td3Config::ddpg`] gives SB3's `DDPG`).
#[derive(Clone, Debug, PartialEq)]
pub struct Td3Config {
    /// The learning rate of both optimizers (`1e-3`), a function of `progress_remaining`.
    pub learning_rate: Schedule,
    /// Transitions the replay buffer holds (`1_000_000`).
    pub buffer_size: usize,
    /// Environment steps of uniformly random actions before learning (`100`).
    pub learning_starts: u64,
    /// Samples per gradient step (`256`).
    pub batch_size: usize,
    /// Polyak coefficient of the target networks (`0.005`).
    pub tau: f64,
    /// Discount factor (`0.99`).
    pub gamma: f64,
    /// How often to train (`1` vector step).
    pub train_freq: TrainFreq,
    /// Gradient steps per training round (`1`).
    pub gradient_steps: GradientSteps,
    /// n-step returns (`1`).
    pub n_steps: usize,
    /// Exploration noise added to the actor's actions (`None`).
    pub action_noise: Option<ActionNoise>,
    /// Critic updates per actor and target update (`2`).
    pub policy_delay: u64,
    /// Standard deviation of the target policy smoothing noise (`0.2`; 0 turns it off).
    pub target_policy_noise: f64,
    /// Clip of the target policy smoothing noise (`0.5`).
    pub target_noise_clip: f64,
    /// Adam's epsilon (`1e-8`, torch's default, which SB3's TD3 keeps).
    pub adam_eps: f64,
    /// Seed of the environments and of the generator; `None` draws one from the OS.
    pub seed: Option<u64>,
    /// Dump the logger every this many finished episodes (`4`; 0: never).
    pub log_interval: u64,
    /// Finished episodes averaged into `rollout/ep_rew_mean` and `ep_len_mean` (`100`).
    pub stats_window_size: usize,
    /// Print the logger's tables on dump.
    pub verbose: bool,
}

impl Default for Td3Config {
    fn default() -> Self {
        Td3Config {
            learning_rate: Schedule::Constant(1e-3),
            buffer_size: 1_000_000,
            learning_starts: 100,
            batch_size: 256,
            tau: 0.005,
            gamma: 0.99,
            train_freq: TrainFreq::Steps(1),
            gradient_steps: GradientSteps::Fixed(1),
            n_steps: 1,
            action_noise: None,
            policy_delay: 2,
            target_policy_noise: 0.2,
            target_noise_clip: 0.5,
            adam_eps: 1e-8,
            seed: None,
            log_interval: 4,
            stats_window_size: 100,
            verbose: false,
        }
    }
}

impl Td3Config {
    /// SB3's `DDPG` defaults: TD3's, with `policy_delay` 1 and target policy noise 0.1 clipped
    /// to ±0 (no smoothing: SB3 still draws the noise, this trainer skips the draw when the
    /// clip is 0); train it with a one-headed critic.
    pub fn ddpg() -> Self {
        Td3Config {
            policy_delay: 1,
            target_policy_noise: 0.1,
            target_noise_clip: 0.0,
            ..Td3Config::default()
        }
    }

    /// Checks every value, naming the first bad one.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(AlgoError::InvalidArgument(m));
        self.learning_rate.check_positive("learning_rate")?;
        self.settings().validate()?;
        if !(self.tau > 0.0 && self.tau <= 1.0) {
            return bad(format!("tau must lie in (0, 1], got {}", self.tau));
        }
        if self.policy_delay == 0 {
            return bad("policy_delay must be at least 1".into());
        }
        for (name, v) in [
            ("target_policy_noise", self.target_policy_noise),
            ("target_noise_clip", self.target_noise_clip),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return bad(format!("{name} must be finite and >= 0, got {v}"));
            }
        }
        check_positive(&[("adam_eps", self.adam_eps)])
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

    fn write(&self, w: &mut Writer) {
        w.schedule(&self.learning_rate);
        self.settings().write(w);
        w.f64(self.tau);
        write_noise(w, &self.action_noise);
        w.u64(self.policy_delay);
        w.f64(self.target_policy_noise);
        w.f64(self.target_noise_clip);
        w.f64(self.adam_eps);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self> {
        let learning_rate = r.schedule("learning_rate")?;
        let s = OffPolicySettings::read(r)?;
        Ok(Td3Config {
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
            action_noise: read_noise(r)?,
            policy_delay: r.u64("policy_delay")?,
            target_policy_noise: r.f64("target_policy_noise")?,
            target_noise_clip: r.f64("target_noise_clip")?,
            adam_eps: r.f64("adam_eps")?,
        })
    }
}

/// Means over the last `train()` call (SB3's `train/*` values).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Td3TrainStats {
    /// Mean actor loss over the actor updates of the call (none when the delay skipped all).
    pub actor_loss: Option<f64>,
    /// Mean critic loss.
    pub critic_loss: f64,
    /// Gradient steps taken.
    pub gradient_steps: u64,
}

/// TD3's half of the off-policy core: the actor (behind its policy) and its target, the
/// critics and their targets, two Adams and the update counter.
pub struct Td3Trainer<A: DeterministicActor, C: Critic> {
    config: Td3Config,
    policy: DeterministicPolicy<A>,
    actor_target: A,
    critic: C,
    critic_target: C,
    actor_vars: Vec<(String, Var)>,
    actor_target_vars: Vec<(String, Var)>,
    critic_vars: Vec<(String, Var)>,
    critic_target_vars: Vec<(String, Var)>,
    actor_optimizer: Adam,
    critic_optimizer: Adam,
    n_updates: u64,
    last_stats: Option<Td3TrainStats>,
}

impl<A: DeterministicActor, C: Critic> Td3Trainer<A, C> {
    /// The actor.
    pub fn actor(&self) -> &A {
        self.policy.actor()
    }

    /// The target actor.
    pub fn actor_target(&self) -> &A {
        &self.actor_target
    }

    /// The critics.
    pub fn critic(&self) -> &C {
        &self.critic
    }

    /// The target critics.
    pub fn critic_target(&self) -> &C {
        &self.critic_target
    }

    /// The critics' optimizer (the actor's is [`OffPolicyTrainer::optimizer`]).
    pub fn critic_optimizer(&self) -> &dyn Optimizer {
        &self.critic_optimizer
    }

    /// Gradient steps taken (SB3's `_n_updates`).
    pub fn n_updates(&self) -> u64 {
        self.n_updates
    }

    /// Statistics of the last `train()` call.
    pub fn last_train(&self) -> Option<Td3TrainStats> {
        self.last_stats
    }

    /// SB3's `_update_learning_rate` over both optimizers; returns the rate.
    pub fn update_learning_rate(&mut self, progress_remaining: f64) -> f64 {
        let lr = self.config.learning_rate.value(progress_remaining);
        self.actor_optimizer.set_learning_rate(lr);
        self.critic_optimizer.set_learning_rate(lr);
        lr
    }

    /// One gradient step on a batch with the given target policy noise (`[B, act_dim]`
    /// values already scaled by `target_policy_noise`; empty for none), in SB3's order:
    /// count the update, the critics' step, then (every `policy_delay` updates) the actor's
    /// step and both Polyak updates. Returns the critics' statistics and the actor's loss when
    /// it was updated.
    pub fn gradient_step(
        &mut self,
        batch: &ContinuousBatch<'_>,
        target_noise: &[f32],
    ) -> Result<(Td3CriticStats, Option<f64>)> {
        self.n_updates = self.n_updates.saturating_add(1);
        let critic = td3_critic_update(
            &self.actor_target,
            &self.critic,
            &self.critic_target,
            &mut self.critic_optimizer,
            batch,
            target_noise,
            self.config.target_noise_clip,
            self.config.gamma,
            self.n_updates,
        )?;
        let mut actor_loss = None;
        if self.n_updates.is_multiple_of(self.config.policy_delay) {
            actor_loss = Some(td3_actor_update(
                self.policy.actor(),
                &self.critic,
                &mut self.actor_optimizer,
                batch.observations,
                self.n_updates,
            )?);
            polyak_update(&self.critic_vars, &self.critic_target_vars, self.config.tau)?;
            polyak_update(&self.actor_vars, &self.actor_target_vars, self.config.tau)?;
        }
        Ok((critic, actor_loss))
    }
}

impl<A: DeterministicActor, C: Critic> OffPolicyTrainer for Td3Trainer<A, C> {
    type Config = Td3Config;
    type Networks = (A, C);
    const NAME: &'static str = "TD3";

    fn new(
        config: Td3Config,
        (actor, critic): (A, C),
        _observation_space: &Space,
        action_space: &Space,
    ) -> Result<Self> {
        config.validate()?;
        if !matches!(action_space, Space::Box(_)) {
            return Err(AlgoError::InvalidArgument(format!(
                "TD3/DDPG need a Box action space, got {action_space}"
            )));
        }
        let actor_target = actor.duplicate()?;
        let critic_target = critic.duplicate()?;
        let policy = DeterministicPolicy::new(actor, action_space)?;
        let actor_vars = policy.actor().trainable_vars();
        let actor_target_vars = actor_target.trainable_vars();
        let critic_vars = critic.trainable_vars();
        let critic_target_vars = critic_target.trainable_vars();
        check_target_copy(&actor_vars, &actor_target_vars, "actor")?;
        check_target_copy(&critic_vars, &critic_target_vars, "critic")?;
        let lr = config.learning_rate.value(1.0);
        let actor_optimizer = Adam::new(actor_vars.clone(), lr, config.adam_eps)?;
        let critic_optimizer = Adam::new(critic_vars.clone(), lr, config.adam_eps)?;
        Ok(Td3Trainer {
            config,
            policy,
            actor_target,
            critic,
            critic_target,
            actor_vars,
            actor_target_vars,
            critic_vars,
            critic_target_vars,
            actor_optimizer,
            critic_optimizer,
            n_updates: 0,
            last_stats: None,
        })
    }

    fn config(&self) -> &Td3Config {
        &self.config
    }

    fn settings(&self) -> OffPolicySettings {
        self.config.settings()
    }

    fn optimizer(&self) -> &dyn Optimizer {
        &self.actor_optimizer
    }

    fn action_noise(&self) -> Option<&ActionNoise> {
        self.config.action_noise.as_ref()
    }

    fn policy(&self) -> &dyn Policy {
        &self.policy
    }

    fn device(&self) -> &Device {
        self.critic.device()
    }

    fn into_networks(self) -> (A, C) {
        (self.policy.into_inner(), self.critic)
    }

    fn predict(&mut self, obs: &Tensor, _rng: &mut dyn RngCore) -> Result<Tensor> {
        Ok(self.policy.actor().actions(obs)?)
    }

    fn on_step(&mut self, _progress: f64, _n_envs: usize, _logger: &mut Logger) -> Result<()> {
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
        let device = self.critic.device().clone();
        // No noise survives a clip of 0: skip the draw.
        let sigma = if self.config.target_noise_clip > 0.0 {
            self.config.target_policy_noise as f32
        } else {
            0.0
        };
        let mut noise = Vec::new();
        let (mut critic_sum, mut actor_sum, mut actor_n) = (0.0, 0.0, 0u64);
        for _ in 0..gradient_steps {
            ctx.buffer
                .sample(self.config.batch_size, &mut *ctx.rng, &mut *ctx.samples)?;
            let samples = &*ctx.samples;
            let tensors = BatchTensors::new(samples, &device)?;
            noise.clear();
            if sigma > 0.0 {
                noise.extend(
                    (0..tensors.actions.elem_count())
                        .map(|_| sigma * ctx.rng.sample::<f32, _>(StandardNormal)),
                );
            }
            let batch = tensors.batch(samples);
            let (critic, actor) = self.gradient_step(&batch, &noise)?;
            critic_sum += critic.critic_loss;
            if let Some(l) = actor {
                actor_sum += l;
                actor_n += 1;
            }
        }
        let stats = Td3TrainStats {
            actor_loss: (actor_n > 0).then(|| actor_sum / actor_n as f64),
            critic_loss: critic_sum / gradient_steps.max(1) as f64,
            gradient_steps,
        };
        self.last_stats = Some(stats);
        logger.record_int("train/n_updates", self.n_updates as i64);
        if let Some(l) = stats.actor_loss {
            logger.record("train/actor_loss", l);
        }
        logger.record("train/critic_loss", stats.critic_loss);
        Ok(())
    }

    fn save_state(&self) -> Result<Vec<u8>> {
        let mut w = Writer::part();
        self.config.write(&mut w);
        w.vars(&self.actor_vars)?;
        w.vars(&self.actor_target_vars)?;
        w.vars(&self.critic_vars)?;
        w.vars(&self.critic_target_vars)?;
        w.optimizer(&self.actor_optimizer)?;
        w.optimizer(&self.critic_optimizer)?;
        w.u64(self.n_updates);
        Ok(w.into_bytes())
    }

    fn load_state(
        bytes: &[u8],
        origin: &Path,
        networks: (A, C),
        observation_space: &Space,
        action_space: &Space,
    ) -> Result<Self> {
        let mut r = Reader::part(bytes, origin);
        let config = Td3Config::read(&mut r)?;
        let mut t = Td3Trainer::new(config, networks, observation_space, action_space)
            .map_err(|e| r.err(format!("stored configuration is invalid: {e}")))?;
        r.vars_into(&t.actor_vars, "actor")?;
        r.vars_into(&t.actor_target_vars, "target actor")?;
        r.vars_into(&t.critic_vars, "critic")?;
        r.vars_into(&t.critic_target_vars, "target critic")?;
        r.optimizer_into(&mut t.actor_optimizer, "actor optimizer")?;
        r.optimizer_into(&mut t.critic_optimizer, "critic optimizer")?;
        t.n_updates = r.u64("n_updates")?;
        r.finish()?;
        Ok(t)
    }
}

/// TD3 (SB3's `TD3`): the off-policy core with [`Td3Trainer`].
pub type Td3<A, C, V> = OffPolicyAlgorithm<V, Td3Trainer<A, C>>;

/// DDPG (SB3's `DDPG`): [`Td3`] with [`Td3Config::ddpg`] and a one-headed critic.
pub type Ddpg<A, C, V> = Td3<A, C, V>;

impl<A: DeterministicActor, C: Critic, V: VecEnv> OffPolicyAlgorithm<V, Td3Trainer<A, C>> {
    /// A TD3 (or, with [`Td3Config::ddpg`], DDPG) learner for `actor` and `critic` (their
    /// targets are duplicates) on `env` (same-step autoreset; a bounded `Box` action space).
    pub fn new(actor: A, critic: C, env: V, config: Td3Config) -> Result<Self> {
        Self::with_config((actor, critic), env, config)
    }

    /// The actor.
    pub fn actor(&self) -> &A {
        self.trainer().actor()
    }

    /// The critics.
    pub fn critic(&self) -> &C {
        self.trainer().critic()
    }

    /// Statistics of the last `train()` call.
    pub fn last_train(&self) -> Option<Td3TrainStats> {
        self.trainer().last_train()
    }
}

impl<V: VecEnv> OffPolicyAlgorithm<V, Td3Trainer<Td3Actor, ContinuousCritic>> {
    /// The trained model's networks (actor, critics and both targets) with the
    /// environment's spaces, borrowed: [`Td3Networks::save`] writes them.
    pub fn networks(&self) -> Td3Networks<'_> {
        let t = self.trainer();
        Td3Networks {
            actor: t.actor(),
            actor_target: t.actor_target(),
            critic: t.critic(),
            critic_target: t.critic_target(),
            observation_space: self.env().observation_space(),
            action_space: self.env().action_space(),
        }
    }

    /// Saves the model (actor, target actor, critics, target critics, spaces) into directory
    /// `dir` as one atomic, checksummed file tagged `rl-policy/Td3Policy/1` (see
    /// [`rl_policy::io`]); [`rl_policy::Td3Model::load`] or [`rl_policy::SavedModel`] read it
    /// back, `enjoy` plays it. The training state (replay buffer, optimizers, noise) is the
    /// checkpoint's: [`OffPolicyAlgorithm::save`].
    pub fn save_policy(&self, dir: impl AsRef<Path>) -> Result<()> {
        Ok(self.networks().save(dir)?)
    }
}
