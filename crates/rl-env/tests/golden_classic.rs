//! Bit-level parity of the classic-control environments with Gymnasium 1.4 (NumPy 2.4).
//!
//! The golden files (see `tests/golden/README.md`) are found through `rl-golden`, told apart by
//! content, and every parameter (env id, time limit, seeds, actions) is read from them.
//! Observations are compared as f32 bits, rewards and internal states as f64 bits. Mismatches
//! are counted over the whole file and the first few are printed, so one run shows how far a
//! port is off rather than only its first difference.

use rl_env::classic_control::{Acrobot, CartPole, MountainCar, MountainCarContinuous, Pendulum};
use rl_env::seeding::{NpRandom, Pcg64, SeedSequence};
use rl_env::wrappers::TimeLimit;
use rl_env::{
    make, make_with, registered_ids, Action, Env, EnvError, EnvSpec, Seed, Space, StepOutcome,
};
use rl_golden::{decimal, f32s, f64_of, f64s, files, name};
use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// Concrete environments with their internal state.

/// An environment whose internal f64 state the tests read and overwrite.
trait Stateful: Env {
    fn state_vec(&self) -> Vec<f64>;
    /// Sets the state; `dtype` is the NumPy dtype Gymnasium's state had ("float32", ...).
    fn set_state_vec(&mut self, state: &[f64], dtype: &str);
}

fn array<const N: usize>(state: &[f64]) -> [f64; N] {
    state
        .try_into()
        .unwrap_or_else(|_| panic!("state {state:?} should have {N} values"))
}

macro_rules! stateful {
    ($t:ty, $n:literal) => {
        impl Stateful for $t {
            fn state_vec(&self) -> Vec<f64> {
                self.state().to_vec()
            }
            fn set_state_vec(&mut self, state: &[f64], _dtype: &str) {
                self.set_state(array::<$n>(state));
            }
        }
    };
}

stateful!(CartPole, 4);
stateful!(Acrobot, 4);
stateful!(MountainCar, 2);
stateful!(Pendulum, 2);

impl Stateful for MountainCarContinuous {
    fn state_vec(&self) -> Vec<f64> {
        self.state().to_vec()
    }
    fn set_state_vec(&mut self, state: &[f64], dtype: &str) {
        // The dtype decides whether the next step computes in float64 or float32.
        if dtype == "float32" {
            let s = array::<2>(state);
            assert!(
                s.iter().all(|&v| f64::from(v as f32) == v),
                "{s:?} is not float32"
            );
            self.set_state_f32(s.map(|v| v as f32));
        } else {
            self.set_state(array::<2>(state));
        }
    }
}

