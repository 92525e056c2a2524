//! A user-defined candle-nn network trained by the library's A2C (strategy 2).
//!
//! The network is written here with `candle_nn::{linear, layer_norm, VarBuilder, VarMap}`: a
//! shared trunk `obs -> Linear(64) -> LayerNorm -> tanh -> Linear(64) -> tanh` feeding two
//! heads, action logits and a state value. Implementing `rl_policy`'s `StochasticPolicy` and
//! `ActorCritic` is all it takes for `rl_algos::A2c` to train it. Training on CartPole-v1 stops
//! as soon as a deterministic evaluation (10 episodes) reaches the registered threshold, 475.
//!
//! Run: `cargo run --release --example custom_policy -- [MAX_TIMESTEPS] [--seed N]`
//! (default budget 300000 steps; `--max-timesteps N` works too). A small budget (CI) ends with
//! exit code 0, reporting that the budget was reached before the goal.

#[macro_use]
#[path = "common/cli.rs"]
mod cli;

use candle_core::{DType, Device, Module, Tensor, Var};
use candle_nn::{layer_norm, linear, LayerNorm, Linear, VarBuilder, VarMap};
use clap::Parser;
use rand::rngs::StdRng;
use rand::SeedableRng;
use rl_algos::{A2c, A2cConfig, EvalCallback, StopTrainingOnRewardThreshold};
use rl_env::{make, AutoresetMode, Space, SyncVecEnv, VecEnv};
use rl_policy::{ActionDist, ActorCritic, Categorical, PolicyError, StochasticPolicy};
use std::error::Error;
use std::process::ExitCode;

const ENV_ID: &str = "CartPole-v1";
const HIDDEN: usize = 64;
const LN_EPS: f64 = 1e-5;

/// An actor-critic with a shared trunk and two heads.
struct SharedTrunkActorCritic {
    fc1: Linear,
    norm: LayerNorm,
    fc2: Linear,
    policy_head: Linear,
    value_head: Linear,
    vars: Vec<(String, Var)>,
    device: Device,
}

impl SharedTrunkActorCritic {
    fn new(
        obs_dim: usize,
        n_actions: usize,
        seed: u64,
        device: &Device,
    ) -> rl_policy::Result<Self> {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
        let fc1 = linear(obs_dim, HIDDEN, vb.pp("trunk.fc1"))?;
        let norm = layer_norm(HIDDEN, LN_EPS, vb.pp("trunk.norm"))?;
        let fc2 = linear(HIDDEN, HIDDEN, vb.pp("trunk.fc2"))?;
        let policy_head = linear(HIDDEN, n_actions, vb.pp("pi"))?;
        let value_head = linear(HIDDEN, 1, vb.pp("vf"))?;
        // The optimizer, gradient clipping and checkpoints want the variables in a stable order.
        let mut vars: Vec<(String, Var)> = varmap
            .data()
            .lock()
            .map_err(|_| PolicyError::InvalidArgument("the VarMap lock is poisoned".into()))?
            .iter()
            .map(|(name, var)| (name.clone(), var.clone()))
            .collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        // candle-nn initializes from Candle's RNG, which cannot be seeded: redo the linear
        // layers from `seed` with SB3's orthogonal init (gains sqrt(2) trunk, 0.01 policy head,
        // 1 value head; zero biases), so the same seed gives the same run. LayerNorm keeps its
        // deterministic ones/zeros.
        let mut rng = StdRng::seed_from_u64(seed);
        for (name, var) in &vars {
            if name.starts_with("trunk.norm") {
                continue;
            }
            if name.ends_with(".weight") {
                let (rows, cols) = var.dims2()?;
                let gain = match name.split('.').next() {
                    Some("pi") => 0.01,
                    Some("vf") => 1.0,
                    _ => std::f64::consts::SQRT_2,
                };
                let w = rl_policy::init::orthogonal(rows, cols, gain, &mut rng)?;
                var.set(&Tensor::from_vec(w, (rows, cols), device)?)?;
            } else {
                var.set(&var.zeros_like()?)?;
            }
        }
        Ok(SharedTrunkActorCritic {
            fc1,
            norm,
            fc2,
            policy_head,
            value_head,
            vars,
            device: device.clone(),
        })
    }

    fn trunk(&self, obs: &Tensor) -> candle_core::Result<Tensor> {
        let h = self.fc1.forward(obs)?;
        // `LayerNorm::forward` takes candle-nn's fused kernel, which has no backward pass (the
        // gradient would stop here); `layer_norm_slow` is the same formula in differentiable ops.
        let beta = match self.norm.bias() {
            Some(b) => b.clone(),
            None => self.norm.weight().zeros_like()?,
        };
        let h = candle_nn::ops::layer_norm_slow(&h, self.norm.weight(), &beta, LN_EPS as f32)?;
        self.fc2.forward(&h.tanh()?)?.tanh()
    }
}

