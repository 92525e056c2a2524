//! Actors and critics for continuous actions, as the off-policy algorithms train them (SB3's
//! `sac/policies.py`, `td3/policies.py` and `common/policies.py::ContinuousCritic`).
//!
//! Three small traits name the roles, so a user's candle-nn network can fill any of them:
//! [`Critic`] (one or more `Q(s, a)` heads: SAC's and TD3's twin critics, DDPG's one),
//! [`GaussianActor`] (SAC: a mean and a clamped `log_std` per action dimension, squashed by
//! `tanh` in [`SquashedDiagGaussian`](crate::SquashedDiagGaussian)) and [`DeterministicActor`]
//! (TD3/DDPG: `tanh` actions). Actors work in the *scaled* action space `[-1, 1]^d`, as SB3's
//! do; [`scale_action`] and [`unscale_action`] map to and from a `Box` space's bounds with
//! SB3's formulas, and [`SacPolicy`] / [`DeterministicPolicy`] act in the environment's units
//! for evaluation and `enjoy`.
//!
//! The standard networks mirror SB3's modules and parameter names, so weights move between the
//! libraries by name: [`SacActor`] (`latent_pi.{0,2,..}`, `mu`, `log_std`), [`Td3Actor`]
//! (`mu.{0,2,..}`, the last followed by `tanh`) and [`ContinuousCritic`] (`qf{i}.{0,2,..}`, each
//! on the concatenation `[obs, action]`). All use PyTorch's default `nn.Linear` init, as SB3
//! does for these policies (no orthogonal init).

use crate::activation::Activation;
use crate::error::{PolicyError, Result};
use crate::init;
use crate::limits::{MAX_HIDDEN_LAYERS, MAX_LAYER_WIDTH, MAX_SPACE_ELEMENTS};
use crate::ops;
use crate::policy::Policy;
use crate::sde::{ExplorationNoise, SquashedStateDependentNoise};
use candle_core::{DType, Device, Tensor, Var};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use rl_env::Space;
use serde::{Deserialize, Serialize};

/// Lower clamp of SAC's `log_std` (SB3's `LOG_STD_MIN`).
pub const LOG_STD_MIN: f64 = -20.0;
/// Upper clamp of SAC's `log_std` (SB3's `LOG_STD_MAX`).
pub const LOG_STD_MAX: f64 = 2.0;

/// State-action value functions over continuous actions: `n_critics` heads, each `Q(s, a)`.
pub trait Critic {
    /// Each head's `Q(s, a)`, `[batch, 1]`, for observations `[batch, obs_dim]` and scaled
    /// actions `[batch, act_dim]`.
    fn q_values(&self, obs: &Tensor, actions: &Tensor) -> Result<Vec<Tensor>>;

    /// The first head only (SB3's `q1_forward`, TD3's and DDPG's actor loss).
    fn q1(&self, obs: &Tensor, actions: &Tensor) -> Result<Tensor> {
        self.q_values(obs, actions)?
            .into_iter()
            .next()
            .ok_or_else(|| PolicyError::InvalidArgument("the critic has no heads".into()))
    }

    /// [`Critic::q_values`] with the parameters treated as constants: gradients reach `obs`
    /// and `actions` only. The actor losses of SAC and TD3 step the actor alone, so the
    /// critics' parameter gradients would be wasted work. Defaults to [`Critic::q_values`].
    fn q_values_frozen(&self, obs: &Tensor, actions: &Tensor) -> Result<Vec<Tensor>> {
        self.q_values(obs, actions)
    }

    /// [`Critic::q1`] with the parameters treated as constants (see
    /// [`Critic::q_values_frozen`]). Defaults to [`Critic::q1`].
    fn q1_frozen(&self, obs: &Tensor, actions: &Tensor) -> Result<Tensor> {
        self.q1(obs, actions)
    }

    /// Every trainable variable with a stable name, sorted by name.
    fn trainable_vars(&self) -> Vec<(String, Var)>;

    /// The device the parameters live on.
    fn device(&self) -> &Device;

    /// A copy with parameters of its own holding the same values (the target critic).
    fn duplicate(&self) -> Result<Self>
    where
        Self: Sized;
}

/// SAC's actor: the parameters of a diagonal Gaussian in the pre-`tanh` space, or, with gSDE,
/// of a [`SquashedStateDependentNoise`].
pub trait GaussianActor {
    /// `(mean, log_std)`, both `[batch, act_dim]`, `log_std` clamped to
    /// [`LOG_STD_MIN`]..=[`LOG_STD_MAX`], for observations `[batch, obs_dim]`. Actors with gSDE
    /// have no per-state `log_std` and return an error.
    fn mean_log_std(&self, obs: &Tensor) -> Result<(Tensor, Tensor)>;

    /// Whether the actor explores with gSDE (SB3's `use_sde`); then
    /// [`GaussianActor::sde_dist`] and [`GaussianActor::sde_std`] give its distribution.
    /// Default: no.
    fn uses_sde(&self) -> bool {
        false
    }

    /// gSDE: the distribution for observations `[batch, obs_dim]` (SB3's
    /// `get_action_dist_params` then `proba_distribution`). The default, for actors without
    /// gSDE, is an error.
    fn sde_dist(&self, obs: &Tensor) -> Result<SquashedStateDependentNoise> {
        let _ = obs;
        Err(PolicyError::Unsupported(
            "gSDE distribution of an actor without gSDE (use_sde)".into(),
        ))
    }