/// The unwrapped environment behind a Gymnasium id.
fn concrete(env_id: &str) -> Box<dyn Stateful> {
    match env_id {
        "CartPole-v1" => Box::new(CartPole::new()),
        "Acrobot-v1" => Box::new(Acrobot::new()),
        "MountainCar-v0" => Box::new(MountainCar::new()),
        "MountainCarContinuous-v0" => Box::new(MountainCarContinuous::new()),
        "Pendulum-v1" => Box::new(Pendulum::new()),
        other => panic!("no concrete environment for {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Comparison helpers.

/// Counts compared steps and mismatching ones, keeping the first few descriptions.
#[derive(Default)]
struct Tally {
    compared: usize,
    mismatches: usize,
    first: Vec<String>,
}

impl Tally {
    fn record(&mut self, context: impl FnOnce() -> String, problems: Vec<String>) {
        self.compared += 1;
        if !problems.is_empty() {
            self.mismatches += 1;
            if self.first.len() < 8 {
                self.first
                    .push(format!("{}: {}", context(), problems.join("; ")));
            }
        }
    }

    fn assert_clean(&self, what: &str) {
        for line in &self.first {
            eprintln!("  {line}");
        }
        assert_eq!(self.mismatches, 0, "{what}: {} mismatches", self.mismatches);
    }
}

fn bits_f32(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn bits_f64(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn check_obs(problems: &mut Vec<String>, who: &str, got: &[f32], want: &[f32]) {
    if bits_f32(got) != bits_f32(want) {
        problems.push(format!("{who} obs {got:?} != {want:?}"));
    }
}

fn check_state(problems: &mut Vec<String>, got: &[f64], want: &[f64]) {
    if bits_f64(got) != bits_f64(want) {
        problems.push(format!("state {got:?} != {want:?}"));
    }
}

/// Compares one step's observation, reward and flags with a golden step.
fn check_outcome(
    problems: &mut Vec<String>,
    who: &str,
    step: &Value,
    obs: &[f32],
    out: &StepOutcome,
    check_truncated: bool,
) {
    check_obs(problems, who, obs, &f32s(&step["obs"]));
    let reward = f64_of(&step["reward"]);
    if out.reward.to_bits() != reward.to_bits() {
        problems.push(format!("{who} reward {} != {reward}", out.reward));
    }
    let flag = |k: &str| {
        step[k]
            .as_bool()
            .unwrap_or_else(|| panic!("{k} is not a bool"))
    };
    if out.terminated != flag("terminated") {
        problems.push(format!("{who} terminated {}", out.terminated));
    }
    if check_truncated && out.truncated != flag("truncated") {
        problems.push(format!("{who} truncated {}", out.truncated));
    }
}

/// Steps `env` with a golden action, turning an error into a reported problem.
fn step_with(env: &mut dyn Env, action: &Value, obs: &mut [f32]) -> Result<StepOutcome, EnvError> {
    match action {
        Value::Array(_) => env.step_into(Action::Continuous(&f32s(action)), obs),
        v => {
            let a = v.as_i64().unwrap_or_else(|| panic!("bad action {v}"));
            env.step_into(Action::Discrete(a), obs)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Trajectory files.

fn is_trajectory_file(v: &Value) -> bool {
    v["episodes"].is_array()
}

/// `(a)`: `make_with(id)` and the concrete env under the same `TimeLimit`, reset by seed and
/// stepped in lockstep.
fn replay_seeded(env_id: &str, limit: u64, ep: &Value, tally: &mut Tally) {
    let spec = EnvSpec {
        max_episode_steps: Some(limit),
        ..EnvSpec::default()
    };
    let mut made = make_with(env_id, &spec).expect("registered id");
    let mut conc = TimeLimit::new(concrete(env_id), limit).expect("positive limit");
    let seed = Seed::from(ep["reset_seed"].as_u64().expect("reset_seed below 2**64"));
    let dim = made.observation_space().flat_dim();
    let (mut obs_m, mut obs_c) = (vec![0.0f32; dim], vec![0.0f32; dim]);
    let mut problems = Vec::new();
    made.reset_into(Some(&seed), &mut obs_m).expect("reset");
    conc.reset_into(Some(&seed), &mut obs_c).expect("reset");
    let want_obs = f32s(&ep["initial_observation"]);
    check_obs(&mut problems, "make()", &obs_m, &want_obs);
    check_obs(&mut problems, "concrete", &obs_c, &want_obs);
    check_state(
        &mut problems,
        &conc.inner().state_vec(),
        &f64s(&ep["initial_state"]),
    );
    tally.record(|| format!("seed {seed:?} reset"), problems);

    for (i, step) in steps(ep).iter().enumerate() {
        let mut problems = Vec::new();
        for (who, env, obs) in [
            ("make()", &mut made as &mut dyn Env, &mut obs_m),
            ("concrete", &mut conc as &mut dyn Env, &mut obs_c),
        ] {
            match step_with(env, &step["action"], obs) {
                Ok(out) => check_outcome(&mut problems, who, step, obs, &out, true),
                Err(e) => problems.push(format!("{who} error {e}")),
            }
        }
        check_state(
            &mut problems,
            &conc.inner().state_vec(),
            &f64s(&step["state"]),
        );
        tally.record(|| format!("seed {seed:?} step {i}"), problems);
    }
}

/// `(b)`: the concrete env set to the recorded initial state, then the whole episode.
fn replay_from_initial_state(env_id: &str, limit: u64, ep: &Value, tally: &mut Tally) {
    let mut env = TimeLimit::new(concrete(env_id), limit).expect("positive limit");
    let dim = env.observation_space().flat_dim();
    let mut obs = vec![0.0f32; dim];
    // As in Python: reset (any seed), then overwrite `env.unwrapped.state`.
    env.reset_into(None, &mut obs).expect("reset");
    let dtype = ep["initial_state_dtype"]
        .as_str()
        .expect("initial_state_dtype");
    env.inner_mut()
        .set_state_vec(&f64s(&ep["initial_state"]), dtype);
    for (i, step) in steps(ep).iter().enumerate() {
        let mut problems = Vec::new();
        match step_with(&mut env, &step["action"], &mut obs) {
            Ok(out) => check_outcome(&mut problems, "set_state", step, &obs, &out, true),
            Err(e) => problems.push(format!("error {e}")),
        }
        check_state(
            &mut problems,
            &env.inner().state_vec(),
            &f64s(&step["state"]),
        );
        tally.record(|| format!("from initial_state, step {i}"), problems);
    }
}

/// `(c)`: every step on its own, from the previous recorded state (with the state dtype that
/// Gymnasium has after a step), so a divergence is pinned to one step.
fn replay_one_step(env_id: &str, ep: &Value, tally: &mut Tally) {
    let dtype = ep["final_state_dtype"].as_str().expect("final_state_dtype");
    let mut env = concrete(env_id);
    let mut obs = vec![0.0f32; env.observation_space().flat_dim()];
    let steps = steps(ep);
    for (i, pair) in steps.windows(2).enumerate() {
        let (prev, step) = (&pair[0], &pair[1]);
        env.set_state_vec(&f64s(&prev["state"]), dtype);
        let mut problems = Vec::new();
        match step_with(&mut *env, &step["action"], &mut obs) {
            Ok(out) => check_outcome(&mut problems, "one-step", step, &obs, &out, false),
            Err(e) => problems.push(format!("error {e}")),
        }
        check_state(&mut problems, &env.state_vec(), &f64s(&step["state"]));
        tally.record(|| format!("one step from step {i}"), problems);
    }
}

fn steps(ep: &Value) -> &[Value] {
    ep["steps"].as_array().expect("steps list")
}

#[test]
fn trajectories_match_gymnasium_bit_for_bit() {
    for (path, file) in files("classic_control", "trajectory", is_trajectory_file) {
        let header = &file["header"];
        let env_id = header["env_id"].as_str().expect("env_id");
        let limit = header["max_episode_steps"]
            .as_u64()
            .expect("max_episode_steps");
        assert_eq!(
            rl_env::registry::max_episode_steps(env_id).expect("registered"),
            Some(limit),
            "{env_id}: registered time limit differs from Gymnasium's"
        );
        let episodes = file["episodes"].as_array().expect("episodes");
        assert!(!episodes.is_empty(), "{}: no episodes", name(&path));
        let mut modes = [
            ("seeded", Tally::default()),
            ("set_state", Tally::default()),
            ("one-step", Tally::default()),
        ];
        for ep in episodes {
            assert_eq!(
                steps(ep).len() as u64,
                ep["length"].as_u64().expect("length")
            );
            replay_seeded(env_id, limit, ep, &mut modes[0].1);
            replay_from_initial_state(env_id, limit, ep, &mut modes[1].1);
            replay_one_step(env_id, ep, &mut modes[2].1);
        }
        let compared: usize = modes.iter().map(|m| m.1.compared).sum();
        let mismatches: usize = modes.iter().map(|m| m.1.mismatches).sum();
        let detail: Vec<String> = modes
            .iter()
            .map(|(mode, t)| format!("{mode} {}/{}", t.mismatches, t.compared))
            .collect();
        println!(
            "{env_id}: {compared} steps compared, {mismatches} mismatches ({}; {} episodes)",
            detail.join(", "),
            episodes.len()
        );
        for (mode, t) in &modes {
            for line in &t.first {
                eprintln!("  {env_id} {mode}: {line}");
            }
        }
        assert_eq!(mismatches, 0, "{env_id} ({}): {detail:?}", name(&path));
    }
}

// ---------------------------------------------------------------------------------------------
// Spaces.

/// Parses Gymnasium's `Box(low, high, (shape,), float32)` repr into flat bounds and a shape.
fn parse_box_repr(repr: &str) -> (Vec<f32>, Vec<f32>, Vec<usize>) {
    let inner = repr
        .strip_prefix("Box(")
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or_else(|| panic!("not a Box repr: {repr}"));
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in inner.char_indices() {
        match c {
            '[' | '(' => depth += 1,
            ']' | ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(inner[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(inner[start..].trim());
    assert_eq!(parts.len(), 4, "unexpected Box repr {repr}");
    assert_eq!(parts[3], "float32", "{repr}");
    let numbers = |s: &str| -> Vec<f32> {
        s.trim_matches(|c| c == '[' || c == ']')
            .split_whitespace()
            .map(|t| t.parse::<f32>().unwrap_or_else(|e| panic!("{t}: {e}")))
            .collect()
    };
    let shape: Vec<usize> = parts[2]
        .trim_matches(|c| c == '(' || c == ')')
        .split(',')
        .filter(|t| !t.trim().is_empty())
        .map(|t| t.trim().parse().expect("shape"))
        .collect();
    let n: usize = shape.iter().product();
    let widen = |v: Vec<f32>| if v.len() == 1 { vec![v[0]; n] } else { v };
    (widen(numbers(parts[0])), widen(numbers(parts[1])), shape)
}

fn assert_space_matches(env_id: &str, space: &Space, repr: &str) {
    if repr.starts_with("Discrete(") {
        assert_eq!(space.to_string(), repr, "{env_id}");
        return;
    }
    let b = space
        .as_box()
        .unwrap_or_else(|| panic!("{env_id}: {space} is not {repr}"));
    let (low, high, shape) = parse_box_repr(repr);
    assert_eq!(b.shape(), shape.as_slice(), "{env_id} shape");
    assert_eq!(bits_f32(b.low()), bits_f32(&low), "{env_id} low of {repr}");
    assert_eq!(
        bits_f32(b.high()),
        bits_f32(&high),
        "{env_id} high of {repr}"
    );
}

#[test]
fn spaces_match_gymnasium() {
    for (_, file) in files("classic_control", "trajectory", is_trajectory_file) {
        let header = &file["header"];
        let env_id = header["env_id"].as_str().expect("env_id");
        let env = make(env_id).expect("registered");
        let repr = |k: &str| {
            header[k]
                .as_str()
                .unwrap_or_else(|| panic!("{k}"))
                .to_string()
        };
        assert_space_matches(env_id, env.observation_space(), &repr("observation_space"));
        assert_space_matches(env_id, env.action_space(), &repr("action_space"));
    }
}

// ---------------------------------------------------------------------------------------------
// Reset-by-seed table.

fn is_reset_table(v: &Value) -> bool {
    v["header"]["format"] == "reset_seeds/1"
}

fn check_reset(
    problems: &mut Vec<String>,
    env: &mut dyn Stateful,
    seed: Option<&Seed>,
    entry: &Value,
) {
    let mut obs = vec![0.0f32; env.observation_space().flat_dim()];
    match env.reset_into(seed, &mut obs) {
        Ok(_) => {
            check_obs(problems, "concrete", &obs, &f32s(&entry["obs"]));
            check_state(problems, &env.state_vec(), &f64s(&entry["state"]));
        }
        Err(e) => problems.push(format!("reset error {e}")),
    }
}

#[test]
fn seeded_resets_match_gymnasium() {
    for (path, file) in files("classic_control", "reset-by-seed table", is_reset_table) {
        let envs = file["envs"].as_object().expect("envs object");
        assert!(!envs.is_empty(), "{}: no envs", name(&path));
        for (env_id, table) in envs {
            let mut tally = Tally::default();
            let cases = table["cases"].as_array().expect("cases");
            assert!(!cases.is_empty(), "{env_id}: no cases");
            for case in cases {
                let text = decimal(&case["seed"]);
                let seed: Seed = text.parse().expect("decimal seed");
                let mut problems = Vec::new();
                let mut made = make(env_id).expect("registered");
                let mut obs = vec![0.0f32; made.observation_space().flat_dim()];
                made.reset_into(Some(&seed), &mut obs).expect("reset");
                check_obs(&mut problems, "make()", &obs, &f32s(&case["obs"]));
                check_reset(&mut problems, &mut *concrete(env_id), Some(&seed), case);
                tally.record(|| format!("{env_id} reset(seed={text})"), problems);
            }
            for followup in table["unseeded_followups"].as_array().expect("followups") {
                let seed_text = decimal(&followup["seed"]);
                let seed: Seed = seed_text.parse().expect("decimal seed");
                let mut env = concrete(env_id);
                for entry in followup["sequence"].as_array().expect("sequence") {
                    let call = entry["call"].as_str().expect("call");
                    let seed = match call {
                        "reset()" => None,
                        _ => {
                            assert_eq!(call, format!("reset(seed={seed_text})"));
                            Some(&seed)
                        }
                    };
                    let mut problems = Vec::new();
                    check_reset(&mut problems, &mut *env, seed, entry);
                    tally.record(|| format!("{env_id} seed {seed_text} {call}"), problems);
                }
            }
            println!(
                "{env_id}: {} resets compared, {} mismatches",
                tally.compared, tally.mismatches
            );
            tally.assert_clean(&format!("{env_id} resets"));
        }
    }
}

#[test]
fn numpy_seeding_internals_match() {
    for (_, file) in files("classic_control", "reset-by-seed table", is_reset_table) {
        let cases = file["numpy_seeding_internals"]
            .as_array()
            .expect("numpy_seeding_internals");
        assert!(!cases.is_empty());
        for case in cases {
            let text = case["seed_decimal"].as_str().expect("seed_decimal");
            let seed: Seed = text.parse().expect("decimal seed");
            let ss = SeedSequence::new(&seed);
            let words: Vec<u64> = ss
                .generate_state_u32(8)
                .into_iter()
                .map(u64::from)
                .collect();
            let want: Vec<u64> = case["seed_sequence_generate_state_uint32x8"]
                .as_array()
                .expect("uint32 list")
                .iter()
                .map(|v| v.as_u64().expect("u32"))
                .collect();
            assert_eq!(words, want, "seed {text}: SeedSequence.generate_state");

            let mut bits = Pcg64::from_seed_sequence(&ss);
            let u128_of = |k: &str| -> u128 {
                let s = case["pcg64_state_after_seeding"][k]
                    .as_str()
                    .expect("decimal");
                s.parse().unwrap_or_else(|e| panic!("{k} {s}: {e}"))
            };
            assert_eq!(
                bits.state(),
                (u128_of("state"), u128_of("inc")),
                "seed {text}"
            );
            for (i, raw) in case["first_8_random_raw_uint64"]
                .as_array()
                .expect("raw list")
                .iter()
                .enumerate()
            {
                let want: u64 = raw.as_str().expect("decimal").parse().expect("u64");
                assert_eq!(bits.next_u64(), want, "seed {text}: random_raw[{i}]");
            }

            let mut rng = NpRandom::from_seed(&seed);
            let doubles: Vec<f64> = (0..8).map(|_| rng.random()).collect();
            let want = f64s(&case["first_8_random_doubles"]);
            assert_eq!(
                bits_f64(&doubles),
                bits_f64(&want),
                "seed {text}: random(8)"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Bad input: always an error of the right kind, never a panic.

/// A valid action of the env's action space (the middle of the range).
fn valid_action(space: &Space) -> (Option<i64>, Vec<f32>) {
    match space {
        Space::Discrete { start, .. } => (Some(*start), Vec::new()),
        Space::Box(b) => (
            None,
            b.low()
                .iter()
                .zip(b.high())
                .map(|(l, h)| (l + h) / 2.0)
                .collect(),
        ),
    }
}

fn act<'a>(discrete: Option<i64>, continuous: &'a [f32]) -> Action<'a> {
    match discrete {
        Some(a) => Action::Discrete(a),
        None => Action::Continuous(continuous),
    }
}

#[test]
fn invalid_actions_are_rejected_without_changing_the_state() {
    for id in registered_ids() {
        let mut env = concrete(id);
        let mut obs = vec![0.0f32; env.observation_space().flat_dim()];
        env.reset_into(Some(&Seed::from(0u64)), &mut obs).unwrap();
        let before = env.state_vec();
        let space = env.action_space().clone();
        let mut errors = Vec::new();
        match &space {
            Space::Discrete { n, start } => {
                let past_end = start + *n as i64;
                for a in [start - 1, past_end, i64::MAX, i64::MIN] {
                    errors.push(env.step_into(Action::Discrete(a), &mut obs).unwrap_err());
                }
                errors.push(
                    env.step_into(Action::Continuous(&[0.0]), &mut obs)
                        .unwrap_err(),
                );
                assert!(
                    matches!(errors[0], EnvError::ActionOutOfRange { .. }),
                    "{id}"
                );
                assert!(
                    matches!(errors[1], EnvError::ActionOutOfRange { .. }),
                    "{id}"
                );
                assert!(matches!(errors[4], EnvError::ActionKind { .. }), "{id}");
            }
            Space::Box(b) => {
                let dim = b.flat_dim();
                let bad_len = vec![0.0f32; dim + 1];
                assert!(matches!(
                    env.step_into(Action::Continuous(&bad_len), &mut obs),
                    Err(EnvError::ActionLength { .. })
                ));
                assert!(matches!(
                    env.step_into(Action::Continuous(&[]), &mut obs),
                    Err(EnvError::ActionLength { expected, actual: 0 }) if expected == dim
                ));
                for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
                    let a = vec![bad; dim];
                    assert!(
                        matches!(
                            env.step_into(Action::Continuous(&a), &mut obs),
                            Err(EnvError::NonFiniteAction { index: 0, .. })
                        ),
                        "{id}: {bad}"
                    );
                }
                assert!(matches!(
                    env.step_into(Action::Discrete(0), &mut obs),
                    Err(EnvError::ActionKind { .. })
                ));
            }
        }
        let (d, c) = valid_action(&space);
        let mut short = vec![0.0f32; obs.len() - 1];
        assert!(matches!(
            env.step_into(act(d, &c), &mut short),
            Err(EnvError::ObservationBuffer { .. })
        ));
        assert!(matches!(
            env.reset_into(None, &mut short),
            Err(EnvError::ObservationBuffer { .. })
        ));
        assert_eq!(
            env.state_vec(),
            before,
            "{id}: a rejected action changed the state"
        );
        env.step_into(act(d, &c), &mut obs)
            .unwrap_or_else(|e| panic!("{id}: a valid action after errors failed: {e}"));
    }
}

#[test]
fn stepping_before_reset_is_an_error() {
    for id in registered_ids() {
        let mut made = make(id).unwrap();
        let mut conc = concrete(id);
        let (d, c) = valid_action(made.action_space());
        let mut obs = vec![0.0f32; made.observation_space().flat_dim()];
        assert!(
            matches!(
                made.step_into(act(d, &c), &mut obs),
                Err(EnvError::NeedsReset(_))
            ),
            "{id}"
        );
        assert!(
            matches!(
                conc.step_into(act(d, &c), &mut obs),
                Err(EnvError::NeedsReset(_))
            ),
            "{id}"
        );
        made.reset_into(None, &mut obs).unwrap();
        made.step_into(act(d, &c), &mut obs).unwrap();
    }
}

#[test]
fn stepping_after_termination_is_an_error() {
    // States one step from the goal or failure region of each terminating environment.
    let near_terminal: [(&str, &[f64]); 4] = [
        ("CartPole-v1", &[2.39, 1.0, 0.0, 0.0]),
        ("Acrobot-v1", &[std::f64::consts::PI, 0.0, 0.0, 0.0]),
        ("MountainCar-v0", &[0.49, 0.05]),
        ("MountainCarContinuous-v0", &[0.44, 0.05]),
    ];
    for (id, state) in near_terminal {
        let mut env = concrete(id);
        let (d, c) = valid_action(env.action_space());
        let mut obs = vec![0.0f32; env.observation_space().flat_dim()];
        env.set_state_vec(state, "float64");
        let out = env.step_into(act(d, &c), &mut obs).unwrap();
        assert!(
            out.terminated,
            "{id}: {state:?} should terminate in one step"
        );
        assert!(
            matches!(
                env.step_into(act(d, &c), &mut obs),
                Err(EnvError::NeedsReset(_))
            ),
            "{id}"
        );
        env.reset_into(None, &mut obs).unwrap();
        env.step_into(act(d, &c), &mut obs).unwrap();
    }
}

#[test]
fn stepping_after_truncation_is_an_error() {
    for id in registered_ids() {
        let spec = EnvSpec {
            max_episode_steps: Some(3),
            ..EnvSpec::default()
        };
        let mut env = make_with(id, &spec).unwrap();
        let (d, c) = valid_action(env.action_space());
        let mut obs = vec![0.0f32; env.observation_space().flat_dim()];
        env.reset_into(Some(&Seed::from(1u64)), &mut obs).unwrap();
        for t in 1..=3 {
            let out = env.step_into(act(d, &c), &mut obs).unwrap();
            assert_eq!(out.truncated, t == 3, "{id} step {t}");
        }
        assert!(
            matches!(
                env.step_into(act(d, &c), &mut obs),
                Err(EnvError::NeedsReset(_))
            ),
            "{id}"
        );
    }
}

#[test]
fn registry_rejects_unknown_ids_and_zero_limits() {
    match make("CartPole-v0") {
        Err(EnvError::UnknownEnv { id, known }) => {
            assert_eq!(id, "CartPole-v0");
            for registered in registered_ids() {
                assert!(known.contains(registered));
            }
        }
        Err(e) => panic!("wrong error {e}"),
        Ok(_) => panic!("CartPole-v0 is not registered"),
    }
    let zero = EnvSpec {
        max_episode_steps: Some(0),
        ..EnvSpec::default()
    };
    assert!(matches!(
        make_with("Pendulum-v1", &zero),
        Err(EnvError::InvalidArgument(_))
    ));
    assert_eq!(
        registered_ids(),
        [
            "CartPole-v1",
            "Acrobot-v1",
            "MountainCar-v0",
            "MountainCarContinuous-v0",
            "Pendulum-v1"
        ]
    );
    let thresholds: Vec<Option<f64>> = registered_ids()
        .iter()
        .map(|id| rl_env::registry::reward_threshold(id).unwrap())
        .collect();
    assert_eq!(
        thresholds,
        [Some(475.0), Some(-100.0), Some(-110.0), Some(90.0), None]
    );
}
