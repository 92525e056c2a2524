//! Parity with Stable-Baselines3's PPO on recorded runs (golden files of kind
//! `sb3_ppo_update_golden/*`): from the recorded initial parameters, every iteration's rollout
//! values, timeout bootstrap and GAE are redone, then every epoch's minibatches (SB3's recorded
//! shuffle) go through [`ppo_update`], chaining from this crate's own parameters; losses,
//! per-sample quantities, the target_kl decision, gradient norms, parameters after every epoch
//! and Adam's state after every iteration are compared with what SB3 computed. Each file runs
//! twice: the steps through the generic Candle path ([`ppo_update`]) and through the fast MLP
//! path ([`PpoFastUpdate`]).

mod sb3_golden;

use candle_core::{Device, Tensor};
use rl_algos::buffer::{actions_to_tensor, explained_variance};
use rl_algos::optim::{Adam, Optimizer, Schedule};
use rl_algos::ppo::{ppo_loss, ppo_update, PpoBatch, PpoFastUpdate, PpoHostBatch, PpoParams};
use rl_golden::{f32s, f64_of, name};
use rl_policy::{ActorCritic, StochasticPolicy};
use sb3_golden::{initial_policy, named_tensors, param_error, redo_rollout, space, MaxErr};
use serde_json::Value;

const TOL: f64 = 1e-5;

#[test]
fn ppo_updates_match_sb3() {
    let files = rl_golden::files("sb3", "SB3 PPO update", |v| {
        v["header"]["format"]
            .as_str()
            .is_some_and(|f| f.starts_with("sb3_ppo_update_golden/"))
    });
    for (path, data) in &files {
        check_file(&name(path), data, false);
        check_file(&format!("{} (fast path)", name(path)), data, true);
    }
}

/// A hyperparameter that may be scheduled: a number, or `"linear: V * progress_remaining"`
/// (rl-zoo's `lin_V`).
fn schedule(v: &Value) -> Schedule {
    if let Some(x) = v.as_f64() {
        return Schedule::Constant(x);
    }
    let text = v.as_str().unwrap_or_else(|| panic!("schedule {v}"));
    let value = text
        .strip_prefix("linear: ")
        .and_then(|t| t.strip_suffix(" * progress_remaining"))
        .unwrap_or_else(|| panic!("unknown schedule {text:?}"));
    Schedule::LinearToZero(value.parse().expect("schedule value"))
}

/// The `[n_steps, n_envs]` index of SB3's flat index `k` (env-major after `swap_and_flatten`).
fn our_index(k: usize, n_steps: usize, n_envs: usize) -> usize {
    let (env, step) = (k / n_steps, k % n_steps);
    step * n_envs + env
}

#[derive(Default)]
struct Errors {
    rollout: MaxErr,
    per_sample: MaxErr,
    losses: MaxErr,
    stats: MaxErr,
    grad: MaxErr,
    epoch_params: MaxErr,
    params: MaxErr,
    adam: MaxErr,
    logged: MaxErr,
}

