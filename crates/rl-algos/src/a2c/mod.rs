//! A2C (synchronous advantage actor-critic) with Stable-Baselines3's exact semantics.
//!
//! [`A2c`] is the on-policy core ([`OnPolicyAlgorithm`]) with A2C's trainer: one gradient step
//! on the whole rollout, RMSprop (or Adam), as SB3's `A2C.train`. The step itself is a public
//! function usable on recorded data: [`a2c_update`] (with [`a2c_loss`]).
//!
//! ```no_run
//! use candle_core::Device;
//! use rl_algos::a2c::{A2c, A2cConfig};
//! use rl_env::{AutoresetMode, SyncVecEnv, VecEnv};
//! use rl_policy::{MlpPolicy, MlpPolicyConfig};
//!
//! let env = SyncVecEnv::make("CartPole-v1", 8, AutoresetMode::SameStep)?;
//! let policy = MlpPolicy::new(
//!     env.observation_space(),
//!     env.action_space(),
//!     MlpPolicyConfig::default(),
//!     0,
//!     &Device::Cpu,
//! )?;
//! let config = A2cConfig { seed: Some(0), ..A2cConfig::default() };
//! let mut model = A2c::new(policy, env, config)?;
//! model.learn(100_000, &mut [])?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod fast;
mod update;

pub use fast::A2cFastUpdate;
pub use update::{
    a2c_loss, a2c_update, normalize_advantages, normalize_advantages_into, A2cBatch, A2cLoss,
    UpdateParams, UpdateStats,
};

use crate::buffer::{actions_to_tensor, explained_variance};
use crate::codec::{Reader, Writer};
use crate::error::{AlgoError, Result};
use crate::logger::Logger;
use crate::on_policy::{
    record_std, OnPolicyAlgorithm, OnPolicyTrainer, RolloutSettings, TrainContext,
};
use crate::optim::{Adam, Optimizer, RmsProp, Schedule};
use candle_core::{Tensor, Var};
use rl_env::VecEnv;
use rl_policy::ActorCritic;
use std::path::Path;

/// A2C hyperparameters, named as SB3's `A2C(...)` arguments, with SB3's defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct A2cConfig {
    /// Learning rate, or a schedule of `progress_remaining` (7e-4).
    pub learning_rate: Schedule,
    /// Steps per environment per update (5).
    pub n_steps: usize,
    /// Discount factor (0.99).
    pub gamma: f64,
    /// GAE lambda; 1.0 is the plain n-step advantage (1.0).
    pub gae_lambda: f64,
    /// Entropy coefficient of the loss (0.0).
    pub ent_coef: f64,
    /// Value-loss coefficient (0.5).
    pub vf_coef: f64,
    /// Global gradient-norm clip (0.5).
    pub max_grad_norm: f64,
    /// RMSprop epsilon, also Adam's when `use_rms_prop` is false (1e-5).
    pub rms_prop_eps: f64,
    /// RMSprop (alpha 0.99) when true, else Adam (true).
    pub use_rms_prop: bool,
    /// Normalize advantages with their mean and unbiased std (+1e-8) (false).
    pub normalize_advantage: bool,
    /// Seed of the environments (env `i` gets `seed + i`) and of action sampling; `None` draws
    /// one from the OS (then [`OnPolicyAlgorithm::seed`] tells which).
    pub seed: Option<u64>,
    /// Print/dump the logger every this many iterations; 0 never (100, as SB3's A2C).
    pub log_interval: u64,
    /// Finished episodes averaged into `rollout/ep_rew_mean` and `ep_len_mean` (100).
    pub stats_window_size: usize,
    /// Print the logger's tables on dump.
    pub verbose: bool,
    /// Generalized State-Dependent Exploration (false); the policy must be built with
    /// `MlpPolicyConfig { use_sde: true, .. }` (see [`rl_policy::sde`]).
    pub use_sde: bool,
    /// With gSDE, re-draw the exploration matrices every this many steps; `-1` (or any value
    /// `<= 0`) only at the start of each rollout (-1).
    pub sde_sample_freq: i64,
}

impl Default for A2cConfig {
    fn default() -> Self {
        A2cConfig {
            learning_rate: Schedule::Constant(7e-4),
            n_steps: 5,
            gamma: 0.99,
            gae_lambda: 1.0,
            ent_coef: 0.0,
            vf_coef: 0.5,
            max_grad_norm: 0.5,
            rms_prop_eps: 1e-5,
            use_rms_prop: true,
            normalize_advantage: false,
            seed: None,
            log_interval: 100,
            stats_window_size: 100,
            verbose: false,
            use_sde: false,
            sde_sample_freq: -1,
        }
    }
}

