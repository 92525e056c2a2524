//! One DQN gradient step as public functions ([`dqn_targets`], [`dqn_loss`], [`dqn_update`])
//! and the target-network update ([`polyak_update`]), usable on recorded data (the SB3 parity
//! test drives them with SB3's sampled batches) and in a user's own loop.

use crate::error::{AlgoError, Result};
use crate::optim::{clip_coefficient, grad_norm, update_in_place, Optimizer};
use candle_core::{CpuStorage, CustomOp1, DType, Layout, Shape, Tensor, Var};
use rl_policy::QFunction;

/// The regression loss between `Q(s, a)` and the targets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DqnLoss {
    /// `F.smooth_l1_loss` with `beta = 1` (Huber; SB3's DQN).
    #[default]
    Huber,
    /// `F.mse_loss` (the original DQN paper's, and some benchmarks').
    Mse,
}

impl DqnLoss {
    /// One sample's term for `d = Q(s, a) - target`, with torch's kernels' formulas: Huber
    /// `0.5 z^2` for `z = |d| < 1`, else `z - 0.5`; MSE `d^2`.
    pub(crate) fn term(self, d: f32) -> f32 {
        match self {
            DqnLoss::Mse => d * d,
            DqnLoss::Huber => {
                let z = d.abs();
                if z < 1.0 {
                    0.5 * z * z
                } else {
                    z - 0.5
                }
            }
        }
    }

    /// The gradient of the mean over `b` samples with respect to `Q(s, a)`, times the
    /// upstream gradient `up`, as torch's backward kernels compute it: `norm * d * up` with
    /// `norm = 1/B` (Huber inside), `sign(d) * norm * up` (Huber outside), `norm = 2/B` (MSE).
    pub(crate) fn grad(self, d: f32, b: usize, up: f32) -> f32 {
        match self {
            DqnLoss::Mse => ((2.0 / b as f64) as f32 * d) * up,
            DqnLoss::Huber => {
                let norm = (1.0 / b as f64) as f32;
                if d < -1.0 {
                    -(norm * up)
                } else if d > 1.0 {
                    norm * up
                } else {
                    (norm * d) * up
                }
            }
        }
    }
}

/// One batch of transitions: `B` samples.
#[derive(Clone, Copy, Debug)]
pub struct DqnBatch<'a> {
    /// Observations `[B, obs_dim]`.
    pub observations: &'a Tensor,
    /// Action indices `[B]` (`0..n_actions`, as f32 whole numbers).
    pub actions: &'a [f32],
    /// Next observations `[B, obs_dim]`.
    pub next_observations: &'a Tensor,
    /// Rewards `[B]` (the discounted n-step sum for n-step buffers).
    pub rewards: &'a [f32],
    /// `done * (1 - timeout)` `[B]`.
    pub dones: &'a [f32],
    /// Per-sample discounts `gamma^k` `[B]` (n-step buffers), or empty for `gamma` itself.
    pub discounts: &'a [f32],
}

/// Statistics of one gradient step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DqnStats {
    /// The loss.
    pub loss: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
}

fn batch_len(batch: &DqnBatch<'_>) -> Result<usize> {
    let b = batch.observations.dim(0)?;
    for (what, len) in [
        ("actions", batch.actions.len()),
        ("rewards", batch.rewards.len()),
        ("dones", batch.dones.len()),
    ] {
        if len != b {
            return Err(AlgoError::InvalidArgument(format!(
                "DQN batch: {b} observations but {len} {what}"
            )));
        }
    }
    if !batch.discounts.is_empty() && batch.discounts.len() != b {
        return Err(AlgoError::InvalidArgument(format!(
            "DQN batch: {b} observations but {} discounts",
            batch.discounts.len()
        )));
    }
    if batch.next_observations.dims() != batch.observations.dims() {
        return Err(AlgoError::InvalidArgument(format!(
            "DQN batch: next observations {:?} vs observations {:?}",
            batch.next_observations.dims(),
            batch.observations.dims()
        )));
    }
    if b == 0 {
        return Err(AlgoError::InvalidArgument("DQN batch is empty".into()));
    }
    Ok(b)
}

