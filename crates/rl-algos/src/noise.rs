//! Exploration noise for deterministic continuous-action policies (SB3's `common/noise.py`):
//! added to the scaled action `[-1, 1]` while collecting, then clipped back into `[-1, 1]`.
//!
//! An [`ActionNoise`] is a plain description (it lives in a configuration and in checkpoints);
//! its per-environment state (the Ornstein-Uhlenbeck process's last value) is a
//! [`NoiseState`], reset for an environment whose episode ended, as SB3's
//! `VectorizedActionNoise.reset(indices)` does. Draws come from the caller's generator (the
//! run's seeded one), so runs stay reproducible.

use crate::error::{AlgoError, Result};
use rand::{Rng, RngCore};
use rand_distr::StandardNormal;

/// An action-noise process, one independent copy per environment.
#[derive(Clone, Debug, PartialEq)]
pub enum ActionNoise {
    /// SB3's `NormalActionNoise(mean, sigma)`: `N(mean, sigma)` per dimension, drawn anew every
    /// step.
    Normal {
        /// Mean per action dimension.
        mean: Vec<f64>,
        /// Standard deviation per action dimension.
        sigma: Vec<f64>,
    },
    /// SB3's `OrnsteinUhlenbeckActionNoise`: `x += theta (mean - x) dt + sigma sqrt(dt) N(0, 1)`.
    OrnsteinUhlenbeck {
        /// Mean per action dimension.
        mean: Vec<f64>,
        /// Scale of the Gaussian increments per dimension.
        sigma: Vec<f64>,
        /// Rate of mean reversion (SB3: 0.15).
        theta: f64,
        /// Time step (SB3: 1e-2).
        dt: f64,
        /// Value after a reset (SB3: zeros when `None`).
        initial_noise: Option<Vec<f64>>,
    },
}

impl ActionNoise {
    /// `NormalActionNoise` with the same `sigma` on each of `act_dim` dimensions, mean 0 (what
    /// rl-zoo's `noise_type: normal, noise_std: sigma` builds).
    pub fn normal(act_dim: usize, sigma: f64) -> Self {
        ActionNoise::Normal {
            mean: vec![0.0; act_dim],
            sigma: vec![sigma; act_dim],
        }
    }

    /// `OrnsteinUhlenbeckActionNoise` with SB3's defaults (theta 0.15, dt 1e-2, starting at
    /// 0) and the same `sigma` on each of `act_dim` dimensions, mean 0.
    pub fn ornstein_uhlenbeck(act_dim: usize, sigma: f64) -> Self {
        ActionNoise::OrnsteinUhlenbeck {
            mean: vec![0.0; act_dim],
            sigma: vec![sigma; act_dim],
            theta: 0.15,
            dt: 1e-2,
            initial_noise: None,
        }
    }

    /// The number of action dimensions.
    pub fn dim(&self) -> usize {
        match self {
            ActionNoise::Normal { mean, .. } | ActionNoise::OrnsteinUhlenbeck { mean, .. } => {
                mean.len()
            }
        }
    }

    /// Checks the description against `act_dim`, naming the first bad value.
    pub fn validate(&self, act_dim: usize) -> Result<()> {
        let bad = |m: String| Err(AlgoError::InvalidArgument(format!("action noise: {m}")));
        let (mean, sigma) = match self {
            ActionNoise::Normal { mean, sigma } => (mean, sigma),
            ActionNoise::OrnsteinUhlenbeck {
                mean,
                sigma,
                theta,
                dt,
                initial_noise,
            } => {
                if !(theta.is_finite() && *theta >= 0.0 && dt.is_finite() && *dt > 0.0) {
                    return bad(format!("theta {theta} and dt {dt} must be finite, dt > 0"));
                }
                if let Some(init) = initial_noise {
                    if init.len() != act_dim || init.iter().any(|v| !v.is_finite()) {
                        return bad(format!(
                            "initial_noise needs {act_dim} finite values, got {init:?}"
                        ));
                    }
                }
                (mean, sigma)
            }
        };
        if mean.len() != act_dim || sigma.len() != act_dim {
            return bad(format!(
                "mean and sigma need {act_dim} values (one per action dimension), got {} and {}",
                mean.len(),
                sigma.len()
            ));
        }
        if mean.iter().any(|v| !v.is_finite())
            || sigma.iter().any(|v| !(*v >= 0.0 && v.is_finite()))
        {
            return bad(format!(
                "mean must be finite and sigma finite and >= 0, got {mean:?} and {sigma:?}"
            ));
        }
        Ok(())
    }

