//! Training throughput.
//!
//! A2C (group `a2c`): end-to-end env-steps/s of `A2c::learn` on CartPole-v1 with 8 environments
//! and SB3's defaults (rl-zoo's setting), one A2C update of 40 samples, and that update split
//! into its parts (forward + loss, backward, gradient clipping, RMSprop step).
//!
//! REINFORCE (group `reinforce`): end-to-end env-steps/s of `Reinforce::learn` on CartPole-v1
//! with the PyTorch tutorial's settings (a whole run until solved, and the first 20k steps of a
//! fresh run), and the per-step acting cost (batch-1 forward + categorical sample).
//!
//! `cargo bench --bench train -- --warm-up-time 1 --measurement-time 5`
//!
//! Other algorithms add their own `criterion_group!` below and list it in `criterion_main!`.

use candle_core::{Device, Tensor};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rl_algos::a2c::{a2c_loss, a2c_update, A2c, A2cBatch, A2cConfig};
use rl_algos::optim::{clip_grad_norm, Optimizer, RmsProp};
use rl_algos::reinforce::{Budget, Reinforce, ReinforceConfig};
use rl_algos::{Algorithm, StopTrainingOnRewardThreshold};
use rl_env::{AutoresetMode, SyncVecEnv, VecEnv};
use rl_policy::{MlpPolicy, MlpPolicyConfig, StochasticPolicy};

fn single_thread() {
    // Candle re-reads /proc/cpuinfo on every matmul when this is unset (3-30x slower).
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        std::env::set_var("RAYON_NUM_THREADS", "1");
    }
}

fn cartpole_policy() -> MlpPolicy {
    let env = rl_env::make("CartPole-v1").expect("CartPole-v1 is registered");
    MlpPolicy::new(
        env.observation_space(),
        env.action_space(),
        MlpPolicyConfig::default(),
        0,
        &Device::Cpu,
    )
    .expect("CartPole policy")
}

/// `A2c::learn` on CartPole-v1, 8 envs, SB3 defaults: each iteration trains 4000 more steps.
fn a2c_learn(c: &mut Criterion) {
    single_thread();
    const STEPS: u64 = 4000;
    let env = SyncVecEnv::make("CartPole-v1", 8, AutoresetMode::SameStep).expect("vec env");
    let policy = MlpPolicy::new(
        env.observation_space(),
        env.action_space(),
        MlpPolicyConfig::default(),
        0,
        &Device::Cpu,
    )
    .expect("policy");
    let config = A2cConfig {
        seed: Some(0),
        ..A2cConfig::default()
    };
    let mut model = A2c::new(policy, env, config).expect("A2C");
    let mut group = c.benchmark_group("a2c");
    group.throughput(Throughput::Elements(STEPS));
    group.bench_function("learn_cartpole_8envs_env_steps", |b| {
        b.iter(|| {
            let target = model.num_timesteps() + STEPS;
            model.learn(target, &mut []).expect("learn")
        })
    });
    group.finish();
}

/// A fixed batch of 40 CartPole-like samples (8 envs x 5 steps).
struct Batch40 {
    obs: Tensor,
    actions: Tensor,
    advantages: Vec<f32>,
    returns: Vec<f32>,
}

fn batch40() -> Batch40 {
    let mut rng = StdRng::seed_from_u64(3);
    let obs: Vec<f32> = (0..40 * 4).map(|_| rng.gen_range(-0.2f32..0.2)).collect();
    let actions: Vec<f32> = (0..40).map(|_| f32::from(rng.gen_range(0u8..2))).collect();
    let returns: Vec<f32> = (0..40).map(|_| rng.gen_range(1.0f32..5.0)).collect();
    let advantages = returns.iter().map(|r| r - 0.5).collect();
    Batch40 {
        obs: Tensor::from_slice(&obs, (40, 4), &Device::Cpu).expect("obs"),
        actions: Tensor::from_slice(&actions, 40, &Device::Cpu).expect("actions"),
        advantages,
        returns,
    }
}

