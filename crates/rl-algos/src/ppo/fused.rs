//! PPO's loss on one minibatch as one op on the CPU.
//!
//! Built from Candle ops, the clipped surrogate, the (optionally clipped) value loss, the
//! entropy loss and their sum are about twenty graph nodes on `[batch]` vectors; with their
//! backward passes that was a quarter of a 64-sample update of a CartPole-sized network, all
//! of it per-op overhead. [`loss`] computes the same four scalars from the policy's
//! log-probabilities, values and entropies in one pass, in torch's f32 operations and order,
//! and its hand-written backward gives the three input gradients directly, with torch's
//! conventions where the function has a kink: `min` splits the gradient evenly between equal
//! arguments, and `clamp` passes it at the bounds.

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};

/// The per-sample data and coefficients of the minibatch.
pub(super) struct PpoLossOp {
    pub(super) old_log_probs: Vec<f32>,
    /// Advantages as used (normalized when asked).
    pub(super) advantages: Vec<f32>,
    pub(super) returns: Vec<f32>,
    pub(super) old_values: Vec<f32>,
    /// `1 - clip_range` and `1 + clip_range`, rounded to f32 as torch rounds them.
    pub(super) ratio_bounds: (f32, f32),
    /// The value clipping range, rounded to f32.
    pub(super) clip_range_vf: Option<f32>,
    pub(super) ent_coef: f32,
    pub(super) vf_coef: f32,
}

fn op_err(m: &str) -> candle_core::Error {
    candle_core::Error::Msg(format!("PPO loss op: {m}"))
}

/// The contiguous f32 values of a `[batch]` CPU storage.
fn values<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    let (start, end) = l
        .contiguous_offsets()
        .ok_or_else(|| op_err(&format!("{what} is not contiguous")))?;
    match s {
        CpuStorage::F32(v) => Ok(&v[start..end]),
        _ => Err(op_err(&format!("{what} is not f32"))),
    }
}

/// `mean` of an f32 tensor as torch's CPU kernel computes it: the sum (accumulated here in
/// f64, closer to torch's cascaded f32 sum than a running f32 sum), divided by the count.
fn mean(xs: impl Iterator<Item = f32>, n: usize) -> f32 {
    (xs.map(f64::from).sum::<f64>() as f32) / n as f32
}

impl PpoLossOp {
    fn check(&self, n: usize) -> Result<()> {
        let lens = [
            self.old_log_probs.len(),
            self.advantages.len(),
            self.returns.len(),
            self.old_values.len(),
        ];
        if n == 0 || lens.iter().any(|&l| l != n) {
            return Err(op_err("inputs of different lengths"));
        }
        Ok(())
    }

    /// `r_i = exp(log pi_i - log pi_old_i)`.
    fn ratio(&self, i: usize, log_prob: f32) -> f32 {
        (log_prob - self.old_log_probs[i]).exp()
    }

    /// `V_pred - V_old` clipped when asked, and whether the gradient passes the clip.
    fn value_delta(&self, i: usize, value: f32) -> (f32, bool) {
        let d = value - self.old_values[i];
        match self.clip_range_vf {
            None => (d, true),
            Some(c) => (d.max(-c).min(c), -c <= d && d <= c),
        }
    }
}

impl CustomOp3 for PpoLossOp {
    fn name(&self) -> &'static str {
        "rl-ppo-loss"
    }

    /// `[total, policy_loss, value_loss, entropy_loss]`.
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let lp = values(s1, l1, "log_prob")?;
        let v = values(s2, l2, "values")?;
        let ent = values(s3, l3, "entropy")?;
        let n = lp.len();
        self.check(n)?;
        if v.len() != n || ent.len() != n {
            return Err(op_err("log_prob, values and entropy differ in length"));
        }
        let (lo, hi) = self.ratio_bounds;
        let surrogate = (0..n).map(|i| {
            let (a, r) = (self.advantages[i], self.ratio(i, lp[i]));
            (a * r).min(a * r.max(lo).min(hi))
        });
        let policy_loss = -mean(surrogate, n);
        let squared = (0..n).map(|i| {
            let pred = self.old_values[i] + self.value_delta(i, v[i]).0;
            let e = self.returns[i] - pred;
            e * e
        });
        let value_loss = mean(squared, n);
        let entropy_loss = -mean(ent.iter().copied(), n);
        let total = (policy_loss + self.ent_coef * entropy_loss) + self.vf_coef * value_loss;
        Ok((
            CpuStorage::F32(vec![total, policy_loss, value_loss, entropy_loss]),
            Shape::from(4),
        ))
    }

    fn bwd(
        &self,
        log_prob: &Tensor,
        value: &Tensor,
        entropy: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let g: Vec<f32> = grad.to_vec1()?;
        let [g_total, g_pl, g_vl, g_el] = g[..] else {
            return Err(op_err("the upstream gradient is not [4]"));
        };
        let lp: Vec<f32> = log_prob.to_vec1()?;
        let v: Vec<f32> = value.to_vec1()?;
        let n = lp.len();
        self.check(n)?;
        let inv_n = 1.0 / n as f32;
        let (lo, hi) = self.ratio_bounds;
        // d/d(mean) of each loss, then through its terms as torch's autograd chains them.
        let d_pl = g_total + g_pl;
        let d_vl = g_total * self.vf_coef + g_vl;
        let d_el = g_total * self.ent_coef + g_el;
        let g_lp: Vec<f32> = (0..n)
            .map(|i| {
                let (a, r) = (self.advantages[i], self.ratio(i, lp[i]));
                let (s1, s2) = (a * r, a * r.max(lo).min(hi));
                let d_min = -d_pl * inv_n;
                let (w1, w2) = if s1 < s2 {
                    (d_min, 0.0)
                } else if s2 < s1 {
                    (0.0, d_min)
                } else {
                    (d_min / 2.0, d_min / 2.0)
                };
                let inside = lo <= r && r <= hi;
                let d_ratio = w1 * a + if inside { w2 * a } else { 0.0 };
                d_ratio * r
            })
            .collect();
        let g_v: Vec<f32> = (0..n)
            .map(|i| {
                let (delta, passes) = self.value_delta(i, v[i]);
                let pred = self.old_values[i] + delta;
                let d_pred = (d_vl * inv_n) * (2.0 * (pred - self.returns[i]));
                if passes {
                    d_pred
                } else {
                    0.0
                }
            })
            .collect();
        let g_lp = Tensor::from_vec(g_lp, n, log_prob.device())?;
        let g_v = Tensor::from_vec(g_v, n, value.device())?;
        // Every argument in the graph must get a gradient (Candle expects one for each node it
        // visits), so a zero coefficient gives zeros; the caller detaches the entropy then.
        let g_ent = Tensor::full(-d_el * inv_n, n, entropy.device())?;
        Ok((Some(g_lp), Some(g_v), Some(g_ent)))
    }
}