/// Checks that each named value is a finite number `>= 0`.
pub(crate) fn check_non_negative(values: &[(&str, f64)]) -> Result<()> {
    for &(name, v) in values {
        if !v.is_finite() || v < 0.0 {
            return Err(AlgoError::InvalidArgument(format!(
                "{name} must be a finite number >= 0, got {v}"
            )));
        }
    }
    Ok(())
}

/// Checks that each named value is a positive finite number.
pub(crate) fn check_positive(values: &[(&str, f64)]) -> Result<()> {
    for &(name, v) in values {
        if !v.is_finite() || v <= 0.0 {
            return Err(AlgoError::InvalidArgument(format!(
                "{name} must be a positive finite number, got {v}"
            )));
        }
    }
    Ok(())
}

impl A2cConfig {
    /// Checks every value, naming the first bad one.
    pub fn validate(&self) -> Result<()> {
        self.learning_rate.check_positive("learning_rate")?;
        self.settings().validate()?;
        check_non_negative(&[("ent_coef", self.ent_coef), ("vf_coef", self.vf_coef)])?;
        check_positive(&[
            ("max_grad_norm", self.max_grad_norm),
            ("rms_prop_eps", self.rms_prop_eps),
        ])
    }

    /// The rollout half of the configuration.
    pub fn settings(&self) -> RolloutSettings {
        RolloutSettings {
            n_steps: self.n_steps,
            gamma: self.gamma,
            gae_lambda: self.gae_lambda,
            seed: self.seed,
            log_interval: self.log_interval,
            stats_window_size: self.stats_window_size,
            verbose: self.verbose,
            use_sde: self.use_sde,
            sde_sample_freq: self.sde_sample_freq,
        }
    }

    /// The loss and clipping coefficients of [`a2c_update`].
    pub fn update_params(&self) -> UpdateParams {
        UpdateParams {
            ent_coef: self.ent_coef,
            vf_coef: self.vf_coef,
            max_grad_norm: self.max_grad_norm,
            normalize_advantage: self.normalize_advantage,
        }
    }

    fn write(&self, w: &mut Writer) {
        w.schedule(&self.learning_rate);
        w.usize(self.n_steps);
        for v in [
            self.gamma,
            self.gae_lambda,
            self.ent_coef,
            self.vf_coef,
            self.max_grad_norm,
            self.rms_prop_eps,
        ] {
            w.f64(v);
        }
        w.bool(self.use_rms_prop);
        w.bool(self.normalize_advantage);
        w.opt_u64(self.seed);
        w.u64(self.log_interval);
        w.usize(self.stats_window_size);
        w.bool(self.verbose);
        w.bool(self.use_sde);
        w.varint_i64(self.sde_sample_freq);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self> {
        let learning_rate = r.schedule("learning_rate")?;
        let n_steps = r.usize("n_steps")?;
        let mut f = [0.0; 6];
        for (v, name) in f.iter_mut().zip([
            "gamma",
            "gae_lambda",
            "ent_coef",
            "vf_coef",
            "max_grad_norm",
            "rms_prop_eps",
        ]) {
            *v = r.f64(name)?;
        }
        Ok(A2cConfig {
            learning_rate,
            n_steps,
            gamma: f[0],
            gae_lambda: f[1],
            ent_coef: f[2],
            vf_coef: f[3],
            max_grad_norm: f[4],
            rms_prop_eps: f[5],
            use_rms_prop: r.bool("use_rms_prop")?,
            normalize_advantage: r.bool("normalize_advantage")?,
            seed: r.opt_u64("seed")?,
            log_interval: r.u64("log_interval")?,
            stats_window_size: r.usize("stats_window_size")?,
            verbose: r.bool("verbose")?,
            use_sde: r.bool("use_sde")?,
            sde_sample_freq: r.varint_i64("sde_sample_freq")?,
        })
    }
}

/// A2C's half of the on-policy core: its configuration, its optimizer and SB3's `A2C.train`.
pub struct A2cTrainer {
    config: A2cConfig,
    optimizer: Box<dyn Optimizer>,
    last_stats: Option<UpdateStats>,
    /// The fast MLP path, set up at the first `train` when the policy is a standard MLP.
    fast: Option<A2cFastUpdate>,
    fast_checked: bool,
}

impl A2cTrainer {
    /// Statistics of the last update.
    pub fn last_update(&self) -> Option<UpdateStats> {
        self.last_stats
    }

    /// Whether the updates run on the fast MLP path ([`A2cFastUpdate`]); decided at the first
    /// update.
    pub fn uses_fast_path(&self) -> bool {
        self.fast.is_some()
    }
}

impl OnPolicyTrainer for A2cTrainer {
    type Config = A2cConfig;
    const NAME: &'static str = "A2C";