    /// gSDE: the std of the exploration weights `[latent, act_dim]`, detached (SB3's
    /// `actor.get_std()`), from which exploration matrices are drawn. The default, for actors
    /// without gSDE, is an error.
    fn sde_std(&self) -> Result<Tensor> {
        Err(PolicyError::Unsupported(
            "gSDE std of an actor without gSDE (use_sde)".into(),
        ))
    }

    /// Every trainable variable with a stable name, sorted by name.
    fn trainable_vars(&self) -> Vec<(String, Var)>;

    /// The device the parameters live on.
    fn device(&self) -> &Device;
}

/// TD3's and DDPG's actor: deterministic scaled actions in `[-1, 1]`.
pub trait DeterministicActor {
    /// Actions `[batch, act_dim]` for observations `[batch, obs_dim]`.
    fn actions(&self, obs: &Tensor) -> Result<Tensor>;

    /// Every trainable variable with a stable name, sorted by name.
    fn trainable_vars(&self) -> Vec<(String, Var)>;

    /// The device the parameters live on.
    fn device(&self) -> &Device;

    /// A copy with parameters of its own holding the same values (the target actor).
    fn duplicate(&self) -> Result<Self>
    where
        Self: Sized;
}

/// Hidden layers of one of these MLPs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MlpConfig {
    /// Hidden layer sizes.
    pub net_arch: Vec<usize>,
    /// Activation after every hidden layer.
    pub activation: Activation,
    /// gSDE exploration for [`SacActor`] (SB3's `use_sde=True` with its `log_std_init`,
    /// `use_expln` and `clip_mean`); `None` (the default): the state-dependent `log_std` head.
    /// Critics and TD3 actors refuse it.
    #[serde(default)]
    pub sde: Option<SacSdeConfig>,
}

/// SB3's gSDE settings of SAC's actor (`policy_kwargs` `log_std_init`, `use_expln`,
/// `clip_mean`; `full_std=True` always, as SAC's policy does not expose it). `Default` is
/// SB3's SAC default.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SacSdeConfig {
    /// Initial value of every `log_std` entry (`-3`).
    pub log_std_init: f64,
    /// The weights' std is `expln(log_std)` instead of `exp(log_std)` (`false`).
    pub use_expln: bool,
    /// The mean goes through `Hardtanh(-clip_mean, clip_mean)` when `> 0` (`2.0`); then the
    /// mean layer is named `mu.0` (SB3 wraps it in an `nn.Sequential`).
    pub clip_mean: f64,
}

impl Default for SacSdeConfig {
    fn default() -> Self {
        SacSdeConfig {
            log_std_init: -3.0,
            use_expln: false,
            clip_mean: 2.0,
        }
    }
}

impl SacSdeConfig {
    fn check(&self) -> Result<()> {
        let log_std_ok = self.log_std_init.is_finite() && self.log_std_init.abs() <= 20.0;
        let clip_ok = self.clip_mean.is_finite() && self.clip_mean >= 0.0;
        if !(log_std_ok && clip_ok) {
            return Err(PolicyError::InvalidArgument(format!(
                "gSDE needs a finite log_std_init within [-20, 20] and a finite clip_mean >= 0, \
                 got {self:?}"
            )));
        }
        Ok(())
    }
}

impl MlpConfig {
    /// SB3's SAC default: `[256, 256]`, ReLU (actor and critics).
    pub fn sac() -> Self {
        MlpConfig {
            net_arch: vec![256, 256],
            activation: Activation::ReLU,
            sde: None,
        }
    }

    /// SB3's TD3 and DDPG default: `[400, 300]`, ReLU (actor and critics).
    pub fn td3() -> Self {
        MlpConfig {
            net_arch: vec![400, 300],
            activation: Activation::ReLU,
            sde: None,
        }
    }

    /// This configuration with gSDE (for [`SacActor`]).
    pub fn with_sde(mut self, sde: SacSdeConfig) -> Self {
        self.sde = Some(sde);
        self
    }

    fn check_no_sde(&self, what: &str) -> Result<()> {
        if self.sde.is_some() {
            return Err(PolicyError::InvalidArgument(format!(
                "{what}: gSDE (MlpConfig.sde) applies to SAC's actor only"
            )));
        }
        self.check(what)
    }

    fn check(&self, what: &str) -> Result<()> {
        if self.net_arch.len() > MAX_HIDDEN_LAYERS
            || self.net_arch.iter().any(|&w| w == 0 || w > MAX_LAYER_WIDTH)
        {
            return Err(PolicyError::InvalidArgument(format!(
                "{what} net_arch {:?}: at most {MAX_HIDDEN_LAYERS} layers of \
                 1..={MAX_LAYER_WIDTH} units",
                self.net_arch
            )));
        }
        Ok(())
    }
}

/// A chain of `Linear` layers named like an `nn.Sequential` whose activations sit at the odd
/// indices (`prefix.0`, `prefix.2`, ...).
#[derive(Debug)]
struct LinearStack {
    /// `(name prefix, weight [out, in], bias [out])` per layer, in order.
    layers: Vec<(String, Var, Var)>,
}

impl LinearStack {
    fn new(prefix: &str, dims: &[usize], rng: &mut StdRng, device: &Device) -> Result<LinearStack> {
        let mut layers = Vec::with_capacity(dims.len().saturating_sub(1));
        for (i, w) in dims.windows(2).enumerate() {
            layers.push(linear_layer(
                format!("{prefix}.{}", 2 * i),
                w[0],
                w[1],
                rng,
                device,
            )?);
        }
        Ok(LinearStack { layers })
    }

    /// Every layer with `hidden` after it, except the last, which gets `last`.
    fn forward(&self, x: &Tensor, hidden: Activation, last: Option<Activation>) -> Result<Tensor> {
        self.forward_with(x, hidden, last, false)
    }

