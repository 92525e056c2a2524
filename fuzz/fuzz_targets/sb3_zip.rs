//! `MlpPolicy::from_sb3_zip_bytes` and `QNetwork::from_sb3_zip_bytes` (DQN) on arbitrary
//! bytes: an error or a model that acts.
#![no_main]

use candle_core::Device;
use libfuzzer_sys::fuzz_target;
use rl_policy::{MlpPolicy, QNetwork};

mod common;

fuzz_target!(|data: &[u8]| {
    if let Ok(policy) = MlpPolicy::from_sb3_zip_bytes(data, &Device::Cpu) {
        common::exercise(&policy);
    }
    if let Ok(dqn) = QNetwork::from_sb3_zip_bytes(data, &Device::Cpu) {
        common::exercise_q(&dqn.q_net);
        common::exercise_q(&dqn.q_net_target);
    }
});
