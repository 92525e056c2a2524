//! PPO's training loop: counters and SB3's logged keys, target_kl stops, determinism across
//! vector engines, bit-exact checkpoint resume, checkpoints of the wrong algorithm, divergence,
//! configuration errors, a user's own network, and (ignored, release-only) learning CartPole-v1
//! and Pendulum-v1 with rl-zoo's settings.

mod support;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{Linear, Module, VarBuilder, VarMap};
use rl_algos::a2c::{A2c, A2cConfig};
use rl_algos::optim::Schedule;
use rl_algos::ppo::{Ppo, PpoConfig};
use rl_algos::{evaluate_policy, AlgoError, Callback, Locals, Logger};
use rl_env::registry::EnvSpec;
use rl_env::{AutoresetMode, Env, SyncVecEnv, ThreadVecEnv, VecEnv};
use rl_policy::{
    ActionDist, ActorCritic, Categorical, MlpPolicy, MlpPolicyConfig, StochasticPolicy,
};
use std::path::PathBuf;
use support::SaveAt;

fn set_threads() {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        std::env::set_var("RAYON_NUM_THREADS", "1");
    }
}

fn sync_env(id: &str, n: usize, max_steps: u64) -> SyncVecEnv {
    let spec = EnvSpec {
        max_episode_steps: Some(max_steps),
        ..EnvSpec::default()
    };
    SyncVecEnv::make_with(id, &spec, n, AutoresetMode::SameStep).unwrap()
}

fn policy_for<V: VecEnv>(env: &V, seed: u64) -> MlpPolicy {
    policy_with(env, seed, false)
}

/// SB3's default policy, with gSDE when `use_sde`.
fn policy_with<V: VecEnv>(env: &V, seed: u64, use_sde: bool) -> MlpPolicy {
    let config = MlpPolicyConfig {
        use_sde,
        ..MlpPolicyConfig::default()
    };
    MlpPolicy::new(
        env.observation_space(),
        env.action_space(),
        config,
        seed,
        &Device::Cpu,
    )
    .unwrap()
}

fn model<V: VecEnv>(env: V, config: PpoConfig) -> Ppo<MlpPolicy, V> {
    let policy = policy_with(&env, config.seed.unwrap_or(0), config.use_sde);
    Ppo::new(policy, env, config).unwrap()
}

fn bits_of(vars: Vec<(String, Var)>) -> Vec<(String, Vec<u32>)> {
    vars.into_iter()
        .map(|(n, v)| {
            let xs: Vec<f32> = v.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
            (n, xs.into_iter().map(f32::to_bits).collect())
        })
        .collect()
}

fn params<V: VecEnv>(m: &Ppo<MlpPolicy, V>) -> Vec<(String, Vec<u32>)> {
    bits_of(m.policy_ref().trainable_vars())
}

/// A small PPO configuration for fast tests.
fn small(seed: u64) -> PpoConfig {
    PpoConfig {
        n_steps: 16,
        batch_size: 16,
        n_epochs: 3,
        seed: Some(seed),
        log_interval: 0,
        ..PpoConfig::default()
    }
}

fn temp_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rl-algos-ppo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn learn_counts_steps_epochs_and_logs_sb3_keys() {
    set_threads();
    let config = PpoConfig {
        batch_size: 24, // 64 samples per rollout: minibatches of 24, 24 and 16
        ent_coef: 0.01,
        clip_range_vf: Some(Schedule::Constant(1.0)),
        ..small(1)
    };
    let mut m = model(sync_env("CartPole-v1", 4, 25), config);
    m.learn(320, &mut []).unwrap();
    assert_eq!(m.num_timesteps(), 320);
    assert_eq!(m.iterations(), 5);
    // SB3 counts one update per epoch.
    assert_eq!(m.n_updates(), 15);
    let t = m.last_train().unwrap();
    assert_eq!((t.epochs, t.steps, t.stopped_early), (3, 9, false));
    assert!(t.loss.is_finite() && t.approx_kl >= 0.0);
    assert!((0.0..=1.0).contains(&t.clip_fraction));
    let keys: Vec<&str> = m.logger().values().keys().map(String::as_str).collect();
    for k in [
        "train/approx_kl",
        "train/clip_fraction",
        "train/clip_range",
        "train/clip_range_vf",
        "train/entropy_loss",
        "train/explained_variance",
        "train/learning_rate",
        "train/loss",
        "train/n_updates",
        "train/policy_gradient_loss",
        "train/value_loss",
    ] {
        assert!(keys.contains(&k), "{k} missing from {keys:?}");
    }
    assert!(
        !keys.contains(&"train/std"),
        "std is logged for Gaussian policies only"
    );
    assert_eq!(m.logger().values()["train/n_updates"], 15.0);
}

