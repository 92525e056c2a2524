//! SB3's `RolloutBuffer`: transitions in `[n_steps, n_envs]` layout, and returns/advantages by
//! generalized advantage estimation with SB3's exact float32 arithmetic.

use crate::error::{AlgoError, Result};
use candle_core::{Device, Tensor};
use rl_env::Space;

/// The inputs of [`compute_gae`], all in `[n_steps, n_envs]` row-major layout except the last
/// step's `last_values`/`dones` (`[n_envs]`).
#[derive(Clone, Copy, Debug)]
pub struct GaeInput<'a> {
    /// Number of environments (the row width).
    pub n_envs: usize,
    /// Rewards (after the timeout bootstrap).
    pub rewards: &'a [f32],
    /// `V(s_t)` at rollout time.
    pub values: &'a [f32],
    /// 1.0 where `s_t` is the first observation of an episode.
    pub episode_starts: &'a [f32],
    /// `V` of the observation after the last step.
    pub last_values: &'a [f32],
    /// Whether the last step ended an episode.
    pub dones: &'a [bool],
}

/// Generalized advantage estimation exactly as SB3's `compute_returns_and_advantage`, writing
/// `advantages` and `returns = advantages + values` (both `[n_steps, n_envs]`).
///
/// Arithmetic is float32 in SB3's (NumPy's) order: `delta = (r + (gamma * V') * nnt) - V`,
/// `A = delta + ((gamma * lambda) * nnt) * A'`, where `gamma` is rounded to f32 and
/// `gamma * lambda` is an f64 product rounded once.
pub fn compute_gae(
    input: &GaeInput<'_>,
    gamma: f64,
    gae_lambda: f64,
    advantages: &mut [f32],
    returns: &mut [f32],
) -> Result<()> {
    let n = input.n_envs;
    let len = input.rewards.len();
    if n == 0 || !len.is_multiple_of(n) {
        return Err(AlgoError::InvalidArgument(format!(
            "GAE: {len} rewards do not form rows of {n} environments"
        )));
    }
    for (what, l) in [
        ("values", input.values.len()),
        ("episode_starts", input.episode_starts.len()),
        ("advantages", advantages.len()),
        ("returns", returns.len()),
    ] {
        if l != len {
            return Err(AlgoError::InvalidArgument(format!(
                "GAE: {what} has length {l}, rewards has {len}"
            )));
        }
    }
    for (what, l) in [
        ("last_values", input.last_values.len()),
        ("dones", input.dones.len()),
    ] {
        if l != n {
            return Err(AlgoError::InvalidArgument(format!(
                "GAE: {what} has length {l}, expected n_envs = {n}"
            )));
        }
    }
    let g = gamma as f32;
    let gl = (gamma * gae_lambda) as f32;
    let n_steps = len / n;
    for env in 0..n {
        let mut last_gae = 0.0f32;
        for step in (0..n_steps).rev() {
            let i = step * n + env;
            let (next_non_terminal, next_value) = if step == n_steps - 1 {
                (
                    1.0 - f32::from(u8::from(input.dones[env])),
                    input.last_values[env],
                )
            } else {
                (1.0 - input.episode_starts[i + n], input.values[i + n])
            };
            let delta = (input.rewards[i] + (g * next_value) * next_non_terminal) - input.values[i];
            last_gae = delta + (gl * next_non_terminal) * last_gae;
            advantages[i] = last_gae;
            returns[i] = last_gae + input.values[i];
        }
    }
    Ok(())
}

/// SB3's timeout bootstrap for an episode cut short by a time limit:
/// `reward + f32(f32(gamma) * V(final_obs))`.
#[inline]
pub fn bootstrap_truncated(reward: f32, gamma: f64, terminal_value: f32) -> f32 {
    reward + (gamma as f32) * terminal_value
}

/// Transitions of one rollout, `[n_steps, n_envs]` row-major (row = step), filled with
/// [`RolloutBuffer::add`]; all storage is allocated once.
#[derive(Clone, Debug)]
pub struct RolloutBuffer {
    n_steps: usize,
    n_envs: usize,
    obs_dim: usize,
    act_dim: usize,
    pos: usize,
    observations: Vec<f32>,
    actions: Vec<f32>,
    rewards: Vec<f32>,
    episode_starts: Vec<f32>,
    values: Vec<f32>,
    log_probs: Vec<f32>,
    advantages: Vec<f32>,
    returns: Vec<f32>,
}

