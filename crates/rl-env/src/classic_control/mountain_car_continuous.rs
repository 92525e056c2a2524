//! `MountainCarContinuous-v0`, as in Gymnasium 1.4 under NumPy 2.
//!
//! Gymnasium stores this environment's state as a `float32` array after every step, and the
//! step mixes `np.float32`, `np.float64` and Python floats. Under NumPy 2 (NEP 50) a Python
//! float is "weak": combined with an `np.float32` it is first cast to float32 and the operation
//! is done in float32, while `np.float32` with `np.float64` promotes to float64. [`Num`] tracks
//! those three kinds so every intermediate is rounded exactly as in Python.

use super::{box_space, continuous_action, reseed};
use crate::env::{check_obs_buffer, Action, Env, Info, StepOutcome};
use crate::error::{EnvError, Result};
use crate::seeding::{NpRandom, Seed};
use crate::space::{BoxSpace, Space};

const MIN_ACTION: f64 = -1.0;
const MAX_ACTION: f64 = 1.0;
const MIN_POSITION: f64 = -1.2;
const MAX_POSITION: f64 = 0.6;
const MAX_SPEED: f64 = 0.07;
const GOAL_POSITION: f64 = 0.45;
/// Gymnasium's default `goal_velocity`.
const DEFAULT_GOAL_VELOCITY: f64 = 0.0;
const POWER: f64 = 0.0015;

/// The dtype of the stored state: `float64` after `reset` (or [`MountainCarContinuous::set_state`]),
/// `float32` after every step (or [`MountainCarContinuous::set_state_f32`]). It decides whether
/// the next step computes in float64 or float32.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StateDtype {
    /// `np.float64` values.
    Float64,
    /// `np.float32` values.
    Float32,
}

/// A scalar of the Python step with its NumPy 2 type.
#[derive(Clone, Copy, Debug)]
enum Num {
    /// `np.float32`.
    F32(f32),
    /// `np.float64`.
    F64(f64),
    /// A Python `float` (weak under NEP 50).
    Py(f64),
}

impl Num {
    fn value(self) -> f64 {
        match self {
            Num::F32(x) => f64::from(x),
            Num::F64(x) | Num::Py(x) => x,
        }
    }

    /// Applies a binary operation with NEP 50 promotion.
    #[inline]
    fn op(self, rhs: Num, f32op: fn(f32, f32) -> f32, f64op: fn(f64, f64) -> f64) -> Num {
        match (self, rhs) {
            (Num::F32(a), Num::F32(b)) => Num::F32(f32op(a, b)),
            (Num::F32(a), Num::Py(b)) => Num::F32(f32op(a, b as f32)),
            (Num::Py(a), Num::F32(b)) => Num::F32(f32op(a as f32, b)),
            (Num::Py(a), Num::Py(b)) => Num::Py(f64op(a, b)),
            (a, b) => Num::F64(f64op(a.value(), b.value())),
        }
    }

    fn add(self, rhs: Num) -> Num {
        self.op(rhs, |a, b| a + b, |a, b| a + b)
    }

    fn sub(self, rhs: Num) -> Num {
        self.op(rhs, |a, b| a - b, |a, b| a - b)
    }

    fn mul(self, rhs: Num) -> Num {
        self.op(rhs, |a, b| a * b, |a, b| a * b)
    }

    /// Compares with a Python float: in float32 against an `np.float32` (the float is cast
    /// first), in float64 otherwise.
    fn cmp_py(self, py: f64) -> Option<std::cmp::Ordering> {
        match self {
            Num::F32(x) => x.partial_cmp(&(py as f32)),
            Num::F64(x) | Num::Py(x) => x.partial_cmp(&py),
        }
    }

    fn gt(self, py: f64) -> bool {
        self.cmp_py(py) == Some(std::cmp::Ordering::Greater)
    }

    fn lt(self, py: f64) -> bool {
        self.cmp_py(py) == Some(std::cmp::Ordering::Less)
    }

