//! A2C checkpoints: everything a run needs to continue bit for bit — parameters, optimizer
//! state, the action-sampling RNG, counters, configuration, the partly filled rollout buffer,
//! episode statistics, and the environments' state.
//!
//! The environments' state (physics, their NumPy-compatible generators, time-limit counters,
//! wrapper statistics) is not read out of the [`VecEnv`] — the trait has no such hook, and user
//! environments would all need one. Instead the checkpoint records the seed of the first reset
//! and every action the environments received; loading resets a freshly built `VecEnv` with
//! that seed and replays the actions, which reproduces its state exactly for any environment
//! that is deterministic given its seed and actions. The replayed observations are compared bit
//! for bit with the saved ones, so a non-deterministic environment fails loudly instead of
//! resuming a different run. The log costs 8 bytes per discrete action (less in the file) and
//! 4 per continuous component.
//!
//! File layout: the magic `RLA2CCK\0`, a format version, the little-endian body, and an
//! FNV-1a 64 checksum of everything before it. Files are written to a temporary sibling and
//! renamed into place, so a crash never leaves a half-written checkpoint under the real name.

use crate::a2c::{A2c, A2cConfig, ActionLog};
use crate::error::{AlgoError, Result};
use crate::optim::{OptimizerState, Schedule};
use candle_core::{DType, Tensor};
use rl_env::{VecAction, VecEnv};
use rl_policy::ActorCritic;
use std::path::Path;

const MAGIC: &[u8; 8] = b"RLA2CCK\0";
const VERSION: u32 = 1;

/// FNV-1a, 64 bits: enough to catch truncation and bit rot (not an adversary).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Little-endian writer.
#[derive(Default)]
struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn bool(&mut self, v: bool) {
        self.u8(u8::from(v));
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u128(&mut self, v: u128) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn f64(&mut self, v: f64) {
        self.u64(v.to_bits());
    }
    fn len(&mut self, n: usize) {
        self.u64(n as u64);
    }
    fn str(&mut self, s: &str) {
        self.len(s.len());
        self.0.extend_from_slice(s.as_bytes());
    }
    fn f32s(&mut self, v: &[f32]) {
        self.len(v.len());
        for x in v {
            self.0.extend_from_slice(&x.to_le_bytes());
        }
    }
    fn f64s(&mut self, v: &[f64]) {
        self.len(v.len());
        for &x in v {
            self.f64(x);
        }
    }
    fn bools(&mut self, v: &[bool]) {
        self.len(v.len());
        for &x in v {
            self.bool(x);
        }
    }
    /// Zigzag LEB128: small discrete actions take one byte.
    fn varint_i64(&mut self, v: i64) {
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
}

/// Little-endian reader whose every failure is a checkpoint error naming the field.
struct Reader<'a> {
    bytes: &'a [u8],
    path: &'a str,
}

