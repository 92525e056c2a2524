//! SB3 import parity: every model-outputs file in the golden `sb3` category names a zip saved
//! by Stable-Baselines3 and what SB3 computed from it on fixed observations; the imported
//! MlpPolicy must reproduce it. Also: damaged and unsupported files give errors, never panics.

use candle_core::{Device, Tensor};
use rand::SeedableRng;
use rl_policy::{ActionDist, ActorCritic, MlpPolicy, Policy, PolicyError, StochasticPolicy};
use serde_json::Value;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Every output must satisfy |ours - sb3| <= TOL * max(1, |sb3|): absolute within 1e-5 for
/// values up to 1 in magnitude (probabilities, log_std, typical means), relative beyond. A purely
/// absolute 1e-5 would be tighter than float32 itself away from 0: at |value| ~ 100 one ulp is
/// 7.6e-6, so two correctly rounded f32 computations may already differ by more (and
/// log-densities near -2000 carry rounding far above 1e-5).
const TOL: f64 = 1e-5;

fn model_files() -> Vec<(PathBuf, Value)> {
    // DQN zips (`"algo": "DQN"`) hold Q-networks: tests/sb3_dqn_import.rs checks them.
    rl_golden::files("sb3", "SB3 model-outputs", |v| {
        v.get("model_file").is_some() && v.get("outputs").is_some() && v["algo"] != "DQN"
    })
}

#[derive(Default)]
struct Worst {
    by_key: Vec<(String, f64, f64)>, // key, max abs error, max scaled error
}

impl Worst {
    fn check(&mut self, file: &str, key: &str, ours: &[f32], theirs: &[f64]) {
        assert_eq!(
            ours.len(),
            theirs.len(),
            "{file} {key}: {} values, expected {}",
            ours.len(),
            theirs.len()
        );
        let (mut max_abs, mut max_scaled) = (0f64, 0f64);
        for (i, (&o, &t)) in ours.iter().zip(theirs).enumerate() {
            let err = (f64::from(o) - t).abs();
            let scaled = err / t.abs().max(1.0);
            assert!(
                err <= TOL * t.abs().max(1.0),
                "{file} {key}[{i}]: ours {o}, SB3 {t} (error {err:e}, allowed {:e})",
                TOL * t.abs().max(1.0)
            );
            max_abs = max_abs.max(err);
            max_scaled = max_scaled.max(scaled);
        }
        self.by_key
            .push((format!("{file} {key}"), max_abs, max_scaled));
    }
}

