//! The fast path of a standard actor-critic MLP on the CPU: [`MlpEngine`] (and, on the same
//! layer stack, of DQN's Q-network: [`QEngine`]).
//!
//! A Candle graph of a CartPole-sized [`crate::MlpPolicy`] spends most of an update in
//! per-op work (graph nodes, backward bookkeeping, an allocation for every intermediate and
//! gradient, `gemm`'s packing buffers) rather than arithmetic. [`MlpEngine`] runs the same
//! network, SB3's `MlpExtractor` (optional shared layers, then the actor and critic stacks,
//! the action and value heads), as plain loops over buffers sized once at construction:
//!
//! - acting: forward, sampling (the same random draws as [`crate::Categorical::sample`] and
//!   [`crate::DiagGaussian::sample`]), log-probabilities and values;
//! - training: a forward that keeps every layer's output, then, given the loss's gradient with
//!   respect to each sample's log-probability, entropy and value, the backward pass through
//!   the distribution, the heads and every layer into persistent gradient buffers (one per
//!   parameter, in the order of the optimizer's variables, see
//!   [`MlpEngine::bind_gradients`]).
//!
//! Nothing is allocated after construction. The parameters are not copied out of the policy:
//! the engine holds the policy's own variables (Candle CPU storages), reads them at every
//! forward, and the optimizers write them in place, so saving, loading, checkpoints and the
//! generic Candle path see the same values at all times.
//!
//! Numerics: the layers' products use [`crate::ops`]'s in-order kernel rather than `gemm`
//! (bias gradients and the weight gradients of narrow layers sum over the batch in a fixed
//! lane order instead, the same on every CPU), and the distribution terms are written out rather than taken from Candle's autograd, so
//! results agree with the generic path to f32 rounding, not bit for bit (the tests bound the
//! difference by 1e-6 relative on outputs, gradients and updated parameters); the activation
//! ([`crate::ops::tanh_f32`]), the sampling and the categorical log-probability are the
//! generic path's own functions. gSDE policies and other devices use the generic path.

mod q;

pub use q::{QEngine, QLayout};

use crate::activation::Activation;
use crate::distributions::sample_row;
use crate::error::{PolicyError, Result};
use crate::ops::matmul::{gemm_nn, gemm_nt, gemm_tn, lane_sum};
use crate::ops::{shift_and_lse, tanh_f32, wide_simd, Kernel};
use candle_core::{DType, Storage, Tensor, Var};
use rand::{Rng, RngCore};
use rand_distr::StandardNormal;

/// `ln(sqrt(2 pi))`, as [`crate::DiagGaussian`] uses it.
const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_7;

/// The parameters of one `nn.Linear` layer: `weight` `[out, in]`, `bias` `[out]`.
#[derive(Clone, Debug)]
pub struct DenseParams {
    /// `[out, in]`, a contiguous f32 CPU variable.
    pub weight: Tensor,
    /// `[out]`, a contiguous f32 CPU variable.
    pub bias: Tensor,
}

/// The action distribution at the end of the actor.
#[derive(Clone, Debug)]
pub enum MlpHead {
    /// Categorical over the `action_net` outputs (logits).
    Categorical,
    /// Diagonal Gaussian with the `action_net` outputs as mean and a state-independent
    /// `log_std` `[d]`.
    DiagGaussian {
        /// `[d]`, a contiguous f32 CPU variable.
        log_std: Tensor,
    },
}

/// A standard actor-critic MLP (SB3's `ActorCriticPolicy` with its `MlpExtractor`) described
/// by its parameters, which [`MlpEngine`] runs. [`crate::ActorCritic::mlp_layout`] returns one
/// for [`crate::MlpPolicy`]; a user's own network of this shape can return one too and train
/// on the fast path.
#[derive(Clone, Debug)]
pub struct MlpLayout {
    /// Flat observation width.
    pub obs_dim: usize,
    /// Activation after every hidden layer (not after the heads).
    pub activation: Activation,
    /// Layers shared by actor and critic.
    pub shared: Vec<DenseParams>,
    /// Actor layers (after the shared ones).
    pub pi: Vec<DenseParams>,
    /// Critic layers (after the shared ones).
    pub vf: Vec<DenseParams>,
    /// The actor's output layer (logits or Gaussian mean).
    pub action_net: DenseParams,
    /// The critic's output layer (`[1, latent_vf]`).
    pub value_net: DenseParams,
    /// The action distribution.
    pub head: MlpHead,
}

/// Where a layer reads its input.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Src {
    Obs,
    Layer(usize),
}

/// Which part of the network a layer belongs to (value-only forwards skip the actor).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Branch {
    Shared,
    Actor,
    Critic,
}

/// One layer with its host copies and buffers.
#[derive(Debug)]
struct Slot {
    weight: Tensor,
    bias: Tensor,
    n_in: usize,
    n_out: usize,
    act: Option<Activation>,
    src: Src,
    branch: Branch,
    /// The bias `[out]` (forward).
    b: Vec<f32>,
    /// Output, feature-major: `[out, batch]` (row `o` holds unit `o` for every sample).
    y: Vec<f32>,
    /// Gradient with respect to the output, then (in place) to the pre-activation, `[out,
    /// batch]`.
    dy: Vec<f32>,
    dy_written: bool,
    /// Indices of the weight's and bias's gradient buffers (after binding).
    grad_w: usize,
    grad_b: usize,
}

/// The distribution's state.
#[derive(Debug)]
enum Head {
    Categorical {
        n: usize,
        /// `exp(z - max z)` of one row (sampling, in f64 as [`crate::Categorical::sample`]).
        weights: Vec<f64>,
        /// `z - max z` of one row.
        shifted: Vec<f32>,
        /// `log pi(j | s_i)` and `pi(j | s_i)` of the last evaluate (`[batch, n]`), which the
        /// backward pass reuses.
        log_p: Vec<f32>,
        p: Vec<f32>,
    },
    Gaussian {
        d: usize,
        log_std: Tensor,
        /// `log_std`, `exp(log_std)` and `log(exp(log_std))`, read at every forward.
        values: Vec<f32>,
        std: Vec<f32>,
        log_scale: Vec<f32>,
        grad: usize,
    },
}

