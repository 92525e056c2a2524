//! `check_env` on every built-in environment (and their renderers), and on a small user
//! environment broken in one way per check: each must fail with the check named and a message
//! that says what went wrong, or report the matching warning.

use rl_env::classic_control::{Acrobot, CartPole, MountainCar, MountainCarContinuous};
use rl_env::render::Frame;
use rl_env::seeding::{NpRandom, Seed};
use rl_env::wrappers::{RecordEpisodeStatistics, TimeLimit};
use rl_env::{
    check_env, check_env_with, check_obs_buffer, check_render, make, registered_ids, Action,
    CheckOptions, CheckWarning, Env, EnvError, EpisodeStats, Info, Render, Space, StepOutcome,
};

#[test]
fn every_built_in_env_passes() {
    let ids = registered_ids();
    assert!(ids.len() >= 5, "registered ids: {ids:?}");
    for id in ids {
        let mut env = make(id).unwrap();
        let report = check_env(&mut *env).unwrap_or_else(|e| panic!("{id}: {e}"));
        println!("{id}: {report}");
        assert!(report.steps > 0, "{id}");
        // Every built-in episode ends within 1000 random steps (time limits of 200/500).
        assert!(report.episodes >= 1, "{id}: {report}");
        assert!(
            !report.warnings.iter().any(|w| matches!(
                w,
                CheckWarning::NotExactlyReproducible { .. }
                    | CheckWarning::ObservationOutOfBounds { .. }
                    | CheckWarning::SeedsGiveSameObservation { .. }
                    | CheckWarning::BufferLengthUnchecked { .. }
                    | CheckWarning::NoEpisodeEnded { .. }
            )),
            "{id}: {report}"
        );
    }
}

#[test]
fn gymnasium_space_warnings_on_built_in_envs() {
    // CartPole's velocities are unbounded; Pendulum's torque is in [-2, 2]: Gymnasium warns
    // about both.
    let report = check_env(&mut *make("CartPole-v1").unwrap()).unwrap();
    assert!(report.warnings.contains(&CheckWarning::InfiniteBound {
        space: "observation",
        low: true
    }));
    let report = check_env(&mut *make("Pendulum-v1").unwrap()).unwrap();
    assert!(
        report
            .warnings
            .iter()
            .any(|w| matches!(w, CheckWarning::UnnormalizedActionSpace { .. })),
        "{report}"
    );
    let report = check_env(&mut *make("MountainCarContinuous-v0").unwrap()).unwrap();
    assert!(
        !report
            .warnings
            .iter()
            .any(|w| matches!(w, CheckWarning::UnnormalizedActionSpace { .. })),
        "{report}"
    );
}

#[test]
fn wrapped_built_in_envs_pass() {
    let mut env = RecordEpisodeStatistics::new(TimeLimit::new(CartPole::new(), 500).unwrap());
    let report = check_env(&mut env).unwrap();
    assert!(report.episodes >= 1);
}

#[test]
fn an_already_reset_env_needs_fresh_false() {
    let mut env = make("Acrobot-v1").unwrap();
    env.reset(Some(0)).unwrap();
    let err = check_env(&mut *env).unwrap_err();
    assert_check(&err, "reset before step", "CheckOptions::fresh");
    let options = CheckOptions {
        fresh: false,
        ..CheckOptions::default()
    };
    check_env_with(&mut *env, &options).unwrap();
}

#[test]
fn renderers_pass() {
    check_render(&mut CartPole::new(), 3).unwrap();
    check_render(&mut Acrobot::new(), 3).unwrap();
    check_render(&mut MountainCar::new(), 3).unwrap();
    check_render(&mut MountainCarContinuous::new(), 3).unwrap();
    check_render(&mut TimeLimit::new(CartPole::new(), 5).unwrap(), 3).unwrap();
}

/// The ways [`Toy`] can be broken, one per check.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    None,
    EmptyActionSpace,
    StepBeforeReset,
    ResetPanics,
    ResetLeavesComponent,
    ResetOutOfBounds,
    ResetReportsEpisode,
    ResetIgnoresSeed,
    UnseededResetNotFromSeed,
    StepErrors,
    NanReward,
    InfiniteObservation,
    EpisodeInfoMidEpisode,
    StepAfterEnd,
    StepAfterEndWrongError,
    StepNotDeterministic,
    StepSlightlyNondeterministic,
    TruncatesAtOnce,
    StepOutOfBounds,
    BufferUnchecked,
    SeedUnused,
    NeverEnds,
    RenderWrongSize,
    RenderOffPalette,
}

/// A 2-d position in `[0, 10]^2` that drifts with actions 0/1/2; terminates after 8 steps.
struct Toy {
    fault: Fault,
    obs_space: Space,
    act_space: Space,
    rng: Option<NpRandom>,
    pos: [f32; 2],
    t: u32,
    needs_reset: bool,
    /// Survives resets: the source of the nondeterministic faults.
    calls: u64,
}

