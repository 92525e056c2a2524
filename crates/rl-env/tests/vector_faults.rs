//! Hostile sub-environments in both vector engines: NaN and infinite observations, final
//! observations and rewards, panics in `reset_into` and `step_into`. Each must fail the call with
//! a typed error naming the sub-environment (and, for values, the step), identically in both
//! engines, require a reset, and leave the vector usable after one.

use rl_env::{
    Action, AutoresetMode, Env, EnvError, Info, Seed, Space, StepOutcome, SyncVecEnv, ThreadVecEnv,
    VecAction, VecEnv,
};

const MODES: [AutoresetMode; 2] = [AutoresetMode::SameStep, AutoresetMode::NextStep];

/// Episodes of this many steps.
const EPISODE: u64 = 5;

/// Sub-environments per vector: with 2 threads the threaded engine splits them into chunks
/// `0..16`, `16..32` and `32..40`.
const N_ENVS: usize = 40;

/// When a fault strikes: on the n-th call of `reset_into` or `step_into` (1-based, counted over
/// the sub-environment's life).
#[derive(Clone, Copy, Debug)]
enum When {
    Reset(u64),
    Step(u64),
}

/// What a sub-environment does wrong, once.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// Writes `value` into component `component` of its observation.
    Obs(usize, f32),
    /// Returns `value` as its reward.
    Reward(f64),
    /// Returns an error.
    Error,
    /// Panics.
    Panic,
}

/// A fault of the sub-environment with that index.
type Placed = (usize, When, Fault);

/// Observation `[t, resets, 1]`, reward 1, episodes of [`EPISODE`] steps; may misbehave once.
struct Hostile {
    t: u64,
    resets: u64,
    steps: u64,
    fault: Option<(When, Fault)>,
    obs_space: Space,
    act_space: Space,
}

impl Hostile {
    fn new(fault: Option<(When, Fault)>) -> Self {
        Hostile {
            t: 0,
            resets: 0,
            steps: 0,
            fault,
            obs_space: Space::boxed(vec![f32::NEG_INFINITY; 3], vec![f32::INFINITY; 3], vec![3])
                .unwrap(),
            act_space: Space::discrete(2),
        }
    }

    /// The fault due now, if any (it then never strikes again).
    fn due(&mut self, now: When) -> Option<Fault> {
        let hit = match (self.fault?.0, now) {
            (When::Reset(a), When::Reset(b)) | (When::Step(a), When::Step(b)) => a == b,
            _ => false,
        };
        hit.then(|| self.fault.take().map(|(_, f)| f)).flatten()
    }

    fn observe(&self, obs: &mut [f32]) {
        obs.copy_from_slice(&[self.t as f32, self.resets as f32, 1.0]);
    }
}

impl Env for Hostile {
    fn observation_space(&self) -> &Space {
        &self.obs_space
    }
    fn action_space(&self) -> &Space {
        &self.act_space
    }
    fn reset_into(&mut self, _seed: Option<&Seed>, obs: &mut [f32]) -> rl_env::Result<Info> {
        self.resets += 1;
        self.t = 0;
        self.observe(obs);
        match self.due(When::Reset(self.resets)) {
            Some(Fault::Obs(k, v)) => obs[k] = v,
            Some(Fault::Panic) => panic!("injected panic in reset {}", self.resets),
            Some(Fault::Error) => return Err(EnvError::Other("injected reset error".into())),
            Some(Fault::Reward(_)) | None => {}
        }
        Ok(Info::default())
    }
    fn step_into(&mut self, _action: Action<'_>, obs: &mut [f32]) -> rl_env::Result<StepOutcome> {
        self.steps += 1;
        self.t += 1;
        self.observe(obs);
        let mut reward = 1.0;
        match self.due(When::Step(self.steps)) {
            Some(Fault::Obs(k, v)) => obs[k] = v,
            Some(Fault::Reward(r)) => reward = r,
            Some(Fault::Panic) => panic!("injected panic in step {}", self.steps),
            Some(Fault::Error) => return Err(EnvError::Other("injected step error".into())),
            None => {}
        }
        Ok(StepOutcome {
            reward,
            terminated: self.t == EPISODE,
            ..StepOutcome::default()
        })
    }
}

/// `N_ENVS` hostile sub-environments, the listed ones with a fault.
fn envs(faults: &[Placed]) -> Vec<Hostile> {
    (0..N_ENVS)
        .map(|i| {
            let fault = faults.iter().find(|f| f.0 == i).map(|&(_, w, f)| (w, f));
            Hostile::new(fault)
        })
        .collect()
}

/// Both engines over the same faulty sub-environments (the threaded one on 2 threads).
fn engines(faults: &[Placed], mode: AutoresetMode) -> [Box<dyn VecEnv>; 2] {
    [
        Box::new(SyncVecEnv::new(envs(faults), mode).unwrap()),
        Box::new(ThreadVecEnv::new(envs(faults), 2, mode).unwrap()),
    ]
}

