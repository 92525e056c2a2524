//! DQN behaviour: counters and logged keys, determinism across engines, bit-exact resume
//! (replay buffer included), configuration and space errors, a user's own Q-network, and
//! (ignored in debug builds) learning with rl-zoo's settings.

mod support;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{Linear, Module, VarBuilder, VarMap};
use rl_algos::dqn::{Dqn, DqnConfig, DqnLoss};
use rl_algos::off_policy::{GradientSteps, TrainFreq};
use rl_algos::optim::Schedule;
use rl_algos::ppo::{Ppo, PpoConfig};
use rl_algos::{evaluate_policy, AlgoError, Callback, Locals, Logger};
use rl_env::registry::EnvSpec;
use rl_env::{AutoresetMode, Env, SyncVecEnv, ThreadVecEnv, VecEnv};
use rl_policy::{MlpPolicy, MlpPolicyConfig, QFunction, QNetwork, QNetworkConfig};
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

fn q_for<V: VecEnv>(env: &V, net_arch: Vec<usize>, seed: u64) -> QNetwork {
    QNetwork::new(
        env.observation_space(),
        env.action_space(),
        QNetworkConfig {
            net_arch,
            ..QNetworkConfig::default()
        },
        seed,
        &Device::Cpu,
    )
    .unwrap()
}

fn small(seed: u64) -> DqnConfig {
    DqnConfig {
        learning_rate: Schedule::Constant(1e-3),
        buffer_size: 500,
        learning_starts: 40,
        batch_size: 16,
        train_freq: TrainFreq::Steps(2),
        gradient_steps: GradientSteps::Fixed(2),
        target_update_interval: 30,
        exploration_fraction: 0.5,
        seed: Some(seed),
        log_interval: 0,
        ..DqnConfig::default()
    }
}

fn bits_of(vars: Vec<(String, Var)>) -> Vec<(String, Vec<u32>)> {
    vars.into_iter()
        .map(|(n, v)| {
            let xs: Vec<f32> = v.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
            (n, xs.into_iter().map(f32::to_bits).collect())
        })
        .collect()
}

fn temp_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rl-algos-dqn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn learn_counts_steps_calls_and_updates_and_logs_sb3_keys() {
    set_threads();
    let env = sync_env("CartPole-v1", 3, 40);
    let q = q_for(&env, vec![16], 0);
    let mut m = Dqn::new(q, env, small(1)).unwrap();
    m.learn(300, &mut []).unwrap();
    // 100 vector steps of 3: training every 2 steps once past 40 steps.
    assert_eq!(m.num_timesteps(), 300);
    assert_eq!(m.trainer().n_calls(), 100);
    let rounds = (1..=50u64).filter(|r| r * 6 > 40).count() as u64;
    assert_eq!(m.training_rounds(), rounds);
    assert_eq!(m.trainer().n_updates(), 2 * rounds);
    assert_eq!(m.replay_buffer().len(), 300);
    let keys: Vec<&str> = m.logger().values().keys().map(String::as_str).collect();
    for k in [
        "rollout/exploration_rate",
        "train/learning_rate",
        "train/loss",
        "train/n_updates",
    ] {
        assert!(keys.contains(&k), "{k} not logged: {keys:?}");
    }
    assert!(m.episode_num() > 0);
    let stats = m.last_train().unwrap();
    assert!(stats.loss.is_finite() && stats.grad_norm.is_finite());
    // ε fell linearly over the first half, then stayed at its final value.
    assert_eq!(m.exploration_rate(), 0.05);
}

#[test]
fn same_seed_gives_bit_identical_parameters_with_sync_and_thread_engines() {
    set_threads();
    let run = |threaded: bool| {
        let spec = EnvSpec {
            max_episode_steps: Some(50),
            ..EnvSpec::default()
        };
        let config = DqnConfig {
            n_steps: 3,
            tau: 0.5,
            ..small(3)
        };
        if threaded {
            let env = ThreadVecEnv::make_with("CartPole-v1", &spec, 4, 2, AutoresetMode::SameStep)
                .unwrap();
            let mut m = Dqn::new(q_for(&env, vec![32], 7), env, config).unwrap();
            m.learn(400, &mut []).unwrap();
            bits_of(m.q_net().trainable_vars())
        } else {
            let env =
                SyncVecEnv::make_with("CartPole-v1", &spec, 4, AutoresetMode::SameStep).unwrap();
            let mut m = Dqn::new(q_for(&env, vec![32], 7), env, config).unwrap();
            m.learn(400, &mut []).unwrap();
            bits_of(m.q_net().trainable_vars())
        }
    };
    let a = run(false);
    assert_eq!(a, run(false), "two sync runs differ");
    assert_eq!(a, run(true), "sync and threaded runs differ");
    let initial = {
        let env = sync_env("CartPole-v1", 4, 50);
        bits_of(q_for(&env, vec![32], 7).trainable_vars())
    };
    assert_ne!(a, initial, "training changed nothing");
}

