//! SB3 DQN import parity: every model-outputs file of the golden `sb3` category with
//! `"algo": "DQN"` names a zip saved by Stable-Baselines3 (recorded by
//! `tools/golden/gen_sb3_dqn_zip_golden.py`) and the Q-values and greedy actions SB3 computed
//! from it; the imported `QNetwork`s must reproduce them. Also: unsupported and damaged DQN
//! zips give named errors, never panics.

use candle_core::{Device, Tensor};
use rand::SeedableRng;
use rl_policy::{GreedyQPolicy, MlpPolicy, Policy, PolicyError, QFunction, QNetwork, SavedModel};
use serde_json::Value;
use std::io::{Read, Write};
use std::path::PathBuf;

/// |ours - sb3| <= TOL * max(1, |sb3|), as the A2C/PPO import parity test.
const TOL: f64 = 1e-5;

fn dqn_files() -> Vec<(PathBuf, Value)> {
    rl_golden::files("sb3", "SB3 DQN model-outputs", |v| {
        v.get("model_file").is_some() && v.get("outputs").is_some() && v["algo"] == "DQN"
    })
}

fn zip_of(path: &std::path::Path, file: &Value) -> PathBuf {
    path.with_file_name(file["model_file"].as_str().expect("model_file is a string"))
}

/// Compares `ours` with SB3's rows; returns the largest scaled error.
fn compare(name: &str, key: &str, ours: &Tensor, theirs: &Value) -> (usize, f64) {
    let ours = ours.to_vec2::<f32>().unwrap();
    let theirs = theirs.as_array().expect("rows");
    assert_eq!(ours.len(), theirs.len(), "{name} {key}: rows");
    let (mut n, mut worst) = (0, 0f64);
    for (i, (o, t)) in ours.iter().zip(theirs).enumerate() {
        let t = rl_golden::f64s(t);
        assert_eq!(o.len(), t.len(), "{name} {key}[{i}]: columns");
        for (j, (&o, &t)) in o.iter().zip(&t).enumerate() {
            let err = (f64::from(o) - t).abs();
            assert!(
                err <= TOL * t.abs().max(1.0),
                "{name} {key}[{i}][{j}]: ours {o}, SB3 {t} (error {err:e})"
            );
            worst = worst.max(err / t.abs().max(1.0));
            n += 1;
        }
    }
    (n, worst)
}

fn actions(v: &Value) -> Vec<u32> {
    v.as_array()
        .expect("actions")
        .iter()
        .map(|a| u32::try_from(a.as_u64().expect("an action index")).expect("small"))
        .collect()
}

