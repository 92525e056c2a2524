//! # rl
//!
//! Reinforcement learning in native Rust on Candle: Gymnasium-faithful environments,
//! array/tensor plumbing, Candle policies and SB3-exact algorithms. This crate re-exports the
//! workspace's crates under short names and adds no logic of its own.
//!
//! | module | crate | job |
//! |---|---|---|
//! | [`env`](mod@env) | `rl-env` | `Env`, spaces, classic control, wrappers, vector envs |
//! | [`bridge`] | `rl-tensor-bridge` | host arrays <-> tensors, `TensorEnv` |
//! | [`policy`] | `rl-policy` | distributions, policy traits, `MlpPolicy`, SB3 import |
//! | [`algos`] | `rl-algos` | A2C, PPO, REINFORCE, DQN, SAC, TD3, buffers, optimizers, callbacks |
//!
//! ```
//! use rl::prelude::*;
//!
//! let env = SyncVecEnv::make("CartPole-v1", 2, AutoresetMode::SameStep)?;
//! let policy = MlpPolicy::new(
//!     env.observation_space(),
//!     env.action_space(),
//!     MlpPolicyConfig::default(),
//!     0,
//!     &Device::Cpu,
//! )?;
//! let config = A2cConfig { seed: Some(0), ..A2cConfig::default() };
//! let mut model = A2c::new(policy, env, config)?;
//! model.learn(100, &mut [])?;
//! assert!(model.num_timesteps() >= 100);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub use rl_algos as algos;
pub use rl_env as env;
pub use rl_policy as policy;
pub use rl_tensor_bridge as bridge;

/// The everyday items.
pub mod prelude {
    pub use candle_core::{DType, Device, Tensor};
    pub use rl_algos::{
        evaluate_policy, A2c, A2cConfig, AlgoError, Callback, CheckpointCallback, EvalCallback,
        Logger, Ppo, PpoConfig, ProgressBarCallback, Reinforce, ReinforceConfig, Schedule,
        StopTrainingOnRewardThreshold,
    };
    pub use rl_env::{
        check_env, make, make_with, register, Action, AutoresetMode, Env, EnvError, EnvKwargs,
        EnvRegistration, EnvSpec, Info, Space, SyncVecEnv, ThreadVecEnv, VecAction, VecEnv,
    };
    pub use rl_policy::{
        ActionDist, ActorCritic, MlpPolicy, MlpPolicyConfig, Policy, PolicyError, StochasticPolicy,
    };
    pub use rl_tensor_bridge::{ActionBuffer, BridgeError, ObsBatcher, TensorEnv, TensorVecEnv};
}
