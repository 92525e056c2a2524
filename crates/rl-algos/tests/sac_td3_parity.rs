//! Parity with Stable-Baselines3's SAC, TD3 and DDPG on recorded runs (golden files of kinds
//! `sb3_sac_update_golden/*`, `sb3_td3_update_golden/*` and `sb3_ddpg_update_golden/*`).
//!
//! Each file's networks start from the recorded initial parameters; every recorded gradient
//! step is then replayed through this crate's trainer on SB3's sampled batch, with SB3's noise
//! fed in (SAC: the standard-normal draws of both reparameterized samples, or with gSDE those of
//! the step's exploration matrix; TD3/DDPG: the target policy noise before clipping), at the learning rate of the recorded `train()` call's
//! progress. Compared within 1e-5 · max(1, |SB3's value|): α, α's loss, the squashed
//! log-probabilities, the TD targets, every critic head's `Q(s, a)`, the critic and actor
//! losses, whether the actor and the targets were updated, and every parameter of every network
//! after every step; Adam's state of every optimizer at the end. Parameters chain from this
//! crate's own results, never reset to the recording.
//!
//! One deliberate difference: when a collection round overshoots `total_timesteps`, SB3's
//! `progress_remaining` goes below 0 and a linear learning rate turns negative (gradient
//! ascent); this crate clamps the progress to [0, 1]. A file's gradient steps from the first
//! `train()` call with negative progress on are therefore not compared (the test says how many).

mod sb3_golden;

use candle_core::{Device, Tensor, Var};
use rl_algos::critic::ContinuousBatch;
use rl_algos::noise::add_clipped;
use rl_algos::off_policy::OffPolicyTrainer;
use rl_algos::optim::{Optimizer, Schedule};
use rl_algos::sac::{EntCoef, EntCoefState, SacConfig, SacNoise, SacStepNoise, SacTrainer};
use rl_algos::td3::{Td3Config, Td3Trainer};
use rl_env::Space;
use rl_golden::{f32s, f32s_flat, f64_of, name};
use rl_policy::continuous::{scale_action, unscale_action};
use rl_policy::{
    Activation, ContinuousCritic, Critic, DeterministicActor, GaussianActor, MlpConfig, SacActor,
    SacSdeConfig, Td3Actor,
};
use sb3_golden::{space, MaxErr};
use serde_json::Value;
use std::collections::BTreeMap;

const TOL: f64 = 1e-5;

fn is_kind(v: &Value, kinds: &[&str]) -> bool {
    v["header"]["format"]
        .as_str()
        .is_some_and(|f| kinds.iter().any(|k| f.starts_with(k)))
}

#[test]
fn sac_runs_match_sb3() {
    let files = rl_golden::files("sb3", "SB3 SAC update", |v| {
        is_kind(v, &["sb3_sac_update_golden/"])
    });
    for (path, data) in &files {
        check_sac(&name(path), data);
    }
}

#[test]
fn td3_and_ddpg_runs_match_sb3() {
    let files = rl_golden::files("sb3", "SB3 TD3/DDPG update", |v| {
        is_kind(v, &["sb3_td3_update_golden/", "sb3_ddpg_update_golden/"])
    });
    for (path, data) in &files {
        check_td3(&name(path), data);
    }
}

