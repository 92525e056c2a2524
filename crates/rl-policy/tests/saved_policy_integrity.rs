//! Saved policies are untrusted input and must survive crashes: bit flips are detected,
//! declared sizes are checked before anything is built, NaN weights are refused, a save killed
//! at a random moment leaves a model that loads, and the legacy two-file layout still loads.

use candle_core::{DType, Device, Tensor};
use rand::{Rng, SeedableRng};
use rl_env::Space;
use rl_policy::io::{CONFIG_FILE, FORMAT, MODEL_FILE, WEIGHTS_FILE};
use rl_policy::{MlpPolicy, MlpPolicyConfig, PolicyError, StochasticPolicy};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

fn cartpole() -> (Space, Space) {
    let env = rl_env::make("CartPole-v1").unwrap();
    (env.observation_space().clone(), env.action_space().clone())
}

fn policy(seed: u64) -> MlpPolicy {
    std::env::set_var("RAYON_NUM_THREADS", "1");
    let (obs, act) = cartpole();
    MlpPolicy::new(&obs, &act, MlpPolicyConfig::default(), seed, &Device::Cpu).unwrap()
}

/// Every parameter's bits, by name.
fn weights(p: &MlpPolicy) -> Vec<(String, Vec<u32>)> {
    p.trainable_vars()
        .into_iter()
        .map(|(n, v)| {
            let bits = v
                .as_tensor()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
                .iter()
                .map(|x| x.to_bits())
                .collect();
            (n, bits)
        })
        .collect()
}

fn scratch(tag: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    std::env::temp_dir().join(format!("rl-policy-{tag}-{}-{nanos}", std::process::id()))
}

fn space_json(s: &Space) -> Value {
    let bound = |x: f32| {
        if x.is_finite() {
            json!(x)
        } else if x > 0.0 {
            json!("inf")
        } else {
            json!("-inf")
        }
    };
    match s {
        Space::Discrete { n, start } => json!({"type": "Discrete", "n": n, "start": start}),
        Space::Box(b) => json!({
            "type": "Box",
            "low": b.low().iter().map(|&x| bound(x)).collect::<Vec<_>>(),
            "high": b.high().iter().map(|&x| bound(x)).collect::<Vec<_>>(),
            "shape": b.shape(),
        }),
    }
}

/// The `policy.json` version 1 wrote for `p`.
fn legacy_json(p: &MlpPolicy) -> Value {
    json!({
        "format": FORMAT,
        "config": serde_json::to_value(p.config()).unwrap(),
        "observation_space": space_json(p.observation_space()),
        "action_space": space_json(p.action_space()),
    })
}

/// Writes `p` in the legacy layout (what `MlpPolicy::save` wrote before format version 2).
fn write_legacy(p: &MlpPolicy, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    candle_core::safetensors::save(&p.state_dict().unwrap(), dir.join(WEIGHTS_FILE)).unwrap();
    std::fs::write(
        dir.join(CONFIG_FILE),
        serde_json::to_vec_pretty(&legacy_json(p)).unwrap(),
    )
    .unwrap();
}

