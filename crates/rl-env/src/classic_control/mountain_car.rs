//! `MountainCar-v0` (Moore 1990), as in Gymnasium 1.4.

use super::{box_space, discrete_index, reseed};
use crate::env::{check_obs_buffer, Action, Env, Info, StepOutcome};
use crate::error::{EnvError, Result};
use crate::seeding::{NpRandom, Seed};
use crate::space::Space;

const MIN_POSITION: f64 = -1.2;
const MAX_POSITION: f64 = 0.6;
const MAX_SPEED: f64 = 0.07;
const GOAL_POSITION: f64 = 0.5;
/// Gymnasium's default `goal_velocity`.
const DEFAULT_GOAL_VELOCITY: f64 = 0.0;
const FORCE: f64 = 0.001;
const GRAVITY: f64 = 0.0025;

/// `np.clip(x, lo, hi)` on a scalar.
#[inline]
fn clip(x: f64, lo: f64, hi: f64) -> f64 {
    if x < lo {
        lo
    } else if x > hi {
        hi
    } else {
        x
    }
}

/// Drive an underpowered car up a hill by rocking it: push left (0), nothing (1), right (2).
///
/// State `[position, velocity]` in f64; reward -1 on every step; the episode terminates at
/// `position >= 0.5` with non-negative velocity. The registered id adds a 200-step time limit.
#[derive(Clone, Debug)]
pub struct MountainCar {
    state: [f64; 2],
    goal_velocity: f64,
    rng: Option<NpRandom>,
    needs_reset: bool,
    observation_space: Space,
    action_space: Space,
}

impl Default for MountainCar {
    fn default() -> Self {
        Self::new()
    }
}

impl MountainCar {
    /// A new environment; call `reset` before stepping.
    pub fn new() -> Self {
        MountainCar {
            state: [0.0; 2],
            goal_velocity: DEFAULT_GOAL_VELOCITY,
            rng: None,
            needs_reset: true,
            observation_space: box_space(&[MIN_POSITION, -MAX_SPEED], &[MAX_POSITION, MAX_SPEED]),
            action_space: Space::discrete(3),
        }
    }

    /// Gymnasium's `goal_velocity` keyword (default 0), builder style: the episode terminates
    /// only when the car reaches the goal position with at least this velocity. Errors
    /// ([`EnvError::InvalidArgument`]) when it is NaN or infinite.
    pub fn with_goal_velocity(mut self, goal_velocity: f64) -> Result<Self> {
        if !goal_velocity.is_finite() {
            return Err(EnvError::InvalidArgument(format!(
                "MountainCar goal_velocity must be a finite number, got {goal_velocity}"
            )));
        }
        self.goal_velocity = goal_velocity;
        Ok(self)
    }

    /// The velocity needed at the goal position.
    pub fn goal_velocity(&self) -> f64 {
        self.goal_velocity
    }

    /// The internal f64 state `[position, velocity]`.
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
        for (o, s) in obs.iter_mut().zip(self.state) {
            *o = s as f32;
        }
    }
}

impl Env for MountainCar {
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
                "step() called on a MountainCar episode that already ended (or was never reset)",
            ));
        }
        let [position, velocity] = self.state;
        // `velocity += (action - 1) * force + math.cos(3 * position) * (-gravity)`.
        let push = (index as f64 - 1.0) * FORCE;
        let velocity = clip(
            velocity + (push + (3.0 * position).cos() * -GRAVITY),
            -MAX_SPEED,
            MAX_SPEED,
        );
        let position = clip(position + velocity, MIN_POSITION, MAX_POSITION);
        let velocity = if position == MIN_POSITION && velocity < 0.0 {
            0.0
        } else {
            velocity
        };
        self.state = [position, velocity];
        let terminated = position >= GOAL_POSITION && velocity >= self.goal_velocity;
        self.needs_reset = terminated;
        self.write_obs(obs);
        Ok(StepOutcome {
            reward: -1.0,
            terminated,
            truncated: false,
            info: Info::default(),
        })
    }

    fn id(&self) -> &str {
        "MountainCar-v0"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn left_wall_stops_the_car() {
        let mut env = MountainCar::new();
        env.set_state([MIN_POSITION, -MAX_SPEED]);
        let mut obs = [0.0f32; 2];
        env.step_into(Action::Discrete(0), &mut obs).unwrap();
        assert_eq!(env.state(), [MIN_POSITION, 0.0]);
        assert_eq!(obs, [MIN_POSITION as f32, 0.0]);
    }
}