#[test]
fn schedules_follow_progress_and_gaussian_policies_log_std() {
    set_threads();
    let config = PpoConfig {
        learning_rate: Schedule::LinearToZero(1e-3),
        clip_range: Schedule::LinearToZero(0.2),
        ..small(2)
    };
    let mut m = model(sync_env("Pendulum-v1", 2, 50), config);
    m.learn(128, &mut []).unwrap();
    // The last train() ran at progress_remaining 1 - 128/128 = 0.
    let values = m.logger().values();
    assert_eq!(values["train/learning_rate"], 0.0);
    assert_eq!(values["train/clip_range"], 0.0);
    assert!(values["train/std"] > 0.0);
    assert_eq!(m.optimizer().learning_rate(), 0.0);
}

#[test]
fn target_kl_stops_the_epochs_and_counts_the_stopping_epoch() {
    set_threads();
    let config = PpoConfig {
        learning_rate: Schedule::Constant(3e-2),
        n_epochs: 10,
        batch_size: 8,
        target_kl: Some(1e-6),
        ..small(3)
    };
    let mut m = model(sync_env("CartPole-v1", 2, 40), config);
    m.learn(32, &mut []).unwrap();
    let t = m.last_train().unwrap();
    assert!(t.stopped_early, "{t:?}");
    assert!(t.epochs < 10 && t.epochs >= 1, "{t:?}");
    assert_eq!(m.n_updates(), t.epochs as u64);
    // The stop comes before that minibatch's step: fewer steps than minibatches seen.
    assert!(t.steps < t.epochs * 4, "{t:?}");
}

#[test]
fn same_seed_gives_bit_identical_parameters_with_sync_and_thread_engines() {
    set_threads();
    let spec = EnvSpec {
        max_episode_steps: Some(30),
        ..EnvSpec::default()
    };
    let mut runs = Vec::new();
    for engine in ["sync", "sync again", "thread"] {
        let env: Box<dyn VecEnv> = if engine == "thread" {
            Box::new(
                ThreadVecEnv::make_with("CartPole-v1", &spec, 32, 2, AutoresetMode::SameStep)
                    .unwrap(),
            )
        } else {
            Box::new(
                SyncVecEnv::make_with("CartPole-v1", &spec, 32, AutoresetMode::SameStep).unwrap(),
            )
        };
        let mut m = model(env, small(4));
        m.learn(1536, &mut []).unwrap();
        runs.push((engine, params(&m)));
    }
    assert!(runs[0].1 == runs[1].1, "two sync runs differ");
    assert!(runs[0].1 == runs[2].1, "sync and thread runs differ");
}

fn resume_case(id: &str, max_steps: u64, config: PpoConfig, at: u64, total: u64, file: &str) {
    set_threads();
    let path = temp_path(file);
    let mut saver = SaveAt {
        at,
        path: path.clone(),
        saved: false,
    };
    let mut full = model(sync_env(id, 3, max_steps), config.clone());
    full.learn(total, &mut [&mut saver]).unwrap();
    assert!(saver.saved);
    let env = sync_env(id, 3, max_steps);
    // Other weights (and other gSDE matrices): the checkpoint must overwrite them.
    let policy = policy_with(&env, 999, config.use_sde);
    let mut resumed = Ppo::load(&path, policy, env).unwrap();
    assert_eq!(resumed.config(), &config);
    resumed.learn(total, &mut []).unwrap();
    assert_eq!(resumed.num_timesteps(), full.num_timesteps());
    assert_eq!(resumed.n_updates(), full.n_updates());
    assert!(
        params(&resumed) == params(&full),
        "{id}: resumed parameters differ"
    );
    assert_eq!(
        resumed.optimizer().state().unwrap(),
        full.optimizer().state().unwrap(),
        "{id}: Adam state differs"
    );
    let _ = std::fs::remove_file(&path);
}

#[test]
fn resuming_a_checkpoint_is_bit_identical_discrete() {
    // Saved in the middle of the second rollout (and of an episode).
    resume_case("CartPole-v1", 20, small(5), 70, 240, "ppo_cartpole.ckpt");
}

