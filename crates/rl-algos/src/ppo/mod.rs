//! PPO (proximal policy optimization, clipped surrogate) with Stable-Baselines3's exact
//! semantics.
//!
//! [`Ppo`] is the on-policy core ([`OnPolicyAlgorithm`]) with PPO's trainer, SB3's `PPO.train`:
//! `n_epochs` passes over the rollout, each in a fresh random order (drawn from the run's
//! seeded generator) cut into consecutive minibatches of `batch_size` (the last may be
//! shorter); per minibatch the advantages are normalized (unless it holds one sample), the
//! clipped surrogate, the (optionally clipped) value loss and the entropy loss make one Adam
//! step after global-norm clipping; when `target_kl` is set and a minibatch's approximate KL
//! exceeds `1.5 * target_kl`, training stops before its step for the rest of this `train()`.
//! The step itself is a public function usable on recorded data: [`ppo_update`] (with
//! [`ppo_loss`]).
//!
//! ```no_run
//! use candle_core::Device;
//! use rl_algos::optim::Schedule;
//! use rl_algos::ppo::{Ppo, PpoConfig};
//! use rl_env::{AutoresetMode, SyncVecEnv, VecEnv};
//! use rl_policy::{MlpPolicy, MlpPolicyConfig};
//!
//! // rl-zoo's CartPole-v1 settings.
//! let env = SyncVecEnv::make("CartPole-v1", 8, AutoresetMode::SameStep)?;
//! let policy = MlpPolicy::new(
//!     env.observation_space(),
//!     env.action_space(),
//!     MlpPolicyConfig::default(),
//!     0,
//!     &Device::Cpu,
//! )?;
//! let config = PpoConfig {
//!     n_steps: 32,
//!     batch_size: 256,
//!     gae_lambda: 0.8,
//!     gamma: 0.98,
//!     n_epochs: 20,
//!     learning_rate: Schedule::LinearToZero(1e-3),
//!     clip_range: Schedule::LinearToZero(0.2),
//!     seed: Some(0),
//!     ..PpoConfig::default()
//! };
//! let mut model = Ppo::new(policy, env, config)?;
//! model.learn(100_000, &mut [])?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod fast;
mod fused;
mod update;

pub use fast::{PpoFastUpdate, PpoHostBatch};

pub use update::{ppo_loss, ppo_update, PpoBatch, PpoLoss, PpoParams, PpoStats};

use crate::a2c::{check_non_negative, check_positive};
use crate::buffer::{actions_to_tensor, explained_variance, RolloutBuffer};
use crate::codec::{Reader, Writer};
use crate::error::{AlgoError, Result};
use crate::logger::Logger;
use crate::on_policy::{
    record_std, OnPolicyAlgorithm, OnPolicyTrainer, RolloutSettings, TrainContext,
};
use crate::optim::{Adam, Optimizer, Schedule};
use candle_core::{Tensor, Var};
use rand::seq::SliceRandom;
use rl_env::VecEnv;
use rl_policy::ActorCritic;
use std::path::Path;

/// Most epochs per rollout [`PpoConfig::validate`] accepts: rl-zoo uses at most a few dozen,
/// and a configuration (or a forged checkpoint) asking for more would train for days.
pub const MAX_EPOCHS: usize = 10_000;

