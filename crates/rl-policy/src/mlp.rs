//! [`MlpPolicy`]: SB3's `ActorCriticPolicy` with its default `MlpExtractor`.
//!
//! Structure (`stable_baselines3/common/policies.py`, `torch_layers.py`): flattened observations
//! go through optional shared layers, then two separate MLPs (`policy_net` for the actor,
//! `value_net` for the critic), then `action_net` (logits or Gaussian mean) and `value_net`
//! (one value). Box actions add a state-independent `log_std` (`[action_dim]`), or with gSDE
//! (`use_sde`) a `log_std` `[latent_pi, action_dim]` for [`StateDependentNoise`]. Parameter names are SB3's
//! `state_dict` keys, so weights move between the two libraries by name.

use crate::activation::Activation;
use crate::distributions::{ActionDist, Categorical, DiagGaussian};
use crate::error::{PolicyError, Result};
use crate::fast::{DenseParams, MlpHead, MlpLayout};
use crate::policy::{ActorCritic, StochasticPolicy};
use crate::sde::{ExplorationNoise, StateDependentNoise};
use crate::{init, ops};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarMap;
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use rl_env::Space;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;

/// Hidden layer sizes (SB3's `net_arch`): `shared` layers feed both heads (the pre-1.8 SB3
/// layout, `mlp_extractor.shared_net.*`), then `pi` for the actor and `vf` for the critic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetArch {
    /// Layers shared by actor and critic (empty in SB3 >= 1.8's default).
    #[serde(default)]
    pub shared: Vec<usize>,
    /// Actor layers.
    pub pi: Vec<usize>,
    /// Critic layers.
    pub vf: Vec<usize>,
}

impl Default for NetArch {
    /// `dict(pi=[64, 64], vf=[64, 64])`.
    fn default() -> Self {
        NetArch {
            shared: Vec::new(),
            pi: vec![64, 64],
            vf: vec![64, 64],
        }
    }
}

/// Configuration of an [`MlpPolicy`]; `Default` is SB3's `ActorCriticPolicy` default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MlpPolicyConfig {
    /// Hidden layer sizes.
    pub net_arch: NetArch,
    /// Activation after every hidden layer.
    pub activation: Activation,
    /// Orthogonal init (gains sqrt(2) hidden, 0.01 action head, 1 value head, zero biases);
    /// when false, PyTorch's default `nn.Linear` init.
    pub ortho_init: bool,
    /// Initial value of every `log_std` entry (Box actions only).
    pub log_std_init: f64,
    /// gSDE exploration (SB3's `use_sde`, Box actions only): the action distribution is
    /// [`StateDependentNoise`] and `log_std` is `[latent_pi, action_dim]` (SB3's
    /// `full_std=True`, `use_expln=False`, `learn_features=False`, no squashing).
    #[serde(default)]
    pub use_sde: bool,
}

impl Default for MlpPolicyConfig {
    fn default() -> Self {
        MlpPolicyConfig {
            net_arch: NetArch::default(),
            activation: Activation::Tanh,
            ortho_init: true,
            log_std_init: 0.0,
            use_sde: false,
        }
    }
}

/// What the action head outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HeadKind {
    /// Logits over `n` actions.
    Discrete(usize),
    /// Gaussian mean of dimension `d`, plus `log_std` `[d]`.
    Gaussian(usize),
    /// gSDE: mean of dimension `d`, plus `log_std` `[latent_pi, d]`.
    Sde(usize),
}

/// One `nn.Linear`: `y = x W^T + b`, `W` `[out, in]`.
#[derive(Clone, Debug)]
struct Dense {
    weight: Tensor,
    bias: Tensor,
}

impl Dense {
    /// `activation(x W^T + b)`, one op where possible ([`ops::linear`]).
    fn forward(&self, x: &Tensor, activation: Option<Activation>) -> Result<Tensor> {
        Ok(ops::linear(x, &self.weight, &self.bias, activation)?)
    }

    /// The layer's variables, for the fast path.
    fn params(&self) -> DenseParams {
        DenseParams {
            weight: self.weight.clone(),
            bias: self.bias.clone(),
        }
    }
}

/// How to fill fresh parameters.
enum InitMode<'a> {
    /// SB3's initialization from a seeded RNG.
    Seeded(&'a mut StdRng),
    /// Zeros (the parameters are about to be overwritten by loaded weights).
    Zeros,
}