#[test]
fn resuming_a_checkpoint_is_bit_identical_continuous_with_schedules() {
    let config = PpoConfig {
        learning_rate: Schedule::LinearToZero(3e-3),
        clip_range: Schedule::LinearToZero(0.3),
        clip_range_vf: Some(Schedule::Constant(5.0)),
        target_kl: Some(0.05),
        ..small(6)
    };
    resume_case("Pendulum-v1", 30, config, 100, 288, "ppo_pendulum.ckpt");
}

#[test]
fn resuming_a_gsde_checkpoint_mid_rollout_is_bit_identical() {
    // Saved at rollout step 2 of 16 (102 steps of 3 envs); the next re-draw is at step 4, so the
    // steps in between sample with the exploration matrices the checkpoint carries.
    let config = PpoConfig {
        use_sde: true,
        sde_sample_freq: 4,
        ..small(7)
    };
    resume_case(
        "Pendulum-v1",
        30,
        config.clone(),
        100,
        288,
        "ppo_pendulum_gsde.ckpt",
    );
    // The same with matrices drawn only at rollout starts.
    let config = PpoConfig {
        sde_sample_freq: -1,
        ..config
    };
    resume_case(
        "Pendulum-v1",
        30,
        config,
        100,
        288,
        "ppo_pendulum_gsde_once.ckpt",
    );
}

#[test]
fn gsde_explores_with_state_dependent_noise_and_changes_the_run() {
    set_threads();
    let run = |use_sde: bool, freq: i64| {
        let config = PpoConfig {
            use_sde,
            sde_sample_freq: freq,
            ..small(8)
        };
        let mut m = model(sync_env("Pendulum-v1", 3, 30), config);
        m.learn(96, &mut []).unwrap();
        let actions = m.rollout_buffer().actions().to_vec();
        let std = m.logger().values().get("train/std").copied();
        (params(&m), actions, std)
    };
    let (p1, a1, std1) = run(true, -1);
    let (p2, a2, _) = run(true, -1);
    assert_eq!(p1, p2, "same seed, same gSDE run");
    assert_eq!(a1, a2);
    // The logged std is the mean of exp(log_std) over the [64, 1] matrix (near exp(0)).
    let std1 = std1.expect("train/std is logged with gSDE");
    assert!((std1 - 1.0).abs() < 0.05, "train/std {std1}");
    let (p3, a3, _) = run(true, 2);
    assert_ne!(a1, a3, "sde_sample_freq changes the exploration");
    assert_ne!(p1, p3);
}

#[test]
fn gsde_is_refused_for_discrete_actions_and_mismatched_policies() {
    set_threads();
    let cartpole = sync_env("CartPole-v1", 2, 20);
    // SB3 refuses gSDE for non-Box actions; so do the policy and the algorithm.
    let r = MlpPolicy::new(
        cartpole.observation_space(),
        cartpole.action_space(),
        MlpPolicyConfig {
            use_sde: true,
            ..MlpPolicyConfig::default()
        },
        0,
        &Device::Cpu,
    );
    assert!(
        matches!(&r, Err(rl_policy::PolicyError::Unsupported(m)) if m.contains("gSDE")),
        "{r:?}"
    );
    let config = PpoConfig {
        use_sde: true,
        ..small(0)
    };
    let r = Ppo::new(policy_for(&cartpole, 0), cartpole, config.clone());
    assert!(
        matches!(&r, Err(AlgoError::InvalidArgument(m)) if m.contains("Box")),
        "{:?}",
        r.err()
    );
    // use_sde without a gSDE policy, and a gSDE policy without use_sde.
    let pendulum = sync_env("Pendulum-v1", 2, 20);
    let r = Ppo::new(policy_for(&pendulum, 0), pendulum, config);
    assert!(
        matches!(&r, Err(AlgoError::InvalidArgument(m)) if m.contains("without gSDE")),
        "{:?}",
        r.err()
    );
    let pendulum = sync_env("Pendulum-v1", 2, 20);
    let r = Ppo::new(policy_with(&pendulum, 0, true), pendulum, small(0));
    assert!(
        matches!(&r, Err(AlgoError::InvalidArgument(m)) if m.contains("use_sde is not set")),
        "{:?}",
        r.err()
    );
}

