//! Action distributions over tensors, with PyTorch's formulas (SB3's `CategoricalDistribution`
//! and `DiagGaussianDistribution`; gSDE's `StateDependentNoiseDistribution` is in [`crate::sde`]).
//!
//! `log_prob` and `entropy` are built from differentiable Candle ops, so they feed a loss.
//! `sample` draws from a seeded host RNG: Candle's CPU RNG cannot be seeded.

use crate::error::{PolicyError, Result};
use crate::sde::StateDependentNoise;
use candle_core::{DType, Device, Tensor, D};
use rand::{Rng, RngCore};
use rand_distr::StandardNormal;
use std::sync::OnceLock;

/// `ln(sqrt(2 pi))`, the Gaussian log-density constant.
const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_7;

/// A categorical distribution over `n` actions per row, from logits `[batch, n]`.
///
/// The normalized log-probabilities are computed on first use (and cached): acting
/// deterministically only needs the arg-max of the logits, and sampling normalizes on the host.
#[derive(Clone, Debug)]
pub struct Categorical {
    /// Unnormalized logits `[batch, n]`.
    logits: Tensor,
    /// `logits - logsumexp(logits)`, once computed.
    log_probs: OnceLock<Tensor>,
}

impl Categorical {
    /// From unnormalized logits `[batch, n]` (`n >= 1`).
    pub fn from_logits(logits: &Tensor) -> Result<Self> {
        match logits.dims() {
            [_, n] if *n >= 1 => {}
            dims => {
                return Err(PolicyError::Shape {
                    what: "Categorical logits",
                    expected: "[batch, n_actions >= 1]".into(),
                    actual: format!("{dims:?}"),
                })
            }
        }
        Ok(Categorical {
            logits: logits.clone(),
            log_probs: OnceLock::new(),
        })
    }

    /// The logits it was built from, `[batch, n]`.
    pub fn logits(&self) -> &Tensor {
        &self.logits
    }

    /// Normalized log-probabilities `[batch, n]` (`logits - logsumexp(logits)`, as
    /// `torch.distributions.Categorical` normalizes them); differentiable.
    pub fn log_probs(&self) -> Result<Tensor> {
        if let Some(lp) = self.log_probs.get() {
            return Ok(lp.clone());
        }
        // The max shift only guards exp against overflow; it cancels in the result, so it is
        // detached (and logsumexp's gradient is the softmax either way).
        let max = self.logits.max_keepdim(D::Minus1)?.detach();
        let shifted = self.logits.broadcast_sub(&max)?;
        let lse = shifted.exp()?.sum_keepdim(D::Minus1)?.log()?;
        let lp = shifted.broadcast_sub(&lse)?;
        Ok(self.log_probs.get_or_init(|| lp).clone())
    }

    /// Probabilities `[batch, n]`.
    pub fn probs(&self) -> Result<Tensor> {
        Ok(self.log_probs()?.exp()?)
    }

    /// Number of actions `n`.
    pub fn n(&self) -> usize {
        self.logits.dims()[1]
    }

    /// Log-probability of `actions` → `[batch]`. `actions` is `[batch]` of action indices in
    /// `0..n` (u32, i64, or a float dtype holding whole numbers); anything else is an error.
    /// On the CPU with f32 logits it is one fused op (see
    /// [`Categorical::log_prob_and_entropy`]).
    pub fn log_prob(&self, actions: &Tensor) -> Result<Tensor> {
        if let Some(indices) = self.host_indices(actions)? {
            if let Some(lp) = crate::ops::categorical_log_prob(&self.logits, indices)? {
                return Ok(lp);
            }
        }
        self.graph_log_prob(actions)
    }

    /// [`Categorical::log_prob`] from Candle ops (other devices and dtypes, and the checks of
    /// bad indices).
    fn graph_log_prob(&self, actions: &Tensor) -> Result<Tensor> {
        let (batch, n) = self.logits.dims2()?;
        if actions.dims() != [batch] {
            return Err(PolicyError::Shape {
                what: "Categorical actions",
                expected: format!("[{batch}]"),
                actual: format!("{:?}", actions.dims()),
            });
        }
        check_indices(actions, n)?;
        let idx = actions.to_dtype(DType::U32)?.unsqueeze(1)?;
        Ok(self.log_probs()?.gather(&idx, 1)?.squeeze(1)?)
    }

