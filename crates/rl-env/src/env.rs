//! The [`Env`] trait: Gymnasium's `reset`/`step` contract over flat `f32` observations.

use crate::error::{EnvError, Result};
use crate::seeding::Seed;
use crate::space::Space;
use std::collections::BTreeMap;

/// An action handed to [`Env::step_into`]: an integer for `Discrete` spaces, a flat `f32`
/// slice for `Box` spaces.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Action<'a> {
    /// A discrete action.
    Discrete(i64),
    /// A continuous action (length = the action space's flat dimension).
    Continuous(&'a [f32]),
}

impl Action<'_> {
    /// "discrete" or "continuous", for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Discrete(_) => "discrete",
            Action::Continuous(_) => "continuous",
        }
    }
}

/// Statistics of a finished episode, like the `info["episode"]` of SB3's `Monitor` and
/// Gymnasium's `RecordEpisodeStatistics`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpisodeStats {
    /// Sum of the rewards (`r`).
    pub r#return: f64,
    /// Number of steps (`l`).
    pub length: u64,
    /// Seconds since the wrapper was created (`t`).
    pub time_s: f64,
}

/// The info dict of a reset or a step. Empty (and allocation-free) unless a wrapper or an
/// environment fills it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Info {
    /// Set on the last step of an episode by [`crate::wrappers::RecordEpisodeStatistics`].
    pub episode: Option<EpisodeStats>,
    /// Any other numeric entries an environment reports.
    pub extra: BTreeMap<String, f64>,
}

impl Info {
    /// Whether nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.episode.is_none() && self.extra.is_empty()
    }

    /// Empties the info without freeing memory.
    pub fn clear(&mut self) {
        self.episode = None;
        self.extra.clear();
    }
}

/// The outcome of one [`Env::step_into`] besides the observation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StepOutcome {
    /// The reward (f64, as Gymnasium returns it).
    pub reward: f64,
    /// The episode reached a terminal state of the MDP.
    pub terminated: bool,
    /// The episode was cut short (time limit), the state is not terminal.
    pub truncated: bool,
    /// Extra information.
    pub info: Info,
}

impl StepOutcome {
    /// `terminated || truncated`.
    pub fn done(&self) -> bool {
        self.terminated || self.truncated
    }
}

/// An owned step result, returned by the convenience method [`Env::step`].
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// The observation after the step.
    pub obs: Vec<f32>,
    /// The reward.
    pub reward: f64,
    /// Terminal state reached.
    pub terminated: bool,
    /// Cut short.
    pub truncated: bool,
    /// Extra information.
    pub info: Info,
}

/// A reinforcement-learning environment with Gymnasium semantics.
///
/// The required methods write the observation into a caller-provided slice of length
/// `observation_space().flat_dim()`, so vectors of environments fill one contiguous buffer and
/// nothing is allocated per step. [`Env::reset`] and [`Env::step`] are allocating conveniences.
///
/// Contract: `step_into` before the first reset, or after a step that returned `terminated` or
/// `truncated`, is an error ([`EnvError::NeedsReset`]) until the next reset.
pub trait Env: Send {
    /// The space observations live in (always flat `f32`).
    fn observation_space(&self) -> &Space;

    /// The space actions live in.
    fn action_space(&self) -> &Space;

    /// Starts an episode, reseeding the environment's generator when `seed` is given (as
    /// `env.reset(seed=...)` does), and writes the first observation into `obs`.
    fn reset_into(&mut self, seed: Option<&Seed>, obs: &mut [f32]) -> Result<Info>;

    /// Applies `action`, writes the next observation into `obs` and returns reward and flags.
    fn step_into(&mut self, action: Action<'_>, obs: &mut [f32]) -> Result<StepOutcome>;

    /// A short name (the registry id for registered environments).
    fn id(&self) -> &str {
        "custom"
    }

    /// `env.reset(seed=seed)`, returning an owned observation.
    fn reset(&mut self, seed: Option<u64>) -> Result<(Vec<f32>, Info)> {
        let mut obs = vec![0.0; self.observation_space().flat_dim()];
        let seed = seed.map(Seed::from);
        let info = self.reset_into(seed.as_ref(), &mut obs)?;
        Ok((obs, info))
    }

    /// `env.step(action)`, returning an owned observation.
    fn step(&mut self, action: Action<'_>) -> Result<Step> {
        let mut obs = vec![0.0; self.observation_space().flat_dim()];
        let out = self.step_into(action, &mut obs)?;
        Ok(Step {
            obs,
            reward: out.reward,
            terminated: out.terminated,
            truncated: out.truncated,
            info: out.info,
        })
    }
}

impl<E: Env + ?Sized> Env for Box<E> {
    fn observation_space(&self) -> &Space {
        (**self).observation_space()
    }
    fn action_space(&self) -> &Space {
        (**self).action_space()
    }
    fn reset_into(&mut self, seed: Option<&Seed>, obs: &mut [f32]) -> Result<Info> {
        (**self).reset_into(seed, obs)
    }
    fn step_into(&mut self, action: Action<'_>, obs: &mut [f32]) -> Result<StepOutcome> {
        (**self).step_into(action, obs)
    }
    fn id(&self) -> &str {
        (**self).id()
    }
}

/// Checks an observation buffer's length against a space; for implementors of [`Env`].
#[inline]
pub fn check_obs_buffer(space: &Space, obs: &[f32]) -> Result<()> {
    let expected = space.flat_dim();
    if obs.len() == expected {
        Ok(())
    } else {
        Err(EnvError::ObservationBuffer {
            expected,
            actual: obs.len(),
        })
    }
}