/// SB3's `_sample_action` for Box spaces, step by step, bit for bit: the policy's output
/// unscaled onto the bounds, scaled back, the recorded action noise added and clipped (the
/// replay buffer's action), and unscaled again (the environment's action); warm-up steps
/// start from the recorded uniform sample.
#[test]
fn action_pipeline_matches_sb3() {
    let files = rl_golden::files("sb3", "SB3 SAC/TD3/DDPG update", |v| {
        is_kind(
            v,
            &[
                "sb3_sac_update_golden/",
                "sb3_td3_update_golden/",
                "sb3_ddpg_update_golden/",
            ],
        )
    });
    for (path, data) in &files {
        let (_, act_space) = spaces(&data["header"]);
        let Space::Box(b) = &act_space else {
            panic!("Box actions expected")
        };
        let (low, high) = (b.low(), b.high());
        let (mut noisy, mut n) = (0, 0);
        for step in data["steps"].as_array().expect("steps") {
            let mut unscaled = f32s_flat(&step["unscaled_action"]);
            if step["action_source"].as_str() == Some("policy") {
                let mut out = f32s_flat(&step["policy"]["actor_output"]);
                unscale_action(low, high, &mut out);
                assert_eq!(
                    bits(&out),
                    bits(&unscaled),
                    "{}: unscaled action",
                    name(path)
                );
                unscaled = out;
            }
            let mut buffer = unscaled;
            scale_action(low, high, &mut buffer);
            if !step["action_noise"].is_null() {
                add_clipped(&mut buffer, &f32s_flat(&step["action_noise"]));
                noisy += 1;
            }
            assert_eq!(
                bits(&buffer),
                bits(&f32s_flat(&step["buffer_action"])),
                "{}: buffer action at step {}",
                name(path),
                step["index"]
            );
            let mut env = buffer;
            unscale_action(low, high, &mut env);
            assert_eq!(
                bits(&env),
                bits(&f32s_flat(&step["env_action"])),
                "{}: env action at step {}",
                name(path),
                step["index"]
            );
            n += 1;
        }
        println!(
            "{}: {n} env steps' actions bit-exact ({noisy} with action noise)",
            name(path)
        );
    }
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
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

fn spaces(h: &Value) -> (Space, Space) {
    (space(&h["observation_space"]), space(&h["action_space"]))
}

fn mlp(h: &Value, key: &str) -> MlpConfig {
    let kw = &h["policy_kwargs_effective"];
    let arch = kw[key]
        .as_array()
        .or_else(|| kw["net_arch"].as_array())
        .unwrap_or_else(|| panic!("no {key} / net_arch in policy_kwargs_effective"));
    let activation = match kw["activation_fn"].as_str() {
        Some("nn.ReLU") => Activation::ReLU,
        Some("nn.Tanh") => Activation::Tanh,
        other => panic!("unsupported activation {other:?}"),
    };
    let sde = (key == "actor_net_arch" && kw["use_sde"].as_bool() == Some(true)).then(|| {
        assert_eq!(kw["full_std"].as_bool(), Some(true), "full_std");
        assert_eq!(kw["learn_features"].as_bool(), Some(true), "learn_features");
        SacSdeConfig {
            log_std_init: f64_of(&kw["log_std_init"]),
            use_expln: kw["use_expln"].as_bool().expect("use_expln"),
            clip_mean: f64_of(&kw["clip_mean"]),
        }
    });
    MlpConfig {
        net_arch: arch.iter().map(|d| d.as_u64().unwrap() as usize).collect(),
        activation,
        sde,
    }
}

fn n_critics(h: &Value) -> usize {
    h["policy_kwargs_effective"]["n_critics"]
        .as_u64()
        .or_else(|| h["hyperparameters_effective"]["n_critics"].as_u64())
        .expect("n_critics") as usize
}

/// Sets `vars` from the recorded `name -> {shape, values}` map (every name present).
fn set_params(vars: &[(String, Var)], recorded: &Value, what: &str) {
    for (n, v) in vars {
        let p = &recorded[n.as_str()];
        assert!(!p.is_null(), "{what}: no recorded parameter {n}");
        let t = Tensor::from_vec(f32s(&p["values"]), v.dims(), &Device::Cpu).unwrap();
        v.set(&t).unwrap();
    }
}

fn param_err(vars: &[(String, Var)], recorded: &Value, what: &str) -> MaxErr {
    let mut err = MaxErr::default();
    let names: Vec<&String> = recorded
        .as_object()
        .unwrap_or_else(|| panic!("{what}: parameters"))
        .keys()
        .collect();
    assert_eq!(names.len(), vars.len(), "{what}: parameter count");
    for (n, v) in vars {
        let got: Vec<f32> = v.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
        err.add_all(&got, &f32s(&recorded[n.as_str()]["values"]));
    }
    err
}

/// Adam's recorded state (`step`, `exp_avg`, `exp_avg_sq` per parameter) against ours.
fn adam_err(opt: &dyn Optimizer, recorded: &Value, what: &str) -> MaxErr {
    let state = opt.state().unwrap();
    assert_eq!(
        state.step as f64,
        f64_of(&recorded["step"]),
        "{what}: Adam step"
    );
    let mut err = MaxErr::default();
    for (slot, var, values) in &state.buffers {
        let want = f32s(&recorded[slot.as_str()][var.as_str()]["values"]);
        let got: Vec<f32> = values.iter().map(|&x| x as f32).collect();
        err.add_all(&got, &want);
    }
    err
}

fn tensor2(v: &Value) -> Tensor {
    let rows = v.as_array().expect("rows");
    let flat = f32s_flat(v);
    Tensor::from_vec(
        flat.clone(),
        (rows.len(), flat.len() / rows.len()),
        &Device::Cpu,
    )
    .unwrap()
}

/// A recorded gradient step's batch (`ReplayBufferSamples`: no n-step discounts).
struct RecordedBatch {
    observations: Tensor,
    actions: Tensor,
    next_observations: Tensor,
    rewards: Vec<f32>,
    dones: Vec<f32>,
}

impl RecordedBatch {
    fn new(b: &Value) -> Self {
        RecordedBatch {
            observations: tensor2(&b["observations"]),
            actions: tensor2(&b["actions"]),
            next_observations: tensor2(&b["next_observations"]),
            rewards: f32s_flat(&b["rewards"]),
            dones: f32s_flat(&b["dones"]),
        }
    }

    fn batch(&self) -> ContinuousBatch<'_> {
        ContinuousBatch {
            observations: &self.observations,
            actions: &self.actions,
            next_observations: &self.next_observations,
            rewards: &self.rewards,
            dones: &self.dones,
            discounts: &[],
        }
    }
}

