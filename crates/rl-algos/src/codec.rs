//! The binary format both checkpoints are written in: little-endian values, length-prefixed
//! sequences, and the pieces A2C and REINFORCE store alike (the ChaCha generator, named
//! variables, optimizer state, the episode statistics window).
//!
//! A file is an 8-byte magic, a format version (u32), the body, and an FNV-1a 64 checksum of
//! everything before it. It is written to a temporary sibling and renamed into place, so a
//! crash never leaves a half-written checkpoint under the real name. Every read failure is an
//! [`AlgoError::Checkpoint`] naming the file and what was being read.

use crate::error::{AlgoError, Result};
use crate::optim::{Optimizer, OptimizerState, Schedule};
use candle_core::{DType, Tensor, Var};
use rand::SeedableRng;
use rand_chacha::ChaCha12Rng;
use std::collections::VecDeque;
use std::path::Path;

/// The magics of this crate's checkpoint formats and who writes them, so that loading one
/// kind's file as another names both.
const KNOWN_MAGICS: [(&[u8; 8], &str); 3] = [
    (b"RLONPCK\0", "an on-policy algorithm (A2C or PPO)"),
    (b"RLOFFCK\0", "an off-policy algorithm (DQN)"),
    (b"RLRFCK\0\0", "REINFORCE"),
];

/// FNV-1a, 64 bits: enough to catch truncation and bit rot (not an adversary).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Little-endian writer of one checkpoint file.
pub(crate) struct Writer(Vec<u8>);

impl Writer {
    /// A file starting with `magic` and format `version`.
    pub(crate) fn new(magic: &[u8; 8], version: u32) -> Self {
        let mut bytes = magic.to_vec();
        bytes.extend_from_slice(&version.to_le_bytes());
        Writer(bytes)
    }

    /// A writer of a part of a file (no magic, no version): bytes that another writer embeds
    /// with [`Writer::bytes`].
    pub(crate) fn part() -> Self {
        Writer(Vec::new())
    }

    /// The bytes written so far (of a [`Writer::part`]).
    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    /// Appends the checksum and writes the file to `path` atomically.
    pub(crate) fn save(mut self, path: &Path) -> Result<()> {
        let checksum = fnv1a(&self.0);
        self.u64(checksum);
        crate::fsutil::write_atomic(path, &self.0)
    }

    pub(crate) fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    pub(crate) fn bool(&mut self, v: bool) {
        self.u8(u8::from(v));
    }
    pub(crate) fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn usize(&mut self, v: usize) {
        self.u64(v as u64);
    }
    pub(crate) fn f64(&mut self, v: f64) {
        self.u64(v.to_bits());
    }
    pub(crate) fn opt_f64(&mut self, v: Option<f64>) {
        self.bool(v.is_some());
        self.f64(v.unwrap_or(0.0));
    }
    pub(crate) fn opt_u64(&mut self, v: Option<u64>) {
        self.bool(v.is_some());
        self.u64(v.unwrap_or(0));
    }
    pub(crate) fn str(&mut self, s: &str) {
        self.usize(s.len());
        self.0.extend_from_slice(s.as_bytes());
    }
    pub(crate) fn bytes(&mut self, v: &[u8]) {
        self.usize(v.len());
        self.0.extend_from_slice(v);
    }
    pub(crate) fn f32s(&mut self, v: &[f32]) {
        self.usize(v.len());
        for x in v {
            self.0.extend_from_slice(&x.to_le_bytes());
        }
    }
    pub(crate) fn f64s(&mut self, v: &[f64]) {
        self.usize(v.len());
        for &x in v {
            self.f64(x);
        }
    }
    pub(crate) fn u32s(&mut self, v: &[u32]) {
        self.usize(v.len());
        for x in v {
            self.0.extend_from_slice(&x.to_le_bytes());
        }
    }
    pub(crate) fn bools(&mut self, v: &[bool]) {
        self.usize(v.len());
        for &x in v {
            self.bool(x);
        }
    }
    /// Zigzag LEB128: small discrete actions take one byte.
    pub(crate) fn varint_i64(&mut self, v: i64) {
        let mut z = ((v << 1) ^ (v >> 63)) as u64;
        loop {
            let byte = (z & 0x7f) as u8;
            z >>= 7;
            if z == 0 {
                self.u8(byte);
                break;
            }
            self.u8(byte | 0x80);
        }
    }

    /// A schedule: its kind and values.
    pub(crate) fn schedule(&mut self, s: &Schedule) {
        match *s {
            Schedule::Constant(v) => {
                self.u8(0);
                self.f64(v);
            }
            Schedule::Linear {
                start,
                end,
                end_fraction,
            } => {
                self.u8(3);
                self.f64(start);
                self.f64(end);
                self.f64(end_fraction);
            }
            Schedule::LinearToZero(v) => {
                self.u8(2);
                self.f64(v);
            }
        }
    }