/// One A2C update of 40 samples, and its parts.
fn a2c_update_40(c: &mut Criterion) {
    single_thread();
    let policy = cartpole_policy();
    let data = batch40();
    let batch = A2cBatch {
        observations: &data.obs,
        actions: &data.actions,
        advantages: &data.advantages,
        returns: &data.returns,
    };
    let params = A2cConfig::default().update_params();
    let mut opt = RmsProp::new(policy.trainable_vars(), 7e-4, 0.99, 1e-5).expect("RMSprop");
    let mut group = c.benchmark_group("a2c_update_40_samples");
    group.bench_function("full_update", |b| {
        let mut iteration = 0;
        b.iter(|| {
            iteration += 1;
            a2c_update(&policy, &mut opt, black_box(&batch), &params, iteration).expect("update")
        })
    });
    group.bench_function("forward_and_loss", |b| {
        b.iter(|| a2c_loss(&policy, black_box(&batch), &params).expect("loss"))
    });
    group.bench_function("forward_loss_backward", |b| {
        b.iter(|| {
            a2c_loss(&policy, black_box(&batch), &params)
                .expect("loss")
                .total
                .backward()
                .expect("backward")
        })
    });
    let mut grads = a2c_loss(&policy, &batch, &params)
        .expect("loss")
        .total
        .backward()
        .expect("backward");
    let vars = policy.trainable_vars();
    group.bench_function("clip_grad_norm", |b| {
        b.iter(|| clip_grad_norm(&vars, &mut grads, 0.5).expect("clip"))
    });
    group.bench_function("rmsprop_step", |b| {
        b.iter(|| opt.step(black_box(&grads)).expect("step"))
    });
    group.finish();
}

// ---------------------------------------------------------------------------------------------
// REINFORCE (group `reinforce`)
// ---------------------------------------------------------------------------------------------

/// The PyTorch tutorial's network without dropout: 128 ReLU units, PyTorch's default init.
fn reinforce_policy(env: &dyn rl_env::Env, seed: u64) -> MlpPolicy {
    let config = MlpPolicyConfig {
        net_arch: rl_policy::NetArch {
            shared: vec![],
            pi: vec![128],
            vf: vec![],
        },
        activation: rl_policy::Activation::ReLU,
        ortho_init: false,
        log_std_init: 0.0,
    };
    MlpPolicy::new(
        env.observation_space(),
        env.action_space(),
        config,
        seed,
        &Device::Cpu,
    )
    .expect("REINFORCE policy")
}

fn reinforce_model(seed: u64) -> Reinforce<MlpPolicy, Box<dyn rl_env::Env>> {
    let env = rl_env::make("CartPole-v1").expect("CartPole-v1 is registered");
    let policy = reinforce_policy(&*env, seed);
    let config = ReinforceConfig {
        seed: Some(seed),
        ..ReinforceConfig::default()
    };
    Reinforce::new(policy, env, config).expect("REINFORCE")
}

/// End-to-end env-steps/s of `Reinforce::learn` on CartPole-v1 with the tutorial's settings:
/// (a) a whole run from scratch until the 100-episode mean return reaches 475 (seed 0; the
/// same run every iteration, its step count is the throughput), (b) the first 20k steps of a
/// fresh run (short episodes: one update per ~20 steps, the update-bound regime).
fn reinforce_learn(c: &mut Criterion) {
    single_thread();
    let mut group = c.benchmark_group("reinforce");
    group.sample_size(10);
    let solve = || {
        let mut model = reinforce_model(0);
        let mut stop = StopTrainingOnRewardThreshold::new(475.0);
        model
            .learn(Budget::Episodes(2000), &mut [&mut stop])
            .expect("learn");
        assert!(
            stop.rolling_mean().is_some_and(|m| m >= 475.0),
            "seed 0 did not solve CartPole"
        );
        model.num_timesteps()
    };
    let steps = solve();
    group.throughput(Throughput::Elements(steps));
    group.bench_function("learn_cartpole_until_solved_env_steps", |b| b.iter(solve));
    const FRESH: u64 = 20_000;
    group.throughput(Throughput::Elements(FRESH));
    group.bench_function("learn_cartpole_first_20k_env_steps", |b| {
        b.iter_custom(|iters| {
            let mut total = std::time::Duration::ZERO;
            for i in 0..iters {
                let mut model = reinforce_model(i);
                let start = std::time::Instant::now();
                model
                    .learn(Budget::Timesteps(FRESH), &mut [])
                    .expect("learn");
                let elapsed = start.elapsed();
                // Scale to exactly FRESH steps: the crossing episode overruns the budget a little.
                total += elapsed.mul_f64(FRESH as f64 / model.num_timesteps() as f64);
            }
            total
        })
    });
    group.finish();
}

/// The per-step acting cost: a batch-1 forward pass and a categorical sample.
fn reinforce_act(c: &mut Criterion) {
    single_thread();
    let env = rl_env::make("CartPole-v1").expect("CartPole-v1 is registered");
    let policy = reinforce_policy(&*env, 0);
    let obs = Tensor::new(&[[0.01f32, -0.02, 0.03, 0.04]], &Device::Cpu).expect("obs");
    let mut rng = StdRng::seed_from_u64(0);
    c.bench_function("reinforce/act_batch1_sample", |b| {
        b.iter(|| {
            policy
                .action_dist(black_box(&obs))
                .expect("dist")
                .sample(&mut rng)
                .expect("sample")
        })
    });
}

criterion_group!(a2c, a2c_learn, a2c_update_40);
criterion_group!(reinforce, reinforce_learn, reinforce_act);
criterion_main!(a2c, reinforce);
