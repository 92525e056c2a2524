//! Parity of both vector engines with SB3's `DummyVecEnv` (same-step autoreset) and Gymnasium's
//! `SyncVectorEnv` (next-step autoreset), on the recorded `vector/` traces: observations,
//! rewards, flags and terminal observations, bit for bit.

use rl_env::{AutoresetMode, EnvSpec, SyncVecEnv, ThreadVecEnv, VecAction, VecEnv};
use rl_golden::{f32_of, f32s_flat, f64_of, name};
use serde_json::Value;

const ENGINES: [&str; 2] = ["SyncVecEnv", "ThreadVecEnv(2 workers)"];

fn is_trace(v: &Value) -> bool {
    v["header"]["format"] == "vector_autoreset_trace/1"
}

fn build(engine: &str, h: &Value) -> Result<Box<dyn VecEnv>, String> {
    let id = h["env_id"]
        .as_str()
        .ok_or("header.env_id is not a string")?;
    let n_envs = h["n_envs"]
        .as_u64()
        .ok_or("header.n_envs is not an integer")? as usize;
    let spec = EnvSpec {
        max_episode_steps: Some(
            h["max_episode_steps"]
                .as_u64()
                .ok_or("header.max_episode_steps is not an integer")?,
        ),
        ..EnvSpec::default()
    };
    let mode = match h["autoreset_mode"].as_str() {
        Some("same_step") => AutoresetMode::SameStep,
        Some("next_step") => AutoresetMode::NextStep,
        other => return Err(format!("unknown autoreset_mode {other:?}")),
    };
    let venv: Box<dyn VecEnv> = if engine == ENGINES[0] {
        Box::new(SyncVecEnv::make_with(id, &spec, n_envs, mode).map_err(|e| e.to_string())?)
    } else {
        Box::new(ThreadVecEnv::make_with(id, &spec, n_envs, 2, mode).map_err(|e| e.to_string())?)
    };
    Ok(venv)
}

fn same_bits(ours: &[f32], theirs: &[f32]) -> bool {
    ours.len() == theirs.len()
        && ours
            .iter()
            .zip(theirs)
            .all(|(a, b)| a.to_bits() == b.to_bits())
}

/// Replays one trace; returns (steps compared, mismatching (step, env) slots, first messages).
fn replay(engine: &str, trace: &Value) -> Result<(usize, usize, Vec<String>), String> {
    let h = &trace["header"];
    let mut venv = build(engine, h)?;
    let n = venv.num_envs();
    let d = venv.buffers().obs_dim();
    let f32_rewards = match h["reward_dtype"].as_str() {
        Some("float32") => true,
        Some("float64") => false,
        other => return Err(format!("unknown reward_dtype {other:?}")),
    };
    let same_step = venv.autoreset_mode() == AutoresetMode::SameStep;
    let discrete = match h["action_kind"].as_str() {
        Some("discrete") => true,
        Some("continuous") => false,
        other => return Err(format!("unknown action_kind {other:?}")),
    };
    let seed = h["seed"].as_u64().ok_or("header.seed is not an integer")?;
    venv.reset(Some(seed)).map_err(|e| e.to_string())?;

    let mut notes = Vec::new();
    let mut mismatches = 0;
    if !same_bits(venv.observations(), &f32s_flat(&h["initial_observation"])) {
        mismatches += 1;
        notes.push(format!(
            "initial observation differs: {:?}",
            venv.observations()
        ));
    }
    let steps = trace["steps"].as_array().ok_or("steps is not a list")?;
    if h["n_steps"].as_u64() != Some(steps.len() as u64) {
        return Err(format!(
            "header.n_steps is {} but there are {} steps",
            h["n_steps"],
            steps.len()
        ));
    }
    for step in steps {
        let t = &step["t"];
        if discrete {
            let a: Vec<i64> = step["action"]
                .as_array()
                .ok_or("action is not a list")?
                .iter()
                .map(|x| x.as_i64().ok_or("discrete action is not an integer"))
                .collect::<Result<_, _>>()?;
            venv.step(VecAction::Discrete(&a))
        } else {
            venv.step(VecAction::Continuous(&f32s_flat(&step["action"])))
        }
        .map_err(|e| format!("step {t}: {e}"))?;

        let obs = f32s_flat(&step["obs"]);
        let b = venv.buffers();
        for i in 0..n {
            let mut bad = Vec::new();
            if !same_bits(b.observation(i), &obs[i * d..(i + 1) * d]) {
                bad.push(format!(
                    "obs {:?} vs {:?}",
                    b.observation(i),
                    &obs[i * d..(i + 1) * d]
                ));
            }
            let theirs = &step["reward"][i];
            let ours = b.rewards()[i];
            let reward_ok = if f32_rewards {
                (ours as f32).to_bits() == f32_of(theirs).to_bits()
            } else {
                ours.to_bits() == f64_of(theirs).to_bits()
            };
            if !reward_ok {
                bad.push(format!("reward {ours} vs {theirs}"));
            }
            let (term, trunc) = (b.terminated()[i], b.truncated()[i]);
            if same_step {
                if step["done"][i].as_bool() != Some(term || trunc) {
                    bad.push(format!("done {} vs {}", term || trunc, step["done"][i]));
                }
                let info = &step["infos"][i];
                if info["TimeLimit.truncated"].as_bool() != Some(trunc && !term) {
                    bad.push(format!(
                        "TimeLimit.truncated {} vs {}",
                        trunc && !term,
                        info["TimeLimit.truncated"]
                    ));
                }
                let theirs = info.get("terminal_observation").map(f32s_flat);
                match (b.final_observation(i), theirs) {
                    (None, None) => {}
                    (Some(o), Some(t)) if same_bits(o, &t) => {}
                    (o, t) => bad.push(format!("terminal observation {o:?} vs {t:?}")),
                }
            } else {
                if step["terminated"][i].as_bool() != Some(term) {
                    bad.push(format!("terminated {term} vs {}", step["terminated"][i]));
                }
                if step["truncated"][i].as_bool() != Some(trunc) {
                    bad.push(format!("truncated {trunc} vs {}", step["truncated"][i]));
                }
            }
            if !bad.is_empty() {
                mismatches += 1;
                if notes.len() < 5 {
                    notes.push(format!("t={t} env {i}: {}", bad.join("; ")));
                }
            }
        }
    }
    Ok((steps.len(), mismatches, notes))
}

#[test]
fn both_engines_replay_every_vector_trace_bit_exactly() {
    let traces = rl_golden::files("vector", "vector autoreset trace", is_trace);
    let mut failures = Vec::new();
    for (path, trace) in &traces {
        let file = name(path);
        for engine in ENGINES {
            match replay(engine, trace) {
                Ok((steps, mismatches, notes)) => {
                    let n_envs = &trace["header"]["n_envs"];
                    println!("{file} {engine}: {steps} steps x {n_envs} envs compared, {mismatches} mismatches");
                    if mismatches > 0 {
                        failures.push(format!(
                            "{file} {engine}: {mismatches} mismatches: {notes:#?}"
                        ));
                    }
                }
                Err(e) => failures.push(format!("{file} {engine}: {e}")),
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
