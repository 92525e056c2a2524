//! [`check_env`]: Gymnasium's `check_env` for the [`Env`] trait.
//!
//! An environment written against this crate can break the contract that the vector engines,
//! the wrappers and the training loops rely on in ways the type system does not see: a reset
//! that ignores its seed, an observation component left unwritten, a NaN reward, stepping on
//! after an episode ended. `check_env` drives the environment through seeded resets and
//! random steps and reports each such problem with a message that says what was called and
//! what came back.
//!
//! What is an error and what is a warning follows `gymnasium.utils.env_checker` (1.4), with
//! two deliberate differences: non-finite observations and rewards are errors here (Gymnasium
//! only warns) because the vector engines of this crate refuse them
//! ([`EnvError::NonFinite`]), and stepping after the end of an episode must be
//! [`EnvError::NeedsReset`] (the [`Env`] contract; Gymnasium leaves it undefined).
//!
//! | check | error | warning |
//! |---|---|---|
//! | spaces | empty `Discrete` or `Box`; `Discrete` values beyond `i64` | infinite or equal `Box` bounds; a `Box` action space other than `[-1, 1]`/`[0, 1]`-like |
//! | reset before step | a step on the fresh environment that is not refused with `NeedsReset` (skipped when [`CheckOptions::fresh`] is `false`) | |
//! | reset | an error or panic; a NaN/infinite observation (or a component left unwritten); an observation outside the observation space (Gymnasium asserts this too); `info.episode` set | a buffer of the wrong length accepted |
//! | reset determinism | `reset(seed)` twice (and the unseeded resets after them) not close | close but not identical; three seeds giving the same observation |
//! | step | an error or panic on an action sampled from the action space; non-finite observation or reward; `info.episode` before the end of an episode; a step after the end of an episode that is not `NeedsReset` | an observation outside the bounds; no episode ending within the step budget |
//! | step determinism | two replays of `reset(seed)` + the same sampled actions (up to [`CheckOptions::determinism_steps`]) differing in observations, rewards, `terminated`/`truncated` or length; truncation after one step | close but not identical |
//! | render ([`check_render`], optional) | a frame of another size than `render_size`, a color outside the palette, `render_fps` 0, an error or panic | |
//!
//! Observations are flat `f32` slices, so Gymnasium's dtype and shape checks become: the
//! buffer has the space's flat dimension (the caller provides it; a wrong length must be
//! refused), every component is written and finite, and a `Discrete` observation is an
//! integer in range. Warnings are returned as data ([`CheckReport::warnings`]), never printed.
//!
//! ```
//! use rl_env::{check_env, make, CheckWarning};
//!
//! let mut env = make("CartPole-v1")?;
//! let report = check_env(&mut *env)?;
//! // CartPole's velocities are unbounded: Gymnasium warns about that too.
//! assert!(report.warnings.iter().any(|w| matches!(w, CheckWarning::InfiniteBound { .. })));
//! assert!(report.episodes >= 1);
//! # Ok::<(), rl_env::EnvError>(())
//! ```

use crate::env::{Action, Env, StepOutcome};
use crate::error::{EnvError, Result};
use crate::render::{Frame, Render};
use crate::seeding::Seed;
use crate::space::Space;
use crate::vector::panic_message;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Options of [`check_env_with`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckOptions {
    /// The seed of the seeded resets (Gymnasium uses 123) and of the action sampler.
    pub seed: u64,
    /// How many random steps the step check takes at most (episodes are reset as they end).
    pub max_steps: u64,
    /// How many steps of one seeded episode are replayed by the step-determinism check (it
    /// stops earlier when the episode ends; 0 counts as 1). Gymnasium compares one step.
    pub determinism_steps: u64,
    /// The environment has not been reset yet, so the first check is that a step before any
    /// reset is refused with [`EnvError::NeedsReset`]. Set it to `false` to check an
    /// environment that was already used.
    pub fresh: bool,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            seed: 123,
            max_steps: 1000,
            determinism_steps: 50,
            fresh: true,
        }
    }
}

