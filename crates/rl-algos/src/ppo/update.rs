//! One PPO minibatch step as public functions ([`ppo_loss`], [`ppo_update`]), usable on
//! recorded data (the SB3 parity tests drive them with SB3's minibatch indices) and in a user's
//! own loop.

use crate::a2c::normalize_advantages;
use crate::error::{AlgoError, Result};
use crate::optim::{clip_grad_norm, Optimizer};
use candle_core::{DType, Tensor, D};
use rl_policy::ActorCritic;

/// One minibatch of training data: `B` samples of a rollout with their rollout-time values and
/// log-probabilities.
#[derive(Clone, Copy, Debug)]
pub struct PpoBatch<'a> {
    /// Observations `[B, obs_dim]`.
    pub observations: &'a Tensor,
    /// Actions: `[B]` indices for discrete spaces, `[B, d]` (unclipped) for Box spaces.
    pub actions: &'a Tensor,
    /// `V(s)` at rollout time, `[B]`.
    pub old_values: &'a [f32],
    /// `log pi_old(a | s)` at rollout time, `[B]`.
    pub old_log_probs: &'a [f32],
    /// Advantages `[B]` (before the per-minibatch normalization).
    pub advantages: &'a [f32],
    /// Returns `[B]` (value targets).
    pub returns: &'a [f32],
}

/// The coefficients of one PPO minibatch step (the schedules already evaluated).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PpoParams {
    /// Ratio clipping: `clamp(ratio, 1 - clip_range, 1 + clip_range)`.
    pub clip_range: f64,
    /// Value clipping around the rollout values; `None` (SB3's default) does not clip.
    pub clip_range_vf: Option<f64>,
    /// Entropy coefficient.
    pub ent_coef: f64,
    /// Value-loss coefficient.
    pub vf_coef: f64,
    /// Global gradient-norm clip.
    pub max_grad_norm: f64,
    /// Normalize the minibatch's advantages (mean 0, unbiased std 1, +1e-8 on the std);
    /// never done for a minibatch of one sample.
    pub normalize_advantage: bool,
    /// Skip the step (and end the `train()`) when `approx_kl > 1.5 * target_kl`.
    pub target_kl: Option<f64>,
}

/// The terms of SB3's PPO loss on one minibatch (tensors attached to the graph) and the
/// quantities it logs.
#[derive(Clone, Debug)]
pub struct PpoLoss {
    /// `policy_loss + ent_coef * entropy_loss + vf_coef * value_loss`.
    pub total: Tensor,
    /// `-mean(min(A * r, A * clamp(r, 1 - c, 1 + c)))`.
    pub policy_loss: Tensor,
    /// `mean((returns - V_pred)^2)`, `V_pred` clipped around the old values when asked.
    pub value_loss: Tensor,
    /// `-mean(entropy)`.
    pub entropy_loss: Tensor,
    /// `log pi(a | s)` under the current parameters, `[B]`.
    pub log_prob: Tensor,
    /// Entropies `[B]`.
    pub entropy: Tensor,
    /// `V(s)` under the current parameters (before value clipping), `[B]`.
    pub values: Tensor,
    /// `r = exp(log pi - log pi_old)`, `[B]`.
    pub ratio: Tensor,
    /// The advantages used (normalized when asked), `[B]`.
    pub advantages: Vec<f32>,
    /// `mean((r - 1) - log r)`: SB3's approximate KL divergence.
    pub approx_kl: f64,
    /// Fraction of samples with `|r - 1| > clip_range`.
    pub clip_fraction: f64,
}

/// Statistics of one minibatch step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PpoStats {
    /// Clipped surrogate loss.
    pub policy_loss: f64,
    /// Value loss.
    pub value_loss: f64,
    /// Entropy loss (`-mean(entropy)`).
    pub entropy_loss: f64,
    /// Total loss.
    pub loss: f64,
    /// SB3's approximate KL divergence.
    pub approx_kl: f64,
    /// Fraction of clipped ratios.
    pub clip_fraction: f64,
    /// Global gradient norm before clipping; `None` when the step was skipped.
    pub grad_norm: Option<f64>,
    /// Whether a gradient step was taken (`false`: `target_kl` stopped training here).
    pub stepped: bool,
}

fn check_len(what: &str, len: usize, b: usize) -> Result<()> {
    if len == b {
        Ok(())
    } else {
        Err(AlgoError::InvalidArgument(format!(
            "PPO batch: {b} observations but {len} {what}"
        )))
    }
}

