//! SB3's `ReplayBuffer` (and its `NStepReplayBuffer`): transitions of `n_envs` environments in
//! a ring of `rows` rows, uniform sampling, n-step returns.
//!
//! Semantics (`stable_baselines3/common/buffers.py`, SB3 2.9):
//! - `rows = max(buffer_size / n_envs, 1)`; one [`ReplayBuffer::add`] writes row `pos` for every
//!   environment; when `pos` reaches `rows` the buffer is full and wraps to 0.
//! - A finished episode's `next_obs` is its final observation (not the next episode's first),
//!   and `done` is stored for terminations and truncations alike, with a separate `timeout`
//!   flag for truncations: a sample's done is `done * (1 - timeout)`
//!   (`handle_timeout_termination`), so a truncated transition bootstraps.
//! - [`ReplayBuffer::sample`] draws `batch_size` row indices uniformly from the filled part
//!   (with replacement), then one environment index per sample.
//! - With `n_steps > 1` a sample starting at row `b` looks `n` rows ahead (wrapping), stops at
//!   the first done or truncation (inclusive) and at the newest row (which counts as truncated
//!   unless done), and gives `sum_j gamma^j r_j`, `gamma^k` for the `k` rows used, and the last
//!   row's next observation and done, with NumPy's float32 arithmetic.
//!
//! All storage is allocated once, in one contiguous `f32` array per field; samples are written
//! into a caller's [`ReplaySamples`], reused from call to call: nothing is allocated per insert
//! or per sample.

use crate::error::{AlgoError, Result};
use rand::{Rng, RngCore};

/// Most values a replay buffer may hold (every field together): 2^31 `f32`s, 8 GiB. Larger
/// products of `buffer_size` and the space sizes are configuration mistakes (or hostile files),
/// refused before anything is allocated.
pub const MAX_REPLAY_VALUES: usize = 1 << 31;

/// Longest n-step horizon [`ReplayBuffer::with_n_steps`] accepts.
pub const MAX_N_STEPS: usize = 64;

/// One row handed to [`ReplayBuffer::add`]: every slice is `[n_envs]` or `[n_envs, dim]`.
#[derive(Clone, Copy, Debug)]
pub struct ReplayTransition<'a> {
    /// Observations the actions were taken in.
    pub observations: &'a [f32],
    /// Next observations (the final observation where an episode ended).
    pub next_observations: &'a [f32],
    /// Actions as the algorithm stores them (action indices for discrete spaces).
    pub actions: &'a [f32],
    /// Rewards.
    pub rewards: &'a [f32],
    /// Whether the step ended an episode (terminated or truncated).
    pub dones: &'a [bool],
    /// Whether it was cut by a time limit (truncated and not terminated).
    pub timeouts: &'a [bool],
}

/// A batch sampled from a [`ReplayBuffer`], reused across calls; every field is `[len]` or
/// `[len, dim]`.
#[derive(Clone, Debug, Default)]
pub struct ReplaySamples {
    /// Row of each sample.
    pub batch_inds: Vec<usize>,
    /// Environment of each sample.
    pub env_indices: Vec<usize>,
    /// Observations.
    pub observations: Vec<f32>,
    /// Actions.
    pub actions: Vec<f32>,
    /// Next observations (n-step: of the last row used).
    pub next_observations: Vec<f32>,
    /// Rewards (n-step: the discounted sum).
    pub rewards: Vec<f32>,
    /// `done * (1 - timeout)` (n-step: of the last row used).
    pub dones: Vec<f32>,
    /// n-step only: `gamma^k` for the `k` rows used; empty for one-step buffers.
    pub discounts: Vec<f32>,
}

impl ReplaySamples {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.batch_inds.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.batch_inds.is_empty()
    }
}

/// SB3's replay buffer; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct ReplayBuffer {
    rows: usize,
    n_envs: usize,
    obs_dim: usize,
    act_dim: usize,
    pos: usize,
    full: bool,
    n_steps: usize,
    gamma: f64,
    observations: Vec<f32>,
    next_observations: Vec<f32>,
    actions: Vec<f32>,
    rewards: Vec<f32>,
    dones: Vec<f32>,
    timeouts: Vec<f32>,
}