fn step(v: &mut dyn VecEnv) -> rl_env::Result<()> {
    v.step(VecAction::Discrete(&[1; N_ENVS]))
}

/// After a failed call: steps ask for a reset (for `why`), a reset works, and so do steps.
fn assert_needs_reset_then_recovers(v: &mut dyn VecEnv, why: &str) {
    for _ in 0..3 {
        match step(v) {
            Err(EnvError::NeedsReset(m)) => assert!(m.contains(why), "{m}"),
            other => panic!("expected NeedsReset, got {other:?}"),
        }
    }
    v.reset(Some(1)).unwrap();
    for _ in 0..3 * EPISODE {
        step(v).unwrap();
    }
}

/// Resets, then steps until a call fails; returns the error and the number of the failing step.
fn first_failure(v: &mut dyn VecEnv) -> (EnvError, u64) {
    v.reset(Some(0)).unwrap();
    for k in 1..=50 {
        if let Err(e) = step(v) {
            return (e, k);
        }
    }
    panic!("no step failed");
}

/// Compares errors with NaN values, which `==` never finds equal.
fn same(a: &EnvError, b: &EnvError) -> bool {
    a == b || a.to_string() == b.to_string()
}

#[test]
fn non_finite_observations_and_rewards_name_the_sub_env_and_the_step() {
    let cases = [
        // A NaN in a mid-episode observation.
        (
            21,
            When::Step(3),
            Fault::Obs(1, f32::NAN),
            3,
            "observation",
            Some(1),
        ),
        (
            0,
            When::Step(2),
            Fault::Obs(0, f32::INFINITY),
            2,
            "observation",
            Some(0),
        ),
        // An infinite reward, first and last sub-environment.
        (
            0,
            When::Step(4),
            Fault::Reward(f64::INFINITY),
            4,
            "reward",
            None,
        ),
        (
            39,
            When::Step(1),
            Fault::Reward(f64::NAN),
            1,
            "reward",
            None,
        ),
        (
            16,
            When::Step(1),
            Fault::Reward(f64::NEG_INFINITY),
            1,
            "reward",
            None,
        ),
    ];
    for (env, when, fault, step_no, what, component) in cases {
        for mode in MODES {
            for mut v in engines(&[(env, when, fault)], mode) {
                let (err, k) = first_failure(&mut *v);
                assert_eq!(k, step_no, "{err}");
                match &err {
                    EnvError::NonFinite {
                        env: e,
                        step: s,
                        what: w,
                        component: c,
                        value,
                    } => {
                        assert_eq!((*e, *s, *w, *c), (env, step_no, what, component));
                        assert!(!value.is_finite());
                    }
                    other => panic!("expected NonFinite, got {other:?}"),
                }
                assert_needs_reset_then_recovers(&mut *v, "NaN or infinite");
            }
        }
    }
}

#[test]
fn a_non_finite_last_observation_is_the_final_observation_in_same_step_mode() {
    // The episode's last step: with same-step autoreset its observation is the final
    // observation (the returned one is the next episode's first); with next-step autoreset it
    // is the returned observation.
    let fault = [(30, When::Step(EPISODE), Fault::Obs(2, f32::NEG_INFINITY))];
    for (mode, what) in [
        (AutoresetMode::SameStep, "final observation"),
        (AutoresetMode::NextStep, "observation"),
    ] {
        for mut v in engines(&fault, mode) {
            let (err, k) = first_failure(&mut *v);
            assert_eq!(k, EPISODE);
            assert_eq!(
                err,
                EnvError::NonFinite {
                    env: 30,
                    step: EPISODE,
                    what,
                    component: Some(2),
                    value: f64::NEG_INFINITY
                }
            );
            assert_needs_reset_then_recovers(&mut *v, "NaN or infinite");
        }
    }
}

#[test]
fn the_error_text_says_what_where_and_when() {
    let fault = [(7, When::Step(2), Fault::Obs(1, f32::NAN))];
    let (err, _) = first_failure(&mut SyncVecEnv::new(envs(&fault), MODES[0]).unwrap());
    assert_eq!(
        err.to_string(),
        "sub-environment 7 returned a non-finite observation (component 1 is NaN) on step 2 \
         after the last reset of the vector (step 0 is the reset itself)"
    );
    let fault = [(3, When::Step(1), Fault::Reward(f64::INFINITY))];
    let (err, _) = first_failure(&mut SyncVecEnv::new(envs(&fault), MODES[0]).unwrap());
    assert_eq!(
        err.to_string(),
        "sub-environment 3 returned a non-finite reward (inf) on step 1 after the last reset of \
         the vector (step 0 is the reset itself)"
    );
}

