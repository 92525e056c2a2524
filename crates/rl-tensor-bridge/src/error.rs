//! The error type of every fallible call in this crate.

use candle_core::DType;
use rl_env::EnvError;
use thiserror::Error;

/// What went wrong while moving data between the host, Candle tensors and environments.
///
/// Every variant names what was expected and what was found (shape, dtype, element count or
/// range), so a message alone tells the caller what to fix.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum BridgeError {
    /// Host data whose length does not match the shape asked for.
    #[error("{what} has {actual} elements but shape {shape:?} needs {expected}")]
    ElementCount {
        /// What the data is ("host data", "observation batch", "output buffer", ...).
        what: &'static str,
        /// The shape the data should fill.
        shape: Vec<usize>,
        /// Number of elements of that shape.
        expected: usize,
        /// Number of elements given.
        actual: usize,
    },
    /// A tensor of the wrong shape.
    #[error("{what} has shape {actual:?} but {expected} is needed")]
    Shape {
        /// What the tensor is, with the space or batch size that fixes its shape.
        what: String,
        /// The accepted shape(s), e.g. `[8] or [8, 1]`.
        expected: String,
        /// The shape found.
        actual: Vec<usize>,
    },
    /// Rows of a batch that do not all have the same length.
    #[error("row {row} has {actual} elements but row 0 has {expected}")]
    RaggedRows {
        /// Index of the first row whose length differs.
        row: usize,
        /// Length of row 0.
        expected: usize,
        /// Length of that row.
        actual: usize,
    },
    /// A tensor or a requested dtype that the conversion does not handle.
    #[error("{what} has dtype {} but {expected} is needed", actual.as_str())]
    DType {
        /// What the tensor or the requested output is.
        what: &'static str,
        /// The accepted dtype(s).
        expected: &'static str,
        /// The dtype found.
        actual: DType,
    },
    /// A discrete action outside `[start, start + n)`.
    #[error(
        "action {action} of env {env} is outside the action space Discrete(n={n}, start={start}), \
         i.e. the range [{start}, {end})",
        end = *start as i128 + *n as i128
    )]
    ActionOutOfRange {
        /// Index of the environment (row of the batch).
        env: usize,
        /// The action found.
        action: i64,
        /// Number of actions of the space.
        n: u64,
        /// First action of the space.
        start: i64,
    },
    /// A policy's discrete action index outside `[0, n)`.
    #[error(
        "the policy chose action index {index} for env {env}, but a Discrete({n}) action space \
         has indices 0..{n}"
    )]
    ActionIndexOutOfRange {
        /// Index of the environment (row of the batch).
        env: usize,
        /// The index found.
        index: i64,
        /// Number of actions of the space.
        n: u64,
    },
    /// A floating-point tensor of discrete actions holding a value that is not an integer
    /// (a fraction, NaN, an infinity or a value beyond the range of `i64`).
    #[error("discrete action of env {env} is {value}, not an integer")]
    NonIntegralAction {
        /// Index of the environment.
        env: usize,
        /// The value found.
        value: f64,
    },
    /// A continuous action with a NaN or infinite component (after conversion to `f32`).
    #[error("component {component} of the action of env {env} is {value}, not a finite number")]
    NonFiniteAction {
        /// Index of the environment.
        env: usize,
        /// Index of the component inside the action.
        component: usize,
        /// The value found (infinite when an `f64` value does not fit in `f32`).
        value: f64,
    },
    /// A value that the requested dtype cannot hold (e.g. a negative action as `u32`).
    #[error("{what}: value {value} at index {index} does not fit in dtype {}", dtype.as_str())]
    NotRepresentable {
        /// What is being converted.
        what: &'static str,
        /// Index of the value.
        index: usize,
        /// The value.
        value: i64,
        /// The target dtype.
        dtype: DType,
    },
    /// The environment failed.
    #[error(transparent)]
    Env(#[from] EnvError),
    /// Candle failed (device transfer, allocation, ...).
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
}

/// `Result` with [`BridgeError`].
pub type Result<T, E = BridgeError> = std::result::Result<T, E>;

/// Formats a list of accepted shapes as `[a, b] or [c]`.
pub(crate) fn shapes_text(shapes: &[&[usize]]) -> String {
    let parts: Vec<String> = shapes.iter().map(|s| format!("{s:?}")).collect();
    parts.join(" or ")
}