/// Allocates `n` zeros, or an error instead of an abort when memory is short.
fn zeros(n: usize, what: &str) -> Result<Vec<f32>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| {
        AlgoError::InvalidArgument(format!("cannot allocate the replay buffer's {what}"))
    })?;
    v.resize(n, 0.0);
    Ok(v)
}

impl ReplayBuffer {
    /// An empty buffer of `buffer_size` transitions (`max(buffer_size / n_envs, 1)` rows of
    /// `n_envs`), one-step returns.
    pub fn new(buffer_size: usize, n_envs: usize, obs_dim: usize, act_dim: usize) -> Result<Self> {
        let rows = Self::rows_for(buffer_size, n_envs, obs_dim, act_dim)?;
        let cells = rows * n_envs;
        Ok(ReplayBuffer {
            rows,
            n_envs,
            obs_dim,
            act_dim,
            pos: 0,
            full: false,
            n_steps: 1,
            gamma: 0.99,
            observations: zeros(cells * obs_dim, "observations")?,
            next_observations: zeros(cells * obs_dim, "next observations")?,
            actions: zeros(cells * act_dim, "actions")?,
            rewards: zeros(cells, "rewards")?,
            dones: zeros(cells, "dones")?,
            timeouts: zeros(cells, "timeouts")?,
        })
    }

    /// The number of rows a buffer of these sizes has, or an error when a size is 0 or the
    /// buffer would hold more than [`MAX_REPLAY_VALUES`] values.
    pub fn rows_for(
        buffer_size: usize,
        n_envs: usize,
        obs_dim: usize,
        act_dim: usize,
    ) -> Result<usize> {
        if buffer_size == 0 || n_envs == 0 || obs_dim == 0 || act_dim == 0 {
            return Err(AlgoError::InvalidArgument(format!(
                "replay buffer sizes must be positive: buffer_size {buffer_size}, n_envs \
                 {n_envs}, obs_dim {obs_dim}, act_dim {act_dim}"
            )));
        }
        let rows = (buffer_size / n_envs).max(1);
        let values = obs_dim
            .checked_mul(2)
            .and_then(|o| o.checked_add(act_dim)?.checked_add(3))
            .and_then(|per| per.checked_mul(n_envs)?.checked_mul(rows))
            .filter(|&v| v <= MAX_REPLAY_VALUES);
        values.map(|_| rows).ok_or_else(|| {
            AlgoError::InvalidArgument(format!(
                "a replay buffer of buffer_size {buffer_size} for {n_envs} environments with \
                 observations of {obs_dim} and actions of {act_dim} values needs more than \
                 {MAX_REPLAY_VALUES} values"
            ))
        })
    }

    /// Turns on n-step returns (SB3's `NStepReplayBuffer`) with discount `gamma`; `n_steps`
    /// 1 is the plain buffer. At most [`MAX_N_STEPS`] and the buffer's rows.
    pub fn with_n_steps(mut self, n_steps: usize, gamma: f64) -> Result<Self> {
        let max = MAX_N_STEPS.min(self.rows);
        if n_steps == 0 || n_steps > max {
            return Err(AlgoError::InvalidArgument(format!(
                "n_steps must lie in 1..={max} (at most {MAX_N_STEPS} and the buffer's rows), \
                 got {n_steps}"
            )));
        }
        if !(0.0..=1.0).contains(&gamma) {
            return Err(AlgoError::InvalidArgument(format!(
                "gamma must lie in [0, 1], got {gamma}"
            )));
        }
        self.n_steps = n_steps;
        self.gamma = gamma;
        Ok(self)
    }

    /// Rows of the ring.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Environments per row.
    pub fn n_envs(&self) -> usize {
        self.n_envs
    }

    /// Observation width.
    pub fn obs_dim(&self) -> usize {
        self.obs_dim
    }

    /// Action width.
    pub fn act_dim(&self) -> usize {
        self.act_dim
    }

    /// The row the next `add` writes.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Whether the ring has wrapped.
    pub fn is_full(&self) -> bool {
        self.full
    }

    /// n-step horizon (1: plain one-step returns).
    pub fn n_steps(&self) -> usize {
        self.n_steps
    }

    /// Rows samples are drawn from: all when full, else those written.
    pub fn upper_bound(&self) -> usize {
        if self.full {
            self.rows
        } else {
            self.pos
        }
    }