/// The TD targets `r + ((1 - done) * gamma^k) * max_a Q_target(s', a)` in float32, in torch's
/// order (SB3 computes them under `no_grad`): `next_q_values` (the max per row) and the
/// targets, both `[B]`.
pub fn dqn_targets<Q: QFunction + ?Sized>(
    q_target: &Q,
    batch: &DqnBatch<'_>,
    gamma: f64,
) -> Result<(Vec<f32>, Vec<f32>)> {
    let b = batch_len(batch)?;
    let next = q_target
        .q_values(batch.next_observations)?
        .detach()
        .to_dtype(DType::F32)?;
    let (rows, n) = next.dims2()?;
    if rows != b || n == 0 {
        return Err(AlgoError::InvalidArgument(format!(
            "the target network returned Q-values of shape {:?} for {b} observations",
            next.dims()
        )));
    }
    let values: Vec<f32> = next.flatten_all()?.to_vec1()?;
    // torch.max returns NaN when a row holds one; so does this fold.
    let next_max: Vec<f32> = values
        .chunks_exact(n)
        .map(|row| {
            row.iter().fold(
                f32::NEG_INFINITY,
                |m, &x| if x > m || x.is_nan() { x } else { m },
            )
        })
        .collect();
    let g = gamma as f32;
    let targets = (0..b)
        .map(|i| {
            let discount = batch.discounts.get(i).copied().unwrap_or(g);
            batch.rewards[i] + ((1.0 - batch.dones[i]) * discount) * next_max[i]
        })
        .collect();
    Ok((next_max, targets))
}

/// The loss of `q_net` on `batch` against `targets` (one forward pass with gradients): the
/// scalar loss tensor and the gathered `Q(s, a)` `[B]`.
pub fn dqn_loss<Q: QFunction + ?Sized>(
    q_net: &Q,
    batch: &DqnBatch<'_>,
    targets: &[f32],
    loss: DqnLoss,
) -> Result<(Tensor, Vec<f32>)> {
    let b = batch_len(batch)?;
    if targets.len() != b {
        return Err(AlgoError::InvalidArgument(format!(
            "DQN batch: {b} observations but {} targets",
            targets.len()
        )));
    }
    let q = q_net.q_values(batch.observations)?;
    let (rows, n) = q.dims2()?;
    if rows != b {
        return Err(AlgoError::InvalidArgument(format!(
            "the Q-network returned Q-values of shape {:?} for {b} observations",
            q.dims()
        )));
    }
    let mut actions = Vec::with_capacity(b);
    for &a in batch.actions {
        if !(a >= 0.0 && a < n as f32 && a.fract() == 0.0) {
            return Err(AlgoError::InvalidArgument(format!(
                "DQN batch: action {a} is not an index of the {n} Q-values"
            )));
        }
        actions.push(a as usize);
    }
    let host: Vec<f32> = q.detach().to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
    let current: Vec<f32> = actions
        .iter()
        .enumerate()
        .map(|(i, &a)| host[i * n + a])
        .collect();
    let op = QLoss {
        actions,
        targets: targets.to_vec(),
        kind: loss,
    };
    let value = if q.device().is_cpu() && q.dtype() == DType::F32 {
        q.contiguous()?.apply_op1(op)?
    } else {
        graph_loss(&q, &op)?
    };
    Ok((value, current))
}

/// The loss from Candle ops (other devices and dtypes).
fn graph_loss(q: &Tensor, op: &QLoss) -> Result<Tensor> {
    let device = q.device();
    let idx: Vec<u32> = op.actions.iter().map(|&a| a as u32).collect();
    let idx = Tensor::from_vec(idx, (op.actions.len(), 1), device)?;
    let current = q.gather(&idx, 1)?.squeeze(1)?;
    let target = Tensor::from_slice(&op.targets, op.targets.len(), device)?.to_dtype(q.dtype())?;
    let d = current.sub(&target)?;
    Ok(match op.kind {
        DqnLoss::Mse => d.sqr()?.mean_all()?,
        DqnLoss::Huber => {
            let z = d.abs()?;
            let quadratic = z.sqr()?.affine(0.5, 0.0)?;
            let linear = z.affine(1.0, -0.5)?;
            z.lt(1.0)?.where_cond(&quadratic, &linear)?.mean_all()?
        }
    })
}

/// `loss(Q(s, a), target)` as one CPU op on the Q-values `[B, n_actions]`, with torch's
/// kernels' formulas: Huber `0.5 z^2` for `z = |d| < 1`, else `z - 0.5`; MSE `d^2`; the mean
/// over the batch; the gradient `d / B` (Huber inside), `sign(d) / B` (outside), `2 d / B`
/// (MSE) at each sample's action, 0 elsewhere.
struct QLoss {
    actions: Vec<usize>,
    targets: Vec<f32>,
    kind: DqnLoss,
}

