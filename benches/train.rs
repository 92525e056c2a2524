//! Training throughput.
//!
//! A2C (group `a2c`): end-to-end env-steps/s of `A2c::learn` on CartPole-v1 with 8 environments
//! and SB3's defaults (rl-zoo's setting), one A2C update of 40 samples, and that update split
//! into its parts (forward + loss, backward, gradient clipping, RMSprop step). Each end-to-end
//! and update figure is measured twice in the same run: `MlpPolicy` as it trains (the fast MLP
//! path, `rl_policy::MlpEngine`) and wrapped as a user's own network (`GenericPath`: the
//! generic Candle path, what `MlpPolicy` used before the fast path). `RL_SB3_PYTHON` runs SB3's
//! A2C on the same workload (`tools/bench/sb3_a2c_cartpole.py`) in the same run.
//!
//! A2C scaling (group `a2c_scaling`): the same A2C with 64 and 256 environments (update batches
//! of 320 and 1280) and with 8 environments and a [256, 256] network, fast and generic; each
//! prints the floating-point operations per environment step, so that GFLOP/s = env-steps/s x
//! FLOP per step / 1e9.
//!
//! REINFORCE (group `reinforce`): end-to-end env-steps/s of `Reinforce::learn` on CartPole-v1
//! with the PyTorch tutorial's settings (a whole run until solved, and the first 20k steps of a
//! fresh run), and the per-step acting cost (batch-1 forward + categorical sample).
//!
//! `cargo bench --bench train -- --warm-up-time 1 --measurement-time 5`
//!
//! PPO (group `ppo`): end-to-end env-steps/s of `Ppo::learn` on the matched workload that
//! ModuRL publishes against SB3 (8 CartPole-v1 envs, n_steps 256, 2x64 tanh actor and critic,
//! Adam 3e-4 eps 1e-5, minibatch 64, 10 epochs, clip 0.2, gamma 0.99, gae_lambda 0.95,
//! advantage normalization, vf_coef 0.5, ent_coef 0, max_grad_norm 0.5), one minibatch update of
//! 64 samples, and the rollout alone. With `RL_SB3_PYTHON` set to a Python that has SB3 2.9
//! and torch, the same workload also runs in SB3 (`tools/bench/sb3_ppo_cartpole.py`, one torch
//! thread) in the same run, and the ratio is printed.
//!
//! DQN (group `dqn`): end-to-end env-steps/s of `Dqn::learn` on the matched workload that
//! ModuRL publishes against SB3 (one CartPole-v1 env, 2x64 tanh Q-network and target, replay
//! 10,000, batch 64, Adam 2.5e-4 eps 1e-5, one gradient step every 4 transitions, MSE loss, no
//! clipping, hard target copy every 1,000 transitions, constant ε 0.1, gamma 0.99, 1,024
//! warm-up transitions), one gradient step of that workload and of rl-zoo's 256x256 networks
//! (batch 128), and a replay-buffer insert and sample. `RL_SB3_PYTHON` runs SB3's DQN on the
//! same workload (`tools/bench/sb3_dqn_cartpole.py`) in the same run.
//!
//! SAC (group `sac`): end-to-end env-steps/s of `Sac::learn` on the matched workload that
//! ModuRL publishes against SB3 (one Pendulum-v1 env; 2x64 tanh actor with mean and log-std
//! heads, two 2x64 tanh critics and their targets; replay 10,000, batch 64; Adam 3e-4 eps 1e-5;
//! one actor, critic and temperature update per transition; tau 0.005, gamma 0.99; α learned
//! from 1.0, target entropy -1; 256 random warm-up transitions) and one SAC gradient step of it.
//! `RL_SB3_PYTHON` runs SB3's SAC on the same workload (`tools/bench/sb3_sac_pendulum.py`).
//!
//! rl-zoo A2C Pendulum-v1 (group `zoo_a2c_pendulum`): end-to-end env-steps/s of `A2c::learn`
//! with the shipped zoo settings — 8 envs under `VecNormalize`, gSDE, n_steps 8, RMSprop —
//! and, with `RL_SB3_PYTHON`, SB3's A2C on the same settings
//! (`tools/bench/sb3_a2c_pendulum_zoo.py`) in the same run.
//!
//! Other algorithms add their own `criterion_group!` below and list it in `criterion_main!`.

