//! Parity of `VecNormalize` with SB3 2.9.2's `VecNormalize` over `DummyVecEnv`, on the recorded
//! `vec_normalize/` traces: normalized and original observations and rewards, dones, normalized
//! terminal observations and every running statistic after every step, bit for bit, over both
//! vector engines. Also the snapshot encoding and the error paths.

use rl_env::{
    Action, AutoresetMode, Env, EnvError, EnvSpec, Info, RunningStats, Seed, Space, StepOutcome,
    SyncVecEnv, ThreadVecEnv, VecAction, VecEnv, VecNormalize, VecNormalizeConfig,
    VecNormalizeSnapshot,
};
use rl_golden::{f32s_flat, f64_of, f64s, name};
use serde_json::Value;

const ENGINES: [&str; 2] = ["SyncVecEnv", "ThreadVecEnv(2 workers)"];

fn is_trace(v: &Value) -> bool {
    v["header"]["format"] == "vec_normalize_trace/1"
}

fn config(c: &Value) -> VecNormalizeConfig {
    let b = |k: &str| {
        c[k].as_bool()
            .unwrap_or_else(|| panic!("config.{k} is not a bool"))
    };
    VecNormalizeConfig {
        training: b("training"),
        norm_obs: b("norm_obs"),
        norm_reward: b("norm_reward"),
        clip_obs: f64_of(&c["clip_obs"]),
        clip_reward: f64_of(&c["clip_reward"]),
        gamma: f64_of(&c["gamma"]),
        epsilon: f64_of(&c["epsilon"]),
    }
}

fn build(engine: &str, h: &Value) -> VecNormalize<Box<dyn VecEnv>> {
    let id = h["env_id"].as_str().expect("header.env_id");
    let n = h["n_envs"].as_u64().expect("header.n_envs") as usize;
    let spec = EnvSpec {
        max_episode_steps: Some(h["max_episode_steps"].as_u64().expect("max_episode_steps")),
        ..EnvSpec::default()
    };
    let mode = AutoresetMode::SameStep;
    let venv: Box<dyn VecEnv> = if engine == ENGINES[0] {
        Box::new(SyncVecEnv::make_with(id, &spec, n, mode).unwrap())
    } else {
        Box::new(ThreadVecEnv::make_with(id, &spec, n, 2, mode).unwrap())
    };
    VecNormalize::new(venv, config(&h["config"])).unwrap()
}

fn bits32(a: &[f32]) -> Vec<u32> {
    a.iter().map(|x| x.to_bits()).collect()
}

fn bits64(a: &[f64]) -> Vec<u64> {
    a.iter().map(|x| x.to_bits()).collect()
}

/// Compares the observations and statistics after a reset or step; pushes mismatch notes.
fn compare_state(vn: &VecNormalize<Box<dyn VecEnv>>, rec: &Value, bad: &mut Vec<String>) {
    if bits32(vn.observations()) != bits32(&f32s_flat(&rec["obs"])) {
        bad.push(format!("obs {:?} vs {}", vn.observations(), rec["obs"]));
    }
    if bits32(vn.original_observations()) != bits32(&f32s_flat(&rec["orig_obs"])) {
        bad.push("orig_obs differs".into());
    }
    if rec.get("obs_mean").is_some() {
        let o = vn.obs_rms();
        if bits64(&o.mean) != bits64(&f64s(&rec["obs_mean"])) {
            bad.push(format!("obs_mean {:?} vs {}", o.mean, rec["obs_mean"]));
        }
        if bits64(&o.var) != bits64(&f64s(&rec["obs_var"])) {
            bad.push(format!("obs_var {:?} vs {}", o.var, rec["obs_var"]));
        }
        if o.count.to_bits() != f64_of(&rec["obs_count"]).to_bits() {
            bad.push(format!("obs_count {} vs {}", o.count, rec["obs_count"]));
        }
    }
    let r = vn.ret_rms();
    let theirs = [&rec["ret_mean"], &rec["ret_var"], &rec["ret_count"]].map(f64_of);
    if bits64(&[r.mean[0], r.var[0], r.count]) != bits64(&theirs) {
        bad.push(format!(
            "ret_rms {:?} vs {theirs:?}",
            [r.mean[0], r.var[0], r.count]
        ));
    }
    if bits64(vn.returns()) != bits64(&f64s(&rec["returns"])) {
        bad.push(format!("returns {:?} vs {}", vn.returns(), rec["returns"]));
    }
}

