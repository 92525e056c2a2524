//! The training context saved inside a model file (env id, kwargs, VecNormalize statistics):
//! round trip, the model still loads as before, damage and malformed entries are errors, and
//! `NormalizedPolicy` / `Policy::predict_into` act as SB3's `predict` on raw observations.

use candle_core::Device;
use rand::rngs::StdRng;
use rand::SeedableRng;
use rl_env::{
    AutoresetMode, Space, SyncVecEnv, VecAction, VecEnv, VecNormalize, VecNormalizeConfig,
};
use rl_policy::context::{context_from_bytes, load_context, save_model_file, with_context};
use rl_policy::{
    MlpPolicy, MlpPolicyConfig, NormalizedPolicy, Policy, SavedModel, TrainingContext,
};
use rl_tensor_bridge::ActionBuffer;

fn pendulum_stats() -> (VecNormalize<SyncVecEnv>, MlpPolicy) {
    let mut venv = VecNormalize::new(
        SyncVecEnv::make("Pendulum-v1", 3, AutoresetMode::SameStep).unwrap(),
        VecNormalizeConfig::default(),
    )
    .unwrap();
    venv.reset(Some(4)).unwrap();
    let a = vec![0.5f32; 3];
    for _ in 0..20 {
        venv.step(VecAction::Continuous(&a)).unwrap();
    }
    let policy = MlpPolicy::new(
        venv.observation_space(),
        venv.action_space(),
        MlpPolicyConfig::default(),
        0,
        &Device::Cpu,
    )
    .unwrap();
    (venv, policy)
}

fn context(venv: &VecNormalize<SyncVecEnv>) -> TrainingContext {
    TrainingContext {
        env_id: Some("Pendulum-v1".into()),
        env_kwargs: vec!["g:9.81".into(), "max_episode_steps:50".into()],
        normalization: venv.normalization(),
    }
}

