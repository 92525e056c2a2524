//! `make_with(id, EnvSpec { kwargs, .. })` against `gymnasium.make(id, **kwargs)`.
//!
//! The golden file (`header.format` = `"env_kwargs/1"`, recorded by
//! `tools/golden/gen_env_kwargs_golden.py`) holds Gymnasium 1.4 episodes made with keyword
//! arguments; every observation is compared as f32 bits, every reward as f64 bits, and the flags
//! exactly. The other tests pin the errors: unknown keywords, wrong types and values.

use rl_env::{
    make, make_with, Action, AutoresetMode, Env, EnvError, EnvKwargs, EnvSpec, KwargValue, Seed,
    SyncVecEnv, VecAction, VecEnv,
};
use rl_golden::{f32s, f64_of, files, name};
use serde_json::Value;

fn is_kwargs_file(v: &Value) -> bool {
    v["header"]["format"] == "env_kwargs/1"
}

/// The JSON kwargs object as `EnvKwargs`, keeping Python's int/float distinction.
fn kwargs_of(v: &Value) -> EnvKwargs {
    let obj = v.as_object().expect("kwargs object");
    obj.iter()
        .map(|(k, v)| {
            let value = match v {
                Value::Bool(b) => KwargValue::Bool(*b),
                Value::Number(n) if n.is_i64() => KwargValue::Int(n.as_i64().expect("i64")),
                Value::Number(n) => KwargValue::Float(n.as_f64().expect("f64")),
                Value::String(s) => KwargValue::Str(s.clone()),
                other => panic!("kwarg {k}: unsupported value {other}"),
            };
            (k.clone(), value)
        })
        .collect()
}

fn spec_with(kwargs: EnvKwargs) -> EnvSpec {
    EnvSpec {
        kwargs,
        ..EnvSpec::default()
    }
}

fn step(
    env: &mut dyn Env,
    action: &Value,
    obs: &mut [f32],
) -> Result<rl_env::StepOutcome, EnvError> {
    match action {
        Value::Array(_) => env.step_into(Action::Continuous(&f32s(action)), obs),
        v => env.step_into(Action::Discrete(v.as_i64().expect("int action")), obs),
    }
}

