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
    /// A file asks for more work or memory than this crate allows (see [`crate::limits`]): a
    /// zip with too many entries, a pickle nested too deep, a layer wider than any real policy.
    /// Checked before anything of that size is allocated.
    #[error("{path}: {what} exceeds the limit of {limit}")]
    LimitExceeded {
        /// The file (or a member inside it, as `outer/inner`).
        path: String,
        /// What was too large, with the size the file asked for where known.
        what: String,
        /// The limit it exceeds.
        limit: u64,
    },
    /// A loaded parameter holds a NaN or an infinity (a diverged or damaged model: a
    /// deterministic `act` would silently return action 0).
    #[error("{path}: parameter {tensor} holds the non-finite value {value} at flat index {index}")]
    NonFiniteWeight {
        /// The file.
        path: String,
        /// The parameter, by SB3 `state_dict` name.
        tensor: String,
        /// The first offending element (row-major).
        index: usize,
        /// Its value.
        value: f32,
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

/// What went wrong reading untrusted bytes, before the file's name is attached.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// Malformed, inconsistent or ambiguous content.
    Corrupt(String),
    /// Well-formed content this crate does not read (a compressed zip member, an exotic dtype).
    Unsupported(String),
    /// A declared size over one of [`crate::limits`].
    Limit {
        /// What was too large (with the size asked for).
        what: String,
        /// The limit.
        limit: u64,
    },
}

impl ReadError {
    /// A [`ReadError::Limit`] for `what`, the `limit` given as any integer.
    pub(crate) fn limit(what: impl Into<String>, limit: usize) -> ReadError {
        ReadError::Limit {
            what: what.into(),
            limit: u64::try_from(limit).unwrap_or(u64::MAX),
        }
    }

    /// The same error with `context: ` before its description.
    pub(crate) fn context(self, context: &str) -> ReadError {
        match self {
            ReadError::Corrupt(m) => ReadError::Corrupt(format!("{context}: {m}")),
            ReadError::Unsupported(m) => ReadError::Unsupported(format!("{context}: {m}")),
            ReadError::Limit { what, limit } => ReadError::Limit {
                what: format!("{context}: {what}"),
                limit,
            },
        }
    }

    /// The public error, naming the file `path`.
    pub(crate) fn at(self, path: &str) -> PolicyError {
        match self {
            ReadError::Corrupt(reason) => PolicyError::Corrupt {
                path: path.to_string(),
                reason,
            },
            ReadError::Unsupported(m) => PolicyError::Unsupported(format!("{path}: {m}")),
            ReadError::Limit { what, limit } => PolicyError::LimitExceeded {
                path: path.to_string(),
                what,
                limit,
            },
        }
    }
}
