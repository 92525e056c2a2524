//! Fast, differentiable building blocks for small MLPs on the CPU: `tanh`, a fused
//! "add bias, then activation" op, a fused linear layer, and (in `categorical`) a categorical
//! distribution's log-probability and entropy.
//!
//! Candle's CPU `tanh` calls glibc's `tanhf` one value at a time (~10 ns per value): on
//! CartPole-sized networks that is most of an actor forward at batch 8 and about a third of an
//! A2C update. [`tanh`] computes the same function with a branch-free formula the compiler
//! vectorizes (error within a few f32 ulps, measured against f64 `tanh` in the tests). At
//! batch 1 every Candle op costs ~0.1-0.3 µs of overhead whatever its size, so
//! [`bias_activation`] does a layer's bias add and activation as one op, and [`linear`] a whole
//! layer, backward included (an A2C update of 40 CartPole samples: 192 -> 97 µs with the
//! categorical ops). All fall back to Candle's own ops on other devices and dtypes, with the
//! same results up to rounding.

mod categorical;
mod elementwise;
pub(crate) mod matmul;

pub use elementwise::{clamp, hardtanh, log1p};

pub(crate) use categorical::{
    log_prob as categorical_log_prob, log_prob_and_entropy as categorical_log_prob_and_entropy,
    shift_and_lse,
};

use crate::activation::Activation;
use candle_core::backend::BackendStorage;
use candle_core::{
    CpuStorage, CustomOp1, CustomOp2, CustomOp3, DType, Device, Layout, Result, Shape, Storage,
    Tensor,
};

/// `tanh(x)`, differentiable (`d tanh = 1 - tanh^2`). On the CPU with f32 it uses
/// [`tanh_f32`]; elsewhere it is `Tensor::tanh`.
pub fn tanh(x: &Tensor) -> Result<Tensor> {
    if x.device().is_cpu() && x.dtype() == DType::F32 {
        x.contiguous()?.apply_op1(FastTanh)
    } else {
        x.tanh()
    }
}

/// `ln 2` split in two parts (Cody-Waite), so `k ln 2` is exact in f32 for the `k` used here.
const LN2_HI: f32 = 0.693_145_75;
const LN2_LO: f32 = 1.428_606_8e-6;

/// `1.5 * 2^23`: adding it rounds a small f32 to an integer held in the low mantissa bits.
const ROUND_MAGIC: f32 = 12_582_912.0;

/// `e^y - 1` for `y` in `[0, 20]`: `2^k (e^r - 1) + (2^k - 1)` with `|r| <= ln 2 / 2` and a
/// degree-7 Taylor polynomial for `e^r - 1` (truncation error ~5e-9 relative), which keeps
/// full relative accuracy near 0, where `e^y - 1` computed from `e^y` would cancel. `k` is found
/// with the rounding constant rather than a float-to-int cast, which SSE2 cannot do on packed
/// lanes with Rust's saturating semantics; this keeps the loop vectorized.
#[inline(always)]
fn expm1_0_20(y: f32) -> f32 {
    let t = y * std::f32::consts::LOG2_E + ROUND_MAGIC;
    let kf = t - ROUND_MAGIC;
    let k = t.to_bits().wrapping_sub(ROUND_MAGIC.to_bits()); // in [0, 29]
    let r = (y - kf * LN2_HI) - kf * LN2_LO;
    let q = r
        * (1.0
            + r * (0.5
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0
                        + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    // 2^k is a normal f32 built from its exponent bits.
    let s = f32::from_bits(k.wrapping_add(127) << 23);
    s * q + (s - 1.0)
}

/// `tanh` of one f32, branch-free: `E / (E + 2)` with `E = e^{2|x|} - 1` (`expm1_0_20`),
/// with the sign of `x`; NaN stays NaN.
#[inline(always)]
pub fn tanh_f32(x: f32) -> f32 {
    let a = x.abs();
    // tanh(10) = 1 - 4e-9 rounds to 1.0f32 (as E / (E + 2) does there), so clamping there
    // loses nothing.
    let e = expm1_0_20(2.0 * a.min(10.0));
    let t = (e / (e + 2.0)).copysign(x);
    if x.is_nan() {
        x
    } else {
        t
    }
}

/// `y[r, j] = activation(y[r, j] + b[j])` over the rows of `y` (`b.len()` values each).
fn bias_act_in_place(y: &mut [f32], b: &[f32], activation: Option<Activation>) {
    wide_simd(BiasActKernel { y, b, activation })
}

/// `x = tanh(x)` for every value.
fn tanh_in_place(y: &mut [f32]) {
    wide_simd(TanhKernel(y))
}

/// A loop to compile for several vector widths (see [`wide_simd`]); `run` must be
/// `#[inline(always)]` so that it is compiled inside each `#[target_feature]` wrapper.
pub trait Kernel {
    /// Runs the loop.
    fn run(self);
}

struct BiasActKernel<'a> {
    y: &'a mut [f32],
    b: &'a [f32],
    activation: Option<Activation>,
}

impl Kernel for BiasActKernel<'_> {
    #[inline(always)]
    fn run(self) {
        if self.b.is_empty() {
            return;
        }
        for row in self.y.chunks_exact_mut(self.b.len()) {
            let it = row.iter_mut().zip(self.b);
            match self.activation {
                None => it.for_each(|(y, &b)| *y += b),
                Some(Activation::Tanh) => it.for_each(|(y, &b)| *y = tanh_f32(*y + b)),
                Some(Activation::ReLU) => it.for_each(|(y, &b)| *y = (*y + b).max(0.0)),
            }
        }
    }
}

