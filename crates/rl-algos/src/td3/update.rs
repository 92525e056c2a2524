//! TD3's (and DDPG's) two update halves as public functions over any [`DeterministicActor`]
//! and [`Critic`]: [`td3_critic_update`] (target policy smoothing with the noise passed in,
//! clipped double-Q targets, the critics' step) and [`td3_actor_update`] (the deterministic
//! policy gradient through the first critic head).

use crate::critic::ContinuousBatch;
use crate::critic::{critic_loss, finite_scalar, host_column, min_over_heads, td_targets};
use crate::error::{AlgoError, Result};
use crate::optim::Optimizer;
use candle_core::Tensor;
use rl_policy::{Critic, DeterministicActor};

/// What the critics' half of a TD3 step computed.
#[derive(Clone, Debug, PartialEq)]
pub struct Td3CriticStats {
    /// The critics' loss `sum_i mse(Q_i, target)`.
    pub critic_loss: f64,
    /// The TD targets `[B]`.
    pub target_q: Vec<f32>,
    /// Each head's `Q_i(s, a)` before the step, `[n_critics][B]`.
    pub current_q: Vec<Vec<f32>>,
}

/// The critics' half of a TD3 step: `a' = clip(μ'(s') + clip(noise, -noise_clip, noise_clip),
/// -1, 1)` with `target_noise` `[B, act_dim]` drawn from `N(0, target_policy_noise)` (empty:
/// no smoothing, DDPG), targets `r + (1 - done) γ min_i Q'_i(s', a')`, the loss `sum_i
/// mse(Q_i(s, a), targets)` and one critic optimizer step.
#[allow(clippy::too_many_arguments)]
pub fn td3_critic_update<A, C>(
    actor_target: &A,
    critic: &C,
    critic_target: &C,
    critic_optimizer: &mut dyn Optimizer,
    batch: &ContinuousBatch<'_>,
    target_noise: &[f32],
    target_noise_clip: f64,
    gamma: f64,
    iteration: u64,
) -> Result<Td3CriticStats>
where
    A: DeterministicActor + ?Sized,
    C: Critic + ?Sized,
{
    let b = batch.checked_len()?;
    let mu = actor_target.actions(batch.next_observations)?.detach();
    let mut next: Vec<f32> = mu.flatten_all()?.to_vec1()?;
    if !target_noise.is_empty() {
        if target_noise.len() != next.len() {
            return Err(AlgoError::InvalidArgument(format!(
                "target policy noise: {} values for actions of shape {:?}",
                target_noise.len(),
                mu.dims()
            )));
        }
        let clip = target_noise_clip as f32;
        for (a, &z) in next.iter_mut().zip(target_noise) {
            *a = (*a + z.clamp(-clip, clip)).clamp(-1.0, 1.0);
        }
    } else {
        for a in next.iter_mut() {
            *a = a.clamp(-1.0, 1.0);
        }
    }
    let next_actions = Tensor::from_vec(next, mu.dims(), mu.device())?;
    let heads = critic_target.q_values_frozen(batch.next_observations, &next_actions)?;
    let next_q = host_column(&min_over_heads(&heads)?, b, "target Q-values")?;
    let target_q = td_targets(batch, &next_q, gamma);
    let (loss, current_q) = critic_loss(critic, batch, &target_q, 1.0)?;
    let critic_loss = finite_scalar(&loss, "the critic loss", iteration)?;
    let grads = loss.backward()?;
    critic_optimizer.step(&grads)?;
    Ok(Td3CriticStats {
        critic_loss,
        target_q,
        current_q,
    })
}

/// The actor's half of a TD3 step: the loss `-mean(Q_1(s, μ(s)))` and one actor optimizer
/// step; returns the loss.
pub fn td3_actor_update<A, C>(
    actor: &A,
    critic: &C,
    actor_optimizer: &mut dyn Optimizer,
    observations: &Tensor,
    iteration: u64,
) -> Result<f64>
where
    A: DeterministicActor + ?Sized,
    C: Critic + ?Sized,
{
    let actions = actor.actions(observations)?;
    let loss = critic
        .q1_frozen(observations, &actions)?
        .mean_all()?
        .neg()?;
    let value = finite_scalar(&loss, "the actor loss", iteration)?;
    let grads = loss.backward()?;
    actor_optimizer.step(&grads)?;
    Ok(value)
}
