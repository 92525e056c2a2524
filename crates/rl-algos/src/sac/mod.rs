//! SAC (soft actor-critic) with Stable-Baselines3's exact semantics.
//!
//! [`Sac`] is the off-policy core ([`OffPolicyAlgorithm`]) with SAC's trainer:
//! - acting (SB3's `SAC.predict`): a sample of the `tanh`-squashed Gaussian of the actor, in
//!   the scaled space `[-1, 1]`; the core maps it onto the action space's bounds (uniform
//!   actions before `learning_starts`);
//! - training (SB3's `SAC.train`): the learning rate of every optimizer (actor, critics, α) is
//!   set from the schedule; per gradient step a uniform batch, then [`sac_update`] (α's loss
//!   and step, the clipped double-Q targets with the entropy bonus, the critics' step, the
//!   actor's step against the updated critics), and the target critics' Polyak update
//!   whenever the step's index within the call is a multiple of `target_update_interval`.
//!
//! Any actor implementing [`GaussianActor`] and critic implementing [`Critic`] trains;
//! [`rl_policy::SacActor`] and [`rl_policy::ContinuousCritic`] are SB3's `MlpPolicy`.
//!
//! gSDE (`use_sde`, an actor built with [`rl_policy::MlpConfig::sde`]): the policy keeps
//! exploration matrices, drawn from the run's seeded generator where SB3 draws them: at the
//! start of every collection round and every `sde_sample_freq` steps of it (SB3's
//! `collect_rollouts`, for all environments), and before every gradient step (SB3's
//! `SAC.train` calls `actor.reset_noise()`, whose first matrix the step's samples use, see
//! [`SacStepNoise::Sde`]). Checkpoints carry the current matrices.
//!
//! ```no_run
//! use candle_core::Device;
//! use rl_algos::sac::{Sac, SacConfig};
//! use rl_algos::optim::Schedule;
//! use rl_env::{AutoresetMode, SyncVecEnv, VecEnv};
//! use rl_policy::{ContinuousCritic, MlpConfig, SacActor};
//!
//! // rl-zoo's Pendulum-v1 settings.
//! let env = SyncVecEnv::make("Pendulum-v1", 1, AutoresetMode::SameStep)?;
//! let (obs, act) = (env.observation_space(), env.action_space());
//! let actor = SacActor::new(obs, act, MlpConfig::sac(), 0, &Device::Cpu)?;
//! let critic = ContinuousCritic::new(obs, act, MlpConfig::sac(), 2, 1, &Device::Cpu)?;
//! let config = SacConfig {
//!     learning_rate: Schedule::Constant(1e-3),
//!     seed: Some(0),
//!     ..SacConfig::default()
//! };
//! let mut model = Sac::new(actor, critic, env, config)?;
//! model.learn(20_000, &mut [])?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod update;

pub use update::{sac_update, EntCoefState, SacNoise, SacStats, SacStepNoise};

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
use rl_policy::sde::draw_weight_eps;
use rl_policy::{
    ContinuousCritic, Critic, ExplorationNoise, GaussianActor, Policy, SacActor, SacNetworks,
    SacPolicy,
};
use std::path::Path;

/// SAC's entropy coefficient setting (SB3's `ent_coef`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum EntCoef {
    /// Learned, starting at this value (`"auto"` = 1.0, `"auto_0.1"` = 0.1).
    Auto(f64),
    /// Fixed at this value.
    Fixed(f64),
}

