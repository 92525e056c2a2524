//! Observation batches: the `[n_envs, obs_dim]` host buffer of a vector of environments to one
//! tensor, checked against the observation space.

use crate::error::{BridgeError, Result};
use crate::host::dtype_name;
use candle_core::{DType, Device, Tensor};
use rl_env::Space;

/// Turns observation batches of `n_envs` environments into `[n_envs, obs_dim]` tensors of a
/// fixed dtype (`f32` or `f64`) on a fixed device, with one copy per batch.
///
/// ```
/// use candle_core::{DType, Device};
/// use rl_env::{make, Env};
/// use rl_tensor_bridge::ObsBatcher;
///
/// let env = make("CartPole-v1")?;
/// let batcher = ObsBatcher::new(env.observation_space(), 2, DType::F32, Device::Cpu)?;
/// let obs = [0.0f32; 8]; // two CartPole observations, row after row
/// let t = batcher.to_tensor(&obs)?;
/// assert_eq!(t.dims(), &[2, 4]);
/// assert!(batcher.to_tensor(&obs[..4]).is_err());
/// # Ok::<(), rl_tensor_bridge::BridgeError>(())
/// ```
#[derive(Clone, Debug)]
pub struct ObsBatcher {
    n_envs: usize,
    obs_dim: usize,
    dtype: DType,
    device: Device,
}

impl ObsBatcher {
    /// A batcher for `n_envs` observations of `space`; `dtype` must be `F32` or `F64`.
    pub fn new(space: &Space, n_envs: usize, dtype: DType, device: Device) -> Result<Self> {
        check_float_dtype(dtype)?;
        Ok(ObsBatcher {
            n_envs,
            obs_dim: space.flat_dim(),
            dtype,
            device,
        })
    }

    /// Number of environments (rows).
    pub fn n_envs(&self) -> usize {
        self.n_envs
    }

    /// Flat observation length (columns).
    pub fn obs_dim(&self) -> usize {
        self.obs_dim
    }

    /// The tensors' dtype.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The tensors' device.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Copies `obs` (`n_envs * obs_dim` values, row after row) into a `[n_envs, obs_dim]`
    /// tensor.
    pub fn to_tensor(&self, obs: &[f32]) -> Result<Tensor> {
        let expected = self.n_envs * self.obs_dim;
        if obs.len() != expected {
            return Err(BridgeError::ElementCount {
                what: "observation batch",
                shape: vec![self.n_envs, self.obs_dim],
                expected,
                actual: obs.len(),
            });
        }
        f32_to_tensor(obs, (self.n_envs, self.obs_dim), self.dtype, &self.device)
    }

    /// Copies `obs` (one observation, `obs_dim` values) into an `[obs_dim]` tensor.
    pub fn one_to_tensor(&self, obs: &[f32]) -> Result<Tensor> {
        if obs.len() != self.obs_dim {
            return Err(BridgeError::ElementCount {
                what: "observation",
                shape: vec![self.obs_dim],
                expected: self.obs_dim,
                actual: obs.len(),
            });
        }
        f32_to_tensor(obs, self.obs_dim, self.dtype, &self.device)
    }

    /// Checks that `t` is an observation batch of this batcher: shape `[n_envs, obs_dim]` and
    /// the batcher's dtype.
    pub fn check(&self, t: &Tensor) -> Result<()> {
        if t.dims() != [self.n_envs, self.obs_dim] {
            return Err(BridgeError::Shape {
                what: format!("observation batch of {} env(s)", self.n_envs),
                expected: format!("[{}, {}]", self.n_envs, self.obs_dim),
                actual: t.dims().to_vec(),
            });
        }
        if t.dtype() != self.dtype {
            return Err(BridgeError::DType {
                what: "observation batch",
                expected: dtype_name(self.dtype),
                actual: t.dtype(),
            });
        }
        Ok(())
    }
}

pub(crate) fn check_float_dtype(dtype: DType) -> Result<()> {
    if matches!(dtype, DType::F32 | DType::F64) {
        Ok(())
    } else {
        Err(BridgeError::DType {
            what: "requested observation dtype",
            expected: "f32 or f64",
            actual: dtype,
        })
    }
}

/// `f32` host values into an `F32` (one memcpy) or `F64` (one converting pass) tensor; the
/// caller has checked the element count and the dtype.
pub(crate) fn f32_to_tensor<S: Into<candle_core::Shape>>(
    data: &[f32],
    shape: S,
    dtype: DType,
    device: &Device,
) -> Result<Tensor> {
    let t = match dtype {
        DType::F64 => {
            Tensor::from_iter(data.iter().map(|&v| f64::from(v)), device)?.reshape(shape)?
        }
        _ => Tensor::from_slice(data, shape, device)?,
    };
    Ok(t)
}

/// Rewards (`f64`, as environments return them) into a 1-D tensor of `dtype` (`F32` or `F64`).
pub(crate) fn f64_to_tensor(data: &[f64], dtype: DType, device: &Device) -> Result<Tensor> {
    let t = match dtype {
        DType::F32 => Tensor::from_iter(data.iter().map(|&v| v as f32), device)?,
        _ => Tensor::from_slice(data, data.len(), device)?,
    };
    Ok(t)
}

/// Flags into a 1-D `u8` tensor (Candle has no boolean dtype): 1 for true.
pub(crate) fn flags_to_tensor(flags: &[bool], device: &Device) -> Result<Tensor> {
    Ok(Tensor::from_iter(
        flags.iter().map(|&b| u8::from(b)),
        device,
    )?)
}
