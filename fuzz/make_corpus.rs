//! Writes the seed corpora of the fuzz targets into `corpus/<target>/` (run from `fuzz/`):
//! the golden SB3 zips (`sb3_zip`; the SAC/TD3/DDPG ones also `sb3_offpolicy_zip`), every
//! `.pth` archive inside them (`pth`), saved policies in both layouts for the golden models and
//! two fresh ones, saved Q-networks and SAC/TD3 models (`saved_policy`), and
//! checkpoints of short A2C, PPO and REINFORCE runs, at a rollout's end and in the middle of
//! one (`checkpoint`).
//!
//! `cargo +nightly run --bin make_corpus` (reads `$RL_GOLDEN_DIR`, else `../tests/golden`).

use candle_core::Device;
use rl_env::Space;
use rl_policy::{MlpPolicy, MlpPolicyConfig, NetArch, QNetwork, QNetworkConfig, Sb3Sac, Sb3Td3};
use std::io::Read;
use std::path::{Path, PathBuf};

type BoxError = Box<dyn std::error::Error>;

fn space_json(s: &Space) -> serde_json::Value {
    let bound = |x: f32| {
        if x.is_finite() {
            serde_json::json!(x)
        } else if x > 0.0 {
            serde_json::json!("inf")
        } else {
            serde_json::json!("-inf")
        }
    };
    match s {
        Space::Discrete { n, start } => {
            serde_json::json!({"type": "Discrete", "n": n, "start": start})
        }
        Space::Box(b) => serde_json::json!({
            "type": "Box",
            "low": b.low().iter().map(|&x| bound(x)).collect::<Vec<_>>(),
            "high": b.high().iter().map(|&x| bound(x)).collect::<Vec<_>>(),
            "shape": b.shape(),
        }),
    }
}

/// `saved_policy` seeds for `p`: the single file (layout byte 0) and the legacy pair (1).
fn saved_seeds(p: &MlpPolicy, tmp: &Path) -> Result<Vec<Vec<u8>>, BoxError> {
    let mut single = vec![0u8];
    single.extend(p.save_to_bytes()?);
    let json = serde_json::to_vec(&serde_json::json!({
        "format": rl_policy::io::FORMAT,
        "config": serde_json::to_value(p.config())?,
        "observation_space": space_json(p.observation_space()),
        "action_space": space_json(p.action_space()),
    }))?;
    let weights_path = tmp.join("weights.safetensors");
    candle_core::safetensors::save(&p.state_dict()?, &weights_path)?;
    let weights = std::fs::read(&weights_path)?;
    let mut legacy = vec![1u8];
    legacy.extend_from_slice(&u16::try_from(json.len())?.to_le_bytes());
    legacy.extend(json);
    legacy.extend(weights);
    Ok(vec![single, legacy])
}