/// Per-sample outputs of [`MlpEngine::evaluate`], each `[batch]`.
#[derive(Clone, Copy, Debug)]
pub struct EngineOutputs<'a> {
    /// `log pi(a | s)`.
    pub log_prob: &'a [f32],
    /// Entropy of `pi(. | s)`.
    pub entropy: &'a [f32],
    /// `V(s)`.
    pub value: &'a [f32],
}

/// A standard MLP policy's forward and backward passes over preallocated buffers; see the
/// [module docs](self).
#[derive(Debug)]
pub struct MlpEngine {
    layers: Layers,
    action_slot: usize,
    value_slot: usize,
    head: Head,
    actions: Vec<f32>,
    log_prob: Vec<f32>,
    entropy: Vec<f32>,
    value: Vec<f32>,
    /// Scratch: one sample's head outputs and their gradient.
    row: Vec<f32>,
    grow: Vec<f32>,
    grads: Vec<Vec<f32>>,
    bound: bool,
    /// Whether the last forward kept what a backward needs (an evaluation).
    evaluated: bool,
}

fn invalid(m: String) -> PolicyError {
    PolicyError::InvalidArgument(m)
}

/// A stack of dense layers over buffers sized at construction: the forward and backward
/// passes through the layers that [`MlpEngine`] and [`QEngine`] share (each adds its heads).
#[derive(Debug)]
struct Layers {
    obs_dim: usize,
    max_batch: usize,
    /// Rows of the last forward.
    batch: usize,
    slots: Vec<Slot>,
    /// The last observations, row-major `[batch, obs_dim]` and feature-major `[obs_dim,
    /// batch]`.
    obs: Vec<f32>,
    obs_t: Vec<f32>,
    /// Scratch: a layer input turned row-major, a second input gradient for shared layers.
    xr: Vec<f32>,
    tmp: Vec<f32>,
}

impl Layers {
    fn new(slots: Vec<Slot>, obs_dim: usize, max_batch: usize) -> Result<Self> {
        if max_batch == 0 || obs_dim == 0 {
            return Err(invalid(format!(
                "fast MLP engine: max_batch {max_batch} and obs_dim {obs_dim} must be positive"
            )));
        }
        let widest = slots.iter().map(|s| s.n_out.max(s.n_in)).max().unwrap_or(1);
        let overflow = || invalid("fast MLP engine: a buffer size overflows".into());
        let obs_len = max_batch.checked_mul(obs_dim).ok_or_else(overflow)?;
        let scratch = max_batch.checked_mul(widest).ok_or_else(overflow)?;
        Ok(Layers {
            obs_dim,
            max_batch,
            batch: 0,
            slots,
            obs: vec![0.0; obs_len],
            obs_t: vec![0.0; obs_len],
            xr: vec![0.0; scratch],
            tmp: vec![0.0; scratch],
        })
    }

    /// The rows of `obs` (a multiple of `obs_dim` values, at most `max_batch` rows).
    fn rows(&self, obs: &[f32]) -> Result<usize> {
        let m = obs.len() / self.obs_dim;
        if m == 0 || m * self.obs_dim != obs.len() || m > self.max_batch {
            return Err(PolicyError::Shape {
                what: "fast MLP observations",
                expected: format!("1 to {} rows of {} values", self.max_batch, self.obs_dim),
                actual: format!("{} values", obs.len()),
            });
        }
        Ok(m)
    }

    /// Runs the layers on `obs` with the current parameters, skipping those of branch `skip`.
    /// Activations are feature-major (`[units, batch]`), so each layer is `Y^T = W X^T` on the
    /// weight as stored: no per-call transpose of any weight. Returns the rows.
    fn forward(&mut self, obs: &[f32], skip: Option<Branch>) -> Result<usize> {
        let m = self.rows(obs)?;
        let od = self.obs_dim;
        self.batch = m;
        self.obs[..obs.len()].copy_from_slice(obs);
        transpose(obs, m, od, &mut self.obs_t);
        for k in 0..self.slots.len() {
            let (done, rest) = self.slots.split_at_mut(k);
            let s = &mut rest[0];
            if skip == Some(s.branch) {
                continue;
            }
            read_f32(&s.bias, &mut s.b)?;
            let x: &[f32] = match s.src {
                Src::Obs => &self.obs_t,
                Src::Layer(j) => &done[j].y,
            };
            let y = &mut s.y[..s.n_out * m];
            with_f32(&s.weight, |w| gemm_nn(s.n_out, m, s.n_in, w, x, y))?;
            wide_simd(BiasActRows {
                y,
                b: &s.b,
                m,
                act: s.act,
            });
        }
        Ok(m)
    }

    /// Marks every layer's output gradient as not yet written (before a backward pass writes
    /// the heads' ones).
    fn clear_output_grads(&mut self) {
        for s in &mut self.slots {
            s.dy_written = false;
        }
    }

    /// The backward pass of the last forward from the output gradients written so far (each
    /// written slot's `dy`, `[out, batch]`): every layer, last to first, writes its weight's and
    /// bias's gradients into `grads` (at the slot's indices) and passes its input gradient to
    /// the layer it reads.
    fn backward(&mut self, grads: &mut [Vec<f32>]) -> Result<()> {
        let m = self.batch;
        // Each layer is complete once all its consumers (later layers) are done.
        for k in (0..self.slots.len()).rev() {
            let (lo, hi) = self.slots.split_at_mut(k);
            let s = &mut hi[0];
            if !s.dy_written {
                continue;
            }
            let (n_in, n_out) = (s.n_in, s.n_out);
            let dz = &mut s.dy[..n_out * m];
            let y = &s.y[..n_out * m];
            wide_simd(ActivationGradBias {
                dz,
                y,
                m,
                act: s.act,
                db: &mut grads[s.grad_b],
            });
            // dW = dZ X (`[out, batch]` times `[batch, in]`). A product too narrow for the
            // tiles of `gemm_nn` (a head's few outputs, a first layer's few inputs) is taken
            // as dot products of the feature-major rows; otherwise the input is turned
            // row-major (the observations already are).
            let x_t: &[f32] = match s.src {
                Src::Obs => &self.obs_t,
                Src::Layer(j) => &lo[j].y,
            };
            let dw = &mut grads[s.grad_w];
            if n_out < NARROW_OUT || n_in < NARROW_IN {
                gemm_nt(n_out, n_in, m, dz, x_t, dw);
            } else {
                let x: &[f32] = match s.src {
                    Src::Obs => &self.obs,
                    Src::Layer(_) => {
                        transpose(x_t, n_in, m, &mut self.xr);
                        &self.xr
                    }
                };
                gemm_nn(n_out, n_in, m, dz, x, dw);
            }
            if let Src::Layer(j) = s.src {
                // dX^T = W^T dZ^T, reading the stored weight transposed (no copy).
                let t = &mut lo[j];
                if t.dy_written {
                    let tmp = &mut self.tmp;
                    with_f32(&s.weight, |w| gemm_tn(n_in, m, n_out, w, dz, tmp))?;
                    t.dy[..n_in * m]
                        .iter_mut()
                        .zip(&self.tmp)
                        .for_each(|(d, &x)| *d += x);
                } else {
                    let dy = &mut t.dy;
                    with_f32(&s.weight, |w| gemm_tn(n_in, m, n_out, w, dz, dy))?;
                    t.dy_written = true;
                }
            }
        }
        Ok(())
    }

