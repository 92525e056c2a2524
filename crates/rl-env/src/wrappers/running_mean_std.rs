//! SB3's `RunningMeanStd`: per-element running mean and variance, merged batch by batch.

use crate::error::{EnvError, Result};

/// Running mean and (population) variance of fixed-length samples, in `f64`, as
/// `stable_baselines3.common.running_mean_std.RunningMeanStd`.
///
/// Starts at mean 0, variance 1 and a pseudo-count of `epsilon` (default `1e-4`), and merges each
/// batch with the parallel formula of Chan et al., term for term in SB3's order so that a single
/// sample gives bit-identical statistics:
///
/// ```text
/// delta = batch_mean - mean;  tot = count + batch_count
/// mean' = mean + delta * batch_count / tot
/// M2    = var * count + batch_var * batch_count + delta² * count * batch_count / tot
/// var'  = M2 / tot;  count' = tot
/// ```
///
/// Batch moments are computed here in `f64` (two passes). NumPy computes the moments of an `f32`
/// batch in `f32`, so multi-row updates from `f32` data agree with SB3 to `f32` rounding only;
/// single-row updates ([`RunningMeanStd::update_one`]) and `f64` data are exact.
///
/// Every update rejects non-finite samples and leaves the statistics untouched on error.
#[derive(Clone, Debug, PartialEq)]
pub struct RunningMeanStd {
    mean: Vec<f64>,
    var: Vec<f64>,
    count: f64,
}

impl RunningMeanStd {
    /// SB3's default initial pseudo-count.
    pub const DEFAULT_EPSILON: f64 = 1e-4;

    /// Statistics for samples of `dim` elements, with the default pseudo-count.
    pub fn new(dim: usize) -> Self {
        RunningMeanStd {
            mean: vec![0.0; dim],
            var: vec![1.0; dim],
            count: Self::DEFAULT_EPSILON,
        }
    }

    /// Statistics with a custom initial pseudo-count (positive and finite).
    pub fn with_epsilon(dim: usize, epsilon: f64) -> Result<Self> {
        check_count(epsilon)?;
        Ok(RunningMeanStd {
            count: epsilon,
            ..Self::new(dim)
        })
    }

    /// Restores saved statistics: `mean` and `var` of equal length, finite, `var >= 0`, and a
    /// positive finite `count`.
    pub fn from_parts(mean: Vec<f64>, var: Vec<f64>, count: f64) -> Result<Self> {
        if mean.len() != var.len() {
            return Err(EnvError::InvalidArgument(format!(
                "RunningMeanStd mean has {} elements but var has {}",
                mean.len(),
                var.len()
            )));
        }
        if let Some((i, m)) = mean.iter().enumerate().find(|(_, m)| !m.is_finite()) {
            return Err(EnvError::InvalidArgument(format!(
                "RunningMeanStd mean[{i}] is {m}, not a finite number"
            )));
        }
        if let Some((i, v)) = var
            .iter()
            .enumerate()
            .find(|(_, v)| !(v.is_finite() && **v >= 0.0))
        {
            return Err(EnvError::InvalidArgument(format!(
                "RunningMeanStd var[{i}] is {v}, not a finite non-negative number"
            )));
        }
        check_count(count)?;
        Ok(RunningMeanStd { mean, var, count })
    }

    /// Number of elements per sample.
    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// The running mean.
    pub fn mean(&self) -> &[f64] {
        &self.mean
    }

    /// The running population variance.
    pub fn var(&self) -> &[f64] {
        &self.var
    }

    /// The number of samples merged so far, plus the initial pseudo-count.
    pub fn count(&self) -> f64 {
        self.count
    }

    /// Merges one sample (batch count 1, batch variance 0).
    pub fn update_one<T: Copy + Into<f64>>(&mut self, x: &[T]) -> Result<()> {
        self.check_len(x.len(), 1)?;
        check_finite(x)?;
        for (j, v) in x.iter().enumerate() {
            self.merge(j, (*v).into(), 0.0, 1.0);
        }
        self.count += 1.0;
        Ok(())
    }

