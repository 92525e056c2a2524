//! The examples behave like command-line tools (`examples/common/cli.rs`): `--help` prints
//! usage and exits 0; a bad argument is one line on stderr and exit code 2; a stdout that is
//! closed (`| head -c 1`) or full (`> /dev/full`) ends the program with a non-zero exit code and
//! no panic.
//!
//! The tests run the example binaries that Cargo builds next to this test
//! (`target/<profile>/examples/`): `cargo test` builds every example before it runs any test.
//! One that is missing, or older than its source (when only this test was built, say), is
//! built here with `cargo build --example`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::SystemTime;

/// Each example with arguments that make it print soon and finish quickly.
const EXAMPLES: [(&str, &[&str]); 5] = [
    ("random_agent", &["2", "0"]),
    ("tensor_env", &["2", "0"]),
    ("custom_policy", &["0"]),
    ("reinforce_from_scratch", &["0"]),
    (
        "enjoy",
        &[
            "--model",
            "tests/golden/sb3/a2c_cartpole.zip",
            "--episodes",
            "1",
        ],
    ),
];

/// The repository root (the examples' working directory, for the paths in their arguments).
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Whether `binary` is missing or older than the example's sources.
fn needs_build(binary: &Path, name: &str) -> bool {
    let modified = |p: &Path| p.metadata().and_then(|m| m.modified()).ok();
    let Some(built) = modified(binary) else {
        return true;
    };
    let examples = repo_root().join("examples");
    [
        examples.join(format!("{name}.rs")),
        examples.join("common/cli.rs"),
    ]
    .iter()
    .any(|src| modified(src).unwrap_or(SystemTime::UNIX_EPOCH) > built)
}

/// Path of the built example `name`, building it first if needed.
fn example(name: &str) -> PathBuf {
    // This test runs from target/<profile>/deps/; the examples are in target/<profile>/examples/.
    let exe = std::env::current_exe().expect("path of the test binary");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary lies in target/<profile>/deps");
    let binary = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    // One build at a time: the tests run in parallel.
    static BUILDING: Mutex<()> = Mutex::new(());
    let _guard = BUILDING.lock().unwrap_or_else(|p| p.into_inner());
    if needs_build(&binary, name) {
        let mut cargo = Command::new(env!("CARGO"));
        cargo
            .args(["build", "-p", "rl", "--example", name])
            .current_dir(repo_root());
        match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") | None => {}
            Some("release") => {
                cargo.arg("--release");
            }
            Some(other) => {
                cargo.args(["--profile", other]);
            }
        }
        let status = cargo.status().expect("run cargo");
        assert!(status.success(), "cargo build --example {name} failed");
    }
    binary
}

