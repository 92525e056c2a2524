//! Parity with Stable-Baselines3's A2C on recorded rollouts (golden files of kind
//! `sb3_a2c_update_golden/*`): from the recorded initial parameters, every iteration's timeout
//! bootstrap, GAE, losses, gradient norm and RMSprop update are recomputed here, chaining from
//! this crate's own updated parameters, and compared with what SB3 computed.

use candle_core::{Device, Tensor};
use rl_algos::a2c::{a2c_update, A2cBatch, UpdateParams};
use rl_algos::buffer::{bootstrap_truncated, compute_gae, explained_variance, GaeInput};
use rl_algos::optim::{Adam, Optimizer, RmsProp};
use rl_env::Space;
use rl_golden::{f32_of, f32s, f32s_flat, f64_of, name};
use rl_policy::{
    ActionDist, Activation, ActorCritic, MlpPolicy, MlpPolicyConfig, NetArch, StochasticPolicy,
};
use serde_json::Value;
use std::collections::HashMap;

const TOL: f64 = 1e-5;

fn space(v: &Value) -> Space {
    match v["type"].as_str() {
        Some("Discrete") => Space::Discrete {
            n: v["n"].as_u64().expect("Discrete n"),
            start: v["start"].as_i64().unwrap_or(0),
        },
        Some("Box") => {
            let bound = |x: &Value| match x {
                Value::String(s) if s == "inf" => f32::INFINITY,
                Value::String(s) if s == "-inf" => f32::NEG_INFINITY,
                x => f32_of(x),
            };
            let low = v["low"]
                .as_array()
                .expect("low")
                .iter()
                .map(bound)
                .collect();
            let high = v["high"]
                .as_array()
                .expect("high")
                .iter()
                .map(bound)
                .collect();
            let shape = v["shape"]
                .as_array()
                .expect("shape")
                .iter()
                .map(|d| d.as_u64().unwrap() as usize)
                .collect();
            Space::boxed(low, high, shape).expect("valid Box space")
        }
        other => panic!("unsupported space type {other:?}"),
    }
}

/// `[64, 64]` from `...pi=[64, 64]...` in SB3's printed `net_arch`.
fn layers(arch: &str, key: &str) -> Vec<usize> {
    let start = arch
        .find(&format!("{key}=["))
        .unwrap_or_else(|| panic!("no {key} in net_arch {arch:?}"))
        + key.len()
        + 2;
    let end = start + arch[start..].find(']').expect("closing bracket");
    arch[start..end]
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().expect("layer size"))
        .collect()
}

fn policy_config(kwargs: &Value) -> MlpPolicyConfig {
    let arch = kwargs["net_arch"].as_str().expect("net_arch string");
    let activation = match kwargs["activation_fn"].as_str() {
        Some("nn.Tanh") => Activation::Tanh,
        Some("nn.ReLU") => Activation::ReLU,
        other => panic!("unsupported activation {other:?}"),
    };
    MlpPolicyConfig {
        net_arch: NetArch {
            shared: Vec::new(),
            pi: layers(arch, "pi"),
            vf: layers(arch, "vf"),
        },
        activation,
        ortho_init: kwargs["ortho_init"].as_bool().unwrap_or(true),
        log_std_init: f64_of(&kwargs["log_std_init"]),
    }
}

