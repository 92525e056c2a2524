//! Log-probability and entropy of a categorical distribution from its logits, each as one op.
//!
//! [`crate::Categorical`] builds both from about a dozen Candle ops (log-softmax, gather,
//! exp, product, sum) whose backward passes allocate at every step; for an A2C update of 40
//! CartPole samples that was a sizeable part of the loss. The ops here compute the same values
//! row by row with the same f32 operations in the same order, and their hand-written backward
//! gives the logits' gradient directly.

use candle_core::{CpuStorage, CustomOp1, DType, Layout, Result, Shape, Tensor};

/// `(log pi(a_r | r), entropy_r)` for logits `[batch, n]` and one action index per row, both
/// `[batch]` and differentiable in the logits; `None` where the fused ops do not apply (not
/// on the CPU, not f32), so the caller uses [`crate::Categorical`]. `actions` must already be
/// checked to lie in `0..n`.
pub(crate) fn log_prob_and_entropy(
    logits: &Tensor,
    actions: Vec<u32>,
) -> Result<Option<(Tensor, Tensor)>> {
    if !logits.device().is_cpu() || logits.dtype() != DType::F32 || logits.rank() != 2 {
        return Ok(None);
    }
    let logits = logits.contiguous()?;
    let log_prob = logits.apply_op1(LogProb { actions })?;
    let entropy = logits.apply_op1(Entropy)?;
    Ok(Some((log_prob, entropy)))
}

/// `log pi(a_r | r)` alone, as [`log_prob_and_entropy`] computes it (what a rollout needs).
pub(crate) fn log_prob(logits: &Tensor, actions: Vec<u32>) -> Result<Option<Tensor>> {
    if !logits.device().is_cpu() || logits.dtype() != DType::F32 || logits.rank() != 2 {
        return Ok(None);
    }
    Ok(Some(logits.contiguous()?.apply_op1(LogProb { actions })?))
}

fn op_err(m: &str) -> candle_core::Error {
    candle_core::Error::Msg(format!("categorical op: {m}"))
}

/// The rows of a contiguous f32 `[batch, n]` storage, and `n`.
fn rows<'a>(s: &'a CpuStorage, l: &Layout) -> Result<(&'a [f32], usize)> {
    let (_, n) = l.shape().dims2()?;
    let (start, end) = l
        .contiguous_offsets()
        .ok_or_else(|| op_err("logits are not contiguous"))?;
    match s {
        CpuStorage::F32(v) if n > 0 => Ok((&v[start..end], n)),
        CpuStorage::F32(_) => Err(op_err("no actions")),
        _ => Err(op_err("f32 logits expected")),
    }
}

/// `(z - max z, ln sum exp(z - max z))` for one row, as [`crate::Categorical::log_probs`]
/// computes them (f32, summed left to right); `log p_j = shifted_j - lse`.
#[inline]
pub(crate) fn shift_and_lse(row: &[f32], shifted: &mut [f32]) -> f32 {
    let max = row.iter().fold(f32::NEG_INFINITY, |m, &z| m.max(z));
    let mut sum = 0f32;
    for (s, &z) in shifted.iter_mut().zip(row) {
        *s = z - max;
        sum += s.exp();
    }
    sum.ln()
}

/// Row-wise log-softmax of `logits` (contiguous f32 `[batch, n]`), as a host vector.
fn log_softmax_rows(logits: &Tensor) -> Result<(Vec<f32>, usize)> {
    let (s, l) = logits.storage_and_layout();
    let candle_core::Storage::Cpu(s) = &*s else {
        return Err(op_err("logits are not on the CPU"));
    };
    let (z, n) = rows(s, l)?;
    let mut lp = vec![0f32; z.len()];
    for (row, out) in z.chunks_exact(n).zip(lp.chunks_exact_mut(n)) {
        let lse = shift_and_lse(row, out);
        out.iter_mut().for_each(|v| *v -= lse);
    }
    Ok((lp, n))
}

/// Per-row gradient out of a `[batch]` upstream gradient.
fn upstream(grad: &Tensor) -> Result<Vec<f32>> {
    grad.flatten_all()?.to_vec1::<f32>()
}

/// `log pi(a_r | r)` for each row `r`.
struct LogProb {
    actions: Vec<u32>,
}

