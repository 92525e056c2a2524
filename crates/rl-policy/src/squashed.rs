//! The `tanh`-squashed diagonal Gaussian of SAC (SB3's `SquashedDiagGaussianDistribution`).
//!
//! A Gaussian sample `u = mean + eps * std` is squashed into `a = tanh(u)` in `[-1, 1]`; its
//! log-density is the Gaussian's, summed over the action dimensions, minus the change of
//! variables `sum log(1 - a^2 + 1e-6)` (SB3's epsilon keeps the log finite where `tanh`
//! saturates). Everything is computed with torch's formulas and order, and is differentiable
//! with respect to the mean and `log_std` (the reparameterization trick), which is what SAC's
//! actor loss needs.

use crate::error::{PolicyError, Result};
use candle_core::{Tensor, D};
use rand::{Rng, RngCore};
use rand_distr::StandardNormal;

/// SB3's epsilon inside the squashing correction's logarithm.
pub const SQUASH_EPSILON: f64 = 1e-6;

/// `ln(sqrt(2 pi))`, torch's constant in `Normal.log_prob`.
const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_7;

/// A diagonal Gaussian over pre-`tanh` actions with per-sample `log_std`, squashed by `tanh`;
/// see the [module docs](self).
///
/// ```
/// use candle_core::{Device, Tensor};
/// use rl_policy::SquashedDiagGaussian;
///
/// let mean = Tensor::new(&[[0.0f32, 1.0]], &Device::Cpu)?;
/// let log_std = Tensor::new(&[[-1.0f32, 0.0]], &Device::Cpu)?;
/// let dist = SquashedDiagGaussian::new(mean, log_std)?;
/// // Feed the standard-normal noise yourself (or draw it with `rsample`).
/// let eps = Tensor::new(&[[0.5f32, -0.5]], &Device::Cpu)?;
/// let (actions, log_prob) = dist.rsample_with_noise(&eps)?;
/// let a = actions.to_vec2::<f32>()?;
/// assert!((a[0][0] - (0.5f32 * (-1.0f32).exp()).tanh()).abs() < 1e-6);
/// assert_eq!(log_prob.dims(), &[1]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct SquashedDiagGaussian {
    mean: Tensor,
    log_std: Tensor,
}

impl SquashedDiagGaussian {
    /// From a mean and a `log_std`, both `[batch, d]`.
    pub fn new(mean: Tensor, log_std: Tensor) -> Result<Self> {
        if mean.rank() != 2 || log_std.dims() != mean.dims() {
            return Err(PolicyError::Shape {
                what: "SquashedDiagGaussian mean/log_std",
                expected: "mean and log_std both [batch, d]".into(),
                actual: format!("mean {:?}, log_std {:?}", mean.dims(), log_std.dims()),
            });
        }
        Ok(SquashedDiagGaussian { mean, log_std })
    }

    /// The mean of the pre-`tanh` Gaussian, `[batch, d]`.
    pub fn mean(&self) -> &Tensor {
        &self.mean
    }

    /// `log_std`, `[batch, d]`.
    pub fn log_std(&self) -> &Tensor {
        &self.log_std
    }

    /// The deterministic action `tanh(mean)`, detached.
    pub fn mode(&self) -> Result<Tensor> {
        Ok(crate::ops::tanh(&self.mean.detach())?)
    }

    /// The log-density of the pre-`tanh` values `u` `[batch, d]` whose squashed values are
    /// `actions` (SB3's `log_prob(actions, gaussian_actions)`), `[batch]`.
    pub fn log_prob(&self, actions: &Tensor, gaussian_actions: &Tensor) -> Result<Tensor> {
        for (what, t) in [("actions", actions), ("gaussian actions", gaussian_actions)] {
            if t.dims() != self.mean.dims() {
                return Err(PolicyError::Shape {
                    what: "SquashedDiagGaussian log_prob input",
                    expected: format!("{what} {:?}", self.mean.dims()),
                    actual: format!("{:?}", t.dims()),
                });
            }
        }
        // torch's Normal.log_prob with scale = exp(log_std):
        // -((u - loc)^2) / (2 scale^2) - log(scale) - ln(sqrt(2 pi)).
        let std = self.log_std.exp()?;
        let var2 = (std.sqr()? * 2.0)?;
        let log_scale = std.log()?;
        let quad = gaussian_actions.sub(&self.mean)?.sqr()?.div(&var2)?;
        let gaussian = quad
            .neg()?
            .sub(&log_scale)?
            .affine(1.0, -LN_SQRT_2PI)?
            .sum(D::Minus1)?;
        // - sum(log(1 - a^2 + eps)).
        let correction = actions
            .sqr()?
            .affine(-1.0, 1.0)?
            .affine(1.0, SQUASH_EPSILON)?
            .log()?
            .sum(D::Minus1)?;
        Ok(gaussian.sub(&correction)?)
    }

