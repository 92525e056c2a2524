//! Parity with Stable-Baselines3's DQN on recorded runs (golden files of kind
//! `sb3_dqn_update_golden/*`).
//!
//! Each file is replayed step by step with this crate's pieces: the environments (this
//! crate's CartPole, reset with the recorded seed and stepped with the recorded actions: every
//! observation, reward, done, truncation and final observation must match bit for bit), the
//! replay buffer (every stored row, position and full flag), the DQN trainer's per-step
//! half (SB3's `_on_step`: call counter, target updates with the recorded `tau`, progress
//! and exploration rate, bit for bit), the acting rule (warm-up, ε draws, greedy actions and
//! their Q-values) and, at every recorded `train()` call, the learning rate and every gradient
//! step on the batch gathered at SB3's recorded indices (batch contents, next and current
//! Q-values, TD targets, loss, gradient norm, parameters after the step), then Adam's state
//! and the logged values. Parameters chain from this crate's own results, never reset to the
//! recording. A full `Dqn::learn` with the file's configuration then checks the loop's
//! bookkeeping (steps, calls, rounds, gradient steps) against SB3's final counters.

mod sb3_golden;

use candle_core::{Device, Tensor};
use rl_algos::dqn::{dqn_targets, Dqn, DqnBatch, DqnConfig, DqnTrainer};
use rl_algos::off_policy::{GradientSteps, OffPolicyTrainer, TrainFreq};
use rl_algos::optim::{progress_remaining, Schedule};
use rl_algos::replay::{ReplayBuffer, ReplaySamples, ReplayTransition};
use rl_algos::Logger;
use rl_env::registry::EnvSpec;
use rl_env::{AutoresetMode, SyncVecEnv, VecAction, VecEnv};
use rl_golden::{f32s, f32s_flat, f64_of, name};
use rl_policy::{Activation, QFunction, QNetwork, QNetworkConfig};
use sb3_golden::{named_tensors, space, MaxErr};
use serde_json::Value;

const TOL: f64 = 1e-5;

#[test]
fn dqn_runs_match_sb3() {
    let files = rl_golden::files("sb3", "SB3 DQN update", |v| {
        v["header"]["format"]
            .as_str()
            .is_some_and(|f| f.starts_with("sb3_dqn_update_golden/"))
    });
    for (path, data) in &files {
        check_file(&name(path), data);
    }
}

fn usize_of(v: &Value) -> usize {
    v.as_u64()
        .unwrap_or_else(|| panic!("integer expected, got {v}")) as usize
}

/// A learning rate: a number, or `"linear: V * progress_remaining"` (rl-zoo's `lin_V`).
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

/// The file's DQN configuration, from its header.
fn config_of(h: &Value) -> DqnConfig {
    let hp = &h["hyperparameters_effective"];
    let tf = &hp["train_freq"];
    let freq = tf["frequency"].as_u64().unwrap();
    let train_freq = match tf["unit"].as_str().unwrap() {
        "step" => TrainFreq::Steps(freq),
        "episode" => TrainFreq::Episodes(freq),
        u => panic!("unknown train_freq unit {u}"),
    };
    let gradient_steps = match hp["gradient_steps"].as_i64().unwrap() {
        -1 => GradientSteps::AsCollected,
        k => GradientSteps::Fixed(u64::try_from(k).unwrap()),
    };
    assert_eq!(
        h["optimizer"]["class"].as_str(),
        Some("torch.optim.Adam"),
        "optimizer"
    );
    DqnConfig {
        learning_rate: schedule(&hp["learning_rate"]),
        buffer_size: usize_of(&hp["buffer_size"]),
        learning_starts: hp["learning_starts"].as_u64().unwrap(),
        batch_size: usize_of(&hp["batch_size"]),
        tau: f64_of(&hp["tau"]),
        gamma: f64_of(&hp["gamma"]),
        train_freq,
        gradient_steps,
        n_steps: usize_of(&hp["n_steps"]),
        target_update_interval: hp["target_update_interval"].as_u64().unwrap(),
        exploration_fraction: f64_of(&hp["exploration_fraction"]),
        exploration_initial_eps: f64_of(&hp["exploration_initial_eps"]),
        exploration_final_eps: f64_of(&hp["exploration_final_eps"]),
        max_grad_norm: f64_of(&hp["max_grad_norm"]),
        adam_eps: f64_of(&h["optimizer"]["eps"]),
        seed: Some(h["seed"].as_u64().unwrap()),
        log_interval: 0,
        ..DqnConfig::default()
    }
}

