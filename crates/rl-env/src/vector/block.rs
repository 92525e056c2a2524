//! What both engines share: a contiguous block of sub-environments stepped into rows of
//! [`VecBuffers`], action validation, the checks on what sub-environments hand back, and the
//! vector's life-cycle state.
//!
//! A [`super::SyncVecEnv`] is one block; a [`super::ThreadVecEnv`] is many, stepped by several
//! threads. Everything that decides what a vector call returns lives here, so the two engines
//! cannot drift apart:
//!
//! - **Panics.** A panic in a sub-environment's `reset_into` or `step_into` is caught around the
//!   whole block (one `catch_unwind` per block and call) and becomes [`EnvError::Panicked`]
//!   with the sub-environment's global index, which a guard that runs only while unwinding
//!   notes ([`InCall`]): the loop itself does no bookkeeping.
//! - **Non-finite values.** NaN or infinite observations, final observations and rewards are
//!   stopped where they enter the vector ([`EnvError::NonFinite`], with the sub-environment and
//!   the step), not many steps later in a loss that cannot say where they came from. After the
//!   loop, branch-free scans that vectorize check the block's buffers whole, while they are
//!   still in cache; only when one fails is the culprit looked for. (Final observations are
//!   scanned whole too: rows not in use hold earlier, already checked, final observations, or
//!   zeros after a reset. A non-finite one left by a failed call can only cost a false alarm,
//!   which the search then dismisses.) Adding code to the loop itself cost the in-thread engine
//!   up to 20% on CartPole; these checks cost about 1-2%.
//! - **Which error.** A failed call reports the failure of the lowest-index sub-environment,
//!   whatever the split into blocks: a block that fails at sub-environment `i` first looks for
//!   a non-finite value in its rows before `i`, and the threaded engine keeps the first error in
//!   block order.
//! - **After a failure** ([`State::after`]) the vector needs a `reset`: the episodes are
//!   half-stepped. A reset resets every sub-environment, the failed one included.

use super::{AutoresetMode, VecAction, VecBuffers};
use crate::env::{Action, Env, Info};
use crate::error::{EnvError, Result};
use crate::seeding::Seed;
use crate::space::Space;
use std::any::Any;
use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Mutable views of rows `start..start + len` of a [`VecBuffers`].
pub(crate) struct Rows<'a> {
    pub obs_dim: usize,
    pub obs: &'a mut [f32],
    pub rewards: &'a mut [f64],
    pub terminated: &'a mut [bool],
    pub truncated: &'a mut [bool],
    pub final_obs: &'a mut [f32],
    pub has_final: &'a mut [bool],
    pub infos: &'a mut [Info],
}

impl Rows<'_> {
    /// The same views, borrowed for a shorter time (so that they remain usable afterwards).
    fn reborrow(&mut self) -> Rows<'_> {
        Rows {
            obs_dim: self.obs_dim,
            obs: self.obs,
            rewards: self.rewards,
            terminated: self.terminated,
            truncated: self.truncated,
            final_obs: self.final_obs,
            has_final: self.has_final,
            infos: self.infos,
        }
    }
}

impl VecBuffers {
    /// Views of rows `start..start + len`; callers pass ranges inside the buffers.
    pub(crate) fn rows(&mut self, start: usize, len: usize) -> Rows<'_> {
        let d = self.obs_dim;
        Rows {
            obs_dim: d,
            obs: &mut self.obs[start * d..(start + len) * d],
            rewards: &mut self.rewards[start..start + len],
            terminated: &mut self.terminated[start..start + len],
            truncated: &mut self.truncated[start..start + len],
            final_obs: &mut self.final_obs[start * d..(start + len) * d],
            has_final: &mut self.has_final[start..start + len],
            infos: &mut self.infos[start..start + len],
        }
    }

    /// Copies `src` (a block's buffers) into rows `start..` of `self`; the infos only if
    /// `with_infos` (the caller knows when both sides hold only empty ones).
    pub(crate) fn copy_rows_from(&mut self, start: usize, src: &VecBuffers, with_infos: bool) {
        let rows = self.rows(start, src.n_envs);
        rows.obs.copy_from_slice(&src.obs);
        rows.rewards.copy_from_slice(&src.rewards);
        rows.terminated.copy_from_slice(&src.terminated);
        rows.truncated.copy_from_slice(&src.truncated);
        rows.has_final.copy_from_slice(&src.has_final);
        let d = src.obs_dim;
        for (i, _) in src.has_final.iter().enumerate().filter(|(_, &f)| f) {
            // Rows without a final observation are never read: copy only the others.
            rows.final_obs[i * d..(i + 1) * d].copy_from_slice(&src.final_obs[i * d..(i + 1) * d]);
        }
        if with_infos {
            rows.infos.clone_from_slice(&src.infos);
        }
    }
}

