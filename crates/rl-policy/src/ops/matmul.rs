//! A small dense matrix product over caller-owned buffers, for the fast MLP path
//! ([`crate::fast`]).
//!
//! Candle's CPU matmul calls the `gemm` crate, which allocates its packing buffers on every
//! call and is reachable only through an `unsafe fn` taking raw pointers; at the sizes of RL
//! policies (batches of 1-256, layers of 2-256 units) the allocation and dispatch cost more
//! than the arithmetic. This kernel writes into a slice the caller preallocated, allocates
//! nothing, and is compiled for the CPU's widest vector unit through [`super::wide_simd`].
//!
//! Every output element is summed over the inner dimension in order, starting from zero, with
//! a separate multiply and add (no fused multiply-add): the result does not depend on the
//! tiling, the batch size or the CPU, so a batch-1 forward gives bit for bit the rows of a
//! batch-8 forward on every machine. (Candle's `gemm` sums in another order: results agree to
//! f32 rounding, see the tests of [`crate::fast`].)

use super::{wide_simd, Kernel};

/// `c = a · b` for row-major contiguous `a` `[m, k]`, `b` `[k, n]` and `c` `[m, n]` (only
/// the first `m * k`, `k * n` and `m * n` values of each slice are used; shorter slices
/// panic, which callers rule out by sizing their buffers at construction).
pub(crate) fn gemm_nn(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    wide_simd(Gemm::<false> {
        m,
        n,
        k,
        a: &a[..m * k],
        b: &b[..k * n],
        c: &mut c[..m * n],
    })
}

/// `c = aᵀ · b` for row-major contiguous `a` `[k, m]` (read transposed, never copied), `b`
/// `[k, n]` and `c` `[m, n]`: the same in-order sums as [`gemm_nn`] of the transposed `a`,
/// bit for bit.
pub(crate) fn gemm_tn(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    wide_simd(Gemm::<true> {
        m,
        n,
        k,
        a: &a[..m * k],
        b: &b[..k * n],
        c: &mut c[..m * n],
    })
}

/// Element `(i, p)` of the left operand: `a[i][p]` as stored (`[m, k]`), or with `TA` the
/// transpose of a stored `[k, m]`.
#[inline(always)]
fn at<const TA: bool>(a: &[f32], m: usize, k: usize, i: usize, p: usize) -> f32 {
    if TA {
        a[p * m + i]
    } else {
        a[i * k + p]
    }
}

struct Gemm<'a, const TA: bool> {
    m: usize,
    n: usize,
    k: usize,
    a: &'a [f32],
    b: &'a [f32],
    c: &'a mut [f32],
}

/// Rows of `c` computed together (they share each loaded row of `b`).
const ROWS: usize = 4;

impl<const TA: bool> Kernel for Gemm<'_, TA> {
    #[inline(always)]
    fn run(self) {
        let Gemm { m, n, k, a, b, c } = self;
        if m == 0 || n == 0 {
            return;
        }
        let mut i = 0;
        while i < m {
            let rows = (m - i).min(ROWS);
            let c_blk = &mut c[i * n..(i + rows) * n];
            if rows == ROWS {
                columns::<ROWS, TA>((i, m), n, k, a, b, c_blk);
            } else {
                for r in 0..rows {
                    columns::<1, TA>((i + r, m), n, k, a, b, &mut c_blk[r * n..(r + 1) * n]);
                }
            }
            i += rows;
        }
    }
}

/// All columns of the `R` rows from row `i0` (of `m`): tiles of 16, 8 and 4 columns held in
/// registers, then single columns.
#[inline(always)]
fn columns<const R: usize, const TA: bool>(
    (i0, m): (usize, usize),
    n: usize,
    k: usize,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
) {
    let mut j = tiles::<R, 16, TA>((i0, m), 0, n, k, a, b, c);
    j = tiles::<R, 8, TA>((i0, m), j, n, k, a, b, c);
    j = tiles::<R, 4, TA>((i0, m), j, n, k, a, b, c);
    for jj in j..n {
        for r in 0..R {
            let mut s = 0f32;
            for p in 0..k {
                s += at::<TA>(a, m, k, i0 + r, p) * b[p * n + jj];
            }
            c[r * n + jj] = s;
        }
    }
}

/// Tiles of `R` rows by `W` columns from column `j` while a whole tile fits; returns the first
/// column left.
#[inline(always)]
fn tiles<const R: usize, const W: usize, const TA: bool>(
    (i0, m): (usize, usize),
    mut j: usize,
    n: usize,
    k: usize,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
) -> usize {
    while j + W <= n {
        let mut acc = [[0f32; W]; R];
        for p in 0..k {
            let mut bw = [0f32; W];
            bw.copy_from_slice(&b[p * n + j..p * n + j + W]);
            for (r, acc_r) in acc.iter_mut().enumerate() {
                let x = at::<TA>(a, m, k, i0 + r, p);
                for (s, &y) in acc_r.iter_mut().zip(&bw) {
                    *s += x * y;
                }
            }
        }
        for (r, acc_r) in acc.iter().enumerate() {
            c[r * n + j..r * n + j + W].copy_from_slice(acc_r);
        }
        j += W;
    }
    j
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The product summed in order from zero, one element at a time.
    fn reference(m: usize, n: usize, k: usize, a: &[f32], b: &[f32]) -> Vec<f32> {
        let mut c = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut s = 0f32;
                for p in 0..k {
                    s += a[i * k + p] * b[p * n + j];
                }
                c[i * n + j] = s;
            }
        }
        c
    }

    #[test]
    fn matches_the_in_order_sum_bit_for_bit_for_every_shape() {
        for (m, n, k) in [
            (1, 1, 1),
            (1, 64, 4),
            (3, 2, 64),
            (4, 16, 7),
            (5, 29, 3),
            (40, 64, 64),
            (9, 1, 64),
            (2, 0, 3),
            (0, 3, 2),
            (3, 4, 0),
        ] {
            let a: Vec<f32> = (0..m * k)
                .map(|i| ((i * 7919 % 97) as f32 - 48.0) * 0.013)
                .collect();
            let b: Vec<f32> = (0..k * n)
                .map(|i| ((i * 104_729 % 89) as f32 - 44.0) * 0.021)
                .collect();
            let mut c = vec![f32::NAN; m * n + 3];
            gemm_nn(m, n, k, &a, &b, &mut c);
            let want = reference(m, n, k, &a, &b);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&c[..m * n]), bits(&want), "{m}x{n}x{k}");
            assert!(c[m * n..].iter().all(|x| x.is_nan()), "wrote past m * n");
            // The same product from the stored transpose of `a` (`[k, m]`).
            let mut a_t = vec![0f32; m * k];
            for i in 0..m {
                for p in 0..k {
                    a_t[p * m + i] = a[i * k + p];
                }
            }
            let mut c_t = vec![f32::NAN; m * n + 3];
            gemm_tn(m, n, k, &a_t, &b, &mut c_t);
            assert_eq!(bits(&c_t[..m * n]), bits(&want), "tn {m}x{n}x{k}");
            assert!(
                c_t[m * n..].iter().all(|x| x.is_nan()),
                "tn wrote past m * n"
            );
        }
    }
}
