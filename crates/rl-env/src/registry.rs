//! `make(id)`: Gymnasium's registry of the classic-control environments.

use crate::classic_control::{Acrobot, CartPole, MountainCar, MountainCarContinuous, Pendulum};
use crate::env::Env;
use crate::error::{EnvError, Result};
use crate::wrappers::TimeLimit;

/// Options for [`make_with`], like the keyword arguments of `gymnasium.make`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EnvSpec {
    /// Overrides the registered `max_episode_steps`; `Some(0)` is an error.
    pub max_episode_steps: Option<u64>,
    /// Leaves out the `TimeLimit` wrapper altogether.
    pub disable_time_limit: bool,
}

struct Registered {
    id: &'static str,
    max_episode_steps: u64,
    reward_threshold: Option<f64>,
    /// Builds the environment, inside a `TimeLimit` of the given length if any.
    build: fn(Option<u64>) -> Result<Box<dyn Env>>,
}

/// Boxes `env`, inside a `TimeLimit` when `limit` is given. Wrapping the concrete type keeps
/// one dynamic call per step: a `TimeLimit<Box<dyn Env>>` makes two, which costs a vector of
/// CartPoles about 15 ns per env-step (`docs/benchmarks/env.md`).
fn boxed<E: Env + 'static>(env: E, limit: Option<u64>) -> Result<Box<dyn Env>> {
    Ok(match limit {
        Some(limit) => Box::new(TimeLimit::new(env, limit)?),
        None => Box::new(env),
    })
}

/// Gymnasium 1.4's registrations (`gymnasium/envs/__init__.py`).
const REGISTRY: &[Registered] = &[
    Registered {
        id: "CartPole-v1",
        max_episode_steps: 500,
        reward_threshold: Some(475.0),
        build: |limit| boxed(CartPole::new(), limit),
    },
    Registered {
        id: "Acrobot-v1",
        max_episode_steps: 500,
        reward_threshold: Some(-100.0),
        build: |limit| boxed(Acrobot::new(), limit),
    },
    Registered {
        id: "MountainCar-v0",
        max_episode_steps: 200,
        reward_threshold: Some(-110.0),
        build: |limit| boxed(MountainCar::new(), limit),
    },
    Registered {
        id: "MountainCarContinuous-v0",
        max_episode_steps: 999,
        reward_threshold: Some(90.0),
        build: |limit| boxed(MountainCarContinuous::new(), limit),
    },
    Registered {
        id: "Pendulum-v1",
        max_episode_steps: 200,
        reward_threshold: None,
        build: |limit| boxed(Pendulum::new(), limit),
    },
];

/// The registered ids.
pub fn registered_ids() -> Vec<&'static str> {
    REGISTRY.iter().map(|r| r.id).collect()
}

fn lookup(id: &str) -> Result<&'static Registered> {
    REGISTRY
        .iter()
        .find(|r| r.id == id)
        .ok_or_else(|| EnvError::UnknownEnv {
            id: id.to_string(),
            known: registered_ids().join(", "),
        })
}

/// The registered `max_episode_steps` of `id`.
pub fn max_episode_steps(id: &str) -> Result<u64> {
    Ok(lookup(id)?.max_episode_steps)
}

/// The registered `reward_threshold` of `id` (the score at which it counts as solved).
pub fn reward_threshold(id: &str) -> Result<Option<f64>> {
    Ok(lookup(id)?.reward_threshold)
}

/// `gymnasium.make(id)`: the environment wrapped in its registered `TimeLimit`.
pub fn make(id: &str) -> Result<Box<dyn Env>> {
    make_with(id, &EnvSpec::default())
}

/// `gymnasium.make(id, max_episode_steps=...)`.
pub fn make_with(id: &str, spec: &EnvSpec) -> Result<Box<dyn Env>> {
    let r = lookup(id)?;
    let limit = spec.max_episode_steps.unwrap_or(r.max_episode_steps);
    (r.build)((!spec.disable_time_limit).then_some(limit))
}
