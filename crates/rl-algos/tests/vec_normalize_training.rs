//! Training under SB3's `VecNormalize`, as rl-zoo's `normalize` asks for it: the zoo's
//! settings become a `VecNormalizeConfig` (with the section's `gamma`), episode statistics stay
//! in the environment's units, evaluations act through the training statistics frozen,
//! checkpoints resume bit for bit (statistics included), and (ignored, release-only, run by
//! CI) A2C and PPO learn the zoo's normalized continuous-control tasks.

mod support;

use candle_core::Device;
use rand::rngs::StdRng;
use rand::SeedableRng;
use rl_algos::zoo::{self, parse_override, ZooEntry, ZooRun};
use rl_algos::{
    evaluate_policy, A2c, A2cConfig, A2cTrainer, Algorithm, Callback, EvalCallback, Locals, Logger,
    OnPolicyAlgorithm, OnPolicyTrainer, Ppo, PpoConfig, PpoTrainer, StopTrainingOnRewardThreshold,
};
use rl_env::{make, AutoresetMode, Env, SyncVecEnv, VecEnv, VecNormalize, VecNormalizeConfig};
use rl_policy::{MlpPolicy, MlpPolicyConfig, NormalizedPolicy, StochasticPolicy};
use support::SaveAt;

fn set_threads() {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        std::env::set_var("RAYON_NUM_THREADS", "1");
    }
}

fn entry(algo: &str, env: &str) -> ZooEntry {
    ZooEntry::from_yaml(zoo::shipped(algo).unwrap(), env).unwrap()
}

fn normalized(id: &str, n: usize, cfg: VecNormalizeConfig) -> VecNormalize<SyncVecEnv> {
    VecNormalize::new(
        SyncVecEnv::make(id, n, AutoresetMode::SameStep).unwrap(),
        cfg,
    )
    .unwrap()
}

fn policy<V: VecEnv>(env: &V, config: MlpPolicyConfig, seed: u64) -> MlpPolicy {
    MlpPolicy::new(
        env.observation_space(),
        env.action_space(),
        config,
        seed,
        &Device::Cpu,
    )
    .unwrap()
}

fn params(p: &MlpPolicy) -> Vec<(String, Vec<u32>)> {
    p.trainable_vars()
        .into_iter()
        .map(|(n, v)| {
            let bits = v
                .as_tensor()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
                .into_iter()
                .map(f32::to_bits)
                .collect();
            (n, bits)
        })
        .collect()
}

#[test]
fn zoo_normalize_becomes_a_vec_normalize_config_with_the_sections_gamma() {
    let d = VecNormalizeConfig::default();
    // Pendulum-v1 (A2C) sets gamma 0.9: rl-zoo hands it to VecNormalize.
    let pendulum = entry("a2c", "Pendulum-v1").a2c().unwrap();
    let c = pendulum.normalize.as_ref().unwrap().config().unwrap();
    assert_eq!(c.gamma, pendulum.config.gamma);
    assert_ne!(c.gamma, d.gamma);
    assert!(c.norm_obs && c.norm_reward);
    // MountainCar-v0 does not: VecNormalize keeps its default.
    let mc = entry("a2c", "MountainCar-v0").a2c().unwrap();
    assert_eq!(mc.normalize.unwrap().config().unwrap(), d);
    // CartPole-v1 has no normalize.
    assert!(entry("a2c", "CartPole-v1")
        .a2c()
        .unwrap()
        .normalize
        .is_none());
    // The dict form, and its own gamma overridden by the section's, as rl-zoo does.
    let mut e = entry("ppo", "Pendulum-v1");
    let (k, v) = parse_override(
        "normalize:\"{'norm_obs': True, 'norm_reward': False, 'gamma': 0.5, 'clip_obs': 5.0}\"",
    )
    .unwrap();
    e.set(&k, v);
    let run: ZooRun<PpoConfig> = e.ppo().unwrap();
    let c = run.normalize.unwrap().config().unwrap();
    assert!(c.norm_obs && !c.norm_reward);
    assert_eq!(c.clip_obs, 5.0);
    assert_eq!(c.gamma, run.config.gamma);
    // Invalid values are errors naming them.
    let mut e = entry("ppo", "Pendulum-v1");
    let (k, v) = parse_override("normalize:\"{'clip_obs': -1.0}\"").unwrap();
    e.set(&k, v);
    let err = e.ppo().unwrap().normalize.unwrap().config().unwrap_err();
    assert!(err.to_string().contains("clip_obs"), "{err}");
}