/// An actor-critic MLP policy with SB3's `ActorCriticPolicy` structure, defaults and parameter
/// names; see the [crate docs](crate) for an example.
pub struct MlpPolicy {
    config: MlpPolicyConfig,
    observation_space: Space,
    action_space: Space,
    obs_dim: usize,
    head: HeadKind,
    varmap: VarMap,
    shared: Vec<Dense>,
    pi: Vec<Dense>,
    vf: Vec<Dense>,
    action_net: Dense,
    value_net: Dense,
    log_std: Option<Tensor>,
    /// gSDE's exploration matrices (SB3 keeps them in the distribution object); behind a
    /// lock because acting takes `&self`.
    noise: Mutex<Option<ExplorationNoise>>,
    device: Device,
}

impl std::fmt::Debug for MlpPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MlpPolicy")
            .field("config", &self.config)
            .field("observation_space", &self.observation_space)
            .field("action_space", &self.action_space)
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

/// SB3's initialization gains (`ActorCriticPolicy._build`).
const GAIN_HIDDEN: f64 = std::f64::consts::SQRT_2;
const GAIN_ACTION: f64 = 0.01;
const GAIN_VALUE: f64 = 1.0;

impl MlpPolicy {
    /// A freshly initialized policy for these spaces: observations must be a `Box` (flattened),
    /// actions `Discrete` (categorical over action indices `0..n`; add the space's `start`
    /// before stepping an env whose `start` is not 0) or `Box` (diagonal Gaussian, unclipped).
    /// All random initialization draws from `seed`, so the same seed gives bit-identical
    /// weights.
    pub fn new(
        observation_space: &Space,
        action_space: &Space,
        config: MlpPolicyConfig,
        seed: u64,
        device: &Device,
    ) -> Result<Self> {
        let mut rng = StdRng::seed_from_u64(seed);
        Self::build(
            observation_space,
            action_space,
            config,
            InitMode::Seeded(&mut rng),
            device,
        )
    }

    /// A policy with these spaces and config whose parameters are set from `tensors`, named as
    /// SB3's `state_dict` (see [`MlpPolicy::load_state_dict`]).
    pub fn from_named_tensors(
        observation_space: &Space,
        action_space: &Space,
        config: MlpPolicyConfig,
        tensors: &HashMap<String, Tensor>,
        device: &Device,
    ) -> Result<Self> {
        let policy = Self::build(
            observation_space,
            action_space,
            config,
            InitMode::Zeros,
            device,
        )?;
        policy.load_state_dict(tensors)?;
        Ok(policy)
    }

