//! [`EvalCallback`]: periodic evaluation on a separate environment (SB3's `EvalCallback`).

use super::{Callback, Locals};
use crate::error::{AlgoError, Result};
use crate::evaluation::{evaluate_policy, EvalResult};
use crate::fsutil::write_atomic;
use crate::logger::Logger;
use rand::rngs::StdRng;
use rand::SeedableRng;
use rl_env::Env;
use rl_policy::{NormalizedPolicy, Policy};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// What an [`EvalChild`] sees after an evaluation (SB3 children read `self.parent`).
#[derive(Clone, Copy, Debug)]
pub struct EvalSummary<'a> {
    /// The evaluation that just ran.
    pub last: &'a EvalResult,
    /// Best mean return over all evaluations so far (including this one).
    pub best_mean_reward: f64,
    /// Whether this evaluation set a new best.
    pub new_best: bool,
    /// Evaluations run so far (including this one).
    pub n_evals: usize,
}

/// A callback run by an [`EvalCallback`] after an evaluation (`callback_after_eval`) or on a
/// new best mean reward (`callback_on_new_best`); `Ok(false)` stops training.
pub trait EvalChild {
    /// Called with the evaluation's outcome.
    fn on_eval(
        &mut self,
        eval: &EvalSummary<'_>,
        locals: &Locals<'_>,
        logger: &mut Logger,
    ) -> Result<bool>;
}

impl<C: EvalChild + ?Sized> EvalChild for Box<C> {
    fn on_eval(
        &mut self,
        eval: &EvalSummary<'_>,
        locals: &Locals<'_>,
        logger: &mut Logger,
    ) -> Result<bool> {
        (**self).on_eval(eval, locals, logger)
    }
}

/// One point of the learning curve.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalRecord {
    /// `num_timesteps` when the evaluation ran.
    pub timesteps: u64,
    /// The evaluation.
    pub result: EvalResult,
}

/// Evaluates the policy every `eval_freq` calls of `on_step` on its own environment with
/// [`evaluate_policy`], records `eval/mean_reward`, `eval/mean_ep_length` and
/// `time/total_timesteps` and dumps the logger (as SB3 does), keeps the best mean reward and
/// the learning curve ([`EvalCallback::history`], [`EvalCallback::learning_curve_csv`]), and
/// optionally saves the best model and runs child callbacks. When the training environments
/// are a `VecNormalize` ([`crate::Algorithm::normalization`]), the policy acts on observations
/// normalized with their current statistics, frozen; returns stay unnormalized.
///
/// Defaults are SB3's: 5 episodes, deterministic actions, verbose. Evaluation is reproducible:
/// the environment is reset with `seed` (default 0) before the first evaluation, and sampled
/// actions (when not deterministic) come from a generator seeded with it.
pub struct EvalCallback {
    env: Box<dyn Env>,
    eval_freq: u64,
    n_eval_episodes: usize,
    deterministic: bool,
    seed: Option<u64>,
    rng: StdRng,
    verbose: bool,
    best_model_save_path: Option<PathBuf>,
    log_path: Option<PathBuf>,
    on_new_best: Option<Box<dyn EvalChild>>,
    after_eval: Option<Box<dyn EvalChild>>,
    n_calls: u64,
    seeded: bool,
    best_mean_reward: f64,
    last_mean_reward: f64,
    history: Vec<EvalRecord>,
}

impl EvalCallback {
    /// Evaluates on `env` every `eval_freq` (>= 1) calls.
    pub fn new(env: impl Env + 'static, eval_freq: u64) -> Result<Self> {
        if eval_freq == 0 {
            return Err(AlgoError::InvalidArgument(
                "EvalCallback eval_freq must be at least 1".into(),
            ));
        }
        Ok(EvalCallback {
            env: Box::new(env),
            eval_freq,
            n_eval_episodes: 5,
            deterministic: true,
            seed: Some(0),
            rng: StdRng::seed_from_u64(0),
            verbose: true,
            best_model_save_path: None,
            log_path: None,
            on_new_best: None,
            after_eval: None,
            n_calls: 0,
            seeded: false,
            best_mean_reward: f64::NEG_INFINITY,
            last_mean_reward: f64::NEG_INFINITY,
            history: Vec::new(),
        })
    }

    /// Episodes per evaluation (>= 1; SB3 default 5).
    pub fn with_n_eval_episodes(mut self, n: usize) -> Result<Self> {
        if n == 0 {
            return Err(AlgoError::InvalidArgument(
                "EvalCallback n_eval_episodes must be at least 1".into(),
            ));
        }
        self.n_eval_episodes = n;
        Ok(self)
    }

    /// Mode actions (`true`, the default) or sampled ones.
    pub fn with_deterministic(mut self, deterministic: bool) -> Self {
        self.deterministic = deterministic;
        self
    }

    /// Seeds the evaluation environment's first reset and the action sampler; `None` leaves
    /// the environment's own stream alone (nondeterministic for a never-seeded environment).
    pub fn with_seed(mut self, seed: Option<u64>) -> Self {
        self.seed = seed;
        self.rng = StdRng::seed_from_u64(seed.unwrap_or(0));
        self
    }

    /// Prints each evaluation's outcome (default `true`, SB3's `verbose=1`).
    pub fn with_verbose(mut self, verbose: bool) -> Self {
        self.verbose = verbose;
        self
    }

    /// Saves a checkpoint to `<dir>/best_model` on every new best mean reward (the directory
    /// is created when training starts).
    pub fn with_best_model_save_path(mut self, dir: impl Into<PathBuf>) -> Self {
        self.best_model_save_path = Some(dir.into());
        self
    }

