//! [`VecNormalize`]: SB3's `VecNormalize` wrapper (running observation normalization and
//! discounted-return reward scaling over a whole vector of environments), bit for bit.
//!
//! Why a separate running-statistics type from [`crate::wrappers::RunningMeanStd`]: SB3 feeds
//! NumPy's `np.mean`/`np.var` a float32 `[n_envs, obs_dim]` batch, so the batch moments are
//! computed *in float32* with NumPy's summation order, and only then merged into float64 running
//! statistics; the product `batch_var * batch_count` is a float32 product as well. The
//! Gymnasium-style wrapper computes everything in f64 and would drift from SB3 in the last bits.
//! The exact arithmetic (checked against NumPy 2.4 on random batches) is:
//!
//! - column sums over the batch axis: sequential over rows (`((x0 + x1) + x2) + ...`) when
//!   `obs_dim > 1`; for a single column (and for the 1-D float64 return batch) NumPy's pairwise
//!   summation (plain loop from 0 below 8 elements, 8 accumulators up to 128, halving above);
//! - `batch_mean = f32(sum / n)`, `batch_var = f32(sum((x - batch_mean)²) / n)`, every
//!   difference and square rounded to f32;
//! - `delta = batch_mean - mean` in f64, `mean += delta * n / (count + n)`,
//!   `var = (var * count + f64(f32(batch_var * n)) + delta² * count * n / (count + n)) / (count + n)`,
//!   `count += n` (evaluated left to right), `count` starting at 1e-4;
//! - rewards are float32 (SB3's `DummyVecEnv` buffer); `ret = ret * gamma + r`;
//!   `r_norm = f32(clip(r / sqrt(ret_var + epsilon), ±clip_reward))`, no mean subtraction;
//! - `obs_norm = f32(clip((obs - mean) / sqrt(var + epsilon), ±clip_obs))` in f64.
//!
//! The statistics travel with a model as a [`VecNormalizeSnapshot`] (see
//! [`VecNormalizeSnapshot::to_bytes`] / [`VecNormalizeSnapshot::from_bytes`]).

use super::{AutoresetMode, VecAction, VecBuffers, VecEnv};
use crate::error::{EnvError, Result};
use crate::space::Space;

/// Settings of [`VecNormalize`], with SB3's names and defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VecNormalizeConfig {
    /// Update the running statistics on `reset`/`step` (false: frozen, for evaluation).
    pub training: bool,
    /// Normalize observations.
    pub norm_obs: bool,
    /// Scale rewards by the running std of the discounted return.
    pub norm_reward: bool,
    /// Normalized observations are clipped to `[-clip_obs, clip_obs]`.
    pub clip_obs: f64,
    /// Scaled rewards are clipped to `[-clip_reward, clip_reward]`.
    pub clip_reward: f64,
    /// Discount of the running return.
    pub gamma: f64,
    /// Added to the variances before the square root.
    pub epsilon: f64,
}

impl Default for VecNormalizeConfig {
    fn default() -> Self {
        VecNormalizeConfig {
            training: true,
            norm_obs: true,
            norm_reward: true,
            clip_obs: 10.0,
            clip_reward: 10.0,
            gamma: 0.99,
            epsilon: 1e-8,
        }
    }
}

impl VecNormalizeConfig {
    /// Rejects non-finite or non-positive clips, `gamma` outside `[0, 1]` and a non-positive
    /// or non-finite `epsilon`.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str, v: f64| {
            Err(EnvError::InvalidArgument(format!(
                "VecNormalize {what} is {v}"
            )))
        };
        if !(self.clip_obs.is_finite() && self.clip_obs > 0.0) {
            return bad("clip_obs (must be finite and > 0)", self.clip_obs);
        }
        if !(self.clip_reward.is_finite() && self.clip_reward > 0.0) {
            return bad("clip_reward (must be finite and > 0)", self.clip_reward);
        }
        if !(0.0..=1.0).contains(&self.gamma) {
            return bad("gamma (must be in [0, 1])", self.gamma);
        }
        if !(self.epsilon.is_finite() && self.epsilon > 0.0) {
            return bad("epsilon (must be finite and > 0)", self.epsilon);
        }
        Ok(())
    }
}

