//! One A2C gradient step as public functions ([`a2c_loss`], [`a2c_update`]), usable on recorded
//! data (the SB3 parity tests drive them) and in a user's own loop.

use crate::error::{AlgoError, Result};
use crate::optim::{clip_coefficient, grad_norm, Optimizer};
use candle_core::{DType, Tensor, D};
use rl_policy::ActorCritic;

/// Coefficients of one A2C gradient step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct UpdateParams {
    /// Entropy coefficient.
    pub ent_coef: f64,
    /// Value-loss coefficient.
    pub vf_coef: f64,
    /// Global gradient-norm clip.
    pub max_grad_norm: f64,
    /// Normalize advantages (mean 0, unbiased std 1, +1e-8 on the std).
    pub normalize_advantage: bool,
}

/// One batch of training data: `B` samples in any fixed order.
#[derive(Clone, Copy, Debug)]
pub struct A2cBatch<'a> {
    /// Observations `[B, obs_dim]`.
    pub observations: &'a Tensor,
    /// Actions: `[B]` indices (any numeric dtype) for discrete spaces, `[B, d]` for Box spaces.
    pub actions: &'a Tensor,
    /// Advantages `[B]`.
    pub advantages: &'a [f32],
    /// Returns `[B]` (value targets).
    pub returns: &'a [f32],
}

/// The terms of SB3's A2C loss (scalar tensors, attached to the graph).
#[derive(Clone, Debug)]
pub struct A2cLoss {
    /// `pg + ent_coef * ent + vf_coef * vf`.
    pub total: Tensor,
    /// `-mean(A * log pi(a|s))`.
    pub policy_loss: Tensor,
    /// `mean((returns - V(s))^2)`.
    pub value_loss: Tensor,
    /// `-mean(entropy)`.
    pub entropy_loss: Tensor,
}

/// Statistics of one update.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct UpdateStats {
    /// Policy-gradient loss.
    pub policy_loss: f64,
    /// Value loss.
    pub value_loss: f64,
    /// Entropy loss (`-mean(entropy)`).
    pub entropy_loss: f64,
    /// Total loss.
    pub loss: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
}

/// `(A - mean(A)) / (std(A) + 1e-8)` with the unbiased std, as SB3 does with torch.
pub fn normalize_advantages(adv: &[f32]) -> Vec<f32> {
    let mut out = vec![0.0; adv.len()];
    normalize_advantages_into(adv, &mut out);
    out
}

/// [`normalize_advantages`] into `out` (the first `adv.len()` values), without allocating.
pub fn normalize_advantages_into(adv: &[f32], out: &mut [f32]) {
    let n = adv.len() as f64;
    let mean = adv.iter().map(|&a| f64::from(a)).sum::<f64>() / n;
    let var = adv
        .iter()
        .map(|&a| (f64::from(a) - mean).powi(2))
        .sum::<f64>()
        / (n - 1.0);
    let denom = var.sqrt() + 1e-8;
    for (o, &a) in out.iter_mut().zip(adv) {
        *o = ((f64::from(a) - mean) / denom) as f32;
    }
}

/// SB3's A2C loss on `batch` (one forward pass with gradients).
pub fn a2c_loss<P: ActorCritic + ?Sized>(
    policy: &P,
    batch: &A2cBatch<'_>,
    params: &UpdateParams,
) -> Result<A2cLoss> {
    let b = batch.observations.dim(0)?;
    if batch.advantages.len() != b || batch.returns.len() != b {
        return Err(AlgoError::InvalidArgument(format!(
            "A2C batch: {b} observations but {} advantages and {} returns",
            batch.advantages.len(),
            batch.returns.len()
        )));
    }
    let eval = policy.evaluate_actions(batch.observations, batch.actions)?;
    let dtype = eval.value.dtype();
    let device = eval.value.device();
    let adv_host;
    let adv = if params.normalize_advantage && b > 1 {
        adv_host = normalize_advantages(batch.advantages);
        &adv_host[..]
    } else {
        batch.advantages
    };
    let adv = Tensor::from_slice(adv, b, device)?.to_dtype(dtype)?;
    let returns = Tensor::from_slice(batch.returns, b, device)?.to_dtype(dtype)?;
    let policy_loss = adv.mul(&eval.log_prob)?.mean(D::Minus1)?.neg()?;
    let value_loss = returns.sub(&eval.value)?.sqr()?.mean(D::Minus1)?;
    let entropy_loss = eval.entropy.mean(D::Minus1)?.neg()?;
    let mut total = policy_loss.add(&value_loss.affine(params.vf_coef, 0.0)?)?;
    // A zero coefficient adds exactly zero: skipping it saves the entropy's backward pass.
    if params.ent_coef != 0.0 {
        total = total.add(&entropy_loss.affine(params.ent_coef, 0.0)?)?;
    }
    Ok(A2cLoss {
        total,
        policy_loss,
        value_loss,
        entropy_loss,
    })
}

/// One A2C gradient step on `batch`: loss, backward, `clip_grad_norm`, optimizer step (the
/// optimizer's learning rate is used as set). A non-finite loss or gradient norm leaves the
/// parameters untouched and returns [`AlgoError::Diverged`] naming `iteration`.
pub fn a2c_update<P: ActorCritic + ?Sized>(
    policy: &P,
    optimizer: &mut dyn Optimizer,
    batch: &A2cBatch<'_>,
    params: &UpdateParams,
    iteration: u64,
) -> Result<UpdateStats> {
    let loss = a2c_loss(policy, batch, params)?;
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
    let diverged = |what: &str| AlgoError::Diverged {
        iteration,
        what: what.to_string(),
    };
    if !scalars[3].is_finite() {
        return Err(diverged("the loss"));
    }
    let grads = loss.total.backward()?;
    // clip_grad_norm_ then step: the clipping factor is folded into the optimizer's update.
    let grad_norm = grad_norm(optimizer.vars(), &grads)?;
    if !grad_norm.is_finite() {
        return Err(diverged("the gradient norm"));
    }
    optimizer.step_scaled(&grads, clip_coefficient(grad_norm, params.max_grad_norm))?;
    Ok(UpdateStats {
        policy_loss: scalars[0],
        value_loss: scalars[1],
        entropy_loss: scalars[2],
        loss: scalars[3],
        grad_norm,
    })
}
