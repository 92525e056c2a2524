//! What SAC, TD3 and DDPG share on the update side: a batch of continuous-action transitions,
//! the clipped double-Q minimum over critic heads, the TD targets and the critics' MSE loss,
//! each in torch's order of operations (SB3's `sac.py` / `td3.py`).

use crate::error::{AlgoError, Result};
use crate::replay::ReplaySamples;
use candle_core::{DType, Device, Tensor};
use rl_policy::Critic;

/// One batch of `B` transitions with continuous actions.
#[derive(Clone, Copy, Debug)]
pub struct ContinuousBatch<'a> {
    /// Observations `[B, obs_dim]`.
    pub observations: &'a Tensor,
    /// Scaled actions in `[-1, 1]` `[B, act_dim]`, as the replay buffer stores them.
    pub actions: &'a Tensor,
    /// Next observations `[B, obs_dim]`.
    pub next_observations: &'a Tensor,
    /// Rewards `[B]` (the discounted n-step sum for n-step buffers).
    pub rewards: &'a [f32],
    /// `done * (1 - timeout)` `[B]`.
    pub dones: &'a [f32],
    /// Per-sample discounts `gamma^k` `[B]` (n-step buffers), or empty for `gamma` itself.
    pub discounts: &'a [f32],
}

impl ContinuousBatch<'_> {
    /// The number of samples, after checking that every part agrees on it.
    pub fn checked_len(&self) -> Result<usize> {
        let b = self.observations.dim(0)?;
        let bad = |m: String| Err(AlgoError::InvalidArgument(format!("batch: {m}")));
        if b == 0 {
            return bad("it is empty".into());
        }
        if self.actions.rank() != 2 || self.actions.dim(0)? != b {
            return bad(format!(
                "{b} observations but actions of shape {:?}",
                self.actions.dims()
            ));
        }
        if self.next_observations.dims() != self.observations.dims() {
            return bad(format!(
                "next observations {:?} vs observations {:?}",
                self.next_observations.dims(),
                self.observations.dims()
            ));
        }
        for (what, len) in [("rewards", self.rewards.len()), ("dones", self.dones.len())] {
            if len != b {
                return bad(format!("{b} observations but {len} {what}"));
            }
        }
        if !self.discounts.is_empty() && self.discounts.len() != b {
            return bad(format!(
                "{b} observations but {} discounts",
                self.discounts.len()
            ));
        }
        Ok(b)
    }
}

/// The tensors of a batch of replay samples (observations, scaled actions, next
/// observations), made by [`BatchTensors::new`]; [`BatchTensors::batch`] pairs them with the
/// samples' rewards, dones and discounts.
#[derive(Clone, Debug)]
pub struct BatchTensors {
    /// Observations `[B, obs_dim]`.
    pub observations: Tensor,
    /// Scaled actions `[B, act_dim]`.
    pub actions: Tensor,
    /// Next observations `[B, obs_dim]`.
    pub next_observations: Tensor,
}

impl BatchTensors {
    /// The tensors of `samples` on `device`.
    pub fn new(samples: &ReplaySamples, device: &Device) -> Result<Self> {
        let b = samples.len();
        if b == 0
            || !samples.observations.len().is_multiple_of(b)
            || !samples.actions.len().is_multiple_of(b)
        {
            return Err(AlgoError::InvalidArgument(format!(
                "replay samples: {} observation and {} action values for {b} samples",
                samples.observations.len(),
                samples.actions.len()
            )));
        }
        let obs_dim = samples.observations.len() / b;
        let act_dim = samples.actions.len() / b;
        Ok(BatchTensors {
            observations: Tensor::from_slice(&samples.observations, (b, obs_dim), device)?,
            actions: Tensor::from_slice(&samples.actions, (b, act_dim), device)?,
            next_observations: Tensor::from_slice(
                &samples.next_observations,
                (b, obs_dim),
                device,
            )?,
        })
    }