/// Running mean and variance as SB3's `RunningMeanStd` keeps them: float64, `count` starting at
/// 1e-4, merged with each batch by the parallel-variance formula.
#[derive(Clone, Debug, PartialEq)]
pub struct RunningStats {
    /// Per-component mean.
    pub mean: Vec<f64>,
    /// Per-component (population) variance.
    pub var: Vec<f64>,
    /// Number of samples seen, plus the initial 1e-4.
    pub count: f64,
}

impl RunningStats {
    /// Mean 0, variance 1, count 1e-4 (SB3's initial state) for `dim` components.
    pub fn new(dim: usize) -> Self {
        RunningStats {
            mean: vec![0.0; dim],
            var: vec![1.0; dim],
            count: 1e-4,
        }
    }

    /// Merges one component's batch moments (`batch_var_times_n` is `batch_var * n` already
    /// rounded as SB3 rounds it).
    fn merge(&mut self, j: usize, batch_mean: f64, batch_var_times_n: f64, n: f64) {
        let (mean, var, count) = (self.mean[j], self.var[j], self.count);
        let delta = batch_mean - mean;
        let tot = count + n;
        self.mean[j] = mean + delta * n / tot;
        let m2 = var * count + batch_var_times_n + delta * delta * count * n / (count + n);
        self.var[j] = m2 / (count + n);
    }

    fn check(&self, what: &'static str) -> Result<()> {
        let ok = self.count.is_finite()
            && self.count > 0.0
            && self.mean.iter().all(|m| m.is_finite())
            && self.var.iter().all(|v| v.is_finite() && *v >= 0.0);
        if ok {
            Ok(())
        } else {
            Err(EnvError::InvalidArgument(format!(
                "{what} statistics are not finite (or a variance is negative)"
            )))
        }
    }
}

