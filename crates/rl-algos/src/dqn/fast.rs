//! DQN's gradient step on the fast path: [`DqnFastUpdate`].
//!
//! The same step as [`super::dqn_targets`] then [`super::dqn_update`] for a Q-network that is a
//! plain MLP ([`rl_policy::QFunction::q_layout`]): the target network's forward and the online
//! network's forward and backward run in [`QEngine`]s; the TD targets, the loss and its
//! gradient are computed here with the same f32 formulas (torch's `max`, Huber or MSE with the
//! mean in f64, the backward kernels' `norm * d`); the gradient norm and the Adam step run over
//! the engine's persistent gradient buffers ([`Optimizer::step_host`]). No tensor is built and
//! nothing is allocated per step. Results agree with the generic path to f32 rounding (the
//! layers' products are summed in another order; tests bound the difference by 1e-6).

use super::{DqnLoss, DqnStats};
use crate::error::{AlgoError, Result};
use crate::optim::{clip_and_step_host, require_host_step, Optimizer};
use rl_policy::{QEngine, QLayout};

/// One batch of transitions on the host, `B` samples ([`super::DqnBatch`]'s fields as slices).
#[derive(Clone, Copy, Debug)]
pub struct DqnHostBatch<'a> {
    /// Observations `[B, obs_dim]`.
    pub observations: &'a [f32],
    /// Action indices `[B]` (whole numbers in `0..n_actions`, as f32).
    pub actions: &'a [f32],
    /// Next observations `[B, obs_dim]`.
    pub next_observations: &'a [f32],
    /// Rewards `[B]`.
    pub rewards: &'a [f32],
    /// `done * (1 - timeout)` `[B]`.
    pub dones: &'a [f32],
    /// Per-sample discounts `[B]` (n-step buffers), or empty for `gamma` itself.
    pub discounts: &'a [f32],
}

/// DQN's gradient step ([`super::dqn_targets`] and [`super::dqn_update`]) through
/// [`QEngine`]s, with buffers for batches of up to `max_batch` samples. `Dqn` uses it
/// automatically when both its networks return a [`rl_policy::QFunction::q_layout`].
#[derive(Debug)]
pub struct DqnFastUpdate {
    online: QEngine,
    target: QEngine,
    targets: Vec<f32>,
    d_q: Vec<f32>,
    /// Samples of the last update.
    batch: usize,
}

impl DqnFastUpdate {
    /// An update of the network `q_net` against the target network `q_target` (same shapes),
    /// whose gradients follow `optimizer`'s variables (exactly `q_net`'s parameters, stepped on
    /// the host).
    pub fn new(
        q_net: QLayout,
        q_target: QLayout,
        max_batch: usize,
        optimizer: &dyn Optimizer,
    ) -> Result<Self> {
        require_host_step(optimizer, "DQN")?;
        let mut online = QEngine::new(q_net, max_batch)?;
        online.bind_gradients(optimizer.vars())?;
        let target = QEngine::new(q_target, max_batch)?;
        if (target.obs_dim(), target.n_actions()) != (online.obs_dim(), online.n_actions()) {
            return Err(AlgoError::InvalidArgument(format!(
                "DQN: the target network maps {} values to {}, the Q-network {} to {}",
                target.obs_dim(),
                target.n_actions(),
                online.obs_dim(),
                online.n_actions()
            )));
        }
        let n = online.n_actions();
        Ok(DqnFastUpdate {
            online,
            target,
            targets: vec![0.0; max_batch],
            d_q: vec![0.0; max_batch * n],
            batch: 0,
        })
    }

    /// The largest batch this update takes.
    pub fn max_batch(&self) -> usize {
        self.online.max_batch()
    }

    /// The TD targets of the last [`DqnFastUpdate::update`] (`[B]`).
    pub fn targets(&self) -> &[f32] {
        &self.targets[..self.batch]
    }

    /// One gradient step on `batch`: TD targets `r + ((1 - done) * gamma^k) * max_a
    /// Q_target(s', a)`, the loss against them, backward, global-norm clipping at
    /// `max_grad_norm` (`f64::INFINITY`: none), optimizer step at its learning rate. A
    /// non-finite loss or gradient norm leaves the parameters untouched and returns
    /// [`AlgoError::Diverged`] naming `iteration`.
    pub fn update(
        &mut self,
        optimizer: &mut dyn Optimizer,
        batch: &DqnHostBatch<'_>,
        gamma: f64,
        loss: DqnLoss,
        max_grad_norm: f64,
        iteration: u64,
    ) -> Result<DqnStats> {
        let b = batch.actions.len();
        let od = self.online.obs_dim();
        let lens_ok = batch.rewards.len() == b
            && batch.dones.len() == b
            && (batch.discounts.is_empty() || batch.discounts.len() == b)
            && batch.observations.len() == b * od
            && batch.next_observations.len() == b * od;
        if b == 0 || b > self.online.max_batch() || !lens_ok {
            return Err(AlgoError::InvalidArgument(format!(
                "DQN batch: {b} actions (1 to {}), {} rewards, {} dones, {} discounts, {} and {} \
                 observation values ({od} each)",
                self.online.max_batch(),
                batch.rewards.len(),
                batch.dones.len(),
                batch.discounts.len(),
                batch.observations.len(),
                batch.next_observations.len()
            )));
        }
        let n = self.online.n_actions();
        self.batch = b;
        // Targets, as `dqn_targets` (torch.max returns NaN when a row holds one; so does the
        // fold).
        let next = self.target.q_values(batch.next_observations)?;
        let g = gamma as f32;
        for (i, row) in next.chunks_exact(n).enumerate() {
            let max = row.iter().fold(
                f32::NEG_INFINITY,
                |m, &x| {
                    if x > m || x.is_nan() {
                        x
                    } else {
                        m
                    }
                },
            );
            let discount = batch.discounts.get(i).copied().unwrap_or(g);
            self.targets[i] = batch.rewards[i] + ((1.0 - batch.dones[i]) * discount) * max;
        }
        // The loss, as `dqn_loss`'s op: the mean of the terms summed in f64.
        let q = self.online.q_values(batch.observations)?;
        let mut sum = 0f64;
        for (i, &a) in batch.actions.iter().enumerate() {
            if !(a >= 0.0 && a < n as f32 && a.fract() == 0.0) {
                return Err(AlgoError::InvalidArgument(format!(
                    "DQN batch: action {a} is not an index of the {n} Q-values"
                )));
            }
            sum += f64::from(loss.term(q[i * n + a as usize] - self.targets[i]));
        }
        let loss_value = f64::from((sum as f32) / b as f32);
        if !loss_value.is_finite() {
            return Err(AlgoError::Diverged {
                iteration,
                what: "the DQN loss".into(),
            });
        }
        // The op's backward for d loss = 1 at each sample's action, 0 elsewhere.
        let d_q = &mut self.d_q[..b * n];
        d_q.fill(0.0);
        for (i, &a) in batch.actions.iter().enumerate() {
            let k = i * n + a as usize;
            d_q[k] = loss.grad(q[k] - self.targets[i], b, 1.0);
        }
        self.online.backward(d_q)?;
        let grad_norm =
            clip_and_step_host(optimizer, self.online.gradients(), max_grad_norm, iteration)?;
        Ok(DqnStats {
            loss: loss_value,
            grad_norm,
        })
    }
}
