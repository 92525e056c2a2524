//! Generalized State-Dependent Exploration (gSDE, <https://arxiv.org/abs/2005.05719>), with the
//! semantics of SB3's `StateDependentNoiseDistribution` as `ActorCriticPolicy` configures it
//! (`full_std=True`, `use_expln=False`, `learn_features=False`, `squash_output=False`).
//!
//! Why a distribution of its own: a diagonal Gaussian draws fresh noise at every step, so
//! consecutive actions jitter. gSDE draws a random *linear map* from the policy's last hidden
//! features (`latent_sde`, `[batch, latent]`) to the actions, the [`ExplorationNoise`], and
//! keeps it for a while (a whole rollout, or `sde_sample_freq` steps): the exploration noise
//! `latent_sde @ noise` is then a smooth function of the state. The entries of the map are
//! `N(0, std²)` with `std = exp(log_std)` a `[latent, action_dim]` parameter, so the action,
//! given the state, is Gaussian with mean `action_net(latent)` and variance
//! `latent² @ std²` per action dimension (plus [`SDE_EPSILON`]). [`StateDependentNoise`]
//! computes log-probabilities and entropies of that Gaussian; they never depend on the drawn
//! map, only on `log_std` and the (detached) features.
//!
//! The exploration matrices are state of the policy (SB3 keeps them in the distribution
//! object): a policy re-draws them in [`crate::StochasticPolicy::reset_noise`] from the run's
//! seeded generator, and the algorithms call it where SB3's `collect_rollouts` does.

use crate::error::{PolicyError, Result};
use candle_core::{DType, Device, Tensor, D};
use rand::{Rng, RngCore};
use rand_distr::StandardNormal;

/// SB3's `epsilon` of `StateDependentNoiseDistribution`, added to the variance before the
/// square root.
pub const SDE_EPSILON: f64 = 1e-6;

/// `ln(sqrt(2 pi))`, the Gaussian log-density constant.
const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_7;

/// The exploration matrices of gSDE (SB3's `exploration_mat` and `exploration_matrices`).
///
/// `single` `[latent, act]` serves batches whose row count differs from `n` (and batches of
/// one row); `per_env` `[n, latent, act]` gives row `i` of an `n`-row batch (one environment
/// each) its own matrix.
#[derive(Clone, Debug)]
pub struct ExplorationNoise {
    single: Tensor,
    per_env: Tensor,
}

impl ExplorationNoise {
    /// From the matrices: `single` `[latent, act]` and `per_env` `[n, latent, act]`, `n >= 1`,
    /// both f32 on one device (for example SB3's recorded matrices).
    pub fn new(single: Tensor, per_env: Tensor) -> Result<Self> {
        let ok = match (single.dims(), per_env.dims()) {
            ([l, a], [n, l2, a2]) => *n >= 1 && l == l2 && a == a2,
            _ => false,
        };
        if !ok
            || single.dtype() != DType::F32
            || per_env.dtype() != DType::F32
            || !single.device().same_device(per_env.device())
        {
            return Err(PolicyError::Shape {
                what: "gSDE exploration matrices",
                expected:
                    "f32 single [latent, act] and per_env [n >= 1, latent, act] on one device"
                        .into(),
                actual: format!(
                    "single {:?} {:?}, per_env {:?} {:?}",
                    single.dims(),
                    single.dtype(),
                    per_env.dims(),
                    per_env.dtype()
                ),
            });
        }
        Ok(ExplorationNoise { single, per_env })
    }

