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
//!
//! [`gemm_nt`] serves products whose operands are both stored along the inner dimension and
//! whose output is too narrow for the tiles above (a weight gradient of a head with one or two
//! outputs, or of a first layer with a few inputs): each element is a dot product summed in
//! the fixed lane order of [`lane_sum`], the same on every CPU.

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

/// Rows of `c` computed together (they share each loaded row of `b`): four, or eight for the
/// transposed operand when the rows are narrower than a 16-lane tile, so that enough
/// independent sums are in flight. (A stored operand keeps four: its rows are sliced once per
/// block, see [`tiles`], which measured faster than more rows read with index checks.)
const ROWS: usize = 4;
const NARROW_ROWS: usize = 8;

impl<const TA: bool> Kernel for Gemm<'_, TA> {
    #[inline(always)]
    fn run(self) {
        let Gemm { m, n, k, a, b, c } = self;
        if m == 0 || n == 0 {
            return;
        }
        let block = if TA && n < 16 { NARROW_ROWS } else { ROWS };
        let mut i = 0;
        while i < m {
            let rows = (m - i).min(block);
            let c_blk = &mut c[i * n..(i + rows) * n];
            let at = (i, m);
            match rows {
                NARROW_ROWS => columns::<NARROW_ROWS, TA>(at, n, k, a, b, c_blk),
                ROWS => columns::<ROWS, TA>(at, n, k, a, b, c_blk),
                _ => {
                    // Fewer rows than a block: two at a time, then one.
                    let mut r = 0;
                    while r + 2 <= rows {
                        let c_two = &mut c_blk[r * n..(r + 2) * n];
                        columns::<2, TA>((i + r, m), n, k, a, b, c_two);
                        r += 2;
                    }
                    if r < rows {
                        let c_one = &mut c_blk[r * n..(r + 1) * n];
                        columns::<1, TA>((i + r, m), n, k, a, b, c_one);
                    }
                }
            }
            i += rows;
        }
    }
}

/// All columns of the `R` rows from row `i0` (of `m`): tiles held in registers, widest first
/// (64 and 32 columns for one and two rows, so that they too keep four vectors of sums in
/// flight; then 16, 8 and 4), then single columns.
#[inline(always)]
fn columns<const R: usize, const TA: bool>(
    (i0, m): (usize, usize),
    n: usize,
    k: usize,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
) {
    let mut j = 0;
    if R == 1 {
        j = tiles::<R, 64, TA>((i0, m), j, n, k, a, b, c);
    }
    if R <= 2 {
        j = tiles::<R, 32, TA>((i0, m), j, n, k, a, b, c);
    }
    j = tiles::<R, 16, TA>((i0, m), j, n, k, a, b, c);
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
    // The rows of a stored (not transposed) left operand, `k` values each, sliced once so
    // that the inner loop's reads need no index checks (a plain loop rather than
    // `std::array::from_fn`, which is not inlined into the vector-unit wrappers).
    // Only for up to four rows: eight slices would crowd the registers the sums need.
    let sliced = !TA && R <= ROWS;
    let mut rows: [&[f32]; R] = [&[]; R];
    if sliced {
        for (r, row) in rows.iter_mut().enumerate() {
            *row = &a[(i0 + r) * k..][..k];
        }
    }
    while j + W <= n {
        let mut acc = [[0f32; W]; R];
        for p in 0..k {
            let mut bw = [0f32; W];
            bw.copy_from_slice(&b[p * n + j..p * n + j + W]);
            for (r, acc_r) in acc.iter_mut().enumerate() {
                let x = if sliced {
                    rows[r][p]
                } else {
                    at::<TA>(a, m, k, i0 + r, p)
                };
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

/// Lanes of [`lane_sum`] and [`gemm_nt`].
const LANES: usize = 8;

/// Combines eight lane sums in the fixed order `((s0 + s4) + (s2 + s6)) + ((s1 + s5) + (s3 +
/// s7))`.
#[inline(always)]
fn combine(l: [f32; LANES]) -> f32 {
    ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]))
}

/// The sum of `xs` in a fixed order that vectorizes: eight running sums, lane `l` adding
/// `xs[8c + l]` for `c = 0, 1, ...` in turn, combined by [`combine`], then the last
/// `len % 8` values added in order. The order is written out, so every CPU gives the same bits.
#[inline(always)]
pub(crate) fn lane_sum(xs: &[f32]) -> f32 {
    let mut lanes = [0f32; LANES];
    let mut chunks = xs.chunks_exact(LANES);
    for ch in &mut chunks {
        for (s, &x) in lanes.iter_mut().zip(ch) {
            *s += x;
        }
    }
    chunks
        .remainder()
        .iter()
        .fold(combine(lanes), |acc, &x| acc + x)
}

/// `c = a · bᵀ` for row-major `a` `[m, k]`, `b` `[n, k]` and `c` `[m, n]`: element `(i, j)`
/// is the [`lane_sum`] of the products `a[i][p] * b[j][p]` (each rounded, then summed in the
/// lane order).
pub(crate) fn gemm_nt(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    wide_simd(GemmNt {
        m,
        n,
        k,
        a: &a[..m * k],
        b: &b[..n * k],
        c: &mut c[..m * n],
    })
}

struct GemmNt<'a> {
    m: usize,
    n: usize,
    k: usize,
    a: &'a [f32],
    b: &'a [f32],
    c: &'a mut [f32],
}

