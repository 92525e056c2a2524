//! One SAC gradient step as a public function ([`sac_update`]) over any [`GaussianActor`] and
//! [`Critic`], with the noise of both reparameterized samples passed in, so the SB3 parity test
//! can feed SB3's recorded draws and a user's own loop can drive it.
//!
//! With gSDE the noise is one exploration matrix per step, not per-sample draws: SB3's
//! `SAC.train` calls `actor.reset_noise()` before each gradient step ("`log_std` may have
//! changed"), and both samples of the step (for `s` and `s'`) use that matrix, `eps * std`
//! with `std` from the actor's current `log_std`, so the actor loss differentiates through it.

use crate::critic::ContinuousBatch;
use crate::critic::{critic_loss, finite_scalar, host_column, min_over_heads, td_targets};
use crate::error::{AlgoError, Result};
use crate::optim::{Adam, Optimizer};
use candle_core::{DType, Tensor, Var};
use rl_policy::{Critic, GaussianActor, SquashedDiagGaussian};

/// The entropy coefficient α of SAC: learned (SB3's `ent_coef="auto"`: `log α` trained by its
/// own Adam towards `target_entropy`) or fixed.
pub enum EntCoefState {
    /// `log α` and its optimizer.
    Learned {
        /// `log α`, shape `[1]`.
        log_ent_coef: Var,
        /// Adam over `log_ent_coef` (torch's defaults, the actor's learning rate).
        optimizer: Adam,
        /// The entropy target (SB3: `-dim(A)` for `"auto"`).
        target_entropy: f64,
    },
    /// A constant α.
    Fixed(f64),
}

impl std::fmt::Debug for EntCoefState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EntCoefState::Learned { target_entropy, .. } => f
                .debug_struct("Learned")
                .field("target_entropy", target_entropy)
                .finish_non_exhaustive(),
            EntCoefState::Fixed(v) => f.debug_tuple("Fixed").field(v).finish(),
        }
    }
}

impl EntCoefState {
    /// A learned coefficient starting at `init` (SB3: `log(ones(1) * init)`) on `device`, with
    /// Adam at `learning_rate` (eps 1e-8).
    pub fn learned(
        init: f64,
        target_entropy: f64,
        learning_rate: f64,
        device: &candle_core::Device,
    ) -> Result<Self> {
        if !(init > 0.0 && init.is_finite() && target_entropy.is_finite()) {
            return Err(AlgoError::InvalidArgument(format!(
                "the entropy coefficient needs init > 0 and a finite target entropy, got {init} \
                 and {target_entropy}"
            )));
        }
        let log_ent_coef = Var::from_vec(vec![(init as f32).ln()], 1, device)?;
        let optimizer = Adam::new(
            vec![("log_ent_coef".into(), log_ent_coef.clone())],
            learning_rate,
            1e-8,
        )?;
        Ok(EntCoefState::Learned {
            log_ent_coef,
            optimizer,
            target_entropy,
        })
    }

    /// The current α (`exp(log α)` in float32 when learned).
    pub fn value(&self) -> Result<f32> {
        Ok(match self {
            EntCoefState::Learned { log_ent_coef, .. } => log_ent_coef
                .as_tensor()
                .exp()?
                .flatten_all()?
                .to_vec1::<f32>()?[0],
            EntCoefState::Fixed(v) => *v as f32,
        })
    }
}

/// The standard-normal noise of a SAC step's two reparameterized samples, each
/// `[B, act_dim]`: for the batch's observations (the actor loss and α's loss), then for its
/// next observations (the targets).
#[derive(Clone, Copy, Debug)]
pub struct SacNoise<'a> {
    /// Noise for `π(·|s)`.
    pub actions: &'a Tensor,
    /// Noise for `π(·|s')`.
    pub next_actions: &'a Tensor,
}

/// The noise of one SAC gradient step: per-sample draws for the squashed diagonal Gaussian,
/// or gSDE's exploration-matrix draws.
#[derive(Clone, Copy, Debug)]
pub enum SacStepNoise<'a> {
    /// Standard-normal draws per sample (actors without gSDE).
    Squashed(SacNoise<'a>),
    /// gSDE: the standard-normal draws `[latent, act_dim]` of the step's exploration matrix
    /// (the first matrix SB3's `reset_noise()` samples), shared by both samples.
    Sde(&'a Tensor),
}

impl<'a> From<SacNoise<'a>> for SacStepNoise<'a> {
    fn from(n: SacNoise<'a>) -> Self {
        SacStepNoise::Squashed(n)
    }
}

/// Everything one SAC gradient step computed.
#[derive(Clone, Debug, PartialEq)]
pub struct SacStats {
    /// α used in this step (before α's own update).
    pub ent_coef: f64,
    /// α's loss, when α is learned.
    pub ent_coef_loss: Option<f64>,
    /// The critics' loss `0.5 * sum_i mse(Q_i, target)`.
    pub critic_loss: f64,
    /// The actor's loss `mean(α log π(a|s) - min_i Q_i(s, a))`.
    pub actor_loss: f64,
    /// The TD targets `[B]`.
    pub target_q: Vec<f32>,
    /// Each critic head's `Q_i(s, a)` before the critics' step, `[n_critics][B]`.
    pub current_q: Vec<Vec<f32>>,
    /// `log π(a|s)` of the actor's sample for the batch's observations `[B]`.
    pub log_prob: Vec<f32>,
}

