//! Steps CartPole-v1 with a uniformly random policy and prints every episode's return.
//!
//! `cargo run --release --example random_agent -- [EPISODES] [SEED]` (defaults: 10 and 0)

#[macro_use]
#[path = "common/cli.rs"]
mod cli;

use clap::Parser;
use rand::{Rng, SeedableRng};
use rl::prelude::*;
use std::process::ExitCode;

/// CartPole-v1 with a uniformly random policy: every episode's return, then their mean.
#[derive(Parser, Debug)]
#[command(name = "random_agent")]
struct Args {
    /// Number of episodes.
    #[arg(default_value_t = 10)]
    episodes: usize,
    /// Seed of the first reset (later resets continue its generator, as in Gymnasium) and of
    /// the actions.
    #[arg(default_value_t = 0)]
    seed: u64,
}

fn main() -> ExitCode {
    cli::init();
    let args: Args = cli::parse_args();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            errln!("random_agent: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let mut env = make("CartPole-v1")?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed);
    let mut obs = vec![0.0f32; env.observation_space().flat_dim()];
    let mut returns = Vec::new();
    for ep in 0..args.episodes {
        // Seed the first episode only; later resets continue the generator, as in Gymnasium.
        let ep_seed = (ep == 0).then(|| rl::env::Seed::from(args.seed));
        env.reset_into(ep_seed.as_ref(), &mut obs)?;
        let (mut ret, mut len) = (0.0, 0u32);
        loop {
            let action = rng.gen_range(0..2);
            let out = env.step_into(Action::Discrete(action), &mut obs)?;
            ret += out.reward;
            len += 1;
            if out.done() {
                break;
            }
        }
        outln!("episode {ep:>3}: return {ret:>6.1}  length {len:>4}");
        returns.push(ret);
    }
    if !returns.is_empty() {
        let mean = returns.iter().sum::<f64>() / returns.len() as f64;
        outln!(
            "mean return of a random policy over {} episodes: {mean:.1}",
            args.episodes
        );
    }
    Ok(())
}