fn check_file(file: &str, data: &Value, fast: bool) {
    let h = &data["header"];
    let act_space = space(&h["action_space"]);
    let obs_dim = space(&h["observation_space"]).flat_dim();
    let act_dim = act_space.flat_dim();
    let hp = &h["hyperparameters"];
    let n_envs = h["n_envs"].as_u64().unwrap() as usize;
    let n_steps = hp["n_steps"].as_u64().unwrap() as usize;
    let lr_schedule = schedule(&hp["learning_rate"]);
    let clip_schedule = schedule(&hp["clip_range"]);
    let clip_vf_schedule = (!hp["clip_range_vf"].is_null()).then(|| schedule(&hp["clip_range_vf"]));
    let target_kl = hp["target_kl"].as_f64();
    let policy = initial_policy(data);
    let eps = f64_of(&h["optimizer"]["eps"]);
    let mut adam = Adam::new(policy.trainable_vars(), lr_schedule.value(1.0), eps).unwrap();
    let mut fast_update = fast.then(|| {
        let layout = policy.mlp_layout().expect("a standard MLP");
        PpoFastUpdate::new(layout, n_steps * n_envs, &adam).unwrap()
    });

    let mut e = Errors::default();
    let (mut steps_compared, mut minibatches_compared, mut skipped, mut truncations) = (0, 0, 0, 0);
    let iterations = data["iterations"].as_array().expect("iterations");
    assert!(!iterations.is_empty(), "{file}: no iterations");
    for it in iterations {
        let ro = redo_rollout(&policy, h, it);
        for err in [ro.e_values, ro.e_rewards, ro.e_advantages, ro.e_returns] {
            e.rollout.merge(err);
        }
        truncations += ro.truncations;
        // Rollout-time log-probabilities with our parameters, as SB3 stored its own.
        let b = n_steps * n_envs;
        let obs_all = Tensor::from_slice(&ro.observations, (b, obs_dim), &Device::Cpu).unwrap();
        let act_all = actions_to_tensor(&ro.actions, b, &act_space, &Device::Cpu).unwrap();
        let old_log_probs: Vec<f32> = policy
            .action_dist(&obs_all)
            .unwrap()
            .log_prob(&act_all)
            .unwrap()
            .to_vec1()
            .unwrap();

        let tr = &it["train"];
        let progress = f64_of(&it["progress_remaining"]);
        let lr = lr_schedule.value(progress);
        let clip_range = clip_schedule.value(progress);
        let clip_range_vf = clip_vf_schedule.map(|s| s.value(progress));
        assert!(
            (lr - f64_of(&tr["learning_rate"])).abs() <= 1e-15 * lr,
            "{file}: learning rate {lr} vs {}",
            tr["learning_rate"]
        );
        assert!(
            (clip_range - f64_of(&tr["clip_range"])).abs() <= 1e-15,
            "{file}: clip range"
        );
        adam.set_learning_rate(lr);
        let params = PpoParams {
            clip_range,
            clip_range_vf,
            ent_coef: f64_of(&hp["ent_coef"]),
            vf_coef: f64_of(&hp["vf_coef"]),
            max_grad_norm: f64_of(&hp["max_grad_norm"]),
            normalize_advantage: hp["normalize_advantage"].as_bool().unwrap(),
            target_kl,
        };
        let minibatches = tr["minibatches"].as_array().expect("minibatches");
        let epochs_after = tr["params_after_epoch"].as_array().unwrap();
        let mut epoch_seen = 0usize;
        let (mut pg, mut vl, mut ent, mut cf, mut count) = (0.0, 0.0, 0.0, 0.0, 0);
        let mut kls: Vec<f64> = Vec::new();
        let mut last_loss = f64::NAN;
        for (k, mb) in minibatches.iter().enumerate() {
            let epoch = mb["epoch"].as_u64().unwrap() as usize;
            if epoch != epoch_seen {
                e.epoch_params
                    .merge(param_error(&policy, &epochs_after[epoch_seen]));
                epoch_seen = epoch;
                kls.clear();
            }
            let rows: Vec<usize> = mb["batch_inds"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| our_index(i.as_u64().unwrap() as usize, n_steps, n_envs))
                .collect();
            let take = |xs: &[f32], d: usize| -> Vec<f32> {
                rows.iter()
                    .flat_map(|&i| xs[i * d..(i + 1) * d].iter().copied())
                    .collect()
            };
            let m = rows.len();
            let obs = Tensor::from_vec(take(&ro.observations, obs_dim), (m, obs_dim), &Device::Cpu)
                .unwrap();
            let actions =
                actions_to_tensor(&take(&ro.actions, act_dim), m, &act_space, &Device::Cpu)
                    .unwrap();
            let (old_values, old_lp) = (take(&ro.values, 1), take(&old_log_probs, 1));
            let (advantages, returns) = (take(&ro.advantages, 1), take(&ro.returns, 1));
            let batch = PpoBatch {
                observations: &obs,
                actions: &actions,
                old_values: &old_values,
                old_log_probs: &old_lp,
                advantages: &advantages,
                returns: &returns,
            };
            // Per-sample quantities before the step (the same parameters the step sees).
            let loss = ppo_loss(&policy, &batch, &params).unwrap();
            let ps = &mb["per_sample"];
            let vec = |t: &Tensor| -> Vec<f32> { t.to_vec1().unwrap() };
            e.per_sample
                .add_all(&vec(&loss.values), &f32s(&ps["values"]));
            e.per_sample
                .add_all(&vec(&loss.log_prob), &f32s(&ps["log_prob"]));
            e.per_sample
                .add_all(&vec(&loss.entropy), &f32s(&ps["entropy"]));
            e.per_sample.add_all(&vec(&loss.ratio), &f32s(&ps["ratio"]));
            e.per_sample
                .add_all(&loss.advantages, &f32s(&ps["advantages_used"]));

            let stats = match &mut fast_update {
                Some(f) => {
                    let obs_host = take(&ro.observations, obs_dim);
                    let act_host = take(&ro.actions, act_dim);
                    let host = PpoHostBatch {
                        observations: &obs_host,
                        actions: &act_host,
                        old_values: &old_values,
                        old_log_probs: &old_lp,
                        advantages: &advantages,
                        returns: &returns,
                    };
                    f.update(&mut adam, &host, &params, 1).unwrap()
                }
                None => ppo_update(&policy, &mut adam, &batch, &params, 1).unwrap(),
            };
            let stepped = mb["stepped"].as_bool().unwrap();
            assert_eq!(
                stats.stepped, stepped,
                "{file}: minibatch {k} stepped {} but SB3's {stepped} (approx_kl {} vs {})",
                stats.stepped, stats.approx_kl, mb["approx_kl"]
            );
            for (got, key) in [
                (stats.policy_loss, "policy_loss"),
                (stats.value_loss, "value_loss"),
                (stats.entropy_loss, "entropy_loss"),
                (stats.loss, "loss"),
            ] {
                // A minibatch that target_kl stopped has no recorded total loss.
                if let Some(want) = mb.get(key) {
                    e.losses.add(got, f64_of(want));
                }
            }
            e.stats.add(stats.approx_kl, f64_of(&mb["approx_kl"]));
            e.stats
                .add(stats.clip_fraction, f64_of(&mb["clip_fraction"]));
            match (stats.grad_norm, mb.get("grad_norm_before_clip")) {
                (Some(g), Some(want)) => e.grad.add(g, f64_of(want)),
                (None, None) => {}
                (g, want) => panic!("{file}: minibatch {k}: grad norm {g:?} vs {want:?}"),
            }
            (pg, vl, ent, cf, count) = (
                pg + stats.policy_loss,
                vl + stats.value_loss,
                ent + stats.entropy_loss,
                cf + stats.clip_fraction,
                count + 1,
            );
            kls.push(stats.approx_kl);
            last_loss = stats.loss;
            minibatches_compared += 1;
            if stepped {
                steps_compared += 1;
            } else {
                skipped += 1;
                break;
            }
        }
        let epochs_run = tr["epochs_run"].as_u64().unwrap() as usize;
        assert_eq!(epoch_seen + 1, epochs_run, "{file}: epochs run");
        assert_eq!(epochs_after.len(), epochs_run, "{file}: epoch records");
        e.epoch_params
            .merge(param_error(&policy, &epochs_after[epoch_seen]));
        e.params.merge(param_error(&policy, &it["params_after"]));

        // SB3's logged means (approx_kl over the last epoch only).
        let logged = &tr["logged"];
        let n = count as f64;
        for (got, key) in [
            (pg / n, "policy_gradient_loss"),
            (vl / n, "value_loss"),
            (ent / n, "entropy_loss"),
            (cf / n, "clip_fraction"),
            (kls.iter().sum::<f64>() / kls.len() as f64, "approx_kl"),
            (last_loss, "loss"),
            (
                explained_variance(&ro.values, &ro.returns),
                "explained_variance",
            ),
        ] {
            e.logged.add(got, f64_of(&logged[key]));
        }

        // Adam's state after the iteration.
        let state = adam.state().unwrap();
        let opt = &it["optimizer_state_after"];
        assert_eq!(
            state.step as f64,
            f64_of(&opt["step"]),
            "{file}: Adam step count"
        );
        for (slot, key) in [("exp_avg", "exp_avg"), ("exp_avg_sq", "exp_avg_sq")] {
            let want = named_tensors(&opt[key]);
            for (s, var, values) in &state.buffers {
                if s == slot {
                    let w: Vec<f32> = want[var].flatten_all().unwrap().to_vec1().unwrap();
                    for (&g, &w) in values.iter().zip(&w) {
                        e.adam.add(g, f64::from(w));
                    }
                }
            }
        }
    }
    println!(
        "{file}: {} iterations, {truncations} truncations, {minibatches_compared} minibatches \
         ({steps_compared} steps, {skipped} target_kl stops); max error scaled by max(1,|ref|): \
         rollout {:.2e}, per-sample {:.2e}, losses {:.2e}, approx_kl/clip_fraction {:.2e}, \
         grad norm {:.2e}, params after epochs {:.2e}, after iterations {:.2e}, Adam state \
         {:.2e}, logged {:.2e}",
        iterations.len(),
        e.rollout.scaled,
        e.per_sample.scaled,
        e.losses.scaled,
        e.stats.scaled,
        e.grad.scaled,
        e.epoch_params.scaled,
        e.params.scaled,
        e.adam.scaled,
        e.logged.scaled,
    );
    for (what, err) in [
        ("rollout values/rewards/advantages/returns", e.rollout),
        ("per-sample values", e.per_sample),
        ("losses", e.losses),
        ("approx_kl/clip_fraction", e.stats),
        ("gradient norms", e.grad),
        ("parameters after epochs", e.epoch_params),
        ("parameters after iterations", e.params),
        ("Adam state", e.adam),
        ("logged values", e.logged),
    ] {
        assert!(err.scaled <= TOL, "{file}: {what} differ by {err:?}");
    }
    assert!(minibatches_compared > 0, "{file}: no minibatch compared");
}
