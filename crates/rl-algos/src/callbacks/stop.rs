//! Stop conditions: [`StopTrainingOnRewardThreshold`], [`StopTrainingOnMaxEpisodes`] and
//! [`StopTrainingOnNoModelImprovement`] (SB3's callbacks of the same names).

use super::eval::{EvalChild, EvalSummary};
use super::{Callback, Locals};
use crate::error::{AlgoError, Result};
use crate::logger::Logger;
use std::collections::VecDeque;

/// Stops training once a mean episode return reaches `threshold`.
///
/// - As an [`EvalChild`] of an [`super::EvalCallback`] (SB3's use, usually as
///   `callback_on_new_best`): stops when the best evaluation mean is `>= threshold`.
/// - Standalone, as a [`Callback`]: follows the training episodes through `Locals` (the
///   `info.episode` statistics of a `RecordEpisodeStatistics` wrapper when present, else its
///   own sums of `rewards` until `dones`) and stops when the mean return of the last `window`
///   finished episodes (default 100, SB3's `ep_info_buffer` size) is `>= threshold`. The window
///   must be full first, so a few lucky early episodes do not end training.
#[derive(Clone, Debug)]
pub struct StopTrainingOnRewardThreshold {
    threshold: f64,
    window: usize,
    verbose: bool,
    running: Vec<f64>,
    recent: VecDeque<f64>,
}

impl StopTrainingOnRewardThreshold {
    /// Stops at a mean return of `threshold`.
    pub fn new(threshold: f64) -> Self {
        StopTrainingOnRewardThreshold {
            threshold,
            window: 100,
            verbose: false,
            running: Vec::new(),
            recent: VecDeque::with_capacity(100),
        }
    }

    /// Sets the number of training episodes averaged in standalone use (at least 1).
    pub fn with_window(mut self, window: usize) -> Result<Self> {
        if window == 0 {
            return Err(AlgoError::InvalidArgument(
                "StopTrainingOnRewardThreshold window must be at least 1".into(),
            ));
        }
        self.window = window;
        self.recent = VecDeque::with_capacity(window);
        Ok(self)
    }

    /// Prints a line when it stops training.
    pub fn with_verbose(mut self, verbose: bool) -> Self {
        self.verbose = verbose;
        self
    }

    /// The threshold.
    pub fn threshold(&self) -> f64 {
        self.threshold
    }

    /// In standalone use: the mean return of the last `window` finished training episodes, once
    /// there are that many.
    pub fn rolling_mean(&self) -> Option<f64> {
        // Summed afresh each time: no drift, and the window is small.
        (self.recent.len() == self.window)
            .then(|| self.recent.iter().sum::<f64>() / self.window as f64)
    }

    fn record_episode(&mut self, ret: f64) {
        if self.recent.len() == self.window {
            self.recent.pop_front();
        }
        self.recent.push_back(ret);
    }
}

impl Callback for StopTrainingOnRewardThreshold {
    fn on_step(&mut self, locals: &Locals<'_>, _logger: &mut Logger) -> Result<bool> {
        if self.running.len() != locals.rewards.len() {
            self.running = vec![0.0; locals.rewards.len()];
        }
        let mut ended = false;
        for (i, &r) in locals.rewards.iter().enumerate() {
            self.running[i] += r;
            if locals.dones.get(i).copied().unwrap_or(false) {
                let ret = locals
                    .infos
                    .get(i)
                    .and_then(|info| info.episode)
                    .map_or(self.running[i], |stats| stats.r#return);
                self.running[i] = 0.0;
                self.record_episode(ret);
                ended = true;
            }
        }
        if !ended {
            return Ok(true);
        }
        match self.rolling_mean() {
            Some(mean) if mean >= self.threshold => {
                if self.verbose {
                    crate::fsutil::say(format_args!(
                        "Stopping training because the mean reward {mean:.2} of the last {} \
                         episodes is above the threshold {}",
                        self.window, self.threshold
                    ));
                }
                Ok(false)
            }
            _ => Ok(true),
        }
    }
}

impl EvalChild for StopTrainingOnRewardThreshold {
    fn on_eval(
        &mut self,
        eval: &EvalSummary<'_>,
        _locals: &Locals<'_>,
        _logger: &mut Logger,
    ) -> Result<bool> {
        let continue_training = eval.best_mean_reward < self.threshold;
        if !continue_training && self.verbose {
            crate::fsutil::say(format_args!(
                "Stopping training because the mean reward {:.2} is above the threshold {}",
                eval.best_mean_reward, self.threshold
            ));
        }
        Ok(continue_training)
    }
}

/// Stops training after `max_episodes` episodes per environment (SB3: the total is
/// `max_episodes * n_envs`, counted from `Locals::dones`).
#[derive(Clone, Debug)]
pub struct StopTrainingOnMaxEpisodes {
    max_episodes: u64,
    n_episodes: u64,
    verbose: bool,
}

impl StopTrainingOnMaxEpisodes {
    /// Stops after `max_episodes` (>= 1) episodes per environment.
    pub fn new(max_episodes: u64) -> Result<Self> {
        if max_episodes == 0 {
            return Err(AlgoError::InvalidArgument(
                "StopTrainingOnMaxEpisodes max_episodes must be at least 1".into(),
            ));
        }
        Ok(StopTrainingOnMaxEpisodes {
            max_episodes,
            n_episodes: 0,
            verbose: false,
        })
    }

