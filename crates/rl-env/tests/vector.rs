//! Behaviour of the vector engines: autoreset semantics, engine parity over long random runs,
//! argument checking, and failures of sub-environments (errors and panics, in either engine and
//! on either kind of thread).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rl_env::{
    make, registered_ids, Action, AutoresetMode, Env, EnvError, EnvSpec, Info, Seed, Space,
    StepOutcome, SyncVecEnv, ThreadVecEnv, VecAction, VecEnv,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

const MODES: [AutoresetMode; 2] = [AutoresetMode::SameStep, AutoresetMode::NextStep];

/// A test-only environment: episodes last `3 + seed % 4` steps (3 without a seed), the
/// observation is `[t, episode, action]`, the reward `action + 0.5`, and the last step of an
/// episode reports `extra["last_t"]`. It can fail or panic from its `fault_at.0`-th step on.
struct Countdown {
    t: u64,
    len: u64,
    episode: u64,
    steps: u64,
    fault_at: Option<(u64, Fault)>,
    needs_reset: bool,
    drops: Option<Arc<AtomicUsize>>,
    /// Sleeps this long in every step made on a spawned worker thread.
    slow_on_worker: Option<Duration>,
    /// Counts the steps made on the calling thread.
    caller_steps: Option<Arc<AtomicUsize>>,
    obs_space: Space,
    act_space: Space,
}

#[derive(Clone, Copy, Debug)]
enum Fault {
    /// Returns an error on exactly that step.
    Error,
    /// Panics, once, on the first step from then on made on a spawned worker thread (`true`)
    /// or on any other thread (`false`).
    PanicOnceOn(bool),
}

fn on_spawned_worker() -> bool {
    std::thread::current()
        .name()
        .is_some_and(|n| n.starts_with("rl-vecenv-"))
}

impl Countdown {
    fn new() -> Self {
        Countdown {
            t: 0,
            len: 3,
            episode: 0,
            steps: 0,
            fault_at: None,
            needs_reset: true,
            drops: None,
            slow_on_worker: None,
            caller_steps: None,
            obs_space: Space::boxed(vec![f32::NEG_INFINITY; 3], vec![f32::INFINITY; 3], vec![3])
                .unwrap(),
            act_space: Space::discrete(3),
        }
    }

    fn failing_at(step: u64, fault: Fault) -> Self {
        let mut env = Countdown::new();
        env.fault_at = Some((step, fault));
        env
    }
}

