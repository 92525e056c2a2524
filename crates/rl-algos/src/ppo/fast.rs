//! PPO's minibatch step on the fast MLP path: [`PpoFastUpdate`].
//!
//! The same step as [`super::ppo_update`] for a policy that is a standard MLP
//! ([`rl_policy::ActorCritic::mlp_layout`]): the network's forward and backward passes run in
//! an [`MlpEngine`]; the clipped surrogate, the (optionally clipped) value loss, the entropy
//! loss, `approx_kl` and `clip_fraction` are computed here with the f32 operations of the fused
//! loss op (`ppo/fused.rs`) and its hand-written gradients (torch's conventions at the
//! kinks: `min` splits evenly between equal arguments, `clamp` passes the gradient at its
//! bounds); the gradient norm and the Adam step run over the engine's persistent gradient
//! buffers ([`Optimizer::step_host`]). No tensor is built and nothing is allocated per step.
//! Results agree with the generic path to f32 rounding (the layers' products are summed in
//! another order; tests bound the difference by 1e-6).

use super::update::{PpoParams, PpoStats};
use crate::a2c::normalize_advantages_into;
use crate::error::{AlgoError, Result};
use crate::optim::{clip_and_step_host, require_host_step, Optimizer};
use rl_policy::{MlpEngine, MlpLayout};

/// The per-sample data of one PPO minibatch, all `[B]` but observations `[B, obs_dim]` and
/// actions `[B, act_dim]` (indices as f32 for discrete spaces).
#[derive(Clone, Copy, Debug)]
pub struct PpoHostBatch<'a> {
    /// Observations.
    pub observations: &'a [f32],
    /// Actions.
    pub actions: &'a [f32],
    /// `V(s)` at rollout time.
    pub old_values: &'a [f32],
    /// `log pi_old(a | s)` at rollout time.
    pub old_log_probs: &'a [f32],
    /// Advantages (before the per-minibatch normalization).
    pub advantages: &'a [f32],
    /// Returns (value targets).
    pub returns: &'a [f32],
}

/// PPO's minibatch step ([`super::ppo_update`]'s loss, `target_kl` test, clipping and
/// optimizer step) through an [`MlpEngine`], with buffers for minibatches of up to `max_batch`
/// samples: no tensor is built and nothing is allocated per step. Results agree with the
/// generic path to f32 rounding (within 1e-6, tested). `Ppo` uses it automatically for a
/// policy whose [`rl_policy::ActorCritic::mlp_layout`] is `Some`.
#[derive(Debug)]
pub struct PpoFastUpdate {
    engine: MlpEngine,
    advantages: Vec<f32>,
    ratio: Vec<f32>,
    d_log_prob: Vec<f32>,
    d_entropy: Vec<f32>,
    d_value: Vec<f32>,
}

/// `mean` as the fused op computes it: the sum accumulated in f64, rounded, divided by `n`.
fn mean(xs: impl Iterator<Item = f32>, n: usize) -> f32 {
    (xs.map(f64::from).sum::<f64>() as f32) / n as f32
}

impl PpoFastUpdate {
    /// An update for the network `layout` whose gradients follow `optimizer`'s variables
    /// (exactly the layout's parameters, stepped on the host).
    pub fn new(layout: MlpLayout, max_batch: usize, optimizer: &dyn Optimizer) -> Result<Self> {
        require_host_step(optimizer, "PPO")?;
        let mut engine = MlpEngine::new(layout, max_batch)?;
        engine.bind_gradients(optimizer.vars())?;
        Ok(PpoFastUpdate {
            engine,
            advantages: vec![0.0; max_batch],
            ratio: vec![0.0; max_batch],
            d_log_prob: vec![0.0; max_batch],
            d_entropy: vec![0.0; max_batch],
            d_value: vec![0.0; max_batch],
        })
    }

    /// The engine (sizes, gradients, `std`).
    pub fn engine(&self) -> &MlpEngine {
        &self.engine
    }