fn flat_f32(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

fn flat_f64(v: &Value) -> Vec<f64> {
    fn walk(v: &Value, out: &mut Vec<f64>) {
        match v {
            Value::Array(xs) => xs.iter().for_each(|x| walk(x, out)),
            x => out.push(rl_golden::f64_of(x)),
        }
    }
    let mut out = Vec::new();
    walk(v, &mut out);
    out
}

#[test]
fn sb3_models_reproduce_sb3_outputs() {
    std::env::set_var("RAYON_NUM_THREADS", "1");
    let dev = Device::Cpu;
    let mut worst = Worst::default();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    for (path, file) in model_files() {
        let name = rl_golden::name(&path);
        let zip = path.with_file_name(file["model_file"].as_str().expect("model_file is a string"));
        let policy = MlpPolicy::from_sb3_zip(&zip, &dev).unwrap_or_else(|e| panic!("{name}: {e}"));
        let obs_rows = file["observations"].as_array().expect("observations");
        let obs_dim = obs_rows[0].as_array().expect("observation row").len();
        let obs = Tensor::from_vec(
            rl_golden::f32s_flat(&file["observations"]),
            (obs_rows.len(), obs_dim),
            &dev,
        )
        .unwrap();
        let (dist, value) = policy.forward(&obs).unwrap();
        let outputs = file["outputs"].as_object().expect("outputs");
        for (key, expected) in outputs {
            match (key.as_str(), &dist) {
                ("value", _) => worst.check(&name, key, &flat_f32(&value), &flat_f64(expected)),
                ("entropy", d) => worst.check(
                    &name,
                    key,
                    &flat_f32(&d.entropy().unwrap()),
                    &flat_f64(expected),
                ),
                ("deterministic_action", ActionDist::Categorical(_)) => {
                    let ours = policy
                        .act(&obs, true, &mut rng)
                        .unwrap()
                        .to_vec1::<u32>()
                        .unwrap();
                    let theirs: Vec<u32> = expected
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|a| a.as_u64().unwrap() as u32)
                        .collect();
                    assert_eq!(ours, theirs, "{name}: deterministic actions");
                }
                ("deterministic_action_single_obs_first8", ActionDist::Categorical(_)) => {
                    for (i, a) in expected.as_array().unwrap().iter().enumerate() {
                        let one = policy
                            .act(&obs.narrow(0, i, 1).unwrap(), true, &mut rng)
                            .unwrap();
                        assert_eq!(
                            one.to_vec1::<u32>().unwrap(),
                            vec![a.as_u64().unwrap() as u32],
                            "{name}: single obs {i}"
                        );
                    }
                }
                ("action_probs", ActionDist::Categorical(c)) => worst.check(
                    &name,
                    key,
                    &flat_f32(&c.probs().unwrap()),
                    &flat_f64(expected),
                ),
                ("action_log_probs", ActionDist::Categorical(c)) => worst.check(
                    &name,
                    key,
                    &flat_f32(&c.log_probs().unwrap()),
                    &flat_f64(expected),
                ),
                ("action_net_logits", ActionDist::Categorical(_)) => worst.check(
                    &name,
                    key,
                    &flat_f32(&policy.action_net_output(&obs).unwrap()),
                    &flat_f64(expected),
                ),
                ("deterministic_action_clipped", ActionDist::DiagGaussian(g)) => {
                    let bounds = policy.action_space().as_box().expect("Box action space");
                    let mut mean = flat_f32(g.mean());
                    for row in mean.chunks_mut(bounds.flat_dim()) {
                        bounds.clip(row);
                    }
                    worst.check(&name, key, &mean, &flat_f64(expected));
                }
                ("action_mean", ActionDist::DiagGaussian(g)) => {
                    worst.check(&name, key, &flat_f32(g.mean()), &flat_f64(expected))
                }
                ("log_std_param", ActionDist::DiagGaussian(g)) => {
                    worst.check(&name, key, &flat_f32(g.log_std()), &flat_f64(expected))
                }
                ("action_std", ActionDist::DiagGaussian(g)) => worst.check(
                    &name,
                    key,
                    &flat_f32(&g.std().unwrap()),
                    &flat_f64(expected),
                ),
                ("log_prob_of_mean", ActionDist::DiagGaussian(g)) => worst.check(
                    &name,
                    key,
                    &flat_f32(&g.log_prob(g.mean()).unwrap()),
                    &flat_f64(expected),
                ),
                (k, ActionDist::DiagGaussian(g)) if k.starts_with("log_prob_of_action_") => {
                    // The constant action is in the key's name (SB3's file writes it there).
                    let a: f32 = k["log_prob_of_action_".len()..]
                        .parse()
                        .expect("a number after log_prob_of_action_");
                    let actions = (g.mean().ones_like().unwrap() * f64::from(a)).unwrap();
                    worst.check(
                        &name,
                        key,
                        &flat_f32(&g.log_prob(&actions).unwrap()),
                        &flat_f64(expected),
                    );
                }
                ("deterministic_action_clipped", ActionDist::StateDependentNoise(g)) => {
                    let bounds = policy.action_space().as_box().expect("Box action space");
                    let mut mean = flat_f32(g.mean());
                    for row in mean.chunks_mut(bounds.flat_dim()) {
                        bounds.clip(row);
                    }
                    worst.check(&name, key, &mean, &flat_f64(expected));
                    // The policy's own deterministic action is the (unclipped) mean.
                    let act = policy.act(&obs, true, &mut rng).unwrap();
                    assert_eq!(flat_f32(&act), flat_f32(g.mean()), "{name}: mode");
                }
                ("action_mean", ActionDist::StateDependentNoise(g)) => {
                    worst.check(&name, key, &flat_f32(g.mean()), &flat_f64(expected))
                }
                ("log_std_param", ActionDist::StateDependentNoise(g)) => {
                    assert_eq!(g.log_std().rank(), 2, "{name}: gSDE log_std is a matrix");
                    worst.check(&name, key, &flat_f32(g.log_std()), &flat_f64(expected))
                }
                ("std_matrix", ActionDist::StateDependentNoise(g)) => worst.check(
                    &name,
                    key,
                    &flat_f32(&g.std_matrix().unwrap()),
                    &flat_f64(expected),
                ),
                ("action_std", ActionDist::StateDependentNoise(g)) => {
                    worst.check(&name, key, &flat_f32(g.std()), &flat_f64(expected))
                }
                ("log_prob_of_mean", ActionDist::StateDependentNoise(g)) => worst.check(
                    &name,
                    key,
                    &flat_f32(&g.log_prob(g.mean()).unwrap()),
                    &flat_f64(expected),
                ),
                (k, ActionDist::StateDependentNoise(g)) if k.starts_with("log_prob_of_action_") => {
                    let a: f32 = k["log_prob_of_action_".len()..]
                        .parse()
                        .expect("a number after log_prob_of_action_");
                    let actions = (g.mean().ones_like().unwrap() * f64::from(a)).unwrap();
                    worst.check(
                        &name,
                        key,
                        &flat_f32(&g.log_prob(&actions).unwrap()),
                        &flat_f64(expected),
                    );
                }
                (k, _) => panic!("{name}: output {k} is not checked by this test"),
            }
        }
        // The trait path gives the same values as predict_values.
        let v2 = policy.predict_values(&obs).unwrap();
        assert_eq!(flat_f32(&v2), flat_f32(&value));
        assert_eq!(policy.device().location(), dev.location());
    }
    let (mut max_abs, mut max_scaled) = (0f64, 0f64);
    for (k, a, s) in &worst.by_key {
        println!("{k:<70} max |err| {a:.3e}  max scaled err {s:.3e}");
        max_abs = max_abs.max(*a);
        max_scaled = max_scaled.max(*s);
    }
    println!("largest error over all SB3 outputs: {max_abs:.3e} absolute, {max_scaled:.3e} scaled");
}

