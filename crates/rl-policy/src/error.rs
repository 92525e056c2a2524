//! The error type of this crate.

use thiserror::Error;

/// What went wrong building, running, saving or loading a policy.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// An error from Candle (shape mismatch inside an op, dtype, device...).
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
    /// A tensor with the wrong shape or dtype.
    #[error("{what}: expected {expected}, got {actual}")]
    Shape {
        /// Which tensor.
        what: &'static str,
        /// What was expected.
        expected: String,
        /// What was given.
        actual: String,
    },
    /// A configuration or space this crate does not support.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// An invalid argument or configuration value.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A saved policy or an SB3 zip that cannot be read.
    #[error("corrupt or unreadable file {path}: {reason}")]
    Corrupt {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An I/O error.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// An environment-side error (spaces, actions).
    #[error(transparent)]
    Env(#[from] rl_env::EnvError),
}

/// `Result` with [`PolicyError`].
pub type Result<T, E = PolicyError> = std::result::Result<T, E>;