fn resume_case(config: DqnConfig, at: u64, total: u64, file: &str) {
    set_threads();
    let path = temp_path(file);
    let mut saver = SaveAt {
        at,
        path: path.clone(),
        saved: false,
    };
    let env = sync_env("CartPole-v1", 2, 30);
    let mut full = Dqn::new(q_for(&env, vec![16, 16], 0), env, config.clone()).unwrap();
    full.learn(total, &mut [&mut saver]).unwrap();
    assert!(saver.saved);
    let env = sync_env("CartPole-v1", 2, 30);
    // Other weights: the checkpoint must overwrite them.
    let q = q_for(&env, vec![16, 16], 999);
    let mut resumed = Dqn::load(&path, q, env).unwrap();
    assert_eq!(resumed.config(), &config);
    resumed.learn(total, &mut []).unwrap();
    assert_eq!(resumed.num_timesteps(), full.num_timesteps());
    assert_eq!(resumed.trainer().n_updates(), full.trainer().n_updates());
    assert_eq!(resumed.episode_num(), full.episode_num());
    assert_eq!(
        bits_of(resumed.q_net().trainable_vars()),
        bits_of(full.q_net().trainable_vars()),
        "resumed Q-network differs"
    );
    assert_eq!(
        bits_of(resumed.trainer().q_net_target().trainable_vars()),
        bits_of(full.trainer().q_net_target().trainable_vars()),
        "resumed target network differs"
    );
    assert_eq!(
        resumed.optimizer().state().unwrap(),
        full.optimizer().state().unwrap(),
        "Adam state differs"
    );
    assert_eq!(
        resumed.exploration_rate().to_bits(),
        full.exploration_rate().to_bits()
    );
    let _ = std::fs::remove_file(&path);
}

#[test]
fn resuming_a_checkpoint_is_bit_identical() {
    // Saved during warm-up... and after learning started, mid-round and mid-episode.
    resume_case(small(4), 20, 240, "dqn_warmup.ckpt");
    resume_case(small(4), 131, 240, "dqn_mid.ckpt");
}

#[test]
fn resuming_is_bit_identical_with_n_step_polyak_and_episode_rounds() {
    let config = DqnConfig {
        n_steps: 3,
        tau: 0.3,
        learning_rate: Schedule::LinearToZero(2e-3),
        gradient_steps: GradientSteps::AsCollected,
        buffer_size: 50, // wraps
        ..small(5)
    };
    resume_case(config, 150, 300, "dqn_nstep.ckpt");
    let episodic = DqnConfig {
        train_freq: TrainFreq::Episodes(1),
        ..small(6)
    };
    set_threads();
    let path = temp_path("dqn_episodes.ckpt");
    let mut saver = SaveAt {
        at: 100,
        path: path.clone(),
        saved: false,
    };
    let mut full = Dqn::new(
        q_for(&sync_env("CartPole-v1", 1, 30), vec![8], 0),
        sync_env("CartPole-v1", 1, 30),
        episodic,
    )
    .unwrap();
    full.learn(200, &mut [&mut saver]).unwrap();
    let mut resumed = Dqn::load(
        &path,
        q_for(&sync_env("CartPole-v1", 1, 30), vec![8], 1),
        sync_env("CartPole-v1", 1, 30),
    )
    .unwrap();
    resumed.learn(200, &mut []).unwrap();
    assert_eq!(
        bits_of(resumed.q_net().trainable_vars()),
        bits_of(full.q_net().trainable_vars())
    );
    assert_eq!(resumed.training_rounds(), full.training_rounds());
}

