//! On-policy checkpoints (A2C, PPO): everything a run needs to continue bit for bit — the
//! trainer's state (configuration, optimizer), parameters, the generator, counters, the partly
//! filled rollout buffer, episode statistics, and the environments' state.
//!
//! The environments' state (physics, their NumPy-compatible generators, time-limit counters,
//! wrapper statistics) is not read out of the [`VecEnv`] — the trait has no such hook, and user
//! environments would all need one. Instead the checkpoint records the seed of the first reset
//! and every action the environments received; loading resets a freshly built `VecEnv` with
//! that seed and replays the actions, which reproduces its state exactly for any environment
//! that is deterministic given its seed and actions. The replayed observations are compared bit
//! for bit with the saved ones, so a non-deterministic environment fails loudly instead of
//! resuming a different run. The log costs about one byte per discrete action and 4 per
//! continuous component.
//!
//! A checkpoint written by a callback's `on_step` falls between a step and its storage (SB3
//! runs callbacks there): the step's policy outputs are saved with it, and loading completes
//! the step as the run did when its callbacks let training go on.
//!
//! With gSDE the policy's current exploration matrices are saved too (they are drawn at the
//! rollout start, so a checkpoint written mid-rollout needs them to sample the same actions).
//!
//! The file is framed and encoded by `crate::codec` under the magic `RLONPCK\0`; the
//! algorithm's name inside says which trainer it belongs to.

use super::{OnPolicyAlgorithm, OnPolicyTrainer};
use crate::codec::{self, Reader, Writer};
use crate::envlog::ActionLog;
use crate::error::{AlgoError, Result};
use crate::run::{EpisodeWindow, RunState};
use rl_env::VecEnv;
use rl_policy::ActorCritic;
use std::path::Path;

const MAGIC: &[u8; 8] = b"RLONPCK\0";
/// Version 2 added the gSDE exploration matrices and the trainers' `use_sde`/`sde_sample_freq`.
const VERSION: u32 = 2;

/// Writes `a`'s checkpoint to `path` atomically.
pub(super) fn save<P: ActorCritic, V: VecEnv, T: OnPolicyTrainer>(
    a: &OnPolicyAlgorithm<P, V, T>,
    path: &Path,
) -> Result<()> {
    let mut w = Writer::new(MAGIC, VERSION);
    w.str(T::NAME);
    w.bytes(&a.trainer.save_state()?);
    a.run.write(&mut w);
    w.u64(a.iterations);
    w.u64(a.n_updates);
    w.bool(a.started);
    w.vars(a.trainer.optimizer().vars())?;

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
    a.episodes.write(&mut w);

    // gSDE: the exploration matrices in use, so a run saved mid-rollout samples the same
    // actions after loading.
    let noise = a.policy.exploration_noise();
    w.bool(noise.is_some());
    if let Some(n) = noise {
        let (latent, act) = n.dims();
        w.usize(latent);
        w.usize(act);
        w.f32s(&n.single().flatten_all()?.to_vec1::<f32>()?);
        w.usize(n.n_envs());
        w.f32s(&n.per_env().flatten_all()?.to_vec1::<f32>()?);
    }

    w.usize(a.env.num_envs());
    w.f32s(a.env.observations());
    a.action_log.write(&mut w);
    w.bool(a.pending_step);
    if a.pending_step {
        let s = &a.scratch;
        w.f32s(&s.obs);
        w.f32s(&s.policy_actions);
        w.f32s(&s.values);
        w.f32s(&s.log_probs);
        w.bools(&s.dones);
    }
    w.save(path)
}