    /// The batch of these tensors and `samples`' rewards, dones and discounts.
    pub fn batch<'a>(&'a self, samples: &'a ReplaySamples) -> ContinuousBatch<'a> {
        ContinuousBatch {
            observations: &self.observations,
            actions: &self.actions,
            next_observations: &self.next_observations,
            rewards: &samples.rewards,
            dones: &samples.dones,
            discounts: &samples.discounts,
        }
    }
}

/// The element-wise minimum over critic heads (`th.min(th.cat(heads, 1), 1, keepdim=True)`),
/// `[B, 1]`, differentiable.
pub fn min_over_heads(heads: &[Tensor]) -> Result<Tensor> {
    let (first, rest) = heads
        .split_first()
        .ok_or_else(|| AlgoError::InvalidArgument("the critic returned no heads".into()))?;
    let mut m = first.clone();
    for h in rest {
        if h.dims() != m.dims() {
            return Err(AlgoError::InvalidArgument(format!(
                "critic heads of shapes {:?} and {:?}",
                m.dims(),
                h.dims()
            )));
        }
        m = m.minimum(h)?;
    }
    Ok(m)
}

/// A `[B, 1]` (or `[B]`) tensor's values on the host as f32, checking there are `b`.
pub(crate) fn host_column(t: &Tensor, b: usize, what: &str) -> Result<Vec<f32>> {
    let v: Vec<f32> = t.detach().to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
    if v.len() != b {
        return Err(AlgoError::InvalidArgument(format!(
            "{what}: {} values of shape {:?} for {b} samples",
            v.len(),
            t.dims()
        )));
    }
    Ok(v)
}

/// The TD targets `r + ((1 - done) * gamma^k) * next_q` in float32, torch's order, `[B]`.
pub fn td_targets(batch: &ContinuousBatch<'_>, next_q: &[f32], gamma: f64) -> Vec<f32> {
    let g = gamma as f32;
    (0..next_q.len())
        .map(|i| {
            let discount = batch.discounts.get(i).copied().unwrap_or(g);
            batch.rewards[i] + ((1.0 - batch.dones[i]) * discount) * next_q[i]
        })
        .collect()
}

/// The critics' loss `scale * sum_i mse(Q_i(s, a), targets)` (SAC: `scale = 0.5`; TD3/DDPG:
/// 1) with gradients, and each head's `Q_i(s, a)` on the host.
pub fn critic_loss<C: Critic + ?Sized>(
    critic: &C,
    batch: &ContinuousBatch<'_>,
    targets: &[f32],
    scale: f64,
) -> Result<(Tensor, Vec<Vec<f32>>)> {
    let b = batch.checked_len()?;
    if targets.len() != b {
        return Err(AlgoError::InvalidArgument(format!(
            "batch: {b} observations but {} targets",
            targets.len()
        )));
    }
    let heads = critic.q_values(batch.observations, batch.actions)?;
    if heads.is_empty() {
        return Err(AlgoError::InvalidArgument(
            "the critic returned no heads".into(),
        ));
    }
    let target = Tensor::from_slice(targets, (b, 1), critic.device())?;
    let mut total: Option<Tensor> = None;
    let mut current = Vec::with_capacity(heads.len());
    for q in &heads {
        current.push(host_column(q, b, "critic Q-values")?);
        let q = q.reshape((b, 1))?;
        let mse = q.sub(&target.to_dtype(q.dtype())?)?.sqr()?.mean_all()?;
        total = Some(match total {
            None => mse,
            Some(t) => t.add(&mse)?,
        });
    }
    let total = total.expect("at least one head");
    let loss = if scale == 1.0 {
        total
    } else {
        total.affine(scale, 0.0)?
    };
    Ok((loss, current))
}

/// The scalar value of a loss tensor as f64, or [`AlgoError::Diverged`] naming `what` and
/// `iteration` when it is not finite.
pub(crate) fn finite_scalar(t: &Tensor, what: &str, iteration: u64) -> Result<f64> {
    let v = f64::from(t.to_dtype(DType::F32)?.to_scalar::<f32>()?);
    if v.is_finite() {
        Ok(v)
    } else {
        Err(AlgoError::Diverged {
            iteration,
            what: what.to_string(),
        })
    }
}