    /// `(log_prob(actions), entropy())` together, both `[batch]` and differentiable: what a
    /// policy-gradient loss needs. On the CPU with f32 logits each is one fused op (the same
    /// f32 operations in the same order, with a hand-written backward) instead of the dozen
    /// graph ops of [`Categorical::log_prob`] and [`Categorical::entropy`]; elsewhere it is
    /// those two. Any [`crate::ActorCritic`] gets this path through
    /// [`crate::ActorCritic::evaluate_actions`].
    pub fn log_prob_and_entropy(&self, actions: &Tensor) -> Result<(Tensor, Tensor)> {
        if let Some(indices) = self.host_indices(actions)? {
            if let Some(pair) = crate::ops::categorical_log_prob_and_entropy(&self.logits, indices)?
            {
                return Ok(pair);
            }
        }
        Ok((self.graph_log_prob(actions)?, self.entropy()?))
    }

    /// The action indices `[batch]` as host `u32`s when the fused ops apply (CPU f32 logits)
    /// and every index is a whole number in `0..n`; `None` otherwise, so that
    /// [`Categorical::log_prob`] takes over (and reports bad indices).
    fn host_indices(&self, actions: &Tensor) -> Result<Option<Vec<u32>>> {
        let (batch, n) = self.logits.dims2()?;
        if actions.dims() != [batch]
            || !actions.device().is_cpu()
            || !self.logits.device().is_cpu()
            || self.logits.dtype() != DType::F32
        {
            return Ok(None);
        }
        // f64 holds every u32 and every i64 index that could be in range exactly.
        let values = actions.to_dtype(DType::F64)?.to_vec1::<f64>()?;
        let ok = |&v: &f64| v >= 0.0 && v < n as f64 && v.fract() == 0.0;
        Ok(if values.iter().all(ok) {
            Some(values.into_iter().map(|v| v as u32).collect())
        } else {
            None
        })
    }

    /// Entropy per row, `[batch]`: `-sum(p * log p)`; differentiable.
    pub fn entropy(&self) -> Result<Tensor> {
        let lp = self.log_probs()?;
        Ok((lp.exp()? * &lp)?.sum(D::Minus1)?.neg()?)
    }

    /// The most likely action per row, `[batch]` `u32` (the first one on ties, like
    /// `torch.argmax`).
    pub fn mode(&self) -> Result<Tensor> {
        Ok(self.logits.argmax(D::Minus1)?)
    }

    /// One action per row drawn with `rng`, `[batch]` `u32`: the softmax is computed on the
    /// host in f64 and inverted at one uniform draw per row. Non-finite logits are an error.
    pub fn sample(&self, rng: &mut dyn RngCore) -> Result<Tensor> {
        let (batch, n) = self.logits.dims2()?;
        let logits: Vec<f32> = self.logits.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
        if let Some(bad) = logits.iter().find(|x| !x.is_finite()) {
            return Err(PolicyError::InvalidArgument(format!(
                "cannot sample from a non-finite logit {bad}"
            )));
        }
        let mut out = Vec::with_capacity(batch);
        let mut weights = vec![0f64; n];
        for row in logits.chunks_exact(n) {
            out.push(sample_row(row, &mut weights, rng) as u32);
        }
        Ok(Tensor::from_vec(out, batch, self.logits.device())?)
    }
}

/// Checks that `actions` hold whole numbers in `0..n` (a gather would silently read index
/// `u32::MAX` as a zero, and casts wrap negative numbers).
fn check_indices(actions: &Tensor, n: usize) -> Result<()> {
    if actions.dims().iter().product::<usize>() == 0 {
        return Ok(());
    }
    // f32 holds every index below 2^24 exactly and keeps the sign of larger or negative ones.
    let a = actions.to_dtype(DType::F32)?.flatten_all()?;
    let lo: f32 = a.min(0)?.to_scalar()?;
    let hi: f32 = a.max(0)?.to_scalar()?;
    let whole = match actions.dtype() {
        DType::F16 | DType::BF16 | DType::F32 | DType::F64 => {
            let frac: f32 = (&a - a.floor()?)?.abs()?.max(0)?.to_scalar()?;
            frac == 0.0
        }
        _ => true,
    };
    if !(lo >= 0.0 && hi < n as f32 && whole) {
        return Err(PolicyError::InvalidArgument(format!(
            "discrete actions must be whole numbers in 0..{n}, got values in [{lo}, {hi}]"
        )));
    }
    Ok(())
}