    /// The generator's key, stream and position: it continues exactly where it was.
    pub(crate) fn rng(&mut self, rng: &ChaCha12Rng) {
        self.0.extend_from_slice(&rng.get_seed());
        self.u64(rng.get_stream());
        self.0.extend_from_slice(&rng.get_word_pos().to_le_bytes());
    }

    /// Returns and lengths of finished episodes.
    pub(crate) fn episode_info(&mut self, info: &VecDeque<(f64, u64)>) {
        self.usize(info.len());
        for &(ret, len) in info {
            self.f64(ret);
            self.u64(len);
        }
    }

    /// Names, shapes and values (f64 variables as f64, all others as f32) of `vars`.
    pub(crate) fn vars(&mut self, vars: &[(String, Var)]) -> Result<()> {
        self.usize(vars.len());
        for (name, var) in vars {
            self.str(name);
            let is_f64 = var.dtype() == DType::F64;
            self.bool(is_f64);
            self.usize(var.rank());
            for &d in var.dims() {
                self.usize(d);
            }
            let flat = var.as_tensor().flatten_all()?;
            if is_f64 {
                self.f64s(&flat.to_vec1::<f64>()?);
            } else {
                self.f32s(&flat.to_dtype(DType::F32)?.to_vec1::<f32>()?);
            }
        }
        Ok(())
    }

    /// The optimizer's state and learning rate.
    pub(crate) fn optimizer(&mut self, opt: &dyn Optimizer) -> Result<()> {
        let state = opt.state()?;
        self.str(&state.kind);
        self.u64(state.step);
        self.f64(opt.learning_rate());
        self.usize(state.buffers.len());
        for (slot, name, values) in &state.buffers {
            self.str(slot);
            self.str(name);
            self.f64s(values);
        }
        Ok(())
    }
}

/// Reads the file at `path`; failing to read it is an I/O error, not a corrupt checkpoint.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| AlgoError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Little-endian reader of one checkpoint's body.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    path: &'a Path,
}

impl<'a> Reader<'a> {
    /// Checks the magic, checksum and version of `file` (read from `path`, a checkpoint of
    /// `kind` such as `"REINFORCE"`) and returns a reader over its body. Another known
    /// format's file is [`AlgoError::CheckpointKind`].
    pub(crate) fn open(
        file: &'a [u8],
        path: &'a Path,
        magic: &[u8; 8],
        version: u32,
        kind: &str,
    ) -> Result<Self> {
        let mut r = Reader { bytes: &[], path };
        let head = file.get(..magic.len());
        if head != Some(&magic[..]) {
            if let Some((_, found)) = KNOWN_MAGICS.iter().find(|(m, _)| head == Some(&m[..])) {
                return Err(AlgoError::CheckpointKind {
                    path: path.display().to_string(),
                    found: (*found).to_string(),
                    expected: kind.to_string(),
                });
            }
        }
        if file.len() < magic.len() + 4 + 8 || head != Some(&magic[..]) {
            return Err(r.err(format!(
                "not a checkpoint of {kind} (bad magic or too short)"
            )));
        }
        let (body, tail) = file.split_at(file.len() - 8);
        r.bytes = tail;
        let stored = r.u64("checksum")?;
        // Fuzzing builds (cargo-fuzz sets `cfg(fuzzing)`) compute but do not enforce the
        // checksum, or mutated inputs would never reach the decoder; real builds always do.
        if fnv1a(body) != stored && !cfg!(fuzzing) {
            return Err(r.err("checksum mismatch: the file is corrupt or truncated"));
        }
        r.bytes = &body[magic.len()..];
        let found = u32::from_le_bytes(r.array("format version")?);
        if found != version {
            return Err(r.err(format!(
                "format version {found}, this build reads {version}"
            )));
        }
        Ok(r)
    }

    /// A reader over a part of a file written by a [`Writer::part`] (read from `path`).
    pub(crate) fn part(bytes: &'a [u8], path: &'a Path) -> Self {
        Reader { bytes, path }
    }

