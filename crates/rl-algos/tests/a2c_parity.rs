//! Parity with Stable-Baselines3's A2C on recorded rollouts (golden files of kind
//! `sb3_a2c_update_golden/*`): from the recorded initial parameters, every iteration's timeout
//! bootstrap, GAE, losses, gradient norm and RMSprop update are recomputed here, chaining from
//! this crate's own updated parameters, and compared with what SB3 computed. Each file runs
//! twice: through the generic Candle path ([`a2c_update`]) and, for standard MLP policies
//! (all but gSDE), through the fast MLP path ([`A2cFastUpdate`]).

mod sb3_golden;

use candle_core::{Device, Tensor};
use rl_algos::a2c::{a2c_update, A2cBatch, A2cFastUpdate, UpdateParams};
use rl_algos::buffer::explained_variance;
use rl_algos::optim::{Adam, Optimizer, RmsProp};
use rl_env::Space;
use rl_golden::{f32s_flat, f64_of, name};
use rl_policy::{ActionDist, ActorCritic, StochasticPolicy};
use sb3_golden::{initial_policy, param_error, redo_rollout, space, MaxErr};
use serde_json::Value;

const TOL: f64 = 1e-5;

#[test]
fn a2c_updates_match_sb3() {
    let files = rl_golden::files("sb3", "SB3 A2C update", |v| {
        v["header"]["format"]
            .as_str()
            .is_some_and(|f| f.starts_with("sb3_a2c_update_golden/"))
    });
    let mut fast_runs = 0;
    for (path, data) in &files {
        check_file(&name(path), data, false);
        fast_runs += usize::from(check_file(
            &format!("{} (fast path)", name(path)),
            data,
            true,
        ));
    }
    assert!(fast_runs > 0, "no golden file exercised the fast MLP path");
}