fn main() -> Result<(), BoxError> {
    std::env::set_var("RAYON_NUM_THREADS", "1");
    let golden = std::env::var_os("RL_GOLDEN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("../tests/golden"));
    let out = PathBuf::from("corpus");
    for t in [
        "sb3_zip",
        "pth",
        "saved_policy",
        "checkpoint",
        "sb3_offpolicy_zip",
    ] {
        std::fs::create_dir_all(out.join(t))?;
    }
    let tmp = std::env::temp_dir().join(format!("rl-policy-make-corpus-{}", std::process::id()));
    std::fs::create_dir_all(&tmp)?;
    let mut zips: Vec<PathBuf> = std::fs::read_dir(golden.join("sb3"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "zip"))
        .collect();
    zips.sort();
    let mut saved = Vec::new();
    let mut q_seeds = Vec::new();
    let mut model_seeds = Vec::new();
    for zip_path in &zips {
        let stem = zip_path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("zip");
        let bytes = std::fs::read(zip_path)?;
        std::fs::write(out.join("sb3_zip").join(format!("{stem}.zip")), &bytes)?;
        let mut z = zip::ZipArchive::new(std::io::Cursor::new(&bytes))?;
        for i in 0..z.len() {
            let mut f = z.by_index(i)?;
            let name = f.name()?.into_owned();
            if name.ends_with(".pth") {
                let mut buf = Vec::new();
                f.read_to_end(&mut buf)?;
                std::fs::write(out.join("pth").join(format!("{stem}-{name}")), buf)?;
            }
        }
        // DQN zips seed saved Q-networks; SAC/TD3/DDPG zips the off-policy target and saved
        // SAC/TD3 models; A2C/PPO zips saved MlpPolicies.
        if stem.starts_with("dqn_") {
            q_seeds.push(QNetwork::from_sb3_zip_bytes(&bytes, &Device::Cpu)?.q_net);
        } else if stem.starts_with("sac_") {
            std::fs::write(out.join("sb3_offpolicy_zip").join(format!("{stem}.zip")), &bytes)?;
            model_seeds.push(Sb3Sac::from_zip_bytes(&bytes, &Device::Cpu)?.save_to_bytes()?);
        } else if stem.starts_with("td3_") || stem.starts_with("ddpg_") {
            std::fs::write(out.join("sb3_offpolicy_zip").join(format!("{stem}.zip")), &bytes)?;
            model_seeds.push(Sb3Td3::from_zip_bytes(&bytes, &Device::Cpu)?.save_to_bytes()?);
        } else {
            saved.push(MlpPolicy::from_sb3_zip_bytes(&bytes, &Device::Cpu)?);
        }
    }
    let pendulum_like = (
        Space::boxed(vec![-1.0, -1.0, -8.0], vec![1.0, 1.0, 8.0], vec![3])?,
        Space::boxed(vec![-2.0], vec![2.0], vec![1])?,
    );
    let small = MlpPolicyConfig {
        net_arch: NetArch {
            shared: vec![4],
            pi: vec![3],
            vf: vec![],
        },
        ..MlpPolicyConfig::default()
    };
    saved.push(MlpPolicy::new(
        &pendulum_like.0,
        &pendulum_like.1,
        small.clone(),
        1,
        &Device::Cpu,
    )?);
    let discrete = Space::Discrete { n: 3, start: -1 };
    saved.push(MlpPolicy::new(
        &pendulum_like.0,
        &discrete,
        small,
        2,
        &Device::Cpu,
    )?);
    let mut n = 0;
    for p in &saved {
        for seed in saved_seeds(p, &tmp)? {
            std::fs::write(out.join("saved_policy").join(format!("seed{n}")), seed)?;
            n += 1;
        }
    }
    q_seeds.push(QNetwork::new(
        &pendulum_like.0,
        &Space::Discrete { n: 3, start: 0 },
        QNetworkConfig {
            net_arch: vec![5, 4],
            activation: rl_policy::Activation::Tanh,
        },
        3,
        &Device::Cpu,
    )?);
    for q in &q_seeds {
        model_seeds.push(q.save_to_bytes()?);
    }
    for bytes in model_seeds {
        // Layout byte 0: one model file (QNetworks and SAC/TD3 models have no legacy layout).
        let mut seed = vec![0u8];
        seed.extend(bytes);
        std::fs::write(out.join("saved_policy").join(format!("seed{n}")), seed)?;
        n += 1;
    }
    let checkpoints = checkpoint_seeds(&out.join("checkpoint"), &tmp)?;
    std::fs::remove_dir_all(&tmp)?;
    println!(
        "{} zips, their .pth archives, {n} saved-policy seeds, {checkpoints} checkpoints",
        zips.len()
    );
    Ok(())
}

/// Saves a checkpoint from inside `on_step` at a given step.
struct SaveAt {
    at: u64,
    path: PathBuf,
}

impl rl_algos::Callback for SaveAt {
    fn on_step(
        &mut self,
        locals: &rl_algos::Locals<'_>,
        _logger: &mut rl_algos::Logger,
    ) -> rl_algos::Result<bool> {
        if locals.num_timesteps == self.at {
            locals.algo.save_checkpoint(&self.path)?;
        }
        Ok(true)
    }
}

/// Checkpoints of the learners the `checkpoint` target loads (its first byte: 0 A2C, 1 PPO,
/// 2 REINFORCE), written mid-rollout by a callback and after `learn`. Returns how many.
fn checkpoint_seeds(dir: &Path, tmp: &Path) -> Result<usize, BoxError> {
    use rl_env::{AutoresetMode, EnvSpec, SyncVecEnv, VecEnv};
    let policy = |obs: &Space, act: &Space| {
        let config = MlpPolicyConfig {
            net_arch: NetArch {
                shared: vec![],
                pi: vec![8],
                vf: vec![8],
            },
            ..MlpPolicyConfig::default()
        };
        MlpPolicy::new(obs, act, config, 0, &Device::Cpu)
    };
    let vec_env = || {
        let spec = EnvSpec {
            max_episode_steps: Some(20),
            ..EnvSpec::default()
        };
        SyncVecEnv::make_with("CartPole-v1", &spec, 2, AutoresetMode::SameStep)
    };
    let mut files: Vec<(u8, PathBuf)> = Vec::new();
    for (kind, at) in [(0u8, 14u64), (1, 22)] {
        let mid = tmp.join(format!("mid{kind}"));
        let end = tmp.join(format!("end{kind}"));
        let env = vec_env()?;
        let p = policy(env.observation_space(), env.action_space())?;
        let mut cb = SaveAt {
            at,
            path: mid.clone(),
        };
        if kind == 0 {
            let config = rl_algos::A2cConfig {
                seed: Some(3),
                ..rl_algos::A2cConfig::default()
            };
            let mut m = rl_algos::A2c::new(p, env, config)?;
            m.learn(40, &mut [&mut cb])?;
            m.save(&end)?;
        } else {
            let config = rl_algos::PpoConfig {
                n_steps: 8,
                batch_size: 4,
                n_epochs: 2,
                seed: Some(3),
                ..rl_algos::PpoConfig::default()
            };
            let mut m = rl_algos::Ppo::new(p, env, config)?;
            m.learn(48, &mut [&mut cb])?;
            m.save(&end)?;
        }
        files.push((kind, mid));
        files.push((kind, end));
    }
    let env = rl_env::make("CartPole-v1")?;
    let p = policy(env.observation_space(), env.action_space())?;
    let config = rl_algos::ReinforceConfig {
        seed: Some(3),
        baseline: Some(rl_algos::BaselineConfig {
            hidden: vec![4],
            learning_rate: 1e-2,
        }),
        ..rl_algos::ReinforceConfig::default()
    };
    let mut m = rl_algos::Reinforce::new(p, env, config)?;
    let mid = tmp.join("mid2");
    let mut cb = SaveAt {
        at: 5,
        path: mid.clone(),
    };
    m.learn(rl_algos::Budget::Episodes(2), &mut [&mut cb])?;
    let end = tmp.join("end2");
    m.save(&end)?;
    files.push((2, mid));
    files.push((2, end));
    for (i, (kind, file)) in files.iter().enumerate() {
        let mut seed = vec![*kind];
        seed.extend(std::fs::read(file)?);
        std::fs::write(dir.join(format!("seed{i}")), seed)?;
    }
    Ok(files.len())
}
