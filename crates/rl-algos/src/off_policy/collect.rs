//! Collection (SB3's `OffPolicyAlgorithm.collect_rollouts` and `_store_transition`).

use super::{OffPolicyAlgorithm, OffPolicyTrainer, TrainFreq};
use crate::callbacks::Callback;
use crate::error::{AlgoError, Result};
use crate::logger::Logger;
use crate::replay::ReplayTransition;
use candle_core::Tensor;
use rand::Rng;
use rl_env::{Space, VecAction, VecEnv};
use rl_policy::continuous::{scale_action, unscale_action};

impl<V: VecEnv, T: OffPolicyTrainer> OffPolicyAlgorithm<V, T> {
    /// Whether the current round has collected what `train_freq` asks for.
    fn round_done(&self) -> bool {
        match self.settings.train_freq {
            TrainFreq::Steps(n) => self.collected_steps >= n,
            TrainFreq::Episodes(n) => self.collected_episodes >= n,
        }
    }

    /// Collects until `train_freq` is met (continuing a round a checkpoint interrupted);
    /// `false` when a callback stopped training.
    pub(super) fn collect_round(
        &mut self,
        callbacks: &mut [&mut dyn Callback],
        logger: &mut Logger,
    ) -> Result<bool> {
        while !self.round_done() {
            self.trainer.before_collect_step(
                self.collected_steps,
                self.env.num_envs(),
                &mut self.run.rng,
            )?;
            self.act_and_step()?;
            let mut keep_going = true;
            for cb in callbacks.iter_mut() {
                keep_going &= cb.on_step(&self.locals(true), logger)?;
            }
            if !keep_going {
                // SB3 returns before storing the step (and its next collection starts a new
                // round); the environments have moved on.
                self.finish_episodes(false);
                self.pending_step = false;
                self.collected_steps = 0;
                self.collected_episodes = 0;
                return Ok(false);
            }
            self.complete_step(logger)?;
        }
        Ok(true)
    }

    /// Chooses actions (uniform before `learning_starts`, the trainer's afterwards), steps
    /// the environments and counts the steps; the step's outputs wait in the environments'
    /// buffers and the scratch buffers.
    fn act_and_step(&mut self) -> Result<()> {
        let s = &mut self.scratch;
        s.obs.copy_from_slice(self.env.observations());
        let warm_up = self.run.num_timesteps < self.settings.learning_starts
            && !self.trainer.policy_at_warmup();
        if let Space::Box(space) = self.env.action_space() {
            // SB3's `_sample_action` for a Box space: the unscaled action (a uniform sample, or
            // the policy's prediction unscaled), scaled into [-1, 1] for the buffer, plus the
            // noise clipped to [-1, 1]; the environments get it unscaled again.
            let (low, high) = (space.low(), space.high());
            if warm_up {
                uniform_box_actions(
                    self.env.action_space(),
                    &mut s.env_actions,
                    &mut self.run.rng,
                )?;
                s.policy_actions.copy_from_slice(&s.env_actions);
            } else {
                let obs = self.obs_batcher.to_tensor(&s.obs)?;
                let scaled = self.trainer.predict(&obs, &mut self.run.rng)?;
                copy_scaled_actions(&scaled, &mut s.policy_actions, T::NAME)?;
                unscale_action(low, high, &mut s.policy_actions);
            }
            scale_action(low, high, &mut s.policy_actions);
            if let (Some(noise), Some(state)) =
                (self.trainer.action_noise(), self.noise_state.as_mut())
            {
                noise.sample(state, &mut self.run.rng, &mut s.noise);
                crate::noise::add_clipped(&mut s.policy_actions, &s.noise);
            }
            s.env_actions.copy_from_slice(&s.policy_actions);
            unscale_action(low, high, &mut s.env_actions);
            for row in s.env_actions.chunks_exact_mut(low.len().max(1)) {
                space.clip(row);
            }
            let env_actions = VecAction::Continuous(&s.env_actions);
            self.action_log.push(env_actions);
            self.env.step(env_actions)?;
        } else {
            let actions = if warm_up {
                let device = self.trainer.device();
                let idx =
                    random_actions(self.env.action_space(), &mut s.random, &mut self.run.rng)?;
                Tensor::from_slice(idx, idx.len(), device)?
            } else {
                let obs = self.obs_batcher.to_tensor(&s.obs)?;
                self.trainer.predict(&obs, &mut self.run.rng)?
            };
            self.actions.fill_from_policy(&actions)?;
            s.policy_actions
                .copy_from_slice(self.actions.policy_actions());
            let env_actions = self.actions.as_vec_action();
            self.action_log.push(env_actions);
            self.env.step(env_actions)?;
        }
        let buf = self.env.buffers();
        for (i, done) in s.dones.iter_mut().enumerate() {
            *done = buf.done(i);
        }
        // Counters restored from a checkpoint may be anything: they saturate, never wrap.
        self.run.num_timesteps = self.run.num_timesteps.saturating_add(s.dones.len() as u64);
        self.collected_steps = self.collected_steps.saturating_add(1);
        self.pending_step = true;
        Ok(())
    }