use candle_core::{Device, Tensor};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rl_algos::a2c::{a2c_loss, a2c_update, A2c, A2cBatch, A2cConfig, A2cFastUpdate};
use rl_algos::dqn::{Dqn, DqnConfig, DqnLoss, DqnTrainer};
use rl_algos::off_policy::{GradientSteps, OffPolicyTrainer, TrainFreq};
use rl_algos::optim::Schedule;
use rl_algos::optim::{clip_grad_norm, Adam, Optimizer, RmsProp};
use rl_algos::ppo::{ppo_update, Ppo, PpoBatch, PpoConfig, PpoFastUpdate, PpoHostBatch};
use rl_algos::reinforce::{Budget, Reinforce, ReinforceConfig};
use rl_algos::replay::{ReplayBuffer, ReplaySamples, ReplayTransition};
use rl_algos::sac::{EntCoef, Sac, SacConfig};
use rl_algos::zoo::ZooEntry;
use rl_algos::StopTrainingOnRewardThreshold;
use rl_env::{AutoresetMode, SyncVecEnv, VecEnv, VecNormalize};
use rl_policy::{
    ActionDist, Activation, ActorCritic, ContinuousCritic, MlpConfig, MlpEngine, MlpPolicy,
    MlpPolicyConfig, NetArch, QFunction, QNetwork, QNetworkConfig, SacActor, StochasticPolicy,
};

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

/// `MlpPolicy` seen as a user's own network: it has no `mlp_layout`, so the algorithms take the
/// generic Candle path with it (what `MlpPolicy` itself used before the fast path).
struct GenericPath(MlpPolicy);

impl StochasticPolicy for GenericPath {
    fn action_dist(&self, obs: &Tensor) -> rl_policy::Result<ActionDist> {
        self.0.action_dist(obs)
    }
    fn trainable_vars(&self) -> Vec<(String, candle_core::Var)> {
        self.0.trainable_vars()
    }
    fn device(&self) -> &Device {
        self.0.device()
    }
}

impl ActorCritic for GenericPath {
    fn forward(&self, obs: &Tensor) -> rl_policy::Result<(ActionDist, Tensor)> {
        self.0.forward(obs)
    }
    fn predict_values(&self, obs: &Tensor) -> rl_policy::Result<Tensor> {
        self.0.predict_values(obs)
    }
}

/// SB3's default policy for `env` with hidden layers `hidden` for both actor and critic.
fn mlp_for(env: &SyncVecEnv, hidden: &[usize]) -> MlpPolicy {
    let config = MlpPolicyConfig {
        net_arch: NetArch {
            shared: vec![],
            pi: hidden.to_vec(),
            vf: hidden.to_vec(),
        },
        ..MlpPolicyConfig::default()
    };
    MlpPolicy::new(
        env.observation_space(),
        env.action_space(),
        config,
        0,
        &Device::Cpu,
    )
    .expect("policy")
}

/// Benchmarks `A2c::learn` (SB3 defaults, CartPole-v1, `n_envs` environments, `hidden` layers)
/// as `name` (fast path) and `name_generic`, `steps` more env steps per iteration.
fn bench_a2c_learn(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    n_envs: usize,
    hidden: &[usize],
    steps: u64,
) {
    let config = A2cConfig {
        seed: Some(0),
        ..A2cConfig::default()
    };
    group.throughput(Throughput::Elements(steps));
    let env = SyncVecEnv::make("CartPole-v1", n_envs, AutoresetMode::SameStep).expect("vec env");
    let policy = mlp_for(&env, hidden);
    let mut fast = A2c::new(policy, env, config.clone()).expect("A2C");
    assert!(fast.uses_fast_path());
    group.bench_function(name, |b| {
        b.iter(|| {
            let target = fast.num_timesteps() + steps;
            fast.learn(target, &mut []).expect("learn")
        })
    });
    let env = SyncVecEnv::make("CartPole-v1", n_envs, AutoresetMode::SameStep).expect("vec env");
    let policy = GenericPath(mlp_for(&env, hidden));
    let mut generic = A2c::new(policy, env, config).expect("A2C");
    assert!(!generic.uses_fast_path());
    group.bench_function(format!("{name}_generic"), |b| {
        b.iter(|| {
            let target = generic.num_timesteps() + steps;
            generic.learn(target, &mut []).expect("learn")
        })
    });
}

