//! MlpPolicy: SB3's structure, names and initialization; shapes and errors; gradients; state
//! dicts; save/load round trips and damaged saved policies.

use candle_core::{DType, Device, Tensor};
use rand::SeedableRng;
use rl_env::Space;
use rl_policy::{
    ActionDist, Activation, ActorCritic, MlpPolicy, MlpPolicyConfig, NetArch, Policy, PolicyError,
    StochasticPolicy,
};
use std::collections::HashMap;
use std::path::PathBuf;

fn cartpole() -> (Space, Space) {
    let env = rl_env::make("CartPole-v1").unwrap();
    (env.observation_space().clone(), env.action_space().clone())
}

fn pendulum_like() -> (Space, Space) {
    (
        Space::boxed(vec![-1.0, -1.0, -8.0], vec![1.0, 1.0, 8.0], vec![3]).unwrap(),
        Space::boxed(vec![-2.0, -1.0], vec![2.0, 1.0], vec![2]).unwrap(),
    )
}

fn bits(t: &Tensor) -> Vec<u32> {
    t.flatten_all()
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
        .iter()
        .map(|x| x.to_bits())
        .collect()
}

fn matrix(t: &Tensor) -> Vec<Vec<f64>> {
    t.to_dtype(DType::F64).unwrap().to_vec2::<f64>().unwrap()
}

/// Max |G - gain^2 I| over the Gram matrix of the rows (wide) or columns (tall) of `w`.
fn orthogonality_error(w: &[Vec<f64>], gain: f64) -> f64 {
    let (r, c) = (w.len(), w[0].len());
    let k = r.min(c);
    let mut worst = 0f64;
    for a in 0..k {
        for b in 0..k {
            let dot: f64 = if r <= c {
                (0..c).map(|t| w[a][t] * w[b][t]).sum()
            } else {
                (0..r).map(|t| w[t][a] * w[t][b]).sum()
            };
            let expect = if a == b { gain * gain } else { 0.0 };
            worst = worst.max((dot - expect).abs() / (gain * gain));
        }
    }
    worst
}

fn scratch(tag: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    std::env::temp_dir().join(format!("rl-policy-{tag}-{}-{nanos}", std::process::id()))
}

#[test]
fn default_policy_has_sb3_structure_names_and_init() {
    let (obs, act) = cartpole();
    let p = MlpPolicy::new(&obs, &act, MlpPolicyConfig::default(), 0, &Device::Cpu).unwrap();
    let expected: Vec<(&str, Vec<usize>, f64)> = vec![
        ("action_net.bias", vec![2], 0.0),
        ("action_net.weight", vec![2, 64], 0.01),
        ("mlp_extractor.policy_net.0.bias", vec![64], 0.0),
        (
            "mlp_extractor.policy_net.0.weight",
            vec![64, 4],
            2f64.sqrt(),
        ),
        ("mlp_extractor.policy_net.2.bias", vec![64], 0.0),
        (
            "mlp_extractor.policy_net.2.weight",
            vec![64, 64],
            2f64.sqrt(),
        ),
        ("mlp_extractor.value_net.0.bias", vec![64], 0.0),
        ("mlp_extractor.value_net.0.weight", vec![64, 4], 2f64.sqrt()),
        ("mlp_extractor.value_net.2.bias", vec![64], 0.0),
        (
            "mlp_extractor.value_net.2.weight",
            vec![64, 64],
            2f64.sqrt(),
        ),
        ("value_net.bias", vec![1], 0.0),
        ("value_net.weight", vec![1, 64], 1.0),
    ];
    let vars = p.trainable_vars();
    assert_eq!(
        vars.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        expected.iter().map(|e| e.0).collect::<Vec<_>>()
    );
    for ((name, var), (_, shape, gain)) in vars.iter().zip(&expected) {
        assert_eq!(var.dims(), shape.as_slice(), "{name}");
        if name.ends_with("bias") {
            assert!(
                bits(var.as_tensor()).iter().all(|&b| b == 0),
                "{name} must start at zero"
            );
        } else {
            let err = orthogonality_error(&matrix(var.as_tensor()), *gain);
            assert!(
                err < 1e-5,
                "{name}: not orthogonal with gain {gain} (error {err:e})"
            );
        }
    }
    assert_eq!(p.varmap().all_vars().len(), 12);
    assert_eq!(p.config(), &MlpPolicyConfig::default());
    assert_eq!(
        MlpPolicyConfig::default().net_arch,
        NetArch {
            shared: vec![],
            pi: vec![64, 64],
            vf: vec![64, 64]
        }
    );
}

