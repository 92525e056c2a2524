//! The classic-control environments of Gymnasium 1.4, bit-exact.
//!
//! Each environment keeps Gymnasium's state (`env.unwrapped.state`) as `f64` values, reproduces
//! the floating-point operation order and NumPy 2 dtype rules of the Python code, and exposes
//! `state()` / `set_state()` for replaying recorded trajectories.

mod acrobot;
mod cartpole;
mod mountain_car;
mod mountain_car_continuous;
mod pendulum;

pub use acrobot::Acrobot;
pub use cartpole::CartPole;
pub use mountain_car::MountainCar;
pub use mountain_car_continuous::{MountainCarContinuous, StateDtype};
pub use pendulum::Pendulum;

use crate::env::Action;
use crate::error::{EnvError, Result};
use crate::seeding::{NpRandom, Seed};
use crate::space::Space;

/// Gymnasium's `reset(seed)` rule for `np_random`: a seed replaces the generator; no seed keeps
/// the current one (or seeds one from OS entropy the first time).
pub(crate) fn reseed<'a>(rng: &'a mut Option<NpRandom>, seed: Option<&Seed>) -> &'a mut NpRandom {
    match seed {
        Some(s) => rng.insert(NpRandom::from_seed(s)),
        None => rng.get_or_insert_with(NpRandom::from_os_entropy),
    }
}

/// `x ** 2` on an `np.float64`: NumPy calls C's `pow(x, 2.0)`, which glibc does not special-case
/// and which can differ from `x * x` by one ulp. The opaque exponent keeps LLVM from rewriting
/// the call into a multiplication.
#[inline]
pub(crate) fn np_square(x: f64) -> f64 {
    x.powf(std::hint::black_box(2.0))
}

/// `x ** 2` on an `np.float32`: C's `powf(x, 2.0f)` (see [`np_square`]).
#[inline]
pub(crate) fn np_square_f32(x: f32) -> f32 {
    x.powf(std::hint::black_box(2.0))
}

/// Validates `action` against a `Discrete` space and returns its index from the space's start.
#[inline]
pub(crate) fn discrete_index(space: &Space, action: Action<'_>) -> Result<usize> {
    space.check_action(action)?;
    match (space, action) {
        // check_action guarantees start <= a < start + n, so the difference fits.
        (Space::Discrete { start, .. }, Action::Discrete(a)) => Ok((a - start) as usize),
        _ => Err(EnvError::ActionKind {
            given: action.kind(),
            space: space.to_string(),
        }),
    }
}

/// Validates `action` against a `Box` space (length, finiteness) and returns its components;
/// finite out-of-bounds values pass, the environments clip them as Gymnasium does.
#[inline]
pub(crate) fn continuous_action<'a>(space: &Space, action: Action<'a>) -> Result<&'a [f32]> {
    space.check_action(action)?;
    match action {
        Action::Continuous(x) => Ok(x),
        Action::Discrete(_) => Err(EnvError::ActionKind {
            given: action.kind(),
            space: space.to_string(),
        }),
    }
}

/// The f32 bounds of an observation space built from f64 constants, as `np.array(.., float32)`.
pub(crate) fn box_space(low: &[f64], high: &[f64]) -> Space {
    let low: Vec<f32> = low.iter().map(|&v| v as f32).collect();
    let high: Vec<f32> = high.iter().map(|&v| v as f32).collect();
    let n = low.len();
    // The bounds are compile-time constants with low <= high; BoxSpace::new cannot fail on them.
    match Space::boxed(low, high, vec![n]) {
        Ok(space) => space,
        Err(e) => unreachable!("static classic-control bounds are valid: {e}"),
    }
}
