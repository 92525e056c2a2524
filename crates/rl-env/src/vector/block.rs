//! What both engines share: a contiguous block of sub-environments stepped into rows of
//! [`VecBuffers`], action validation and the vector's life-cycle state.

use super::{AutoresetMode, VecAction, VecBuffers};
use crate::env::{Action, Env, Info};
use crate::error::{EnvError, Result};
use crate::seeding::Seed;
use crate::space::Space;

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
    /// A sub-environment panicked: the vector is unusable and every call returns this error.
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

    /// The state after a call that returned `result`.
    pub fn after(result: &Result<()>) -> State {
        match result {
            Ok(()) => State::Ready,
            Err(e @ EnvError::Worker { .. }) => State::Failed(e.clone()),
            Err(_) => State::NeedsReset(
                "a sub-environment failed during the last call of this vector env",
            ),
        }
    }
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

/// A contiguous block of sub-environments; `start` is the global index of the first.
pub(crate) struct Block<E> {
    pub start: usize,
    pub envs: Vec<E>,
    /// Next-step mode: the sub-environment finished on the last step and resets on this one.
    pub pending: Vec<bool>,
    /// Whether the last call may have written a non-empty info (true after a failed call).
    pub any_info: bool,
}

impl<E: Env> Block<E> {
    pub fn new(start: usize, envs: Vec<E>) -> Self {
        let pending = vec![false; envs.len()];
        Block {
            start,
            envs,
            pending,
            any_info: true,
        }
    }

    /// Resets every sub-environment of the block, the i-th with the i-th seed, into `rows`.
    pub fn reset(
        &mut self,
        seeds: impl Iterator<Item = Option<u128>>,
        rows: Rows<'_>,
    ) -> Result<()> {
        let d = rows.obs_dim;
        let obs_rows = rows.obs.chunks_exact_mut(d);
        self.any_info = true;
        let mut any_info = false;
        for (i, (seed, obs)) in seeds.zip(obs_rows).enumerate() {
            let seed = seed.map(Seed::from);
            let info = self.envs[i]
                .reset_into(seed.as_ref(), obs)
                .map_err(sub_env(self.start + i))?;
            any_info |= !info.is_empty();
            rows.infos[i] = info;
            self.pending[i] = false;
        }
        self.any_info = any_info;
        rows.rewards.fill(0.0);
        rows.terminated.fill(false);
        rows.truncated.fill(false);
        rows.has_final.fill(false);
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
        rows: Rows<'_>,
    ) -> Result<()> {
        // One loop per action kind keeps the dispatch on the kind out of the loop.
        match actions {
            VecAction::Discrete(a) => self.step_each(mode, rows, |i| Action::Discrete(a[i])),
            VecAction::Continuous(a) => self.step_each(mode, rows, |i| {
                Action::Continuous(&a[i * act_dim..(i + 1) * act_dim])
            }),
        }
    }

    #[inline(always)]
    fn step_each<'a>(
        &mut self,
        mode: AutoresetMode,
        rows: Rows<'_>,
        action: impl Fn(usize) -> Action<'a>,
    ) -> Result<()> {
        let (n, start) = (self.envs.len(), self.start);
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
                let info = env.reset_into(None, obs).map_err(sub_env(start + i))?;
                pending[i] = false;
                rewards[i] = 0.0;
                terminated[i] = false;
                truncated[i] = false;
                has_final[i] = false;
                any_info |= !info.is_empty();
                infos[i] = info;
                continue;
            }
            let mut res = env.step_into(action(i), obs);
            // Reading the fields in place, rather than moving the whole outcome out first,
            // avoids wide copies of freshly written bytes (store-forwarding stalls).
            let out = match &mut res {
                Ok(out) => out,
                Err(_) => return res.map(drop).map_err(sub_env(start + i)),
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
                        env.reset_into(None, obs).map_err(sub_env(start + i))?;
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
