//! REINFORCE: Monte-Carlo policy gradient over whole episodes (Williams 1992), as in the
//! classic PyTorch tutorial loop:
//!
//! 1. play one episode with actions sampled from the policy;
//! 2. compute the discounted returns `G_t` ([`crate::returns::discounted_returns`]);
//! 3. optionally normalize them, `(G - mean) / (std + eps)` with the unbiased std and
//!    `eps` = machine epsilon of `f32` (the tutorial's `np.finfo(np.float32).eps`);
//! 4. optionally subtract a learned baseline `V(s_t)` ([`BaselineConfig`]: a separate small
//!    value network trained on the MSE to `G_t`; with normalization on, the advantages
//!    `G_t - V(s_t)` are what gets normalized);
//! 5. one Adam step on `loss = -sum_t log pi(a_t | s_t) * w_t` (a sum over the episode, as in
//!    the tutorial), computed with one batched forward pass over the episode.
//!
//! Any [`StochasticPolicy`] trains (it only has to give log-probabilities). Runs are
//! deterministic given the seed: action sampling, baseline initialization and the seed of every
//! episode's `reset` all come from one ChaCha generator, which is what lets a checkpoint resume a
//! run bit for bit without saving the environment.

mod baseline;
mod checkpoint;

pub use baseline::BaselineConfig;

use crate::callbacks::{Algorithm, Callback, Locals};
use crate::error::{AlgoError, Result};
use crate::logger::Logger;
use crate::optim::{clip_grad_norm, Adam, Optimizer};
use crate::returns::{discounted_returns, normalize_in_place};
use crate::run::{EpisodeWindow, RunState};
use baseline::ValueNet;
use candle_core::{DType, Tensor};
use rand::RngCore;
use rl_env::{Env, Seed, Space};
use rl_policy::{Policy, StochasticPolicy};
use rl_tensor_bridge::{batch_to_tensor, ActionBuffer};
use std::path::Path;
use std::time::Instant;

/// Hyperparameters of [`Reinforce`]; `Default` follows the PyTorch tutorial.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ReinforceConfig {
    /// Adam learning rate of the policy (tutorial: 1e-2).
    pub learning_rate: f64,
    /// Discount factor (0.99).
    pub gamma: f64,
    /// Normalize the per-episode weights (returns, or advantages with a baseline) to zero mean
    /// and unit std (tutorial: on).
    pub normalize_returns: bool,
    /// The `eps` of the normalization (tutorial: `f32::EPSILON`).
    pub normalize_eps: f64,
    /// A learned value baseline; `None` (the tutorial) uses the returns themselves.
    pub baseline: Option<BaselineConfig>,
    /// Adam's `eps` (PyTorch's default 1e-8); betas are PyTorch's (0.9, 0.999).
    pub adam_eps: f64,
    /// Global-norm gradient clipping of the policy (and, separately, the baseline); `None`
    /// (the tutorial) does not clip.
    pub max_grad_norm: Option<f64>,
    /// An episode still running after this many steps is cut there and trained on (the
    /// tutorial's `range(1, 10000)` loop bound), which bounds memory for environments without
    /// a time limit. `None` never cuts.
    pub max_episode_steps: Option<u64>,
    /// Seed of everything random; `None` draws one.
    pub seed: Option<u64>,
    /// Record and dump training statistics every this many episodes (0: never).
    pub log_interval: u64,
    /// Number of recent episodes `rollout/ep_rew_mean` averages (SB3: 100).
    pub stats_window_size: usize,
    /// Print the logger's tables on stdout.
    pub verbose: bool,
}

impl Default for ReinforceConfig {
    fn default() -> Self {
        ReinforceConfig {
            learning_rate: 1e-2,
            gamma: 0.99,
            normalize_returns: true,
            normalize_eps: f64::from(f32::EPSILON),
            baseline: None,
            adam_eps: 1e-8,
            max_grad_norm: None,
            max_episode_steps: Some(100_000),
            seed: None,
            log_interval: 10,
            stats_window_size: 100,
            verbose: false,
        }
    }
}