/// PPO hyperparameters, named as SB3's `PPO(...)` arguments, with SB3's defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct PpoConfig {
    /// Adam learning rate, or a schedule of `progress_remaining` (3e-4).
    pub learning_rate: Schedule,
    /// Steps per environment per rollout (2048).
    pub n_steps: usize,
    /// Minibatch size (64).
    pub batch_size: usize,
    /// Passes over each rollout (10).
    pub n_epochs: usize,
    /// Discount factor (0.99).
    pub gamma: f64,
    /// GAE lambda (0.95).
    pub gae_lambda: f64,
    /// Ratio clipping range, or a schedule (0.2).
    pub clip_range: Schedule,
    /// Value clipping range around the rollout values, or a schedule; `None` does not clip
    /// (SB3's default; a range is in the units of the returns).
    pub clip_range_vf: Option<Schedule>,
    /// Normalize each minibatch's advantages (true).
    pub normalize_advantage: bool,
    /// Entropy coefficient of the loss (0.0).
    pub ent_coef: f64,
    /// Value-loss coefficient (0.5).
    pub vf_coef: f64,
    /// Global gradient-norm clip (0.5).
    pub max_grad_norm: f64,
    /// Stop a `train()` once a minibatch's approximate KL exceeds `1.5 * target_kl`; `None`
    /// never stops early.
    pub target_kl: Option<f64>,
    /// Adam's epsilon (1e-5, what SB3's `ActorCriticPolicy` sets).
    pub adam_eps: f64,
    /// Seed of the environments (env `i` gets `seed + i`), of action sampling and of the
    /// minibatch shuffles; `None` draws one from the OS.
    pub seed: Option<u64>,
    /// Print/dump the logger every this many iterations; 0 never (1, as SB3's PPO).
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

impl Default for PpoConfig {
    fn default() -> Self {
        PpoConfig {
            learning_rate: Schedule::Constant(3e-4),
            n_steps: 2048,
            batch_size: 64,
            n_epochs: 10,
            gamma: 0.99,
            gae_lambda: 0.95,
            clip_range: Schedule::Constant(0.2),
            clip_range_vf: None,
            normalize_advantage: true,
            ent_coef: 0.0,
            vf_coef: 0.5,
            max_grad_norm: 0.5,
            target_kl: None,
            adam_eps: 1e-5,
            seed: None,
            log_interval: 1,
            stats_window_size: 100,
            verbose: false,
            use_sde: false,
            sde_sample_freq: -1,
        }
    }
}

impl PpoConfig {
    /// Checks every value, naming the first bad one.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(AlgoError::InvalidArgument(m));
        self.learning_rate.check_positive("learning_rate")?;
        self.settings().validate()?;
        self.clip_range.check_positive("clip_range")?;
        if let Some(s) = &self.clip_range_vf {
            s.check_positive("clip_range_vf")?;
        }
        if self.batch_size == 0 {
            return bad("batch_size must be at least 1".into());
        }
        if self.normalize_advantage && self.batch_size == 1 {
            // SB3 asserts the same (its issue #440): one sample normalizes to nothing.
            return bad("batch_size must be greater than 1 when normalize_advantage is on".into());
        }
        if self.n_epochs == 0 || self.n_epochs > MAX_EPOCHS {
            return bad(format!(
                "n_epochs must lie in 1..={MAX_EPOCHS}, got {}",
                self.n_epochs
            ));
        }
        check_non_negative(&[("ent_coef", self.ent_coef), ("vf_coef", self.vf_coef)])?;
        check_positive(&[
            ("max_grad_norm", self.max_grad_norm),
            ("adam_eps", self.adam_eps),
        ])?;
        if let Some(kl) = self.target_kl {
            check_positive(&[("target_kl", kl)])?;
        }
        Ok(())
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

    /// The coefficients of [`ppo_update`] at `progress_remaining`.
    pub fn params(&self, progress_remaining: f64) -> PpoParams {
        PpoParams {
            clip_range: self.clip_range.value(progress_remaining),
            clip_range_vf: self.clip_range_vf.map(|s| s.value(progress_remaining)),
            ent_coef: self.ent_coef,
            vf_coef: self.vf_coef,
            max_grad_norm: self.max_grad_norm,
            normalize_advantage: self.normalize_advantage,
            target_kl: self.target_kl,
        }
    }

