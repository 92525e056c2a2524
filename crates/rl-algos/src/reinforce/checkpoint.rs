//! REINFORCE checkpoints: configuration, counters, the ChaCha generator's position, policy
//! and baseline weights, both Adam states and the episode statistics window.
//!
//! The environment's state is not read out of it (the `Env` trait has no such hook). Every
//! episode starts with a reset seeded from the run's generator, so between episodes nothing
//! else is needed. A checkpoint taken in the middle of an episode (by a callback, or after a
//! callback stopped `learn`) also stores that episode's seed, observations, actions and
//! rewards; loading resets the environment with the seed and replays the actions, comparing
//! every observation and reward bit for bit, which reproduces its state exactly for any
//! environment that is deterministic given its seed and actions (and fails loudly otherwise).
//!
//! File layout: the magic `RLRFCK\0\0`, a format version (u32), the little-endian body, and an
//! FNV-1a 64 checksum of everything before it. Written to a temporary sibling, then renamed.

use super::{Baseline, BaselineConfig, EpisodeProgress, Reinforce, ReinforceConfig};
use crate::error::{AlgoError, Result};
use crate::fsutil::write_atomic;
use crate::optim::{Optimizer, OptimizerState};
use candle_core::{DType, Tensor, Var};
use rand::SeedableRng;
use rand_chacha::ChaCha12Rng;
use rl_env::{Action, Env, Seed, Space};
use rl_policy::StochasticPolicy;
use std::path::Path;

const MAGIC: &[u8; 8] = b"RLRFCK\0\0";
const VERSION: u32 = 1;

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[derive(Default)]
struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn f64(&mut self, v: f64) {
        self.u64(v.to_bits());
    }
    fn opt_f64(&mut self, v: Option<f64>) {
        self.u8(u8::from(v.is_some()));
        self.f64(v.unwrap_or(0.0));
    }
    fn opt_u64(&mut self, v: Option<u64>) {
        self.u8(u8::from(v.is_some()));
        self.u64(v.unwrap_or(0));
    }
    fn str(&mut self, s: &str) {
        self.u64(s.len() as u64);
        self.0.extend_from_slice(s.as_bytes());
    }
    fn f64s(&mut self, v: &[f64]) {
        self.u64(v.len() as u64);
        for &x in v {
            self.f64(x);
        }
    }
    fn f32s(&mut self, v: &[f32]) {
        self.u64(v.len() as u64);
        for x in v {
            self.0.extend_from_slice(&x.to_le_bytes());
        }
    }
    fn u32s(&mut self, v: &[u32]) {
        self.u64(v.len() as u64);
        for x in v {
            self.0.extend_from_slice(&x.to_le_bytes());
        }
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    path: &'a Path,
}