/// The per-quantity worst errors of one file, printed and checked at the end.
#[derive(Default)]
struct Report(BTreeMap<&'static str, MaxErr>);

impl Report {
    fn add(&mut self, key: &'static str, got: f64, want: f64) {
        self.0.entry(key).or_default().add(got, want);
    }
    fn add_all(&mut self, key: &'static str, got: &[f32], want: &[f32]) {
        self.0.entry(key).or_default().add_all(got, want);
    }
    fn merge(&mut self, key: &'static str, e: MaxErr) {
        self.0.entry(key).or_default().merge(e);
    }
    fn finish(&self, file: &str, compared: usize, steps: usize) {
        assert!(compared > 0, "{file}: no gradient step compared");
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(k, e)| format!("{k} {:.1e}", e.scaled))
            .collect();
        let skipped = if compared < steps {
            format!(
                " ({} after SB3's progress went negative not compared; Adam's final state \
                 neither)",
                steps - compared
            )
        } else {
            String::new()
        };
        println!(
            "{file}: {compared} of {steps} gradient steps compared{skipped}; max scaled \
             errors: {}",
            parts.join(", ")
        );
        for (k, e) in &self.0 {
            assert!(e.scaled <= TOL, "{file}: {k} differs by {e:?}");
        }
    }
}

fn sac_config(h: &Value) -> SacConfig {
    let hp = &h["hyperparameters_effective"];
    let ent = hp["ent_coef"].clone();
    let ent_coef = match ent.as_str() {
        Some("auto") => EntCoef::Auto(1.0),
        Some(s) if s.starts_with("auto_") => EntCoef::Auto(s[5..].parse().unwrap()),
        _ => EntCoef::Fixed(f64_of(&ent)),
    };
    SacConfig {
        learning_rate: schedule(&hp["learning_rate"]),
        batch_size: hp["batch_size"].as_u64().unwrap() as usize,
        tau: f64_of(&hp["tau"]),
        gamma: f64_of(&hp["gamma"]),
        ent_coef,
        target_entropy: hp["target_entropy"].as_f64(),
        target_update_interval: hp["target_update_interval"].as_u64().unwrap(),
        adam_eps: f64_of(&h["optimizers"]["actor"]["eps"]),
        use_sde: hp["use_sde"].as_bool().expect("use_sde"),
        sde_sample_freq: hp["sde_sample_freq"].as_i64().unwrap_or(-1),
        use_sde_at_warmup: hp["use_sde_at_warmup"].as_bool().unwrap_or(false),
        seed: Some(0),
        ..SacConfig::default()
    }
}

