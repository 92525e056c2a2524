//! Tiny deterministic environments for the wrappers' unit tests.

use crate::env::{check_obs_buffer, Action, Env, Info, StepOutcome};
use crate::error::Result;
use crate::seeding::Seed;
use crate::space::{BoxSpace, Space};

/// Rewards cycle through `rewards`; every episode terminates after `episode_len` steps.
/// Observation `[steps taken in the episode, last reward]`. Deliberately does not track whether
/// it needs a reset, so tests see the wrappers' own checks.
#[derive(Debug)]
pub(crate) struct Scripted {
    rewards: Vec<f64>,
    episode_len: u64,
    t: u64,
    k: usize,
    obs_space: Space,
    act_space: Space,
}

impl Scripted {
    pub(crate) fn new(rewards: Vec<f64>, episode_len: u64) -> Self {
        Scripted {
            rewards,
            episode_len,
            t: 0,
            k: 0,
            obs_space: Space::Box(
                BoxSpace::uniform(f32::NEG_INFINITY, f32::INFINITY, vec![2]).unwrap(),
            ),
            act_space: Space::discrete(1),
        }
    }
}

impl Env for Scripted {
    fn observation_space(&self) -> &Space {
        &self.obs_space
    }

    fn action_space(&self) -> &Space {
        &self.act_space
    }

    fn reset_into(&mut self, _seed: Option<&Seed>, obs: &mut [f32]) -> Result<Info> {
        check_obs_buffer(&self.obs_space, obs)?;
        self.t = 0;
        obs.copy_from_slice(&[0.0, 0.0]);
        Ok(Info::default())
    }

    fn step_into(&mut self, action: Action<'_>, obs: &mut [f32]) -> Result<StepOutcome> {
        check_obs_buffer(&self.obs_space, obs)?;
        self.act_space.check_action(action)?;
        let reward = self.rewards[self.k % self.rewards.len()];
        self.k += 1;
        self.t += 1;
        obs.copy_from_slice(&[self.t as f32, reward as f32]);
        Ok(StepOutcome {
            reward,
            terminated: self.t >= self.episode_len,
            truncated: false,
            info: Info::default(),
        })
    }
}
