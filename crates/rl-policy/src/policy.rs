//! The policy traits: [`StochasticPolicy`] (acting and log-probabilities, enough for
//! REINFORCE), [`ActorCritic`] (adds a value head, what A2C trains) and [`Policy`] (acting).
//!
//! Algorithms are generic over these traits, so any candle-nn network a user writes trains
//! with them, not only [`crate::MlpPolicy`].

use crate::distributions::ActionDist;
use crate::error::{PolicyError, Result};
use crate::fast::MlpLayout;
use crate::sde::ExplorationNoise;
use candle_core::{Device, Tensor, Var};
use rand::RngCore;
use rl_env::VecAction;
use rl_tensor_bridge::ActionBuffer;

/// A policy that gives an action distribution for a batch of observations `[batch, obs_dim]`.
pub trait StochasticPolicy {
    /// The action distribution for `obs` (`[batch, obs_dim]`, f32).
    fn action_dist(&self, obs: &Tensor) -> Result<ActionDist>;

    /// Every trainable variable with a stable name, sorted by name (optimizer state, gradient
    /// norms and checkpoints depend on this order).
    fn trainable_vars(&self) -> Vec<(String, Var)>;

    /// The device the parameters live on.
    fn device(&self) -> &Device;

    /// Whether the policy explores with gSDE ([`crate::sde`]): then the algorithms call
    /// [`StochasticPolicy::reset_noise`] where SB3's `collect_rollouts` calls it. Default: no.
    fn uses_sde(&self) -> bool {
        false
    }

    /// gSDE: draws new exploration matrices for `n_envs` environments from `rng` (SB3's
    /// `policy.reset_noise(n_envs)`). The default, for policies without gSDE, is an error.
    fn reset_noise(&self, n_envs: usize, rng: &mut dyn RngCore) -> Result<()> {
        let _ = (n_envs, rng);
        Err(PolicyError::Unsupported(
            "reset_noise on a policy without gSDE (use_sde)".into(),
        ))
    }

    /// gSDE: the current exploration matrices (saved by checkpoints); `None` without gSDE or
    /// before any were drawn.
    fn exploration_noise(&self) -> Option<ExplorationNoise> {
        None
    }

    /// gSDE: replaces the exploration matrices (restoring a checkpoint, or feeding recorded
    /// ones). The default, for policies without gSDE, is an error.
    fn set_exploration_noise(&self, noise: ExplorationNoise) -> Result<()> {
        let _ = noise;
        Err(PolicyError::Unsupported(
            "exploration matrices for a policy without gSDE (use_sde)".into(),
        ))
    }
}

/// The outputs of [`ActorCritic::evaluate_actions`], all `[batch]`.
#[derive(Clone, Debug)]
pub struct Evaluation {
    /// `log pi(a | s)`.
    pub log_prob: Tensor,
    /// Entropy of `pi(. | s)`.
    pub entropy: Tensor,
    /// `V(s)`.
    pub value: Tensor,
}

/// An actor-critic network: action distribution and state value (SB3's `ActorCriticPolicy`).
///
/// Any candle-nn network can implement it. Here a shared trunk feeds a policy head and a
/// value head; [`Policy::act`] comes for free, and code generic over `ActorCritic` trains it:
///
/// ```
/// use candle_core::{DType, Device, Tensor, Var};
/// use candle_nn::{linear, Linear, Module, VarBuilder, VarMap};
/// use rl_policy::{ActionDist, ActorCritic, Categorical, Policy, StochasticPolicy};
///
/// struct TwoHeads { trunk: Linear, pi: Linear, v: Linear, vars: VarMap, device: Device }
///
/// impl StochasticPolicy for TwoHeads {
///     fn action_dist(&self, obs: &Tensor) -> rl_policy::Result<ActionDist> {
///         Ok(self.forward(obs)?.0)
///     }
///     fn trainable_vars(&self) -> Vec<(String, Var)> {
///         let mut v: Vec<_> = self.vars.data().lock().unwrap().clone().into_iter().collect();
///         v.sort_by(|a, b| a.0.cmp(&b.0));
///         v
///     }
///     fn device(&self) -> &Device {
///         &self.device
///     }
/// }
///
/// impl ActorCritic for TwoHeads {
///     fn forward(&self, obs: &Tensor) -> rl_policy::Result<(ActionDist, Tensor)> {
///         let h = self.trunk.forward(obs)?.relu()?;
///         let dist = Categorical::from_logits(&self.pi.forward(&h)?)?;
///         Ok((ActionDist::Categorical(dist), self.v.forward(&h)?.squeeze(1)?))
///     }
/// }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let (vars, device) = (VarMap::new(), Device::Cpu);
/// let vb = VarBuilder::from_varmap(&vars, DType::F32, &device);
/// let net = TwoHeads {
///     trunk: linear(4, 32, vb.pp("trunk"))?,
///     pi: linear(32, 2, vb.pp("pi"))?,
///     v: linear(32, 1, vb.pp("v"))?,
///     vars: vars.clone(),
///     device: device.clone(),
/// };
/// let obs = Tensor::new(&[[0.1f32, 0.0, -0.1, 0.2]], &device)?;
/// let eval = net.evaluate_actions(&obs, &Tensor::new(&[1u32], &device)?)?;
/// let loss = (eval.log_prob.neg()? + eval.value.sqr()?)?.mean_all()?;
/// let grads = loss.backward()?; // gradients reach every variable of the user's network
/// assert!(net.trainable_vars().iter().all(|(_, v)| grads.get(v.as_tensor()).is_some()));
/// let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(0);
/// assert_eq!(net.act(&obs, false, &mut rng)?.dims(), &[1]);
/// # Ok(()) }
/// ```
pub trait ActorCritic: StochasticPolicy {
    /// Action distribution and values `[batch]` for `obs` `[batch, obs_dim]`.
    fn forward(&self, obs: &Tensor) -> Result<(ActionDist, Tensor)>;