    /// Every layer's weight and bias, in layer order.
    fn params(&self) -> Vec<&Tensor> {
        self.slots
            .iter()
            .flat_map(|s| [&s.weight, &s.bias])
            .collect()
    }

    /// Sets the layers' gradient indices from `index` (two per layer, as [`Layers::params`]).
    fn set_grad_indices(&mut self, index: &[usize]) {
        for (s, ix) in self.slots.iter_mut().zip(index.chunks_exact(2)) {
            s.grad_w = ix[0];
            s.grad_b = ix[1];
        }
    }

    /// Multiply-adds of one forward pass of one observation through every layer.
    fn forward_macs_per_sample(&self) -> usize {
        self.slots.iter().map(|s| s.n_in * s.n_out).sum()
    }
}

/// For each of `params`, the index of the variable of `vars` that is it (same tensor, same
/// shape): every parameter must be matched once, and `vars` hold nothing else. Also returns
/// one zeroed gradient buffer per variable.
fn bind_indices(params: &[&Tensor], vars: &[(String, Var)]) -> Result<(Vec<usize>, Vec<Vec<f32>>)> {
    if params.len() != vars.len() {
        return Err(invalid(format!(
            "fast MLP engine: the network has {} parameters, the optimizer {} variables",
            params.len(),
            vars.len()
        )));
    }
    let mut index: Vec<Option<usize>> = vec![None; params.len()];
    for (i, (name, var)) in vars.iter().enumerate() {
        let k = params
            .iter()
            .position(|t| t.id() == var.as_tensor().id())
            .ok_or_else(|| {
                invalid(format!(
                    "fast MLP engine: optimizer variable {name} is not a parameter of the network"
                ))
            })?;
        if params[k].dims() != var.dims() || index[k].is_some() {
            return Err(invalid(format!(
                "fast MLP engine: optimizer variable {name} {:?} does not match its parameter {:?} \
                 (or appears twice)",
                var.dims(),
                params[k].dims()
            )));
        }
        index[k] = Some(i);
    }
    // As many variables as parameters, each matched once: every parameter has its index.
    let index = index.into_iter().map(|i| i.unwrap_or(0)).collect();
    let grads = vars
        .iter()
        .map(|(_, v)| vec![0.0; v.elem_count()])
        .collect();
    Ok((index, grads))
}

/// Copies the values of a contiguous f32 CPU tensor into `out` (same length).
fn read_f32(t: &Tensor, out: &mut [f32]) -> Result<()> {
    with_f32(t, |v| {
        if v.len() == out.len() {
            out.copy_from_slice(v);
            Ok(())
        } else {
            Err(invalid(format!(
                "the fast MLP path needs {} parameter values, got {:?} {:?}",
                out.len(),
                t.dtype(),
                t.dims()
            )))
        }
    })?
}

fn check_param(t: &Tensor, dims: &[usize], what: &str) -> Result<()> {
    if t.dtype() != DType::F32 || !t.device().is_cpu() || !t.is_contiguous() || t.dims() != dims {
        return Err(PolicyError::Shape {
            what: "fast MLP parameter",
            expected: format!("{what}: a contiguous f32 CPU tensor {dims:?}"),
            actual: format!(
                "{:?} {:?} on {:?}",
                t.dtype(),
                t.dims(),
                t.device().location()
            ),
        });
    }
    Ok(())
}

/// Builds the layers in order, checking that they chain.
struct SlotBuilder {
    slots: Vec<Slot>,
    max_batch: usize,
}

impl SlotBuilder {
    /// Adds a layer reading `src` (`n_in` wide); returns its index and width.
    fn push(
        &mut self,
        p: &DenseParams,
        src: Src,
        n_in: usize,
        act: Option<Activation>,
        branch: Branch,
    ) -> Result<(usize, usize)> {
        let n_out = p.weight.dims().first().copied().unwrap_or(0);
        check_param(&p.weight, &[n_out, n_in], "weight")?;
        check_param(&p.bias, &[n_out], "bias")?;
        if n_out == 0 {
            return Err(invalid("fast MLP engine: a layer has no outputs".into()));
        }
        let size = self.max_batch.checked_mul(n_out).ok_or_else(|| {
            invalid(format!(
                "fast MLP engine: batch {} x {n_out} overflows",
                self.max_batch
            ))
        })?;
        self.slots.push(Slot {
            weight: p.weight.clone(),
            bias: p.bias.clone(),
            n_in,
            n_out,
            act,
            src,
            branch,
            b: vec![0.0; n_out],
            y: vec![0.0; size],
            dy: vec![0.0; size],
            dy_written: false,
            grad_w: 0,
            grad_b: 0,
        });
        Ok((self.slots.len() - 1, n_out))
    }

