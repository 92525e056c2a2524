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
        Self::sample_with_std(&log_std.exp()?, n, rng)
    }

    /// [`ExplorationNoise::sample`] from the weights' std `[latent, act]` itself (SB3's
    /// `get_std(log_std)`, which is not `exp(log_std)` with `use_expln`).
    pub fn sample_with_std(std: &Tensor, n: usize, rng: &mut dyn RngCore) -> Result<Self> {
        let (latent, act) = std.dims2()?;
        let (single, per_env) = draw_weight_eps(latent, act, n, rng)?;
        Self::from_eps(std, &single, &per_env)
    }

    /// The matrices `std * eps` for standard-normal draws `single` (`latent * act` values)
    /// and `per_env` (`n * latent * act` values, `n >= 1`), row-major, as
    /// [`draw_weight_eps`] gives them; `std` `[latent, act]`, finite.
    pub fn from_eps(std: &Tensor, single: &[f32], per_env: &[f32]) -> Result<Self> {
        let (latent, act) = std.dims2()?;
        let device = std.device().clone();
        let std: Vec<f32> = std.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
        if let Some(bad) = std.iter().find(|s| !s.is_finite()) {
            return Err(PolicyError::InvalidArgument(format!(
                "cannot draw gSDE exploration matrices from a non-finite std {bad}"
            )));
        }
        let k = std.len();
        if k == 0 || single.len() != k || per_env.is_empty() || !per_env.len().is_multiple_of(k) {
            return Err(PolicyError::Shape {
                what: "gSDE exploration draws",
                expected: format!("{k} values, then a positive multiple of {k}"),
                actual: format!("{} and {}", single.len(), per_env.len()),
            });
        }
        let scale = |eps: &[f32]| -> Vec<f32> {
            eps.chunks_exact(k)
                .flat_map(|m| m.iter().zip(&std).map(|(&e, &s)| s * e))
                .collect()
        };
        let n = per_env.len() / k;
        let single = Tensor::from_vec(scale(single), (latent, act), &device)?;
        let per_env = Tensor::from_vec(scale(per_env), (n, latent, act), &device)?;
        Ok(ExplorationNoise { single, per_env })
    }

    /// The same matrices on `device`.
    pub fn to_device(&self, device: &Device) -> Result<Self> {
        Ok(ExplorationNoise {
            single: self.single.to_device(device)?,
            per_env: self.per_env.to_device(device)?,
        })
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

/// The standard-normal draws of one `reset_noise` for `n` environments (SB3's
/// `sample_weights`): `latent * act` f32 values for the single matrix, then `n * latent * act`
/// for the per-environment ones, from `rng` in that order.
pub fn draw_weight_eps(
    latent: usize,
    act: usize,
    n: usize,
    rng: &mut dyn RngCore,
) -> Result<(Vec<f32>, Vec<f32>)> {
    let k = latent.saturating_mul(act);
    if n == 0 || k == 0 || k > crate::limits::MAX_SPACE_ELEMENTS * crate::limits::MAX_LAYER_WIDTH {
        return Err(PolicyError::InvalidArgument(format!(
            "gSDE exploration matrices need n >= 1 environments and a non-empty, bounded \
             [latent, act] shape, got n = {n}, [{latent}, {act}]"
        )));
    }
    let mut draw = |count: usize| -> Vec<f32> {
        (0..count)
            .map(|_| rng.sample::<f32, _>(StandardNormal))
            .collect()
    };
    let single = draw(k);
    let per_env = draw(n.saturating_mul(k));
    Ok((single, per_env))
}

/// SB3's `StateDependentNoiseDistribution.get_std` with `full_std=True`: the std of each
/// exploration weight, `[latent, act]`, from `log_std` `[latent, act]`: `exp(log_std)`, or
/// with `use_expln` `exp(log_std)` where `log_std <= 0` and `log1p(log_std + 1e-6) + 1`
/// above (the gSDE paper's `expln`, which keeps the variance from growing too fast). Written
/// with torch's masks, so gradients match torch's.
pub fn sde_std(log_std: &Tensor, use_expln: bool) -> Result<Tensor> {
    if !use_expln {
        return Ok(log_std.exp()?);
    }
    let below_mask = log_std.le(0.0)?.to_dtype(log_std.dtype())?;
    let above_mask = log_std.gt(0.0)?.to_dtype(log_std.dtype())?;
    let below = log_std.exp()?.mul(&below_mask)?;
    let safe = log_std.mul(&above_mask)?.affine(1.0, SDE_EPSILON)?;
    let above = crate::ops::log1p(&safe)?
        .affine(1.0, 1.0)?
        .mul(&above_mask)?;
    Ok(below.add(&above)?)
}

/// SB3's `epsilon` of `TanhBijector` in the squashing correction.
pub const SQUASH_EPSILON: f64 = 1e-6;

/// gSDE squashed by `tanh`, as SB3's SAC actor configures `StateDependentNoiseDistribution`
/// (`full_std=True`, `squash_output=True`, `learn_features=True`, `use_expln` as given).
///
/// The pre-`tanh` action is `mean + latent_sde @ M` for an exploration matrix `M` with
/// entries `N(0, std²)`; given the state it is Gaussian with the scale
/// `sqrt(latent_sde² @ std² + ε)`. Unlike A2C/PPO's [`StateDependentNoise`], the features are
/// *not* detached (SAC learns them through the noise, SB3's `learn_features=True`), and the
/// log-probability of an action is computed as SB3 does: the action is un-squashed with
/// `atanh` (clamped one float32 ε inside `[-1, 1]`) and the correction is
/// `sum log(1 - tanh(u)² + 1e-6)` of that recovered `u`.
///
/// That round trip is ill-conditioned where `tanh` saturates (one unit in the last place of
/// `tanh(u)` near ±1 moves the recovered `u`, and `log(1 - tanh(u)² + 1e-6)` flips between
/// `log(1.19e-7 + 1e-6)` and `log(1e-6)` at `tanh(u) = 1 - 2⁻²⁴`), so `tanh` here is Candle's
/// accurate one (libm's `tanhf`, as close to torch's as the last bit allows), not the faster
/// [`crate::ops::tanh`] the other policies use.
#[derive(Clone, Debug)]
pub struct SquashedStateDependentNoise {
    mean: Tensor,
    std_matrix: Tensor,
    latent_sde: Tensor,
    scale: Tensor,
}

impl SquashedStateDependentNoise {
    /// From the mean `[batch, d]` (after any `clip_mean`), `log_std` `[latent, d]` and the
    /// features `latent_sde` `[batch, latent]` (kept in the graph).
    pub fn new(
        mean: Tensor,
        log_std: &Tensor,
        latent_sde: Tensor,
        use_expln: bool,
    ) -> Result<Self> {
        let ok = match (mean.dims(), log_std.dims(), latent_sde.dims()) {
            ([b, d], [l, d2], [b2, l2]) => b == b2 && d == d2 && l == l2,
            _ => false,
        };
        if !ok {
            return Err(PolicyError::Shape {
                what: "squashed gSDE mean/log_std/latent_sde",
                expected: "mean [batch, d], log_std [latent, d], latent_sde [batch, latent]".into(),
                actual: format!(
                    "mean {:?}, log_std {:?}, latent_sde {:?}",
                    mean.dims(),
                    log_std.dims(),
                    latent_sde.dims()
                ),
            });
        }
        let std_matrix = sde_std(log_std, use_expln)?;
        let variance = latent_sde.sqr()?.matmul(&std_matrix.sqr()?)?;
        let scale = variance.affine(1.0, SDE_EPSILON)?.sqrt()?;
        Ok(SquashedStateDependentNoise {
            mean,
            std_matrix,
            latent_sde,
            scale,
        })
    }

    /// The mean of the pre-`tanh` Gaussian, `[batch, d]`.
    pub fn mean(&self) -> &Tensor {
        &self.mean
    }

    /// The std of each exploration weight, `[latent, d]` (SB3's `get_std`).
    pub fn std_matrix(&self) -> &Tensor {
        &self.std_matrix
    }

    /// The features, `[batch, latent]`.
    pub fn latent_sde(&self) -> &Tensor {
        &self.latent_sde
    }

    /// The state-dependent scale of the pre-`tanh` Gaussian, `[batch, d]`.
    pub fn std(&self) -> &Tensor {
        &self.scale
    }

    /// The deterministic action `tanh(mean)`, detached.
    pub fn mode(&self) -> Result<Tensor> {
        Ok(self.mean.detach().tanh()?)
    }

    /// SB3's `log_prob(actions)` for squashed `actions` `[batch, d]` → `[batch]`:
    /// `u = atanh(clamp(a, -1 + ε, 1 - ε))` (float32's ε, `atanh` as `0.5 (log1p(x) -
    /// log1p(-x))`), the Gaussian's log-density of `u` summed over dimensions, minus
    /// `sum log(1 - tanh(u)² + 1e-6)`. Differentiable in the actions and the parameters.
    pub fn log_prob(&self, actions: &Tensor) -> Result<Tensor> {
        if actions.dims() != self.mean.dims() {
            return Err(PolicyError::Shape {
                what: "squashed gSDE actions",
                expected: format!("{:?}", self.mean.dims()),
                actual: format!("{:?}", actions.dims()),
            });
        }
        let bound = 1.0 - f32::EPSILON;
        let y = crate::ops::clamp(actions, -bound, bound)?;
        let u = crate::ops::log1p(&y)?
            .sub(&crate::ops::log1p(&y.neg()?)?)?
            .affine(0.5, 0.0)?;
        // torch's Normal.log_prob: -((u - loc)^2) / (2 var) - log(scale) - ln(sqrt(2 pi)).
        let var2 = (self.scale.sqr()? * 2.0)?;
        let gaussian = u
            .sub(&self.mean)?
            .sqr()?
            .neg()?
            .div(&var2)?
            .sub(&self.scale.log()?)?
            .affine(1.0, -LN_SQRT_2PI)?
            .sum(D::Minus1)?;
        let correction = u
            .tanh()?
            .sqr()?
            .affine(-1.0, 1.0)?
            .affine(1.0, SQUASH_EPSILON)?
            .log()?
            .sum(D::Minus1)?;
        Ok(gaussian.sub(&correction)?)
    }

    /// The reparameterized sample of SAC's training step (SB3's `reset_noise()` then
    /// `action_log_prob`): the exploration matrix `eps * std` for standard-normal `eps`
    /// `[latent, d]` (differentiable in `log_std`), actions `tanh(mean + latent_sde @ M)` and
    /// their [`SquashedStateDependentNoise::log_prob`]: `(actions [batch, d], log_prob
    /// [batch])`.
    pub fn rsample_with_eps(&self, eps: &Tensor) -> Result<(Tensor, Tensor)> {
        if eps.dims() != self.std_matrix.dims() {
            return Err(PolicyError::Shape {
                what: "squashed gSDE exploration draws",
                expected: format!("{:?}", self.std_matrix.dims()),
                actual: format!("{:?}", eps.dims()),
            });
        }
        let matrix = eps
            .to_dtype(self.std_matrix.dtype())?
            .to_device(self.std_matrix.device())?
            .mul(&self.std_matrix)?;
        let u = self.mean.add(&self.latent_sde.matmul(&matrix)?)?;
        let actions = u.tanh()?;
        let log_prob = self.log_prob(&actions)?;
        Ok((actions, log_prob))
    }

    /// A detached sample with fixed exploration matrices (collection; SB3's `get_noise`):
    /// `tanh(mean + latent_sde @ M)`, each row with its environment's matrix when the batch
    /// has one row per environment (and more than one), else with the single matrix.
    pub fn sample(&self, noise: &ExplorationNoise) -> Result<Tensor> {
        let (l, d) = noise.dims();
        if (l, d) != (self.std_matrix.dims()[0], self.std_matrix.dims()[1]) {
            return Err(PolicyError::Shape {
                what: "gSDE exploration matrices",
                expected: format!("{:?}", self.std_matrix.dims()),
                actual: format!("[{l}, {d}]"),
            });
        }
        let noise = noise
            .noise(&self.latent_sde.detach())?
            .to_dtype(self.mean.dtype())?
            .to_device(self.mean.device())?;
        Ok(self.mean.detach().add(&noise)?.tanh()?)
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

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Var;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn host(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1().unwrap()
    }

    #[test]
    fn expln_std_has_both_branches_and_their_gradients() {
        let ls = Var::new(&[[-1.0f32, 0.0], [0.5, 2.0]], &Device::Cpu).unwrap();
        let std = sde_std(ls.as_tensor(), true).unwrap();
        let want = [
            (-1.0f64).exp(),
            1.0,
            (0.5f64 + 1e-6).ln_1p() + 1.0,
            (2.0f64 + 1e-6).ln_1p() + 1.0,
        ];
        for (g, w) in host(&std).iter().zip(want) {
            assert!((f64::from(*g) - w).abs() < 1e-6, "{g} vs {w}");
        }
        let grads = std.sum_all().unwrap().backward().unwrap();
        let g = host(grads.get(ls.as_tensor()).unwrap());
        let want = [(-1.0f64).exp(), 1.0, 1.0 / (1.5 + 1e-6), 1.0 / (3.0 + 1e-6)];
        for (g, w) in g.iter().zip(want) {
            assert!((f64::from(*g) - w).abs() < 1e-6, "{g} vs {w}");
        }
        assert_eq!(
            host(&sde_std(ls.as_tensor(), false).unwrap())[3],
            2f32.exp()
        );
    }

    #[test]
    fn squashed_log_prob_is_sb3s_formula_and_keeps_features_in_the_graph() {
        let dev = Device::Cpu;
        let mean = Var::new(&[[0.2f32], [-0.4]], &dev).unwrap();
        let latent = Var::new(&[[0.5f32, 1.0], [0.0, 2.0]], &dev).unwrap();
        let log_std = Var::new(&[[-1.0f32], [-0.5]], &dev).unwrap();
        let d = SquashedStateDependentNoise::new(
            mean.as_tensor().clone(),
            log_std.as_tensor(),
            latent.as_tensor().clone(),
            false,
        )
        .unwrap();
        let eps = Tensor::new(&[[0.3f32], [-1.2]], &dev).unwrap();
        let (a, lp) = d.rsample_with_eps(&eps).unwrap();
        let (m, l, s, e) = (
            [0.2f64, -0.4],
            [[0.5f64, 1.0], [0.0, 2.0]],
            [-1.0f64, -0.5],
            [0.3f64, -1.2],
        );
        for i in 0..2 {
            let noise: f64 = (0..2).map(|k| l[i][k] * e[k] * s[k].exp()).sum();
            let act = (m[i] + noise).tanh();
            assert!((f64::from(host(&a)[i]) - act).abs() < 1e-6);
            let var: f64 = (0..2)
                .map(|k| l[i][k] * l[i][k] * (2.0 * s[k]).exp())
                .sum::<f64>()
                + 1e-6;
            let u = act.atanh();
            let want = -(u - m[i]).powi(2) / (2.0 * var)
                - 0.5 * var.ln()
                - LN_SQRT_2PI
                - (1.0 - u.tanh().powi(2) + 1e-6).ln();
            assert!(
                (f64::from(host(&lp)[i]) - want).abs() < 1e-4,
                "{} vs {want}",
                host(&lp)[i]
            );
        }
        let grads = lp.sum_all().unwrap().backward().unwrap();
        for v in [&mean, &latent, &log_std] {
            assert!(grads.get(v.as_tensor()).is_some());
        }
        // Saturated actions stay finite (clamped one ulp inside [-1, 1]).
        let sat = d
            .log_prob(&Tensor::new(&[[1.0f32], [-1.0]], &dev).unwrap())
            .unwrap();
        assert!(host(&sat).iter().all(|v| v.is_finite()));
        assert!(d
            .log_prob(&Tensor::zeros((3, 1), DType::F32, &dev).unwrap())
            .is_err());
        assert!(d
            .rsample_with_eps(&Tensor::zeros((1, 1), DType::F32, &dev).unwrap())
            .is_err());
    }

    #[test]
    fn weight_draws_follow_sample_weights_order() {
        let std = Tensor::new(&[[0.5f32, 2.0], [1.0, 3.0]], &Device::Cpu).unwrap();
        let a = ExplorationNoise::sample_with_std(&std, 3, &mut StdRng::seed_from_u64(4)).unwrap();
        let (single, per_env) = draw_weight_eps(2, 2, 3, &mut StdRng::seed_from_u64(4)).unwrap();
        let b = ExplorationNoise::from_eps(&std, &single, &per_env).unwrap();
        assert_eq!(host(a.single()), host(b.single()));
        assert_eq!(host(a.per_env()), host(b.per_env()));
        assert_eq!(a.n_envs(), 3);
        assert_eq!(host(b.single())[1], 2.0 * single[1]);
        assert!(ExplorationNoise::from_eps(&std, &single[..3], &per_env).is_err());
        assert!(ExplorationNoise::from_eps(&std, &single, &per_env[..5]).is_err());
        assert!(draw_weight_eps(2, 2, 0, &mut StdRng::seed_from_u64(4)).is_err());
        let nan = Tensor::new(&[[f32::NAN]], &Device::Cpu).unwrap();
        assert!(ExplorationNoise::sample_with_std(&nan, 1, &mut StdRng::seed_from_u64(4)).is_err());
    }
}
