//! The action log behind checkpoints of vectorized learners: every action the environments
//! received, in order, so that loading can rebuild the environments' exact state by resetting
//! them with the run's seed and replaying the actions (the [`VecEnv`] trait has no state
//! export, and user environments would all need one). The replayed observations are compared
//! bit for bit with the saved ones, so a non-deterministic or different environment fails
//! loudly instead of resuming another run. A discrete action costs about one byte in the file
//! (zigzag varint), a continuous component four.

use crate::codec::{Reader, Writer};
use crate::error::{AlgoError, Result};
use rl_env::{Space, VecAction, VecEnv};
use rl_tensor_bridge::ActionBuffer;

/// The actions the sub-environments received, in order.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum ActionLog {
    Discrete(Vec<i64>),
    Continuous(Vec<f32>),
}

/// Most entries reserved up front for a run's action log (128 MiB of continuous actions).
const MAX_LOG_RESERVATION: u64 = 1 << 25;

impl ActionLog {
    pub(crate) fn for_space(space: &Space) -> Self {
        match space {
            Space::Discrete { .. } => ActionLog::Discrete(Vec::new()),
            Space::Box(_) => ActionLog::Continuous(Vec::new()),
        }
    }

    /// Reserves room for `vector_steps` more steps (capped), so steps do not reallocate the
    /// log; a failed reservation only leaves the log growing on demand.
    pub(crate) fn reserve_for(&mut self, vector_steps: u64, actions: &ActionBuffer) {
        let width = (actions.n_envs() * actions.act_dim()) as u64;
        let entries = vector_steps.saturating_mul(width).min(MAX_LOG_RESERVATION) as usize;
        let _ = match self {
            ActionLog::Discrete(v) => v.try_reserve(entries),
            ActionLog::Continuous(v) => v.try_reserve(entries),
        };
    }

    /// Appends the environment actions of one vector step.
    pub(crate) fn push(&mut self, actions: VecAction<'_>) {
        match (self, actions) {
            (ActionLog::Discrete(log), VecAction::Discrete(a)) => log.extend_from_slice(a),
            (ActionLog::Continuous(log), VecAction::Continuous(a)) => log.extend_from_slice(a),
            // Both come from the same action space.
            _ => {}
        }
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        match self {
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
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self> {
        Ok(match r.u8("action log kind")? {
            0 => {
                let n = r.len(1, "action log")?;
                ActionLog::Discrete(
                    (0..n)
                        .map(|_| r.varint_i64("action log"))
                        .collect::<Result<_>>()?,
                )
            }
            1 => ActionLog::Continuous(r.f32s("action log")?),
            k => return Err(r.err(format!("unknown action log kind {k}"))),
        })
    }

    /// Rebuilds `env`'s state: the reset with `seed`, then every recorded action; errors when
    /// the observations then differ from `saved_obs`.
    pub(crate) fn replay<V: VecEnv + ?Sized>(
        &self,
        env: &mut V,
        seed: u64,
        saved_obs: &[f32],
    ) -> Result<()> {
        env.reset(Some(seed))?;
        let n = env.num_envs();
        let width = n * env.action_space().flat_dim();
        let (chunk_len, len) = match self {
            ActionLog::Discrete(log) => (n, log.len()),
            ActionLog::Continuous(log) => (width, log.len()),
        };
        if chunk_len == 0 || !len.is_multiple_of(chunk_len) {
            return Err(AlgoError::InvalidArgument(format!(
                "the action log has {len} entries, not whole steps of {chunk_len}"
            )));
        }
        match self {
            ActionLog::Discrete(log) => {
                for chunk in log.chunks(chunk_len) {
                    env.step(VecAction::Discrete(chunk))?;
                }
            }
            ActionLog::Continuous(log) => {
                for chunk in log.chunks(chunk_len) {
                    env.step(VecAction::Continuous(chunk))?;
                }
            }
        }
        let now = env.observations();
        if now.len() != saved_obs.len()
            || now
                .iter()
                .zip(saved_obs)
                .any(|(x, y)| x.to_bits() != y.to_bits())
        {
            return Err(AlgoError::InvalidArgument(
                "replaying the recorded actions did not reproduce the saved observations: the \
                 environments are not the ones of the saved run, or not deterministic"
                    .into(),
            ));
        }
        Ok(())
    }
}
