//! Shared by the fuzz targets: exercise a policy that loaded.

use candle_core::{Device, Tensor};
use rl_policy::{ActorCritic, MlpPolicy, QFunction, QNetwork};

/// Runs one forward pass on zero observations: a policy that loads must also act.
pub fn exercise(policy: &MlpPolicy) {
    let dim = policy.observation_space().flat_dim();
    let obs = Tensor::zeros((1, dim), candle_core::DType::F32, &Device::Cpu)
        .expect("zeros of a loaded policy's observation size");
    policy
        .forward(&obs)
        .expect("a loaded policy must run on observations of its own size");
}

/// Runs one forward pass of a Q-network that loaded, on zero observations.
pub fn exercise_q(q: &QNetwork) {
    let dim = q.observation_space().flat_dim();
    let obs = Tensor::zeros((1, dim), candle_core::DType::F32, &Device::Cpu)
        .expect("zeros of a loaded Q-network's observation size");
    q.q_values(&obs)
        .expect("a loaded Q-network must run on observations of its own size");
}
