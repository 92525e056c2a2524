//! A2C (synchronous advantage actor-critic) with Stable-Baselines3's exact semantics.
//!
//! [`A2c`] is generic over the policy ([`ActorCritic`]) and the environments ([`VecEnv`]). Its
//! two halves are public functions usable on recorded data: [`compute_gae`] and
//! [`bootstrap_truncated`] for the rollout side, [`a2c_update`] for one gradient step.
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

#[cfg(doc)]
use crate::buffer::compute_gae;
use crate::buffer::{bootstrap_truncated, explained_variance, RolloutBuffer, Transition};
use crate::callbacks::{Algorithm, Callback, Locals};
use crate::error::{AlgoError, Result};
use crate::logger::Logger;
use crate::optim::{
    all_finite, clip_grad_norm, progress_remaining, Adam, Optimizer, RmsProp, Schedule,
};
use candle_core::{DType, Device, Tensor, D};
use rand::SeedableRng;
use rand_chacha::ChaCha12Rng;
use rl_env::{AutoresetMode, Space, VecAction, VecEnv};
use rl_policy::{ActionDist, ActorCritic, StochasticPolicy};
use rl_tensor_bridge::{copy_tensor_to_f32, copy_tensor_to_i64, ObsBatcher};
use std::collections::VecDeque;
use std::path::Path;
use std::time::Instant;

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
    /// one from the OS (then [`A2c::seed`] tells which).
    pub seed: Option<u64>,
    /// Print/dump the logger every this many iterations; 0 never (100, as SB3's A2C).
    pub log_interval: u64,
    /// Finished episodes averaged into `rollout/ep_rew_mean` and `ep_len_mean` (100).
    pub stats_window_size: usize,
    /// Print the logger's tables on dump.
    pub verbose: bool,
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
        }
    }
}

impl A2cConfig {
    /// Checks every value, naming the first bad one.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(AlgoError::InvalidArgument(m));
        self.learning_rate.check_positive("learning_rate")?;
        if self.n_steps == 0 {
            return bad("n_steps must be at least 1".into());
        }
        for (name, v) in [("gamma", self.gamma), ("gae_lambda", self.gae_lambda)] {
            if !(0.0..=1.0).contains(&v) {
                return bad(format!("{name} must lie in [0, 1], got {v}"));
            }
        }
        for (name, v) in [("ent_coef", self.ent_coef), ("vf_coef", self.vf_coef)] {
            if !v.is_finite() || v < 0.0 {
                return bad(format!("{name} must be a finite number >= 0, got {v}"));
            }
        }
        for (name, v) in [
            ("max_grad_norm", self.max_grad_norm),
            ("rms_prop_eps", self.rms_prop_eps),
        ] {
            if !v.is_finite() || v <= 0.0 {
                return bad(format!("{name} must be a positive finite number, got {v}"));
            }
        }
        if self.stats_window_size == 0 {
            return bad("stats_window_size must be at least 1".into());
        }
        Ok(())
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
}

/// Coefficients of one A2C gradient step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct UpdateParams {
    /// Entropy coefficient.
    pub ent_coef: f64,
    /// Value-loss coefficient.
    pub vf_coef: f64,
    /// Global gradient-norm clip.
    pub max_grad_norm: f64,
    /// Normalize advantages (mean 0, unbiased std 1, +1e-8 on the std).
    pub normalize_advantage: bool,
}

/// One batch of training data: `B` samples in any fixed order.
#[derive(Clone, Copy, Debug)]
pub struct A2cBatch<'a> {
    /// Observations `[B, obs_dim]`.
    pub observations: &'a Tensor,
    /// Actions: `[B]` indices (any numeric dtype) for discrete spaces, `[B, d]` for Box spaces.
    pub actions: &'a Tensor,
    /// Advantages `[B]`.
    pub advantages: &'a [f32],
    /// Returns `[B]` (value targets).
    pub returns: &'a [f32],
}

/// The terms of SB3's A2C loss (scalar tensors, attached to the graph).
#[derive(Clone, Debug)]
pub struct A2cLoss {
    /// `pg + ent_coef * ent + vf_coef * vf`.
    pub total: Tensor,
    /// `-mean(A * log pi(a|s))`.
    pub policy_loss: Tensor,
    /// `mean((returns - V(s))^2)`.
    pub value_loss: Tensor,
    /// `-mean(entropy)`.
    pub entropy_loss: Tensor,
}