/// SAC's configuration: SB3's `SAC` constructor arguments, with its defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct SacConfig {
    /// The learning rate of every optimizer (`3e-4`), a function of `progress_remaining`.
    pub learning_rate: Schedule,
    /// Transitions the replay buffer holds (`1_000_000`).
    pub buffer_size: usize,
    /// Environment steps of uniformly random actions before learning (`100`).
    pub learning_starts: u64,
    /// Samples per gradient step (`256`).
    pub batch_size: usize,
    /// Polyak coefficient of the target critics (`0.005`).
    pub tau: f64,
    /// Discount factor (`0.99`).
    pub gamma: f64,
    /// How often to train (`1` vector step).
    pub train_freq: TrainFreq,
    /// Gradient steps per training round (`1`).
    pub gradient_steps: GradientSteps,
    /// n-step returns (`1`).
    pub n_steps: usize,
    /// Exploration noise added to the sampled actions (`None`).
    pub action_noise: Option<ActionNoise>,
    /// The entropy coefficient (`"auto"`: learned from 1.0).
    pub ent_coef: EntCoef,
    /// Gradient steps between target updates, counted within each `train()` call (`1`).
    pub target_update_interval: u64,
    /// The entropy target of a learned α (`None`: SB3's `"auto"`, `-dim(A)`).
    pub target_entropy: Option<f64>,
    /// gSDE exploration (`false`); the actor must be built with gSDE too
    /// ([`rl_policy::MlpConfig::sde`]).
    pub use_sde: bool,
    /// gSDE: draw new exploration matrices every this many vector steps of a collection round
    /// as well as at its start (`-1`: only at the start; any value <= 0 means that).
    pub sde_sample_freq: i64,
    /// gSDE: act with the policy instead of uniform random actions before `learning_starts`
    /// (`false`).
    pub use_sde_at_warmup: bool,
    /// Adam's epsilon for every optimizer (`1e-8`, torch's default, which SB3's SAC keeps).
    pub adam_eps: f64,
    /// Seed of the environments and of the generator; `None` draws one from the OS.
    pub seed: Option<u64>,
    /// Dump the logger every this many finished episodes (`4`, SB3's `learn` default; 0:
    /// never).
    pub log_interval: u64,
    /// Finished episodes averaged into `rollout/ep_rew_mean` and `ep_len_mean` (`100`).
    pub stats_window_size: usize,
    /// Print the logger's tables on dump.
    pub verbose: bool,
}

impl Default for SacConfig {
    fn default() -> Self {
        SacConfig {
            learning_rate: Schedule::Constant(3e-4),
            buffer_size: 1_000_000,
            learning_starts: 100,
            batch_size: 256,
            tau: 0.005,
            gamma: 0.99,
            train_freq: TrainFreq::Steps(1),
            gradient_steps: GradientSteps::Fixed(1),
            n_steps: 1,
            action_noise: None,
            ent_coef: EntCoef::Auto(1.0),
            target_update_interval: 1,
            target_entropy: None,
            use_sde: false,
            sde_sample_freq: -1,
            use_sde_at_warmup: false,
            adam_eps: 1e-8,
            seed: None,
            log_interval: 4,
            stats_window_size: 100,
            verbose: false,
        }
    }
}

