//! A2C's gradient step on the fast MLP path: [`A2cFastUpdate`].
//!
//! The same step as [`super::a2c_update`] (SB3's loss, `clip_grad_norm_`, the optimizer) for a
//! policy that is a standard MLP ([`rl_policy::ActorCritic::mlp_layout`]): the forward and
//! backward passes run in an [`MlpEngine`], the loss's gradient with respect to each sample's
//! log-probability, entropy and value is written out here, the gradient norm is taken over the
//! engine's persistent gradient buffers and the optimizer steps from them
//! ([`Optimizer::step_host`]). No tensor is built and nothing is allocated per update.
//!
//! The loss terms are computed in f32 as the Candle graph computes them (sums in order rather
//! than Candle's vectorized reductions), so the reported losses and the updated parameters
//! agree with the generic path to f32 rounding: the tests bound the parameter difference after
//! an update by 1e-6.

use super::update::{normalize_advantages_into, UpdateParams, UpdateStats};
use crate::error::{AlgoError, Result};
use crate::optim::{clip_and_step_host, require_host_step, Optimizer};
use rl_policy::{MlpEngine, MlpLayout};

/// A2C's update ([`super::a2c_update`]'s loss, clipping and optimizer step) through an
/// [`MlpEngine`], with its buffers sized for batches of up to `max_batch` samples: no tensor is
/// built and nothing is allocated per update. The losses and updated parameters agree with the
/// generic path to f32 rounding (within 1e-6, tested). `A2c` uses it automatically for a
/// policy whose [`rl_policy::ActorCritic::mlp_layout`] is `Some`.
#[derive(Debug)]
pub struct A2cFastUpdate {
    engine: MlpEngine,
    advantages: Vec<f32>,
    d_log_prob: Vec<f32>,
    d_entropy: Vec<f32>,
    d_value: Vec<f32>,
}

impl A2cFastUpdate {
    /// An update for the network `layout` whose gradients follow `optimizer`'s variables
    /// (which must be exactly the layout's parameters, stepped on the host: see
    /// [`Optimizer::supports_host_step`]).
    pub fn new(layout: MlpLayout, max_batch: usize, optimizer: &dyn Optimizer) -> Result<Self> {
        require_host_step(optimizer, "A2C")?;
        let mut engine = MlpEngine::new(layout, max_batch)?;
        engine.bind_gradients(optimizer.vars())?;
        Ok(A2cFastUpdate {
            engine,
            advantages: vec![0.0; max_batch],
            d_log_prob: vec![0.0; max_batch],
            d_entropy: vec![0.0; max_batch],
            d_value: vec![0.0; max_batch],
        })
    }

    /// The engine (for its sizes and gradients).
    pub fn engine(&self) -> &MlpEngine {
        &self.engine
    }

    /// One A2C gradient step on `B` samples: `observations` `[B, obs_dim]`, `actions`
    /// `[B, act_dim]` (indices as f32 for discrete spaces), `advantages` and `returns` `[B]`,
    /// at the optimizer's learning rate. A non-finite loss or gradient norm leaves the
    /// parameters untouched and returns [`AlgoError::Diverged`] naming `iteration`.
    #[allow(clippy::too_many_arguments)]
    pub fn update(
        &mut self,
        optimizer: &mut dyn Optimizer,
        observations: &[f32],
        actions: &[f32],
        advantages: &[f32],
        returns: &[f32],
        params: &UpdateParams,
        iteration: u64,
    ) -> Result<UpdateStats> {
        let b = advantages.len();
        if returns.len() != b || b == 0 || b > self.engine.max_batch() {
            return Err(AlgoError::InvalidArgument(format!(
                "A2C batch: {b} advantages and {} returns (1 to {} samples)",
                returns.len(),
                self.engine.max_batch()
            )));
        }
        let adv = &mut self.advantages[..b];
        if params.normalize_advantage && b > 1 {
            normalize_advantages_into(advantages, adv);
        } else {
            adv.copy_from_slice(advantages);
        }
        let out = self.engine.evaluate(observations, actions)?;
        if out.value.len() != b {
            return Err(AlgoError::InvalidArgument(format!(
                "A2C batch: {} observations but {b} advantages",
                out.value.len()
            )));
        }
        // The loss terms as the graph computes them: means are sums times 1/n.
        let inv_n = (1.0 / b as f64) as f32;
        let mean = |xs: &mut dyn Iterator<Item = f32>| xs.fold(0f32, |s, x| s + x) * inv_n;
        let policy_loss = -mean(&mut adv.iter().zip(out.log_prob).map(|(&a, &l)| a * l));
        let value_loss = mean(
            &mut returns
                .iter()
                .zip(out.value)
                .map(|(&r, &v)| (r - v) * (r - v)),
        );
        let entropy_loss = -mean(&mut out.entropy.iter().copied());
        let (vf_coef, ent_coef) = (params.vf_coef as f32, params.ent_coef as f32);
        let mut total = policy_loss + value_loss * vf_coef;
        if params.ent_coef != 0.0 {
            total += entropy_loss * ent_coef;
        }
        if !total.is_finite() {
            return Err(AlgoError::Diverged {
                iteration,
                what: "the loss".into(),
            });
        }
        // d total / d log_prob_i = -A_i / n, d / d V_i = vf_coef * 2 (V_i - R_i) / n,
        // d / d entropy_i = -ent_coef / n.
        let d_vl = vf_coef * inv_n;
        for i in 0..b {
            self.d_log_prob[i] = -inv_n * adv[i];
            self.d_value[i] = d_vl * (2.0 * (out.value[i] - returns[i]));
        }
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
        Ok(UpdateStats {
            policy_loss: f64::from(policy_loss),
            value_loss: f64::from(value_loss),
            entropy_loss: f64::from(entropy_loss),
            loss: f64::from(total),
            grad_norm,
        })
    }
}