impl Kernel for GemmNt<'_> {
    #[inline(always)]
    fn run(self) {
        let GemmNt { m, n, k, a, b, c } = self;
        if m == 0 || n == 0 {
            return;
        }
        if k == 0 {
            c.fill(0.0);
            return;
        }
        let mut i = 0;
        while i < m {
            let ra = if i + 2 <= m { 2 } else { 1 };
            let mut j = 0;
            while j < n {
                let rb = if j + 4 <= n { 4 } else { 1 };
                let c = &mut c[..];
                match (ra, rb) {
                    (2, 4) => dots::<2, 4>((i, j), n, k, a, b, c),
                    (2, _) => dots::<2, 1>((i, j), n, k, a, b, c),
                    (_, 4) => dots::<1, 4>((i, j), n, k, a, b, c),
                    _ => dots::<1, 1>((i, j), n, k, a, b, c),
                }
                j += rb;
            }
            i += ra;
        }
    }
}

/// The `RA x RB` block of `c` at `(i0, j0)` in [`gemm_nt`]: each loaded chunk of a row of `a`
/// or `b` serves several of the block's sums.
#[inline(always)]
fn dots<const RA: usize, const RB: usize>(
    (i0, j0): (usize, usize),
    n: usize,
    k: usize,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
) {
    // (Plain loops rather than `std::array::from_fn`, which is not inlined into the
    // vector-unit wrappers of `wide_simd`.)
    let mut a_rows: [&[f32]; RA] = [&[]; RA];
    for (r, row) in a_rows.iter_mut().enumerate() {
        *row = &a[(i0 + r) * k..][..k];
    }
    let mut b_rows: [&[f32]; RB] = [&[]; RB];
    for (t, row) in b_rows.iter_mut().enumerate() {
        *row = &b[(j0 + t) * k..][..k];
    }
    let full = k / LANES * LANES;
    let mut acc = [[[0f32; LANES]; RB]; RA];
    let mut q = 0;
    while q < full {
        let mut xs = [[0f32; LANES]; RA];
        for (x, row) in xs.iter_mut().zip(&a_rows) {
            x.copy_from_slice(&row[q..q + LANES]);
        }
        let mut ys = [[0f32; LANES]; RB];
        for (y, row) in ys.iter_mut().zip(&b_rows) {
            y.copy_from_slice(&row[q..q + LANES]);
        }
        for (acc_r, x) in acc.iter_mut().zip(&xs) {
            for (acc_rt, y) in acc_r.iter_mut().zip(&ys) {
                for l in 0..LANES {
                    acc_rt[l] += x[l] * y[l];
                }
            }
        }
        q += LANES;
    }
    for (r, (acc_r, a_row)) in acc.iter().zip(&a_rows).enumerate() {
        for (t, (acc_rt, b_row)) in acc_r.iter().zip(&b_rows).enumerate() {
            let tail = a_row[full..].iter().zip(&b_row[full..]);
            c[(i0 + r) * n + j0 + t] = tail.fold(combine(*acc_rt), |s, (&x, &y)| s + x * y);
        }
    }
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
    fn nt_product_is_the_lane_sum_of_each_dot_product() {
        for (m, n, k) in [
            (1, 1, 1),
            (2, 64, 64),
            (1, 64, 64),
            (64, 4, 40),
            (3, 5, 17),
            (5, 9, 8),
            (4, 7, 3),
            (2, 0, 3),
            (0, 3, 2),
            (3, 4, 0),
        ] {
            let a: Vec<f32> = (0..m * k)
                .map(|i| ((i * 7919 % 97) as f32 - 48.0) * 0.013)
                .collect();
            let b: Vec<f32> = (0..n * k)
                .map(|i| ((i * 104_729 % 89) as f32 - 44.0) * 0.021)
                .collect();
            let mut c = vec![f32::NAN; m * n + 3];
            gemm_nt(m, n, k, &a, &b, &mut c);
            for i in 0..m {
                for j in 0..n {
                    let products: Vec<f32> = (0..k).map(|p| a[i * k + p] * b[j * k + p]).collect();
                    let want = lane_sum(&products);
                    assert_eq!(
                        c[i * n + j].to_bits(),
                        want.to_bits(),
                        "{m}x{n}x{k} ({i}, {j})"
                    );
                }
            }
            assert!(c[m * n..].iter().all(|x| x.is_nan()), "wrote past m * n");
        }
    }

    #[test]
    fn lane_sum_follows_its_written_order() {
        let xs: Vec<f32> = (0..21)
            .map(|i| 1.0 + i as f32 * 1e-7 * (i % 3) as f32)
            .collect();
        let mut l = [0f32; 8];
        for (i, &x) in xs[..16].iter().enumerate() {
            l[i % 8] += x;
        }
        let want = xs[16..].iter().fold(
            ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7])),
            |s, &x| s + x,
        );
        assert_eq!(lane_sum(&xs).to_bits(), want.to_bits());
        assert_eq!(lane_sum(&[]), 0.0);
    }

    #[test]
    fn matches_the_in_order_sum_bit_for_bit_for_every_shape() {
        for (m, n, k) in [
            (1, 1, 1),
            (1, 64, 4),
            (1, 100, 9),
            (2, 64, 64),
            (3, 2, 64),
            (64, 4, 64),
            (19, 8, 33),
            (13, 3, 5),
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