/// Where a vector stands between calls.
#[derive(Clone, Debug)]
pub(crate) enum State {
    /// Never reset, or a sub-environment failed in the last call: only `reset` is allowed.
    NeedsReset(&'static str),
    /// Stepping is allowed.
    Ready,
    /// The engine itself failed (a worker thread is gone): every call returns this error.
    Failed(EnvError),
}

impl State {
    /// The error a `step` call gets in this state, if any.
    pub fn check_step(&self) -> Result<()> {
        match self {
            State::Ready => Ok(()),
            State::NeedsReset(why) => Err(EnvError::NeedsReset(why)),
            State::Failed(e) => Err(e.clone()),
        }
    }

    /// The error a `reset` call gets in this state, if any.
    pub fn check_reset(&self) -> Result<()> {
        match self {
            State::Failed(e) => Err(e.clone()),
            _ => Ok(()),
        }
    }

    /// The state after a call whose blocks returned `result`. Whatever a sub-environment did
    /// (an error, a panic, a non-finite value), a `reset` makes the vector usable again; only a
    /// failure of the engine's own threads ([`EnvError::Worker`]) is final.
    pub fn after(result: &Result<()>) -> State {
        match result {
            Ok(()) => State::Ready,
            Err(e @ EnvError::Worker { .. }) => State::Failed(e.clone()),
            Err(EnvError::Panicked { .. }) => State::NeedsReset(
                "a sub-environment panicked during the last call of this vector env",
            ),
            Err(EnvError::NonFinite { .. }) => State::NeedsReset(
                "a sub-environment returned a NaN or infinite value during the last call of this \
                 vector env",
            ),
            Err(_) => State::NeedsReset(
                "a sub-environment failed during the last call of this vector env",
            ),
        }
    }
}

/// The message of a panic payload (`panic!` gives a `&str` or a `String`).
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(a panic without a message)")
}

/// Whether every value is finite: whether no magnitude reaches the infinities' bit pattern
/// (NaNs lie above it). Adding the lowest exponent bit carries such a magnitude, and only such
/// a one, into the sign bit; OR-ing the results is branch-free and vectorizes with plain SSE2.
#[inline]
fn all_finite_f32(x: &[f32]) -> bool {
    let carried = x.iter().fold(0u32, |acc, v| {
        acc | (v.to_bits() & 0x7fff_ffff).wrapping_add(0x0080_0000)
    });
    carried & 0x8000_0000 == 0
}

/// [`all_finite_f32`] for `f64`.
#[inline]
fn all_finite_f64(x: &[f64]) -> bool {
    let carried = x.iter().fold(0u64, |acc, v| {
        acc | (v.to_bits() & 0x7fff_ffff_ffff_ffff).wrapping_add(0x0010_0000_0000_0000)
    });
    carried & 0x8000_0000_0000_0000 == 0
}

/// The first non-finite value in rows `..upto` (each written by the current call), in
/// sub-environment order and, within one, in the order they arose: the final observation of a
/// finished episode, the reward, the observation. `start` is the global index of row 0.
fn first_non_finite(rows: &Rows<'_>, upto: usize, start: usize, step: u64) -> Option<EnvError> {
    let d = rows.obs_dim;
    let bad = |what: &'static str, row: &[f32]| {
        let k = row.iter().position(|v| !v.is_finite())?;
        Some((what, Some(k), f64::from(row[k])))
    };
    (0..upto).find_map(|j| {
        let final_obs = || match rows.has_final[j] {
            true => bad("final observation", &rows.final_obs[j * d..(j + 1) * d]),
            false => None,
        };
        let reward = || {
            let r = rows.rewards[j];
            (!r.is_finite()).then_some(("reward", None, r))
        };
        let (what, component, value) = final_obs()
            .or_else(reward)
            .or_else(|| bad("observation", &rows.obs[j * d..(j + 1) * d]))?;
        Some(EnvError::NonFinite {
            env: start + j,
            step,
            what,
            component,
            value,
        })
    })
}

