//! A2C's training loop: logging, callbacks, determinism across vector engines, bit-exact
//! checkpoint resume, corrupt checkpoints, divergence, configuration errors, and (ignored,
//! release-only) learning CartPole-v1.

mod support;

use candle_core::Device;
use rl_algos::a2c::{A2c, A2cConfig};
use rl_algos::optim::Schedule;
use rl_algos::{AlgoError, Callback, Locals, Logger};
use rl_env::registry::EnvSpec;
use rl_env::{AutoresetMode, Env, SyncVecEnv, ThreadVecEnv, VecEnv};
use rl_policy::{MlpPolicy, MlpPolicyConfig, StochasticPolicy};
use std::path::PathBuf;
use support::SaveAt;

fn set_threads() {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        std::env::set_var("RAYON_NUM_THREADS", "1");
    }
}

fn spec(max_steps: u64) -> EnvSpec {
    EnvSpec {
        max_episode_steps: Some(max_steps),
        ..EnvSpec::default()
    }
}

fn sync_env(id: &str, n: usize, max_steps: u64) -> SyncVecEnv {
    SyncVecEnv::make_with(id, &spec(max_steps), n, AutoresetMode::SameStep).unwrap()
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

fn model<V: VecEnv>(env: V, config: A2cConfig) -> A2c<MlpPolicy, V> {
    let policy = policy_with(&env, config.seed.unwrap_or(0), config.use_sde);
    A2c::new(policy, env, config).unwrap()
}

fn params<V: VecEnv>(m: &A2c<MlpPolicy, V>) -> Vec<(String, Vec<u32>)> {
    m.policy_ref()
        .trainable_vars()
        .into_iter()
        .map(|(n, v)| {
            let bits = v
                .as_tensor()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            (n, bits.into_iter().map(f32::to_bits).collect())
        })
        .collect()
}

fn seeded(seed: u64) -> A2cConfig {
    A2cConfig {
        seed: Some(seed),
        ..A2cConfig::default()
    }
}

fn temp_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rl-algos-a2c-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn learn_counts_steps_updates_and_logs_sb3_keys() {
    set_threads();
    let config = A2cConfig {
        log_interval: 0,
        ent_coef: 0.01,
        ..seeded(1)
    };
    let mut m = model(sync_env("CartPole-v1", 4, 25), config);
    m.learn(400, &mut []).unwrap();
    assert_eq!(m.num_timesteps(), 400);
    assert_eq!(m.iterations(), 20);
    assert_eq!(m.n_updates(), 20);
    assert_eq!(m.optimizer().learning_rate(), 7e-4);
    let keys: Vec<&str> = m.logger().values().keys().map(String::as_str).collect();
    for k in [
        "train/entropy_loss",
        "train/explained_variance",
        "train/learning_rate",
        "train/n_updates",
        "train/policy_loss",
        "train/value_loss",
    ] {
        assert!(keys.contains(&k), "{k} missing from {keys:?}");
    }
    let episodes: Vec<(f64, u64)> = m.episode_info().collect();
    assert!(!episodes.is_empty());
    assert!(
        episodes.iter().all(|&(r, l)| l <= 25 && r == l as f64),
        "{episodes:?}"
    );
    let stats = m.last_update().unwrap();
    assert!(stats.loss.is_finite() && stats.grad_norm > 0.0);
}

#[test]
fn log_interval_dumps_rollout_and_time_statistics() {
    set_threads();
    let csv = temp_path("progress.csv");
    let mut m = model(
        sync_env("CartPole-v1", 2, 20),
        A2cConfig {
            log_interval: 10,
            ..seeded(2)
        },
    );
    *m.logger_mut() = Logger::new(false).with_csv(&csv).unwrap();
    m.learn(300, &mut []).unwrap();
    let text = std::fs::read_to_string(&csv).unwrap();
    let header = text.lines().next().unwrap();
    for k in [
        "rollout/ep_rew_mean",
        "rollout/ep_len_mean",
        "time/fps",
        "time/iterations",
        "time/total_timesteps",
    ] {
        assert!(header.contains(k), "{k} missing from CSV header {header}");
    }
    assert_eq!(
        text.lines().count(),
        1 + 3,
        "one row per 10 iterations of 10 steps:\n{text}"
    );
}

#[test]
fn linear_schedule_sets_the_learning_rate_from_progress() {
    set_threads();
    let config = A2cConfig {
        learning_rate: Schedule::Linear {
            start: 1e-3,
            end: 1e-4,
            end_fraction: 1.0,
        },
        log_interval: 0,
        ..seeded(3)
    };
    let mut m = model(sync_env("CartPole-v1", 2, 50), config);
    m.learn(100, &mut []).unwrap();
    // The last update ran at num_timesteps = 100 = total: progress_remaining 0.
    assert!((m.optimizer().learning_rate() - 1e-4).abs() < 1e-12);
}

struct StopAfter {
    steps: usize,
    seen: usize,
    rollouts: usize,
}

impl Callback for StopAfter {
    fn on_step(&mut self, locals: &Locals<'_>, _logger: &mut Logger) -> rl_algos::Result<bool> {
        assert_eq!(locals.rewards.len(), locals.dones.len());
        assert_eq!(locals.num_timesteps, locals.algo.num_timesteps());
        self.seen += 1;
        Ok(self.seen < self.steps)
    }
    fn on_rollout_end(
        &mut self,
        _locals: &Locals<'_>,
        _logger: &mut Logger,
    ) -> rl_algos::Result<()> {
        self.rollouts += 1;
        Ok(())
    }
}

#[test]
fn a_callback_returning_false_stops_training() {
    set_threads();
    let mut m = model(sync_env("CartPole-v1", 3, 500), seeded(4));
    let mut cb = StopAfter {
        steps: 7,
        seen: 0,
        rollouts: 0,
    };
    m.learn(10_000, &mut [&mut cb]).unwrap();
    assert_eq!(m.num_timesteps(), 21);
    assert_eq!((cb.rollouts, m.n_updates()), (1, 1));
}

#[test]
fn same_seed_gives_bit_identical_parameters_with_sync_and_thread_engines() {
    set_threads();
    let config = A2cConfig {
        ent_coef: 0.01,
        ..seeded(11)
    };
    let run_sync = || {
        let mut m = model(sync_env("CartPole-v1", 4, 40), config.clone());
        m.learn(600, &mut []).unwrap();
        params(&m)
    };
    let a = run_sync();
    assert_eq!(a, run_sync());
    let threaded =
        ThreadVecEnv::make_with("CartPole-v1", &spec(40), 4, 2, AutoresetMode::SameStep).unwrap();
    let mut m = model(threaded, config.clone());
    m.learn(600, &mut []).unwrap();
    assert_eq!(a, params(&m), "ThreadVecEnv and SyncVecEnv runs differ");
    let mut other = model(sync_env("CartPole-v1", 4, 40), seeded(12));
    other.learn(600, &mut []).unwrap();
    assert_ne!(a, params(&other));
}

fn resume_case(id: &str, max_steps: u64, config: A2cConfig, at: u64, total: u64, file: &str) {
    let path = temp_path(file);
    let mut full = model(sync_env(id, 3, max_steps), config.clone());
    let mut saver = SaveAt {
        at,
        path: path.clone(),
        saved: false,
    };
    full.learn(total, &mut [&mut saver]).unwrap();
    assert!(saver.saved);

    // A differently initialized policy and fresh environments: everything comes from the file.
    let env = sync_env(id, 3, max_steps);
    let policy = policy_with(&env, 999, config.use_sde);
    let mut resumed = A2c::load(&path, policy, env).unwrap();
    assert_eq!(resumed.num_timesteps(), at);
    resumed.learn(total, &mut []).unwrap();
    assert_eq!(resumed.num_timesteps(), full.num_timesteps());
    assert_eq!(resumed.n_updates(), full.n_updates());
    assert_eq!(params(&full), params(&resumed), "{id}: resumed run differs");
    assert_eq!(
        full.optimizer().state().unwrap(),
        resumed.optimizer().state().unwrap()
    );
    let _ = std::fs::remove_file(&path);
}

#[test]
fn resuming_a_checkpoint_is_bit_identical_discrete_rmsprop() {
    set_threads();
    // 3 envs x 5 steps per rollout: step 21 is mid-rollout; 20-step episodes truncate.
    let config = A2cConfig {
        ent_coef: 0.01,
        gae_lambda: 0.95,
        ..seeded(21)
    };
    resume_case("CartPole-v1", 20, config, 21, 450, "resume_cartpole.ckpt");
}

#[test]
fn resuming_a_checkpoint_is_bit_identical_continuous_adam_schedule() {
    set_threads();
    let config = A2cConfig {
        use_rms_prop: false,
        normalize_advantage: true,
        learning_rate: Schedule::Linear {
            start: 1e-3,
            end: 1e-5,
            end_fraction: 1.0,
        },
        ..seeded(22)
    };
    resume_case("Pendulum-v1", 30, config, 60, 300, "resume_pendulum.ckpt");
}

#[test]
fn corrupt_or_mismatched_checkpoints_are_errors() {
    set_threads();
    let path = temp_path("corrupt.ckpt");
    let mut m = model(sync_env("CartPole-v1", 2, 30), seeded(5));
    m.learn(50, &mut []).unwrap();
    m.save(&path).unwrap();
    let good = std::fs::read(&path).unwrap();
    let load = |bytes: &[u8]| {
        std::fs::write(&path, bytes).unwrap();
        let env = sync_env("CartPole-v1", 2, 30);
        A2c::load(&path, policy_for(&env, 0), env).err()
    };
    assert!(load(&good).is_none(), "the intact checkpoint loads");
    for (what, bytes) in [
        ("truncated", good[..good.len() / 2].to_vec()),
        ("one byte short", good[..good.len() - 1].to_vec()),
        ("empty", Vec::new()),
        ("garbage", b"not a checkpoint at all".to_vec()),
        ("bit flip", {
            let mut b = good.clone();
            b[good.len() / 3] ^= 0x10;
            b
        }),
    ] {
        match load(&bytes) {
            Some(AlgoError::Checkpoint { reason, .. }) => assert!(!reason.is_empty()),
            other => panic!("{what}: expected a checkpoint error, got {other:?}"),
        }
    }
    // Valid file, wrong environments: the replay cannot reproduce the saved observations.
    std::fs::write(&path, &good).unwrap();
    let env = sync_env("CartPole-v1", 2, 7);
    let err = A2c::load(&path, policy_for(&env, 0), env).err();
    assert!(matches!(err, Some(AlgoError::Checkpoint { .. })), "{err:?}");
    let env = sync_env("CartPole-v1", 3, 30);
    let err = A2c::load(&path, policy_for(&env, 0), env).err();
    assert!(matches!(err, Some(AlgoError::Checkpoint { .. })), "{err:?}");
    let missing = temp_path("missing.ckpt");
    let env = sync_env("CartPole-v1", 2, 30);
    let err = A2c::load(&missing, policy_for(&env, 0), env).err();
    assert!(matches!(err, Some(AlgoError::Io { .. })), "{err:?}");
    let _ = std::fs::remove_file(&path);
}

#[test]
fn divergence_stops_training_with_the_iteration() {
    set_threads();
    let config = A2cConfig {
        learning_rate: Schedule::Constant(1e35),
        ..seeded(6)
    };
    let mut m = model(sync_env("CartPole-v1", 2, 100), config);
    match m.learn(2_000, &mut []) {
        Err(AlgoError::Diverged { iteration, what }) => {
            assert!(
                iteration >= 1 && iteration <= m.iterations(),
                "{iteration} {what}"
            );
        }
        other => panic!("expected divergence, got {other:?}"),
    }
}

#[test]
fn bad_configurations_are_rejected() {
    set_threads();
    for config in [
        A2cConfig {
            n_steps: 0,
            ..seeded(0)
        },
        A2cConfig {
            gamma: 1.5,
            ..seeded(0)
        },
        A2cConfig {
            max_grad_norm: 0.0,
            ..seeded(0)
        },
        A2cConfig {
            learning_rate: Schedule::Constant(f64::NAN),
            ..seeded(0)
        },
        A2cConfig {
            ent_coef: -1.0,
            ..seeded(0)
        },
    ] {
        let env = sync_env("CartPole-v1", 1, 10);
        let err = A2c::new(policy_for(&env, 0), env, config.clone()).err();
        assert!(
            matches!(err, Some(AlgoError::InvalidArgument(_))),
            "{config:?}: {err:?}"
        );
    }
    let env = SyncVecEnv::make("CartPole-v1", 1, AutoresetMode::NextStep).unwrap();
    let err = A2c::new(policy_for(&env, 0), env, seeded(0)).err();
    assert!(
        matches!(err, Some(AlgoError::InvalidArgument(_))),
        "{err:?}"
    );
}

/// Sizes that pass the per-field checks but overflow or cannot be allocated: `n_steps * n_envs`
/// wrapping to 0, `usize::MAX`, 2^40 rows. Each is an error naming n_steps, before anything is
/// allocated; a huge statistics window is fine (it is never allocated up front).
#[test]
fn absurd_sizes_are_errors_not_panics_or_aborts() {
    set_threads();
    for n_steps in [1usize << 62, usize::MAX, 1 << 40, (1 << 31) + 1] {
        let env = sync_env("CartPole-v1", 4, 10);
        let config = A2cConfig {
            n_steps,
            ..seeded(0)
        };
        match A2c::new(policy_for(&env, 0), env, config) {
            Err(AlgoError::InvalidArgument(m)) => assert!(m.contains("n_steps"), "{m}"),
            Err(other) => panic!("n_steps {n_steps}: expected InvalidArgument, got {other:?}"),
            Ok(_) => panic!("n_steps {n_steps} was accepted"),
        }
    }
    let env = sync_env("CartPole-v1", 2, 10);
    let config = A2cConfig {
        stats_window_size: usize::MAX,
        ..seeded(0)
    };
    let mut m = A2c::new(policy_for(&env, 0), env, config).unwrap();
    m.learn(100, &mut []).unwrap();
    assert!(m.episode_info().count() > 0);
}

/// FNV-1a 64 over `bytes`: the checkpoints' checksum, so a test can forge a valid file.
#[test]
fn resuming_a_gsde_checkpoint_is_bit_identical() {
    set_threads();
    // 3 envs x 5 steps: the save at 63 steps falls after rollout step 0 of the fifth rollout;
    // steps 1-4 sample with the exploration matrices drawn at its start, which only the
    // checkpoint knows.
    let config = A2cConfig {
        use_sde: true,
        ent_coef: 0.01,
        ..seeded(23)
    };
    resume_case(
        "Pendulum-v1",
        30,
        config.clone(),
        63,
        300,
        "resume_gsde.ckpt",
    );
    let config = A2cConfig {
        sde_sample_freq: 2,
        ..config
    };
    resume_case("Pendulum-v1", 30, config, 63, 300, "resume_gsde_freq2.ckpt");
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Overwrites the little-endian u64 at `at` and recomputes the trailing checksum.
fn forge_u64(file: &[u8], at: usize, value: u64) -> Vec<u8> {
    let mut b = file.to_vec();
    b[at..at + 8].copy_from_slice(&value.to_le_bytes());
    let body = b.len() - 8;
    let sum = fnv1a(&b[..body]);
    b[body..].copy_from_slice(&sum.to_le_bytes());
    b
}

/// Checkpoints with a valid checksum whose configuration asks for absurd sizes (n_steps or the
/// statistics window 2^40, u64::MAX) are errors, not aborts or capacity-overflow panics.
#[test]
fn forged_checkpoints_with_absurd_sizes_are_errors() {
    set_threads();
    let path = temp_path("forged.ckpt");
    // Distinctive values, to find the two fields in the file.
    let small = A2cConfig {
        n_steps: 5,
        stats_window_size: 77,
        ..seeded(9)
    };
    let mut m = model(sync_env("CartPole-v1", 2, 30), small);
    m.learn(20, &mut []).unwrap();
    m.save(&path).unwrap();
    let good = std::fs::read(&path).unwrap();
    let find = |v: u64| {
        let needle = v.to_le_bytes();
        good.windows(8)
            .position(|w| w == needle)
            .unwrap_or_else(|| panic!("{v} not found in the checkpoint"))
    };
    let n_steps_at = find(5);
    let window_at = find(77);
    for (field, at) in [("n_steps", n_steps_at), ("stats_window_size", window_at)] {
        for value in [1u64 << 40, u64::MAX, 1 << 62] {
            std::fs::write(&path, forge_u64(&good, at, value)).unwrap();
            let env = sync_env("CartPole-v1", 2, 30);
            match A2c::load(&path, policy_for(&env, 0), env) {
                Err(e @ (AlgoError::Checkpoint { .. } | AlgoError::InvalidArgument(_))) => {
                    assert!(e.to_string().contains(field), "{field} = {value}: {e}")
                }
                Err(other) => panic!("{field} = {value}: unexpected error {other:?}"),
                // A huge window is harmless: it is never allocated up front.
                Ok(_) if field == "stats_window_size" => {}
                Ok(_) => panic!("{field} = {value} was accepted"),
            }
        }
    }
    let _ = std::fs::remove_file(&path);
}

/// Deterministic 10-episode evaluations every `every` steps; stops after two in a row reach
/// `threshold` (the rl-zoo protocol).
struct EvalUntilSolved {
    env: Box<dyn Env>,
    every: u64,
    next: u64,
    threshold: f64,
    in_a_row: u32,
    solved_at: Option<u64>,
    history: Vec<(u64, f64)>,
}

impl Callback for EvalUntilSolved {
    fn on_step(&mut self, locals: &Locals<'_>, _logger: &mut Logger) -> rl_algos::Result<bool> {
        if locals.num_timesteps < self.next {
            return Ok(true);
        }
        self.next += self.every;
        let mut rng = rand::rngs::mock::StepRng::new(0, 1);
        let eval =
            rl_algos::evaluate_policy(locals.algo.policy(), &mut self.env, 10, true, &mut rng)?;
        self.history.push((locals.num_timesteps, eval.mean));
        self.in_a_row = if eval.mean >= self.threshold {
            self.in_a_row + 1
        } else {
            0
        };
        if self.in_a_row >= 2 {
            self.solved_at = Some(locals.num_timesteps);
            return Ok(false);
        }
        Ok(true)
    }
}

#[test]
#[ignore = "slow: run in release with --ignored"]
fn a2c_solves_cartpole_with_rl_zoo_settings() {
    set_threads();
    let mut solved = 0;
    let mut report = Vec::new();
    for seed in 0..5u64 {
        let env = SyncVecEnv::make("CartPole-v1", 8, AutoresetMode::SameStep).unwrap();
        let mut m = model(
            env,
            A2cConfig {
                seed: Some(seed),
                ..A2cConfig::default()
            },
        );
        let mut eval_env = rl_env::make("CartPole-v1").unwrap();
        eval_env.reset(Some(10_000 + seed)).unwrap();
        let mut cb = EvalUntilSolved {
            env: eval_env,
            every: 10_000,
            next: 10_000,
            threshold: 475.0,
            in_a_row: 0,
            solved_at: None,
            history: Vec::new(),
        };
        let start = std::time::Instant::now();
        m.learn(500_000, &mut [&mut cb]).unwrap();
        let secs = start.elapsed().as_secs_f64();
        let best = cb
            .history
            .iter()
            .map(|h| h.1)
            .fold(f64::NEG_INFINITY, f64::max);
        println!(
            "seed {seed}: solved at {:?} timesteps ({} steps in {secs:.1} s, best eval {best:.1})",
            cb.solved_at,
            m.num_timesteps()
        );
        report.push((seed, cb.solved_at));
        solved += usize::from(cb.solved_at.is_some());
    }
    assert!(
        solved >= 4,
        "only {solved} of 5 seeds reached 475 twice in a row: {report:?}"
    );
}

/// The fast MLP path ([`rl_algos::a2c::A2cFastUpdate`]) and the generic Candle path
/// ([`rl_algos::a2c::a2c_update`]) give the same losses, gradient norms and parameters to f32
/// rounding: within 1e-6 (relative above 1) over ten chained updates, for discrete and Box
/// actions, RMSprop and Adam, with and without the entropy term and advantage normalization.
#[test]
fn fast_and_generic_updates_agree_within_1e_6() {
    use candle_core::Tensor;
    use rl_algos::a2c::{a2c_update, A2cBatch, A2cFastUpdate, UpdateParams};
    use rl_algos::optim::{Adam, Optimizer, RmsProp};
    use rl_policy::ActorCritic;
    set_threads();
    for (id, adam, ent_coef, normalize) in [
        ("CartPole-v1", false, 0.0, false),
        ("CartPole-v1", true, 0.01, true),
        ("Pendulum-v1", false, 0.0, true),
        ("Pendulum-v1", true, 0.02, false),
    ] {
        let env = sync_env(id, 4, 200);
        let (fast_policy, slow_policy) = (policy_for(&env, 3), policy_for(&env, 3));
        let make = |p: &MlpPolicy| -> Box<dyn Optimizer> {
            if adam {
                Box::new(Adam::new(p.trainable_vars(), 1e-3, 1e-5).unwrap())
            } else {
                Box::new(RmsProp::new(p.trainable_vars(), 7e-4, 0.99, 1e-5).unwrap())
            }
        };
        let (mut fast_opt, mut slow_opt) = (make(&fast_policy), make(&slow_policy));
        let b = 40;
        let obs_dim = env.observation_space().flat_dim();
        let act_dim = env.action_space().flat_dim();
        let discrete = act_dim == 1 && id.starts_with("Cart");
        let mut fast =
            A2cFastUpdate::new(fast_policy.mlp_layout().unwrap(), b, fast_opt.as_ref()).unwrap();
        let params = UpdateParams {
            ent_coef,
            vf_coef: 0.5,
            max_grad_norm: 0.5,
            normalize_advantage: normalize,
        };
        let mut worst = 0f64;
        for it in 0..10u64 {
            let wave = |i: usize, f: f32| ((i as f32 + it as f32) * f).sin();
            let obs: Vec<f32> = (0..b * obs_dim).map(|i| wave(i, 0.37)).collect();
            let actions: Vec<f32> = (0..b * act_dim)
                .map(|i| {
                    if discrete {
                        (i % 2) as f32
                    } else {
                        wave(i, 1.7) * 1.5
                    }
                })
                .collect();
            let adv: Vec<f32> = (0..b).map(|i| wave(i, 0.9) * 2.0).collect();
            let ret: Vec<f32> = (0..b).map(|i| wave(i, 0.3) * 5.0).collect();
            let obs_t = Tensor::from_slice(&obs, (b, obs_dim), &Device::Cpu).unwrap();
            let act_t = if discrete {
                Tensor::from_slice(&actions, b, &Device::Cpu).unwrap()
            } else {
                Tensor::from_slice(&actions, (b, act_dim), &Device::Cpu).unwrap()
            };
            let batch = A2cBatch {
                observations: &obs_t,
                actions: &act_t,
                advantages: &adv,
                returns: &ret,
            };
            let s = a2c_update(&slow_policy, slow_opt.as_mut(), &batch, &params, it).unwrap();
            let f = fast
                .update(fast_opt.as_mut(), &obs, &actions, &adv, &ret, &params, it)
                .unwrap();
            for (x, y) in [
                (f.loss, s.loss),
                (f.policy_loss, s.policy_loss),
                (f.value_loss, s.value_loss),
                (f.entropy_loss, s.entropy_loss),
                (f.grad_norm, s.grad_norm),
            ] {
                worst = worst.max((x - y).abs() / y.abs().max(1.0));
            }
            for ((name, a), (_, c)) in fast_policy
                .trainable_vars()
                .iter()
                .zip(slow_policy.trainable_vars())
            {
                let a: Vec<f32> = a.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
                let c: Vec<f32> = c.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
                for (x, y) in a.iter().zip(&c) {
                    let d = f64::from((x - y).abs()) / f64::from(y.abs()).max(1.0);
                    assert!(d <= 1e-6, "{id} adam={adam}: {name} after {it}: {x} vs {y}");
                }
            }
        }
        println!("{id} adam={adam} ent={ent_coef} norm={normalize}: worst stat error {worst:.2e}");
        assert!(
            worst <= 1e-6,
            "{id}: losses or gradient norms differ by {worst:e}"
        );
    }
}

/// `A2c` picks the fast path for an `MlpPolicy` without gSDE, and the generic path with gSDE.
#[test]
fn mlp_policy_takes_the_fast_path_and_gsde_the_generic_one() {
    set_threads();
    let env = sync_env("CartPole-v1", 2, 50);
    let mut model = A2c::new(policy_for(&env, 0), env, A2cConfig::default()).unwrap();
    model.learn(20, &mut []).unwrap();
    assert!(model.uses_fast_path() && model.trainer().uses_fast_path());
    let env = sync_env("Pendulum-v1", 2, 50);
    let config = A2cConfig {
        use_sde: true,
        ..A2cConfig::default()
    };
    let mut model = A2c::new(policy_with(&env, 0, true), env, config).unwrap();
    model.learn(20, &mut []).unwrap();
    assert!(!model.uses_fast_path() && !model.trainer().uses_fast_path());
}
