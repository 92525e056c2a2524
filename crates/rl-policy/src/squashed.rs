//! The `tanh`-squashed diagonal Gaussian of SAC (SB3's `SquashedDiagGaussianDistribution`).
//!
//! A Gaussian sample `u = mean + eps * std` is squashed into `a = tanh(u)` in `[-1, 1]`; its
//! log-density is the Gaussian's, summed over the action dimensions, minus the change of
//! variables `sum log(1 - a^2 + 1e-6)` (SB3's epsilon keeps the log finite where `tanh`
//! saturates). Everything is computed with torch's formulas and order, and is differentiable
//! with respect to the mean and `log_std` (the reparameterization trick), which is what SAC's
//! actor loss needs.

use crate::error::{PolicyError, Result};
use candle_core::{CpuStorage, CustomOp2, DType, Layout, Shape, Tensor, D};
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

    /// Whether the fused CPU ops ([`SquashedOp`]) apply: f32 parameters on the CPU.
    fn fused(&self) -> bool {
        self.mean.device().is_cpu()
            && self.mean.dtype() == DType::F32
            && self.log_std.dtype() == DType::F32
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

    /// The log-density of squashed `actions` `[batch, d]` in `[-1, 1]` without their
    /// pre-`tanh` values (SB3's `log_prob(actions)` with `gaussian_actions=None`): `u =
    /// atanh(clamp(a, -1 + ε, 1 - ε))` with float32's machine ε, as SB3's `TanhBijector.inverse`
    /// computes it (`0.5 (log1p(x) - log1p(-x))`), then [`SquashedDiagGaussian::log_prob`] of
    /// the unclamped actions. Not differentiable with respect to the actions.
    pub fn log_prob_of_actions(&self, actions: &Tensor) -> Result<Tensor> {
        if actions.dims() != self.mean.dims() {
            return Err(PolicyError::Shape {
                what: "SquashedDiagGaussian actions",
                expected: format!("{:?}", self.mean.dims()),
                actual: format!("{:?}", actions.dims()),
            });
        }
        let a: Vec<f32> = actions.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
        let bound = 1.0 - f32::EPSILON;
        let u: Vec<f32> = a
            .iter()
            .map(|&x| {
                let x = x.clamp(-bound, bound);
                0.5 * (x.ln_1p() - (-x).ln_1p())
            })
            .collect();
        let u = Tensor::from_vec(u, self.mean.shape(), self.mean.device())?
            .to_dtype(self.mean.dtype())?;
        self.log_prob(&actions.to_dtype(self.mean.dtype())?, &u)
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
        if self.fused() {
            let eps: Vec<f32> = eps.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
            let (mean, log_std) = (self.mean.contiguous()?, self.log_std.contiguous()?);
            let actions = mean.apply_op2(&log_std, SquashedOp::actions(eps.clone()))?;
            let log_prob = mean.apply_op2(&log_std, SquashedOp::log_prob(eps))?;
            return Ok((actions, log_prob));
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

    /// Actions only, with noise drawn from `rng`, detached (acting: no log-probability).
    pub fn sample_actions(&self, rng: &mut dyn RngCore) -> Result<Tensor> {
        let eps = self.draw_noise(rng)?;
        if self.fused() {
            let eps: Vec<f32> = eps.flatten_all()?.to_vec1()?;
            let (mean, log_std) = (self.mean.detach(), self.log_std.detach());
            let (mean, log_std) = (mean.contiguous()?, log_std.contiguous()?);
            return Ok(mean.apply_op2(&log_std, SquashedOp::actions(eps))?);
        }
        Ok(self.rsample_with_noise(&eps)?.0.detach())
    }

    /// A sample with noise drawn from `rng`, detached: `(actions, log_prob)`.
    pub fn sample(&self, rng: &mut dyn RngCore) -> Result<(Tensor, Tensor)> {
        let (a, lp) = self.rsample(rng)?;
        Ok((a.detach(), lp.detach()))
    }
}

/// The CPU path of [`SquashedDiagGaussian::rsample_with_noise`]: one op for the actions and
/// one for the log-probability, each a function of `(mean, log_std)` for fixed noise, with
/// closed-form gradients instead of the ~20 graph ops of the composed formula.
///
/// With `s = exp(log_std)`, `u = mean + eps * s` and `a = tanh(u)`: the Gaussian term's value is
/// computed as torch writes it, `-(u - mean)^2 / (2 s^2) - log(s) - ln(sqrt(2 pi))`, but its
/// gradient is the exact one of its simplified form `-eps^2 / 2 - log_std - c` (0 for the mean,
/// -1 for `log_std`), where torch's graph sums two opposite terms that cancel up to rounding;
/// the squashing term `-log(1 - a^2 + 1e-6)` has `d/du = 2 a (1 - a^2) / (1 - a^2 + 1e-6)`;
/// `da/du = 1 - a^2`; `du/dmean = 1`, `du/dlog_std = eps * s`.
struct SquashedOp {
    eps: Vec<f32>,
    log_prob: bool,
}

impl SquashedOp {
    fn actions(eps: Vec<f32>) -> Self {
        SquashedOp {
            eps,
            log_prob: false,
        }
    }

    fn log_prob(eps: Vec<f32>) -> Self {
        SquashedOp {
            eps,
            log_prob: true,
        }
    }
}

fn op_err(m: &str) -> candle_core::Error {
    candle_core::Error::Msg(format!("squashed Gaussian op: {m}"))
}

fn f32s<'a>(s: &'a CpuStorage, l: &Layout) -> candle_core::Result<&'a [f32]> {
    let (start, end) = l
        .contiguous_offsets()
        .ok_or_else(|| op_err("input is not contiguous"))?;
    match s {
        CpuStorage::F32(v) => Ok(&v[start..end]),
        _ => Err(op_err("f32 inputs expected")),
    }
}

