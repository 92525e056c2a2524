//! Checkpoint loading on arbitrary bytes. The first byte chooses the learner (mod 3: A2C, PPO,
//! REINFORCE); the rest is the checkpoint file, loaded into a fresh CartPole-v1 learner (two
//! environments for the on-policy ones). A checkpoint that loads must also train on, when its
//! configuration asks for little work (a valid configuration may ask for hours of training).
#![no_main]

use candle_core::Device;
use libfuzzer_sys::fuzz_target;
use rl_algos::{A2c, Ppo, Reinforce};
use rl_env::{AutoresetMode, Env, EnvSpec, SyncVecEnv, VecEnv};
use rl_policy::{MlpPolicy, MlpPolicyConfig, NetArch};
use std::path::PathBuf;

/// The policy every seed checkpoint was written with (see make_corpus.rs).
fn policy(obs: &rl_env::Space, act: &rl_env::Space) -> MlpPolicy {
    let config = MlpPolicyConfig {
        net_arch: NetArch {
            shared: vec![],
            pi: vec![8],
            vf: vec![8],
        },
        ..MlpPolicyConfig::default()
    };
    MlpPolicy::new(obs, act, config, 0, &Device::Cpu).expect("CartPole policy")
}

fn vec_env() -> SyncVecEnv {
    let spec = EnvSpec {
        max_episode_steps: Some(20),
        ..EnvSpec::default()
    };
    SyncVecEnv::make_with("CartPole-v1", &spec, 2, AutoresetMode::SameStep).expect("vec env")
}

fn path() -> PathBuf {
    std::env::temp_dir().join(format!("rl-fuzz-checkpoint-{}", std::process::id()))
}

fuzz_target!(|data: &[u8]| {
    std::env::set_var("RAYON_NUM_THREADS", "1");
    let Some((&kind, file)) = data.split_first() else {
        return;
    };
    let path = path();
    std::fs::write(&path, file).expect("write the checkpoint to a temporary file");
    match kind % 3 {
        0 | 1 => {
            let env = vec_env();
            let p = policy(env.observation_space(), env.action_space());
            if kind % 3 == 0 {
                if let Ok(mut m) = A2c::load(&path, p, env) {
                    let _ = m.learn(m.num_timesteps().saturating_add(8), &mut []);
                }
            } else if let Ok(mut m) = Ppo::load(&path, p, env) {
                let c = m.config();
                let minibatches = (c.n_steps * 2).div_ceil(c.batch_size);
                if c.n_epochs.saturating_mul(minibatches) <= 64 {
                    let _ = m.learn(m.num_timesteps().saturating_add(8), &mut []);
                }
            }
        }
        _ => {
            let env = rl_env::make("CartPole-v1").expect("CartPole-v1");
            let p = policy(env.observation_space(), env.action_space());
            if let Ok(mut m) = Reinforce::load(&path, p, env) {
                let budget = rl_algos::Budget::Timesteps(m.num_timesteps().saturating_add(8));
                let _ = m.learn(budget, &mut []);
            }
        }
    }
});
