//! The error type of this crate.

use thiserror::Error;

/// What went wrong while training or evaluating.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum AlgoError {
    /// An environment error.
    #[error(transparent)]
    Env(#[from] rl_env::EnvError),
    /// A policy error.
    #[error(transparent)]
    Policy(#[from] rl_policy::PolicyError),
    /// A tensor/bridge error.
    #[error(transparent)]
    Bridge(#[from] rl_tensor_bridge::BridgeError),
    /// A Candle error.
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
    /// Training produced a NaN or infinite loss or parameter.
    #[error("training diverged at iteration {iteration}: {what} is not finite")]
    Diverged {
        /// The iteration (1-based) whose update produced it.
        iteration: u64,
        /// What became non-finite (the loss, or the parameter's name).
        what: String,
    },
    /// An invalid configuration value or argument.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A checkpoint that cannot be read or does not match the run.
    #[error("bad checkpoint {path}: {reason}")]
    Checkpoint {
        /// The checkpoint path.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A valid checkpoint of another algorithm than the one loading it.
    #[error("{path} is a checkpoint of {found}, not of {expected}")]
    CheckpointKind {
        /// The checkpoint path.
        path: String,
        /// The algorithm (or family) that wrote it, e.g. `"PPO"`.
        found: String,
        /// The algorithm loading it.
        expected: String,
    },
    /// An I/O error.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// `Result` with [`AlgoError`].
pub type Result<T, E = AlgoError> = std::result::Result<T, E>;
