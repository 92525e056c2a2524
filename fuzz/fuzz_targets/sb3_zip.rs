//! `MlpPolicy::from_sb3_zip_bytes` on arbitrary bytes: an error or a policy that acts.
#![no_main]

use candle_core::Device;
use libfuzzer_sys::fuzz_target;
use rl_policy::MlpPolicy;

mod common;

fuzz_target!(|data: &[u8]| {
    if let Ok(policy) = MlpPolicy::from_sb3_zip_bytes(data, &Device::Cpu) {
        common::exercise(&policy);
    }
});