    /// One PPO minibatch step, as [`super::ppo_update`]: loss, the `target_kl` test (a step
    /// that would exceed `1.5 * target_kl` is skipped and reported with `stepped == false`),
    /// backward, `clip_grad_norm`, optimizer step at its learning rate. A non-finite loss or
    /// gradient norm leaves the parameters untouched and returns [`AlgoError::Diverged`].
    pub fn update(
        &mut self,
        optimizer: &mut dyn Optimizer,
        batch: &PpoHostBatch<'_>,
        params: &PpoParams,
        iteration: u64,
    ) -> Result<PpoStats> {
        let b = batch.advantages.len();
        let lens = [
            batch.returns.len(),
            batch.old_values.len(),
            batch.old_log_probs.len(),
        ];
        if b == 0 || b > self.engine.max_batch() || lens.iter().any(|&l| l != b) {
            return Err(AlgoError::InvalidArgument(format!(
                "PPO batch: {b} advantages, {lens:?} returns / old values / old log-probs (1 to \
                 {} samples)",
                self.engine.max_batch()
            )));
        }
        let adv = &mut self.advantages[..b];
        if params.normalize_advantage && b > 1 {
            normalize_advantages_into(batch.advantages, adv);
        } else {
            adv.copy_from_slice(batch.advantages);
        }
        let out = self.engine.evaluate(batch.observations, batch.actions)?;
        if out.value.len() != b {
            return Err(AlgoError::InvalidArgument(format!(
                "PPO batch: {} observations but {b} advantages",
                out.value.len()
            )));
        }
        let old_lp = batch.old_log_probs;
        let c32 = params.clip_range as f32;
        let (lo, hi) = (
            (1.0 - params.clip_range) as f32,
            (1.0 + params.clip_range) as f32,
        );
        let clip_vf = params.clip_range_vf.map(|v| v as f32);
        // Logged statistics, as `ppo_loss` computes them.
        let (mut kl_sum, mut clipped_n) = (0.0f64, 0usize);
        let ratios = &mut self.ratio[..b];
        for ((r, &lp), &old) in ratios.iter_mut().zip(out.log_prob).zip(old_lp) {
            let log_ratio = lp - old;
            *r = log_ratio.exp();
            kl_sum += f64::from((*r - 1.0) - log_ratio);
            clipped_n += usize::from((*r - 1.0).abs() > c32);
        }
        let approx_kl = kl_sum / b as f64;
        let clip_fraction = clipped_n as f64 / b as f64;
        // The loss terms, as the fused op computes them.
        let ratios = &self.ratio[..b];
        let ratio = |i: usize| ratios[i];
        let value_delta = |i: usize| {
            let d = out.value[i] - batch.old_values[i];
            match clip_vf {
                None => (d, true),
                Some(c) => (d.max(-c).min(c), -c <= d && d <= c),
            }
        };
        let policy_loss = -mean(
            (0..b).map(|i| {
                let (a, r) = (adv[i], ratio(i));
                (a * r).min(a * r.max(lo).min(hi))
            }),
            b,
        );
        let value_loss = mean(
            (0..b).map(|i| {
                let pred = batch.old_values[i] + value_delta(i).0;
                let e = batch.returns[i] - pred;
                e * e
            }),
            b,
        );
        let entropy_loss = -mean(out.entropy.iter().copied(), b);
        let (ent_coef, vf_coef) = (params.ent_coef as f32, params.vf_coef as f32);
        let total = (policy_loss + ent_coef * entropy_loss) + vf_coef * value_loss;
        let mut stats = PpoStats {
            policy_loss: f64::from(policy_loss),
            value_loss: f64::from(value_loss),
            entropy_loss: f64::from(entropy_loss),
            loss: f64::from(total),
            approx_kl,
            clip_fraction,
            grad_norm: None,
            stepped: false,
        };
        if params.target_kl.is_some_and(|kl| approx_kl > 1.5 * kl) {
            return Ok(stats);
        }
        if !total.is_finite() {
            return Err(AlgoError::Diverged {
                iteration,
                what: "the loss".into(),
            });
        }
        // The fused op's backward for d total = 1.
        let inv_n = 1.0 / b as f32;
        let d_min = -inv_n;
        let d_vl = vf_coef * inv_n;
        for (i, &a) in adv.iter().enumerate() {
            let r = ratio(i);
            let (s1, s2) = (a * r, a * r.max(lo).min(hi));
            let (w1, w2) = if s1 < s2 {
                (d_min, 0.0)
            } else if s2 < s1 {
                (0.0, d_min)
            } else {
                (d_min / 2.0, d_min / 2.0)
            };
            let inside = lo <= r && r <= hi;
            let d_ratio = w1 * a + if inside { w2 * a } else { 0.0 };
            self.d_log_prob[i] = d_ratio * r;
            let (delta, passes) = value_delta(i);
            let pred = batch.old_values[i] + delta;
            let d_pred = d_vl * (2.0 * (pred - batch.returns[i]));
            self.d_value[i] = if passes { d_pred } else { 0.0 };
        }
        // A zero coefficient detaches the entropy, as the generic path does.
        let d_entropy = if params.ent_coef != 0.0 {
            self.d_entropy[..b].fill(-ent_coef * inv_n);
            Some(&self.d_entropy[..b])
        } else {
            None
        };
        self.engine
            .backward(&self.d_log_prob[..b], d_entropy, &self.d_value[..b])?;
        let grad_norm = clip_and_step_host(
            optimizer,
            self.engine.gradients(),
            params.max_grad_norm,
            iteration,
        )?;
        stats.grad_norm = Some(grad_norm);
        stats.stepped = true;
        Ok(stats)
    }
}