    /// The reparameterized sample for standard-normal noise `eps` `[batch, d]`: `(tanh(u),
    /// log_prob)` with `u = mean + eps * std`, both differentiable (SB3's
    /// `actions_from_params` then `log_prob`).
    pub fn rsample_with_noise(&self, eps: &Tensor) -> Result<(Tensor, Tensor)> {
        if eps.dims() != self.mean.dims() {
            return Err(PolicyError::Shape {
                what: "SquashedDiagGaussian noise",
                expected: format!("{:?}", self.mean.dims()),
                actual: format!("{:?}", eps.dims()),
            });
        }
        let std = self.log_std.exp()?;
        let eps = eps.to_dtype(self.mean.dtype())?;
        let u = self.mean.add(&eps.mul(&std)?)?;
        let actions = crate::ops::tanh(&u)?;
        let log_prob = self.log_prob(&actions, &u)?;
        Ok((actions, log_prob))
    }

    /// Draws `eps ~ N(0, 1)` `[batch, d]` as f32 from `rng` (row-major), for
    /// [`SquashedDiagGaussian::rsample_with_noise`].
    pub fn draw_noise(&self, rng: &mut dyn RngCore) -> Result<Tensor> {
        let eps: Vec<f32> = (0..self.mean.elem_count())
            .map(|_| rng.sample::<f32, _>(StandardNormal))
            .collect();
        Ok(Tensor::from_vec(
            eps,
            self.mean.shape(),
            self.mean.device(),
        )?)
    }

    /// The reparameterized sample with noise drawn from `rng`: `(actions, log_prob)`.
    pub fn rsample(&self, rng: &mut dyn RngCore) -> Result<(Tensor, Tensor)> {
        let eps = self.draw_noise(rng)?;
        self.rsample_with_noise(&eps)
    }

    /// A sample with noise drawn from `rng`, detached: `(actions, log_prob)`.
    pub fn sample(&self, rng: &mut dyn RngCore) -> Result<(Tensor, Tensor)> {
        let (a, lp) = self.rsample(rng)?;
        Ok((a.detach(), lp.detach()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn log_prob_matches_the_closed_form_and_differentiates() {
        let dev = Device::Cpu;
        let mean = Var::new(&[[0.3f32, -0.2], [1.5, 0.0]], &dev).unwrap();
        let log_std = Var::new(&[[-0.5f32, 0.1], [0.0, -2.0]], &dev).unwrap();
        let eps = Tensor::new(&[[0.7f32, -1.1], [0.2, 2.0]], &dev).unwrap();
        let dist = SquashedDiagGaussian::new(mean.as_tensor().clone(), log_std.as_tensor().clone())
            .unwrap();
        let (a, lp) = dist.rsample_with_noise(&eps).unwrap();
        let a = a.to_vec2::<f32>().unwrap();
        let lp = lp.to_vec1::<f32>().unwrap();
        let (m, s, e) = (
            [[0.3f64, -0.2], [1.5, 0.0]],
            [[-0.5f64, 0.1], [0.0, -2.0]],
            [[0.7f64, -1.1], [0.2, 2.0]],
        );
        for i in 0..2 {
            let mut expect = 0.0;
            for j in 0..2 {
                let u = m[i][j] + e[i][j] * s[i][j].exp();
                let t = u.tanh();
                assert!((f64::from(a[i][j]) - t).abs() < 1e-6);
                expect += -0.5 * e[i][j] * e[i][j] - s[i][j] - LN_SQRT_2PI;
                expect -= (1.0 - t * t + SQUASH_EPSILON).ln();
            }
            assert!(
                (f64::from(lp[i]) - expect).abs() < 1e-4,
                "{} vs {expect}",
                lp[i]
            );
        }
        let (_, lp) = dist.rsample_with_noise(&eps).unwrap();
        let grads = lp.sum_all().unwrap().backward().unwrap();
        assert!(grads.get(mean.as_tensor()).is_some());
        assert!(grads.get(log_std.as_tensor()).is_some());
        let bad = Tensor::zeros((1, 2), candle_core::DType::F32, &dev).unwrap();
        assert!(dist.rsample_with_noise(&bad).is_err());
    }
}