#[test]
fn the_context_round_trips_and_the_model_loads_as_before() {
    let (venv, policy) = pendulum_stats();
    let ctx = context(&venv);
    let plain = policy.save_to_bytes().unwrap();
    assert_eq!(
        context_from_bytes(&plain).unwrap(),
        TrainingContext::default()
    );
    let bytes = with_context(&plain, &ctx).unwrap();
    assert_eq!(context_from_bytes(&bytes).unwrap(), ctx);
    // Replacing the context, and removing it.
    let other = TrainingContext {
        env_id: Some("MountainCarContinuous-v0".into()),
        ..TrainingContext::default()
    };
    assert_eq!(
        context_from_bytes(&with_context(&bytes, &other).unwrap()).unwrap(),
        other
    );
    // The weights are untouched: the same model loads from either file.
    let a = MlpPolicy::load_from_bytes(&plain, &Device::Cpu).unwrap();
    let b = MlpPolicy::load_from_bytes(&bytes, &Device::Cpu).unwrap();
    assert_eq!(a.save_to_bytes().unwrap(), b.save_to_bytes().unwrap());

    let dir = std::env::temp_dir().join(format!("rl_model_context_{}", std::process::id()));
    save_model_file(&dir, &bytes).unwrap();
    assert_eq!(load_context(&dir).unwrap(), ctx);
    assert!(matches!(
        SavedModel::load(&dir, &Device::Cpu).unwrap(),
        SavedModel::MlpPolicy(_)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    // An SB3 zip has no context.
    let zip = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/golden/sb3/a2c_cartpole.zip");
    assert_eq!(load_context(&zip).unwrap(), TrainingContext::default());
}

#[test]
fn damaged_or_malformed_contexts_are_errors() {
    let (venv, policy) = pendulum_stats();
    let bytes = with_context(&policy.save_to_bytes().unwrap(), &context(&venv)).unwrap();
    // Any flipped byte in the header (where the context lives) is refused, by the checksum or
    // by the parser, never read as another context.
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut refused = 0;
    for i in (8..8 + header_len).step_by(7) {
        let mut bad = bytes.clone();
        bad[i] ^= 0x20;
        match context_from_bytes(&bad) {
            Err(_) => refused += 1,
            Ok(c) => assert_eq!(c, context(&venv), "byte {i} changed the context"),
        }
    }
    assert!(refused > header_len / 8, "{refused} refused");
    // A flipped weight byte keeps the structure but breaks the checksum: no context is read
    // from it and it is never saved.
    let mut bad = bytes.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    let err = context_from_bytes(&bad).unwrap_err();
    assert!(err.to_string().contains("checksum"), "{err}");
    let dir = std::env::temp_dir().join(format!("rl_never_written_{}", std::process::id()));
    assert!(save_model_file(&dir, &bad).is_err());
    assert!(!dir.join(rl_policy::io::MODEL_FILE).exists());
    // Not a model file at all.
    assert!(context_from_bytes(b"not a model").is_err());
    assert!(with_context(b"\0\0\0\0\0\0\0\0", &TrainingContext::default()).is_err());
    // Kwargs without an env id.
    let err = with_context(
        &policy.save_to_bytes().unwrap(),
        &TrainingContext {
            env_kwargs: vec!["g:1.0".into()],
            ..TrainingContext::default()
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("env_id"), "{err}");
    // Invalid statistics are refused before they are written.
    let mut snap = venv.normalization().unwrap();
    snap.obs_rms.var[0] = -1.0;
    let bad = TrainingContext {
        normalization: Some(snap),
        ..TrainingContext::default()
    };
    assert!(with_context(&policy.save_to_bytes().unwrap(), &bad).is_err());
}

#[test]
fn normalized_policy_acts_on_raw_observations_as_on_normalized_ones() {
    let (venv, policy) = pendulum_stats();
    let stats = venv.normalization().unwrap();
    let raw = venv.original_observations().to_vec();
    let frozen = NormalizedPolicy::new(&policy, stats.clone());
    let mut rng = StdRng::seed_from_u64(0);
    let a = frozen.predict(&raw, 3, true, &mut rng).unwrap();
    let b = policy
        .predict(venv.observations(), 3, true, &mut rng)
        .unwrap();
    assert_eq!(
        a.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        b.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    );
    // The snapshot's normalization is VecNormalize's, bit for bit.
    let mut out = vec![0.0f32; raw.len()];
    stats.normalize_obs_into(&raw, &mut out).unwrap();
    assert_eq!(out, venv.observations());
    // Bad input is an error, not garbage.
    assert!(frozen.predict(&raw[..4], 3, true, &mut rng).is_err());
    let mut nan = raw.clone();
    nan[1] = f32::NAN;
    assert!(frozen.predict(&nan, 3, true, &mut rng).is_err());
}

#[test]
fn predict_into_clips_box_actions_and_shifts_discrete_ones_as_sb3_predict() {
    // A wide log-std makes sampled actions leave Pendulum's [-2, 2] often.
    let obs_space = Space::boxed(vec![-1.0; 3], vec![1.0; 3], vec![3]).unwrap();
    let act_space = Space::boxed(vec![-2.0], vec![2.0], vec![1]).unwrap();
    let config = MlpPolicyConfig {
        log_std_init: 3.0,
        ..MlpPolicyConfig::default()
    };
    let policy = MlpPolicy::new(&obs_space, &act_space, config, 0, &Device::Cpu).unwrap();
    let obs = vec![0.1f32; 3 * 64];
    let mut actions = ActionBuffer::new(&act_space, 64);
    let mut rng = StdRng::seed_from_u64(1);
    let raw = policy
        .predict(&obs, 64, false, &mut StdRng::seed_from_u64(1))
        .unwrap();
    let raw = raw.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert!(
        raw.iter().any(|a| a.abs() > 2.0),
        "no sample left the bounds"
    );
    let VecAction::Continuous(got) = policy
        .predict_into(&obs, false, &mut rng, &mut actions)
        .unwrap()
    else {
        panic!("Box actions expected")
    };
    let clipped: Vec<f32> = raw.iter().map(|a| a.clamp(-2.0, 2.0)).collect();
    assert_eq!(got, &clipped[..]);

    let discrete = Space::Discrete { n: 3, start: -1 };
    let policy = MlpPolicy::new(
        &obs_space,
        &discrete,
        MlpPolicyConfig::default(),
        0,
        &Device::Cpu,
    )
    .unwrap();
    let mut actions = ActionBuffer::new(&discrete, 64);
    let idx = policy
        .predict(&obs, 64, true, &mut rng)
        .unwrap()
        .to_vec1::<u32>()
        .unwrap();
    let VecAction::Discrete(got) = policy
        .predict_into(&obs, true, &mut rng, &mut actions)
        .unwrap()
    else {
        panic!("discrete actions expected")
    };
    let shifted: Vec<i64> = idx.iter().map(|&i| i as i64 - 1).collect();
    assert_eq!(got, &shifted[..]);
    // A batch that does not match the buffer is an error.
    assert!(policy
        .predict_into(&obs[..9], true, &mut rng, &mut actions)
        .is_err());
}