    /// Merges a batch of `n_rows` samples stored row after row in `rows` (C order,
    /// `[n_rows, dim]`), like `update(arr)` with `arr.shape[0] == n_rows`.
    pub fn update_batch<T: Copy + Into<f64>>(&mut self, rows: &[T], n_rows: usize) -> Result<()> {
        if n_rows == 0 {
            return Err(EnvError::InvalidArgument(
                "RunningMeanStd::update_batch needs at least one row".into(),
            ));
        }
        self.check_len(rows.len(), n_rows)?;
        check_finite(rows)?;
        let dim = self.dim();
        let n = n_rows as f64;
        for j in 0..dim {
            let column = rows.iter().skip(j).step_by(dim).map(|v| (*v).into());
            let batch_mean = column.clone().sum::<f64>() / n;
            let batch_var = column.map(|v: f64| (v - batch_mean).powi(2)).sum::<f64>() / n;
            self.merge(j, batch_mean, batch_var, n);
        }
        self.count += n;
        Ok(())
    }

    /// Merges precomputed batch moments (`update_from_moments` in SB3).
    pub fn update_from_moments(
        &mut self,
        batch_mean: &[f64],
        batch_var: &[f64],
        batch_count: f64,
    ) -> Result<()> {
        self.check_len(batch_mean.len(), 1)?;
        self.check_len(batch_var.len(), 1)?;
        check_count(batch_count)?;
        check_finite(batch_mean)?;
        if let Some((i, v)) = batch_var
            .iter()
            .enumerate()
            .find(|(_, v)| !(v.is_finite() && **v >= 0.0))
        {
            return Err(EnvError::InvalidArgument(format!(
                "RunningMeanStd batch variance[{i}] is {v}, not a finite non-negative number"
            )));
        }
        for j in 0..self.dim() {
            self.merge(j, batch_mean[j], batch_var[j], batch_count);
        }
        self.count += batch_count;
        Ok(())
    }

    /// Merges another set of statistics into this one (SB3's `combine`).
    pub fn combine(&mut self, other: &RunningMeanStd) -> Result<()> {
        self.update_from_moments(&other.mean, &other.var, other.count)
    }

    /// The Chan update of element `j`; the caller adds `batch_count` to `count` afterwards so
    /// every element sees the same old count.
    #[inline]
    fn merge(&mut self, j: usize, batch_mean: f64, batch_var: f64, batch_count: f64) {
        let count = self.count;
        let delta = batch_mean - self.mean[j];
        let tot_count = count + batch_count;
        let m_a = self.var[j] * count;
        let m_b = batch_var * batch_count;
        let m_2 = m_a + m_b + delta * delta * count * batch_count / (count + batch_count);
        self.mean[j] += delta * batch_count / tot_count;
        self.var[j] = m_2 / (count + batch_count);
    }

    fn check_len(&self, len: usize, rows: usize) -> Result<()> {
        let expected = self.dim() * rows;
        if len == expected {
            Ok(())
        } else {
            Err(EnvError::InvalidArgument(format!(
                "RunningMeanStd of dimension {} got {len} values, expected {expected} ({rows} row(s))",
                self.dim()
            )))
        }
    }
}

fn check_count(count: f64) -> Result<()> {
    if count.is_finite() && count > 0.0 {
        Ok(())
    } else {
        Err(EnvError::InvalidArgument(format!(
            "RunningMeanStd count must be positive and finite, got {count}"
        )))
    }
}