#[test]
fn checkpoints_of_another_algorithm_are_refused_by_name() {
    set_threads();
    let path = temp_path("a2c_for_ppo.ckpt");
    let env = sync_env("CartPole-v1", 2, 30);
    let mut a2c = A2c::new(
        policy_for(&env, 0),
        env,
        A2cConfig {
            seed: Some(0),
            ..A2cConfig::default()
        },
    )
    .unwrap();
    a2c.learn(20, &mut []).unwrap();
    a2c.save(&path).unwrap();
    let env = sync_env("CartPole-v1", 2, 30);
    match Ppo::load(&path, policy_for(&env, 0), env) {
        Err(AlgoError::CheckpointKind {
            found, expected, ..
        }) => assert_eq!((found.as_str(), expected.as_str()), ("A2C", "PPO")),
        Err(other) => panic!("expected a checkpoint-kind error, got {other:?}"),
        Ok(_) => panic!("an A2C checkpoint loaded as PPO"),
    }
    // An on-policy checkpoint read as REINFORCE, and the other way round.
    let env = rl_env::make("CartPole-v1").unwrap();
    let policy = MlpPolicy::new(
        env.observation_space(),
        env.action_space(),
        MlpPolicyConfig::default(),
        0,
        &Device::Cpu,
    )
    .unwrap();
    match rl_algos::Reinforce::load(&path, policy, env) {
        Err(AlgoError::CheckpointKind { found, .. }) => assert!(found.contains("on-policy")),
        other => panic!("expected a checkpoint-kind error, got {:?}", other.err()),
    }
    let _ = std::fs::remove_file(&path);
}

#[test]
fn divergence_stops_training_with_the_iteration() {
    set_threads();
    let config = PpoConfig {
        learning_rate: Schedule::Constant(1e35),
        max_grad_norm: 1e30,
        ..small(7)
    };
    let mut m = model(sync_env("CartPole-v1", 2, 100), config);
    match m.learn(2_000, &mut []) {
        Err(AlgoError::Diverged { iteration, what }) => {
            assert!(
                iteration >= 1 && iteration <= m.iterations() + 1,
                "{iteration} {what}"
            );
        }
        other => panic!("expected divergence, got {other:?}"),
    }
}

#[test]
fn bad_configurations_are_rejected_with_the_field_named() {
    set_threads();
    for (field, config) in [
        (
            "n_steps",
            PpoConfig {
                n_steps: 0,
                ..small(0)
            },
        ),
        (
            "batch_size",
            PpoConfig {
                batch_size: 0,
                ..small(0)
            },
        ),
        (
            "batch_size",
            PpoConfig {
                batch_size: 1,
                ..small(0)
            },
        ),
        (
            "n_epochs",
            PpoConfig {
                n_epochs: 0,
                ..small(0)
            },
        ),
        (
            "gamma",
            PpoConfig {
                gamma: 1.5,
                ..small(0)
            },
        ),
        (
            "gae_lambda",
            PpoConfig {
                gae_lambda: -0.1,
                ..small(0)
            },
        ),
        (
            "clip_range",
            PpoConfig {
                clip_range: Schedule::Constant(0.0),
                ..small(0)
            },
        ),
        (
            "clip_range_vf",
            PpoConfig {
                clip_range_vf: Some(Schedule::Constant(f64::NAN)),
                ..small(0)
            },
        ),
        (
            "target_kl",
            PpoConfig {
                target_kl: Some(-1.0),
                ..small(0)
            },
        ),
        (
            "learning_rate",
            PpoConfig {
                learning_rate: Schedule::Constant(f64::INFINITY),
                ..small(0)
            },
        ),
        (
            "max_grad_norm",
            PpoConfig {
                max_grad_norm: 0.0,
                ..small(0)
            },
        ),
        (
            "ent_coef",
            PpoConfig {
                ent_coef: -1.0,
                ..small(0)
            },
        ),
        (
            "adam_eps",
            PpoConfig {
                adam_eps: 0.0,
                ..small(0)
            },
        ),
        (
            "stats_window_size",
            PpoConfig {
                stats_window_size: 0,
                ..small(0)
            },
        ),
    ] {
        let env = sync_env("CartPole-v1", 1, 10);
        match Ppo::new(policy_for(&env, 0), env, config.clone()) {
            Err(AlgoError::InvalidArgument(m)) => {
                assert!(m.contains(field), "{field}: message {m:?} does not name it")
            }
            Err(other) => panic!("{field}: expected InvalidArgument, got {other:?}"),
            Ok(_) => panic!("{field}: {config:?} was accepted"),
        }
    }
    // Rollouts too large to allocate are refused before anything is allocated.
    let env = sync_env("CartPole-v1", 4, 10);
    let huge = PpoConfig {
        n_steps: 1 << 62,
        ..small(0)
    };
    match Ppo::new(policy_for(&env, 0), env, huge) {
        Err(AlgoError::InvalidArgument(m)) => assert!(m.contains("n_steps"), "{m}"),
        other => panic!("expected InvalidArgument, got {:?}", other.err()),
    }
    let env = SyncVecEnv::make("CartPole-v1", 1, AutoresetMode::NextStep).unwrap();
    assert!(matches!(
        Ppo::new(policy_for(&env, 0), env, small(0)).err(),
        Some(AlgoError::InvalidArgument(_))
    ));
}