#[test]
fn checkpoints_of_another_algorithm_or_environment_are_refused() {
    set_threads();
    let path = temp_path("ppo_for_dqn.ckpt");
    let env = sync_env("CartPole-v1", 2, 30);
    let policy = MlpPolicy::new(
        env.observation_space(),
        env.action_space(),
        MlpPolicyConfig::default(),
        0,
        &Device::Cpu,
    )
    .unwrap();
    let mut ppo = Ppo::new(
        policy,
        env,
        PpoConfig {
            n_steps: 8,
            batch_size: 16,
            seed: Some(0),
            log_interval: 0,
            ..PpoConfig::default()
        },
    )
    .unwrap();
    ppo.learn(16, &mut []).unwrap();
    ppo.save(&path).unwrap();
    let env = sync_env("CartPole-v1", 2, 30);
    let q = q_for(&env, vec![8], 0);
    match Dqn::load(&path, q, env) {
        Err(e) => {
            let m = e.to_string();
            assert!(m.contains("on-policy") || m.contains("PPO"), "{m}");
        }
        Ok(_) => panic!("a PPO checkpoint loaded as DQN"),
    }

    // A DQN checkpoint on other environments: the replayed observations differ.
    let env = sync_env("CartPole-v1", 2, 30);
    let mut dqn = Dqn::new(q_for(&env, vec![8], 0), env, small(0)).unwrap();
    dqn.learn(60, &mut []).unwrap();
    dqn.save(&path).unwrap();
    let other = sync_env("CartPole-v1", 3, 30);
    assert!(Dqn::load(&path, q_for(&other, vec![8], 0), other).is_err());
    // Another architecture.
    let env = sync_env("CartPole-v1", 2, 30);
    assert!(Dqn::load(&path, q_for(&env, vec![9], 0), env).is_err());
    // Damaged bytes.
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&path, &bytes).unwrap();
    let env = sync_env("CartPole-v1", 2, 30);
    assert!(Dqn::load(&path, q_for(&env, vec![8], 0), env).is_err());
    bytes.truncate(mid);
    std::fs::write(&path, &bytes).unwrap();
    let env = sync_env("CartPole-v1", 2, 30);
    assert!(Dqn::load(&path, q_for(&env, vec![8], 0), env).is_err());
    let _ = std::fs::remove_file(&path);
}

#[test]
fn bad_configurations_and_spaces_are_rejected_with_the_field_named() {
    set_threads();
    let cases: Vec<(DqnConfig, &str)> = vec![
        (
            DqnConfig {
                buffer_size: 0,
                ..small(0)
            },
            "buffer_size",
        ),
        (
            DqnConfig {
                batch_size: 0,
                ..small(0)
            },
            "batch_size",
        ),
        (
            DqnConfig {
                tau: 0.0,
                ..small(0)
            },
            "tau",
        ),
        (
            DqnConfig {
                tau: f64::NAN,
                ..small(0)
            },
            "tau",
        ),
        (
            DqnConfig {
                gamma: 1.5,
                ..small(0)
            },
            "gamma",
        ),
        (
            DqnConfig {
                target_update_interval: 0,
                ..small(0)
            },
            "target_update_interval",
        ),
        (
            DqnConfig {
                exploration_fraction: 0.0,
                ..small(0)
            },
            "end_fraction",
        ),
        (
            DqnConfig {
                exploration_final_eps: 1.5,
                ..small(0)
            },
            "exploration rate",
        ),
        (
            DqnConfig {
                max_grad_norm: -1.0,
                ..small(0)
            },
            "max_grad_norm",
        ),
        (
            DqnConfig {
                learning_rate: Schedule::Constant(f64::NAN),
                ..small(0)
            },
            "learning_rate",
        ),
        (
            DqnConfig {
                n_steps: 0,
                ..small(0)
            },
            "n_steps",
        ),
        (
            DqnConfig {
                train_freq: TrainFreq::Steps(0),
                ..small(0)
            },
            "train_freq",
        ),
        (
            DqnConfig {
                buffer_size: usize::MAX,
                ..small(0)
            },
            "buffer",
        ),
    ];
    for (config, field) in cases {
        let env = sync_env("CartPole-v1", 2, 30);
        let q = q_for(&env, vec![8], 0);
        match Dqn::new(q, env, config.clone()) {
            Err(AlgoError::InvalidArgument(m)) => {
                assert!(m.contains(field), "{field}: {m}")
            }
            Err(e) => panic!("{field}: unexpected error {e}"),
            Ok(_) => panic!("{config:?} was accepted"),
        }
    }
    // Episode-counted rounds need one environment.
    let env = sync_env("CartPole-v1", 2, 30);
    let q = q_for(&env, vec![8], 0);
    let config = DqnConfig {
        train_freq: TrainFreq::Episodes(1),
        ..small(0)
    };
    assert!(Dqn::new(q, env, config).is_err());
    // Next-step autoreset cannot store final observations.
    let env = SyncVecEnv::make("CartPole-v1", 2, AutoresetMode::NextStep).unwrap();
    let q = q_for(&env, vec![8], 0);
    assert!(Dqn::new(q, env, small(0)).is_err());
    // Continuous actions: DQN needs a Discrete space (and QNetwork says so first).
    let env = sync_env("Pendulum-v1", 1, 30);
    assert!(QNetwork::new(
        env.observation_space(),
        env.action_space(),
        QNetworkConfig::default(),
        0,
        &Device::Cpu
    )
    .is_err());
    let user = Mlp::new(3, 2);
    match Dqn::new(user, env, small(0)) {
        Err(e) => assert!(e.to_string().contains("Discrete"), "{e}"),
        Ok(_) => panic!("DQN accepted a Box action space"),
    }
}

