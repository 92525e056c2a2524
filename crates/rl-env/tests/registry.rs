//! `register`: environments of one's own, made by id like the built-in ones.
//!
//! The registry is process-wide and tests run in parallel threads, so every test registers ids
//! of its own (and this file is its own test binary: the other test files see only the
//! built-in ids).

use rl_env::seeding::{NpRandom, Seed};
use rl_env::{
    check_obs_buffer, make, make_with, register, registered_ids, registry, Action, AutoresetMode,
    Env, EnvError, EnvKwargs, EnvRegistration, EnvSpec, Info, KwargReader, Space, StepOutcome,
    SyncVecEnv, ThreadVecEnv, VecAction, VecEnv,
};

/// Walk from a random cell of `0..length` to the right end: action 1 moves right, 0 left;
/// reward `-step_cost` per step, `+1` on arrival. Observation `[position]`.
struct Corridor {
    length: u32,
    step_cost: f64,
    position: u32,
    rng: Option<NpRandom>,
    needs_reset: bool,
    obs_space: Space,
    act_space: Space,
}

impl Corridor {
    fn new(length: u32, step_cost: f64) -> Self {
        Corridor {
            length,
            step_cost,
            position: 0,
            rng: None,
            needs_reset: true,
            obs_space: Space::boxed(vec![0.0], vec![length as f32], vec![1]).unwrap(),
            act_space: Space::discrete(2),
        }
    }

    /// The constructor registered below: keywords `length` (int >= 2) and `step_cost` (float).
    fn from_kwargs(kwargs: &mut KwargReader<'_>) -> rl_env::Result<Box<dyn Env>> {
        let length = match kwargs.get_int("length")? {
            None => 5,
            Some(n) if (2..=1000).contains(&n) => n as u32,
            Some(n) => {
                return Err(kwargs.invalid("length", &n.into(), "expected 2 to 1000 cells"));
            }
        };
        let step_cost = kwargs.get_float("step_cost")?.unwrap_or(0.1);
        Ok(Box::new(Corridor::new(length, step_cost)))
    }
}

impl Env for Corridor {
    fn observation_space(&self) -> &Space {
        &self.obs_space
    }
    fn action_space(&self) -> &Space {
        &self.act_space
    }
    fn reset_into(&mut self, seed: Option<&Seed>, obs: &mut [f32]) -> rl_env::Result<Info> {
        check_obs_buffer(&self.obs_space, obs)?;
        if let Some(seed) = seed {
            self.rng = Some(NpRandom::from_seed(seed));
        }
        let rng = self.rng.get_or_insert_with(NpRandom::from_os_entropy);
        self.position = (rng.random() * f64::from(self.length - 1)) as u32;
        self.needs_reset = false;
        obs[0] = self.position as f32;
        Ok(Info::default())
    }
    fn step_into(&mut self, action: Action<'_>, obs: &mut [f32]) -> rl_env::Result<StepOutcome> {
        check_obs_buffer(&self.obs_space, obs)?;
        self.act_space.check_action(action)?;
        if self.needs_reset {
            return Err(EnvError::NeedsReset("Corridor episode over"));
        }
        if action == Action::Discrete(1) {
            self.position += 1;
        } else {
            self.position = self.position.saturating_sub(1);
        }
        let terminated = self.position >= self.length;
        self.needs_reset = terminated;
        obs[0] = self.position as f32;
        Ok(StepOutcome {
            reward: if terminated { 1.0 } else { -self.step_cost },
            terminated,
            ..StepOutcome::default()
        })
    }
    fn id(&self) -> &str {
        "Corridor"
    }
}

fn corridor(max_steps: Option<u64>) -> EnvRegistration {
    let r = EnvRegistration::new(Corridor::from_kwargs).with_reward_threshold(0.5);
    match max_steps {
        Some(n) => r.with_max_episode_steps(n),
        None => r,
    }
}

/// Steps right until the episode ends; returns (steps, last outcome flags, return).
fn walk_right(env: &mut dyn Env, seed: u64) -> (u64, bool, bool, f64) {
    env.reset(Some(seed)).unwrap();
    let (mut n, mut ret) = (0, 0.0);
    loop {
        let s = env.step(Action::Discrete(1)).unwrap();
        n += 1;
        ret += s.reward;
        if s.terminated || s.truncated {
            return (n, s.terminated, s.truncated, ret);
        }
    }
}