    /// Adds hidden layers one after another from `src`; returns the last one and its width.
    fn stack(
        &mut self,
        layers: &[DenseParams],
        mut src: Src,
        mut width: usize,
        act: Option<Activation>,
        branch: Branch,
    ) -> Result<(Src, usize)> {
        for p in layers {
            let (i, out) = self.push(p, src, width, act, branch)?;
            src = Src::Layer(i);
            width = out;
        }
        Ok((src, width))
    }
}

impl MlpEngine {
    /// An engine for `layout` that runs batches of up to `max_batch` observations. Checks that
    /// every parameter is a contiguous f32 CPU tensor and that the layers chain.
    pub fn new(layout: MlpLayout, max_batch: usize) -> Result<Self> {
        let act = Some(layout.activation);
        let mut b = SlotBuilder {
            slots: Vec::new(),
            max_batch,
        };
        let (latent, width) = b.stack(
            &layout.shared,
            Src::Obs,
            layout.obs_dim,
            act,
            Branch::Shared,
        )?;
        let (pi_src, pi_width) = b.stack(&layout.pi, latent, width, act, Branch::Actor)?;
        let (action_slot, n_out) =
            b.push(&layout.action_net, pi_src, pi_width, None, Branch::Actor)?;
        let (vf_src, vf_width) = b.stack(&layout.vf, latent, width, act, Branch::Critic)?;
        let (value_slot, one) =
            b.push(&layout.value_net, vf_src, vf_width, None, Branch::Critic)?;
        let slots = b.slots;
        if one != 1 {
            return Err(invalid(format!(
                "fast MLP engine: value_net has {one} outputs, expected 1"
            )));
        }
        let head = match layout.head {
            MlpHead::Categorical => Head::Categorical {
                n: n_out,
                weights: vec![0.0; n_out],
                shifted: vec![0.0; n_out],
                log_p: vec![0.0; max_batch.saturating_mul(n_out)],
                p: vec![0.0; max_batch.saturating_mul(n_out)],
            },
            MlpHead::DiagGaussian { log_std } => {
                check_param(&log_std, &[n_out], "log_std")?;
                Head::Gaussian {
                    d: n_out,
                    log_std,
                    values: vec![0.0; n_out],
                    std: vec![0.0; n_out],
                    log_scale: vec![0.0; n_out],
                    grad: 0,
                }
            }
        };
        let act_dim = match head {
            Head::Categorical { .. } => 1,
            Head::Gaussian { d, .. } => d,
        };
        Ok(MlpEngine {
            layers: Layers::new(slots, layout.obs_dim, max_batch)?,
            action_slot,
            value_slot,
            head,
            actions: vec![0.0; max_batch * act_dim],
            log_prob: vec![0.0; max_batch],
            entropy: vec![0.0; max_batch],
            value: vec![0.0; max_batch],
            row: vec![0.0; n_out],
            grow: vec![0.0; n_out],
            grads: Vec::new(),
            bound: false,
            evaluated: false,
        })
    }

    /// Flat observation width.
    pub fn obs_dim(&self) -> usize {
        self.layers.obs_dim
    }

    /// Values per action: 1 (an index) for a categorical head, `d` for a Gaussian one.
    pub fn act_dim(&self) -> usize {
        match self.head {
            Head::Categorical { .. } => 1,
            Head::Gaussian { d, .. } => d,
        }
    }

    /// The largest batch this engine runs.
    pub fn max_batch(&self) -> usize {
        self.layers.max_batch
    }

    /// Multiply-adds of one forward pass of one observation through the whole network (a
    /// backward pass costs about twice that): for throughput figures.
    pub fn forward_macs_per_sample(&self) -> usize {
        self.layers.forward_macs_per_sample()
    }

    /// Allocates one gradient buffer per variable of `vars` (an optimizer's variables, in its
    /// order): each must be one of the layout's parameters, with the same shape, and every
    /// parameter must be among them. [`MlpEngine::backward`] then fills
    /// [`MlpEngine::gradients`] in that order.
    pub fn bind_gradients(&mut self, vars: &[(String, Var)]) -> Result<()> {
        let mut params = self.layers.params();
        if let Head::Gaussian { log_std, .. } = &self.head {
            params.push(log_std);
        }
        let (index, grads) = bind_indices(&params, vars)?;
        self.layers.set_grad_indices(&index);
        if let Head::Gaussian { grad, .. } = &mut self.head {
            *grad = index[index.len() - 1];
        }
        self.grads = grads;
        self.bound = true;
        Ok(())
    }

    /// The gradients of the last [`MlpEngine::backward`], one buffer per variable in the order
    /// given to [`MlpEngine::bind_gradients`].
    pub fn gradients(&self) -> &[Vec<f32>] {
        &self.grads
    }

    /// Runs the layers on `obs` with the current parameters (the actor's only when
    /// `critic_only` is false) and reads the Gaussian head's `log_std`.
    fn forward(&mut self, obs: &[f32], critic_only: bool) -> Result<usize> {
        self.evaluated = false;
        let m = self
            .layers
            .forward(obs, critic_only.then_some(Branch::Actor))?;
        if let Head::Gaussian {
            log_std,
            values,
            std,
            log_scale,
            ..
        } = &mut self.head
        {
            read_f32(log_std, values)?;
            for ((s, l), &v) in std.iter_mut().zip(log_scale.iter_mut()).zip(values.iter()) {
                *s = v.exp();
                *l = s.ln();
            }
        }
        Ok(m)
    }

    /// The values `V(s)` of `obs` (`values.len()` rows of `obs_dim` values).
    pub fn predict_values(&mut self, obs: &[f32], values: &mut [f32]) -> Result<()> {
        let m = self.forward(obs, true)?;
        if values.len() != m {
            return Err(invalid(format!(
                "fast MLP engine: {m} observations but room for {} values",
                values.len()
            )));
        }
        values.copy_from_slice(&self.layers.slots[self.value_slot].y[..m]);
        Ok(())
    }