struct TanhKernel<'a>(&'a mut [f32]);

impl Kernel for TanhKernel<'_> {
    #[inline(always)]
    fn run(self) {
        self.0.iter_mut().for_each(|x| *x = tanh_f32(*x));
    }
}

/// Runs `k` compiled for the widest vector unit the CPU has (AVX-512 or AVX2, each with FMA,
/// on x86-64), so loops over [`tanh_f32`] use 16 or 8 lanes instead of SSE2's 4 (tanh is most
/// of a small policy's forward), and explicit `mul_add`s (the optimizers' fused steps) are one
/// instruction. Rust never fuses a multiply and an add on its own, and `mul_add` rounds once
/// on every target (in software where the CPU has no FMA), so every lane width computes the
/// same IEEE operations and the results are bit-identical on every CPU.
#[inline]
pub fn wide_simd<K: Kernel>(k: K) {
    #[cfg(target_arch = "x86_64")]
    {
        let fma = std::arch::is_x86_feature_detected!("fma");
        if fma && std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: `run_avx512` only requires AVX-512F and FMA, which the CPU was just found
            // to have.
            return unsafe { run_avx512(k) };
        }
        if fma && std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: `run_avx2` only requires AVX2 and FMA, which the CPU was just found to
            // have.
            return unsafe { run_avx2(k) };
        }
    }
    k.run()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
fn run_avx512<K: Kernel>(k: K) {
    k.run()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn run_avx2<K: Kernel>(k: K) {
    k.run()
}

/// The custom op behind [`tanh`].
struct FastTanh;

impl CustomOp1 for FastTanh {
    fn name(&self) -> &'static str {
        "rl-fast-tanh"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (start, end) = layout
            .contiguous_offsets()
            .ok_or_else(|| candle_core::Error::Msg("fast tanh needs a contiguous tensor".into()))?;
        match storage {
            CpuStorage::F32(v) => {
                let mut out = v[start..end].to_vec();
                tanh_in_place(&mut out);
                Ok((CpuStorage::F32(out), layout.shape().clone()))
            }
            _ => Err(candle_core::Error::Msg(
                "fast tanh wants an f32 tensor".into(),
            )),
        }
    }

    fn bwd(&self, _arg: &Tensor, res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        // d/dx tanh(x) = 1 - tanh(x)^2, from the saved result.
        Ok(Some(grad_res.mul(&res.sqr()?.affine(-1.0, 1.0)?)?))
    }
}

/// `activation(x + bias)` for `x` `[batch, n]` and `bias` `[n]` (no activation for `None`),
/// differentiable in both. One op on the CPU for f32; `broadcast_add` then the activation
/// elsewhere.
pub fn bias_activation(
    x: &Tensor,
    bias: &Tensor,
    activation: Option<Activation>,
) -> Result<Tensor> {
    let fused = x.device().is_cpu()
        && x.dtype() == DType::F32
        && bias.dtype() == DType::F32
        && x.rank() == 2
        && bias.dims() == [x.dim(1)?];
    if fused {
        x.contiguous()?
            .apply_op2(&bias.contiguous()?, BiasAct(activation))
    } else {
        let y = x.broadcast_add(bias)?;
        match activation {
            None => Ok(y),
            Some(Activation::Tanh) => tanh(&y),
            Some(Activation::ReLU) => y.relu(),
        }
    }
}

