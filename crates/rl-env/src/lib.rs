//! # rl-env
//!
//! Environments with Gymnasium's semantics, written for speed and bit-exact parity:
//!
//! - [`Env`]: `reset(seed)` / `step(action)` returning `terminated` and `truncated`, over flat
//!   `f32` observations written into caller-provided buffers (no allocation per step);
//! - [`Space`]: `Discrete` and `Box`;
//! - [`seeding`]: NumPy's `SeedSequence`/`PCG64`/`Generator`, so `reset(Some(seed))` starts the
//!   episode Gymnasium starts for that seed;
//! - the five classic-control environments and a registry, [`make`], that takes Gymnasium's
//!   keyword arguments ([`EnvKwargs`]) and environments of your own ([`register`]);
//! - [`check_env`]: Gymnasium's environment checker, for environments of your own;
//! - [`wrappers`]: `TimeLimit`, `RecordEpisodeStatistics`, SB3's `Monitor` and its `monitor.csv`,
//!   normalization, action clipping;
//! - [`vector`]: [`VecEnv`] with an in-thread and a multi-threaded engine;
//! - [`render`]: Gymnasium's `rgb_array` frames, drawn in software ([`Render`]).
//!
//! This crate has no tensor dependency: it is usable on its own.
//!
//! ```
//! use rl_env::{make, Action, Env};
//!
//! let mut env = make("CartPole-v1")?;
//! let (obs, _info) = env.reset(Some(42))?;
//! assert_eq!(obs.len(), 4);
//! let mut episode_return = 0.0;
//! loop {
//!     let step = env.step(Action::Discrete(1))?;
//!     episode_return += step.reward;
//!     if step.terminated || step.truncated {
//!         break;
//!     }
//! }
//! assert!(episode_return >= 1.0);
//! # Ok::<(), rl_env::EnvError>(())
//! ```

#![warn(missing_docs)]

pub mod checker;
pub mod classic_control;
pub mod env;
pub mod error;
pub mod kwargs;
pub mod pyfmt;
pub mod registry;
pub mod render;
pub mod seeding;
pub mod space;
pub mod vector;
pub mod wrappers;

pub use checker::{
    check_env, check_env_with, check_render, CheckOptions, CheckReport, CheckWarning,
};
pub use env::{check_obs_buffer, Action, Env, EpisodeStats, Info, Step, StepOutcome};
pub use error::{EnvError, Result};
pub use kwargs::{EnvKwargs, KwargReader, KwargValue};
pub use registry::{make, make_with, register, registered_ids, EnvRegistration, EnvSpec};
pub use render::{Frame, Render};
pub use seeding::{NpRandom, Seed};
pub use space::{BoxSpace, Space};
pub use vector::{
    AutoresetMode, RunningStats, SyncVecEnv, ThreadVecEnv, VecAction, VecEnv, VecNormalize,
    VecNormalizeConfig, VecNormalizeSnapshot,
};
