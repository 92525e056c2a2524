//! Reading SB3 update recordings (`a2c_update_*.json`, `ppo_update_*.json`) and redoing the
//! rollout half they share (SB3's `collect_rollouts`: rollout values, timeout bootstrap, GAE),
//! for the A2C and PPO parity tests.

#![allow(dead_code)]

use candle_core::{Device, Tensor};
use rl_algos::buffer::{bootstrap_truncated, compute_gae, GaeInput};
use rl_algos::on_policy::sde_draws_before_step;
use rl_env::Space;
use rl_golden::{f32_of, f32s, f32s_flat, f64_of};
use rl_policy::{Activation, ActorCritic, ExplorationNoise, MlpPolicy, MlpPolicyConfig, NetArch};
use serde_json::Value;
use std::collections::HashMap;

/// A space from the header's description.
pub fn space(v: &Value) -> Space {
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
            let list = |key: &str| -> Vec<f32> {
                v[key].as_array().expect(key).iter().map(bound).collect()
            };
            let shape = v["shape"]
                .as_array()
                .expect("shape")
                .iter()
                .map(|d| d.as_u64().unwrap() as usize)
                .collect();
            Space::boxed(list("low"), list("high"), shape).expect("valid Box space")
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

/// The policy configuration of a recording: its `policy_kwargs_effective` when it has them,
/// else SB3's defaults.
pub fn policy_config(header: &Value) -> MlpPolicyConfig {
    let kwargs = &header["policy_kwargs_effective"];
    if kwargs.is_null() {
        return MlpPolicyConfig::default();
    }
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
        use_sde: kwargs["use_sde"].as_bool().unwrap_or(false),
    }
}

