//! `evaluate_policy` and `evaluate_policy_vec` on scripted environments and CartPole.

mod fakes;

use fakes::{FixedPolicy, ScriptedEnv};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rl_algos::evaluation::mean_std;
use rl_algos::{evaluate_policy, evaluate_policy_vec, AlgoError};
use rl_env::{AutoresetMode, Env, EpisodeStats, Space, SyncVecEnv};

fn rng() -> StdRng {
    StdRng::seed_from_u64(0)
}

#[test]
fn deterministic_policy_on_fixed_episodes() {
    // Action 1 is overwhelmingly likely; the env pays 1 per step for 4 steps.
    let policy = FixedPolicy::Logits(vec![0.0, 5.0]);
    let mut env = ScriptedEnv::new(vec![4], Space::discrete(2));
    let r = evaluate_policy(&policy, &mut env, 3, true, &mut rng()).unwrap();
    assert_eq!(r.episode_returns, vec![4.0, 4.0, 4.0]);
    assert_eq!(r.episode_lengths, vec![4, 4, 4]);
    assert_eq!((r.mean, r.std), (4.0, 0.0));
    assert_eq!(env.discrete_actions, vec![1; 12]);
}

#[test]
fn population_std_over_varying_lengths() {
    let policy = FixedPolicy::Logits(vec![3.0, 0.0]);
    let mut env = ScriptedEnv::new(vec![1, 2, 3], Space::discrete(2));
    env.reward = 2.0;
    let r = evaluate_policy(&policy, &mut env, 3, true, &mut rng()).unwrap();
    assert_eq!(r.episode_returns, vec![2.0, 4.0, 6.0]);
    assert_eq!(r.mean, 4.0);
    // np.std([2, 4, 6]) = sqrt(8 / 3)
    assert!((r.std - (8.0f64 / 3.0).sqrt()).abs() < 1e-15);
    assert_eq!(r.mean_length(), 2.0);
    assert_eq!(mean_std(&[1.0, 2.0, 3.0, 4.0]), (2.5, 1.25f64.sqrt()));
}

#[test]
fn discrete_start_offset_and_sampling() {
    // Indices 0..3 map to -1..2; a near-uniform policy sampled with a seed is reproducible.
    let policy = FixedPolicy::Logits(vec![0.0, 0.0, 0.0]);
    let space = Space::Discrete { n: 3, start: -1 };
    let mut env = ScriptedEnv::new(vec![50], space.clone());
    evaluate_policy(&policy, &mut env, 2, false, &mut rng()).unwrap();
    let mut again = ScriptedEnv::new(vec![50], space);
    evaluate_policy(&policy, &mut again, 2, false, &mut rng()).unwrap();
    assert_eq!(env.discrete_actions, again.discrete_actions);
    for a in -1..=1 {
        assert!(env.discrete_actions.contains(&a), "action {a} never taken");
    }
}

#[test]
fn continuous_actions_are_clipped_to_the_box() {
    let policy = FixedPolicy::Gaussian {
        mean: vec![5.0, -0.25],
        log_std: vec![0.0, 0.0],
    };
    let space = Space::boxed(vec![-1.0, -1.0], vec![1.0, 1.0], vec![2]).unwrap();
    let mut env = ScriptedEnv::new(vec![2], space);
    evaluate_policy(&policy, &mut env, 1, true, &mut rng()).unwrap();
    assert_eq!(env.continuous_actions, vec![vec![1.0, -0.25]; 2]);
}

#[test]
fn episode_statistics_from_info_win() {
    let policy = FixedPolicy::Logits(vec![0.0, 1.0]);
    let mut env = ScriptedEnv::new(vec![3], Space::discrete(2));
    env.episode_info = Some(EpisodeStats {
        r#return: 123.0,
        length: 7,
        time_s: 0.0,
    });
    let r = evaluate_policy(&policy, &mut env, 2, true, &mut rng()).unwrap();
    assert_eq!(r.episode_returns, vec![123.0, 123.0]);
    assert_eq!(r.episode_lengths, vec![7, 7]);
}

#[test]
fn bad_arguments_are_errors() {
    let policy = FixedPolicy::Logits(vec![0.0, 1.0]);
    let mut env = ScriptedEnv::new(vec![3], Space::discrete(2));
    assert!(matches!(
        evaluate_policy(&policy, &mut env, 0, true, &mut rng()),
        Err(AlgoError::InvalidArgument(_))
    ));
    // A policy with more actions than the space: a clear error, not a panic.
    let wide = FixedPolicy::Logits(vec![0.0, 0.0, 9.0]);
    let err = evaluate_policy(&wide, &mut env, 1, true, &mut rng()).unwrap_err();
    assert!(err.to_string().contains("Discrete(2)"), "{err}");
}

#[test]
fn vec_evaluation_splits_episodes_like_sb3() {
    // Env 0 has 2-step episodes, env 1 has 5-step ones; 5 episodes -> targets [2, 3].
    let policy = FixedPolicy::Logits(vec![0.0, 1.0]);
    for mode in [AutoresetMode::SameStep, AutoresetMode::NextStep] {
        let envs = vec![
            ScriptedEnv::new(vec![2], Space::discrete(2)),
            ScriptedEnv::new(vec![5], Space::discrete(2)),
        ];
        let mut venv = SyncVecEnv::new(envs, mode).unwrap();
        let r = evaluate_policy_vec(&policy, &mut venv, 5, true, &mut rng()).unwrap();
        let mut lengths = r.episode_lengths.clone();
        lengths.sort_unstable();
        assert_eq!(lengths, vec![2, 2, 5, 5, 5], "{mode:?}");
        assert_eq!(r.episode_returns.iter().sum::<f64>(), 19.0, "{mode:?}");
    }
}

#[test]
fn cartpole_evaluation_is_reproducible() {
    std::env::set_var("RAYON_NUM_THREADS", "1");
    let mut env = rl_env::make("CartPole-v1").unwrap();
    let policy = rl_policy::MlpPolicy::new(
        env.observation_space(),
        env.action_space(),
        rl_policy::MlpPolicyConfig::default(),
        3,
        &candle_core::Device::Cpu,
    )
    .unwrap();
    let run = |env: &mut Box<dyn Env>| {
        env.reset(Some(7)).unwrap();
        evaluate_policy(&policy, env, 4, false, &mut rng()).unwrap()
    };
    let a = run(&mut env);
    let b = run(&mut env);
    assert_eq!(a, b);
    assert!(a.episode_lengths.iter().all(|&l| (1..=500).contains(&l)));
    assert_eq!(
        a.episode_returns,
        a.episode_lengths
            .iter()
            .map(|&l| l as f64)
            .collect::<Vec<_>>()
    );
}