    /// [`LinearStack::forward`], with the parameters detached from the graph when `frozen`.
    fn forward_with(
        &self,
        x: &Tensor,
        hidden: Activation,
        last: Option<Activation>,
        frozen: bool,
    ) -> Result<Tensor> {
        let mut h = x.clone();
        let n = self.layers.len();
        for (i, (_, w, b)) in self.layers.iter().enumerate() {
            let act = if i + 1 < n { Some(hidden) } else { last };
            h = if frozen {
                ops::linear(&h, &w.as_tensor().detach(), &b.as_tensor().detach(), act)?
            } else {
                ops::linear(&h, w.as_tensor(), b.as_tensor(), act)?
            };
        }
        Ok(h)
    }

    fn push_vars(&self, out: &mut Vec<(String, Var)>) {
        for (name, w, b) in &self.layers {
            out.push((format!("{name}.weight"), w.clone()));
            out.push((format!("{name}.bias"), b.clone()));
        }
    }

    fn duplicate(&self) -> Result<LinearStack> {
        Ok(LinearStack {
            layers: self
                .layers
                .iter()
                .map(|(n, w, b)| Ok((n.clone(), copy_var(w)?, copy_var(b)?)))
                .collect::<Result<_>>()?,
        })
    }
}

fn linear_layer(
    name: String,
    inp: usize,
    out: usize,
    rng: &mut StdRng,
    device: &Device,
) -> Result<(String, Var, Var)> {
    let (w, b) = init::torch_linear_default(out, inp, rng);
    Ok((
        name,
        Var::from_tensor(&Tensor::from_vec(w, (out, inp), device)?)?,
        Var::from_tensor(&Tensor::from_vec(b, out, device)?)?,
    ))
}

fn copy_var(v: &Var) -> Result<Var> {
    Ok(Var::from_tensor(&v.as_tensor().copy()?)?)
}

fn sorted(mut vars: Vec<(String, Var)>) -> Vec<(String, Var)> {
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    vars
}

/// The flat dimension of a non-empty `Box` observation space.
fn obs_dim(space: &Space, who: &str) -> Result<usize> {
    match space {
        Space::Box(b) if (1..=MAX_SPACE_ELEMENTS).contains(&b.flat_dim()) => Ok(b.flat_dim()),
        other => Err(PolicyError::Unsupported(format!(
            "{who} needs a non-empty Box observation space of at most {MAX_SPACE_ELEMENTS} \
             values, got {other}"
        ))),
    }
}

/// The flat dimension of a bounded `Box` action space (squashed actors map `[-1, 1]` onto its
/// bounds).
fn bounded_act_dim(space: &Space, who: &str) -> Result<usize> {
    match space {
        Space::Box(b)
            if (1..=MAX_SPACE_ELEMENTS).contains(&b.flat_dim())
                && b.low().iter().chain(b.high()).all(|v| v.is_finite())
                && b.low().iter().zip(b.high()).all(|(l, h)| l < h) =>
        {
            Ok(b.flat_dim())
        }
        Space::Box(_) => Err(PolicyError::Unsupported(format!(
            "{who} needs a Box action space with finite bounds, low < high ({space})"
        ))),
        other => Err(PolicyError::Unsupported(format!(
            "{who} needs a Box action space (continuous actions), got {other}"
        ))),
    }
}

fn check_input(t: &Tensor, width: usize, what: &'static str) -> Result<Tensor> {
    match t.dims() {
        [_, d] if *d == width => {}
        dims => {
            return Err(PolicyError::Shape {
                what,
                expected: format!("[batch, {width}]"),
                actual: format!("{dims:?}"),
            })
        }
    }
    Ok(if t.dtype() == DType::F32 {
        t.clone()
    } else {
        t.to_dtype(DType::F32)?
    })
}

/// SB3's `ContinuousCritic` (with `share_features_extractor=False`): `n_critics` MLPs on
/// `[obs, action]` to one value each, parameters `qf{i}.{0,2,..}.{weight,bias}`.
pub struct ContinuousCritic {
    config: MlpConfig,
    obs_dim: usize,
    act_dim: usize,
    heads: Vec<LinearStack>,
    device: Device,
}

impl std::fmt::Debug for ContinuousCritic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContinuousCritic")
            .field("config", &self.config)
            .field("n_critics", &self.heads.len())
            .field("obs_dim", &self.obs_dim)
            .field("act_dim", &self.act_dim)
            .finish_non_exhaustive()
    }
}

impl ContinuousCritic {
    /// `n_critics` (1..=16) freshly initialized heads for these spaces, PyTorch's default
    /// init drawn from `seed` (head by head, layer by layer).
    pub fn new(
        observation_space: &Space,
        action_space: &Space,
        config: MlpConfig,
        n_critics: usize,
        seed: u64,
        device: &Device,
    ) -> Result<Self> {
        config.check_no_sde("ContinuousCritic")?;
        let obs_dim = obs_dim(observation_space, "ContinuousCritic")?;
        let act_dim = bounded_act_dim(action_space, "ContinuousCritic")?;
        if !(1..=16).contains(&n_critics) {
            return Err(PolicyError::InvalidArgument(format!(
                "n_critics must lie in 1..=16, got {n_critics}"
            )));
        }
        let mut dims = vec![obs_dim + act_dim];
        dims.extend_from_slice(&config.net_arch);
        dims.push(1);
        let mut rng = StdRng::seed_from_u64(seed);
        let heads = (0..n_critics)
            .map(|i| LinearStack::new(&format!("qf{i}"), &dims, &mut rng, device))
            .collect::<Result<_>>()?;
        Ok(ContinuousCritic {
            config,
            obs_dim,
            act_dim,
            heads,
            device: device.clone(),
        })
    }