/// Replays one trace; returns (steps compared, mismatching steps, first notes).
fn replay(engine: &str, trace: &Value) -> (usize, usize, Vec<String>) {
    let h = &trace["header"];
    let mut vn = build(engine, h);
    let n = vn.num_envs();
    let d = vn.buffers().obs_dim();
    vn.reset(Some(h["seed"].as_u64().expect("header.seed")))
        .unwrap();
    let mut notes = Vec::new();
    let mut mismatches = 0;
    let mut bad = Vec::new();
    compare_state(&vn, &trace["initial"], &mut bad);
    if !bad.is_empty() {
        mismatches += 1;
        notes.push(format!("initial: {}", bad.join("; ")));
    }
    let steps = trace["steps"].as_array().expect("steps");
    assert_eq!(h["n_steps"].as_u64(), Some(steps.len() as u64), "n_steps");
    let discrete = h["action_kind"] == "discrete";
    for step in steps {
        let t = &step["t"];
        vn.set_training(step["training"].as_bool().expect("training"));
        if discrete {
            let a: Vec<i64> = step["action"]
                .as_array()
                .expect("action")
                .iter()
                .map(|x| x.as_i64().expect("discrete action"))
                .collect();
            vn.step(VecAction::Discrete(&a))
        } else {
            vn.step(VecAction::Continuous(&f32s_flat(&step["action"])))
        }
        .unwrap_or_else(|e| panic!("step {t}: {e}"));
        let mut bad = Vec::new();
        compare_state(&vn, step, &mut bad);
        let b = vn.buffers();
        let ours: Vec<u32> = b.rewards().iter().map(|r| (*r as f32).to_bits()).collect();
        let theirs: Vec<u32> = f32s_flat(&step["reward"])
            .iter()
            .map(|r| r.to_bits())
            .collect();
        if ours != theirs || b.rewards().iter().any(|r| *r as f32 as f64 != *r) {
            bad.push(format!("reward {:?} vs {}", b.rewards(), step["reward"]));
        }
        if bits64(vn.original_rewards()) != bits64(&f64s(&step["orig_reward"])) {
            bad.push(format!(
                "orig_reward {:?} vs {}",
                vn.original_rewards(),
                step["orig_reward"]
            ));
        }
        for i in 0..n {
            if step["done"][i].as_bool() != Some(b.done(i)) {
                bad.push(format!("env {i} done {} vs {}", b.done(i), step["done"][i]));
            }
            let theirs = &step["terminal_obs"][i];
            match (b.final_observation(i), theirs.is_null()) {
                (None, true) => {}
                (Some(o), false) if bits32(o) == bits32(&f32s_flat(theirs)) => {
                    assert_eq!(o.len(), d);
                }
                (o, _) => bad.push(format!("env {i} terminal obs {o:?} vs {theirs}")),
            }
        }
        if !bad.is_empty() {
            mismatches += 1;
            if notes.len() < 5 {
                notes.push(format!("t={t}: {}", bad.join("; ")));
            }
        }
    }
    (steps.len(), mismatches, notes)
}

#[test]
fn vec_normalize_replays_every_sb3_trace_bit_exactly() {
    let traces = rl_golden::files("vec_normalize", "VecNormalize trace", is_trace);
    let mut failures = Vec::new();
    let mut dones = 0;
    for (path, trace) in &traces {
        let file = name(path);
        for engine in ENGINES {
            let (steps, mismatches, notes) = replay(engine, trace);
            let n_envs = &trace["header"]["n_envs"];
            println!("{file} {engine}: {steps} steps x {n_envs} envs compared, {mismatches} mismatching steps");
            if mismatches > 0 {
                failures.push(format!(
                    "{file} {engine}: {mismatches} mismatches: {notes:#?}"
                ));
            }
        }
        dones += trace["steps"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["done"].as_array().unwrap().iter())
            .filter(|x| x.as_bool() == Some(true))
            .count();
    }
    assert!(
        dones > 0,
        "the traces end no episode: terminal observations untested"
    );
    assert!(failures.is_empty(), "{failures:#?}");
}

fn cartpole(n: usize) -> VecNormalize<SyncVecEnv> {
    VecNormalize::new(
        SyncVecEnv::make("CartPole-v1", n, AutoresetMode::SameStep).unwrap(),
        VecNormalizeConfig::default(),
    )
    .unwrap()
}