fn check_sac(file: &str, data: &Value) {
    let h = &data["header"];
    let (obs_space, act_space) = spaces(h);
    let dev = Device::Cpu;
    let actor = SacActor::new(&obs_space, &act_space, mlp(h, "actor_net_arch"), 0, &dev).unwrap();
    let critic = ContinuousCritic::new(
        &obs_space,
        &act_space,
        mlp(h, "critic_net_arch"),
        n_critics(h),
        0,
        &dev,
    )
    .unwrap();
    let init = &data["initial_params"];
    set_params(&actor.trainable_vars(), &init["actor"], "actor");
    set_params(&critic.trainable_vars(), &init["critic"], "critic");
    let config = sac_config(h);
    let mut t = SacTrainer::new(config.clone(), (actor, critic), &obs_space, &act_space).unwrap();
    set_params(
        &t.critic_target().trainable_vars(),
        &init["critic_target"],
        "critic_target",
    );
    let learned = matches!(t.ent_coef(), EntCoefState::Learned { .. });
    if let EntCoefState::Learned { log_ent_coef, .. } = t.ent_coef() {
        let want = f32s(&init["log_ent_coef"]);
        let got: Vec<f32> = log_ent_coef.as_tensor().to_vec1().unwrap();
        assert_eq!(got, want, "{file}: initial log_ent_coef");
    }
    let calls = data["train_calls"].as_array().expect("train_calls");
    let steps = data["gradient_steps"].as_array().expect("gradient_steps");
    assert!(!steps.is_empty(), "{file}: no gradient steps");
    let mut r = Report::default();
    let mut compared = 0;
    let mut sde_steps = 0;
    for g in steps {
        let call = &calls[g["train_call"].as_u64().unwrap() as usize];
        let progress = f64_of(&call["progress_remaining"]);
        if progress < 0.0 {
            break;
        }
        compared += 1;
        let lr = t.update_learning_rate(progress);
        r.add("learning_rate", lr, f64_of(&g["learning_rate"]));
        let recorded = RecordedBatch::new(&g["batch"]);
        let batch = recorded.batch();
        let s = if config.use_sde {
            // The step's exploration matrix: SB3's draws times our std.
            let sde = &g["sde"];
            let eps = tensor2(&sde["eps_single"]);
            let std = t.actor().sde_std().unwrap();
            let matrix: Vec<f32> = eps
                .mul(&std)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            r.add_all(
                "exploration_mat",
                &matrix,
                &f32s_flat(&sde["exploration_mat"]),
            );
            sde_steps += 1;
            t.gradient_step(&batch, SacStepNoise::Sde(&eps)).unwrap()
        } else {
            let eps_pi = tensor2(&g["pi"]["eps"]);
            let eps_next = tensor2(&g["next_pi"]["eps"]);
            t.gradient_step(
                &batch,
                SacNoise {
                    actions: &eps_pi,
                    next_actions: &eps_next,
                },
            )
            .unwrap()
        };
        if g["target_update"].as_bool().unwrap() {
            t.update_target().unwrap();
        }
        r.add("ent_coef", s.ent_coef, f64_of(&g["ent_coef"]));
        match (s.ent_coef_loss, g["ent_coef_loss"].as_f64()) {
            (Some(ours), Some(theirs)) => r.add("ent_coef_loss", ours, theirs),
            (None, None) => {}
            other => panic!("{file}: ent_coef_loss presence differs: {other:?}"),
        }
        r.add_all("log_prob", &s.log_prob, &f32s(&g["pi"]["log_prob"]));
        r.add_all("target_q", &s.target_q, &f32s_flat(&g["target_q_values"]));
        for (i, q) in s.current_q.iter().enumerate() {
            r.add_all("current_q", q, &f32s(&g["current_q_values"][i]));
        }
        r.add("critic_loss", s.critic_loss, f64_of(&g["critic_loss"]));
        r.add("actor_loss", s.actor_loss, f64_of(&g["actor_loss"]));
        let after = &g["params_after"];
        r.merge(
            "actor",
            param_err(&t.actor().trainable_vars(), &after["actor"], "actor"),
        );
        r.merge(
            "critic",
            param_err(&t.critic().trainable_vars(), &after["critic"], "critic"),
        );
        r.merge(
            "critic_target",
            param_err(
                &t.critic_target().trainable_vars(),
                &after["critic_target"],
                "critic_target",
            ),
        );
        if learned {
            let EntCoefState::Learned { log_ent_coef, .. } = t.ent_coef() else {
                unreachable!()
            };
            let got: Vec<f32> = log_ent_coef.as_tensor().to_vec1().unwrap();
            r.add_all("log_ent_coef", &got, &f32s(&after["log_ent_coef"]));
        }
    }
    if compared == steps.len() {
        let fin = &data["final"]["optimizer_state"];
        r.merge("adam", adam_err(t.optimizer(), &fin["actor"], "actor"));
        r.merge(
            "adam",
            adam_err(t.critic_optimizer(), &fin["critic"], "critic"),
        );
        if let EntCoefState::Learned { optimizer, .. } = t.ent_coef() {
            r.merge("adam", adam_err(optimizer, &fin["ent_coef"], "ent_coef"));
        }
        assert_eq!(
            t.n_updates(),
            data["final"]["n_updates"].as_u64().unwrap(),
            "{file}: n_updates"
        );
    }
    if config.use_sde {
        assert_eq!(sde_steps, compared, "{file}: gSDE draws for every step");
        println!("{file}: gSDE ({sde_steps} exploration matrices fed)");
    }
    r.finish(file, compared, steps.len());
}