#[test]
fn a_registered_env_is_made_by_id_with_its_time_limit_and_threshold() {
    register("test/Corridor-v0", corridor(Some(3))).unwrap();
    assert!(registered_ids().contains(&"test/Corridor-v0"));
    assert_eq!(
        registry::max_episode_steps("test/Corridor-v0").unwrap(),
        Some(3)
    );
    assert_eq!(
        registry::reward_threshold("test/Corridor-v0").unwrap(),
        Some(0.5)
    );

    // Default length 5 from a random start: at most 3 steps before the TimeLimit.
    let mut env = make("test/Corridor-v0").unwrap();
    assert_eq!(env.observation_space().as_box().unwrap().high(), [5.0]);
    for seed in 0..20 {
        let (n, terminated, truncated, _) = walk_right(&mut *env, seed);
        assert!(n <= 3);
        assert!(
            terminated || (truncated && n == 3),
            "seed {seed}: {n} steps"
        );
    }
    // Seeded resets are reproducible through make.
    let a = make("test/Corridor-v0").unwrap().reset(Some(9)).unwrap().0;
    let b = make("test/Corridor-v0").unwrap().reset(Some(9)).unwrap().0;
    assert_eq!(a, b);

    // Without a registered time limit there is no TimeLimit; EnvSpec can add one.
    register("test/CorridorNoLimit-v0", corridor(None)).unwrap();
    assert_eq!(
        registry::max_episode_steps("test/CorridorNoLimit-v0").unwrap(),
        None
    );
    let mut env = make("test/CorridorNoLimit-v0").unwrap();
    let (n, terminated, _, _) = walk_right(&mut *env, 1);
    assert!(terminated && n >= 1);
    let spec = EnvSpec {
        max_episode_steps: Some(1),
        kwargs: EnvKwargs::new().with("length", 50),
        ..EnvSpec::default()
    };
    let mut env = make_with("test/CorridorNoLimit-v0", &spec).unwrap();
    assert_eq!(walk_right(&mut *env, 0).0, 1);
}

#[test]
fn kwargs_reach_the_constructor_over_the_registered_defaults() {
    let defaults = EnvKwargs::new().with("length", 4).with("step_cost", 0.5);
    register(
        "test/CorridorKw-v0",
        corridor(Some(1000)).with_kwargs(defaults),
    )
    .unwrap();
    let env = make("test/CorridorKw-v0").unwrap();
    assert_eq!(env.observation_space().as_box().unwrap().high(), [4.0]);
    // Given kwargs override the defaults; the others stay.
    let spec = EnvSpec {
        kwargs: EnvKwargs::new().with("length", 9),
        ..EnvSpec::default()
    };
    let mut env = make_with("test/CorridorKw-v0", &spec).unwrap();
    assert_eq!(env.observation_space().as_box().unwrap().high(), [9.0]);
    let (n, terminated, _, ret) = walk_right(&mut *env, 0);
    assert!(terminated);
    assert_eq!(ret, 1.0 - 0.5 * (n - 1) as f64);

    // An unknown keyword names the env, the keyword and what the constructor reads.
    let spec = EnvSpec {
        kwargs: EnvKwargs::new().with("lenght", 9),
        ..EnvSpec::default()
    };
    let err = make_with("test/CorridorKw-v0", &spec).err().unwrap();
    assert_eq!(
        err.to_string(),
        "test/CorridorKw-v0 got an unexpected keyword argument \"lenght\"; it takes: length, step_cost, max_episode_steps"
    );
    // The constructor's own validation, and the getters' type checks.
    for (kwargs, want) in [
        (EnvKwargs::new().with("length", 1), "test/CorridorKw-v0: invalid keyword argument length = 1: expected 2 to 1000 cells"),
        (EnvKwargs::new().with("step_cost", "high"), "test/CorridorKw-v0: invalid keyword argument step_cost = \"high\": expected a float, got str"),
    ] {
        let spec = EnvSpec { kwargs, ..EnvSpec::default() };
        assert_eq!(make_with("test/CorridorKw-v0", &spec).err().unwrap().to_string(), want);
    }
    // max_episode_steps as a keyword is the time limit, never the constructor's.
    let spec = EnvSpec {
        kwargs: EnvKwargs::new()
            .with("max_episode_steps", 2)
            .with("length", 100),
        ..EnvSpec::default()
    };
    assert_eq!(
        walk_right(&mut *make_with("test/CorridorKw-v0", &spec).unwrap(), 0).0,
        2
    );
}