#[test]
fn snapshot_round_trips_and_restores_bit_exactly() {
    let mut a = cartpole(3);
    a.reset(Some(4)).unwrap();
    for t in 0..40 {
        a.step(VecAction::Discrete(&[t % 2, 1 - t % 2, 1])).unwrap();
    }
    let snap = a.snapshot();
    let bytes = snap.to_bytes();
    let back = VecNormalizeSnapshot::from_bytes(&bytes).unwrap();
    assert_eq!(back, snap);
    assert_eq!(back.to_bytes(), bytes);

    // A restored copy continues exactly like the original, frozen, on the same observations.
    let mut b = cartpole(3);
    b.restore(&back).unwrap();
    a.set_training(false);
    b.set_training(false);
    a.reset(Some(9)).unwrap();
    b.reset(Some(9)).unwrap();
    assert_eq!(bits32(a.observations()), bits32(b.observations()));
    assert_eq!(a.obs_rms(), b.obs_rms());
    assert_eq!(
        a.obs_rms(),
        &snap.obs_rms,
        "frozen statistics moved on reset"
    );
    a.step(VecAction::Discrete(&[0, 0, 0])).unwrap();
    b.step(VecAction::Discrete(&[0, 0, 0])).unwrap();
    assert_eq!(bits64(a.rewards()), bits64(b.rewards()));
    assert_eq!(
        a.ret_rms(),
        &snap.ret_rms,
        "frozen statistics moved on step"
    );

    // Wrong observation length.
    let mut p = VecNormalize::new(
        SyncVecEnv::make("Pendulum-v1", 1, AutoresetMode::SameStep).unwrap(),
        VecNormalizeConfig::default(),
    )
    .unwrap();
    assert!(matches!(
        p.restore(&snap),
        Err(EnvError::ObservationBuffer {
            expected: 3,
            actual: 4
        })
    ));
}

#[test]
fn hostile_snapshots_are_typed_errors() {
    let snap = cartpole(2).snapshot();
    let good = snap.to_bytes();
    let is_err = |b: &[u8]| VecNormalizeSnapshot::from_bytes(b).is_err();
    assert!(is_err(&[]));
    assert!(is_err(&good[..good.len() - 1]));
    let mut longer = good.clone();
    longer.push(0);
    assert!(is_err(&longer));
    for (offset, what) in [(0, "magic"), (4, "version"), (8, "flags")] {
        let mut b = good.clone();
        b[offset] ^= 0x80;
        assert!(is_err(&b), "corrupted {what} accepted");
    }
    // obs_dim claiming u32::MAX components: rejected by the length check before allocating.
    let mut huge = good.clone();
    huge[41..45].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(is_err(&huge));
    type Corrupt = fn(&mut VecNormalizeSnapshot);
    let bad_values: [(&str, Corrupt); 7] = [
        ("NaN mean", |s| s.obs_rms.mean[1] = f64::NAN),
        ("negative var", |s| s.obs_rms.var[0] = -1.0),
        ("zero count", |s| s.obs_rms.count = 0.0),
        ("infinite ret var", |s| s.ret_rms.var[0] = f64::INFINITY),
        ("negative ret count", |s| s.ret_rms.count = -2.0),
        ("gamma 2", |s| s.config.gamma = 2.0),
        ("NaN clip", |s| s.config.clip_obs = f64::NAN),
    ];
    for (what, corrupt) in bad_values {
        let mut s = snap.clone();
        corrupt(&mut s);
        assert!(is_err(&s.to_bytes()), "{what} accepted by from_bytes");
        assert!(s.validate().is_err(), "{what} accepted by validate");
        assert!(
            cartpole(2).restore(&s).is_err(),
            "{what} accepted by restore"
        );
    }
    let mut s = snap.clone();
    s.ret_rms = RunningStats::new(2);
    assert!(s.validate().is_err());
}