/// A user's own network: a shared ReLU trunk with two heads, written with candle-nn.
struct SharedTrunk {
    trunk: Linear,
    pi: Linear,
    v: Linear,
    vars: VarMap,
    device: Device,
}

impl SharedTrunk {
    fn new(obs_dim: usize, n_actions: usize) -> Self {
        let (vars, device) = (VarMap::new(), Device::Cpu);
        let vb = VarBuilder::from_varmap(&vars, DType::F32, &device);
        SharedTrunk {
            trunk: candle_nn::linear(obs_dim, 32, vb.pp("trunk")).unwrap(),
            pi: candle_nn::linear(32, n_actions, vb.pp("pi")).unwrap(),
            v: candle_nn::linear(32, 1, vb.pp("v")).unwrap(),
            vars,
            device,
        }
    }
}

impl StochasticPolicy for SharedTrunk {
    fn action_dist(&self, obs: &Tensor) -> rl_policy::Result<ActionDist> {
        Ok(self.forward(obs)?.0)
    }
    fn trainable_vars(&self) -> Vec<(String, Var)> {
        let mut v: Vec<_> = self
            .vars
            .data()
            .lock()
            .unwrap()
            .clone()
            .into_iter()
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }
    fn device(&self) -> &Device {
        &self.device
    }
}

impl ActorCritic for SharedTrunk {
    fn forward(&self, obs: &Tensor) -> rl_policy::Result<(ActionDist, Tensor)> {
        let h = self.trunk.forward(obs)?.relu()?;
        let dist = Categorical::from_logits(&self.pi.forward(&h)?)?;
        Ok((
            ActionDist::Categorical(dist),
            self.v.forward(&h)?.squeeze(1)?,
        ))
    }
}

#[test]
fn trains_a_users_own_network() {
    set_threads();
    let env = sync_env("CartPole-v1", 4, 50);
    let net = SharedTrunk::new(4, 2);
    let before = bits_of(net.trainable_vars());
    let mut m = Ppo::new(net, env, small(8)).unwrap();
    m.learn(256, &mut []).unwrap();
    let after = bits_of(m.policy_ref().trainable_vars());
    assert_eq!(before.len(), after.len());
    for ((name, b), (_, a)) in before.iter().zip(&after) {
        assert_ne!(a, b, "{name} was not trained");
    }
}

/// Trains with `config` on `n_envs` copies of `id` for `total` steps, evaluating the
/// deterministic policy on 10 episodes every `every` steps and at the end; returns
/// (evaluations, final mean, seconds).
fn learning_run(
    id: &str,
    n_envs: usize,
    config: PpoConfig,
    total: u64,
    every: u64,
) -> (Vec<(u64, f64)>, f64, f64) {
    set_threads();
    struct Evals {
        env: Box<dyn Env>,
        every: u64,
        next: u64,
        history: Vec<(u64, f64)>,
    }
    impl Callback for Evals {
        fn on_step(&mut self, l: &Locals<'_>, _: &mut Logger) -> rl_algos::Result<bool> {
            if l.num_timesteps >= self.next {
                self.next += self.every;
                let mut rng = rand::rngs::mock::StepRng::new(0, 1);
                let e = evaluate_policy(l.algo.policy(), &mut self.env, 10, true, &mut rng)?;
                self.history.push((l.num_timesteps, e.mean));
            }
            Ok(true)
        }
    }
    let seed = config.seed.unwrap();
    let env = SyncVecEnv::make(id, n_envs, AutoresetMode::SameStep).unwrap();
    let mut m = model(env, config);
    let mut eval_env = rl_env::make(id).unwrap();
    eval_env.reset(Some(10_000 + seed)).unwrap();
    let mut cb = Evals {
        env: eval_env,
        every,
        next: every,
        history: Vec::new(),
    };
    let start = std::time::Instant::now();
    m.learn(total, &mut [&mut cb]).unwrap();
    let secs = start.elapsed().as_secs_f64();
    let (policy, _) = m.into_parts();
    let mut final_env = rl_env::make(id).unwrap();
    final_env.reset(Some(20_000 + seed)).unwrap();
    let mut rng = rand::rngs::mock::StepRng::new(0, 1);
    let fin = evaluate_policy(&policy, &mut final_env, 10, true, &mut rng)
        .unwrap()
        .mean;
    (cb.history, fin, secs)
}