    fn ge(self, py: f64) -> bool {
        matches!(
            self.cmp_py(py),
            Some(std::cmp::Ordering::Greater | std::cmp::Ordering::Equal)
        )
    }

    fn eq_py(self, py: f64) -> bool {
        self.cmp_py(py) == Some(std::cmp::Ordering::Equal)
    }
}

/// Drive a car up a hill with a continuous force in `[-1, 1]` (out-of-range actions are clipped).
///
/// State `[position, velocity]`; reward `100` on reaching `position >= 0.45` (with non-negative
/// velocity) minus `0.1 * action^2` on every step, using the unclipped action. The registered id
/// adds a 999-step time limit.
#[derive(Clone, Debug)]
pub struct MountainCarContinuous {
    state: [f64; 2],
    goal_velocity: f64,
    dtype: StateDtype,
    rng: Option<NpRandom>,
    needs_reset: bool,
    observation_space: Space,
    action_space: Space,
}

impl Default for MountainCarContinuous {
    fn default() -> Self {
        Self::new()
    }
}

impl MountainCarContinuous {
    /// A new environment; call `reset` before stepping.
    pub fn new() -> Self {
        let action_box = BoxSpace::uniform(MIN_ACTION as f32, MAX_ACTION as f32, vec![1]);
        MountainCarContinuous {
            state: [0.0; 2],
            goal_velocity: DEFAULT_GOAL_VELOCITY,
            dtype: StateDtype::Float64,
            rng: None,
            needs_reset: true,
            observation_space: box_space(&[MIN_POSITION, -MAX_SPEED], &[MAX_POSITION, MAX_SPEED]),
            action_space: match action_box {
                Ok(b) => Space::Box(b),
                Err(e) => unreachable!("static action bounds are valid: {e}"),
            },
        }
    }

    /// Gymnasium's `goal_velocity` keyword (default 0), builder style: the episode terminates
    /// only when the car reaches the goal position with at least this velocity. Errors
    /// ([`EnvError::InvalidArgument`]) when it is NaN or infinite.
    pub fn with_goal_velocity(mut self, goal_velocity: f64) -> Result<Self> {
        if !goal_velocity.is_finite() {
            return Err(EnvError::InvalidArgument(format!(
                "MountainCarContinuous goal_velocity must be a finite number, got {goal_velocity}"
            )));
        }
        self.goal_velocity = goal_velocity;
        Ok(self)
    }

    /// The velocity needed at the goal position.
    pub fn goal_velocity(&self) -> f64 {
        self.goal_velocity
    }

    /// The internal state `[position, velocity]` (float32 values widened exactly after a step).
    pub fn state(&self) -> [f64; 2] {
        self.state
    }

    /// The dtype of the internal state (see [`StateDtype`]).
    pub fn state_dtype(&self) -> StateDtype {
        self.dtype
    }

    /// Sets a float64 state, as `reset` leaves it, and allows stepping.
    pub fn set_state(&mut self, state: [f64; 2]) {
        self.state = state;
        self.dtype = StateDtype::Float64;
        self.needs_reset = false;
    }

    /// Sets a float32 state, as every step leaves it, and allows stepping.
    pub fn set_state_f32(&mut self, state: [f32; 2]) {
        self.state = state.map(f64::from);
        self.dtype = StateDtype::Float32;
        self.needs_reset = false;
    }

    #[inline]
    fn write_obs(&self, obs: &mut [f32]) {
        for (o, s) in obs.iter_mut().zip(self.state) {
            *o = s as f32;
        }
    }
}

impl Env for MountainCarContinuous {
    fn observation_space(&self) -> &Space {
        &self.observation_space
    }

    fn action_space(&self) -> &Space {
        &self.action_space
    }

    fn reset_into(&mut self, seed: Option<&Seed>, obs: &mut [f32]) -> Result<Info> {
        check_obs_buffer(&self.observation_space, obs)?;
        let rng = reseed(&mut self.rng, seed);
        self.state = [rng.uniform(-0.6, -0.4), 0.0];
        self.dtype = StateDtype::Float64;
        self.needs_reset = false;
        self.write_obs(obs);
        Ok(Info::default())
    }