#[test]
fn vector_envs_make_registered_envs_in_both_engines() {
    register("test/CorridorVec-v0", corridor(Some(4))).unwrap();
    let spec = EnvSpec {
        kwargs: EnvKwargs::new().with("length", 3),
        ..EnvSpec::default()
    };
    let mut sync = SyncVecEnv::make("test/CorridorVec-v0", 3, AutoresetMode::SameStep).unwrap();
    let mut sync_kw =
        SyncVecEnv::make_with("test/CorridorVec-v0", &spec, 3, AutoresetMode::SameStep).unwrap();
    let mut threads =
        ThreadVecEnv::make_with("test/CorridorVec-v0", &spec, 3, 2, AutoresetMode::SameStep)
            .unwrap();
    assert_eq!(sync.observation_space().as_box().unwrap().high(), [5.0]);
    assert_eq!(sync_kw.observation_space().as_box().unwrap().high(), [3.0]);
    sync.reset(Some(0)).unwrap();
    sync_kw.reset(Some(0)).unwrap();
    threads.reset(Some(0)).unwrap();
    assert_eq!(sync_kw.observations(), threads.observations());
    let (mut ends_kw, mut ends_default) = (0, 0);
    for _ in 0..10 {
        sync.step(VecAction::Discrete(&[1, 0, 1])).unwrap();
        sync_kw.step(VecAction::Discrete(&[1, 1, 0])).unwrap();
        threads.step(VecAction::Discrete(&[1, 1, 0])).unwrap();
        assert_eq!(sync_kw.observations(), threads.observations());
        assert_eq!(sync_kw.rewards(), threads.rewards());
        assert_eq!(sync_kw.terminated(), threads.terminated());
        assert_eq!(sync_kw.truncated(), threads.truncated());
        ends_kw += usize::from(sync_kw.terminated()[1]);
        ends_default += usize::from(sync.terminated()[0] || sync.truncated()[0]);
    }
    // Walking right on a 3-cell corridor ends within 3 steps, so at least 3 times in 10; the
    // 5-cell default with its 4-step limit at least twice.
    assert!(ends_kw >= 3, "{ends_kw}");
    assert!(ends_default >= 2, "{ends_default}");
}

#[test]
fn registering_an_existing_id_is_an_error() {
    for builtin in ["CartPole-v1", "Pendulum-v1"] {
        assert_eq!(
            register(builtin, corridor(None)),
            Err(EnvError::AlreadyRegistered { id: builtin.into() })
        );
        // The built-in is untouched.
        assert_eq!(make(builtin).unwrap().id(), builtin);
    }
    register("test/Twice-v0", corridor(Some(7))).unwrap();
    let err = register("test/Twice-v0", corridor(Some(8))).unwrap_err();
    assert_eq!(
        err.to_string(),
        "environment id \"test/Twice-v0\" is already registered"
    );
    assert_eq!(
        registry::max_episode_steps("test/Twice-v0").unwrap(),
        Some(7)
    );
    assert_eq!(
        registered_ids()
            .iter()
            .filter(|id| **id == "test/Twice-v0")
            .count(),
        1
    );
}

#[test]
fn bad_registrations_are_errors() {
    for id in ["", "has space", "tab\t", "é-v0", &"x".repeat(201)] {
        assert!(
            matches!(
                register(id, corridor(None)),
                Err(EnvError::InvalidArgument(_))
            ),
            "{id:?}"
        );
    }
    assert!(matches!(
        register("test/ZeroLimit-v0", corridor(Some(0))),
        Err(EnvError::InvalidArgument(m)) if m.contains("max_episode_steps")
    ));
    assert!(!registered_ids().contains(&"test/ZeroLimit-v0"));
    assert!(matches!(
        make("test/NeverRegistered-v0"),
        Err(EnvError::UnknownEnv { id, known }) if id == "test/NeverRegistered-v0" && known.contains("CartPole-v1")
    ));
    // A constructor's error comes out of make unchanged.
    register(
        "test/Failing-v0",
        EnvRegistration::new(|_| Err(EnvError::Other("no license for this simulator".into()))),
    )
    .unwrap();
    assert_eq!(
        make("test/Failing-v0").err().unwrap(),
        EnvError::Other("no license for this simulator".into())
    );
}

#[test]
fn registration_is_thread_safe_and_constructors_may_make_other_envs() {
    // A constructor that builds on another registered id (no lock is held while it runs).
    register(
        "test/LongCartPole-v1",
        EnvRegistration::new(|kwargs| {
            let spec = EnvSpec {
                max_episode_steps: Some(1000),
                kwargs: kwargs
                    .get("sutton_barto_reward")
                    .map(|v| EnvKwargs::new().with("sutton_barto_reward", v.clone()))
                    .unwrap_or_default(),
                ..EnvSpec::default()
            };
            make_with("CartPole-v1", &spec)
        }),
    )
    .unwrap();
    let handles: Vec<_> = (0..8)
        .map(|t| {
            std::thread::spawn(move || {
                let id = format!("test/Threaded{t}-v0");
                register(&id, corridor(Some(t + 1))).unwrap();
                for _ in 0..50 {
                    make(&id).unwrap();
                    make("test/LongCartPole-v1").unwrap();
                }
                id
            })
        })
        .collect();
    for h in handles {
        let id = h.join().unwrap();
        assert!(registered_ids().iter().any(|r| *r == id));
    }
    let spec = EnvSpec {
        kwargs: EnvKwargs::new().with("sutton_barto_reward", true),
        ..EnvSpec::default()
    };
    let mut env = make_with("test/LongCartPole-v1", &spec).unwrap();
    env.reset(Some(0)).unwrap();
    assert_eq!(env.step(Action::Discrete(0)).unwrap().reward, 0.0);
}
