//! Saved-policy loading on arbitrary bytes. The first byte chooses the layout:
//! even: one `policy.safetensors` file (`MlpPolicy::load_from_bytes`);
//! odd: the legacy pair, a little-endian u16 length `k`, then `k` bytes of `policy.json`,
//! then `model.safetensors`.
#![no_main]

use candle_core::Device;
use libfuzzer_sys::fuzz_target;
use rl_policy::MlpPolicy;

mod common;

fuzz_target!(|data: &[u8]| {
    let Some((&layout, rest)) = data.split_first() else {
        return;
    };
    let loaded = if layout % 2 == 0 {
        MlpPolicy::load_from_bytes(rest, &Device::Cpu)
    } else {
        if rest.len() < 2 {
            return;
        }
        let k = usize::from(u16::from_le_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        let (json, weights) = rest[2..].split_at(k);
        rl_policy::fuzzing::load_legacy(json, weights, &Device::Cpu)
    };
    if let Ok(policy) = loaded {
        common::exercise(&policy);
    }
});