fn host(t: &Tensor) -> candle_core::Result<Vec<f32>> {
    t.to_dtype(DType::F32)?.flatten_all()?.to_vec1()
}

impl CustomOp2 for SquashedOp {
    fn name(&self) -> &'static str {
        if self.log_prob {
            "rl-squashed-log-prob"
        } else {
            "rl-squashed-actions"
        }
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (b, d) = l1.shape().dims2()?;
        let (mean, log_std) = (f32s(s1, l1)?, f32s(s2, l2)?);
        if log_std.len() != mean.len() || self.eps.len() != mean.len() {
            return Err(op_err("mean, log_std and noise must have the same shape"));
        }
        if !self.log_prob {
            let a = mean
                .iter()
                .zip(log_std)
                .zip(&self.eps)
                .map(|((&m, &ls), &e)| crate::ops::tanh_f32(m + e * ls.exp()))
                .collect();
            return Ok((CpuStorage::F32(a), l1.shape().clone()));
        }
        let c = LN_SQRT_2PI as f32;
        let delta = SQUASH_EPSILON as f32;
        let mut out = Vec::with_capacity(b);
        for r in 0..b {
            let (mut gauss, mut corr) = (0f32, 0f32);
            for j in r * d..(r + 1) * d {
                let std = log_std[j].exp();
                let u = mean[j] + self.eps[j] * std;
                let diff = u - mean[j];
                gauss += -(diff * diff) / (2.0 * (std * std)) - std.ln() - c;
                let a = crate::ops::tanh_f32(u);
                corr += (1.0 - a * a + delta).ln();
            }
            out.push(gauss - corr);
        }
        Ok((CpuStorage::F32(out), Shape::from(b)))
    }

    fn bwd(
        &self,
        mean: &Tensor,
        log_std: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let (b, d) = mean.dims2()?;
        let (m, ls, g) = (host(mean)?, host(log_std)?, host(grad)?);
        let mut gm = vec![0f32; b * d];
        let mut gls = vec![0f32; b * d];
        if self.log_prob {
            let delta = SQUASH_EPSILON as f32;
            for (r, &gl) in g.iter().enumerate().take(b) {
                for j in r * d..(r + 1) * d {
                    let std = ls[j].exp();
                    let a = crate::ops::tanh_f32(m[j] + self.eps[j] * std);
                    let one_minus = 1.0 - a * a;
                    let gu = gl * (2.0 * a * one_minus / (one_minus + delta));
                    gm[j] = gu;
                    gls[j] = gu * (self.eps[j] * std) - gl;
                }
            }
        } else {
            let a = host(res)?;
            for j in 0..b * d {
                let gu = g[j] * (1.0 - a[j] * a[j]);
                gm[j] = gu;
                gls[j] = gu * (self.eps[j] * ls[j].exp());
            }
        }
        let device = mean.device();
        Ok((
            Some(Tensor::from_vec(gm, (b, d), device)?),
            Some(Tensor::from_vec(gls, (b, d), device)?),
        ))
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

    #[test]
    fn fused_ops_match_the_graph_in_values_and_gradients() {
        let dev = Device::Cpu;
        let m0 = [[0.3f32, -0.2, 2.5], [1.5, 0.0, -4.0]];
        let s0 = [[-0.5f32, 0.1, -3.0], [0.0, -2.0, 1.5]];
        let eps = Tensor::new(&[[0.7f32, -1.1, 0.3], [0.2, 2.0, -0.9]], &dev).unwrap();
        let run = |fused: bool| {
            let mean = Var::new(&m0, &dev).unwrap();
            let log_std = Var::new(&s0, &dev).unwrap();
            let dist =
                SquashedDiagGaussian::new(mean.as_tensor().clone(), log_std.as_tensor().clone())
                    .unwrap();
            let (a, lp) = if fused {
                dist.rsample_with_noise(&eps).unwrap()
            } else {
                let std = dist.log_std.exp().unwrap();
                let u = dist.mean.add(&eps.mul(&std).unwrap()).unwrap();
                let a = crate::ops::tanh(&u).unwrap();
                let lp = dist.log_prob(&a, &u).unwrap();
                (a, lp)
            };
            // A loss that weighs both outputs.
            let w = Tensor::new(&[[0.5f32, -1.5, 2.0], [1.0, 0.25, -0.75]], &dev).unwrap();
            let loss = a
                .mul(&w)
                .unwrap()
                .sum_all()
                .unwrap()
                .add(&lp.affine(0.3, 0.0).unwrap().sum_all().unwrap())
                .unwrap();
            let grads = loss.backward().unwrap();
            let flat = |t: &Tensor| -> Vec<f32> { t.flatten_all().unwrap().to_vec1().unwrap() };
            (
                flat(&a),
                flat(&lp),
                flat(grads.get(mean.as_tensor()).unwrap()),
                flat(grads.get(log_std.as_tensor()).unwrap()),
            )
        };
        let (f, g) = (run(true), run(false));
        for (x, y) in [(&f.0, &g.0), (&f.1, &g.1), (&f.2, &g.2), (&f.3, &g.3)] {
            for (p, q) in x.iter().zip(y.iter()) {
                assert!((p - q).abs() <= 1e-5 * q.abs().max(1.0), "{x:?} vs {y:?}");
            }
        }
    }
}
