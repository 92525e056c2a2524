//! Reward scaling by the running variance of the discounted return (SB3 `VecNormalize`,
//! `norm_reward=True`).

use super::normalize_observation::check_config;
use super::running_mean_std::RunningMeanStd;
use crate::env::{Action, Env, Info, StepOutcome};
use crate::error::{EnvError, Result};
use crate::seeding::Seed;
use crate::space::Space;

/// Settings of [`NormalizeReward`]; the defaults are SB3's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NormalizeRewardConfig {
    /// Discount of the running return (default 0.99), in `[0, 1]`.
    pub gamma: f64,
    /// Scaled rewards are clipped to `[-clip_reward, clip_reward]` (default 10; may be infinite).
    pub clip_reward: f64,
    /// Added to the variance before the square root (default `1e-8`).
    pub epsilon: f64,
}

impl Default for NormalizeRewardConfig {
    fn default() -> Self {
        NormalizeRewardConfig {
            gamma: 0.99,
            clip_reward: 10.0,
            epsilon: 1e-8,
        }
    }
}

/// Scales rewards as SB3's `VecNormalize` does for one environment: each step, in training mode,
/// `ret = ret * gamma + r` and the running variance of `ret` is updated; then the reward becomes
/// `clip(r / sqrt(var(ret) + epsilon), ±clip_reward)` (no mean is subtracted). `ret` restarts
/// at 0 on `reset` and after a step that ends the episode.
///
/// [`NormalizeReward::set_training`]`(false)` freezes the statistics (and the running return);
/// [`NormalizeReward::ret_rms`] / [`NormalizeReward::set_ret_rms`] save and restore them.
/// A non-finite reward from the wrapped environment is an error.
#[derive(Clone, Debug)]
pub struct NormalizeReward<E> {
    env: E,
    config: NormalizeRewardConfig,
    ret_rms: RunningMeanStd,
    ret: f64,
    training: bool,
    raw_reward: f64,
}

impl<E: Env> NormalizeReward<E> {
    /// Wraps `env` with SB3's defaults (gamma 0.99, clip 10, epsilon `1e-8`).
    pub fn new(env: E) -> Self {
        Self::build(env, NormalizeRewardConfig::default())
    }

    /// Wraps `env`; `gamma` must lie in `[0, 1]`, `clip_reward` be positive and `epsilon`
    /// positive and finite.
    pub fn with_config(env: E, config: NormalizeRewardConfig) -> Result<Self> {
        if !(0.0..=1.0).contains(&config.gamma) {
            return Err(EnvError::InvalidArgument(format!(
                "NormalizeReward gamma must lie in [0, 1], got {}",
                config.gamma
            )));
        }
        check_config(config.clip_reward, config.epsilon, "clip_reward")?;
        Ok(Self::build(env, config))
    }

    fn build(env: E, config: NormalizeRewardConfig) -> Self {
        NormalizeReward {
            env,
            config,
            ret_rms: RunningMeanStd::new(1),
            ret: 0.0,
            training: true,
            raw_reward: 0.0,
        }
    }

    /// The settings.
    pub fn config(&self) -> &NormalizeRewardConfig {
        &self.config
    }

    /// Whether rewards update the statistics.
    pub fn training(&self) -> bool {
        self.training
    }

    /// Turns updating the statistics on (training) or off (evaluation).
    pub fn set_training(&mut self, training: bool) {
        self.training = training;
    }

    /// The running statistics of the discounted return (dimension 1).
    pub fn ret_rms(&self) -> &RunningMeanStd {
        &self.ret_rms
    }

    /// Replaces the statistics (e.g. restored from a checkpoint); they must have dimension 1.
    pub fn set_ret_rms(&mut self, ret_rms: RunningMeanStd) -> Result<()> {
        if ret_rms.dim() != 1 {
            return Err(EnvError::InvalidArgument(format!(
                "NormalizeReward statistics must have dimension 1, got {}",
                ret_rms.dim()
            )));
        }
        self.ret_rms = ret_rms;
        Ok(())
    }

    /// The running discounted return of the current episode.
    pub fn discounted_return(&self) -> f64 {
        self.ret
    }

    /// The last reward before scaling (`VecNormalize.get_original_reward`).
    pub fn last_raw_reward(&self) -> f64 {
        self.raw_reward
    }

    /// Scales `reward` with the current statistics, without updating them.
    pub fn normalize(&self, reward: f64) -> f64 {
        let clip = self.config.clip_reward;
        (reward / (self.ret_rms.var()[0] + self.config.epsilon).sqrt()).clamp(-clip, clip)
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
}

impl<E: Env> Env for NormalizeReward<E> {
    fn observation_space(&self) -> &Space {
        self.env.observation_space()
    }

    fn action_space(&self) -> &Space {
        self.env.action_space()
    }

    fn reset_into(&mut self, seed: Option<&Seed>, obs: &mut [f32]) -> Result<Info> {
        let info = self.env.reset_into(seed, obs)?;
        self.ret = 0.0;
        Ok(info)
    }