/// The custom op behind [`bias_activation`].
struct BiasAct(Option<Activation>);

impl CustomOp2 for BiasAct {
    fn name(&self) -> &'static str {
        "rl-bias-activation"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let msg = |m: &str| candle_core::Error::Msg(format!("bias_activation: {m}"));
        let (xs, xe) = l1
            .contiguous_offsets()
            .ok_or_else(|| msg("x is not contiguous"))?;
        let (bs, be) = l2
            .contiguous_offsets()
            .ok_or_else(|| msg("bias is not contiguous"))?;
        let (CpuStorage::F32(x), CpuStorage::F32(b)) = (s1, s2) else {
            return Err(msg("f32 tensors expected"));
        };
        let (x, b) = (&x[xs..xe], &b[bs..be]);
        if b.is_empty() || x.len() % b.len() != 0 {
            return Err(msg("bias length does not divide x"));
        }
        let mut out = x.to_vec();
        bias_act_in_place(&mut out, b, self.0);
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        _x: &Tensor,
        _bias: &Tensor,
        res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let grad_pre = match self.0 {
            None => grad_res.clone(),
            Some(Activation::Tanh) => grad_res.mul(&res.sqr()?.affine(-1.0, 1.0)?)?,
            // relu'(z) = [z > 0] (0 at 0, as in PyTorch), and z > 0 exactly when relu(z) > 0.
            Some(Activation::ReLU) => grad_res.mul(&res.gt(0.0)?.to_dtype(res.dtype())?)?,
        };
        let grad_bias = grad_pre.sum(0)?;
        Ok((Some(grad_pre), Some(grad_bias)))
    }
}

/// `activation(x W^T + b)` for `x` `[batch, in]`, `weight` `[out, in]` and `bias` `[out]` (a
/// `torch.nn.Linear` layer and its activation), differentiable in all three.
///
/// On the CPU with f32 it is one op whose forward and backward call Candle's CPU matmul kernel
/// directly: the forward gives the same values as `matmul` + [`bias_activation`], and the
/// backward computes `dx`, `dW` and `db` in one step (skipping those nothing needs) instead of
/// a dozen graph ops, each with its own allocations. Elsewhere it is `matmul` then
/// [`bias_activation`].
pub fn linear(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    activation: Option<Activation>,
) -> Result<Tensor> {
    let fused = x.device().is_cpu()
        && [x, weight, bias].iter().all(|t| t.dtype() == DType::F32)
        && x.rank() == 2
        && weight.rank() == 2
        && weight.dim(1)? == x.dim(1)?
        && bias.dims() == [weight.dim(0)?];
    if fused {
        x.apply_op3(
            &weight.contiguous()?,
            &bias.contiguous()?,
            Linear(activation),
        )
    } else {
        bias_activation(&x.matmul(&weight.t()?)?, bias, activation)
    }
}

/// The custom op behind [`linear`]: arguments `x`, `weight`, `bias`.
struct Linear(Option<Activation>);

fn linear_err(m: &str) -> candle_core::Error {
    candle_core::Error::Msg(format!("linear: {m}"))
}

/// The contiguous f32 values of a CPU tensor's storage.
fn f32_slice<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    let (start, end) = l
        .contiguous_offsets()
        .ok_or_else(|| linear_err(&format!("{what} is not contiguous")))?;
    match s {
        CpuStorage::F32(v) => Ok(&v[start..end]),
        _ => Err(linear_err(&format!("{what} is not f32"))),
    }
}

/// The values of an f32 CPU storage, taken out.
fn into_f32(s: CpuStorage) -> Result<Vec<f32>> {
    match s {
        CpuStorage::F32(v) => Ok(v),
        _ => Err(linear_err("the matmul did not return f32")),
    }
}