    /// SB3's rollout step for `obs`: one action per row sampled from `rng` (the same draws as
    /// the generic path: one uniform f64 per row for a categorical head, `d` standard normals
    /// per row for a Gaussian one) into `actions` (`[batch, act_dim]`, indices as f32 for a
    /// categorical head, unclipped values for a Gaussian one), with its log-probability and the
    /// value. Non-finite logits or means are an error.
    pub fn act(
        &mut self,
        obs: &[f32],
        rng: &mut dyn RngCore,
        actions: &mut [f32],
        values: &mut [f32],
        log_probs: &mut [f32],
    ) -> Result<()> {
        let m = self.forward(obs, false)?;
        let act_dim = self.act_dim();
        if values.len() != m || log_probs.len() != m || actions.len() != m * act_dim {
            return Err(invalid(format!(
                "fast MLP engine: {m} observations but room for {} actions, {} values and {} \
                 log-probabilities",
                actions.len(),
                values.len(),
                log_probs.len()
            )));
        }
        values.copy_from_slice(&self.layers.slots[self.value_slot].y[..m]);
        let out = &self.layers.slots[self.action_slot].y[..act_dim_out(&self.head) * m];
        let row = &mut self.row;
        match &mut self.head {
            Head::Categorical {
                weights, shifted, ..
            } => {
                if let Some(bad) = out.iter().find(|x| !x.is_finite()) {
                    return Err(invalid(format!(
                        "cannot sample from a non-finite logit {bad}"
                    )));
                }
                for (i, (a, lp)) in actions.iter_mut().zip(log_probs.iter_mut()).enumerate() {
                    gather(out, m, i, row);
                    let pick = sample_row(row, weights, rng);
                    *a = pick as f32;
                    let lse = shift_and_lse(row, shifted);
                    *lp = shifted[pick] - lse;
                }
            }
            Head::Gaussian {
                d, std, log_scale, ..
            } => {
                let d = *d;
                if let Some(bad) = out.iter().find(|x| !x.is_finite()) {
                    return Err(invalid(format!(
                        "cannot sample from a non-finite Gaussian mean {bad}"
                    )));
                }
                for a in actions.iter_mut() {
                    *a = rng.sample::<f32, _>(StandardNormal);
                }
                for (i, (a, lp)) in actions
                    .chunks_exact_mut(d)
                    .zip(log_probs.iter_mut())
                    .enumerate()
                {
                    gather(out, m, i, row);
                    for ((a, &mu), &s) in a.iter_mut().zip(row.iter()).zip(std.iter()) {
                        *a = mu + *a * s;
                    }
                    *lp = gaussian_log_prob(row, a, std, log_scale);
                }
            }
        }
        Ok(())
    }

    /// The forward pass of training: log-probabilities of `actions` (`[batch, act_dim]`, as
    /// [`MlpEngine::act`] writes them), entropies and values of `obs`, keeping what
    /// [`MlpEngine::backward`] needs. Action indices must be whole numbers in `0..n`.
    pub fn evaluate(&mut self, obs: &[f32], actions: &[f32]) -> Result<EngineOutputs<'_>> {
        let m = self.forward(obs, false)?;
        let act_dim = self.act_dim();
        if actions.len() != m * act_dim {
            return Err(invalid(format!(
                "fast MLP engine: {m} observations but {} action values ({act_dim} each)",
                actions.len()
            )));
        }
        self.actions[..actions.len()].copy_from_slice(actions);
        let out = &self.layers.slots[self.action_slot].y[..act_dim_out(&self.head) * m];
        self.value[..m].copy_from_slice(&self.layers.slots[self.value_slot].y[..m]);
        let (lp, ent, row) = (
            &mut self.log_prob[..m],
            &mut self.entropy[..m],
            &mut self.row,
        );
        match &mut self.head {
            Head::Categorical {
                n,
                shifted,
                log_p,
                p,
                ..
            } => {
                let n = *n;
                let rows = log_p.chunks_exact_mut(n).zip(p.chunks_exact_mut(n));
                for (i, (&a, (log_p, p))) in actions.iter().zip(rows).enumerate() {
                    if !(a >= 0.0 && a < n as f32 && a.fract() == 0.0) {
                        return Err(invalid(format!(
                            "discrete actions must be whole numbers in 0..{n}, got {a}"
                        )));
                    }
                    gather(out, m, i, row);
                    let lse = shift_and_lse(row, shifted);
                    lp[i] = shifted[a as usize] - lse;
                    let mut h = 0f32;
                    for ((lj, pj), &s) in log_p.iter_mut().zip(p.iter_mut()).zip(shifted.iter()) {
                        *lj = s - lse;
                        *pj = lj.exp();
                        h += *pj * *lj;
                    }
                    ent[i] = -h;
                }
            }
            Head::Gaussian {
                d, std, log_scale, ..
            } => {
                let d = *d;
                let per_dim = (0.5 + LN_SQRT_2PI) as f32;
                let entropy = log_scale.iter().fold(0f32, |acc, &l| acc + (l + per_dim));
                for (i, a) in actions.chunks_exact(d).enumerate() {
                    gather(out, m, i, row);
                    lp[i] = gaussian_log_prob(row, a, std, log_scale);
                    ent[i] = entropy;
                }
            }
        }
        self.evaluated = true;
        Ok(EngineOutputs {
            log_prob: &self.log_prob[..m],
            entropy: &self.entropy[..m],
            value: &self.value[..m],
        })
    }

    /// The backward pass of the last [`MlpEngine::evaluate`] for a loss with these gradients
    /// with respect to each sample's log-probability, entropy (`None`: the loss does not use
    /// it) and value: the parameters' gradients are written (not added) into
    /// [`MlpEngine::gradients`]. Needs [`MlpEngine::bind_gradients`] first.
    pub fn backward(
        &mut self,
        d_log_prob: &[f32],
        d_entropy: Option<&[f32]>,
        d_value: &[f32],
    ) -> Result<()> {
        let m = self.layers.batch;
        if !self.bound || !self.evaluated {
            return Err(invalid(
                "fast MLP engine: backward needs bound gradients and an evaluate first".into(),
            ));
        }
        if d_log_prob.len() != m || d_value.len() != m || d_entropy.is_some_and(|d| d.len() != m) {
            return Err(invalid(format!(
                "fast MLP engine: {m} samples, gradients of {} / {} / {:?} values",
                d_log_prob.len(),
                d_value.len(),
                d_entropy.map(<[f32]>::len)
            )));
        }
        self.layers.clear_output_grads();
        // The heads' output gradients.
        let (action_slot, value_slot) = (self.action_slot, self.value_slot);
        {
            let vs = &mut self.layers.slots[value_slot];
            vs.dy[..m].copy_from_slice(d_value);
            vs.dy_written = true;
        }
        let s = &mut self.layers.slots[action_slot];
        let n_out = s.n_out;
        let (out, dy) = (&s.y[..n_out * m], &mut s.dy[..n_out * m]);
        s.dy_written = true;
        let (row, grow) = (&mut self.row, &mut self.grow);
        match &mut self.head {
            Head::Categorical { n, log_p, p, .. } => {
                let n = *n;
                let rows = log_p.chunks_exact(n).zip(p.chunks_exact(n)).take(m);
                for (i, (log_p, p)) in rows.enumerate() {
                    let a = self.actions[i] as usize;
                    let (u, h) = (d_log_prob[i], self.entropy[i]);
                    let lp = log_p.iter().zip(p.iter());
                    for (j, (g, (&l, &p))) in grow.iter_mut().zip(lp).enumerate() {
                        let hit = if j == a { 1.0 } else { 0.0 };
                        *g = u * (hit - p);
                        if let Some(de) = d_entropy {
                            *g += -de[i] * p * (l + h);
                        }
                    }
                    scatter(grow, m, i, dy);
                }
            }
            Head::Gaussian { std, grad, .. } => {
                let gl = &mut self.grads[*grad];
                gl.iter_mut().for_each(|x| *x = 0.0);
                for (i, a) in self.actions.chunks_exact(n_out).take(m).enumerate() {
                    gather(out, m, i, row);
                    let u = d_log_prob[i];
                    for (j, ((g, &mu), &a)) in grow.iter_mut().zip(row.iter()).zip(a).enumerate() {
                        let var = std[j] * std[j];
                        let diff = a - mu;
                        *g = u * (diff / var);
                        gl[j] += u * (diff * diff / var - 1.0);
                        if let Some(de) = d_entropy {
                            gl[j] += de[i];
                        }
                    }
                    scatter(grow, m, i, dy);
                }
            }
        }
        self.layers.backward(&mut self.grads)
    }

    /// `mean(exp(log_std))` in f32 as SB3 logs `train/std` (`None` for a categorical head).
    pub fn std_mean(&self) -> Result<Option<f64>> {
        match &self.head {
            Head::Categorical { .. } => Ok(None),
            Head::Gaussian { log_std, .. } => {
                let (storage, layout) = log_std.storage_and_layout();
                let values = match (&*storage, layout.contiguous_offsets()) {
                    (Storage::Cpu(cpu), Some((a, b))) => {
                        cpu.as_slice::<f32>().ok().and_then(|v| v.get(a..b))
                    }
                    _ => None,
                };
                let v = values.ok_or_else(|| invalid("log_std is not on the CPU".into()))?;
                let sum = v.iter().fold(0f32, |acc, &x| acc + x.exp());
                Ok(Some(f64::from(sum / v.len() as f32)))
            }
        }
    }
}