    /// Adds this step's rewards to the running episodes and moves finished ones into the
    /// statistics window (skipped with `record == false`, as SB3 skips `_update_info_buffer`
    /// when a callback stops training).
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

    /// Records and stores the step [`Self::act_and_step`] took, then the trainer's `on_step`
    /// and per-episode logging (after the callbacks let training go on). A checkpoint written
    /// by a callback in between saves the pending step, and loading completes it here.
    pub(super) fn complete_step(&mut self, logger: &mut Logger) -> Result<()> {
        self.finish_episodes(true);
        let s = &mut self.scratch;
        let buf = self.env.buffers();
        let d = self.buffer.obs_dim();
        s.next_obs.copy_from_slice(buf.observations());
        for i in 0..s.dones.len() {
            s.rewards[i] = buf.rewards()[i] as f32;
            // SB3's infos[i]["TimeLimit.truncated"]: truncated and not terminated.
            s.timeouts[i] = buf.truncated()[i] && !buf.terminated()[i];
            if s.dones[i] {
                if let Some(final_obs) = buf.final_observation(i) {
                    s.next_obs[i * d..(i + 1) * d].copy_from_slice(final_obs);
                }
            }
        }
        self.buffer.add(&ReplayTransition {
            observations: &s.obs,
            next_observations: &s.next_obs,
            actions: &s.policy_actions,
            rewards: &s.rewards,
            dones: &s.dones,
            timeouts: &s.timeouts,
        })?;
        self.pending_step = false;
        let n_envs = s.dones.len();
        self.trainer
            .on_step(self.run.progress_remaining(), n_envs, logger)?;
        for i in 0..n_envs {
            if !self.scratch.dones[i] {
                continue;
            }
            if let (Some(noise), Some(state)) =
                (self.trainer.action_noise(), self.noise_state.as_mut())
            {
                noise.reset(state, i);
            }
            self.collected_episodes = self.collected_episodes.saturating_add(1);
            self.episode_num = self.episode_num.saturating_add(1);
            if self.settings.log_interval > 0
                && self.episode_num.is_multiple_of(self.settings.log_interval)
            {
                self.dump_logs(logger);
            }
        }
        Ok(())
    }
}

/// Uniform action indices for a `Discrete` space in `out` (the space's `sample()`, shifted to
/// indices `0..n`).
fn random_actions<'a>(
    space: &Space,
    out: &'a mut [u32],
    rng: &mut dyn rand::RngCore,
) -> Result<&'a [u32]> {
    let n = match space {
        Space::Discrete { n, .. } => u32::try_from(*n).map_err(|_| {
            AlgoError::InvalidArgument(format!(
                "Discrete({n}) has more actions than this learner supports"
            ))
        })?,
        other => {
            return Err(AlgoError::InvalidArgument(format!(
                "random discrete actions for {other}"
            )))
        }
    };
    for a in out.iter_mut() {
        *a = rng.gen_range(0..n.max(1));
    }
    Ok(out)
}

/// Copies a trainer's scaled `Box` actions `[n_envs, act_dim]` to `out`, refusing a wrong
/// shape or a non-finite value.
fn copy_scaled_actions(t: &Tensor, out: &mut [f32], who: &str) -> Result<()> {
    let values: Vec<f32> = t
        .to_dtype(candle_core::DType::F32)?
        .flatten_all()?
        .to_vec1()?;
    if values.len() != out.len() {
        return Err(AlgoError::InvalidArgument(format!(
            "{who} predicted {} action values ({:?}), the environments need {}",
            values.len(),
            t.dims(),
            out.len()
        )));
    }
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(AlgoError::InvalidArgument(format!(
            "{who} predicted the non-finite action value {} (flat index {i})",
            values[i]
        )));
    }
    out.copy_from_slice(&values);
    Ok(())
}

/// Uniform actions in a bounded `Box` space's bounds, row after row into `out`.
fn uniform_box_actions(space: &Space, out: &mut [f32], rng: &mut dyn rand::RngCore) -> Result<()> {
    let Space::Box(b) = space else {
        return Ok(());
    };
    let (low, high) = (b.low(), b.high());
    if low.iter().chain(high).any(|v| !v.is_finite()) {
        return Err(AlgoError::InvalidArgument(format!(
            "uniform warm-up actions need a bounded Box action space, got {space}"
        )));
    }
    let d = low.len().max(1);
    for row in out.chunks_exact_mut(d) {
        for ((x, &lo), &hi) in row.iter_mut().zip(low).zip(high) {
            *x = lo + rng.gen::<f32>() * (hi - lo);
        }
    }
    Ok(())
}
