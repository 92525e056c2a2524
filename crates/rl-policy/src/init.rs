//! Seeded weight initialization: orthogonal (`torch.nn.init.orthogonal_`) and PyTorch's default
//! `nn.Linear` init. candle-nn has no orthogonal init and Candle's CPU RNG cannot be seeded, so
//! the values are drawn on the host from a caller-provided RNG and computed in `f64`.

use crate::error::{PolicyError, Result};
use rand::Rng;
use rand_distr::StandardNormal;

/// A `rows x cols` matrix (row-major) with orthonormal rows or columns, scaled by `gain`, the
/// way `torch.nn.init.orthogonal_` builds it: a standard-normal matrix (transposed when
/// `rows < cols`), its QR decomposition, `Q` with columns multiplied by `sign(diag(R))`,
/// transposed back, times `gain`.
///
/// The QR here is modified Gram-Schmidt with re-orthogonalization, whose `R` has a positive
/// diagonal by construction: that is exactly the sign-corrected `Q` PyTorch returns (up to
/// rounding), so the result has the same distribution. Draws `rows * cols` normals from `rng`.
pub fn orthogonal<R: Rng + ?Sized>(
    rows: usize,
    cols: usize,
    gain: f64,
    rng: &mut R,
) -> Result<Vec<f32>> {
    if rows == 0 || cols == 0 {
        return Err(PolicyError::InvalidArgument(format!(
            "orthogonal init of an empty {rows}x{cols} matrix"
        )));
    }
    // Row-major draw order, as torch fills `tensor.new(rows, cols).normal_()`.
    let drawn: Vec<f64> = (0..rows * cols)
        .map(|_| rng.sample(StandardNormal))
        .collect();
    // Work on a tall matrix m x n (m >= n), stored column by column.
    let transpose = rows < cols;
    let (m, n) = if transpose {
        (cols, rows)
    } else {
        (rows, cols)
    };
    let mut q: Vec<Vec<f64>> = (0..n)
        .map(|j| {
            (0..m)
                .map(|i| {
                    if transpose {
                        drawn[j * cols + i]
                    } else {
                        drawn[i * cols + j]
                    }
                })
                .collect()
        })
        .collect();
    for j in 0..n {
        let (done, rest) = q.split_at_mut(j);
        let v = &mut rest[0];
        // Two passes of projection ("twice is enough") keep Q orthogonal to rounding level.
        for _ in 0..2 {
            for u in done.iter() {
                let dot: f64 = u.iter().zip(v.iter()).map(|(a, b)| a * b).sum();
                v.iter_mut().zip(u).for_each(|(x, a)| *x -= dot * a);
            }
        }
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        // Also catches a NaN norm.
        if norm.is_nan() || norm <= 1e-12 {
            return Err(PolicyError::InvalidArgument(format!(
                "orthogonal init: the random {m}x{n} matrix is rank deficient"
            )));
        }
        v.iter_mut().for_each(|x| *x /= norm);
    }
    let mut out = vec![0f32; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            // Q is m x n; the weight is Q (rows x cols) or Q^T when transposed.
            let val = if transpose { q[r][c] } else { q[c][r] };
            out[r * cols + c] = (gain * val) as f32;
        }
    }
    Ok(out)
}

/// PyTorch's default `nn.Linear` initialization: weight and bias uniform in
/// `[-1/sqrt(fan_in), 1/sqrt(fan_in)]` (`kaiming_uniform_(a=sqrt(5))`). Used when SB3's
/// `ortho_init` is off. Returns `(weight [out x in] row-major, bias [out])`.
pub fn torch_linear_default<R: Rng + ?Sized>(
    out_dim: usize,
    in_dim: usize,
    rng: &mut R,
) -> (Vec<f32>, Vec<f32>) {
    let bound = 1.0 / (in_dim.max(1) as f64).sqrt();
    let mut draw = |k: usize| -> Vec<f32> {
        (0..k)
            .map(|_| rng.gen_range(-bound..=bound) as f32)
            .collect()
    };
    let w = draw(out_dim * in_dim);
    let b = draw(out_dim);
    (w, b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn gram(w: &[f32], rows: usize, cols: usize, by_rows: bool) -> Vec<f64> {
        let k = if by_rows { rows } else { cols };
        let at = |i: usize, t: usize| -> f64 {
            if by_rows {
                f64::from(w[i * cols + t])
            } else {
                f64::from(w[t * cols + i])
            }
        };
        let len = if by_rows { cols } else { rows };
        let mut g = vec![0.0; k * k];
        for a in 0..k {
            for b in 0..k {
                g[a * k + b] = (0..len).map(|t| at(a, t) * at(b, t)).sum();
            }
        }
        g
    }

    #[test]
    fn orthogonal_is_orthonormal_times_gain() {
        let mut rng = StdRng::seed_from_u64(3);
        for &(rows, cols, gain) in &[
            (64usize, 4usize, 2f64.sqrt()),
            (2, 64, 0.01),
            (64, 64, 1.0),
            (1, 64, 1.0),
        ] {
            let w = orthogonal(rows, cols, gain, &mut rng).unwrap();
            // Tall: columns orthonormal (W^T W = g^2 I); wide: rows orthonormal (W W^T = g^2 I).
            let by_rows = rows <= cols;
            let k = rows.min(cols);
            let g = gram(&w, rows, cols, by_rows);
            for a in 0..k {
                for b in 0..k {
                    let expect = if a == b { gain * gain } else { 0.0 };
                    assert!(
                        (g[a * k + b] - expect).abs() < 1e-5 * gain * gain.max(1.0),
                        "{rows}x{cols}: gram[{a},{b}] = {} (expected {expect})",
                        g[a * k + b]
                    );
                }
            }
        }
    }

    #[test]
    fn orthogonal_is_seeded_and_deterministic() {
        let a = orthogonal(8, 5, 1.0, &mut StdRng::seed_from_u64(7)).unwrap();
        let b = orthogonal(8, 5, 1.0, &mut StdRng::seed_from_u64(7)).unwrap();
        let c = orthogonal(8, 5, 1.0, &mut StdRng::seed_from_u64(8)).unwrap();
        assert_eq!(
            a.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            b.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
        assert_ne!(a, c);
        assert!(orthogonal(0, 3, 1.0, &mut StdRng::seed_from_u64(0)).is_err());
    }

    #[test]
    fn orthogonal_sign_matches_positive_r_diagonal() {
        // For a tall matrix, Q^T A = R must have a positive diagonal (torch's sign correction).
        let mut rng = StdRng::seed_from_u64(11);
        let (rows, cols) = (6usize, 3usize);
        let drawn: Vec<f64> = (0..rows * cols)
            .map(|_| rng.sample(StandardNormal))
            .collect();
        let q = orthogonal(rows, cols, 1.0, &mut StdRng::seed_from_u64(11)).unwrap();
        for j in 0..cols {
            let r_jj: f64 = (0..rows)
                .map(|i| f64::from(q[i * cols + j]) * drawn[i * cols + j])
                .sum();
            assert!(r_jj > 0.0, "R[{j},{j}] = {r_jj}");
        }
    }

    #[test]
    fn torch_default_bounds() {
        let (w, b) = torch_linear_default(8, 16, &mut StdRng::seed_from_u64(1));
        assert_eq!((w.len(), b.len()), (128, 8));
        assert!(w.iter().chain(&b).all(|x| x.abs() <= 0.25));
        assert!(w.iter().any(|x| x.abs() > 0.1));
    }
}