impl CustomOp3 for Linear {
    fn name(&self) -> &'static str {
        "rl-linear"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (m, k) = xl.shape().dims2()?;
        let (n, k2) = wl.shape().dims2()?;
        let b = f32_slice(bs, bl, "bias")?;
        if k2 != k || b.len() != n {
            return Err(linear_err("x, weight and bias shapes do not match"));
        }
        // Exactly what `x.matmul(&weight.t())` runs, without building graph nodes.
        let mut y = into_f32(xs.matmul(ws, (1, m, n, k), xl, &wl.transpose(0, 1)?)?)?;
        bias_act_in_place(&mut y, b, self.0);
        Ok((CpuStorage::F32(y), Shape::from((m, n))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        bias: &Tensor,
        res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (m, n) = res.dims2()?;
        let k = x.dim(1)?;
        let grad_res = grad_res.contiguous()?;
        // Gradient before the activation, `g * act'`, from the saved result.
        let gp: Vec<f32> = {
            let (gs, gl) = grad_res.storage_and_layout();
            let (rs, rl) = res.storage_and_layout();
            let (Storage::Cpu(gs), Storage::Cpu(rs)) = (&*gs, &*rs) else {
                return Err(linear_err("gradient is not on the CPU"));
            };
            let (g, r) = (f32_slice(gs, gl, "gradient")?, f32_slice(rs, rl, "result")?);
            let it = g.iter().zip(r);
            match self.0 {
                None => g.to_vec(),
                Some(Activation::Tanh) => it.map(|(&g, &r)| g * (1.0 - r * r)).collect(),
                // relu'(z) = [z > 0] (0 at 0, as in PyTorch), and z > 0 exactly when relu(z) > 0.
                Some(Activation::ReLU) => {
                    it.map(|(&g, &r)| if r > 0.0 { g } else { 0.0 }).collect()
                }
            }
        };
        let grad_bias = if bias.track_op() {
            let mut db = vec![0f32; n];
            if n > 0 {
                for row in gp.chunks_exact(n) {
                    db.iter_mut().zip(row).for_each(|(d, &g)| *d += g);
                }
            }
            Some(Tensor::from_vec(db, n, &Device::Cpu)?)
        } else {
            None
        };
        let gp_layout = Layout::contiguous((m, n));
        let gp = CpuStorage::F32(gp);
        let grad_x = if x.track_op() {
            // dx = gp W: [m, n] x [n, k].
            let (ws, wl) = weight.storage_and_layout();
            let Storage::Cpu(ws) = &*ws else {
                return Err(linear_err("weight is not on the CPU"));
            };
            let dx = into_f32(gp.matmul(ws, (1, m, k, n), &gp_layout, wl)?)?;
            Some(Tensor::from_vec(dx, (m, k), &Device::Cpu)?)
        } else {
            None
        };
        let grad_weight = if weight.track_op() {
            // dW = gp^T x: [n, m] x [m, k].
            let (xs, xl) = x.storage_and_layout();
            let Storage::Cpu(xs) = &*xs else {
                return Err(linear_err("x is not on the CPU"));
            };
            let gp_t = gp_layout.transpose(0, 1)?;
            let dw = into_f32(gp.matmul(xs, (1, n, k, m), &gp_t, xl)?)?;
            Some(Tensor::from_vec(dw, (n, k), &Device::Cpu)?)
        } else {
            None
        };
        Ok((grad_x, grad_weight, grad_bias))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// Distance in f32 units in the last place.
    fn ulps(a: f32, b: f32) -> u32 {
        let key = |x: f32| {
            let i = x.to_bits() as i32;
            if i < 0 {
                i32::MIN - i
            } else {
                i
            }
        };
        key(a).abs_diff(key(b))
    }

    #[test]
    fn matches_f64_tanh_within_a_few_ulps() {
        let (mut worst_ulp, mut worst_abs) = (0u32, 0f64);
        // Dense over [-12, 12], plus tiny and huge magnitudes.
        let mut xs: Vec<f32> = (-1_200_000..=1_200_000).map(|i| i as f32 * 1e-5).collect();
        xs.extend([
            1e-30f32,
            -1e-20,
            1e-8,
            0.249_999_99,
            0.25,
            0.250_000_02,
            30.0,
            -80.0,
            1e30,
            f32::MAX,
            f32::MIN,
        ]);
        for x in xs {
            let exact = (f64::from(x)).tanh();
            let got = tanh_f32(x);
            worst_abs = worst_abs.max((f64::from(got) - exact).abs());
            worst_ulp = worst_ulp.max(ulps(got, exact as f32));
        }
        println!("tanh_f32: worst {worst_ulp} ulps, {worst_abs:e} absolute");
        assert!(worst_ulp <= 3, "worst error {worst_ulp} ulps");
        assert!(worst_abs <= 1e-7, "worst absolute error {worst_abs:e}");
        assert_eq!(tanh_f32(0.0).to_bits(), 0f32.to_bits());
        assert_eq!(tanh_f32(-0.0).to_bits(), (-0f32).to_bits());
        assert_eq!(tanh_f32(f32::INFINITY), 1.0);
        assert_eq!(tanh_f32(f32::NEG_INFINITY), -1.0);
        assert!(tanh_f32(f32::NAN).is_nan());
    }

    #[test]
    fn tensor_op_and_gradient_match_candle_tanh() {
        let dev = Device::Cpu;
        let vals: Vec<f32> = (0..48).map(|i| (i as f32 - 24.0) * 0.21).collect();
        let x = Var::new(vals.as_slice(), &dev).unwrap();
        let w = Tensor::new(
            (0..48)
                .map(|i| 1.0 + i as f32 * 0.1)
                .collect::<Vec<_>>()
                .as_slice(),
            &dev,
        )
        .unwrap();
        let ours = tanh(x.as_tensor()).unwrap();
        let theirs = x.as_tensor().tanh().unwrap();
        let g1 = (&ours * &w).unwrap().sum_all().unwrap().backward().unwrap();
        let g2 = (&theirs * &w)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let a = ours.to_vec1::<f32>().unwrap();
        let b = theirs.to_vec1::<f32>().unwrap();
        let ga = g1.get(x.as_tensor()).unwrap().to_vec1::<f32>().unwrap();
        let gb = g2.get(x.as_tensor()).unwrap().to_vec1::<f32>().unwrap();
        for i in 0..48 {
            assert!((a[i] - b[i]).abs() <= 2.5e-7, "{i}: {} vs {}", a[i], b[i]);
            assert!(
                (ga[i] - gb[i]).abs() <= 1e-6 * w.to_vec1::<f32>().unwrap()[i],
                "grad {i}: {} vs {}",
                ga[i],
                gb[i]
            );
        }
        // Strided input and other dtypes go through the fallback or a contiguous copy.
        let m = Tensor::new(&[[0.1f32, 0.2], [0.3, 0.4]], &dev)
            .unwrap()
            .t()
            .unwrap();
        let mt = tanh(&m).unwrap().to_vec2::<f32>().unwrap();
        assert!((mt[0][1] - 0.3f32.tanh()).abs() < 1e-7);
        let d = Tensor::new(&[0.5f64], &dev).unwrap();
        assert_eq!(
            tanh(&d).unwrap().to_vec1::<f64>().unwrap(),
            vec![0.5f64.tanh()]
        );
    }

    #[test]
    fn bias_activation_matches_unfused_ops_and_gradients() {
        let dev = Device::Cpu;
        let xv: Vec<f32> = (0..15).map(|i| (i as f32 - 7.0) * 0.37).collect();
        let x = Var::from_tensor(&Tensor::from_vec(xv, (5, 3), &dev).unwrap()).unwrap();
        let b = Var::new(&[0.5f32, -0.25, 0.0], &dev).unwrap();
        let w = Tensor::from_vec(
            (0..15).map(|i| 1.0 + i as f32 * 0.05).collect::<Vec<_>>(),
            (5, 3),
            &dev,
        )
        .unwrap();
        for act in [None, Some(Activation::Tanh), Some(Activation::ReLU)] {
            let fused = bias_activation(x.as_tensor(), b.as_tensor(), act).unwrap();
            let pre = x.as_tensor().broadcast_add(b.as_tensor()).unwrap();
            let plain = match act {
                None => pre,
                Some(Activation::Tanh) => pre.tanh().unwrap(),
                Some(Activation::ReLU) => pre.relu().unwrap(),
            };
            let gf = (&fused * &w)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let gp = (&plain * &w)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let pairs = [
                (fused.flatten_all().unwrap(), plain.flatten_all().unwrap()),
                (
                    gf.get(x.as_tensor()).unwrap().flatten_all().unwrap(),
                    gp.get(x.as_tensor()).unwrap().flatten_all().unwrap(),
                ),
                (
                    gf.get(b.as_tensor()).unwrap().clone(),
                    gp.get(b.as_tensor()).unwrap().clone(),
                ),
            ];
            for (a, e) in pairs {
                let (a, e) = (a.to_vec1::<f32>().unwrap(), e.to_vec1::<f32>().unwrap());
                for (p, q) in a.iter().zip(&e) {
                    assert!(
                        (p - q).abs() <= 1e-6 * q.abs().max(1.0),
                        "{act:?}: {a:?} vs {e:?}"
                    );
                }
            }
        }
        // Shapes the fused op does not take fall back to Candle's ops.
        let x3 = Tensor::ones((2, 2, 3), DType::F32, &dev).unwrap();
        let y = bias_activation(&x3, b.as_tensor(), Some(Activation::ReLU)).unwrap();
        assert_eq!(y.dims(), &[2, 2, 3]);
    }

    #[test]
    fn linear_matches_unfused_ops_and_gradients() {
        let dev = Device::Cpu;
        let var = |n: usize, shape: (usize, usize), scale: f32| {
            let v: Vec<f32> = (0..n)
                .map(|i| ((i * 7919 % 23) as f32 - 11.0) * scale)
                .collect();
            Var::from_tensor(&Tensor::from_vec(v, shape, &dev).unwrap()).unwrap()
        };
        let x = var(15, (5, 3), 0.13);
        let w = var(12, (4, 3), 0.21);
        let b = Var::new(&[0.5f32, -0.25, 0.0, 0.1], &dev).unwrap();
        let mix = Tensor::from_vec(
            (0..20).map(|i| 1.0 + i as f32 * 0.05).collect::<Vec<_>>(),
            (5, 4),
            &dev,
        )
        .unwrap();
        let plain = |x: &Tensor, act: Option<Activation>| {
            let pre = x
                .matmul(&w.as_tensor().t().unwrap())
                .unwrap()
                .broadcast_add(b.as_tensor())
                .unwrap();
            match act {
                None => pre,
                Some(Activation::Tanh) => pre.tanh().unwrap(),
                Some(Activation::ReLU) => pre.relu().unwrap(),
            }
        };
        let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for act in [None, Some(Activation::Tanh), Some(Activation::ReLU)] {
            let fused = linear(x.as_tensor(), w.as_tensor(), b.as_tensor(), act).unwrap();
            let reference = plain(x.as_tensor(), act);
            let gf = (&fused * &mix)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let gp = (&reference * &mix)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let mut pairs = vec![(flat(&fused), flat(&reference))];
            for v in [&x, &w, &b] {
                pairs.push((
                    flat(gf.get(v.as_tensor()).unwrap()),
                    flat(gp.get(v.as_tensor()).unwrap()),
                ));
            }
            for (a, e) in pairs {
                assert_eq!(a.len(), e.len());
                for (p, q) in a.iter().zip(&e) {
                    assert!(
                        (p - q).abs() <= 1e-6 * q.abs().max(1.0),
                        "{act:?}: {a:?} vs {e:?}"
                    );
                }
            }
        }
        // An input that is not a variable gets no gradient; the parameters still do.
        let obs = x.as_tensor().detach();
        let y = linear(&obs, w.as_tensor(), b.as_tensor(), Some(Activation::Tanh)).unwrap();
        let g = y.sum_all().unwrap().backward().unwrap();
        assert!(g.get(&obs).is_none());
        assert_eq!(g.get(w.as_tensor()).unwrap().dims(), &[4, 3]);
        // Strided input, and f64 (Candle's ops), give the unfused ops' values up to rounding.
        let xt = x
            .as_tensor()
            .t()
            .unwrap()
            .contiguous()
            .unwrap()
            .t()
            .unwrap();
        let strided = linear(&xt, w.as_tensor(), b.as_tensor(), None).unwrap();
        for (p, q) in flat(&strided)
            .iter()
            .zip(&flat(&plain(x.as_tensor(), None)))
        {
            assert!((p - q).abs() <= 1e-6 * q.abs().max(1.0), "{p} vs {q}");
        }
        let to64 = |t: &Tensor| t.to_dtype(DType::F64).unwrap();
        let y64 = linear(
            &to64(x.as_tensor()),
            &to64(w.as_tensor()),
            &to64(b.as_tensor()),
            Some(Activation::ReLU),
        )
        .unwrap();
        let y32 = plain(x.as_tensor(), Some(Activation::ReLU));
        for (p, q) in flat(&y64.to_dtype(DType::F32).unwrap())
            .iter()
            .zip(&flat(&y32))
        {
            assert!((p - q).abs() <= 1e-6, "{p} vs {q}");
        }
        // Mismatched shapes are errors, not panics.
        assert!(linear(&obs, &w.as_tensor().t().unwrap(), b.as_tensor(), None).is_err());
    }
}
