//! Saving and loading SAC, TD3 and DDPG models: bit-exact round trips through the shared save
//! path (actor, critics and targets under SB3's names), `SavedModel` telling the kinds apart
//! (saved files and SB3 zips), damaged files refused, and SB3 zips re-saved natively playing
//! exactly as imported.

use candle_core::{Device, Tensor, Var};
use rand::SeedableRng;
use rl_policy::io::MODEL_FILE;
use rl_policy::{
    Activation, ContinuousCritic, Critic, DeterministicActor, GaussianActor, MlpConfig, MlpPolicy,
    Policy, PolicyError, QNetwork, SacActor, SacModel, SavedModel, Td3Actor, Td3Model,
};
use serde_json::Value;
use std::path::PathBuf;

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rl-offpol-io-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn spaces() -> (rl_env::Space, rl_env::Space) {
    (
        rl_env::Space::boxed(
            vec![-1.0, -2.0, f32::NEG_INFINITY],
            vec![1.0, 2.0, f32::INFINITY],
            vec![3],
        )
        .unwrap(),
        rl_env::Space::boxed(vec![-2.0, 0.0], vec![2.0, 1.0], vec![2]).unwrap(),
    )
}

fn mlp(arch: Vec<usize>, activation: Activation) -> MlpConfig {
    MlpConfig {
        net_arch: arch,
        activation,
        sde: None,
    }
}

/// A SAC model whose target critics differ from the critics (as after training).
fn sac(seed: u64) -> SacModel {
    let (o, a) = spaces();
    let dev = Device::Cpu;
    SacModel {
        actor: SacActor::new(&o, &a, mlp(vec![8, 6], Activation::ReLU), seed, &dev).unwrap(),
        critic: ContinuousCritic::new(&o, &a, mlp(vec![5], Activation::Tanh), 2, seed + 1, &dev)
            .unwrap(),
        critic_target: ContinuousCritic::new(
            &o,
            &a,
            mlp(vec![5], Activation::Tanh),
            2,
            seed + 2,
            &dev,
        )
        .unwrap(),
        observation_space: o,
        action_space: a,
    }
}

/// A TD3 (`n_critics` 2) or DDPG (1) model with targets that differ from the online networks.
fn td3(seed: u64, n_critics: usize) -> Td3Model {
    let (o, a) = spaces();
    let dev = Device::Cpu;
    let actor_cfg = mlp(vec![7], Activation::ReLU);
    let critic_cfg = mlp(vec![6, 4], Activation::ReLU);
    Td3Model {
        actor: Td3Actor::new(&o, &a, actor_cfg.clone(), seed, &dev).unwrap(),
        actor_target: Td3Actor::new(&o, &a, actor_cfg, seed + 1, &dev).unwrap(),
        critic: ContinuousCritic::new(&o, &a, critic_cfg.clone(), n_critics, seed + 2, &dev)
            .unwrap(),
        critic_target: ContinuousCritic::new(&o, &a, critic_cfg, n_critics, seed + 3, &dev)
            .unwrap(),
        observation_space: o,
        action_space: a,
    }
}

fn bits(vars: Vec<(String, Var)>) -> Vec<(String, Vec<u32>)> {
    vars.into_iter()
        .map(|(n, v)| {
            let b = v
                .as_tensor()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            (n, b.into_iter().map(f32::to_bits).collect())
        })
        .collect()
}

fn sac_bits(m: &SacModel) -> Vec<(String, Vec<u32>)> {
    bits(m.networks().named_parameters().unwrap())
}

fn td3_bits(m: &Td3Model) -> Vec<(String, Vec<u32>)> {
    bits(m.networks().named_parameters().unwrap())
}

fn obs() -> Tensor {
    Tensor::new(&[[0.1f32, -0.5, 2.0], [1.0, 0.0, -30.0]], &Device::Cpu).unwrap()
}