    /// Draws new matrices for `n` environments with `std = exp(log_std)` (`log_std`
    /// `[latent, act]`): every entry is `std * eps`, `eps ~ N(0, 1)` from `rng` in f32, the
    /// single matrix first, then the `n` per-environment ones (SB3's `sample_weights` order).
    pub fn sample(log_std: &Tensor, n: usize, rng: &mut dyn RngCore) -> Result<Self> {
        let (latent, act) = log_std.dims2()?;
        if n == 0 {
            return Err(PolicyError::InvalidArgument(
                "gSDE needs exploration matrices for at least one environment".into(),
            ));
        }
        let std: Vec<f32> = log_std
            .to_dtype(DType::F32)?
            .exp()?
            .flatten_all()?
            .to_vec1()?;
        if let Some(bad) = std.iter().find(|s| !s.is_finite()) {
            return Err(PolicyError::InvalidArgument(format!(
                "cannot draw gSDE exploration matrices from a non-finite std {bad}"
            )));
        }
        let mut draw = |count: usize| -> Vec<f32> {
            let mut out = Vec::with_capacity(count * std.len());
            for _ in 0..count {
                for &s in &std {
                    out.push(s * rng.sample::<f32, _>(StandardNormal));
                }
            }
            out
        };
        let device = log_std.device();
        let single = Tensor::from_vec(draw(1), (latent, act), device)?;
        let per_env = Tensor::from_vec(draw(n), (n, latent, act), device)?;
        Ok(ExplorationNoise { single, per_env })
    }

    /// The matrix for batches that are not one row per environment, `[latent, act]`.
    pub fn single(&self) -> &Tensor {
        &self.single
    }

    /// One matrix per environment, `[n, latent, act]`.
    pub fn per_env(&self) -> &Tensor {
        &self.per_env
    }

    /// The number of environments `n`.
    pub fn n_envs(&self) -> usize {
        self.per_env.dims()[0]
    }

    /// `(latent, act)`.
    pub fn dims(&self) -> (usize, usize) {
        let d = self.single.dims();
        (d[0], d[1])
    }

    /// The noise `latent_sde @ matrix` for a batch `[batch, latent]` → `[batch, act]`: each row
    /// with its environment's matrix when the batch has `n > 1` rows, else with the single
    /// matrix (SB3's `get_noise`).
    pub fn noise(&self, latent_sde: &Tensor) -> Result<Tensor> {
        let batch = latent_sde.dim(0)?;
        let latent_sde = latent_sde.to_device(self.single.device())?;
        if batch == 1 || batch != self.n_envs() {
            Ok(latent_sde.matmul(&self.single)?)
        } else {
            Ok(latent_sde
                .unsqueeze(1)?
                .contiguous()?
                .matmul(&self.per_env)?
                .squeeze(1)?)
        }
    }
}

/// The gSDE action distribution: Gaussian with mean `[batch, d]` and the state-dependent
/// scale `sqrt(latent_sde² @ exp(log_std)² + ε)`; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct StateDependentNoise {
    mean: Tensor,
    log_std: Tensor,
    latent_sde: Tensor,
    scale: Tensor,
    noise: Option<ExplorationNoise>,
}

impl StateDependentNoise {
    /// From the mean `[batch, d]`, `log_std` `[latent, d]`, the features `latent_sde`
    /// `[batch, latent]` (detached here: SB3's `learn_features=False`, so gradients reach the
    /// network through the mean only) and the exploration matrices to sample with (`None`:
    /// [`StateDependentNoise::sample`] draws a fresh matrix each call).
    pub fn new(
        mean: Tensor,
        log_std: Tensor,
        latent_sde: &Tensor,
        noise: Option<ExplorationNoise>,
    ) -> Result<Self> {
        let shapes_ok = match (mean.dims(), log_std.dims(), latent_sde.dims()) {
            ([b, d], [l, d2], [b2, l2]) => b == b2 && d == d2 && l == l2,
            _ => false,
        };
        let noise_ok = noise
            .as_ref()
            .is_none_or(|n| n.dims() == (log_std.dims()[0], log_std.dims()[1]));
        if !shapes_ok || !noise_ok {
            return Err(PolicyError::Shape {
                what: "gSDE mean/log_std/latent_sde",
                expected: "mean [batch, d], log_std [latent, d], latent_sde [batch, latent], \
                           exploration matrices [latent, d]"
                    .into(),
                actual: format!(
                    "mean {:?}, log_std {:?}, latent_sde {:?}, exploration matrices {:?}",
                    mean.dims(),
                    log_std.dims(),
                    latent_sde.dims(),
                    noise.as_ref().map(|n| n.dims())
                ),
            });
        }
        let latent_sde = latent_sde.detach();
        let std = log_std.exp()?;
        let variance = latent_sde.sqr()?.matmul(&std.sqr()?)?;
        let scale = variance.affine(1.0, SDE_EPSILON)?.sqrt()?;
        Ok(StateDependentNoise {
            mean,
            log_std,
            latent_sde,
            scale,
            noise,
        })
    }

