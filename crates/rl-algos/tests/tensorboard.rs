//! The logger's TensorBoard output read back by an independent reader: TFRecord framing with
//! both masked CRC32Cs (a bitwise CRC here, not the writer's table), the protobuf `Event`s
//! decoded field by field, SB3's tags, values and steps; and an A2C run's event file.

use candle_core::Device;
use rl_algos::a2c::{A2c, A2cConfig};
use rl_algos::tensorboard::{next_run_dir, FILE_VERSION, TENSORBOARD_EXCLUDED};
use rl_algos::Logger;
use rl_env::registry::EnvSpec;
use rl_env::{AutoresetMode, SyncVecEnv, VecEnv};
use rl_policy::{MlpPolicy, MlpPolicyConfig};
use std::path::{Path, PathBuf};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rl-tb-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Bit-by-bit CRC32C (reflected Castagnoli polynomial).
fn crc32c_bitwise(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// TFRecord's mask, spelled as its specification does (not the writer's `rotate_right`).
#[allow(clippy::manual_rotate)]
fn masked(data: &[u8]) -> u32 {
    let crc = crc32c_bitwise(data);
    ((crc >> 15) | (crc << 17)).wrapping_add(0xa282_ead8)
}

/// Splits a TFRecord file into payloads, checking both CRCs of every record.
fn records(bytes: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let header = bytes.get(at..at + 12).ok_or("truncated record header")?;
        let len_bytes = &header[..8];
        let len = u64::from_le_bytes(len_bytes.try_into().unwrap()) as usize;
        let len_crc = u32::from_le_bytes(header[8..12].try_into().unwrap());
        if len_crc != masked(len_bytes) {
            return Err(format!("length CRC mismatch at byte {at}"));
        }
        let payload = bytes
            .get(at + 12..at + 12 + len)
            .ok_or("truncated payload")?;
        let crc_bytes = bytes
            .get(at + 12 + len..at + 16 + len)
            .ok_or("truncated payload CRC")?;
        if u32::from_le_bytes(crc_bytes.try_into().unwrap()) != masked(payload) {
            return Err(format!("payload CRC mismatch at byte {at}"));
        }
        out.push(payload.to_vec());
        at += 16 + len;
    }
    Ok(out)
}

#[derive(Debug)]
enum Field {
    Varint(u64),
    Fixed64([u8; 8]),
    Fixed32([u8; 4]),
    Bytes(Vec<u8>),
}

fn varint(b: &[u8], at: &mut usize) -> u64 {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = b[*at];
        *at += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return v;
        }
    }
    panic!("varint too long");
}

/// (field number, value) pairs of one protobuf message.
fn fields(b: &[u8]) -> Vec<(u64, Field)> {
    let mut at = 0;
    let mut out = Vec::new();
    while at < b.len() {
        let key = varint(b, &mut at);
        let f = match key & 7 {
            0 => Field::Varint(varint(b, &mut at)),
            1 => {
                at += 8;
                Field::Fixed64(b[at - 8..at].try_into().unwrap())
            }
            2 => {
                let n = varint(b, &mut at) as usize;
                at += n;
                Field::Bytes(b[at - n..at].to_vec())
            }
            5 => {
                at += 4;
                Field::Fixed32(b[at - 4..at].try_into().unwrap())
            }
            w => panic!("unexpected wire type {w}"),
        };
        out.push((key >> 3, f));
    }
    out
}

/// A decoded `Event`.
#[derive(Debug, Default)]
struct Event {
    wall_time: f64,
    step: i64,
    file_version: Option<String>,
    /// (tag, simple_value) of the summary's values.
    values: Vec<(String, f32)>,
}

fn event(payload: &[u8]) -> Event {
    let mut e = Event::default();
    for (n, f) in fields(payload) {
        match (n, f) {
            (1, Field::Fixed64(b)) => e.wall_time = f64::from_le_bytes(b),
            (2, Field::Varint(v)) => e.step = v as i64,
            (3, Field::Bytes(b)) => e.file_version = Some(String::from_utf8(b).unwrap()),
            (5, Field::Bytes(summary)) => {
                for (n, f) in fields(&summary) {
                    let (1, Field::Bytes(value)) = (n, f) else {
                        panic!("Summary field {n}")
                    };
                    let (mut tag, mut simple) = (None, None);
                    for (n, f) in fields(&value) {
                        match (n, f) {
                            (1, Field::Bytes(b)) => tag = Some(String::from_utf8(b).unwrap()),
                            (2, Field::Fixed32(b)) => simple = Some(f32::from_le_bytes(b)),
                            (n, f) => panic!("Summary.Value field {n}: {f:?}"),
                        }
                    }
                    e.values.push((tag.unwrap(), simple.unwrap()));
                }
            }
            (n, f) => panic!("Event field {n}: {f:?}"),
        }
    }
    e
}

fn event_file(dir: &Path) -> PathBuf {
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files.into_iter().next().unwrap()
}

fn read_events(path: &Path) -> Vec<Event> {
    let bytes = std::fs::read(path).unwrap();
    records(&bytes).unwrap().iter().map(|p| event(p)).collect()
}