    /// The configuration of each head.
    pub fn config(&self) -> &MlpConfig {
        &self.config
    }

    /// Number of heads.
    pub fn n_critics(&self) -> usize {
        self.heads.len()
    }

    fn input(&self, obs: &Tensor, actions: &Tensor) -> Result<Tensor> {
        let obs = check_input(obs, self.obs_dim, "critic observations")?;
        let actions = check_input(actions, self.act_dim, "critic actions")?;
        if obs.dim(0)? != actions.dim(0)? {
            return Err(PolicyError::Shape {
                what: "critic actions",
                expected: format!("{} rows (one per observation)", obs.dim(0)?),
                actual: format!("{:?}", actions.dims()),
            });
        }
        Ok(Tensor::cat(&[&obs, &actions], 1)?)
    }
}

impl Critic for ContinuousCritic {
    fn q_values(&self, obs: &Tensor, actions: &Tensor) -> Result<Vec<Tensor>> {
        let x = self.input(obs, actions)?;
        self.heads
            .iter()
            .map(|h| h.forward(&x, self.config.activation, None))
            .collect()
    }

    fn q1(&self, obs: &Tensor, actions: &Tensor) -> Result<Tensor> {
        let x = self.input(obs, actions)?;
        self.heads[0].forward(&x, self.config.activation, None)
    }

    fn q_values_frozen(&self, obs: &Tensor, actions: &Tensor) -> Result<Vec<Tensor>> {
        let x = self.input(obs, actions)?;
        self.heads
            .iter()
            .map(|h| h.forward_with(&x, self.config.activation, None, true))
            .collect()
    }

    fn q1_frozen(&self, obs: &Tensor, actions: &Tensor) -> Result<Tensor> {
        let x = self.input(obs, actions)?;
        self.heads[0].forward_with(&x, self.config.activation, None, true)
    }

    fn trainable_vars(&self) -> Vec<(String, Var)> {
        let mut vars = Vec::new();
        for h in &self.heads {
            h.push_vars(&mut vars);
        }
        sorted(vars)
    }

    fn device(&self) -> &Device {
        &self.device
    }

    fn duplicate(&self) -> Result<Self> {
        Ok(ContinuousCritic {
            config: self.config.clone(),
            obs_dim: self.obs_dim,
            act_dim: self.act_dim,
            heads: self
                .heads
                .iter()
                .map(LinearStack::duplicate)
                .collect::<Result<_>>()?,
            device: self.device.clone(),
        })
    }
}

/// The head of a [`SacActor`] after `latent_pi`.
#[derive(Debug)]
enum SacHead {
    /// `mu` and a `log_std` layer: SB3's default squashed diagonal Gaussian.
    Squashed {
        mu: (String, Var, Var),
        log_std: (String, Var, Var),
    },
    /// gSDE: `mu` (named `mu.0` under `clip_mean`) and the `log_std` matrix
    /// `[latent, act_dim]`.
    Sde {
        mu: (String, Var, Var),
        log_std: Var,
        sde: SacSdeConfig,
    },
}

/// SB3's SAC `Actor`: `latent_pi` (every layer activated), then either two `Linear` heads,
/// `mu` and `log_std` (`log_std` clamped to [`LOG_STD_MIN`]..=[`LOG_STD_MAX`]), or, with gSDE
/// ([`MlpConfig::sde`]), `mu` (through `Hardtanh(-clip_mean, clip_mean)` when `clip_mean > 0`,
/// then named `mu.0`) and a `log_std` parameter `[latent, act_dim]` filled with
/// `log_std_init`, the features `latent_pi` feeding the [`SquashedStateDependentNoise`].
pub struct SacActor {
    config: MlpConfig,
    obs_dim: usize,
    act_dim: usize,
    latent: LinearStack,
    head: SacHead,
    device: Device,
}

impl std::fmt::Debug for SacActor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SacActor")
            .field("config", &self.config)
            .field("obs_dim", &self.obs_dim)
            .field("act_dim", &self.act_dim)
            .finish_non_exhaustive()
    }
}