/// NumPy's pairwise summation of a strided sequence (`pairwise_sum` in its C source), generic
/// over f32/f64 through the `add` closure so each addition rounds in the element type.
fn pairwise<T: Copy>(
    get: &dyn Fn(usize) -> T,
    lo: usize,
    n: usize,
    zero: T,
    add: fn(T, T) -> T,
) -> T {
    if n < 8 {
        let mut res = zero;
        for i in 0..n {
            res = add(res, get(lo + i));
        }
        res
    } else if n <= 128 {
        let mut r = [zero; 8];
        for (j, rj) in r.iter_mut().enumerate() {
            *rj = get(lo + j);
        }
        let full = n - n % 8;
        let mut i = 8;
        while i < full {
            for (j, rj) in r.iter_mut().enumerate() {
                *rj = add(*rj, get(lo + i + j));
            }
            i += 8;
        }
        let mut res = add(
            add(add(r[0], r[1]), add(r[2], r[3])),
            add(add(r[4], r[5]), add(r[6], r[7])),
        );
        for k in full..n {
            res = add(res, get(lo + k));
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        add(
            pairwise(get, lo, n2, zero, add),
            pairwise(get, lo + n2, n - n2, zero, add),
        )
    }
}

/// `np.add.reduce(x, axis=0)` of a float32 `[n, d]` row-major batch into `out[d]`.
fn column_sums_f32(x: &[f32], n: usize, d: usize, out: &mut [f32]) {
    if d == 1 {
        out[0] = pairwise(&|i| x[i], 0, n, 0.0f32, |a, b| a + b);
    } else {
        out.copy_from_slice(&x[..d]);
        for row in x[d..n * d].chunks_exact(d) {
            for (o, v) in out.iter_mut().zip(row) {
                *o += *v;
            }
        }
    }
}

/// The mutable scratch of one float32 batch update (allocated once).
#[derive(Clone, Debug)]
struct Scratch {
    sq: Vec<f32>,
    mean: Vec<f32>,
    var: Vec<f32>,
}

impl RunningStats {
    /// SB3's `update(batch)` for a float32 `[n, d]` batch. The batch moments are checked before
    /// anything is merged: observations so large that their float32 squares overflow are an
    /// error and leave the statistics untouched.
    fn update_f32(&mut self, x: &[f32], n: usize, s: &mut Scratch) -> Result<()> {
        let d = self.mean.len();
        column_sums_f32(x, n, d, &mut s.mean);
        for m in s.mean.iter_mut() {
            *m = (*m as f64 / n as f64) as f32;
        }
        for (row_sq, row) in s.sq.chunks_exact_mut(d).zip(x.chunks_exact(d)) {
            for ((q, v), m) in row_sq.iter_mut().zip(row).zip(&s.mean) {
                let diff = *v - *m;
                *q = diff * diff;
            }
        }
        column_sums_f32(&s.sq[..n * d], n, d, &mut s.var);
        for v in s.var.iter_mut() {
            *v = (*v as f64 / n as f64) as f32;
        }
        if let Some(j) = (0..d).find(|&j| {
            !(s.mean[j].is_finite() && s.var[j].is_finite() && (s.var[j] * n as f32).is_finite())
        }) {
            return Err(EnvError::InvalidArgument(format!(
                "observation component {j}: batch mean {} / variance {} overflow float32",
                s.mean[j], s.var[j]
            )));
        }
        for j in 0..d {
            let var_n = (s.var[j] * n as f32) as f64;
            self.merge(j, s.mean[j] as f64, var_n, n as f64);
        }
        self.count += n as f64;
        Ok(())
    }

    /// SB3's `update(batch)` for a float64 1-D batch (the returns) into a scalar statistic.
    fn update_f64_scalar(&mut self, x: &[f64]) {
        let n = x.len();
        let add = |a: f64, b: f64| a + b;
        let mean = pairwise(&|i| x[i], 0, n, 0.0, add) / n as f64;
        let var = pairwise(
            &|i| {
                let d = x[i] - mean;
                d * d
            },
            0,
            n,
            0.0,
            add,
        ) / n as f64;
        self.merge(0, mean, var * n as f64, n as f64);
        self.count += n as f64;
    }
}

/// SB3's `VecNormalize` over any [`VecEnv`] with a `Box` observation space.
///
/// [`VecEnv::buffers`] hold the normalized observations, the scaled rewards (float32 values
/// widened to f64) and, in same-step mode, the normalized terminal observations (normalized
/// with the statistics after this step's update, as SB3's `terminal_observation`). The
/// unnormalized ones are [`VecNormalize::original_observations`] and
/// [`VecNormalize::original_rewards`]. A step allocates nothing (infos are copied into
/// reused storage; only a non-empty `Info::extra` map can allocate).
///
/// ```
/// use rl_env::{AutoresetMode, SyncVecEnv, VecAction, VecEnv, VecNormalize, VecNormalizeConfig};
/// let venv = SyncVecEnv::make("CartPole-v1", 4, AutoresetMode::SameStep)?;
/// let mut norm = VecNormalize::new(venv, VecNormalizeConfig::default())?;
/// norm.reset(Some(0))?;
/// norm.step(VecAction::Discrete(&[0, 1, 0, 1]))?;
/// assert!(norm.observations().iter().all(|o| o.abs() <= 10.0));
/// let saved = norm.snapshot().to_bytes();
/// // ... later, for evaluation with frozen statistics:
/// let mut eval = VecNormalize::new(SyncVecEnv::make("CartPole-v1", 1, AutoresetMode::SameStep)?, VecNormalizeConfig::default())?;
/// eval.restore(&rl_env::VecNormalizeSnapshot::from_bytes(&saved)?)?;
/// eval.set_training(false);
/// # Ok::<(), rl_env::EnvError>(())
/// ```
#[derive(Debug)]
pub struct VecNormalize<V: VecEnv> {
    venv: V,
    cfg: VecNormalizeConfig,
    obs_rms: RunningStats,
    ret_rms: RunningStats,
    returns: Vec<f64>,
    out: VecBuffers,
    orig_rewards: Vec<f64>,
    scratch: Scratch,
    steps: u64,
}

impl<V: VecEnv> VecNormalize<V> {
    /// Wraps `venv`. Errors on a non-`Box` observation space or an invalid config.
    pub fn new(venv: V, cfg: VecNormalizeConfig) -> Result<Self> {
        cfg.validate()?;
        if !matches!(venv.observation_space(), Space::Box(_)) {
            return Err(EnvError::InvalidArgument(format!(
                "VecNormalize only supports Box observation spaces, not {:?}",
                venv.observation_space()
            )));
        }
        let (n, d) = (venv.num_envs(), venv.buffers().obs_dim());
        Ok(VecNormalize {
            cfg,
            obs_rms: RunningStats::new(d),
            ret_rms: RunningStats::new(1),
            returns: vec![0.0; n],
            out: VecBuffers::new(n, d),
            orig_rewards: vec![0.0; n],
            scratch: Scratch {
                sq: vec![0.0; n * d],
                mean: vec![0.0; d],
                var: vec![0.0; d],
            },
            steps: 0,
            venv,
        })
    }

    /// The settings.
    pub fn config(&self) -> &VecNormalizeConfig {
        &self.cfg
    }

    /// Turns statistics updates on (training) or off (evaluation), like SB3's `training`.
    pub fn set_training(&mut self, training: bool) {
        self.cfg.training = training;
    }

    /// Turns reward scaling on or off (SB3's `norm_reward`, e.g. off for evaluation).
    pub fn set_norm_reward(&mut self, norm_reward: bool) {
        self.cfg.norm_reward = norm_reward;
    }

    /// The running observation statistics (SB3's `obs_rms`).
    pub fn obs_rms(&self) -> &RunningStats {
        &self.obs_rms
    }

    /// The running statistics of the discounted return (SB3's `ret_rms`), one component.
    pub fn ret_rms(&self) -> &RunningStats {
        &self.ret_rms
    }

    /// The discounted returns per sub-environment (SB3's `returns`), zeroed on done.
    pub fn returns(&self) -> &[f64] {
        &self.returns
    }

    /// The wrapped vector.
    pub fn inner(&self) -> &V {
        &self.venv
    }

    /// Unwraps the inner vector.
    pub fn into_inner(self) -> V {
        self.venv
    }

    /// Unnormalized observations of the last reset/step (SB3's `get_original_obs`).
    pub fn original_observations(&self) -> &[f32] {
        self.venv.observations()
    }

    /// Unnormalized terminal observation of sub-environment `i` on the last step.
    pub fn original_final_observation(&self, i: usize) -> Option<&[f32]> {
        self.venv.buffers().final_observation(i)
    }

    /// Unscaled rewards of the last step as SB3 sees them: float32 values widened to f64
    /// (SB3's `get_original_reward`).
    pub fn original_rewards(&self) -> &[f64] {
        &self.orig_rewards
    }

    /// `obs` normalized with the current statistics (SB3's `normalize_obs`; no update).
    /// `obs.len()` must equal `out.len()` and be a multiple of the observation length.
    pub fn normalize_obs_into(&self, obs: &[f32], out: &mut [f32]) -> Result<()> {
        let d = self.obs_rms.mean.len();
        if obs.len() != out.len() || d == 0 || !obs.len().is_multiple_of(d) {
            return Err(EnvError::ObservationBuffer {
                expected: d,
                actual: obs.len(),
            });
        }
        check_finite_f32(obs, d, "observation", self.steps)?;
        normalize_rows(&self.cfg, &self.obs_rms, obs, out);
        Ok(())
    }

    /// A copy of the statistics and settings, to save with a model.
    pub fn snapshot(&self) -> VecNormalizeSnapshot {
        VecNormalizeSnapshot {
            config: self.cfg,
            obs_rms: self.obs_rms.clone(),
            ret_rms: self.ret_rms.clone(),
        }
    }

    /// Replaces the statistics and settings with a saved snapshot (SB3's `VecNormalize.load`);
    /// the running returns are zeroed, as SB3 does not save them. Errors when the snapshot's
    /// observation length differs or it fails [`VecNormalizeSnapshot::validate`].
    pub fn restore(&mut self, snap: &VecNormalizeSnapshot) -> Result<()> {
        snap.validate()?;
        let d = self.obs_rms.mean.len();
        if snap.obs_rms.mean.len() != d {
            return Err(EnvError::ObservationBuffer {
                expected: d,
                actual: snap.obs_rms.mean.len(),
            });
        }
        self.cfg = snap.config;
        self.obs_rms.clone_from(&snap.obs_rms);
        self.ret_rms.clone_from(&snap.ret_rms);
        self.returns.iter_mut().for_each(|r| *r = 0.0);
        Ok(())
    }

    /// Copies and normalizes the inner vector's observations (and final observations).
    fn after_inner(&mut self, stepped: bool) -> Result<()> {
        let (n, d) = (self.out.n_envs, self.out.obs_dim);
        let inner = self.venv.buffers();
        check_finite_f32(&inner.obs, d, "observation", self.steps)?;
        if stepped {
            for (i, (o, r)) in self.orig_rewards.iter_mut().zip(&inner.rewards).enumerate() {
                let r32 = *r as f32;
                if !r32.is_finite() {
                    return Err(EnvError::NonFinite {
                        env: i,
                        step: self.steps,
                        what: "reward",
                        component: None,
                        value: *r,
                    });
                }
                *o = r32 as f64;
            }
            for i in 0..n {
                if let Some(f) = inner.final_observation(i) {
                    check_finite_f32(f, d, "final observation", self.steps)
                        .map_err(|e| with_env(e, i))?;
                }
            }
        }
        if self.cfg.training && self.cfg.norm_obs {
            self.obs_rms.update_f32(&inner.obs, n, &mut self.scratch)?;
            self.obs_rms.check("observation")?;
        }
        normalize_rows(&self.cfg, &self.obs_rms, &inner.obs, &mut self.out.obs);
        if stepped {
            for i in 0..n {
                self.out.has_final[i] = inner.has_final[i];
                if inner.has_final[i] {
                    let rows = i * d..(i + 1) * d;
                    normalize_rows(
                        &self.cfg,
                        &self.obs_rms,
                        &inner.final_obs[rows.clone()],
                        &mut self.out.final_obs[rows],
                    );
                }
            }
            if self.cfg.training {
                for (ret, r) in self.returns.iter_mut().zip(&self.orig_rewards) {
                    *ret = *ret * self.cfg.gamma + *r;
                }
                self.ret_rms.update_f64_scalar(&self.returns);
                self.ret_rms.check("return")?;
            }
            let scale = (self.ret_rms.var[0] + self.cfg.epsilon).sqrt();
            let c = self.cfg.clip_reward;
            for (out, r) in self.out.rewards.iter_mut().zip(&self.orig_rewards) {
                *out = if self.cfg.norm_reward {
                    (*r / scale).clamp(-c, c) as f32 as f64
                } else {
                    *r
                };
            }
            self.out.terminated.copy_from_slice(&inner.terminated);
            self.out.truncated.copy_from_slice(&inner.truncated);
            for (ret, (t, u)) in self
                .returns
                .iter_mut()
                .zip(inner.terminated.iter().zip(&inner.truncated))
            {
                if *t || *u {
                    *ret = 0.0;
                }
            }
        } else {
            self.out.rewards.iter_mut().for_each(|r| *r = 0.0);
            self.orig_rewards.iter_mut().for_each(|r| *r = 0.0);
            self.out.terminated.iter_mut().for_each(|t| *t = false);
            self.out.truncated.iter_mut().for_each(|t| *t = false);
            self.out.has_final.iter_mut().for_each(|t| *t = false);
        }
        for (o, s) in self.out.infos.iter_mut().zip(&inner.infos) {
            o.episode = s.episode;
            o.extra.clone_from(&s.extra);
        }
        Ok(())
    }
}

/// A typed error naming the row (sub-environment) and component of the first non-finite value.
fn check_finite_f32(x: &[f32], d: usize, what: &'static str, step: u64) -> Result<()> {
    match x.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(k) => Err(EnvError::NonFinite {
            env: k / d.max(1),
            step,
            what,
            component: Some(k % d.max(1)),
            value: x[k] as f64,
        }),
    }
}

