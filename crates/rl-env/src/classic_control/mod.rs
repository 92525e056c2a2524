//! The classic-control environments of Gymnasium 1.4, bit-exact.

mod cartpole;

pub use cartpole::CartPole;

use crate::seeding::{NpRandom, Seed};

/// Gymnasium's `reset(seed)` rule for `np_random`: a seed replaces the generator; no seed keeps
/// the current one (or seeds one from OS entropy the first time).
pub(crate) fn reseed<'a>(rng: &'a mut Option<NpRandom>, seed: Option<&Seed>) -> &'a mut NpRandom {
    match seed {
        Some(s) => rng.insert(NpRandom::from_seed(s)),
        None => rng.get_or_insert_with(NpRandom::from_os_entropy),
    }
}