#[test]
#[ignore = "slow: run in release with --ignored"]
fn ppo_solves_cartpole_with_rl_zoo_settings() {
    let mut reached = 0;
    let mut report = Vec::new();
    for seed in 0..5u64 {
        // rl-zoo's hyperparams/ppo.yml, CartPole-v1.
        let config = PpoConfig {
            n_steps: 32,
            batch_size: 256,
            gae_lambda: 0.8,
            gamma: 0.98,
            n_epochs: 20,
            ent_coef: 0.0,
            learning_rate: Schedule::LinearToZero(1e-3),
            clip_range: Schedule::LinearToZero(0.2),
            seed: Some(seed),
            log_interval: 0,
            ..PpoConfig::default()
        };
        let (history, fin, secs) = learning_run("CartPole-v1", 8, config, 100_000, 10_000);
        let best = history.iter().map(|h| h.1).fold(fin, f64::max);
        println!(
            "seed {seed}: final {fin:.1}, best {best:.1} ({secs:.1} s); evaluations {history:?}"
        );
        report.push((seed, fin, best));
        reached += usize::from(best >= 475.0);
    }
    assert!(
        reached >= 4,
        "only {reached} of 5 seeds reached a mean of 475: {report:?}"
    );
}

#[test]
#[ignore = "slow: run in release with --ignored"]
fn ppo_learns_pendulum_with_rl_zoo_settings_without_gsde() {
    let mut reached = 0;
    let mut report = Vec::new();
    for seed in 0..3u64 {
        // rl-zoo's hyperparams/ppo.yml, Pendulum-v1, without its use_sde/sde_sample_freq.
        let config = PpoConfig {
            n_steps: 1024,
            gae_lambda: 0.95,
            gamma: 0.9,
            n_epochs: 10,
            ent_coef: 0.0,
            learning_rate: Schedule::Constant(1e-3),
            clip_range: Schedule::Constant(0.2),
            seed: Some(seed),
            log_interval: 0,
            ..PpoConfig::default()
        };
        let (history, fin, secs) = learning_run("Pendulum-v1", 4, config, 100_000, 8_192);
        let best = history.iter().map(|h| h.1).fold(fin, f64::max);
        println!(
            "seed {seed}: final {fin:.1}, best {best:.1} ({secs:.1} s); evaluations {history:?}"
        );
        report.push((seed, fin, best));
        reached += usize::from(best >= -400.0);
    }
    assert!(
        reached >= 2,
        "only {reached} of 3 seeds reached a mean of -400: {report:?}"
    );
}

#[test]
#[ignore = "slow: run in release with --ignored"]
fn ppo_learns_pendulum_with_rl_zoo_gsde_settings() {
    // rl-zoo's hyperparams/ppo.yml Pendulum-v1 entry as it is (4 envs, 1e5 steps, use_sde,
    // sde_sample_freq 4; about 3 s per seed in release): the final 10-episode deterministic
    // return must beat the same seed's untrained policy and reach -350 (issue 11's bar) for
    // at least 2 of 3 seeds.
    let mut report = Vec::new();
    for seed in 0..3u64 {
        let config = PpoConfig {
            n_steps: 1024,
            gae_lambda: 0.95,
            gamma: 0.9,
            n_epochs: 10,
            ent_coef: 0.0,
            learning_rate: Schedule::Constant(1e-3),
            clip_range: Schedule::Constant(0.2),
            use_sde: true,
            sde_sample_freq: 4,
            seed: Some(seed),
            log_interval: 0,
            ..PpoConfig::default()
        };
        let env = SyncVecEnv::make("Pendulum-v1", 4, AutoresetMode::SameStep).unwrap();
        let untrained = policy_with(&env, seed, true);
        let mut eval_env = rl_env::make("Pendulum-v1").unwrap();
        eval_env.reset(Some(20_000 + seed)).unwrap();
        let mut rng = rand::rngs::mock::StepRng::new(0, 1);
        let baseline = evaluate_policy(&untrained, &mut eval_env, 10, true, &mut rng)
            .unwrap()
            .mean;
        let (history, fin, secs) = learning_run("Pendulum-v1", 4, config, 102_400, 20_480);
        println!(
            "seed {seed}: untrained {baseline:.1}, after 102400 steps {fin:.1} ({secs:.1} s); \
             evaluations {history:?}"
        );
        report.push((seed, baseline, fin));
    }
    for &(seed, baseline, fin) in &report {
        assert!(
            fin > baseline + 200.0,
            "seed {seed}: {fin:.1} is not clearly better than the untrained {baseline:.1}"
        );
    }
    let reached = report.iter().filter(|r| r.2 >= -350.0).count();
    assert!(
        reached >= 2,
        "only {reached} of 3 seeds reached -350: {report:?}"
    );
}