/// SB3's PPO loss on one minibatch (one forward pass with gradients), with its `approx_kl` and
/// `clip_fraction`.
pub fn ppo_loss<P: ActorCritic + ?Sized>(
    policy: &P,
    batch: &PpoBatch<'_>,
    params: &PpoParams,
) -> Result<PpoLoss> {
    let b = batch.observations.dim(0)?;
    check_len("advantages", batch.advantages.len(), b)?;
    check_len("returns", batch.returns.len(), b)?;
    check_len("old values", batch.old_values.len(), b)?;
    check_len("old log-probabilities", batch.old_log_probs.len(), b)?;
    if b == 0 {
        return Err(AlgoError::InvalidArgument("PPO batch is empty".into()));
    }
    let eval = policy.evaluate_actions(batch.observations, batch.actions)?;
    let dtype = eval.value.dtype();
    let device = eval.value.device();
    let advantages = if params.normalize_advantage && b > 1 {
        normalize_advantages(batch.advantages)
    } else {
        batch.advantages.to_vec()
    };
    let host =
        |xs: &[f32]| -> Result<Tensor> { Ok(Tensor::from_slice(xs, b, device)?.to_dtype(dtype)?) };
    let adv = host(&advantages)?;
    let old_log_prob = host(batch.old_log_probs)?;
    let log_ratio = eval.log_prob.sub(&old_log_prob)?;
    let ratio = log_ratio.exp()?;
    let c = params.clip_range;
    let surrogate = adv.mul(&ratio)?;
    let clipped = adv.mul(&ratio.clamp(1.0 - c, 1.0 + c)?)?;
    let policy_loss = surrogate.minimum(&clipped)?.mean(D::Minus1)?.neg()?;
    let values_pred = match params.clip_range_vf {
        None => eval.value.clone(),
        Some(cv) => {
            let old = host(batch.old_values)?;
            old.add(&eval.value.sub(&old)?.clamp(-cv, cv)?)?
        }
    };
    let returns = host(batch.returns)?;
    let value_loss = returns.sub(&values_pred)?.sqr()?.mean(D::Minus1)?;
    let entropy_loss = eval.entropy.mean(D::Minus1)?.neg()?;
    let mut total = policy_loss.add(&value_loss.affine(params.vf_coef, 0.0)?)?;
    // A zero coefficient adds exactly zero: skipping it saves the entropy's backward pass.
    if params.ent_coef != 0.0 {
        total = total.add(&entropy_loss.affine(params.ent_coef, 0.0)?)?;
    }

    // The logged statistics, under no_grad in SB3, in f32 as torch computes them.
    let lr_host = log_ratio.to_dtype(DType::F32)?.to_vec1::<f32>()?;
    // torch compares the f32 tensor with the clip range rounded to f32.
    let c32 = c as f32;
    let (mut kl_sum, mut clipped_n) = (0.0f64, 0usize);
    for &l in &lr_host {
        let r = l.exp();
        kl_sum += f64::from((r - 1.0) - l);
        clipped_n += usize::from((r - 1.0).abs() > c32);
    }
    Ok(PpoLoss {
        total,
        policy_loss,
        value_loss,
        entropy_loss,
        log_prob: eval.log_prob,
        entropy: eval.entropy,
        values: eval.value,
        ratio,
        advantages,
        approx_kl: kl_sum / b as f64,
        clip_fraction: clipped_n as f64 / b as f64,
    })
}

/// One PPO minibatch step: loss, the `target_kl` test (a step that would exceed
/// `1.5 * target_kl` is skipped and reported with `stepped == false`, as SB3 breaks before it),
/// backward, `clip_grad_norm`, optimizer step (at the optimizer's learning rate). A non-finite
/// loss or gradient norm leaves the parameters untouched and returns
/// [`AlgoError::Diverged`] naming `iteration`.
pub fn ppo_update<P: ActorCritic + ?Sized>(
    policy: &P,
    optimizer: &mut dyn Optimizer,
    batch: &PpoBatch<'_>,
    params: &PpoParams,
    iteration: u64,
) -> Result<PpoStats> {
    let loss = ppo_loss(policy, batch, params)?;
    let scalars = Tensor::stack(
        &[
            &loss.policy_loss,
            &loss.value_loss,
            &loss.entropy_loss,
            &loss.total,
        ],
        0,
    )?
    .to_dtype(DType::F64)?
    .to_vec1::<f64>()?;
    let mut stats = PpoStats {
        policy_loss: scalars[0],
        value_loss: scalars[1],
        entropy_loss: scalars[2],
        loss: scalars[3],
        approx_kl: loss.approx_kl,
        clip_fraction: loss.clip_fraction,
        grad_norm: None,
        stepped: false,
    };
    if params.target_kl.is_some_and(|kl| loss.approx_kl > 1.5 * kl) {
        return Ok(stats);
    }
    let diverged = |what: &str| AlgoError::Diverged {
        iteration,
        what: what.to_string(),
    };
    if !stats.loss.is_finite() {
        return Err(diverged("the loss"));
    }
    let mut grads = loss.total.backward()?;
    let grad_norm = clip_grad_norm(optimizer.vars(), &mut grads, params.max_grad_norm)?;
    if !grad_norm.is_finite() {
        return Err(diverged("the gradient norm"));
    }
    optimizer.step(&grads)?;
    stats.grad_norm = Some(grad_norm);
    stats.stepped = true;
    Ok(stats)
}