    /// Prints a line when it stops training.
    pub fn with_verbose(mut self, verbose: bool) -> Self {
        self.verbose = verbose;
        self
    }

    /// Episodes finished so far (all environments).
    pub fn n_episodes(&self) -> u64 {
        self.n_episodes
    }
}

impl Callback for StopTrainingOnMaxEpisodes {
    fn on_step(&mut self, locals: &Locals<'_>, _logger: &mut Logger) -> Result<bool> {
        self.n_episodes += locals.dones.iter().filter(|&&d| d).count() as u64;
        let total = self.max_episodes * locals.dones.len().max(1) as u64;
        let continue_training = self.n_episodes < total;
        if !continue_training && self.verbose {
            crate::fsutil::say(format_args!(
                "Stopping training with a total of {} steps because max_episodes = {} \
                 (per environment) was reached after {} episodes",
                locals.num_timesteps, self.max_episodes, self.n_episodes
            ));
        }
        Ok(continue_training)
    }
}

/// An [`EvalChild`] (use it as `callback_after_eval`) that stops training when the best mean
/// evaluation reward has not improved for more than `max_no_improvement_evals` evaluations in
/// a row, not counting the first `min_evals` evaluations.
#[derive(Clone, Debug)]
pub struct StopTrainingOnNoModelImprovement {
    max_no_improvement_evals: u64,
    min_evals: u64,
    verbose: bool,
    n_calls: u64,
    last_best_mean_reward: f64,
    no_improvement_evals: u64,
}

impl StopTrainingOnNoModelImprovement {
    /// Stops after more than `max_no_improvement_evals` evaluations without a new best, once
    /// `min_evals` evaluations have run.
    pub fn new(max_no_improvement_evals: u64, min_evals: u64) -> Self {
        StopTrainingOnNoModelImprovement {
            max_no_improvement_evals,
            min_evals,
            verbose: false,
            n_calls: 0,
            last_best_mean_reward: f64::NEG_INFINITY,
            no_improvement_evals: 0,
        }
    }

    /// Prints a line when it stops training.
    pub fn with_verbose(mut self, verbose: bool) -> Self {
        self.verbose = verbose;
        self
    }
}

impl EvalChild for StopTrainingOnNoModelImprovement {
    fn on_eval(
        &mut self,
        eval: &EvalSummary<'_>,
        _locals: &Locals<'_>,
        _logger: &mut Logger,
    ) -> Result<bool> {
        self.n_calls += 1;
        let mut continue_training = true;
        if self.n_calls > self.min_evals {
            if eval.best_mean_reward > self.last_best_mean_reward {
                self.no_improvement_evals = 0;
            } else {
                self.no_improvement_evals += 1;
                if self.no_improvement_evals > self.max_no_improvement_evals {
                    continue_training = false;
                }
            }
        }
        self.last_best_mean_reward = eval.best_mean_reward;
        if !continue_training && self.verbose {
            crate::fsutil::say(format_args!(
                "Stopping training because there was no new best model in the last {} \
                 evaluations",
                self.no_improvement_evals
            ));
        }
        Ok(continue_training)
    }
}
