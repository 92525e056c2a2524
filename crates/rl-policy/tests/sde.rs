//! gSDE's distribution on its own: the log-density and entropy against a host computation in
//! f64, which matrix a batch samples with, seeded draws, gradients (through the mean and
//! `log_std`, never through the detached features), and bad shapes as errors.

use candle_core::{Device, Tensor, Var};
use rand::SeedableRng;
use rl_policy::{
    ExplorationNoise, MlpPolicy, MlpPolicyConfig, StateDependentNoise, StochasticPolicy,
};

const LATENT: usize = 3;
const ACT: usize = 2;

fn t(values: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_vec(values.to_vec(), shape, &Device::Cpu).unwrap()
}

fn flat(x: &Tensor) -> Vec<f32> {
    x.flatten_all().unwrap().to_vec1().unwrap()
}

/// A batch of 2 rows: mean [2, 2], log_std [3, 2], latent [2, 3].
fn parts() -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    (
        vec![0.1, -0.2, 0.3, 0.05],
        vec![-1.0, -0.5, 0.2, -2.0, 0.0, 0.3],
        vec![0.5, -0.9, 0.2, -0.1, 0.7, 0.95],
    )
}

#[test]
fn log_prob_and_entropy_follow_the_state_dependent_variance() {
    let (mean, log_std, latent) = parts();
    let d = StateDependentNoise::new(
        t(&mean, &[2, ACT]),
        t(&log_std, &[LATENT, ACT]),
        &t(&latent, &[2, LATENT]),
        None,
    )
    .unwrap();
    let actions = [0.7f32, -1.1, -0.4, 0.9];
    let lp = flat(&d.log_prob(&t(&actions, &[2, ACT])).unwrap());
    let ent = flat(&d.entropy().unwrap());
    let std = flat(d.std());
    for row in 0..2 {
        let (mut want_lp, mut want_ent) = (0f64, 0f64);
        for j in 0..ACT {
            let var: f64 = (0..LATENT)
                .map(|k| {
                    let l = f64::from(latent[row * LATENT + k]);
                    let s = f64::from(log_std[k * ACT + j]).exp();
                    l * l * s * s
                })
                .sum::<f64>()
                + 1e-6;
            let diff = f64::from(actions[row * ACT + j] - mean[row * ACT + j]);
            want_lp += -diff * diff / (2.0 * var)
                - 0.5 * var.ln()
                - 0.5 * (2.0 * std::f64::consts::PI).ln();
            want_ent += 0.5 + 0.5 * (2.0 * std::f64::consts::PI).ln() + 0.5 * var.ln();
            let s = f64::from(std[row * ACT + j]);
            assert!((s - var.sqrt()).abs() < 1e-6, "std {s} vs {}", var.sqrt());
        }
        assert!(
            (f64::from(lp[row]) - want_lp).abs() < 1e-5,
            "log_prob {} vs {want_lp}",
            lp[row]
        );
        assert!(
            (f64::from(ent[row]) - want_ent).abs() < 1e-5,
            "entropy {} vs {want_ent}",
            ent[row]
        );
    }
}

#[test]
fn samples_use_one_matrix_per_env_or_the_single_one() {
    let (mean, log_std, latent) = parts();
    let ls = t(&log_std, &[LATENT, ACT]);
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let noise = ExplorationNoise::sample(&ls, 2, &mut rng).unwrap();
    // Seeded: the same generator state gives the same matrices.
    let again =
        ExplorationNoise::sample(&ls, 2, &mut rand::rngs::StdRng::seed_from_u64(3)).unwrap();
    assert_eq!(flat(noise.single()), flat(again.single()));
    assert_eq!(flat(noise.per_env()), flat(again.per_env()));
    let host = |m: &[f32], row: usize, j: usize| -> f32 {
        (0..LATENT)
            .map(|k| latent[row * LATENT + k] * m[k * ACT + j])
            .sum()
    };
    let single = flat(noise.single());
    let per_env = flat(noise.per_env());
    // Two rows for two environments: row i uses matrix i.
    let d = StateDependentNoise::new(
        t(&mean, &[2, ACT]),
        ls.clone(),
        &t(&latent, &[2, LATENT]),
        Some(noise.clone()),
    )
    .unwrap();
    let s = flat(&d.sample(&mut rng).unwrap());
    for row in 0..2 {
        for j in 0..ACT {
            let m = &per_env[row * LATENT * ACT..(row + 1) * LATENT * ACT];
            let want = mean[row * ACT + j] + host(m, row, j);
            assert!((s[row * ACT + j] - want).abs() < 1e-6);
        }
    }
    // One row: the single matrix.
    let d1 = StateDependentNoise::new(
        t(&mean[..ACT], &[1, ACT]),
        ls,
        &t(&latent[..LATENT], &[1, LATENT]),
        Some(noise),
    )
    .unwrap();
    let s1 = flat(&d1.sample(&mut rng).unwrap());
    for j in 0..ACT {
        assert!((s1[j] - (mean[j] + host(&single, 0, j))).abs() < 1e-6);
    }
    assert_eq!(flat(&d1.mode().unwrap()), mean[..ACT].to_vec());
}

