//! Off-policy checkpoints (DQN, SAC, TD3, DDPG): the trainer's state (configuration, every network's
//! parameters, optimizer states, counters), the generator, counters, the replay buffer in
//! full, episode statistics, the action noise's state, and the environments' state as an action log that loading
//! replays from the seeded reset (see `crate::envlog`).
//!
//! A checkpoint written by a callback's `on_step` falls between a step and its storage (SB3
//! runs callbacks there): the step's observations and actions are saved with it, and loading
//! completes the step as the run did when its callbacks let training go on.
//!
//! The file is framed and encoded by `crate::codec` under the magic `RLOFFCK\0`; the
//! algorithm's name inside says which trainer it belongs to.

use super::{OffPolicyAlgorithm, OffPolicyTrainer};
use crate::codec::{self, Reader, Writer};
use crate::envlog::ActionLog;
use crate::error::{AlgoError, Result};
use crate::logger::Logger;
use crate::replay::ReplayBuffer;
use crate::run::{EpisodeWindow, RunState};
use rl_env::VecEnv;
use std::path::Path;

pub(crate) const MAGIC: &[u8; 8] = b"RLOFFCK\0";
/// 2: the action noise's per-environment state follows the pending step. 3: SAC's state
/// carries its gSDE settings and exploration matrices.
const VERSION: u32 = 3;

/// Writes `a`'s checkpoint to `path` atomically.
pub(super) fn save<V: VecEnv, T: OffPolicyTrainer>(
    a: &OffPolicyAlgorithm<V, T>,
    path: &Path,
) -> Result<()> {
    let mut w = Writer::new(MAGIC, VERSION);
    w.str(T::NAME);
    w.bytes(&a.trainer.save_state()?);
    a.run.write(&mut w);
    for v in [
        a.n_updates_rounds,
        a.episode_num,
        a.collected_steps,
        a.collected_episodes,
    ] {
        w.u64(v);
    }
    w.bool(a.started);
    w.usize(a.buffer.pos());
    w.bool(a.buffer.is_full());
    for (_, values) in a.buffer.arrays() {
        w.f32s(values);
    }
    w.f64s(&a.ep_returns);
    w.usize(a.ep_lengths.len());
    for &l in &a.ep_lengths {
        w.u64(l);
    }
    a.episodes.write(&mut w);
    w.usize(a.env.num_envs());
    w.f32s(a.env.observations());
    a.action_log.write(&mut w);
    w.bool(a.pending_step);
    if a.pending_step {
        w.f32s(&a.scratch.obs);
        w.f32s(&a.scratch.policy_actions);
    }
    w.f64s(a.noise_state.as_ref().map_or(&[][..], |n| &n.prev));
    w.save(path)
}

