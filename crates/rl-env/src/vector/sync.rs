//! In-thread vector engine: the whole vector is one [`Block`] stepped by the caller.

use super::block::{check_seeds, common_spaces, seeds_from, validate_actions, Block, State};
use super::{AutoresetMode, VecAction, VecBuffers, VecEnv};
use crate::env::Env;
use crate::error::Result;
use crate::registry::{make_with, EnvSpec};
use crate::space::Space;

/// Steps its sub-environments one after the other in the calling thread (SB3's `DummyVecEnv`,
/// Gymnasium's `SyncVectorEnv`), writing each observation straight into its row of one
/// contiguous buffer: a step allocates nothing.
///
/// With a concrete `E` (say `TimeLimit<CartPole>`) the sub-environments' calls are static and
/// inlined; the default `Box<dyn Env>` holds whatever [`crate::make`] returns.
///
/// # Failures
///
/// Both engines share this behaviour (and the code behind it). A call fails, naming the
/// lowest-index sub-environment at fault, when one
/// - returns an error: [`EnvError::SubEnv`] with that error;
/// - panics: [`EnvError::Panicked`] with the panic message. The panic is caught (it does not
///   unwind into the caller; the panic hook still prints its message) — unless the binary is
///   built with `panic = "abort"`, which nothing can catch;
/// - hands back a NaN or infinite observation (from `reset` or `step`), final observation or
///   reward: [`EnvError::NonFinite`] with the step (vector steps since the last reset, 0 being
///   the reset itself) and the value. Checking costs one vectorized pass over rows that are
///   still in cache.
///
/// The episodes are then half-stepped: every `step` returns [`EnvError::NeedsReset`] until a
/// `reset` succeeds. The reset calls `reset_into` on every sub-environment, the one at fault
/// included, and so relies on it to rebuild its state (all of this crate's environments
/// rebuild all of it); a panic may have left the sub-environment's random generator anywhere
/// in its stream, so reset with a seed to be reproducible again. A reset that fails the same
/// way is reported the same way and can be retried.
///
/// [`EnvError::SubEnv`]: crate::EnvError::SubEnv
/// [`EnvError::Panicked`]: crate::EnvError::Panicked
/// [`EnvError::NonFinite`]: crate::EnvError::NonFinite
/// [`EnvError::NeedsReset`]: crate::EnvError::NeedsReset
///
/// ```
/// use rl_env::{AutoresetMode, SyncVecEnv, VecAction, VecEnv};
///
/// let mut envs = SyncVecEnv::make("CartPole-v1", 4, AutoresetMode::SameStep)?;
/// envs.reset(Some(42))?; // sub-environment i is seeded with 42 + i
/// assert_eq!(envs.observations().len(), 4 * 4);
/// let mut finished = 0;
/// for _ in 0..100 {
///     envs.step(VecAction::Discrete(&[1, 1, 1, 1]))?;
///     for i in 0..envs.num_envs() {
///         // Same-step autoreset: a finished episode's last observation is kept aside and
///         // `observations()` already holds the next episode's first one.
///         if envs.buffers().done(i) {
///             assert!(envs.buffers().final_observation(i).is_some());
///             finished += 1;
///         }
///     }
/// }
/// assert!(finished > 0); // always pushing right ends episodes quickly
/// # Ok::<(), rl_env::EnvError>(())
/// ```
pub struct SyncVecEnv<E: Env = Box<dyn Env>> {
    block: Block<E>,
    buf: VecBuffers,
    observation_space: Space,
    action_space: Space,
    act_dim: usize,
    mode: AutoresetMode,
    state: State,
}

impl<E: Env> SyncVecEnv<E> {
    /// A vector of `envs`, which must be non-empty and share their observation and action
    /// spaces ([`crate::EnvError::SpaceMismatch`] otherwise). Call [`VecEnv::reset`] before
    /// stepping.
    pub fn new(envs: Vec<E>, mode: AutoresetMode) -> Result<Self> {
        let (observation_space, action_space) = common_spaces(&envs)?;
        let buf = VecBuffers::new(envs.len(), observation_space.flat_dim());
        Ok(SyncVecEnv {
            block: Block::new(0, envs),
            buf,
            act_dim: action_space.flat_dim(),
            observation_space,
            action_space,
            mode,
            state: State::NeedsReset("step() called on a vector env before reset()"),
        })
    }

    /// A vector of `n_envs` environments built by `f(i)`.
    pub fn from_fn(
        n_envs: usize,
        mode: AutoresetMode,
        f: impl FnMut(usize) -> Result<E>,
    ) -> Result<Self> {
        Self::new((0..n_envs).map(f).collect::<Result<_>>()?, mode)
    }

    /// The sub-environments.
    pub fn envs(&self) -> &[E] {
        &self.block.envs
    }

    /// The sub-environments, mutably (changing one's state outside `step`/`reset` is the
    /// caller's responsibility).
    pub fn envs_mut(&mut self) -> &mut [E] {
        &mut self.block.envs
    }

    /// Unwraps the sub-environments.
    pub fn into_envs(self) -> Vec<E> {
        self.block.envs
    }

    fn reset_seeds(&mut self, seeds: impl Iterator<Item = Option<u128>>) -> Result<()> {
        self.state.check_reset()?;
        let n = self.buf.n_envs;
        let result = self.block.reset(seeds, self.buf.rows(0, n));
        self.state = State::after(&result);
        result
    }
}

impl SyncVecEnv<Box<dyn Env>> {
    /// `n_envs` copies of the registered environment `id` ([`crate::make`]).
    pub fn make(id: &str, n_envs: usize, mode: AutoresetMode) -> Result<Self> {
        Self::make_with(id, &EnvSpec::default(), n_envs, mode)
    }

    /// `n_envs` copies of `make_with(id, spec)`.
    pub fn make_with(id: &str, spec: &EnvSpec, n_envs: usize, mode: AutoresetMode) -> Result<Self> {
        Self::from_fn(n_envs, mode, |_| make_with(id, spec))
    }
}

impl<E: Env> VecEnv for SyncVecEnv<E> {
    fn observation_space(&self) -> &Space {
        &self.observation_space
    }

    fn action_space(&self) -> &Space {
        &self.action_space
    }

    fn autoreset_mode(&self) -> AutoresetMode {
        self.mode
    }

    fn reset(&mut self, seed: Option<u64>) -> Result<()> {
        self.reset_seeds(seeds_from(seed, self.buf.n_envs))
    }

    fn reset_with_seeds(&mut self, seeds: &[Option<u64>]) -> Result<()> {
        check_seeds(seeds, self.buf.n_envs)?;
        self.reset_seeds(seeds.iter().map(|s| s.map(u128::from)))
    }

    fn step(&mut self, actions: VecAction<'_>) -> Result<()> {
        self.state.check_step()?;
        let n = self.buf.n_envs;
        validate_actions(&self.action_space, actions, n)?;
        let result = self
            .block
            .step(self.mode, actions, self.act_dim, self.buf.rows(0, n));
        if result.is_err() {
            self.state = State::after(&result);
        }
        result
    }

    fn buffers(&self) -> &VecBuffers {
        &self.buf
    }
}

impl<E: Env> std::fmt::Debug for SyncVecEnv<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncVecEnv")
            .field("num_envs", &self.buf.n_envs)
            .field("observation_space", &self.observation_space)
            .field("action_space", &self.action_space)
            .field("mode", &self.mode)
            .finish()
    }
}
