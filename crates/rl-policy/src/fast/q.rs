//! A Q-network on the fast path: [`QEngine`].
//!
//! DQN's network (SB3's `QNetwork`) is a plain MLP from observations to one value per action.
//! [`QEngine`] runs it on the same layer stack as [`super::MlpEngine`]: buffers sized at
//! construction, the network's own variables read at every forward, and a backward pass from
//! the loss's gradient with respect to each Q-value into persistent gradient buffers (one per
//! optimizer variable), with nothing allocated per call.

use super::{bind_indices, invalid, transpose, Branch, DenseParams, Layers, SlotBuilder, Src};
use crate::activation::Activation;
use crate::error::Result;
use candle_core::Var;

/// A plain MLP from observations to one value per action, described by its parameters, which
/// [`QEngine`] runs. [`crate::QFunction::q_layout`] returns one for [`crate::QNetwork`]; a
/// user's own network of this shape can return one too.
#[derive(Clone, Debug)]
pub struct QLayout {
    /// Flat observation width.
    pub obs_dim: usize,
    /// Activation after every hidden layer (not after the output layer).
    pub activation: Activation,
    /// The hidden layers, then the output layer (`[n_actions, last width]`).
    pub layers: Vec<DenseParams>,
}

/// A Q-network's forward and backward passes over preallocated buffers (the layer stack of
/// [`crate::fast`], as [`super::MlpEngine`]'s): nothing is allocated after construction.
#[derive(Debug)]
pub struct QEngine {
    layers: Layers,
    n_actions: usize,
    /// The Q-values of the last forward, row-major `[batch, n_actions]`.
    q: Vec<f32>,
    grads: Vec<Vec<f32>>,
    bound: bool,
    /// Whether a forward has run since construction (what a backward needs).
    forwarded: bool,
}

impl QEngine {
    /// An engine for `layout` that runs batches of up to `max_batch` observations. Checks that
    /// every parameter is a contiguous f32 CPU tensor and that the layers chain.
    pub fn new(layout: QLayout, max_batch: usize) -> Result<Self> {
        let Some((output, hidden)) = layout.layers.split_last() else {
            return Err(invalid("fast Q engine: the network has no layers".into()));
        };
        let mut b = SlotBuilder {
            slots: Vec::new(),
            max_batch,
        };
        let act = Some(layout.activation);
        let (src, width) = b.stack(hidden, Src::Obs, layout.obs_dim, act, Branch::Shared)?;
        let (_, n_actions) = b.push(output, src, width, None, Branch::Shared)?;
        let q_len = max_batch
            .checked_mul(n_actions)
            .ok_or_else(|| invalid("fast Q engine: the output buffer size overflows".into()))?;
        Ok(QEngine {
            layers: Layers::new(b.slots, layout.obs_dim, max_batch)?,
            n_actions,
            q: vec![0.0; q_len],
            grads: Vec::new(),
            bound: false,
            forwarded: false,
        })
    }

    /// Flat observation width.
    pub fn obs_dim(&self) -> usize {
        self.layers.obs_dim
    }

    /// Values per observation (one per action).
    pub fn n_actions(&self) -> usize {
        self.n_actions
    }

    /// The largest batch this engine runs.
    pub fn max_batch(&self) -> usize {
        self.layers.max_batch
    }

    /// Allocates one gradient buffer per variable of `vars` (an optimizer's variables, in its
    /// order): each must be one of the layout's parameters, with the same shape, and every
    /// parameter must be among them. [`QEngine::backward`] then fills [`QEngine::gradients`]
    /// in that order.
    pub fn bind_gradients(&mut self, vars: &[(String, Var)]) -> Result<()> {
        let (index, grads) = bind_indices(&self.layers.params(), vars)?;
        self.layers.set_grad_indices(&index);
        self.grads = grads;
        self.bound = true;
        Ok(())
    }

    /// The gradients of the last [`QEngine::backward`], one buffer per variable in the order
    /// given to [`QEngine::bind_gradients`].
    pub fn gradients(&self) -> &[Vec<f32>] {
        &self.grads
    }

    /// `Q(s, .)` of `obs` (rows of `obs_dim` values), row-major `[rows, n_actions]`, with the
    /// current parameters; keeps what [`QEngine::backward`] needs.
    pub fn q_values(&mut self, obs: &[f32]) -> Result<&[f32]> {
        let m = self.layers.forward(obs, None)?;
        let n = self.n_actions;
        let out = &self.layers.slots[self.layers.slots.len() - 1].y[..n * m];
        transpose(out, n, m, &mut self.q);
        self.forwarded = true;
        Ok(&self.q[..m * n])
    }