/// FNV-1a 64 over `bytes`: the checkpoints' checksum, so a test can forge a valid file.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Found by fuzzing (`fuzz/fuzz_targets/checkpoint.rs`): counters restored from a checkpoint
/// can be anything, and near u64::MAX they overflowed (a panic in debug builds) when training
/// went on. They saturate now.
#[test]
fn forged_counters_near_the_maximum_saturate_instead_of_overflowing() {
    set_threads();
    let path = temp_path("counters.ckpt");
    let mut m = model(sync_env("CartPole-v1", 3, 20), small(12));
    m.learn(96, &mut []).unwrap();
    m.save(&path).unwrap();
    let good = std::fs::read(&path).unwrap();
    // num_timesteps, total_timesteps, iterations, n_updates follow each other in the file.
    let mut pattern = Vec::new();
    for v in [96u64, 96, m.iterations(), m.n_updates()] {
        pattern.extend_from_slice(&v.to_le_bytes());
    }
    let at = good
        .windows(pattern.len())
        .position(|w| w == pattern)
        .expect("the counters in the checkpoint");
    let mut forged = good.clone();
    for k in 0..4 {
        forged[at + 8 * k..at + 8 * k + 8].copy_from_slice(&(u64::MAX - 1).to_le_bytes());
    }
    let body = forged.len() - 8;
    let sum = fnv1a(&forged[..body]);
    forged[body..].copy_from_slice(&sum.to_le_bytes());
    std::fs::write(&path, &forged).unwrap();
    let env = sync_env("CartPole-v1", 3, 20);
    let mut resumed = Ppo::load(&path, policy_for(&env, 0), env).unwrap();
    resumed.learn(u64::MAX, &mut []).unwrap();
    assert_eq!(resumed.num_timesteps(), u64::MAX);
    assert_eq!(resumed.n_updates(), u64::MAX);
    let _ = std::fs::remove_file(&path);
}