/// A diagonal Gaussian: mean `[batch, d]` and a state-independent `log_std` `[d]`.
#[derive(Clone, Debug)]
pub struct DiagGaussian {
    mean: Tensor,
    log_std: Tensor,
}

impl DiagGaussian {
    /// From a mean `[batch, d]` and `log_std` `[d]`.
    pub fn new(mean: Tensor, log_std: Tensor) -> Result<Self> {
        let d = mean.dims().last().copied().unwrap_or(0);
        if mean.rank() != 2 || log_std.dims() != [d] {
            return Err(PolicyError::Shape {
                what: "DiagGaussian mean/log_std",
                expected: "mean [batch, d] and log_std [d]".into(),
                actual: format!("mean {:?}, log_std {:?}", mean.dims(), log_std.dims()),
            });
        }
        Ok(DiagGaussian { mean, log_std })
    }

    /// The mean `[batch, d]`.
    pub fn mean(&self) -> &Tensor {
        &self.mean
    }

    /// `log_std` `[d]`.
    pub fn log_std(&self) -> &Tensor {
        &self.log_std
    }

    /// Standard deviation broadcast to `[batch, d]` (SB3: `ones_like(mean) * log_std.exp()`).
    pub fn std(&self) -> Result<Tensor> {
        Ok(self.log_std.exp()?.broadcast_as(self.mean.shape())?)
    }

    /// Log-density of `actions` `[batch, d]`, summed over the action dimensions → `[batch]`.
    pub fn log_prob(&self, actions: &Tensor) -> Result<Tensor> {
        if actions.dims() != self.mean.dims() {
            return Err(PolicyError::Shape {
                what: "DiagGaussian actions",
                expected: format!("{:?}", self.mean.dims()),
                actual: format!("{:?}", actions.dims()),
            });
        }
        // torch.distributions.Normal: -((a - mu)^2) / (2 var) - log(scale) - ln(sqrt(2 pi)),
        // with scale = exp(log_std) (so log(scale) is taken again, as PyTorch does).
        let std = self.log_std.exp()?;
        let var2 = (std.sqr()? * 2.0)?;
        let log_scale = std.log()?;
        let diff = actions.to_dtype(self.mean.dtype())?.sub(&self.mean)?;
        let quad = diff.sqr()?.broadcast_div(&var2)?;
        let per_dim = quad
            .neg()?
            .broadcast_sub(&log_scale)?
            .affine(1.0, -LN_SQRT_2PI)?;
        Ok(per_dim.sum(D::Minus1)?)
    }

    /// Entropy summed over action dimensions → `[batch]`: `sum(0.5 + ln(sqrt(2 pi)) + log std)`.
    pub fn entropy(&self) -> Result<Tensor> {
        let batch = self.mean.dim(0)?;
        let per_dim = self.log_std.exp()?.log()?.affine(1.0, 0.5 + LN_SQRT_2PI)?;
        let total = per_dim.sum_keepdim(0)?; // [1]
        Ok(total.broadcast_as(batch)?.contiguous()?)
    }

    /// The mean (the deterministic action), detached from the graph.
    pub fn mode(&self) -> Result<Tensor> {
        Ok(self.mean.detach())
    }

    /// `mean + std * eps` with `eps ~ N(0, 1)` drawn from `rng`, `[batch, d]`, detached from
    /// the graph like `torch.distributions.Normal.sample` (actions are data, not functions of
    /// the parameters).
    pub fn sample(&self, rng: &mut dyn RngCore) -> Result<Tensor> {
        Ok(self.rsample(rng)?.detach())
    }

    /// The reparameterized sample `mean + std * eps` (`rsample`): differentiable with respect
    /// to the mean and `log_std`. Draws the same `eps` from `rng` as [`DiagGaussian::sample`].
    pub fn rsample(&self, rng: &mut dyn RngCore) -> Result<Tensor> {
        let n = self.mean.elem_count();
        let eps: Vec<f32> = (0..n)
            .map(|_| rng.sample::<f32, _>(StandardNormal))
            .collect();
        let eps = Tensor::from_vec(eps, self.mean.shape(), self.mean.device())?
            .to_dtype(self.mean.dtype())?;
        Ok(self.mean.add(&eps.mul(&self.std()?)?)?)
    }
}

