//! Shared by the fuzz targets: exercise a policy that loaded.

use candle_core::{Device, Tensor};
use rand::SeedableRng;
use rl_policy::{
    ActorCritic, Critic, MlpPolicy, Policy, QFunction, QNetwork, SacModel, Td3Model,
};

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

/// Zero observations for a model that reads `space`.
fn zeros_for(space: &rl_env::Space) -> Tensor {
    Tensor::zeros((1, space.flat_dim()), candle_core::DType::F32, &Device::Cpu)
        .expect("zeros of a loaded model's observation size")
}

/// A SAC model that loaded: its critics and target critics run, and it plays (deterministic
/// and sampled actions).
pub fn exercise_sac(m: SacModel) {
    let obs = zeros_for(&m.observation_space);
    let act = Tensor::zeros((1, m.action_space.flat_dim()), candle_core::DType::F32, &Device::Cpu)
        .expect("zero actions");
    m.critic.q_values(&obs, &act).expect("a loaded critic runs");
    m.critic_target.q_values(&obs, &act).expect("a loaded target critic runs");
    let policy = m.into_policy().expect("a loaded SAC model plays");
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    policy.act(&obs, true, &mut rng).expect("deterministic SAC action");
    policy.act(&obs, false, &mut rng).expect("sampled SAC action");
}

/// A TD3/DDPG model that loaded: its target actor and critics run, and it plays.
pub fn exercise_td3(m: Td3Model) {
    let obs = zeros_for(&m.observation_space);
    let act = rl_policy::DeterministicActor::actions(&m.actor_target, &obs)
        .expect("a loaded target actor runs");
    m.critic.q_values(&obs, &act).expect("a loaded critic runs");
    m.critic_target.q_values(&obs, &act).expect("a loaded target critic runs");
    let policy = m.into_policy().expect("a loaded TD3 model plays");
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    policy.act(&obs, true, &mut rng).expect("TD3 action");
}
