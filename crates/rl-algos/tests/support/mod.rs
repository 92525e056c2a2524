//! Test helpers shared by the algorithms' integration tests (each test binary compiles this
//! module; not every binary uses every item).
#![allow(dead_code)]

use rl_algos::{Callback, Locals, Logger};
use std::path::PathBuf;

/// Writes one checkpoint to `path` at the first step at or after `at` environment steps
/// (through `Algorithm::save_checkpoint`, from inside `on_step` as SB3's callbacks run).
pub struct SaveAt {
    /// The step count to save at.
    pub at: u64,
    /// Where.
    pub path: PathBuf,
    /// Whether it has saved.
    pub saved: bool,
}

impl Callback for SaveAt {
    fn on_step(&mut self, locals: &Locals<'_>, _logger: &mut Logger) -> rl_algos::Result<bool> {
        if !self.saved && locals.num_timesteps >= self.at {
            locals.algo.save_checkpoint(&self.path)?;
            self.saved = true;
        }
        Ok(true)
    }
}
