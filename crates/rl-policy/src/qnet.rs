//! Q-networks for value-based algorithms: the [`QFunction`] trait DQN trains, and
//! [`QNetwork`], SB3's `QNetwork` (DQN's default `MlpPolicy`).
//!
//! `QNetwork` is a flattened observation through `create_mlp(obs_dim, n_actions, net_arch,
//! activation)`: `Linear` + activation per hidden layer, then a `Linear` to one value per action
//! with no output activation, initialized with PyTorch's default `nn.Linear` init (SB3 applies
//! no orthogonal init to DQN). Parameters are named as SB3's `q_net` state dict
//! (`q_net.0.weight`, `q_net.0.bias`, `q_net.2.weight`, ...: `nn.Sequential` indices, the
//! activations at the odd ones), so weights move between the two libraries by name.

use crate::activation::Activation;
use crate::error::{PolicyError, ReadError, Result};
use crate::fast::{DenseParams, QLayout};
use crate::init;
use crate::ops;
use crate::policy::Policy;
use crate::validate;
use candle_core::{DType, Device, Tensor, Var, D};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use rl_env::Space;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// A state-action value function over a discrete action space: what DQN trains. Any candle-nn
/// network can implement it.
pub trait QFunction {
    /// `Q(s, a)` for every action, `[batch, n_actions]`, for observations `[batch, obs_dim]`.
    fn q_values(&self, obs: &Tensor) -> Result<Tensor>;

    /// Every trainable variable with a stable name, sorted by name (optimizer state, target
    /// updates and checkpoints pair variables by name).
    fn trainable_vars(&self) -> Vec<(String, Var)>;

    /// The device the parameters live on.
    fn device(&self) -> &Device;

    /// A copy with parameters of its own holding the same values (DQN's target network).
    fn duplicate(&self) -> Result<Self>
    where
        Self: Sized;

    /// The network as a plain MLP ([`QLayout`]) when it is one whose parameters are
    /// contiguous f32 CPU variables: DQN then trains it on the fast path ([`crate::QEngine`]).
    /// The default is `None` (the generic Candle path).
    fn q_layout(&self) -> Option<QLayout> {
        None
    }
}

/// Configuration of a [`QNetwork`]; `Default` is SB3's DQN default.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QNetworkConfig {
    /// Hidden layer sizes (`[64, 64]`).
    pub net_arch: Vec<usize>,
    /// Activation after every hidden layer (`nn.ReLU`).
    pub activation: Activation,
}

impl Default for QNetworkConfig {
    fn default() -> Self {
        QNetworkConfig {
            net_arch: vec![64, 64],
            activation: Activation::ReLU,
        }
    }
}

/// SB3's `QNetwork`: an MLP from observations to one value per discrete action; see the
/// [module docs](self).
pub struct QNetwork {
    config: QNetworkConfig,
    observation_space: Space,
    action_space: Space,
    obs_dim: usize,
    n_actions: usize,
    /// `(name prefix, weight, bias)` per `Linear`, in order.
    layers: Vec<(String, Var, Var)>,
    device: Device,
}

impl std::fmt::Debug for QNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QNetwork")
            .field("config", &self.config)
            .field("observation_space", &self.observation_space)
            .field("action_space", &self.action_space)
            .finish_non_exhaustive()
    }
}

impl QNetwork {
    /// A freshly initialized network for these spaces (observations a `Box`, flattened;
    /// actions `Discrete`, one output per action index `0..n`), with PyTorch's default
    /// `nn.Linear` init drawn from `seed` (layer by layer, weights then bias).
    pub fn new(
        observation_space: &Space,
        action_space: &Space,
        config: QNetworkConfig,
        seed: u64,
        device: &Device,
    ) -> Result<Self> {
        let mut rng = StdRng::seed_from_u64(seed);
        Self::build(
            observation_space,
            action_space,
            config,
            |out, inp| init::torch_linear_default(out, inp, &mut rng),
            device,
        )
    }