#[test]
fn the_mse_loss_and_no_clipping_train_too() {
    set_threads();
    let env = sync_env("CartPole-v1", 2, 30);
    let q = q_for(&env, vec![16], 0);
    let before = bits_of(q.trainable_vars());
    let config = DqnConfig {
        loss: DqnLoss::Mse,
        max_grad_norm: f64::INFINITY,
        ..small(2)
    };
    let mut m = Dqn::new(q, env, config).unwrap();
    m.learn(120, &mut []).unwrap();
    assert_ne!(bits_of(m.q_net().trainable_vars()), before);
    assert!(m.last_train().unwrap().loss.is_finite());
}

/// A user's own Q-network written with candle-nn.
struct Mlp {
    l1: Linear,
    l2: Linear,
    vars: VarMap,
    device: Device,
    dims: (usize, usize),
}

impl Mlp {
    fn new(obs_dim: usize, n_actions: usize) -> Self {
        let vars = VarMap::new();
        let device = Device::Cpu;
        let vb = VarBuilder::from_varmap(&vars, DType::F32, &device);
        Mlp {
            l1: candle_nn::linear(obs_dim, 24, vb.pp("l1")).unwrap(),
            l2: candle_nn::linear(24, n_actions, vb.pp("l2")).unwrap(),
            vars,
            device,
            dims: (obs_dim, n_actions),
        }
    }
}

impl QFunction for Mlp {
    fn q_values(&self, obs: &Tensor) -> rl_policy::Result<Tensor> {
        Ok(self.l2.forward(&self.l1.forward(obs)?.relu()?)?)
    }
    fn trainable_vars(&self) -> Vec<(String, Var)> {
        let mut v: Vec<(String, Var)> = self
            .vars
            .data()
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }
    fn device(&self) -> &Device {
        &self.device
    }
    fn duplicate(&self) -> rl_policy::Result<Self> {
        let copy = Mlp::new(self.dims.0, self.dims.1);
        for ((_, dst), (_, src)) in copy.trainable_vars().iter().zip(self.trainable_vars()) {
            dst.set(src.as_tensor())?;
        }
        Ok(copy)
    }
}

#[test]
fn trains_a_users_own_q_network() {
    set_threads();
    let env = sync_env("CartPole-v1", 2, 50);
    let net = Mlp::new(4, 2);
    let before = bits_of(net.trainable_vars());
    let mut m = Dqn::new(net, env, small(8)).unwrap();
    m.learn(200, &mut []).unwrap();
    let after = bits_of(m.q_net().trainable_vars());
    assert_eq!(before.len(), after.len());
    for ((name, b), (_, a)) in before.iter().zip(&after) {
        assert_ne!(a, b, "{name} was not trained");
    }
}