/// One row (vector step) handed to [`RolloutBuffer::add`]; every slice is `[n_envs]` or
/// `[n_envs, dim]`.
#[derive(Clone, Copy, Debug)]
pub struct Transition<'a> {
    /// The observations the actions were taken in.
    pub observations: &'a [f32],
    /// The actions as the policy produced them (indices for discrete spaces, unclipped values
    /// for Box spaces).
    pub actions: &'a [f32],
    /// Rewards (after any timeout bootstrap).
    pub rewards: &'a [f32],
    /// Whether each observation starts an episode.
    pub episode_starts: &'a [bool],
    /// `V(observation)`.
    pub values: &'a [f32],
    /// `log pi(action | observation)`.
    pub log_probs: &'a [f32],
}

impl RolloutBuffer {
    /// An empty buffer for `n_steps` steps of `n_envs` environments.
    pub fn new(n_steps: usize, n_envs: usize, obs_dim: usize, act_dim: usize) -> Result<Self> {
        if n_steps == 0 || n_envs == 0 || obs_dim == 0 || act_dim == 0 {
            return Err(AlgoError::InvalidArgument(format!(
                "rollout buffer sizes must be positive: n_steps {n_steps}, n_envs {n_envs}, \
                 obs_dim {obs_dim}, act_dim {act_dim}"
            )));
        }
        let rows = n_steps * n_envs;
        Ok(RolloutBuffer {
            n_steps,
            n_envs,
            obs_dim,
            act_dim,
            pos: 0,
            observations: vec![0.0; rows * obs_dim],
            actions: vec![0.0; rows * act_dim],
            rewards: vec![0.0; rows],
            episode_starts: vec![0.0; rows],
            values: vec![0.0; rows],
            log_probs: vec![0.0; rows],
            advantages: vec![0.0; rows],
            returns: vec![0.0; rows],
        })
    }

    /// Empties the buffer (storage is kept).
    pub fn reset(&mut self) {
        self.pos = 0;
    }

    /// Steps stored so far.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Whether all `n_steps` rows are filled.
    pub fn is_full(&self) -> bool {
        self.pos == self.n_steps
    }

    /// Rows per rollout.
    pub fn n_steps(&self) -> usize {
        self.n_steps
    }

    /// Environments per row.
    pub fn n_envs(&self) -> usize {
        self.n_envs
    }

    /// Observation width.
    pub fn obs_dim(&self) -> usize {
        self.obs_dim
    }

    /// Action width (1 for discrete actions).
    pub fn act_dim(&self) -> usize {
        self.act_dim
    }

    /// Appends one row; errors when full or when a slice has the wrong length.
    pub fn add(&mut self, t: &Transition<'_>) -> Result<()> {
        if self.is_full() {
            return Err(AlgoError::InvalidArgument(format!(
                "rollout buffer is full ({} steps); call reset()",
                self.n_steps
            )));
        }
        let n = self.n_envs;
        for (what, len, expected) in [
            ("observations", t.observations.len(), n * self.obs_dim),
            ("actions", t.actions.len(), n * self.act_dim),
            ("rewards", t.rewards.len(), n),
            ("episode_starts", t.episode_starts.len(), n),
            ("values", t.values.len(), n),
            ("log_probs", t.log_probs.len(), n),
        ] {
            if len != expected {
                return Err(AlgoError::InvalidArgument(format!(
                    "rollout buffer add: {what} has length {len}, expected {expected}"
                )));
            }
        }
        let p = self.pos;
        let (od, ad) = (self.obs_dim, self.act_dim);
        self.observations[p * n * od..(p + 1) * n * od].copy_from_slice(t.observations);
        self.actions[p * n * ad..(p + 1) * n * ad].copy_from_slice(t.actions);
        self.rewards[p * n..(p + 1) * n].copy_from_slice(t.rewards);
        self.values[p * n..(p + 1) * n].copy_from_slice(t.values);
        self.log_probs[p * n..(p + 1) * n].copy_from_slice(t.log_probs);
        for (dst, &s) in self.episode_starts[p * n..(p + 1) * n]
            .iter_mut()
            .zip(t.episode_starts)
        {
            *dst = f32::from(u8::from(s));
        }
        self.pos += 1;
        Ok(())
    }

