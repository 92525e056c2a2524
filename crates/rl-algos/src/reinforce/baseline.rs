//! The learned state-value baseline of REINFORCE: a small MLP of its own, so that any
//! [`rl_policy::StochasticPolicy`] (which need not have a value head) can use one.

use crate::error::{AlgoError, Result};
use candle_core::{Device, Tensor, Var};
use rand::Rng;
use rl_policy::init::torch_linear_default;
use serde::{Deserialize, Serialize};

/// Configuration of the value baseline `V(s)`: an MLP `obs -> hidden... -> 1` with ReLU
/// activations and PyTorch's default `nn.Linear` initialization, trained by its own Adam on
/// the mean squared error to the episode's (unnormalized) discounted returns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BaselineConfig {
    /// Hidden layer sizes (default `[64]`).
    pub hidden: Vec<usize>,
    /// Adam learning rate of the value network (default 1e-2).
    pub learning_rate: f64,
}

impl Default for BaselineConfig {
    fn default() -> Self {
        BaselineConfig {
            hidden: vec![64],
            learning_rate: 1e-2,
        }
    }
}

/// Most parameters a baseline network may have (2^26 f32 values, 256 MiB): a larger one is a
/// configuration mistake (or a forged checkpoint) and is refused before anything is allocated.
pub const MAX_BASELINE_PARAMETERS: usize = 1 << 26;

/// The value network: `(weight [out, in], bias [out])` per layer, parameters named
/// `baseline.{layer}.weight` / `baseline.{layer}.bias`.
pub(crate) struct ValueNet {
    layers: Vec<(Tensor, Tensor)>,
    vars: Vec<(String, Var)>,
}

impl ValueNet {
    /// Layer widths: the observation, the hidden layers, one value.
    fn dims(obs_dim: usize, config: &BaselineConfig) -> Vec<usize> {
        let mut dims = Vec::with_capacity(config.hidden.len() + 2);
        dims.push(obs_dim);
        dims.extend_from_slice(&config.hidden);
        dims.push(1);
        dims
    }

    /// The number of parameters of the network for `config`, or an error when it overflows
    /// or exceeds [`MAX_BASELINE_PARAMETERS`].
    pub(crate) fn parameter_count(obs_dim: usize, config: &BaselineConfig) -> Result<usize> {
        let params = Self::dims(obs_dim, config)
            .windows(2)
            .try_fold(0usize, |acc, w| {
                w[0].checked_add(1)?
                    .checked_mul(w[1])
                    .and_then(|n| acc.checked_add(n))
            });
        params
            .filter(|&p| p <= MAX_BASELINE_PARAMETERS)
            .ok_or_else(|| {
                AlgoError::InvalidArgument(format!(
                    "baseline hidden layers {:?} on {obs_dim} observations would have more than \
                     {MAX_BASELINE_PARAMETERS} parameters",
                    config.hidden
                ))
            })
    }

    /// A freshly initialized network drawing its weights from `rng`.
    pub(crate) fn new<R: Rng + ?Sized>(
        obs_dim: usize,
        config: &BaselineConfig,
        rng: &mut R,
        device: &Device,
    ) -> Result<Self> {
        if let Some(i) = config.hidden.iter().position(|&h| h == 0) {
            return Err(AlgoError::InvalidArgument(format!(
                "baseline hidden layer {i} has 0 units"
            )));
        }
        let dims = Self::dims(obs_dim, config);
        Self::parameter_count(obs_dim, config)?;
        let mut layers = Vec::with_capacity(dims.len() - 1);
        let mut vars = Vec::with_capacity(2 * (dims.len() - 1));
        for (i, w) in dims.windows(2).enumerate() {
            let (fan_in, fan_out) = (w[0], w[1]);
            let (wv, bv) = torch_linear_default(fan_out, fan_in, rng);
            let weight = Var::from_tensor(&Tensor::from_vec(wv, (fan_out, fan_in), device)?)?;
            let bias = Var::from_tensor(&Tensor::from_vec(bv, fan_out, device)?)?;
            layers.push((weight.as_tensor().clone(), bias.as_tensor().clone()));
            vars.push((format!("baseline.{i}.weight"), weight));
            vars.push((format!("baseline.{i}.bias"), bias));
        }
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(ValueNet { layers, vars })
    }

    /// `V(obs)`, `[batch]` for `obs` `[batch, obs_dim]`.
    pub(crate) fn forward(&self, obs: &Tensor) -> Result<Tensor> {
        let mut h = obs.clone();
        let last = self.layers.len().saturating_sub(1);
        for (i, (w, b)) in self.layers.iter().enumerate() {
            h = h.matmul(&w.t()?)?.broadcast_add(b)?;
            if i < last {
                h = h.relu()?;
            }
        }
        Ok(h.squeeze(1)?)
    }

    /// The parameters, sorted by name.
    pub(crate) fn vars(&self) -> Vec<(String, Var)> {
        self.vars.clone()
    }
}