    fn write(&self, w: &mut Writer) {
        w.schedule(&self.learning_rate);
        w.usize(self.n_steps);
        w.usize(self.batch_size);
        w.usize(self.n_epochs);
        w.f64(self.gamma);
        w.f64(self.gae_lambda);
        w.schedule(&self.clip_range);
        w.bool(self.clip_range_vf.is_some());
        if let Some(s) = &self.clip_range_vf {
            w.schedule(s);
        }
        w.bool(self.normalize_advantage);
        w.f64(self.ent_coef);
        w.f64(self.vf_coef);
        w.f64(self.max_grad_norm);
        w.opt_f64(self.target_kl);
        w.f64(self.adam_eps);
        w.opt_u64(self.seed);
        w.u64(self.log_interval);
        w.usize(self.stats_window_size);
        w.bool(self.verbose);
        w.bool(self.use_sde);
        w.varint_i64(self.sde_sample_freq);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self> {
        Ok(PpoConfig {
            learning_rate: r.schedule("learning_rate")?,
            n_steps: r.usize("n_steps")?,
            batch_size: r.usize("batch_size")?,
            n_epochs: r.usize("n_epochs")?,
            gamma: r.f64("gamma")?,
            gae_lambda: r.f64("gae_lambda")?,
            clip_range: r.schedule("clip_range")?,
            clip_range_vf: if r.bool("clip_range_vf flag")? {
                Some(r.schedule("clip_range_vf")?)
            } else {
                None
            },
            normalize_advantage: r.bool("normalize_advantage")?,
            ent_coef: r.f64("ent_coef")?,
            vf_coef: r.f64("vf_coef")?,
            max_grad_norm: r.f64("max_grad_norm")?,
            target_kl: r.opt_f64("target_kl")?,
            adam_eps: r.f64("adam_eps")?,
            seed: r.opt_u64("seed")?,
            log_interval: r.u64("log_interval")?,
            stats_window_size: r.usize("stats_window_size")?,
            verbose: r.bool("verbose")?,
            use_sde: r.bool("use_sde")?,
            sde_sample_freq: r.varint_i64("sde_sample_freq")?,
        })
    }
}

/// Statistics of one `train()` (SB3's logged `train/*` values).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PpoTrainStats {
    /// Mean clipped surrogate loss over the minibatches (`train/policy_gradient_loss`).
    pub policy_gradient_loss: f64,
    /// Mean value loss (`train/value_loss`).
    pub value_loss: f64,
    /// Mean entropy loss (`train/entropy_loss`).
    pub entropy_loss: f64,
    /// Mean approximate KL of the last epoch (`train/approx_kl`).
    pub approx_kl: f64,
    /// Mean clip fraction (`train/clip_fraction`).
    pub clip_fraction: f64,
    /// The last minibatch's total loss (`train/loss`).
    pub loss: f64,
    /// Epochs run (fewer than `n_epochs` after a `target_kl` stop).
    pub epochs: usize,
    /// Gradient steps taken.
    pub steps: usize,
    /// Whether `target_kl` stopped this `train()` early.
    pub stopped_early: bool,
}

/// Host buffers of one minibatch, sized once.
#[derive(Default)]
struct Minibatch {
    indices: Vec<usize>,
    obs: Vec<f32>,
    actions: Vec<f32>,
    old_values: Vec<f32>,
    old_log_probs: Vec<f32>,
    advantages: Vec<f32>,
    returns: Vec<f32>,
}

impl Minibatch {
    /// Gathers the samples `rows` of `buffer` (flat `[n_steps * n_envs]` indices).
    fn gather(&mut self, buffer: &RolloutBuffer, rows: &[usize]) {
        let (od, ad) = (buffer.obs_dim(), buffer.act_dim());
        let fields = [
            (&mut self.old_values, buffer.values()),
            (&mut self.old_log_probs, buffer.log_probs()),
            (&mut self.advantages, buffer.advantages()),
            (&mut self.returns, buffer.returns()),
        ];
        for (dst, src) in fields {
            dst.clear();
            dst.extend(rows.iter().map(|&i| src[i]));
        }
        self.obs.clear();
        self.actions.clear();
        for &i in rows {
            self.obs
                .extend_from_slice(&buffer.observations()[i * od..(i + 1) * od]);
            self.actions
                .extend_from_slice(&buffer.actions()[i * ad..(i + 1) * ad]);
        }
    }
}

