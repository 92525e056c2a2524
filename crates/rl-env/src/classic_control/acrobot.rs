//! `Acrobot-v1` (Sutton 1996, "book" dynamics), as in Gymnasium 1.4.

use super::{box_space, discrete_index, np_square, reseed};
use crate::env::{check_obs_buffer, Action, Env, Info, StepOutcome};
use crate::error::{EnvError, Result};
use crate::seeding::{NpRandom, Seed};
use crate::space::Space;
use std::f64::consts::PI;

const DT: f64 = 0.2;
const LINK_LENGTH_1: f64 = 1.0;
const LINK_MASS_1: f64 = 1.0;
const LINK_MASS_2: f64 = 1.0;
const LINK_COM_POS_1: f64 = 0.5;
const LINK_COM_POS_2: f64 = 0.5;
const LINK_MOI: f64 = 1.0;
const GRAVITY: f64 = 9.8;
const MAX_VEL_1: f64 = 4.0 * PI;
const MAX_VEL_2: f64 = 9.0 * PI;
const AVAIL_TORQUE: [f64; 3] = [-1.0, 0.0, 1.0];

/// Swing the tip of a two-link pendulum above the bar by torquing the joint between the links.
///
/// State `[theta1, theta2, dtheta1, dtheta2]` in f64, one fourth-order Runge-Kutta step of
/// `dt = 0.2` per action, torque `-1`, `0` or `+1` (actions 0, 1, 2). Observation
/// `[cos t1, sin t1, cos t2, sin t2, dt1, dt2]`. Reward -1 per step, 0 on the terminating one.
/// The registered id adds a 500-step time limit.
#[derive(Clone, Debug)]
pub struct Acrobot {
    state: [f64; 4],
    rng: Option<NpRandom>,
    needs_reset: bool,
    observation_space: Space,
    action_space: Space,
}

impl Default for Acrobot {
    fn default() -> Self {
        Self::new()
    }
}

impl Acrobot {
    /// A new environment; call `reset` before stepping.
    pub fn new() -> Self {
        let high = [1.0, 1.0, 1.0, 1.0, MAX_VEL_1, MAX_VEL_2];
        Acrobot {
            state: [0.0; 4],
            rng: None,
            needs_reset: true,
            observation_space: box_space(&high.map(|h| -h), &high),
            action_space: Space::discrete(3),
        }
    }

    /// The internal f64 state `[theta1, theta2, dtheta1, dtheta2]`.
    pub fn state(&self) -> [f64; 4] {
        self.state
    }

    /// Overwrites the internal state (for replaying recorded trajectories) and allows stepping.
    /// Values are taken as given; non-finite ones produce non-finite observations.
    pub fn set_state(&mut self, state: [f64; 4]) {
        self.state = state;
        self.needs_reset = false;
    }

    #[inline]
    fn write_obs(&self, obs: &mut [f32]) {
        let [t1, t2, dt1, dt2] = self.state;
        let values = [t1.cos(), t1.sin(), t2.cos(), t2.sin(), dt1, dt2];
        for (o, v) in obs.iter_mut().zip(values) {
            *o = v as f32;
        }
    }
}

/// The state derivative of Gymnasium's `_dsdt` ("book" dynamics) on the augmented state
/// `[theta1, theta2, dtheta1, dtheta2, torque]`. Every expression keeps Python's left-to-right
/// evaluation order so the rounding matches bit for bit.
#[inline]
fn dsdt(s: &[f64; 5]) -> [f64; 5] {
    let (m1, m2, l1) = (LINK_MASS_1, LINK_MASS_2, LINK_LENGTH_1);
    let (lc1, lc2, i1, i2, g) = (LINK_COM_POS_1, LINK_COM_POS_2, LINK_MOI, LINK_MOI, GRAVITY);
    let [theta1, theta2, dtheta1, dtheta2, a] = *s;
    let d1 =
        m1 * (lc1 * lc1) + m2 * ((l1 * l1) + (lc2 * lc2) + 2.0 * l1 * lc2 * theta2.cos()) + i1 + i2;
    let d2 = m2 * ((lc2 * lc2) + l1 * lc2 * theta2.cos()) + i2;
    let phi2 = m2 * lc2 * g * (theta1 + theta2 - PI / 2.0).cos();
    let phi1 = -m2 * l1 * lc2 * np_square(dtheta2) * theta2.sin()
        - 2.0 * m2 * l1 * lc2 * dtheta2 * dtheta1 * theta2.sin()
        + (m1 * lc1 + m2 * l1) * g * (theta1 - PI / 2.0).cos()
        + phi2;
    let ddtheta2 = (a + d2 / d1 * phi1 - m2 * l1 * lc2 * np_square(dtheta1) * theta2.sin() - phi2)
        / (m2 * (lc2 * lc2) + i2 - np_square(d2) / d1);
    let ddtheta1 = -(d2 * ddtheta2 + phi1) / d1;
    [dtheta1, dtheta2, ddtheta1, ddtheta2, 0.0]
}