#[test]
fn logger_dumps_read_back_with_tags_values_and_steps() {
    let dir = temp_dir("logger");
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let mut logger = Logger::new(false).with_tensorboard(&dir).unwrap();
    let path = logger.tensorboard_file().unwrap().to_path_buf();
    assert_eq!(path, event_file(&dir));
    let name = path.file_name().unwrap().to_str().unwrap().to_string();
    let parts: Vec<&str> = name.split('.').collect();
    assert_eq!(&parts[..3], ["events", "out", "tfevents"], "{name}");
    assert_eq!(parts[3].len(), 10, "{name}");
    let secs: u64 = parts[3].parse().unwrap();
    assert!(secs.abs_diff(before as u64) <= 5, "{name}");

    let dumps: [(u64, Vec<(&str, f64)>); 3] = [
        (
            100,
            vec![
                ("rollout/ep_rew_mean", 21.5),
                ("train/loss", -0.125),
                ("time/fps", 1234.0),
            ],
        ),
        (
            200,
            vec![("train/loss", 1.0 / 3.0), ("train/value_loss", 1e-7)],
        ),
        (5_000_000_000, vec![("rollout/ep_len_mean", 500.0)]),
    ];
    for (step, values) in &dumps {
        for (k, v) in values {
            logger.record(k, *v);
        }
        for k in TENSORBOARD_EXCLUDED {
            logger.record_int(k, 7);
        }
        logger.dump(*step);
    }
    logger.dump(300); // nothing recorded: no event
    assert!(logger.take_error().is_none());

    let events = read_events(&path);
    assert_eq!(events[0].file_version.as_deref(), Some(FILE_VERSION));
    assert!(events[0].values.is_empty());
    assert!(events[0].wall_time >= before.floor());
    // One event per scalar, keys in sorted order within a dump, the excluded counters absent.
    let mut want: Vec<(i64, String, f32)> = Vec::new();
    for (step, values) in &dumps {
        let mut sorted = values.clone();
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        for (k, v) in sorted {
            want.push((*step as i64, k.to_string(), v as f32));
        }
    }
    let got: Vec<(i64, String, f32)> = events[1..]
        .iter()
        .map(|e| {
            assert_eq!(e.values.len(), 1);
            assert!(e.file_version.is_none());
            assert!(e.wall_time >= events[0].wall_time);
            (e.step, e.values[0].0.clone(), e.values[0].1)
        })
        .collect();
    assert_eq!(got, want);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_reader_notices_corruption() {
    let dir = temp_dir("corrupt");
    let mut logger = Logger::new(false).with_tensorboard(&dir).unwrap();
    logger.record("train/loss", 0.5);
    logger.dump(1);
    let path = logger.tensorboard_file().unwrap().to_path_buf();
    let bytes = std::fs::read(&path).unwrap();
    assert!(records(&bytes).is_ok());
    let mut bad = bytes.clone();
    let last = bad.len() - 6;
    bad[last] ^= 1; // inside the last payload
    assert!(records(&bad).unwrap_err().contains("payload CRC"));
    let mut bad = bytes;
    bad[0] ^= 1; // the first length
    assert!(records(&bad).unwrap_err().contains("length CRC"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unusable_directories_are_io_errors() {
    let dir = temp_dir("io");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("plain");
    std::fs::write(&file, b"x").unwrap();
    let err = Logger::new(false)
        .with_tensorboard(file.join("run"))
        .unwrap_err();
    assert!(matches!(err, rl_algos::AlgoError::Io { .. }), "{err:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_a2c_run_writes_sb3_tags_at_its_timesteps() {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        std::env::set_var("RAYON_NUM_THREADS", "1");
    }
    let root = temp_dir("a2c");
    let run = next_run_dir(&root, "A2C");
    assert_eq!(run, root.join("A2C_1"));
    let spec = EnvSpec {
        max_episode_steps: Some(20),
        ..EnvSpec::default()
    };
    let env = SyncVecEnv::make_with("CartPole-v1", &spec, 2, AutoresetMode::SameStep).unwrap();
    let policy = MlpPolicy::new(
        env.observation_space(),
        env.action_space(),
        MlpPolicyConfig::default(),
        0,
        &Device::Cpu,
    )
    .unwrap();
    let config = A2cConfig {
        seed: Some(0),
        log_interval: 10,
        ..A2cConfig::default()
    };
    let mut m = A2c::new(policy, env, config).unwrap();
    *m.logger_mut() = Logger::new(false).with_tensorboard(&run).unwrap();
    m.learn(300, &mut []).unwrap();
    assert!(m.logger_mut().take_error().is_none());
    let events = read_events(&event_file(&run));
    assert_eq!(next_run_dir(&root, "A2C"), root.join("A2C_2"));
    let steps: Vec<i64> = events[1..].iter().map(|e| e.step).collect();
    // log_interval 10 of 5-step, 2-env iterations: dumps at 100, 200 and 300 timesteps.
    let mut distinct = steps.clone();
    distinct.dedup();
    assert_eq!(distinct, [100, 200, 300]);
    for step in [100, 200, 300] {
        let tags: Vec<&str> = events[1..]
            .iter()
            .filter(|e| e.step == step)
            .map(|e| e.values[0].0.as_str())
            .collect();
        for tag in [
            "rollout/ep_len_mean",
            "rollout/ep_rew_mean",
            "time/fps",
            "train/entropy_loss",
            "train/explained_variance",
            "train/learning_rate",
            "train/policy_loss",
            "train/value_loss",
        ] {
            assert!(tags.contains(&tag), "{tag} missing at {step}: {tags:?}");
        }
        for tag in TENSORBOARD_EXCLUDED {
            assert!(!tags.contains(&tag), "{tag} at {step}");
        }
    }
    // Episodes last at most 20 steps and CartPole pays 1 per step.
    for e in &events[1..] {
        let (tag, v) = &e.values[0];
        if tag == "rollout/ep_rew_mean" {
            assert!(*v >= 1.0 && *v <= 20.0, "{v}");
        }
        if tag == "train/learning_rate" {
            assert_eq!(*v, 7e-4f32);
        }
    }
    let _ = std::fs::remove_dir_all(&root);
}
