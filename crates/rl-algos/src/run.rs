//! What every learner keeps about its run, whatever the algorithm: the seed and the one
//! generator every random choice draws from, the timestep counters, and the window of
//! finished episodes behind `rollout/ep_rew_mean`. The on-policy core and REINFORCE both hold
//! these, and their checkpoints store them through the same code.

use crate::codec::{Reader, Writer};
use crate::error::Result;
use crate::optim::progress_remaining;
use rand::SeedableRng;
use rand_chacha::ChaCha12Rng;
use std::collections::VecDeque;

/// Seed, generator and timestep counters of a run.
#[derive(Clone, Debug)]
pub(crate) struct RunState {
    /// The effective seed (the configured one, or one drawn from the OS).
    pub(crate) seed: u64,
    /// The generator of action sampling, minibatch shuffles, episode seeds.
    pub(crate) rng: ChaCha12Rng,
    /// Environment steps so far, summed over the sub-environments.
    pub(crate) num_timesteps: u64,
    /// The `total_timesteps` of the current (or last) `learn`.
    pub(crate) total_timesteps: u64,
}

impl RunState {
    /// A fresh run from `seed`, or from a seed drawn from the OS.
    pub(crate) fn new(seed: Option<u64>) -> Self {
        let seed = seed.unwrap_or_else(rand::random);
        RunState {
            seed,
            rng: ChaCha12Rng::seed_from_u64(seed),
            num_timesteps: 0,
            total_timesteps: 0,
        }
    }

    /// SB3's `progress_remaining` for the schedules.
    pub(crate) fn progress_remaining(&self) -> f64 {
        progress_remaining(self.num_timesteps, self.total_timesteps)
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        w.u64(self.seed);
        w.rng(&self.rng);
        w.u64(self.num_timesteps);
        w.u64(self.total_timesteps);
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self> {
        Ok(RunState {
            seed: r.u64("seed")?,
            rng: r.rng()?,
            num_timesteps: r.u64("num_timesteps")?,
            total_timesteps: r.u64("total_timesteps")?,
        })
    }
}

/// Returns and lengths of the last `capacity` finished episodes (SB3's `ep_info_buffer`).
#[derive(Clone, Debug)]
pub(crate) struct EpisodeWindow {
    episodes: VecDeque<(f64, u64)>,
    capacity: usize,
}

/// Room reserved up front: a window fills within its first episodes, and a huge configured
/// size must not be allocated before any episode exists.
const INITIAL_WINDOW_ROOM: usize = 1024;

impl EpisodeWindow {
    pub(crate) fn new(capacity: usize) -> Self {
        EpisodeWindow {
            episodes: VecDeque::with_capacity(capacity.min(INITIAL_WINDOW_ROOM)),
            capacity,
        }
    }

    /// Adds a finished episode, dropping the oldest when full.
    pub(crate) fn push(&mut self, ret: f64, len: u64) {
        if self.episodes.len() == self.capacity {
            self.episodes.pop_front();
        }
        self.episodes.push_back((ret, len));
    }

    pub(crate) fn episodes(&self) -> &VecDeque<(f64, u64)> {
        &self.episodes
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        w.episode_info(&self.episodes);
    }

    /// Reads a window written by [`EpisodeWindow::write`] into one of `capacity` entries.
    pub(crate) fn read(r: &mut Reader<'_>, capacity: usize) -> Result<Self> {
        let episodes = r.episode_info(capacity.min(INITIAL_WINDOW_ROOM))?;
        if episodes.len() > capacity {
            return Err(r.err(format!(
                "{} episodes in a statistics window of {capacity}",
                episodes.len()
            )));
        }
        Ok(EpisodeWindow { episodes, capacity })
    }
}