/// One SAC gradient step in SB3's order: the actor's sample for `s` and its log-probability;
/// α's loss and step (when learned); the targets `r + (1 - done) γ (min_i Q'_i(s', a') - α log
/// π(a'|s'))` with `a'` sampled for `s'`; the critics' loss and step; the actor's loss against
/// the *updated* critics and its step. The target critics' Polyak update is separate
/// ([`crate::dqn::polyak_update`]). A non-finite loss leaves the step's remaining updates
/// undone and returns [`AlgoError::Diverged`] naming `iteration`. `noise` is a [`SacNoise`]
/// for actors without gSDE, [`SacStepNoise::Sde`] for gSDE actors (a mismatch is an error).
#[allow(clippy::too_many_arguments)]
pub fn sac_update<'n, A, C>(
    actor: &A,
    critic: &C,
    critic_target: &C,
    actor_optimizer: &mut dyn Optimizer,
    critic_optimizer: &mut dyn Optimizer,
    ent_coef: &mut EntCoefState,
    batch: &ContinuousBatch<'_>,
    noise: impl Into<SacStepNoise<'n>>,
    gamma: f64,
    iteration: u64,
) -> Result<SacStats>
where
    A: GaussianActor + ?Sized,
    C: Critic + ?Sized,
{
    let b = batch.checked_len()?;
    let noise = noise.into();
    if actor.uses_sde() != matches!(noise, SacStepNoise::Sde(_)) {
        return Err(AlgoError::InvalidArgument(format!(
            "SAC step: the actor {} gSDE but the noise is for {}",
            if actor.uses_sde() {
                "uses"
            } else {
                "does not use"
            },
            if matches!(noise, SacStepNoise::Sde(_)) {
                "gSDE"
            } else {
                "a squashed diagonal Gaussian"
            }
        )));
    }
    // `(actions, log_prob)` of the actor for `obs`, with the step's noise for `s` or `s'`.
    let sample = |obs: &Tensor, next: bool| -> Result<(Tensor, Tensor)> {
        Ok(match noise {
            SacStepNoise::Squashed(n) => {
                let (mean, log_std) = actor.mean_log_std(obs)?;
                if next {
                    SquashedDiagGaussian::new(mean.detach(), log_std.detach())?
                        .rsample_with_noise(n.next_actions)?
                } else {
                    SquashedDiagGaussian::new(mean, log_std)?.rsample_with_noise(n.actions)?
                }
            }
            SacStepNoise::Sde(eps) => {
                let (a, lp) = actor.sde_dist(obs)?.rsample_with_eps(eps)?;
                if next {
                    (a.detach(), lp.detach())
                } else {
                    (a, lp)
                }
            }
        })
    };
    let (actions_pi, log_prob) = sample(batch.observations, false)?;
    let log_prob = log_prob.reshape((b, 1))?;
    let log_prob_host = host_column(&log_prob, b, "log-probabilities")?;

    // α: its value for this step, then its own update.
    let alpha = ent_coef.value()?;
    let ent_coef_loss = match ent_coef {
        EntCoefState::Learned {
            log_ent_coef,
            optimizer,
            target_entropy,
        } => {
            // -(log α * (log π + target).detach()).mean()
            let shifted = log_prob.detach().affine(1.0, *target_entropy)?;
            let loss = log_ent_coef
                .as_tensor()
                .reshape((1, 1))?
                .broadcast_mul(&shifted)?
                .mean_all()?
                .neg()?;
            let value = finite_scalar(&loss, "the entropy coefficient loss", iteration)?;
            let grads = loss.backward()?;
            optimizer.step(&grads)?;
            Some(value)
        }
        EntCoefState::Fixed(_) => None,
    };

    // Targets, without gradients.
    let (next_actions, next_log_prob) = sample(batch.next_observations, true)?;
    let next_heads =
        critic_target.q_values_frozen(batch.next_observations, &next_actions.detach())?;
    let next_min = host_column(&min_over_heads(&next_heads)?, b, "target Q-values")?;
    let next_log_prob = host_column(&next_log_prob, b, "next log-probabilities")?;
    let next_q: Vec<f32> = next_min
        .iter()
        .zip(&next_log_prob)
        .map(|(&q, &lp)| q - alpha * lp)
        .collect();
    let target_q = td_targets(batch, &next_q, gamma);

    // Critics.
    let (loss, current_q) = critic_loss(critic, batch, &target_q, 0.5)?;
    let critic_loss_value = finite_scalar(&loss, "the critic loss", iteration)?;
    let grads = loss.backward()?;
    critic_optimizer.step(&grads)?;

    // Actor, against the updated critics.
    let heads = critic.q_values_frozen(batch.observations, &actions_pi)?;
    let min_q = min_over_heads(&heads)?.reshape((b, 1))?;
    let actor_loss = log_prob
        .affine(f64::from(alpha), 0.0)?
        .sub(&min_q.to_dtype(DType::F32)?)?
        .mean_all()?;
    let actor_loss_value = finite_scalar(&actor_loss, "the actor loss", iteration)?;
    let grads = actor_loss.backward()?;
    actor_optimizer.step(&grads)?;

    Ok(SacStats {
        ent_coef: f64::from(alpha),
        ent_coef_loss,
        critic_loss: critic_loss_value,
        actor_loss: actor_loss_value,
        target_q,
        current_q,
        log_prob: log_prob_host,
    })
}
