//! Multi-threaded vector engine.

/// Steps blocks of sub-environments on crossbeam worker threads.
#[derive(Debug, Default)]
pub struct ThreadVecEnv;
