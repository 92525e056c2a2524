//! One PPO minibatch step as public functions ([`ppo_loss`], [`ppo_update`]), usable on
//! recorded data (the SB3 parity tests drive them with SB3's minibatch indices) and in a user's
//! own loop.

use super::fused::PpoLossOp;
use crate::a2c::normalize_advantages;
use crate::error::{AlgoError, Result};
use crate::optim::{clip_coefficient, grad_norm, Optimizer};
use candle_core::{DType, Tensor, D};
use rl_policy::{ActorCritic, Evaluation};

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
    /// `-mean(entropy)` (on the CPU with `ent_coef == 0` it is computed from the detached
    /// entropy: nothing flows back through it).
    pub entropy_loss: Tensor,
    /// `log pi(a | s)` under the current parameters, `[B]`.
    pub log_prob: Tensor,
    /// Entropies `[B]`.
    pub entropy: Tensor,
    /// `V(s)` under the current parameters (before value clipping), `[B]`.
    pub values: Tensor,
    /// The probability ratios `r = exp(log pi - log pi_old)`, `[B]` (values: the loss is
    /// differentiated through `log_prob`).
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

/// The value of a scalar tensor (read in place for f32 and f64).
fn scalar(t: &Tensor) -> Result<f64> {
    Ok(match t.dtype() {
        DType::F32 => f64::from(t.to_scalar::<f32>()?),
        DType::F64 => t.to_scalar::<f64>()?,
        _ => t.to_dtype(DType::F64)?.to_scalar::<f64>()?,
    })
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
    let advantages = if params.normalize_advantage && b > 1 {
        normalize_advantages(batch.advantages)
    } else {
        batch.advantages.to_vec()
    };

    // The ratios and the logged statistics (under no_grad in SB3), in f32 as torch computes
    // them: r = exp(log pi - log pi_old); approx_kl = mean((r - 1) - log r); clip_fraction =
    // mean(|r - 1| > clip_range), the range rounded to f32 as torch compares it.
    let log_prob: Vec<f32> = eval.log_prob.to_dtype(DType::F32)?.to_vec1()?;
    let c32 = params.clip_range as f32;
    let (mut kl_sum, mut clipped_n) = (0.0f64, 0usize);
    let ratio: Vec<f32> = log_prob
        .iter()
        .zip(batch.old_log_probs)
        .map(|(&lp, &old)| {
            let log_ratio = lp - old;
            let r = log_ratio.exp();
            kl_sum += f64::from((r - 1.0) - log_ratio);
            clipped_n += usize::from((r - 1.0).abs() > c32);
            r
        })
        .collect();
    let approx_kl = kl_sum / b as f64;
    let clip_fraction = clipped_n as f64 / b as f64;
    let ratio = Tensor::from_vec(ratio, b, eval.log_prob.device())?;

    let fused = [&eval.log_prob, &eval.value, &eval.entropy]
        .iter()
        .all(|t| t.device().is_cpu() && t.dtype() == DType::F32 && t.dims() == [b]);
    let (total, policy_loss, value_loss, entropy_loss) = if fused {
        fused_loss(&eval, &advantages, batch, params)?
    } else {
        graph_loss(&eval, &advantages, batch, params)?
    };
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
        approx_kl,
        clip_fraction,
    })
}