/// Weight gradients of layers with fewer outputs than this, or fewer inputs than
/// [`NARROW_IN`], are computed by [`gemm_nt`] (measured faster there than transposing the input
/// for [`gemm_nn`], whose tiles need four rows and sixteen columns to reach full speed).
const NARROW_OUT: usize = 4;
/// See [`NARROW_OUT`].
const NARROW_IN: usize = 16;

/// The outputs of the action head: logits or mean.
fn act_dim_out(head: &Head) -> usize {
    match head {
        Head::Categorical { n, .. } => *n,
        Head::Gaussian { d, .. } => *d,
    }
}

/// `dst` `[cols, rows]` = the transpose of `src` `[rows, cols]` (row-major), compiled for the
/// CPU's vector unit ([`wide_simd`]).
fn transpose(src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) {
    wide_simd(Transpose {
        src,
        rows,
        cols,
        dst,
    })
}

/// The loop of [`transpose`]: 4 x 4 blocks (four rows in, two rounds of pairwise interleaving,
/// four rows out, which compile to vector shuffles), the ragged edges element by element.
struct Transpose<'a> {
    src: &'a [f32],
    rows: usize,
    cols: usize,
    dst: &'a mut [f32],
}

impl Kernel for Transpose<'_> {
    #[inline(always)]
    fn run(self) {
        const B: usize = 4;
        let (rows, cols) = (self.rows, self.cols);
        let (src, dst) = (&self.src[..rows * cols], &mut self.dst[..rows * cols]);
        let (rb, cb) = (rows / B * B, cols / B * B);
        let quad = |at: usize| -> [f32; B] {
            let q = &src[at..at + B];
            [q[0], q[1], q[2], q[3]]
        };
        for r0 in (0..rb).step_by(B) {
            for c0 in (0..cb).step_by(B) {
                let [a, b, c, d] = [0, 1, 2, 3].map(|r| quad((r0 + r) * cols + c0));
                let (ab_lo, ab_hi) = ([a[0], b[0], a[1], b[1]], [a[2], b[2], a[3], b[3]]);
                let (cd_lo, cd_hi) = ([c[0], d[0], c[1], d[1]], [c[2], d[2], c[3], d[3]]);
                let out = [
                    [ab_lo[0], ab_lo[1], cd_lo[0], cd_lo[1]],
                    [ab_lo[2], ab_lo[3], cd_lo[2], cd_lo[3]],
                    [ab_hi[0], ab_hi[1], cd_hi[0], cd_hi[1]],
                    [ab_hi[2], ab_hi[3], cd_hi[2], cd_hi[3]],
                ];
                for (k, col) in out.iter().enumerate() {
                    dst[(c0 + k) * rows + r0..][..B].copy_from_slice(col);
                }
            }
            for r in r0..r0 + B {
                for c in cb..cols {
                    dst[c * rows + r] = src[r * cols + c];
                }
            }
        }
        for r in rb..rows {
            for c in 0..cols {
                dst[c * rows + r] = src[r * cols + c];
            }
        }
    }
}

/// Sample `i`'s column of a feature-major `[units, m]` buffer into `row` (`units` values).
fn gather(buf: &[f32], m: usize, i: usize, row: &mut [f32]) {
    for (j, r) in row.iter_mut().enumerate() {
        *r = buf[j * m + i];
    }
}

