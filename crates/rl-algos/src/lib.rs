//! # rl-algos
//!
//! A2C with SB3's exact semantics, REINFORCE, and the public machinery (rollout buffer,
//! returns and GAE, optimizers, gradient clipping, callbacks, evaluation, logging,
//! checkpoints) for writing one's own training loop.

#![warn(missing_docs)]

pub mod a2c;
mod acting;
pub mod buffer;
pub mod callbacks;
pub mod checkpoint;
mod codec;
pub mod error;
pub mod evaluation;
mod fsutil;
pub mod logger;
pub mod optim;
pub mod reinforce;
pub mod returns;

pub use a2c::{a2c_loss, a2c_update, A2c, A2cBatch, A2cConfig, A2cLoss, UpdateParams, UpdateStats};
pub use buffer::{
    bootstrap_truncated, compute_gae, explained_variance, GaeInput, RolloutBuffer, Transition,
};
pub use callbacks::{
    Algorithm, Callback, CallbackList, CheckpointCallback, EvalCallback, EvalChild, Locals,
    ProgressBarCallback, StopTrainingOnMaxEpisodes, StopTrainingOnNoModelImprovement,
    StopTrainingOnRewardThreshold,
};
pub use error::{AlgoError, Result};
pub use evaluation::{evaluate_policy, evaluate_policy_vec, EvalResult};
pub use logger::Logger;
pub use optim::{clip_grad_norm, grad_norm, Adam, Optimizer, OptimizerState, RmsProp, Schedule};
pub use reinforce::{BaselineConfig, Budget, Reinforce, ReinforceConfig};
pub use returns::discounted_returns;