impl SacConfig {
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
        match self.ent_coef {
            EntCoef::Auto(v) => check_positive(&[("the initial ent_coef", v)])?,
            EntCoef::Fixed(v) if !(v.is_finite() && v >= 0.0) => {
                return bad(format!("ent_coef must be finite and >= 0, got {v}"))
            }
            EntCoef::Fixed(_) => {}
        }
        if let Some(t) = self.target_entropy {
            if !t.is_finite() {
                return bad(format!("target_entropy must be finite, got {t}"));
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
        match self.ent_coef {
            EntCoef::Auto(v) => {
                w.u8(0);
                w.f64(v);
            }
            EntCoef::Fixed(v) => {
                w.u8(1);
                w.f64(v);
            }
        }
        w.u64(self.target_update_interval);
        w.opt_f64(self.target_entropy);
        w.bool(self.use_sde);
        w.u64(self.sde_sample_freq as u64);
        w.bool(self.use_sde_at_warmup);
        w.f64(self.adam_eps);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self> {
        let learning_rate = r.schedule("learning_rate")?;
        let s = OffPolicySettings::read(r)?;
        Ok(SacConfig {
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
            ent_coef: match r.u8("ent_coef kind")? {
                0 => EntCoef::Auto(r.f64("ent_coef")?),
                1 => EntCoef::Fixed(r.f64("ent_coef")?),
                k => return Err(r.err(format!("unknown ent_coef kind {k}"))),
            },
            target_update_interval: r.u64("target_update_interval")?,
            target_entropy: r.opt_f64("target_entropy")?,
            use_sde: r.bool("use_sde")?,
            sde_sample_freq: r.u64("sde_sample_freq")? as i64,
            use_sde_at_warmup: r.bool("use_sde_at_warmup")?,
            adam_eps: r.f64("adam_eps")?,
        })
    }
}

/// Means over the last `train()` call (SB3's `train/*` values).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SacTrainStats {
    /// Mean α.
    pub ent_coef: f64,
    /// Mean α loss (learned α only).
    pub ent_coef_loss: Option<f64>,
    /// Mean actor loss.
    pub actor_loss: f64,
    /// Mean critic loss.
    pub critic_loss: f64,
    /// Gradient steps taken.
    pub gradient_steps: u64,
}

/// SAC's half of the off-policy core: the actor (behind its policy), the critics and their
/// targets, three Adams (actor, critics, α) and the update counter.
pub struct SacTrainer<A: GaussianActor, C: Critic> {
    config: SacConfig,
    policy: SacPolicy<A>,
    critic: C,
    critic_target: C,
    actor_vars: Vec<(String, Var)>,
    critic_vars: Vec<(String, Var)>,
    target_vars: Vec<(String, Var)>,
    actor_optimizer: Adam,
    critic_optimizer: Adam,
    ent_coef: EntCoefState,
    n_updates: u64,
    last_stats: Option<SacTrainStats>,
}

impl<A: GaussianActor, C: Critic> SacTrainer<A, C> {
    /// The actor.
    pub fn actor(&self) -> &A {
        self.policy.actor()
    }

    /// The critics.
    pub fn critic(&self) -> &C {
        &self.critic
    }

    /// The target critics.
    pub fn critic_target(&self) -> &C {
        &self.critic_target
    }

    /// The entropy coefficient.
    pub fn ent_coef(&self) -> &EntCoefState {
        &self.ent_coef
    }

    /// The policy (the actor and, with gSDE, its exploration matrices).
    pub fn sac_policy(&self) -> &SacPolicy<A> {
        &self.policy
    }

    /// gSDE: replaces the exploration matrices (feeding recorded ones; see
    /// [`SacPolicy::set_exploration_noise`]).
    pub fn set_exploration_noise(&mut self, noise: ExplorationNoise) -> Result<()> {
        Ok(self.policy.set_exploration_noise(noise)?)
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
    pub fn last_train(&self) -> Option<SacTrainStats> {
        self.last_stats
    }

    /// SB3's `_update_learning_rate` over the actor's, the critics' and α's optimizers;
    /// returns the rate.
    pub fn update_learning_rate(&mut self, progress_remaining: f64) -> f64 {
        let lr = self.config.learning_rate.value(progress_remaining);
        self.actor_optimizer.set_learning_rate(lr);
        self.critic_optimizer.set_learning_rate(lr);
        if let EntCoefState::Learned { optimizer, .. } = &mut self.ent_coef {
            optimizer.set_learning_rate(lr);
        }
        lr
    }

    /// One gradient step on a batch with the given noise (see [`sac_update`]); counts the
    /// update. The target critics are not moved (the caller decides, as `train()` does).
    pub fn gradient_step<'n>(
        &mut self,
        batch: &ContinuousBatch<'_>,
        noise: impl Into<SacStepNoise<'n>>,
    ) -> Result<SacStats> {
        let stats = sac_update(
            self.policy.actor(),
            &self.critic,
            &self.critic_target,
            &mut self.actor_optimizer,
            &mut self.critic_optimizer,
            &mut self.ent_coef,
            batch,
            noise,
            self.config.gamma,
            self.n_updates,
        )?;
        self.n_updates = self.n_updates.saturating_add(1);
        Ok(stats)
    }