    /// Bytes not read yet.
    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len()
    }

    /// Fails if anything is left after the data.
    pub(crate) fn finish(&self) -> Result<()> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(self.err(format!(
                "{} unexpected bytes after the data",
                self.bytes.len()
            )))
        }
    }

    /// A checkpoint error about this file.
    pub(crate) fn err(&self, reason: impl Into<String>) -> AlgoError {
        AlgoError::Checkpoint {
            path: self.path.display().to_string(),
            reason: reason.into(),
        }
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        if self.bytes.len() < n {
            return Err(self.err(format!("truncated while reading {what}")));
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }
    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, what)?);
        Ok(a)
    }
    pub(crate) fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.take(1, what)?[0])
    }
    pub(crate) fn bool(&mut self, what: &str) -> Result<bool> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(self.err(format!("{what}: {b} is not a boolean"))),
        }
    }
    pub(crate) fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }
    pub(crate) fn usize(&mut self, what: &str) -> Result<usize> {
        let v = self.u64(what)?;
        usize::try_from(v).map_err(|_| self.err(format!("{what}: {v} is too large")))
    }
    pub(crate) fn f64(&mut self, what: &str) -> Result<f64> {
        Ok(f64::from_bits(self.u64(what)?))
    }
    pub(crate) fn opt_f64(&mut self, what: &str) -> Result<Option<f64>> {
        let some = self.bool(what)?;
        let v = self.f64(what)?;
        Ok(some.then_some(v))
    }
    pub(crate) fn opt_u64(&mut self, what: &str) -> Result<Option<u64>> {
        let some = self.bool(what)?;
        let v = self.u64(what)?;
        Ok(some.then_some(v))
    }
    /// A length that must fit in what is left at `elem` bytes per element, so a corrupt
    /// length cannot trigger a huge allocation.
    pub(crate) fn len(&mut self, elem: usize, what: &str) -> Result<usize> {
        let n = self.u64(what)?;
        let fits = usize::try_from(n)
            .ok()
            .and_then(|n| n.checked_mul(elem.max(1)))
            .is_some_and(|b| b <= self.bytes.len());
        if !fits {
            return Err(self.err(format!("{what}: length {n} exceeds the file")));
        }
        Ok(n as usize)
    }
    pub(crate) fn str(&mut self, what: &str) -> Result<String> {
        let n = self.len(1, what)?;
        let b = self.take(n, what)?;
        String::from_utf8(b.to_vec()).map_err(|_| self.err(format!("{what} is not UTF-8")))
    }
    /// A length-prefixed sequence of `N`-byte values, each decoded by `f`.
    fn seq<T, const N: usize>(&mut self, what: &str, f: fn([u8; N]) -> T) -> Result<Vec<T>> {
        let n = self.len(N, what)?;
        (0..n).map(|_| Ok(f(self.array(what)?))).collect()
    }
    pub(crate) fn bytes(&mut self, what: &str) -> Result<&'a [u8]> {
        let n = self.len(1, what)?;
        self.take(n, what)
    }
    /// A schedule written by [`Writer::schedule`].
    pub(crate) fn schedule(&mut self, what: &str) -> Result<Schedule> {
        Ok(match self.u8(what)? {
            0 => Schedule::Constant(self.f64(what)?),
            // Written before linear schedules had an end fraction.
            1 => Schedule::Linear {
                start: self.f64(what)?,
                end: self.f64(what)?,
                end_fraction: 1.0,
            },
            3 => Schedule::Linear {
                start: self.f64(what)?,
                end: self.f64(what)?,
                end_fraction: self.f64(what)?,
            },
            2 => Schedule::LinearToZero(self.f64(what)?),
            k => return Err(self.err(format!("{what}: unknown schedule kind {k}"))),
        })
    }
    pub(crate) fn f32s(&mut self, what: &str) -> Result<Vec<f32>> {
        self.seq(what, f32::from_le_bytes)
    }
    pub(crate) fn f64s(&mut self, what: &str) -> Result<Vec<f64>> {
        self.seq(what, f64::from_le_bytes)
    }
    pub(crate) fn u32s(&mut self, what: &str) -> Result<Vec<u32>> {
        self.seq(what, u32::from_le_bytes)
    }
    pub(crate) fn bools(&mut self, what: &str) -> Result<Vec<bool>> {
        let n = self.len(1, what)?;
        (0..n).map(|_| self.bool(what)).collect()
    }
    pub(crate) fn varint_i64(&mut self, what: &str) -> Result<i64> {
        let mut z = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8(what)?;
            z |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(((z >> 1) as i64) ^ -((z & 1) as i64));
            }
        }
        Err(self.err(format!("{what}: malformed varint")))
    }

    /// A generator written by [`Writer::rng`].
    pub(crate) fn rng(&mut self) -> Result<ChaCha12Rng> {
        let mut rng = ChaCha12Rng::from_seed(self.array("RNG seed")?);
        rng.set_stream(self.u64("RNG stream")?);
        rng.set_word_pos(u128::from_le_bytes(self.array("RNG position")?));
        Ok(rng)
    }

    /// Episode statistics written by [`Writer::episode_info`].
    pub(crate) fn episode_info(&mut self, capacity: usize) -> Result<VecDeque<(f64, u64)>> {
        let n = self.len(16, "episode statistics")?;
        let mut info = VecDeque::with_capacity(capacity.max(n));
        for _ in 0..n {
            info.push_back((self.f64("episode return")?, self.u64("episode length")?));
        }
        Ok(info)
    }

    /// Sets `vars` (the `what` model's) from variables written by [`Writer::vars`], checking
    /// names, order and shapes; nothing is set unless all of them match.
    pub(crate) fn vars_into(&mut self, vars: &[(String, Var)], what: &str) -> Result<()> {
        let n = self.len(1, what)?;
        if n != vars.len() {
            return Err(self.err(format!(
                "{what}: the file has {n} parameters, the model has {}",
                vars.len()
            )));
        }
        let mut staged = Vec::with_capacity(n);
        for (name, var) in vars {
            let stored = self.str("parameter name")?;
            if stored != *name {
                return Err(self.err(format!(
                    "{what}: found parameter {stored:?} where the model has {name:?}"
                )));
            }
            let is_f64 = self.bool("parameter dtype")?;
            let rank = self.len(8, "parameter rank")?;
            let dims = (0..rank)
                .map(|_| self.usize("parameter dimension"))
                .collect::<Result<Vec<_>>>()?;
            if dims != var.dims() {
                return Err(self.err(format!(
                    "{what}: parameter {name} has shape {dims:?} in the file, {:?} in the model",
                    var.dims()
                )));
            }
            let device = var.device();
            let t = if is_f64 {
                Tensor::from_vec(self.f64s("parameter values")?, dims.as_slice(), device)
            } else {
                Tensor::from_vec(self.f32s("parameter values")?, dims.as_slice(), device)
            }
            .map_err(|e| self.err(format!("{what}: parameter {name}: {e}")))?;
            staged.push((var, t.to_dtype(var.dtype())?));
        }
        for (var, t) in staged {
            var.set(&t)?;
        }
        Ok(())
    }

    /// Restores `opt` (the `what` optimizer) from a state written by [`Writer::optimizer`].
    pub(crate) fn optimizer_into(&mut self, opt: &mut dyn Optimizer, what: &str) -> Result<()> {
        let kind = self.str("optimizer kind")?;
        let step = self.u64("optimizer step")?;
        let lr = self.f64("optimizer learning rate")?;
        // Each buffer takes at least its three length prefixes.
        let n = self.len(24, "optimizer buffers")?;
        let mut buffers = Vec::with_capacity(n);
        for _ in 0..n {
            buffers.push((
                self.str("optimizer slot")?,
                self.str("optimizer variable")?,
                self.f64s("optimizer values")?,
            ));
        }
        let state = OptimizerState {
            kind,
            step,
            buffers,
        };
        opt.load_state(&state)
            .map_err(|e| self.err(format!("{what}: {e}")))?;
        opt.set_learning_rate(lr);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(bytes: &[u8]) -> Reader<'_> {
        Reader {
            bytes,
            path: Path::new("mem"),
        }
    }

    #[test]
    fn varints_round_trip() {
        let mut w = Writer(Vec::new());
        let xs = [0i64, 1, -1, 63, -64, 64, i64::MAX, i64::MIN, 300];
        for &x in &xs {
            w.varint_i64(x);
        }
        let mut r = reader(&w.0);
        for &x in &xs {
            assert_eq!(r.varint_i64("x").unwrap(), x);
        }
        assert!(r.varint_i64("x").is_err());
    }

    #[test]
    fn corrupt_lengths_are_errors_not_allocations() {
        let mut w = Writer(Vec::new());
        w.u64(u64::MAX);
        assert!(matches!(
            reader(&w.0).f32s("x"),
            Err(AlgoError::Checkpoint { .. })
        ));
    }

    #[test]
    fn framing_rejects_bad_magic_checksum_and_version() {
        let path = Path::new("mem");
        let mut w = Writer::new(b"TESTCK\0\0", 3);
        w.f64s(&[1.5, -2.0]);
        let checksum = fnv1a(&w.0);
        w.u64(checksum);
        let good = w.0;
        let mut r = Reader::open(&good, path, b"TESTCK\0\0", 3, "a test").unwrap();
        assert_eq!(r.f64s("values").unwrap(), [1.5, -2.0]);
        r.finish().unwrap();
        let mut flipped = good.clone();
        flipped[14] ^= 4;
        for (bytes, magic, version) in [
            (&good[..], b"OTHER\0\0\0", 3),
            (&good[..], b"TESTCK\0\0", 4),
            (&good[..good.len() - 1], b"TESTCK\0\0", 3),
            (&flipped[..], b"TESTCK\0\0", 3),
            (&good[..5], b"TESTCK\0\0", 3),
        ] {
            assert!(matches!(
                Reader::open(bytes, path, magic, version, "a test").err(),
                Some(AlgoError::Checkpoint { .. })
            ));
        }
    }
}