    fn step_into(&mut self, action: Action<'_>, obs: &mut [f32]) -> Result<StepOutcome> {
        let mut out = self.env.step_into(action, obs)?;
        let reward = out.reward;
        if !reward.is_finite() {
            return Err(EnvError::Other(format!(
                "NormalizeReward got a non-finite reward {reward} from {}",
                self.env.id()
            )));
        }
        if self.training {
            let ret = self.ret * self.config.gamma + reward;
            self.ret_rms.update_one(&[ret])?;
            self.ret = ret;
        }
        self.raw_reward = reward;
        out.reward = self.normalize(reward);
        if out.done() {
            self.ret = 0.0;
        }
        Ok(out)
    }

    fn id(&self) -> &str {
        self.env.id()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wrappers::test_support::Scripted;

    /// SB3's update of a one-element `RunningMeanStd` with one sample, spelled out.
    fn sb3_update(mean: &mut f64, var: &mut f64, count: &mut f64, x: f64) {
        let delta = x - *mean;
        let tot = *count + 1.0;
        let m2 = *var * *count + 0.0 + delta * delta * *count * 1.0 / tot;
        *mean += delta * 1.0 / tot;
        *var = m2 / tot;
        *count = tot;
    }

    #[test]
    fn scales_by_discounted_return_std_and_restarts_it_at_episode_end() {
        let rewards = [1.0, -2.0, 0.5];
        // Two-step episodes, so the return restarts every second step.
        let mut env = NormalizeReward::new(Scripted::new(rewards.to_vec(), 2));
        let mut obs = [0.0f32; 2];
        let (mut mean, mut var, mut count) = (0.0, 1.0, 1e-4);
        let mut ret = 0.0;
        let mut k = 0;
        for _episode in 0..4 {
            env.reset_into(None, &mut obs).unwrap();
            assert_eq!(env.discounted_return(), 0.0);
            for t in 0..2 {
                let r = rewards[k % 3];
                k += 1;
                ret = ret * 0.99 + r;
                sb3_update(&mut mean, &mut var, &mut count, ret);
                let out = env.step_into(Action::Discrete(0), &mut obs).unwrap();
                let want = (r / (var + 1e-8f64).sqrt()).clamp(-10.0, 10.0);
                assert_eq!(out.reward.to_bits(), want.to_bits());
                assert_eq!(env.last_raw_reward(), r);
                assert_eq!(env.ret_rms().var()[0].to_bits(), var.to_bits());
                assert_eq!(env.ret_rms().mean()[0].to_bits(), mean.to_bits());
                if t == 1 {
                    ret = 0.0;
                    assert_eq!(env.discounted_return(), 0.0);
                } else {
                    assert_eq!(env.discounted_return(), ret);
                }
            }
        }
        assert_eq!(env.ret_rms().count(), 1e-4 + 8.0);
    }

    #[test]
    fn frozen_statistics_scale_without_updating() {
        let mut env = NormalizeReward::new(Scripted::new(vec![2.0], 1000));
        let mut obs = [0.0f32; 2];
        env.reset_into(None, &mut obs).unwrap();
        for _ in 0..10 {
            env.step_into(Action::Discrete(0), &mut obs).unwrap();
        }
        env.set_training(false);
        let frozen = env.ret_rms().clone();
        let ret = env.discounted_return();
        let out = env.step_into(Action::Discrete(0), &mut obs).unwrap();
        assert_eq!(env.ret_rms(), &frozen);
        assert_eq!(env.discounted_return(), ret);
        let want = 2.0 / (frozen.var()[0] + 1e-8).sqrt();
        assert_eq!(out.reward, want.clamp(-10.0, 10.0));
    }

    #[test]
    fn clipping_and_bad_input() {
        let config = NormalizeRewardConfig {
            clip_reward: 0.25,
            ..Default::default()
        };
        let mut env =
            NormalizeReward::with_config(Scripted::new(vec![-100.0], 10), config).unwrap();
        let mut obs = [0.0f32; 2];
        env.reset_into(None, &mut obs).unwrap();
        assert_eq!(
            env.step_into(Action::Discrete(0), &mut obs).unwrap().reward,
            -0.25
        );

        let bad = |gamma, clip_reward, epsilon| {
            NormalizeReward::with_config(
                Scripted::new(vec![1.0], 1),
                NormalizeRewardConfig {
                    gamma,
                    clip_reward,
                    epsilon,
                },
            )
            .is_err()
        };
        assert!(bad(1.5, 10.0, 1e-8));
        assert!(bad(f64::NAN, 10.0, 1e-8));
        assert!(bad(0.99, -1.0, 1e-8));
        assert!(bad(0.99, 10.0, 0.0));
        assert!(!bad(1.0, f64::INFINITY, 1e-8));
        assert!(env.set_ret_rms(RunningMeanStd::new(2)).is_err());

        let mut nan = NormalizeReward::new(Scripted::new(vec![f64::INFINITY], 10));
        nan.reset_into(None, &mut obs).unwrap();
        let before = nan.ret_rms().clone();
        assert!(matches!(
            nan.step_into(Action::Discrete(0), &mut obs),
            Err(EnvError::Other(_))
        ));
        assert_eq!(nan.ret_rms(), &before);
    }
}
