//! [`CheckpointCallback`]: periodic checkpoints (SB3's `CheckpointCallback`).

use super::{Callback, Locals};
use crate::error::{AlgoError, Result};
use crate::logger::Logger;
use std::path::{Path, PathBuf};

/// Every `save_freq` calls of `on_step`, saves a checkpoint with
/// [`super::Algorithm::save_checkpoint`] to `<dir>/<prefix>_<num_timesteps>_steps`. The
/// directory is created when training starts.
#[derive(Clone, Debug)]
pub struct CheckpointCallback {
    save_freq: u64,
    dir: PathBuf,
    prefix: String,
    verbose: bool,
    n_calls: u64,
    saved: Vec<PathBuf>,
}

impl CheckpointCallback {
    /// Checkpoints every `save_freq` (> 0) calls into `dir`, with SB3's prefix `rl_model`.
    pub fn new(save_freq: u64, dir: impl Into<PathBuf>) -> Result<Self> {
        if save_freq == 0 {
            return Err(AlgoError::InvalidArgument(
                "CheckpointCallback save_freq must be at least 1".into(),
            ));
        }
        Ok(CheckpointCallback {
            save_freq,
            dir: dir.into(),
            prefix: "rl_model".into(),
            verbose: false,
            n_calls: 0,
            saved: Vec::new(),
        })
    }

    /// Sets the file-name prefix.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Prints a line for every checkpoint (SB3's `verbose=2`).
    pub fn with_verbose(mut self, verbose: bool) -> Self {
        self.verbose = verbose;
        self
    }

    /// The path a checkpoint taken at `num_timesteps` gets.
    pub fn checkpoint_path(&self, num_timesteps: u64) -> PathBuf {
        self.dir
            .join(format!("{}_{num_timesteps}_steps", self.prefix))
    }

    /// The checkpoints written so far, oldest first.
    pub fn saved(&self) -> &[PathBuf] {
        &self.saved
    }

    /// The checkpoint directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Callback for CheckpointCallback {
    fn on_training_start(&mut self, _locals: &Locals<'_>, _logger: &mut Logger) -> Result<()> {
        std::fs::create_dir_all(&self.dir).map_err(|source| AlgoError::Io {
            path: self.dir.display().to_string(),
            source,
        })
    }

    fn on_step(&mut self, locals: &Locals<'_>, _logger: &mut Logger) -> Result<bool> {
        self.n_calls += 1;
        if self.n_calls.is_multiple_of(self.save_freq) {
            let path = self.checkpoint_path(locals.num_timesteps);
            locals.algo.save_checkpoint(&path)?;
            if self.verbose {
                crate::fsutil::say(format_args!(
                    "Saving model checkpoint to {}",
                    path.display()
                ));
            }
            self.saved.push(path);
        }
        Ok(true)
    }
}