/// The observation and action spaces of `envs`, which must be non-empty and agree; an empty
/// observation is refused.
pub(crate) fn common_spaces<E: Env>(envs: &[E]) -> Result<(Space, Space)> {
    let first = envs.first().ok_or_else(|| {
        EnvError::InvalidArgument("a vector env needs at least one sub-environment".into())
    })?;
    let (obs, act) = (first.observation_space(), first.action_space());
    if obs.flat_dim() == 0 {
        return Err(EnvError::InvalidArgument(format!(
            "observation space {obs} has no elements"
        )));
    }
    for (index, env) in envs.iter().enumerate().skip(1) {
        for (what, expected, actual) in [
            ("observation space", obs, env.observation_space()),
            ("action space", act, env.action_space()),
        ] {
            if expected != actual {
                return Err(EnvError::SpaceMismatch {
                    index,
                    what,
                    expected: expected.to_string(),
                    actual: actual.to_string(),
                });
            }
        }
    }
    Ok((obs.clone(), act.clone()))
}

/// Checks a whole batch before any sub-environment is touched, so a bad action leaves the
/// vector unchanged: length, kind, and each action against the action space.
pub(crate) fn validate_actions(space: &Space, actions: VecAction<'_>, n_envs: usize) -> Result<()> {
    let act_dim = space.flat_dim();
    match (space, actions) {
        (Space::Discrete { .. }, VecAction::Discrete(_))
        | (Space::Box(_), VecAction::Continuous(_)) => {}
        (_, a) => {
            return Err(EnvError::ActionKind {
                given: a.kind(),
                space: space.to_string(),
            })
        }
    }
    actions.check_len(n_envs, act_dim)?;
    // A cheap scan finds the first bad action; `check_action` then words the error.
    let bad = match actions {
        VecAction::Discrete(a) => a.iter().position(|&x| !space.contains_discrete(x)),
        VecAction::Continuous(a) => a.iter().position(|x| !x.is_finite()).map(|k| k / act_dim),
    };
    match bad {
        Some(index) => space
            .check_action(actions.get(index, act_dim))
            .map_err(sub_env(index)),
        None => Ok(()),
    }
}

/// Per-env seeds of `reset(seed)`: `seed + i`, computed in 128 bits so it cannot overflow.
pub(crate) fn seeds_from(seed: Option<u64>, n_envs: usize) -> impl Iterator<Item = Option<u128>> {
    (0..n_envs).map(move |i| seed.map(|s| s as u128 + i as u128))
}

/// Checks the length of a per-env seed list.
pub(crate) fn check_seeds(seeds: &[Option<u64>], n_envs: usize) -> Result<()> {
    if seeds.len() == n_envs {
        Ok(())
    } else {
        Err(EnvError::BatchLength {
            what: "seeds",
            expected: n_envs,
            actual: seeds.len(),
        })
    }
}

/// Wraps an error of sub-environment `index` (global index).
fn sub_env(index: usize) -> impl FnOnce(EnvError) -> EnvError {
    move |e| EnvError::SubEnv {
        index,
        source: Box::new(e),
    }
}

/// Why a block call stopped before its last sub-environment.
enum Stop {
    /// Sub-environment `.0` (block-local) returned this error.
    Error(usize, EnvError),
    /// Sub-environment `.0` (block-local) panicked with this payload.
    Panic(usize, Box<dyn Any + Send>),
}

/// Notes which sub-environment a call is in, but only if the call panics: it is created before
/// the call and forgotten after it, so its `drop` runs only while unwinding. The stepping loop
/// thus pays nothing for knowing where a panic came from (a store per sub-environment made
/// the in-thread engine measurably slower).
struct InCall<'a> {
    at: &'a Cell<usize>,
    i: usize,
}

impl Drop for InCall<'_> {
    fn drop(&mut self) {
        self.at.set(self.i);
    }
}

/// A contiguous block of sub-environments; `start` is the global index of the first.
pub(crate) struct Block<E> {
    pub start: usize,
    pub envs: Vec<E>,
    /// Next-step mode: the sub-environment finished on the last step and resets on this one.
    pub pending: Vec<bool>,
    /// Whether the last call may have written a non-empty info (true after a failed call).
    pub any_info: bool,
    /// Vector steps since the last reset: the `step` of [`EnvError::NonFinite`].
    steps: u64,
}