impl StochasticPolicy for SharedTrunkActorCritic {
    fn action_dist(&self, obs: &Tensor) -> rl_policy::Result<ActionDist> {
        let logits = self.policy_head.forward(&self.trunk(obs)?)?;
        Ok(ActionDist::Categorical(Categorical::from_logits(&logits)?))
    }

    fn trainable_vars(&self) -> Vec<(String, Var)> {
        self.vars.clone()
    }

    fn device(&self) -> &Device {
        &self.device
    }
}

impl ActorCritic for SharedTrunkActorCritic {
    fn forward(&self, obs: &Tensor) -> rl_policy::Result<(ActionDist, Tensor)> {
        let h = self.trunk(obs)?;
        let logits = self.policy_head.forward(&h)?;
        let value = self.value_head.forward(&h)?.squeeze(1)?;
        Ok((
            ActionDist::Categorical(Categorical::from_logits(&logits)?),
            value,
        ))
    }
}

/// Trains a custom shared-trunk actor-critic with A2C on CartPole-v1.
#[derive(Parser, Debug)]
#[command(name = "custom_policy")]
struct Args {
    /// Budget in environment steps (positional form of --max-timesteps).
    #[arg(value_name = "MAX_TIMESTEPS")]
    budget: Option<u64>,
    /// Budget in environment steps (stops earlier once solved).
    #[arg(long, default_value_t = 300_000, conflicts_with = "budget")]
    max_timesteps: u64,
    /// Seed of the weights, the environments and the action sampling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Environment steps between evaluations.
    #[arg(long, default_value_t = 5_000)]
    eval_freq: u64,
}

fn main() -> ExitCode {
    cli::init();
    // Candle re-reads /proc/cpuinfo on every matmul when this is unset.
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        std::env::set_var("RAYON_NUM_THREADS", "1");
    }
    match run(cli::parse_args::<Args>()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            errln!("custom_policy: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), Box<dyn Error>> {
    let budget = args.budget.unwrap_or(args.max_timesteps);
    let n_envs = 8;
    let threshold = rl_env::registry::reward_threshold(ENV_ID)?.unwrap_or(f64::INFINITY);
    let env = SyncVecEnv::make(ENV_ID, n_envs, AutoresetMode::SameStep)?;
    let Space::Discrete { n, .. } = env.action_space() else {
        return Err(format!("{ENV_ID} should have a discrete action space").into());
    };
    let (obs_dim, n_actions) = (env.observation_space().flat_dim(), *n as usize);
    let policy = SharedTrunkActorCritic::new(obs_dim, n_actions, args.seed, &Device::Cpu)?;
    let n_params: usize = policy.vars.iter().map(|(_, v)| v.elem_count()).sum();
    outln!(
        "Custom actor-critic ({obs_dim} -> {HIDDEN} -> LayerNorm -> {HIDDEN} -> pi[{n_actions}] + \
         v[1], {n_params} parameters) trained by A2C on {ENV_ID} with {n_envs} envs, seed {}",
        args.seed
    );
    outln!(
        "Goal: deterministic evaluation mean >= {threshold} (10 episodes, every {} steps); \
         budget {budget} steps",
        args.eval_freq
    );

    let config = A2cConfig {
        seed: Some(args.seed),
        ..A2cConfig::default()
    };
    let mut model = A2c::new(policy, env, config)?;
    // EvalCallback counts vector steps: one call of on_step is n_envs environment steps.
    let eval_calls = (args.eval_freq / n_envs as u64).max(1);
    let mut eval = EvalCallback::new(make(ENV_ID)?, eval_calls)?
        .with_n_eval_episodes(10)?
        .with_seed(Some(args.seed + 1_000))
        .with_callback_on_new_best(StopTrainingOnRewardThreshold::new(threshold));
    let start = std::time::Instant::now();
    model.learn(budget, &mut [&mut eval])?;
    let secs = start.elapsed().as_secs_f64();
    let steps = model.num_timesteps();
    if eval.best_mean_reward() >= threshold {
        outln!(
            "Solved: evaluation mean {:.1} >= {threshold} after {steps} steps ({secs:.1} s)",
            eval.best_mean_reward()
        );
    } else {
        let best = eval.best_mean_reward();
        let best = if best.is_finite() {
            format!("{best:.1}")
        } else {
            "none yet".into()
        };
        outln!(
            "Stopped at the budget of {budget} steps ({steps} steps, {secs:.1} s) before reaching \
             {threshold}; best evaluation mean: {best}"
        );
    }
    Ok(())
}