/// The loss terms `(total, policy, value, entropy)` as one fused op (CPU, f32).
fn fused_loss(
    eval: &Evaluation,
    advantages: &[f32],
    batch: &PpoBatch<'_>,
    params: &PpoParams,
) -> Result<(Tensor, Tensor, Tensor, Tensor)> {
    let c = params.clip_range;
    let op = PpoLossOp {
        old_log_probs: batch.old_log_probs.to_vec(),
        advantages: advantages.to_vec(),
        returns: batch.returns.to_vec(),
        old_values: batch.old_values.to_vec(),
        ratio_bounds: ((1.0 - c) as f32, (1.0 + c) as f32),
        clip_range_vf: params.clip_range_vf.map(|v| v as f32),
        ent_coef: params.ent_coef as f32,
        vf_coef: params.vf_coef as f32,
    };
    // A zero entropy coefficient adds exactly zero to the total: detaching the entropy then
    // saves its backward pass (as SB3's loss, the total does not depend on it).
    let entropy = if params.ent_coef == 0.0 {
        eval.entropy.detach()
    } else {
        eval.entropy.clone()
    };
    let out = eval.log_prob.contiguous()?.apply_op3(
        &eval.value.contiguous()?,
        &entropy.contiguous()?,
        op,
    )?;
    let part = |k: usize| -> Result<Tensor> { Ok(out.narrow(0, k, 1)?.squeeze(0)?) };
    Ok((part(0)?, part(1)?, part(2)?, part(3)?))
}