/// Trains DQN with `config` on one `id` environment for up to `total` steps; evaluates the
/// greedy policy on 10 episodes every `every` steps and stops once an evaluation reaches
/// `threshold` (SB3's `EvalCallback` + `StopTrainingOnRewardThreshold`): (evaluations, best
/// mean, seconds).
fn learning_run(
    id: &str,
    net_arch: Vec<usize>,
    config: DqnConfig,
    total: u64,
    every: u64,
    threshold: f64,
) -> (Vec<(u64, f64)>, f64, f64) {
    set_threads();
    struct Evals {
        env: Box<dyn Env>,
        every: u64,
        next: u64,
        threshold: f64,
        history: Vec<(u64, f64)>,
    }
    impl Callback for Evals {
        fn on_step(&mut self, l: &Locals<'_>, _: &mut Logger) -> rl_algos::Result<bool> {
            if l.num_timesteps >= self.next {
                self.next += self.every;
                let mut rng = rand::rngs::mock::StepRng::new(0, 1);
                let e = evaluate_policy(l.algo.policy(), &mut self.env, 10, true, &mut rng)?;
                self.history.push((l.num_timesteps, e.mean));
                return Ok(e.mean < self.threshold);
            }
            Ok(true)
        }
    }
    let seed = config.seed.unwrap();
    let env = SyncVecEnv::make(id, 1, AutoresetMode::SameStep).unwrap();
    let q = q_for(&env, net_arch, seed);
    let mut m = Dqn::new(q, env, config).unwrap();
    let mut eval_env = rl_env::make(id).unwrap();
    eval_env.reset(Some(10_000 + seed)).unwrap();
    let mut cb = Evals {
        env: eval_env,
        every,
        next: every,
        threshold,
        history: Vec::new(),
    };
    let start = std::time::Instant::now();
    m.learn(total, &mut [&mut cb]).unwrap();
    let secs = start.elapsed().as_secs_f64();
    let best = if cb.history.last().is_some_and(|&(_, v)| v >= threshold) {
        cb.history.last().unwrap().1
    } else {
        // The budget ran out: the final policy is what counts.
        let mut final_env = rl_env::make(id).unwrap();
        final_env.reset(Some(20_000 + seed)).unwrap();
        let mut rng = rand::rngs::mock::StepRng::new(0, 1);
        let policy = rl_algos::Algorithm::policy(&m);
        evaluate_policy(policy, &mut final_env, 10, true, &mut rng)
            .unwrap()
            .mean
    };
    (cb.history, best, secs)
}

/// rl-zoo's hyperparams/dqn.yml entry for `id` (its net_arch, config and n_timesteps), from
/// `DqnConfig::rl_zoo` (the `train` example's defaults too).
fn zoo(id: &str, seed: u64) -> (Vec<usize>, DqnConfig, u64) {
    let zoo = DqnConfig::rl_zoo(id).unwrap_or_else(|| panic!("no zoo entry for {id}"));
    let config = DqnConfig {
        seed: Some(seed),
        log_interval: 0,
        ..zoo.config
    };
    (zoo.q_net.net_arch, config, zoo.n_timesteps)
}

/// rl-zoo's settings on `id` for seeds 0, 1 (in parallel, one thread each) and, only when one
/// of them missed `threshold`, seed 2: at least 2 of the 3 must reach a mean of at least
/// `threshold` within the zoo's budget. (Two passing seeds settle "2 of 3", so the third is not spent.)
fn zoo_case(id: &'static str, threshold: f64, every: u64) {
    let run = move |seed: u64| {
        let (arch, config, total) = zoo(id, seed);
        let (history, fin, secs) = learning_run(id, arch, config, total, every, threshold);
        println!("{id} seed {seed}: result {fin:.1} ({secs:.1} s); evaluations {history:?}");
        (seed, fin)
    };
    let first: Vec<(u64, f64)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2u64).map(|seed| s.spawn(move || run(seed))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut report = first.clone();
    let mut reached = first.iter().filter(|(_, f)| *f >= threshold).count();
    if reached < 2 {
        let third = run(2);
        reached += usize::from(third.1 >= threshold);
        report.push(third);
    }
    assert!(
        reached >= 2,
        "{id}: only {reached} of 3 seeds ended with a mean of at least {threshold}: {report:?}"
    );
}

#[test]
#[ignore = "slow: run in release with --ignored"]
fn dqn_solves_cartpole_with_rl_zoo_settings() {
    zoo_case("CartPole-v1", 475.0, 10_000);
}

#[test]
#[ignore = "slow: run in release with --ignored"]
fn dqn_learns_mountaincar_with_rl_zoo_settings() {
    zoo_case("MountainCar-v0", -130.0, 20_000);
}

#[test]
#[ignore = "slow: run in release with --ignored"]
fn dqn_learns_acrobot_with_rl_zoo_settings() {
    zoo_case("Acrobot-v1", -100.0, 20_000);
}

