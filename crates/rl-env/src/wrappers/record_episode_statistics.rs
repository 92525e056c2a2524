//! Gymnasium's `RecordEpisodeStatistics` / SB3's `Monitor` (without the CSV file: that is
//! [`crate::wrappers::Monitor`]).

use crate::env::{check_obs_buffer, Action, Env, EpisodeStats, Info, StepOutcome};
use crate::error::{EnvError, Result};
use crate::seeding::Seed;
use crate::space::Space;
use std::collections::VecDeque;
use std::time::Instant;

/// Sums the rewards and counts the steps of each episode and, on the step that ends it
/// (`terminated || truncated`), sets `info.episode = Some(EpisodeStats { r#return, length,
/// time_s })`, where `time_s` is the time since the wrapper was created (SB3 `Monitor`'s `t`).
///
/// The statistics of the last `buffer_len` episodes (default 100, Gymnasium's `return_queue` /
/// `length_queue`) are kept in a preallocated ring; stepping allocates nothing.
///
/// The recorded return is the reward *this wrapper sees*: put it inside reward-changing wrappers
/// (`NormalizeReward<RecordEpisodeStatistics<E>>`, the order SB3 uses for `Monitor` and
/// `VecNormalize`) to record raw returns, outside them to record transformed ones.
///
/// Like `Monitor`, it refuses `step` before the first `reset` and after the end of an episode
/// ([`EnvError::NeedsReset`]); `reset` is allowed at any time and discards a partial episode.
///
/// ```
/// use rl_env::wrappers::{NormalizeReward, RecordEpisodeStatistics};
/// use rl_env::{make, Action, Env};
///
/// // Raw returns are recorded inside the normalization.
/// let mut env = NormalizeReward::new(RecordEpisodeStatistics::new(make("CartPole-v1")?));
/// env.reset(Some(0))?;
/// let (mut raw_return, mut steps) = (0.0, 0);
/// let stats = loop {
///     let step = env.step(Action::Discrete(steps % 2))?;
///     raw_return += env.last_raw_reward();
///     steps += 1;
///     if let Some(stats) = step.info.episode {
///         break stats;
///     }
/// };
/// assert_eq!(stats.r#return, raw_return);
/// assert_eq!(stats.length, steps as u64);
/// assert_eq!(env.inner().episode_count(), 1);
/// # Ok::<(), rl_env::EnvError>(())
/// ```
#[derive(Clone, Debug)]
pub struct RecordEpisodeStatistics<E> {
    env: E,
    start: Instant,
    episode_return: f64,
    episode_length: u64,
    total_steps: u64,
    episode_count: u64,
    needs_reset: bool,
    buffer_len: usize,
    recent: VecDeque<EpisodeStats>,
}

impl<E: Env> RecordEpisodeStatistics<E> {
    /// Gymnasium's default number of episodes kept.
    pub const DEFAULT_BUFFER_LEN: usize = 100;

    /// Wraps `env`, keeping the last 100 episodes.
    pub fn new(env: E) -> Self {
        Self::build(env, Self::DEFAULT_BUFFER_LEN)
    }

    /// Wraps `env`, keeping the last `buffer_len` (at least 1) episodes.
    pub fn with_buffer_len(env: E, buffer_len: usize) -> Result<Self> {
        if buffer_len == 0 {
            return Err(EnvError::InvalidArgument(
                "RecordEpisodeStatistics needs buffer_len >= 1".into(),
            ));
        }
        Ok(Self::build(env, buffer_len))
    }

    fn build(env: E, buffer_len: usize) -> Self {
        RecordEpisodeStatistics {
            env,
            start: Instant::now(),
            episode_return: 0.0,
            episode_length: 0,
            total_steps: 0,
            episode_count: 0,
            needs_reset: true,
            buffer_len,
            recent: VecDeque::with_capacity(buffer_len),
        }
    }

    /// The statistics of the last finished episodes, oldest first (at most `buffer_len`).
    pub fn episodes(&self) -> &VecDeque<EpisodeStats> {
        &self.recent
    }

    /// Returns of the last finished episodes, oldest first (`Monitor.get_episode_rewards`).
    pub fn episode_returns(&self) -> impl ExactSizeIterator<Item = f64> + '_ {
        self.recent.iter().map(|e| e.r#return)
    }

    /// Lengths of the last finished episodes, oldest first (`Monitor.get_episode_lengths`).
    pub fn episode_lengths(&self) -> impl ExactSizeIterator<Item = u64> + '_ {
        self.recent.iter().map(|e| e.length)
    }

    /// Mean return of the kept episodes (SB3's `ep_rew_mean`), `None` before the first one ends.
    pub fn mean_episode_return(&self) -> Option<f64> {
        let n = self.recent.len();
        (n > 0).then(|| self.episode_returns().sum::<f64>() / n as f64)
    }

    /// How many episodes are kept.
    pub fn buffer_len(&self) -> usize {
        self.buffer_len
    }

    /// Steps taken since the wrapper was created (`Monitor.get_total_steps`).
    pub fn total_steps(&self) -> u64 {
        self.total_steps
    }

    /// Episodes finished since the wrapper was created.
    pub fn episode_count(&self) -> u64 {
        self.episode_count
    }

    /// Return accumulated so far in the current episode.
    pub fn current_return(&self) -> f64 {
        self.episode_return
    }

    /// Steps taken so far in the current episode.
    pub fn current_length(&self) -> u64 {
        self.episode_length
    }

    /// The wrapped environment.
    pub fn inner(&self) -> &E {
        &self.env
    }

    /// The wrapped environment, mutably.
    pub fn inner_mut(&mut self) -> &mut E {
        &mut self.env
    }

    /// Unwraps.
    pub fn into_inner(self) -> E {
        self.env
    }
}