    fn build(
        observation_space: &Space,
        action_space: &Space,
        config: MlpPolicyConfig,
        mut init: InitMode<'_>,
        device: &Device,
    ) -> Result<Self> {
        warn_if_rayon_threads_unset(device);
        let obs_dim = match observation_space {
            Space::Box(b) => b.flat_dim(),
            other => {
                return Err(PolicyError::Unsupported(format!(
                    "MlpPolicy needs a Box observation space, got {other}"
                )))
            }
        };
        if obs_dim == 0 {
            return Err(PolicyError::InvalidArgument(
                "the observation space is empty".into(),
            ));
        }
        let head = match action_space {
            Space::Discrete { n, .. } => {
                let n = usize::try_from(*n)
                    .ok()
                    .filter(|&n| n >= 1 && u32::try_from(n).is_ok())
                    .ok_or_else(|| {
                        PolicyError::InvalidArgument(format!("Discrete action space with n = {n}"))
                    })?;
                if config.use_sde {
                    return Err(PolicyError::Unsupported(format!(
                        "gSDE (use_sde) with the discrete action space {action_space}: gSDE \
                         needs continuous (Box) actions"
                    )));
                }
                HeadKind::Discrete(n)
            }
            Space::Box(b) if b.flat_dim() > 0 && config.use_sde => HeadKind::Sde(b.flat_dim()),
            Space::Box(b) if b.flat_dim() > 0 => HeadKind::Gaussian(b.flat_dim()),
            other => {
                return Err(PolicyError::InvalidArgument(format!(
                    "empty action space {other}"
                )));
            }
        };
        let arch = &config.net_arch;
        if let Some(z) = [&arch.shared, &arch.pi, &arch.vf]
            .iter()
            .find(|l| l.contains(&0))
        {
            return Err(PolicyError::InvalidArgument(format!(
                "net_arch has a zero-width layer: {z:?}"
            )));
        }
        if !config.log_std_init.is_finite() {
            return Err(PolicyError::InvalidArgument(format!(
                "log_std_init must be finite, got {}",
                config.log_std_init
            )));
        }

        let varmap = VarMap::new();
        let mut make = |name: String, out_dim: usize, in_dim: usize, gain: f64| -> Result<Dense> {
            let (w, b) = match &mut init {
                InitMode::Seeded(rng) if config.ortho_init => (
                    init::orthogonal(out_dim, in_dim, gain, *rng)?,
                    vec![0f32; out_dim],
                ),
                InitMode::Seeded(rng) => init::torch_linear_default(out_dim, in_dim, *rng),
                InitMode::Zeros => (vec![0f32; out_dim * in_dim], vec![0f32; out_dim]),
            };
            let weight = insert_var(
                &varmap,
                format!("{name}.weight"),
                w,
                &[out_dim, in_dim],
                device,
            )?;
            let bias = insert_var(&varmap, format!("{name}.bias"), b, &[out_dim], device)?;
            Ok(Dense { weight, bias })
        };
        // SB3's module order (init draws follow it): mlp_extractor, action_net, value_net.
        let mut stack =
            |prefix: &str, sizes: &[usize], mut in_dim: usize| -> Result<(Vec<Dense>, usize)> {
                let mut layers = Vec::with_capacity(sizes.len());
                for (i, &out_dim) in sizes.iter().enumerate() {
                    // nn.Sequential(Linear, act, Linear, act, ...): Linear layers sit at even indices.
                    layers.push(make(
                        format!("mlp_extractor.{prefix}.{}", 2 * i),
                        out_dim,
                        in_dim,
                        GAIN_HIDDEN,
                    )?);
                    in_dim = out_dim;
                }
                Ok((layers, in_dim))
            };
        let (shared, latent) = stack("shared_net", &arch.shared, obs_dim)?;
        let (pi, latent_pi) = stack("policy_net", &arch.pi, latent)?;
        let (vf, latent_vf) = stack("value_net", &arch.vf, latent)?;
        let out = match head {
            HeadKind::Discrete(n) => n,
            HeadKind::Gaussian(d) | HeadKind::Sde(d) => d,
        };
        let action_net = make("action_net".into(), out, latent_pi, GAIN_ACTION)?;
        let value_net = make("value_net".into(), 1, latent_vf, GAIN_VALUE)?;
        let log_std_shape = match head {
            HeadKind::Gaussian(d) => Some(vec![d]),
            HeadKind::Sde(d) => Some(vec![latent_pi, d]),
            HeadKind::Discrete(_) => None,
        };
        let log_std = match log_std_shape {
            Some(shape) => {
                let v = match init {
                    InitMode::Zeros => 0.0,
                    InitMode::Seeded(_) => config.log_std_init as f32,
                };
                let n = shape.iter().product();
                Some(insert_var(
                    &varmap,
                    "log_std".into(),
                    vec![v; n],
                    &shape,
                    device,
                )?)
            }
            None => None,
        };
        // SB3 draws exploration matrices when it builds a gSDE policy; a loaded one gets them
        // at its first `reset_noise` (or draws per call until then).
        let noise = match (&log_std, head, init) {
            (Some(ls), HeadKind::Sde(_), InitMode::Seeded(rng)) => {
                Some(ExplorationNoise::sample(ls, 1, rng)?)
            }
            _ => None,
        };
        Ok(MlpPolicy {
            config,
            observation_space: observation_space.clone(),
            action_space: action_space.clone(),
            obs_dim,
            head,
            varmap,
            shared,
            pi,
            vf,
            action_net,
            value_net,
            log_std,
            noise: Mutex::new(noise),
            device: device.clone(),
        })
    }

    /// The configuration it was built with.
    pub fn config(&self) -> &MlpPolicyConfig {
        &self.config
    }

    /// The observation space.
    pub fn observation_space(&self) -> &Space {
        &self.observation_space
    }

    /// The action space.
    pub fn action_space(&self) -> &Space {
        &self.action_space
    }

    /// The variables, named as SB3's `state_dict` keys (give `varmap().all_vars()` to an
    /// optimizer; sort by name, or use [`StochasticPolicy::trainable_vars`], where order matters).
    pub fn varmap(&self) -> &VarMap {
        &self.varmap
    }

    /// The names of the parameters, sorted.
    pub fn parameter_names(&self) -> Vec<String> {
        self.trainable_vars().into_iter().map(|(n, _)| n).collect()
    }

    /// A copy of every parameter by SB3 name (a `state_dict`).
    pub fn state_dict(&self) -> Result<HashMap<String, Tensor>> {
        self.trainable_vars()
            .into_iter()
            .map(|(n, v)| Ok((n, v.as_tensor().copy()?)))
            .collect()
    }

