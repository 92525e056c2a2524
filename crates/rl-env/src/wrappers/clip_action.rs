//! Gymnasium's `ClipAction`.

use crate::env::{Action, Env, Info, StepOutcome};
use crate::error::{EnvError, Result};
use crate::seeding::Seed;
use crate::space::{BoxSpace, Space};

/// Clips finite continuous actions into the wrapped environment's `Box` bounds before stepping
/// it, so policies with unbounded outputs (a Gaussian) can act directly.
///
/// As in Gymnasium, the wrapper's own action space is the unbounded `Box` of the same shape
/// (every finite action is valid); [`ClipAction::bounds`] gives the wrapped one. Actions with
/// the wrong length or a NaN/infinite component are errors, as are discrete actions. The clipped
/// copy lives in a buffer allocated once, at construction.
#[derive(Clone, Debug)]
pub struct ClipAction<E> {
    env: E,
    bounds: BoxSpace,
    action_space: Space,
    clipped: Vec<f32>,
}

impl<E: Env> ClipAction<E> {
    /// Wraps `env`, whose action space must be a `Box`.
    pub fn new(env: E) -> Result<Self> {
        let bounds = match env.action_space() {
            Space::Box(b) => b.clone(),
            other => {
                return Err(EnvError::InvalidArgument(format!(
                    "ClipAction needs a Box action space, got {other}"
                )))
            }
        };
        let action_space = Space::Box(BoxSpace::uniform(
            f32::NEG_INFINITY,
            f32::INFINITY,
            bounds.shape().to_vec(),
        )?);
        let clipped = vec![0.0; bounds.flat_dim()];
        Ok(ClipAction {
            env,
            bounds,
            action_space,
            clipped,
        })
    }

    /// The bounds actions are clipped to (the wrapped environment's action space).
    pub fn bounds(&self) -> &BoxSpace {
        &self.bounds
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

impl<E: Env> Env for ClipAction<E> {
    fn observation_space(&self) -> &Space {
        self.env.observation_space()
    }

    fn action_space(&self) -> &Space {
        &self.action_space
    }

    fn reset_into(&mut self, seed: Option<&Seed>, obs: &mut [f32]) -> Result<Info> {
        self.env.reset_into(seed, obs)
    }

    fn step_into(&mut self, action: Action<'_>, obs: &mut [f32]) -> Result<StepOutcome> {
        let Action::Continuous(x) = action else {
            return Err(EnvError::ActionKind {
                given: action.kind(),
                space: self.action_space.to_string(),
            });
        };
        self.bounds.check_action(x)?;
        self.clipped.copy_from_slice(x);
        self.bounds.clip(&mut self.clipped);
        self.env.step_into(Action::Continuous(&self.clipped), obs)
    }

    fn id(&self) -> &str {
        self.env.id()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wrappers::test_support::Scripted;

    #[test]
    fn discrete_action_spaces_are_refused() {
        let err = ClipAction::new(Scripted::new(vec![1.0], 1)).unwrap_err();
        assert!(err.to_string().contains("Discrete(1)"), "{err}");
    }
}
