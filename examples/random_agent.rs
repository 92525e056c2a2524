//! Steps CartPole-v1 with a uniformly random policy and prints every episode's return.
//!
//! `cargo run --release --example random_agent -- [episodes] [seed]`

use rand::{Rng, SeedableRng};
use rl::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let episodes: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(10);
    let seed: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(0);

    let mut env = make("CartPole-v1")?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut obs = vec![0.0f32; env.observation_space().flat_dim()];
    let mut returns = Vec::with_capacity(episodes);
    for ep in 0..episodes {
        // Seed the first episode only; later resets continue the generator, as in Gymnasium.
        let ep_seed = (ep == 0).then(|| rl::env::Seed::from(seed));
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
        println!("episode {ep:>3}: return {ret:>6.1}  length {len:>4}");
        returns.push(ret);
    }
    let mean = returns.iter().sum::<f64>() / returns.len().max(1) as f64;
    println!("mean return of a random policy over {episodes} episodes: {mean:.1}");
    Ok(())
}
