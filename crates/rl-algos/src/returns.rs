//! Monte-Carlo returns of whole episodes (REINFORCE), and their normalization.

use crate::error::{AlgoError, Result};

/// Discounted returns of one episode: `out[t] = rewards[t] + gamma * out[t + 1]`, computed
/// backwards from the last step (`G_T = r_T`). `out` must be as long as `rewards`.
///
/// ```
/// let mut g = [0.0; 3];
/// rl_algos::returns::discounted_returns(&[1.0, 2.0, 3.0], 0.5, &mut g)?;
/// assert_eq!(g, [1.0 + 0.5 * (2.0 + 0.5 * 3.0), 2.0 + 0.5 * 3.0, 3.0]);
/// # Ok::<(), rl_algos::AlgoError>(())
/// ```
pub fn discounted_returns(rewards: &[f64], gamma: f64, out: &mut [f64]) -> Result<()> {
    if rewards.len() != out.len() {
        return Err(AlgoError::InvalidArgument(format!(
            "discounted_returns: {} rewards but an output of length {}",
            rewards.len(),
            out.len()
        )));
    }
    let mut g = 0.0;
    for (o, &r) in out.iter_mut().zip(rewards).rev() {
        g = r + gamma * g;
        *o = g;
    }
    Ok(())
}

/// Normalizes `xs` in place to `(x - mean) / (std + eps)` with the unbiased (n - 1) standard
/// deviation, as `torch.Tensor.std()` in the PyTorch REINFORCE tutorial. A single value, whose
/// unbiased std is undefined (NaN in PyTorch), becomes 0: it carries no learning signal
/// relative to itself.
pub fn normalize_in_place(xs: &mut [f64], eps: f64) {
    let n = xs.len();
    if n < 2 {
        xs.iter_mut().for_each(|x| *x = 0.0);
        return;
    }
    let mean = xs.iter().sum::<f64>() / n as f64;
    let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1) as f64;
    let denom = var.sqrt() + eps;
    for x in xs.iter_mut() {
        *x = (*x - mean) / denom;
    }
}