    /// A network with these spaces and config whose parameters are set from `tensors`, named as
    /// SB3's `q_net` state dict (see [`QNetwork::load_state_dict`]).
    pub fn from_named_tensors(
        observation_space: &Space,
        action_space: &Space,
        config: QNetworkConfig,
        tensors: &HashMap<String, Tensor>,
        device: &Device,
    ) -> Result<Self> {
        let q = Self::build(
            observation_space,
            action_space,
            config,
            |out, inp| (vec![0.0; out * inp], vec![0.0; out]),
            device,
        )?;
        q.load_state_dict(tensors)?;
        Ok(q)
    }

    fn build(
        observation_space: &Space,
        action_space: &Space,
        config: QNetworkConfig,
        mut init: impl FnMut(usize, usize) -> (Vec<f32>, Vec<f32>),
        device: &Device,
    ) -> Result<Self> {
        // Sizes checked (limits, overflow, parameter count) before anything is allocated.
        let shapes = validate::expected_q_parameters(observation_space, action_space, &config)
            .map_err(|e| match e {
                ReadError::Unsupported(m) => PolicyError::Unsupported(format!("QNetwork: {m}")),
                ReadError::Corrupt(m) => PolicyError::InvalidArgument(format!("QNetwork: {m}")),
                ReadError::Limit { what, limit } => PolicyError::InvalidArgument(format!(
                    "QNetwork: {what} exceeds the limit of {limit}"
                )),
            })?;
        // (weight [out, in], bias [out]) pairs, in layer order.
        let mut layers = Vec::with_capacity(shapes.len() / 2);
        let (mut obs_dim, mut n_actions) = (0, 0);
        for (i, pair) in shapes.chunks_exact(2).enumerate() {
            let (out, inp) = (pair[0].1[0], pair[0].1[1]);
            if i == 0 {
                obs_dim = inp;
            }
            n_actions = out;
            let (wv, bv) = init(out, inp);
            let weight = Var::from_tensor(&Tensor::from_vec(wv, (out, inp), device)?)?;
            let bias = Var::from_tensor(&Tensor::from_vec(bv, out, device)?)?;
            // nn.Sequential(Linear, act, Linear, act, ..., Linear): Linear at even indices.
            layers.push((format!("q_net.{}", 2 * i), weight, bias));
        }
        Ok(QNetwork {
            config,
            observation_space: observation_space.clone(),
            action_space: action_space.clone(),
            obs_dim,
            n_actions,
            layers,
            device: device.clone(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &QNetworkConfig {
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

    /// Number of actions (outputs).
    pub fn n_actions(&self) -> usize {
        self.n_actions
    }

    /// A copy of every parameter by name (a `state_dict`).
    pub fn state_dict(&self) -> Result<HashMap<String, Tensor>> {
        self.trainable_vars()
            .into_iter()
            .map(|(n, v)| Ok((n, v.as_tensor().copy()?)))
            .collect()
    }

    /// Sets every parameter from `tensors` named as SB3's `q_net` state dict (like
    /// `load_state_dict(strict=True)`): each name present with the same shape, no other name,
    /// every value finite. Nothing is changed when an error is returned.
    pub fn load_state_dict(&self, tensors: &HashMap<String, Tensor>) -> Result<()> {
        let vars = self.trainable_vars();
        if let Some(k) = tensors.keys().find(|k| !vars.iter().any(|(n, _)| n == *k)) {
            return Err(PolicyError::InvalidArgument(format!(
                "unexpected parameter {k}; this QNetwork has {:?}",
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
            let t = t.to_dtype(DType::F32)?.to_device(&self.device)?;
            let values: Vec<f32> = t.flatten_all()?.to_vec1()?;
            if let Some((index, &value)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                return Err(PolicyError::InvalidArgument(format!(
                    "parameter {name} holds the non-finite value {value} at {index}"
                )));
            }
            staged.push((var, t));
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
}

impl QFunction for QNetwork {
    fn q_values(&self, obs: &Tensor) -> Result<Tensor> {
        let mut h = self.check_obs(obs)?;
        let last = self.layers.len() - 1;
        for (i, (_, w, b)) in self.layers.iter().enumerate() {
            let act = (i < last).then_some(self.config.activation);
            h = ops::linear(&h, w.as_tensor(), b.as_tensor(), act)?;
        }
        Ok(h)
    }

    fn trainable_vars(&self) -> Vec<(String, Var)> {
        let mut vars: Vec<(String, Var)> = self
            .layers
            .iter()
            .flat_map(|(name, w, b)| {
                [
                    (format!("{name}.weight"), w.clone()),
                    (format!("{name}.bias"), b.clone()),
                ]
            })
            .collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        vars
    }

    fn device(&self) -> &Device {
        &self.device
    }

    fn q_layout(&self) -> Option<QLayout> {
        if !self.device.is_cpu() {
            return None;
        }
        Some(QLayout {
            obs_dim: self.obs_dim,
            activation: self.config.activation,
            layers: self
                .layers
                .iter()
                .map(|(_, w, b)| DenseParams {
                    weight: w.as_tensor().clone(),
                    bias: b.as_tensor().clone(),
                })
                .collect(),
        })
    }

    fn duplicate(&self) -> Result<Self> {
        let copy = |v: &Var| -> Result<Var> { Ok(Var::from_tensor(&v.as_tensor().copy()?)?) };
        let layers = self
            .layers
            .iter()
            .map(|(n, w, b)| Ok((n.clone(), copy(w)?, copy(b)?)))
            .collect::<Result<_>>()?;
        Ok(QNetwork {
            config: self.config.clone(),
            observation_space: self.observation_space.clone(),
            action_space: self.action_space.clone(),
            obs_dim: self.obs_dim,
            n_actions: self.n_actions,
            layers,
            device: self.device.clone(),
        })
    }
}

/// The greedy policy of a Q-function (SB3's `DQNPolicy.predict`): `argmax_a Q(s, a)` as
/// `[batch]` `u32` action indices, whether or not `deterministic` is set (exploration, such as
/// DQN's ε-greedy, belongs to the algorithm). DQN trains the Q-function inside; evaluation,
/// callbacks and `enjoy` act through it.
///
/// ```
/// use rl_policy::{GreedyQPolicy, Policy, QFunction, QNetwork, QNetworkConfig};
/// use rl_env::{BoxSpace, Space};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let obs_space = Space::Box(BoxSpace::uniform(-1.0, 1.0, vec![3])?);
/// let act_space = Space::discrete(4);
/// let device = candle_core::Device::Cpu;
/// let q = QNetwork::new(&obs_space, &act_space, QNetworkConfig::default(), 0, &device)?;
/// let policy = GreedyQPolicy::new(q);
/// let obs = [0.1f32, -0.2, 0.3, 0.0, 0.5, -0.5];
/// let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(0);
/// let actions: Vec<u32> = policy.predict(&obs, 2, true, &mut rng)?.to_vec1()?;
/// // The argmax of each row's Q-values.
/// let q_values = policy.q_function().q_values(&candle_core::Tensor::from_slice(&obs, (2, 3), &device)?)?;
/// for (row, &a) in q_values.to_vec2::<f32>()?.iter().zip(&actions) {
///     assert!(row.iter().all(|&v| v <= row[a as usize]));
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct GreedyQPolicy<Q> {
    q: Q,
}

impl<Q: QFunction> GreedyQPolicy<Q> {
    /// The greedy policy of `q`.
    pub fn new(q: Q) -> Self {
        GreedyQPolicy { q }
    }

    /// The Q-function.
    pub fn q_function(&self) -> &Q {
        &self.q
    }

    /// Gives back the Q-function.
    pub fn into_inner(self) -> Q {
        self.q
    }
}

impl<Q: QFunction> Policy for GreedyQPolicy<Q> {
    fn act(&self, obs: &Tensor, _deterministic: bool, _rng: &mut dyn RngCore) -> Result<Tensor> {
        let q = self.q.q_values(obs)?;
        match q.dims() {
            [b, n] if *b == obs.dims().first().copied().unwrap_or(0) && *n > 0 => {}
            dims => {
                return Err(PolicyError::Shape {
                    what: "Q-values",
                    expected: "[batch, n_actions] with n_actions >= 1".into(),
                    actual: format!("{dims:?}"),
                })
            }
        }
        Ok(q.argmax(D::Minus1)?)
    }

    fn predict(
        &self,
        obs: &[f32],
        batch: usize,
        deterministic: bool,
        rng: &mut dyn RngCore,
    ) -> Result<Tensor> {
        let obs = crate::policy::host_batch(obs, batch, self.q.device())?;
        self.act(&obs, deterministic, rng)
    }
}