impl Drop for Countdown {
    fn drop(&mut self) {
        if let Some(d) = &self.drops {
            d.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl Env for Countdown {
    fn observation_space(&self) -> &Space {
        &self.obs_space
    }
    fn action_space(&self) -> &Space {
        &self.act_space
    }
    fn reset_into(&mut self, seed: Option<&Seed>, obs: &mut [f32]) -> rl_env::Result<Info> {
        match seed {
            Some(s) => {
                self.len = 3 + u64::from(s.words()[0] % 4);
                self.episode = 0;
            }
            None => self.episode += 1,
        }
        self.t = 0;
        self.needs_reset = false;
        obs.copy_from_slice(&[0.0, self.episode as f32, -1.0]);
        Ok(Info::default())
    }
    fn step_into(&mut self, action: Action<'_>, obs: &mut [f32]) -> rl_env::Result<StepOutcome> {
        self.act_space.check_action(action)?;
        if self.needs_reset {
            return Err(EnvError::NeedsReset("Countdown"));
        }
        self.steps += 1;
        match self.fault_at {
            Some((at, Fault::Error)) if at == self.steps => {
                return Err(EnvError::Other("injected".into()))
            }
            Some((at, Fault::PanicOnceOn(spawned)))
                if at <= self.steps && on_spawned_worker() == spawned =>
            {
                self.fault_at = None;
                panic!("injected panic at step {}", self.steps)
            }
            _ => {}
        }
        match (on_spawned_worker(), self.slow_on_worker, &self.caller_steps) {
            (true, Some(pause), _) => std::thread::sleep(pause),
            (false, _, Some(count)) => {
                count.fetch_add(1, Ordering::SeqCst);
            }
            _ => {}
        }
        let Action::Discrete(a) = action else {
            unreachable!("checked above")
        };
        self.t += 1;
        obs.copy_from_slice(&[self.t as f32, self.episode as f32, a as f32]);
        let terminated = self.t == self.len;
        self.needs_reset = terminated;
        let mut info = Info::default();
        if terminated {
            info.extra.insert("last_t".into(), self.t as f64);
        }
        Ok(StepOutcome {
            reward: a as f64 + 0.5,
            terminated,
            truncated: false,
            info,
        })
    }
}

fn countdowns(n: usize) -> Vec<Countdown> {
    (0..n).map(|_| Countdown::new()).collect()
}

/// Both engines, for tests that must hold for each.
fn engines<E: Env + 'static>(
    mut envs: impl FnMut() -> Vec<E>,
    n_workers: usize,
    mode: AutoresetMode,
) -> Vec<Box<dyn VecEnv>> {
    vec![
        Box::new(SyncVecEnv::new(envs(), mode).unwrap()),
        Box::new(ThreadVecEnv::new(envs(), n_workers, mode).unwrap()),
    ]
}

#[test]
fn same_step_autoreset_keeps_final_observation_and_info() {
    for mut v in engines(|| countdowns(3), 2, AutoresetMode::SameStep) {
        v.reset(Some(10)).unwrap(); // episode lengths 5, 6, 3
        for t in 1..=6u64 {
            v.step(VecAction::Discrete(&[2, 1, 0])).unwrap();
            let b = v.buffers();
            for (i, len) in [5u64, 6, 3].into_iter().enumerate() {
                let ends = t % len == 0;
                assert_eq!(b.terminated()[i], ends, "t={t} env {i}");
                assert_eq!(b.rewards()[i], (2 - i) as f64 + 0.5);
                if ends {
                    let last = [len as f32, (t / len - 1) as f32, (2 - i) as f32];
                    assert_eq!(b.final_observation(i), Some(&last[..]));
                    assert_eq!(b.infos()[i].extra["last_t"], len as f64);
                    assert_eq!(b.observation(i), &[0.0, (t / len) as f32, -1.0]);
                } else {
                    assert_eq!(b.final_observation(i), None, "t={t} env {i}");
                    assert!(b.infos()[i].is_empty());
                    assert_eq!(b.observation(i)[0], (t % len) as f32);
                }
            }
        }
    }
}

#[test]
fn next_step_autoreset_spends_one_step_on_the_reset() {
    for mut v in engines(|| countdowns(2), 2, AutoresetMode::NextStep) {
        v.reset_with_seeds(&[Some(0), Some(4)]).unwrap(); // lengths 3 and 3
        for _ in 0..2 {
            v.step(VecAction::Discrete(&[1, 1])).unwrap();
        }
        v.step(VecAction::Discrete(&[2, 0])).unwrap();
        assert_eq!(v.terminated(), &[true, true]);
        assert_eq!(v.observations(), &[3.0, 0.0, 2.0, 3.0, 0.0, 0.0]);
        assert_eq!(v.buffers().final_observation(0), None);
        // The action is ignored, the reward is 0 and both flags are false.
        v.step(VecAction::Discrete(&[2, 2])).unwrap();
        assert_eq!(v.rewards(), &[0.0, 0.0]);
        assert_eq!(v.terminated(), &[false, false]);
        assert_eq!(v.truncated(), &[false, false]);
        assert_eq!(v.observations(), &[0.0, 1.0, -1.0, 0.0, 1.0, -1.0]);
        v.step(VecAction::Discrete(&[2, 0])).unwrap();
        assert_eq!(v.rewards(), &[2.5, 0.5]);
    }
}

/// Steps a `SyncVecEnv` and a `ThreadVecEnv` side by side with random actions and reseeds and
/// asserts every buffer is bit-identical after every call.
fn assert_engines_agree(
    id: &str,
    n_envs: usize,
    n_workers: usize,
    mode: AutoresetMode,
    steps: usize,
) {
    let spec = EnvSpec {
        max_episode_steps: Some(40),
        ..EnvSpec::default()
    };
    let mut a = SyncVecEnv::make_with(id, &spec, n_envs, mode).unwrap();
    let mut b = ThreadVecEnv::make_with(id, &spec, n_envs, n_workers, mode).unwrap();
    let space = a.action_space().clone();
    let mut rng = StdRng::seed_from_u64(n_envs as u64 * 31 + n_workers as u64);
    a.reset(Some(5)).unwrap();
    b.reset(Some(5)).unwrap();
    let mut discrete = vec![0i64; n_envs];
    let mut continuous = vec![0f32; n_envs * space.flat_dim()];
    let what = format!("{id} n_envs={n_envs} workers={n_workers} {mode:?}");
    for t in 0..steps {
        if t % 500 == 499 {
            let seeds: Vec<Option<u64>> = (0..n_envs)
                .map(|i| (i % 2 == 0).then(|| rng.gen::<u64>()))
                .collect();
            a.reset_with_seeds(&seeds).unwrap();
            b.reset_with_seeds(&seeds).unwrap();
        } else {
            let actions = match &space {
                Space::Box(bx) => {
                    for row in continuous.chunks_exact_mut(space.flat_dim()) {
                        bx.sample_into(&mut rng, row);
                    }
                    VecAction::Continuous(&continuous)
                }
                Space::Discrete { .. } => {
                    for x in discrete.iter_mut() {
                        *x = space.sample_discrete(&mut rng).unwrap();
                    }
                    VecAction::Discrete(&discrete)
                }
            };
            a.step(actions).unwrap();
            b.step(actions).unwrap();
        }
        let (x, y) = (a.buffers(), b.buffers());
        let bits32 = |s: &[f32]| s.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        let bits64 = |s: &[f64]| s.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(
            bits32(x.observations()),
            bits32(y.observations()),
            "{what} t={t}"
        );
        assert_eq!(bits64(x.rewards()), bits64(y.rewards()), "{what} t={t}");
        assert_eq!(x.terminated(), y.terminated(), "{what} t={t}");
        assert_eq!(x.truncated(), y.truncated(), "{what} t={t}");
        assert_eq!(x.infos(), y.infos(), "{what} t={t}");
        for i in 0..n_envs {
            assert_eq!(
                x.final_observation(i).map(bits32),
                y.final_observation(i).map(bits32),
                "{what} t={t} env {i}"
            );
        }
    }
}

#[test]
fn thread_engine_matches_sync_engine_bit_for_bit_on_every_registered_env() {
    let ids = registered_ids();
    assert!(!ids.is_empty());
    for id in ids {
        for mode in MODES {
            for (n_envs, n_workers) in [(64, 2), (50, 3), (33, 2), (4, 9), (1, 2)] {
                assert_engines_agree(id, n_envs, n_workers, mode, 1000);
            }
        }
    }
}

#[test]
fn bad_arguments_are_reported_and_leave_the_vector_usable() {
    assert!(matches!(
        SyncVecEnv::<Countdown>::new(Vec::new(), AutoresetMode::SameStep),
        Err(EnvError::InvalidArgument(_))
    ));
    assert!(matches!(
        ThreadVecEnv::<Countdown>::new(Vec::new(), 2, AutoresetMode::SameStep),
        Err(EnvError::InvalidArgument(_))
    ));
    let mut odd = countdowns(3);
    odd[2].act_space = Space::discrete(4);
    assert!(matches!(
        SyncVecEnv::new(odd, AutoresetMode::SameStep),
        Err(EnvError::SpaceMismatch {
            index: 2,
            what: "action space",
            ..
        })
    ));
    let mut empty = countdowns(2);
    for env in empty.iter_mut() {
        env.obs_space = Space::boxed(vec![], vec![], vec![0]).unwrap();
    }
    assert!(matches!(
        ThreadVecEnv::new(empty, 2, AutoresetMode::SameStep),
        Err(EnvError::InvalidArgument(_))
    ));
    assert!(matches!(
        SyncVecEnv::make("NoSuchEnv-v0", 2, AutoresetMode::SameStep),
        Err(EnvError::UnknownEnv { .. })
    ));

    for mode in MODES {
        for mut v in engines(|| countdowns(3), 2, mode) {
            assert!(matches!(
                v.step(VecAction::Discrete(&[0, 0, 0])),
                Err(EnvError::NeedsReset(_))
            ));
            assert!(matches!(
                v.reset_with_seeds(&[Some(1)]),
                Err(EnvError::BatchLength {
                    what: "seeds",
                    expected: 3,
                    actual: 1
                })
            ));
            v.reset(Some(0)).unwrap();
            v.step(VecAction::Discrete(&[1, 1, 1])).unwrap();
            let before = v.observations().to_vec();
            assert!(matches!(
                v.step(VecAction::Discrete(&[1, 1])),
                Err(EnvError::BatchLength {
                    what: "actions",
                    expected: 3,
                    actual: 2
                })
            ));
            assert!(matches!(
                v.step(VecAction::Continuous(&[0.0; 3])),
                Err(EnvError::ActionKind {
                    given: "continuous",
                    ..
                })
            ));
            match v.step(VecAction::Discrete(&[1, 1, 7])) {
                Err(EnvError::SubEnv { index: 2, source }) => {
                    assert!(matches!(
                        *source,
                        EnvError::ActionOutOfRange { action: 7, .. }
                    ))
                }
                other => panic!("expected SubEnv 2, got {other:?}"),
            }
            // Rejected batches touch nothing: the episode continues where it was.
            assert_eq!(v.observations(), &before[..]);
            v.step(VecAction::Discrete(&[1, 1, 1])).unwrap();
            assert_eq!(v.observations()[0], 2.0);
        }
    }
}

#[test]
fn a_failing_sub_env_surfaces_its_global_index_and_requires_a_reset() {
    for failing in [0, 17, 63] {
        let envs = || {
            (0..64)
                .map(|i| {
                    if i == failing {
                        Countdown::failing_at(4, Fault::Error)
                    } else {
                        Countdown::new()
                    }
                })
                .collect::<Vec<_>>()
        };
        for mut v in engines(envs, 3, AutoresetMode::SameStep) {
            v.reset(None).unwrap();
            for _ in 0..3 {
                v.step(VecAction::Discrete(&[0; 64])).unwrap();
            }
            match v.step(VecAction::Discrete(&[0; 64])) {
                Err(EnvError::SubEnv { index, source }) => {
                    assert_eq!(index, failing);
                    assert_eq!(*source, EnvError::Other("injected".into()));
                }
                other => panic!("expected a SubEnv error, got {other:?}"),
            }
            assert!(matches!(
                v.step(VecAction::Discrete(&[0; 64])),
                Err(EnvError::NeedsReset(_))
            ));
            v.reset(None).unwrap();
            v.step(VecAction::Discrete(&[0; 64])).unwrap();
        }
    }
}

/// Runs `f` on another thread and fails (instead of hanging the test run) if it takes too long.
fn within_seconds(secs: u64, f: impl FnOnce() + Send + 'static) {
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::spawn(move || {
        f();
        let _ = tx.send(());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(()) => handle.join().unwrap(),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(p) = handle.join() {
                std::panic::resume_unwind(p)
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("hung for {secs} s"),
    }
}

/// Steps `v` until a call fails (the faulty sub-environment may first have to be stepped on the
/// right kind of thread), checks that it failed with `failing`'s panic, that every further step
/// asks for a reset, and that the vector works again after one.
fn assert_panic_is_reported_until_reset(v: &mut dyn VecEnv, failing: usize) {
    let n = v.num_envs();
    let actions = vec![0; n];
    v.reset(Some(3)).unwrap();
    // A loaded machine may keep the worker thread off the CPU for many calls (the caller then
    // steps every chunk itself): keep stepping, with a short pause that lets it run, until the
    // faulty environment is stepped on the kind of thread under test.
    let start = std::time::Instant::now();
    let err = loop {
        if let Err(e) = v.step(VecAction::Discrete(&actions)) {
            break e;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the faulty sub-environment never panicked"
        );
        std::thread::sleep(Duration::from_micros(50));
    };
    match &err {
        EnvError::Panicked { index, message } => {
            assert_eq!(*index, failing);
            assert!(message.contains("injected panic at step"), "{message}");
        }
        other => panic!("expected a Panicked error, got {other:?}"),
    }
    assert!(
        err.to_string().starts_with(&format!(
            "sub-environment {failing} panicked: injected panic"
        )),
        "{err}"
    );
    for _ in 0..3 {
        match v.step(VecAction::Discrete(&actions)) {
            Err(EnvError::NeedsReset(why)) => assert!(why.contains("panicked"), "{why}"),
            other => panic!("expected NeedsReset, got {other:?}"),
        }
    }
    v.reset(Some(3)).unwrap();
    for _ in 0..20 {
        v.step(VecAction::Discrete(&actions)).unwrap();
    }
}

#[test]
fn a_panicking_sub_env_fails_the_call_until_a_reset_in_both_engines() {
    // 64 envs on 2 threads make 4 chunks; the caller's home range is envs 0..32, the worker's
    // 32..64. Either may step the other's, so the faulty env panics (once) only when it is
    // stepped on the kind of thread under test (its owner does so on almost every call).
    for (failing, spawned) in [(0, false), (20, false), (40, true), (63, true)] {
        for mode in MODES {
            within_seconds(60, move || {
                let envs = (0..64)
                    .map(|i| {
                        if i == failing {
                            Countdown::failing_at(2, Fault::PanicOnceOn(spawned))
                        } else {
                            Countdown::new()
                        }
                    })
                    .collect();
                let mut v = ThreadVecEnv::new(envs, 2, mode).unwrap();
                assert_panic_is_reported_until_reset(&mut v, failing);
            });
        }
    }
    // The in-thread engine catches the panic too, instead of unwinding into its caller.
    for failing in [0, 5, 63] {
        for mode in MODES {
            let envs = (0..64)
                .map(|i| {
                    if i == failing {
                        Countdown::failing_at(2, Fault::PanicOnceOn(false))
                    } else {
                        Countdown::new()
                    }
                })
                .collect();
            let mut v = SyncVecEnv::new(envs, mode).unwrap();
            assert_panic_is_reported_until_reset(&mut v, failing);
        }
    }
}

#[test]
fn the_caller_steps_the_chunks_of_a_slow_worker() {
    let caller_steps = Arc::new(AtomicUsize::new(0));
    let envs: Vec<Countdown> = (0..64)
        .map(|i| {
            let mut env = Countdown::new();
            if i >= 32 {
                env.slow_on_worker = Some(Duration::from_millis(1));
                env.caller_steps = Some(Arc::clone(&caller_steps));
            }
            env
        })
        .collect();
    let mut v = ThreadVecEnv::new(envs, 2, AutoresetMode::SameStep).unwrap();
    let mut reference = SyncVecEnv::new(countdowns(64), AutoresetMode::SameStep).unwrap();
    v.reset(Some(9)).unwrap();
    reference.reset(Some(9)).unwrap();
    for t in 0..5 {
        let actions: Vec<i64> = (0..64).map(|i| (t + i) % 3).collect();
        v.step(VecAction::Discrete(&actions)).unwrap();
        reference.step(VecAction::Discrete(&actions)).unwrap();
        assert_eq!(v.observations(), reference.observations());
        assert_eq!(v.rewards(), reference.rewards());
    }
    // The worker sleeps through its first chunk (16 ms) while the caller, done with its own
    // range within microseconds, takes the worker's second chunk.
    assert!(caller_steps.load(Ordering::SeqCst) >= 16);
}

#[test]
fn dropping_the_thread_engine_joins_its_workers() {
    within_seconds(60, || {
        let drops = Arc::new(AtomicUsize::new(0));
        let envs = (0..64)
            .map(|_| {
                let mut env = Countdown::new();
                env.drops = Some(Arc::clone(&drops));
                env
            })
            .collect();
        let mut v = ThreadVecEnv::new(envs, 3, AutoresetMode::SameStep).unwrap();
        assert_eq!(v.num_workers(), 3);
        v.reset(Some(1)).unwrap();
        v.step(VecAction::Discrete(&[1; 64])).unwrap();
        // Idle long enough for the workers to park.
        std::thread::sleep(Duration::from_millis(20));
        v.step(VecAction::Discrete(&[1; 64])).unwrap();
        drop(v);
        // The worker threads share ownership of the sub-environments: all are dropped once
        // every thread has ended.
        assert_eq!(drops.load(Ordering::SeqCst), 64);
    });
}

#[test]
fn worker_count_is_clamped_and_make_builds_registered_envs() {
    let v = ThreadVecEnv::make("CartPole-v1", 3, 16, AutoresetMode::SameStep).unwrap();
    assert_eq!(v.num_workers(), 3);
    let v = ThreadVecEnv::make("CartPole-v1", 3, 0, AutoresetMode::SameStep).unwrap();
    assert_eq!(v.num_workers(), 1);
    let single = make("CartPole-v1").unwrap();
    let v = SyncVecEnv::from_fn(2, AutoresetMode::NextStep, |_| make("CartPole-v1")).unwrap();
    assert_eq!(v.observation_space(), single.observation_space());
    assert_eq!(v.autoreset_mode(), AutoresetMode::NextStep);
    assert_eq!(v.num_envs(), 2);
}

#[test]
fn reset_seeds_sub_env_i_with_seed_plus_i() {
    let mut v = SyncVecEnv::make("CartPole-v1", 3, AutoresetMode::SameStep).unwrap();
    v.reset(Some(u64::MAX)).unwrap();
    for i in 0..3u128 {
        let mut env = make("CartPole-v1").unwrap();
        let mut obs = [0.0f32; 4];
        env.reset_into(Some(&Seed::from(u64::MAX as u128 + i)), &mut obs)
            .unwrap();
        assert_eq!(v.buffers().observation(i as usize), &obs);
    }
}