#[test]
fn legacy_layout_still_loads_and_is_replaced_by_the_next_save() {
    let p = policy(11);
    let dir = scratch("legacy");
    write_legacy(&p, &dir);
    let q = MlpPolicy::load(&dir, &Device::Cpu).unwrap();
    assert_eq!(weights(&q), weights(&p));
    assert_eq!(q.config(), p.config());
    assert_eq!(q.observation_space(), p.observation_space());
    q.save(&dir).unwrap();
    assert!(!dir.join(WEIGHTS_FILE).exists() && !dir.join(CONFIG_FILE).exists());
    let r = MlpPolicy::load(&dir, &Device::Cpu).unwrap();
    assert_eq!(weights(&r), weights(&p));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn damaged_legacy_layouts_give_errors() {
    let p = policy(0);
    let dir = scratch("legacy-damaged");
    write_legacy(&p, &dir);
    let weights_bytes = std::fs::read(dir.join(WEIGHTS_FILE)).unwrap();
    let config = std::fs::read_to_string(dir.join(CONFIG_FILE)).unwrap();
    let load = || MlpPolicy::load(&dir, &Device::Cpu);
    let restore = || {
        std::fs::write(dir.join(WEIGHTS_FILE), &weights_bytes).unwrap();
        std::fs::write(dir.join(CONFIG_FILE), &config).unwrap();
    };
    assert!(load().is_ok());
    let weight_cases: Vec<Vec<u8>> = vec![
        weights_bytes[..weights_bytes.len() / 2].to_vec(),
        weights_bytes[..4].to_vec(),
        Vec::new(),
        b"not safetensors at all".to_vec(),
        {
            let mut w = weights_bytes.clone();
            w[3] ^= 0x40; // header length
            w
        },
    ];
    for (i, w) in weight_cases.into_iter().enumerate() {
        restore();
        std::fs::write(dir.join(WEIGHTS_FILE), w).unwrap();
        assert!(
            matches!(load(), Err(PolicyError::Corrupt { .. })),
            "weights case {i}: {:?}",
            load()
        );
    }
    let config_cases = [
        "{".to_string(),
        String::new(),
        config.replace("rl-policy/MlpPolicy/1", "something-else/9"),
        config.replace("\"Tanh\"", "\"Sigmoid\""),
        config.replace("\"n\": 2", "\"n\": 3"), // weights no longer fit the action space
        config.replace("\"start\"", "\"begin\""),
    ];
    for (i, c) in config_cases.iter().enumerate() {
        assert_ne!(c, &config, "config case {i} must change the file");
        restore();
        std::fs::write(dir.join(CONFIG_FILE), c).unwrap();
        assert!(
            matches!(load(), Err(PolicyError::Corrupt { .. })),
            "config case {i}: {:?}",
            load()
        );
    }
    restore();
    std::fs::remove_file(dir.join(WEIGHTS_FILE)).unwrap();
    assert!(matches!(load(), Err(PolicyError::Io { .. })));
    std::fs::remove_dir_all(&dir).ok();
}

/// `net_arch [100000, 100000]` or a Box of 10^10 elements in `policy.json` once meant 40-400 GB
/// allocated before the mismatch with the weights showed.
#[test]
fn declared_sizes_in_policy_json_are_checked_before_building() {
    let p = policy(1);
    let dir = scratch("legacy-sizes");
    write_legacy(&p, &dir);
    let good = legacy_json(&p);
    type Edit = fn(&mut Value);
    let cases: [(Edit, &str); 6] = [
        (
            |v| v["config"]["net_arch"] = json!({"pi": [100_000, 100_000], "vf": [64, 64]}),
            "exceeds the limit",
        ),
        (
            |v| v["config"]["net_arch"] = json!({"pi": vec![64; 1000], "vf": [64, 64]}),
            "exceeds the limit",
        ),
        (
            |v| v["config"]["net_arch"] = json!({"pi": [4096, 4096], "vf": [64, 64]}),
            "has shape [64, 4] but the spaces and net_arch declare [4096, 4]",
        ),
        (
            |v| v["observation_space"]["shape"] = json!([100_000, 100_000]),
            "exceeds the limit",
        ),
        (
            |v| v["observation_space"]["shape"] = json!([u64::MAX, 3]),
            "overflows",
        ),
        (
            |v| v["action_space"]["n"] = json!(1u64 << 40),
            "Discrete action space",
        ),
    ];
    for (i, (edit, message)) in cases.into_iter().enumerate() {
        let mut v = good.clone();
        edit(&mut v);
        std::fs::write(dir.join(CONFIG_FILE), v.to_string()).unwrap();
        let err = MlpPolicy::load(&dir, &Device::Cpu).unwrap_err();
        assert!(
            matches!(
                err,
                PolicyError::LimitExceeded { .. } | PolicyError::Corrupt { .. }
            ) && err.to_string().contains(message),
            "case {i}: {err}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// A NaN weight once made a deterministic `act` quietly return action 0.
#[test]
fn non_finite_weights_are_errors_naming_the_tensor() {
    let p = policy(2);
    let dir = scratch("nan");
    for (value, name) in [
        (f32::NAN, "mlp_extractor.policy_net.2.weight"),
        (f32::INFINITY, "action_net.bias"),
        (f32::NEG_INFINITY, "value_net.weight"),
    ] {
        let mut sd = p.state_dict().unwrap();
        let t = &sd[name];
        let mut v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        v[1] = value;
        let bad = Tensor::from_vec(v, t.dims(), &Device::Cpu).unwrap();
        sd.insert(name.to_string(), bad);
        // Legacy layout: the error names the tensor.
        write_legacy(&p, &dir);
        candle_core::safetensors::save(&sd, dir.join(WEIGHTS_FILE)).unwrap();
        match MlpPolicy::load(&dir, &Device::Cpu) {
            Err(PolicyError::NonFiniteWeight { tensor, index, .. }) => {
                assert_eq!((tensor.as_str(), index), (name, 1))
            }
            other => panic!("{name}: {other:?}"),
        }
        // A policy holding the value refuses to be saved (it could not be loaded again), and
        // the model already on disk is untouched.
        let q = MlpPolicy::from_named_tensors(
            p.observation_space(),
            p.action_space(),
            p.config().clone(),
            &sd,
            &Device::Cpu,
        )
        .unwrap();
        p.save(&dir).unwrap();
        assert!(matches!(
            q.save(&dir),
            Err(PolicyError::NonFiniteWeight { tensor, .. }) if tensor == name
        ));
        assert_eq!(
            weights(&MlpPolicy::load(&dir, &Device::Cpu).unwrap()),
            weights(&p)
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}

/// 296 of 300 single-bit flips in version 1's `model.safetensors` loaded as a different model.
/// Now every flip anywhere in the file must be an error or load the very same model.
#[test]
fn single_bit_flips_are_detected() {
    let p = policy(3);
    let good = p.save_to_bytes().unwrap();
    let reference = weights(&p);
    let header_end = 8 + u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
    // 200 flips spread over the length prefix and the header, 200 over the tensor data.
    let mut positions: Vec<(usize, u8)> = Vec::new();
    for i in 0..200 {
        positions.push((i * header_end / 200, (i % 8) as u8));
        let data = good.len() - header_end;
        positions.push((header_end + i * data / 200, ((i * 3) % 8) as u8));
    }
    let (mut errors, mut identical) = (0, 0);
    for (at, bit) in positions {
        let mut bad = good.clone();
        bad[at] ^= 1 << bit;
        match MlpPolicy::load_from_bytes(&bad, &Device::Cpu) {
            Err(PolicyError::Corrupt { reason, .. }) => {
                assert!(!reason.is_empty());
                errors += 1
            }
            Err(e) => panic!("flip at byte {at} bit {bit}: unexpected error kind {e}"),
            Ok(q) => {
                assert_eq!(
                    weights(&q),
                    reference,
                    "flip at byte {at} bit {bit} loaded different weights"
                );
                assert_eq!(q.config(), p.config());
                assert_eq!(q.observation_space(), p.observation_space());
                assert_eq!(q.action_space(), p.action_space());
                identical += 1;
            }
        }
    }
    println!("400 single-bit flips: {errors} errors, {identical} identical loads");
    assert_eq!(errors + identical, 400);
    // Data flips can only be caught by the checksum.
    let mut bad = good.clone();
    bad[good.len() - 5] ^= 0x01;
    let err = MlpPolicy::load_from_bytes(&bad, &Device::Cpu).unwrap_err();
    assert!(err.to_string().contains("checksum mismatch"), "{err}");
}

/// Environment variable that turns [`save_loop_child`] into a saving loop.
const SAVE_LOOP_DIR: &str = "RL_POLICY_TEST_SAVE_LOOP_DIR";

/// Not a test on its own: the child process of [`sigkill_during_saves_never_mixes_models`],
/// saving two different policies in turn into the directory it is given until it is killed.
#[test]
#[ignore = "helper process for sigkill_during_saves_never_mixes_models"]
fn save_loop_child() {
    let Some(dir) = std::env::var_os(SAVE_LOOP_DIR) else {
        return;
    };
    let (a, b) = (policy(21), policy(22));
    loop {
        a.save(&dir).unwrap();
        b.save(&dir).unwrap();
    }
}

/// Version 1 left 12 of 25 directories with weights and description from different saves when
/// SIGKILLed at random moments. Now the model is always one of the two saved ones, whole, and
/// the next successful save removes what the killed ones left behind.
#[test]
fn sigkill_during_saves_never_mixes_models() {
    let (a, b) = (policy(21), policy(22));
    let (wa, wb) = (weights(&a), weights(&b));
    let dir = scratch("sigkill");
    a.save(&dir).unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let (mut saw_a, mut saw_b) = (0, 0);
    for round in 0..25 {
        let mut child = Command::new(&exe)
            .args([
                "save_loop_child",
                "--exact",
                "--ignored",
                "--test-threads=1",
            ])
            .env(SAVE_LOOP_DIR, &dir)
            .env("RAYON_NUM_THREADS", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.gen_range(30..150)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let loaded = MlpPolicy::load(&dir, &Device::Cpu)
            .unwrap_or_else(|e| panic!("round {round}: the model does not load: {e}"));
        let w = weights(&loaded);
        if w == wa {
            saw_a += 1;
        } else if w == wb {
            saw_b += 1;
        } else {
            panic!("round {round}: the loaded model is neither of the saved ones");
        }
    }
    println!("25 kills: model A {saw_a} times, model B {saw_b} times");
    a.save(&dir).unwrap();
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, [MODEL_FILE], "temporary files were left behind");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn oversized_and_foreign_files_are_refused() {
    // A safetensors file that is not a saved policy (no format tag).
    let p = policy(4);
    let dir = scratch("foreign");
    std::fs::create_dir_all(&dir).unwrap();
    candle_core::safetensors::save(&p.state_dict().unwrap(), dir.join(MODEL_FILE)).unwrap();
    let err = MlpPolicy::load(&dir, &Device::Cpu).unwrap_err();
    assert!(
        matches!(&err, PolicyError::Corrupt { reason, .. } if reason.contains("format")),
        "{err}"
    );
    // An edited format tag breaks the checksum: damage, not a file of another version.
    // (The metadata is sorted: the first occurrence of the tag is the `format` entry.)
    let mut later = p.save_to_bytes().unwrap();
    let tag = b"rl-policy/MlpPolicy/2";
    let at = later.windows(tag.len()).position(|w| w == tag).unwrap();
    later[at + tag.len() - 1] = b'3';
    let err = MlpPolicy::load_from_bytes(&later, &Device::Cpu).unwrap_err();
    assert!(
        matches!(&err, PolicyError::Corrupt { reason, .. } if reason.contains("checksum mismatch")),
        "{err}"
    );
    // A file larger than the limit is refused before it is read (a sparse file: no disk used).
    let huge = dir.join("huge.safetensors");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(rl_policy::limits::MAX_FILE_BYTES + 1)
        .unwrap();
    for r in [
        MlpPolicy::load(&huge, &Device::Cpu),
        MlpPolicy::from_sb3_zip(&huge, &Device::Cpu),
    ] {
        assert!(
            matches!(&r, Err(PolicyError::LimitExceeded { path, .. }) if path.ends_with("huge.safetensors")),
            "{r:?}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
    // f64 weights in the legacy layout are converted (version 1 accepted any float dtype).
    let dir = scratch("f64");
    write_legacy(&p, &dir);
    let sd: std::collections::HashMap<String, Tensor> = p
        .state_dict()
        .unwrap()
        .into_iter()
        .map(|(k, t)| (k, t.to_dtype(DType::F64).unwrap()))
        .collect();
    candle_core::safetensors::save(&sd, dir.join(WEIGHTS_FILE)).unwrap();
    assert_eq!(
        weights(&MlpPolicy::load(&dir, &Device::Cpu).unwrap()),
        weights(&p)
    );
    std::fs::remove_dir_all(&dir).ok();
}