impl CustomOp1 for LogProb {
    fn name(&self) -> &'static str {
        "rl-categorical-log-prob"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (z, n) = rows(s, l)?;
        let batch = z.len() / n;
        if self.actions.len() != batch {
            return Err(op_err("one action per row expected"));
        }
        let mut shifted = vec![0f32; n];
        let mut out = Vec::with_capacity(batch);
        for (row, &a) in z.chunks_exact(n).zip(&self.actions) {
            let lse = shift_and_lse(row, &mut shifted);
            let a = a as usize;
            if a >= n {
                return Err(op_err("action index out of range"));
            }
            out.push(shifted[a] - lse);
        }
        Ok((CpuStorage::F32(out), Shape::from(batch)))
    }

    fn bwd(&self, logits: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        // d log p_a / d z_j = [j = a] - p_j.
        let (mut g, n) = log_softmax_rows(logits)?;
        let up = upstream(grad)?;
        for ((row, &a), &u) in g.chunks_exact_mut(n).zip(&self.actions).zip(&up) {
            for (j, v) in row.iter_mut().enumerate() {
                let hit = if j == a as usize { 1.0 } else { 0.0 };
                *v = u * (hit - v.exp());
            }
        }
        Ok(Some(Tensor::from_vec(g, logits.shape(), logits.device())?))
    }
}

/// `-sum_j p_j log p_j` for each row.
struct Entropy;

impl CustomOp1 for Entropy {
    fn name(&self) -> &'static str {
        "rl-categorical-entropy"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (z, n) = rows(s, l)?;
        let mut lp = vec![0f32; n];
        let out: Vec<f32> = z
            .chunks_exact(n)
            .map(|row| {
                let lse = shift_and_lse(row, &mut lp);
                -lp.iter().fold(0f32, |acc, &s| {
                    let l = s - lse;
                    acc + l.exp() * l
                })
            })
            .collect();
        let batch = out.len();
        Ok((CpuStorage::F32(out), Shape::from(batch)))
    }

    fn bwd(&self, logits: &Tensor, res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        // With H = -sum p_j log p_j: dH / dz_k = -p_k (log p_k + H).
        let (mut g, n) = log_softmax_rows(logits)?;
        let (up, h) = (upstream(grad)?, upstream(res)?);
        for ((row, &u), &h) in g.chunks_exact_mut(n).zip(&up).zip(&h) {
            for v in row.iter_mut() {
                *v = -u * v.exp() * (*v + h);
            }
        }
        Ok(Some(Tensor::from_vec(g, logits.shape(), logits.device())?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Categorical;
    use candle_core::{Device, Var};

    fn close(a: &Tensor, b: &Tensor, tol: f32) {
        let (a, b) = (
            a.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            b.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        );
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() <= tol * y.abs().max(1.0), "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn match_categorical_values_and_gradients() {
        let dev = Device::Cpu;
        for n in [1usize, 2, 5] {
            let batch = 7;
            let z: Vec<f32> = (0..batch * n)
                .map(|i| ((i * 37 % 11) as f32 - 5.0) * 0.9)
                .collect();
            let logits = Var::from_tensor(&Tensor::from_vec(z, (batch, n), &dev).unwrap()).unwrap();
            let actions: Vec<u32> = (0..batch).map(|i| ((i * 3) % n) as u32).collect();
            let weights = Tensor::from_vec(
                (0..batch).map(|i| 0.5 + i as f32).collect::<Vec<_>>(),
                batch,
                &dev,
            )
            .unwrap();
            let (lp, ent) = log_prob_and_entropy(logits.as_tensor(), actions.clone())
                .unwrap()
                .expect("fused on the CPU");
            let reference = Categorical::from_logits(logits.as_tensor()).unwrap();
            let idx = Tensor::new(actions.as_slice(), &dev).unwrap();
            let (lp_ref, ent_ref) = (
                reference.log_prob(&idx).unwrap(),
                reference.entropy().unwrap(),
            );
            close(&lp, &lp_ref, 1e-6);
            close(&ent, &ent_ref, 1e-6);
            // Gradients of a weighted sum of each, and of a mix of both.
            let loss = |lp: &Tensor, ent: &Tensor, a: f64, b: f64| {
                ((lp * &weights)
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .affine(a, 0.0)
                    .unwrap()
                    + (ent * &weights)
                        .unwrap()
                        .sum_all()
                        .unwrap()
                        .affine(b, 0.0)
                        .unwrap())
                .unwrap()
            };
            for (a, b) in [(1.0, 0.0), (0.0, 1.0), (-0.7, 0.3)] {
                let g = loss(&lp, &ent, a, b).backward().unwrap();
                let g_ref = loss(&lp_ref, &ent_ref, a, b).backward().unwrap();
                close(
                    g.get(logits.as_tensor()).unwrap(),
                    g_ref.get(logits.as_tensor()).unwrap(),
                    1e-6,
                );
            }
        }
        // Other dtypes are left to `Categorical`.
        let z64 = Tensor::new(&[[0.1f64, 0.2]], &dev).unwrap();
        assert!(log_prob_and_entropy(&z64, vec![0]).unwrap().is_none());
    }

    #[test]
    fn rejects_bad_indices_and_shapes() {
        let z = Tensor::new(&[[0.1f32, 0.2], [0.3, 0.4]], &Device::Cpu).unwrap();
        assert!(log_prob_and_entropy(&z, vec![0, 2]).is_err());
        assert!(log_prob_and_entropy(&z, vec![0]).is_err());
    }
}
