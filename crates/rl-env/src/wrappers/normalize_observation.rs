//! Observation normalization with running statistics (SB3 `VecNormalize`, `norm_obs=True`).

use super::running_mean_std::RunningMeanStd;
use crate::env::{check_obs_buffer, Action, Env, Info, StepOutcome};
use crate::error::{EnvError, Result};
use crate::seeding::Seed;
use crate::space::{BoxSpace, Space};

/// Settings of [`NormalizeObservation`]; the defaults are SB3's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NormalizeObservationConfig {
    /// Normalized observations are clipped to `[-clip_obs, clip_obs]` (default 10; may be
    /// infinite).
    pub clip_obs: f64,
    /// Added to the variance before the square root (default `1e-8`).
    pub epsilon: f64,
}

impl Default for NormalizeObservationConfig {
    fn default() -> Self {
        NormalizeObservationConfig {
            clip_obs: 10.0,
            epsilon: 1e-8,
        }
    }
}

/// Normalizes observations with a running mean and variance, as SB3's `VecNormalize` does for
/// one environment: in training mode every observation (of `reset` and of `step`) first updates
/// the statistics, then every observation is replaced by
/// `clip((o - mean) / sqrt(var + epsilon), ±clip_obs)`, computed in `f64` and cast to `f32`.
///
/// [`NormalizeObservation::set_training`]`(false)` freezes the statistics for evaluation;
/// [`NormalizeObservation::obs_rms`] / [`NormalizeObservation::set_obs_rms`] save and restore
/// them. The observation space becomes `Box(-clip_obs, clip_obs)` of the same shape.
///
/// Unlike `VecNormalize` over an auto-resetting vector, a single environment also shows the
/// terminal observation of each episode, so it enters the statistics as well.
/// A non-finite observation from the wrapped environment is an error.
#[derive(Clone, Debug)]
pub struct NormalizeObservation<E> {
    env: E,
    config: NormalizeObservationConfig,
    obs_rms: RunningMeanStd,
    training: bool,
    raw_obs: Vec<f32>,
    observation_space: Space,
}

impl<E: Env> NormalizeObservation<E> {
    /// Wraps `env` with SB3's defaults (clip 10, epsilon `1e-8`).
    pub fn new(env: E) -> Result<Self> {
        Self::with_config(env, NormalizeObservationConfig::default())
    }

    /// Wraps `env`, whose observation space must be a `Box`; `clip_obs` must be positive and
    /// `epsilon` positive and finite.
    pub fn with_config(env: E, config: NormalizeObservationConfig) -> Result<Self> {
        let shape = match env.observation_space() {
            Space::Box(b) => b.shape().to_vec(),
            other => {
                return Err(EnvError::InvalidArgument(format!(
                    "NormalizeObservation needs a Box observation space, got {other}"
                )))
            }
        };
        check_config(config.clip_obs, config.epsilon, "clip_obs")?;
        let clip = config.clip_obs as f32;
        let observation_space = Space::Box(BoxSpace::uniform(-clip, clip, shape)?);
        let dim = observation_space.flat_dim();
        Ok(NormalizeObservation {
            env,
            config,
            obs_rms: RunningMeanStd::new(dim),
            training: true,
            raw_obs: vec![0.0; dim],
            observation_space,
        })
    }

    /// The settings.
    pub fn config(&self) -> &NormalizeObservationConfig {
        &self.config
    }

    /// Whether observations update the statistics.
    pub fn training(&self) -> bool {
        self.training
    }

    /// Turns updating the statistics on (training) or off (evaluation).
    pub fn set_training(&mut self, training: bool) {
        self.training = training;
    }

    /// The running statistics of the raw observations.
    pub fn obs_rms(&self) -> &RunningMeanStd {
        &self.obs_rms
    }

    /// Replaces the statistics (e.g. restored from a checkpoint); their dimension must be the
    /// observation's.
    pub fn set_obs_rms(&mut self, obs_rms: RunningMeanStd) -> Result<()> {
        if obs_rms.dim() != self.raw_obs.len() {
            return Err(EnvError::InvalidArgument(format!(
                "NormalizeObservation statistics have dimension {} but observations have {}",
                obs_rms.dim(),
                self.raw_obs.len()
            )));
        }
        self.obs_rms = obs_rms;
        Ok(())
    }

    /// The last observation before normalization (`VecNormalize.get_original_obs`).
    pub fn raw_obs(&self) -> &[f32] {
        &self.raw_obs
    }

    /// Normalizes `obs` in place with the current statistics, without updating them.
    pub fn normalize_in_place(&self, obs: &mut [f32]) -> Result<()> {
        check_obs_buffer(&self.observation_space, obs)?;
        check_finite_obs(obs)?;
        self.normalize_checked(obs);
        Ok(())
    }

    /// The normalization proper, for a buffer of the right length with finite values.
    fn normalize_checked(&self, obs: &mut [f32]) {
        let clip = self.config.clip_obs;
        let eps = self.config.epsilon;
        let stats = self.obs_rms.mean().iter().zip(self.obs_rms.var());
        for (o, (mean, var)) in obs.iter_mut().zip(stats) {
            *o = ((f64::from(*o) - mean) / (var + eps).sqrt()).clamp(-clip, clip) as f32;
        }
    }

    /// The wrapped environment.
    pub fn inner(&self) -> &E {
        &self.env
    }

    /// The wrapped environment, mutably.
    pub fn inner_mut(&mut self) -> &mut E {
        &mut self.env
    }

    /// Unwraps.
    pub fn into_inner(self) -> E {
        self.env
    }