/// A soft problem: the environment works, but something is probably not what was meant.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum CheckWarning {
    /// A `Box` bound is infinite (Gymnasium: "probably too low/high").
    InfiniteBound {
        /// `"observation"` or `"action"`.
        space: &'static str,
        /// `true` for the lower bound, `false` for the upper one.
        low: bool,
    },
    /// A `Box` element whose low and high bounds are equal.
    EqualBounds {
        /// `"observation"` or `"action"`.
        space: &'static str,
        /// Flat index of the first such element.
        index: usize,
    },
    /// A `Box` action space that is not symmetric and normalized (SB3 and Gymnasium recommend
    /// `[-1, 1]`, or `[0, 1]`).
    UnnormalizedActionSpace {
        /// The action space.
        space: String,
    },
    /// An observation outside the declared bounds (counted over the whole check).
    ObservationOutOfBounds {
        /// The call that returned it first (`"reset(seed=123)"`, `"step 7"`).
        call: String,
        /// Flat index of the first offending component.
        index: usize,
        /// Its value.
        value: f32,
        /// How many observations were outside in total.
        count: u64,
    },
    /// Two runs with the same seed (and action) gave observations or rewards that are close
    /// but not bit-identical.
    NotExactlyReproducible {
        /// What was compared.
        what: &'static str,
        /// The largest absolute difference.
        max_abs_diff: f64,
    },
    /// Three different seeds gave the same first observation: the seed may be ignored (or the
    /// start state is deterministic).
    SeedsGiveSameObservation {
        /// The seeds tried.
        seeds: [u64; 3],
    },
    /// No episode ended within the step budget, so stepping after the end of an episode was
    /// not checked.
    NoEpisodeEnded {
        /// Steps taken.
        steps: u64,
    },
    /// `reset_into` or `step_into` accepted (or panicked on) an observation buffer of the wrong
    /// length instead of returning [`EnvError::ObservationBuffer`] (see
    /// [`crate::check_obs_buffer`]).
    BufferLengthUnchecked {
        /// `"reset_into"` or `"step_into"`.
        call: &'static str,
        /// The length given.
        len: usize,
        /// The observation space's flat dimension.
        expected: usize,
        /// Whether it panicked (else it returned `Ok`).
        panicked: bool,
    },
}

impl fmt::Display for CheckWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckWarning::InfiniteBound { space, low: true } => write!(
                f,
                "a Box {space} space minimum value is -infinity; this is probably too low"
            ),
            CheckWarning::InfiniteBound { space, low: false } => write!(
                f,
                "a Box {space} space maximum value is infinity; this is probably too high"
            ),
            CheckWarning::EqualBounds { space, index } => write!(
                f,
                "a Box {space} space has equal minimum and maximum values (element {index})"
            ),
            CheckWarning::UnnormalizedActionSpace { space } => write!(
                f,
                "the action space {space} is not symmetric and normalized; a Box action space \
                 in [-1, 1] (or [0, 1]) is recommended"
            ),
            CheckWarning::ObservationOutOfBounds {
                call,
                index,
                value,
                count,
            } => write!(
                f,
                "the observation returned by {call} is not within the observation space \
                 (component {index} is {value}); {count} observation(s) in all"
            ),
            CheckWarning::NotExactlyReproducible { what, max_abs_diff } => write!(
                f,
                "{what} are close but not identical (max abs difference {max_abs_diff:e})"
            ),
            CheckWarning::SeedsGiveSameObservation { seeds } => write!(
                f,
                "reset with seeds {seeds:?} gave the same observation: is the seed used?"
            ),
            CheckWarning::NoEpisodeEnded { steps } => write!(
                f,
                "no episode ended within {steps} steps: stepping after the end of an episode \
                 was not checked"
            ),
            CheckWarning::BufferLengthUnchecked {
                call,
                len,
                expected,
                panicked,
            } => write!(
                f,
                "{call} {} an observation buffer of length {len} (the space needs {expected}) \
                 instead of returning EnvError::ObservationBuffer",
                if *panicked { "panicked on" } else { "accepted" }
            ),
        }
    }
}

/// What [`check_env`] found when no check failed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CheckReport {
    /// The soft problems, in the order found.
    pub warnings: Vec<CheckWarning>,
    /// Random steps taken by the step check.
    pub steps: u64,
    /// Episodes that ended during the step check.
    pub episodes: u64,
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "check_env passed ({} steps, {} episodes ended), {} warning(s)",
            self.steps,
            self.episodes,
            self.warnings.len()
        )?;
        for w in &self.warnings {
            write!(f, "\n- {w}")?;
        }
        Ok(())
    }
}