/// PPO's half of the on-policy core: its configuration, Adam and SB3's `PPO.train`.
pub struct PpoTrainer {
    config: PpoConfig,
    optimizer: Adam,
    minibatch: Minibatch,
    last_stats: Option<PpoTrainStats>,
    /// The fast MLP path, set up at the first `train` when the policy is a standard MLP.
    fast: Option<PpoFastUpdate>,
    fast_checked: bool,
}

impl PpoTrainer {
    /// Statistics of the last `train()`.
    pub fn last_train(&self) -> Option<PpoTrainStats> {
        self.last_stats
    }

    /// Whether the minibatch steps run on the fast MLP path ([`PpoFastUpdate`]); decided at
    /// the first `train`.
    pub fn uses_fast_path(&self) -> bool {
        self.fast.is_some()
    }
}

impl OnPolicyTrainer for PpoTrainer {
    type Config = PpoConfig;
    const NAME: &'static str = "PPO";

    fn new(config: PpoConfig, vars: Vec<(String, Var)>) -> Result<Self> {
        config.validate()?;
        let optimizer = Adam::new(vars, config.learning_rate.value(1.0), config.adam_eps)?;
        Ok(PpoTrainer {
            config,
            optimizer,
            minibatch: Minibatch::default(),
            last_stats: None,
            fast: None,
            fast_checked: false,
        })
    }

    fn config(&self) -> &PpoConfig {
        &self.config
    }

    fn settings(&self) -> RolloutSettings {
        self.config.settings()
    }

    fn optimizer(&self) -> &dyn Optimizer {
        &self.optimizer
    }