impl<'a> Reader<'a> {
    fn err(&self, reason: String) -> AlgoError {
        AlgoError::Checkpoint {
            path: self.path.to_string(),
            reason,
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
    fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.take(1, what)?[0])
    }
    fn bool(&mut self, what: &str) -> Result<bool> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(self.err(format!("{what}: {b} is not a boolean"))),
        }
    }
    fn u64(&mut self, what: &str) -> Result<u64> {
        let b = self.take(8, what)?;
        Ok(u64::from_le_bytes(
            b.try_into().map_err(|_| self.err(what.into()))?,
        ))
    }
    fn u128(&mut self, what: &str) -> Result<u128> {
        let b = self.take(16, what)?;
        Ok(u128::from_le_bytes(
            b.try_into().map_err(|_| self.err(what.into()))?,
        ))
    }
    fn f64(&mut self, what: &str) -> Result<f64> {
        Ok(f64::from_bits(self.u64(what)?))
    }
    /// A length, bounded by the bytes left so a corrupt length cannot trigger a huge allocation.
    fn len(&mut self, elem_size: usize, what: &str) -> Result<usize> {
        let n = self.u64(what)?;
        let max = (self.bytes.len() / elem_size.max(1)) as u64;
        if n > max {
            return Err(self.err(format!("{what}: length {n} exceeds the file")));
        }
        Ok(n as usize)
    }
    fn usize(&mut self, what: &str) -> Result<usize> {
        let v = self.u64(what)?;
        usize::try_from(v).map_err(|_| self.err(format!("{what}: {v} is too large")))
    }
    fn str(&mut self, what: &str) -> Result<String> {
        let n = self.len(1, what)?;
        let b = self.take(n, what)?;
        String::from_utf8(b.to_vec()).map_err(|_| self.err(format!("{what} is not UTF-8")))
    }
    fn f32s(&mut self, what: &str) -> Result<Vec<f32>> {
        let n = self.len(4, what)?;
        let b = self.take(4 * n, what)?;
        Ok(b.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
    fn f64s(&mut self, what: &str) -> Result<Vec<f64>> {
        let n = self.len(8, what)?;
        (0..n).map(|_| self.f64(what)).collect()
    }
    fn bools(&mut self, what: &str) -> Result<Vec<bool>> {
        let n = self.len(1, what)?;
        (0..n).map(|_| self.bool(what)).collect()
    }
    fn varint_i64(&mut self, what: &str) -> Result<i64> {
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
}

fn write_config(w: &mut Writer, c: &A2cConfig) {
    match c.learning_rate {
        Schedule::Constant(v) => {
            w.u8(0);
            w.f64(v);
        }
        Schedule::Linear { start, end } => {
            w.u8(1);
            w.f64(start);
            w.f64(end);
        }
    }
    w.u64(c.n_steps as u64);
    for v in [
        c.gamma,
        c.gae_lambda,
        c.ent_coef,
        c.vf_coef,
        c.max_grad_norm,
        c.rms_prop_eps,
    ] {
        w.f64(v);
    }
    w.bool(c.use_rms_prop);
    w.bool(c.normalize_advantage);
    w.bool(c.seed.is_some());
    w.u64(c.seed.unwrap_or(0));
    w.u64(c.log_interval);
    w.u64(c.stats_window_size as u64);
    w.bool(c.verbose);
}

fn read_config(r: &mut Reader<'_>) -> Result<A2cConfig> {
    let learning_rate = match r.u8("learning-rate schedule kind")? {
        0 => Schedule::Constant(r.f64("learning_rate")?),
        1 => Schedule::Linear {
            start: r.f64("learning_rate start")?,
            end: r.f64("learning_rate end")?,
        },
        k => return Err(r.err(format!("unknown learning-rate schedule kind {k}"))),
    };
    let n_steps = r.usize("n_steps")?;
    let mut f = [0.0; 6];
    for (v, name) in f.iter_mut().zip([
        "gamma",
        "gae_lambda",
        "ent_coef",
        "vf_coef",
        "max_grad_norm",
        "rms_prop_eps",
    ]) {
        *v = r.f64(name)?;
    }
    let use_rms_prop = r.bool("use_rms_prop")?;
    let normalize_advantage = r.bool("normalize_advantage")?;
    let has_seed = r.bool("seed flag")?;
    let seed = r.u64("seed")?;
    let config = A2cConfig {
        learning_rate,
        n_steps,
        gamma: f[0],
        gae_lambda: f[1],
        ent_coef: f[2],
        vf_coef: f[3],
        max_grad_norm: f[4],
        rms_prop_eps: f[5],
        use_rms_prop,
        normalize_advantage,
        seed: has_seed.then_some(seed),
        log_interval: r.u64("log_interval")?,
        stats_window_size: r.usize("stats_window_size")?,
        verbose: r.bool("verbose")?,
    };
    config
        .validate()
        .map_err(|e| r.err(format!("stored configuration is invalid: {e}")))?;
    Ok(config)
}

/// Serializes `a2c` into checkpoint bytes.
fn encode<P: ActorCritic, V: VecEnv>(a: &A2c<P, V>) -> Result<Vec<u8>> {
    let mut w = Writer::default();
    w.0.extend_from_slice(MAGIC);
    w.0.extend_from_slice(&VERSION.to_le_bytes());
    write_config(&mut w, &a.config);
    w.u64(a.seed);
    for v in [
        a.num_timesteps,
        a.total_timesteps,
        a.iterations,
        a.n_updates,
    ] {
        w.u64(v);
    }
    w.bool(a.started);
    w.0.extend_from_slice(&a.rng.get_seed());
    w.u64(a.rng.get_stream());
    w.u128(a.rng.get_word_pos());

    let vars = a.optimizer.vars();
    w.len(vars.len());
    for (name, var) in vars {
        w.str(name);
        w.len(var.rank());
        for &d in var.dims() {
            w.len(d);
        }
        let values: Vec<f64> = var
            .as_tensor()
            .flatten_all()?
            .to_dtype(DType::F64)?
            .to_vec1()?;
        w.f64s(&values);
    }
    let opt = a.optimizer.state()?;
    w.str(&opt.kind);
    w.u64(opt.step);
    w.len(opt.buffers.len());
    for (slot, name, values) in &opt.buffers {
        w.str(slot);
        w.str(name);
        w.f64s(values);
    }

    w.len(a.buffer.pos());
    for (_, values) in a.buffer.arrays() {
        w.f32s(values);
    }
    w.bools(&a.last_episode_starts);
    w.f64s(&a.ep_returns);
    w.len(a.ep_lengths.len());
    for &l in &a.ep_lengths {
        w.u64(l);
    }
    w.len(a.ep_info.len());
    for &(r, l) in &a.ep_info {
        w.f64(r);
        w.u64(l);
    }

    w.len(a.env.num_envs());
    w.f32s(a.env.observations());
    match &a.action_log {
        ActionLog::Discrete(log) => {
            w.u8(0);
            w.len(log.len());
            for &x in log {
                w.varint_i64(x);
            }
        }
        ActionLog::Continuous(log) => {
            w.u8(1);
            w.f32s(log);
        }
    }
    let checksum = fnv1a(&w.0);
    w.u64(checksum);
    Ok(w.0)
}

/// Writes `a2c`'s checkpoint to `path` atomically.
pub(crate) fn save<P: ActorCritic, V: VecEnv>(a: &A2c<P, V>, path: &Path) -> Result<()> {
    crate::fsutil::write_atomic(path, &encode(a)?)
}

/// Reads a checkpoint into a new `A2c` over `policy` and `env` (see [`A2c::load_checkpoint`]).
pub(crate) fn load<P: ActorCritic, V: VecEnv>(path: &Path, policy: P, env: V) -> Result<A2c<P, V>> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| AlgoError::Io {
        path: shown.clone(),
        source,
    })?;
    let bad = |reason: String| AlgoError::Checkpoint {
        path: shown.clone(),
        reason,
    };
    if bytes.len() < MAGIC.len() + 4 + 8 || &bytes[..8] != MAGIC {
        return Err(bad("not an A2C checkpoint (bad magic or too short)".into()));
    }
    let (body, tail) = bytes.split_at(bytes.len() - 8);
    let stored = u64::from_le_bytes(tail.try_into().map_err(|_| bad("no checksum".into()))?);
    if fnv1a(body) != stored {
        return Err(bad(
            "checksum mismatch: the file is corrupt or truncated".into()
        ));
    }
    let version = u32::from_le_bytes([body[8], body[9], body[10], body[11]]);
    if version != VERSION {
        return Err(bad(format!(
            "format version {version}, this build reads {VERSION}"
        )));
    }
    let mut r = Reader {
        bytes: &body[12..],
        path: &shown,
    };
    let config = read_config(&mut r)?;
    let seed = r.u64("effective seed")?;
    let config_for_new = A2cConfig {
        seed: Some(seed),
        ..config.clone()
    };
    let mut a = A2c::new(policy, env, config_for_new)
        .map_err(|e| bad(format!("cannot rebuild the model: {e}")))?;
    a.config = config;
    a.num_timesteps = r.u64("num_timesteps")?;
    a.total_timesteps = r.u64("total_timesteps")?;
    a.iterations = r.u64("iterations")?;
    a.n_updates = r.u64("n_updates")?;
    a.started = r.bool("started")?;
    let rng_seed: [u8; 32] = r
        .take(32, "RNG seed")?
        .try_into()
        .map_err(|_| bad("RNG seed".into()))?;
    let stream = r.u64("RNG stream")?;
    let word_pos = r.u128("RNG position")?;
    {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha12Rng::from_seed(rng_seed);
        rng.set_stream(stream);
        rng.set_word_pos(word_pos);
        a.rng = rng;
    }

    load_params(&mut r, &a)?;
    let kind = r.str("optimizer kind")?;
    let step = r.u64("optimizer step")?;
    let n_buf = r.len(8, "optimizer buffer count")?;
    let mut buffers = Vec::with_capacity(n_buf);
    for _ in 0..n_buf {
        buffers.push((
            r.str("optimizer slot")?,
            r.str("optimizer variable")?,
            r.f64s("optimizer values")?,
        ));
    }
    a.optimizer
        .load_state(&OptimizerState {
            kind,
            step,
            buffers,
        })
        .map_err(|e| bad(e.to_string()))?;

    let pos = r.usize("rollout position")?;
    let (arrays, buf_pos) = a.buffer.arrays_mut();
    for arr in arrays {
        let values = r.f32s("rollout buffer")?;
        if values.len() != arr.len() {
            return Err(bad(format!(
                "rollout buffer array has {} values, this model's has {}",
                values.len(),
                arr.len()
            )));
        }
        *arr = values;
    }
    if pos > a.config.n_steps {
        return Err(bad(format!(
            "rollout position {pos} exceeds n_steps {}",
            a.config.n_steps
        )));
    }
    *buf_pos = pos;
    let n_envs = a.env.num_envs();
    let expect_len = |what: &str, got: usize| {
        if got == n_envs {
            Ok(())
        } else {
            Err(bad(format!(
                "{what} has {got} entries, the VecEnv has {n_envs} environments"
            )))
        }
    };
    a.last_episode_starts = r.bools("episode starts")?;
    expect_len("episode starts", a.last_episode_starts.len())?;
    a.ep_returns = r.f64s("episode returns")?;
    expect_len("episode returns", a.ep_returns.len())?;
    let n_len = r.len(8, "episode lengths")?;
    a.ep_lengths = (0..n_len)
        .map(|_| r.u64("episode length"))
        .collect::<Result<_>>()?;
    expect_len("episode lengths", a.ep_lengths.len())?;
    let n_info = r.len(16, "episode statistics")?;
    a.ep_info.clear();
    for _ in 0..n_info {
        a.ep_info
            .push_back((r.f64("episode return")?, r.u64("episode length")?));
    }

    expect_len("saved environment count", r.usize("environment count")?)?;
    let saved_obs = r.f32s("observations")?;
    let log = match r.u8("action log kind")? {
        0 => {
            let n = r.len(1, "action log")?;
            ActionLog::Discrete(
                (0..n)
                    .map(|_| r.varint_i64("action log"))
                    .collect::<Result<_>>()?,
            )
        }
        1 => ActionLog::Continuous(r.f32s("action log")?),
        k => return Err(bad(format!("unknown action log kind {k}"))),
    };
    if !r.bytes.is_empty() {
        return Err(bad(format!(
            "{} unexpected bytes after the data",
            r.bytes.len()
        )));
    }
    if std::mem::discriminant(&log) != std::mem::discriminant(&a.action_log) {
        return Err(bad(
            "the action log's kind does not match the VecEnv's action space".into(),
        ));
    }
    a.action_log = log;
    if a.started {
        replay(&mut a).map_err(|e| bad(format!("replaying the environments failed: {e}")))?;
        if a.env.observations().len() != saved_obs.len()
            || a.env
                .observations()
                .iter()
                .zip(&saved_obs)
                .any(|(x, y)| x.to_bits() != y.to_bits())
        {
            return Err(bad(
                "replaying the recorded actions did not reproduce the saved observations: \
                 the environments are not the ones of the saved run, or not deterministic"
                    .into(),
            ));
        }
    }
    Ok(a)
}