    /// The state of `n_envs` fresh copies.
    pub fn new_state(&self, n_envs: usize) -> NoiseState {
        let mut s = NoiseState {
            prev: vec![0.0; n_envs * self.dim()],
        };
        for env in 0..n_envs {
            self.reset(&mut s, env);
        }
        s
    }

    /// Resets environment `env`'s copy (SB3's `reset()`: the OU process returns to its initial
    /// value; the normal noise has no state).
    pub fn reset(&self, state: &mut NoiseState, env: usize) {
        let d = self.dim();
        let Some(row) = state.prev.get_mut(env * d..(env + 1) * d) else {
            return;
        };
        match self {
            ActionNoise::Normal { .. } => row.fill(0.0),
            ActionNoise::OrnsteinUhlenbeck { initial_noise, .. } => match initial_noise {
                Some(init) => row.copy_from_slice(init),
                None => row.fill(0.0),
            },
        }
    }

    /// Draws one noise vector per environment into `out` (`[n_envs, dim]` row-major, as f32
    /// like SB3's `astype(float32)`), advancing each environment's state.
    pub fn sample(&self, state: &mut NoiseState, rng: &mut dyn RngCore, out: &mut [f32]) {
        let d = self.dim().max(1);
        for (row, prev) in out.chunks_exact_mut(d).zip(state.prev.chunks_exact_mut(d)) {
            match self {
                ActionNoise::Normal { mean, sigma } => {
                    for ((o, &m), &s) in row.iter_mut().zip(mean).zip(sigma) {
                        let z: f64 = rng.sample(StandardNormal);
                        *o = (m + s * z) as f32;
                    }
                }
                ActionNoise::OrnsteinUhlenbeck {
                    mean,
                    sigma,
                    theta,
                    dt,
                    ..
                } => {
                    for (((o, p), &m), &s) in
                        row.iter_mut().zip(prev.iter_mut()).zip(mean).zip(sigma)
                    {
                        let z: f64 = rng.sample(StandardNormal);
                        let x = *p + theta * (m - *p) * dt + s * dt.sqrt() * z;
                        *p = x;
                        *o = x as f32;
                    }
                }
            }
        }
    }
}

/// SB3's `np.clip(scaled_action + noise, -1, 1)` in float32, in place.
pub fn add_clipped(scaled_actions: &mut [f32], noise: &[f32]) {
    for (a, &z) in scaled_actions.iter_mut().zip(noise) {
        *a = (*a + z).clamp(-1.0, 1.0);
    }
}

/// Per-environment state of an [`ActionNoise`] (`[n_envs, dim]`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NoiseState {
    /// The process's last values (zeros for the normal noise).
    pub prev: Vec<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn ou_reverts_and_resets_per_env() {
        let noise = ActionNoise::OrnsteinUhlenbeck {
            mean: vec![1.0],
            sigma: vec![0.0],
            theta: 0.5,
            dt: 1.0,
            initial_noise: Some(vec![3.0]),
        };
        noise.validate(1).unwrap();
        let mut state = noise.new_state(2);
        let mut rng = StdRng::seed_from_u64(0);
        let mut out = [0f32; 2];
        noise.sample(&mut state, &mut rng, &mut out);
        assert_eq!(out, [2.0, 2.0]);
        noise.sample(&mut state, &mut rng, &mut out);
        assert_eq!(out, [1.5, 1.5]);
        noise.reset(&mut state, 1);
        noise.sample(&mut state, &mut rng, &mut out);
        assert_eq!(out, [1.25, 2.0]);
    }

    #[test]
    fn normal_noise_is_seeded_and_validated() {
        let noise = ActionNoise::normal(2, 0.1);
        let mut a = [0f32; 4];
        let mut b = [0f32; 4];
        let mut s = noise.new_state(2);
        noise.sample(&mut s, &mut StdRng::seed_from_u64(7), &mut a);
        noise.sample(&mut s, &mut StdRng::seed_from_u64(7), &mut b);
        assert_eq!(a, b);
        assert!(a.iter().all(|v| v.abs() < 1.0));
        assert!(noise.validate(3).is_err());
        assert!(ActionNoise::normal(2, f64::NAN).validate(2).is_err());
        assert!(ActionNoise::normal(2, -1.0).validate(2).is_err());
    }
}
