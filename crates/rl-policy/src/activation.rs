//! The activation functions of the standard networks (SB3's `activation_fn`).
//!
//! A module of its own because both the networks ([`crate::mlp`]) and the fused CPU kernels
//! ([`crate::ops`]) use it, and neither should depend on the other for it.

use serde::{Deserialize, Serialize};

/// The activation between hidden layers (SB3's `activation_fn`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Activation {
    /// `nn.Tanh` (SB3's default for A2C/PPO), computed by [`crate::ops::tanh_f32`] on the CPU.
    Tanh,
    /// `nn.ReLU`.
    ReLU,
}
