//! TensorBoard event files, the logger's fourth output format (SB3's
//! `TensorBoardOutputFormat`): `tensorboard --logdir DIR` shows the scalars SB3 logs, under the
//! same tags (`rollout/ep_rew_mean`, `train/loss`, `time/fps`, ...).
//!
//! An event file is a sequence of TFRecords, each `u64` little-endian payload length, the
//! masked CRC32C of those 8 bytes, the payload, and the masked CRC32C of the payload (masking:
//! `rotate_right(crc, 15) + 0xa282ead8`). Each payload is a protobuf `tensorboard.Event`; the
//! first has `wall_time` and `file_version = "brain.Event:2"`, the others `wall_time`, `step`
//! and a `Summary` with one `Value { tag, simple_value }`, one event per scalar as PyTorch's
//! `SummaryWriter.add_scalar` writes them. The handful of protobuf fields involved are encoded
//! by hand here (field numbers from TensorBoard's `event.proto` and `summary.proto`), and
//! CRC32C is a 1 KiB table computed at compile time: no protobuf or CRC dependency for about
//! sixty lines of code.
//!
//! Like SB3, the keys it records with `exclude="tensorboard"` are left out
//! ([`TENSORBOARD_EXCLUDED`]): the counters `time/total_timesteps` (the step axis already),
//! `time/iterations`, `time/episodes`, `time/time_elapsed` and `train/n_updates`.
//!
//! The file is named `events.out.tfevents.<10-digit Unix seconds>.<host>.<pid>.<n>`, as
//! TensorBoard's own writer names it (`<n>` counts the writers of the process, so two loggers
//! started in the same second never share a file). Every dump is written with one `write` and
//! flushed, so a running TensorBoard sees each iteration as it ends.

use crate::error::{AlgoError, Result};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The keys SB3 records with `exclude="tensorboard"`; they are not written to event files.
pub const TENSORBOARD_EXCLUDED: [&str; 5] = [
    "time/episodes",
    "time/iterations",
    "time/time_elapsed",
    "time/total_timesteps",
    "train/n_updates",
];

/// The `file_version` of the first event (what TensorBoard's readers expect).
pub const FILE_VERSION: &str = "brain.Event:2";

/// CRC32C (Castagnoli, reflected polynomial `0x82f63b78`) lookup table.
const CRC32C_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// The CRC32C of `data` (as in iSCSI, ext4 and TFRecord).
pub fn crc32c(data: &[u8]) -> u32 {
    !data.iter().fold(!0u32, |crc, &b| {
        CRC32C_TABLE[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8)
    })
}

/// TFRecord's masked CRC32C: `rotate_right(crc32c(data), 15) + 0xa282ead8` (wrapping).
pub fn masked_crc32c(data: &[u8]) -> u32 {
    crc32c(data).rotate_right(15).wrapping_add(0xa282_ead8)
}