    /// Transitions stored (rows written times `n_envs`).
    pub fn len(&self) -> usize {
        self.upper_bound() * self.n_envs
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.upper_bound() == 0
    }

    /// Writes one row (all environments) at `pos` and advances it.
    pub fn add(&mut self, t: &ReplayTransition<'_>) -> Result<()> {
        let n = self.n_envs;
        for (what, len, expected) in [
            ("observations", t.observations.len(), n * self.obs_dim),
            (
                "next_observations",
                t.next_observations.len(),
                n * self.obs_dim,
            ),
            ("actions", t.actions.len(), n * self.act_dim),
            ("rewards", t.rewards.len(), n),
            ("dones", t.dones.len(), n),
            ("timeouts", t.timeouts.len(), n),
        ] {
            if len != expected {
                return Err(AlgoError::InvalidArgument(format!(
                    "replay buffer add: {what} has length {len}, expected {expected}"
                )));
            }
        }
        let (p, od, ad) = (self.pos, self.obs_dim, self.act_dim);
        self.observations[p * n * od..(p + 1) * n * od].copy_from_slice(t.observations);
        self.next_observations[p * n * od..(p + 1) * n * od].copy_from_slice(t.next_observations);
        self.actions[p * n * ad..(p + 1) * n * ad].copy_from_slice(t.actions);
        self.rewards[p * n..(p + 1) * n].copy_from_slice(t.rewards);
        for (dst, &d) in self.dones[p * n..(p + 1) * n].iter_mut().zip(t.dones) {
            *dst = f32::from(u8::from(d));
        }
        for (dst, &d) in self.timeouts[p * n..(p + 1) * n].iter_mut().zip(t.timeouts) {
            *dst = f32::from(u8::from(d));
        }
        self.pos += 1;
        if self.pos == self.rows {
            self.full = true;
            self.pos = 0;
        }
        Ok(())
    }

    /// Draws `batch_size` samples with `rng` (rows uniform over the filled part, then one
    /// environment each) and gathers them into `out`.
    pub fn sample(
        &self,
        batch_size: usize,
        rng: &mut dyn RngCore,
        out: &mut ReplaySamples,
    ) -> Result<()> {
        let upper = self.upper_bound();
        if upper == 0 {
            return Err(AlgoError::InvalidArgument(
                "cannot sample from an empty replay buffer".into(),
            ));
        }
        out.batch_inds.clear();
        out.batch_inds
            .extend((0..batch_size).map(|_| rng.gen_range(0..upper)));
        out.env_indices.clear();
        out.env_indices
            .extend((0..batch_size).map(|_| rng.gen_range(0..self.n_envs)));
        self.gather_drawn(out)
    }

    /// Gathers the samples at the given rows and environments into `out` (what
    /// [`ReplayBuffer::sample`] does after drawing them; public so that recorded indices can
    /// be replayed).
    pub fn gather(
        &self,
        batch_inds: &[usize],
        env_indices: &[usize],
        out: &mut ReplaySamples,
    ) -> Result<()> {
        out.batch_inds.clear();
        out.batch_inds.extend_from_slice(batch_inds);
        out.env_indices.clear();
        out.env_indices.extend_from_slice(env_indices);
        self.gather_drawn(out)
    }