#[test]
fn init_is_seeded() {
    let (obs, act) = cartpole();
    let make = |seed| {
        MlpPolicy::new(&obs, &act, MlpPolicyConfig::default(), seed, &Device::Cpu)
            .unwrap()
            .state_dict()
            .unwrap()
    };
    let (a, b, c) = (make(5), make(5), make(6));
    for (k, t) in &a {
        assert_eq!(
            bits(t),
            bits(&b[k]),
            "{k}: same seed must give identical weights"
        );
    }
    assert_ne!(bits(&a["action_net.weight"]), bits(&c["action_net.weight"]));
}

#[test]
fn discrete_forward_shapes_and_acting() {
    let (obs_space, act_space) = cartpole();
    let p = MlpPolicy::new(
        &obs_space,
        &act_space,
        MlpPolicyConfig::default(),
        1,
        &Device::Cpu,
    )
    .unwrap();
    let obs = Tensor::new(
        &[
            [0.01f32, 0.02, -0.03, 0.04],
            [0.2, -0.1, 0.05, 0.3],
            [0.0, 0.0, 0.0, 0.0],
        ],
        &Device::Cpu,
    )
    .unwrap();
    let (dist, value) = p.forward(&obs).unwrap();
    assert_eq!(value.dims(), &[3]);
    assert!(matches!(dist, ActionDist::Categorical(_)));
    assert_eq!(bits(&p.predict_values(&obs).unwrap()), bits(&value));
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let a = p.act(&obs, false, &mut rng).unwrap();
    assert_eq!((a.dims(), a.dtype()), (&[3usize][..], DType::U32));
    let ev = p.evaluate_actions(&obs, &a).unwrap();
    assert_eq!(
        (ev.log_prob.dims(), ev.entropy.dims(), ev.value.dims()),
        (&[3usize][..], &[3usize][..], &[3usize][..])
    );
    // A fresh policy is nearly uniform (action head gain 0.01).
    ev.entropy
        .to_vec1::<f32>()
        .unwrap()
        .iter()
        .for_each(|h| assert!((h - 2f32.ln()).abs() < 1e-3, "{h}"));
    // f64 observations are converted; a wrong width or rank is an error naming the shape.
    let p64 = p
        .act(&obs.to_dtype(DType::F64).unwrap(), true, &mut rng)
        .unwrap();
    assert_eq!(
        p64.to_vec1::<u32>().unwrap(),
        p.act(&obs, true, &mut rng)
            .unwrap()
            .to_vec1::<u32>()
            .unwrap()
    );
    for bad in [
        Tensor::zeros((2, 3), DType::F32, &Device::Cpu).unwrap(),
        Tensor::zeros(4, DType::F32, &Device::Cpu).unwrap(),
    ] {
        match p.forward(&bad) {
            Err(PolicyError::Shape { what, expected, .. }) => {
                assert_eq!((what, expected.as_str()), ("observations", "[batch, 4]"))
            }
            other => panic!("expected a shape error, got {other:?}"),
        }
    }
    assert!(matches!(
        p.evaluate_actions(&obs, &Tensor::new(&[0u32, 1, 2], &Device::Cpu).unwrap()),
        Err(PolicyError::InvalidArgument(_))
    ));
}

