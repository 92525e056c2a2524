//! Replay-buffer inserts and samples allocate nothing once the sample storage has grown to the
//! batch size (one-step and n-step buffers, before and after the ring wraps), and neither does
//! DQN's gradient step on the fast path (a `QNetwork`, both losses).
//!
//! This binary has its own `main` (`harness = false` in Cargo.toml): the allocator counts the
//! whole process, and libtest's main thread allocates while a test runs.

use candle_core::Device;
use rand::SeedableRng;
use rl_algos::dqn::{DqnConfig, DqnLoss, DqnTrainer};
use rl_algos::off_policy::OffPolicyTrainer;
use rl_algos::replay::{ReplayBuffer, ReplaySamples, ReplayTransition};
use rl_env::{BoxSpace, Space};
use rl_policy::{QNetwork, QNetworkConfig};

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

/// Allocations made while inserting 300 vector steps (wrapping a 100-row ring) and drawing a
/// batch of 64 after each, after a warm-up that grows the sample storage.
fn replay_allocations(n_steps: usize) -> usize {
    let (n_envs, obs_dim) = (4, 6);
    let mut buffer = ReplayBuffer::new(400, n_envs, obs_dim, 1)
        .unwrap()
        .with_n_steps(n_steps, 0.99)
        .unwrap();
    let mut rng = rand_chacha::ChaCha12Rng::seed_from_u64(0);
    let mut samples = ReplaySamples::default();
    let obs = vec![0.5f32; n_envs * obs_dim];
    let next = vec![-0.5f32; n_envs * obs_dim];
    let actions = vec![1.0f32; n_envs];
    let rewards = vec![1.0f32; n_envs];
    let mut dones = vec![false; n_envs];
    let timeouts = vec![false; n_envs];
    let mut step = |buffer: &mut ReplayBuffer, k: usize| {
        dones[k % n_envs] = k.is_multiple_of(7);
        buffer
            .add(&ReplayTransition {
                observations: &obs,
                next_observations: &next,
                actions: &actions,
                rewards: &rewards,
                dones: &dones,
                timeouts: &timeouts,
            })
            .unwrap();
    };
    for k in 0..10 {
        step(&mut buffer, k);
    }
    buffer.sample(64, &mut rng, &mut samples).unwrap();
    let before = counting_alloc::allocations();
    for k in 10..310 {
        step(&mut buffer, k);
        buffer.sample(64, &mut rng, &mut samples).unwrap();
    }
    assert!(buffer.is_full(), "the ring wrapped");
    counting_alloc::allocations() - before
}

/// Allocations made by 50 DQN gradient steps on replayed samples, after 5 warm-up steps.
fn dqn_allocations(loss: DqnLoss) -> usize {
    let obs_space = Space::Box(BoxSpace::uniform(-1.0, 1.0, vec![4]).unwrap());
    let act_space = Space::Discrete { n: 3, start: 0 };
    let q = QNetwork::new(
        &obs_space,
        &act_space,
        QNetworkConfig::default(),
        0,
        &Device::Cpu,
    )
    .unwrap();
    let config = DqnConfig {
        batch_size: 32,
        loss,
        ..DqnConfig::default()
    };
    let mut trainer = DqnTrainer::new(config, q, &obs_space, &act_space).unwrap();
    let mut buffer = ReplayBuffer::new(256, 1, 4, 1).unwrap();
    let mut rng = rand_chacha::ChaCha12Rng::seed_from_u64(1);
    for k in 0..256usize {
        let x = (k % 17) as f32 * 0.05;
        buffer
            .add(&ReplayTransition {
                observations: &[x, -x, 0.5 * x, 0.1],
                next_observations: &[-x, x, 0.2, 0.3 * x],
                actions: &[(k % 3) as f32],
                rewards: &[1.0],
                dones: &[k % 11 == 0],
                timeouts: &[false],
            })
            .unwrap();
    }
    let mut samples = ReplaySamples::default();
    for _ in 0..5 {
        buffer.sample(32, &mut rng, &mut samples).unwrap();
        trainer.gradient_step(&samples).unwrap();
    }
    let before = counting_alloc::allocations();
    for _ in 0..50 {
        buffer.sample(32, &mut rng, &mut samples).unwrap();
        trainer.gradient_step(&samples).unwrap();
    }
    counting_alloc::allocations() - before
}

fn main() {
    let mut failures = 0;
    for loss in [DqnLoss::Huber, DqnLoss::Mse] {
        let n = dqn_allocations(loss);
        println!("DQN gradient step ({loss:?}): {n} allocations in 50 steps");
        if n != 0 {
            failures += 1;
        }
    }
    for n_steps in [1, 3] {
        let n = replay_allocations(n_steps);
        println!("replay buffer (n_steps {n_steps}): {n} allocations in 300 inserts + samples");
        if n != 0 {
            failures += 1;
        }
    }
    if failures > 0 {
        eprintln!("replay inserts, samples or DQN gradient steps allocated");
        std::process::exit(1);
    }
}