    fn gather_drawn(&self, out: &mut ReplaySamples) -> Result<()> {
        let upper = self.upper_bound();
        if out.batch_inds.len() != out.env_indices.len() {
            return Err(AlgoError::InvalidArgument(format!(
                "{} row indices but {} environment indices",
                out.batch_inds.len(),
                out.env_indices.len()
            )));
        }
        if let Some(&b) = out.batch_inds.iter().find(|&&b| b >= upper) {
            return Err(AlgoError::InvalidArgument(format!(
                "replay row {b} is not filled (rows 0..{upper} are)"
            )));
        }
        if let Some(&e) = out.env_indices.iter().find(|&&e| e >= self.n_envs) {
            return Err(AlgoError::InvalidArgument(format!(
                "environment index {e} out of 0..{}",
                self.n_envs
            )));
        }
        let (n, od, ad) = (self.n_envs, self.obs_dim, self.act_dim);
        let cell = |b: usize, e: usize| b * n + e;
        out.observations.clear();
        out.actions.clear();
        for (&b, &e) in out.batch_inds.iter().zip(&out.env_indices) {
            let c = cell(b, e);
            out.observations
                .extend_from_slice(&self.observations[c * od..(c + 1) * od]);
            out.actions
                .extend_from_slice(&self.actions[c * ad..(c + 1) * ad]);
        }
        out.next_observations.clear();
        out.rewards.clear();
        out.dones.clear();
        out.discounts.clear();
        if self.n_steps == 1 {
            for (&b, &e) in out.batch_inds.iter().zip(&out.env_indices) {
                let c = cell(b, e);
                out.next_observations
                    .extend_from_slice(&self.next_observations[c * od..(c + 1) * od]);
                out.rewards.push(self.rewards[c]);
                out.dones.push(self.dones[c] * (1.0 - self.timeouts[c]));
            }
            return Ok(());
        }
        let g = self.gamma as f32;
        let newest = (self.pos + self.rows - 1) % self.rows;
        for (&b, &e) in out.batch_inds.iter().zip(&out.env_indices) {
            // The newest row counts as truncated unless done: no window runs past it.
            let timeout = |row: usize| {
                let c = cell(row, e);
                if row == newest && self.dones[c] == 0.0 {
                    1.0
                } else {
                    self.timeouts[c]
                }
            };
            let mut used = self.n_steps;
            for j in 0..self.n_steps {
                let row = (b + j) % self.rows;
                if self.dones[cell(row, e)] != 0.0 || timeout(row) != 0.0 {
                    used = j + 1;
                    break;
                }
            }
            // NumPy: (rewards * gamma ** arange(n, dtype=float32)) * mask, summed in float32.
            let mut terms = [0f32; MAX_N_STEPS];
            let terms = &mut terms[..self.n_steps];
            for (j, t) in terms.iter_mut().enumerate() {
                let row = (b + j) % self.rows;
                let mask = if j < used { 1.0 } else { 0.0 };
                *t = (self.rewards[cell(row, e)] * g.powf(j as f32)) * mask;
            }
            out.rewards.push(numpy_sum_f32(terms));
            out.discounts.push(g.powf(used as f32));
            let last = (b + used - 1) % self.rows;
            let c = cell(last, e);
            out.next_observations
                .extend_from_slice(&self.next_observations[c * od..(c + 1) * od]);
            out.dones.push(self.dones[c] * (1.0 - timeout(last)));
        }
        Ok(())
    }

    /// Every array with its name, for checkpoints.
    pub(crate) fn arrays(&self) -> [(&'static str, &Vec<f32>); 6] {
        [
            ("observations", &self.observations),
            ("next_observations", &self.next_observations),
            ("actions", &self.actions),
            ("rewards", &self.rewards),
            ("dones", &self.dones),
            ("timeouts", &self.timeouts),
        ]
    }

    /// Mutable arrays in the order of [`ReplayBuffer::arrays`], the position and the full
    /// flag, for restoring.
    pub(crate) fn state_mut(&mut self) -> ([&mut Vec<f32>; 6], &mut usize, &mut bool) {
        (
            [
                &mut self.observations,
                &mut self.next_observations,
                &mut self.actions,
                &mut self.rewards,
                &mut self.dones,
                &mut self.timeouts,
            ],
            &mut self.pos,
            &mut self.full,
        )
    }
}

/// NumPy's float32 sum of a short contiguous row (`np.add.reduce`, pairwise summation): below
/// 8 values a plain left-to-right sum, up to 128 eight interleaved partial sums combined as
/// `((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))` plus the remainder left to right.
/// (Checked bit for bit against NumPy 2.4.6's `a.sum(axis=1)` of float32 rows of 5 to 64
/// values; n-step windows are at most [`MAX_N_STEPS`] = 64 long.)
fn numpy_sum_f32(xs: &[f32]) -> f32 {
    if xs.len() < 8 {
        return xs.iter().fold(0.0f32, |acc, &x| acc + x);
    }
    let mut r = [0f32; 8];
    r.copy_from_slice(&xs[..8]);
    let body = xs.len() - xs.len() % 8;
    for chunk in xs[8..body].chunks_exact(8) {
        for (a, &x) in r.iter_mut().zip(chunk) {
            *a += x;
        }
    }
    let mut s = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for &x in &xs[body..] {
        s += x;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn row<'a>(
        obs: &'a [f32],
        next: &'a [f32],
        act: &'a [f32],
        rew: &'a [f32],
        done: &'a [bool],
        timeout: &'a [bool],
    ) -> ReplayTransition<'a> {
        ReplayTransition {
            observations: obs,
            next_observations: next,
            actions: act,
            rewards: rew,
            dones: done,
            timeouts: timeout,
        }
    }