#[test]
fn episode_statistics_stay_in_the_environments_units() {
    set_threads();
    // CartPole pays 1 per step: unnormalized returns equal the lengths; normalized ones would not.
    let env = normalized("CartPole-v1", 4, VecNormalizeConfig::default());
    let p = policy(&env, MlpPolicyConfig::default(), 0);
    let config = A2cConfig {
        seed: Some(0),
        ..A2cConfig::default()
    };
    let mut m = A2c::new(p, env, config).unwrap();
    m.learn(2_000, &mut []).unwrap();
    let episodes: Vec<(f64, u64)> = m.episode_info().collect();
    assert!(episodes.len() > 10, "{} episodes", episodes.len());
    for (r, l) in episodes {
        assert_eq!(r, l as f64);
    }
    // The environment really scales the rewards the learner trains on.
    assert!(m.env().rewards().iter().any(|&r| r != 1.0));
    assert_eq!(m.env().unscaled_rewards(), &[1.0; 4]);
}

#[test]
fn resuming_under_vec_normalize_is_bit_identical_statistics_included() {
    set_threads();
    let run = entry("ppo", "Pendulum-v1").ppo().unwrap();
    let cfg = VecNormalizeConfig {
        gamma: run.config.gamma,
        ..VecNormalizeConfig::default()
    };
    let config = PpoConfig {
        n_steps: 64,
        batch_size: 32,
        n_epochs: 2,
        seed: Some(3),
        ..run.config.clone()
    };
    let pcfg = run.policy_kwargs.mlp_policy_config(config.use_sde).unwrap();
    let path = std::env::temp_dir().join(format!("rl_vecnorm_resume_{}.ckpt", std::process::id()));
    let env = normalized("Pendulum-v1", 2, cfg);
    let mut full = Ppo::new(policy(&env, pcfg.clone(), 3), env, config.clone()).unwrap();
    let mut saver = SaveAt {
        at: 300,
        path: path.clone(),
        saved: false,
    };
    full.learn(640, &mut [&mut saver]).unwrap();
    assert!(saver.saved);

    let env = normalized("Pendulum-v1", 2, cfg);
    let mut resumed = Ppo::load(&path, policy(&env, pcfg, 99), env).unwrap();
    resumed.learn(640, &mut []).unwrap();
    assert_eq!(params(full.policy_ref()), params(resumed.policy_ref()));
    let (a, b) = (
        full.normalization().unwrap(),
        resumed.normalization().unwrap(),
    );
    assert_eq!(a, b, "the replayed statistics differ");
    assert!(a.obs_rms.count > 600.0);
    let _ = std::fs::remove_file(&path);
}

/// Records the training statistics at the first step.
struct FirstStats(Option<rl_env::VecNormalizeSnapshot>);

impl Callback for FirstStats {
    fn on_step(&mut self, locals: &Locals<'_>, _logger: &mut Logger) -> rl_algos::Result<bool> {
        if self.0.is_none() {
            self.0 = locals.algo.normalization();
        }
        Ok(true)
    }
}

#[test]
fn evaluations_act_through_the_training_statistics_frozen() {
    set_threads();
    // The first evaluation runs at the first step, before any update: the policy is then the
    // one built from the seed, and the statistics those of one reset and one step.
    let config = A2cConfig {
        seed: Some(1),
        ..A2cConfig::default()
    };
    let env = normalized("CartPole-v1", 4, VecNormalizeConfig::default());
    let mut m = A2c::new(policy(&env, MlpPolicyConfig::default(), 1), env, config).unwrap();
    let mut eval = EvalCallback::new(make("CartPole-v1").unwrap(), 1)
        .unwrap()
        .with_n_eval_episodes(3)
        .unwrap()
        .with_seed(Some(7))
        .with_verbose(false);
    let mut first = FirstStats(None);
    m.learn(4, &mut [&mut eval, &mut first]).unwrap();
    let recorded = eval.history()[0].result.clone();
    let stats = first.0.unwrap();
    assert_eq!(
        stats.obs_rms.count,
        1e-4 + 8.0,
        "one reset and one step of 4 envs"
    );

    let env = normalized("CartPole-v1", 4, VecNormalizeConfig::default());
    let initial = policy(&env, MlpPolicyConfig::default(), 1);
    let replay = |p: &dyn rl_policy::Policy| {
        let mut env: Box<dyn Env> = make("CartPole-v1").unwrap();
        env.reset(Some(7)).unwrap();
        let mut rng = StdRng::seed_from_u64(7);
        evaluate_policy(p, &mut env, 3, true, &mut rng).unwrap()
    };
    let frozen = NormalizedPolicy::new(&initial, stats);
    assert_eq!(replay(&frozen).episode_returns, recorded.episode_returns);
    // And the normalization matters: on raw observations this policy plays other episodes.
    assert_ne!(replay(&initial).episode_returns, recorded.episode_returns);
    // Training continued: the environment's statistics moved on, the evaluation's did not.
    assert!(m.normalization().unwrap().obs_rms.count > 20.0);
}