impl<'a> Reader<'a> {
    fn err(&self, reason: impl Into<String>) -> AlgoError {
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
    fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.take(1, what)?[0])
    }
    fn bool(&mut self, what: &str) -> Result<bool> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(self.err(format!("{what}: invalid flag {v}"))),
        }
    }
    fn u64(&mut self, what: &str) -> Result<u64> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    fn f64(&mut self, what: &str) -> Result<f64> {
        Ok(f64::from_bits(self.u64(what)?))
    }
    fn opt_f64(&mut self, what: &str) -> Result<Option<f64>> {
        let some = self.bool(what)?;
        let v = self.f64(what)?;
        Ok(some.then_some(v))
    }
    fn opt_u64(&mut self, what: &str) -> Result<Option<u64>> {
        let some = self.bool(what)?;
        let v = self.u64(what)?;
        Ok(some.then_some(v))
    }
    /// A length that must fit in what is left, `elem` bytes per element.
    fn len(&mut self, elem: usize, what: &str) -> Result<usize> {
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
    fn str(&mut self, what: &str) -> Result<String> {
        let n = self.len(1, what)?;
        let b = self.take(n, what)?;
        String::from_utf8(b.to_vec()).map_err(|_| self.err(format!("{what} is not UTF-8")))
    }
    fn f64s(&mut self, what: &str) -> Result<Vec<f64>> {
        let n = self.len(8, what)?;
        let b = self.take(8 * n, what)?;
        Ok(b.chunks_exact(8)
            .map(|c| {
                let mut a = [0u8; 8];
                a.copy_from_slice(c);
                f64::from_le_bytes(a)
            })
            .collect())
    }
    fn f32s(&mut self, what: &str) -> Result<Vec<f32>> {
        let n = self.len(4, what)?;
        let b = self.take(4 * n, what)?;
        Ok(b.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
    fn u32s(&mut self, what: &str) -> Result<Vec<u32>> {
        let n = self.len(4, what)?;
        let b = self.take(4 * n, what)?;
        Ok(b.chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
}

fn write_config(w: &mut Writer, c: &ReinforceConfig) {
    w.f64(c.learning_rate);
    w.f64(c.gamma);
    w.u8(u8::from(c.normalize_returns));
    w.f64(c.normalize_eps);
    w.u8(u8::from(c.baseline.is_some()));
    if let Some(b) = &c.baseline {
        w.u64(b.hidden.len() as u64);
        for &h in &b.hidden {
            w.u64(h as u64);
        }
        w.f64(b.learning_rate);
    }
    w.f64(c.adam_eps);
    w.opt_f64(c.max_grad_norm);
    w.opt_u64(c.max_episode_steps);
    w.opt_u64(c.seed);
    w.u64(c.log_interval);
    w.u64(c.stats_window_size as u64);
    w.u8(u8::from(c.verbose));
}

fn read_config(r: &mut Reader<'_>) -> Result<ReinforceConfig> {
    let learning_rate = r.f64("learning_rate")?;
    let gamma = r.f64("gamma")?;
    let normalize_returns = r.bool("normalize_returns")?;
    let normalize_eps = r.f64("normalize_eps")?;
    let baseline = if r.bool("baseline flag")? {
        let n = r.len(8, "baseline layers")?;
        let mut hidden = Vec::with_capacity(n);
        for _ in 0..n {
            let h = r.u64("baseline layer size")?;
            hidden.push(usize::try_from(h).map_err(|_| r.err("baseline layer size overflows"))?);
        }
        Some(BaselineConfig {
            hidden,
            learning_rate: r.f64("baseline learning_rate")?,
        })
    } else {
        None
    };
    let config = ReinforceConfig {
        learning_rate,
        gamma,
        normalize_returns,
        normalize_eps,
        baseline,
        adam_eps: r.f64("adam_eps")?,
        max_grad_norm: r.opt_f64("max_grad_norm")?,
        max_episode_steps: r.opt_u64("max_episode_steps")?,
        seed: r.opt_u64("seed")?,
        log_interval: r.u64("log_interval")?,
        stats_window_size: usize::try_from(r.u64("stats_window_size")?)
            .map_err(|_| r.err("stats_window_size overflows"))?,
        verbose: r.bool("verbose")?,
    };
    config
        .validate()
        .map_err(|e| r.err(format!("stored configuration is invalid: {e}")))?;
    Ok(config)
}

fn write_vars(w: &mut Writer, vars: &[(String, Var)]) -> Result<()> {
    w.u64(vars.len() as u64);
    for (name, var) in vars {
        w.str(name);
        w.u8(match var.dtype() {
            DType::F64 => 1,
            _ => 0,
        });
        w.u64(var.dims().len() as u64);
        for &d in var.dims() {
            w.u64(d as u64);
        }
        let flat = var.as_tensor().flatten_all()?;
        if var.dtype() == DType::F64 {
            w.f64s(&flat.to_vec1::<f64>()?);
        } else {
            w.f32s(&flat.to_dtype(DType::F32)?.to_vec1::<f32>()?);
        }
    }
    Ok(())
}

/// Reads stored variables and writes them into `vars` (same names, in order, same shapes).
fn read_vars_into(r: &mut Reader<'_>, vars: &[(String, Var)], what: &str) -> Result<()> {
    let n = r.len(1, what)?;
    if n != vars.len() {
        return Err(r.err(format!(
            "{what}: the file has {n} parameters, the model has {}",
            vars.len()
        )));
    }
    let mut staged = Vec::with_capacity(n);
    for (name, var) in vars {
        let stored = r.str("parameter name")?;
        if stored != *name {
            return Err(r.err(format!(
                "{what}: found parameter {stored:?} where the model has {name:?}"
            )));
        }
        let is_f64 = r.bool("parameter dtype")?;
        let rank = r.len(8, "parameter rank")?;
        let mut dims = Vec::with_capacity(rank);
        for _ in 0..rank {
            dims.push(r.u64("parameter dimension")? as usize);
        }
        if dims != var.dims() {
            return Err(r.err(format!(
                "{what}: parameter {name} has shape {dims:?} in the file, {:?} in the model",
                var.dims()
            )));
        }
        let device = var.device();
        let t = if is_f64 {
            Tensor::from_vec(r.f64s("parameter values")?, dims.as_slice(), device)
        } else {
            Tensor::from_vec(r.f32s("parameter values")?, dims.as_slice(), device)
        }
        .map_err(|e| r.err(format!("{what}: parameter {name}: {e}")))?;
        staged.push((var, t.to_dtype(var.dtype())?));
    }
    for (var, t) in staged {
        var.set(&t)?;
    }
    Ok(())
}

fn write_optimizer(w: &mut Writer, opt: &dyn Optimizer) -> Result<()> {
    let state = opt.state()?;
    w.str(&state.kind);
    w.u64(state.step);
    w.f64(opt.learning_rate());
    w.u64(state.buffers.len() as u64);
    for (slot, name, values) in &state.buffers {
        w.str(slot);
        w.str(name);
        w.f64s(values);
    }
    Ok(())
}

fn read_optimizer(r: &mut Reader<'_>, opt: &mut dyn Optimizer, what: &str) -> Result<()> {
    let kind = r.str("optimizer kind")?;
    let step = r.u64("optimizer step")?;
    let lr = r.f64("optimizer learning rate")?;
    let n = r.len(1, "optimizer buffers")?;
    let mut buffers = Vec::with_capacity(n);
    for _ in 0..n {
        buffers.push((
            r.str("optimizer slot")?,
            r.str("optimizer variable")?,
            r.f64s("optimizer values")?,
        ));
    }
    let state = OptimizerState {
        kind,
        step,
        buffers,
    };
    opt.load_state(&state)
        .map_err(|e| r.err(format!("{what}: {e}")))?;
    opt.set_learning_rate(lr);
    Ok(())
}

pub(super) fn save<P: StochasticPolicy, E: Env>(a: &Reinforce<P, E>, path: &Path) -> Result<()> {
    let mut w = Writer::default();
    w.0.extend_from_slice(MAGIC);
    w.0.extend_from_slice(&VERSION.to_le_bytes());
    write_config(&mut w, &a.config);
    w.u64(a.seed);
    w.u64(a.num_timesteps);
    w.u64(a.episodes);
    w.0.extend_from_slice(&a.rng.get_seed());
    w.u64(a.rng.get_stream());
    w.0.extend_from_slice(&a.rng.get_word_pos().to_le_bytes());
    w.u64(a.ep_info.len() as u64);
    for &(ret, len) in &a.ep_info {
        w.f64(ret);
        w.u64(len);
    }
    let p = &a.progress;
    w.u8(u8::from(p.in_episode));
    w.u8(u8::from(p.finished));
    w.u64(p.seed);
    w.f64(p.ep_return);
    w.f32s(&a.obs);
    w.f32s(&a.episode.obs);
    w.u32s(&a.episode.indices);
    w.f32s(&a.episode.actions);
    w.f64s(&a.episode.rewards);
    write_vars(&mut w, &a.policy.trainable_vars())?;
    write_optimizer(&mut w, &a.optimizer)?;
    if let Some(b) = &a.baseline {
        write_vars(&mut w, &b.net.vars())?;
        write_optimizer(&mut w, &b.optimizer)?;
    }
    let sum = fnv1a(&w.0);
    w.u64(sum);
    write_atomic(path, &w.0)
}

pub(super) fn load<P: StochasticPolicy, E: Env>(
    path: &Path,
    policy: P,
    env: E,
) -> Result<Reinforce<P, E>> {
    let bytes = std::fs::read(path).map_err(|source| AlgoError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let corrupt = |reason: &str| AlgoError::Checkpoint {
        path: path.display().to_string(),
        reason: reason.into(),
    };
    if bytes.len() < MAGIC.len() + 4 + 8 || &bytes[..MAGIC.len()] != MAGIC {
        return Err(corrupt("not a REINFORCE checkpoint (bad magic)"));
    }
    let (body, tail) = bytes.split_at(bytes.len() - 8);
    let mut sum = [0u8; 8];
    sum.copy_from_slice(tail);
    if fnv1a(body) != u64::from_le_bytes(sum) {
        return Err(corrupt("checksum mismatch (truncated or corrupted file)"));
    }
    let mut r = Reader {
        bytes: &body[MAGIC.len()..],
        path,
    };
    let version = u32::from_le_bytes([
        r.u8("version")?,
        r.u8("version")?,
        r.u8("version")?,
        r.u8("version")?,
    ]);
    if version != VERSION {
        return Err(r.err(format!(
            "format version {version}, this build reads {VERSION}"
        )));
    }
    let config = read_config(&mut r)?;
    let seed = r.u64("seed")?;
    let num_timesteps = r.u64("num_timesteps")?;
    let episodes = r.u64("episodes")?;
    let mut rng_seed = [0u8; 32];
    rng_seed.copy_from_slice(r.take(32, "RNG seed")?);
    let stream = r.u64("RNG stream")?;
    let mut wp = [0u8; 16];
    wp.copy_from_slice(r.take(16, "RNG position")?);
    let n_info = r.len(16, "episode statistics")?;
    let mut ep_info = std::collections::VecDeque::with_capacity(config.stats_window_size);
    for _ in 0..n_info {
        ep_info.push_back((r.f64("episode return")?, r.u64("episode length")?));
    }

    let progress = EpisodeProgress {
        in_episode: r.bool("episode flag")?,
        finished: r.bool("episode-finished flag")?,
        seed: r.u64("episode seed")?,
        ep_return: r.f64("episode return so far")?,
    };
    let next_obs = r.f32s("observation")?;
    let ep_obs = r.f32s("episode observations")?;
    let ep_indices = r.u32s("episode actions")?;
    let ep_actions = r.f32s("episode actions")?;
    let ep_rewards = r.f64s("episode rewards")?;

    let mut algo = Reinforce::new(policy, env, config)?;
    read_vars_into(&mut r, &algo.policy.trainable_vars(), "policy")?;
    read_optimizer(&mut r, &mut algo.optimizer, "policy optimizer")?;
    if let Some(Baseline { net, optimizer }) = algo.baseline.as_mut() {
        read_vars_into(&mut r, &net.vars(), "baseline")?;
        read_optimizer(&mut r, optimizer, "baseline optimizer")?;
    }
    if !r.bytes.is_empty() {
        return Err(r.err(format!("{} unexpected trailing bytes", r.bytes.len())));
    }
    let mut rng = ChaCha12Rng::from_seed(rng_seed);
    rng.set_stream(stream);
    rng.set_word_pos(u128::from_le_bytes(wp));
    algo.rng = rng;
    algo.seed = seed;
    algo.num_timesteps = num_timesteps;
    algo.episodes = episodes;
    algo.ep_info = ep_info;
    algo.progress = progress;
    algo.episode.obs = ep_obs;
    algo.episode.indices = ep_indices;
    algo.episode.actions = ep_actions;
    algo.episode.rewards = ep_rewards;
    if next_obs.len() != algo.obs_dim {
        return Err(corrupt(&format!(
            "observation has {} elements, the environment's have {}",
            next_obs.len(),
            algo.obs_dim
        )));
    }
    if progress.in_episode {
        replay_episode(&mut algo, &next_obs).map_err(|reason| corrupt(&reason))?;
    }
    algo.obs = next_obs;
    Ok(algo)
}

/// Brings the environment to the middle of the saved episode: reset with its seed, replay its
/// actions, and check every observation and reward (and the final observation) bit for bit.
fn replay_episode<P: StochasticPolicy, E: Env>(
    a: &mut Reinforce<P, E>,
    next_obs: &[f32],
) -> std::result::Result<(), String> {
    let ep = &a.episode;
    let len = ep.rewards.len();
    let d = a.obs_dim;
    let space = a.env.action_space().clone();
    let act_dim = space.flat_dim();
    let actions_ok = match &space {
        Space::Discrete { .. } => ep.indices.len() == len && ep.actions.is_empty(),
        Space::Box(_) => ep.actions.len() == len * act_dim && ep.indices.is_empty(),
    };
    if ep.obs.len() != len * d || !actions_ok || len == 0 {
        return Err(format!(
            "the unfinished episode's {len} steps do not match its {} observation values, {} \
             discrete and {} continuous action values",
            ep.obs.len(),
            ep.indices.len(),
            ep.actions.len()
        ));
    }
    let same = |x: &[f32], y: &[f32]| x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits());
    let mut obs = vec![0.0f32; d];
    let mut clipped = vec![0.0f32; act_dim];
    a.env
        .reset_into(Some(&Seed::from(a.progress.seed)), &mut obs)
        .map_err(|e| format!("replaying the unfinished episode: reset failed: {e}"))?;
    for t in 0..len {
        if !same(&obs, &ep.obs[t * d..(t + 1) * d]) {
            return Err(format!(
                "replaying the unfinished episode: observation {t} differs from the saved one \
                 (the environment is not the same, or not deterministic given its seed and \
                 actions)"
            ));
        }
        let action = match &space {
            Space::Discrete { start, .. } => Action::Discrete(start + i64::from(ep.indices[t])),
            Space::Box(b) => {
                clipped.copy_from_slice(&ep.actions[t * act_dim..(t + 1) * act_dim]);
                b.clip(&mut clipped);
                Action::Continuous(&clipped)
            }
        };
        let out = a
            .env
            .step_into(action, &mut obs)
            .map_err(|e| format!("replaying the unfinished episode: step {t} failed: {e}"))?;
        if out.reward.to_bits() != ep.rewards[t].to_bits() {
            return Err(format!(
                "replaying the unfinished episode: reward {t} is {} but {} was saved",
                out.reward, ep.rewards[t]
            ));
        }
    }
    if !same(&obs, next_obs) {
        return Err(
            "replaying the unfinished episode: the last observation differs from the saved one"
                .into(),
        );
    }
    Ok(())
}