/// Sets the sub-environment index of a [`EnvError::NonFinite`].
fn with_env(e: EnvError, i: usize) -> EnvError {
    match e {
        EnvError::NonFinite {
            step,
            what,
            component,
            value,
            ..
        } => EnvError::NonFinite {
            env: i,
            step,
            what,
            component,
            value,
        },
        other => other,
    }
}

/// `f32(clip((obs - mean) / sqrt(var + eps), ±clip_obs))` row by row (a copy when `norm_obs`
/// is off).
fn normalize_rows(cfg: &VecNormalizeConfig, rms: &RunningStats, obs: &[f32], out: &mut [f32]) {
    if !cfg.norm_obs {
        out.copy_from_slice(obs);
        return;
    }
    let d = rms.mean.len();
    let c = cfg.clip_obs;
    for (orow, row) in out.chunks_exact_mut(d).zip(obs.chunks_exact(d)) {
        for j in 0..d {
            let z = (row[j] as f64 - rms.mean[j]) / (rms.var[j] + cfg.epsilon).sqrt();
            orow[j] = z.clamp(-c, c) as f32;
        }
    }
}

impl<V: VecEnv> VecEnv for VecNormalize<V> {
    fn observation_space(&self) -> &Space {
        self.venv.observation_space()
    }
    fn action_space(&self) -> &Space {
        self.venv.action_space()
    }
    fn autoreset_mode(&self) -> AutoresetMode {
        self.venv.autoreset_mode()
    }
    /// Resets the inner vector, zeroes the returns, updates the observation statistics
    /// (when training) and normalizes.
    fn reset(&mut self, seed: Option<u64>) -> Result<()> {
        self.venv.reset(seed)?;
        self.after_reset()
    }
    fn reset_with_seeds(&mut self, seeds: &[Option<u64>]) -> Result<()> {
        self.venv.reset_with_seeds(seeds)?;
        self.after_reset()
    }
    fn step(&mut self, actions: VecAction<'_>) -> Result<()> {
        self.venv.step(actions)?;
        self.steps += 1;
        self.after_inner(true)
    }
    fn buffers(&self) -> &VecBuffers {
        &self.out
    }
    /// The inner vector's unscaled rewards (not rounded to f32 as [`Self::original_rewards`]).
    fn unscaled_rewards(&self) -> &[f64] {
        self.venv.unscaled_rewards()
    }
    fn normalization(&self) -> Option<VecNormalizeSnapshot> {
        Some(self.snapshot())
    }
}

