//! SB3 SAC / TD3 / DDPG import parity: every `sb3_offpolicy_zip_outputs/*` file in the golden
//! `sb3` category names a zip saved by Stable-Baselines3 and what SB3 computed from it on fixed
//! observations; the imported networks must reproduce it within 1e-5 · max(1, |SB3's value|).
//! Also: the wrong loader, damaged weights and unsupported settings are named errors.

use candle_core::{Device, Tensor};
use rand::SeedableRng;
use rl_policy::{
    Critic, DeterministicActor, DeterministicPolicy, ExplorationNoise, GaussianActor, Policy,
    PolicyError, SacPolicy, Sb3Sac, Sb3Td3, SquashedDiagGaussian,
};
use serde_json::Value;
use std::path::PathBuf;

const TOL: f64 = 1e-5;

fn files() -> Vec<(PathBuf, Value)> {
    rl_golden::files("sb3", "SB3 SAC/TD3/DDPG model-outputs", |v| {
        v["header"]["format"]
            .as_str()
            .is_some_and(|f| f.starts_with("sb3_offpolicy_zip_outputs/"))
    })
}

fn floats(v: &Value) -> Vec<f32> {
    fn walk(v: &Value, out: &mut Vec<f32>) {
        match v {
            Value::Array(items) => items.iter().for_each(|x| walk(x, out)),
            x => out.push(
                x.as_f64()
                    .unwrap_or_else(|| panic!("number expected, got {x}")) as f32,
            ),
        }
    }
    let mut out = Vec::new();
    walk(v, &mut out);
    out
}

fn rows(v: &Value) -> Tensor {
    let n = v.as_array().expect("rows").len();
    let flat = floats(v);
    let d = flat.len() / n;
    Tensor::from_vec(flat, (n, d), &Device::Cpu).unwrap()
}