/// rl-zoo's section for `env`, trained (under its VecNormalize, if it has one) until a 10-episode evaluation
/// (frozen statistics) reaches `target` or the zoo's budget is spent; returns the last mean.
fn zoo_learns(algo: &str, env_id: &str, seed: u64, target: f64) -> f64 {
    set_threads();
    let e = entry(algo, env_id);
    match algo {
        "a2c" => {
            let r = e.a2c().unwrap();
            let config = A2cConfig {
                seed: Some(seed),
                ..r.config.clone()
            };
            let sde = config.use_sde;
            learn_section::<A2cTrainer>(&r, config, sde, (algo, env_id, seed), target)
        }
        _ => {
            let r = e.ppo().unwrap();
            let config = PpoConfig {
                seed: Some(seed),
                ..r.config.clone()
            };
            let sde = config.use_sde;
            learn_section::<PpoTrainer>(&r, config, sde, (algo, env_id, seed), target)
        }
    }
}

/// Trains `config` (the section `r`'s, seeded) as [`zoo_learns`] describes.
fn learn_section<T: OnPolicyTrainer>(
    r: &ZooRun<T::Config>,
    config: T::Config,
    use_sde: bool,
    (algo, env_id, seed): (&str, &str, u64),
    target: f64,
) -> f64 {
    let pcfg = r.policy_kwargs.mlp_policy_config(use_sde).unwrap();
    let plain = SyncVecEnv::make(env_id, r.n_envs, AutoresetMode::SameStep).unwrap();
    let env: Box<dyn VecEnv> = match &r.normalize {
        Some(n) => Box::new(VecNormalize::new(plain, n.config().unwrap()).unwrap()),
        None => Box::new(plain),
    };
    let budget = r.n_timesteps.unwrap();
    let mut learner =
        OnPolicyAlgorithm::<MlpPolicy, _, T>::with_config(policy(&env, pcfg, seed), env, config)
            .unwrap();
    // One `learn` over the whole budget (the zoo's linear schedules span it), stopped by an
    // evaluation (frozen statistics) that reaches the target, as EvalCallback +
    // StopTrainingOnRewardThreshold do.
    let every = (budget / 20).max(1_000);
    let mut eval = EvalCallback::new(make(env_id).unwrap(), (every / r.n_envs as u64).max(1))
        .unwrap()
        .with_n_eval_episodes(10)
        .unwrap()
        .with_seed(Some(seed + 1_000))
        .with_verbose(false)
        .with_callback_on_new_best(StopTrainingOnRewardThreshold::new(target));
    learner.learn(budget, &mut [&mut eval]).unwrap();
    for h in eval.history() {
        eprintln!(
            "{algo} {env_id} seed {seed}: {} steps, eval {:.1}",
            h.timesteps, h.result.mean
        );
    }
    match eval.history().last().map(|h| h.result.mean) {
        Some(m) if m >= target => m,
        // The final policy, as the CLI scores it, when no evaluation stopped training.
        _ => {
            let mut eval_env: Box<dyn Env> = make(env_id).unwrap();
            eval_env.reset(Some(seed + 2_000)).unwrap();
            let mut rng = StdRng::seed_from_u64(seed);
            let result = match learner.normalization() {
                Some(stats) => {
                    let frozen = NormalizedPolicy::new(learner.policy_ref(), stats);
                    evaluate_policy(&frozen, &mut eval_env, 10, true, &mut rng)
                }
                None => evaluate_policy(learner.policy_ref(), &mut eval_env, 10, true, &mut rng),
            };
            result.unwrap().mean
        }
    }
}

/// Seeds 0 and 1 (seed 2 only if one misses): at least 2 of 3 must reach `target`.
fn two_of_three(algo: &str, env_id: &str, target: f64) {
    let mut scores = vec![
        zoo_learns(algo, env_id, 0, target),
        zoo_learns(algo, env_id, 1, target),
    ];
    if scores.iter().any(|&s| s < target) {
        scores.push(zoo_learns(algo, env_id, 2, target));
    }
    let passed = scores.iter().filter(|&&s| s >= target).count();
    eprintln!("{algo} {env_id}: {scores:?}, {passed} reach {target}");
    assert!(
        passed >= 2,
        "{algo} on {env_id}: {scores:?}, need 2 of 3 >= {target}"
    );
}

#[test]
#[ignore = "slow: run in release with --ignored"]
fn a2c_learns_mountaincar_continuous_with_vec_normalize_and_gsde() {
    two_of_three("a2c", "MountainCarContinuous-v0", 85.0);
}

#[test]
#[ignore = "slow: run in release with --ignored"]
fn ppo_learns_mountaincar_continuous_with_vec_normalize_and_gsde() {
    two_of_three("ppo", "MountainCarContinuous-v0", 85.0);
}

#[test]
#[ignore = "slow: run in release with --ignored"]
fn a2c_learns_pendulum_with_vec_normalize_and_gsde() {
    two_of_three("a2c", "Pendulum-v1", -350.0);
}

#[test]
#[ignore = "slow: run in release with --ignored"]
fn ppo_learns_pendulum_with_gsde() {
    two_of_three("ppo", "Pendulum-v1", -350.0);
}
