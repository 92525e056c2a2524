//! # rl
//!
//! Reinforcement learning in native Rust on Candle. This crate re-exports the workspace's
//! crates under short names; it adds no logic of its own.
//!
//! ```
//! use rl::prelude::*;
//!
//! let mut env = make("CartPole-v1")?;
//! let (obs, _) = env.reset(Some(0))?;
//! assert_eq!(obs.len(), env.observation_space().flat_dim());
//! # Ok::<(), rl::env::EnvError>(())
//! ```

pub use rl_env as env;

/// The everyday items.
pub mod prelude {
    pub use rl_env::{
        make, make_with, Action, AutoresetMode, Env, EnvError, EnvSpec, Info, Space, SyncVecEnv,
        ThreadVecEnv, VecAction, VecEnv,
    };
}