/// `row` into sample `i`'s column of a feature-major `[units, m]` buffer.
fn scatter(row: &[f32], m: usize, i: usize, buf: &mut [f32]) {
    for (j, &r) in row.iter().enumerate() {
        buf[j * m + i] = r;
    }
}

/// Runs `f` on the values of a contiguous f32 CPU tensor, read in place.
fn with_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    let (storage, layout) = t.storage_and_layout();
    let values = match (&*storage, layout.contiguous_offsets()) {
        (Storage::Cpu(cpu), Some((start, end))) => {
            cpu.as_slice::<f32>().ok().and_then(|v| v.get(start..end))
        }
        _ => None,
    };
    match values {
        Some(v) => Ok(f(v)),
        None => Err(invalid(format!(
            "the fast MLP path needs contiguous f32 CPU parameters, got {:?} {:?}",
            t.dtype(),
            t.dims()
        ))),
    }
}

/// `y[o, i] = act(y[o, i] + b[o])` over a feature-major `[units, m]` buffer.
struct BiasActRows<'a> {
    y: &'a mut [f32],
    b: &'a [f32],
    m: usize,
    act: Option<Activation>,
}

impl Kernel for BiasActRows<'_> {
    #[inline(always)]
    fn run(self) {
        if self.m == 0 {
            return;
        }
        for (row, &b) in self.y.chunks_exact_mut(self.m).zip(self.b) {
            row.iter_mut().for_each(|y| *y += b);
        }
        // The activation over the whole buffer in one loop: rows of a small batch (8 samples)
        // are shorter than a vector register, and a loop per row would run them scalar.
        match self.act {
            None => {}
            Some(Activation::Tanh) => self.y.iter_mut().for_each(|y| *y = tanh_f32(*y)),
            Some(Activation::ReLU) => self.y.iter_mut().for_each(|y| *y = y.max(0.0)),
        }
    }
}

/// The backward step through a layer's activation and bias over a feature-major `[units, m]`
/// buffer: `dz *= act'(z)` (from the stored output `y`), then `db[o]` = the sum of row `o` of
/// `dz` over the samples ([`lane_sum`]).
struct ActivationGradBias<'a> {
    dz: &'a mut [f32],
    y: &'a [f32],
    m: usize,
    act: Option<Activation>,
    db: &'a mut [f32],
}

impl Kernel for ActivationGradBias<'_> {
    #[inline(always)]
    fn run(self) {
        let ActivationGradBias { dz, y, m, act, db } = self;
        match act {
            None => {}
            Some(Activation::Tanh) => dz.iter_mut().zip(y).for_each(|(g, &r)| *g *= 1.0 - r * r),
            // relu'(z) = [z > 0], and z > 0 exactly when relu(z) > 0.
            Some(Activation::ReLU) => dz
                .iter_mut()
                .zip(y)
                .for_each(|(g, &r)| *g = if r > 0.0 { *g } else { 0.0 }),
        }
        if m == 0 {
            return;
        }
        for (d, row) in db.iter_mut().zip(dz.chunks_exact(m)) {
            *d = lane_sum(row);
        }
    }
}