    fn train<P: ActorCritic>(
        &mut self,
        ctx: TrainContext<'_, P>,
        logger: &mut Logger,
    ) -> Result<()> {
        let pr = ctx.progress_remaining;
        let lr = self.config.learning_rate.value(pr);
        self.optimizer.set_learning_rate(lr);
        logger.record("train/learning_rate", lr);
        let params = self.config.params(pr);
        let buffer = ctx.buffer;
        let n = buffer.n_steps() * buffer.n_envs();
        let device = ctx.policy.device().clone();
        if !self.fast_checked {
            self.fast_checked = true;
            // A standard MLP trains on the fast path; anything it cannot take stays generic.
            let max_batch = self.config.batch_size.min(n);
            self.fast = ctx
                .policy
                .mlp_layout()
                .and_then(|l| PpoFastUpdate::new(l, max_batch, &self.optimizer).ok());
        }
        let mb = &mut self.minibatch;
        mb.indices.clear();
        mb.indices.extend(0..n);
        let (mut pg, mut vl, mut ent, mut cf) = (0.0, 0.0, 0.0, 0.0);
        let (mut count, mut steps, mut epochs) = (0usize, 0usize, 0usize);
        let (mut kl_sum, mut kl_count, mut last_loss) = (0.0, 0usize, f64::NAN);
        let mut stopped = false;
        for _ in 0..self.config.n_epochs {
            // SB3 draws a fresh permutation per epoch (`np.random.permutation`).
            mb.indices.shuffle(&mut *ctx.rng);
            (kl_sum, kl_count) = (0.0, 0);
            let mut start = 0;
            while start < n {
                let end = (start + self.config.batch_size).min(n);
                let rows = std::mem::take(&mut mb.indices);
                mb.gather(buffer, &rows[start..end]);
                mb.indices = rows;
                let b = end - start;
                let stats = match &mut self.fast {
                    Some(fast) => {
                        let batch = PpoHostBatch {
                            observations: &mb.obs,
                            actions: &mb.actions,
                            old_values: &mb.old_values,
                            old_log_probs: &mb.old_log_probs,
                            advantages: &mb.advantages,
                            returns: &mb.returns,
                        };
                        fast.update(&mut self.optimizer, &batch, &params, ctx.iteration)?
                    }
                    None => {
                        let obs = Tensor::from_slice(&mb.obs, (b, buffer.obs_dim()), &device)?;
                        let actions = actions_to_tensor(&mb.actions, b, ctx.action_space, &device)?;
                        let batch = PpoBatch {
                            observations: &obs,
                            actions: &actions,
                            old_values: &mb.old_values,
                            old_log_probs: &mb.old_log_probs,
                            advantages: &mb.advantages,
                            returns: &mb.returns,
                        };
                        ppo_update(
                            ctx.policy,
                            &mut self.optimizer,
                            &batch,
                            &params,
                            ctx.iteration,
                        )?
                    }
                };
                pg += stats.policy_loss;
                vl += stats.value_loss;
                ent += stats.entropy_loss;
                cf += stats.clip_fraction;
                kl_sum += stats.approx_kl;
                kl_count += 1;
                count += 1;
                last_loss = stats.loss;
                if !stats.stepped {
                    stopped = true;
                    break;
                }
                steps += 1;
                start = end;
            }
            epochs += 1;
            *ctx.n_updates = ctx.n_updates.saturating_add(1);
            if stopped {
                break;
            }
        }
        let mean = |sum: f64, k: usize| sum / k.max(1) as f64;
        let stats = PpoTrainStats {
            policy_gradient_loss: mean(pg, count),
            value_loss: mean(vl, count),
            entropy_loss: mean(ent, count),
            approx_kl: mean(kl_sum, kl_count),
            clip_fraction: mean(cf, count),
            loss: last_loss,
            epochs,
            steps,
            stopped_early: stopped,
        };
        self.last_stats = Some(stats);
        logger.record("train/entropy_loss", stats.entropy_loss);
        logger.record("train/policy_gradient_loss", stats.policy_gradient_loss);
        logger.record("train/value_loss", stats.value_loss);
        logger.record("train/approx_kl", stats.approx_kl);
        logger.record("train/clip_fraction", stats.clip_fraction);
        logger.record("train/loss", stats.loss);
        logger.record(
            "train/explained_variance",
            explained_variance(buffer.values(), buffer.returns()),
        );
        match &self.fast {
            Some(fast) => {
                if let Some(std) = fast.engine().std_mean()? {
                    logger.record("train/std", std);
                }
            }
            None => record_std(ctx.policy, buffer, logger)?,
        }
        logger.record_int("train/n_updates", *ctx.n_updates as i64);
        logger.record("train/clip_range", params.clip_range);
        if let Some(cv) = params.clip_range_vf {
            logger.record("train/clip_range_vf", cv);
        }
        Ok(())
    }

    fn save_state(&self) -> Result<Vec<u8>> {
        let mut w = Writer::part();
        self.config.write(&mut w);
        w.optimizer(&self.optimizer)?;
        Ok(w.into_bytes())
    }

    fn load_state(bytes: &[u8], origin: &Path, vars: Vec<(String, Var)>) -> Result<Self> {
        let mut r = Reader::part(bytes, origin);
        let config = PpoConfig::read(&mut r)?;
        let mut trainer = PpoTrainer::new(config, vars)
            .map_err(|e| r.err(format!("stored configuration is invalid: {e}")))?;
        r.optimizer_into(&mut trainer.optimizer, "optimizer")?;
        r.finish()?;
        Ok(trainer)
    }
}

/// Proximal policy optimization (SB3's `PPO`): the on-policy core with [`PpoTrainer`].
pub type Ppo<P, V> = OnPolicyAlgorithm<P, V, PpoTrainer>;

impl<P: ActorCritic, V: VecEnv> OnPolicyAlgorithm<P, V, PpoTrainer> {
    /// A PPO learner for `policy` on `env` (same-step autoreset is required: truncated
    /// episodes bootstrap from their final observation). The environments are reset with the
    /// seed at the first [`OnPolicyAlgorithm::learn`].
    pub fn new(policy: P, env: V, config: PpoConfig) -> Result<Self> {
        Self::with_config(policy, env, config)
    }

    /// Statistics of the last `train()`.
    pub fn last_train(&self) -> Option<PpoTrainStats> {
        self.trainer().last_train()
    }
}