fn host(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

#[test]
fn sac_models_round_trip_bit_for_bit_with_sb3_names() {
    let m = sac(3);
    let names: Vec<String> = sac_bits(&m).into_iter().map(|(n, _)| n).collect();
    for name in [
        "actor.latent_pi.0.weight",
        "actor.latent_pi.2.bias",
        "actor.mu.weight",
        "actor.log_std.bias",
        "critic.qf0.0.weight",
        "critic.qf1.2.bias",
        "critic_target.qf0.2.weight",
        "critic_target.qf1.0.bias",
    ] {
        assert!(names.iter().any(|n| n == name), "{name} missing: {names:?}");
    }
    let dir = scratch("sac");
    m.save(&dir).unwrap();
    let back = SacModel::load(&dir, &Device::Cpu).unwrap();
    assert_eq!(sac_bits(&back), sac_bits(&m));
    assert_eq!(back.config(), m.config());
    assert_eq!(back.observation_space, m.observation_space);
    assert_eq!(back.action_space, m.action_space);
    let (a, b) = (
        m.actor.mean_log_std(&obs()).unwrap(),
        back.actor.mean_log_std(&obs()).unwrap(),
    );
    assert_eq!(host(&a.0), host(&b.0));
    assert_eq!(host(&a.1), host(&b.1));
    // Deterministic bytes; one file; the kind is told from the directory or the file.
    assert_eq!(m.save_to_bytes().unwrap(), back.save_to_bytes().unwrap());
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
    for path in [dir.clone(), dir.join(MODEL_FILE)] {
        let loaded = SavedModel::load(&path, &Device::Cpu).unwrap();
        assert_eq!(loaded.kind(), "SacPolicy");
        assert_eq!(loaded.action_space(), &m.action_space);
        assert_eq!(loaded.observation_space(), &m.observation_space);
        assert!(matches!(&loaded, SavedModel::Sac(l) if sac_bits(l) == sac_bits(&m)));
        assert_eq!(
            SavedModel::open(&path, &Device::Cpu).unwrap().kind(),
            "SacPolicy"
        );
    }
    // Played deterministically: tanh(mean) on the Box's bounds, identical after the round trip.
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let before = sac(3)
        .into_policy()
        .unwrap()
        .act(&obs(), true, &mut rng)
        .unwrap();
    let after = back
        .into_policy()
        .unwrap()
        .act(&obs(), true, &mut rng)
        .unwrap();
    assert_eq!(host(&before), host(&after));
    let acts = host(&after);
    assert!(acts
        .chunks(2)
        .all(|a| (-2.0..=2.0).contains(&a[0]) && (0.0..=1.0).contains(&a[1])));
    // Other loaders refuse it by name, and it refuses theirs.
    let err = MlpPolicy::load(&dir, &Device::Cpu).unwrap_err();
    assert!(
        matches!(&err, PolicyError::Unsupported(s) if s.contains("SacPolicy")),
        "{err}"
    );
    let err = QNetwork::load(&dir, &Device::Cpu).unwrap_err();
    assert!(
        matches!(&err, PolicyError::Unsupported(s) if s.contains("SacPolicy")),
        "{err}"
    );
    let err = Td3Model::load(&dir, &Device::Cpu).unwrap_err();
    assert!(
        matches!(&err, PolicyError::Unsupported(s) if s.contains("SacPolicy")),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn td3_and_ddpg_models_round_trip_bit_for_bit() {
    for n_critics in [2, 1] {
        let m = td3(7, n_critics);
        let names: Vec<String> = td3_bits(&m).into_iter().map(|(n, _)| n).collect();
        assert!(names.contains(&"actor.mu.2.weight".to_string()));
        assert!(names.contains(&"actor_target.mu.0.bias".to_string()));
        assert!(names.contains(&"critic_target.qf0.4.bias".to_string()));
        assert_eq!(
            names.iter().any(|n| n.starts_with("critic.qf1.")),
            n_critics == 2
        );
        let dir = scratch(&format!("td3-{n_critics}"));
        m.save(&dir).unwrap();
        let back = Td3Model::load(&dir, &Device::Cpu).unwrap();
        assert_eq!(td3_bits(&back), td3_bits(&m));
        assert_eq!(back.config(), m.config());
        assert_eq!(back.config().n_critics, n_critics);
        assert_eq!(
            host(&back.actor.actions(&obs()).unwrap()),
            host(&m.actor.actions(&obs()).unwrap())
        );
        assert_eq!(m.save_to_bytes().unwrap(), back.save_to_bytes().unwrap());
        let loaded = SavedModel::open(&dir, &Device::Cpu).unwrap();
        assert_eq!(loaded.kind(), "Td3Policy");
        let err = SacModel::load(&dir, &Device::Cpu).unwrap_err();
        assert!(
            matches!(&err, PolicyError::Unsupported(s) if s.contains("Td3Policy")),
            "{err}"
        );
        // Saving another model over it replaces the one file.
        let other = td3(8, n_critics);
        other.save(&dir).unwrap();
        assert_eq!(
            td3_bits(&Td3Model::load(&dir, &Device::Cpu).unwrap()),
            td3_bits(&other)
        );
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// Flips one bit in every byte of a saved file: each flip is refused, or leaves the loaded
/// model bit-identical (padding outside every value).
fn flips(good: &[u8], load: impl Fn(&[u8]) -> Option<Vec<(String, Vec<u32>)>>, what: &str) {
    let reference = load(good).expect("the intact file loads");
    let (mut errors, mut harmless) = (0, 0);
    for at in 0..good.len() {
        let mut bad = good.to_vec();
        bad[at] ^= 1 << (at % 8);
        match load(&bad) {
            Some(b) => {
                assert_eq!(
                    b, reference,
                    "{what}: flip at {at} loaded a different model"
                );
                harmless += 1;
            }
            None => errors += 1,
        }
    }
    println!(
        "{what}: {} single-bit flips: {errors} refused, {harmless} harmless",
        good.len()
    );
    assert!(
        errors > good.len() * 9 / 10,
        "{what}: {errors} of {}",
        good.len()
    );
    for cut in [0, 7, 8, good.len() / 2, good.len() - 1] {
        assert!(load(&good[..cut]).is_none(), "{what}: cut at {cut}");
    }
}

#[test]
fn every_single_bit_corruption_is_refused_or_harmless() {
    let good = sac(11).save_to_bytes().unwrap();
    flips(
        &good,
        |b| {
            SacModel::load_from_bytes(b, &Device::Cpu)
                .ok()
                .map(|m| sac_bits(&m))
        },
        "SacPolicy",
    );
    let good = td3(12, 1).save_to_bytes().unwrap();
    flips(
        &good,
        |b| {
            Td3Model::load_from_bytes(b, &Device::Cpu)
                .ok()
                .map(|m| td3_bits(&m))
        },
        "Td3Policy (DDPG)",
    );
}

#[test]
fn non_finite_and_mismatched_models_are_not_saved() {
    let m = sac(13);
    let (_, var) = m.critic_target.trainable_vars().swap_remove(0);
    var.set(&Tensor::full(f32::NAN, var.dims(), &Device::Cpu).unwrap())
        .unwrap();
    let err = m.save_to_bytes().unwrap_err();
    assert!(
        matches!(&err, PolicyError::NonFiniteWeight { tensor, .. } if tensor.starts_with("critic_target.")),
        "{err}"
    );
    // A target of another architecture is an error, not a file that cannot be loaded again.
    let (o, a) = spaces();
    let mut m = td3(14, 2);
    m.critic_target = ContinuousCritic::new(
        &o,
        &a,
        mlp(vec![6, 4], Activation::ReLU),
        1,
        0,
        &Device::Cpu,
    )
    .unwrap();
    assert!(matches!(
        m.save_to_bytes(),
        Err(PolicyError::InvalidArgument(s)) if s.contains("critic_target")
    ));
}

fn golden() -> Vec<(PathBuf, Value)> {
    rl_golden::files("sb3", "SB3 SAC/TD3/DDPG model-outputs", |v| {
        v["header"]["format"]
            .as_str()
            .is_some_and(|f| f.starts_with("sb3_offpolicy_zip_outputs/"))
    })
}

fn rows(v: &Value) -> Tensor {
    let items = v.as_array().expect("rows");
    let flat: Vec<f32> = items
        .iter()
        .flat_map(|r| r.as_array().expect("a row").iter())
        .map(|x| x.as_f64().expect("a number") as f32)
        .collect();
    let d = flat.len() / items.len();
    Tensor::from_vec(flat, (items.len(), d), &Device::Cpu).unwrap()
}

/// SB3 zips open as the same kinds, play SB3's deterministic actions, and re-saved natively
/// reload with every parameter (targets included) bit-identical.
#[test]
fn sb3_zips_open_as_sac_and_td3_models_and_resave_exactly() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    for (path, data) in golden() {
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        let h = &data["header"];
        let zip = path.with_file_name(h["model_file"].as_str().expect("model_file"));
        let obs = rows(&data["observations"]);
        let expected: Vec<f32> = rows(&data["outputs"]["deterministic_action"])
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let dir = scratch(&format!("golden-{file}"));
        let (kind, played, replayed) = match SavedModel::open(&zip, &Device::Cpu).unwrap() {
            SavedModel::Sac(m) => {
                m.save(&dir).unwrap();
                let back = SacModel::load(&dir, &Device::Cpu).unwrap();
                assert_eq!(sac_bits(&back), sac_bits(&m), "{file}");
                let a = host(&m.into_policy().unwrap().act(&obs, true, &mut rng).unwrap());
                let b = host(
                    &back
                        .into_policy()
                        .unwrap()
                        .act(&obs, true, &mut rng)
                        .unwrap(),
                );
                ("SAC", a, b)
            }
            SavedModel::Td3(m) => {
                m.save(&dir).unwrap();
                let back = Td3Model::load(&dir, &Device::Cpu).unwrap();
                assert_eq!(td3_bits(&back), td3_bits(&m), "{file}");
                let a = host(&m.into_policy().unwrap().act(&obs, true, &mut rng).unwrap());
                let b = host(
                    &back
                        .into_policy()
                        .unwrap()
                        .act(&obs, true, &mut rng)
                        .unwrap(),
                );
                ("TD3/DDPG", a, b)
            }
            other => panic!("{file}: opened as {}", other.kind()),
        };
        let algo = h["algo"].as_str().unwrap();
        assert_eq!(
            kind == "SAC",
            algo == "SAC",
            "{file}: {algo} opened as {kind}"
        );
        assert_eq!(
            played, replayed,
            "{file}: the re-saved model plays differently"
        );
        let mut worst = 0f64;
        assert_eq!(played.len(), expected.len(), "{file}");
        for (i, (&o, &t)) in played.iter().zip(&expected).enumerate() {
            let scaled = f64::from((o - t).abs()) / f64::from(t.abs()).max(1.0);
            assert!(scaled <= 1e-5, "{file}[{i}]: ours {o}, SB3 {t}");
            worst = worst.max(scaled);
        }
        println!(
            "{file}: opened as {kind}, re-saved bit-exact, deterministic actions within {worst:.1e} of SB3's"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