/// A unique scratch directory under the system temp dir.
fn scratch(tag: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("rl-policy-{tag}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn first_zip() -> PathBuf {
    let (path, file) = model_files().remove(0);
    path.with_file_name(file["model_file"].as_str().unwrap())
}

fn load_bytes(bytes: &[u8], dir: &Path, tag: &str) -> Result<MlpPolicy, PolicyError> {
    let p = dir.join(format!("{tag}.zip"));
    std::fs::write(&p, bytes).unwrap();
    MlpPolicy::from_sb3_zip(&p, &Device::Cpu)
}

#[test]
fn damaged_files_give_errors_not_panics() {
    let dir = scratch("corrupt");
    let good = std::fs::read(first_zip()).unwrap();
    let reference = MlpPolicy::from_sb3_zip_bytes(&good, &Device::Cpu)
        .unwrap()
        .state_dict()
        .unwrap();

    // Truncations, including inside the central directory and inside member data.
    for cut in [
        0,
        1,
        100,
        good.len() / 3,
        good.len() / 2,
        good.len() - 30,
        good.len() - 1,
    ] {
        let r = load_bytes(&good[..cut], &dir, "truncated");
        assert!(
            matches!(r, Err(PolicyError::Corrupt { .. })),
            "truncated at {cut}: {r:?}"
        );
    }
    // A flipped bit inside stored member data fails the member's CRC-32.
    for at in [good.len() / 4, good.len() / 2, 3 * good.len() / 4] {
        let mut bad = good.clone();
        bad[at] ^= 0x10;
        let r = load_bytes(&bad, &dir, "flipped");
        assert!(
            matches!(r, Err(PolicyError::Corrupt { .. })),
            "bit flipped at {at}: {r:?}"
        );
    }
    // Anywhere else (headers): an error, or - for fields nothing checks, such as timestamps -
    // a policy identical to the original. Never a panic, never different weights.
    let step = (good.len() / 257).max(1);
    for at in (0..good.len()).step_by(step) {
        let mut bad = good.clone();
        bad[at] ^= 0x01;
        if let Ok(p) = MlpPolicy::from_sb3_zip_bytes(&bad, &Device::Cpu) {
            let sd = p.state_dict().unwrap();
            for (k, t) in &reference {
                assert_eq!(
                    flat_f32(t),
                    flat_f32(&sd[k]),
                    "flip at {at} changed {k} silently"
                );
            }
        }
    }
    // Not a zip at all.
    for (i, junk) in [b"".to_vec(), b"hello, not a zip".to_vec(), vec![0u8; 4096]]
        .into_iter()
        .enumerate()
    {
        let r = load_bytes(&junk, &dir, &format!("junk{i}"));
        assert!(
            matches!(r, Err(PolicyError::Corrupt { .. })),
            "junk {i}: {r:?}"
        );
    }
    // Missing file.
    assert!(matches!(
        MlpPolicy::from_sb3_zip(dir.join("absent.zip"), &Device::Cpu),
        Err(PolicyError::Io { .. })
    ));
    std::fs::remove_dir_all(&dir).ok();
}

/// The members of an SB3 zip, in order.
fn unzip(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    (0..z.len())
        .map(|i| {
            let mut f = z.by_index(i).unwrap();
            let mut buf = Vec::new();
            f.read_to_end(&mut buf).unwrap();
            (f.name().unwrap().into_owned(), buf)
        })
        .collect()
}

fn rezip(members: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, data) in members {
        w.start_file(name.as_str(), opts).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// The zip with its `data` JSON edited by `edit`.
fn with_data(good: &[u8], edit: impl Fn(&mut Value)) -> Vec<u8> {
    let mut members = unzip(good);
    for (name, data) in members.iter_mut() {
        if name == "data" {
            let mut v: Value = serde_json::from_slice(data).unwrap();
            edit(&mut v);
            *data = serde_json::to_vec(&v).unwrap();
        }
    }
    rezip(&members)
}

/// An edit of the `data` JSON.
type Edit = dyn Fn(&mut Value);

#[test]
fn unsupported_contents_are_named() {
    let good = std::fs::read(first_zip()).unwrap();
    // Re-packing alone changes nothing.
    let same = MlpPolicy::from_sb3_zip_bytes(&rezip(&unzip(&good)), &Device::Cpu).unwrap();
    assert_eq!(
        same.parameter_names(),
        MlpPolicy::from_sb3_zip_bytes(&good, &Device::Cpu)
            .unwrap()
            .parameter_names()
    );

    let cases: Vec<(&str, Box<Edit>)> = vec![
        (
            "ActorCriticCnnPolicy",
            Box::new(|v| {
                v["policy_class"]["__init__"] =
                    "<function ActorCriticCnnPolicy.__init__ at 0x0>".into()
            }),
        ),
        (
            "full_std=False",
            Box::new(|v| {
                v["use_sde"] = true.into();
                v["policy_kwargs"] = serde_json::json!({"full_std": false});
            }),
        ),
        (
            "NatureCNN",
            Box::new(|v| {
                v["policy_kwargs"] = serde_json::json!({
                    "features_extractor_class": "<class 'stable_baselines3.common.torch_layers.NatureCNN'>"
                })
            }),
        ),
        (
            "Dict",
            Box::new(|v| {
                v["observation_space"][":type:"] = "<class 'gymnasium.spaces.dict.Dict'>".into()
            }),
        ),
        (
            "MultiDiscrete",
            Box::new(|v| {
                v["action_space"][":type:"] =
                    "<class 'gymnasium.spaces.multi_discrete.MultiDiscrete'>".into()
            }),
        ),
        (
            "activation_fn",
            Box::new(|v| {
                v["policy_kwargs"] = serde_json::json!({"activation_fn": "<class 'torch.nn.modules.activation.ELU'>"})
            }),
        ),
    ];
    for (what, edit) in cases {
        let r = MlpPolicy::from_sb3_zip_bytes(&with_data(&good, edit), &Device::Cpu);
        match r {
            Err(PolicyError::Unsupported(msg)) => {
                assert!(msg.contains(what), "{what}: message {msg:?}")
            }
            other => panic!("{what}: expected Unsupported, got {other:?}"),
        }
    }
    // gSDE declared over a policy saved without it: refused (discrete actions) or caught by
    // the log_std shape ([d] where gSDE has [latent, d]).
    let r = MlpPolicy::from_sb3_zip_bytes(
        &with_data(&good, |v| v["use_sde"] = true.into()),
        &Device::Cpu,
    );
    match r {
        Err(PolicyError::Unsupported(m)) => assert!(m.contains("gSDE"), "{m}"),
        Err(PolicyError::Corrupt { reason, .. }) => assert!(reason.contains("log_std"), "{reason}"),
        other => panic!("use_sde over a non-gSDE zip: {other:?}"),
    }
    // A declared net_arch that disagrees with the weights is caught.
    let r = MlpPolicy::from_sb3_zip_bytes(
        &with_data(&good, |v| {
            v["policy_kwargs"] = serde_json::json!({"net_arch": {"pi": [7], "vf": [7]}})
        }),
        &Device::Cpu,
    );
    assert!(matches!(r, Err(PolicyError::Corrupt { .. })), "{r:?}");
    // Missing members.
    let members = unzip(&good);
    for drop in ["data", "policy.pth"] {
        let kept: Vec<_> = members.iter().filter(|(n, _)| n != drop).cloned().collect();
        let r = MlpPolicy::from_sb3_zip_bytes(&rezip(&kept), &Device::Cpu);
        assert!(
            matches!(&r, Err(PolicyError::Corrupt { reason, .. }) if reason.contains(drop)),
            "{drop}: {r:?}"
        );
    }
}

#[test]
fn imported_policy_names_match_the_state_dict() {
    for (path, file) in model_files() {
        let zip = path.with_file_name(file["model_file"].as_str().unwrap());
        let p = MlpPolicy::from_sb3_zip(&zip, &Device::Cpu).unwrap();
        let mut expected: Vec<String> = file["policy_state_dict"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["key"].as_str().unwrap().to_string())
            .collect();
        expected.sort();
        assert_eq!(p.parameter_names(), expected, "{}", rl_golden::name(&path));
        let sd: HashMap<String, Tensor> = p.state_dict().unwrap();
        for e in file["policy_state_dict"].as_array().unwrap() {
            let t = &sd[e["key"].as_str().unwrap()];
            let shape: Vec<usize> = e["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as usize)
                .collect();
            assert_eq!(t.dims(), shape.as_slice());
            let first = rl_golden::f32s(&e["first_values"]);
            assert_eq!(
                &flat_f32(t)[..first.len()],
                first.as_slice(),
                "{}",
                e["key"]
            );
        }
    }
}