    fn process(&mut self, obs: &mut [f32]) -> Result<()> {
        check_finite_obs(obs)?;
        self.raw_obs.copy_from_slice(obs);
        if self.training {
            self.obs_rms.update_one(obs)?;
        }
        self.normalize_checked(obs);
        Ok(())
    }
}

impl<E: Env> Env for NormalizeObservation<E> {
    fn observation_space(&self) -> &Space {
        &self.observation_space
    }

    fn action_space(&self) -> &Space {
        self.env.action_space()
    }

    fn reset_into(&mut self, seed: Option<&Seed>, obs: &mut [f32]) -> Result<Info> {
        check_obs_buffer(&self.observation_space, obs)?;
        let info = self.env.reset_into(seed, obs)?;
        self.process(obs)?;
        Ok(info)
    }

    fn step_into(&mut self, action: Action<'_>, obs: &mut [f32]) -> Result<StepOutcome> {
        check_obs_buffer(&self.observation_space, obs)?;
        let out = self.env.step_into(action, obs)?;
        self.process(obs)?;
        Ok(out)
    }

    fn id(&self) -> &str {
        self.env.id()
    }
}

/// Checks a clip bound (positive, possibly infinite) and an epsilon (positive, finite).
pub(super) fn check_config(clip: f64, epsilon: f64, clip_name: &str) -> Result<()> {
    if clip.is_nan() || clip <= 0.0 {
        return Err(EnvError::InvalidArgument(format!(
            "{clip_name} must be positive, got {clip}"
        )));
    }
    if !(epsilon.is_finite() && epsilon > 0.0) {
        return Err(EnvError::InvalidArgument(format!(
            "epsilon must be positive and finite, got {epsilon}"
        )));
    }
    Ok(())
}

fn check_finite_obs(obs: &[f32]) -> Result<()> {
    match obs.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        Some((i, v)) => Err(EnvError::Other(format!(
            "NormalizeObservation got a non-finite observation: component {i} is {v}"
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wrappers::test_support::Scripted;

    #[test]
    fn normalizes_with_the_statistics_updated_by_the_same_observation() {
        let mut env = NormalizeObservation::new(Scripted::new(vec![4.0, -2.0], 100)).unwrap();
        let mut obs = [0.0f32; 2];
        let mut expected = RunningMeanStd::new(2);
        env.reset_into(None, &mut obs).unwrap();
        expected.update_one(&[0.0f32, 0.0]).unwrap();
        assert_eq!(env.obs_rms(), &expected);
        for t in 1..=6 {
            env.step_into(Action::Discrete(0), &mut obs).unwrap();
            let raw = [t as f32, if t % 2 == 1 { 4.0 } else { -2.0 }];
            assert_eq!(env.raw_obs(), &raw);
            expected.update_one(&raw).unwrap();
            assert_eq!(env.obs_rms(), &expected);
            for j in 0..2 {
                let (m, v) = (expected.mean()[j], expected.var()[j]);
                let want = ((raw[j] as f64 - m) / (v + 1e-8).sqrt()).clamp(-10.0, 10.0) as f32;
                assert_eq!(obs[j].to_bits(), want.to_bits(), "t={t} j={j}");
            }
        }
    }

    #[test]
    fn first_reset_clips_and_frozen_stats_do_not_move() {
        let config = NormalizeObservationConfig {
            clip_obs: 0.5,
            epsilon: 1e-8,
        };
        let mut env =
            NormalizeObservation::with_config(Scripted::new(vec![3.0], 100), config).unwrap();
        assert_eq!(
            env.observation_space().as_box().unwrap().high(),
            &[0.5, 0.5]
        );
        let mut obs = [0.0f32; 2];
        env.reset_into(None, &mut obs).unwrap();
        // Large values saturate at the clip bound.
        env.step_into(Action::Discrete(0), &mut obs).unwrap();
        assert_eq!(obs, [0.5, 0.5]);

        env.set_training(false);
        let frozen = env.obs_rms().clone();
        for _ in 0..5 {
            env.step_into(Action::Discrete(0), &mut obs).unwrap();
        }
        assert_eq!(env.obs_rms(), &frozen);
        let mut again = env.raw_obs().to_vec();
        env.normalize_in_place(&mut again).unwrap();
        assert_eq!(again, obs);
    }

    #[test]
    fn rejects_bad_configuration_statistics_and_buffers() {
        let bad = |clip_obs, epsilon| {
            NormalizeObservation::with_config(
                Scripted::new(vec![1.0], 1),
                NormalizeObservationConfig { clip_obs, epsilon },
            )
            .is_err()
        };
        assert!(bad(0.0, 1e-8));
        assert!(bad(f64::NAN, 1e-8));
        assert!(bad(10.0, 0.0));
        assert!(bad(10.0, f64::INFINITY));
        assert!(!bad(f64::INFINITY, 1e-8));

        let mut env = NormalizeObservation::new(Scripted::new(vec![1.0], 1)).unwrap();
        assert!(env.set_obs_rms(RunningMeanStd::new(3)).is_err());
        assert!(env.set_obs_rms(RunningMeanStd::new(2)).is_ok());
        assert!(matches!(
            env.reset_into(None, &mut [0.0; 1]),
            Err(EnvError::ObservationBuffer { .. })
        ));

        let mut nan = NormalizeObservation::new(Scripted::new(vec![f64::NAN], 10)).unwrap();
        let mut obs = [0.0f32; 2];
        nan.reset_into(None, &mut obs).unwrap();
        let before = nan.obs_rms().clone();
        assert!(matches!(
            nan.step_into(Action::Discrete(0), &mut obs),
            Err(EnvError::Other(_))
        ));
        assert_eq!(nan.obs_rms(), &before);
    }
}