impl<V: VecEnv> VecNormalize<V> {
    fn after_reset(&mut self) -> Result<()> {
        self.steps = 0;
        self.returns.iter_mut().for_each(|r| *r = 0.0);
        self.after_inner(false)
    }
}

/// Everything [`VecNormalize`] needs to continue or evaluate a model: the settings and both
/// running statistics (SB3 pickles the same, minus the per-env returns).
///
/// Encoding ([`Self::to_bytes`], version 1, little-endian): magic `b"RLVN"`, `u32` version,
/// `u8` flags (bit 0 training, 1 norm_obs, 2 norm_reward), `f64` clip_obs, clip_reward,
/// gamma, epsilon, `u32` obs_dim, `f64` obs count, obs_dim means, obs_dim variances, `f64`
/// return count, mean, variance. [`Self::from_bytes`] checks the exact length before
/// allocating and validates every value.
#[derive(Clone, Debug, PartialEq)]
pub struct VecNormalizeSnapshot {
    /// The settings.
    pub config: VecNormalizeConfig,
    /// Observation statistics.
    pub obs_rms: RunningStats,
    /// Return statistics (one component).
    pub ret_rms: RunningStats,
}

const MAGIC: &[u8; 4] = b"RLVN";
const VERSION: u32 = 1;
const HEADER: usize = 4 + 4 + 1 + 4 * 8 + 4;

