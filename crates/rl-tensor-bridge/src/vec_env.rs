//! [`TensorVecEnv`]: a vector of environments that takes action tensors and returns tensors.

use crate::action::ActionBuffer;
use crate::error::Result;
use crate::obs::{f64_to_tensor, flags_to_tensor, ObsBatcher};
use candle_core::{DType, Device, Tensor};
use rl_env::vector::VecBuffers;
use rl_env::{Info, Space, VecEnv};

/// The result of [`TensorVecEnv::step`]: tensors on the wrapper's device, plus borrowed host
/// views of what the vector environment recorded.
#[derive(Clone, Debug)]
pub struct TensorVecStep<'a> {
    /// Observations after the step, `[n_envs, obs_dim]`. In `SameStep` autoreset mode the row
    /// of an environment whose episode ended is the next episode's first observation.
    pub obs: Tensor,
    /// Rewards, `[n_envs]`, in the wrapper's dtype.
    pub rewards: Tensor,
    /// `terminated` flags, `[n_envs]`, `u8` (1 for true).
    pub terminated: Tensor,
    /// `truncated` flags, `[n_envs]`, `u8` (1 for true).
    pub truncated: Tensor,
    /// The last observations of the episodes that ended on this step, `[k, obs_dim]`, row `j`
    /// belonging to environment `final_envs[j]`; `None` when no episode ended (and always in
    /// `NextStep` autoreset mode, where `obs` itself holds the final observations).
    pub final_observations: Option<Tensor>,
    /// The environments whose final observations are in `final_observations`, ascending.
    pub final_envs: &'a [usize],
    /// The info of every environment.
    pub infos: &'a [Info],
    /// The vector environment's host buffers (rewards, flags, observations) for code that wants
    /// them without reading tensors back.
    pub buffers: &'a VecBuffers,
}

/// Wraps a [`VecEnv`] so that `reset`/`step` speak tensors: an action tensor for all
/// environments in, batched tensors out. The piece a Candle model plugs into for vectorized
/// rollouts.
///
/// Action tensors are those of [`ActionBuffer::new`]: `[n_envs]` or `[n_envs, 1]` for
/// `Discrete`, `[n_envs, act_dim]` (or `[n_envs, ...shape]`) for `Box`. Per step the only
/// allocations are the returned tensors' storage: the action buffer and the staging of final
/// observations are reused.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use rl_env::{AutoresetMode, SyncVecEnv};
/// use rl_tensor_bridge::TensorVecEnv;
///
/// let envs = SyncVecEnv::make("CartPole-v1", 3, AutoresetMode::SameStep)?;
/// let mut venv = TensorVecEnv::new(envs, Device::Cpu)?;
/// let obs = venv.reset(Some(7))?;
/// assert_eq!(obs.dims(), &[3, 4]);
/// let step = venv.step(&Tensor::new(&[0u32, 1, 0], &Device::Cpu)?)?;
/// assert_eq!(step.rewards.dims(), &[3]);
/// assert_eq!(step.terminated.dims(), &[3]);
/// # Ok::<(), rl_tensor_bridge::BridgeError>(())
/// ```
#[derive(Debug)]
pub struct TensorVecEnv<V: VecEnv> {
    venv: V,
    batcher: ObsBatcher,
    actions: ActionBuffer,
    final_rows: Vec<f32>,
    final_envs: Vec<usize>,
}

impl<V: VecEnv> TensorVecEnv<V> {
    /// Wraps `venv`, producing `f32` tensors on `device`.
    pub fn new(venv: V, device: Device) -> Result<Self> {
        Self::with_dtype(venv, device, DType::F32)
    }

    /// Wraps `venv`, producing observation and reward tensors of `dtype` (`F32` or `F64`).
    pub fn with_dtype(venv: V, device: Device, dtype: DType) -> Result<Self> {
        let n_envs = venv.num_envs();
        let batcher = ObsBatcher::new(venv.observation_space(), n_envs, dtype, device)?;
        let actions = ActionBuffer::new(venv.action_space(), n_envs);
        Ok(TensorVecEnv {
            final_rows: Vec::with_capacity(n_envs * batcher.obs_dim()),
            final_envs: Vec::with_capacity(n_envs),
            venv,
            batcher,
            actions,
        })
    }

    /// Resets every environment (environment `i` seeded with `seed + i` when a seed is given)
    /// and returns the first observations, `[n_envs, obs_dim]`.
    pub fn reset(&mut self, seed: Option<u64>) -> Result<Tensor> {
        self.venv.reset(seed)?;
        self.observations()
    }

    /// Resets every environment with its own seed and returns the first observations.
    pub fn reset_with_seeds(&mut self, seeds: &[Option<u64>]) -> Result<Tensor> {
        self.venv.reset_with_seeds(seeds)?;
        self.observations()
    }

    /// Validates `actions` against the action space, steps every environment and returns the
    /// results as tensors.
    pub fn step(&mut self, actions: &Tensor) -> Result<TensorVecStep<'_>> {
        let host_actions = self.actions.fill_from_tensor(actions)?;
        self.venv.step(host_actions)?;
        let buffers = self.venv.buffers();
        let device = self.batcher.device();
        let obs = self.batcher.to_tensor(buffers.observations())?;

        self.final_rows.clear();
        self.final_envs.clear();
        for i in 0..buffers.num_envs() {
            if let Some(row) = buffers.final_observation(i) {
                self.final_rows.extend_from_slice(row);
                self.final_envs.push(i);
            }
        }
        let final_observations = if self.final_envs.is_empty() {
            None
        } else {
            let shape = (self.final_envs.len(), self.batcher.obs_dim());
            Some(crate::obs::f32_to_tensor(
                &self.final_rows,
                shape,
                self.batcher.dtype(),
                device,
            )?)
        };

        Ok(TensorVecStep {
            obs,
            rewards: f64_to_tensor(buffers.rewards(), self.batcher.dtype(), device)?,
            terminated: flags_to_tensor(buffers.terminated(), device)?,
            truncated: flags_to_tensor(buffers.truncated(), device)?,
            final_observations,
            final_envs: &self.final_envs,
            infos: buffers.infos(),
            buffers,
        })
    }

    /// The current observations (from the last reset or step), `[n_envs, obs_dim]`.
    pub fn observations(&self) -> Result<Tensor> {
        self.batcher.to_tensor(self.venv.observations())
    }

    /// The infos of the last reset or step.
    pub fn infos(&self) -> &[Info] {
        self.venv.buffers().infos()
    }

    /// Number of environments.
    pub fn num_envs(&self) -> usize {
        self.batcher.n_envs()
    }

    /// Observation space of one environment.
    pub fn observation_space(&self) -> &Space {
        self.venv.observation_space()
    }

    /// Action space of one environment.
    pub fn action_space(&self) -> &Space {
        self.venv.action_space()
    }

    /// The device tensors are created on.
    pub fn device(&self) -> &Device {
        self.batcher.device()
    }

    /// The dtype of observation and reward tensors.
    pub fn dtype(&self) -> DType {
        self.batcher.dtype()
    }

    /// The wrapped vector environment.
    pub fn inner(&self) -> &V {
        &self.venv
    }

    /// The wrapped vector environment, mutably.
    pub fn inner_mut(&mut self) -> &mut V {
        &mut self.venv
    }

    /// Unwraps the vector environment.
    pub fn into_inner(self) -> V {
        self.venv
    }
}
