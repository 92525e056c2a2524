//! # rl-policy
//!
//! Candle policies for reinforcement learning: action distributions, the policy traits that
//! algorithms are generic over, an [`MlpPolicy`] with SB3's structure and defaults, save/load,
//! and import of Stable-Baselines3 checkpoints.
//!
//! Build CartPole's default policy and act on one observation:
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use rand::SeedableRng;
//! use rl_policy::{MlpPolicy, MlpPolicyConfig, Policy};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! std::env::set_var("RAYON_NUM_THREADS", "1"); // Candle is much slower without it
//! let env = rl_env::make("CartPole-v1")?;
//! let device = Device::Cpu;
//! let policy = MlpPolicy::new(
//!     env.observation_space(),
//!     env.action_space(),
//!     MlpPolicyConfig::default(), // SB3: pi/vf [64, 64], tanh, orthogonal init
//!     42,                         // seed of the weight init
//!     &device,
//! )?;
//! let obs = Tensor::new(&[[0.01f32, -0.02, 0.03, 0.04]], &device)?; // [batch = 1, obs_dim]
//! let mut rng = rand::rngs::StdRng::seed_from_u64(0);
//! let greedy = policy.act(&obs, true, &mut rng)?; // [1] u32: the most likely action
//! let sampled = policy.act(&obs, false, &mut rng)?; // drawn from the seeded rng
//! assert_eq!(greedy.dims(), &[1]);
//! assert!(sampled.to_vec1::<u32>()?[0] < 2);
//! # Ok(()) }
//! ```
//!
//! Any candle-nn network can implement [`ActorCritic`] and be trained by the algorithms; see
//! the trait's documentation for a network with a shared trunk and two heads.

#![warn(missing_docs)]

pub mod activation;
pub mod context;
pub mod continuous;
pub mod distributions;
pub mod error;
pub mod fast;
pub mod init;
pub mod io;
pub mod limits;
pub mod mlp;
pub mod normalized;
pub mod offpolicy_model;
pub mod ops;
mod pickle;
pub mod policy;
mod pth;
pub mod qnet;
mod sb3;
pub mod sb3_offpolicy;
pub mod sde;
pub mod squashed;
mod validate;
mod zipread;

pub use activation::Activation;
pub use context::TrainingContext;
pub use continuous::{
    ContinuousCritic, Critic, DeterministicActor, DeterministicPolicy, GaussianActor, MlpConfig,
    SacActor, SacPolicy, SacSdeConfig, Td3Actor,
};
pub use distributions::{ActionDist, Categorical, DiagGaussian};
pub use error::{PolicyError, Result};
pub use fast::{DenseParams, EngineOutputs, MlpEngine, MlpHead, MlpLayout, QEngine, QLayout};
pub use io::SavedModel;
pub use mlp::{MlpPolicy, MlpPolicyConfig, NetArch};
pub use normalized::NormalizedPolicy;
pub use offpolicy_model::{
    SacModel, SacModelConfig, SacNetworks, Td3Model, Td3ModelConfig, Td3Networks,
};
pub use policy::{ActorCritic, Evaluation, Policy, StochasticPolicy};
pub use qnet::{GreedyQPolicy, QFunction, QNetwork, QNetworkConfig};
pub use sb3::Sb3Dqn;
pub use sb3_offpolicy::{Sb3Sac, Sb3Td3};
pub use sde::{ExplorationNoise, SquashedStateDependentNoise, StateDependentNoise};
pub use squashed::SquashedDiagGaussian;

/// Entry points for the fuzz targets in `fuzz/` at the repository root: not a stable API.
#[doc(hidden)]
pub mod fuzzing {
    use crate::{MlpPolicy, Result};
    use candle_core::Device;

    /// Parses a `torch.save` archive as [`crate::MlpPolicy::from_sb3_zip`] parses `policy.pth`;
    /// returns the number of tensors read.
    pub fn read_state_dict(pth: &[u8]) -> Result<usize> {
        crate::pth::read_state_dict(pth)
            .map(|t| t.len())
            .map_err(|e| e.at("<policy.pth>"))
    }

    /// Loads the legacy saved-policy layout from the bytes of its `policy.json` and
    /// `model.safetensors`.
    pub fn load_legacy(config_json: &[u8], weights: &[u8], device: &Device) -> Result<MlpPolicy> {
        crate::io::load_legacy(
            config_json,
            crate::io::CONFIG_FILE,
            weights,
            crate::io::WEIGHTS_FILE,
            device,
        )
    }
}