fn named_tensors(params: &Value) -> HashMap<String, Tensor> {
    params
        .as_object()
        .expect("params object")
        .iter()
        .map(|(k, v)| {
            let shape: Vec<usize> = v["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize)
                .collect();
            let t = Tensor::from_vec(f32s(&v["values"]), shape, &Device::Cpu).unwrap();
            (k.clone(), t)
        })
        .collect()
}

fn values_of<P: ActorCritic>(policy: &P, obs: &[f32], rows: usize) -> Vec<f32> {
    let t = Tensor::from_slice(obs, (rows, obs.len() / rows), &Device::Cpu).unwrap();
    policy.predict_values(&t).unwrap().to_vec1().unwrap()
}

/// Largest `|a - b| / max(1, |b|)` and largest `|a - b|`.
#[derive(Default, Debug)]
struct MaxErr {
    scaled: f64,
    abs: f64,
}

impl MaxErr {
    fn add(&mut self, got: f64, want: f64) {
        let d = (got - want).abs();
        self.abs = self.abs.max(d);
        self.scaled = self.scaled.max(d / want.abs().max(1.0));
    }
    fn add_all(&mut self, got: &[f32], want: &[f32]) {
        assert_eq!(got.len(), want.len());
        for (&g, &w) in got.iter().zip(want) {
            self.add(f64::from(g), f64::from(w));
        }
    }
}

#[test]
fn a2c_updates_match_sb3() {
    let files = rl_golden::files("sb3", "SB3 A2C update", |v| {
        v["header"]["format"]
            .as_str()
            .is_some_and(|f| f.starts_with("sb3_a2c_update_golden/"))
    });
    for (path, data) in &files {
        check_file(&name(path), data);
    }
}

fn check_file(file: &str, data: &Value) {
    let h = &data["header"];
    let obs_space = space(&h["observation_space"]);
    let act_space = space(&h["action_space"]);
    let hp = &h["hyperparameters"];
    let n_envs = h["n_envs"].as_u64().unwrap() as usize;
    let n_steps = hp["n_steps"].as_u64().unwrap() as usize;
    let gamma = f64_of(&hp["gamma"]);
    let gae_lambda = f64_of(&hp["gae_lambda"]);
    let params = UpdateParams {
        ent_coef: f64_of(&hp["ent_coef"]),
        vf_coef: f64_of(&hp["vf_coef"]),
        max_grad_norm: f64_of(&hp["max_grad_norm"]),
        normalize_advantage: hp["normalize_advantage"].as_bool().unwrap(),
    };
    let kwargs = &h["policy_kwargs_effective"];
    let policy = MlpPolicy::from_named_tensors(
        &obs_space,
        &act_space,
        policy_config(kwargs),
        &named_tensors(&data["initial_params"]),
        &Device::Cpu,
    )
    .expect("initial parameters load into MlpPolicy");
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

    let [mut e_val, mut e_rew, mut e_adv, mut e_ret, mut e_loss, mut e_grad, mut e_param, mut e_ev, mut e_std] =
        std::array::from_fn::<MaxErr, 9, _>(|_| MaxErr::default());
    let iterations = data["iterations"].as_array().expect("iterations");
    assert!(!iterations.is_empty(), "{file}: no iterations");
    let mut truncations = 0;
    for it in iterations {
        let r = &it["rollout"];
        let obs = f32s_flat(&r["observations"]);
        assert_eq!(
            obs.len(),
            n_steps * n_envs * obs_dim,
            "{file}: observations shape"
        );

        // Rollout-time values with our parameters, batch n_envs per step as SB3.
        let mut values = Vec::with_capacity(n_steps * n_envs);
        for row in obs.chunks_exact(n_envs * obs_dim) {
            values.extend(values_of(&policy, row, n_envs));
        }
        e_val.add_all(&values, &f32s_flat(&r["values"]));

        // Timeout bootstrap from our V(terminal_obs), batch 1.
        let mut rewards = f32s_flat(&r["rewards_raw"]);
        for end in r["episode_ends"].as_array().unwrap() {
            if end["kind"].as_str() == Some("truncated") {
                let (step, env) = (
                    end["step"].as_u64().unwrap() as usize,
                    end["env"].as_u64().unwrap() as usize,
                );
                let term = f32s(&end["terminal_observation"]);
                let v = values_of(&policy, &term, 1)[0];
                let i = step * n_envs + env;
                rewards[i] = bootstrap_truncated(rewards[i], gamma, v);
                truncations += 1;
            }
        }
        e_rew.add_all(&rewards, &f32s_flat(&r["rewards"]));

        let last_values = values_of(&policy, &f32s_flat(&r["last_obs"]), n_envs);
        let dones: Vec<bool> = r["dones"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_bool().unwrap())
            .collect();
        let starts = f32s_flat(&r["episode_starts"]);
        let input = GaeInput {
            n_envs,
            rewards: &rewards,
            values: &values,
            episode_starts: &starts,
            last_values: &last_values,
            dones: &dones,
        };
        let mut adv = vec![0.0f32; rewards.len()];
        let mut ret = vec![0.0f32; rewards.len()];
        compute_gae(&input, gamma, gae_lambda, &mut adv, &mut ret).unwrap();
        e_adv.add_all(&adv, &f32s_flat(&r["advantages"]));
        e_ret.add_all(&ret, &f32s_flat(&r["returns"]));

        let tr = &it["train"];
        let ev = explained_variance(&values, &ret);
        e_ev.add(ev, f64_of(&tr["explained_variance"]));

        let b = n_steps * n_envs;
        let obs_t = Tensor::from_slice(&obs, (b, obs_dim), &Device::Cpu).unwrap();
        let actions = f32s_flat(&r["actions"]);
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
        opt.set_learning_rate(f64_of(&tr["learning_rate"]));
        let iteration = it["iteration"].as_u64().unwrap();
        let stats = a2c_update(&policy, opt.as_mut(), &batch, &params, iteration).unwrap();
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

        let after = named_tensors(&it["params_after"]);
        for (n, var) in policy.trainable_vars() {
            let got: Vec<f32> = var.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
            let want: Vec<f32> = after[&n].flatten_all().unwrap().to_vec1().unwrap();
            e_param.add_all(&got, &want);
        }
        if let Some(std_logged) = tr.get("std_logged") {
            let one = obs_t.narrow(0, 0, 1).unwrap();
            if let ActionDist::DiagGaussian(g) = policy.action_dist(&one).unwrap() {
                let std: f32 = g
                    .log_std()
                    .exp()
                    .unwrap()
                    .mean_all()
                    .unwrap()
                    .to_scalar()
                    .unwrap();
                e_std.add(f64::from(std), f64_of(std_logged));
            } else {
                panic!("{file}: std logged for a non-Gaussian policy");
            }
        }
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
}