impl<E: Env> Env for RecordEpisodeStatistics<E> {
    fn observation_space(&self) -> &Space {
        self.env.observation_space()
    }

    fn action_space(&self) -> &Space {
        self.env.action_space()
    }

    fn reset_into(&mut self, seed: Option<&Seed>, obs: &mut [f32]) -> Result<Info> {
        let info = self.env.reset_into(seed, obs)?;
        self.episode_return = 0.0;
        self.episode_length = 0;
        self.needs_reset = false;
        Ok(info)
    }

    fn step_into(&mut self, action: Action<'_>, obs: &mut [f32]) -> Result<StepOutcome> {
        if self.needs_reset {
            check_obs_buffer(self.observation_space(), obs)?;
            return Err(EnvError::NeedsReset(
                "step() called on a RecordEpisodeStatistics episode that already ended (or was never reset)",
            ));
        }
        let mut out = self.env.step_into(action, obs)?;
        self.episode_return += out.reward;
        self.episode_length += 1;
        self.total_steps += 1;
        if out.done() {
            self.needs_reset = true;
            if out.info.episode.is_some() {
                return Err(EnvError::InvalidArgument(
                    "info.episode is already set by an inner wrapper: wrap an environment in \
                     RecordEpisodeStatistics only once"
                        .into(),
                ));
            }
            let stats = EpisodeStats {
                r#return: self.episode_return,
                length: self.episode_length,
                time_s: self.start.elapsed().as_secs_f64(),
            };
            if self.recent.len() == self.buffer_len {
                self.recent.pop_front();
            }
            self.recent.push_back(stats);
            self.episode_count += 1;
            out.info.episode = Some(stats);
        }
        Ok(out)
    }

    fn id(&self) -> &str {
        self.env.id()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wrappers::test_support::Scripted;

    #[test]
    fn records_sums_lengths_and_keeps_a_bounded_queue() {
        // Episodes of 3 steps with rewards 1, 2, 3: returns 6 each, lengths 3.
        let inner = Scripted::new(vec![1.0, 2.0, 3.0], 3);
        let mut env = RecordEpisodeStatistics::with_buffer_len(inner, 2).unwrap();
        let mut obs = [0.0f32; 2];
        let capacity = env.episodes().capacity();
        for episode in 0..5u64 {
            env.reset_into(None, &mut obs).unwrap();
            for t in 0..3 {
                let out = env.step_into(Action::Discrete(0), &mut obs).unwrap();
                if t < 2 {
                    assert_eq!(out.info.episode, None);
                } else {
                    let stats = out.info.episode.unwrap();
                    assert_eq!(stats.r#return, 6.0);
                    assert_eq!(stats.length, 3);
                    assert!(stats.time_s >= 0.0);
                }
            }
            assert_eq!(env.episode_count(), episode + 1);
        }
        assert_eq!(env.total_steps(), 15);
        assert_eq!(env.episode_returns().collect::<Vec<_>>(), [6.0, 6.0]);
        assert_eq!(env.episode_lengths().collect::<Vec<_>>(), [3, 3]);
        assert_eq!(env.mean_episode_return(), Some(6.0));
        // The ring never grew past what was preallocated.
        assert_eq!(env.episodes().capacity(), capacity);
        let times: Vec<f64> = env.episodes().iter().map(|e| e.time_s).collect();
        assert!(times[0] <= times[1]);
    }

    #[test]
    fn refuses_steps_outside_an_episode_and_double_wrapping() {
        let mut env = RecordEpisodeStatistics::new(Scripted::new(vec![1.0], 1));
        let mut obs = [0.0f32; 2];
        assert!(matches!(
            env.step_into(Action::Discrete(0), &mut obs),
            Err(EnvError::NeedsReset(_))
        ));
        assert!(matches!(
            env.step_into(Action::Discrete(0), &mut [0.0; 3]),
            Err(EnvError::ObservationBuffer { .. })
        ));
        env.reset_into(None, &mut obs).unwrap();
        env.step_into(Action::Discrete(0), &mut obs).unwrap();
        assert!(matches!(
            env.step_into(Action::Discrete(0), &mut obs),
            Err(EnvError::NeedsReset(_))
        ));
        assert_eq!(env.total_steps(), 1);
        assert!(RecordEpisodeStatistics::with_buffer_len(Scripted::new(vec![1.0], 1), 0).is_err());

        let mut twice =
            RecordEpisodeStatistics::new(RecordEpisodeStatistics::new(Scripted::new(vec![1.0], 1)));
        twice.reset_into(None, &mut obs).unwrap();
        assert!(matches!(
            twice.step_into(Action::Discrete(0), &mut obs),
            Err(EnvError::InvalidArgument(_))
        ));
    }

    #[test]
    fn reset_discards_a_partial_episode() {
        let mut env = RecordEpisodeStatistics::new(Scripted::new(vec![5.0], 10));
        let mut obs = [0.0f32; 2];
        env.reset_into(None, &mut obs).unwrap();
        env.step_into(Action::Discrete(0), &mut obs).unwrap();
        assert_eq!(env.current_return(), 5.0);
        env.reset_into(None, &mut obs).unwrap();
        assert_eq!((env.current_return(), env.current_length()), (0.0, 0));
        assert_eq!(env.total_steps(), 1);
        assert_eq!(env.episode_count(), 0);
        assert_eq!(env.mean_episode_return(), None);
    }
}