#[test]
fn sb3_dqn_zips_reproduce_sb3_q_values_and_actions() {
    std::env::set_var("RAYON_NUM_THREADS", "1");
    let dev = Device::Cpu;
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    for (path, file) in dqn_files() {
        let name = rl_golden::name(&path);
        let zip = zip_of(&path, &file);
        let dqn = QNetwork::from_sb3_zip(&zip, &dev).unwrap_or_else(|e| panic!("{name}: {e}"));
        // The architecture recorded by the script is what the import inferred.
        let arch: Vec<usize> = file["net_arch"]
            .as_array()
            .expect("net_arch")
            .iter()
            .map(|x| x.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(dqn.q_net.config().net_arch, arch, "{name}: net_arch");
        assert_eq!(
            format!("{:?}", dqn.q_net.config().activation).to_lowercase(),
            file["activation"].as_str().unwrap().to_lowercase(),
            "{name}: activation"
        );
        let rows = file["observations"].as_array().expect("observations");
        let obs_dim = rows[0].as_array().expect("a row").len();
        let obs = Tensor::from_vec(
            rl_golden::f32s_flat(&file["observations"]),
            (rows.len(), obs_dim),
            &dev,
        )
        .unwrap();
        let outputs = &file["outputs"];
        let (n_q, worst_q) = compare(
            &name,
            "q_values",
            &dqn.q_net.q_values(&obs).unwrap(),
            &outputs["q_values"],
        );
        let (n_t, worst_t) = compare(
            &name,
            "target_q_values",
            &dqn.q_net_target.q_values(&obs).unwrap(),
            &outputs["target_q_values"],
        );
        let policy = GreedyQPolicy::new(dqn.q_net);
        let greedy: Vec<u32> = policy.act(&obs, true, &mut rng).unwrap().to_vec1().unwrap();
        let expected = actions(&outputs["deterministic_action"]);
        assert_eq!(greedy, expected, "{name}: greedy actions");
        let single = actions(&outputs["deterministic_action_single_obs_first8"]);
        for (i, &a) in single.iter().enumerate() {
            let one: Vec<u32> = policy
                .act(&obs.narrow(0, i, 1).unwrap(), true, &mut rng)
                .unwrap()
                .to_vec1()
                .unwrap();
            assert_eq!(one, [a], "{name}: single observation {i}");
        }
        // The one loader entry point opens the zip as a QNetwork acting the same way.
        match SavedModel::open(&zip, &dev).unwrap() {
            SavedModel::QNetwork(q) => {
                let again: Vec<u32> = GreedyQPolicy::new(q)
                    .act(&obs, true, &mut rng)
                    .unwrap()
                    .to_vec1()
                    .unwrap();
                assert_eq!(again, expected, "{name}: SavedModel::open");
            }
            other => panic!("{name}: SavedModel::open gave a {}", other.kind()),
        }
        println!(
            "{name}: {n_q} q-values (max scaled error {worst_q:.2e}), {n_t} target q-values \
             ({worst_t:.2e}), {} + {} greedy actions equal",
            expected.len(),
            single.len()
        );
    }
}

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

/// The smallest DQN golden zip (the fastest to mutate).
fn smallest_dqn_zip() -> Vec<u8> {
    dqn_files()
        .iter()
        .map(|(p, f)| std::fs::read(zip_of(p, f)).unwrap())
        .min_by_key(Vec::len)
        .unwrap()
}

#[test]
fn unsupported_dqn_contents_are_named() {
    let good = smallest_dqn_zip();
    let dev = Device::Cpu;
    assert!(QNetwork::from_sb3_zip_bytes(&rezip(&unzip(&good)), &dev).is_ok());
    type Edit = dyn Fn(&mut Value);
    let cases: Vec<(&str, Box<Edit>, &str)> = vec![
        (
            "CnnPolicy",
            Box::new(|d| {
                d["policy_class"]["__init__"] = Value::from("<function CnnPolicy.__init__ at 0x7f>")
            }),
            "CnnPolicy",
        ),
        (
            "QR-DQN policy",
            Box::new(|d| {
                d["policy_class"]["__module__"] = Value::from("sb3_contrib.qrdqn.policies")
            }),
            "sb3_contrib.qrdqn.policies",
        ),
        (
            "NatureCNN extractor",
            Box::new(|d| {
                d["policy_kwargs"]["features_extractor_class"] =
                    Value::from("<class 'stable_baselines3.common.torch_layers.NatureCNN'>")
            }),
            "NatureCNN",
        ),
        (
            "ELU activation",
            Box::new(|d| {
                d["policy_kwargs"]["activation_fn"] =
                    Value::from("<class 'torch.nn.modules.activation.ELU'>")
            }),
            "ELU",
        ),
        (
            "Box actions",
            Box::new(|d| {
                d["action_space"] = serde_json::json!({
                    ":type:": "<class 'gymnasium.spaces.box.Box'>", "dtype": "float32",
                    "_shape": [2], "low": "[-1. -1.]", "high": "[1. 1.]"
                })
            }),
            "Discrete",
        ),
        (
            "net_arch disagreeing with the tensors",
            Box::new(|d| d["policy_kwargs"]["net_arch"] = serde_json::json!([7, 7])),
            "disagrees",
        ),
        (
            "absurd net_arch",
            Box::new(|d| d["policy_kwargs"]["net_arch"] = serde_json::json!([100000, 100000])),
            "disagrees",
        ),
        (
            "huge observation space",
            Box::new(|d| d["observation_space"]["_shape"] = serde_json::json!([100000, 100000])),
            "exceeds the limit",
        ),
    ];
    for (what, edit, needle) in cases {
        let bad = with_data(&good, edit);
        let err = QNetwork::from_sb3_zip_bytes(&bad, &dev).unwrap_err();
        assert!(err.to_string().contains(needle), "{what}: {err}");
    }
    // Extra tensors (a dueling head, a CNN) are named.
    let mut members = unzip(&good);
    let pth_index = members.iter().position(|(n, _)| n == "policy.pth").unwrap();
    // Renaming a tensor key in the pickle (same length) makes it unknown to a DQN MlpPolicy.
    let mut pth = unzip(&members[pth_index].1);
    let needle = b"q_net_target.q_net.0.bias";
    for (name, data) in pth.iter_mut() {
        if name.ends_with("data.pkl") {
            let at = data
                .windows(needle.len())
                .position(|w| w == needle)
                .unwrap();
            data[at..at + needle.len()].copy_from_slice(b"q_net_target.value.0.bias");
        }
    }
    members[pth_index].1 = rezip(&pth);
    let err = QNetwork::from_sb3_zip_bytes(&rezip(&members), &dev).unwrap_err();
    assert!(
        matches!(&err, PolicyError::Unsupported(m) if m.contains("q_net_target.value.0.bias")),
        "{err}"
    );
    // A2C/PPO zips and DQN zips are told apart, both ways.
    let a2c = std::fs::read(rl_golden::golden_dir().join("sb3/a2c_cartpole.zip")).unwrap();
    let err = QNetwork::from_sb3_zip_bytes(&a2c, &dev).unwrap_err();
    assert!(err.to_string().contains("MlpPolicy::from_sb3_zip"), "{err}");
    let err = MlpPolicy::from_sb3_zip_bytes(&good, &dev).unwrap_err();
    assert!(err.to_string().contains("QNetwork::from_sb3_zip"), "{err}");
}

#[test]
fn damaged_dqn_zips_give_errors_or_the_same_networks() {
    let good = smallest_dqn_zip();
    let dev = Device::Cpu;
    let reference = QNetwork::from_sb3_zip_bytes(&good, &dev).unwrap();
    let bits = |q: &QNetwork| -> Vec<u32> {
        q.trainable_vars()
            .iter()
            .flat_map(|(_, v)| {
                v.as_tensor()
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap()
            })
            .map(f32::to_bits)
            .collect()
    };
    let (q_ref, t_ref) = (bits(&reference.q_net), bits(&reference.q_net_target));
    let (mut errors, mut same) = (0, 0);
    let step = (good.len() / 301).max(1);
    for at in (0..good.len()).step_by(step) {
        let mut bad = good.clone();
        bad[at] ^= 0x04;
        match QNetwork::from_sb3_zip_bytes(&bad, &dev) {
            Ok(d) => {
                assert_eq!(bits(&d.q_net), q_ref, "flip at {at} changed q_net silently");
                assert_eq!(
                    bits(&d.q_net_target),
                    t_ref,
                    "flip at {at} changed the target"
                );
                same += 1;
            }
            Err(_) => errors += 1,
        }
    }
    for cut in [0, 10, good.len() / 2, good.len() - 1] {
        assert!(QNetwork::from_sb3_zip_bytes(&good[..cut], &dev).is_err());
    }
    println!("bit flips: {errors} errors, {same} loads of identical networks");
    assert!(errors > 0);
}