/// Statistics of one update.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct UpdateStats {
    /// Policy-gradient loss.
    pub policy_loss: f64,
    /// Value loss.
    pub value_loss: f64,
    /// Entropy loss (`-mean(entropy)`).
    pub entropy_loss: f64,
    /// Total loss.
    pub loss: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
}

/// `(A - mean(A)) / (std(A) + 1e-8)` with the unbiased std, as SB3 does with torch.
pub fn normalize_advantages(adv: &[f32]) -> Vec<f32> {
    let n = adv.len() as f64;
    let mean = adv.iter().map(|&a| f64::from(a)).sum::<f64>() / n;
    let var = adv
        .iter()
        .map(|&a| (f64::from(a) - mean).powi(2))
        .sum::<f64>()
        / (n - 1.0);
    let denom = var.sqrt() + 1e-8;
    adv.iter()
        .map(|&a| ((f64::from(a) - mean) / denom) as f32)
        .collect()
}

/// SB3's A2C loss on `batch` (one forward pass with gradients).
pub fn a2c_loss<P: ActorCritic + ?Sized>(
    policy: &P,
    batch: &A2cBatch<'_>,
    params: &UpdateParams,
) -> Result<A2cLoss> {
    let b = batch.observations.dim(0)?;
    if batch.advantages.len() != b || batch.returns.len() != b {
        return Err(AlgoError::InvalidArgument(format!(
            "A2C batch: {b} observations but {} advantages and {} returns",
            batch.advantages.len(),
            batch.returns.len()
        )));
    }
    let eval = policy.evaluate_actions(batch.observations, batch.actions)?;
    let dtype = eval.value.dtype();
    let device = eval.value.device();
    let adv_host;
    let adv = if params.normalize_advantage && b > 1 {
        adv_host = normalize_advantages(batch.advantages);
        &adv_host[..]
    } else {
        batch.advantages
    };
    let adv = Tensor::from_slice(adv, b, device)?.to_dtype(dtype)?;
    let returns = Tensor::from_slice(batch.returns, b, device)?.to_dtype(dtype)?;
    let policy_loss = adv.mul(&eval.log_prob)?.mean(D::Minus1)?.neg()?;
    let value_loss = returns.sub(&eval.value)?.sqr()?.mean(D::Minus1)?;
    let entropy_loss = eval.entropy.mean(D::Minus1)?.neg()?;
    let mut total = policy_loss.add(&value_loss.affine(params.vf_coef, 0.0)?)?;
    // A zero coefficient adds exactly zero: skipping it saves the entropy's backward pass.
    if params.ent_coef != 0.0 {
        total = total.add(&entropy_loss.affine(params.ent_coef, 0.0)?)?;
    }
    Ok(A2cLoss {
        total,
        policy_loss,
        value_loss,
        entropy_loss,
    })
}

/// One A2C gradient step on `batch`: loss, backward, `clip_grad_norm`, optimizer step (the
/// optimizer's learning rate is used as set). A non-finite loss or gradient norm leaves the
/// parameters untouched and returns [`AlgoError::Diverged`] naming `iteration`.
pub fn a2c_update<P: ActorCritic + ?Sized>(
    policy: &P,
    optimizer: &mut dyn Optimizer,
    batch: &A2cBatch<'_>,
    params: &UpdateParams,
    iteration: u64,
) -> Result<UpdateStats> {
    let loss = a2c_loss(policy, batch, params)?;
    let scalars = Tensor::stack(
        &[
            &loss.policy_loss,
            &loss.value_loss,
            &loss.entropy_loss,
            &loss.total,
        ],
        0,
    )?
    .to_dtype(DType::F64)?
    .to_vec1::<f64>()?;
    let diverged = |what: &str| AlgoError::Diverged {
        iteration,
        what: what.to_string(),
    };
    if !scalars[3].is_finite() {
        return Err(diverged("the loss"));
    }
    let mut grads = loss.total.backward()?;
    let grad_norm = clip_grad_norm(optimizer.vars(), &mut grads, params.max_grad_norm)?;
    if !grad_norm.is_finite() {
        return Err(diverged("the gradient norm"));
    }
    optimizer.step(&grads)?;
    Ok(UpdateStats {
        policy_loss: scalars[0],
        value_loss: scalars[1],
        entropy_loss: scalars[2],
        loss: scalars[3],
        grad_norm,
    })
}

