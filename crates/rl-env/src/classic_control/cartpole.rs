//! `CartPole-v1` (Barto, Sutton & Anderson), as in Gymnasium 1.4.

use crate::env::{check_obs_buffer, Action, Env, Info, StepOutcome};
use crate::error::{EnvError, Result};
use crate::seeding::{NpRandom, Seed};
use crate::space::{BoxSpace, Space};

const GRAVITY: f64 = 9.8;
const MASS_CART: f64 = 1.0;
const MASS_POLE: f64 = 0.1;
const TOTAL_MASS: f64 = MASS_POLE + MASS_CART;
const LENGTH: f64 = 0.5;
const POLE_MASS_LENGTH: f64 = MASS_POLE * LENGTH;
const FORCE_MAG: f64 = 10.0;
const TAU: f64 = 0.02;
const THETA_THRESHOLD: f64 = 12.0 * 2.0 * std::f64::consts::PI / 360.0;
const X_THRESHOLD: f64 = 2.4;

/// Balance a pole on a cart by pushing the cart left (0) or right (1).
///
/// State `[x, x_dot, theta, theta_dot]` in f64, explicit Euler with `tau = 0.02`, reward 1 on
/// every step including the terminating one (or, with Gymnasium's `sutton_barto_reward`, 0 per
/// step and -1 on the terminating one). The registered id adds a 500-step time limit.
#[derive(Clone, Debug)]
pub struct CartPole {
    state: [f64; 4],
    sutton_barto_reward: bool,
    rng: Option<NpRandom>,
    needs_reset: bool,
    observation_space: Space,
    action_space: Space,
}

impl Default for CartPole {
    fn default() -> Self {
        Self::new()
    }
}

impl CartPole {
    /// A new environment; call `reset` before stepping.
    pub fn new() -> Self {
        let high = [
            (X_THRESHOLD * 2.0) as f32,
            f32::INFINITY,
            (THETA_THRESHOLD * 2.0) as f32,
            f32::INFINITY,
        ];
        let low = high.map(|h| -h);
        CartPole {
            state: [0.0; 4],
            sutton_barto_reward: false,
            rng: None,
            needs_reset: true,
            observation_space: Space::Box(
                BoxSpace::new(low.to_vec(), high.to_vec(), vec![4]).expect("static bounds"),
            ),
            action_space: Space::discrete(2),
        }
    }

    /// Gymnasium's `CartPole-v1` keyword `sutton_barto_reward` (builder style): when enabled,
    /// the reward is 0 on every step and -1 on the step that terminates the episode, as in
    /// Sutton & Barto's formulation. (Gymnasium also gives -1, instead of 0, to steps after
    /// termination; here those steps are an error.)
    pub fn with_sutton_barto_reward(mut self, enabled: bool) -> Self {
        self.sutton_barto_reward = enabled;
        self
    }

    /// Whether the Sutton & Barto reward is used.
    pub fn sutton_barto_reward(&self) -> bool {
        self.sutton_barto_reward
    }

    /// The internal f64 state `[x, x_dot, theta, theta_dot]`.
    pub fn state(&self) -> [f64; 4] {
        self.state
    }

    /// Overwrites the internal state (for replaying recorded trajectories) and allows stepping.
    pub fn set_state(&mut self, state: [f64; 4]) {
        self.state = state;
        self.needs_reset = false;
    }

    #[inline]
    fn write_obs(&self, obs: &mut [f32]) {
        for (o, s) in obs.iter_mut().zip(self.state) {
            *o = s as f32;
        }
    }
}

impl Env for CartPole {
    fn observation_space(&self) -> &Space {
        &self.observation_space
    }

    fn action_space(&self) -> &Space {
        &self.action_space
    }

    fn reset_into(&mut self, seed: Option<&Seed>, obs: &mut [f32]) -> Result<Info> {
        check_obs_buffer(&self.observation_space, obs)?;
        let rng = super::reseed(&mut self.rng, seed);
        for s in self.state.iter_mut() {
            *s = rng.uniform(-0.05, 0.05);
        }
        self.needs_reset = false;
        self.write_obs(obs);
        Ok(Info::default())
    }

    #[inline]
    fn step_into(&mut self, action: Action<'_>, obs: &mut [f32]) -> Result<StepOutcome> {
        check_obs_buffer(&self.observation_space, obs)?;
        let push_right = match action {
            Action::Discrete(0) => false,
            Action::Discrete(1) => true,
            other => {
                self.action_space.check_action(other)?;
                unreachable!("check_action accepts only 0 and 1")
            }
        };
        if self.needs_reset {
            return Err(EnvError::NeedsReset(
                "step() called on a CartPole episode that already ended (or was never reset)",
            ));
        }
        let [x, x_dot, theta, theta_dot] = self.state;
        let force = if push_right { FORCE_MAG } else { -FORCE_MAG };
        let costheta = theta.cos();
        let sintheta = theta.sin();
        // Gymnasium squares with `np.square` before multiplying: keep that grouping.
        let temp = (force + POLE_MASS_LENGTH * (theta_dot * theta_dot) * sintheta) / TOTAL_MASS;
        let thetaacc = (GRAVITY * sintheta - costheta * temp)
            / (LENGTH * (4.0 / 3.0 - MASS_POLE * (costheta * costheta) / TOTAL_MASS));
        let xacc = temp - POLE_MASS_LENGTH * thetaacc * costheta / TOTAL_MASS;
        self.state = [
            x + TAU * x_dot,
            x_dot + TAU * xacc,
            theta + TAU * theta_dot,
            theta_dot + TAU * thetaacc,
        ];
        let [x, _, theta, _] = self.state;
        // Gymnasium's strict comparisons: a NaN state does not terminate (a range `contains`
        // would say it does).
        #[allow(clippy::manual_range_contains)]
        let terminated = x < -X_THRESHOLD
            || x > X_THRESHOLD
            || theta < -THETA_THRESHOLD
            || theta > THETA_THRESHOLD;
        self.needs_reset = terminated;
        self.write_obs(obs);
        let reward = match (self.sutton_barto_reward, terminated) {
            (false, _) => 1.0,
            (true, false) => 0.0,
            (true, true) => -1.0,
        };
        Ok(StepOutcome {
            reward,
            terminated,
            truncated: false,
            info: Info::default(),
        })
    }

    fn id(&self) -> &str {
        "CartPole-v1"
    }
}