    /// Sets every parameter from `tensors`, named as SB3's `state_dict` keys (like PyTorch's
    /// `load_state_dict(strict=True)`): each name must be present with the same shape, and no
    /// other name may appear. Tensors are converted to f32 and moved to this policy's device.
    /// Nothing is changed when an error is returned.
    pub fn load_state_dict(&self, tensors: &HashMap<String, Tensor>) -> Result<()> {
        let vars = self.trainable_vars();
        let mut unexpected: Vec<&String> = tensors
            .keys()
            .filter(|k| !vars.iter().any(|(n, _)| n == *k))
            .collect();
        if !unexpected.is_empty() {
            unexpected.sort();
            return Err(PolicyError::InvalidArgument(format!(
                "unexpected parameter(s) {unexpected:?}; this policy has {:?}",
                vars.iter().map(|(n, _)| n).collect::<Vec<_>>()
            )));
        }
        let mut staged = Vec::with_capacity(vars.len());
        for (name, var) in &vars {
            let t = tensors
                .get(name)
                .ok_or_else(|| PolicyError::InvalidArgument(format!("missing parameter {name}")))?;
            if t.dims() != var.dims() {
                return Err(PolicyError::Shape {
                    what: "parameter",
                    expected: format!("{name} {:?}", var.dims()),
                    actual: format!("{:?}", t.dims()),
                });
            }
            staged.push((var, t.to_dtype(DType::F32)?.to_device(&self.device)?));
        }
        for (var, t) in staged {
            var.set(&t)?;
        }
        Ok(())
    }

    fn check_obs(&self, obs: &Tensor) -> Result<Tensor> {
        match obs.dims() {
            [_, d] if *d == self.obs_dim => {}
            dims => {
                return Err(PolicyError::Shape {
                    what: "observations",
                    expected: format!("[batch, {}]", self.obs_dim),
                    actual: format!("{dims:?}"),
                })
            }
        }
        Ok(if obs.dtype() == DType::F32 {
            obs.clone()
        } else {
            obs.to_dtype(DType::F32)?
        })
    }

    fn mlp(&self, layers: &[Dense], x: &Tensor) -> Result<Tensor> {
        let mut h = x.clone();
        for layer in layers {
            h = layer.forward(&h, Some(self.config.activation))?;
        }
        Ok(h)
    }

    fn dist_from_latent(&self, latent_pi: &Tensor) -> Result<ActionDist> {
        let out = self.action_net.forward(latent_pi, None)?;
        Ok(match (&self.head, &self.log_std) {
            (HeadKind::Gaussian(_), Some(log_std)) => {
                ActionDist::DiagGaussian(DiagGaussian::new(out, log_std.clone())?)
            }
            (HeadKind::Sde(_), Some(log_std)) => ActionDist::StateDependentNoise(
                StateDependentNoise::new(out, log_std.clone(), latent_pi, self.current_noise())?,
            ),
            _ => ActionDist::Categorical(Categorical::from_logits(&out)?),
        })
    }

    /// A copy of the current gSDE exploration matrices (cheap: tensors are shared).
    fn current_noise(&self) -> Option<ExplorationNoise> {
        match self.noise.lock() {
            Ok(n) => n.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn store_noise(&self, noise: ExplorationNoise) {
        match self.noise.lock() {
            Ok(mut n) => *n = Some(noise),
            Err(poisoned) => *poisoned.into_inner() = Some(noise),
        }
    }

    /// The raw `action_net` output `[batch, n]`: logits (discrete) or the Gaussian mean.
    pub fn action_net_output(&self, obs: &Tensor) -> Result<Tensor> {
        let obs = self.check_obs(obs)?;
        let latent = self.mlp(&self.shared, &obs)?;
        self.action_net.forward(&self.mlp(&self.pi, &latent)?, None)
    }
}

/// Candle counts physical cores by parsing `/proc/cpuinfo` on every CPU matmul when
/// `RAYON_NUM_THREADS` is unset, which makes a small policy 3-30x slower; say so once.
fn warn_if_rayon_threads_unset(device: &Device) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    if device.is_cpu() && std::env::var_os("RAYON_NUM_THREADS").is_none() {
        ONCE.call_once(|| {
            eprintln!(
                "rl-policy: RAYON_NUM_THREADS is not set, so Candle re-reads /proc/cpuinfo on every CPU \
                 matmul (policies run several times slower); set RAYON_NUM_THREADS=1 for small networks"
            )
        });
    }
}

/// Creates a named variable in `varmap` from host values.
fn insert_var(
    varmap: &VarMap,
    name: String,
    values: Vec<f32>,
    shape: &[usize],
    device: &Device,
) -> Result<Tensor> {
    let var = Var::from_tensor(&Tensor::from_vec(values, shape, device)?)?;
    let tensor = var.as_tensor().clone();
    varmap
        .data()
        .lock()
        .map_err(|_| PolicyError::InvalidArgument("the VarMap lock is poisoned".into()))?
        .insert(name, var);
    Ok(tensor)
}

impl StochasticPolicy for MlpPolicy {
    fn action_dist(&self, obs: &Tensor) -> Result<ActionDist> {
        let obs = self.check_obs(obs)?;
        let latent = self.mlp(&self.shared, &obs)?;
        self.dist_from_latent(&self.mlp(&self.pi, &latent)?)
    }