    /// The Polyak update of the target critics (`tau`).
    pub fn update_target(&self) -> Result<()> {
        polyak_update(&self.critic_vars, &self.target_vars, self.config.tau)
    }
}

impl<A: GaussianActor, C: Critic> OffPolicyTrainer for SacTrainer<A, C> {
    type Config = SacConfig;
    type Networks = (A, C);
    const NAME: &'static str = "SAC";

    fn new(
        config: SacConfig,
        (actor, critic): (A, C),
        _observation_space: &Space,
        action_space: &Space,
    ) -> Result<Self> {
        config.validate()?;
        let act_dim = match action_space {
            Space::Box(b) => b.flat_dim(),
            other => {
                return Err(AlgoError::InvalidArgument(format!(
                    "SAC needs a Box action space, got {other}"
                )))
            }
        };
        if actor.uses_sde() != config.use_sde {
            return Err(AlgoError::InvalidArgument(if config.use_sde {
                "use_sde needs an actor built with gSDE (rl_policy::MlpConfig::sde)".into()
            } else {
                "the actor was built with gSDE (MlpConfig::sde) but use_sde is false".into()
            }));
        }
        let policy = SacPolicy::new(actor, action_space)?;
        let critic_target = critic.duplicate()?;
        let actor_vars = policy.actor().trainable_vars();
        let critic_vars = critic.trainable_vars();
        let target_vars = critic_target.trainable_vars();
        check_target_copy(&critic_vars, &target_vars, "critic")?;
        let lr = config.learning_rate.value(1.0);
        let actor_optimizer = Adam::new(actor_vars.clone(), lr, config.adam_eps)?;
        let critic_optimizer = Adam::new(critic_vars.clone(), lr, config.adam_eps)?;
        let ent_coef = match config.ent_coef {
            EntCoef::Auto(init) => EntCoefState::learned(
                init,
                config.target_entropy.unwrap_or(-(act_dim as f64)),
                lr,
                critic.device(),
            )?,
            EntCoef::Fixed(v) => EntCoefState::Fixed(v),
        };
        Ok(SacTrainer {
            config,
            policy,
            critic,
            critic_target,
            actor_vars,
            critic_vars,
            target_vars,
            actor_optimizer,
            critic_optimizer,
            ent_coef,
            n_updates: 0,
            last_stats: None,
        })
    }

