//! `Monitor`'s `monitor.csv`, read back: SB3's header lines, one `r,l,t` row per episode
//! with the values the wrapper reported in `info.episode`, one file per sub-environment of a
//! vector, and I/O failures as typed errors.

use rl_env::pyfmt::round;
use rl_env::wrappers::monitor::{monitor_path, MonitorWriter};
use rl_env::wrappers::Monitor;
use rl_env::{
    make, AutoresetMode, Env, EnvError, EpisodeStats, SyncVecEnv, ThreadVecEnv, VecAction, VecEnv,
};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// A fresh directory under the system's temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("rl-monitor-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// One CSV row: the line and its r, l, t.
type Row = (String, f64, u64, f64);

/// Parses a monitor file: (t_start, env_id, rows), checking the framing on the way.
fn read_monitor(path: &Path) -> (f64, String, Vec<Row>) {
    let text = std::fs::read_to_string(path).unwrap();
    let (first, rest) = text.split_once('\n').expect("a header line");
    let json = first
        .strip_prefix('#')
        .expect("the header line starts with #");
    // json.dumps's separators: ", " and ": ", keys in insertion order.
    assert!(json.starts_with("{\"t_start\": "), "{first}");
    let header: serde_json::Value = serde_json::from_str(json).unwrap();
    let keys: Vec<&String> = header.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 2, "{first}");
    let t_start = header["t_start"].as_f64().unwrap();
    let env_id = header["env_id"].as_str().unwrap().to_string();
    let rest = rest.strip_prefix("r,l,t\r\n").expect("the CSV header");
    assert!(rest.is_empty() || rest.ends_with("\r\n"), "{rest:?}");
    let rows = rest
        .split_terminator("\r\n")
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            assert_eq!(f.len(), 3, "{line}");
            (
                line.to_string(),
                f[0].parse().unwrap(),
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
            )
        })
        .collect();
    (t_start, env_id, rows)
}