fn env_of(h: &Value) -> SyncVecEnv {
    let spec = EnvSpec {
        max_episode_steps: h["env_construction"]["max_episode_steps"].as_u64(),
        ..EnvSpec::default()
    };
    SyncVecEnv::make_with(
        h["env_id"].as_str().unwrap(),
        &spec,
        usize_of(&h["n_envs"]),
        AutoresetMode::SameStep,
    )
    .unwrap()
}

fn q_network_of(h: &Value, params: &Value) -> QNetwork {
    let kw = &h["policy_kwargs_effective"];
    assert_eq!(kw["activation_fn"].as_str(), Some("nn.ReLU"), "activation");
    let config = QNetworkConfig {
        net_arch: kw["net_arch"]
            .as_array()
            .unwrap()
            .iter()
            .map(usize_of)
            .collect(),
        activation: Activation::ReLU,
    };
    QNetwork::from_named_tensors(
        &space(&h["observation_space"]),
        &space(&h["action_space"]),
        config,
        &named_tensors(params),
        &Device::Cpu,
    )
    .unwrap()
}

fn params_error(q: &QNetwork, recorded: &Value) -> MaxErr {
    let want = named_tensors(recorded);
    let mut err = MaxErr::default();
    for (n, var) in q.trainable_vars() {
        let got: Vec<f32> = var.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
        let w: Vec<f32> = want[&n].flatten_all().unwrap().to_vec1().unwrap();
        err.add_all(&got, &w);
    }
    err
}