/// Reads a checkpoint into a new learner over `policy` and `env` (see
/// [`OnPolicyAlgorithm::load`]).
pub(super) fn load<P: ActorCritic, V: VecEnv, T: OnPolicyTrainer>(
    path: &Path,
    policy: P,
    env: V,
) -> Result<OnPolicyAlgorithm<P, V, T>> {
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
    let trainer = T::load_state(r.bytes("trainer state")?, path, policy.trainable_vars())?;
    // The rollout buffer is stored in full: a configuration asking for more than the file
    // holds is refused before the buffer is allocated.
    let obs_dim = env.observation_space().flat_dim();
    let act_dim = env.action_space().flat_dim();
    let values = trainer
        .settings()
        .buffer_values(env.num_envs(), obs_dim, act_dim)
        .map_err(|e| bad(format!("stored configuration is invalid: {e}")))?;
    if values.saturating_mul(4) > r.remaining() {
        return Err(bad(format!(
            "its configuration asks for a rollout buffer of {values} values, more than the file \
             holds"
        )));
    }
    let run = RunState::read(&mut r)?;
    let mut a = OnPolicyAlgorithm::from_parts(policy, env, trainer, run)
        .map_err(|e| bad(format!("cannot rebuild the model: {e}")))?;
    a.iterations = r.u64("iterations")?;
    a.n_updates = r.u64("n_updates")?;
    a.started = r.bool("started")?;
    r.vars_into(a.trainer.optimizer().vars(), "policy")?;

    let pos = r.usize("rollout position")?;
    let n_steps = a.settings.n_steps;
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
    if pos > n_steps {
        return Err(bad(format!(
            "rollout position {pos} exceeds n_steps {n_steps}"
        )));
    }
    *buf_pos = pos;
    let n_envs = a.env.num_envs();
    let expect_len = |what: &str, got: usize, want: usize| {
        if got == want {
            Ok(())
        } else {
            Err(bad(format!(
                "{what} has {got} entries, this model's has {want} ({n_envs} environments)"
            )))
        }
    };
    a.last_episode_starts = r.bools("episode starts")?;
    expect_len("episode starts", a.last_episode_starts.len(), n_envs)?;
    a.ep_returns = r.f64s("episode returns")?;
    expect_len("episode returns", a.ep_returns.len(), n_envs)?;
    let n_len = r.len(8, "episode lengths")?;
    a.ep_lengths = (0..n_len)
        .map(|_| r.u64("episode length"))
        .collect::<Result<_>>()?;
    expect_len("episode lengths", a.ep_lengths.len(), n_envs)?;
    a.episodes = EpisodeWindow::read(&mut r, a.settings.stats_window_size)?;

    if r.bool("exploration noise flag")? {
        let latent = r.usize("exploration matrix rows")?;
        let act = r.usize("exploration matrix columns")?;
        let single = r.f32s("exploration matrix")?;
        let n = r.usize("exploration matrix count")?;
        let per_env = r.f32s("exploration matrices")?;
        let per = latent.checked_mul(act);
        if per != Some(single.len()) || per.and_then(|p| p.checked_mul(n)) != Some(per_env.len()) {
            return Err(bad(format!(
                "exploration matrices of {} and {} values do not match their shape \
                 {n} x [{latent}, {act}]",
                single.len(),
                per_env.len()
            )));
        }
        let device = a.policy.device().clone();
        rl_policy::ExplorationNoise::new(
            candle_core::Tensor::from_vec(single, (latent, act), &device)?,
            candle_core::Tensor::from_vec(per_env, (n, latent, act), &device)?,
        )
        .and_then(|noise| a.policy.set_exploration_noise(noise))
        .map_err(|e| bad(format!("cannot restore the gSDE exploration matrices: {e}")))?;
    }

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
        let s = &mut a.scratch;
        for (what, dst) in [
            ("pending observations", &mut s.obs),
            ("pending actions", &mut s.policy_actions),
            ("pending values", &mut s.values),
            ("pending log-probabilities", &mut s.log_probs),
        ] {
            let values = r.f32s(what)?;
            expect_len(what, values.len(), dst.len())?;
            *dst = values;
        }
        let dones = r.bools("pending dones")?;
        expect_len("pending dones", dones.len(), n_envs)?;
        s.dones = dones;
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
        a.complete_step()
            .map_err(|e| bad(format!("completing the saved step failed: {e}")))?;
    }
    Ok(a)
}