#[test]
fn one_env_rows_are_the_episode_statistics() {
    let dir = TempDir::new("single");
    let before = now();
    let mut env = Monitor::new(make("Pendulum-v1").unwrap(), dir.0.join("pendulum")).unwrap();
    let after = now();
    assert_eq!(env.path(), dir.0.join("pendulum.monitor.csv"));
    let mut stats: Vec<EpisodeStats> = Vec::new();
    for episode in 0..3u64 {
        env.reset(Some(episode)).unwrap();
        let mut t = 0u32;
        loop {
            let torque = [((t % 7) as f32 - 3.0) * 0.5];
            let step = env.step(rl_env::Action::Continuous(&torque)).unwrap();
            t += 1;
            if let Some(s) = step.info.episode {
                stats.push(s);
                break;
            }
        }
    }
    // Early resets leave no row (SB3 writes rows only for finished episodes).
    env.reset(Some(9)).unwrap();
    let (t_start, env_id, rows) = read_monitor(env.path());
    assert!(
        before <= t_start && t_start <= after,
        "{before} {t_start} {after}"
    );
    assert_eq!(env_id, "Pendulum-v1");
    assert_eq!(rows.len(), 3);
    for ((line, r, l, t), s) in rows.iter().zip(&stats) {
        assert_eq!(*r, round(s.r#return, 6), "{line}");
        assert_eq!(*l, s.length, "{line}");
        assert_eq!(*t, round(s.time_s, 6), "{line}");
        assert_eq!(*l, 200);
        // Pendulum's returns are not integers: six decimals at most.
        let decimals = line.split(',').next().unwrap().split('.').nth(1).unwrap();
        assert!(decimals.len() <= 6, "{line}");
        assert!(t_start + *t <= now());
    }
    assert!(rows.windows(2).all(|w| w[0].3 <= w[1].3));
}

fn run_vector(venv: &mut dyn VecEnv, steps: usize) -> Vec<Vec<EpisodeStats>> {
    let n = venv.num_envs();
    let mut seen = vec![Vec::new(); n];
    venv.reset(Some(7)).unwrap();
    let mut actions = vec![0i64; n];
    for t in 0..steps {
        for (i, a) in actions.iter_mut().enumerate() {
            *a = ((t + i) % 2) as i64;
        }
        venv.step(VecAction::Discrete(&actions)).unwrap();
        for (i, info) in venv.buffers().infos().iter().enumerate() {
            if let Some(s) = info.episode {
                seen[i].push(s);
            }
        }
    }
    seen
}

#[test]
fn vector_envs_write_one_file_per_rank() {
    let dir = TempDir::new("vector");
    let n = 3;
    let make_monitored = |i: usize| Monitor::for_rank(make("CartPole-v1")?, &dir.0, i);
    let mut sync = SyncVecEnv::from_fn(n, AutoresetMode::SameStep, make_monitored).unwrap();
    let seen = run_vector(&mut sync, 300);
    drop(sync);
    let thread_dir = dir.0.join("threads");
    let mut threads = ThreadVecEnv::from_fn(n, 2, AutoresetMode::SameStep, |i| {
        Monitor::for_rank(make("CartPole-v1")?, &thread_dir, i)
    })
    .unwrap();
    let seen_threads = run_vector(&mut threads, 300);
    drop(threads);
    for (d, seen) in [(&dir.0, seen), (&thread_dir, seen_threads)] {
        for (rank, episodes) in seen.iter().enumerate() {
            assert!(episodes.len() >= 5, "rank {rank}: {}", episodes.len());
            let (_, env_id, rows) = read_monitor(&monitor_path(d, rank));
            assert_eq!(env_id, "CartPole-v1");
            assert_eq!(rows.len(), episodes.len(), "rank {rank}");
            for ((line, r, l, t), s) in rows.iter().zip(episodes) {
                // CartPole pays 1 per step: Python prints the float return as "<l>.0".
                assert!(line.starts_with(&format!("{l}.0,{l},")), "{line}");
                assert_eq!((*r, *l), (s.r#return, s.length));
                assert_eq!(*t, round(s.time_s, 6));
            }
        }
    }
}

#[test]
fn unusual_env_ids_are_escaped_like_json_dumps() {
    let dir = TempDir::new("escape");
    struct Named(Box<dyn Env>);
    impl Env for Named {
        fn observation_space(&self) -> &rl_env::Space {
            self.0.observation_space()
        }
        fn action_space(&self) -> &rl_env::Space {
            self.0.action_space()
        }
        fn reset_into(
            &mut self,
            seed: Option<&rl_env::Seed>,
            obs: &mut [f32],
        ) -> rl_env::Result<rl_env::Info> {
            self.0.reset_into(seed, obs)
        }
        fn step_into(
            &mut self,
            action: rl_env::Action<'_>,
            obs: &mut [f32],
        ) -> rl_env::Result<rl_env::StepOutcome> {
            self.0.step_into(action, obs)
        }
        fn id(&self) -> &str {
            "my \"env\"/é"
        }
    }
    let env = Monitor::new(Named(make("CartPole-v1").unwrap()), dir.0.join("m")).unwrap();
    let text = std::fs::read_to_string(env.path()).unwrap();
    assert!(
        text.contains(r#", "env_id": "my \"env\"/\u00e9"}"#),
        "{text}"
    );
    assert_eq!(read_monitor(env.path()).1, "my \"env\"/é");
}

#[test]
fn io_failures_are_typed_errors() {
    let dir = TempDir::new("io");
    std::fs::create_dir_all(&dir.0).unwrap();
    // A parent that is a file.
    let file = dir.0.join("plain");
    std::fs::write(&file, b"x").unwrap();
    let err = MonitorWriter::create(file.join("sub").join("0"), "CartPole-v1").unwrap_err();
    assert!(matches!(err, EnvError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("plain"), "{err}");
    // A directory gets SB3's `monitor.csv` inside it.
    let w = MonitorWriter::create(&dir.0, "x").unwrap();
    assert_eq!(w.path(), dir.0.join("monitor.csv"));
    // A full device: the header cannot be written.
    #[cfg(target_os = "linux")]
    if Path::new("/dev/full").exists() {
        let link = dir.0.join("full.monitor.csv");
        std::os::unix::fs::symlink("/dev/full", &link).unwrap();
        let err = MonitorWriter::create(&link, "x").unwrap_err();
        assert!(matches!(err, EnvError::Io { .. }), "{err:?}");
    }
}
