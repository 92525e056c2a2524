//! SAC, TD3 and DDPG behaviour: counters and logged keys, determinism across engines, bit-exact
//! resume (replay buffer, every optimizer, α and the action noise included), configuration and
//! space errors, and (ignored: release only) learning on Pendulum-v1 with rl-zoo's settings, stopped
//! once an evaluation reaches the target.

mod support;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{Linear, Module, VarBuilder, VarMap};
use rand::SeedableRng;
use rl_algos::noise::ActionNoise;
use rl_algos::off_policy::OffPolicyTrainer;
use rl_algos::off_policy::{GradientSteps, TrainFreq};
use rl_algos::optim::Schedule;
use rl_algos::sac::{EntCoef, Sac, SacConfig};
use rl_algos::td3::{Ddpg, Td3, Td3Config};
use rl_algos::{evaluate_policy, Callback, Locals, Logger};
use rl_env::registry::EnvSpec;
use rl_env::{AutoresetMode, SyncVecEnv, ThreadVecEnv, VecEnv};
use rl_policy::{
    Activation, ContinuousCritic, Critic, DeterministicActor, GaussianActor, MlpConfig, Policy,
    SacActor, SacModel, SacSdeConfig, SavedModel, Td3Actor, Td3Model,
};
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

fn pendulum(n: usize, max_steps: u64) -> SyncVecEnv {
    SyncVecEnv::make_with("Pendulum-v1", &spec(max_steps), n, AutoresetMode::SameStep).unwrap()
}

fn tiny() -> MlpConfig {
    MlpConfig {
        net_arch: vec![16, 16],
        activation: Activation::ReLU,
        sde: None,
    }
}

fn sac_nets<V: VecEnv>(env: &V, seed: u64) -> (SacActor, ContinuousCritic) {
    let (o, a) = (env.observation_space(), env.action_space());
    (
        SacActor::new(o, a, tiny(), seed, &Device::Cpu).unwrap(),
        ContinuousCritic::new(o, a, tiny(), 2, seed + 1, &Device::Cpu).unwrap(),
    )
}

fn td3_nets<V: VecEnv>(env: &V, seed: u64, n_critics: usize) -> (Td3Actor, ContinuousCritic) {
    let (o, a) = (env.observation_space(), env.action_space());
    (
        Td3Actor::new(o, a, tiny(), seed, &Device::Cpu).unwrap(),
        ContinuousCritic::new(o, a, tiny(), n_critics, seed + 1, &Device::Cpu).unwrap(),
    )
}

fn small_sac(seed: u64) -> SacConfig {
    SacConfig {
        learning_rate: Schedule::Linear {
            start: 1e-3,
            end: 1e-4,
            end_fraction: 1.0,
        },
        buffer_size: 400,
        learning_starts: 40,
        batch_size: 16,
        train_freq: TrainFreq::Steps(2),
        gradient_steps: GradientSteps::Fixed(3),
        target_update_interval: 2,
        seed: Some(seed),
        log_interval: 0,
        ..SacConfig::default()
    }
}