fn host(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

/// Checks `ours` against SB3's values, returning the worst scaled error.
fn check(file: &str, key: &str, ours: &[f32], theirs: &[f32]) -> f64 {
    assert_eq!(ours.len(), theirs.len(), "{file} {key}: length");
    let mut worst = 0f64;
    for (i, (&o, &t)) in ours.iter().zip(theirs).enumerate() {
        let scaled = f64::from((o - t).abs()) / f64::from(t.abs()).max(1.0);
        assert!(
            scaled <= TOL,
            "{file} {key}[{i}]: ours {o}, SB3 {t} (scaled error {scaled:e})"
        );
        worst = worst.max(scaled);
    }
    worst
}

fn critics<C: Critic>(file: &str, c: &C, t: &C, obs: &Tensor, out: &Value, worst: &mut f64) {
    let acts = rows(&out["q_actions"]);
    let q: Vec<f32> = c
        .q_values(obs, &acts)
        .unwrap()
        .iter()
        .flat_map(host)
        .collect();
    *worst = worst.max(check(file, "critic_q", &q, &floats(&out["critic_q"])));
    let qt: Vec<f32> = t
        .q_values(obs, &acts)
        .unwrap()
        .iter()
        .flat_map(host)
        .collect();
    *worst = worst.max(check(
        file,
        "critic_target_q",
        &qt,
        &floats(&out["critic_target_q"]),
    ));
    let q1 = host(&c.q1(obs, &acts).unwrap());
    *worst = worst.max(check(
        file,
        "critic_q1_forward",
        &q1,
        &floats(&out["critic_q1_forward"]),
    ));
}

#[test]
fn sb3_sac_td3_ddpg_models_import_and_match() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    for (path, data) in files() {
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        let h = &data["header"];
        let zip = path.with_file_name(h["model_file"].as_str().expect("model_file"));
        let obs = rows(&data["observations"]);
        let out = &data["outputs"];
        let mut worst = 0f64;
        let n = obs.dim(0).unwrap();
        match h["algo"].as_str().unwrap() {
            "SAC" if h["use_sde"].as_bool() == Some(true) => {
                let m = Sb3Sac::from_zip(&zip, &Device::Cpu).unwrap();
                let sde = m.actor.config().sde.expect("imported with gSDE");
                assert_eq!(sde.use_expln, h["sde"]["use_expln"].as_bool().unwrap());
                assert_eq!(Some(sde.clip_mean), h["sde"]["clip_mean"].as_f64());
                assert_eq!(Some(sde.log_std_init), h["sde"]["log_std_init"].as_f64());
                assert!(
                    m.actor.mean_log_std(&obs).is_err(),
                    "{file}: no per-state log_std"
                );
                let dist = m.actor.sde_dist(&obs).unwrap();
                let mut cmp = |key: &str, ours: &Tensor| {
                    worst = worst.max(check(&file, key, &host(ours), &floats(&out[key])));
                };
                cmp("actor_mean", dist.mean());
                cmp("actor_latent_sde", dist.latent_sde());
                cmp("actor_std_matrix", &m.actor.sde_std().unwrap());
                cmp("actor_deterministic_scaled_action", &dist.mode().unwrap());
                // SB3's matrices for N rows: row i samples with its own; one row with the
                // single matrix. Our matrices from SB3's draws and our std.
                let std = m.actor.sde_std().unwrap();
                let (single, per_env) = (
                    floats(&out["sample_eps_single"]),
                    floats(&out["sample_eps_per_env"]),
                );
                let noise = ExplorationNoise::from_eps(&std, &single, &per_env).unwrap();
                cmp("exploration_mat", noise.single());
                cmp("exploration_matrices", noise.per_env());
                let actions = dist.sample(&noise).unwrap();
                cmp("sample_actions", &actions);
                cmp("sample_log_prob", &dist.log_prob(&actions).unwrap());
                cmp(
                    "log_prob_of_q_actions",
                    &dist.log_prob(&rows(&out["q_actions"])).unwrap(),
                );
                critics(&file, &m.critic, &m.critic_target, &obs, out, &mut worst);
                let mut policy = SacPolicy::new(m.actor, &m.action_space).unwrap();
                let det = policy.act(&obs, true, &mut rng).unwrap();
                worst = worst.max(check(
                    &file,
                    "deterministic_action",
                    &host(&det),
                    &floats(&out["deterministic_action"]),
                ));
                policy.set_exploration_noise(noise).unwrap();
                let row0 = policy
                    .scaled_actions(&obs.narrow(0, 0, 1).unwrap(), false, &mut rng)
                    .unwrap();
                worst = worst.max(check(
                    &file,
                    "sample_action_row0_single_matrix",
                    &host(&row0),
                    &floats(&out["sample_action_row0_single_matrix"]),
                ));
            }
            "SAC" => {
                let m = Sb3Sac::from_zip(&zip, &Device::Cpu).unwrap();
                assert!(
                    Sb3Td3::from_zip(&zip, &Device::Cpu).is_err(),
                    "{file}: TD3 loader"
                );
                let (mean, log_std) = m.actor.mean_log_std(&obs).unwrap();
                worst = worst.max(check(
                    &file,
                    "actor_mean",
                    &host(&mean),
                    &floats(&out["actor_mean"]),
                ));
                worst = worst.max(check(
                    &file,
                    "actor_log_std",
                    &host(&log_std),
                    &floats(&out["actor_log_std"]),
                ));
                let dist = SquashedDiagGaussian::new(mean, log_std).unwrap();
                worst = worst.max(check(
                    &file,
                    "actor_deterministic_scaled_action",
                    &host(&dist.mode().unwrap()),
                    &floats(&out["actor_deterministic_scaled_action"]),
                ));
                let (a, lp) = dist.rsample_with_noise(&rows(&out["sample_eps"])).unwrap();
                worst = worst.max(check(
                    &file,
                    "sample_actions",
                    &host(&a),
                    &floats(&out["sample_actions"]),
                ));
                worst = worst.max(check(
                    &file,
                    "sample_log_prob",
                    &host(&lp),
                    &floats(&out["sample_log_prob"]),
                ));
                let lq = dist.log_prob_of_actions(&rows(&out["q_actions"])).unwrap();
                worst = worst.max(check(
                    &file,
                    "log_prob_of_q_actions",
                    &host(&lq),
                    &floats(&out["log_prob_of_q_actions"]),
                ));
                critics(&file, &m.critic, &m.critic_target, &obs, out, &mut worst);
                let policy = SacPolicy::new(m.actor, &m.action_space).unwrap();
                let det = policy.act(&obs, true, &mut rng).unwrap();
                worst = worst.max(check(
                    &file,
                    "deterministic_action",
                    &host(&det),
                    &floats(&out["deterministic_action"]),
                ));
            }
            "TD3" | "DDPG" => {
                let m = Sb3Td3::from_zip(&zip, &Device::Cpu).unwrap();
                assert!(
                    Sb3Sac::from_zip(&zip, &Device::Cpu).is_err(),
                    "{file}: SAC loader"
                );
                let actor_out = host(&m.actor.actions(&obs).unwrap());
                worst = worst.max(check(
                    &file,
                    "actor_output",
                    &actor_out,
                    &floats(&out["actor_output"]),
                ));
                let target_out = host(&m.actor_target.actions(&obs).unwrap());
                worst = worst.max(check(
                    &file,
                    "actor_target_output",
                    &target_out,
                    &floats(&out["actor_target_output"]),
                ));
                critics(&file, &m.critic, &m.critic_target, &obs, out, &mut worst);
                let policy = DeterministicPolicy::new(m.actor, &m.action_space).unwrap();
                let det = policy.act(&obs, true, &mut rng).unwrap();
                worst = worst.max(check(
                    &file,
                    "deterministic_action",
                    &host(&det),
                    &floats(&out["deterministic_action"]),
                ));
            }
            other => panic!("{file}: unknown algo {other}"),
        }
        println!("{file}: {n} observations, every output within {worst:.1e} (scaled)");
    }
}

#[test]
fn damaged_and_unsupported_models_are_named_errors() {
    let (path, data) = files()
        .into_iter()
        .find(|(_, d)| d["header"]["algo"] == "SAC")
        .expect("a SAC golden");
    let zip = path.with_file_name(data["header"]["model_file"].as_str().unwrap());
    let bytes = std::fs::read(&zip).unwrap();
    // Truncated and garbage files.
    for cut in [0, 10, bytes.len() / 2, bytes.len() - 1] {
        assert!(Sb3Sac::from_zip_bytes(&bytes[..cut], &Device::Cpu).is_err());
    }
    assert!(Sb3Td3::from_zip_bytes(b"not a zip", &Device::Cpu).is_err());
    // An A2C zip is not a SAC model.
    let a2c = path.with_file_name("a2c_cartpole.zip");
    if a2c.exists() {
        let err = Sb3Sac::from_zip(&a2c, &Device::Cpu).unwrap_err();
        assert!(matches!(err, PolicyError::Unsupported(_)), "{err}");
        assert!(err.to_string().contains("ActorCriticPolicy"), "{err}");
    }
}