    fn config(&self) -> &SacConfig {
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

    fn predict(&mut self, obs: &Tensor, rng: &mut dyn RngCore) -> Result<Tensor> {
        Ok(self.policy.scaled_actions(obs, false, rng)?)
    }

    fn before_collect_step(
        &mut self,
        collected_steps: u64,
        n_envs: usize,
        rng: &mut dyn RngCore,
    ) -> Result<()> {
        if !self.config.use_sde {
            return Ok(());
        }
        // SB3: once when the round starts, then (in the loop, so also at step 0) every
        // `sde_sample_freq` steps.
        if collected_steps == 0 {
            self.policy.reset_noise(n_envs, rng)?;
        }
        let freq = self.config.sde_sample_freq;
        if freq > 0 && collected_steps.is_multiple_of(freq as u64) {
            self.policy.reset_noise(n_envs, rng)?;
        }
        Ok(())
    }

    fn policy_at_warmup(&self) -> bool {
        self.config.use_sde && self.config.use_sde_at_warmup
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
        let (mut ent, mut ent_loss, mut actor, mut critic) = (0.0, 0.0, 0.0, 0.0);
        let mut learned = false;
        for step in 0..gradient_steps {
            ctx.buffer
                .sample(self.config.batch_size, &mut *ctx.rng, &mut *ctx.samples)?;
            let samples = &*ctx.samples;
            let tensors = BatchTensors::new(samples, &device)?;
            let batch = tensors.batch(samples);
            let stats = if self.config.use_sde {
                // SB3's `actor.reset_noise()` (one environment) before the step: the first
                // matrix drives both samples; the pair stays the policy's matrices.
                let std = self.policy.actor().sde_std()?;
                let (latent, act) = std.dims2()?;
                let (single, per_env) = draw_weight_eps(latent, act, 1, &mut *ctx.rng)?;
                let eps = Tensor::from_slice(&single, (latent, act), &device)?;
                let noise = ExplorationNoise::from_eps(&std, &single, &per_env)?;
                let stats = self.gradient_step(&batch, SacStepNoise::Sde(&eps))?;
                self.policy.set_exploration_noise(noise)?;
                stats
            } else {
                let shape = tensors.actions.dims().to_vec();
                let n = tensors.actions.elem_count();
                let mut draw = || -> Result<Tensor> {
                    let v: Vec<f32> = (0..n)
                        .map(|_| ctx.rng.sample::<f32, _>(StandardNormal))
                        .collect();
                    Ok(Tensor::from_vec(v, shape.as_slice(), &device)?)
                };
                let eps_pi = draw()?;
                let eps_next = draw()?;
                self.gradient_step(
                    &batch,
                    SacNoise {
                        actions: &eps_pi,
                        next_actions: &eps_next,
                    },
                )?
            };
            if step.is_multiple_of(self.config.target_update_interval) {
                self.update_target()?;
            }
            ent += stats.ent_coef;
            actor += stats.actor_loss;
            critic += stats.critic_loss;
            if let Some(l) = stats.ent_coef_loss {
                ent_loss += l;
                learned = true;
            }
        }
        let k = gradient_steps.max(1) as f64;
        let stats = SacTrainStats {
            ent_coef: ent / k,
            ent_coef_loss: learned.then_some(ent_loss / k),
            actor_loss: actor / k,
            critic_loss: critic / k,
            gradient_steps,
        };
        self.last_stats = Some(stats);
        logger.record_int("train/n_updates", self.n_updates as i64);
        logger.record("train/ent_coef", stats.ent_coef);
        logger.record("train/actor_loss", stats.actor_loss);
        logger.record("train/critic_loss", stats.critic_loss);
        if let Some(l) = stats.ent_coef_loss {
            logger.record("train/ent_coef_loss", l);
        }
        if self.config.use_sde {
            // SB3 records `train/std` (the mean weight std) when it dumps the logs; the
            // parameters only change here.
            let std = self
                .policy
                .actor()
                .sde_std()?
                .mean_all()?
                .to_scalar::<f32>()?;
            logger.record("train/std", f64::from(std));
        }
        Ok(())
    }

    fn save_state(&self) -> Result<Vec<u8>> {
        let mut w = Writer::part();
        self.config.write(&mut w);
        w.vars(&self.actor_vars)?;
        w.vars(&self.critic_vars)?;
        w.vars(&self.target_vars)?;
        w.optimizer(&self.actor_optimizer)?;
        w.optimizer(&self.critic_optimizer)?;
        if let EntCoefState::Learned {
            log_ent_coef,
            optimizer,
            ..
        } = &self.ent_coef
        {
            w.vars(&[("log_ent_coef".to_string(), log_ent_coef.clone())])?;
            w.optimizer(optimizer)?;
        }
        w.u64(self.n_updates);
        match self.policy.exploration_noise() {
            Some(noise) => {
                w.bool(true);
                w.usize(noise.n_envs());
                w.f32s(&noise.single().flatten_all()?.to_vec1::<f32>()?);
                w.f32s(&noise.per_env().flatten_all()?.to_vec1::<f32>()?);
            }
            None => w.bool(false),
        }
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
        let config = SacConfig::read(&mut r)?;
        let mut t = SacTrainer::new(config, networks, observation_space, action_space)
            .map_err(|e| r.err(format!("stored configuration is invalid: {e}")))?;
        r.vars_into(&t.actor_vars, "actor")?;
        r.vars_into(&t.critic_vars, "critic")?;
        r.vars_into(&t.target_vars, "target critic")?;
        r.optimizer_into(&mut t.actor_optimizer, "actor optimizer")?;
        r.optimizer_into(&mut t.critic_optimizer, "critic optimizer")?;
        if let EntCoefState::Learned {
            log_ent_coef,
            optimizer,
            ..
        } = &mut t.ent_coef
        {
            r.vars_into(
                &[("log_ent_coef".to_string(), log_ent_coef.clone())],
                "entropy coefficient",
            )?;
            r.optimizer_into(optimizer, "entropy coefficient optimizer")?;
        }
        t.n_updates = r.u64("n_updates")?;
        if r.bool("gSDE exploration matrices present")? {
            let n = r.usize("gSDE environments")?;
            let single = r.f32s("gSDE exploration matrix")?;
            let per_env = r.f32s("gSDE per-environment exploration matrices")?;
            let std = t
                .policy
                .actor()
                .sde_std()
                .map_err(|e| r.err(format!("exploration matrices for this actor: {e}")))?;
            let (latent, act) = std.dims2()?;
            let k = latent * act;
            if single.len() != k || n == 0 || per_env.len() != n.saturating_mul(k) {
                return Err(r.err(format!(
                    "gSDE exploration matrices of {} and {} values for [{latent}, {act}] and \
                     {n} environments",
                    single.len(),
                    per_env.len()
                )));
            }
            let device = t.critic.device().clone();
            let noise = ExplorationNoise::new(
                Tensor::from_vec(single, (latent, act), &device)?,
                Tensor::from_vec(per_env, (n, latent, act), &device)?,
            )?;
            t.policy.set_exploration_noise(noise)?;
        }
        r.finish()?;
        Ok(t)
    }
}

/// Soft actor-critic (SB3's `SAC`): the off-policy core with [`SacTrainer`].
pub type Sac<A, C, V> = OffPolicyAlgorithm<V, SacTrainer<A, C>>;

impl<A: GaussianActor, C: Critic, V: VecEnv> OffPolicyAlgorithm<V, SacTrainer<A, C>> {
    /// A SAC learner for `actor` and `critic` (the target critics are a duplicate) on `env`
    /// (same-step autoreset; a bounded `Box` action space). The environments are reset with
    /// the seed at the first [`OffPolicyAlgorithm::learn`].
    pub fn new(actor: A, critic: C, env: V, config: SacConfig) -> Result<Self> {
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
    pub fn last_train(&self) -> Option<SacTrainStats> {
        self.trainer().last_train()
    }
}

impl<V: VecEnv> OffPolicyAlgorithm<V, SacTrainer<SacActor, ContinuousCritic>> {
    /// The trained model's networks (actor, critics, target critics) with the environment's
    /// spaces, borrowed: [`SacNetworks::save`] writes them.
    pub fn networks(&self) -> SacNetworks<'_> {
        let t = self.trainer();
        SacNetworks {
            actor: t.actor(),
            critic: t.critic(),
            critic_target: t.critic_target(),
            observation_space: self.env().observation_space(),
            action_space: self.env().action_space(),
        }
    }

    /// Saves the model (actor, critics, target critics, spaces) into directory `dir` as one
    /// atomic, checksummed file tagged `rl-policy/SacPolicy/1` (see [`rl_policy::io`]);
    /// [`rl_policy::SacModel::load`] or [`rl_policy::SavedModel`] read it back, `enjoy` plays
    /// it. The training state (replay buffer, optimizers, α) is the checkpoint's:
    /// [`OffPolicyAlgorithm::save`].
    pub fn save_policy(&self, dir: impl AsRef<Path>) -> Result<()> {
        Ok(self.networks().save(dir)?)
    }
}
