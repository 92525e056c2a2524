//! `make(id)`: Gymnasium's registry, with its classic-control ids and the ids users add.
//!
//! Everything that builds environments by name (`make`, `make_with`, `SyncVecEnv::make`,
//! `ThreadVecEnv::make`, the `train` example) goes through this one registry, so an
//! environment registered with [`register`] is usable wherever a Gymnasium id is.
//!
//! - The five classic-control ids are built in, with Gymnasium 1.4's `max_episode_steps`,
//!   `reward_threshold` and keyword arguments.
//! - [`register`] adds an id for the rest of the process, like `gymnasium.register`. Unlike
//!   Gymnasium, which warns and overrides, registering an id that exists (built-in or not) is an
//!   error ([`EnvError::AlreadyRegistered`]): a second registration under the same name is
//!   almost always two pieces of code disagreeing about what the name means, and silently
//!   replacing an environment would change results far from the cause. Register a new id (e.g.
//!   `"MyCartPole-v0"`) to change one.
//! - The registry is a process-wide `RwLock`: registering and making are thread-safe, and a
//!   constructor may itself call [`make`] (no lock is held while it runs).
//!
//! ```
//! use rl_env::classic_control::CartPole;
//! use rl_env::{make, make_with, register, EnvKwargs, EnvRegistration, EnvSpec};
//!
//! // An id for CartPole with the Sutton & Barto reward unless told otherwise.
//! register(
//!     "CartPoleSuttonBarto-v1",
//!     EnvRegistration::new(|kwargs| {
//!         let sutton_barto = kwargs.get_bool("sutton_barto_reward")?.unwrap_or(true);
//!         Ok(Box::new(CartPole::new().with_sutton_barto_reward(sutton_barto)))
//!     })
//!     .with_max_episode_steps(500)
//!     .with_reward_threshold(-1.0),
//! )?;
//! let env = make("CartPoleSuttonBarto-v1")?;
//! assert_eq!(env.id(), "CartPole-v1"); // the concrete environment's own name
//! assert!(register("CartPoleSuttonBarto-v1", EnvRegistration::new(|_| unreachable!())).is_err());
//! # Ok::<(), rl_env::EnvError>(())
//! ```

use crate::classic_control::{Acrobot, CartPole, MountainCar, MountainCarContinuous, Pendulum};
use crate::env::Env;
use crate::error::{EnvError, Result};
use crate::kwargs::{EnvKwargs, KwargReader, KwargValue};
use crate::wrappers::TimeLimit;
use std::fmt;
use std::sync::{Arc, RwLock};

/// The keyword that [`make_with`] takes itself instead of passing it to the constructor, as
/// `gymnasium.make(id, max_episode_steps=...)` does.
pub const MAX_EPISODE_STEPS: &str = "max_episode_steps";

/// Options for [`make_with`], like the keyword arguments of `gymnasium.make`.
///
/// `kwargs` go to the environment's constructor (`gymnasium.make(id, **kwargs)`), over the
/// defaults it was registered with; a `max_episode_steps` among them sets the time limit, as
/// the field of that name does (giving both is an error).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EnvSpec {
    /// Overrides the registered `max_episode_steps`; `Some(0)` is an error.
    pub max_episode_steps: Option<u64>,
    /// Leaves out the `TimeLimit` wrapper altogether.
    pub disable_time_limit: bool,
    /// Keyword arguments for the environment (see [`crate::kwargs`]).
    pub kwargs: EnvKwargs,
}

/// A user-supplied constructor: reads its keyword arguments, returns the environment.
pub type EnvConstructor = dyn Fn(&mut KwargReader<'_>) -> Result<Box<dyn Env>> + Send + Sync;

/// What [`register`] records for an id: the constructor (Gymnasium's `entry_point`), the
/// default time limit, the score that counts as solved, and default keyword arguments.
#[derive(Clone)]
pub struct EnvRegistration {
    entry_point: Arc<EnvConstructor>,
    max_episode_steps: Option<u64>,
    reward_threshold: Option<f64>,
    kwargs: EnvKwargs,
}

impl fmt::Debug for EnvRegistration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvRegistration")
            .field("max_episode_steps", &self.max_episode_steps)
            .field("reward_threshold", &self.reward_threshold)
            .field("kwargs", &self.kwargs)
            .finish_non_exhaustive()
    }
}