impl Toy {
    fn new(fault: Fault) -> Self {
        Toy {
            fault,
            obs_space: Space::boxed(vec![0.0; 2], vec![10.0; 2], vec![2]).unwrap(),
            act_space: if fault == Fault::EmptyActionSpace {
                Space::Discrete { n: 0, start: 0 }
            } else {
                Space::discrete(3)
            },
            rng: None,
            pos: [0.0; 2],
            t: 0,
            needs_reset: true,
            calls: 0,
        }
    }
}

impl Env for Toy {
    fn observation_space(&self) -> &Space {
        &self.obs_space
    }
    fn action_space(&self) -> &Space {
        &self.act_space
    }
    fn reset_into(&mut self, seed: Option<&Seed>, obs: &mut [f32]) -> rl_env::Result<Info> {
        self.calls += 1;
        if self.fault != Fault::BufferUnchecked {
            check_obs_buffer(&self.obs_space, obs)?;
        }
        match self.fault {
            Fault::ResetPanics => panic!("the reset is broken"),
            Fault::ResetIgnoresSeed => {
                self.rng = Some(NpRandom::from_seed(&Seed::from(self.calls)));
            }
            _ => {
                if let Some(seed) = seed {
                    self.rng = Some(NpRandom::from_seed(seed));
                }
            }
        }
        if self.fault == Fault::UnseededResetNotFromSeed && seed.is_none() {
            self.rng = Some(NpRandom::from_os_entropy());
        }
        let rng = self.rng.get_or_insert_with(NpRandom::from_os_entropy);
        self.pos = [rng.uniform(2.0, 8.0) as f32, rng.uniform(2.0, 8.0) as f32];
        if self.fault == Fault::SeedUnused {
            self.pos = [5.0, 5.0];
        }
        self.t = 0;
        self.needs_reset = false;
        // Panics on a short buffer when the length check is skipped (BufferUnchecked).
        obs[..2].copy_from_slice(&self.pos);
        match self.fault {
            Fault::ResetLeavesComponent => obs[1] = f32::NAN,
            Fault::ResetOutOfBounds => obs[0] = 11.0,
            _ => {}
        }
        let mut info = Info::default();
        if self.fault == Fault::ResetReportsEpisode {
            info.episode = Some(EpisodeStats {
                r#return: 0.0,
                length: 0,
                time_s: 0.0,
            });
        }
        Ok(info)
    }
    fn step_into(&mut self, action: Action<'_>, obs: &mut [f32]) -> rl_env::Result<StepOutcome> {
        self.calls += 1;
        if self.fault != Fault::BufferUnchecked {
            check_obs_buffer(&self.obs_space, obs)?;
        }
        self.act_space.check_action(action)?;
        let refuse = match self.fault {
            Fault::StepBeforeReset => self.needs_reset && self.rng.is_some(),
            Fault::StepAfterEnd => self.rng.is_none(),
            _ => self.needs_reset,
        };
        if refuse {
            return Err(
                if self.fault == Fault::StepAfterEndWrongError && self.rng.is_some() {
                    EnvError::Other("episode over".into())
                } else {
                    EnvError::NeedsReset("Toy episode over")
                },
            );
        }
        if self.fault == Fault::StepErrors {
            return Err(EnvError::Other("the physics diverged".into()));
        }
        let Action::Discrete(a) = action else {
            unreachable!("checked above")
        };
        self.pos[(a as usize) % 2] += if a == 2 { -0.5 } else { 0.5 };
        self.pos = self.pos.map(|x| x.clamp(0.0, 10.0));
        if self.fault == Fault::StepNotDeterministic {
            self.pos[0] = (self.calls % 10) as f32;
        }
        self.t += 1;
        let terminated = self.t >= 8 && self.fault != Fault::NeverEnds;
        let truncated = self.fault == Fault::TruncatesAtOnce;
        self.needs_reset = terminated || truncated;
        // Panics on a short buffer when the length check is skipped (BufferUnchecked).
        obs[..2].copy_from_slice(&self.pos);
        let mut reward = f64::from(self.pos[0]);
        match self.fault {
            Fault::NanReward => reward = f64::NAN,
            Fault::InfiniteObservation => obs[1] = f32::INFINITY,
            Fault::StepOutOfBounds => obs[1] = -1.0,
            Fault::StepSlightlyNondeterministic => reward += 1e-9 * (self.calls % 7) as f64,
            _ => {}
        }
        let mut info = Info::default();
        if self.fault == Fault::EpisodeInfoMidEpisode {
            info.episode = Some(EpisodeStats {
                r#return: 0.0,
                length: 1,
                time_s: 0.0,
            });
        }
        Ok(StepOutcome {
            reward,
            terminated,
            truncated,
            info,
        })
    }
}

const PALETTE: &[[u8; 3]] = &[[255, 255, 255], [0, 0, 0]];

impl Render for Toy {
    fn render_size(&self) -> (usize, usize) {
        (20, 10)
    }
    fn render_fps(&self) -> u32 {
        30
    }
    fn palette(&self) -> &'static [[u8; 3]] {
        PALETTE
    }
    fn render_rgb(&self, frame: &mut Frame) -> rl_env::Result<()> {
        let (w, h) = if self.fault == Fault::RenderWrongSize {
            (10, 10)
        } else {
            (20, 10)
        };
        frame.resize(w, h)?;
        frame.fill([255, 255, 255]);
        let color = if self.fault == Fault::RenderOffPalette {
            [1, 2, 3]
        } else {
            [0, 0, 0]
        };
        frame.fill_rect(0, 0, self.pos[0] as i64, 2, color);
        Ok(())
    }
}

