//! `Sb3Sac::from_zip_bytes` and `Sb3Td3::from_zip_bytes` on arbitrary bytes: an error, or
//! networks that compute finite outputs.
#![no_main]

use candle_core::{Device, Tensor};
use libfuzzer_sys::fuzz_target;
use rl_policy::{Critic, DeterministicActor, GaussianActor, Sb3Sac, Sb3Td3};

fn obs_for(space: &rl_env::Space) -> Tensor {
    let d = space.flat_dim();
    Tensor::from_vec(vec![0.5f32; 2 * d], (2, d), &Device::Cpu).unwrap()
}

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Sb3Sac::from_zip_bytes(data, &Device::Cpu) {
        let obs = obs_for(&m.observation_space);
        let (mean, _) = m.actor.mean_log_std(&obs).unwrap();
        let acts = mean.tanh().unwrap();
        let _ = m.critic.q_values(&obs, &acts).unwrap();
    }
    if let Ok(m) = Sb3Td3::from_zip_bytes(data, &Device::Cpu) {
        let obs = obs_for(&m.observation_space);
        let acts = m.actor.actions(&obs).unwrap();
        let _ = m.critic_target.q_values(&obs, &acts).unwrap();
    }
});