#[test]
fn gaussian_policy_log_std_and_gradients() {
    let (obs_space, act_space) = pendulum_like();
    let config = MlpPolicyConfig {
        log_std_init: -0.5,
        ..Default::default()
    };
    let p = MlpPolicy::new(&obs_space, &act_space, config, 3, &Device::Cpu).unwrap();
    let names = p.parameter_names();
    assert_eq!(names[0], "action_net.bias");
    assert!(names.contains(&"log_std".to_string()));
    let sd = p.state_dict().unwrap();
    assert_eq!(sd["log_std"].to_vec1::<f32>().unwrap(), vec![-0.5, -0.5]);
    let obs = Tensor::new(&[[0.5f32, -0.5, 1.0], [-1.0, 0.2, -3.0]], &Device::Cpu).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let a = p.act(&obs, false, &mut rng).unwrap();
    assert_eq!((a.dims(), a.dtype()), (&[2usize, 2][..], DType::F32));
    let ev = p.evaluate_actions(&obs, &a).unwrap();
    // Entropy of a diagonal Gaussian with log_std -0.5 in 2 dims.
    let h = 2.0 * (0.5 + 0.5 * (2.0 * std::f64::consts::PI).ln() - 0.5);
    ev.entropy
        .to_vec1::<f32>()
        .unwrap()
        .iter()
        .for_each(|&x| assert!((f64::from(x) - h).abs() < 1e-5));
    // Every parameter gets a gradient from an A2C-style loss.
    let loss = ((ev.log_prob.mean_all().unwrap().neg().unwrap()
        + ev.value.sqr().unwrap().mean_all().unwrap())
    .unwrap()
        - ev.entropy.mean_all().unwrap())
    .unwrap();
    let grads = loss.backward().unwrap();
    for (name, var) in p.trainable_vars() {
        let g = grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("no gradient for {name}"));
        let norm: f32 = g.sqr().unwrap().sum_all().unwrap().to_scalar().unwrap();
        assert!(norm.is_finite(), "{name}");
        if name.ends_with("weight") || name == "log_std" {
            assert!(norm > 0.0, "zero gradient for {name}");
        }
    }
}

#[test]
fn custom_architectures_and_torch_default_init() {
    let (obs_space, act_space) = cartpole();
    let config = MlpPolicyConfig {
        net_arch: NetArch {
            shared: vec![16],
            pi: vec![8],
            vf: vec![],
        },
        activation: Activation::ReLU,
        ortho_init: false,
        log_std_init: 0.0,
        use_sde: false,
    };
    let p = MlpPolicy::new(&obs_space, &act_space, config, 0, &Device::Cpu).unwrap();
    let sd = p.state_dict().unwrap();
    let mut shapes: Vec<(String, Vec<usize>)> = sd
        .iter()
        .map(|(k, t)| (k.clone(), t.dims().to_vec()))
        .collect();
    shapes.sort();
    let expected: Vec<(String, Vec<usize>)> = [
        ("action_net.bias", vec![2]),
        ("action_net.weight", vec![2, 8]),
        ("mlp_extractor.policy_net.0.bias", vec![8]),
        ("mlp_extractor.policy_net.0.weight", vec![8, 16]),
        ("mlp_extractor.shared_net.0.bias", vec![16]),
        ("mlp_extractor.shared_net.0.weight", vec![16, 4]),
        ("value_net.bias", vec![1]),
        ("value_net.weight", vec![1, 16]),
    ]
    .into_iter()
    .map(|(k, s)| (k.to_string(), s))
    .collect();
    assert_eq!(shapes, expected);
    // PyTorch's default Linear init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), biases included.
    let b = sd["mlp_extractor.shared_net.0.bias"]
        .to_vec1::<f32>()
        .unwrap();
    assert!(b.iter().all(|x| x.abs() <= 0.5) && b.iter().any(|&x| x != 0.0));
    let obs = Tensor::new(&[[0.1f32, 0.2, 0.3, 0.4]], &Device::Cpu).unwrap();
    assert_eq!(p.forward(&obs).unwrap().1.dims(), &[1]);

    for bad in [
        MlpPolicyConfig {
            net_arch: NetArch {
                shared: vec![],
                pi: vec![0],
                vf: vec![4],
            },
            ..Default::default()
        },
        MlpPolicyConfig {
            log_std_init: f64::NAN,
            ..Default::default()
        },
    ] {
        assert!(matches!(
            MlpPolicy::new(&obs_space, &act_space, bad, 0, &Device::Cpu),
            Err(PolicyError::InvalidArgument(_))
        ));
    }
    assert!(matches!(
        MlpPolicy::new(
            &Space::discrete(3),
            &act_space,
            MlpPolicyConfig::default(),
            0,
            &Device::Cpu
        ),
        Err(PolicyError::Unsupported(_))
    ));
}

