//! Wrappers that compose around any [`crate::Env`].
//!
//! Each is a generic struct over the wrapped `E: Env` with `inner()`, `inner_mut()` and
//! `into_inner()`, implements [`crate::Env`] itself, and allocates nothing per step:
//!
//! - [`TimeLimit`]: truncates after a number of steps;
//! - [`RecordEpisodeStatistics`]: episode return, length and time in `info.episode` (SB3
//!   `Monitor`);
//! - [`Monitor`]: the same plus SB3's `monitor.csv` file;
//! - [`NormalizeObservation`] and [`NormalizeReward`]: SB3 `VecNormalize`'s two halves, built on
//!   [`RunningMeanStd`];
//! - [`ClipAction`]: clips continuous actions into the action space.
//!
//! Order matters where a wrapper changes what the next one sees: SB3's usual stack records raw
//! returns, `NormalizeReward<RecordEpisodeStatistics<TimeLimit<E>>>`; swapping the two outer
//! wrappers records the returns of the normalized rewards instead.

mod clip_action;
pub mod monitor;
mod normalize_observation;
mod normalize_reward;
mod record_episode_statistics;
mod running_mean_std;
#[cfg(test)]
mod test_support;
mod time_limit;

pub use clip_action::ClipAction;
pub use monitor::{Monitor, MonitorWriter};
pub use normalize_observation::{NormalizeObservation, NormalizeObservationConfig};
pub use normalize_reward::{NormalizeReward, NormalizeRewardConfig};
pub use record_episode_statistics::RecordEpisodeStatistics;
pub use running_mean_std::RunningMeanStd;
pub use time_limit::TimeLimit;