    /// Rewrites the learning curve as CSV ([`EvalCallback::learning_curve_csv`]) to `path`
    /// after every evaluation (SB3 writes `evaluations.npz`).
    pub fn with_log_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.log_path = Some(path.into());
        self
    }

    /// Runs `child` whenever an evaluation sets a new best mean reward (SB3's
    /// `callback_on_new_best`).
    pub fn with_callback_on_new_best(mut self, child: impl EvalChild + 'static) -> Self {
        self.on_new_best = Some(Box::new(child));
        self
    }

    /// Runs `child` after every evaluation (SB3's `callback_after_eval`).
    pub fn with_callback_after_eval(mut self, child: impl EvalChild + 'static) -> Self {
        self.after_eval = Some(Box::new(child));
        self
    }

    /// Best mean reward so far (`-inf` before the first evaluation).
    pub fn best_mean_reward(&self) -> f64 {
        self.best_mean_reward
    }

    /// Mean reward of the last evaluation (`-inf` before the first one).
    pub fn last_mean_reward(&self) -> f64 {
        self.last_mean_reward
    }

    /// Every evaluation so far, oldest first.
    pub fn history(&self) -> &[EvalRecord] {
        &self.history
    }

    /// The learning curve as CSV: a `timesteps,mean_reward,std_reward,mean_ep_length` header
    /// and one row per evaluation.
    pub fn learning_curve_csv(&self) -> String {
        let mut out = String::from("timesteps,mean_reward,std_reward,mean_ep_length\n");
        for r in &self.history {
            // Writing into a String cannot fail.
            let _ = writeln!(
                out,
                "{},{},{},{}",
                r.timesteps,
                r.result.mean,
                r.result.std,
                r.result.mean_length()
            );
        }
        out
    }

    /// Writes [`EvalCallback::learning_curve_csv`] to `path` atomically.
    pub fn write_learning_curve(&self, path: &Path) -> Result<()> {
        write_atomic(path, self.learning_curve_csv().as_bytes())
    }

    /// Gives the evaluation environment back.
    pub fn into_env(self) -> Box<dyn Env> {
        self.env
    }

    fn evaluate(&mut self, locals: &Locals<'_>, logger: &mut Logger) -> Result<bool> {
        if !self.seeded {
            if let Some(seed) = self.seed {
                self.env.reset(Some(seed))?;
            }
            self.seeded = true;
        }
        // Under a VecNormalize the policy acts on observations normalized with the training
        // statistics as they are now, frozen (SB3's `sync_envs_normalization`).
        let normalized = locals
            .algo
            .normalization()
            .map(|stats| NormalizedPolicy::new(locals.algo.policy(), stats));
        let policy: &dyn Policy = match &normalized {
            Some(p) => p,
            None => locals.algo.policy(),
        };
        let result = evaluate_policy(
            policy,
            &mut *self.env,
            self.n_eval_episodes,
            self.deterministic,
            &mut self.rng,
        )?;
        let mean_length = result.mean_length();
        let (_, std_length) = crate::evaluation::mean_std(
            &result
                .episode_lengths
                .iter()
                .map(|&l| l as f64)
                .collect::<Vec<_>>(),
        );
        if self.verbose {
            crate::fsutil::say(format_args!(
                "Eval num_timesteps={}, episode_reward={:.2} +/- {:.2}",
                locals.num_timesteps, result.mean, result.std
            ));
            crate::fsutil::say(format_args!(
                "Episode length: {mean_length:.2} +/- {std_length:.2}"
            ));
        }
        self.last_mean_reward = result.mean;
        logger.record("eval/mean_reward", result.mean);
        logger.record("eval/mean_ep_length", mean_length);
        logger.record_int(
            "time/total_timesteps",
            i64::try_from(locals.num_timesteps).unwrap_or(i64::MAX),
        );
        logger.dump(locals.num_timesteps);

        let new_best = result.mean > self.best_mean_reward;
        if new_best {
            if self.verbose {
                crate::fsutil::say(format_args!("New best mean reward!"));
            }
            if let Some(dir) = &self.best_model_save_path {
                locals.algo.save_checkpoint(&dir.join("best_model"))?;
            }
            self.best_mean_reward = result.mean;
        }
        self.history.push(EvalRecord {
            timesteps: locals.num_timesteps,
            result,
        });
        if let Some(path) = &self.log_path {
            self.write_learning_curve(path)?;
        }
        let Some(last) = self.history.last() else {
            return Ok(true);
        };
        let summary = EvalSummary {
            last: &last.result,
            best_mean_reward: self.best_mean_reward,
            new_best,
            n_evals: self.history.len(),
        };
        let mut continue_training = true;
        if new_best {
            if let Some(child) = self.on_new_best.as_mut() {
                continue_training = child.on_eval(&summary, locals, logger)?;
            }
        }
        if let Some(child) = self.after_eval.as_mut() {
            continue_training = child.on_eval(&summary, locals, logger)? && continue_training;
        }
        Ok(continue_training)
    }
}

impl Callback for EvalCallback {
    fn on_training_start(&mut self, _locals: &Locals<'_>, _logger: &mut Logger) -> Result<()> {
        if let Some(dir) = &self.best_model_save_path {
            std::fs::create_dir_all(dir).map_err(|source| AlgoError::Io {
                path: dir.display().to_string(),
                source,
            })?;
        }
        Ok(())
    }

    fn on_step(&mut self, locals: &Locals<'_>, logger: &mut Logger) -> Result<bool> {
        self.n_calls += 1;
        if self.n_calls.is_multiple_of(self.eval_freq) {
            return self.evaluate(locals, logger);
        }
        Ok(true)
    }
}