/// Sets the policy's parameters from the reader, by name, checking names and shapes.
fn load_params<P: ActorCritic, V: VecEnv>(r: &mut Reader<'_>, a: &A2c<P, V>) -> Result<()> {
    let vars = a.optimizer.vars();
    let n = r.len(8, "parameter count")?;
    if n != vars.len() {
        return Err(r.err(format!(
            "{n} parameters saved, the policy has {}",
            vars.len()
        )));
    }
    let mut staged = Vec::with_capacity(n);
    for (name, var) in vars {
        let saved = r.str("parameter name")?;
        if &saved != name {
            return Err(r.err(format!(
                "parameter {saved:?} saved where the policy has {name:?}"
            )));
        }
        let rank = r.len(8, "parameter rank")?;
        let dims = (0..rank)
            .map(|_| r.usize("parameter shape"))
            .collect::<Result<Vec<_>>>()?;
        if dims != var.dims() {
            return Err(r.err(format!(
                "parameter {name} saved with shape {dims:?}, the policy's is {:?}",
                var.dims()
            )));
        }
        let values = r.f64s("parameter values")?;
        if values.len() != var.elem_count() {
            return Err(r.err(format!(
                "parameter {name}: {} values for shape {dims:?}",
                values.len()
            )));
        }
        staged.push(Tensor::from_vec(values, dims, var.device())?.to_dtype(var.dtype())?);
    }
    for ((_, var), t) in vars.iter().zip(staged) {
        var.set(&t)?;
    }
    Ok(())
}

