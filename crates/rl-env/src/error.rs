//! The error type of every fallible call in this crate.

use thiserror::Error;

/// What went wrong in an environment, a wrapper or a vector of environments.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum EnvError {
    /// A discrete action outside `[start, start + n)`.
    #[error("action {action} is outside the action space Discrete(n={n}, start={start})")]
    ActionOutOfRange {
        /// The action given.
        action: i64,
        /// Number of actions.
        n: u64,
        /// First valid action.
        start: i64,
    },
    /// A continuous action whose length is not the action space's flat dimension.
    #[error("action has {actual} components but the action space needs {expected}")]
    ActionLength {
        /// Flat dimension of the action space.
        expected: usize,
        /// Length of the action given.
        actual: usize,
    },
    /// A continuous action with a NaN or infinite component.
    #[error("action component {index} is {value}, not a finite number")]
    NonFiniteAction {
        /// Index of the offending component.
        index: usize,
        /// Its value.
        value: f32,
    },
    /// A discrete action for a Box space or the reverse.
    #[error("{given} action given for the action space {space}")]
    ActionKind {
        /// The kind of action given ("discrete" or "continuous").
        given: &'static str,
        /// The action space, as Gymnasium prints it.
        space: String,
    },
    /// `step` after the episode terminated or was truncated, or before the first `reset`.
    #[error("{0}: call reset() first")]
    NeedsReset(&'static str),
    /// An observation buffer of the wrong length.
    #[error("observation buffer has length {actual} but the observation space needs {expected}")]
    ObservationBuffer {
        /// Flat dimension of the observation space (times the number of envs for vectors).
        expected: usize,
        /// Length of the buffer given.
        actual: usize,
    },
    /// `make` was asked for an id it does not know.
    #[error("unknown environment id {id:?}; registered ids: {known}")]
    UnknownEnv {
        /// The id asked for.
        id: String,
        /// The registered ids, comma separated.
        known: String,
    },
    /// `make` was given a keyword argument that the environment does not take.
    #[error("{env} got an unexpected keyword argument {kwarg:?}; it takes: {accepted}")]
    UnknownKwarg {
        /// The environment id.
        env: String,
        /// The keyword argument given.
        kwarg: String,
        /// The keyword arguments it takes, comma separated (`max_episode_steps` included).
        accepted: String,
    },
    /// A keyword argument of the wrong type or with an invalid value.
    #[error("{env}: invalid keyword argument {kwarg} = {value}: {expected}")]
    InvalidKwarg {
        /// The environment id.
        env: String,
        /// The keyword argument.
        kwarg: String,
        /// Its value, as Python would print it.
        value: String,
        /// What was expected instead.
        expected: String,
    },
    /// `register` was given an id that is already registered.
    #[error("environment id {id:?} is already registered")]
    AlreadyRegistered {
        /// The id.
        id: String,
    },
    /// [`crate::check_env`] found a violation of the environment contract.
    #[error("check_env: {check}: {message}")]
    CheckFailed {
        /// The check that failed (e.g. `"reset determinism"`).
        check: &'static str,
        /// What was wrong.
        message: String,
    },
    /// A file could not be written or read (e.g. a `monitor.csv`).
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// The kind of I/O error.
        kind: std::io::ErrorKind,
        /// The operating system's message.
        message: String,
    },
    /// A seed that is not a non-negative integer.
    #[error("invalid seed: {0}")]
    InvalidSeed(String),
    /// A list of per-env seeds or actions whose length is not the number of envs.
    #[error("{what} has length {actual} but there are {expected} environments")]
    BatchLength {
        /// What the list is ("seeds", "actions", ...).
        what: &'static str,
        /// Number of environments (times the per-env width, for flat buffers).
        expected: usize,
        /// Length of the list given.
        actual: usize,
    },
    /// An invalid argument when building an env, a space or a wrapper.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The environments of a vector do not share one observation or action space.
    #[error("sub-environment {index} has {what} {actual}, but sub-environment 0 has {expected}")]
    SpaceMismatch {
        /// Index of the first differing sub-environment.
        index: usize,
        /// "observation space" or "action space".
        what: &'static str,
        /// Space of sub-environment 0.
        expected: String,
        /// Space of the differing one.
        actual: String,
    },
    /// A sub-environment of a vector failed; `source` is its own error.
    #[error("sub-environment {index} failed: {source}")]
    SubEnv {
        /// Index of the sub-environment.
        index: usize,
        /// The error it returned.
        source: Box<EnvError>,
    },
    /// A sub-environment of a vector panicked in `reset_into` or `step_into`. The panic was
    /// caught; the vector needs a `reset` before it steps again.
    #[error("sub-environment {index} panicked: {message}")]
    Panicked {
        /// Global index of the sub-environment.
        index: usize,
        /// The panic message (the payload when it is a string).
        message: String,
    },
    /// A sub-environment of a vector produced a NaN or an infinity: the vector needs a `reset`
    /// before it steps again.
    // One line: thiserror keeps the indentation after a line continuation.
    #[rustfmt::skip]
    #[error("sub-environment {env} returned a non-finite {what} ({}) on step {step} after the last reset of the vector (step 0 is the reset itself)", non_finite_detail(.component, .value))]
    NonFinite {
        /// Global index of the sub-environment.
        env: usize,
        /// Vector steps since the vector's last `reset`: 0 for the observations of the reset
        /// itself, 1 for the first `step` after it.
        step: u64,
        /// `"observation"`, `"final observation"` (same-step autoreset) or `"reward"`.
        what: &'static str,
        /// Index of the offending component of an observation; `None` for a reward.
        component: Option<usize>,
        /// The offending value.
        value: f64,
    },
    /// A worker thread of a `ThreadVecEnv` failed outside the sub-environments' code, or went
    /// away: the vector is unusable.
    #[error("worker thread {worker} failed: {message}")]
    Worker {
        /// Index of the worker.
        worker: usize,
        /// The panic message, or why the worker is gone.
        message: String,
    },
    /// Any other failure of a user-defined environment.
    #[error("{0}")]
    Other(String),
}

/// "NaN", or "component 2 is inf", for [`EnvError::NonFinite`].
fn non_finite_detail(component: &Option<usize>, value: &f64) -> String {
    match component {
        Some(c) => format!("component {c} is {value}"),
        None => format!("{value}"),
    }
}

impl EnvError {
    /// An [`EnvError::Io`] for `path`.
    pub fn io(path: &std::path::Path, source: &std::io::Error) -> Self {
        EnvError::Io {
            path: path.display().to_string(),
            kind: source.kind(),
            message: source.to_string(),
        }
    }
}

/// `Result` with [`EnvError`].
pub type Result<T, E = EnvError> = std::result::Result<T, E>;
