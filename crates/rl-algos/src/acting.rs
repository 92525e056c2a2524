//! Turning a policy's action tensor into environment actions, into reused host buffers.
//!
//! (`rl_tensor_bridge::ActionBuffer` takes tensors that already hold environment actions;
//! policies output action *indices* `0..n` and unclipped Gaussian samples, hence this.)

use crate::error::{AlgoError, Result};
use candle_core::Tensor;
use rl_env::{Action, BoxSpace, Space, VecAction};
use rl_tensor_bridge::{copy_tensor_to_f32, copy_tensor_to_i64};

/// Host-side actions for `n` environments, refilled from each action tensor without
/// allocating. Discrete indices `0..n` become `start..start+n`; continuous actions are clipped
/// into the box for the environment (SB3 clips in `predict` and in rollouts), while the
/// unclipped values stay available: they are what log-probabilities are taken of.
#[derive(Debug)]
pub(crate) enum ActionBuffer {
    Discrete {
        n: u64,
        start: i64,
        index: Vec<i64>,
        env: Vec<i64>,
    },
    Continuous {
        space: BoxSpace,
        dim: usize,
        raw: Vec<f32>,
        env: Vec<f32>,
    },
}

impl ActionBuffer {
    pub(crate) fn new(space: &Space, n_envs: usize) -> Self {
        match space {
            Space::Discrete { n, start } => ActionBuffer::Discrete {
                n: *n,
                start: *start,
                index: vec![0; n_envs],
                env: vec![*start; n_envs],
            },
            Space::Box(b) => ActionBuffer::Continuous {
                space: b.clone(),
                dim: b.flat_dim(),
                raw: vec![0.0; n_envs * b.flat_dim()],
                env: vec![0.0; n_envs * b.flat_dim()],
            },
        }
    }

    /// Copies `actions` (`[n]` integer indices or `[n, dim]` floats) into the buffer.
    pub(crate) fn fill(&mut self, actions: &Tensor) -> Result<()> {
        match self {
            ActionBuffer::Discrete {
                n,
                start,
                index,
                env,
            } => {
                if actions.dims() != [index.len()] {
                    return Err(AlgoError::InvalidArgument(format!(
                        "policy returned discrete actions of shape {:?}, expected [{}]",
                        actions.dims(),
                        index.len()
                    )));
                }
                copy_tensor_to_i64(actions, index)?;
                for (e, &k) in env.iter_mut().zip(index.iter()) {
                    if k < 0 || k as u64 >= *n {
                        return Err(AlgoError::InvalidArgument(format!(
                            "the policy chose action index {k} for a Discrete({n}) space"
                        )));
                    }
                    *e = *start + k;
                }
            }
            ActionBuffer::Continuous {
                space,
                dim,
                raw,
                env,
            } => {
                let n = raw.len() / (*dim).max(1);
                if actions.dims() != [n, *dim] {
                    return Err(AlgoError::InvalidArgument(format!(
                        "policy returned continuous actions of shape {:?}, expected [{n}, {dim}]",
                        actions.dims()
                    )));
                }
                copy_tensor_to_f32(actions, raw)?;
                env.copy_from_slice(raw);
                for row in env.chunks_exact_mut((*dim).max(1)) {
                    space.clip(row);
                }
            }
        }
        Ok(())
    }

    /// The environment action of environment `i`.
    pub(crate) fn get(&self, i: usize) -> Action<'_> {
        match self {
            ActionBuffer::Discrete { env, .. } => Action::Discrete(env[i]),
            ActionBuffer::Continuous { dim, env, .. } => {
                Action::Continuous(&env[i * dim..(i + 1) * dim])
            }
        }
    }

    /// All environment actions, for a vector environment.
    pub(crate) fn as_vec_action(&self) -> VecAction<'_> {
        match self {
            ActionBuffer::Discrete { env, .. } => VecAction::Discrete(env),
            ActionBuffer::Continuous { env, .. } => VecAction::Continuous(env),
        }
    }
}
