//! Saved-model loading on arbitrary bytes. The first byte chooses the layout:
//! even: one `policy.safetensors` file (`SavedModel::from_bytes`: an MlpPolicy, a QNetwork, a
//! SAC model or a TD3/DDPG model, whichever its format tag says), and its training context
//! (`rl_policy::context`);
//! odd: the legacy pair, a little-endian u16 length `k`, then `k` bytes of `policy.json`,
//! then `model.safetensors`.
#![no_main]

use candle_core::Device;
use libfuzzer_sys::fuzz_target;
use rl_policy::SavedModel;

mod common;

fuzz_target!(|data: &[u8]| {
    let Some((&layout, rest)) = data.split_first() else {
        return;
    };
    if layout % 2 == 0 {
        match SavedModel::from_bytes(rest, &Device::Cpu) {
            Ok(SavedModel::MlpPolicy(p)) => common::exercise(&p),
            Ok(SavedModel::QNetwork(q)) => common::exercise_q(&q),
            Ok(SavedModel::Sac(m)) => common::exercise_sac(m),
            Ok(SavedModel::Td3(m)) => common::exercise_td3(m),
            Ok(_) | Err(_) => {}
        }
        // The training context in the same file: env entry and VecNormalize statistics.
        if let Ok(ctx) = rl_policy::context::context_from_bytes(rest) {
            if let Some(stats) = &ctx.normalization {
                let d = stats.obs_rms.mean.len();
                let obs = vec![0.5f32; d];
                let mut out = vec![0.0f32; d];
                let _ = stats.normalize_obs_into(&obs, &mut out);
            }
            let _ = rl_policy::context::with_context(rest, &ctx);
        }
        return;
    }
    let loaded = {
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