#[test]
fn kwargs_trajectories_match_gymnasium_bit_for_bit() {
    let mut kwargs_seen = std::collections::BTreeSet::new();
    for (path, file) in files("classic_control", "env kwargs", is_kwargs_file) {
        let cases = file["cases"].as_array().expect("cases");
        assert!(!cases.is_empty(), "{}: no cases", name(&path));
        for case in cases {
            let env_id = case["env_id"].as_str().expect("env_id");
            let kwargs = kwargs_of(&case["kwargs"]);
            let label = format!("{env_id}({kwargs})");
            for (k, _) in kwargs.iter() {
                kwargs_seen.insert(format!("{env_id} {k}"));
            }
            let mut env = make_with(env_id, &spec_with(kwargs.clone()))
                .unwrap_or_else(|e| panic!("{label}: {e}"));
            let mut obs = vec![0.0f32; env.observation_space().flat_dim()];
            let (mut compared, mut mismatches) = (0usize, Vec::new());
            for ep in case["episodes"].as_array().expect("episodes") {
                let seed = Seed::from(ep["reset_seed"].as_u64().expect("reset_seed"));
                env.reset_into(Some(&seed), &mut obs).expect("reset");
                let want = f32s(&ep["initial_observation"]);
                if bits(&obs) != bits(&want) {
                    mismatches.push(format!("reset({seed:?}) obs {obs:?} != {want:?}"));
                }
                let steps = ep["steps"].as_array().expect("steps");
                assert_eq!(steps.len() as u64, ep["length"].as_u64().expect("length"));
                for (t, s) in steps.iter().enumerate() {
                    compared += 1;
                    let out = match step(&mut *env, &s["action"], &mut obs) {
                        Ok(out) => out,
                        Err(e) => {
                            mismatches.push(format!("step {t}: error {e}"));
                            break;
                        }
                    };
                    let want_obs = f32s(&s["obs"]);
                    let want_reward = f64_of(&s["reward"]);
                    let flags = (s["terminated"].as_bool(), s["truncated"].as_bool());
                    if bits(&obs) != bits(&want_obs)
                        || out.reward.to_bits() != want_reward.to_bits()
                        || (Some(out.terminated), Some(out.truncated)) != flags
                    {
                        mismatches.push(format!(
                            "step {t}: got obs {obs:?} reward {} flags ({}, {}), want {want_obs:?} {want_reward} {flags:?}",
                            out.reward, out.terminated, out.truncated
                        ));
                    }
                }
                // The recorded episode ended: one more step is an error until the next reset.
                let last = steps.last().expect("a step");
                assert!(
                    matches!(
                        step(&mut *env, &last["action"], &mut obs),
                        Err(EnvError::NeedsReset(_))
                    ),
                    "{label}: stepping after the end of the episode"
                );
            }
            for m in mismatches.iter().take(5) {
                eprintln!("  {label}: {m}");
            }
            assert!(
                mismatches.is_empty(),
                "{label}: {} of {compared} steps differ",
                mismatches.len()
            );
            println!("{label}: {compared} steps bit-identical to Gymnasium");
        }
    }
    // Every keyword this port takes is covered by the golden data.
    for want in [
        "CartPole-v1 sutton_barto_reward",
        "Pendulum-v1 g",
        "MountainCar-v0 goal_velocity",
        "MountainCarContinuous-v0 goal_velocity",
        "CartPole-v1 max_episode_steps",
    ] {
        assert!(
            kwargs_seen.contains(want),
            "no golden case for {want}: {kwargs_seen:?}"
        );
    }
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Runs `actions` from `reset(seed)` and returns (rewards, terminated flags).
fn run(
    env: &mut dyn Env,
    seed: u64,
    actions: impl Fn(&[f32]) -> Vec<f32>,
    steps: usize,
) -> Vec<(f64, bool, bool)> {
    let (mut obs, _) = env.reset(Some(seed)).unwrap();
    let mut out = Vec::new();
    for _ in 0..steps {
        let a = actions(&obs);
        let s = match env.action_space().n() {
            Some(_) => env.step(Action::Discrete(a[0] as i64)).unwrap(),
            None => env.step(Action::Continuous(&a)).unwrap(),
        };
        out.push((s.reward, s.terminated, s.truncated));
        obs = s.obs;
        if s.terminated || s.truncated {
            break;
        }
    }
    out
}

#[test]
fn each_kwarg_changes_what_it_should() {
    // CartPole: Sutton & Barto reward is 0 per step and -1 when the pole falls.
    let mut env = make_with(
        "CartPole-v1",
        &spec_with(EnvKwargs::new().with("sutton_barto_reward", true)),
    )
    .unwrap();
    let steps = run(&mut *env, 0, |_| vec![1.0], 500);
    let (last, rest) = steps.split_last().unwrap();
    assert!(last.1 && last.0 == -1.0, "{last:?}");
    assert!(rest.iter().all(|s| s.0 == 0.0));
    let default = run(&mut *make("CartPole-v1").unwrap(), 0, |_| vec![1.0], 500);
    assert_eq!(default.len(), steps.len());
    assert!(default.iter().all(|s| s.0 == 1.0));

    // Pendulum: a stronger g swings the pendulum differently from the same start.
    let torque = |_: &[f32]| vec![0.5];
    let g10 = run(&mut *make("Pendulum-v1").unwrap(), 3, torque, 20);
    let g_int = run(
        &mut *make_with("Pendulum-v1", &spec_with(EnvKwargs::new().with("g", 10))).unwrap(),
        3,
        torque,
        20,
    );
    let g20 = run(
        &mut *make_with("Pendulum-v1", &spec_with(EnvKwargs::new().with("g", 20.0))).unwrap(),
        3,
        torque,
        20,
    );
    assert_eq!(g10, g_int, "g=10 (int) is the default");
    assert_ne!(g10, g20);

    // MountainCar: an unreachable goal velocity turns the termination into a truncation.
    let pump = |obs: &[f32]| vec![if obs[1] >= 0.0 { 2.0 } else { 0.0 }];
    let reach = run(&mut *make("MountainCar-v0").unwrap(), 0, pump, 200);
    assert!(reach.last().unwrap().1, "the pumping car reaches the goal");
    let never = run(
        &mut *make_with(
            "MountainCar-v0",
            &spec_with(EnvKwargs::new().with("goal_velocity", 0.5)),
        )
        .unwrap(),
        0,
        pump,
        200,
    );
    assert_eq!(never.len(), 200);
    assert_eq!(*never.last().unwrap(), (-1.0, false, true));

    let pump_c = |obs: &[f32]| vec![if obs[1] >= 0.0 { 1.0 } else { -1.0 }];
    let reach = run(
        &mut *make("MountainCarContinuous-v0").unwrap(),
        0,
        pump_c,
        999,
    );
    assert!(reach.last().unwrap().1);
    let spec = spec_with(
        EnvKwargs::new()
            .with("goal_velocity", 0.5)
            .with("max_episode_steps", 300),
    );
    let never = run(
        &mut *make_with("MountainCarContinuous-v0", &spec).unwrap(),
        0,
        pump_c,
        999,
    );
    assert_eq!(never.len(), 300);
    assert!(!never.last().unwrap().1 && never.last().unwrap().2);

    // max_episode_steps as a keyword is the time limit.
    let spec = spec_with(EnvKwargs::new().with("max_episode_steps", 7));
    let short = run(
        &mut *make_with("Acrobot-v1", &spec).unwrap(),
        0,
        |_| vec![0.0],
        100,
    );
    assert_eq!(short.len(), 7);
    assert!(short.last().unwrap().2);
}

fn make_err(id: &str, kwargs: EnvKwargs) -> EnvError {
    match make_with(id, &spec_with(kwargs)) {
        Ok(_) => panic!("{id} should refuse these kwargs"),
        Err(e) => e,
    }
}

#[test]
fn unknown_kwargs_are_errors_naming_the_kwarg_and_the_env() {
    let err = make_err("CartPole-v1", EnvKwargs::new().with("sutton_barto", true));
    assert_eq!(
        err,
        EnvError::UnknownKwarg {
            env: "CartPole-v1".into(),
            kwarg: "sutton_barto".into(),
            accepted: "sutton_barto_reward, max_episode_steps".into(),
        }
    );
    assert_eq!(
        err.to_string(),
        "CartPole-v1 got an unexpected keyword argument \"sutton_barto\"; it takes: sutton_barto_reward, max_episode_steps"
    );
    let err = make_err("Acrobot-v1", EnvKwargs::new().with("g", 9.8));
    assert!(
        matches!(&err, EnvError::UnknownKwarg { kwarg, accepted, .. } if kwarg == "g" && accepted == "max_episode_steps"),
        "{err}"
    );
    // Pendulum's g is not MountainCar's, and render_mode is not supported here.
    assert!(matches!(
        make_err("MountainCar-v0", EnvKwargs::new().with("g", 9.8)),
        EnvError::UnknownKwarg { .. }
    ));
    let err = make_err(
        "Pendulum-v1",
        EnvKwargs::new()
            .with("g", 9.8)
            .with("render_mode", "rgb_array"),
    );
    assert!(
        err.to_string().contains("\"render_mode\"")
            && err.to_string().contains("it takes: g, max_episode_steps"),
        "{err}"
    );
    // Vector envs report the same error.
    let spec = spec_with(EnvKwargs::new().with("goal_velocty", 0.1));
    let err = match SyncVecEnv::make_with(
        "MountainCarContinuous-v0",
        &spec,
        2,
        AutoresetMode::SameStep,
    ) {
        Ok(_) => panic!("typo accepted"),
        Err(e) => e,
    };
    assert!(err.to_string().contains("goal_velocty"), "{err}");
}

#[test]
fn wrong_types_and_values_are_errors_naming_them() {
    let cases: Vec<(&str, EnvKwargs, &str)> = vec![
        ("Pendulum-v1", EnvKwargs::new().with("g", "x"), "Pendulum-v1: invalid keyword argument g = \"x\": expected a float, got str"),
        ("Pendulum-v1", EnvKwargs::new().with("g", f64::NAN), "Pendulum-v1: invalid keyword argument g = nan: expected a finite number"),
        ("Pendulum-v1", EnvKwargs::new().with("g", f64::INFINITY), "Pendulum-v1: invalid keyword argument g = inf: expected a finite number"),
        ("Pendulum-v1", EnvKwargs::new().with("g", true), "Pendulum-v1: invalid keyword argument g = True: expected a float, got bool"),
        ("CartPole-v1", EnvKwargs::new().with("sutton_barto_reward", 1), "CartPole-v1: invalid keyword argument sutton_barto_reward = 1: expected a bool, got int"),
        ("MountainCar-v0", EnvKwargs::new().with("goal_velocity", f64::NEG_INFINITY), "MountainCar-v0: invalid keyword argument goal_velocity = -inf: expected a finite number"),
        ("MountainCarContinuous-v0", EnvKwargs::new().with("goal_velocity", "fast"), "MountainCarContinuous-v0: invalid keyword argument goal_velocity = \"fast\": expected a float, got str"),
        ("CartPole-v1", EnvKwargs::new().with("max_episode_steps", 0), "CartPole-v1: invalid keyword argument max_episode_steps = 0: expected a positive number of steps"),
        ("CartPole-v1", EnvKwargs::new().with("max_episode_steps", -5), "CartPole-v1: invalid keyword argument max_episode_steps = -5: expected a positive number of steps"),
        ("CartPole-v1", EnvKwargs::new().with("max_episode_steps", 2.5), "CartPole-v1: invalid keyword argument max_episode_steps = 2.5: expected an int, got float"),
    ];
    for (id, kwargs, want) in cases {
        let err = make_err(id, kwargs.clone());
        assert!(
            matches!(err, EnvError::InvalidKwarg { .. }),
            "{id}({kwargs}): {err:?}"
        );
        assert_eq!(err.to_string(), want, "{id}({kwargs})");
    }
    // The time limit given twice is ambiguous.
    let both = EnvSpec {
        max_episode_steps: Some(10),
        kwargs: EnvKwargs::new().with("max_episode_steps", 10),
        ..EnvSpec::default()
    };
    assert!(
        matches!(make_with("CartPole-v1", &both), Err(EnvError::InvalidArgument(m)) if m.contains("both"))
    );
}

#[test]
fn vector_envs_pass_kwargs_to_every_sub_env() {
    let spec = spec_with(EnvKwargs::new().with("g", 3.0).with("max_episode_steps", 5));
    let mut vec_env =
        SyncVecEnv::make_with("Pendulum-v1", &spec, 2, AutoresetMode::SameStep).unwrap();
    let mut single = make_with("Pendulum-v1", &spec).unwrap();
    vec_env.reset(Some(7)).unwrap();
    let (mut obs, _) = single.reset(Some(8)).unwrap();
    for t in 1..=5 {
        vec_env.step(VecAction::Continuous(&[0.3, -0.7])).unwrap();
        let s = single.step(Action::Continuous(&[-0.7])).unwrap();
        // SameStep autoreset: on the truncating step the vector holds the next reset's obs.
        let seen = if t < 5 {
            vec_env.observations()[3..6].to_vec()
        } else {
            vec_env
                .buffers()
                .final_observation(1)
                .expect("final obs")
                .to_vec()
        };
        assert_eq!(bits(&seen), bits(&s.obs), "step {t}");
        assert_eq!(vec_env.rewards()[1].to_bits(), s.reward.to_bits());
        assert_eq!(vec_env.truncated()[1], t == 5);
        obs = s.obs;
    }
    assert_eq!(obs.len(), 3);
}
