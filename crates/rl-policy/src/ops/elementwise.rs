//! Element-wise ops whose gradients follow PyTorch's autograd exactly where Candle's differ:
//! `log1p` (Candle has none; `log(1 + x)` loses the low bits of small `x`), and clamping with
//! torch's two gradient conventions (`clamp`: the gradient passes where `lo <= x <= hi`;
//! `Hardtanh`: where `lo < x < hi`), where Candle's `clamp` halves the gradient at the bounds.
//! gSDE's squashed distribution (SB3's SAC with `use_sde`) is built from them.

use candle_core::{CpuStorage, CustomOp1, DType, Layout, Result, Shape, Tensor};

/// Which function [`Unary`] computes.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Log1p,
    /// `clamp(x, lo, hi)`; `strict`: the gradient passes only strictly inside (Hardtanh).
    Clamp {
        lo: f32,
        hi: f32,
        strict: bool,
    },
}

#[derive(Clone, Copy, Debug)]
struct Unary(Kind);

fn err(m: &str) -> candle_core::Error {
    candle_core::Error::Msg(format!("element-wise op: {m}"))
}

fn values(t: &Tensor) -> Result<Vec<f32>> {
    t.to_dtype(DType::F32)?.flatten_all()?.to_vec1()
}

impl CustomOp1 for Unary {
    fn name(&self) -> &'static str {
        match self.0 {
            Kind::Log1p => "rl-log1p",
            Kind::Clamp { .. } => "rl-clamp",
        }
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (start, end) = l
            .contiguous_offsets()
            .ok_or_else(|| err("input is not contiguous"))?;
        let CpuStorage::F32(v) = s else {
            return Err(err("f32 input expected"));
        };
        let x = &v[start..end];
        let out: Vec<f32> = match self.0 {
            Kind::Log1p => x.iter().map(|v| v.ln_1p()).collect(),
            // NaN stays NaN, as in torch.
            Kind::Clamp { lo, hi, .. } => x
                .iter()
                .map(|&v| if v.is_nan() { v } else { v.max(lo).min(hi) })
                .collect(),
        };
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let (x, g) = (values(arg)?, values(grad)?);
        let out: Vec<f32> = match self.0 {
            // torch: grad / (self + 1).
            Kind::Log1p => x.iter().zip(&g).map(|(&x, &g)| g / (x + 1.0)).collect(),
            Kind::Clamp { lo, hi, strict } => x
                .iter()
                .zip(&g)
                .map(|(&x, &g)| {
                    let inside = if strict {
                        x > lo && x < hi
                    } else {
                        x >= lo && x <= hi
                    };
                    if inside {
                        g
                    } else {
                        0.0
                    }
                })
                .collect(),
        };
        Ok(Some(Tensor::from_vec(out, arg.shape(), arg.device())?))
    }
}

/// Whether the fused CPU op applies.
fn cpu_f32(x: &Tensor) -> bool {
    x.device().is_cpu() && x.dtype() == DType::F32
}

/// `log(1 + x)`, differentiable (`d/dx = 1 / (x + 1)`, as torch computes it). On the CPU with
/// f32 it is accurate for small `x`; elsewhere it is `log(x + 1)`.
pub fn log1p(x: &Tensor) -> Result<Tensor> {
    if cpu_f32(x) {
        x.contiguous()?.apply_op1(Unary(Kind::Log1p))
    } else {
        x.affine(1.0, 1.0)?.log()
    }
}

/// `torch.clamp(x, lo, hi)`: the gradient passes where `lo <= x <= hi` (bounds included),
/// zero elsewhere. Off the CPU it is Candle's `clamp`.
pub fn clamp(x: &Tensor, lo: f32, hi: f32) -> Result<Tensor> {
    if cpu_f32(x) {
        x.contiguous()?.apply_op1(Unary(Kind::Clamp {
            lo,
            hi,
            strict: false,
        }))
    } else {
        x.clamp(lo, hi)
    }
}

/// `torch.nn.Hardtanh(lo, hi)`: the values of [`clamp`], the gradient only strictly inside
/// `(lo, hi)`. Off the CPU it is Candle's `clamp`.
pub fn hardtanh(x: &Tensor, lo: f32, hi: f32) -> Result<Tensor> {
    if cpu_f32(x) {
        x.contiguous()?.apply_op1(Unary(Kind::Clamp {
            lo,
            hi,
            strict: true,
        }))
    } else {
        x.clamp(lo, hi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn values_and_gradients_follow_torch() {
        let x = Var::new(&[-2.0f32, -1.0, 0.5, 1.0, 3.0, 1e-9], &Device::Cpu).unwrap();
        let y = log1p(x.as_tensor()).unwrap();
        let v: Vec<f32> = y.to_vec1().unwrap();
        assert_eq!(v[5], 1e-9);
        assert!((v[2] - 1.5f32.ln()).abs() < 1e-7);
        let g = y.sum_all().unwrap().backward().unwrap();
        let gx: Vec<f32> = g.get(x.as_tensor()).unwrap().to_vec1().unwrap();
        assert!((gx[3] - 0.5).abs() < 1e-7);
        for (f, strict) in [
            (clamp as fn(&Tensor, f32, f32) -> Result<Tensor>, false),
            (hardtanh, true),
        ] {
            let y = f(x.as_tensor(), -1.0, 1.0).unwrap();
            assert_eq!(
                y.to_vec1::<f32>().unwrap(),
                [-1.0, -1.0, 0.5, 1.0, 1.0, 1e-9]
            );
            let g = y.sum_all().unwrap().backward().unwrap();
            let gx: Vec<f32> = g.get(x.as_tensor()).unwrap().to_vec1().unwrap();
            let edge = if strict { 0.0 } else { 1.0 };
            assert_eq!(gx, [0.0, edge, 1.0, edge, 0.0, 1.0]);
        }
    }
}