#[track_caller]
fn assert_check(err: &EnvError, check: &str, needle: &str) {
    match err {
        EnvError::CheckFailed { check: c, message } => {
            assert_eq!(*c, check, "{err}");
            assert!(message.contains(needle), "{needle:?} not in: {err}");
        }
        other => panic!("expected CheckFailed({check}), got {other:?}"),
    }
}

#[track_caller]
fn fails(fault: Fault, check: &str, needle: &str) {
    let err = check_env(&mut Toy::new(fault)).unwrap_err();
    println!("{fault:?}: {err}");
    assert_check(&err, check, needle);
}

#[track_caller]
fn warns(fault: Fault, is: impl Fn(&CheckWarning) -> bool) {
    let report = check_env(&mut Toy::new(fault)).unwrap_or_else(|e| panic!("{fault:?}: {e}"));
    println!("{fault:?}: {report}");
    assert!(report.warnings.iter().any(is), "{fault:?}: {report}");
}

#[test]
fn a_correct_user_env_passes_without_warnings() {
    let report = check_env(&mut Toy::new(Fault::None)).unwrap();
    assert_eq!(report.warnings, vec![], "{report}");
    assert_eq!(report.steps, 1000);
    assert_eq!(report.episodes, 125);
    check_render(&mut Toy::new(Fault::None), 0).unwrap();
}

#[test]
fn each_broken_env_fails_the_check_it_breaks() {
    fails(Fault::EmptyActionSpace, "spaces", "is empty");
    fails(Fault::StepBeforeReset, "reset before step", "succeeded");
    fails(Fault::ResetPanics, "reset", "panicked: the reset is broken");
    fails(Fault::ResetLeavesComponent, "reset", "component 1 is NaN");
    fails(
        Fault::ResetOutOfBounds,
        "reset",
        "not within the observation space",
    );
    fails(Fault::ResetReportsEpisode, "reset", "info.episode");
    fails(
        Fault::ResetIgnoresSeed,
        "reset determinism",
        "reset(seed) twice",
    );
    fails(
        Fault::UnseededResetNotFromSeed,
        "reset determinism",
        "reset() after reset(seed) twice",
    );
    fails(Fault::StepErrors, "step", "the physics diverged");
    fails(Fault::NanReward, "step", "reward NaN");
    fails(Fault::InfiniteObservation, "step", "component 1 is inf");
    fails(
        Fault::EpisodeInfoMidEpisode,
        "step",
        "did not end the episode",
    );
    fails(
        Fault::StepAfterEnd,
        "step",
        "must return EnvError::NeedsReset",
    );
    fails(Fault::StepAfterEndWrongError, "step", "\"episode over\"");
    fails(
        Fault::StepNotDeterministic,
        "step determinism",
        "observations",
    );
    fails(
        Fault::TruncatesAtOnce,
        "step determinism",
        "truncated after one step",
    );
}

#[test]
fn soft_problems_are_warnings() {
    warns(
        Fault::StepOutOfBounds,
        |w| matches!(w, CheckWarning::ObservationOutOfBounds { index: 1, count, .. } if *count == 1000),
    );
    for (len, panicked) in [(3, false), (1, true)] {
        warns(Fault::BufferUnchecked, |w| {
            *w == CheckWarning::BufferLengthUnchecked {
                call: "step_into",
                len,
                expected: 2,
                panicked,
            }
        });
    }
    warns(Fault::SeedUnused, |w| {
        matches!(w, CheckWarning::SeedsGiveSameObservation { .. })
    });
    warns(Fault::NeverEnds, |w| {
        matches!(w, CheckWarning::NoEpisodeEnded { steps: 1000 })
    });
    warns(
        Fault::StepSlightlyNondeterministic,
        |w| matches!(w, CheckWarning::NotExactlyReproducible { what, .. } if what.contains("rewards")),
    );
}

#[test]
fn broken_renderers_fail() {
    let err = check_render(&mut Toy::new(Fault::RenderWrongSize), 0).unwrap_err();
    assert_check(&err, "render", "render_size is 20 x 10");
    let err = check_render(&mut Toy::new(Fault::RenderOffPalette), 0).unwrap_err();
    assert_check(&err, "render", "not in the palette");
}

#[test]
fn options_bound_the_work() {
    let options = CheckOptions {
        max_steps: 3,
        determinism_steps: 1,
        ..CheckOptions::default()
    };
    let report = check_env_with(&mut Toy::new(Fault::None), &options).unwrap();
    assert_eq!((report.steps, report.episodes), (3, 0));
    assert!(report
        .warnings
        .contains(&CheckWarning::NoEpisodeEnded { steps: 3 }));
    // The report prints its warnings, one per line.
    assert!(report
        .to_string()
        .contains("\n- no episode ended within 3 steps"));
}