/// Appends one TFRecord holding `payload` to `out`.
pub fn write_record(out: &mut Vec<u8>, payload: &[u8]) {
    let len = (payload.len() as u64).to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc32c(&len).to_le_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(&masked_crc32c(payload).to_le_bytes());
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A length-delimited field (wire type 2).
fn put_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_varint(out, u64::from(field << 3 | 2));
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// `Event.wall_time` (field 1, double).
fn put_wall_time(out: &mut Vec<u8>, wall_time: f64) {
    out.push(1 << 3 | 1);
    out.extend_from_slice(&wall_time.to_le_bytes());
}

/// The payload of the first event: `{wall_time, file_version}`.
pub fn file_version_event(wall_time: f64) -> Vec<u8> {
    let mut out = Vec::with_capacity(32);
    put_wall_time(&mut out, wall_time);
    put_bytes(&mut out, 3, FILE_VERSION.as_bytes());
    out
}

/// Appends the payload of a scalar event, `{wall_time, step, summary: {value: [{tag,
/// simple_value}]}}`, to `out` (`scratch` holds the nested messages; both are reused).
pub fn scalar_event(
    out: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
    wall_time: f64,
    step: i64,
    tag: &str,
    value: f32,
) {
    put_wall_time(out, wall_time);
    // Event.step (field 2, int64 as a two's-complement varint).
    out.push(2 << 3);
    put_varint(out, step as u64);
    // Summary.Value: tag (field 1), simple_value (field 2, fixed32).
    scratch.clear();
    put_bytes(scratch, 1, tag.as_bytes());
    scratch.push(2 << 3 | 5);
    scratch.extend_from_slice(&value.to_le_bytes());
    // Summary { value (field 1) } is the Value's bytes behind one more key and length.
    let value_len = scratch.len() as u64;
    let summary_len = 1 + varint_len(value_len) + value_len;
    // Event.summary (field 5).
    put_varint(out, u64::from(5u32 << 3 | 2));
    put_varint(out, summary_len);
    out.push(1 << 3 | 2);
    put_varint(out, value_len);
    out.extend_from_slice(scratch);
}

/// The number of bytes of `v` as a varint.
fn varint_len(v: u64) -> u64 {
    u64::from((64 - v.max(1).leading_zeros()).div_ceil(7))
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The machine's name for file names: `/proc/sys/kernel/hostname`, `$HOSTNAME` or
/// `$COMPUTERNAME`, else `localhost`; characters other than ASCII letters, digits, `-`, `_`
/// and `.` become `_`.
fn hostname() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string());
    raw.chars()
        .take(255)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

static WRITERS: AtomicU64 = AtomicU64::new(0);

fn io_error(path: &Path, source: std::io::Error) -> AlgoError {
    AlgoError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// SB3's `get_latest_run_id`: the largest `k` of the `<name>_<k>` folders in `log_dir`, 0 when
/// there is none (or `log_dir` cannot be read).
pub fn latest_run_id(log_dir: impl AsRef<Path>, name: &str) -> u64 {
    std::fs::read_dir(log_dir.as_ref())
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| {
            let file_name = e.file_name();
            let s = file_name.to_str()?;
            let (prefix, n) = s.rsplit_once('_')?;
            (prefix == name).then(|| n.parse::<u64>().ok()).flatten()
        })
        .max()
        .unwrap_or(0)
}

/// SB3's run folder rule (`get_latest_run_id` + 1): `<log_dir>/<name>_<n>` with `n` one more
/// than the largest existing `<name>_<k>` folder (so `A2C_1` first). The folder is not created.
pub fn next_run_dir(log_dir: impl AsRef<Path>, name: &str) -> PathBuf {
    let log_dir = log_dir.as_ref();
    let n = latest_run_id(log_dir, name).saturating_add(1);
    log_dir.join(format!("{name}_{n}"))
}

/// Writes TensorBoard event files (see the [module docs](self)).
#[derive(Debug)]
pub struct TensorBoardOutput {
    path: PathBuf,
    file: File,
    buf: Vec<u8>,
    payload: Vec<u8>,
    scratch: Vec<u8>,
}

impl TensorBoardOutput {
    /// Creates `dir` (and its parents) and a new event file in it, starting with the
    /// `file_version` event. Errors: [`AlgoError::Io`].
    pub fn create(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
        let wall_time = now();
        let name = format!(
            "events.out.tfevents.{:010}.{}.{}.{}",
            wall_time as u64,
            hostname(),
            std::process::id(),
            WRITERS.fetch_add(1, Ordering::Relaxed)
        );
        let path = dir.join(name);
        let file = File::create(&path).map_err(|e| io_error(&path, e))?;
        let mut out = TensorBoardOutput {
            path,
            file,
            buf: Vec::with_capacity(4096),
            payload: Vec::with_capacity(128),
            scratch: Vec::with_capacity(96),
        };
        out.buf.clear();
        write_record(&mut out.buf, &file_version_event(wall_time));
        out.flush_buf()?;
        Ok(out)
    }

    /// The event file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes one scalar event per value, at `step`, skipping [`TENSORBOARD_EXCLUDED`] keys.
    /// Values are stored as `f32` (TensorBoard's `simple_value`).
    pub fn write(&mut self, values: &BTreeMap<String, f64>, step: u64) -> Result<()> {
        let wall_time = now();
        let step = i64::try_from(step).unwrap_or(i64::MAX);
        self.buf.clear();
        for (key, &value) in values {
            if TENSORBOARD_EXCLUDED.contains(&key.as_str()) {
                continue;
            }
            self.payload.clear();
            scalar_event(
                &mut self.payload,
                &mut self.scratch,
                wall_time,
                step,
                key,
                value as f32,
            );
            write_record(&mut self.buf, &self.payload);
        }
        self.flush_buf()
    }

    fn flush_buf(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.file
            .write_all(&self.buf)
            .and_then(|_| self.file.flush())
            .map_err(|e| io_error(&self.path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_check_values() {
        // The CRC catalogue's check value and RFC 3720's test vectors.
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(crc32c(&[0u8; 32]), 0x8a91_36aa);
        assert_eq!(crc32c(&[0xffu8; 32]), 0x62a8_ab43);
        assert_eq!(crc32c(b""), 0);
    }

    #[test]
    fn run_dirs_count_up_like_sb3() {
        let dir = std::env::temp_dir().join(format!("rl-tb-runs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(next_run_dir(&dir, "A2C"), dir.join("A2C_1"));
        std::fs::create_dir_all(dir.join("A2C_1")).unwrap();
        std::fs::create_dir_all(dir.join("A2C_7")).unwrap();
        std::fs::create_dir_all(dir.join("PPO_9")).unwrap();
        std::fs::create_dir_all(dir.join("A2C_x")).unwrap();
        assert_eq!(next_run_dir(&dir, "A2C"), dir.join("A2C_8"));
        assert_eq!(next_run_dir(&dir, "PPO"), dir.join("PPO_10"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn host_names_are_file_name_safe() {
        let h = hostname();
        assert!(!h.is_empty());
        assert!(h
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')));
    }
}