    /// Values `[batch]` only.
    fn predict_values(&self, obs: &Tensor) -> Result<Tensor> {
        Ok(self.forward(obs)?.1)
    }

    /// Log-probabilities of `actions`, entropies and values, for the training loss (SB3's
    /// `evaluate_actions`). The default goes through [`ActionDist::log_prob_and_entropy`], so a
    /// categorical head on the CPU takes the fused path whatever the network.
    fn evaluate_actions(&self, obs: &Tensor, actions: &Tensor) -> Result<Evaluation> {
        let (dist, value) = self.forward(obs)?;
        let (log_prob, entropy) = dist.log_prob_and_entropy(actions)?;
        Ok(Evaluation {
            log_prob,
            entropy,
            value,
        })
    }

    /// The network as a standard actor-critic MLP for the fast path ([`crate::MlpEngine`]),
    /// when it is one: the algorithms then act and train through the engine, which reads and
    /// updates these same variables. The default, `None`, keeps the generic Candle path (any
    /// network); [`crate::MlpPolicy`] returns its layers unless it uses gSDE or lives off the
    /// CPU.
    fn mlp_layout(&self) -> Option<MlpLayout> {
        None
    }
}

/// Acting: observations in, actions out (`[batch]` u32 for discrete, `[batch, d]` f32 for
/// continuous actions, unclipped). Every [`StochasticPolicy`] is one; value-based agents act
/// through [`crate::GreedyQPolicy`]. Evaluation and callbacks take any `Policy`.
pub trait Policy {
    /// Actions for `obs` on the policy's device: the distribution's mode when
    /// `deterministic`, else a sample from `rng`.
    fn act(&self, obs: &Tensor, deterministic: bool, rng: &mut dyn RngCore) -> Result<Tensor>;

    /// SB3's `predict`: actions for `batch` host observations (`obs` holds `batch * obs_dim`
    /// f32 values, row-major), moved to the policy's device first.
    fn predict(
        &self,
        obs: &[f32],
        batch: usize,
        deterministic: bool,
        rng: &mut dyn RngCore,
    ) -> Result<Tensor>;

    /// SB3's `model.predict` on host arrays, in the environment's terms: actions for
    /// `actions.n_envs()` observations written into `actions` (built for the environment's
    /// action space) — discrete indices shifted by the space's `start`, Box actions clipped
    /// into the bounds — and returned as the batch a [`rl_env::VecEnv`] steps with (row `i`:
    /// [`ActionBuffer::action`]). Apart from the policy's own output, nothing is allocated.
    fn predict_into<'b>(
        &self,
        obs: &[f32],
        deterministic: bool,
        rng: &mut dyn RngCore,
        actions: &'b mut ActionBuffer,
    ) -> Result<VecAction<'b>> {
        let out = self.predict(obs, actions.n_envs(), deterministic, rng)?;
        actions
            .fill_from_policy(&out)
            .map_err(|e| PolicyError::InvalidArgument(format!("the policy's actions: {e}")))
    }
}

/// `obs` as a `[batch, obs.len() / batch]` tensor on `device`.
pub(crate) fn host_batch(obs: &[f32], batch: usize, device: &Device) -> Result<Tensor> {
    if batch == 0 || !obs.len().is_multiple_of(batch) {
        return Err(PolicyError::Shape {
            what: "host observations",
            expected: format!("a multiple of {batch} values (one row per observation)"),
            actual: format!("{} values", obs.len()),
        });
    }
    rl_tensor_bridge::batch_to_tensor(obs, batch, obs.len() / batch, device)
        .map_err(|e| PolicyError::InvalidArgument(e.to_string()))
}

impl<P: StochasticPolicy + ?Sized> Policy for P {
    fn act(&self, obs: &Tensor, deterministic: bool, rng: &mut dyn RngCore) -> Result<Tensor> {
        self.action_dist(obs)?.act(deterministic, rng)
    }

    fn predict(
        &self,
        obs: &[f32],
        batch: usize,
        deterministic: bool,
        rng: &mut dyn RngCore,
    ) -> Result<Tensor> {
        let obs = host_batch(obs, batch, self.device())?;
        self.act(&obs, deterministic, rng)
    }
}