/// Rebuilds the environments' state: the seeded reset, then every recorded action.
fn replay<P: ActorCritic, V: VecEnv>(a: &mut A2c<P, V>) -> Result<()> {
    a.env.reset(Some(a.seed))?;
    let n = a.env.num_envs();
    match &a.action_log {
        ActionLog::Discrete(log) => {
            for chunk in log.chunks(n) {
                a.env.step(VecAction::Discrete(chunk))?;
            }
        }
        ActionLog::Continuous(log) => {
            let width = n * a.env.action_space().flat_dim();
            for chunk in log.chunks(width.max(1)) {
                a.env.step(VecAction::Continuous(chunk))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        let mut w = Writer::default();
        let xs = [0i64, 1, -1, 63, -64, 64, i64::MAX, i64::MIN, 300];
        for &x in &xs {
            w.varint_i64(x);
        }
        let mut r = Reader {
            bytes: &w.0,
            path: "mem",
        };
        for &x in &xs {
            assert_eq!(r.varint_i64("x").unwrap(), x);
        }
        assert!(r.varint_i64("x").is_err());
    }

    #[test]
    fn corrupt_lengths_are_errors_not_allocations() {
        let mut w = Writer::default();
        w.u64(u64::MAX);
        let mut r = Reader {
            bytes: &w.0,
            path: "mem",
        };
        assert!(matches!(r.f32s("x"), Err(AlgoError::Checkpoint { .. })));
    }
}
