//! # rl-algos
//!
//! A2C and PPO with SB3's exact semantics on one on-policy core ([`OnPolicyAlgorithm`], SB3's
//! `OnPolicyAlgorithm`), DQN on one off-policy core ([`OffPolicyAlgorithm`]), REINFORCE, and
//! the public machinery (rollout and replay buffers, returns and GAE, the update steps as
//! functions, optimizers, gradient clipping, callbacks, evaluation, logging, checkpoints) for
//! writing one's own training loop.

#![warn(missing_docs)]

pub mod a2c;
pub mod buffer;
pub mod callbacks;
mod codec;
pub mod critic;
pub mod dqn;
mod envlog;
pub mod error;
pub mod evaluation;
mod fsutil;
pub mod logger;
pub mod noise;
pub mod off_policy;
pub mod on_policy;
pub mod optim;
pub mod ppo;
pub mod reinforce;
pub mod replay;
pub mod returns;
mod run;
pub mod sac;
pub mod td3;
pub mod tensorboard;
pub mod zoo;

pub use a2c::{
    a2c_loss, a2c_update, A2c, A2cBatch, A2cConfig, A2cLoss, A2cTrainer, UpdateParams, UpdateStats,
};
pub use buffer::{
    actions_to_tensor, bootstrap_truncated, compute_gae, explained_variance, GaeInput,
    RolloutBuffer, Transition,
};
pub use callbacks::{
    Algorithm, Callback, CallbackList, CheckpointCallback, EvalCallback, EvalChild, Locals,
    ProgressBarCallback, StopTrainingOnMaxEpisodes, StopTrainingOnNoModelImprovement,
    StopTrainingOnRewardThreshold,
};
pub use dqn::{Dqn, DqnConfig, DqnLoss, DqnTrainer, RlZooDqn};
pub use error::{AlgoError, Result};
pub use evaluation::{evaluate_policy, evaluate_policy_vec, EvalResult};
pub use logger::Logger;
pub use off_policy::{GradientSteps, OffPolicyAlgorithm, OffPolicySettings, TrainFreq};
pub use on_policy::{OnPolicyAlgorithm, OnPolicyTrainer, RolloutSettings, TrainContext};
pub use optim::{
    clip_coefficient, clip_grad_norm, grad_norm, Adam, Optimizer, OptimizerState, RmsProp, Schedule,
};
pub use ppo::{
    ppo_loss, ppo_update, Ppo, PpoBatch, PpoConfig, PpoLoss, PpoParams, PpoStats, PpoTrainStats,
    PpoTrainer,
};
pub use reinforce::{BaselineConfig, Budget, Reinforce, ReinforceConfig};
pub use replay::{ReplayBuffer, ReplaySamples, ReplayTransition};
pub use returns::discounted_returns;