/// The fast MLP path ([`rl_algos::ppo::PpoFastUpdate`]) and the generic Candle path
/// ([`rl_algos::ppo::ppo_update`]) agree to f32 rounding: losses, approx_kl, clip fraction,
/// gradient norms and parameters within 1e-6 (relative above 1) over twelve chained minibatch
/// steps with ratios on both sides of the clipping range, value clipping and entropy, for
/// discrete and Box actions; a `target_kl` stop is decided the same way.
#[test]
fn fast_and_generic_minibatch_steps_agree_within_1e_6() {
    use rl_algos::buffer::actions_to_tensor;
    use rl_algos::optim::{Adam, Optimizer};
    use rl_algos::ppo::{ppo_update, PpoBatch, PpoFastUpdate, PpoHostBatch, PpoParams};
    use rl_policy::{ActorCritic, MlpPolicy, MlpPolicyConfig};
    set_threads();
    for (id, clip_range_vf, ent_coef, target_kl) in [
        ("CartPole-v1", None, 0.0, None),
        ("CartPole-v1", Some(0.2), 0.01, Some(0.02)),
        ("Pendulum-v1", Some(0.5), 0.0, None),
        ("Pendulum-v1", None, 0.005, None),
    ] {
        let env = sync_env(id, 2, 200);
        let make = || {
            MlpPolicy::new(
                env.observation_space(),
                env.action_space(),
                MlpPolicyConfig::default(),
                5,
                &Device::Cpu,
            )
            .unwrap()
        };
        let (fp, sp) = (make(), make());
        let (mut fo, mut so) = (
            Adam::new(fp.trainable_vars(), 3e-3, 1e-5).unwrap(),
            Adam::new(sp.trainable_vars(), 3e-3, 1e-5).unwrap(),
        );
        let b = 64;
        let mut fast = PpoFastUpdate::new(fp.mlp_layout().unwrap(), b, &fo).unwrap();
        let (od, ad) = (
            env.observation_space().flat_dim(),
            env.action_space().flat_dim(),
        );
        let discrete = id.starts_with("Cart");
        let params = PpoParams {
            clip_range: 0.2,
            clip_range_vf,
            ent_coef,
            vf_coef: 0.5,
            max_grad_norm: 0.5,
            normalize_advantage: true,
            target_kl,
        };
        let mut worst = 0f64;
        for it in 0..12u64 {
            let m = if it % 3 == 2 { 37 } else { b };
            let wave = |i: usize, f: f32| ((i as f32 + it as f32 * 3.0) * f).sin();
            let obs: Vec<f32> = (0..m * od).map(|i| wave(i, 0.37)).collect();
            let actions: Vec<f32> = (0..m * ad)
                .map(|i| {
                    if discrete {
                        (i % 2) as f32
                    } else {
                        wave(i, 1.7) * 1.5
                    }
                })
                .collect();
            let obs_t = Tensor::from_slice(&obs, (m, od), &Device::Cpu).unwrap();
            let act_t = actions_to_tensor(&actions, m, env.action_space(), &Device::Cpu).unwrap();
            // Old log-probs around the current ones: ratios inside and outside [0.8, 1.2].
            let lp: Vec<f32> = sp
                .action_dist(&obs_t)
                .unwrap()
                .log_prob(&act_t)
                .unwrap()
                .to_vec1()
                .unwrap();
            let old_lp: Vec<f32> = lp
                .iter()
                .enumerate()
                .map(|(i, l)| l + wave(i, 0.8) * 0.4)
                .collect();
            let old_values: Vec<f32> = (0..m).map(|i| wave(i, 0.5)).collect();
            let advantages: Vec<f32> = (0..m).map(|i| wave(i, 0.9) * 2.0).collect();
            // Returns away from the values: no parameter's gradient cancels to ~0, where Adam's
            // first steps (g / (|g| + eps)) would magnify the paths' rounding differences.
            let returns: Vec<f32> = (0..m).map(|i| wave(i, 0.3) * 3.0 + 2.0).collect();
            let batch = PpoBatch {
                observations: &obs_t,
                actions: &act_t,
                old_values: &old_values,
                old_log_probs: &old_lp,
                advantages: &advantages,
                returns: &returns,
            };
            let host = PpoHostBatch {
                observations: &obs,
                actions: &actions,
                old_values: &old_values,
                old_log_probs: &old_lp,
                advantages: &advantages,
                returns: &returns,
            };
            let s = ppo_update(&sp, &mut so, &batch, &params, it).unwrap();
            let f = fast.update(&mut fo, &host, &params, it).unwrap();
            assert_eq!(f.stepped, s.stepped, "{id}: target_kl decision at {it}");
            assert_eq!(f.grad_norm.is_some(), s.grad_norm.is_some());
            for (x, y) in [
                (f.loss, s.loss),
                (f.policy_loss, s.policy_loss),
                (f.value_loss, s.value_loss),
                (f.entropy_loss, s.entropy_loss),
                (f.approx_kl, s.approx_kl),
                (f.clip_fraction, s.clip_fraction),
                (f.grad_norm.unwrap_or(0.0), s.grad_norm.unwrap_or(0.0)),
            ] {
                worst = worst.max((x - y).abs() / y.abs().max(1.0));
            }
            for ((name, a), (_, c)) in fp.trainable_vars().iter().zip(sp.trainable_vars()) {
                let a: Vec<f32> = a.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
                let c: Vec<f32> = c.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
                for (x, y) in a.iter().zip(&c) {
                    let d = f64::from((x - y).abs()) / f64::from(y.abs()).max(1.0);
                    assert!(d <= 1e-6, "{id}: {name} after {it}: {x} vs {y}");
                }
            }
            assert_eq!(fo.state().unwrap().step, so.state().unwrap().step);
        }
        println!("{id} clip_vf={clip_range_vf:?} ent={ent_coef}: worst stat error {worst:.2e}");
        assert!(worst <= 1e-6, "{id}: statistics differ by {worst:e}");
    }
}