fn op_err(m: &str) -> candle_core::Error {
    candle_core::Error::Msg(format!("DQN loss op: {m}"))
}

impl QLoss {
    fn rows<'a>(&self, s: &'a CpuStorage, l: &Layout) -> candle_core::Result<(&'a [f32], usize)> {
        let (b, n) = l.shape().dims2()?;
        let (start, end) = l
            .contiguous_offsets()
            .ok_or_else(|| op_err("Q-values are not contiguous"))?;
        match s {
            CpuStorage::F32(v) if b == self.actions.len() && n > 0 => Ok((&v[start..end], n)),
            CpuStorage::F32(_) => Err(op_err("one action and target per row expected")),
            _ => Err(op_err("f32 Q-values expected")),
        }
    }
}

impl CustomOp1 for QLoss {
    fn name(&self) -> &'static str {
        "rl-dqn-loss"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (q, n) = self.rows(s, l)?;
        let b = self.actions.len();
        let sum: f64 = (0..b)
            .map(|i| {
                let d = q[i * n + self.actions[i]] - self.targets[i];
                f64::from(self.kind.term(d))
            })
            .sum();
        let mean = (sum as f32) / b as f32;
        Ok((CpuStorage::F32(vec![mean]), Shape::from(())))
    }

    fn bwd(&self, q: &Tensor, _res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let up = grad.to_dtype(DType::F32)?.to_scalar::<f32>()?;
        let (b, n) = q.dims2()?;
        let values: Vec<f32> = q.flatten_all()?.to_vec1()?;
        let mut g = vec![0f32; b * n];
        for i in 0..b {
            let k = i * n + self.actions[i];
            g[k] = self.kind.grad(values[k] - self.targets[i], b, up);
        }
        Ok(Some(Tensor::from_vec(g, (b, n), q.device())?))
    }
}

/// One DQN gradient step on `batch` against `targets` ([`dqn_targets`]): loss, backward,
/// global-norm clipping at `max_grad_norm` (`f64::INFINITY`: none), optimizer step (at its learning rate). A
/// non-finite loss or gradient norm leaves the parameters untouched and returns
/// [`AlgoError::Diverged`] naming `iteration`.
pub fn dqn_update<Q: QFunction + ?Sized>(
    q_net: &Q,
    optimizer: &mut dyn Optimizer,
    batch: &DqnBatch<'_>,
    targets: &[f32],
    loss: DqnLoss,
    max_grad_norm: f64,
    iteration: u64,
) -> Result<DqnStats> {
    let (value, _) = dqn_loss(q_net, batch, targets, loss)?;
    let loss_value = f64::from(value.to_dtype(DType::F32)?.to_scalar::<f32>()?);
    let diverged = |what: &str| AlgoError::Diverged {
        iteration,
        what: what.to_string(),
    };
    if !loss_value.is_finite() {
        return Err(diverged("the DQN loss"));
    }
    let grads = value.backward()?;
    let norm = grad_norm(optimizer.vars(), &grads)?;
    if !norm.is_finite() {
        return Err(diverged("the gradient norm"));
    }
    let scale = clip_coefficient(norm, max_grad_norm);
    optimizer.step_scaled(&grads, scale)?;
    Ok(DqnStats {
        loss: loss_value,
        grad_norm: norm,
    })
}