/// The action distribution of a policy: what SB3's `policy.get_distribution(obs)` returns.
#[derive(Clone, Debug)]
pub enum ActionDist {
    /// Discrete actions.
    Categorical(Categorical),
    /// Continuous actions.
    DiagGaussian(DiagGaussian),
    /// Continuous actions with gSDE exploration ([`crate::sde`]).
    StateDependentNoise(StateDependentNoise),
}

impl ActionDist {
    /// Log-probability of `actions` → `[batch]` (actions `[batch]` for categorical,
    /// `[batch, d]` for Gaussian).
    pub fn log_prob(&self, actions: &Tensor) -> Result<Tensor> {
        match self {
            ActionDist::Categorical(c) => c.log_prob(actions),
            ActionDist::DiagGaussian(g) => g.log_prob(actions),
            ActionDist::StateDependentNoise(s) => s.log_prob(actions),
        }
    }

    /// Entropy → `[batch]`.
    pub fn entropy(&self) -> Result<Tensor> {
        match self {
            ActionDist::Categorical(c) => c.entropy(),
            ActionDist::DiagGaussian(g) => g.entropy(),
            ActionDist::StateDependentNoise(s) => s.entropy(),
        }
    }

    /// `(log_prob(actions), entropy())` → both `[batch]`, the categorical one fused on the
    /// CPU ([`Categorical::log_prob_and_entropy`]).
    pub fn log_prob_and_entropy(&self, actions: &Tensor) -> Result<(Tensor, Tensor)> {
        match self {
            ActionDist::Categorical(c) => c.log_prob_and_entropy(actions),
            ActionDist::DiagGaussian(g) => Ok((g.log_prob(actions)?, g.entropy()?)),
            ActionDist::StateDependentNoise(s) => Ok((s.log_prob(actions)?, s.entropy()?)),
        }
    }

    /// The deterministic action (argmax or mean).
    pub fn mode(&self) -> Result<Tensor> {
        match self {
            ActionDist::Categorical(c) => c.mode(),
            ActionDist::DiagGaussian(g) => g.mode(),
            ActionDist::StateDependentNoise(s) => s.mode(),
        }
    }

    /// A sampled action drawn with `rng`.
    pub fn sample(&self, rng: &mut dyn RngCore) -> Result<Tensor> {
        match self {
            ActionDist::Categorical(c) => c.sample(rng),
            ActionDist::DiagGaussian(g) => g.sample(rng),
            ActionDist::StateDependentNoise(s) => s.sample(rng),
        }
    }

    /// `mode()` when `deterministic`, else `sample(rng)`.
    pub fn act(&self, deterministic: bool, rng: &mut dyn RngCore) -> Result<Tensor> {
        if deterministic {
            self.mode()
        } else {
            self.sample(rng)
        }
    }

    /// The device of the distribution's parameters.
    pub fn device(&self) -> &Device {
        match self {
            ActionDist::Categorical(c) => c.logits.device(),
            ActionDist::DiagGaussian(g) => g.mean.device(),
            ActionDist::StateDependentNoise(s) => s.device(),
        }
    }
}

/// One categorical draw from the finite logits `row` (`weights`: scratch of the same length):
/// `exp(l - max)` in f64, one uniform f64 draw scaled by their sum, the first action whose
/// running sum exceeds it; the last action with non-zero weight absorbs any rounding at the
/// top end. [`Categorical::sample`] and the fast path ([`crate::MlpEngine`]) both draw this way.
pub(crate) fn sample_row(row: &[f32], weights: &mut [f64], rng: &mut dyn RngCore) -> usize {
    let max = row.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
    let mut total = 0.0;
    for (w, &l) in weights.iter_mut().zip(row) {
        *w = f64::from(l - max).exp();
        total += *w;
    }
    let target = rng.gen::<f64>() * total;
    let mut acc = 0.0;
    let mut pick = weights.iter().rposition(|&w| w > 0.0).unwrap_or(0);
    for (i, w) in weights.iter().enumerate() {
        acc += w;
        if target < acc {
            pick = i;
            break;
        }
    }
    pick
}