impl EnvRegistration {
    /// A registration that builds environments with `entry_point`, with no time limit, no
    /// reward threshold and no default keyword arguments.
    ///
    /// The constructor reads its keyword arguments through the [`KwargReader`]; keywords it
    /// does not read are refused by [`make_with`] ([`EnvError::UnknownKwarg`]).
    pub fn new<F>(entry_point: F) -> Self
    where
        F: Fn(&mut KwargReader<'_>) -> Result<Box<dyn Env>> + Send + Sync + 'static,
    {
        EnvRegistration {
            entry_point: Arc::new(entry_point),
            max_episode_steps: None,
            reward_threshold: None,
            kwargs: EnvKwargs::new(),
        }
    }

    /// Wraps made environments in a `TimeLimit` of `steps` (at least 1; checked by
    /// [`register`]).
    pub fn with_max_episode_steps(mut self, steps: u64) -> Self {
        self.max_episode_steps = Some(steps);
        self
    }

    /// The episode return at which the environment counts as solved.
    pub fn with_reward_threshold(mut self, threshold: f64) -> Self {
        self.reward_threshold = Some(threshold);
        self
    }

    /// Default keyword arguments, which those given to [`make_with`] override (Gymnasium's
    /// `register(..., kwargs=...)`).
    pub fn with_kwargs(mut self, kwargs: EnvKwargs) -> Self {
        self.kwargs = kwargs;
        self
    }
}

/// Builds a built-in environment inside a `TimeLimit` of the given length, if any.
type BuiltinBuild = fn(&mut KwargReader<'_>, Option<u64>) -> Result<Box<dyn Env>>;

struct Builtin {
    id: &'static str,
    max_episode_steps: u64,
    reward_threshold: Option<f64>,
    build: BuiltinBuild,
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

/// Reads the float keyword `name` and applies it with an environment's builder method,
/// turning the builder's `InvalidArgument` into the `InvalidKwarg` of that keyword.
fn float_kwarg<E>(
    r: &mut KwargReader<'_>,
    name: &str,
    env: E,
    apply: fn(E, f64) -> Result<E>,
) -> Result<E> {
    match r.get_float(name)? {
        None => Ok(env),
        Some(v) => apply(env, v).map_err(|e| match e {
            EnvError::InvalidArgument(message) => r.invalid(name, &KwargValue::Float(v), &message),
            other => other,
        }),
    }
}

/// Gymnasium 1.4's registrations (`gymnasium/envs/__init__.py`) and the keyword arguments of
/// the classes behind them (`render_mode` aside).
const BUILTINS: &[Builtin] = &[
    Builtin {
        id: "CartPole-v1",
        max_episode_steps: 500,
        reward_threshold: Some(475.0),
        build: |r, limit| {
            let sutton_barto = r.get_bool("sutton_barto_reward")?.unwrap_or(false);
            boxed(
                CartPole::new().with_sutton_barto_reward(sutton_barto),
                limit,
            )
        },
    },
    Builtin {
        id: "Acrobot-v1",
        max_episode_steps: 500,
        reward_threshold: Some(-100.0),
        build: |_, limit| boxed(Acrobot::new(), limit),
    },
    Builtin {
        id: "MountainCar-v0",
        max_episode_steps: 200,
        reward_threshold: Some(-110.0),
        build: |r, limit| {
            let env = MountainCar::new();
            let env = float_kwarg(r, "goal_velocity", env, MountainCar::with_goal_velocity)?;
            boxed(env, limit)
        },
    },
    Builtin {
        id: "MountainCarContinuous-v0",
        max_episode_steps: 999,
        reward_threshold: Some(90.0),
        build: |r, limit| {
            let env = MountainCarContinuous::new();
            let env = float_kwarg(
                r,
                "goal_velocity",
                env,
                MountainCarContinuous::with_goal_velocity,
            )?;
            boxed(env, limit)
        },
    },
    Builtin {
        id: "Pendulum-v1",
        max_episode_steps: 200,
        reward_threshold: None,
        build: |r, limit| {
            let env = float_kwarg(r, "g", Pendulum::new(), Pendulum::with_g)?;
            boxed(env, limit)
        },
    },
];

struct Custom {
    /// Interned for the life of the process (the registry never forgets an id), so that
    /// [`registered_ids`] can hand out `&'static str`s.
    id: &'static str,
    registration: EnvRegistration,
}

/// The ids registered by users, in registration order.
static CUSTOM: RwLock<Vec<Custom>> = RwLock::new(Vec::new());

/// Runs `f` on the custom registrations. A poisoned lock is still consistent (entries are only
/// ever pushed, after every check), so poisoning is ignored.
fn with_custom<T>(f: impl FnOnce(&[Custom]) -> T) -> T {
    let guard = CUSTOM.read().unwrap_or_else(|p| p.into_inner());
    f(&guard)
}

/// What [`make_with`] needs of a registration, copied out so no lock is held while building.
enum Entry {
    Builtin(&'static Builtin),
    Custom(&'static str, EnvRegistration),
}

impl Entry {
    fn id(&self) -> &'static str {
        match self {
            Entry::Builtin(b) => b.id,
            Entry::Custom(id, _) => id,
        }
    }

    fn max_episode_steps(&self) -> Option<u64> {
        match self {
            Entry::Builtin(b) => Some(b.max_episode_steps),
            Entry::Custom(_, r) => r.max_episode_steps,
        }
    }

    fn reward_threshold(&self) -> Option<f64> {
        match self {
            Entry::Builtin(b) => b.reward_threshold,
            Entry::Custom(_, r) => r.reward_threshold,
        }
    }
}

/// The registered ids: the built-in ones in Gymnasium's order, then the registered ones in
/// the order they were registered.
pub fn registered_ids() -> Vec<&'static str> {
    let mut ids: Vec<&'static str> = BUILTINS.iter().map(|b| b.id).collect();
    with_custom(|custom| ids.extend(custom.iter().map(|c| c.id)));
    ids
}

fn lookup(id: &str) -> Result<Entry> {
    if let Some(b) = BUILTINS.iter().find(|b| b.id == id) {
        return Ok(Entry::Builtin(b));
    }
    with_custom(|custom| {
        custom
            .iter()
            .find(|c| c.id == id)
            .map(|c| Entry::Custom(c.id, c.registration.clone()))
    })
    .ok_or_else(|| EnvError::UnknownEnv {
        id: id.to_string(),
        known: registered_ids().join(", "),
    })
}

/// Checks that `id` is a usable Gymnasium-style id: non-empty, at most 200 characters, made of
/// ASCII letters, digits and `_ - . : /` (Gymnasium's `[namespace/]name[-vN]` alphabet).
fn check_id(id: &str) -> Result<()> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || "_-.:/".contains(c);
    if id.is_empty() || id.len() > 200 || !id.chars().all(ok_char) {
        return Err(EnvError::InvalidArgument(format!(
            "environment id {id:?} must be 1 to 200 characters among ASCII letters, digits and _-.:/"
        )));
    }
    Ok(())
}

/// `gymnasium.register(id, entry_point, ...)`: makes `id` known to [`make`], [`make_with`],
/// the vector environments' `make` and everything built on them, for the rest of the process.
///
/// Errors: [`EnvError::AlreadyRegistered`] when `id` is registered already (see the module
/// docs for why this is not an override), [`EnvError::InvalidArgument`] for an id outside
/// Gymnasium's alphabet or a `max_episode_steps` of 0.
pub fn register(id: &str, registration: EnvRegistration) -> Result<()> {
    check_id(id)?;
    if registration.max_episode_steps == Some(0) {
        return Err(EnvError::InvalidArgument(format!(
            "{id}: max_episode_steps must be at least 1"
        )));
    }
    if BUILTINS.iter().any(|b| b.id == id) {
        return Err(EnvError::AlreadyRegistered { id: id.to_string() });
    }
    let mut custom = CUSTOM.write().unwrap_or_else(|p| p.into_inner());
    if custom.iter().any(|c| c.id == id) {
        return Err(EnvError::AlreadyRegistered { id: id.to_string() });
    }
    // Leaked once per successful registration: ids are never removed.
    let id: &'static str = Box::leak(id.to_string().into_boxed_str());
    custom.push(Custom { id, registration });
    Ok(())
}

/// The registered `max_episode_steps` of `id` (`None` when it is registered without a time
/// limit).
pub fn max_episode_steps(id: &str) -> Result<Option<u64>> {
    Ok(lookup(id)?.max_episode_steps())
}

/// The registered `reward_threshold` of `id` (the score at which it counts as solved).
pub fn reward_threshold(id: &str) -> Result<Option<f64>> {
    Ok(lookup(id)?.reward_threshold())
}

/// `gymnasium.make(id)`: the environment wrapped in its registered `TimeLimit`.
pub fn make(id: &str) -> Result<Box<dyn Env>> {
    make_with(id, &EnvSpec::default())
}

/// `gymnasium.make(id, max_episode_steps=..., **kwargs)`.
///
/// The keyword arguments are the registration's defaults updated with `spec.kwargs`; the
/// constructor must read every one of them, else [`EnvError::UnknownKwarg`]. Errors also for an
/// unknown id ([`EnvError::UnknownEnv`]), a keyword of the wrong type or value
/// ([`EnvError::InvalidKwarg`]), and a time limit of 0 or given twice
/// ([`EnvError::InvalidArgument`]).
pub fn make_with(id: &str, spec: &EnvSpec) -> Result<Box<dyn Env>> {
    let entry = lookup(id)?;
    let id = entry.id();
    let mut kwargs = match &entry {
        Entry::Builtin(_) => EnvKwargs::new(),
        Entry::Custom(_, r) => r.kwargs.clone(),
    };
    let mut given = spec.kwargs.clone();
    let kwarg_limit = match given.remove(MAX_EPISODE_STEPS) {
        None => None,
        Some(value) => {
            let mut one = EnvKwargs::new();
            one.insert(MAX_EPISODE_STEPS, value);
            let mut reader = KwargReader::new(id, &one);
            match reader.get_int(MAX_EPISODE_STEPS)? {
                Some(n) if n >= 1 => Some(n as u64),
                Some(n) => {
                    return Err(reader.invalid(
                        MAX_EPISODE_STEPS,
                        &n.into(),
                        "expected a positive number of steps",
                    ))
                }
                None => None,
            }
        }
    };
    kwargs.update(&given);
    let limit = match (spec.max_episode_steps, kwarg_limit) {
        (Some(_), Some(_)) => {
            return Err(EnvError::InvalidArgument(format!(
                "{id}: max_episode_steps given both in EnvSpec and in its kwargs"
            )))
        }
        (Some(n), None) | (None, Some(n)) => Some(n),
        (None, None) => entry.max_episode_steps(),
    };
    let limit = if spec.disable_time_limit { None } else { limit };
    let mut reader = KwargReader::new(id, &kwargs);
    let env = match &entry {
        Entry::Builtin(b) => (b.build)(&mut reader, limit)?,
        Entry::Custom(_, r) => {
            let env = (r.entry_point)(&mut reader)?;
            match limit {
                Some(limit) => Box::new(TimeLimit::new(env, limit)?),
                None => env,
            }
        }
    };
    reader.finish(&[MAX_EPISODE_STEPS])?;
    Ok(env)
}