impl ReinforceConfig {
    /// Checks every value, naming the first bad one.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str, v: f64| {
            Err(AlgoError::InvalidArgument(format!(
                "REINFORCE {what} is out of range: {v}"
            )))
        };
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return bad("learning_rate", self.learning_rate);
        }
        if !(0.0..=1.0).contains(&self.gamma) {
            return bad("gamma (must lie in [0, 1])", self.gamma);
        }
        if !(self.normalize_eps.is_finite() && self.normalize_eps >= 0.0) {
            return bad("normalize_eps", self.normalize_eps);
        }
        if !(self.adam_eps.is_finite() && self.adam_eps > 0.0) {
            return bad("adam_eps", self.adam_eps);
        }
        if let Some(m) = self.max_grad_norm {
            if !(m.is_finite() && m > 0.0) {
                return bad("max_grad_norm", m);
            }
        }
        if self.max_episode_steps == Some(0) {
            return bad("max_episode_steps", 0.0);
        }
        if let Some(b) = &self.baseline {
            if !(b.learning_rate.is_finite() && b.learning_rate > 0.0) {
                return bad("baseline learning_rate", b.learning_rate);
            }
        }
        if self.stats_window_size == 0 {
            return bad("stats_window_size", 0.0);
        }
        Ok(())
    }
}

/// How long [`Reinforce::learn`] trains, counted over the model's life (a model restored from
/// a checkpoint continues to the same total).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Budget {
    /// Until this many episodes have been trained on.
    Episodes(u64),
    /// Until this many environment steps have been taken; the episode that crosses the total
    /// is finished and trained on, so training may overrun by part of an episode.
    Timesteps(u64),
}

/// Statistics of the last update.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct UpdateStats {
    /// The policy-gradient loss `-sum log pi * w`.
    pub policy_loss: f64,
    /// The baseline's MSE, when there is a baseline.
    pub value_loss: Option<f64>,
    /// The policy's gradient norm before clipping, when clipping is on.
    pub grad_norm: Option<f64>,
    /// Undiscounted return of the episode trained on.
    pub episode_return: f64,
    /// Its length.
    pub episode_length: u64,
}

/// The baseline network and its optimizer.
struct Baseline {
    net: ValueNet,
    optimizer: Adam,
}

/// Where the current episode stands (part of a checkpoint).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct EpisodeProgress {
    /// An episode has been started and not yet trained on.
    in_episode: bool,
    /// It has ended (or was cut) and awaits its update.
    finished: bool,
    /// The seed its reset used.
    seed: u64,
    /// Its undiscounted return so far.
    ep_return: f64,
}

/// Per-episode buffers, reused from episode to episode.
#[derive(Default)]
struct Episode {
    /// Observations before each step, `[len, obs_dim]`.
    obs: Vec<f32>,
    /// Discrete action indices, `[len]`.
    indices: Vec<u32>,
    /// Unclipped continuous actions, `[len, act_dim]`.
    actions: Vec<f32>,
    /// Rewards, `[len]`.
    rewards: Vec<f64>,
    returns: Vec<f64>,
    advantages: Vec<f64>,
    weights: Vec<f32>,
    targets: Vec<f32>,
    values: Vec<f32>,
}

/// Monte-Carlo policy gradient on a single environment; see the [module docs](self).
pub struct Reinforce<P: StochasticPolicy, E: Env> {
    policy: P,
    env: E,
    config: ReinforceConfig,
    run: RunState,
    optimizer: Adam,
    baseline: Option<Baseline>,
    episodes: u64,
    ep_info: EpisodeWindow,
    progress: EpisodeProgress,
    episode: Episode,
    /// The observation the next step acts on.
    obs: Vec<f32>,
    obs_dim: usize,
    act_dim: usize,
    discrete: bool,
    logger: Logger,
    actions: ActionBuffer,
    last_stats: Option<UpdateStats>,
}