    /// Computes advantages and returns of a full buffer (SB3's
    /// `compute_returns_and_advantage`); see [`compute_gae`].
    pub fn compute_returns_and_advantage(
        &mut self,
        last_values: &[f32],
        dones: &[bool],
        gamma: f64,
        gae_lambda: f64,
    ) -> Result<()> {
        if !self.is_full() {
            return Err(AlgoError::InvalidArgument(format!(
                "returns need a full rollout buffer: {} of {} steps stored",
                self.pos, self.n_steps
            )));
        }
        let input = GaeInput {
            n_envs: self.n_envs,
            rewards: &self.rewards,
            values: &self.values,
            episode_starts: &self.episode_starts,
            last_values,
            dones,
        };
        compute_gae(
            &input,
            gamma,
            gae_lambda,
            &mut self.advantages,
            &mut self.returns,
        )
    }

    /// Observations `[n_steps, n_envs, obs_dim]`.
    pub fn observations(&self) -> &[f32] {
        &self.observations
    }

    /// Actions `[n_steps, n_envs, act_dim]`.
    pub fn actions(&self) -> &[f32] {
        &self.actions
    }

    /// Rewards `[n_steps, n_envs]`.
    pub fn rewards(&self) -> &[f32] {
        &self.rewards
    }

    /// Episode-start flags (0/1) `[n_steps, n_envs]`.
    pub fn episode_starts(&self) -> &[f32] {
        &self.episode_starts
    }

    /// Rollout-time values `[n_steps, n_envs]`.
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// Rollout-time log-probabilities `[n_steps, n_envs]`.
    pub fn log_probs(&self) -> &[f32] {
        &self.log_probs
    }

    /// Advantages `[n_steps, n_envs]` (valid after `compute_returns_and_advantage`).
    pub fn advantages(&self) -> &[f32] {
        &self.advantages
    }

    /// Returns `[n_steps, n_envs]` (valid after `compute_returns_and_advantage`).
    pub fn returns(&self) -> &[f32] {
        &self.returns
    }