    /// The mean `[batch, d]`.
    pub fn mean(&self) -> &Tensor {
        &self.mean
    }

    /// `log_std` `[latent, d]`.
    pub fn log_std(&self) -> &Tensor {
        &self.log_std
    }

    /// The (detached) features `[batch, latent]`.
    pub fn latent_sde(&self) -> &Tensor {
        &self.latent_sde
    }

    /// The exploration matrices it samples with, if any.
    pub fn exploration_noise(&self) -> Option<&ExplorationNoise> {
        self.noise.as_ref()
    }

    /// The std of each weight of the exploration matrices, `exp(log_std)` `[latent, d]`.
    pub fn std_matrix(&self) -> Result<Tensor> {
        Ok(self.log_std.exp()?)
    }

    /// The state-dependent standard deviation of the actions, `[batch, d]`:
    /// `sqrt(latent_sde² @ exp(log_std)² + ε)`.
    pub fn std(&self) -> &Tensor {
        &self.scale
    }

    /// Log-density of `actions` `[batch, d]`, summed over action dimensions → `[batch]`, as
    /// `torch.distributions.Normal(mean, scale).log_prob` (variance recomputed as `scale²`).
    pub fn log_prob(&self, actions: &Tensor) -> Result<Tensor> {
        if actions.dims() != self.mean.dims() {
            return Err(PolicyError::Shape {
                what: "gSDE actions",
                expected: format!("{:?}", self.mean.dims()),
                actual: format!("{:?}", actions.dims()),
            });
        }
        let var2 = (self.scale.sqr()? * 2.0)?;
        let diff = actions.to_dtype(self.mean.dtype())?.sub(&self.mean)?;
        let per_dim =
            ((diff.sqr()?.neg()? / var2)? - self.scale.log()?)?.affine(1.0, -LN_SQRT_2PI)?;
        Ok(per_dim.sum(D::Minus1)?)
    }

    /// Entropy summed over action dimensions → `[batch]`: `sum(0.5 + ln(sqrt(2 pi)) + log scale)`.
    pub fn entropy(&self) -> Result<Tensor> {
        Ok(self
            .scale
            .log()?
            .affine(1.0, 0.5 + LN_SQRT_2PI)?
            .sum(D::Minus1)?)
    }

    /// The mean (the deterministic action), detached.
    pub fn mode(&self) -> Result<Tensor> {
        Ok(self.mean.detach())
    }

    /// `mean + latent_sde @ noise`, detached, `[batch, d]` (see [`ExplorationNoise::noise`]).
    /// Without exploration matrices one is drawn from `rng` for this call; with them `rng` is
    /// not used (the noise was drawn when the matrices were).
    pub fn sample(&self, rng: &mut dyn RngCore) -> Result<Tensor> {
        let noise = match &self.noise {
            Some(n) => n.noise(&self.latent_sde)?,
            None => {
                ExplorationNoise::sample(&self.log_std.detach(), 1, rng)?.noise(&self.latent_sde)?
            }
        };
        let noise = noise.to_dtype(self.mean.dtype())?;
        Ok(self.mean.detach().add(&noise)?)
    }

    /// The device of the distribution's parameters.
    pub fn device(&self) -> &Device {
        self.mean.device()
    }
}