/// The fast gradient step ([`DqnFastUpdate`], what `Dqn` uses for a `QNetwork`) against the
/// generic one (`dqn_targets` + `dqn_update` on a copy of the same network): 30 consecutive
/// steps on the same batches give targets, losses, gradient norms and parameters within 1e-6
/// (relative above 1), for both losses, with and without clipping, with n-step discounts.
#[test]
fn fast_gradient_steps_match_the_generic_path() {
    use rand::{Rng, SeedableRng};
    use rl_algos::dqn::{dqn_targets, dqn_update, DqnBatch, DqnFastUpdate, DqnHostBatch};
    use rl_algos::optim::{Adam, Optimizer};
    use rl_policy::Activation;
    set_threads();
    let env = sync_env("CartPole-v1", 1, 500);
    let close = |what: &str, got: f64, want: f64| {
        assert!(
            (got - want).abs() <= 1e-6 * want.abs().max(1.0),
            "{what}: {got} vs {want}"
        );
    };
    for (loss, max_grad_norm, activation, n_step) in [
        (DqnLoss::Huber, 10.0, Activation::ReLU, false),
        (DqnLoss::Mse, f64::INFINITY, Activation::Tanh, true),
        (DqnLoss::Huber, 0.05, Activation::Tanh, false),
    ] {
        let config = QNetworkConfig {
            net_arch: vec![64, 64],
            activation,
        };
        let (obs_space, act_space) = (env.observation_space(), env.action_space());
        let q_fast = QNetwork::new(obs_space, act_space, config, 4, &Device::Cpu).unwrap();
        let q_gen = q_fast.duplicate().unwrap();
        let target = q_fast.duplicate().unwrap();
        let mut opt_fast = Adam::new(q_fast.trainable_vars(), 1e-3, 1e-5).unwrap();
        let mut opt_gen = Adam::new(q_gen.trainable_vars(), 1e-3, 1e-5).unwrap();
        let mut fast = DqnFastUpdate::new(
            q_fast.q_layout().unwrap(),
            target.q_layout().unwrap(),
            32,
            &opt_fast,
        )
        .unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        for step in 0..30u64 {
            let b = 32 - (step as usize % 3) * 5;
            let mut draw = |n: usize, lo: f32, hi: f32| -> Vec<f32> {
                (0..n).map(|_| rng.gen_range(lo..hi)).collect()
            };
            let obs = draw(b * 4, -2.0, 2.0);
            let next = draw(b * 4, -2.0, 2.0);
            let rewards = draw(b, -1.0, 3.0);
            let dones: Vec<f32> = draw(b, 0.0, 1.0)
                .iter()
                .map(|&u| f32::from(u8::from(u < 0.2)))
                .collect();
            let actions: Vec<f32> = draw(b, 0.0, 2.0).iter().map(|a| a.floor()).collect();
            let discounts: Vec<f32> = if n_step {
                draw(b, 0.9, 0.99)
            } else {
                Vec::new()
            };
            let host = DqnHostBatch {
                observations: &obs,
                actions: &actions,
                next_observations: &next,
                rewards: &rewards,
                dones: &dones,
                discounts: &discounts,
            };
            let got = fast
                .update(&mut opt_fast, &host, 0.99, loss, max_grad_norm, step)
                .unwrap();
            let obs_t = Tensor::from_slice(&obs, (b, 4), &Device::Cpu).unwrap();
            let next_t = Tensor::from_slice(&next, (b, 4), &Device::Cpu).unwrap();
            let batch = DqnBatch {
                observations: &obs_t,
                actions: &actions,
                next_observations: &next_t,
                rewards: &rewards,
                dones: &dones,
                discounts: &discounts,
            };
            let (_, targets) = dqn_targets(&target, &batch, 0.99).unwrap();
            for (g, w) in fast.targets().iter().zip(&targets) {
                close("target", f64::from(*g), f64::from(*w));
            }
            let want = dqn_update(
                &q_gen,
                &mut opt_gen,
                &batch,
                &targets,
                loss,
                max_grad_norm,
                step,
            )
            .unwrap();
            close("loss", got.loss, want.loss);
            close("grad norm", got.grad_norm, want.grad_norm);
        }
        for ((name, a), (_, b)) in opt_fast.vars().iter().zip(opt_gen.vars()) {
            let a: Vec<f32> = a.flatten_all().unwrap().to_vec1().unwrap();
            let b: Vec<f32> = b.flatten_all().unwrap().to_vec1().unwrap();
            for (x, y) in a.iter().zip(&b) {
                close(name, f64::from(*x), f64::from(*y));
            }
        }
    }
}