/// The loss terms `(total, policy, value, entropy)` from Candle ops (other devices and
/// dtypes); the same formulas as the fused op.
fn graph_loss(
    eval: &Evaluation,
    advantages: &[f32],
    batch: &PpoBatch<'_>,
    params: &PpoParams,
) -> Result<(Tensor, Tensor, Tensor, Tensor)> {
    let b = advantages.len();
    let dtype = eval.value.dtype();
    let device = eval.value.device();
    let host =
        |xs: &[f32]| -> Result<Tensor> { Ok(Tensor::from_slice(xs, b, device)?.to_dtype(dtype)?) };
    let adv = host(advantages)?;
    let ratio = eval.log_prob.sub(&host(batch.old_log_probs)?)?.exp()?;
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
    let value_loss = host(batch.returns)?
        .sub(&values_pred)?
        .sqr()?
        .mean(D::Minus1)?;
    let entropy_loss = eval.entropy.mean(D::Minus1)?.neg()?;
    let total = policy_loss
        .add(&entropy_loss.affine(params.ent_coef, 0.0)?)?
        .add(&value_loss.affine(params.vf_coef, 0.0)?)?;
    Ok((total, policy_loss, value_loss, entropy_loss))
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
    let scalars = [
        scalar(&loss.policy_loss)?,
        scalar(&loss.value_loss)?,
        scalar(&loss.entropy_loss)?,
        scalar(&loss.total)?,
    ];
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
    let grads = loss.total.backward()?;
    // clip_grad_norm_ then step: the clipping factor is folded into the optimizer's update.
    let grad_norm = grad_norm(optimizer.vars(), &grads)?;
    if !grad_norm.is_finite() {
        return Err(diverged("the gradient norm"));
    }
    optimizer.step_scaled(&grads, clip_coefficient(grad_norm, params.max_grad_norm))?;
    stats.grad_norm = Some(grad_norm);
    stats.stepped = true;
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn var(xs: &[f32]) -> Var {
        Var::from_slice(xs, xs.len(), &Device::Cpu).unwrap()
    }

    /// The fused op and the graph of Candle ops agree on every loss term and on the gradients
    /// of the total with respect to log-probabilities, values and entropies, with ratios and
    /// value deltas on both sides of their clipping ranges and exactly at them.
    #[test]
    fn fused_and_graph_losses_agree() {
        // log pi_old = 0: ratios exp(lp) of 0.5, 0.85 (inside, near 0.8), 1 (a tie of the
        // two surrogates), 1.3 and 2 (clipped above for positive advantages).
        let lp = [
            0.5f32.ln(),
            0.85f32.ln(),
            0.0,
            1.3f32.ln(),
            2.0f32.ln(),
            -0.1,
        ];
        let old_lp = [0.0f32; 6];
        let adv = [1.0f32, -2.0, 0.5, 1.5, -1.0, 0.25];
        let values = [0.1f32, 3.0, -2.5, 0.4, 1.0, 0.0];
        let old_values = [0.0f32, 1.0, 0.0, 0.5, 1.0, 0.2];
        let returns = [1.0f32, 2.0, -1.0, 0.0, 3.0, 0.5];
        let ent = [0.7f32, 0.6, 0.69, 0.5, 0.3, 0.2];
        let obs = Tensor::zeros((6, 1), DType::F32, &Device::Cpu).unwrap();
        for (clip_range_vf, ent_coef) in [(None, 0.0), (Some(0.5), 0.01), (Some(1.5), 0.0)] {
            let params = PpoParams {
                clip_range: 0.2,
                clip_range_vf,
                ent_coef,
                vf_coef: 0.5,
                max_grad_norm: 0.5,
                normalize_advantage: false,
                target_kl: None,
            };
            let batch = PpoBatch {
                observations: &obs,
                actions: &obs,
                old_values: &old_values,
                old_log_probs: &old_lp,
                advantages: &adv,
                returns: &returns,
            };
            let (vl, vv, ve) = (var(&lp), var(&values), var(&ent));
            let eval = Evaluation {
                log_prob: vl.as_tensor().clone(),
                value: vv.as_tensor().clone(),
                entropy: ve.as_tensor().clone(),
            };
            let fused = fused_loss(&eval, &adv, &batch, &params).unwrap();
            let graph = graph_loss(&eval, &adv, &batch, &params).unwrap();
            let scalar = |t: &Tensor| t.to_scalar::<f32>().unwrap();
            for (f, g) in [
                (&fused.0, &graph.0),
                (&fused.1, &graph.1),
                (&fused.2, &graph.2),
                (&fused.3, &graph.3),
            ] {
                assert!(
                    (scalar(f) - scalar(g)).abs() <= 1e-6,
                    "{clip_range_vf:?}: {f} vs {g}"
                );
            }
            let gf = fused.0.backward().unwrap();
            let gg = graph.0.backward().unwrap();
            for (name, v) in [("log_prob", &vl), ("value", &vv), ("entropy", &ve)] {
                let get = |g: &candle_core::backprop::GradStore| -> Vec<f32> {
                    g.get(v.as_tensor())
                        .map(|t| t.to_vec1().unwrap())
                        .unwrap_or_else(|| vec![0.0; 6])
                };
                let (a, b) = (get(&gf), get(&gg));
                for (x, y) in a.iter().zip(&b) {
                    assert!(
                        (x - y).abs() <= 1e-6,
                        "{clip_range_vf:?} {ent_coef}: d total / d {name}: {a:?} vs {b:?}"
                    );
                }
            }
        }
        // Exactly at a clipping bound torch's clamp passes the whole gradient (Candle's
        // max/min graph would halve it): value 3 with old value 1 and range 2, return 2, so
        // d total / d value = vf_coef / n * 2 (pred - return) = 0.5 / 6 * 2.
        let params = PpoParams {
            clip_range: 0.2,
            clip_range_vf: Some(2.0),
            ent_coef: 0.0,
            vf_coef: 0.5,
            max_grad_norm: 0.5,
            normalize_advantage: false,
            target_kl: None,
        };
        let batch = PpoBatch {
            observations: &obs,
            actions: &obs,
            old_values: &old_values,
            old_log_probs: &old_lp,
            advantages: &adv,
            returns: &returns,
        };
        let vv = var(&values);
        let eval = Evaluation {
            log_prob: Tensor::new(&lp, &Device::Cpu).unwrap(),
            value: vv.as_tensor().clone(),
            entropy: Tensor::new(&ent, &Device::Cpu).unwrap(),
        };
        let total = fused_loss(&eval, &adv, &batch, &params).unwrap().0;
        let g: Vec<f32> = total
            .backward()
            .unwrap()
            .get(vv.as_tensor())
            .unwrap()
            .to_vec1()
            .unwrap();
        assert!((g[1] - 0.5 / 6.0 * 2.0).abs() <= 1e-7, "{g:?}");
    }
}
