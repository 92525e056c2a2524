//! Gymnasium's `TimeLimit`.

use crate::env::{check_obs_buffer, Action, Env, Info, StepOutcome};
use crate::error::{EnvError, Result};
use crate::seeding::Seed;
use crate::space::Space;

/// Truncates episodes after `max_episode_steps` steps (`truncated = true` on that step; a
/// terminal step at the limit reports both flags, as in Gymnasium).
#[derive(Clone, Debug)]
pub struct TimeLimit<E> {
    env: E,
    max_episode_steps: u64,
    elapsed: u64,
    needs_reset: bool,
}

impl<E: Env> TimeLimit<E> {
    /// Wraps `env`; `max_episode_steps` must be positive.
    pub fn new(env: E, max_episode_steps: u64) -> Result<Self> {
        if max_episode_steps == 0 {
            return Err(EnvError::InvalidArgument(
                "TimeLimit needs max_episode_steps >= 1".into(),
            ));
        }
        Ok(TimeLimit {
            env,
            max_episode_steps,
            elapsed: 0,
            needs_reset: true,
        })
    }

    /// The step limit.
    pub fn max_episode_steps(&self) -> u64 {
        self.max_episode_steps
    }

    /// Steps taken in the current episode.
    pub fn elapsed_steps(&self) -> u64 {
        self.elapsed
    }

    /// The wrapped environment.
    pub fn inner(&self) -> &E {
        &self.env
    }

    /// The wrapped environment, mutably.
    pub fn inner_mut(&mut self) -> &mut E {
        &mut self.env
    }

    /// Unwraps.
    pub fn into_inner(self) -> E {
        self.env
    }
}

impl<E: Env> Env for TimeLimit<E> {
    fn observation_space(&self) -> &Space {
        self.env.observation_space()
    }

    fn action_space(&self) -> &Space {
        self.env.action_space()
    }

    fn reset_into(&mut self, seed: Option<&Seed>, obs: &mut [f32]) -> Result<Info> {
        let info = self.env.reset_into(seed, obs)?;
        self.elapsed = 0;
        self.needs_reset = false;
        Ok(info)
    }

    fn step_into(&mut self, action: Action<'_>, obs: &mut [f32]) -> Result<StepOutcome> {
        if self.needs_reset {
            check_obs_buffer(self.observation_space(), obs)?;
            return Err(EnvError::NeedsReset(
                "step() called on a TimeLimit episode that already ended (or was never reset)",
            ));
        }
        let mut out = self.env.step_into(action, obs)?;
        self.elapsed += 1;
        if self.elapsed >= self.max_episode_steps {
            out.truncated = true;
        }
        self.needs_reset = out.terminated || out.truncated;
        Ok(out)
    }

    fn id(&self) -> &str {
        self.env.id()
    }
}