/// SB3's `polyak_update`: `target = (1 - tau) * target + tau * source` for every pair of
/// variables (matched by name; both lists sorted by name), in torch's float32 rounding:
/// `t1 = f32(target * f32(1 - tau))`, then `t1 + f32(tau) * source` rounded once (torch's
/// vectorized add-with-alpha is a fused multiply-add). `tau = 1` copies exactly.
pub fn polyak_update(source: &[(String, Var)], target: &[(String, Var)], tau: f64) -> Result<()> {
    if !(tau > 0.0 && tau <= 1.0) {
        return Err(AlgoError::InvalidArgument(format!(
            "tau must lie in (0, 1], got {tau}"
        )));
    }
    if source.len() != target.len() {
        return Err(AlgoError::InvalidArgument(format!(
            "polyak update: {} source and {} target variables",
            source.len(),
            target.len()
        )));
    }
    let (keep, take) = ((1.0 - tau) as f32, tau as f32);
    for ((sn, s), (tn, t)) in source.iter().zip(target) {
        if sn != tn || s.dims() != t.dims() {
            return Err(AlgoError::InvalidArgument(format!(
                "polyak update: source {sn} {:?} does not match target {tn} {:?}",
                s.dims(),
                t.dims()
            )));
        }
        if t.device().is_cpu() && t.dtype() == DType::F32 && t.is_contiguous() {
            update_in_place(t, s.as_tensor(), |tv, sv| {
                for (x, &p) in tv.iter_mut().zip(sv) {
                    *x = take.mul_add(p, *x * keep);
                }
            })?;
        } else {
            let mixed = t
                .as_tensor()
                .affine(1.0 - tau, 0.0)?
                .add(&s.as_tensor().affine(tau, 0.0)?)?;
            t.set(&mixed)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// A Q-function that is one variable `[B, n]` (its own Q-values), to check the loss op's
    /// values and gradients against the Candle-op graph.
    struct Table(Var);

    impl QFunction for Table {
        fn q_values(&self, _obs: &Tensor) -> rl_policy::Result<Tensor> {
            Ok(self.0.as_tensor().clone())
        }
        fn trainable_vars(&self) -> Vec<(String, Var)> {
            vec![("q".into(), self.0.clone())]
        }
        fn device(&self) -> &Device {
            self.0.device()
        }
        fn duplicate(&self) -> rl_policy::Result<Self> {
            Ok(Table(Var::from_tensor(&self.0.as_tensor().copy()?)?))
        }
    }

    #[test]
    fn fused_loss_matches_the_graph_in_values_and_gradients() {
        let q: Vec<f32> = vec![0.5, -1.0, 2.0, 0.1, 3.0, -0.2, 0.0, 0.7];
        let actions = [0.0f32, 1.0, 0.0, 1.0];
        let targets = [0.2f32, 1.5, -3.0, 0.65];
        let obs = Tensor::zeros((4, 1), DType::F32, &Device::Cpu).unwrap();
        let batch = DqnBatch {
            observations: &obs,
            actions: &actions,
            next_observations: &obs,
            rewards: &[0.0; 4],
            dones: &[0.0; 4],
            discounts: &[],
        };
        for kind in [DqnLoss::Huber, DqnLoss::Mse] {
            let table = Table(Var::from_vec(q.clone(), (4, 2), &Device::Cpu).unwrap());
            let (fused, current) = dqn_loss(&table, &batch, &targets, kind).unwrap();
            assert_eq!(current, [0.5, 0.1, 3.0, 0.7]);
            let op = QLoss {
                actions: vec![0, 1, 0, 1],
                targets: targets.to_vec(),
                kind,
            };
            let graph = graph_loss(table.0.as_tensor(), &op).unwrap();
            let (fv, gv) = (
                fused.to_scalar::<f32>().unwrap(),
                graph.to_scalar::<f32>().unwrap(),
            );
            assert!((fv - gv).abs() <= 1e-6, "{kind:?}: {fv} vs {gv}");
            let gf = fused.backward().unwrap();
            let gg = graph.backward().unwrap();
            let a: Vec<f32> = gf
                .get(table.0.as_tensor())
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            let b: Vec<f32> = gg
                .get(table.0.as_tensor())
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            for (x, y) in a.iter().zip(&b) {
                assert!((x - y).abs() <= 1e-6, "{kind:?}: {a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn polyak_with_tau_one_copies_and_rejects_mismatches() {
        let v = |xs: &[f32]| Var::from_slice(xs, xs.len(), &Device::Cpu).unwrap();
        let src = vec![("w".to_string(), v(&[1.0, -2.0, 3.5]))];
        let dst = vec![("w".to_string(), v(&[0.1, 0.2, f32::MAX]))];
        polyak_update(&src, &dst, 1.0).unwrap();
        let got: Vec<f32> = dst[0].1.as_tensor().to_vec1().unwrap();
        assert_eq!(got, [1.0, -2.0, 3.5]);
        let half = vec![("w".to_string(), v(&[3.0, 0.0, 1.5]))];
        polyak_update(&src, &half, 0.5).unwrap();
        let got: Vec<f32> = half[0].1.as_tensor().to_vec1().unwrap();
        assert_eq!(got, [2.0, -1.0, 2.5]);
        let other = vec![("v".to_string(), v(&[0.0; 3]))];
        assert!(polyak_update(&src, &other, 0.5).is_err());
        assert!(polyak_update(&src, &half, 0.0).is_err());
        assert!(polyak_update(&src, &half, f64::NAN).is_err());
    }
}