/// Reads a checkpoint into a new learner over `networks` and `env` (see
/// [`OffPolicyAlgorithm::load`]).
pub(super) fn load<V: VecEnv, T: OffPolicyTrainer>(
    path: &Path,
    networks: T::Networks,
    env: V,
) -> Result<OffPolicyAlgorithm<V, T>> {
    let bytes = codec::read_file(path)?;
    let bad = |reason: String| AlgoError::Checkpoint {
        path: path.display().to_string(),
        reason,
    };
    let mut r = Reader::open(&bytes, path, MAGIC, VERSION, T::NAME)?;
    let name = r.str("algorithm name")?;
    if name != T::NAME {
        return Err(AlgoError::CheckpointKind {
            path: path.display().to_string(),
            found: name,
            expected: T::NAME.to_string(),
        });
    }
    let trainer = T::load_state(
        r.bytes("trainer state")?,
        path,
        networks,
        env.observation_space(),
        env.action_space(),
    )?;
    // The replay buffer is stored in full: a configuration asking for more than the file holds
    // is refused before the buffer is allocated.
    let s = trainer.settings();
    let (n_envs, obs_dim, act_dim) = (
        env.num_envs(),
        env.observation_space().flat_dim(),
        env.action_space().flat_dim(),
    );
    let rows = ReplayBuffer::rows_for(s.buffer_size, n_envs, obs_dim, act_dim)
        .map_err(|e| bad(format!("stored configuration is invalid: {e}")))?;
    let values = rows * n_envs * (2 * obs_dim + act_dim + 3);
    if values.saturating_mul(4) > r.remaining() {
        return Err(bad(format!(
            "its configuration asks for a replay buffer of {values} values, more than the file \
             holds"
        )));
    }
    let run = RunState::read(&mut r)?;
    let mut a = OffPolicyAlgorithm::from_parts(env, trainer, run)
        .map_err(|e| bad(format!("cannot rebuild the model: {e}")))?;
    a.n_updates_rounds = r.u64("training rounds")?;
    a.episode_num = r.u64("episodes")?;
    a.collected_steps = r.u64("collected steps")?;
    a.collected_episodes = r.u64("collected episodes")?;
    a.started = r.bool("started")?;
    let pos = r.usize("replay position")?;
    let full = r.bool("replay full flag")?;
    let rows = a.buffer.rows();
    let (arrays, buf_pos, buf_full) = a.buffer.state_mut();
    for arr in arrays {
        let values = r.f32s("replay buffer")?;
        if values.len() != arr.len() {
            return Err(bad(format!(
                "replay buffer array has {} values, this model's has {}",
                values.len(),
                arr.len()
            )));
        }
        *arr = values;
    }
    if pos >= rows {
        return Err(bad(format!("replay position {pos} outside 0..{rows}")));
    }
    *buf_pos = pos;
    *buf_full = full;
    let expect_len = |what: &str, got: usize, want: usize| {
        if got == want {
            Ok(())
        } else {
            Err(bad(format!(
                "{what} has {got} entries, this model's has {want} ({n_envs} environments)"
            )))
        }
    };
    a.ep_returns = r.f64s("episode returns")?;
    expect_len("episode returns", a.ep_returns.len(), n_envs)?;
    let n_len = r.len(8, "episode lengths")?;
    a.ep_lengths = (0..n_len)
        .map(|_| r.u64("episode length"))
        .collect::<Result<_>>()?;
    expect_len("episode lengths", a.ep_lengths.len(), n_envs)?;
    a.episodes = EpisodeWindow::read(&mut r, a.settings.stats_window_size)?;
    expect_len(
        "saved environment count",
        r.usize("environment count")?,
        n_envs,
    )?;
    let saved_obs = r.f32s("observations")?;
    let log = ActionLog::read(&mut r)?;
    if std::mem::discriminant(&log) != std::mem::discriminant(&a.action_log) {
        return Err(bad(
            "the action log's kind does not match the VecEnv's action space".into(),
        ));
    }
    a.action_log = log;
    let pending = r.bool("pending step")?;
    if pending {
        let obs = r.f32s("pending observations")?;
        expect_len("pending observations", obs.len(), a.scratch.obs.len())?;
        let actions = r.f32s("pending actions")?;
        expect_len(
            "pending actions",
            actions.len(),
            a.scratch.policy_actions.len(),
        )?;
        a.scratch.obs = obs;
        a.scratch.policy_actions = actions;
    }
    let noise = r.f64s("action noise state")?;
    match a.noise_state.as_mut() {
        Some(state) => {
            expect_len("action noise state", noise.len(), state.prev.len())?;
            if noise.iter().any(|v| !v.is_finite()) {
                return Err(bad("the action noise state holds a non-finite value".into()));
            }
            state.prev = noise;
        }
        None => expect_len("action noise state", noise.len(), 0)?,
    }
    r.finish()?;
    if pending && !a.started {
        return Err(bad("a pending step in a run that never started".into()));
    }
    if a.started {
        a.action_log
            .replay(&mut a.env, a.run.seed, &saved_obs)
            .map_err(|e| bad(format!("replaying the environments failed: {e}")))?;
    }
    if pending {
        let buf = a.env.buffers();
        for (i, done) in a.scratch.dones.iter_mut().enumerate() {
            *done = buf.done(i);
        }
        let mut logger = std::mem::replace(&mut a.logger, Logger::new(false));
        let completed = a.complete_step(&mut logger);
        a.logger = logger;
        completed.map_err(|e| bad(format!("completing the saved step failed: {e}")))?;
    }
    Ok(a)
}