impl<P: StochasticPolicy, E: Env> Reinforce<P, E> {
    /// A REINFORCE learner for `policy` on `env`. The observation space must be flat (its
    /// flat dimension is the policy's input width); discrete policies output indices `0..n`.
    pub fn new(policy: P, env: E, config: ReinforceConfig) -> Result<Self> {
        config.validate()?;
        let obs_dim = env.observation_space().flat_dim();
        if obs_dim == 0 {
            return Err(AlgoError::InvalidArgument(
                "REINFORCE needs observations with at least one element".into(),
            ));
        }
        if matches!(env.action_space(), Space::Box(b) if b.flat_dim() == 0) {
            return Err(AlgoError::InvalidArgument(
                "REINFORCE needs a Box action space with at least one element".into(),
            ));
        }
        if policy.uses_sde() {
            // Nothing here would re-draw the exploration matrices: one draw would last the
            // whole run.
            return Err(AlgoError::InvalidArgument(
                "REINFORCE does not support gSDE policies (use_sde); use A2C or PPO".into(),
            ));
        }
        let mut run = RunState::new(config.seed);
        let optimizer = Adam::new(
            policy.trainable_vars(),
            config.learning_rate,
            config.adam_eps,
        )?;
        let baseline = match &config.baseline {
            Some(b) => {
                let net = ValueNet::new(obs_dim, b, &mut run.rng, policy.device())?;
                let optimizer = Adam::new(net.vars(), b.learning_rate, config.adam_eps)?;
                Some(Baseline { net, optimizer })
            }
            None => None,
        };
        let actions = ActionBuffer::new(env.action_space(), 1);
        let act_dim = env.action_space().flat_dim();
        let discrete = matches!(env.action_space(), Space::Discrete { .. });
        Ok(Reinforce {
            logger: Logger::new(config.verbose),
            ep_info: EpisodeWindow::new(config.stats_window_size),
            policy,
            env,
            run,
            optimizer,
            baseline,
            episodes: 0,
            obs_dim,
            act_dim,
            discrete,
            obs: vec![0.0; obs_dim],
            actions,
            progress: EpisodeProgress::default(),
            episode: Episode::default(),
            last_stats: None,
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ReinforceConfig {
        &self.config
    }

    /// The effective seed (the configured one, or the one drawn when none was given).
    pub fn seed(&self) -> u64 {
        self.run.seed
    }

    /// The policy.
    pub fn policy_ref(&self) -> &P {
        &self.policy
    }

    /// The environment.
    pub fn env(&self) -> &E {
        &self.env
    }

    /// The policy's optimizer.
    pub fn optimizer(&self) -> &dyn Optimizer {
        &self.optimizer
    }

    /// `V(obs)` `[batch]` of the learned baseline, if there is one.
    pub fn baseline_values(&self, obs: &Tensor) -> Result<Option<Tensor>> {
        self.baseline
            .as_ref()
            .map(|b| b.net.forward(obs))
            .transpose()
    }

    /// The logger (values recorded since the last dump).
    pub fn logger(&self) -> &Logger {
        &self.logger
    }

    /// The logger, mutably (to configure outputs, e.g. `*algo.logger_mut() =
    /// Logger::new(true).with_csv(path)?`).
    pub fn logger_mut(&mut self) -> &mut Logger {
        &mut self.logger
    }

    /// Environment steps taken so far.
    pub fn num_timesteps(&self) -> u64 {
        self.run.num_timesteps
    }

    /// Episodes trained on so far.
    pub fn episodes(&self) -> u64 {
        self.episodes
    }

    /// Statistics of the last update.
    pub fn last_update(&self) -> Option<UpdateStats> {
        self.last_stats
    }

    /// Returns and lengths of the last `stats_window_size` finished episodes.
    pub fn episode_info(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        self.ep_info.episodes().iter().copied()
    }

    /// Gives back the policy and the environment.
    pub fn into_parts(self) -> (P, E) {
        (self.policy, self.env)
    }

    /// Trains until `budget` is reached, calling `callbacks` as SB3 does (`on_step` after
    /// every environment step, `on_rollout_end` after every episode, before its update). Any
    /// callback's `on_step` returning `false` stops training at once; the episode it
    /// interrupted is not trained on yet: the next `learn` completes it first (as SB3's A2C
    /// continues a partly collected rollout), whatever its budget.
    pub fn learn(&mut self, budget: Budget, callbacks: &mut [&mut dyn Callback]) -> Result<()> {
        // Callbacks get `&self` and the logger at once: the logger lives outside `self` here.
        let mut logger = std::mem::take(&mut self.logger);
        let result = self.learn_with(budget, callbacks, &mut logger);
        self.logger = logger;
        result
    }

    fn learn_with(
        &mut self,
        budget: Budget,
        callbacks: &mut [&mut dyn Callback],
        logger: &mut Logger,
    ) -> Result<()> {
        self.run.total_timesteps = match budget {
            Budget::Timesteps(n) => n,
            Budget::Episodes(_) => 0,
        };
        for cb in callbacks.iter_mut() {
            cb.on_training_start(&self.locals(&[], &[], &[]), logger)?;
        }
        let start = Instant::now();
        let start_steps = self.run.num_timesteps;
        loop {
            // An episode left unfinished by a stopping callback is always completed first.
            let reached = match budget {
                Budget::Episodes(n) => self.episodes >= n,
                Budget::Timesteps(n) => self.run.num_timesteps >= n,
            };
            if (reached && !self.progress.in_episode) || !self.play_episode(callbacks, logger)? {
                break;
            }
            for cb in callbacks.iter_mut() {
                cb.on_rollout_end(&self.locals(&[], &[], &[]), logger)?;
            }
            self.update()?;
            self.progress = EpisodeProgress::default();
            self.episodes = self.episodes.saturating_add(1);
            if self.config.log_interval > 0
                && self.episodes.is_multiple_of(self.config.log_interval)
            {
                self.record_logs(logger, start, start_steps);
            }
        }
        for cb in callbacks.iter_mut() {
            cb.on_training_end(&self.locals(&[], &[], &[]), logger)?;
        }
        Ok(())
    }

    fn locals<'a>(
        &'a self,
        rewards: &'a [f64],
        dones: &'a [bool],
        infos: &'a [rl_env::Info],
    ) -> Locals<'a> {
        Locals {
            algo: self,
            num_timesteps: self.run.num_timesteps,
            total_timesteps: self.run.total_timesteps,
            iteration: self.episodes,
            rewards,
            dones,
            infos,
        }
    }

    /// Plays the current episode (a new one, or the one a stopping callback interrupted) to
    /// its end in the episode buffers; `false` when a callback stopped training.
    fn play_episode(
        &mut self,
        callbacks: &mut [&mut dyn Callback],
        logger: &mut Logger,
    ) -> Result<bool> {
        if !self.progress.in_episode {
            let ep = &mut self.episode;
            ep.obs.clear();
            ep.indices.clear();
            ep.actions.clear();
            ep.rewards.clear();
            // Every episode is seeded from the run's generator: the run is a function of the
            // seed, and a checkpoint can replay an unfinished episode from its seed.
            let seed = self.run.rng.next_u64();
            self.env
                .reset_into(Some(&Seed::from(seed)), &mut self.obs)?;
            self.progress = EpisodeProgress {
                in_episode: true,
                finished: false,
                seed,
                ep_return: 0.0,
            };
        }
        let device = self.policy.device().clone();
        while !self.progress.finished {
            let obs = batch_to_tensor(&self.obs, 1, self.obs_dim, &device)?;
            let action = self.policy.action_dist(&obs)?.sample(&mut self.run.rng)?;
            self.actions.fill_from_policy(&action)?;
            let env_action = self.actions.as_vec_action().get(0, self.act_dim);
            let ep = &mut self.episode;
            ep.obs.extend_from_slice(&self.obs);
            let policy_action = self.actions.policy_actions();
            if self.discrete {
                // Exact: an index of a Discrete(n) space with n < 2^32 (MlpPolicy's limit).
                ep.indices.push(policy_action[0] as u32);
            } else {
                ep.actions.extend_from_slice(policy_action);
            }
            let out = self.env.step_into(env_action, &mut self.obs)?;
            ep.rewards.push(out.reward);
            self.progress.ep_return += out.reward;
            self.run.num_timesteps = self.run.num_timesteps.saturating_add(1);
            let cut = self
                .config
                .max_episode_steps
                .is_some_and(|m| ep.rewards.len() as u64 >= m);
            let done = out.done();
            if done {
                let length = ep.rewards.len() as u64;
                let stats = out
                    .info
                    .episode
                    .map_or((self.progress.ep_return, length), |s| {
                        (s.r#return, s.length)
                    });
                self.ep_info.push(stats.0, stats.1);
            }
            self.progress.finished = done || cut;
            let mut keep_going = true;
            {
                let rewards = [out.reward];
                let dones = [done];
                let locals = self.locals(&rewards, &dones, std::slice::from_ref(&out.info));
                for cb in callbacks.iter_mut() {
                    keep_going &= cb.on_step(&locals, logger)?;
                }
            }
            if !keep_going {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// One gradient step on the episode in the buffers.
    fn update(&mut self) -> Result<()> {
        let iteration = self.episodes.saturating_add(1);
        let ep = &mut self.episode;
        let len = ep.rewards.len();
        ep.returns.resize(len, 0.0);
        discounted_returns(&ep.rewards, self.config.gamma, &mut ep.returns)?;
        if ep.returns.iter().any(|g| !g.is_finite()) {
            return Err(AlgoError::Diverged {
                iteration,
                what: "the discounted return (a reward is not finite)".into(),
            });
        }
        let device = self.policy.device().clone();
        let obs = batch_to_tensor(&ep.obs, len, self.obs_dim, &device)?;
        let actions = if ep.indices.len() == len {
            Tensor::from_slice(&ep.indices, len, &device)?
        } else {
            batch_to_tensor(&ep.actions, len, ep.actions.len() / len.max(1), &device)?
        };
        let log_probs = self.policy.action_dist(&obs)?.log_prob(&actions)?;

        // Weights of the log-probabilities: returns, or advantages over the baseline.
        let mut value_loss = None;
        ep.advantages.clear();
        ep.advantages.extend_from_slice(&ep.returns);
        if let Some(b) = &self.baseline {
            let values = b.net.forward(&obs)?;
            ep.values.resize(len, 0.0);
            rl_tensor_bridge::copy_tensor_to_f32(&values, &mut ep.values)?;
            for (a, &v) in ep.advantages.iter_mut().zip(&ep.values) {
                *a -= f64::from(v);
            }
            ep.targets.clear();
            ep.targets.extend(ep.returns.iter().map(|&g| g as f32));
            let targets = Tensor::from_slice(&ep.targets, len, &device)?;
            value_loss = Some(values.sub(&targets)?.sqr()?.mean_all()?);
        }
        if self.config.normalize_returns {
            normalize_in_place(&mut ep.advantages, self.config.normalize_eps);
        }
        ep.weights.clear();
        // Negated here so the loss is a plain weighted sum (one op fewer to run and backprop).
        ep.weights
            .extend(ep.advantages.iter().map(|&w| -(w as f32)));
        let weights = Tensor::from_slice(&ep.weights, len, &device)?.to_dtype(log_probs.dtype())?;
        let policy_loss = log_probs.mul(&weights)?.sum_all()?;

        let policy_loss_value = scalar(&policy_loss)?;
        if !policy_loss_value.is_finite() {
            return Err(AlgoError::Diverged {
                iteration,
                what: "policy loss".into(),
            });
        }
        let (total, value_loss_value) = match &value_loss {
            Some(v) => {
                let vl = scalar(v)?;
                if !vl.is_finite() {
                    return Err(AlgoError::Diverged {
                        iteration,
                        what: "baseline value loss".into(),
                    });
                }
                // Disjoint parameters: one backward pass serves both optimizers.
                (
                    policy_loss.add(&v.to_dtype(policy_loss.dtype())?)?,
                    Some(vl),
                )
            }
            None => (policy_loss, None),
        };
        let mut grads = total.backward()?;
        let mut grad_norm = None;
        if let Some(max) = self.config.max_grad_norm {
            let norm = clip_grad_norm(self.optimizer.vars(), &mut grads, max)?;
            if !norm.is_finite() {
                return Err(AlgoError::Diverged {
                    iteration,
                    what: "policy gradient norm".into(),
                });
            }
            grad_norm = Some(norm);
            if let Some(b) = &self.baseline {
                clip_grad_norm(b.optimizer.vars(), &mut grads, max)?;
            }
        }
        self.optimizer.step(&grads)?;
        if let Some(b) = self.baseline.as_mut() {
            b.optimizer.step(&grads)?;
        }
        self.last_stats = Some(UpdateStats {
            policy_loss: policy_loss_value,
            value_loss: value_loss_value,
            grad_norm,
            episode_return: self.episode.rewards.iter().sum(),
            episode_length: len as u64,
        });
        Ok(())
    }

    fn record_logs(&self, logger: &mut Logger, start: Instant, start_steps: u64) {
        let to_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        logger.record_episode_means(self.ep_info.episodes());
        let elapsed = start.elapsed().as_secs_f64();
        let steps = self.run.num_timesteps - start_steps;
        let fps = if elapsed > 0.0 {
            steps as f64 / elapsed
        } else {
            0.0
        };
        logger.record_int("time/episodes", to_i64(self.episodes));
        logger.record_int("time/fps", fps as i64);
        logger.record_int("time/time_elapsed", elapsed as i64);
        logger.record_int("time/total_timesteps", to_i64(self.run.num_timesteps));
        if let Some(s) = self.last_stats {
            logger.record("train/policy_loss", s.policy_loss);
            if let Some(v) = s.value_loss {
                logger.record("train/value_loss", v);
            }
            if let Some(g) = s.grad_norm {
                logger.record("train/grad_norm", g);
            }
        }
        logger.record("train/learning_rate", self.optimizer.learning_rate());
        logger.record_int("train/n_updates", to_i64(self.episodes));
        logger.dump(self.run.num_timesteps);
    }

    /// Writes a checkpoint (weights, Adam states, RNG, counters, configuration) atomically;
    /// [`Reinforce::load`] resumes from it bit for bit.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        checkpoint::save(self, path.as_ref())
    }

    /// Restores a learner saved with [`Reinforce::save`] into `policy` (built with the same
    /// architecture; its weights are overwritten) and `env` (any environment of the same
    /// spaces: every episode is reset with a seed from the restored generator).
    pub fn load(path: impl AsRef<Path>, policy: P, env: E) -> Result<Self> {
        checkpoint::load(path.as_ref(), policy, env)
    }
}

fn scalar(t: &Tensor) -> Result<f64> {
    Ok(t.to_dtype(DType::F64)?.to_scalar::<f64>()?)
}

impl<P: StochasticPolicy, E: Env> Algorithm for Reinforce<P, E> {
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