#[test]
fn bad_configs_and_spaces_and_inputs_are_typed_errors() {
    for cfg in [
        VecNormalizeConfig {
            clip_obs: 0.0,
            ..Default::default()
        },
        VecNormalizeConfig {
            clip_reward: f64::INFINITY,
            ..Default::default()
        },
        VecNormalizeConfig {
            gamma: -0.1,
            ..Default::default()
        },
        VecNormalizeConfig {
            epsilon: f64::NAN,
            ..Default::default()
        },
    ] {
        let r = VecNormalize::new(
            SyncVecEnv::make("CartPole-v1", 1, AutoresetMode::SameStep).unwrap(),
            cfg,
        );
        assert!(matches!(r, Err(EnvError::InvalidArgument(_))), "{cfg:?}");
    }
    let vn = cartpole(2);
    let mut out = [0.0f32; 8];
    let nan = [0.0, 0.0, 0.0, 0.0, 0.0, f32::NAN, 0.0, 0.0];
    assert!(matches!(
        vn.normalize_obs_into(&nan, &mut out),
        Err(EnvError::NonFinite {
            env: 1,
            component: Some(1),
            ..
        })
    ));
    assert!(vn.normalize_obs_into(&[0.0; 7], &mut [0.0; 7]).is_err());
    assert!(vn.normalize_obs_into(&[0.0; 8], &mut [0.0; 4]).is_err());
    // Before any update the statistics are SB3's initial ones: obs / sqrt(1 + eps), clipped.
    let obs = [1.0f32, -20.0, 0.5, 0.0, 3.0, 30.0, -0.25, 2.0];
    vn.normalize_obs_into(&obs, &mut out).unwrap();
    let s = (1.0f64 + 1e-8).sqrt();
    let expected: Vec<f32> = obs
        .iter()
        .map(|o| (*o as f64 / s).clamp(-10.0, 10.0) as f32)
        .collect();
    assert_eq!(bits32(&out), bits32(&expected));
}

/// Observation `[value, 0]` and reward `reward` on every reset and step; never ends.
struct Fixed {
    value: f32,
    reward: f64,
    obs_space: Space,
    act_space: Space,
}

impl Fixed {
    fn new(value: f32, reward: f64) -> Self {
        Fixed {
            value,
            reward,
            obs_space: Space::boxed(vec![f32::MIN; 2], vec![f32::MAX; 2], vec![2]).unwrap(),
            act_space: Space::discrete(2),
        }
    }
}

impl Env for Fixed {
    fn observation_space(&self) -> &Space {
        &self.obs_space
    }
    fn action_space(&self) -> &Space {
        &self.act_space
    }
    fn reset_into(&mut self, _seed: Option<&Seed>, obs: &mut [f32]) -> rl_env::Result<Info> {
        obs.copy_from_slice(&[self.value, 0.0]);
        Ok(Info::default())
    }
    fn step_into(&mut self, _action: Action<'_>, obs: &mut [f32]) -> rl_env::Result<StepOutcome> {
        obs.copy_from_slice(&[self.value, 0.0]);
        Ok(StepOutcome {
            reward: self.reward,
            ..StepOutcome::default()
        })
    }
}

fn fixed(envs: Vec<Fixed>) -> VecNormalize<SyncVecEnv<Fixed>> {
    let v = SyncVecEnv::new(envs, AutoresetMode::SameStep).unwrap();
    VecNormalize::new(v, VecNormalizeConfig::default()).unwrap()
}

#[test]
fn overflowing_inputs_are_typed_errors_and_leave_the_statistics_alone() {
    // Finite float32 observations whose batch variance overflows float32.
    let mut vn = fixed(vec![Fixed::new(3e38, 1.0), Fixed::new(-3e38, 1.0)]);
    let before = vn.obs_rms().clone();
    assert!(matches!(
        vn.reset(Some(0)),
        Err(EnvError::InvalidArgument(_))
    ));
    assert_eq!(vn.obs_rms(), &before);

    // A finite f64 reward that is infinite as SB3's float32.
    let mut vn = fixed(vec![Fixed::new(1.0, 1.0), Fixed::new(1.0, 1e300)]);
    vn.reset(Some(0)).unwrap();
    let ret_before = vn.ret_rms().clone();
    let err = vn.step(VecAction::Discrete(&[0, 0])).unwrap_err();
    assert!(
        matches!(
            err,
            EnvError::NonFinite {
                env: 1,
                what: "reward",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(vn.ret_rms(), &ret_before);

    // Discrete observation spaces are refused.
    struct DiscreteObs(Fixed);
    impl Env for DiscreteObs {
        fn observation_space(&self) -> &Space {
            &self.0.act_space
        }
        fn action_space(&self) -> &Space {
            &self.0.act_space
        }
        fn reset_into(&mut self, _: Option<&Seed>, obs: &mut [f32]) -> rl_env::Result<Info> {
            obs[0] = 0.0;
            Ok(Info::default())
        }
        fn step_into(&mut self, _: Action<'_>, obs: &mut [f32]) -> rl_env::Result<StepOutcome> {
            obs[0] = 0.0;
            Ok(StepOutcome::default())
        }
    }
    let v = SyncVecEnv::new(
        vec![DiscreteObs(Fixed::new(0.0, 0.0))],
        AutoresetMode::SameStep,
    )
    .unwrap();
    assert!(matches!(
        VecNormalize::new(v, VecNormalizeConfig::default()),
        Err(EnvError::InvalidArgument(_))
    ));
}