    fn new(config: A2cConfig, vars: Vec<(String, Var)>) -> Result<Self> {
        config.validate()?;
        let lr = config.learning_rate.value(1.0);
        let optimizer: Box<dyn Optimizer> = if config.use_rms_prop {
            Box::new(RmsProp::new(vars, lr, 0.99, config.rms_prop_eps)?)
        } else {
            Box::new(Adam::new(vars, lr, config.rms_prop_eps)?)
        };
        Ok(A2cTrainer {
            config,
            optimizer,
            last_stats: None,
            fast: None,
            fast_checked: false,
        })
    }

    fn config(&self) -> &A2cConfig {
        &self.config
    }

    fn settings(&self) -> RolloutSettings {
        self.config.settings()
    }

    fn optimizer(&self) -> &dyn Optimizer {
        self.optimizer.as_ref()
    }

    /// One gradient step on the full rollout buffer, then SB3's logging.
    fn train<P: ActorCritic>(
        &mut self,
        ctx: TrainContext<'_, P>,
        logger: &mut Logger,
    ) -> Result<()> {
        let lr = self.config.learning_rate.value(ctx.progress_remaining);
        self.optimizer.set_learning_rate(lr);
        logger.record("train/learning_rate", lr);
        let buffer = ctx.buffer;
        let b = buffer.n_steps() * buffer.n_envs();
        let params = self.config.update_params();
        if !self.fast_checked {
            self.fast_checked = true;
            // A standard MLP trains on the fast path; anything it cannot take (another
            // optimizer state, a device) stays on the generic one.
            self.fast = ctx
                .policy
                .mlp_layout()
                .and_then(|l| A2cFastUpdate::new(l, b, self.optimizer.as_ref()).ok());
        }
        let stats = match &mut self.fast {
            Some(fast) => fast.update(
                self.optimizer.as_mut(),
                buffer.observations(),
                buffer.actions(),
                buffer.advantages(),
                buffer.returns(),
                &params,
                ctx.iteration,
            )?,
            None => {
                let device = ctx.policy.device();
                let obs = Tensor::from_slice(buffer.observations(), (b, buffer.obs_dim()), device)?;
                let actions = actions_to_tensor(buffer.actions(), b, ctx.action_space, device)?;
                let batch = A2cBatch {
                    observations: &obs,
                    actions: &actions,
                    advantages: buffer.advantages(),
                    returns: buffer.returns(),
                };
                a2c_update(
                    ctx.policy,
                    self.optimizer.as_mut(),
                    &batch,
                    &params,
                    ctx.iteration,
                )?
            }
        };
        *ctx.n_updates = ctx.n_updates.saturating_add(1);
        self.last_stats = Some(stats);
        let ev = explained_variance(buffer.values(), buffer.returns());
        logger.record_int("train/n_updates", *ctx.n_updates as i64);
        logger.record("train/explained_variance", ev);
        logger.record("train/entropy_loss", stats.entropy_loss);
        logger.record("train/policy_loss", stats.policy_loss);
        logger.record("train/value_loss", stats.value_loss);
        match &self.fast {
            Some(fast) => {
                if let Some(std) = fast.engine().std_mean()? {
                    logger.record("train/std", std);
                }
                Ok(())
            }
            None => record_std(ctx.policy, buffer, logger),
        }
    }

    fn save_state(&self) -> Result<Vec<u8>> {
        let mut w = Writer::part();
        self.config.write(&mut w);
        w.optimizer(self.optimizer.as_ref())?;
        Ok(w.into_bytes())
    }

    fn load_state(bytes: &[u8], origin: &Path, vars: Vec<(String, Var)>) -> Result<Self> {
        let mut r = Reader::part(bytes, origin);
        let config = A2cConfig::read(&mut r)?;
        let mut trainer = A2cTrainer::new(config, vars)
            .map_err(|e| r.err(format!("stored configuration is invalid: {e}")))?;
        r.optimizer_into(trainer.optimizer.as_mut(), "optimizer")?;
        r.finish()?;
        Ok(trainer)
    }
}

/// Synchronous advantage actor-critic (SB3's `A2C`): the on-policy core with [`A2cTrainer`].
pub type A2c<P, V> = OnPolicyAlgorithm<P, V, A2cTrainer>;

impl<P: ActorCritic, V: VecEnv> OnPolicyAlgorithm<P, V, A2cTrainer> {
    /// An A2C learner for `policy` on `env` (same-step autoreset is required: truncated
    /// episodes bootstrap from their final observation). The environments are reset with the
    /// seed at the first [`OnPolicyAlgorithm::learn`].
    pub fn new(policy: P, env: V, config: A2cConfig) -> Result<Self> {
        Self::with_config(policy, env, config)
    }

    /// Statistics of the last update.
    pub fn last_update(&self) -> Option<UpdateStats> {
        self.trainer().last_update()
    }
}
