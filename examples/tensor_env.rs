//! A Candle model drives an environment through `TensorEnv`: a small candle-nn MLP, untrained
//! (weights drawn from a seeded RNG, so every run is the same), picks CartPole-v1 actions
//! greedily, and each episode's return is printed.
//!
//! Run: `cargo run --release --example tensor_env -- [EPISODES] [SEED]` (defaults: 5 and 0).

#[macro_use]
#[path = "common/cli.rs"]
mod cli;

use candle_core::{Device, Module, Tensor, D};
use candle_nn::Linear;
use clap::Parser;
use rand::distributions::{Distribution, Uniform};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rl_env::make;
use rl_tensor_bridge::TensorEnv;
use std::process::ExitCode;

/// An untrained candle-nn MLP plays CartPole-v1 through `TensorEnv`, greedily; prints each
/// episode's return.
#[derive(Parser, Debug)]
#[command(name = "tensor_env")]
struct Args {
    /// Number of episodes.
    #[arg(default_value_t = 5)]
    episodes: u64,
    /// Seed of the weights; episode k is reset with seed SEED + k.
    #[arg(default_value_t = 0)]
    seed: u64,
}

/// obs -> 64 tanh units -> one logit per action.
struct Mlp {
    hidden: Linear,
    logits: Linear,
}

impl Mlp {
    fn new(
        obs_dim: usize,
        n_actions: usize,
        rng: &mut StdRng,
        dev: &Device,
    ) -> candle_core::Result<Self> {
        Ok(Mlp {
            hidden: linear(obs_dim, 64, rng, dev)?,
            logits: linear(64, n_actions, rng, dev)?,
        })
    }
}

impl Module for Mlp {
    fn forward(&self, obs: &Tensor) -> candle_core::Result<Tensor> {
        self.logits.forward(&self.hidden.forward(obs)?.tanh()?)
    }
}

/// PyTorch's default `nn.Linear` init, U(-1/sqrt(in), 1/sqrt(in)), from our seeded RNG:
/// Candle's own RNG cannot be seeded.
fn linear(inp: usize, out: usize, rng: &mut StdRng, dev: &Device) -> candle_core::Result<Linear> {
    let bound = 1.0 / (inp as f32).sqrt();
    let u = Uniform::new_inclusive(-bound, bound);
    let w: Vec<f32> = (0..out * inp).map(|_| u.sample(rng)).collect();
    let b: Vec<f32> = (0..out).map(|_| u.sample(rng)).collect();
    Ok(Linear::new(
        Tensor::from_vec(w, (out, inp), dev)?,
        Some(Tensor::from_vec(b, out, dev)?),
    ))
}

fn main() -> ExitCode {
    cli::init();
    // Candle re-reads /proc/cpuinfo on every matmul when this is unset.
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        std::env::set_var("RAYON_NUM_THREADS", "1");
    }
    let args: Args = cli::parse_args();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            errln!("tensor_env: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let (episodes, seed) = (args.episodes, args.seed);
    let device = Device::Cpu;
    let mut env = TensorEnv::new(make("CartPole-v1")?, device.clone())?;
    let obs_dim = env.observation_space().flat_dim();
    let n_actions = env
        .action_space()
        .n()
        .ok_or("CartPole has a discrete action space")? as usize;
    let mut rng = StdRng::seed_from_u64(seed);
    let model = Mlp::new(obs_dim, n_actions, &mut rng, &device)?;

    let mut total = 0.0;
    for episode in 0..episodes {
        let (mut obs, _info) = env.reset(Some(seed.wrapping_add(episode)))?;
        let (mut episode_return, mut length) = (0.0, 0u64);
        loop {
            // [obs_dim] -> [1, obs_dim] -> logits [1, n_actions] -> greedy action [1] (u32).
            let action = model.forward(&obs.unsqueeze(0)?)?.argmax(D::Minus1)?;
            let step = env.step(&action)?;
            episode_return += step.reward_f64();
            length += 1;
            if step.is_done() {
                break;
            }
            obs = step.obs;
        }
        total += episode_return;
        outln!("episode {episode}: return {episode_return} ({length} steps)");
    }
    if episodes > 0 {
        outln!(
            "mean return over {episodes} episodes: {:.2}",
            total / episodes as f64
        );
    }
    Ok(())
}
