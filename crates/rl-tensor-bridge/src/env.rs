//! [`TensorEnv`]: one environment that takes action tensors and returns tensors.

use crate::action::ActionBuffer;
use crate::error::Result;
use crate::obs::{f32_to_tensor, ObsBatcher};
use candle_core::{DType, Device, Tensor};
use rl_env::{Env, Info, Seed, Space};

/// The result of [`TensorEnv::step`]: tensors on the wrapper's device, plus the info.
#[derive(Clone, Debug)]
pub struct TensorStep {
    /// The next observation, `[obs_dim]`, in the wrapper's dtype.
    pub obs: Tensor,
    /// The reward, a scalar (shape `[]`) in the wrapper's dtype.
    pub reward: Tensor,
    /// Whether a terminal state was reached: a `u8` scalar, 1 for true.
    pub terminated: Tensor,
    /// Whether the episode was cut short: a `u8` scalar, 1 for true.
    pub truncated: Tensor,
    /// The environment's info.
    pub info: Info,
    host_reward: f64,
    host_terminated: bool,
    host_truncated: bool,
}

impl TensorStep {
    /// The reward as the environment returned it, without reading the tensor back.
    pub fn reward_f64(&self) -> f64 {
        self.host_reward
    }

    /// `terminated` as a host boolean.
    pub fn is_terminated(&self) -> bool {
        self.host_terminated
    }

    /// `truncated` as a host boolean.
    pub fn is_truncated(&self) -> bool {
        self.host_truncated
    }

    /// `terminated || truncated`: the episode is over and the next call must be a reset.
    pub fn is_done(&self) -> bool {
        self.host_terminated || self.host_truncated
    }
}

/// Wraps an [`Env`] so that `reset`/`step` speak tensors: the action is a tensor (as a Candle
/// model outputs it), the results are tensors on the chosen device.
///
/// Accepted action tensors are those of [`ActionBuffer::single`]: for `Discrete` a scalar,
/// `[1]` or `[1, 1]` of an integer dtype (or a float dtype holding an integer); for `Box` the
/// flat `[d]`, the space's shape, or either with a leading batch axis of 1, in `f32` or `f64`.
/// Per step the only allocations are the returned tensors' storage.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use rl_env::make;
/// use rl_tensor_bridge::TensorEnv;
///
/// let mut env = TensorEnv::new(make("CartPole-v1")?, Device::Cpu)?;
/// let (obs, _info) = env.reset(Some(42))?;
/// assert_eq!(obs.dims(), &[4]);
/// let push_right = Tensor::new(1u32, &Device::Cpu)?;
/// let step = env.step(&push_right)?;
/// assert_eq!(step.reward.to_scalar::<f32>()?, 1.0);
/// assert!(env.step(&Tensor::new(2u32, &Device::Cpu)?).is_err()); // Discrete(2) has 0 and 1
/// # Ok::<(), rl_tensor_bridge::BridgeError>(())
/// ```
#[derive(Debug)]
pub struct TensorEnv<E: Env> {
    env: E,
    batcher: ObsBatcher,
    actions: ActionBuffer,
    obs: Vec<f32>,
}

impl<E: Env> TensorEnv<E> {
    /// Wraps `env`, producing `f32` tensors on `device`.
    pub fn new(env: E, device: Device) -> Result<Self> {
        Self::with_dtype(env, device, DType::F32)
    }

    /// Wraps `env`, producing observation and reward tensors of `dtype` (`F32` or `F64`).
    pub fn with_dtype(env: E, device: Device, dtype: DType) -> Result<Self> {
        let batcher = ObsBatcher::new(env.observation_space(), 1, dtype, device)?;
        let actions = ActionBuffer::single(env.action_space());
        let obs = vec![0.0; batcher.obs_dim()];
        Ok(TensorEnv {
            env,
            batcher,
            actions,
            obs,
        })
    }

    /// Starts an episode (reseeding when `seed` is given) and returns the first observation,
    /// `[obs_dim]`, and the info.
    pub fn reset(&mut self, seed: Option<u64>) -> Result<(Tensor, Info)> {
        let seed = seed.map(Seed::from);
        let info = self.env.reset_into(seed.as_ref(), &mut self.obs)?;
        Ok((self.obs_tensor()?, info))
    }

    /// Validates `action` against the action space, steps the environment and returns the
    /// results as tensors.
    pub fn step(&mut self, action: &Tensor) -> Result<TensorStep> {
        self.actions.fill_from_tensor(action)?;
        let Some(host_action) = self.actions.action(0) else {
            // A single-env buffer always holds action 0; kept as an error rather than a panic.
            return Err(candle_core::Error::Msg("action buffer holds no action".into()).into());
        };
        let out = self.env.step_into(host_action, &mut self.obs)?;
        let device = self.batcher.device();
        let reward = match self.batcher.dtype() {
            DType::F64 => Tensor::new(out.reward, device)?,
            _ => Tensor::new(out.reward as f32, device)?,
        };
        Ok(TensorStep {
            obs: self.obs_tensor()?,
            reward,
            terminated: Tensor::new(u8::from(out.terminated), device)?,
            truncated: Tensor::new(u8::from(out.truncated), device)?,
            info: out.info,
            host_reward: out.reward,
            host_terminated: out.terminated,
            host_truncated: out.truncated,
        })
    }

    /// The latest observation (from the last reset or step) as a host slice.
    pub fn last_obs(&self) -> &[f32] {
        &self.obs
    }

    /// The observation space.
    pub fn observation_space(&self) -> &Space {
        self.env.observation_space()
    }

    /// The action space.
    pub fn action_space(&self) -> &Space {
        self.env.action_space()
    }

    /// The device tensors are created on.
    pub fn device(&self) -> &Device {
        self.batcher.device()
    }

    /// The dtype of observation and reward tensors.
    pub fn dtype(&self) -> DType {
        self.batcher.dtype()
    }

    /// The wrapped environment.
    pub fn env(&self) -> &E {
        &self.env
    }

    /// The wrapped environment, mutably.
    pub fn env_mut(&mut self) -> &mut E {
        &mut self.env
    }

    /// Unwraps the environment.
    pub fn into_inner(self) -> E {
        self.env
    }

    fn obs_tensor(&self) -> Result<Tensor> {
        f32_to_tensor(
            &self.obs,
            self.batcher.obs_dim(),
            self.batcher.dtype(),
            self.batcher.device(),
        )
    }
}