fn decode_error(msg: impl Into<String>) -> EnvError {
    EnvError::InvalidArgument(format!("VecNormalize snapshot: {}", msg.into()))
}

impl VecNormalizeSnapshot {
    /// Checks the config, finite statistics, non-negative variances, positive counts, equal
    /// mean/var lengths and a one-component return statistic.
    pub fn validate(&self) -> Result<()> {
        self.config.validate()?;
        if self.obs_rms.mean.len() != self.obs_rms.var.len() {
            return Err(decode_error("obs mean and var lengths differ"));
        }
        if self.ret_rms.mean.len() != 1 || self.ret_rms.var.len() != 1 {
            return Err(decode_error("return statistics must have one component"));
        }
        self.obs_rms.check("observation")?;
        self.ret_rms.check("return")
    }

    /// `obs` (one or more rows) normalized with these statistics and settings, as
    /// [`VecNormalize::normalize_obs_into`] does (no update): what a model trained under a
    /// `VecNormalize` needs to act on raw observations. `obs.len()` must equal `out.len()` and
    /// be a multiple of the observation length; a NaN or infinite value is an error.
    pub fn normalize_obs_into(&self, obs: &[f32], out: &mut [f32]) -> Result<()> {
        let d = self.obs_rms.mean.len();
        if obs.len() != out.len() || d == 0 || !obs.len().is_multiple_of(d) {
            return Err(EnvError::ObservationBuffer {
                expected: d,
                actual: obs.len(),
            });
        }
        check_finite_f32(obs, d, "observation", 0)?;
        normalize_rows(&self.config, &self.obs_rms, obs, out);
        Ok(())
    }