#[test]
fn gradients_reach_mean_and_log_std_but_not_the_features() {
    let (mean, log_std, latent) = parts();
    let (m, ls, lat) = (
        Var::from_tensor(&t(&mean, &[2, ACT])).unwrap(),
        Var::from_tensor(&t(&log_std, &[LATENT, ACT])).unwrap(),
        Var::from_tensor(&t(&latent, &[2, LATENT])).unwrap(),
    );
    let d = StateDependentNoise::new(
        m.as_tensor().clone(),
        ls.as_tensor().clone(),
        lat.as_tensor(),
        None,
    )
    .unwrap();
    let loss = (d.log_prob(&t(&[0.7, -1.1, -0.4, 0.9], &[2, ACT])).unwrap() + d.entropy().unwrap())
        .unwrap()
        .sum_all()
        .unwrap();
    let grads = loss.backward().unwrap();
    assert!(grads.get(m.as_tensor()).is_some());
    assert!(grads.get(ls.as_tensor()).is_some());
    assert!(
        grads.get(lat.as_tensor()).is_none(),
        "learn_features=False detaches the features"
    );
}

#[test]
fn bad_shapes_are_errors() {
    let (mean, log_std, latent) = parts();
    let bad = StateDependentNoise::new(
        t(&mean, &[2, ACT]),
        t(&log_std, &[ACT, LATENT]),
        &t(&latent, &[2, LATENT]),
        None,
    );
    assert!(bad.is_err());
    let ok = StateDependentNoise::new(
        t(&mean, &[2, ACT]),
        t(&log_std, &[LATENT, ACT]),
        &t(&latent, &[2, LATENT]),
        None,
    )
    .unwrap();
    assert!(ok.log_prob(&t(&[0.0; 2], &[1, ACT])).is_err());
    assert!(ExplorationNoise::new(
        t(&[0.0; 6], &[LATENT, ACT]),
        t(&[0.0; 6], &[1, ACT, LATENT])
    )
    .is_err());
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    assert!(ExplorationNoise::sample(&t(&log_std, &[LATENT, ACT]), 0, &mut rng).is_err());
    assert!(
        ExplorationNoise::sample(&t(&[f32::INFINITY; 6], &[LATENT, ACT]), 1, &mut rng).is_err()
    );
}

#[test]
fn a_gsde_policy_keeps_its_matrices_until_reset() {
    let obs_space = rl_env::Space::boxed(vec![-1.0; 3], vec![1.0; 3], vec![3]).unwrap();
    let act_space = rl_env::Space::boxed(vec![-2.0], vec![2.0], vec![1]).unwrap();
    let config = MlpPolicyConfig {
        use_sde: true,
        log_std_init: -1.0,
        ..MlpPolicyConfig::default()
    };
    let p = MlpPolicy::new(&obs_space, &act_space, config, 5, &Device::Cpu).unwrap();
    assert!(p.uses_sde());
    assert_eq!(p.state_dict().unwrap()["log_std"].dims(), &[64, 1]);
    let obs = t(&[0.1, -0.3, 0.5, 0.2, 0.4, -0.6], &[2, 3]);
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let act =
        |rng: &mut rand::rngs::StdRng| flat(&p.action_dist(&obs).unwrap().sample(rng).unwrap());
    // The same matrices give the same actions whatever the generator does meanwhile.
    let a1 = act(&mut rng);
    assert_eq!(a1, act(&mut rng));
    p.reset_noise(2, &mut rng).unwrap();
    let a2 = act(&mut rng);
    assert_ne!(a1, a2);
    let saved = p.exploration_noise().unwrap();
    assert_eq!(saved.n_envs(), 2);
    p.reset_noise(2, &mut rng).unwrap();
    p.set_exploration_noise(saved).unwrap();
    assert_eq!(a2, act(&mut rng));
    // Matrices of the wrong shape are refused; a policy without gSDE has none.
    let wrong = ExplorationNoise::new(t(&[0.0; 2], &[2, 1]), t(&[0.0; 2], &[1, 2, 1])).unwrap();
    assert!(p.set_exploration_noise(wrong).is_err());
    let plain = MlpPolicy::new(
        &obs_space,
        &act_space,
        MlpPolicyConfig::default(),
        5,
        &Device::Cpu,
    )
    .unwrap();
    assert!(!plain.uses_sde());
    assert!(plain.exploration_noise().is_none());
    assert!(plain.reset_noise(1, &mut rng).is_err());
}