/// Checks that `env` follows the [`Env`] contract, with [`CheckOptions::default`] (seed 123,
/// up to 1000 random steps, a freshly made environment). See the [module docs](self) for the
/// list of checks.
///
/// Returns the warnings when every check passes, else the first violation as
/// [`EnvError::CheckFailed`] naming the check and what went wrong. Panics of the environment
/// are caught and reported as failures. The environment is left mid-episode: reset it before
/// using it.
pub fn check_env<E: Env + ?Sized>(env: &mut E) -> Result<CheckReport> {
    check_env_with(env, &CheckOptions::default())
}

/// [`check_env`] with a chosen seed and step budget.
pub fn check_env_with<E: Env + ?Sized>(env: &mut E, options: &CheckOptions) -> Result<CheckReport> {
    let mut checker = Checker {
        report: CheckReport::default(),
        out_of_bounds: None,
    };
    checker.spaces(env)?;
    if options.fresh {
        checker.reset_before_step(env, options)?;
    }
    checker.reset(env, options)?;
    checker.reset_determinism(env, options)?;
    checker.steps(env, options)?;
    checker.step_determinism(env, options)?;
    checker.buffer_lengths(env, options)?;
    if let Some(w) = checker.out_of_bounds.take() {
        checker.report.warnings.push(w);
    }
    Ok(checker.report)
}

fn fail(check: &'static str, message: String) -> EnvError {
    EnvError::CheckFailed { check, message }
}

/// Runs one environment call, catching a panic (as `Err(message)`).
fn guarded<T>(f: impl FnOnce() -> Result<T>) -> std::result::Result<Result<T>, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|p| panic_message(&*p).to_string())
}

/// Runs one environment call that must succeed.
fn must<T>(
    check: &'static str,
    what: impl FnOnce() -> String,
    f: impl FnOnce() -> Result<T>,
) -> Result<T> {
    match guarded(f) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(fail(check, format!("{} failed: {e}", what()))),
        Err(p) => Err(fail(check, format!("{} panicked: {p}", what()))),
    }
}

/// A sampled action, owning its data.
enum Sampled {
    Discrete(i64),
    Continuous(Vec<f32>),
}

impl Sampled {
    fn action(&self) -> Action<'_> {
        match self {
            Sampled::Discrete(a) => Action::Discrete(*a),
            Sampled::Continuous(x) => Action::Continuous(x),
        }
    }
}

impl fmt::Display for Sampled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sampled::Discrete(a) => write!(f, "{a}"),
            Sampled::Continuous(x) => write!(f, "{x:?}"),
        }
    }
}

fn sample(space: &Space, rng: &mut StdRng) -> Result<Sampled> {
    match space {
        Space::Discrete { .. } => space
            .sample_discrete(rng)
            .map(Sampled::Discrete)
            .ok_or_else(|| fail("step", format!("cannot sample an action from {space}"))),
        Space::Box(b) => {
            let mut x = vec![0.0; b.flat_dim()];
            b.sample_into(rng, &mut x);
            Ok(Sampled::Continuous(x))
        }
    }
}

/// The first component of `obs` outside `space`, with its value.
fn outside(space: &Space, obs: &[f32]) -> Option<(usize, f32)> {
    match space {
        Space::Discrete { .. } => {
            let v = obs.first().copied()?;
            let integral = v.fract() == 0.0 && v.abs() < 9.0e15;
            (!(integral && space.contains_discrete(v as i64))).then_some((0, v))
        }
        Space::Box(b) => obs
            .iter()
            .zip(b.low().iter().zip(b.high()))
            .position(|(v, (lo, hi))| !(*v >= *lo && *v <= *hi))
            .map(|i| (i, obs[i])),
    }
}

/// The largest absolute difference, and whether every pair is within NumPy's `allclose`
/// tolerances (`rtol = atol = 1e-5`, as Gymnasium's `data_equivalence`).
fn closeness(a: &[f64], b: &[f64]) -> (f64, bool) {
    let mut max = 0.0f64;
    let mut close = a.len() == b.len();
    for (x, y) in a.iter().zip(b) {
        let d = (x - y).abs();
        // NaN differences are not close either.
        if d.is_nan() || d > 1e-5 + 1e-5 * y.abs() {
            close = false;
        }
        if d > max || d.is_nan() {
            max = d;
        }
    }
    (max, close)
}

fn widen(x: &[f32]) -> Vec<f64> {
    x.iter().map(|&v| f64::from(v)).collect()
}

fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