/// `y + h * k`, element by element (NumPy's `y0 + dt2 * k1`).
#[inline]
fn axpy(y: &[f64; 5], h: f64, k: &[f64; 5]) -> [f64; 5] {
    std::array::from_fn(|i| y[i] + h * k[i])
}

/// Gymnasium's `rk4(derivs, y0, [0, dt])`: one classical Runge-Kutta step.
#[inline]
fn rk4(y0: &[f64; 5]) -> [f64; 5] {
    // `t[1] - t[0]` with t = [0, dt].
    let dt = DT;
    let dt2 = dt / 2.0;
    let k1 = dsdt(y0);
    let k2 = dsdt(&axpy(y0, dt2, &k1));
    let k3 = dsdt(&axpy(y0, dt2, &k2));
    let k4 = dsdt(&axpy(y0, dt, &k3));
    std::array::from_fn(|i| y0[i] + dt / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]))
}

/// Gymnasium's `wrap(x, -pi, pi)`: shifts by whole turns until `x` lies in `[-pi, pi]`.
#[inline]
fn wrap(mut x: f64) -> f64 {
    let diff = PI - -PI;
    if !x.is_finite() {
        // Gymnasium would loop forever on an infinity; keep the value instead of hanging.
        return x;
    }
    if x.abs() > 64.0 * diff {
        // Only reachable through `set_state`: take whole turns off in one go so the loops
        // below stay short (dynamics alone never leave [-pi, pi] by more than a turn or two).
        x %= diff;
    }
    while x > PI {
        x -= diff;
    }
    while x < -PI {
        x += diff;
    }
    x
}

/// Gymnasium's `bound(x, m, M)` = `min(max(x, m), M)` with Python's builtin semantics.
#[inline]
fn bound(x: f64, m: f64, big_m: f64) -> f64 {
    let y = if m > x { m } else { x };
    if big_m < y {
        big_m
    } else {
        y
    }
}

impl Env for Acrobot {
    fn observation_space(&self) -> &Space {
        &self.observation_space
    }

    fn action_space(&self) -> &Space {
        &self.action_space
    }

    fn reset_into(&mut self, seed: Option<&Seed>, obs: &mut [f32]) -> Result<Info> {
        check_obs_buffer(&self.observation_space, obs)?;
        let rng = reseed(&mut self.rng, seed);
        for s in self.state.iter_mut() {
            // `uniform(-0.1, 0.1, size=4).astype(float32)`: the state starts as float32.
            *s = f64::from(rng.uniform(-0.1, 0.1) as f32);
        }
        self.needs_reset = false;
        self.write_obs(obs);
        Ok(Info::default())
    }

    #[inline]
    fn step_into(&mut self, action: Action<'_>, obs: &mut [f32]) -> Result<StepOutcome> {
        check_obs_buffer(&self.observation_space, obs)?;
        let index = discrete_index(&self.action_space, action)?;
        if self.needs_reset {
            return Err(EnvError::NeedsReset(
                "step() called on an Acrobot episode that already ended (or was never reset)",
            ));
        }
        let [t1, t2, dt1, dt2] = self.state;
        let ns = rk4(&[t1, t2, dt1, dt2, AVAIL_TORQUE[index]]);
        self.state = [
            wrap(ns[0]),
            wrap(ns[1]),
            bound(ns[2], -MAX_VEL_1, MAX_VEL_1),
            bound(ns[3], -MAX_VEL_2, MAX_VEL_2),
        ];
        let [t1, t2, _, _] = self.state;
        let terminated = -t1.cos() - (t2 + t1).cos() > 1.0;
        self.needs_reset = terminated;
        self.write_obs(obs);
        Ok(StepOutcome {
            reward: if terminated { 0.0 } else { -1.0 },
            terminated,
            truncated: false,
            info: Info::default(),
        })
    }

    fn id(&self) -> &str {
        "Acrobot-v1"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_and_bound_follow_gymnasium() {
        assert_eq!(wrap(PI), PI);
        assert_eq!(wrap(PI + 1.0), PI + 1.0 - 2.0 * PI);
        assert_eq!(wrap(-PI - 1.0), -PI - 1.0 + 2.0 * PI);
        assert!((-PI..=PI).contains(&wrap(1e12)));
        assert!(wrap(f64::NAN).is_nan());
        assert_eq!(wrap(f64::INFINITY), f64::INFINITY);
        assert_eq!(bound(20.0, -MAX_VEL_1, MAX_VEL_1), MAX_VEL_1);
        assert_eq!(bound(-20.0, -MAX_VEL_1, MAX_VEL_1), -MAX_VEL_1);
        assert_eq!(bound(0.5, -1.0, 1.0), 0.5);
    }

    #[test]
    fn reset_state_is_float32_and_within_bounds() {
        let mut env = Acrobot::new();
        let mut obs = [0.0f32; 6];
        env.reset_into(Some(&Seed::from(3u64)), &mut obs).unwrap();
        for s in env.state() {
            assert_eq!(f64::from(s as f32), s);
            assert!((-0.1..=0.1).contains(&s));
        }
    }
}
