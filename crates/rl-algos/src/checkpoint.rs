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
//! The file is framed and encoded by `crate::codec` under the magic `RLA2CCK\0`; this module
//! decides what is stored and in which order.

use crate::a2c::{A2c, A2cConfig, ActionLog};
use crate::codec::{self, Reader, Writer};
use crate::error::{AlgoError, Result};
use crate::optim::Schedule;
use rl_env::{VecAction, VecEnv};
use rl_policy::ActorCritic;
use std::path::Path;

const MAGIC: &[u8; 8] = b"RLA2CCK\0";
const VERSION: u32 = 2;

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
    w.usize(c.n_steps);
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
    w.opt_u64(c.seed);
    w.u64(c.log_interval);
    w.usize(c.stats_window_size);
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
    let config = A2cConfig {
        learning_rate,
        n_steps,
        gamma: f[0],
        gae_lambda: f[1],
        ent_coef: f[2],
        vf_coef: f[3],
        max_grad_norm: f[4],
        rms_prop_eps: f[5],
        use_rms_prop: r.bool("use_rms_prop")?,
        normalize_advantage: r.bool("normalize_advantage")?,
        seed: r.opt_u64("seed")?,
        log_interval: r.u64("log_interval")?,
        stats_window_size: r.usize("stats_window_size")?,
        verbose: r.bool("verbose")?,
    };
    config
        .validate()
        .map_err(|e| r.err(format!("stored configuration is invalid: {e}")))?;
    Ok(config)
}

/// Writes `a2c`'s checkpoint to `path` atomically.
pub(crate) fn save<P: ActorCritic, V: VecEnv>(a: &A2c<P, V>, path: &Path) -> Result<()> {
    let mut w = Writer::new(MAGIC, VERSION);
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
    w.rng(&a.rng);
    w.vars(a.optimizer.vars())?;
    w.optimizer(&*a.optimizer)?;

    w.usize(a.buffer.pos());
    for (_, values) in a.buffer.arrays() {
        w.f32s(values);
    }
    w.bools(&a.last_episode_starts);
    w.f64s(&a.ep_returns);
    w.usize(a.ep_lengths.len());
    for &l in &a.ep_lengths {
        w.u64(l);
    }
    w.episode_info(&a.ep_info);

    w.usize(a.env.num_envs());
    w.f32s(a.env.observations());
    match &a.action_log {
        ActionLog::Discrete(log) => {
            w.u8(0);
            w.usize(log.len());
            for &x in log {
                w.varint_i64(x);
            }
        }
        ActionLog::Continuous(log) => {
            w.u8(1);
            w.f32s(log);
        }
    }
    w.save(path)
}

/// Reads a checkpoint into a new `A2c` over `policy` and `env` (see [`A2c::load_checkpoint`]).
pub(crate) fn load<P: ActorCritic, V: VecEnv>(path: &Path, policy: P, env: V) -> Result<A2c<P, V>> {
    let bytes = codec::read_file(path)?;
    let bad = |reason: String| AlgoError::Checkpoint {
        path: path.display().to_string(),
        reason,
    };
    let mut r = Reader::open(&bytes, path, MAGIC, VERSION, "an A2C")?;
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
    a.rng = r.rng()?;
    r.vars_into(a.optimizer.vars(), "policy")?;
    r.optimizer_into(&mut *a.optimizer, "optimizer")?;

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
    a.ep_info = r.episode_info(a.config.stats_window_size)?;

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
    r.finish()?;
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