struct Checker {
    report: CheckReport,
    out_of_bounds: Option<CheckWarning>,
}

/// One step of a replayed trajectory.
struct Transition {
    obs: Vec<f32>,
    reward: f64,
    terminated: bool,
    truncated: bool,
}

impl Checker {
    fn warn(&mut self, w: CheckWarning) {
        self.report.warnings.push(w);
    }

    /// Checks an observation just returned by `call`: finite (else an error) and inside the
    /// space (else an error after a reset, as Gymnasium asserts, and a counted warning after a
    /// step, as Gymnasium warns).
    fn observation(
        &mut self,
        check: &'static str,
        space: &Space,
        call: impl Fn() -> String,
        obs: &[f32],
        from_reset: bool,
    ) -> Result<()> {
        if let Some(i) = obs.iter().position(|v| !v.is_finite()) {
            return Err(fail(
                check,
                format!(
                    "{} returned an observation whose component {i} is {} (not written, or not a finite number)",
                    call(),
                    obs[i]
                ),
            ));
        }
        if let Some((index, value)) = outside(space, obs) {
            if from_reset {
                return Err(fail(
                    check,
                    format!(
                        "the observation returned by {} is not within the observation space \
                         {space} (component {index} is {value})",
                        call()
                    ),
                ));
            }
            match &mut self.out_of_bounds {
                Some(CheckWarning::ObservationOutOfBounds { count, .. }) => *count += 1,
                _ => {
                    self.out_of_bounds = Some(CheckWarning::ObservationOutOfBounds {
                        call: call(),
                        index,
                        value,
                        count: 1,
                    })
                }
            }
        }
        Ok(())
    }