impl SacActor {
    /// A freshly initialized actor for these spaces (PyTorch's default init from `seed`:
    /// `latent_pi`, then `mu`, then the `log_std` layer; with gSDE `log_std` is
    /// `log_std_init` everywhere and draws nothing).
    pub fn new(
        observation_space: &Space,
        action_space: &Space,
        config: MlpConfig,
        seed: u64,
        device: &Device,
    ) -> Result<Self> {
        config.check("SacActor")?;
        let obs_dim = obs_dim(observation_space, "SacActor")?;
        let act_dim = bounded_act_dim(action_space, "SacActor")?;
        let mut dims = vec![obs_dim];
        dims.extend_from_slice(&config.net_arch);
        let mut rng = StdRng::seed_from_u64(seed);
        let latent = LinearStack::new("latent_pi", &dims, &mut rng, device)?;
        let last = *dims.last().unwrap_or(&obs_dim);
        let head = match config.sde {
            None => SacHead::Squashed {
                mu: linear_layer("mu".into(), last, act_dim, &mut rng, device)?,
                log_std: linear_layer("log_std".into(), last, act_dim, &mut rng, device)?,
            },
            Some(sde) => {
                sde.check()?;
                let name = if sde.clip_mean > 0.0 { "mu.0" } else { "mu" };
                let mu = linear_layer(name.into(), last, act_dim, &mut rng, device)?;
                let log_std = Var::from_tensor(&Tensor::full(
                    sde.log_std_init as f32,
                    (last, act_dim),
                    device,
                )?)?;
                SacHead::Sde { mu, log_std, sde }
            }
        };
        Ok(SacActor {
            config,
            obs_dim,
            act_dim,
            latent,
            head,
            device: device.clone(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &MlpConfig {
        &self.config
    }

    /// `latent_pi(obs)` for observations `[batch, obs_dim]`.
    fn latent_pi(&self, obs: &Tensor) -> Result<Tensor> {
        let obs = check_input(obs, self.obs_dim, "actor observations")?;
        if self.latent.layers.is_empty() {
            Ok(obs)
        } else {
            self.latent
                .forward(&obs, self.config.activation, Some(self.config.activation))
        }
    }
}

impl GaussianActor for SacActor {
    fn mean_log_std(&self, obs: &Tensor) -> Result<(Tensor, Tensor)> {
        let SacHead::Squashed { mu, log_std } = &self.head else {
            return Err(PolicyError::Unsupported(
                "a SacActor with gSDE has no per-state log_std: use sde_dist".into(),
            ));
        };
        let latent = self.latent_pi(obs)?;
        let mean = ops::linear(&latent, mu.1.as_tensor(), mu.2.as_tensor(), None)?;
        let log_std = ops::linear(&latent, log_std.1.as_tensor(), log_std.2.as_tensor(), None)?
            .clamp(LOG_STD_MIN as f32, LOG_STD_MAX as f32)?;
        Ok((mean, log_std))
    }

    fn uses_sde(&self) -> bool {
        matches!(self.head, SacHead::Sde { .. })
    }

    fn sde_dist(&self, obs: &Tensor) -> Result<SquashedStateDependentNoise> {
        let SacHead::Sde { mu, log_std, sde } = &self.head else {
            return Err(PolicyError::Unsupported(
                "gSDE distribution of a SacActor built without gSDE (MlpConfig.sde)".into(),
            ));
        };
        let latent = self.latent_pi(obs)?;
        let mut mean = ops::linear(&latent, mu.1.as_tensor(), mu.2.as_tensor(), None)?;
        if sde.clip_mean > 0.0 {
            let c = sde.clip_mean as f32;
            mean = ops::hardtanh(&mean, -c, c)?;
        }
        SquashedStateDependentNoise::new(mean, log_std.as_tensor(), latent, sde.use_expln)
    }

    fn sde_std(&self) -> Result<Tensor> {
        let SacHead::Sde { log_std, sde, .. } = &self.head else {
            return Err(PolicyError::Unsupported(
                "gSDE std of a SacActor built without gSDE (MlpConfig.sde)".into(),
            ));
        };
        crate::sde::sde_std(&log_std.as_tensor().detach(), sde.use_expln)
    }

    fn trainable_vars(&self) -> Vec<(String, Var)> {
        let mut vars = Vec::new();
        self.latent.push_vars(&mut vars);
        match &self.head {
            SacHead::Squashed { mu, log_std } => {
                for (name, w, b) in [mu, log_std] {
                    vars.push((format!("{name}.weight"), w.clone()));
                    vars.push((format!("{name}.bias"), b.clone()));
                }
            }
            SacHead::Sde { mu, log_std, .. } => {
                vars.push((format!("{}.weight", mu.0), mu.1.clone()));
                vars.push((format!("{}.bias", mu.0), mu.2.clone()));
                vars.push(("log_std".into(), log_std.clone()));
            }
        }
        sorted(vars)
    }

    fn device(&self) -> &Device {
        &self.device
    }
}

/// SB3's TD3 `Actor`: `mu` = `create_mlp(obs_dim, act_dim, net_arch, activation,
/// squash_output=True)`, i.e. the layers `mu.{0,2,..}` with the activation between them and
/// `tanh` after the last.
pub struct Td3Actor {
    config: MlpConfig,
    obs_dim: usize,
    mu: LinearStack,
    device: Device,
}

impl std::fmt::Debug for Td3Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Td3Actor")
            .field("config", &self.config)
            .field("obs_dim", &self.obs_dim)
            .finish_non_exhaustive()
    }
}

impl Td3Actor {
    /// A freshly initialized actor for these spaces (PyTorch's default init from `seed`).
    pub fn new(
        observation_space: &Space,
        action_space: &Space,
        config: MlpConfig,
        seed: u64,
        device: &Device,
    ) -> Result<Self> {
        config.check_no_sde("Td3Actor")?;
        let obs_dim = obs_dim(observation_space, "Td3Actor")?;
        let act_dim = bounded_act_dim(action_space, "Td3Actor")?;
        let mut dims = vec![obs_dim];
        dims.extend_from_slice(&config.net_arch);
        dims.push(act_dim);
        let mut rng = StdRng::seed_from_u64(seed);
        let mu = LinearStack::new("mu", &dims, &mut rng, device)?;
        Ok(Td3Actor {
            config,
            obs_dim,
            mu,
            device: device.clone(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &MlpConfig {
        &self.config
    }
}

impl DeterministicActor for Td3Actor {
    fn actions(&self, obs: &Tensor) -> Result<Tensor> {
        let obs = check_input(obs, self.obs_dim, "actor observations")?;
        self.mu
            .forward(&obs, self.config.activation, Some(Activation::Tanh))
    }

    fn trainable_vars(&self) -> Vec<(String, Var)> {
        let mut vars = Vec::new();
        self.mu.push_vars(&mut vars);
        sorted(vars)
    }

    fn device(&self) -> &Device {
        &self.device
    }

    fn duplicate(&self) -> Result<Self> {
        Ok(Td3Actor {
            config: self.config.clone(),
            obs_dim: self.obs_dim,
            mu: self.mu.duplicate()?,
            device: self.device.clone(),
        })
    }
}

/// SB3's `scale_action`: `2 (a - low) / (high - low) - 1`, in place, row after row, in f32.
pub fn scale_action(low: &[f32], high: &[f32], actions: &mut [f32]) {
    for row in actions.chunks_exact_mut(low.len().max(1)) {
        for ((a, &l), &h) in row.iter_mut().zip(low).zip(high) {
            *a = 2.0 * ((*a - l) / (h - l)) - 1.0;
        }
    }
}

/// SB3's `unscale_action`: `low + 0.5 (a + 1) (high - low)`, in place, row after row, in f32.
pub fn unscale_action(low: &[f32], high: &[f32], actions: &mut [f32]) {
    for row in actions.chunks_exact_mut(low.len().max(1)) {
        for ((a, &l), &h) in row.iter_mut().zip(low).zip(high) {
            *a = l + 0.5 * (*a + 1.0) * (h - l);
        }
    }
}

/// The `(low, high)` bounds of a `Box` action space.
fn bounds(space: &Space) -> Result<(Vec<f32>, Vec<f32>)> {
    bounded_act_dim(space, "a squashed policy")?;
    match space {
        Space::Box(b) => Ok((b.low().to_vec(), b.high().to_vec())),
        _ => unreachable!("bounded_act_dim accepts Box spaces only"),
    }
}

/// `actions` (scaled, on any device) in the environment's units, as a `[batch, d]` f32 tensor
/// on the same device.
fn unscaled(actions: &Tensor, low: &[f32], high: &[f32]) -> Result<Tensor> {
    let dims = actions.dims().to_vec();
    let mut host: Vec<f32> = actions
        .detach()
        .to_dtype(DType::F32)?
        .flatten_all()?
        .to_vec1()?;
    unscale_action(low, high, &mut host);
    Ok(Tensor::from_vec(host, dims, actions.device())?)
}

/// Acting with a SAC actor (SB3's `SACPolicy.predict`): `tanh(mean)` when deterministic, else
/// a squashed Gaussian sample, mapped onto the action space's bounds.
///
/// With a gSDE actor the policy holds the exploration matrices (SB3 keeps them in the actor's
/// distribution): [`SacPolicy::reset_noise`] draws them, stochastic actions use them, and
/// until the first draw every stochastic call draws a fresh single matrix from its `rng`.
pub struct SacPolicy<A> {
    actor: A,
    low: Vec<f32>,
    high: Vec<f32>,
    noise: Option<ExplorationNoise>,
}

impl<A: GaussianActor> SacPolicy<A> {
    /// The policy of `actor` for a bounded `Box` action space.
    pub fn new(actor: A, action_space: &Space) -> Result<Self> {
        let (low, high) = bounds(action_space)?;
        Ok(SacPolicy {
            actor,
            low,
            high,
            noise: None,
        })
    }

    /// The actor.
    pub fn actor(&self) -> &A {
        &self.actor
    }

    /// Gives back the actor.
    pub fn into_inner(self) -> A {
        self.actor
    }

    /// gSDE: draws new exploration matrices for `n_envs` environments from `rng` with the
    /// actor's current std (SB3's `actor.reset_noise(n_envs)`). An error for actors without
    /// gSDE.
    pub fn reset_noise(&mut self, n_envs: usize, rng: &mut dyn RngCore) -> Result<()> {
        let std = self.actor.sde_std()?;
        self.noise = Some(ExplorationNoise::sample_with_std(&std, n_envs, rng)?);
        Ok(())
    }

    /// gSDE: the current exploration matrices, if any were drawn or set.
    pub fn exploration_noise(&self) -> Option<&ExplorationNoise> {
        self.noise.as_ref()
    }

    /// gSDE: replaces the exploration matrices (restoring a checkpoint, or feeding recorded
    /// ones); they must be `[latent, act_dim]` like the actor's `log_std`. An error for actors
    /// without gSDE.
    pub fn set_exploration_noise(&mut self, noise: ExplorationNoise) -> Result<()> {
        let std = self.actor.sde_std()?;
        if std.dims() != [noise.dims().0, noise.dims().1] {
            return Err(PolicyError::Shape {
                what: "gSDE exploration matrices",
                expected: format!("{:?}", std.dims()),
                actual: format!("{:?}", noise.dims()),
            });
        }
        self.noise = Some(noise.to_device(self.actor.device())?);
        Ok(())
    }

    /// Scaled actions in `[-1, 1]` (the replay buffer's units).
    pub fn scaled_actions(
        &self,
        obs: &Tensor,
        deterministic: bool,
        rng: &mut dyn RngCore,
    ) -> Result<Tensor> {
        if self.actor.uses_sde() {
            let dist = self.actor.sde_dist(obs)?;
            if deterministic {
                return dist.mode();
            }
            return match &self.noise {
                Some(noise) => dist.sample(noise),
                None => dist.sample(&ExplorationNoise::sample_with_std(
                    &dist.std_matrix().detach(),
                    1,
                    rng,
                )?),
            };
        }
        let (mean, log_std) = self.actor.mean_log_std(obs)?;
        let dist = crate::SquashedDiagGaussian::new(mean, log_std)?;
        if deterministic {
            dist.mode()
        } else {
            dist.sample_actions(rng)
        }
    }
}

impl<A: GaussianActor> Policy for SacPolicy<A> {
    fn act(&self, obs: &Tensor, deterministic: bool, rng: &mut dyn RngCore) -> Result<Tensor> {
        unscaled(
            &self.scaled_actions(obs, deterministic, rng)?,
            &self.low,
            &self.high,
        )
    }

    fn predict(
        &self,
        obs: &[f32],
        batch: usize,
        deterministic: bool,
        rng: &mut dyn RngCore,
    ) -> Result<Tensor> {
        let obs = crate::policy::host_batch(obs, batch, self.actor.device())?;
        self.act(&obs, deterministic, rng)
    }
}

/// Acting with a TD3/DDPG actor (SB3's `TD3Policy.predict`): the actor's actions mapped onto
/// the action space's bounds, with or without `deterministic` (exploration noise belongs to
/// the algorithm).
pub struct DeterministicPolicy<A> {
    actor: A,
    low: Vec<f32>,
    high: Vec<f32>,
}

impl<A: DeterministicActor> DeterministicPolicy<A> {
    /// The policy of `actor` for a bounded `Box` action space.
    pub fn new(actor: A, action_space: &Space) -> Result<Self> {
        let (low, high) = bounds(action_space)?;
        Ok(DeterministicPolicy { actor, low, high })
    }

    /// The actor.
    pub fn actor(&self) -> &A {
        &self.actor
    }

    /// Gives back the actor.
    pub fn into_inner(self) -> A {
        self.actor
    }
}

impl<A: DeterministicActor> Policy for DeterministicPolicy<A> {
    fn act(&self, obs: &Tensor, _deterministic: bool, _rng: &mut dyn RngCore) -> Result<Tensor> {
        unscaled(&self.actor.actions(obs)?, &self.low, &self.high)
    }

    fn predict(
        &self,
        obs: &[f32],
        batch: usize,
        deterministic: bool,
        rng: &mut dyn RngCore,
    ) -> Result<Tensor> {
        let obs = crate::policy::host_batch(obs, batch, self.actor.device())?;
        self.act(&obs, deterministic, rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rl_env::BoxSpace;

    fn spaces() -> (Space, Space) {
        (
            Space::Box(BoxSpace::uniform(-1.0, 1.0, vec![3]).unwrap()),
            Space::Box(BoxSpace::uniform(-2.0, 2.0, vec![2]).unwrap()),
        )
    }

    #[test]
    fn names_and_shapes_follow_sb3() {
        let (o, a) = spaces();
        let dev = Device::Cpu;
        let cfg = MlpConfig {
            net_arch: vec![8, 4],
            activation: Activation::ReLU,
            sde: None,
        };
        let critic = ContinuousCritic::new(&o, &a, cfg.clone(), 2, 0, &dev).unwrap();
        let names: Vec<String> = critic.trainable_vars().into_iter().map(|v| v.0).collect();
        assert_eq!(names.len(), 12);
        assert!(names.contains(&"qf1.4.bias".to_string()));
        let actor = SacActor::new(&o, &a, cfg.clone(), 0, &dev).unwrap();
        let names: Vec<String> = actor.trainable_vars().into_iter().map(|v| v.0).collect();
        assert_eq!(
            names,
            [
                "latent_pi.0.bias",
                "latent_pi.0.weight",
                "latent_pi.2.bias",
                "latent_pi.2.weight",
                "log_std.bias",
                "log_std.weight",
                "mu.bias",
                "mu.weight"
            ]
        );
        let td3 = Td3Actor::new(&o, &a, cfg, 0, &dev).unwrap();
        let obs = Tensor::new(&[[0.1f32, 0.2, 0.3], [-5.0, 9.0, 1.0]], &dev).unwrap();
        let acts = td3.actions(&obs).unwrap();
        assert_eq!(acts.dims(), [2, 2]);
        let q = critic.q_values(&obs, &acts).unwrap();
        assert_eq!(q.len(), 2);
        assert_eq!(q[0].dims(), [2, 1]);
        let q1 = critic.q1(&obs, &acts).unwrap();
        assert_eq!(q1.to_vec2::<f32>().unwrap(), q[0].to_vec2::<f32>().unwrap());
        let (mean, log_std) = actor.mean_log_std(&obs).unwrap();
        assert_eq!(mean.dims(), [2, 2]);
        let ls: Vec<f32> = log_std.flatten_all().unwrap().to_vec1().unwrap();
        assert!(ls.iter().all(|v| (-20.0..=2.0).contains(v)));
    }

    #[test]
    fn sac_actor_with_gsde_follows_sb3() {
        let (o, a) = spaces();
        let dev = Device::Cpu;
        let sde = SacSdeConfig {
            log_std_init: -2.0,
            ..SacSdeConfig::default()
        };
        let cfg = MlpConfig {
            net_arch: vec![8, 4],
            activation: Activation::ReLU,
            sde: Some(sde),
        };
        let actor = SacActor::new(&o, &a, cfg.clone(), 0, &dev).unwrap();
        assert!(actor.uses_sde());
        let vars = actor.trainable_vars();
        let names: Vec<&str> = vars.iter().map(|v| v.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "latent_pi.0.bias",
                "latent_pi.0.weight",
                "latent_pi.2.bias",
                "latent_pi.2.weight",
                "log_std",
                "mu.0.bias",
                "mu.0.weight"
            ]
        );
        let log_std = &vars[4].1;
        assert_eq!(log_std.dims(), [4, 2]);
        let ls: Vec<f32> = log_std
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert!(ls.iter().all(|&v| v == -2.0));
        let obs = Tensor::new(&[[0.1f32, 0.2, 0.3], [-50.0, 90.0, 10.0]], &dev).unwrap();
        assert!(actor.mean_log_std(&obs).is_err());
        let dist = actor.sde_dist(&obs).unwrap();
        let mean: Vec<f32> = dist.mean().flatten_all().unwrap().to_vec1().unwrap();
        assert!(mean.iter().all(|m| m.abs() <= 2.0), "clip_mean: {mean:?}");
        assert_eq!(dist.latent_sde().dims(), [2, 4]);
        // Without clip_mean the mean layer is `mu`.
        let plain = MlpConfig {
            sde: Some(SacSdeConfig {
                clip_mean: 0.0,
                ..sde
            }),
            ..cfg.clone()
        };
        let actor0 = SacActor::new(&o, &a, plain, 0, &dev).unwrap();
        assert!(actor0.trainable_vars().iter().any(|v| v.0 == "mu.weight"));
        // Critics and TD3 actors refuse gSDE; absurd settings are errors.
        assert!(ContinuousCritic::new(&o, &a, cfg.clone(), 2, 0, &dev).is_err());
        assert!(Td3Actor::new(&o, &a, cfg.clone(), 0, &dev).is_err());
        for bad in [f64::NAN, 1e9] {
            let c = MlpConfig {
                sde: Some(SacSdeConfig {
                    log_std_init: bad,
                    ..sde
                }),
                ..cfg.clone()
            };
            assert!(SacActor::new(&o, &a, c, 0, &dev).is_err());
        }
        // The policy: seeded matrices, the same sample for the same matrices, bounds respected.
        let mut p = SacPolicy::new(actor, &a).unwrap();
        let mut rng = StdRng::seed_from_u64(1);
        p.reset_noise(2, &mut rng).unwrap();
        let first = p.exploration_noise().unwrap().clone();
        let x = p.scaled_actions(&obs, false, &mut rng).unwrap();
        let y = p.scaled_actions(&obs, false, &mut rng).unwrap();
        assert_eq!(
            x.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            y.flatten_all().unwrap().to_vec1::<f32>().unwrap()
        );
        let acts: Vec<f32> = p
            .act(&obs, false, &mut rng)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert!(acts.iter().all(|v| (-2.0..=2.0).contains(v)));
        p.reset_noise(2, &mut StdRng::seed_from_u64(1)).unwrap();
        let again = p.exploration_noise().unwrap();
        assert_eq!(
            first
                .per_env()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap(),
            again
                .per_env()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
        );
        let wrong = ExplorationNoise::new(
            Tensor::zeros((3, 2), DType::F32, &dev).unwrap(),
            Tensor::zeros((1, 3, 2), DType::F32, &dev).unwrap(),
        )
        .unwrap();
        assert!(p.set_exploration_noise(wrong).is_err());
        // An actor without gSDE has no exploration matrices.
        let mut q = SacPolicy::new(
            SacActor::new(&o, &a, MlpConfig::sac(), 0, &dev).unwrap(),
            &a,
        )
        .unwrap();
        assert!(q.reset_noise(1, &mut rng).is_err());
        assert!(q.actor().sde_dist(&obs).is_err());
    }

    #[test]
    fn bad_spaces_and_inputs_are_errors() {
        let (o, a) = spaces();
        let dev = Device::Cpu;
        let cfg = MlpConfig::sac();
        assert!(ContinuousCritic::new(&o, &Space::discrete(3), cfg.clone(), 2, 0, &dev).is_err());
        let unbounded = Space::Box(BoxSpace::uniform(f32::NEG_INFINITY, 1.0, vec![2]).unwrap());
        assert!(SacActor::new(&o, &unbounded, cfg.clone(), 0, &dev).is_err());
        assert!(ContinuousCritic::new(&o, &a, cfg.clone(), 0, 0, &dev).is_err());
        let huge = MlpConfig {
            net_arch: vec![1 << 20],
            activation: Activation::ReLU,
            sde: None,
        };
        assert!(Td3Actor::new(&o, &a, huge, 0, &dev).is_err());
        let critic = ContinuousCritic::new(&o, &a, cfg, 2, 0, &dev).unwrap();
        let obs = Tensor::zeros((2, 3), DType::F32, &dev).unwrap();
        let wrong = Tensor::zeros((3, 2), DType::F32, &dev).unwrap();
        assert!(critic.q_values(&obs, &wrong).is_err());
        assert!(critic.q_values(&wrong, &obs).is_err());
    }

    #[test]
    fn scaling_round_trips_bounds() {
        let low = [-2.0f32, 0.0];
        let high = [2.0f32, 1.0];
        let mut a = [-1.0f32, 1.0, 0.0, 0.0];
        unscale_action(&low, &high, &mut a);
        assert_eq!(a, [-2.0, 1.0, 0.0, 0.5]);
        scale_action(&low, &high, &mut a);
        assert_eq!(a, [-1.0, 1.0, 0.0, 0.0]);
    }

    #[test]
    fn duplicates_own_their_parameters() {
        let (o, a) = spaces();
        let dev = Device::Cpu;
        let critic = ContinuousCritic::new(&o, &a, MlpConfig::td3(), 1, 3, &dev).unwrap();
        let copy = critic.duplicate().unwrap();
        for ((n1, v1), (n2, v2)) in critic.trainable_vars().iter().zip(copy.trainable_vars()) {
            assert_eq!(n1, &n2);
            assert_ne!(v1.as_tensor().id(), v2.as_tensor().id());
            let x: Vec<f32> = v1.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
            let y: Vec<f32> = v2.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
            assert_eq!(x, y);
        }
    }
}