/// Checks one file through the generic or the fast path; `false` when the fast path does not
/// apply to its policy (gSDE).
fn check_file(file: &str, data: &Value, fast: bool) -> bool {
    let h = &data["header"];
    let obs_space = space(&h["observation_space"]);
    let act_space = space(&h["action_space"]);
    let hp = &h["hyperparameters"];
    let n_envs = h["n_envs"].as_u64().unwrap() as usize;
    let n_steps = hp["n_steps"].as_u64().unwrap() as usize;
    let params = UpdateParams {
        ent_coef: f64_of(&hp["ent_coef"]),
        vf_coef: f64_of(&hp["vf_coef"]),
        max_grad_norm: f64_of(&hp["max_grad_norm"]),
        normalize_advantage: hp["normalize_advantage"].as_bool().unwrap(),
    };
    let kwargs = &h["policy_kwargs_effective"];
    let policy = initial_policy(data);
    let lr = f64_of(&hp["learning_rate"]);
    let eps = f64_of(&hp["rms_prop_eps"]);
    let mut opt: Box<dyn Optimizer> = if hp["use_rms_prop"].as_bool().unwrap() {
        let alpha = f64_of(&kwargs["optimizer_kwargs"]["alpha"]);
        Box::new(RmsProp::new(policy.trainable_vars(), lr, alpha, eps).unwrap())
    } else {
        Box::new(Adam::new(policy.trainable_vars(), lr, eps).unwrap())
    };
    let obs_dim = obs_space.flat_dim();
    let act_dim = act_space.flat_dim();
    let discrete = matches!(act_space, Space::Discrete { .. });
    let mut fast_update = if fast {
        let Some(layout) = policy.mlp_layout() else {
            println!("{file}: not a standard MLP (gSDE), generic path only");
            return false;
        };
        let b = n_steps * n_envs;
        Some(A2cFastUpdate::new(layout, b, opt.as_ref()).unwrap())
    } else {
        None
    };

    let [mut e_val, mut e_rew, mut e_adv, mut e_ret, mut e_loss, mut e_grad, mut e_param, mut e_ev, mut e_std] =
        std::array::from_fn::<MaxErr, 9, _>(|_| MaxErr::default());
    let iterations = data["iterations"].as_array().expect("iterations");
    assert!(!iterations.is_empty(), "{file}: no iterations");
    let mut truncations = 0;
    let (mut noise_draws, mut e_sde, mut e_lp) = (0, MaxErr::default(), MaxErr::default());
    for it in iterations {
        let ro = redo_rollout(&policy, h, it);
        e_val.merge(ro.e_values);
        e_rew.merge(ro.e_rewards);
        e_adv.merge(ro.e_advantages);
        e_ret.merge(ro.e_returns);
        truncations += ro.truncations;
        noise_draws += ro.noise_draws;
        e_sde.merge(ro.e_sde_actions);
        e_lp.merge(ro.e_log_probs);

        let tr = &it["train"];
        let ev = explained_variance(&ro.values, &ro.returns);
        e_ev.add(ev, f64_of(&tr["explained_variance"]));

        let b = n_steps * n_envs;
        let obs_t = Tensor::from_slice(&ro.observations, (b, obs_dim), &Device::Cpu).unwrap();
        let act_t = if discrete {
            Tensor::from_slice(&ro.actions, b, &Device::Cpu).unwrap()
        } else {
            Tensor::from_slice(&ro.actions, (b, act_dim), &Device::Cpu).unwrap()
        };
        let batch = A2cBatch {
            observations: &obs_t,
            actions: &act_t,
            advantages: &ro.advantages,
            returns: &ro.returns,
        };
        opt.set_learning_rate(f64_of(&tr["learning_rate"]));
        let iteration = it["iteration"].as_u64().unwrap();
        let stats = match &mut fast_update {
            Some(f) => f
                .update(
                    opt.as_mut(),
                    &ro.observations,
                    &ro.actions,
                    &ro.advantages,
                    &ro.returns,
                    &params,
                    iteration,
                )
                .unwrap(),
            None => a2c_update(&policy, opt.as_mut(), &batch, &params, iteration).unwrap(),
        };
        // The policy loss is a mean of terms of both signs (always so with normalized
        // advantages): its relative error is taken against the mean magnitude of the terms.
        let ps = &tr["per_sample"];
        let terms: Vec<f64> = f32s_flat(&ps["advantages_used"])
            .iter()
            .zip(f32s_flat(&ps["log_prob"]))
            .map(|(&a, l)| f64::from(a * l).abs())
            .collect();
        let pg_scale = terms.iter().sum::<f64>() / terms.len() as f64;
        for (got, key, scale) in [
            (stats.policy_loss, "policy_loss", pg_scale),
            (stats.value_loss, "value_loss", 0.0),
            (stats.entropy_loss, "entropy_loss", 0.0),
            (stats.loss, "loss", 0.0),
        ] {
            let want = f64_of(&tr[key]);
            let rel = (got - want).abs() / want.abs().max(scale);
            e_loss.scaled = e_loss.scaled.max(rel);
            e_loss.abs = e_loss.abs.max((got - want).abs());
        }
        e_grad.add(stats.grad_norm, f64_of(&tr["grad_norm_before_clip"]));
        e_param.merge(param_error(&policy, &it["params_after"]));
        if let Some(std_logged) = tr.get("std_logged") {
            let one = obs_t.narrow(0, 0, 1).unwrap();
            let log_std = match policy.action_dist(&one).unwrap() {
                ActionDist::DiagGaussian(g) => g.log_std().clone(),
                ActionDist::StateDependentNoise(s) => s.log_std().clone(),
                ActionDist::Categorical(_) => {
                    panic!("{file}: std logged for a non-Gaussian policy")
                }
            };
            {
                let std: f32 = log_std
                    .exp()
                    .unwrap()
                    .mean_all()
                    .unwrap()
                    .to_scalar()
                    .unwrap();
                e_std.add(f64::from(std), f64_of(std_logged));
            }
        }
    }
    println!(
        "{file}: rollout log-probs {:.2e}/{:.2e}; gSDE: {noise_draws} exploration-matrix draws, \
         actions re-sampled from them {:.2e}/{:.2e}",
        e_lp.abs, e_lp.scaled, e_sde.abs, e_sde.scaled
    );
    assert!(
        e_lp.scaled <= TOL,
        "{file}: rollout log-probs differ by {e_lp:?}"
    );
    assert!(
        e_sde.scaled <= TOL,
        "{file}: gSDE actions differ by {e_sde:?}"
    );
    if data["header"]["hyperparameters"]["use_sde"].as_bool() == Some(true) {
        assert!(
            noise_draws > 0,
            "{file}: a gSDE recording without exploration matrices"
        );
    }
    println!(
        "{file}: {} iterations, {truncations} truncations; max |err| (abs / scaled by max(1,|ref|)): \
         values {:.2e}/{:.2e}, rewards {:.2e}, advantages {:.2e}/{:.2e}, returns {:.2e}/{:.2e}, \
         losses {:.2e} abs / {:.2e} rel, grad norm {:.2e}, params {:.2e}, explained var {:.2e}, std {:.2e}",
        iterations.len(),
        e_val.abs,
        e_val.scaled,
        e_rew.abs,
        e_adv.abs,
        e_adv.scaled,
        e_ret.abs,
        e_ret.scaled,
        e_loss.abs,
        e_loss.scaled,
        e_grad.scaled,
        e_param.abs,
        e_ev.abs,
        e_std.abs,
    );
    assert!(
        e_adv.scaled <= TOL,
        "{file}: advantages differ by {e_adv:?}"
    );
    assert!(e_ret.scaled <= TOL, "{file}: returns differ by {e_ret:?}");
    assert!(
        e_rew.scaled <= TOL,
        "{file}: bootstrapped rewards differ by {e_rew:?}"
    );
    assert!(
        e_loss.scaled <= TOL,
        "{file}: losses differ by {e_loss:?} (relative)"
    );
    assert!(
        e_grad.scaled <= TOL,
        "{file}: gradient norms differ by {e_grad:?}"
    );
    assert!(
        e_param.abs <= TOL,
        "{file}: parameters differ by {e_param:?}"
    );
    assert!(
        e_ev.abs <= 1e-4,
        "{file}: explained variance differs by {e_ev:?}"
    );
    assert!(e_std.abs <= TOL, "{file}: logged std differs by {e_std:?}");
    true
}