    /// The backward pass of the last [`QEngine::q_values`] for a loss whose gradient with
    /// respect to each Q-value is `d_q` (row-major `[rows, n_actions]`): the parameters'
    /// gradients are written (not added) into [`QEngine::gradients`]. Needs
    /// [`QEngine::bind_gradients`] first.
    pub fn backward(&mut self, d_q: &[f32]) -> Result<()> {
        let (m, n) = (self.layers.batch, self.n_actions);
        if !self.bound || !self.forwarded {
            return Err(invalid(
                "fast Q engine: backward needs bound gradients and a forward first".into(),
            ));
        }
        if d_q.len() != m * n {
            return Err(invalid(format!(
                "fast Q engine: {m} rows of {n} Q-values, {} gradient values",
                d_q.len()
            )));
        }
        self.layers.clear_output_grads();
        let last = self.layers.slots.len() - 1;
        let out = &mut self.layers.slots[last];
        transpose(d_q, m, n, &mut out.dy);
        out.dy_written = true;
        self.layers.backward(&mut self.grads)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{QFunction, QNetwork, QNetworkConfig};
    use candle_core::{Device, Tensor};
    use rl_env::{BoxSpace, Space};

    fn close(what: &str, got: &[f32], want: &[f32], tol: f32) {
        assert_eq!(got.len(), want.len(), "{what}");
        for (g, w) in got.iter().zip(want) {
            assert!(
                (g - w).abs() <= tol * w.abs().max(1.0),
                "{what}: {g} vs {w}"
            );
        }
    }

    /// Q-values and every parameter's gradient agree with the generic Candle path within
    /// 1e-6 (relative above 1), for both activations, several widths and batch sizes.
    #[test]
    fn engine_matches_the_generic_path() {
        let dev = Device::Cpu;
        let cases = [
            (4, 2, vec![64, 64], Activation::ReLU, 32),
            (6, 3, vec![16], Activation::Tanh, 5),
            (2, 5, vec![256, 256], Activation::ReLU, 64),
            (3, 1, vec![], Activation::ReLU, 7),
        ];
        for (obs_dim, n, net_arch, activation, batch) in cases {
            let obs_space = Space::Box(BoxSpace::uniform(-1.0, 1.0, vec![obs_dim]).unwrap());
            let config = QNetworkConfig {
                net_arch,
                activation,
            };
            let q = QNetwork::new(
                &obs_space,
                &Space::Discrete {
                    n: n as u64,
                    start: 0,
                },
                config,
                3,
                &dev,
            )
            .expect("network");
            let obs: Vec<f32> = (0..batch * obs_dim)
                .map(|i| ((i * 37 % 23) as f32 - 11.0) * 0.09)
                .collect();
            let d_q: Vec<f32> = (0..batch * n)
                .map(|i| ((i * 13 % 7) as f32 - 3.0) * 0.05)
                .collect();
            let vars = q.trainable_vars();
            let mut engine = QEngine::new(q.q_layout().expect("layout"), batch).expect("engine");
            engine.bind_gradients(&vars).expect("bind");
            let fast = engine.q_values(&obs).expect("forward").to_vec();
            engine.backward(&d_q).expect("backward");
            let obs_t = Tensor::from_slice(&obs, (batch, obs_dim), &dev).unwrap();
            let q_t = q.q_values(&obs_t).unwrap();
            let want: Vec<f32> = q_t.flatten_all().unwrap().to_vec1().unwrap();
            close("Q-values", &fast, &want, 1e-6);
            let w = Tensor::from_slice(&d_q, (batch, n), &dev).unwrap();
            let grads = (q_t * w).unwrap().sum_all().unwrap().backward().unwrap();
            for ((name, var), got) in vars.iter().zip(engine.gradients()) {
                let want: Vec<f32> = grads
                    .get(var.as_tensor())
                    .expect("gradient")
                    .flatten_all()
                    .unwrap()
                    .to_vec1()
                    .unwrap();
                close(name, got, &want, 1e-6);
            }
        }
    }

    #[test]
    fn bad_inputs_are_errors() {
        let dev = Device::Cpu;
        let space = Space::Box(BoxSpace::uniform(-1.0, 1.0, vec![4]).unwrap());
        let q = QNetwork::new(
            &space,
            &Space::Discrete { n: 2, start: 0 },
            QNetworkConfig::default(),
            0,
            &dev,
        )
        .unwrap();
        assert!(QEngine::new(q.q_layout().unwrap(), 0).is_err());
        let empty = QLayout {
            obs_dim: 4,
            activation: Activation::ReLU,
            layers: Vec::new(),
        };
        assert!(QEngine::new(empty, 8).is_err());
        let mut engine = QEngine::new(q.q_layout().unwrap(), 8).unwrap();
        // Backward before binding or forwarding.
        assert!(engine.backward(&[0.0; 2]).is_err());
        engine.bind_gradients(&q.trainable_vars()).unwrap();
        assert!(engine.backward(&[0.0; 2]).is_err());
        // Wrong observation lengths, too many rows, wrong gradient length.
        assert!(engine.q_values(&[0.0; 3]).is_err());
        assert!(engine.q_values(&[0.0; 36]).is_err());
        engine.q_values(&[0.1; 8]).unwrap();
        assert!(engine.backward(&[0.0; 3]).is_err());
        engine.backward(&[0.0; 4]).unwrap();
        // Variables of another network.
        let other = q.duplicate().unwrap();
        assert!(engine.bind_gradients(&other.trainable_vars()).is_err());
    }
}
