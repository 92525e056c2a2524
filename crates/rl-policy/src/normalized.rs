//! Acting on raw observations with a model trained under a `VecNormalize`.
//!
//! A policy trained on normalized observations must see them normalized the same way when it
//! is evaluated or played, with the statistics frozen (rl-zoo loads `vecnormalize.pkl` with
//! `training=False`; SB3's `EvalCallback` calls `sync_envs_normalization`). Wrapping the
//! evaluation environment in a second `VecNormalize` works for vectors; [`NormalizedPolicy`]
//! does the same for anything that takes a [`Policy`] — a single [`rl_env::Env`] played by
//! `evaluate_policy`, a rendering loop, or host arrays — by normalizing each observation with
//! a [`VecNormalizeSnapshot`] before the wrapped policy sees it. The arithmetic is
//! `VecNormalize`'s own ([`VecNormalizeSnapshot::normalize_obs_into`]), so a model acts
//! bit for bit as it did on the training vector's observations.

use crate::error::{PolicyError, Result};
use crate::policy::Policy;
use candle_core::Tensor;
use rand::RngCore;
use rl_env::VecNormalizeSnapshot;
use std::ops::Deref;

/// A [`Policy`] that normalizes observations with frozen `VecNormalize` statistics before
/// the policy it wraps acts on them. It holds the policy through any pointer to one: a
/// reference (`NormalizedPolicy::new(&policy, stats)`), a `Box<dyn Policy>`, an `Arc`.
///
/// ```
/// use candle_core::Device;
/// use rand::{rngs::StdRng, SeedableRng};
/// use rl_env::{Space, SyncVecEnv, VecEnv, VecNormalize, VecNormalizeConfig, AutoresetMode};
/// use rl_policy::{MlpPolicy, MlpPolicyConfig, NormalizedPolicy, Policy};
///
/// let mut venv = VecNormalize::new(
///     SyncVecEnv::make("CartPole-v1", 2, AutoresetMode::SameStep)?,
///     VecNormalizeConfig::default(),
/// )?;
/// venv.reset(Some(0))?;
/// let policy = MlpPolicy::new(
///     venv.observation_space(),
///     venv.action_space(),
///     MlpPolicyConfig::default(),
///     0,
///     &Device::Cpu,
/// )?;
/// let stats = venv.normalization().expect("a VecNormalize normalizes");
/// let normalized = NormalizedPolicy::new(&policy, stats);
/// // Raw observations in, the same actions as the policy takes on the normalized ones.
/// let mut rng = StdRng::seed_from_u64(0);
/// let a = normalized.predict(venv.original_observations(), 2, true, &mut rng)?;
/// let b = policy.predict(venv.observations(), 2, true, &mut rng)?;
/// assert_eq!(a.to_vec1::<u32>()?, b.to_vec1::<u32>()?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct NormalizedPolicy<R> {
    policy: R,
    stats: VecNormalizeSnapshot,
}

impl<R> NormalizedPolicy<R>
where
    R: Deref,
    R::Target: Policy,
{
    /// Wraps `policy`; observations are normalized with `stats` (which are never updated).
    pub fn new(policy: R, stats: VecNormalizeSnapshot) -> Self {
        NormalizedPolicy { policy, stats }
    }

    /// The statistics and settings observations are normalized with.
    pub fn stats(&self) -> &VecNormalizeSnapshot {
        &self.stats
    }

    /// The wrapped policy.
    pub fn inner(&self) -> &R::Target {
        &self.policy
    }

    /// Unwraps the policy.
    pub fn into_inner(self) -> R {
        self.policy
    }

    fn normalized(&self, obs: &[f32]) -> Result<Vec<f32>> {
        let mut out = vec![0.0f32; obs.len()];
        self.stats
            .normalize_obs_into(obs, &mut out)
            .map_err(PolicyError::from)?;
        Ok(out)
    }
}

impl<R> Policy for NormalizedPolicy<R>
where
    R: Deref,
    R::Target: Policy,
{
    fn act(&self, obs: &Tensor, deterministic: bool, rng: &mut dyn RngCore) -> Result<Tensor> {
        let host = obs
            .flatten_all()?
            .to_dtype(candle_core::DType::F32)?
            .to_vec1::<f32>()?;
        let normalized = Tensor::from_vec(self.normalized(&host)?, obs.shape(), obs.device())?;
        self.policy.act(&normalized, deterministic, rng)
    }

    fn predict(
        &self,
        obs: &[f32],
        batch: usize,
        deterministic: bool,
        rng: &mut dyn RngCore,
    ) -> Result<Tensor> {
        if batch == 0 || !obs.len().is_multiple_of(batch) {
            return Err(PolicyError::Shape {
                what: "host observations",
                expected: format!("a multiple of {batch} values (one row per observation)"),
                actual: format!("{} values", obs.len()),
            });
        }
        self.policy
            .predict(&self.normalized(obs)?, batch, deterministic, rng)
    }
}
