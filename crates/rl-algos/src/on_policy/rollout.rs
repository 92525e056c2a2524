//! Rollout collection (SB3's `collect_rollouts`).

use super::{OnPolicyAlgorithm, OnPolicyTrainer};
use crate::buffer::{bootstrap_truncated, Transition};
use crate::callbacks::Callback;
use crate::error::{AlgoError, Result};
use crate::logger::Logger;
use rl_env::VecEnv;
use rl_policy::ActorCritic;
use rl_tensor_bridge::copy_tensor_to_f32;

impl<P: ActorCritic, V: VecEnv, T: OnPolicyTrainer> OnPolicyAlgorithm<P, V, T> {
    /// Fills the rollout buffer (continuing a partly filled one) and computes returns and
    /// advantages; `false` when a callback stopped training.
    pub(super) fn collect_rollout(
        &mut self,
        callbacks: &mut [&mut dyn Callback],
        logger: &mut Logger,
    ) -> Result<bool> {
        while !self.buffer.is_full() {
            self.act_and_step()?;
            let mut keep_going = true;
            for cb in callbacks.iter_mut() {
                keep_going &= cb.on_step(&self.locals(true), logger)?;
            }
            if !keep_going {
                // SB3 returns before storing the step; the environments have moved on, so the
                // next rollout starts from their new observations and episode starts.
                self.finish_episodes(false);
                self.last_episode_starts
                    .copy_from_slice(&self.scratch.dones);
                self.pending_step = false;
                return Ok(false);
            }
            self.complete_step()?;
        }
        if let Some(engine) = &mut self.fast {
            engine.predict_values(self.env.observations(), &mut self.scratch.values)?;
        } else {
            let obs = self.obs_batcher.to_tensor(self.env.observations())?;
            let last_values = self.policy.predict_values(&obs)?;
            copy_tensor_to_f32(&last_values, &mut self.scratch.values)?;
        }
        self.buffer.compute_returns_and_advantage(
            &self.scratch.values,
            &self.last_episode_starts,
            self.settings.gamma,
            self.settings.gae_lambda,
        )?;
        for cb in callbacks.iter_mut() {
            cb.on_rollout_end(&self.locals(false), logger)?;
        }
        Ok(true)
    }

    /// Acts on the current observations, steps the environments and counts the steps; the
    /// step's outputs wait in the environments' buffers and the scratch buffers.
    fn act_and_step(&mut self) -> Result<()> {
        if self.settings.use_sde {
            self.resample_noise()?;
        }
        let s = &mut self.scratch;
        s.obs.copy_from_slice(self.env.observations());
        if let Some(engine) = &mut self.fast {
            engine.act(
                &s.obs,
                &mut self.run.rng,
                &mut s.policy_actions,
                &mut s.values,
                &mut s.log_probs,
            )?;
            self.actions.fill_from_policy_values(&s.policy_actions)?;
        } else {
            let obs = self.obs_batcher.to_tensor(&s.obs)?;
            let (dist, values) = self.policy.forward(&obs)?;
            let actions = dist.sample(&mut self.run.rng)?;
            let log_probs = dist.log_prob(&actions)?;
            copy_tensor_to_f32(&values, &mut s.values)?;
            copy_tensor_to_f32(&log_probs, &mut s.log_probs)?;
            self.actions.fill_from_policy(&actions)?;
        }
        s.policy_actions
            .copy_from_slice(self.actions.policy_actions());
        let env_actions = self.actions.as_vec_action();
        self.action_log.push(env_actions);
        self.env.step(env_actions)?;
        let buf = self.env.buffers();
        for (i, done) in s.dones.iter_mut().enumerate() {
            *done = buf.done(i);
        }
        // Counters restored from a checkpoint may be anything: they saturate, never wrap.
        self.run.num_timesteps = self.run.num_timesteps.saturating_add(s.dones.len() as u64);
        self.pending_step = true;
        Ok(())
    }

    /// gSDE: SB3's `reset_noise(n_envs)` calls of `collect_rollouts`, at the step about to be
    /// taken: one at the rollout start, and (also at the start) one every `sde_sample_freq`
    /// steps when that is positive.
    fn resample_noise(&mut self) -> Result<()> {
        let n_envs = self.scratch.dones.len();
        let draws = super::sde_draws_before_step(self.buffer.pos(), self.settings.sde_sample_freq);
        for _ in 0..draws {
            self.policy.reset_noise(n_envs, &mut self.run.rng)?;
        }
        Ok(())
    }

    /// Records and stores the step [`Self::act_and_step`] took (after the callbacks let
    /// training go on). A checkpoint written by a callback in between saves the pending step,
    /// and loading it completes the step here.
    pub(super) fn complete_step(&mut self) -> Result<()> {
        self.finish_episodes(true);
        self.store_step()?;
        self.pending_step = false;
        Ok(())
    }

    /// Adds this step's rewards to the running episodes and moves finished ones into the
    /// statistics window (SB3's `_update_info_buffer`, skipped with `record == false` as SB3
    /// skips it when a callback stops training).
    fn finish_episodes(&mut self, record: bool) {
        // Unscaled: under a VecNormalize the statistics stay in the environment's units.
        let rewards = self.env.unscaled_rewards();
        for (i, &done) in self.scratch.dones.iter().enumerate() {
            self.ep_returns[i] += rewards[i];
            self.ep_lengths[i] = self.ep_lengths[i].saturating_add(1);
            if done {
                if record {
                    self.episodes.push(self.ep_returns[i], self.ep_lengths[i]);
                }
                self.ep_returns[i] = 0.0;
                self.ep_lengths[i] = 0;
            }
        }
    }

    /// Bootstraps truncated episodes and stores the step in the rollout buffer.
    fn store_step(&mut self) -> Result<()> {
        let s = &mut self.scratch;
        let buf = self.env.buffers();
        let gamma = self.settings.gamma;
        for (i, r) in s.rewards.iter_mut().enumerate() {
            *r = buf.rewards()[i] as f32;
            // SB3's `info["TimeLimit.truncated"]`: truncated and not terminated.
            let timeout = buf.truncated()[i] && !buf.terminated()[i];
            if !timeout {
                continue;
            }
            let final_obs = buf.final_observation(i).ok_or_else(|| {
                AlgoError::InvalidArgument(format!(
                    "sub-environment {i} was truncated but the VecEnv kept no final observation"
                ))
            })?;
            // Batch 1, as SB3 evaluates each terminal observation on its own.
            let mut value = [0.0f32];
            if let Some(engine) = &mut self.fast {
                engine.predict_values(final_obs, &mut value)?;
            } else {
                let t = self.obs_batcher.one_to_tensor(final_obs)?.unsqueeze(0)?;
                let v = self.policy.predict_values(&t)?;
                copy_tensor_to_f32(&v, &mut value)?;
            }
            *r = bootstrap_truncated(*r, gamma, value[0]);
        }
        self.buffer.add(&Transition {
            observations: &s.obs,
            actions: &s.policy_actions,
            rewards: &s.rewards,
            episode_starts: &self.last_episode_starts,
            values: &s.values,
            log_probs: &s.log_probs,
        })?;
        self.last_episode_starts.copy_from_slice(&s.dones);
        Ok(())
    }
}