    /// Every array with its name, for checkpoints.
    pub(crate) fn arrays(&self) -> [(&'static str, &Vec<f32>); 8] {
        [
            ("observations", &self.observations),
            ("actions", &self.actions),
            ("rewards", &self.rewards),
            ("episode_starts", &self.episode_starts),
            ("values", &self.values),
            ("log_probs", &self.log_probs),
            ("advantages", &self.advantages),
            ("returns", &self.returns),
        ]
    }

    /// Mutable arrays in the order of [`RolloutBuffer::arrays`] and the position, for restoring.
    pub(crate) fn arrays_mut(&mut self) -> ([&mut Vec<f32>; 8], &mut usize) {
        (
            [
                &mut self.observations,
                &mut self.actions,
                &mut self.rewards,
                &mut self.episode_starts,
                &mut self.values,
                &mut self.log_probs,
                &mut self.advantages,
                &mut self.returns,
            ],
            &mut self.pos,
        )
    }
}

/// Stored actions of `rows` samples (`[rows, act_dim]` row-major, as [`RolloutBuffer`] keeps
/// them) as the tensor `evaluate_actions` takes for `action_space`: `[rows]` indices for a
/// `Discrete` space, `[rows, d]` for a `Box`.
pub fn actions_to_tensor(
    actions: &[f32],
    rows: usize,
    action_space: &Space,
    device: &Device,
) -> Result<Tensor> {
    let d = action_space.flat_dim();
    if actions.len() != rows * d {
        return Err(AlgoError::InvalidArgument(format!(
            "{} stored action values do not form {rows} actions of {d} values",
            actions.len()
        )));
    }
    Ok(match action_space {
        Space::Discrete { .. } => Tensor::from_slice(actions, rows, device)?,
        Space::Box(_) => Tensor::from_slice(actions, (rows, d), device)?,
    })
}

/// SB3's `explained_variance`: `1 - Var(y_true - y_pred) / Var(y_true)` (population variances),
/// NaN when `Var(y_true)` is 0.
pub fn explained_variance(y_pred: &[f32], y_true: &[f32]) -> f64 {
    // Two passes over the data (no copy): training calls this every iteration.
    fn var<I: Iterator<Item = f64> + Clone>(xs: I) -> f64 {
        let n = xs.clone().count().max(1) as f64;
        let mean = xs.clone().sum::<f64>() / n;
        xs.map(|x| (x - mean).powi(2)).sum::<f64>() / n
    }
    let var_y = var(y_true.iter().map(|&y| f64::from(y)));
    if var_y == 0.0 {
        return f64::NAN;
    }
    let var_diff = var(y_true.iter().zip(y_pred).map(|(&t, &p)| f64::from(t - p)));
    1.0 - var_diff / var_y
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gae_with_lambda_one_is_the_discounted_return_cut_at_episode_starts() {
        // One env, 3 steps, episode boundary before step 2.
        let rewards = [1.0f32, 1.0, 1.0];
        let values = [0.0f32; 3];
        let starts = [1.0f32, 0.0, 1.0];
        let input = GaeInput {
            n_envs: 1,
            rewards: &rewards,
            values: &values,
            episode_starts: &starts,
            last_values: &[10.0],
            dones: &[false],
        };
        let (mut adv, mut ret) = ([0.0f32; 3], [0.0f32; 3]);
        compute_gae(&input, 0.5, 1.0, &mut adv, &mut ret).unwrap();
        assert_eq!(adv, [1.5, 1.0, 6.0]);
        assert_eq!(ret, adv);
        let done = GaeInput {
            dones: &[true],
            ..input
        };
        compute_gae(&done, 0.5, 1.0, &mut adv, &mut ret).unwrap();
        assert_eq!(adv[2], 1.0);
    }

    #[test]
    fn gae_rejects_bad_lengths() {
        let input = GaeInput {
            n_envs: 2,
            rewards: &[1.0; 4],
            values: &[0.0; 3],
            episode_starts: &[0.0; 4],
            last_values: &[0.0; 2],
            dones: &[false; 2],
        };
        let (mut a, mut r) = ([0.0; 4], [0.0; 4]);
        assert!(compute_gae(&input, 0.99, 1.0, &mut a, &mut r).is_err());
    }

    #[test]
    fn buffer_fills_rows_and_refuses_overflow() {
        let mut b = RolloutBuffer::new(2, 2, 1, 1).unwrap();
        let row = Transition {
            observations: &[1.0, 2.0],
            actions: &[0.0, 1.0],
            rewards: &[1.0, 1.0],
            episode_starts: &[true, false],
            values: &[0.5, 0.5],
            log_probs: &[-0.7, -0.7],
        };
        assert!(b
            .compute_returns_and_advantage(&[0.0; 2], &[false; 2], 0.99, 1.0)
            .is_err());
        b.add(&row).unwrap();
        b.add(&row).unwrap();
        assert!(b.add(&row).is_err());
        assert_eq!(b.episode_starts(), [1.0, 0.0, 1.0, 0.0]);
        b.compute_returns_and_advantage(&[0.0; 2], &[false; 2], 0.99, 1.0)
            .unwrap();
        // Env 1: no boundary, r + 0.99 * 0.5 - 0.5 + 0.99 * (1 - 0.5) ...
        assert!(b.returns()[1] > b.returns()[3]);
        let bad = Transition {
            values: &[0.0],
            ..row
        };
        b.reset();
        assert!(b.add(&bad).is_err());
    }

    #[test]
    fn explained_variance_is_one_for_perfect_predictions() {
        assert_eq!(explained_variance(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]), 1.0);
        assert!(explained_variance(&[1.0, 2.0], &[2.0, 2.0]).is_nan());
        assert_eq!(bootstrap_truncated(1.0, 0.5, 2.0), 2.0);
    }
}