impl<E: Env> Block<E> {
    pub fn new(start: usize, envs: Vec<E>) -> Self {
        let pending = vec![false; envs.len()];
        Block {
            start,
            envs,
            pending,
            any_info: true,
            steps: 0,
        }
    }

    /// Resets every sub-environment of the block, the i-th with the i-th seed, into `rows`.
    pub fn reset(
        &mut self,
        seeds: impl Iterator<Item = Option<u128>>,
        mut rows: Rows<'_>,
    ) -> Result<()> {
        self.steps = 0;
        self.any_info = true;
        self.pending.fill(false);
        rows.rewards.fill(0.0);
        rows.terminated.fill(false);
        rows.truncated.fill(false);
        rows.has_final.fill(false);
        // Final observations are read only where `has_final` is set; zeroing them keeps a
        // non-finite one that failed an earlier call off the fast path of the finiteness check.
        rows.final_obs.fill(0.0);
        let at = Cell::new(0);
        let caught = catch_unwind(AssertUnwindSafe(|| {
            self.reset_each(seeds, rows.reborrow(), &at)
        }));
        self.settle(caught, rows, &at)
    }

    fn reset_each(
        &mut self,
        seeds: impl Iterator<Item = Option<u128>>,
        rows: Rows<'_>,
        at: &Cell<usize>,
    ) -> Result<(), Stop> {
        let d = rows.obs_dim;
        let mut any_info = false;
        for (i, (seed, obs)) in seeds.zip(rows.obs.chunks_exact_mut(d)).enumerate() {
            let seed = seed.map(Seed::from);
            let guard = InCall { at, i };
            let info = self.envs[i].reset_into(seed.as_ref(), obs);
            std::mem::forget(guard);
            let info = info.map_err(|e| Stop::Error(i, e))?;
            any_info |= !info.is_empty();
            rows.infos[i] = info;
        }
        self.any_info = any_info;
        Ok(())
    }

    /// Steps every sub-environment of the block with its action (`actions` is block-local and
    /// already validated) and applies the autoreset rule.
    #[inline]
    pub fn step(
        &mut self,
        mode: AutoresetMode,
        actions: VecAction<'_>,
        act_dim: usize,
        mut rows: Rows<'_>,
    ) -> Result<()> {
        self.steps += 1;
        let at = Cell::new(0);
        // One loop per action kind keeps the dispatch on the kind out of the loop.
        let caught = catch_unwind(AssertUnwindSafe(|| match actions {
            VecAction::Discrete(a) => {
                self.step_each(mode, rows.reborrow(), &at, |i| Action::Discrete(a[i]))
            }
            VecAction::Continuous(a) => self.step_each(mode, rows.reborrow(), &at, |i| {
                Action::Continuous(&a[i * act_dim..(i + 1) * act_dim])
            }),
        }));
        self.settle(caught, rows, &at)
    }

    /// The result of a call: `Ok` if every sub-environment was called and every value written
    /// is finite (checked with branch-free scans of whole buffers; final observation rows
    /// that are not in use hold finite values too, unless an earlier call failed on one),
    /// else the failure of the lowest-index sub-environment.
    #[inline(always)]
    fn settle(
        &self,
        caught: std::thread::Result<Result<(), Stop>>,
        rows: Rows<'_>,
        at: &Cell<usize>,
    ) -> Result<()> {
        let stop = match caught {
            Ok(Ok(())) => {
                if all_finite_f32(rows.obs)
                    && all_finite_f64(rows.rewards)
                    && all_finite_f32(rows.final_obs)
                {
                    return Ok(());
                }
                None
            }
            Ok(Err(stop)) => Some(stop),
            Err(payload) => Some(Stop::Panic(at.get(), payload)),
        };
        self.failure(stop, &rows)
    }

    /// The error of a call that stopped at a sub-environment (`stop`) or wrote a non-finite
    /// value: the failure of the lowest-index sub-environment. The rows before the one that
    /// stopped the call are complete, and are checked first.
    #[cold]
    #[inline(never)]
    fn failure(&self, stop: Option<Stop>, rows: &Rows<'_>) -> Result<()> {
        let (upto, failure) = match stop {
            None => (self.envs.len(), None),
            Some(Stop::Error(i, e)) => (i, Some(sub_env(self.start + i)(e))),
            Some(Stop::Panic(i, payload)) => (
                i,
                Some(EnvError::Panicked {
                    index: self.start + i,
                    message: panic_message(&*payload).to_owned(),
                }),
            ),
        };
        match (
            first_non_finite(rows, upto, self.start, self.steps),
            failure,
        ) {
            (Some(e), _) | (None, Some(e)) => Err(e),
            (None, None) => Ok(()),
        }
    }