/// Errors with [`AlgoError::Diverged`] when any variable holds a NaN or infinity.
pub fn check_finite_vars(vars: &[(String, candle_core::Var)], iteration: u64) -> Result<()> {
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

/// The actions a sub-environment received, in order, kept so that a checkpoint can rebuild
/// the environments' exact state by replaying them from the seeded reset.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum ActionLog {
    Discrete(Vec<i64>),
    Continuous(Vec<f32>),
}

/// How the policy's actions map to the environment's.
#[derive(Clone, Debug)]
enum ActionMap {
    /// Categorical index `k` is action `start + k`.
    Discrete { n: u64, start: i64 },
    /// Gaussian samples, clipped into `[low, high]` for the env (stored unclipped).
    Box { low: Vec<f32>, high: Vec<f32> },
}

/// Per-step host buffers, allocated once.
#[derive(Clone, Debug)]
struct Scratch {
    obs: Vec<f32>,
    actions: Vec<f32>,
    indices: Vec<i64>,
    env_discrete: Vec<i64>,
    env_box: Vec<f32>,
    rewards: Vec<f32>,
    values: Vec<f32>,
    log_probs: Vec<f32>,
    dones: Vec<bool>,
}

/// Synchronous advantage actor-critic (SB3's `A2C`).
pub struct A2c<P: ActorCritic, V: VecEnv> {
    pub(crate) policy: P,
    pub(crate) env: V,
    pub(crate) config: A2cConfig,
    pub(crate) seed: u64,
    pub(crate) optimizer: Box<dyn Optimizer>,
    pub(crate) rng: ChaCha12Rng,
    pub(crate) buffer: RolloutBuffer,
    pub(crate) logger: Logger,
    pub(crate) num_timesteps: u64,
    pub(crate) total_timesteps: u64,
    pub(crate) iterations: u64,
    pub(crate) n_updates: u64,
    /// Whether the environments were reset with the seed (at the first `learn`).
    pub(crate) started: bool,
    pub(crate) last_episode_starts: Vec<bool>,
    pub(crate) ep_returns: Vec<f64>,
    pub(crate) ep_lengths: Vec<u64>,
    pub(crate) ep_info: VecDeque<(f64, u64)>,
    pub(crate) action_log: ActionLog,
    obs_batcher: ObsBatcher,
    action_map: ActionMap,
    scratch: Scratch,
    last_stats: Option<UpdateStats>,
}