/// Runs example `name` with `args`, its stdout sent to `stdout`.
fn run(name: &str, args: &[&str], stdout: Stdio) -> Output {
    Command::new(example(name))
        .args(args)
        .current_dir(repo_root())
        .env("RAYON_NUM_THREADS", "1")
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|child| child.wait_with_output())
        .unwrap_or_else(|e| panic!("cannot run {name}: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn help_prints_usage_and_exits_0() {
    for (name, _) in EXAMPLES {
        let out = run(name, &["--help"], Stdio::piped());
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert_eq!(out.status.code(), Some(0), "{name}: {stderr}");
        assert!(
            stdout.contains(&format!("Usage: {name}")),
            "{name}: {stdout}"
        );
        assert!(stderr.is_empty(), "{name}: {stderr}");
    }
}

#[test]
fn a_bad_argument_is_one_line_on_stderr_and_exit_code_2() {
    for (name, _) in EXAMPLES {
        let mut bad: Vec<&[&str]> = vec![&["--no-such-flag"]];
        if name != "enjoy" {
            // Their first positional argument is a count.
            bad.push(&["twelve"]);
            bad.push(&["-3"]);
        } else {
            bad.push(&["--model"]);
            bad.push(&["--model", "x.zip", "--episodes", "0"]);
        }
        for args in bad {
            let out = run(name, args, Stdio::piped());
            let stderr = text(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{name} {args:?}: {stderr}");
            assert_eq!(stderr.lines().count(), 1, "{name} {args:?}: {stderr}");
            assert!(
                stderr.starts_with(&format!("{name}: ")) && stderr.contains("--help"),
                "{name} {args:?}: {stderr}"
            );
            assert!(out.stdout.is_empty(), "{name} {args:?}");
        }
    }
}

#[test]
fn a_closed_stdout_ends_the_program_quietly() {
    for (name, args) in EXAMPLES {
        for args in [args, &["--help"][..]] {
            // The reading end is closed before the example starts: its first write fails.
            let (reader, writer) = std::io::pipe().expect("pipe");
            drop(reader);
            let out = run(name, args, Stdio::from(writer));
            let stderr = text(&out.stderr);
            assert_eq!(out.status.code(), Some(141), "{name} {args:?}: {stderr}");
            assert!(stderr.is_empty(), "{name} {args:?}: {stderr}");
        }
    }
}

#[cfg(target_os = "linux")]
#[test]
fn a_full_stdout_is_one_line_on_stderr_and_exit_code_1() {
    for (name, args) in EXAMPLES {
        for args in [args, &["--help"][..]] {
            let full = std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .expect("/dev/full");
            let out = run(name, args, Stdio::from(full));
            let stderr = text(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{name} {args:?}: {stderr}");
            assert!(!stderr.contains("panicked"), "{name} {args:?}: {stderr}");
            assert_eq!(stderr.lines().count(), 1, "{name} {args:?}: {stderr}");
            assert!(
                stderr.starts_with(&format!("{name}: cannot write to stdout")),
                "{name} {args:?}: {stderr}"
            );
        }
    }
}

#[test]
fn valid_arguments_still_work() {
    for (name, args) in EXAMPLES {
        let out = run(name, args, Stdio::piped());
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{name} {args:?}: {stderr}");
        assert!(!out.stdout.is_empty(), "{name} {args:?}");
    }
}

/// A fresh directory for one `train` run.
fn scratch_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rl-examples-cli-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// A short `train` run writing into `dir`.
fn short_train(dir: &Path, algo: &str) -> Vec<String> {
    let out = dir.join("out").display().to_string();
    [
        "--algo",
        algo,
        "--env",
        "CartPole-v1",
        "--total-timesteps",
        "256",
        "--eval-freq",
        "128",
        "--eval-episodes",
        "1",
        "--quiet",
        "--out",
        &out,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn run_train(args: &[String], stdout: Stdio) -> Output {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run("train", &args, stdout)
}

#[test]
fn train_behaves_like_the_other_examples() {
    let out = run("train", &["--help"], Stdio::piped());
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("Usage: train"));
    for bad in [
        &["--no-such-flag"][..],
        &["--algo", "sarsa"],
        &["--seed", "x"],
    ] {
        let out = run("train", bad, Stdio::piped());
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{bad:?}: {stderr}");
        assert!(stderr.starts_with("train: "), "{bad:?}: {stderr}");
    }
    let dir = scratch_dir("pipe");
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let out = run_train(&short_train(&dir, "a2c"), Stdio::from(writer));
    assert_eq!(out.status.code(), Some(141), "{}", text(&out.stderr));
    assert!(text(&out.stderr).is_empty(), "{}", text(&out.stderr));
    #[cfg(target_os = "linux")]
    {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full");
        let out = run_train(&short_train(&dir, "a2c"), Stdio::from(full));
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--total-timesteps 0` and a resume whose run already reached its budget are one-line
/// errors; an edited `run.json` (seed, algo, env) that no longer fits the checkpoint is an
/// error naming the field.
#[test]
fn train_refuses_no_op_budgets_and_edited_run_descriptions() {
    let dir = scratch_dir("resume");
    let mut zero = short_train(&dir, "ppo");
    zero[5] = "0".into();
    let out = run_train(&zero, Stdio::piped());
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--total-timesteps"), "{stderr}");

    let save = dir.join("save");
    let mut args = short_train(&dir, "ppo");
    args.extend(["--save".to_string(), save.display().to_string()]);
    let out = run_train(&args, Stdio::null());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let run_json = save.join("run.json");
    let original = std::fs::read_to_string(&run_json).expect("run.json");
    let resume = |total: &str| -> Output {
        let args = [
            "--resume".to_string(),
            save.display().to_string(),
            "--total-timesteps".into(),
            total.into(),
            "--quiet".into(),
            "--out".into(),
            dir.join("out2").display().to_string(),
        ];
        run_train(&args, Stdio::null())
    };
    let out = resume("256");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("already has 256 steps"), "{stderr}");
    for (field, from, to) in [
        ("seed", "\"seed\": 0", "\"seed\": 3"),
        ("algo", "\"algo\": \"ppo\"", "\"algo\": \"a2c\""),
        ("algo", "\"algo\": \"ppo\"", "\"algo\": \"reinforce\""),
        ("env", "CartPole-v1", "Acrobot-v1"),
    ] {
        assert!(original.contains(from), "{from} not in {original}");
        let edited = original.replace(from, to);
        // REINFORCE trains on one environment: keep run.json consistent otherwise.
        let edited = if to.contains("reinforce") {
            edited.replace("\"n_envs\": 8", "\"n_envs\": 1")
        } else {
            edited
        };
        std::fs::write(&run_json, edited).expect("edit run.json");
        let out = resume("512");
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{field}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{field}: {stderr}");
        assert!(
            stderr.contains(&format!("run.json says {field}"))
                || stderr.contains(&format!("run.json's {field}")),
            "{field}: {stderr}"
        );
    }
    std::fs::write(&run_json, &original).expect("restore run.json");
    let out = resume("512");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--env-kwargs` reach every environment of a run (an unknown keyword, a bad value or a bad
/// `key:value` is one line naming it), are kept in `run.json` for `--resume`, and
/// `--tensorboard-log` writes event files in rl-zoo's `DIR/<env>/<ALGO>_<n>` folders.
#[test]
fn train_env_kwargs_and_tensorboard_log() {
    let dir = scratch_dir("kwargs");
    let with = |extra: &[&str]| -> Vec<String> {
        let mut args = short_train(&dir, "a2c");
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    for (extra, code, needle) in [
        (&["--env-kwargs", "gravity:9.8"][..], 1, "\"gravity\""),
        (
            &["--env-kwargs", "sutton_barto_reward:maybe"],
            1,
            "sutton_barto_reward",
        ),
        (
            &["--env-kwargs", "max_episode_steps:0"],
            1,
            "max_episode_steps",
        ),
        (&["--env-kwargs", "novalue"], 2, "novalue"),
    ] {
        let out = run_train(&with(extra), Stdio::piped());
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{extra:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{extra:?}: {stderr}");
        assert!(stderr.contains(needle), "{extra:?}: {stderr}");
    }

    // Sutton and Barto's reward pays 0 per step and -1 on termination; with a 20-step limit the
    // final evaluation (on its own environment) scores in [-1, 0], never CartPole's +1 a step.
    let tb = dir.join("tb");
    let save = dir.join("save");
    let summary = dir.join("summary.json");
    let args = with(&[
        "--env-kwargs",
        "max_episode_steps:20",
        "sutton_barto_reward:True",
        "--tensorboard-log",
        &tb.display().to_string(),
        "--save",
        &save.display().to_string(),
        "--json-out",
        &summary.display().to_string(),
    ]);
    let out = run_train(&args, Stdio::null());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    let final_mean = json["final_mean"].as_f64().unwrap();
    assert!((-1.0..=0.0).contains(&final_mean), "{json}");
    let run_json = std::fs::read_to_string(save.join("run.json")).unwrap();
    assert!(run_json.contains("max_episode_steps:20"), "{run_json}");
    let events = |run: &str| -> Vec<PathBuf> {
        let folder = tb.join("CartPole-v1").join(run);
        std::fs::read_dir(&folder)
            .unwrap_or_else(|e| panic!("{}: {e}", folder.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().contains("events.out.tfevents."))
            .collect()
    };
    assert_eq!(events("A2C_1").len(), 1);
    assert!(std::fs::metadata(&events("A2C_1")[0]).unwrap().len() > 100);

    // Resuming keeps the saved kwargs; other ones are refused.
    let resume = |extra: &[&str]| -> Output {
        let mut args: Vec<String> = [
            "--resume",
            &save.display().to_string(),
            "--total-timesteps",
            "512",
            "--quiet",
            "--out",
            &dir.join("out2").display().to_string(),
            "--tensorboard-log",
            &tb.display().to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        run_train(&args, Stdio::null())
    };
    let out = resume(&["--env-kwargs", "max_episode_steps:30"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--env-kwargs"), "{stderr}");
    let out = resume(&[
        "--env-kwargs",
        "sutton_barto_reward:True",
        "max_episode_steps:20",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // A resumed run continues in the latest folder, as SB3 does without resetting timesteps.
    assert_eq!(events("A2C_1").len(), 2);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn enjoy_takes_env_kwargs() {
    let model = [
        "--model",
        "tests/golden/sb3/a2c_cartpole.zip",
        "--episodes",
        "2",
    ];
    let args: Vec<&str> = model
        .iter()
        .copied()
        .chain(["--env-kwargs", "max_episode_steps:7"])
        .collect();
    let out = run("enjoy", &args, Stdio::piped());
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(stdout.matches("length     7").count(), 2, "{stdout}");
    let args: Vec<&str> = model
        .iter()
        .copied()
        .chain(["--env-kwargs", "gravity:1.0"])
        .collect();
    let out = run("enjoy", &args, Stdio::piped());
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("unexpected keyword argument \"gravity\""),
        "{stderr}"
    );
}

#[test]
fn train_reads_rl_zoo_hyperparameter_files_and_overrides() {
    let dir = scratch_dir("zoo");
    let file = dir.join("zoo.yml");
    std::fs::write(
        &file,
        "CartPole-v1:\n  n_envs: 2\n  n_steps: 16\n  batch_size: 32\n  n_epochs: 2\n  \
         learning_rate: lin_0.001\n  policy_kwargs: \"dict(net_arch=dict(pi=[16], vf=[8]), \
         activation_fn=nn.ReLU, ortho_init=False)\"\nPendulum-v1:\n  frame_stack: 4\n",
    )
    .unwrap();
    let f = file.display().to_string();
    let args = |algo: &str, env: &str, extra: &[&str]| -> Vec<String> {
        let mut a = short_train(&dir, algo);
        let i = a.iter().position(|x| x == "--env").unwrap();
        a[i + 1] = env.to_string();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    // Keys the algorithm does not take, bad values and missing entries: one line naming them.
    for (algo, env, extra, needle) in [
        (
            "a2c",
            "CartPole-v1",
            &["--hyperparams", "n_epochs:3"][..],
            "n_epochs",
        ),
        (
            "ppo",
            "CartPole-v1",
            &["--hyperparams", "learning_rate:lin_x"],
            "learning_rate",
        ),
        (
            "ppo",
            "MountainCar-v0",
            &["--hyperparams-file", f.as_str()],
            "MountainCar-v0",
        ),
        (
            "ppo",
            "Pendulum-v1",
            &["--hyperparams-file", f.as_str()],
            "frame_stack",
        ),
        (
            "ppo",
            "CartPole-v1",
            &["--hyperparams-file", "/nonexistent/zoo.yml"],
            "zoo.yml",
        ),
        (
            "reinforce",
            "CartPole-v1",
            &["--hyperparams", "n_steps:3"],
            "--hyperparams",
        ),
    ] {
        let out = run_train(&args(algo, env, extra), Stdio::piped());
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{extra:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{extra:?}: {stderr}");
        assert!(stderr.contains(needle), "{extra:?}: {stderr}");
    }
    // A file's section, with an override, trains and is remembered for --resume.
    let save = dir.join("save");
    let save_text = save.display().to_string();
    let out = run_train(
        &args(
            "ppo",
            "CartPole-v1",
            &[
                "--hyperparams-file",
                f.as_str(),
                "--hyperparams",
                "n_epochs:1",
                "--save",
                save_text.as_str(),
            ],
        ),
        Stdio::piped(),
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(stdout.contains("2 env(s)"), "{stdout}");
    assert!(stdout.contains("with n_epochs:1"), "{stdout}");
    let run_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(save.join("run.json")).unwrap()).unwrap();
    assert_eq!(run_json["hyperparams"], serde_json::json!(["n_epochs:1"]));
    // The policy_kwargs shaped the saved model: a 16-unit ReLU actor and an 8-unit critic,
    // PyTorch's default init.
    let model = rl::policy::MlpPolicy::load(dir.join("out/model"), &candle_core::Device::Cpu)
        .expect("the saved model loads");
    let config = model.config();
    assert_eq!(config.net_arch.pi, vec![16]);
    assert_eq!(config.net_arch.vf, vec![8]);
    assert_eq!(config.activation, rl::policy::Activation::ReLU);
    assert!(!config.ortho_init);
    let resume = |extra: &[&str]| -> Output {
        let mut a = vec![
            "--resume".to_string(),
            save_text.clone(),
            "--total-timesteps".into(),
            "600".into(),
            "--quiet".into(),
            "--out".into(),
            dir.join("out2").display().to_string(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        run_train(&a, Stdio::piped())
    };
    let out = resume(&["--hyperparams", "n_epochs:5"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--hyperparams"), "{stderr}");
    let out = resume(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `train --algo dqn`: a run cut in two by `--save`/`--resume` (the checkpoint holds the
/// replay buffer) ends with the same Q-network, byte for byte, as one uninterrupted run;
/// `enjoy` plays the saved Q-network and SB3's DQN zip; an edited `run.json` is refused.
#[test]
fn train_dqn_resumes_bit_for_bit_and_enjoy_plays_q_networks() {
    let dir = scratch_dir("dqn");
    let train = |total: &str, out: &str, extra: &[String]| -> Output {
        let mut args: Vec<String> = [
            "--algo",
            "dqn",
            "--env",
            "CartPole-v1",
            "--total-timesteps",
            total,
            "--eval-freq",
            "100000",
            "--eval-episodes",
            "1",
            "--quiet",
            "--out",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.push(dir.join(out).display().to_string());
        args.extend_from_slice(extra);
        run_train(&args, Stdio::null())
    };
    let model = |out: &str| dir.join(out).join("model").join("policy.safetensors");
    let out = train("1536", "straight", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let save = dir.join("save").display().to_string();
    let out = train("1024", "first", &["--save".into(), save.clone()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let resumed = [
        "--resume".to_string(),
        save.clone(),
        "--total-timesteps".into(),
        "1536".into(),
        "--quiet".into(),
        "--out".into(),
        dir.join("second").display().to_string(),
    ];
    let out = run_train(&resumed, Stdio::null());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let (a, b) = (
        std::fs::read(model("straight")).expect("straight model"),
        std::fs::read(model("second")).expect("resumed model"),
    );
    assert!(a == b, "the resumed DQN run ended with another Q-network");

    let golden = std::env::var_os("RL_GOLDEN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("tests/golden"))
        .join("sb3/dqn_cartpole.zip");
    let played = dir.join("straight").join("model").display().to_string();
    for m in [played.as_str(), golden.to_str().expect("utf-8 path")] {
        let out = run("enjoy", &["--model", m, "--episodes", "1"], Stdio::piped());
        assert_eq!(out.status.code(), Some(0), "{m}: {}", text(&out.stderr));
        assert!(text(&out.stdout).contains("mean return"), "{m}");
    }
    // A Q-network does not fit an environment with other spaces.
    let out = run(
        "enjoy",
        &["--model", &played, "--env", "Acrobot-v1", "--episodes", "1"],
        Stdio::piped(),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));

    let run_json = dir.join("save").join("run.json");
    let original = std::fs::read_to_string(&run_json).expect("run.json");
    std::fs::write(
        &run_json,
        original.replace("\"algo\": \"dqn\"", "\"algo\": \"ppo\""),
    )
    .expect("edit run.json");
    let mut again = resumed.to_vec();
    again[3] = "2048".into();
    let out = run_train(&again, Stdio::null());
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("run.json says algo"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// rl-zoo's A2C Pendulum-v1 section asks for VecNormalize (and gSDE): `train` wraps the
/// environments, says so, and saves the statistics, the env id and its kwargs with the model;
/// `enjoy` without `--env` plays that env with those kwargs through the frozen statistics and
/// reproduces `train`'s final evaluation exactly (which seeds its env with seed + 2000 and then
/// plays the episodes after that reset: enjoy's second episode).
#[test]
fn train_under_vec_normalize_saves_what_enjoy_needs() {
    let dir = scratch_dir("vecnormalize");
    let out = dir.join("out");
    let summary = dir.join("summary.json");
    let args: Vec<String> = [
        "--algo",
        "a2c",
        "--env",
        "Pendulum-v1",
        "--env-kwargs",
        "max_episode_steps:50",
        "--total-timesteps",
        "400",
        "--eval-freq",
        "200",
        "--eval-episodes",
        "1",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
        "--json-out",
        summary.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let run_out = run_train(&args, Stdio::piped());
    let stdout = text(&run_out.stdout);
    assert_eq!(run_out.status.code(), Some(0), "{}", text(&run_out.stderr));
    assert!(
        stdout.contains("VecNormalize: norm_obs=true, norm_reward=true, gamma=0.9"),
        "{stdout}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    let final_mean = json["final_mean"].as_f64().unwrap();

    let model = out.join("model");
    let enjoy = run(
        "enjoy",
        &[
            "--model",
            model.to_str().unwrap(),
            "--episodes",
            "2",
            "--seed",
            "2000",
        ],
        Stdio::piped(),
    );
    let stdout = text(&enjoy.stdout);
    assert_eq!(enjoy.status.code(), Some(0), "{}", text(&enjoy.stderr));
    assert!(
        stdout.contains("playing Pendulum-v1 with max_episode_steps=50"),
        "{stdout}"
    );
    assert!(stdout.contains("VecNormalize statistics"), "{stdout}");
    assert!(stdout.contains("length    50"), "{stdout}");
    assert!(
        stdout.contains(&format!("episode   1: return {final_mean:>8.2}")),
        "train's final evaluation {final_mean:.2}, enjoy: {stdout}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `train --algo sac|td3|ddpg` on Pendulum-v1 (small networks and budgets through
/// `--hyperparams`): a run cut in two by `--save`/`--resume` (the checkpoint holds the replay
/// buffer, every optimizer, α and the action noise) ends with the same model file, byte for
/// byte, as one uninterrupted run; the saved model holds the zoo-shaped networks with their
/// targets; `enjoy` plays it and SB3's SAC/TD3/DDPG zips; discrete actions are a named error.
#[test]
fn train_sac_td3_ddpg_resume_bit_for_bit_and_enjoy_plays_them() {
    let dir = scratch_dir("offpolicy");
    for algo in ["sac", "td3", "ddpg"] {
        let train = |total: &str, out: &str, extra: &[String]| -> Output {
            let mut args: Vec<String> = [
                "--algo",
                algo,
                "--env",
                "Pendulum-v1",
                "--total-timesteps",
                total,
                "--eval-freq",
                "300",
                "--eval-episodes",
                "1",
                "--hyperparams",
                "learning_starts:100",
                "batch_size:32",
                "policy_kwargs:'dict(net_arch=[32, 16])'",
                "--quiet",
                "--out",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            args.push(dir.join(format!("{algo}-{out}")).display().to_string());
            args.extend_from_slice(extra);
            run_train(&args, Stdio::null())
        };
        let model = |out: &str| dir.join(format!("{algo}-{out}")).join("model");
        let json = dir.join(format!("{algo}.json")).display().to_string();
        let out = train("600", "straight", &["--json-out".into(), json.clone()]);
        assert_eq!(out.status.code(), Some(0), "{algo}: {}", text(&out.stderr));
        let summary: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        assert_eq!(summary["algo"], algo);
        assert_eq!(summary["total_timesteps"], 600);
        assert_eq!(
            summary["evals"].as_array().map(Vec::len),
            Some(2),
            "{summary}"
        );
        assert!(summary["final_mean"].as_f64().is_some_and(f64::is_finite));
        let curve = std::fs::read_to_string(model("straight").with_file_name("learning_curve.csv"))
            .expect("learning curve");
        assert_eq!(curve.lines().count(), 3, "{curve}");

        let save = dir.join(format!("{algo}-save")).display().to_string();
        let out = train("300", "first", &["--save".into(), save.clone()]);
        assert_eq!(out.status.code(), Some(0), "{algo}: {}", text(&out.stderr));
        let resumed = [
            "--resume".to_string(),
            save.clone(),
            "--total-timesteps".into(),
            "600".into(),
            "--quiet".into(),
            "--out".into(),
            model("second").parent().unwrap().display().to_string(),
        ];
        let out = run_train(&resumed, Stdio::null());
        assert_eq!(out.status.code(), Some(0), "{algo}: {}", text(&out.stderr));
        let file = |out: &str| std::fs::read(model(out).join("policy.safetensors")).unwrap();
        assert!(
            file("straight") == file("second"),
            "{algo}: the resumed run ended with another model"
        );
        // An edited algo in run.json is refused, naming it.
        let run_json = Path::new(&save).join("run.json");
        let original = std::fs::read_to_string(&run_json).expect("run.json");
        let other = if algo == "td3" { "ddpg" } else { "td3" };
        std::fs::write(
            &run_json,
            original.replace(
                &format!("\"algo\": \"{algo}\""),
                &format!("\"algo\": \"{other}\""),
            ),
        )
        .expect("edit run.json");
        let mut again = resumed.to_vec();
        again[3] = "900".into();
        let out = run_train(&again, Stdio::null());
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{algo}: {stderr}");
        assert!(
            stderr.contains(&format!("run.json says algo {other}"))
                || stderr.contains(&format!("run.json's algo {other}")),
            "{algo}: {stderr}"
        );

        let saved = rl::policy::SavedModel::load(model("straight"), &candle_core::Device::Cpu)
            .expect("the saved model loads");
        match (&saved, algo) {
            (rl::policy::SavedModel::Sac(m), "sac") => {
                assert_eq!(m.config().actor.net_arch, vec![32, 16]);
                assert_eq!(m.config().n_critics, 2);
            }
            (rl::policy::SavedModel::Td3(m), "td3" | "ddpg") => {
                assert_eq!(m.config().critic.net_arch, vec![32, 16]);
                assert_eq!(m.config().n_critics, if algo == "ddpg" { 1 } else { 2 });
            }
            _ => panic!("{algo} saved a {}", saved.kind()),
        }
        let played = model("straight").display().to_string();
        let args = [
            "--model",
            &played,
            "--env",
            "Pendulum-v1",
            "--episodes",
            "1",
        ];
        let out = run("enjoy", &args, Stdio::piped());
        assert_eq!(out.status.code(), Some(0), "{algo}: {}", text(&out.stderr));
        assert!(text(&out.stdout).contains("mean return"), "{algo}");
        // Not on an environment with other spaces.
        let out = run(
            "enjoy",
            &[
                "--model",
                &played,
                "--env",
                "CartPole-v1",
                "--episodes",
                "1",
            ],
            Stdio::piped(),
        );
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    }

    let golden = std::env::var_os("RL_GOLDEN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("tests/golden"))
        .join("sb3");
    for (zip, env) in [
        ("sac_pendulum.zip", "Pendulum-v1"),
        ("td3_pendulum.zip", "Pendulum-v1"),
        ("ddpg_mountaincar.zip", "MountainCarContinuous-v0"),
    ] {
        let m = golden.join(zip).display().to_string();
        let out = run(
            "enjoy",
            &["--model", &m, "--env", env, "--episodes", "1"],
            Stdio::piped(),
        );
        assert_eq!(out.status.code(), Some(0), "{zip}: {}", text(&out.stderr));
        assert!(text(&out.stdout).contains("mean return"), "{zip}");
    }

    // Discrete actions: a named error before anything is written.
    for algo in ["sac", "td3", "ddpg"] {
        let out_dir = dir.join(format!("{algo}-cartpole"));
        let out = run_train(
            &[
                "--algo".into(),
                algo.into(),
                "--env".into(),
                "CartPole-v1".into(),
                "--out".into(),
                out_dir.display().to_string(),
            ],
            Stdio::null(),
        );
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("needs a Box") && stderr.contains("Discrete"),
            "{stderr}"
        );
        assert!(!out_dir.exists());
    }
    // SAC with gSDE (rl-zoo's MountainCarContinuous-v0 section) trains, saves its gSDE actor
    // and plays in the env it was trained on.
    let out_dir = dir.join("sac-mcc");
    let out = run_train(
        &[
            "--algo".into(),
            "sac".into(),
            "--env".into(),
            "MountainCarContinuous-v0".into(),
            "--total-timesteps".into(),
            "256".into(),
            "--eval-freq".into(),
            "256".into(),
            "--eval-episodes".into(),
            "1".into(),
            "--hyperparams".into(),
            "batch_size:32".into(),
            "--quiet".into(),
            "--out".into(),
            out_dir.display().to_string(),
        ],
        Stdio::null(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let saved = rl::policy::SavedModel::load(out_dir.join("model"), &candle_core::Device::Cpu)
        .expect("the saved gSDE model loads");
    match &saved {
        rl::policy::SavedModel::Sac(m) => {
            assert!(m.config().actor.sde.is_some(), "not a gSDE actor");
        }
        other => panic!("sac saved a {}", other.kind()),
    }
    let played = out_dir.join("model").display().to_string();
    let out = run(
        "enjoy",
        &["--model", &played, "--episodes", "1"],
        Stdio::piped(),
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        stdout.contains("playing MountainCarContinuous-v0"),
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