    #[inline(always)]
    fn step_each<'a>(
        &mut self,
        mode: AutoresetMode,
        rows: Rows<'_>,
        at: &Cell<usize>,
        action: impl Fn(usize) -> Action<'a>,
    ) -> Result<(), Stop> {
        let n = self.envs.len();
        let d = rows.obs_dim;
        // Equal-length slices let the optimizer drop the bounds checks in the loop.
        let rewards = &mut rows.rewards[..n];
        let terminated = &mut rows.terminated[..n];
        let truncated = &mut rows.truncated[..n];
        let has_final = &mut rows.has_final[..n];
        let infos = &mut rows.infos[..n];
        let pending = &mut self.pending[..n];
        let obs_rows = rows.obs.chunks_exact_mut(d);
        let final_rows = rows.final_obs.chunks_exact_mut(d);
        self.any_info = true;
        let mut any_info = false;
        for (i, ((env, obs), final_obs)) in self
            .envs
            .iter_mut()
            .zip(obs_rows)
            .zip(final_rows)
            .enumerate()
        {
            if mode == AutoresetMode::NextStep && pending[i] {
                let guard = InCall { at, i };
                let info = env.reset_into(None, obs);
                std::mem::forget(guard);
                let info = info.map_err(|e| Stop::Error(i, e))?;
                pending[i] = false;
                rewards[i] = 0.0;
                terminated[i] = false;
                truncated[i] = false;
                has_final[i] = false;
                any_info |= !info.is_empty();
                infos[i] = info;
                continue;
            }
            let guard = InCall { at, i };
            let mut res = env.step_into(action(i), obs);
            std::mem::forget(guard);
            // Reading the fields in place, rather than moving the whole outcome out first,
            // avoids wide copies of freshly written bytes (store-forwarding stalls).
            let out = match &mut res {
                Ok(out) => out,
                Err(_) => return res.map(drop).map_err(|e| Stop::Error(i, e)),
            };
            let done = out.terminated || out.truncated;
            rewards[i] = out.reward;
            terminated[i] = out.terminated;
            truncated[i] = out.truncated;
            any_info |= !out.info.is_empty();
            std::mem::swap(&mut infos[i], &mut out.info);
            match mode {
                AutoresetMode::SameStep => {
                    has_final[i] = done;
                    if done {
                        final_obs.copy_from_slice(obs);
                        // The reset's own info is dropped, as SB3 keeps the finished
                        // episode's info in `infos` (reset infos go elsewhere there).
                        let guard = InCall { at, i };
                        let reset = env.reset_into(None, obs);
                        std::mem::forget(guard);
                        reset.map_err(|e| Stop::Error(i, e))?;
                    }
                }
                AutoresetMode::NextStep => {
                    has_final[i] = false;
                    pending[i] = done;
                }
            }
        }
        self.any_info = any_info;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finiteness_scans_agree_with_is_finite() {
        let f32s = [
            0.0,
            -0.0,
            1.0,
            -1.5,
            f32::MIN_POSITIVE,
            f32::from_bits(1), // smallest subnormal
            f32::MAX,
            f32::MIN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            -f32::NAN,
            f32::from_bits(0x7f80_0001), // signalling NaN
            f32::from_bits(0xffff_ffff),
        ];
        for &x in &f32s {
            // Alone, and hidden in a buffer long enough for the vectorized loop.
            let mut long = vec![1.0f32; 37];
            long[29] = x;
            assert_eq!(all_finite_f32(&[x]), x.is_finite(), "{x:?}");
            assert_eq!(all_finite_f32(&long), x.is_finite(), "{x:?}");
            let y = f64::from(x);
            let mut long = vec![1.0f64; 37];
            long[3] = y;
            assert_eq!(all_finite_f64(&[y]), y.is_finite(), "{y:?}");
            assert_eq!(all_finite_f64(&long), y.is_finite(), "{y:?}");
        }
        for y in [
            f64::MAX,
            f64::MIN,
            f64::from_bits(1),
            f64::from_bits(0x7ff0_0000_0000_0001),
        ] {
            assert_eq!(all_finite_f64(&[0.0, y]), y.is_finite(), "{y:?}");
        }
        assert!(all_finite_f32(&[]) && all_finite_f64(&[]));
    }
}