fn small_td3(seed: u64) -> Td3Config {
    Td3Config {
        buffer_size: 400,
        learning_starts: 40,
        batch_size: 16,
        train_freq: TrainFreq::Steps(2),
        gradient_steps: GradientSteps::Fixed(3),
        action_noise: Some(ActionNoise::ornstein_uhlenbeck(1, 0.3)),
        seed: Some(seed),
        log_interval: 0,
        ..Td3Config::default()
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
    let dir = std::env::temp_dir().join(format!("rl-algos-sac-td3-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn learn_counts_updates_and_logs_sb3_keys() {
    set_threads();
    let env = pendulum(2, 30);
    let (actor, critic) = sac_nets(&env, 0);
    let mut m = Sac::new(actor, critic, env, small_sac(0)).unwrap();
    m.learn(200, &mut []).unwrap();
    assert_eq!(m.num_timesteps(), 200);
    // 100 vector steps, rounds of 2; training from the round after step 40 (20 rounds of the
    // 50 train, the first 20 steps' rounds end at or below learning_starts).
    let rounds = m.training_rounds();
    assert_eq!(m.trainer().n_updates(), 3 * rounds);
    assert!(rounds > 0);
    let stats = m.last_train().unwrap();
    assert!(stats.actor_loss.is_finite() && stats.critic_loss.is_finite());
    assert!(stats.ent_coef_loss.is_some());
    // α moved away from its initial 1.0.
    assert_ne!(m.trainer().ent_coef().value().unwrap(), 1.0);
    let keys: Vec<&str> = m.logger().values().keys().map(String::as_str).collect();
    for k in [
        "train/ent_coef",
        "train/actor_loss",
        "train/critic_loss",
        "train/ent_coef_loss",
        "train/n_updates",
        "train/learning_rate",
    ] {
        assert!(keys.contains(&k), "{k} not logged: {keys:?}");
    }

    let env = pendulum(1, 30);
    let (actor, critic) = td3_nets(&env, 0, 2);
    let mut m = Td3::new(actor, critic, env, small_td3(0)).unwrap();
    m.learn(100, &mut []).unwrap();
    let rounds = m.training_rounds();
    assert_eq!(m.trainer().n_updates(), 3 * rounds);
    assert!(m.last_train().unwrap().critic_loss.is_finite());
    // Every scaled action in the buffer lies in [-1, 1].
    let buf = m.replay_buffer();
    let rows: Vec<usize> = (0..buf.len()).collect();
    let mut all = rl_algos::replay::ReplaySamples::default();
    buf.gather(&rows, &vec![0; rows.len()], &mut all).unwrap();
    assert_eq!(all.actions.len(), 100);
    assert!(all.actions.iter().all(|a| (-1.0..=1.0).contains(a)));
    assert!(all.actions.iter().any(|a| *a != 0.0));
}

#[test]
fn same_seed_gives_bit_identical_parameters_with_sync_and_thread_engines() {
    set_threads();
    let run_sac = |threaded: bool| {
        let config = small_sac(3);
        if threaded {
            let env =
                ThreadVecEnv::make_with("Pendulum-v1", &spec(25), 4, 2, AutoresetMode::SameStep)
                    .unwrap();
            let (a, c) = sac_nets(&env, 5);
            let mut m = Sac::new(a, c, env, config).unwrap();
            m.learn(240, &mut []).unwrap();
            (
                bits_of(m.actor().trainable_vars()),
                bits_of(m.critic().trainable_vars()),
            )
        } else {
            let env = pendulum(4, 25);
            let (a, c) = sac_nets(&env, 5);
            let mut m = Sac::new(a, c, env, config).unwrap();
            m.learn(240, &mut []).unwrap();
            (
                bits_of(m.actor().trainable_vars()),
                bits_of(m.critic().trainable_vars()),
            )
        }
    };
    let a = run_sac(false);
    assert_eq!(a, run_sac(false), "two sync SAC runs differ");
    assert_eq!(a, run_sac(true), "sync and threaded SAC runs differ");
    let env = pendulum(4, 25);
    let (actor0, _) = sac_nets(&env, 5);
    assert_ne!(
        a.0,
        bits_of(actor0.trainable_vars()),
        "training changed nothing"
    );

    let run_td3 = |threaded: bool| {
        let config = small_td3(4);
        if threaded {
            let env =
                ThreadVecEnv::make_with("Pendulum-v1", &spec(25), 3, 3, AutoresetMode::SameStep)
                    .unwrap();
            let (a, c) = td3_nets(&env, 6, 2);
            let mut m = Td3::new(a, c, env, config).unwrap();
            m.learn(180, &mut []).unwrap();
            bits_of(m.actor().trainable_vars())
        } else {
            let env = pendulum(3, 25);
            let (a, c) = td3_nets(&env, 6, 2);
            let mut m = Td3::new(a, c, env, config).unwrap();
            m.learn(180, &mut []).unwrap();
            bits_of(m.actor().trainable_vars())
        }
    };
    assert_eq!(
        run_td3(false),
        run_td3(true),
        "sync and threaded TD3 runs differ"
    );
}

#[test]
fn resuming_sac_is_bit_identical() {
    set_threads();
    for (at, file, ent_coef) in [
        (20, "sac_warmup.ckpt", EntCoef::Auto(1.0)),
        (131, "sac_mid.ckpt", EntCoef::Auto(0.1)),
        (101, "sac_fixed.ckpt", EntCoef::Fixed(0.2)),
    ] {
        let config = SacConfig {
            ent_coef,
            action_noise: Some(ActionNoise::ornstein_uhlenbeck(1, 0.2)),
            ..small_sac(7)
        };
        let path = temp_path(file);
        let mut saver = SaveAt {
            at,
            path: path.clone(),
            saved: false,
        };
        let env = pendulum(2, 30);
        let (a, c) = sac_nets(&env, 1);
        let mut full = Sac::new(a, c, env, config.clone()).unwrap();
        full.learn(240, &mut [&mut saver]).unwrap();
        assert!(saver.saved);
        let env = pendulum(2, 30);
        let (a, c) = sac_nets(&env, 99);
        let mut resumed = Sac::load(&path, (a, c), env).unwrap();
        assert_eq!(resumed.config(), &config);
        resumed.learn(240, &mut []).unwrap();
        assert_eq!(resumed.num_timesteps(), full.num_timesteps());
        assert_eq!(resumed.trainer().n_updates(), full.trainer().n_updates());
        let t = (resumed.trainer(), full.trainer());
        assert_eq!(
            bits_of(t.0.actor().trainable_vars()),
            bits_of(t.1.actor().trainable_vars()),
            "{file}: actor differs"
        );
        assert_eq!(
            bits_of(t.0.critic_target().trainable_vars()),
            bits_of(t.1.critic_target().trainable_vars()),
            "{file}: target critics differ"
        );
        assert_eq!(
            t.0.critic_optimizer().state().unwrap(),
            t.1.critic_optimizer().state().unwrap()
        );
        assert_eq!(
            t.0.ent_coef().value().unwrap().to_bits(),
            t.1.ent_coef().value().unwrap().to_bits()
        );
        let _ = std::fs::remove_file(&path);
    }
}

fn sde_nets<V: VecEnv>(env: &V, seed: u64, sde: SacSdeConfig) -> (SacActor, ContinuousCritic) {
    let (o, a) = (env.observation_space(), env.action_space());
    (
        SacActor::new(o, a, tiny().with_sde(sde), seed, &Device::Cpu).unwrap(),
        ContinuousCritic::new(o, a, tiny(), 2, seed + 1, &Device::Cpu).unwrap(),
    )
}

fn noise_bits(n: &rl_policy::ExplorationNoise) -> (Vec<u32>, Vec<u32>) {
    let b = |t: &Tensor| -> Vec<u32> {
        let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
        v.into_iter().map(f32::to_bits).collect()
    };
    (b(n.single()), b(n.per_env()))
}

/// gSDE SAC: same seed, same bits; a checkpoint taken in the middle of a collection round
/// (between two `sde_sample_freq` draws) resumes bit for bit, exploration matrices included;
/// the matrices move (rollout starts, every `sde_sample_freq` steps, every gradient step);
/// `use_sde_at_warmup` acts with the policy from the first step; gSDE settings must agree
/// between the actor and the configuration.
#[test]
fn sac_with_gsde_is_deterministic_and_resumes_bit_identically() {
    set_threads();
    let sde = SacSdeConfig {
        log_std_init: -1.5,
        use_expln: true,
        clip_mean: 1.0,
    };
    let config = SacConfig {
        use_sde: true,
        sde_sample_freq: 2,
        train_freq: TrainFreq::Steps(5),
        ..small_sac(11)
    };
    let run = |config: &SacConfig, saver: Option<&mut SaveAt>| {
        let env = pendulum(2, 30);
        let (a, c) = sde_nets(&env, 3, sde);
        let mut m = Sac::new(a, c, env, config.clone()).unwrap();
        match saver {
            Some(s) => m.learn(200, &mut [s]).unwrap(),
            None => m.learn(200, &mut []).unwrap(),
        }
        m
    };
    let path = temp_path("sac_gsde_mid_round.ckpt");
    // 2 envs, rounds of 5 vector steps: step 64 is the 2nd of its round (after a draw at step
    // 0 of the round and before the one at step 2).
    let mut saver = SaveAt {
        at: 64,
        path: path.clone(),
        saved: false,
    };
    let full = run(&config, Some(&mut saver));
    assert!(saver.saved);
    let again = run(&config, None);
    let noise_of = |m: &Sac<SacActor, ContinuousCritic, SyncVecEnv>| {
        noise_bits(m.trainer().sac_policy().exploration_noise().unwrap())
    };
    assert_eq!(
        bits_of(full.actor().trainable_vars()),
        bits_of(again.actor().trainable_vars())
    );
    assert_eq!(noise_of(&full), noise_of(&again));
    let names: Vec<String> = full
        .actor()
        .trainable_vars()
        .into_iter()
        .map(|v| v.0)
        .collect();
    assert!(names.contains(&"log_std".to_string()) && names.contains(&"mu.0.weight".into()));
    let log_std: Vec<f32> = full
        .actor()
        .trainable_vars()
        .into_iter()
        .find(|v| v.0 == "log_std")
        .unwrap()
        .1
        .as_tensor()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    assert!(
        log_std.iter().any(|&v| v != -1.5),
        "log_std was not trained"
    );

    let env = pendulum(2, 30);
    let (a, c) = sde_nets(&env, 77, sde);
    let mut resumed = Sac::load(&path, (a, c), env).unwrap();
    assert_eq!(resumed.config(), &config);
    resumed.learn(200, &mut []).unwrap();
    assert_eq!(
        bits_of(resumed.actor().trainable_vars()),
        bits_of(full.actor().trainable_vars()),
        "resumed actor differs"
    );
    assert_eq!(
        bits_of(resumed.trainer().critic_target().trainable_vars()),
        bits_of(full.trainer().critic_target().trainable_vars())
    );
    assert_eq!(noise_of(&resumed), noise_of(&full));
    let _ = std::fs::remove_file(&path);

    // A different sde_sample_freq draws differently.
    let other = run(
        &SacConfig {
            sde_sample_freq: -1,
            ..config.clone()
        },
        None,
    );
    assert_ne!(
        bits_of(full.actor().trainable_vars()),
        bits_of(other.actor().trainable_vars())
    );

    // gSDE at warm-up: the policy acts before learning_starts (actions inside the bounds,
    // not the uniform sampler's).
    let warm = SacConfig {
        use_sde_at_warmup: true,
        ..config.clone()
    };
    let env = pendulum(2, 30);
    let (a, c) = sde_nets(&env, 3, sde);
    let mut m = Sac::new(a, c, env, warm).unwrap();
    m.learn(10, &mut []).unwrap();
    let env = pendulum(2, 30);
    let (a, c) = sde_nets(&env, 3, sde);
    let mut u = Sac::new(a, c, env, config.clone()).unwrap();
    u.learn(10, &mut []).unwrap();
    // Other actions, other states.
    let obs = |m: &Sac<SacActor, ContinuousCritic, SyncVecEnv>| -> Vec<u32> {
        m.env().observations().iter().map(|v| v.to_bits()).collect()
    };
    assert_ne!(obs(&m), obs(&u), "use_sde_at_warmup changed nothing");

    // The actor and the configuration must agree on gSDE.
    let env = pendulum(1, 30);
    let (a, c) = sac_nets(&env, 1);
    let err = Sac::new(a, c, env, config.clone())
        .err()
        .expect("use_sde with a plain actor")
        .to_string();
    assert!(err.contains("use_sde"), "{err}");
    let env = pendulum(1, 30);
    let (a, c) = sde_nets(&env, 1, sde);
    let err = Sac::new(a, c, env, small_sac(1))
        .err()
        .expect("a gSDE actor without use_sde")
        .to_string();
    assert!(err.contains("use_sde"), "{err}");
}

#[test]
fn resuming_td3_and_ddpg_is_bit_identical() {
    set_threads();
    for (at, file, ddpg) in [(77, "td3.ckpt", false), (90, "ddpg.ckpt", true)] {
        let config = if ddpg {
            Td3Config {
                action_noise: Some(ActionNoise::normal(1, 0.1)),
                ..Td3Config {
                    policy_delay: 1,
                    target_policy_noise: 0.0,
                    target_noise_clip: 0.0,
                    ..small_td3(8)
                }
            }
        } else {
            small_td3(8)
        };
        let n_critics = if ddpg { 1 } else { 2 };
        let path = temp_path(file);
        let mut saver = SaveAt {
            at,
            path: path.clone(),
            saved: false,
        };
        let env = pendulum(2, 30);
        let (a, c) = td3_nets(&env, 2, n_critics);
        let mut full: Ddpg<_, _, _> = Td3::new(a, c, env, config.clone()).unwrap();
        full.learn(200, &mut [&mut saver]).unwrap();
        let env = pendulum(2, 30);
        let (a, c) = td3_nets(&env, 50, n_critics);
        let mut resumed = Td3::load(&path, (a, c), env).unwrap();
        resumed.learn(200, &mut []).unwrap();
        let t = (resumed.trainer(), full.trainer());
        assert_eq!(t.0.n_updates(), t.1.n_updates());
        assert_eq!(
            bits_of(t.0.actor_target().trainable_vars()),
            bits_of(t.1.actor_target().trainable_vars()),
            "{file}: target actor differs"
        );
        assert_eq!(
            bits_of(t.0.critic().trainable_vars()),
            bits_of(t.1.critic().trainable_vars()),
            "{file}: critics differ"
        );
        assert_eq!(
            resumed.optimizer().state().unwrap(),
            full.optimizer().state().unwrap()
        );
        let _ = std::fs::remove_file(&path);
    }
}

#[test]
fn bad_configurations_spaces_and_checkpoints_are_refused() {
    set_threads();
    let env = pendulum(1, 30);
    let err = |r: rl_algos::Result<()>| r.unwrap_err().to_string();
    for (config, needle) in [
        (
            SacConfig {
                use_sde: true,
                ..small_sac(0)
            },
            "use_sde",
        ),
        (
            SacConfig {
                ent_coef: EntCoef::Auto(0.0),
                ..small_sac(0)
            },
            "ent_coef",
        ),
        (
            SacConfig {
                target_entropy: Some(f64::NAN),
                ..small_sac(0)
            },
            "target_entropy",
        ),
        (
            SacConfig {
                tau: 0.0,
                ..small_sac(0)
            },
            "tau",
        ),
        (
            SacConfig {
                action_noise: Some(ActionNoise::normal(3, 0.1)),
                ..small_sac(0)
            },
            "action noise",
        ),
    ] {
        let env = pendulum(1, 30);
        let (a, c) = sac_nets(&env, 0);
        let msg = err(Sac::new(a, c, env, config).map(|_| ()));
        assert!(msg.contains(needle), "{needle}: {msg}");
    }
    for (config, needle) in [
        (
            Td3Config {
                policy_delay: 0,
                ..small_td3(0)
            },
            "policy_delay",
        ),
        (
            Td3Config {
                target_policy_noise: -1.0,
                ..small_td3(0)
            },
            "target_policy_noise",
        ),
    ] {
        let env = pendulum(1, 30);
        let (a, c) = td3_nets(&env, 0, 2);
        let msg = err(Td3::new(a, c, env, config).map(|_| ()));
        assert!(msg.contains(needle), "{needle}: {msg}");
    }
    // Discrete actions: the networks refuse them, and so does the trainer.
    let cart = SyncVecEnv::make("CartPole-v1", 1, AutoresetMode::SameStep).unwrap();
    assert!(SacActor::new(
        cart.observation_space(),
        cart.action_space(),
        tiny(),
        0,
        &Device::Cpu
    )
    .is_err());
    // A SAC checkpoint is not a TD3 one.
    let path = temp_path("sac_for_td3.ckpt");
    let (a, c) = sac_nets(&env, 0);
    let mut m = Sac::new(a, c, env, small_sac(0)).unwrap();
    m.learn(50, &mut []).unwrap();
    m.save(&path).unwrap();
    let env = pendulum(1, 30);
    let (a, c) = td3_nets(&env, 0, 2);
    let msg = err(Td3::load(&path, (a, c), env).map(|_| ()));
    assert!(msg.contains("SAC"), "{msg}");
    // Another architecture is refused by name.
    let env = pendulum(1, 30);
    let (o, act) = (env.observation_space().clone(), env.action_space().clone());
    let wide = MlpConfig {
        net_arch: vec![8],
        activation: Activation::ReLU,
        sde: None,
    };
    let a = SacActor::new(&o, &act, wide.clone(), 0, &Device::Cpu).unwrap();
    let c = ContinuousCritic::new(&o, &act, wide, 2, 0, &Device::Cpu).unwrap();
    assert!(Sac::load(&path, (a, c), env).is_err());
    let _ = std::fs::remove_file(&path);
}

/// A user's own candle-nn networks: a one-hidden-layer actor with a shared trunk and both heads
/// in one `Linear`, and a twin critic whose heads share nothing.
struct UserActor {
    trunk: Linear,
    heads: Linear,
    vars: VarMap,
    device: Device,
}

struct UserCritic {
    heads: Vec<(Linear, Linear)>,
    vars: VarMap,
    device: Device,
    dims: (usize, usize),
}

fn varmap_vars(vars: &VarMap) -> Vec<(String, Var)> {
    let mut v: Vec<(String, Var)> = vars
        .data()
        .lock()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

impl UserActor {
    fn new(obs_dim: usize, act_dim: usize) -> Self {
        let vars = VarMap::new();
        let device = Device::Cpu;
        let vb = VarBuilder::from_varmap(&vars, DType::F32, &device);
        UserActor {
            trunk: candle_nn::linear(obs_dim, 24, vb.pp("trunk")).unwrap(),
            heads: candle_nn::linear(24, 2 * act_dim, vb.pp("heads")).unwrap(),
            vars,
            device,
        }
    }
}

impl GaussianActor for UserActor {
    fn mean_log_std(&self, obs: &Tensor) -> rl_policy::Result<(Tensor, Tensor)> {
        let out = self.heads.forward(&self.trunk.forward(obs)?.tanh()?)?;
        let d = out.dim(1)? / 2;
        Ok((
            out.narrow(1, 0, d)?,
            out.narrow(1, d, d)?.clamp(-20f32, 2f32)?,
        ))
    }
    fn trainable_vars(&self) -> Vec<(String, Var)> {
        varmap_vars(&self.vars)
    }
    fn device(&self) -> &Device {
        &self.device
    }
}

impl UserCritic {
    fn new(obs_dim: usize, act_dim: usize) -> Self {
        let vars = VarMap::new();
        let device = Device::Cpu;
        let vb = VarBuilder::from_varmap(&vars, DType::F32, &device);
        let heads = (0..2)
            .map(|i| {
                (
                    candle_nn::linear(obs_dim + act_dim, 24, vb.pp(format!("q{i}.in"))).unwrap(),
                    candle_nn::linear(24, 1, vb.pp(format!("q{i}.out"))).unwrap(),
                )
            })
            .collect();
        UserCritic {
            heads,
            vars,
            device,
            dims: (obs_dim, act_dim),
        }
    }
}

impl Critic for UserCritic {
    fn q_values(&self, obs: &Tensor, actions: &Tensor) -> rl_policy::Result<Vec<Tensor>> {
        let x = Tensor::cat(&[obs, actions], 1)?;
        self.heads
            .iter()
            .map(|(a, b)| Ok(b.forward(&a.forward(&x)?.relu()?)?))
            .collect()
    }
    fn trainable_vars(&self) -> Vec<(String, Var)> {
        varmap_vars(&self.vars)
    }
    fn device(&self) -> &Device {
        &self.device
    }
    fn duplicate(&self) -> rl_policy::Result<Self> {
        let copy = UserCritic::new(self.dims.0, self.dims.1);
        for ((_, dst), (_, src)) in copy.trainable_vars().iter().zip(self.trainable_vars()) {
            dst.set(src.as_tensor())?;
        }
        Ok(copy)
    }
}

#[test]
fn trains_a_users_own_actor_and_critic() {
    set_threads();
    let env = pendulum(2, 30);
    let (actor, critic) = (UserActor::new(3, 1), UserCritic::new(3, 1));
    let before = (
        bits_of(actor.trainable_vars()),
        bits_of(critic.trainable_vars()),
    );
    let mut m = Sac::new(actor, critic, env, small_sac(5)).unwrap();
    m.learn(200, &mut []).unwrap();
    let after = (
        bits_of(m.actor().trainable_vars()),
        bits_of(m.critic().trainable_vars()),
    );
    for (b, a) in [(&before.0, &after.0), (&before.1, &after.1)] {
        assert_eq!(b.len(), a.len());
        for ((name, x), (_, y)) in b.iter().zip(a) {
            assert_ne!(x, y, "{name} was not trained");
        }
    }
    let mut rng = rand::rngs::mock::StepRng::new(0, 1);
    let mut eval_env = rl_env::make("Pendulum-v1").unwrap();
    eval_env.reset(Some(1)).unwrap();
    let e = evaluate_policy(
        rl_algos::Algorithm::policy(&m),
        &mut eval_env,
        1,
        true,
        &mut rng,
    )
    .unwrap();
    assert!(e.mean.is_finite());
}

/// Evaluates the policy on 10 deterministic Pendulum-v1 episodes every `every` steps from
/// `from` on, and stops training once the mean reaches `threshold` (SB3's `EvalCallback` with
/// `StopTrainingOnRewardThreshold`); remembers the best mean and when it was reached.
struct EvalStop {
    env: Box<dyn rl_env::Env>,
    from: u64,
    every: u64,
    threshold: f64,
    next: u64,
    best: (f64, u64),
}

impl Callback for EvalStop {
    fn on_step(&mut self, l: &Locals<'_>, _: &mut Logger) -> rl_algos::Result<bool> {
        if l.num_timesteps < self.next.max(self.from) {
            return Ok(true);
        }
        self.next = l.num_timesteps + self.every;
        let mut rng = rand::rngs::mock::StepRng::new(0, 1);
        let mean = evaluate_policy(l.algo.policy(), &mut self.env, 10, true, &mut rng)?.mean;
        if mean > self.best.0 {
            self.best = (mean, l.num_timesteps);
        }
        Ok(mean < self.threshold)
    }
}

/// Trains with `learn` (given the evaluation callback) until the evaluation reaches
/// `threshold` or the budget ends: (best mean, step it was reached, seconds).
fn pendulum_run<A>(
    model: &mut A,
    threshold: f64,
    seed: u64,
    learn: impl FnOnce(&mut A, &mut EvalStop),
) -> (f64, u64, f64) {
    eval_run("Pendulum-v1", (4_000, 2_000), model, threshold, seed, learn)
}

/// [`pendulum_run`] on `env_id`, evaluating every `every` steps from `from` on.
fn eval_run<A>(
    env_id: &str,
    (from, every): (u64, u64),
    model: &mut A,
    threshold: f64,
    seed: u64,
    learn: impl FnOnce(&mut A, &mut EvalStop),
) -> (f64, u64, f64) {
    let mut env = rl_env::make(env_id).unwrap();
    env.reset(Some(20_000 + seed)).unwrap();
    let mut cb = EvalStop {
        env,
        from,
        every,
        threshold,
        next: 0,
        best: (f64::NEG_INFINITY, 0),
    };
    let start = std::time::Instant::now();
    learn(model, &mut cb);
    (cb.best.0, cb.best.1, start.elapsed().as_secs_f64())
}

/// Seeds 0 and 1 in parallel, seed 2 only when one missed: at least 2 of 3 must reach
/// `threshold` within the budget.
fn two_of_three(name: &str, threshold: f64, run: impl Fn(u64) -> (f64, u64, f64) + Sync) {
    let run = &run;
    let first: Vec<(u64, (f64, u64, f64))> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..2u64)
            .map(|seed| s.spawn(move || (seed, run(seed))))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut report = first.clone();
    let mut reached = first.iter().filter(|r| r.1 .0 >= threshold).count();
    if reached < 2 {
        let r = run(2);
        reached += usize::from(r.0 >= threshold);
        report.push((2, r));
    }
    for (seed, (mean, at, secs)) in &report {
        println!("{name} seed {seed}: best evaluation {mean:.1} at step {at} ({secs:.1} s)");
    }
    assert!(
        reached >= 2,
        "{name}: only {reached} of 3 seeds reached {threshold}: {report:?}"
    );
}

/// A gSDE SAC learner's model file: its actor keeps the gSDE head (`mu.0`, the `log_std`
/// matrix) and settings, loads back bit for bit and acts as the learner's policy.
#[test]
fn gsde_models_save_and_reload_bit_for_bit() {
    set_threads();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let obs = Tensor::new(&[[0.5f32, -0.5, 1.0], [-1.0, 0.2, -7.0]], &Device::Cpu).unwrap();
    let host = |t: Tensor| -> Vec<f32> { t.flatten_all().unwrap().to_vec1().unwrap() };
    let sde = SacSdeConfig {
        log_std_init: -2.0,
        use_expln: true,
        clip_mean: 1.5,
    };
    let env = pendulum(2, 50);
    let (actor, critic) = sde_nets(&env, 3, sde);
    let config = SacConfig {
        use_sde: true,
        ..small_sac(3)
    };
    let mut m = Sac::new(actor, critic, env, config).unwrap();
    m.learn(120, &mut []).unwrap();
    let dir = temp_path("sac-gsde-model");
    m.save_policy(&dir).unwrap();
    let back = SacModel::load(&dir, &Device::Cpu).unwrap();
    assert_eq!(back.actor.config().sde, Some(sde));
    assert_eq!(
        bits_of(back.networks().named_parameters().unwrap()),
        bits_of(m.networks().named_parameters().unwrap())
    );
    let ours = host(m.trainer().policy().act(&obs, true, &mut rng).unwrap());
    let loaded = host(
        back.into_policy()
            .unwrap()
            .act(&obs, true, &mut rng)
            .unwrap(),
    );
    assert_eq!(ours, loaded);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `save_policy` writes the trained networks (targets included) through rl-policy's model
/// file; loaded back they are bit-identical and play exactly as the learner's own policy.
#[test]
fn trained_models_save_and_reload_bit_for_bit() {
    set_threads();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let obs = Tensor::new(&[[0.5f32, -0.5, 1.0], [-1.0, 0.2, -7.0]], &Device::Cpu).unwrap();
    let host = |t: Tensor| -> Vec<f32> { t.flatten_all().unwrap().to_vec1().unwrap() };

    let env = pendulum(2, 50);
    let (actor, critic) = sac_nets(&env, 3);
    let mut m = Sac::new(actor, critic, env, small_sac(3)).unwrap();
    m.learn(120, &mut []).unwrap();
    let dir = temp_path("sac-model");
    m.save_policy(&dir).unwrap();
    let back = SacModel::load(&dir, &Device::Cpu).unwrap();
    let t = m.trainer();
    assert_eq!(
        bits_of(back.networks().named_parameters().unwrap()),
        bits_of(m.networks().named_parameters().unwrap())
    );
    // The targets moved away from the critics during training, and were saved as they are.
    assert_ne!(
        bits_of(t.critic().trainable_vars()),
        bits_of(t.critic_target().trainable_vars())
    );
    assert_eq!(
        bits_of(back.critic_target.trainable_vars()),
        bits_of(t.critic_target().trainable_vars())
    );
    let ours = host(t.policy().act(&obs, true, &mut rng).unwrap());
    let loaded = host(
        back.into_policy()
            .unwrap()
            .act(&obs, true, &mut rng)
            .unwrap(),
    );
    assert_eq!(ours, loaded);
    assert_eq!(
        SavedModel::load(&dir, &Device::Cpu).unwrap().kind(),
        "SacPolicy"
    );

    for (n_critics, config) in [
        (2, small_td3(4)),
        (
            1,
            Td3Config {
                seed: Some(4),
                log_interval: 0,
                ..Td3Config::ddpg()
            },
        ),
    ] {
        let env = pendulum(1, 50);
        let (actor, critic) = td3_nets(&env, 4, n_critics);
        let mut m = Td3::new(actor, critic, env, config).unwrap();
        m.learn(100, &mut []).unwrap();
        let dir = temp_path(&format!("td3-model-{n_critics}"));
        m.save_policy(&dir).unwrap();
        let back = Td3Model::load(&dir, &Device::Cpu).unwrap();
        assert_eq!(back.config().n_critics, n_critics);
        assert_eq!(
            bits_of(back.networks().named_parameters().unwrap()),
            bits_of(m.networks().named_parameters().unwrap())
        );
        let ours = host(m.trainer().policy().act(&obs, true, &mut rng).unwrap());
        let loaded = host(
            back.into_policy()
                .unwrap()
                .act(&obs, true, &mut rng)
                .unwrap(),
        );
        assert_eq!(ours, loaded);
    }
}

#[test]
#[ignore = "slow: run in release with --ignored"]
fn sac_learns_pendulum_with_rl_zoo_settings() {
    set_threads();
    two_of_three("SAC Pendulum-v1", -200.0, |seed| {
        let env = SyncVecEnv::make("Pendulum-v1", 1, AutoresetMode::SameStep).unwrap();
        let (o, a) = (env.observation_space(), env.action_space());
        let actor = SacActor::new(o, a, MlpConfig::sac(), seed, &Device::Cpu).unwrap();
        let critic =
            ContinuousCritic::new(o, a, MlpConfig::sac(), 2, seed + 100, &Device::Cpu).unwrap();
        let config = SacConfig {
            learning_rate: Schedule::Constant(1e-3),
            seed: Some(seed),
            log_interval: 0,
            ..SacConfig::default()
        };
        let mut m = Sac::new(actor, critic, env, config).unwrap();
        pendulum_run(&mut m, -200.0, seed, |m, cb| {
            m.learn(20_000, &mut [cb]).unwrap()
        })
    });
}

#[test]
#[ignore = "slow: run in release with --ignored"]
fn td3_learns_pendulum_with_rl_zoo_settings() {
    set_threads();
    two_of_three("TD3 Pendulum-v1", -200.0, |seed| {
        let env = SyncVecEnv::make("Pendulum-v1", 1, AutoresetMode::SameStep).unwrap();
        let (o, a) = (env.observation_space(), env.action_space());
        let actor = Td3Actor::new(o, a, MlpConfig::td3(), seed, &Device::Cpu).unwrap();
        let critic =
            ContinuousCritic::new(o, a, MlpConfig::td3(), 2, seed + 100, &Device::Cpu).unwrap();
        let config = Td3Config {
            gamma: 0.98,
            buffer_size: 200_000,
            learning_starts: 10_000,
            action_noise: Some(ActionNoise::normal(1, 0.1)),
            seed: Some(seed),
            log_interval: 0,
            ..Td3Config::default()
        };
        let mut m = Td3::new(actor, critic, env, config).unwrap();
        pendulum_run(&mut m, -200.0, seed, |m, cb| {
            m.learn(20_000, &mut [cb]).unwrap()
        })
    });
}

/// rl-zoo's SAC settings for MountainCarContinuous-v0 as shipped in `hyperparams/sac.yml`
/// (gSDE with `log_std_init=-3.67`, `net_arch=[64, 64]`, ent_coef 0.1, batch 512, 32 gradient
/// steps every 32 steps, gamma 0.9999, tau 0.01, 50k steps): a 10-episode deterministic
/// evaluation reaches 85 for 2 of 3 seeds, with EvalCallback-style early stop (evaluations
/// every 2,500 steps from 5,000 on).
#[test]
#[ignore = "slow: run in release with --ignored"]
fn sac_gsde_learns_mountaincar_continuous_with_rl_zoo_settings() {
    set_threads();
    let id = "MountainCarContinuous-v0";
    two_of_three("SAC (gSDE) MountainCarContinuous-v0", 85.0, |seed| {
        let entry =
            rl_algos::zoo::ZooEntry::from_yaml(rl_algos::zoo::shipped("sac").unwrap(), id).unwrap();
        let run = entry.sac(1).unwrap();
        assert!(run.config.use_sde, "the shipped entry uses gSDE");
        assert_eq!(run.n_envs, 1);
        let (actor_cfg, critic_cfg) = run.policy_kwargs.sac_networks(run.config.use_sde);
        let n_critics = run.policy_kwargs.n_critics.unwrap_or(2);
        let env = SyncVecEnv::make(id, 1, AutoresetMode::SameStep).unwrap();
        let (o, a) = (env.observation_space(), env.action_space());
        let actor = SacActor::new(o, a, actor_cfg, seed, &Device::Cpu).unwrap();
        let critic =
            ContinuousCritic::new(o, a, critic_cfg, n_critics, seed + 100, &Device::Cpu).unwrap();
        let config = SacConfig {
            seed: Some(seed),
            log_interval: 0,
            ..run.config
        };
        let budget = run.n_timesteps.unwrap();
        let mut m = Sac::new(actor, critic, env, config).unwrap();
        eval_run(id, (5_000, 2_500), &mut m, 85.0, seed, |m, cb| {
            m.learn(budget, &mut [cb]).unwrap()
        })
    });
}