fn check_finite<T: Copy + Into<f64>>(x: &[T]) -> Result<()> {
    match x
        .iter()
        .map(|v| (*v).into())
        .enumerate()
        .find(|(_, v)| !v.is_finite())
    {
        Some((i, v)) => Err(EnvError::InvalidArgument(format!(
            "RunningMeanStd sample value {i} is {v}, not a finite number"
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random data without a dependency on the crate's generators.
    fn data(n: usize, seed: u64) -> Vec<f64> {
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 11) as f64 / (1u64 << 53) as f64) * 10.0 - 3.0
            })
            .collect()
    }

    /// The exact statistics of the prior (mean 0, var 1, weight eps) merged with `xs`, computed
    /// naively: weighted mean, then weighted second central moment.
    fn naive(eps: f64, xs: &[f64]) -> (f64, f64, f64) {
        let count = eps + xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / count;
        let m2 = eps * (1.0 + mean * mean) + xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>();
        (mean, m2 / count, count)
    }

    #[test]
    fn initial_state_matches_sb3() {
        let r = RunningMeanStd::new(3);
        assert_eq!(r.mean(), &[0.0; 3]);
        assert_eq!(r.var(), &[1.0; 3]);
        assert_eq!(r.count(), 1e-4);
    }

    #[test]
    fn single_sample_is_sb3_formula_bit_for_bit() {
        let mut r = RunningMeanStd::new(2);
        r.update_one(&[2.0f32, -4.0]).unwrap();
        let tot = 1e-4 + 1.0;
        let mean0 = 0.0 + 2.0 * 1.0 / tot;
        let var0 = (1.0 * 1e-4 + 0.0 * 1.0 + 2.0f64 * 2.0 * 1e-4 * 1.0 / tot) / tot;
        assert_eq!(r.mean()[0].to_bits(), mean0.to_bits());
        assert_eq!(r.var()[0].to_bits(), var0.to_bits());
        let mean1 = 0.0 + -4.0 * 1.0 / tot;
        assert_eq!(r.mean()[1].to_bits(), mean1.to_bits());
        assert_eq!(r.count(), tot);
    }

    #[test]
    fn sequential_and_batched_updates_match_two_pass_statistics() {
        let xs = data(1000, 7);
        let (mean, var, count) = naive(1e-4, &xs);

        let mut one = RunningMeanStd::new(1);
        for x in &xs {
            one.update_one(&[*x]).unwrap();
        }
        let mut batched = RunningMeanStd::new(1);
        for chunk in xs.chunks(37) {
            batched.update_batch(chunk, chunk.len()).unwrap();
        }
        for r in [&one, &batched] {
            assert!(
                (r.mean()[0] - mean).abs() < 1e-12,
                "{} vs {mean}",
                r.mean()[0]
            );
            assert!((r.var()[0] - var).abs() < 1e-12, "{} vs {var}", r.var()[0]);
            assert!((r.count() - count).abs() < 1e-9);
        }
    }

    #[test]
    fn batch_rows_are_per_column() {
        // Three rows of two columns: column 0 = xs[0..3], column 1 = ys.
        let rows = [1.0f32, 10.0, 2.0, 20.0, 4.0, 60.0];
        let mut r = RunningMeanStd::new(2);
        r.update_batch(&rows, 3).unwrap();
        for (j, col) in [[1.0, 2.0, 4.0], [10.0, 20.0, 60.0]].iter().enumerate() {
            let (mean, var, _) = naive(1e-4, col);
            assert!((r.mean()[j] - mean).abs() < 1e-12);
            assert!((r.var()[j] - var).abs() < 1e-10);
        }
    }

    #[test]
    fn combine_equals_updating_with_the_other_data() {
        let xs = data(200, 1);
        let ys = data(300, 2);
        let mut a = RunningMeanStd::with_epsilon(1, 1e-4).unwrap();
        a.update_batch(&xs, xs.len()).unwrap();
        let mut b = RunningMeanStd::new(1);
        b.update_batch(&ys, ys.len()).unwrap();
        a.combine(&b).unwrap();
        let all: Vec<f64> = xs.iter().chain(&ys).copied().collect();
        // Two priors of weight 1e-4 each were merged.
        let (mean, var, count) = naive(2e-4, &all);
        assert!((a.mean()[0] - mean).abs() < 1e-12);
        assert!((a.var()[0] - var).abs() < 1e-12);
        assert!((a.count() - count).abs() < 1e-9);
    }

    #[test]
    fn bad_input_is_rejected_and_leaves_state_untouched() {
        let mut r = RunningMeanStd::new(2);
        r.update_one(&[1.0, 2.0]).unwrap();
        let before = r.clone();
        assert!(matches!(
            r.update_one(&[1.0]),
            Err(EnvError::InvalidArgument(_))
        ));
        assert!(r.update_one(&[1.0, f64::NAN]).is_err());
        assert!(r.update_one(&[f32::INFINITY, 0.0]).is_err());
        assert!(r.update_batch(&[1.0, 2.0, 3.0], 2).is_err());
        assert!(r.update_batch::<f64>(&[], 0).is_err());
        assert!(r
            .update_from_moments(&[0.0, 0.0], &[-1.0, 0.0], 2.0)
            .is_err());
        assert!(r
            .update_from_moments(&[0.0, 0.0], &[0.0, 0.0], 0.0)
            .is_err());
        assert_eq!(r, before);
        assert!(RunningMeanStd::with_epsilon(2, 0.0).is_err());
        assert!(RunningMeanStd::from_parts(vec![0.0], vec![1.0, 1.0], 1.0).is_err());
        assert!(RunningMeanStd::from_parts(vec![0.0], vec![-1.0], 1.0).is_err());
        assert!(RunningMeanStd::from_parts(vec![f64::NAN], vec![1.0], 1.0).is_err());
        assert!(RunningMeanStd::from_parts(vec![0.0], vec![1.0], f64::INFINITY).is_err());
        let restored = RunningMeanStd::from_parts(
            before.mean().to_vec(),
            before.var().to_vec(),
            before.count(),
        )
        .unwrap();
        assert_eq!(restored, before);
    }
}
