//! Atomic file writes: a reader sees the old file or the new one, never a partial write.

use crate::error::{AlgoError, Result};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

fn io(path: &Path, source: std::io::Error) -> AlgoError {
    AlgoError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Writes `bytes` to a temporary file beside `path`, syncs it and renames it over `path`.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| AlgoError::InvalidArgument(format!("{} names no file", path.display())))?;
    let mut tmp_name = name.to_os_string();
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp: PathBuf = path.with_file_name(tmp_name);
    let result = (|| {
        let mut f = File::create(&tmp).map_err(|e| io(&tmp, e))?;
        f.write_all(bytes).map_err(|e| io(&tmp, e))?;
        f.sync_all().map_err(|e| io(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| io(path, e))
    })();
    if result.is_err() {
        // Best effort: the temporary file is garbage once the write failed.
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Prints a line on stdout for verbose output. Unlike `println!`, a closed or failing stdout
/// (a pipe whose reader went away) is ignored instead of panicking: messages are best effort.
pub(crate) fn say(args: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_fmt(args).and_then(|_| out.write_all(b"\n"));
}
