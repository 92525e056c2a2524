//! In-thread vector engine.

/// Steps its sub-environments one after the other in the calling thread.
#[derive(Debug, Default)]
pub struct SyncVecEnv;