    #[test]
    fn the_ring_wraps_and_samples_only_filled_rows() {
        let mut b = ReplayBuffer::new(6, 2, 1, 1).unwrap();
        assert_eq!(b.rows(), 3);
        let mut out = ReplaySamples::default();
        let mut rng = rand_chacha::ChaCha12Rng::seed_from_u64(0);
        assert!(b.sample(4, &mut rng, &mut out).is_err());
        for k in 0..4 {
            let v = k as f32;
            b.add(&row(
                &[v, v],
                &[v + 0.5; 2],
                &[1.0, 0.0],
                &[v; 2],
                &[false; 2],
                &[false; 2],
            ))
            .unwrap();
        }
        assert!(b.is_full());
        assert_eq!(b.pos(), 1);
        b.sample(50, &mut rng, &mut out).unwrap();
        assert!(out.batch_inds.iter().all(|&r| r < 3));
        // Row 0 was overwritten by the fourth add.
        for (k, &r) in out.batch_inds.iter().enumerate() {
            let expected = if r == 0 { 3.0 } else { r as f32 };
            assert_eq!(out.observations[k], expected);
        }
    }

    #[test]
    fn timeouts_are_not_dones_for_the_target() {
        let mut b = ReplayBuffer::new(4, 1, 1, 1).unwrap();
        b.add(&row(&[0.0], &[1.0], &[0.0], &[1.0], &[true], &[true]))
            .unwrap();
        b.add(&row(&[1.0], &[2.0], &[0.0], &[1.0], &[true], &[false]))
            .unwrap();
        let mut out = ReplaySamples::default();
        b.gather(&[0, 1], &[0, 0], &mut out).unwrap();
        assert_eq!(out.dones, [0.0, 1.0]);
        assert!(b.gather(&[2], &[0], &mut out).is_err());
        assert!(b.gather(&[0], &[1], &mut out).is_err());
    }

    #[test]
    fn n_step_windows_stop_at_dones_truncations_and_the_newest_row() {
        let mut b = ReplayBuffer::new(8, 1, 1, 1)
            .unwrap()
            .with_n_steps(3, 0.5)
            .unwrap();
        // rows: r=1 (no end), r=2 (truncated), r=4 (no end), r=8 (newest, not done)
        for (k, (r, done, timeout)) in [
            (1.0, false, false),
            (2.0, true, true),
            (4.0, false, false),
            (8.0, false, false),
        ]
        .into_iter()
        .enumerate()
        {
            let o = k as f32;
            b.add(&row(&[o], &[o + 0.5], &[0.0], &[r], &[done], &[timeout]))
                .unwrap();
        }
        let mut out = ReplaySamples::default();
        b.gather(&[0, 2, 3], &[0; 3], &mut out).unwrap();
        // From row 0: rows 0 and 1 (truncated at 1): 1 + 0.5 * 2, gamma^2, next obs of row 1,
        // done 0 (a truncation bootstraps).
        assert_eq!(out.rewards[0], 2.0);
        assert_eq!(out.discounts[0], 0.25);
        assert_eq!(out.next_observations[0], 1.5);
        assert_eq!(out.dones[0], 0.0);
        // From row 2: rows 2 and 3, stopped at the newest row (3).
        assert_eq!(out.rewards[1], 4.0 + 0.5 * 8.0);
        assert_eq!(out.discounts[1], 0.25);
        assert_eq!(out.next_observations[1], 3.5);
        // From row 3 (the newest): itself only.
        assert_eq!((out.rewards[2], out.discounts[2]), (8.0, 0.5));
    }

    #[test]
    fn absurd_sizes_are_errors() {
        assert!(ReplayBuffer::new(0, 1, 4, 1).is_err());
        assert!(ReplayBuffer::new(usize::MAX, 1, 4, 1).is_err());
        assert!(ReplayBuffer::new(1 << 40, 2, 4, 1).is_err());
        assert!(ReplayBuffer::new(8, 1, 1, 1)
            .unwrap()
            .with_n_steps(9, 0.9)
            .is_err());
    }
}