fn td3_config(h: &Value) -> Td3Config {
    let hp = &h["hyperparameters_effective"];
    Td3Config {
        learning_rate: schedule(&hp["learning_rate"]),
        batch_size: hp["batch_size"].as_u64().unwrap() as usize,
        tau: f64_of(&hp["tau"]),
        gamma: f64_of(&hp["gamma"]),
        policy_delay: hp["policy_delay"].as_u64().unwrap(),
        target_policy_noise: f64_of(&hp["target_policy_noise"]),
        target_noise_clip: f64_of(&hp["target_noise_clip"]),
        adam_eps: f64_of(&h["optimizers"]["actor"]["eps"]),
        seed: Some(0),
        ..Td3Config::default()
    }
}

fn check_td3(file: &str, data: &Value) {
    let h = &data["header"];
    let (obs_space, act_space) = spaces(h);
    let dev = Device::Cpu;
    let actor = Td3Actor::new(&obs_space, &act_space, mlp(h, "actor_net_arch"), 0, &dev).unwrap();
    let critic = ContinuousCritic::new(
        &obs_space,
        &act_space,
        mlp(h, "critic_net_arch"),
        n_critics(h),
        0,
        &dev,
    )
    .unwrap();
    let init = &data["initial_params"];
    set_params(&actor.trainable_vars(), &init["actor"], "actor");
    set_params(&critic.trainable_vars(), &init["critic"], "critic");
    let mut t = Td3Trainer::new(td3_config(h), (actor, critic), &obs_space, &act_space).unwrap();
    set_params(
        &t.critic_target().trainable_vars(),
        &init["critic_target"],
        "critic_target",
    );
    set_params(
        &t.actor_target().trainable_vars(),
        &init["actor_target"],
        "actor_target",
    );
    let calls = data["train_calls"].as_array().expect("train_calls");
    let steps = data["gradient_steps"].as_array().expect("gradient_steps");
    assert!(!steps.is_empty(), "{file}: no gradient steps");
    let mut r = Report::default();
    let mut compared = 0;
    for g in steps {
        let call = &calls[g["train_call"].as_u64().unwrap() as usize];
        let progress = f64_of(&call["progress_remaining"]);
        if progress < 0.0 {
            break;
        }
        compared += 1;
        let lr = t.update_learning_rate(progress);
        r.add("learning_rate", lr, f64_of(&g["learning_rate"]));
        let recorded = RecordedBatch::new(&g["batch"]);
        let batch = recorded.batch();
        let noise = f32s_flat(&g["target_noise_raw"]);
        let (c, actor_loss) = t.gradient_step(&batch, &noise).unwrap();
        assert_eq!(
            t.n_updates(),
            g["n_updates"].as_u64().unwrap(),
            "{file}: update counter"
        );
        assert_eq!(
            actor_loss.is_some(),
            g["actor_update"].as_bool().unwrap(),
            "{file}: actor update at step {}",
            g["index"]
        );
        r.add_all("target_q", &c.target_q, &f32s_flat(&g["target_q_values"]));
        for (i, q) in c.current_q.iter().enumerate() {
            r.add_all("current_q", q, &f32s(&g["current_q_values"][i]));
        }
        r.add("critic_loss", c.critic_loss, f64_of(&g["critic_loss"]));
        if let Some(l) = actor_loss {
            r.add("actor_loss", l, f64_of(&g["actor_loss"]));
        }
        let after = &g["params_after"];
        r.merge(
            "actor",
            param_err(&t.actor().trainable_vars(), &after["actor"], "actor"),
        );
        r.merge(
            "actor_target",
            param_err(
                &t.actor_target().trainable_vars(),
                &after["actor_target"],
                "actor_target",
            ),
        );
        r.merge(
            "critic",
            param_err(&t.critic().trainable_vars(), &after["critic"], "critic"),
        );
        r.merge(
            "critic_target",
            param_err(
                &t.critic_target().trainable_vars(),
                &after["critic_target"],
                "critic_target",
            ),
        );
    }
    if compared == steps.len() {
        let fin = &data["final"]["optimizer_state"];
        r.merge("adam", adam_err(t.optimizer(), &fin["actor"], "actor"));
        r.merge(
            "adam",
            adam_err(t.critic_optimizer(), &fin["critic"], "critic"),
        );
    }
    r.finish(file, compared, steps.len());
}