/// `name -> {shape, values}` as named tensors.
pub fn named_tensors(params: &Value) -> HashMap<String, Tensor> {
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

/// The recording's policy, with its initial parameters.
pub fn initial_policy(data: &Value) -> MlpPolicy {
    let h = &data["header"];
    MlpPolicy::from_named_tensors(
        &space(&h["observation_space"]),
        &space(&h["action_space"]),
        policy_config(h),
        &named_tensors(&data["initial_params"]),
        &Device::Cpu,
    )
    .expect("initial parameters load into MlpPolicy")
}

/// `V(obs)` for `rows` observations.
pub fn values_of<P: ActorCritic>(policy: &P, obs: &[f32], rows: usize) -> Vec<f32> {
    let t = Tensor::from_slice(obs, (rows, obs.len() / rows), &Device::Cpu).unwrap();
    policy.predict_values(&t).unwrap().to_vec1().unwrap()
}

/// Largest `|a - b| / max(1, |b|)` and largest `|a - b|`.
#[derive(Default, Debug, Clone, Copy)]
pub struct MaxErr {
    pub scaled: f64,
    pub abs: f64,
}

impl MaxErr {
    pub fn add(&mut self, got: f64, want: f64) {
        let d = (got - want).abs();
        self.abs = self.abs.max(d);
        self.scaled = self.scaled.max(d / want.abs().max(1.0));
    }
    pub fn add_all(&mut self, got: &[f32], want: &[f32]) {
        assert_eq!(got.len(), want.len());
        for (&g, &w) in got.iter().zip(want) {
            self.add(f64::from(g), f64::from(w));
        }
    }
    pub fn merge(&mut self, other: MaxErr) {
        self.abs = self.abs.max(other.abs);
        self.scaled = self.scaled.max(other.scaled);
    }
}

/// Largest differences between `policy`'s parameters and the recorded ones.
pub fn param_error(policy: &MlpPolicy, recorded: &Value) -> MaxErr {
    use rl_policy::StochasticPolicy;
    let want = named_tensors(recorded);
    let mut err = MaxErr::default();
    for (n, var) in policy.trainable_vars() {
        let got: Vec<f32> = var.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
        let w: Vec<f32> = want[&n].flatten_all().unwrap().to_vec1().unwrap();
        err.add_all(&got, &w);
    }
    err
}

/// One iteration's rollout redone with our parameters, in `[n_steps, n_envs]` layout.
pub struct Rollout {
    pub observations: Vec<f32>,
    /// The stored actions (indices for discrete spaces, unclipped values for Box).
    pub actions: Vec<f32>,
    pub values: Vec<f32>,
    pub rewards: Vec<f32>,
    pub advantages: Vec<f32>,
    pub returns: Vec<f32>,
    pub truncations: usize,
    /// gSDE recordings: exploration-matrix draws checked, and the largest differences of the
    /// actions sampled with SB3's recorded matrices from the recorded actions.
    pub noise_draws: usize,
    pub e_sde_actions: MaxErr,
    /// Errors of the rollout-time log-probabilities of the stored actions.
    pub e_log_probs: MaxErr,
    /// Errors against SB3's values, bootstrapped rewards, advantages and returns.
    pub e_values: MaxErr,
    pub e_rewards: MaxErr,
    pub e_advantages: MaxErr,
    pub e_returns: MaxErr,
}

/// Redoes the rollout half of iteration `it` of a recording (`header` its header) with
/// `policy`: rollout-time values (batches of `n_envs`, as SB3), the timeout bootstrap from our
/// `V(terminal_obs)` (batch 1), the last values and GAE.
pub fn redo_rollout<P: ActorCritic>(policy: &P, header: &Value, it: &Value) -> Rollout {
    let n_envs = header["n_envs"].as_u64().unwrap() as usize;
    let hp = &header["hyperparameters"];
    let n_steps = hp["n_steps"].as_u64().unwrap() as usize;
    let gamma = f64_of(&hp["gamma"]);
    let gae_lambda = f64_of(&hp["gae_lambda"]);
    let obs_dim = space(&header["observation_space"]).flat_dim();
    let r = &it["rollout"];
    let observations = f32s_flat(&r["observations"]);
    assert_eq!(
        observations.len(),
        n_steps * n_envs * obs_dim,
        "observations shape"
    );

    let mut values = Vec::with_capacity(n_steps * n_envs);
    for row in observations.chunks_exact(n_envs * obs_dim) {
        values.extend(values_of(policy, row, n_envs));
    }
    let mut e_values = MaxErr::default();
    e_values.add_all(&values, &f32s_flat(&r["values"]));

    // Log-probabilities of the stored actions (rollout batches of n_envs, as SB3).
    let actions = f32s_flat(&r["actions"]);
    let act_space = space(&header["action_space"]);
    let act_dim = act_space.flat_dim();
    let discrete = matches!(act_space, Space::Discrete { .. });
    let mut e_log_probs = MaxErr::default();
    let mut log_probs = Vec::with_capacity(n_steps * n_envs);
    for (t, row) in observations.chunks_exact(n_envs * obs_dim).enumerate() {
        let obs_t = Tensor::from_slice(row, (n_envs, obs_dim), &Device::Cpu).unwrap();
        let acts = &actions[t * n_envs * act_dim..(t + 1) * n_envs * act_dim];
        let act_t = if discrete {
            Tensor::from_slice(acts, n_envs, &Device::Cpu).unwrap()
        } else {
            Tensor::from_slice(acts, (n_envs, act_dim), &Device::Cpu).unwrap()
        };
        let lp = policy
            .action_dist(&obs_t)
            .unwrap()
            .log_prob(&act_t)
            .unwrap();
        log_probs.extend(lp.to_vec1::<f32>().unwrap());
    }
    e_log_probs.add_all(&log_probs, &f32s_flat(&r["log_probs"]));

    // gSDE: SB3's draw schedule, and its actions re-sampled from its recorded matrices.
    let mut noise_draws = 0;
    let mut e_sde_actions = MaxErr::default();
    if let Some(draws) = r.get("sde_noise").and_then(Value::as_array) {
        let freq = header["hyperparameters"]["sde_sample_freq"]
            .as_i64()
            .unwrap();
        let expected: Vec<usize> = (0..n_steps)
            .flat_map(|t| std::iter::repeat_n(t, sde_draws_before_step(t, freq)))
            .collect();
        let recorded: Vec<usize> = draws
            .iter()
            .map(|d| d["step"].as_u64().unwrap() as usize)
            .collect();
        assert_eq!(
            recorded, expected,
            "gSDE draw schedule (sde_sample_freq {freq})"
        );
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(0);
        for (t, row) in observations.chunks_exact(n_envs * obs_dim).enumerate() {
            let draw = draws
                .iter()
                .rev()
                .find(|d| d["step"].as_u64().unwrap() as usize <= t)
                .expect("a draw before every step");
            let (latent, act) = {
                let m = draw["exploration_mat"].as_array().unwrap();
                (m.len(), m[0].as_array().unwrap().len())
            };
            let n = draw["n"].as_u64().unwrap() as usize;
            let noise = ExplorationNoise::new(
                Tensor::from_vec(
                    f32s_flat(&draw["exploration_mat"]),
                    (latent, act),
                    &Device::Cpu,
                )
                .unwrap(),
                Tensor::from_vec(
                    f32s_flat(&draw["exploration_matrices"]),
                    (n, latent, act),
                    &Device::Cpu,
                )
                .unwrap(),
            )
            .unwrap();
            policy.set_exploration_noise(noise).unwrap();
            let obs_t = Tensor::from_slice(row, (n_envs, obs_dim), &Device::Cpu).unwrap();
            let sampled = policy
                .action_dist(&obs_t)
                .unwrap()
                .sample(&mut rng)
                .unwrap();
            let want = &actions[t * n_envs * act_dim..(t + 1) * n_envs * act_dim];
            e_sde_actions.add_all(&sampled.flatten_all().unwrap().to_vec1().unwrap(), want);
        }
        noise_draws = draws.len();
    }

    let mut rewards = f32s_flat(&r["rewards_raw"]);
    let mut truncations = 0;
    for end in r["episode_ends"].as_array().unwrap() {
        if end["kind"].as_str() == Some("truncated") {
            let (step, env) = (
                end["step"].as_u64().unwrap() as usize,
                end["env"].as_u64().unwrap() as usize,
            );
            let term = f32s(&end["terminal_observation"]);
            let v = values_of(policy, &term, 1)[0];
            let i = step * n_envs + env;
            rewards[i] = bootstrap_truncated(rewards[i], gamma, v);
            truncations += 1;
        }
    }
    let mut e_rewards = MaxErr::default();
    e_rewards.add_all(&rewards, &f32s_flat(&r["rewards"]));

    let last_values = values_of(policy, &f32s_flat(&r["last_obs"]), n_envs);
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
    let mut advantages = vec![0.0f32; rewards.len()];
    let mut returns = vec![0.0f32; rewards.len()];
    compute_gae(&input, gamma, gae_lambda, &mut advantages, &mut returns).unwrap();
    let mut e_advantages = MaxErr::default();
    e_advantages.add_all(&advantages, &f32s_flat(&r["advantages"]));
    let mut e_returns = MaxErr::default();
    e_returns.add_all(&returns, &f32s_flat(&r["returns"]));
    Rollout {
        observations,
        actions: f32s_flat(&r["actions"]),
        values,
        rewards,
        advantages,
        returns,
        truncations,
        noise_draws,
        e_sde_actions,
        e_log_probs,
        e_values,
        e_rewards,
        e_advantages,
        e_returns,
    }
}