    /// The version-1 binary encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let d = self.obs_rms.mean.len();
        let mut b = Vec::with_capacity(HEADER + 8 * (2 * d + 4));
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&VERSION.to_le_bytes());
        let c = &self.config;
        b.push(c.training as u8 | (c.norm_obs as u8) << 1 | (c.norm_reward as u8) << 2);
        for v in [c.clip_obs, c.clip_reward, c.gamma, c.epsilon] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(&(d as u32).to_le_bytes());
        b.extend_from_slice(&self.obs_rms.count.to_le_bytes());
        for v in self.obs_rms.mean.iter().chain(&self.obs_rms.var) {
            b.extend_from_slice(&v.to_le_bytes());
        }
        for v in [
            self.ret_rms.count,
            self.ret_rms.mean[0],
            self.ret_rms.var[0],
        ] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b
    }

    /// Decodes and validates [`Self::to_bytes`]'s output; anything else is a typed error.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() < HEADER {
            return Err(decode_error(format!("{} bytes is too short", bytes.len())));
        }
        if &bytes[..4] != MAGIC {
            return Err(decode_error("bad magic"));
        }
        let u32_at =
            |k: usize| u32::from_le_bytes([bytes[k], bytes[k + 1], bytes[k + 2], bytes[k + 3]]);
        let f64_at = |k: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&bytes[k..k + 8]);
            f64::from_le_bytes(a)
        };
        let version = u32_at(4);
        if version != VERSION {
            return Err(decode_error(format!("unsupported version {version}")));
        }
        let flags = bytes[8];
        if flags & !0b111 != 0 {
            return Err(decode_error(format!("unknown flags {flags:#x}")));
        }
        let config = VecNormalizeConfig {
            training: flags & 1 != 0,
            norm_obs: flags & 2 != 0,
            norm_reward: flags & 4 != 0,
            clip_obs: f64_at(9),
            clip_reward: f64_at(17),
            gamma: f64_at(25),
            epsilon: f64_at(33),
        };
        let d = u32_at(41) as usize;
        let expected = (d as u64) * 16 + 32 + HEADER as u64;
        if bytes.len() as u64 != expected {
            return Err(decode_error(format!(
                "{} bytes, but obs_dim {d} needs {expected}",
                bytes.len()
            )));
        }
        let mut k = HEADER;
        let obs_count = f64_at(k);
        k += 8;
        let mean: Vec<f64> = (0..d).map(|j| f64_at(k + 8 * j)).collect();
        k += 8 * d;
        let var: Vec<f64> = (0..d).map(|j| f64_at(k + 8 * j)).collect();
        k += 8 * d;
        let snap = VecNormalizeSnapshot {
            config,
            obs_rms: RunningStats {
                mean,
                var,
                count: obs_count,
            },
            ret_rms: RunningStats {
                count: f64_at(k),
                mean: vec![f64_at(k + 8)],
                var: vec![f64_at(k + 16)],
            },
        };
        snap.validate()?;
        Ok(snap)
    }
}
