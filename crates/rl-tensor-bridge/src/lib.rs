//! # rl-tensor-bridge
//!
//! Moves data between host memory, environments and Candle tensors, checked against the
//! environment's spaces and without needless copies:
//!
//! - [`convert`]: `&[T]`, `Vec<T>`, `[T; N]`, rows and flat row batches to tensors and back, on
//!   an explicit [`Device`](candle_core::Device), with `f32`/`f64` conversions
//!   ([`slice_to_tensor_as`], [`copy_tensor_to_f32`]) and integer ones ([`copy_tensor_to_i64`]);
//! - [`ObsBatcher`]: a vector environment's `[n_envs, obs_dim]` observation buffer to one tensor
//!   with one copy;
//! - [`ActionBuffer`]: a policy's action tensor to host actions in a buffer reused every step,
//!   checked against the action space (range for `Discrete`, shape and finiteness for `Box`);
//! - [`TensorEnv`] and [`TensorVecEnv`]: environments whose `reset`/`step` take and return
//!   tensors, so that any Candle model can drive them;
//! - with the `ndarray` feature, the `ndarray` module: arrays (1-D, 2-D, dynamic) to tensors
//!   and back.
//!
//! Tensors read back to the host come straight out of the storage when they are contiguous and
//! on the CPU, and through one device-to-host copy otherwise. Every error is a [`BridgeError`]
//! naming the expected and the actual shape, dtype or range.
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use rl_env::make;
//! use rl_tensor_bridge::TensorEnv;
//!
//! // Any function from observation tensors to action tensors can play: here, push the cart
//! // towards the side the pole leans to.
//! let policy = |obs: &Tensor| -> candle_core::Result<Tensor> {
//!     obs.get(2)?.ge(0.0)?.to_dtype(DType::U32)
//! };
//!
//! let mut env = TensorEnv::new(make("CartPole-v1")?, Device::Cpu)?;
//! let (mut obs, _info) = env.reset(Some(0))?;
//! let mut episode_return = 0.0;
//! loop {
//!     let step = env.step(&policy(&obs)?)?;
//!     episode_return += step.reward_f64();
//!     if step.is_done() {
//!         break;
//!     }
//!     obs = step.obs;
//! }
//! assert!(episode_return > 10.0);
//! # Ok::<(), rl_tensor_bridge::BridgeError>(())
//! ```

#![warn(missing_docs)]

pub mod action;
mod checked;
pub mod convert;
pub mod env;
pub mod error;
mod host;
#[cfg(feature = "ndarray")]
pub mod ndarray;
pub mod obs;
pub mod vec_env;

pub use action::{discrete_actions_to_tensor, ActionBuffer};
pub use convert::{
    array_to_tensor, batch_to_tensor, copy_tensor_to_f32, copy_tensor_to_f64, copy_tensor_to_i64,
    copy_tensor_to_slice, rows_to_tensor, slice_to_tensor, slice_to_tensor_as, tensor_to_array,
    tensor_to_rows, tensor_to_vec, vec_to_tensor,
};
pub use env::{TensorEnv, TensorStep};
pub use error::{BridgeError, Result};
pub use obs::ObsBatcher;
pub use vec_env::{TensorVecEnv, TensorVecStep};