    fn trainable_vars(&self) -> Vec<(String, Var)> {
        let mut vars: Vec<(String, Var)> = match self.varmap.data().lock() {
            Ok(map) => map.iter().map(|(n, v)| (n.clone(), v.clone())).collect(),
            Err(poisoned) => poisoned
                .into_inner()
                .iter()
                .map(|(n, v)| (n.clone(), v.clone()))
                .collect(),
        };
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        vars
    }

    fn device(&self) -> &Device {
        &self.device
    }

    fn uses_sde(&self) -> bool {
        matches!(self.head, HeadKind::Sde(_))
    }

    fn reset_noise(&self, n_envs: usize, rng: &mut dyn RngCore) -> Result<()> {
        match (&self.head, &self.log_std) {
            (HeadKind::Sde(_), Some(log_std)) => {
                self.store_noise(ExplorationNoise::sample(log_std, n_envs, rng)?);
                Ok(())
            }
            _ => Err(PolicyError::Unsupported(
                "reset_noise on an MlpPolicy built without use_sde".into(),
            )),
        }
    }

    fn exploration_noise(&self) -> Option<ExplorationNoise> {
        self.current_noise()
    }

    fn set_exploration_noise(&self, noise: ExplorationNoise) -> Result<()> {
        let Some(log_std) = self.log_std.as_ref().filter(|_| self.uses_sde()) else {
            return Err(PolicyError::Unsupported(
                "exploration matrices for an MlpPolicy built without use_sde".into(),
            ));
        };
        if noise.dims() != log_std.dims2()? {
            return Err(PolicyError::Shape {
                what: "gSDE exploration matrices",
                expected: format!("[.., {:?}] (the shape of log_std)", log_std.dims()),
                actual: format!("{:?}", noise.dims()),
            });
        }
        let noise = ExplorationNoise::new(
            noise.single().to_device(&self.device)?,
            noise.per_env().to_device(&self.device)?,
        )?;
        self.store_noise(noise);
        Ok(())
    }
}

impl ActorCritic for MlpPolicy {
    fn forward(&self, obs: &Tensor) -> Result<(ActionDist, Tensor)> {
        let obs = self.check_obs(obs)?;
        let latent = self.mlp(&self.shared, &obs)?;
        let dist = self.dist_from_latent(&self.mlp(&self.pi, &latent)?)?;
        let value = self
            .value_net
            .forward(&self.mlp(&self.vf, &latent)?, None)?
            .squeeze(1)?;
        Ok((dist, value))
    }

    fn mlp_layout(&self) -> Option<MlpLayout> {
        let head = match (&self.head, &self.log_std) {
            (HeadKind::Discrete(_), None) => MlpHead::Categorical,
            (HeadKind::Gaussian(_), Some(log_std)) => MlpHead::DiagGaussian {
                log_std: log_std.clone(),
            },
            _ => return None,
        };
        if !self.device.is_cpu() {
            return None;
        }
        let params =
            |layers: &[Dense]| -> Vec<DenseParams> { layers.iter().map(Dense::params).collect() };
        Some(MlpLayout {
            obs_dim: self.obs_dim,
            activation: self.config.activation,
            shared: params(&self.shared),
            pi: params(&self.pi),
            vf: params(&self.vf),
            action_net: self.action_net.params(),
            value_net: self.value_net.params(),
            head,
        })
    }

    fn predict_values(&self, obs: &Tensor) -> Result<Tensor> {
        let obs = self.check_obs(obs)?;
        let latent = self.mlp(&self.shared, &obs)?;
        Ok(self
            .value_net
            .forward(&self.mlp(&self.vf, &latent)?, None)?
            .squeeze(1)?)
    }
}