    fn spaces<E: Env + ?Sized>(&mut self, env: &E) -> Result<()> {
        for (role, space) in [
            ("observation", env.observation_space()),
            ("action", env.action_space()),
        ] {
            match space {
                Space::Discrete { n: 0, .. } => {
                    return Err(fail(
                        "spaces",
                        format!("the {role} space {space} is empty (Discrete needs n >= 1)"),
                    ))
                }
                Space::Discrete { n, start } => {
                    if i64::try_from(i128::from(*start) + i128::from(*n) - 1).is_err() {
                        return Err(fail(
                            "spaces",
                            format!(
                                "the {role} space {space} has values that do not fit in an i64"
                            ),
                        ));
                    }
                }
                Space::Box(b) => {
                    if b.flat_dim() == 0 {
                        return Err(fail(
                            "spaces",
                            format!("the {role} space {space} has no elements"),
                        ));
                    }
                    if b.low().iter().any(|v| v.is_infinite()) {
                        self.warn(CheckWarning::InfiniteBound {
                            space: role,
                            low: true,
                        });
                    }
                    if b.high().iter().any(|v| v.is_infinite()) {
                        self.warn(CheckWarning::InfiniteBound {
                            space: role,
                            low: false,
                        });
                    }
                    if let Some(index) = b.low().iter().zip(b.high()).position(|(l, h)| l == h) {
                        self.warn(CheckWarning::EqualBounds { space: role, index });
                    }
                    // Gymnasium's test for vector boxes: low != 0 and |low| != |high|, or
                    // outside [-1, 1].
                    let unnormalized =
                        b.low().iter().zip(b.high()).any(|(&l, &h)| {
                            (l != 0.0 && l.abs() != h.abs()) || l < -1.0 || h > 1.0
                        });
                    if role == "action" && b.shape().len() == 1 && unnormalized {
                        self.warn(CheckWarning::UnnormalizedActionSpace {
                            space: space.to_string(),
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// A fresh environment must refuse a step before its first reset.
    fn reset_before_step<E: Env + ?Sized>(
        &mut self,
        env: &mut E,
        options: &CheckOptions,
    ) -> Result<()> {
        const CHECK: &str = "reset before step";
        let action = sample(
            &env.action_space().clone(),
            &mut StdRng::seed_from_u64(options.seed),
        )?;
        let mut obs = vec![0.0f32; env.observation_space().flat_dim()];
        match guarded(|| env.step_into(action.action(), &mut obs)) {
            Ok(Err(EnvError::NeedsReset(_))) => Ok(()),
            Ok(Ok(_)) => Err(fail(
                CHECK,
                format!(
                    "step (action {action}) before the first reset succeeded; it must return \
                     EnvError::NeedsReset (when the environment was already reset on purpose, \
                     set CheckOptions::fresh to false)"
                ),
            )),
            Ok(Err(e)) => Err(fail(
                CHECK,
                format!(
                    "step (action {action}) before the first reset returned \"{e}\" instead of \
                     EnvError::NeedsReset"
                ),
            )),
            Err(p) => Err(fail(
                CHECK,
                format!("step (action {action}) before the first reset panicked: {p}"),
            )),
        }
    }

    /// A reset into a buffer pre-filled with NaN (so unwritten components show), whose info
    /// must not report a finished episode.
    fn reset_obs<E: Env + ?Sized>(
        &mut self,
        env: &mut E,
        check: &'static str,
        seed: Option<u64>,
    ) -> Result<Vec<f32>> {
        let space = env.observation_space().clone();
        let mut obs = vec![f32::NAN; space.flat_dim()];
        let call = || match seed {
            Some(s) => format!("reset(seed={s})"),
            None => "reset()".to_string(),
        };
        let seed_value = seed.map(Seed::from);
        let info = must(check, call, || {
            env.reset_into(seed_value.as_ref(), &mut obs)
        })?;
        self.observation(check, &space, call, &obs, true)?;
        if info.episode.is_some() {
            return Err(fail(
                check,
                format!(
                    "{} set info.episode; only the last step of an episode reports it",
                    call()
                ),
            ));
        }
        Ok(obs)
    }

    fn reset<E: Env + ?Sized>(&mut self, env: &mut E, options: &CheckOptions) -> Result<()> {
        self.reset_obs(env, "reset", Some(options.seed))?;
        self.reset_obs(env, "reset", None)?;
        Ok(())
    }

    fn reset_determinism<E: Env + ?Sized>(
        &mut self,
        env: &mut E,
        options: &CheckOptions,
    ) -> Result<()> {
        const CHECK: &str = "reset determinism";
        let s = options.seed;
        let obs1 = self.reset_obs(env, CHECK, Some(s))?;
        let obs2 = self.reset_obs(env, CHECK, None)?;
        let obs3 = self.reset_obs(env, CHECK, Some(s))?;
        let obs4 = self.reset_obs(env, CHECK, None)?;
        for (a, b, what) in [
            (&obs1, &obs3, "observations of reset(seed) twice"),
            (
                &obs2,
                &obs4,
                "observations of reset() after reset(seed) twice",
            ),
        ] {
            if same_bits(a, b) {
                continue;
            }
            let (max_abs_diff, close) = closeness(&widen(a), &widen(b));
            if !close {
                return Err(fail(
                    CHECK,
                    format!(
                        "{what} differ: {a:?} then {b:?} (seed {s}); the reset must draw its \
                         randomness only from the generator the seed creates"
                    ),
                ));
            }
            self.warn(CheckWarning::NotExactlyReproducible { what, max_abs_diff });
        }
        let seeds = [s, s.wrapping_add(333), s.wrapping_add(666)];
        let obs_b = self.reset_obs(env, CHECK, Some(seeds[1]))?;
        let obs_c = self.reset_obs(env, CHECK, Some(seeds[2]))?;
        if same_bits(&obs1, &obs_b) && same_bits(&obs1, &obs_c) {
            self.warn(CheckWarning::SeedsGiveSameObservation { seeds });
        }
        Ok(())
    }

    fn steps<E: Env + ?Sized>(&mut self, env: &mut E, options: &CheckOptions) -> Result<()> {
        const CHECK: &str = "step";
        let space = env.observation_space().clone();
        let action_space = env.action_space().clone();
        let mut rng = StdRng::seed_from_u64(options.seed);
        let mut obs = vec![f32::NAN; space.flat_dim()];
        self.reset_obs(env, CHECK, Some(options.seed))?;
        let mut t_in_episode = 0u64;
        for t in 1..=options.max_steps {
            let action = sample(&action_space, &mut rng)?;
            obs.fill(f32::NAN);
            let call = || format!("step {t} (action {action}, sampled from {action_space})");
            let out: StepOutcome = must(CHECK, call, || env.step_into(action.action(), &mut obs))?;
            self.report.steps = t;
            t_in_episode += 1;
            self.observation(CHECK, &space, call, &obs, false)?;
            if !out.reward.is_finite() {
                return Err(fail(
                    CHECK,
                    format!("{} returned the reward {}", call(), out.reward),
                ));
            }
            if !out.done() {
                if out.info.episode.is_some() {
                    return Err(fail(
                        CHECK,
                        format!("{} set info.episode but did not end the episode", call()),
                    ));
                }
                continue;
            }
            self.report.episodes += 1;
            let flags = format!("terminated={}, truncated={}", out.terminated, out.truncated);
            // The contract: no step until the next reset.
            let again = sample(&action_space, &mut rng)?;
            match guarded(|| env.step_into(again.action(), &mut obs)) {
                Ok(Err(EnvError::NeedsReset(_))) => {}
                Ok(Ok(_)) => {
                    return Err(fail(
                        CHECK,
                        format!(
                            "step {t} ended the episode ({flags}, after {t_in_episode} steps) \
                             but the next step without reset succeeded; it must return \
                             EnvError::NeedsReset"
                        ),
                    ))
                }
                Ok(Err(e)) => {
                    return Err(fail(
                        CHECK,
                        format!(
                            "stepping after the end of an episode ({flags}) returned \"{e}\" \
                             instead of EnvError::NeedsReset"
                        ),
                    ))
                }
                Err(p) => {
                    return Err(fail(
                        CHECK,
                        format!("stepping after the end of an episode ({flags}) panicked: {p}"),
                    ))
                }
            }
            self.reset_obs(env, CHECK, None)?;
            t_in_episode = 0;
        }
        if self.report.episodes == 0 {
            self.warn(CheckWarning::NoEpisodeEnded {
                steps: self.report.steps,
            });
        }
        Ok(())
    }

    /// `reset(seed)`, then up to `determinism_steps` actions drawn from a sampler seeded with
    /// the same seed, stopping at the end of the episode.
    fn trajectory<E: Env + ?Sized>(
        &mut self,
        env: &mut E,
        options: &CheckOptions,
    ) -> Result<(Vec<f32>, Vec<Transition>)> {
        const CHECK: &str = "step determinism";
        let action_space = env.action_space().clone();
        let mut rng = StdRng::seed_from_u64(options.seed);
        let first = self.reset_obs(env, CHECK, Some(options.seed))?;
        let mut steps = Vec::new();
        let mut obs = first.clone();
        for t in 1..=options.determinism_steps.max(1) {
            let action = sample(&action_space, &mut rng)?;
            let call = || {
                format!(
                    "step {t} (action {action}) after reset(seed={})",
                    options.seed
                )
            };
            let out = must(CHECK, call, || env.step_into(action.action(), &mut obs))?;
            steps.push(Transition {
                obs: obs.clone(),
                reward: out.reward,
                terminated: out.terminated,
                truncated: out.truncated,
            });
            if out.done() {
                break;
            }
        }
        Ok((first, steps))
    }

    /// Two replays of the same seeded episode with the same actions must agree step by step:
    /// Gymnasium compares one step, this compares up to `determinism_steps`.
    fn step_determinism<E: Env + ?Sized>(
        &mut self,
        env: &mut E,
        options: &CheckOptions,
    ) -> Result<()> {
        const CHECK: &str = "step determinism";
        let (_, run0) = self.trajectory(env, options)?;
        let (_, run1) = self.trajectory(env, options)?;
        if run0.first().is_some_and(|s| s.truncated) || run1.first().is_some_and(|s| s.truncated) {
            return Err(fail(
                CHECK,
                "the episode was truncated after one step; something has gone very wrong"
                    .to_string(),
            ));
        }
        let mut obs_diff: Option<f64> = None;
        let mut reward_diff: Option<f64> = None;
        for (i, (a, b)) in run0.iter().zip(&run1).enumerate() {
            let t = i + 1;
            if (a.terminated, a.truncated) != (b.terminated, b.truncated) {
                return Err(fail(
                    CHECK,
                    format!(
                        "step {t} of the same seed and actions gave (terminated, truncated) = \
                         {:?} then {:?}",
                        (a.terminated, a.truncated),
                        (b.terminated, b.truncated)
                    ),
                ));
            }
            if !same_bits(&a.obs, &b.obs) {
                let (d, close) = closeness(&widen(&a.obs), &widen(&b.obs));
                if !close {
                    return Err(fail(
                        CHECK,
                        format!(
                            "step {t} observations for the same seed and actions differ: {:?} \
                             then {:?}",
                            a.obs, b.obs
                        ),
                    ));
                }
                obs_diff = Some(obs_diff.map_or(d, |m| m.max(d)));
            }
            if a.reward.to_bits() != b.reward.to_bits() {
                let (d, close) = closeness(&[a.reward], &[b.reward]);
                if !close {
                    return Err(fail(
                        CHECK,
                        format!(
                            "step {t} rewards for the same seed and actions differ: {} then {}",
                            a.reward, b.reward
                        ),
                    ));
                }
                reward_diff = Some(reward_diff.map_or(d, |m| m.max(d)));
            }
        }
        if run0.len() != run1.len() {
            return Err(fail(
                CHECK,
                format!(
                    "the same seed and actions gave episodes of {} then {} steps",
                    run0.len(),
                    run1.len()
                ),
            ));
        }
        for (diff, what) in [
            (obs_diff, "step observations for the same seed and actions"),
            (reward_diff, "step rewards for the same seed and actions"),
        ] {
            if let Some(max_abs_diff) = diff {
                self.warn(CheckWarning::NotExactlyReproducible { what, max_abs_diff });
            }
        }
        Ok(())
    }

    /// Buffers one element too long and too short must be refused, not used.
    fn buffer_lengths<E: Env + ?Sized>(
        &mut self,
        env: &mut E,
        options: &CheckOptions,
    ) -> Result<()> {
        let expected = env.observation_space().flat_dim();
        let action = sample(
            &env.action_space().clone(),
            &mut StdRng::seed_from_u64(options.seed),
        )?;
        for len in [expected + 1, expected - 1] {
            let mut wrong = vec![0.0f32; len];
            for call in ["reset_into", "step_into"] {
                // A valid episode first, so a refusal can only be about the buffer.
                self.reset_obs(env, "buffer length", Some(options.seed))?;
                let result = guarded(|| match call {
                    "reset_into" => env.reset_into(None, &mut wrong).map(|_| ()),
                    _ => env.step_into(action.action(), &mut wrong).map(|_| ()),
                });
                let panicked = match result {
                    // Refused (for the buffer, or for another reason): fine.
                    Ok(Err(_)) => continue,
                    Ok(Ok(())) => false,
                    Err(_) => true,
                };
                self.warn(CheckWarning::BufferLengthUnchecked {
                    call,
                    len,
                    expected,
                    panicked,
                });
            }
        }
        Ok(())
    }
}

/// Checks the optional [`Render`] side of an environment: after `reset(seed)` and after a
/// step, the frame has the declared [`Render::render_size`], holds only colors of
/// [`Render::palette`] (which palette-based encoders rely on), and `render_fps` is positive.
/// Errors are [`EnvError::CheckFailed`] with the check `"render"`; panics are caught.
pub fn check_render<E: Env + Render + ?Sized>(env: &mut E, seed: u64) -> Result<()> {
    const CHECK: &str = "render";
    if env.render_fps() == 0 {
        return Err(fail(CHECK, "render_fps is 0".to_string()));
    }
    let mut obs = vec![0.0f32; env.observation_space().flat_dim()];
    let seed_value = Seed::from(seed);
    must(
        CHECK,
        || format!("reset(seed={seed})"),
        || env.reset_into(Some(&seed_value), &mut obs),
    )?;
    let action = sample(
        &env.action_space().clone(),
        &mut StdRng::seed_from_u64(seed),
    )?;
    let mut frame = Frame::default();
    for when in ["after reset", "after a step"] {
        if when == "after a step" {
            must(
                CHECK,
                || format!("step (action {action})"),
                || env.step_into(action.action(), &mut obs),
            )?;
        }
        must(
            CHECK,
            || format!("render_rgb {when}"),
            || env.render_rgb(&mut frame),
        )?;
        let (w, h) = env.render_size();
        if (frame.width(), frame.height()) != (w, h) {
            return Err(fail(
                CHECK,
                format!(
                    "the frame rendered {when} is {} x {} but render_size is {w} x {h}",
                    frame.width(),
                    frame.height()
                ),
            ));
        }
        let palette = env.palette();
        if let Some((i, px)) = frame
            .data()
            .chunks_exact(3)
            .enumerate()
            .find(|(_, px)| !palette.iter().any(|c| c[..] == px[..]))
        {
            return Err(fail(
                CHECK,
                format!(
                    "the frame rendered {when} has the color {px:?} at pixel ({}, {}), which \
                     is not in the palette",
                    i % w.max(1),
                    i / w.max(1)
                ),
            ));
        }
    }
    Ok(())
}
