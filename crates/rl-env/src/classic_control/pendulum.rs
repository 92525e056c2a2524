//! `Pendulum-v1`, as in Gymnasium 1.4 under NumPy 2.

use super::{box_space, continuous_action, np_square, np_square_f32, reseed};
use crate::env::{check_obs_buffer, Action, Env, Info, StepOutcome};
use crate::error::{EnvError, Result};
use crate::seeding::{NpRandom, Seed};
use crate::space::{BoxSpace, Space};
use std::f64::consts::PI;

const MAX_SPEED: f64 = 8.0;
const MAX_TORQUE: f32 = 2.0;
const DT: f64 = 0.05;
/// Gymnasium's default gravity `g`.
const DEFAULT_G: f64 = 10.0;
const M: f64 = 1.0;
const L: f64 = 1.0;

/// `((x + pi) % (2 pi)) - pi` with NumPy's floor-style `%` on float64.
#[inline]
fn angle_normalize(x: f64) -> f64 {
    numpy_remainder(x + PI, 2.0 * PI) - PI
}

/// NumPy's float `%` (`npy_divmod`): C `fmod`, shifted by `b` when the signs differ, and a zero
/// result carrying the sign of `b`.
#[inline]
fn numpy_remainder(a: f64, b: f64) -> f64 {
    let m = a % b;
    if m != 0.0 {
        if (b < 0.0) != (m < 0.0) {
            m + b
        } else {
            m
        }
    } else {
        0.0f64.copysign(b)
    }
}

/// Swing a pendulum up and keep it upright with a torque in `[-2, 2]` (clipped).
///
/// State `[theta, theta_dot]` in f64; observation `[cos theta, sin theta, theta_dot]`; reward
/// `-(angle^2 + 0.1 theta_dot^2 + 0.001 u^2)`; never terminates. The registered id adds a
/// 200-step time limit.
#[derive(Clone, Debug)]
pub struct Pendulum {
    state: [f64; 2],
    g: f64,
    rng: Option<NpRandom>,
    needs_reset: bool,
    observation_space: Space,
    action_space: Space,
}

impl Default for Pendulum {
    fn default() -> Self {
        Self::new()
    }
}

impl Pendulum {
    /// A new environment; call `reset` before stepping.
    pub fn new() -> Self {
        let high = [1.0, 1.0, MAX_SPEED];
        let action_box = BoxSpace::uniform(-MAX_TORQUE, MAX_TORQUE, vec![1]);
        Pendulum {
            state: [0.0; 2],
            g: DEFAULT_G,
            rng: None,
            needs_reset: true,
            observation_space: box_space(&high.map(|h| -h), &high),
            action_space: match action_box {
                Ok(b) => Space::Box(b),
                Err(e) => unreachable!("static action bounds are valid: {e}"),
            },
        }
    }

    /// Gymnasium's `Pendulum-v1` keyword `g`, the acceleration of gravity (default 10), builder
    /// style. Errors ([`EnvError::InvalidArgument`]) when `g` is NaN or infinite.
    pub fn with_g(mut self, g: f64) -> Result<Self> {
        if !g.is_finite() {
            return Err(EnvError::InvalidArgument(format!(
                "Pendulum g must be a finite number, got {g}"
            )));
        }
        self.g = g;
        Ok(self)
    }

    /// The acceleration of gravity `g`.
    pub fn g(&self) -> f64 {
        self.g
    }

    /// The internal f64 state `[theta, theta_dot]`.
    pub fn state(&self) -> [f64; 2] {
        self.state
    }

    /// Overwrites the internal state (for replaying recorded trajectories) and allows stepping.
    pub fn set_state(&mut self, state: [f64; 2]) {
        self.state = state;
        self.needs_reset = false;
    }

    #[inline]
    fn write_obs(&self, obs: &mut [f32]) {
        let [th, thdot] = self.state;
        for (o, v) in obs.iter_mut().zip([th.cos(), th.sin(), thdot]) {
            *o = v as f32;
        }
    }
}

impl Env for Pendulum {
    fn observation_space(&self) -> &Space {
        &self.observation_space
    }

    fn action_space(&self) -> &Space {
        &self.action_space
    }

    fn reset_into(&mut self, seed: Option<&Seed>, obs: &mut [f32]) -> Result<Info> {
        check_obs_buffer(&self.observation_space, obs)?;
        let rng = reseed(&mut self.rng, seed);
        // `uniform(low=[-pi, -1], high=[pi, 1])`, drawn element by element.
        let theta = rng.uniform(-PI, PI);
        let theta_dot = rng.uniform(-1.0, 1.0);
        self.state = [theta, theta_dot];
        self.needs_reset = false;
        self.write_obs(obs);
        Ok(Info::default())
    }

    #[inline]
    fn step_into(&mut self, action: Action<'_>, obs: &mut [f32]) -> Result<StepOutcome> {
        check_obs_buffer(&self.observation_space, obs)?;
        let u = continuous_action(&self.action_space, action)?[0];
        if self.needs_reset {
            return Err(EnvError::NeedsReset(
                "step() called on a Pendulum that was never reset",
            ));
        }
        let [th, thdot] = self.state;
        // `np.clip(u, -2, 2)[0]` stays np.float32; under NumPy 2 the Python-float factors
        // below are cast to float32, so both torque terms are float32 products.
        let u = u.clamp(-MAX_TORQUE, MAX_TORQUE);
        let torque_cost = (0.001f64 as f32) * np_square_f32(u);
        let costs =
            np_square(angle_normalize(th)) + 0.1 * np_square(thdot) + f64::from(torque_cost);
        let torque_acc = (3.0 / (M * (L * L))) as f32 * u;
        // `3 * g / (2 * l) * np.sin(th)`, left to right as Python evaluates it.
        let newthdot = thdot + (3.0 * self.g / (2.0 * L) * th.sin() + f64::from(torque_acc)) * DT;
        let newthdot = newthdot.clamp(-MAX_SPEED, MAX_SPEED);
        let newth = th + newthdot * DT;
        self.state = [newth, newthdot];
        self.write_obs(obs);
        Ok(StepOutcome {
            reward: -costs,
            terminated: false,
            truncated: false,
            info: Info::default(),
        })
    }

    fn id(&self) -> &str {
        "Pendulum-v1"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remainder_is_floor_style() {
        assert_eq!(numpy_remainder(-1.0, 3.0), 2.0);
        assert_eq!(numpy_remainder(4.0, 3.0), 1.0);
        assert_eq!(numpy_remainder(-3.0, 3.0).to_bits(), 0.0f64.to_bits());
        assert!((angle_normalize(2.0 * PI + 0.5) - 0.5).abs() < 1e-12);
        assert!((angle_normalize(-0.5) + 0.5).abs() < 1e-15);
        assert!(angle_normalize(f64::INFINITY).is_nan());
    }

    #[test]
    fn out_of_range_torque_is_clipped() {
        let mut a = Pendulum::new();
        let mut b = Pendulum::new();
        a.set_state([0.3, -0.2]);
        b.set_state([0.3, -0.2]);
        let mut obs = [0.0f32; 3];
        let ra = a.step_into(Action::Continuous(&[50.0]), &mut obs).unwrap();
        let rb = b.step_into(Action::Continuous(&[2.0]), &mut obs).unwrap();
        assert_eq!(a.state(), b.state());
        assert_eq!(ra.reward, rb.reward);
    }
}