/// `A2c::learn` on CartPole-v1, 8 envs, SB3 defaults: each iteration trains 4000 more steps.
fn a2c_learn(c: &mut Criterion) {
    single_thread();
    let mut group = c.benchmark_group("a2c");
    bench_a2c_learn(
        &mut group,
        "learn_cartpole_8envs_env_steps",
        8,
        &[64, 64],
        4000,
    );
    group.finish();
    sb3_baseline(
        "a2c",
        "sb3_a2c_cartpole.py",
        &["--steps", "20000"],
        a2c_rate,
    );
}

/// Env-steps/s of a fresh A2C run (CartPole-v1, 8 envs, SB3 defaults) over 100k steps.
fn a2c_rate() -> f64 {
    let env = SyncVecEnv::make("CartPole-v1", 8, AutoresetMode::SameStep).expect("vec env");
    let policy = mlp_for(&env, &[64, 64]);
    let config = A2cConfig {
        seed: Some(0),
        ..A2cConfig::default()
    };
    let mut model = A2c::new(policy, env, config).expect("A2C");
    let start = std::time::Instant::now();
    model.learn(100_000, &mut []).expect("learn");
    model.num_timesteps() as f64 / start.elapsed().as_secs_f64()
}

/// A2C where arithmetic starts to dominate: more environments (larger update batches) and a
/// wider network, fast and generic paths.
fn a2c_scaling(c: &mut Criterion) {
    single_thread();
    let mut group = c.benchmark_group("a2c_scaling");
    group.sample_size(10);
    for (name, n_envs, hidden, steps) in [
        ("learn_cartpole_64envs_env_steps", 64, &[64, 64], 32_000u64),
        ("learn_cartpole_256envs_env_steps", 256, &[64, 64], 64_000),
        (
            "learn_cartpole_8envs_256x256_env_steps",
            8,
            &[256, 256],
            4_000,
        ),
    ] {
        let env = SyncVecEnv::make("CartPole-v1", 1, AutoresetMode::SameStep).expect("env");
        let layout = mlp_for(&env, hidden).mlp_layout().expect("layout");
        let macs = MlpEngine::new(layout, 1)
            .expect("engine")
            .forward_macs_per_sample();
        // Per env step: the acting forward, and the update's forward and backward (dW and dx:
        // twice the forward; the first layers' dx is skipped, so this is an upper bound).
        println!(
            "a2c_scaling/{name}: {} FLOP per env step (8 x {macs} multiply-adds)",
            8 * macs
        );
        bench_a2c_learn(&mut group, name, n_envs, hidden, steps);
    }
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
    {
        let fast_policy = cartpole_policy();
        let mut fast_opt =
            RmsProp::new(fast_policy.trainable_vars(), 7e-4, 0.99, 1e-5).expect("RMSprop");
        let layout = fast_policy.mlp_layout().expect("layout");
        let mut fast = A2cFastUpdate::new(layout, 40, &fast_opt).expect("fast update");
        let obs: Vec<f32> = data.obs.flatten_all().expect("obs").to_vec1().expect("obs");
        let actions: Vec<f32> = data.actions.to_vec1().expect("actions");
        group.bench_function("full_update_fast", |b| {
            let mut iteration = 0;
            b.iter(|| {
                iteration += 1;
                fast.update(
                    &mut fast_opt,
                    black_box(&obs),
                    &actions,
                    &data.advantages,
                    &data.returns,
                    &params,
                    iteration,
                )
                .expect("update")
            })
        });
    }
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
        use_sde: false,
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

// ---------------------------------------------------------------------------------------------
// PPO (group `ppo`)
// ---------------------------------------------------------------------------------------------

/// The matched PPO workload: 8 CartPole-v1 envs, n_steps 256 (2048 transitions per rollout),
/// minibatch 64, 10 epochs, SB3's other defaults.
fn ppo_matched_config() -> PpoConfig {
    PpoConfig {
        n_steps: 256,
        batch_size: 64,
        n_epochs: 10,
        seed: Some(0),
        ..PpoConfig::default()
    }
}

/// `Ppo::learn` on the matched workload: each criterion iteration trains 2 more rollouts
/// (4096 env steps, 640 minibatch updates).
fn ppo_learn(c: &mut Criterion) {
    single_thread();
    const STEPS: u64 = 4096;
    let env = SyncVecEnv::make("CartPole-v1", 8, AutoresetMode::SameStep).expect("vec env");
    let policy = MlpPolicy::new(
        env.observation_space(),
        env.action_space(),
        MlpPolicyConfig::default(),
        0,
        &Device::Cpu,
    )
    .expect("policy");
    let mut model = Ppo::new(policy, env, ppo_matched_config()).expect("PPO");
    let mut group = c.benchmark_group("ppo");
    group.sample_size(10);
    group.throughput(Throughput::Elements(STEPS));
    group.bench_function("learn_matched_cartpole_8envs_env_steps", |b| {
        b.iter(|| {
            let target = model.num_timesteps() + STEPS;
            model.learn(target, &mut []).expect("learn")
        })
    });
    let env = SyncVecEnv::make("CartPole-v1", 8, AutoresetMode::SameStep).expect("vec env");
    let mut generic =
        Ppo::new(GenericPath(cartpole_policy()), env, ppo_matched_config()).expect("PPO");
    group.bench_function("learn_matched_cartpole_8envs_env_steps_generic", |b| {
        b.iter(|| {
            let target = generic.num_timesteps() + STEPS;
            generic.learn(target, &mut []).expect("learn")
        })
    });
    group.finish();
    sb3_baseline("ppo", "sb3_ppo_cartpole.py", &["--rollouts", "4"], ppo_rate);
}

/// One PPO minibatch update of 64 CartPole-like samples (forward, clipped loss, backward,
/// clipping, Adam).
fn ppo_update_64(c: &mut Criterion) {
    single_thread();
    let policy = cartpole_policy();
    let mut rng = StdRng::seed_from_u64(5);
    let obs: Vec<f32> = (0..64 * 4).map(|_| rng.gen_range(-0.2f32..0.2)).collect();
    let actions: Vec<f32> = (0..64).map(|_| f32::from(rng.gen_range(0u8..2))).collect();
    let returns: Vec<f32> = (0..64).map(|_| rng.gen_range(1.0f32..5.0)).collect();
    let advantages: Vec<f32> = returns.iter().map(|r| r - 2.5).collect();
    let old_values = vec![0.5f32; 64];
    let old_log_probs = vec![-0.69f32; 64];
    let obs = Tensor::from_slice(&obs, (64, 4), &Device::Cpu).expect("obs");
    let actions = Tensor::from_slice(&actions, 64, &Device::Cpu).expect("actions");
    let batch = PpoBatch {
        observations: &obs,
        actions: &actions,
        old_values: &old_values,
        old_log_probs: &old_log_probs,
        advantages: &advantages,
        returns: &returns,
    };
    let params = ppo_matched_config().params(1.0);
    let mut opt = Adam::new(policy.trainable_vars(), 3e-4, 1e-5).expect("Adam");
    c.bench_function("ppo/update_64_samples", |b| {
        b.iter(|| ppo_update(&policy, &mut opt, black_box(&batch), &params, 1).expect("update"))
    });
    let fast_policy = cartpole_policy();
    let mut fast_opt = Adam::new(fast_policy.trainable_vars(), 3e-4, 1e-5).expect("Adam");
    let layout = fast_policy.mlp_layout().expect("layout");
    let mut fast = PpoFastUpdate::new(layout, 64, &fast_opt).expect("fast update");
    let obs_host: Vec<f32> = obs.flatten_all().expect("obs").to_vec1().expect("obs");
    let act_host: Vec<f32> = actions.to_vec1().expect("actions");
    let host = PpoHostBatch {
        observations: &obs_host,
        actions: &act_host,
        old_values: &old_values,
        old_log_probs: &old_log_probs,
        advantages: &advantages,
        returns: &returns,
    };
    c.bench_function("ppo/update_64_samples_fast", |b| {
        b.iter(|| {
            fast.update(&mut fast_opt, black_box(&host), &params, 1)
                .expect("update")
        })
    });
}

/// Runs `script` (SB3 on the same workload as group `group`) with `args` when `RL_SB3_PYTHON`
/// names a Python with SB3 2.9, and prints its throughput and our ratio to it; `ours` measures
/// our own throughput in this run (only called when SB3 runs too).
fn sb3_baseline(group: &str, script: &str, args: &[&str], ours: impl FnOnce() -> f64) {
    let Some(python) = std::env::var_os("RL_SB3_PYTHON") else {
        println!("{group}/sb3_baseline: set RL_SB3_PYTHON to a Python with stable-baselines3 2.9 to measure SB3 in this run");
        return;
    };
    let script = format!("{}/../../tools/bench/{script}", env!("CARGO_MANIFEST_DIR"));
    let ours = ours();
    let out = std::process::Command::new(python)
        .arg(&script)
        .args(args)
        .env("OMP_NUM_THREADS", "1")
        .output();
    match out {
        Ok(o) if o.status.success() => {
            let text = String::from_utf8_lossy(&o.stdout);
            let sb3: Option<f64> = text
                .lines()
                .find_map(|l| l.strip_prefix("env_steps_per_s "))
                .and_then(|v| v.trim().parse().ok());
            match sb3 {
                Some(sb3) => println!(
                    "{group}/sb3_baseline: SB3 {sb3:.0} env-steps/s, ours {ours:.0} env-steps/s \
                     (same workload, this run): {:.1}x",
                    ours / sb3
                ),
                None => println!("{group}/sb3_baseline: unexpected output from {script}: {text}"),
            }
        }
        Ok(o) => println!(
            "{group}/sb3_baseline: {script} failed: {}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => println!("{group}/sb3_baseline: cannot run the SB3 script: {e}"),
    }
}

/// Env-steps/s of a fresh matched PPO run over 4 rollouts (8192 steps).
fn ppo_rate() -> f64 {
    let env = SyncVecEnv::make("CartPole-v1", 8, AutoresetMode::SameStep).expect("vec env");
    let policy = cartpole_policy();
    let mut model = Ppo::new(policy, env, ppo_matched_config()).expect("PPO");
    let start = std::time::Instant::now();
    model.learn(4 * 2048, &mut []).expect("learn");
    model.num_timesteps() as f64 / start.elapsed().as_secs_f64()
}

// ---------------------------------------------------------------------------------------------
// DQN (group `dqn`)
// ---------------------------------------------------------------------------------------------

/// The matched DQN workload (see the module docs).
fn dqn_matched_config() -> DqnConfig {
    DqnConfig {
        learning_rate: Schedule::Constant(2.5e-4),
        buffer_size: 10_000,
        learning_starts: 1024,
        batch_size: 64,
        tau: 1.0,
        gamma: 0.99,
        train_freq: TrainFreq::Steps(4),
        gradient_steps: GradientSteps::Fixed(1),
        target_update_interval: 1000,
        exploration_fraction: 1.0,
        exploration_initial_eps: 0.1,
        exploration_final_eps: 0.1,
        max_grad_norm: f64::INFINITY,
        loss: DqnLoss::Mse,
        adam_eps: 1e-5,
        seed: Some(0),
        log_interval: 0,
        ..DqnConfig::default()
    }
}

fn q_network(
    obs: &rl_env::Space,
    act: &rl_env::Space,
    net_arch: Vec<usize>,
    activation: Activation,
) -> QNetwork {
    QNetwork::new(
        obs,
        act,
        QNetworkConfig {
            net_arch,
            activation,
        },
        0,
        &Device::Cpu,
    )
    .expect("QNetwork")
}

/// `QNetwork` seen as a user's own Q-network: it has no `q_layout`, so DQN takes the generic
/// Candle path with it (what `QNetwork` itself used before the fast path).
struct GenericQ(QNetwork);

impl QFunction for GenericQ {
    fn q_values(&self, obs: &Tensor) -> rl_policy::Result<Tensor> {
        self.0.q_values(obs)
    }
    fn trainable_vars(&self) -> Vec<(String, candle_core::Var)> {
        self.0.trainable_vars()
    }
    fn device(&self) -> &Device {
        self.0.device()
    }
    fn duplicate(&self) -> rl_policy::Result<Self> {
        Ok(GenericQ(self.0.duplicate()?))
    }
}

/// A matched DQN learner past its warm-up transitions and 2,000 learning steps, for the
/// network `wrap` makes of the matched `QNetwork`.
fn dqn_matched_model<Q: QFunction>(wrap: impl FnOnce(QNetwork) -> Q) -> Dqn<Q, SyncVecEnv> {
    let env = SyncVecEnv::make("CartPole-v1", 1, AutoresetMode::SameStep).expect("vec env");
    let q = q_network(
        env.observation_space(),
        env.action_space(),
        vec![64, 64],
        Activation::Tanh,
    );
    let mut model = Dqn::new(wrap(q), env, dqn_matched_config()).expect("DQN");
    model.learn(1024 + 2000, &mut []).expect("warm-up");
    model
}

/// `Dqn::learn` on the matched workload: each criterion iteration trains 4,000 more steps
/// (1,000 gradient steps, 4 target copies).
fn dqn_learn(c: &mut Criterion) {
    single_thread();
    const STEPS: u64 = 4000;
    let mut model = dqn_matched_model(|q| q);
    let mut group = c.benchmark_group("dqn");
    group.sample_size(10);
    group.throughput(Throughput::Elements(STEPS));
    group.bench_function("learn_matched_cartpole_1env_env_steps", |b| {
        b.iter(|| {
            let target = model.num_timesteps() + STEPS;
            model.learn(target, &mut []).expect("learn")
        })
    });
    let mut generic = dqn_matched_model(GenericQ);
    group.bench_function("learn_matched_cartpole_1env_env_steps_generic", |b| {
        b.iter(|| {
            let target = generic.num_timesteps() + STEPS;
            generic.learn(target, &mut []).expect("learn")
        })
    });
    group.finish();
    sb3_baseline("dqn", "sb3_dqn_cartpole.py", &["--steps", "20000"], || {
        let mut model = dqn_matched_model(|q| q);
        let start = std::time::Instant::now();
        let from = model.num_timesteps();
        model.learn(from + 20_000, &mut []).expect("learn");
        (model.num_timesteps() - from) as f64 / start.elapsed().as_secs_f64()
    });
}

/// One DQN gradient step (targets, loss, backward, Adam) on replayed CartPole-like samples:
/// the matched workload (2x64 tanh, batch 64) and rl-zoo's networks (2x256 ReLU, batch 128).
fn dqn_update(c: &mut Criterion) {
    single_thread();
    let env = rl_env::make("CartPole-v1").expect("CartPole-v1 is registered");
    let (obs_space, act_space) = (env.observation_space().clone(), env.action_space().clone());
    let mut rng = StdRng::seed_from_u64(9);
    let mut buffer = ReplayBuffer::new(4096, 1, 4, 1).expect("buffer");
    for i in 0..4096 {
        let obs: Vec<f32> = (0..4).map(|_| rng.gen_range(-0.2f32..0.2)).collect();
        let next: Vec<f32> = (0..4).map(|_| rng.gen_range(-0.2f32..0.2)).collect();
        buffer
            .add(&ReplayTransition {
                observations: &obs,
                next_observations: &next,
                actions: &[f32::from(rng.gen_range(0u8..2))],
                rewards: &[1.0],
                dones: &[i % 50 == 0],
                timeouts: &[false],
            })
            .expect("insert");
    }
    let mut group = c.benchmark_group("dqn_update");
    for (name, arch, activation, batch, config) in [
        (
            "matched_2x64_tanh_batch64",
            vec![64, 64],
            Activation::Tanh,
            64,
            dqn_matched_config(),
        ),
        (
            "zoo_2x256_relu_batch128",
            vec![256, 256],
            Activation::ReLU,
            128,
            DqnConfig {
                batch_size: 128,
                seed: Some(0),
                ..DqnConfig::default()
            },
        ),
    ] {
        let q = q_network(&obs_space, &act_space, arch, activation);
        let generic_q = GenericQ(q.duplicate().expect("copy"));
        let mut trainer =
            DqnTrainer::new(config.clone(), q, &obs_space, &act_space).expect("trainer");
        let mut generic =
            DqnTrainer::new(config, generic_q, &obs_space, &act_space).expect("trainer");
        let mut samples = ReplaySamples::default();
        buffer
            .sample(batch, &mut rng, &mut samples)
            .expect("sample");
        group.bench_function(name, |b| {
            b.iter(|| trainer.gradient_step(black_box(&samples)).expect("step"))
        });
        group.bench_function(format!("{name}_generic"), |b| {
            b.iter(|| generic.gradient_step(black_box(&samples)).expect("step"))
        });
    }
    let mut samples = ReplaySamples::default();
    let obs = [0.1f32; 4];
    group.bench_function("replay_insert_and_sample_64", |b| {
        b.iter(|| {
            buffer
                .add(&ReplayTransition {
                    observations: &obs,
                    next_observations: &obs,
                    actions: &[1.0],
                    rewards: &[1.0],
                    dones: &[false],
                    timeouts: &[false],
                })
                .expect("insert");
            buffer.sample(64, &mut rng, &mut samples).expect("sample")
        })
    });
    group.finish();
}

// ---------------------------------------------------------------------------------------------
// SAC (group `sac`)
// ---------------------------------------------------------------------------------------------

type MatchedSac = Sac<SacActor, ContinuousCritic, SyncVecEnv>;

/// A matched SAC learner past its 256 warm-up transitions and 1,000 learning steps.
fn sac_matched_model() -> MatchedSac {
    let env = SyncVecEnv::make("Pendulum-v1", 1, AutoresetMode::SameStep).expect("vec env");
    let (obs, act) = (env.observation_space(), env.action_space());
    let net = MlpConfig {
        net_arch: vec![64, 64],
        activation: Activation::Tanh,
        sde: None,
    };
    let actor = SacActor::new(obs, act, net.clone(), 0, &Device::Cpu).expect("actor");
    let critic = ContinuousCritic::new(obs, act, net, 2, 1, &Device::Cpu).expect("critic");
    let config = SacConfig {
        learning_rate: Schedule::Constant(3e-4),
        buffer_size: 10_000,
        learning_starts: 256,
        batch_size: 64,
        tau: 0.005,
        gamma: 0.99,
        ent_coef: EntCoef::Auto(1.0),
        target_entropy: Some(-1.0),
        adam_eps: 1e-5,
        seed: Some(0),
        log_interval: 0,
        ..SacConfig::default()
    };
    let mut model = Sac::new(actor, critic, env, config).expect("SAC");
    model.learn(256 + 1000, &mut []).expect("warm-up");
    model
}

/// `Sac::learn` on the matched workload: each criterion iteration trains 1,000 more steps
/// (1,000 gradient steps).
fn sac_learn(c: &mut Criterion) {
    single_thread();
    const STEPS: u64 = 1000;
    let mut model = sac_matched_model();
    let mut group = c.benchmark_group("sac");
    group.sample_size(10);
    group.throughput(Throughput::Elements(STEPS));
    group.bench_function("learn_matched_pendulum_1env_env_steps", |b| {
        b.iter(|| {
            let target = model.num_timesteps() + STEPS;
            model.learn(target, &mut []).expect("learn")
        })
    });
    group.finish();
    sb3_baseline("sac", "sb3_sac_pendulum.py", &["--steps", "3000"], || {
        let mut model = sac_matched_model();
        let start = std::time::Instant::now();
        let from = model.num_timesteps();
        model.learn(from + 5_000, &mut []).expect("learn");
        (model.num_timesteps() - from) as f64 / start.elapsed().as_secs_f64()
    });
}

// ---------------------------------------------------------------------------------------------
// rl-zoo's A2C Pendulum-v1 (group `zoo_a2c_pendulum`): VecNormalize + gSDE
// ---------------------------------------------------------------------------------------------

/// A2C with the shipped `hyperparams/a2c.yml` Pendulum-v1 section (8 envs under VecNormalize
/// with the section's gamma, gSDE, n_steps 8, RMSprop, linear learning rate), read through
/// `rl_algos::zoo` as `train` reads it.
fn zoo_a2c_pendulum_model() -> A2c<MlpPolicy, VecNormalize<SyncVecEnv>> {
    let text = rl_algos::zoo::shipped("a2c").expect("shipped a2c.yml");
    let run = ZooEntry::from_yaml(text, "Pendulum-v1")
        .and_then(|e| e.a2c())
        .expect("the zoo's Pendulum-v1 section");
    let norm = run
        .normalize
        .as_ref()
        .expect("the section normalizes")
        .config()
        .expect("VecNormalize settings");
    let env = VecNormalize::new(
        SyncVecEnv::make("Pendulum-v1", run.n_envs, AutoresetMode::SameStep).expect("vec env"),
        norm,
    )
    .expect("VecNormalize");
    let pcfg = run
        .policy_kwargs
        .mlp_policy_config(run.config.use_sde)
        .expect("policy_kwargs");
    let policy = MlpPolicy::new(
        env.observation_space(),
        env.action_space(),
        pcfg,
        0,
        &Device::Cpu,
    )
    .expect("policy");
    let config = A2cConfig {
        seed: Some(0),
        ..run.config
    };
    A2c::new(policy, env, config).expect("A2C")
}

fn zoo_a2c_pendulum(c: &mut Criterion) {
    single_thread();
    const STEPS: u64 = 4000;
    let mut model = zoo_a2c_pendulum_model();
    let mut group = c.benchmark_group("zoo_a2c_pendulum");
    group.sample_size(10);
    group.throughput(Throughput::Elements(STEPS));
    group.bench_function("learn_vecnormalize_gsde_8envs_env_steps", |b| {
        b.iter(|| {
            let target = model.num_timesteps() + STEPS;
            model.learn(target, &mut []).expect("learn")
        })
    });
    group.finish();
    sb3_baseline(
        "zoo_a2c_pendulum",
        "sb3_a2c_pendulum_zoo.py",
        &["--steps", "20000"],
        || {
            let mut model = zoo_a2c_pendulum_model();
            model.learn(640, &mut []).expect("warm-up");
            let start = std::time::Instant::now();
            model.learn(640 + 40_000, &mut []).expect("learn");
            40_000.0 / start.elapsed().as_secs_f64()
        },
    );
}

criterion_group!(a2c, a2c_learn, a2c_update_40, a2c_scaling);
criterion_group!(reinforce, reinforce_learn, reinforce_act);
criterion_group!(ppo, ppo_learn, ppo_update_64);
criterion_group!(dqn, dqn_learn, dqn_update);
criterion_group!(sac, sac_learn);
criterion_group!(zoo, zoo_a2c_pendulum);
criterion_main!(a2c, reinforce, ppo, dqn, sac, zoo);