impl<P: ActorCritic, V: VecEnv> A2c<P, V> {
    /// An A2C learner for `policy` on `env` (same-step autoreset is required: truncated
    /// episodes bootstrap from their final observation). The environments are reset with the
    /// seed at the first [`A2c::learn`].
    pub fn new(policy: P, env: V, config: A2cConfig) -> Result<Self> {
        config.validate()?;
        if env.autoreset_mode() != AutoresetMode::SameStep {
            return Err(AlgoError::InvalidArgument(
                "A2C needs a VecEnv with AutoresetMode::SameStep (it bootstraps truncated \
                 episodes from their final observation)"
                    .into(),
            ));
        }
        let n_envs = env.num_envs();
        let obs_space = env.observation_space();
        let obs_dim = obs_space.flat_dim();
        let (action_map, act_dim, action_log) = match env.action_space() {
            Space::Discrete { n, start } => (
                ActionMap::Discrete {
                    n: *n,
                    start: *start,
                },
                1,
                ActionLog::Discrete(Vec::new()),
            ),
            Space::Box(b) => (
                ActionMap::Box {
                    low: b.low().to_vec(),
                    high: b.high().to_vec(),
                },
                b.flat_dim(),
                ActionLog::Continuous(Vec::new()),
            ),
        };
        let seed = config.seed.unwrap_or_else(rand::random);
        let lr = config.learning_rate.value(1.0);
        let vars = policy.trainable_vars();
        let optimizer: Box<dyn Optimizer> = if config.use_rms_prop {
            Box::new(RmsProp::new(vars, lr, 0.99, config.rms_prop_eps)?)
        } else {
            Box::new(Adam::new(vars, lr, config.rms_prop_eps)?)
        };
        let obs_batcher = ObsBatcher::new(obs_space, n_envs, DType::F32, policy.device().clone())?;
        let scratch = Scratch {
            obs: vec![0.0; n_envs * obs_dim],
            actions: vec![0.0; n_envs * act_dim],
            indices: vec![0; n_envs],
            env_discrete: vec![0; n_envs],
            env_box: vec![0.0; n_envs * act_dim],
            rewards: vec![0.0; n_envs],
            values: vec![0.0; n_envs],
            log_probs: vec![0.0; n_envs],
            dones: vec![false; n_envs],
        };
        Ok(A2c {
            buffer: RolloutBuffer::new(config.n_steps, n_envs, obs_dim.max(1), act_dim.max(1))?,
            logger: Logger::new(config.verbose),
            rng: ChaCha12Rng::seed_from_u64(seed),
            policy,
            env,
            seed,
            optimizer,
            num_timesteps: 0,
            total_timesteps: 0,
            iterations: 0,
            n_updates: 0,
            started: false,
            last_episode_starts: vec![true; n_envs],
            ep_returns: vec![0.0; n_envs],
            ep_lengths: vec![0; n_envs],
            ep_info: VecDeque::with_capacity(config.stats_window_size),
            action_log,
            obs_batcher,
            action_map,
            scratch,
            last_stats: None,
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &A2cConfig {
        &self.config
    }

    /// The effective seed (the configured one, or the one drawn when none was given).
    pub fn seed(&self) -> u64 {
        self.seed
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
        self.optimizer.as_ref()
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
        self.num_timesteps
    }

    /// Completed iterations (rollout + update).
    pub fn iterations(&self) -> u64 {
        self.iterations
    }

    /// Gradient steps taken.
    pub fn n_updates(&self) -> u64 {
        self.n_updates
    }

    /// Statistics of the last update.
    pub fn last_update(&self) -> Option<UpdateStats> {
        self.last_stats
    }

    /// Returns and lengths of the last `stats_window_size` finished episodes.
    pub fn episode_info(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        self.ep_info.iter().copied()
    }

    /// Gives back the policy and the environments.
    pub fn into_parts(self) -> (P, V) {
        (self.policy, self.env)
    }

    /// Trains until `num_timesteps` reaches `total_timesteps` (counted over the model's life,
    /// so a model restored from a checkpoint continues its run to the same total and a fresh
    /// model behaves as SB3's `learn`), calling `callbacks` as SB3 does. Any callback's
    /// `on_step` returning `false` stops training after that step.
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
        self.total_timesteps = total_timesteps;
        if !self.started {
            self.env.reset(Some(self.seed))?;
            self.last_episode_starts.fill(true);
            self.started = true;
        }
        let n = self.env.num_envs() as u64;
        // Room for the run's action log up front (capped at 16M entries), so steps do not
        // reallocate it; a failed reservation just leaves the log growing on demand.
        let vector_steps = total_timesteps
            .saturating_sub(self.num_timesteps)
            .div_ceil(n)
            .saturating_add(self.config.n_steps as u64);
        let width = match &self.action_log {
            ActionLog::Discrete(_) => n,
            ActionLog::Continuous(_) => self.scratch.env_box.len() as u64,
        };
        let entries = vector_steps.saturating_mul(width).min(1 << 24) as usize;
        let _ = match &mut self.action_log {
            ActionLog::Discrete(v) => v.try_reserve(entries),
            ActionLog::Continuous(v) => v.try_reserve(entries),
        };
        let start = Instant::now();
        let start_steps = self.num_timesteps;
        for cb in callbacks.iter_mut() {
            cb.on_training_start(&self.locals(false), logger)?;
        }
        while self.num_timesteps < total_timesteps {
            if !self.collect_rollout(callbacks, logger)? {
                break;
            }
            self.iterations += 1;
            if self.config.log_interval > 0
                && self.iterations.is_multiple_of(self.config.log_interval)
            {
                self.dump_logs(logger, start, start_steps);
            }
            self.train(logger)?;
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
            num_timesteps: self.num_timesteps,
            total_timesteps: self.total_timesteps,
            iteration: self.iterations,
            rewards,
            dones,
            infos,
        }
    }

    /// Fills the rollout buffer (continuing a partly filled one) and computes returns and
    /// advantages; `false` when a callback stopped training.
    fn collect_rollout(
        &mut self,
        callbacks: &mut [&mut dyn Callback],
        logger: &mut Logger,
    ) -> Result<bool> {
        while !self.buffer.is_full() {
            self.rollout_step()?;
            let mut keep_going = true;
            for cb in callbacks.iter_mut() {
                keep_going &= cb.on_step(&self.locals(true), logger)?;
            }
            if !keep_going {
                return Ok(false);
            }
        }
        let obs = self.obs_batcher.to_tensor(self.env.observations())?;
        let last_values = self.policy.predict_values(&obs)?;
        copy_tensor_to_f32(&last_values, &mut self.scratch.values)?;
        self.buffer.compute_returns_and_advantage(
            &self.scratch.values,
            &self.last_episode_starts,
            self.config.gamma,
            self.config.gae_lambda,
        )?;
        for cb in callbacks.iter_mut() {
            cb.on_rollout_end(&self.locals(false), logger)?;
        }
        Ok(true)
    }

    /// One vector step: act, step the envs, bootstrap truncations, store the transition.
    fn rollout_step(&mut self) -> Result<()> {
        let s = &mut self.scratch;
        s.obs.copy_from_slice(self.env.observations());
        let obs = self.obs_batcher.to_tensor(&s.obs)?;
        let (dist, values) = self.policy.forward(&obs)?;
        let actions = dist.sample(&mut self.rng)?;
        let log_probs = dist.log_prob(&actions)?;
        copy_tensor_to_f32(&values, &mut s.values)?;
        copy_tensor_to_f32(&log_probs, &mut s.log_probs)?;
        let vec_action = match &self.action_map {
            ActionMap::Discrete { n, start } => {
                copy_tensor_to_i64(&actions, &mut s.indices)?;
                for ((a, e), &k) in s
                    .actions
                    .iter_mut()
                    .zip(&mut s.env_discrete)
                    .zip(&s.indices)
                {
                    if k < 0 || k as u64 >= *n {
                        return Err(AlgoError::InvalidArgument(format!(
                            "the policy sampled action index {k} for a Discrete({n}) space"
                        )));
                    }
                    *a = k as f32;
                    *e = start + k;
                }
                if let ActionLog::Discrete(log) = &mut self.action_log {
                    log.extend_from_slice(&s.env_discrete);
                }
                VecAction::Discrete(&s.env_discrete)
            }
            ActionMap::Box { low, high } => {
                copy_tensor_to_f32(&actions, &mut s.actions)?;
                let d = low.len();
                for (i, (e, &a)) in s.env_box.iter_mut().zip(&s.actions).enumerate() {
                    // np.clip: max then min, NaN passes through (the env rejects it).
                    *e = a.max(low[i % d]).min(high[i % d]);
                }
                if let ActionLog::Continuous(log) = &mut self.action_log {
                    log.extend_from_slice(&s.env_box);
                }
                VecAction::Continuous(&s.env_box)
            }
        };
        self.env.step(vec_action)?;

        let buf = self.env.buffers();
        let gamma = self.config.gamma;
        for i in 0..s.rewards.len() {
            let reward = buf.rewards()[i];
            let done = buf.done(i);
            s.dones[i] = done;
            s.rewards[i] = reward as f32;
            self.ep_returns[i] += reward;
            self.ep_lengths[i] += 1;
            if !done {
                continue;
            }
            if self.ep_info.len() == self.config.stats_window_size {
                self.ep_info.pop_front();
            }
            self.ep_info
                .push_back((self.ep_returns[i], self.ep_lengths[i]));
            self.ep_returns[i] = 0.0;
            self.ep_lengths[i] = 0;
            if buf.truncated()[i] && !buf.terminated()[i] {
                let final_obs = buf.final_observation(i).ok_or_else(|| {
                    AlgoError::InvalidArgument(format!(
                        "sub-environment {i} was truncated but the VecEnv kept no final observation"
                    ))
                })?;
                let t = self.obs_batcher.one_to_tensor(final_obs)?.unsqueeze(0)?;
                let v = self.policy.predict_values(&t)?;
                let mut value = [0.0f32];
                copy_tensor_to_f32(&v, &mut value)?;
                s.rewards[i] = bootstrap_truncated(s.rewards[i], gamma, value[0]);
            }
        }
        self.buffer.add(&Transition {
            observations: &s.obs,
            actions: &s.actions,
            rewards: &s.rewards,
            episode_starts: &self.last_episode_starts,
            values: &s.values,
            log_probs: &s.log_probs,
        })?;
        self.last_episode_starts.copy_from_slice(&s.dones);
        self.num_timesteps += s.dones.len() as u64;
        Ok(())
    }

    /// The rollout as training tensors: observations `[B, obs_dim]` and actions.
    fn rollout_tensors(&self) -> Result<(Tensor, Tensor)> {
        let b = self.buffer.n_steps() * self.buffer.n_envs();
        let device = self.policy.device();
        let obs = Tensor::from_slice(
            self.buffer.observations(),
            (b, self.buffer.obs_dim()),
            device,
        )?;
        let actions = match self.action_map {
            ActionMap::Discrete { .. } => Tensor::from_slice(self.buffer.actions(), b, device)?,
            ActionMap::Box { .. } => {
                Tensor::from_slice(self.buffer.actions(), (b, self.buffer.act_dim()), device)?
            }
        };
        Ok((obs, actions))
    }

    /// One gradient step on the full rollout buffer, then logging (SB3's `A2C.train`).
    fn train(&mut self, logger: &mut Logger) -> Result<()> {
        let progress = progress_remaining(self.num_timesteps, self.total_timesteps);
        let lr = self.config.learning_rate.value(progress);
        self.optimizer.set_learning_rate(lr);
        logger.record("train/learning_rate", lr);
        let (obs, actions) = self.rollout_tensors()?;
        let batch = A2cBatch {
            observations: &obs,
            actions: &actions,
            advantages: self.buffer.advantages(),
            returns: self.buffer.returns(),
        };
        let params = self.config.update_params();
        let stats = a2c_update(
            &self.policy,
            self.optimizer.as_mut(),
            &batch,
            &params,
            self.iterations,
        )?;
        check_finite_vars(self.optimizer.vars(), self.iterations)?;
        self.n_updates += 1;
        self.last_stats = Some(stats);
        let ev = explained_variance(self.buffer.values(), self.buffer.returns());
        logger.record_int("train/n_updates", self.n_updates as i64);
        logger.record("train/explained_variance", ev);
        logger.record("train/entropy_loss", stats.entropy_loss);
        logger.record("train/policy_loss", stats.policy_loss);
        logger.record("train/value_loss", stats.value_loss);
        if matches!(self.action_map, ActionMap::Box { .. }) {
            // SB3 logs exp(log_std).mean() after the update.
            let one = obs.narrow(0, 0, 1)?;
            if let ActionDist::DiagGaussian(g) = self.policy.action_dist(&one)? {
                let std = g
                    .log_std()
                    .exp()?
                    .mean_all()?
                    .to_dtype(DType::F64)?
                    .to_scalar::<f64>()?;
                logger.record("train/std", std);
            }
        }
        self.buffer.reset();
        Ok(())
    }

    /// SB3's `dump_logs`: time and episode statistics, then the logger's dump.
    fn dump_logs(&self, logger: &mut Logger, start: Instant, start_steps: u64) {
        let elapsed = start.elapsed().as_secs_f64().max(f64::EPSILON);
        let fps = ((self.num_timesteps - start_steps) as f64 / elapsed).floor();
        logger.record_int("time/iterations", self.iterations as i64);
        logger.record_episode_means(&self.ep_info);
        logger.record_int("time/fps", fps as i64);
        logger.record_int("time/time_elapsed", elapsed as i64);
        logger.record_int("time/total_timesteps", self.num_timesteps as i64);
        logger.dump(self.num_timesteps);
    }

    /// Writes a checkpoint (atomically) from which [`A2c::load_checkpoint`] resumes this run
    /// bit for bit.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        crate::checkpoint::save(self, path.as_ref())
    }

    /// Restores a run saved with [`A2c::save`] (or a checkpoint callback) into `policy` (same
    /// architecture: parameters are set by name) and `env` (freshly built, not yet reset: the
    /// environments' state is rebuilt by replaying the recorded actions from the seeded reset,
    /// and checked against the saved observations).
    pub fn load_checkpoint(path: impl AsRef<Path>, policy: P, env: V) -> Result<Self> {
        crate::checkpoint::load(path.as_ref(), policy, env)
    }

    /// The device of the policy.
    pub fn device(&self) -> &Device {
        self.policy.device()
    }
}

impl<P: ActorCritic, V: VecEnv> Algorithm for A2c<P, V> {
    fn policy(&self) -> &dyn StochasticPolicy {
        &self.policy
    }

    fn num_timesteps(&self) -> u64 {
        self.num_timesteps
    }

    fn save_checkpoint(&self, path: &Path) -> Result<()> {
        self.save(path)
    }
}
