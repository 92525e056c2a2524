//! Saving and loading `QNetwork`s: bit-exact round trips through the shared save path, the
//! loader that says which kind of model a file holds, kinds told apart, damaged files refused.

use candle_core::{Device, Tensor};
use rl_env::Space;
use rl_policy::{
    Activation, MlpPolicy, MlpPolicyConfig, PolicyError, QFunction, QNetwork, QNetworkConfig,
    SavedModel,
};
use std::path::PathBuf;

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rl-qnet-io-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn spaces() -> (Space, Space) {
    (
        Space::boxed(
            vec![-1.0, -2.0, -3.0],
            vec![1.0, 2.0, f32::INFINITY],
            vec![3],
        )
        .unwrap(),
        Space::Discrete { n: 4, start: 0 },
    )
}

fn qnet(seed: u64) -> QNetwork {
    let (obs, act) = spaces();
    let config = QNetworkConfig {
        net_arch: vec![16, 8],
        activation: Activation::Tanh,
    };
    QNetwork::new(&obs, &act, config, seed, &Device::Cpu).unwrap()
}

fn bits(q: &QNetwork) -> Vec<(String, Vec<u32>)> {
    q.trainable_vars()
        .into_iter()
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

#[test]
fn qnetworks_round_trip_bit_for_bit_and_say_what_they_are() {
    let q = qnet(3);
    let dir = scratch("round-trip");
    q.save(&dir).unwrap();
    let back = QNetwork::load(&dir, &Device::Cpu).unwrap();
    assert_eq!(bits(&back), bits(&q));
    assert_eq!(back.config(), q.config());
    assert_eq!(back.observation_space(), q.observation_space());
    assert_eq!(back.action_space(), q.action_space());
    let obs = Tensor::new(&[[0.1f32, -0.5, 2.0], [1.0, 0.0, -1.0]], &Device::Cpu).unwrap();
    let (a, b) = (
        q.q_values(&obs).unwrap().to_vec2::<f32>().unwrap(),
        back.q_values(&obs).unwrap().to_vec2::<f32>().unwrap(),
    );
    assert_eq!(a, b);
    // Bytes round trip too, and are deterministic.
    assert_eq!(q.save_to_bytes().unwrap(), back.save_to_bytes().unwrap());
    // The one loader says which kind it found, from the directory or the file inside it.
    for path in [dir.clone(), dir.join(rl_policy::io::MODEL_FILE)] {
        let m = SavedModel::load(&path, &Device::Cpu).unwrap();
        assert_eq!(m.kind(), "QNetwork");
        assert!(matches!(&m, SavedModel::QNetwork(l) if bits(l) == bits(&q)));
        assert_eq!(
            SavedModel::open(&path, &Device::Cpu).unwrap().kind(),
            "QNetwork"
        );
    }
    // An MlpPolicy loader refuses it by name, and the reverse.
    let err = MlpPolicy::load(&dir, &Device::Cpu).unwrap_err();
    assert!(
        matches!(&err, PolicyError::Unsupported(m) if m.contains("QNetwork")),
        "{err}"
    );
    let (obs_space, act_space) = spaces();
    let mlp = MlpPolicy::new(
        &obs_space,
        &act_space,
        MlpPolicyConfig::default(),
        0,
        &Device::Cpu,
    )
    .unwrap();
    let mlp_dir = scratch("mlp");
    mlp.save(&mlp_dir).unwrap();
    assert_eq!(
        SavedModel::load(&mlp_dir, &Device::Cpu).unwrap().kind(),
        "MlpPolicy"
    );
    let err = QNetwork::load(&mlp_dir, &Device::Cpu).unwrap_err();
    assert!(
        matches!(&err, PolicyError::Unsupported(m) if m.contains("MlpPolicy")),
        "{err}"
    );
    // Saving again over it replaces the one file.
    qnet(4).save(&dir).unwrap();
    assert_eq!(
        bits(&QNetwork::load(&dir, &Device::Cpu).unwrap()),
        bits(&qnet(4))
    );
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&mlp_dir).unwrap();
}

#[test]
fn every_single_byte_corruption_is_refused_or_harmless() {
    let q = qnet(5);
    let good = q.save_to_bytes().unwrap();
    let reference = bits(&q);
    let (mut errors, mut harmless) = (0, 0);
    for at in 0..good.len() {
        let mut bad = good.clone();
        bad[at] ^= 1 << (at % 8);
        match QNetwork::load_from_bytes(&bad, &Device::Cpu) {
            Ok(l) => {
                assert_eq!(
                    bits(&l),
                    reference,
                    "flip at {at} loaded a different network"
                );
                harmless += 1;
            }
            Err(_) => errors += 1,
        }
    }
    println!(
        "{} single-bit flips: {errors} errors, {harmless} harmless",
        good.len()
    );
    assert!(errors > good.len() * 9 / 10);
    for cut in [0, 7, 8, good.len() / 2, good.len() - 1] {
        assert!(QNetwork::load_from_bytes(&good[..cut], &Device::Cpu).is_err());
    }
}

#[test]
fn bad_networks_are_typed_errors() {
    let (obs, act) = spaces();
    let dev = Device::Cpu;
    let cfg = |net_arch: Vec<usize>| QNetworkConfig {
        net_arch,
        activation: Activation::ReLU,
    };
    for arch in [
        vec![100_000, 100_000],
        vec![0],
        vec![65_536; 64],
        vec![1; 65],
    ] {
        let r = QNetwork::new(&obs, &act, cfg(arch.clone()), 0, &dev);
        assert!(
            matches!(r, Err(PolicyError::InvalidArgument(_))),
            "{arch:?}: {r:?}"
        );
    }
    let box_act = Space::boxed(vec![-1.0], vec![1.0], vec![1]).unwrap();
    assert!(matches!(
        QNetwork::new(&obs, &box_act, cfg(vec![8]), 0, &dev),
        Err(PolicyError::Unsupported(_))
    ));
    // NaN weights cannot be saved (they could not be loaded again).
    let q = qnet(7);
    let (name, var) = q.trainable_vars().remove(0);
    let mut values = var
        .as_tensor()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    values[1] = f32::NAN;
    var.set(&Tensor::from_vec(values, var.dims(), &dev).unwrap())
        .unwrap();
    assert!(matches!(
        q.save_to_bytes(),
        Err(PolicyError::NonFiniteWeight { tensor, index: 1, .. }) if tensor == name
    ));
    let dir = scratch("nan");
    assert!(q.save(&dir).is_err());
    // Missing model.
    assert!(matches!(
        QNetwork::load(&dir, &dev),
        Err(PolicyError::Io { .. })
    ));
    let _ = std::fs::remove_dir_all(&dir);
}