#[test]
fn load_state_dict_checks_names_and_shapes() {
    let (obs_space, act_space) = cartpole();
    let p = MlpPolicy::new(
        &obs_space,
        &act_space,
        MlpPolicyConfig::default(),
        0,
        &Device::Cpu,
    )
    .unwrap();
    let donor = MlpPolicy::new(
        &obs_space,
        &act_space,
        MlpPolicyConfig::default(),
        9,
        &Device::Cpu,
    )
    .unwrap()
    .state_dict()
    .unwrap();
    let before = p.state_dict().unwrap();

    let mut missing = donor.clone();
    missing.remove("value_net.bias");
    let mut extra = donor.clone();
    extra.insert(
        "log_std".into(),
        Tensor::zeros(2, DType::F32, &Device::Cpu).unwrap(),
    );
    let mut wrong = donor.clone();
    wrong.insert(
        "action_net.weight".into(),
        Tensor::zeros((3, 64), DType::F32, &Device::Cpu).unwrap(),
    );
    for (what, sd) in [
        ("missing", &missing),
        ("extra", &extra),
        ("wrong shape", &wrong),
    ] {
        let err = p.load_state_dict(sd).unwrap_err();
        assert!(
            matches!(
                err,
                PolicyError::InvalidArgument(_) | PolicyError::Shape { .. }
            ),
            "{what}: {err}"
        );
        // Nothing was changed by the failed load.
        for (k, t) in &before {
            assert_eq!(
                bits(t),
                bits(&p.state_dict().unwrap()[k]),
                "{what} changed {k}"
            );
        }
    }
    // f64 tensors are accepted and converted.
    let as_f64: HashMap<String, Tensor> = donor
        .iter()
        .map(|(k, t)| (k.clone(), t.to_dtype(DType::F64).unwrap()))
        .collect();
    p.load_state_dict(&as_f64).unwrap();
    for (k, t) in &donor {
        assert_eq!(bits(t), bits(&p.state_dict().unwrap()[k]), "{k}");
    }
    // Loading changes what a forward computes (the layers share the variables' storage).
    let q = MlpPolicy::from_named_tensors(
        &obs_space,
        &act_space,
        MlpPolicyConfig::default(),
        &donor,
        &Device::Cpu,
    )
    .unwrap();
    let obs = Tensor::new(&[[0.3f32, -0.2, 0.1, 0.5]], &Device::Cpu).unwrap();
    assert_eq!(
        bits(&p.forward(&obs).unwrap().1),
        bits(&q.forward(&obs).unwrap().1)
    );
}