    #[inline]
    fn step_into(&mut self, action: Action<'_>, obs: &mut [f32]) -> Result<StepOutcome> {
        check_obs_buffer(&self.observation_space, obs)?;
        let a = continuous_action(&self.action_space, action)?[0];
        if self.needs_reset {
            return Err(EnvError::NeedsReset(
                "step() called on a MountainCarContinuous episode that already ended (or was never reset)",
            ));
        }
        let (mut position, mut velocity) = match self.dtype {
            StateDtype::Float64 => (Num::F64(self.state[0]), Num::F64(self.state[1])),
            StateDtype::Float32 => (
                Num::F32(self.state[0] as f32),
                Num::F32(self.state[1] as f32),
            ),
        };
        // `min(max(action[0], -1.0), 1.0)`: the np.float32 itself when in range, else the
        // Python float bound.
        let force = if f64::from(a) < MIN_ACTION {
            Num::Py(MIN_ACTION)
        } else if f64::from(a) > MAX_ACTION {
            Num::Py(MAX_ACTION)
        } else {
            Num::F32(a)
        };
        // `velocity += force * power - 0.0025 * math.cos(3 * position)`.
        let angle = Num::Py(3.0).mul(position).value();
        let gravity = Num::Py(0.0025 * angle.cos());
        velocity = velocity.add(force.mul(Num::Py(POWER)).sub(gravity));
        if velocity.gt(MAX_SPEED) {
            velocity = Num::Py(MAX_SPEED);
        }
        if velocity.lt(-MAX_SPEED) {
            velocity = Num::Py(-MAX_SPEED);
        }
        position = position.add(velocity);
        if position.gt(MAX_POSITION) {
            position = Num::Py(MAX_POSITION);
        }
        if position.lt(MIN_POSITION) {
            position = Num::Py(MIN_POSITION);
        }
        if position.eq_py(MIN_POSITION) && velocity.lt(0.0) {
            velocity = Num::Py(0.0);
        }
        let terminated = position.ge(GOAL_POSITION) && velocity.ge(self.goal_velocity);
        // `math.pow(action[0], 2) * 0.1` in double with the unclipped action (a float32 squared
        // is exact in double).
        let a = f64::from(a);
        let goal_reward = if terminated { 100.0 } else { 0.0 };
        let reward = goal_reward - a * a * 0.1;
        self.state = [
            f64::from(position.value() as f32),
            f64::from(velocity.value() as f32),
        ];
        self.dtype = StateDtype::Float32;
        self.needs_reset = terminated;
        self.write_obs(obs);
        Ok(StepOutcome {
            reward,
            terminated,
            truncated: false,
            info: Info::default(),
        })
    }

    fn id(&self) -> &str {
        "MountainCarContinuous-v0"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nep50_promotion() {
        assert!(matches!(Num::F32(1.0).mul(Num::Py(0.1)), Num::F32(x) if x == 0.1f32));
        assert!(matches!(Num::F64(0.0).add(Num::F32(0.1)), Num::F64(x) if x == f64::from(0.1f32)));
        assert!(matches!(Num::Py(1.0).mul(Num::Py(0.1)), Num::Py(x) if x == 0.1));
        assert!(Num::F32(0.07f32).eq_py(0.07));
        assert!(Num::F64(f64::from(0.07f32)).gt(0.07));
    }

    #[test]
    fn state_becomes_float32_after_a_step() {
        let mut env = MountainCarContinuous::new();
        let mut obs = [0.0f32; 2];
        env.reset_into(Some(&Seed::from(5u64)), &mut obs).unwrap();
        assert_eq!(env.state_dtype(), StateDtype::Float64);
        let out = env.step_into(Action::Continuous(&[3.0]), &mut obs).unwrap();
        assert_eq!(env.state_dtype(), StateDtype::Float32);
        assert_eq!(env.state().map(|s| s as f32), obs);
        // The reward uses the unclipped action.
        assert_eq!(out.reward, -(9.0 * 0.1));
    }
}