fn bits_equal(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

#[derive(Default)]
struct Errors {
    q_values: MaxErr,
    targets: MaxErr,
    losses: MaxErr,
    grad: MaxErr,
    params: MaxErr,
    target_params: MaxErr,
    adam: MaxErr,
    logged: MaxErr,
}

fn check_file(file: &str, data: &Value) {
    let h = &data["header"];
    let config = config_of(h);
    let n_envs = usize_of(&h["n_envs"]);
    let total = h["total_timesteps"].as_u64().unwrap();
    let obs_space = space(&h["observation_space"]);
    let act_space = space(&h["action_space"]);
    let obs_dim = obs_space.flat_dim();
    let mut env = env_of(h);
    let q = q_network_of(h, &data["initial_params"]);
    let mut trainer = DqnTrainer::new(config.clone(), q, &obs_space, &act_space).expect("trainer");
    let mut e = Errors::default();
    e.target_params.merge(params_error(
        trainer.q_net_target(),
        &data["initial_target_params"],
    ));
    let mut buffer = ReplayBuffer::new(config.buffer_size, n_envs, obs_dim, 1)
        .unwrap()
        .with_n_steps(config.n_steps, config.gamma)
        .unwrap();
    assert_eq!(
        buffer.rows(),
        usize_of(&h["hyperparameters_effective"]["replay_buffer_rows"]),
        "{file}: replay buffer rows"
    );
    let mut logger = Logger::new(false);
    let mut samples = ReplaySamples::default();
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(0);

    let steps = data["steps"].as_array().unwrap();
    let calls = data["train_calls"].as_array().unwrap();
    let grads = data["gradient_steps"].as_array().unwrap();
    let updates = data["target_updates"].as_array().unwrap();
    let mut next_call = 0;
    let mut num_timesteps = 0u64;
    let (mut greedy, mut epsilon, mut warmup, mut targets_checked) = (0, 0, 0, 0);
    env.reset(Some(h["seed"].as_u64().unwrap())).unwrap();

    for step in steps {
        let k = usize_of(&step["index"]);
        let at = |what: &str| format!("{file}: step {k}: {what}");
        // Acting.
        let obs = env.observations().to_vec();
        assert!(
            bits_equal(&obs, &f32s_flat(&step["obs"])),
            "{}",
            at("observations")
        );
        let eps = trainer.exploration_rate();
        assert_eq!(
            eps.to_bits(),
            f64_of(&step["exploration_rate"]).to_bits(),
            "{}",
            at("exploration rate")
        );
        let actions: Vec<i64> = step["actions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_i64().unwrap())
            .collect();
        let source = step["action_source"].as_str().unwrap();
        assert_eq!(
            num_timesteps < config.learning_starts,
            source == "warmup_random",
            "{}",
            at("warm-up decision")
        );
        match source {
            "warmup_random" => warmup += 1,
            "epsilon_random" | "greedy" => {
                let u = f64_of(&step["epsilon_draw"]);
                assert_eq!(u < eps, source == "epsilon_random", "{}", at("ε decision"));
                if source == "greedy" {
                    greedy += 1;
                    let obs_t = Tensor::from_slice(&obs, (n_envs, obs_dim), &Device::Cpu).unwrap();
                    let qv: Vec<f32> = trainer
                        .q_net()
                        .q_values(&obs_t)
                        .unwrap()
                        .flatten_all()
                        .unwrap()
                        .to_vec1()
                        .unwrap();
                    e.q_values
                        .add_all(&qv, &f32s_flat(&step["greedy_q_values"]));
                    let chosen: Vec<u32> = OffPolicyTrainer::policy(&trainer)
                        .predict(&obs, n_envs, true, &mut rng)
                        .unwrap()
                        .to_vec1()
                        .unwrap();
                    let want: Vec<u32> = actions.iter().map(|&a| a as u32).collect();
                    assert_eq!(chosen, want, "{}", at("greedy actions"));
                } else {
                    epsilon += 1;
                }
            }
            s => panic!("{}", at(&format!("unknown action source {s}"))),
        }

        // The environments.
        env.step(VecAction::Discrete(&actions)).unwrap();
        num_timesteps += n_envs as u64;
        assert_eq!(num_timesteps, step["num_timesteps"].as_u64().unwrap());
        let buf = env.buffers();
        let rewards: Vec<f32> = buf.rewards().iter().map(|&r| r as f32).collect();
        assert!(
            bits_equal(&rewards, &f32s(&step["rewards"])),
            "{}",
            at("rewards")
        );
        let mut next_obs = buf.observations().to_vec();
        assert!(
            bits_equal(&next_obs, &f32s_flat(&step["new_obs"])),
            "{}",
            at("new observations")
        );
        let mut dones = vec![false; n_envs];
        let mut timeouts = vec![false; n_envs];
        for i in 0..n_envs {
            dones[i] = buf.done(i);
            timeouts[i] = buf.truncated()[i] && !buf.terminated()[i];
            assert_eq!(
                dones[i],
                step["dones"][i].as_bool().unwrap(),
                "{}",
                at("dones")
            );
            assert_eq!(
                timeouts[i],
                step["truncated"][i].as_bool().unwrap(),
                "{}",
                at("truncations")
            );
            let term = &step["terminal_observation"][i];
            match buf.final_observation(i).filter(|_| dones[i]) {
                Some(f) => {
                    assert!(bits_equal(f, &f32s(term)), "{}", at("final observation"));
                    next_obs[i * obs_dim..(i + 1) * obs_dim].copy_from_slice(f);
                }
                None => assert!(term.is_null(), "{}", at("missing final observation")),
            }
        }

        // The replay buffer.
        let stored = &step["stored"];
        assert_eq!(
            buffer.pos(),
            usize_of(&stored["pos"]),
            "{}",
            at("buffer position")
        );
        assert!(
            bits_equal(&next_obs, &f32s_flat(&stored["next_obs"])),
            "{}",
            at("stored next obs")
        );
        let act_f: Vec<f32> = actions.iter().map(|&a| a as f32).collect();
        buffer
            .add(&ReplayTransition {
                observations: &obs,
                next_observations: &next_obs,
                actions: &act_f,
                rewards: &rewards,
                dones: &dones,
                timeouts: &timeouts,
            })
            .unwrap();
        assert_eq!(
            buffer.pos(),
            usize_of(&stored["pos_after"]),
            "{}",
            at("position after")
        );
        assert_eq!(
            buffer.is_full(),
            stored["full_after"].as_bool().unwrap(),
            "{}",
            at("full")
        );

        // SB3's _on_step.
        let pr = progress_remaining(num_timesteps, total);
        assert_eq!(
            pr.to_bits(),
            f64_of(&step["progress_remaining"]).to_bits(),
            "{}",
            at("progress_remaining")
        );
        trainer.on_step(pr, n_envs, &mut logger).unwrap();
        assert_eq!(
            trainer.n_calls(),
            step["n_calls"].as_u64().unwrap(),
            "{}",
            at("n_calls")
        );
        assert_eq!(
            trainer.exploration_rate().to_bits(),
            f64_of(&step["exploration_rate_after"]).to_bits(),
            "{}",
            at("exploration rate after the step")
        );
        if let Some(u) = step.get("target_update_index").and_then(Value::as_u64) {
            let update = &updates[u as usize];
            let err = params_error(trainer.q_net_target(), &update["target_params"]);
            e.target_params.merge(err);
            targets_checked += 1;
        }

        // train() calls recorded right after this step.
        while next_call < calls.len()
            && calls[next_call]["num_timesteps"].as_u64() == Some(num_timesteps)
        {
            let call = &calls[next_call];
            let pr_call = f64_of(&call["progress_remaining"]);
            assert_eq!(
                pr_call.to_bits(),
                pr.to_bits(),
                "{file}: train call {next_call} progress"
            );
            let lr = trainer.update_learning_rate(pr_call);
            e.logged.add(lr, f64_of(&call["learning_rate"]));
            let first = usize_of(&call["first_gradient_step"]);
            // As train() received it (SB3's learn() resolves -1 first).
            let count = usize_of(&call["gradient_steps"]);
            let mut losses = Vec::with_capacity(count);
            for g in &grads[first..first + count] {
                let gi = usize_of(&g["index"]);
                let inds: Vec<usize> = g["batch_inds"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(usize_of)
                    .collect();
                let envs: Vec<usize> = g["env_indices"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(usize_of)
                    .collect();
                assert_eq!(
                    buffer.upper_bound(),
                    usize_of(&g["upper_bound"]),
                    "{file}: gradient step {gi}: upper bound"
                );
                buffer.gather(&inds, &envs, &mut samples).unwrap();
                let b = &g["batch"];
                let gat = |what: &str| format!("{file}: gradient step {gi}: {what}");
                assert!(
                    bits_equal(&samples.observations, &f32s_flat(&b["observations"])),
                    "{}",
                    gat("batch observations")
                );
                assert!(
                    bits_equal(
                        &samples.next_observations,
                        &f32s_flat(&b["next_observations"])
                    ),
                    "{}",
                    gat("batch next observations")
                );
                assert!(
                    bits_equal(&samples.actions, &f32s_flat(&b["actions"])),
                    "{}",
                    gat("batch actions")
                );
                assert!(
                    bits_equal(&samples.rewards, &f32s_flat(&b["rewards"])),
                    "{}",
                    gat("batch rewards")
                );
                assert!(
                    bits_equal(&samples.dones, &f32s_flat(&b["dones"])),
                    "{}",
                    gat("batch dones")
                );
                if b["discounts"].is_null() {
                    assert!(
                        samples.discounts.is_empty(),
                        "{}",
                        gat("discounts of a one-step buffer")
                    );
                } else {
                    assert!(
                        bits_equal(&samples.discounts, &f32s_flat(&b["discounts"])),
                        "{}",
                        gat("batch discounts")
                    );
                }
                // The TD targets from our target network, then the step itself.
                let bs = samples.len();
                let o =
                    Tensor::from_slice(&samples.observations, (bs, obs_dim), &Device::Cpu).unwrap();
                let no =
                    Tensor::from_slice(&samples.next_observations, (bs, obs_dim), &Device::Cpu)
                        .unwrap();
                let batch = DqnBatch {
                    observations: &o,
                    actions: &samples.actions,
                    next_observations: &no,
                    rewards: &samples.rewards,
                    dones: &samples.dones,
                    discounts: &samples.discounts,
                };
                let (next_max, targets) =
                    dqn_targets(trainer.q_net_target(), &batch, config.gamma).unwrap();
                e.q_values.add_all(&next_max, &f32s(&g["next_q_values"]));
                e.targets.add_all(&targets, &f32s(&g["target_q_values"]));
                let current: Vec<f32> = trainer
                    .q_net()
                    .q_values(&o)
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1()
                    .unwrap();
                e.q_values
                    .add_all(&current, &f32s_flat(&g["current_q_values_all"]));
                let stats = trainer.gradient_step(&samples).unwrap();
                e.losses.add(stats.loss, f64_of(&g["loss"]));
                e.grad
                    .add(stats.grad_norm, f64_of(&g["grad_norm_before_clip"]));
                e.params
                    .merge(params_error(trainer.q_net(), &g["params_after"]));
                losses.push(stats.loss);
            }
            // What train() logs, and Adam's state after the call.
            let logged = &call["logged"];
            e.logged.add(
                losses.iter().sum::<f64>() / losses.len() as f64,
                f64_of(&logged["train/loss"]),
            );
            assert_eq!(
                trainer.n_updates(),
                logged["train/n_updates"].as_u64().unwrap(),
                "{file}: n_updates after train call {next_call}"
            );
            let state = OffPolicyTrainer::optimizer(&trainer).state().unwrap();
            let opt = &call["optimizer_state_after"];
            assert_eq!(
                state.step as f64,
                f64_of(&opt["step"]),
                "{file}: Adam step count"
            );
            for slot in ["exp_avg", "exp_avg_sq"] {
                let want = named_tensors(&opt[slot]);
                for (s, var, values) in &state.buffers {
                    if s == slot {
                        let w: Vec<f32> = want[var].flatten_all().unwrap().to_vec1().unwrap();
                        for (&g, &w) in values.iter().zip(&w) {
                            e.adam.add(g, f64::from(w));
                        }
                    }
                }
            }
            next_call += 1;
        }
    }
    assert_eq!(
        next_call,
        calls.len(),
        "{file}: every train() call was replayed"
    );
    let fin = &data["final"];
    assert_eq!(
        trainer.n_calls(),
        fin["n_calls"].as_u64().unwrap(),
        "{file}: final n_calls"
    );
    assert_eq!(
        trainer.n_updates(),
        fin["n_updates"].as_u64().unwrap(),
        "{file}: final n_updates"
    );
    e.params
        .merge(params_error(trainer.q_net(), &fin["params"]));
    e.target_params
        .merge(params_error(trainer.q_net_target(), &fin["target_params"]));
    assert_eq!(targets_checked, updates.len(), "{file}: target updates");

    println!(
        "{file}: {} steps ({warmup} warm-up, {epsilon} ε-random, {greedy} greedy), {} train \
         calls, {} gradient steps, {} target updates; max error scaled by max(1,|ref|): Q-values \
         {:.2e}, targets {:.2e}, losses {:.2e}, grad norms {:.2e}, params {:.2e}, target params \
         {:.2e}, Adam state {:.2e}, logged {:.2e}",
        steps.len(),
        calls.len(),
        grads.len(),
        updates.len(),
        e.q_values.scaled,
        e.targets.scaled,
        e.losses.scaled,
        e.grad.scaled,
        e.params.scaled,
        e.target_params.scaled,
        e.adam.scaled,
        e.logged.scaled,
    );
    for (what, err) in [
        ("Q-values", e.q_values),
        ("TD targets", e.targets),
        ("losses", e.losses),
        ("gradient norms", e.grad),
        ("parameters", e.params),
        ("target parameters", e.target_params),
        ("Adam state", e.adam),
        ("logged values", e.logged),
    ] {
        assert!(err.scaled <= TOL, "{file}: {what} differ by {err:?}");
    }

    // The loop's bookkeeping: with a step-based train_freq the number of steps, calls,
    // training rounds and gradient steps does not depend on any random draw.
    if matches!(config.train_freq, TrainFreq::Steps(_)) {
        let q = q_network_of(h, &data["initial_params"]);
        let mut model = Dqn::new(q, env_of(h), config.clone()).unwrap();
        model.learn(total, &mut []).unwrap();
        assert_eq!(
            model.num_timesteps(),
            fin["num_timesteps"].as_u64().unwrap(),
            "{file}: learn() timesteps"
        );
        assert_eq!(
            model.trainer().n_calls(),
            fin["n_calls"].as_u64().unwrap(),
            "{file}: learn() n_calls"
        );
        assert_eq!(
            model.trainer().n_updates(),
            fin["n_updates"].as_u64().unwrap(),
            "{file}: learn() n_updates"
        );
        assert_eq!(
            model.training_rounds(),
            calls.len() as u64,
            "{file}: learn() train calls"
        );
    }
}