/// `sum_j -(a_j - mu_j)^2 / (2 std_j^2) - log std_j - ln sqrt(2 pi)` in f32, in the order of
/// [`crate::DiagGaussian::log_prob`]'s ops.
fn gaussian_log_prob(mean: &[f32], a: &[f32], std: &[f32], log_scale: &[f32]) -> f32 {
    let c = -LN_SQRT_2PI as f32;
    mean.iter()
        .zip(a)
        .zip(std.iter().zip(log_scale))
        .fold(0f32, |acc, ((&mu, &a), (&s, &l))| {
            let diff = a - mu;
            let var2 = s * s * 2.0;
            acc + ((-(diff * diff / var2) - l) + c)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ActorCritic, MlpPolicy, MlpPolicyConfig, NetArch, StochasticPolicy};
    use candle_core::Device;
    use rand::SeedableRng;
    use rl_env::Space;

    fn policies() -> Vec<(String, MlpPolicy)> {
        let obs = Space::boxed(vec![-1.0; 5], vec![1.0; 5], vec![5]).unwrap();
        let boxed = Space::boxed(vec![-2.0; 3], vec![2.0; 3], vec![3]).unwrap();
        let mut out = Vec::new();
        for (act_name, action_space) in [("discrete", Space::discrete(4)), ("box", boxed)] {
            for (arch_name, net_arch) in [
                ("separate", NetArch::default()),
                (
                    "shared",
                    NetArch {
                        shared: vec![24],
                        pi: vec![16, 20],
                        vf: vec![],
                    },
                ),
            ] {
                for activation in [Activation::Tanh, Activation::ReLU] {
                    let config = MlpPolicyConfig {
                        net_arch: net_arch.clone(),
                        activation,
                        log_std_init: -0.3,
                        ..MlpPolicyConfig::default()
                    };
                    let p = MlpPolicy::new(&obs, &action_space, config, 7, &Device::Cpu).unwrap();
                    // Larger head weights than SB3's 0.01 gain, so the heads' gradients matter.
                    for (name, var) in p.trainable_vars() {
                        if name.starts_with("action_net.weight") {
                            var.set(&var.as_tensor().affine(60.0, 0.0).unwrap())
                                .unwrap();
                        }
                    }
                    out.push((format!("{act_name}/{arch_name}/{activation:?}"), p));
                }
            }
        }
        out
    }

    fn close(what: &str, got: &[f32], want: &[f32], tol: f32) {
        assert_eq!(got.len(), want.len(), "{what}");
        for (g, w) in got.iter().zip(want) {
            assert!(
                (g - w).abs() <= tol * w.abs().max(1.0),
                "{what}: {g} vs {w}\n{got:?}\n{want:?}"
            );
        }
    }

    /// Acting, evaluation and every parameter's gradient agree with the generic Candle path
    /// within 1e-6 (relative above 1), for both heads, shared and separate layers, both
    /// activations; the sampled actions are the same draws.
    #[test]
    fn transpose_moves_every_element_for_ragged_shapes() {
        for (rows, cols) in [
            (1, 1),
            (8, 8),
            (40, 64),
            (64, 40),
            (3, 17),
            (17, 3),
            (9, 8),
            (8, 9),
        ] {
            let src: Vec<f32> = (0..rows * cols).map(|i| i as f32).collect();
            let mut dst = vec![f32::NAN; rows * cols];
            transpose(&src, rows, cols, &mut dst);
            for r in 0..rows {
                for c in 0..cols {
                    assert_eq!(
                        dst[c * rows + r],
                        src[r * cols + c],
                        "{rows}x{cols} at {r},{c}"
                    );
                }
            }
        }
    }

    #[test]
    fn engine_matches_the_generic_path() {
        let batch = 9;
        for (name, policy) in policies() {
            let layout = policy.mlp_layout().expect("a standard MLP");
            let mut engine = MlpEngine::new(layout, batch).unwrap();
            let vars = policy.trainable_vars();
            engine.bind_gradients(&vars).unwrap();
            let obs: Vec<f32> = (0..batch * 5)
                .map(|i| ((i * 37 % 17) as f32 - 8.0) * 0.11)
                .collect();
            let obs_t = Tensor::from_slice(&obs, (batch, 5), &Device::Cpu).unwrap();
            // Acting.
            let d = engine.act_dim();
            let (mut a, mut v, mut lp) =
                (vec![0f32; batch * d], vec![0f32; batch], vec![0f32; batch]);
            let mut rng = rand::rngs::StdRng::seed_from_u64(3);
            engine.act(&obs, &mut rng, &mut a, &mut v, &mut lp).unwrap();
            let mut rng = rand::rngs::StdRng::seed_from_u64(3);
            let (dist, values) = policy.forward(&obs_t).unwrap();
            let actions = dist.sample(&mut rng).unwrap();
            let want_lp: Vec<f32> = dist.log_prob(&actions).unwrap().to_vec1().unwrap();
            let want_a: Vec<f32> = actions
                .to_dtype(DType::F32)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            close(&format!("{name}: actions"), &a, &want_a, 1e-6);
            close(
                &format!("{name}: values"),
                &v,
                &values.to_vec1::<f32>().unwrap(),
                1e-6,
            );
            close(&format!("{name}: log_probs"), &lp, &want_lp, 1e-6);
            let mut v1 = vec![0f32; batch];
            engine.predict_values(&obs, &mut v1).unwrap();
            assert_eq!(v1, v, "{name}: value-only forward");
            // One row at a time gives the rows of the batch bit for bit.
            let mut one = [0f32];
            engine.predict_values(&obs[5..10], &mut one).unwrap();
            assert_eq!(one[0].to_bits(), v[1].to_bits(), "{name}");

            // Training: loss = sum(w_lp lp) + sum(w_ent ent) + sum(w_v v).
            let w_lp: Vec<f32> = (0..batch).map(|i| 0.3 - 0.07 * i as f32).collect();
            let w_ent: Vec<f32> = (0..batch).map(|i| -0.01 * (i % 3) as f32).collect();
            let w_v: Vec<f32> = (0..batch).map(|i| 0.05 * i as f32 - 0.2).collect();
            let out = engine.evaluate(&obs, &want_a).unwrap();
            let eval = policy.evaluate_actions(&obs_t, &actions).unwrap();
            close(
                &format!("{name}: eval log_prob"),
                out.log_prob,
                &eval.log_prob.to_vec1::<f32>().unwrap(),
                1e-6,
            );
            close(
                &format!("{name}: eval entropy"),
                out.entropy,
                &eval.entropy.to_vec1::<f32>().unwrap(),
                1e-6,
            );
            close(
                &format!("{name}: eval value"),
                out.value,
                &eval.value.to_vec1::<f32>().unwrap(),
                1e-6,
            );
            engine.backward(&w_lp, Some(&w_ent), &w_v).unwrap();
            let t = |w: &[f32]| Tensor::from_slice(w, batch, &Device::Cpu).unwrap();
            let loss = ((eval.log_prob * t(&w_lp)).unwrap().sum_all().unwrap()
                + (eval.entropy * t(&w_ent)).unwrap().sum_all().unwrap()
                + (eval.value * t(&w_v)).unwrap().sum_all().unwrap())
            .unwrap();
            let grads = loss.backward().unwrap();
            for ((vname, var), g) in vars.iter().zip(engine.gradients()) {
                let want: Vec<f32> = grads
                    .get(var.as_tensor())
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1()
                    .unwrap();
                close(&format!("{name}: d/d {vname}"), g, &want, 1e-6);
            }
            // Without the entropy term.
            engine.evaluate(&obs, &want_a).unwrap();
            engine.backward(&w_lp, None, &w_v).unwrap();
        }
    }

    #[test]
    fn bad_inputs_are_errors() {
        let (_, policy) = policies().remove(0);
        let mut engine = MlpEngine::new(policy.mlp_layout().unwrap(), 2).unwrap();
        let mut v = [0f32; 3];
        assert!(
            engine.predict_values(&[0.0; 15], &mut v).is_err(),
            "batch too large"
        );
        assert!(
            engine.predict_values(&[0.0; 4], &mut v[..1]).is_err(),
            "ragged row"
        );
        assert!(
            engine.evaluate(&[0.0; 5], &[4.0]).is_err(),
            "action out of range"
        );
        assert!(
            engine.evaluate(&[0.0; 5], &[0.5]).is_err(),
            "fractional action"
        );
        engine.evaluate(&[0.0; 5], &[1.0]).unwrap();
        assert!(
            engine.backward(&[1.0], None, &[1.0]).is_err(),
            "unbound gradients"
        );
        assert!(engine
            .bind_gradients(&policy.trainable_vars()[1..])
            .is_err());
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let obs = [f32::NAN, 0.0, 0.0, 0.0, 0.0];
        let (mut a, mut lp) = ([0f32], [0f32]);
        assert!(engine
            .act(&obs, &mut rng, &mut a, &mut v[..1], &mut lp)
            .is_err());
        assert!(MlpEngine::new(policy.mlp_layout().unwrap(), 0).is_err());
    }
}