#[test]
fn save_load_round_trip_is_exact() {
    for (obs_space, act_space, config) in [
        (cartpole().0, cartpole().1, MlpPolicyConfig::default()),
        (
            pendulum_like().0,
            pendulum_like().1,
            MlpPolicyConfig {
                net_arch: NetArch {
                    shared: vec![8],
                    pi: vec![32, 32],
                    vf: vec![64],
                },
                activation: Activation::ReLU,
                ortho_init: true,
                log_std_init: -2.0,
                use_sde: true,
            },
        ),
    ] {
        let p = MlpPolicy::new(&obs_space, &act_space, config.clone(), 17, &Device::Cpu).unwrap();
        let dir = scratch("roundtrip");
        p.save(&dir).unwrap();
        let q = MlpPolicy::load(&dir, &Device::Cpu).unwrap();
        assert_eq!(q.config(), &config);
        assert_eq!(
            q.observation_space(),
            &obs_space,
            "infinite bounds survive JSON"
        );
        assert_eq!(q.action_space(), &act_space);
        let n = 5 * obs_space.flat_dim();
        let obs = Tensor::from_vec(
            (0..n).map(|i| (i as f32 * 0.37).sin()).collect::<Vec<_>>(),
            (5, n / 5),
            &Device::Cpu,
        )
        .unwrap();
        let ((d1, v1), (d2, v2)) = (p.forward(&obs).unwrap(), q.forward(&obs).unwrap());
        assert_eq!(bits(&v1), bits(&v2));
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        assert_eq!(
            bits(&d1.act(true, &mut rng).unwrap()),
            bits(&d2.act(true, &mut rng).unwrap())
        );
        assert_eq!(bits(&d1.entropy().unwrap()), bits(&d2.entropy().unwrap()));
        // The directory holds one file, which also loads on its own.
        let file = dir.join(rl_policy::io::MODEL_FILE);
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [rl_policy::io::MODEL_FILE]);
        let r = MlpPolicy::load(&file, &Device::Cpu).unwrap();
        assert_eq!(bits(&r.forward(&obs).unwrap().1), bits(&v1));
        // Saving again over the same directory works and gives the same bytes.
        let w1 = std::fs::read(&file).unwrap();
        q.save(&dir).unwrap();
        assert_eq!(w1, std::fs::read(&file).unwrap());
        assert_eq!(w1, q.save_to_bytes().unwrap());
        std::fs::remove_dir_all(&dir).ok();
    }
}

#[test]
fn damaged_saved_policies_give_errors() {
    use rl_policy::io::MODEL_FILE;
    let (obs_space, act_space) = cartpole();
    let p = MlpPolicy::new(
        &obs_space,
        &act_space,
        MlpPolicyConfig::default(),
        0,
        &Device::Cpu,
    )
    .unwrap();
    let dir = scratch("damaged");
    p.save(&dir).unwrap();
    let good = std::fs::read(dir.join(MODEL_FILE)).unwrap();
    let load = || MlpPolicy::load(&dir, &Device::Cpu);
    assert!(load().is_ok());

    let cases: Vec<Vec<u8>> = vec![
        good[..good.len() / 2].to_vec(),
        good[..4].to_vec(),
        good[..good.len() - 1].to_vec(),
        Vec::new(),
        b"not safetensors at all".to_vec(),
        {
            let mut w = good.clone();
            w[3] ^= 0x40; // header length
            w
        },
        {
            let mut w = good.clone();
            w.push(0); // trailing byte
            w
        },
    ];
    for (i, w) in cases.into_iter().enumerate() {
        std::fs::write(dir.join(MODEL_FILE), &w).unwrap();
        assert!(
            matches!(load(), Err(PolicyError::Corrupt { .. })),
            "case {i}: {:?}",
            load()
        );
        assert!(matches!(
            MlpPolicy::load_from_bytes(&w, &Device::Cpu),
            Err(PolicyError::Corrupt { .. })
        ));
    }
    std::fs::remove_file(dir.join(MODEL_FILE)).unwrap();
    assert!(matches!(load(), Err(PolicyError::Io { .. })));
    assert!(matches!(
        MlpPolicy::load(dir.join("nope"), &Device::Cpu),
        Err(PolicyError::Io { .. })
    ));
    std::fs::remove_dir_all(&dir).ok();
}