#[test]
fn a_non_finite_observation_from_reset_fails_the_reset() {
    for mode in MODES {
        // Sub-environment 35's first reset is the vector's reset: step 0.
        for mut v in engines(&[(35, When::Reset(1), Fault::Obs(0, f32::NAN))], mode) {
            let err = v.reset(Some(0)).unwrap_err();
            assert!(
                matches!(
                    err,
                    EnvError::NonFinite {
                        env: 35,
                        step: 0,
                        what: "observation",
                        component: Some(0),
                        ..
                    }
                ),
                "{err}"
            );
            assert_needs_reset_then_recovers(&mut *v, "NaN or infinite");
        }
    }
    // An autoreset inside a step (same-step mode: the step that ends the first episode).
    let fault = [(12, When::Reset(2), Fault::Obs(1, f32::INFINITY))];
    for mut v in engines(&fault, AutoresetMode::SameStep) {
        let (err, k) = first_failure(&mut *v);
        assert_eq!(k, EPISODE);
        assert!(
            matches!(
                err,
                EnvError::NonFinite {
                    env: 12,
                    step: EPISODE,
                    what: "observation",
                    component: Some(1),
                    ..
                }
            ),
            "{err}"
        );
        assert_needs_reset_then_recovers(&mut *v, "NaN or infinite");
    }
}

#[test]
fn panics_in_reset_and_step_are_errors_in_both_engines() {
    for mode in MODES {
        // In the vector's reset.
        for mut v in engines(&[(17, When::Reset(1), Fault::Panic)], mode) {
            match v.reset(Some(0)) {
                Err(EnvError::Panicked { index: 17, message }) => {
                    assert_eq!(message, "injected panic in reset 1")
                }
                other => panic!("expected Panicked 17, got {other:?}"),
            }
            assert_needs_reset_then_recovers(&mut *v, "panicked");
        }
        // In a step.
        for mut v in engines(&[(33, When::Step(4), Fault::Panic)], mode) {
            let (err, k) = first_failure(&mut *v);
            assert_eq!(k, 4);
            assert!(
                matches!(&err, EnvError::Panicked { index: 33, message }
                    if message == "injected panic in step 4"),
                "{err}"
            );
            assert_needs_reset_then_recovers(&mut *v, "panicked");
        }
    }
    // In the autoreset inside a step.
    for mut v in engines(
        &[(2, When::Reset(2), Fault::Panic)],
        AutoresetMode::SameStep,
    ) {
        let (err, k) = first_failure(&mut *v);
        assert_eq!(k, EPISODE);
        assert!(matches!(err, EnvError::Panicked { index: 2, .. }), "{err}");
        assert_needs_reset_then_recovers(&mut *v, "panicked");
    }
}

#[test]
fn with_several_faults_both_engines_report_the_lowest_sub_env() {
    // The threaded engine steps 0..16, 16..32 and 32..40 as separate blocks, possibly on
    // different threads; the in-thread engine stops at the first error. Both must report the
    // same, lowest-index, failure.
    let nan = Fault::Obs(0, f32::NAN);
    let cases: [(&[Placed], usize); 5] = [
        (
            &[(10, When::Step(2), Fault::Error), (30, When::Step(2), nan)],
            10,
        ),
        (
            &[(10, When::Step(2), nan), (30, When::Step(2), Fault::Error)],
            10,
        ),
        (
            &[(20, When::Step(2), nan), (25, When::Step(2), Fault::Panic)],
            20,
        ),
        (
            &[(25, When::Step(2), nan), (20, When::Step(2), Fault::Panic)],
            20,
        ),
        (
            &[
                (39, When::Step(2), Fault::Panic),
                (38, When::Step(2), Fault::Reward(f64::NAN)),
                (33, When::Step(2), Fault::Error),
            ],
            33,
        ),
    ];
    for (faults, lowest) in cases {
        for mode in MODES {
            let [mut sync, mut threaded] = engines(faults, mode);
            let (a, ka) = first_failure(&mut *sync);
            let (b, kb) = first_failure(&mut *threaded);
            assert_eq!((ka, kb), (2, 2));
            assert!(same(&a, &b), "engines differ: {a} / {b}");
            let index = match &a {
                EnvError::SubEnv { index, .. } | EnvError::Panicked { index, .. } => *index,
                EnvError::NonFinite { env, .. } => *env,
                other => panic!("unexpected {other:?}"),
            };
            assert_eq!(index, lowest, "{a}");
            // (Not stepped further: the in-thread engine left some faults unfired, so the two
            // vectors now hold different sub-environments.)
            for v in [&mut sync, &mut threaded] {
                assert!(matches!(step(&mut **v), Err(EnvError::NeedsReset(_))));
            }
        }
    }
}

#[test]
fn a_failed_reset_can_be_retried() {
    for mode in MODES {
        for mut v in engines(&[(5, When::Reset(1), Fault::Error)], mode) {
            assert!(matches!(
                v.reset(Some(0)),
                Err(EnvError::SubEnv { index: 5, .. })
            ));
            assert_needs_reset_then_recovers(&mut *v, "failed");
        }
    }
}
