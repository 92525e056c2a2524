//! Saving and loading an [`MlpPolicy`]: a directory with `model.safetensors` (the parameters,
//! by SB3 name) and `policy.json` (format tag, [`MlpPolicyConfig`] and both spaces), so a saved
//! policy reloads without restating its architecture.

use crate::error::{PolicyError, Result};
use crate::limits::MAX_FILE_BYTES;
use crate::mlp::{MlpPolicy, MlpPolicyConfig};
use candle_core::Device;
use rl_env::Space;
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::{Path, PathBuf};

/// File name of the weights inside a saved-policy directory.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// File name of the description inside a saved-policy directory.
pub const CONFIG_FILE: &str = "policy.json";
/// The `format` tag written to [`CONFIG_FILE`].
pub const FORMAT: &str = "rl-policy/MlpPolicy/1";

/// A float bound in JSON: a number, or `"inf"` / `"-inf"` (JSON has no infinities).
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Bound {
    Finite(f32),
    Special(String),
}

impl Bound {
    fn of(x: f32) -> Bound {
        if x.is_finite() {
            Bound::Finite(x)
        } else if x > 0.0 {
            Bound::Special("inf".into())
        } else {
            Bound::Special("-inf".into())
        }
    }

    fn value(&self) -> Option<f32> {
        match self {
            Bound::Finite(x) => Some(*x),
            Bound::Special(s) if s == "inf" => Some(f32::INFINITY),
            Bound::Special(s) if s == "-inf" => Some(f32::NEG_INFINITY),
            Bound::Special(_) => None,
        }
    }
}

/// A space as stored in [`CONFIG_FILE`].
#[derive(Serialize, Deserialize)]
#[serde(tag = "type")]
enum SpaceSpec {
    Discrete {
        n: u64,
        start: i64,
    },
    Box {
        low: Vec<Bound>,
        high: Vec<Bound>,
        shape: Vec<usize>,
    },
}

impl SpaceSpec {
    fn of(space: &Space) -> SpaceSpec {
        match space {
            Space::Discrete { n, start } => SpaceSpec::Discrete {
                n: *n,
                start: *start,
            },
            Space::Box(b) => SpaceSpec::Box {
                low: b.low().iter().map(|&x| Bound::of(x)).collect(),
                high: b.high().iter().map(|&x| Bound::of(x)).collect(),
                shape: b.shape().to_vec(),
            },
        }
    }

    fn space(&self) -> std::result::Result<Space, String> {
        match self {
            SpaceSpec::Discrete { n, start } => Ok(Space::Discrete {
                n: *n,
                start: *start,
            }),
            SpaceSpec::Box { low, high, shape } => {
                let vals = |v: &[Bound]| -> std::result::Result<Vec<f32>, String> {
                    v.iter()
                        .map(|b| {
                            b.value()
                                .ok_or_else(|| "a Box bound is not a number".to_string())
                        })
                        .collect()
                };
                Space::boxed(vals(low)?, vals(high)?, shape.clone()).map_err(|e| e.to_string())
            }
        }
    }
}

/// The content of [`CONFIG_FILE`].
#[derive(Serialize, Deserialize)]
struct SavedPolicy {
    format: String,
    config: MlpPolicyConfig,
    observation_space: SpaceSpec,
    action_space: SpaceSpec,
}

fn io_err(path: &Path, source: std::io::Error) -> PolicyError {
    PolicyError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn corrupt(path: &Path, reason: impl std::fmt::Display) -> PolicyError {
    PolicyError::Corrupt {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// Reads a whole file of at most [`MAX_FILE_BYTES`], checking the size before reading.
pub(crate) fn read_bounded(path: &Path) -> Result<Vec<u8>> {
    let file = std::fs::File::open(path).map_err(|e| io_err(path, e))?;
    let len = file.metadata().map_err(|e| io_err(path, e))?.len();
    let too_big = |len: u64| PolicyError::LimitExceeded {
        path: path.display().to_string(),
        what: format!("a file of {len} bytes"),
        limit: MAX_FILE_BYTES,
    };
    if len > MAX_FILE_BYTES {
        return Err(too_big(len));
    }
    // `take` also bounds a file that grows while it is read.
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| io_err(path, e))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_big(bytes.len() as u64));
    }
    Ok(bytes)
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a crash never leaves a
/// half-written file under the final name.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp: PathBuf = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(|e| io_err(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io_err(path, e))
}

impl MlpPolicy {
    /// Saves the policy into directory `dir` (created if needed): [`WEIGHTS_FILE`] and
    /// [`CONFIG_FILE`]. Reload with [`MlpPolicy::load`].
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        let tensors = self.state_dict()?;
        let w_path = dir.join(WEIGHTS_FILE);
        let tmp = w_path.with_extension("tmp");
        candle_core::safetensors::save(&tensors, &tmp).map_err(|e| PolicyError::Corrupt {
            path: tmp.display().to_string(),
            reason: format!("cannot write the weights: {e}"),
        })?;
        std::fs::rename(&tmp, &w_path).map_err(|e| io_err(&w_path, e))?;
        let saved = SavedPolicy {
            format: FORMAT.into(),
            config: self.config().clone(),
            observation_space: SpaceSpec::of(self.observation_space()),
            action_space: SpaceSpec::of(self.action_space()),
        };
        let json = serde_json::to_vec_pretty(&saved).map_err(|e| {
            PolicyError::InvalidArgument(format!("cannot serialize the policy description: {e}"))
        })?;
        write_atomic(&dir.join(CONFIG_FILE), &json)
    }

    /// Loads a policy saved by [`MlpPolicy::save`] onto `device`. Missing, corrupt or
    /// inconsistent files give an error naming the file.
    pub fn load(dir: impl AsRef<Path>, device: &Device) -> Result<MlpPolicy> {
        let dir = dir.as_ref();
        let cfg_path = dir.join(CONFIG_FILE);
        let text = std::fs::read(&cfg_path).map_err(|e| io_err(&cfg_path, e))?;
        let saved: SavedPolicy =
            serde_json::from_slice(&text).map_err(|e| corrupt(&cfg_path, e))?;
        if saved.format != FORMAT {
            return Err(corrupt(
                &cfg_path,
                format!("format {:?}, expected {FORMAT:?}", saved.format),
            ));
        }
        let obs_space = saved
            .observation_space
            .space()
            .map_err(|e| corrupt(&cfg_path, e))?;
        let act_space = saved
            .action_space
            .space()
            .map_err(|e| corrupt(&cfg_path, e))?;
        let w_path = dir.join(WEIGHTS_FILE);
        let bytes = std::fs::read(&w_path).map_err(|e| io_err(&w_path, e))?;
        let tensors = candle_core::safetensors::load_buffer(&bytes, device)
            .map_err(|e| corrupt(&w_path, e))?;
        MlpPolicy::from_named_tensors(&obs_space, &act_space, saved.config, &tensors, device)
            .map_err(|e| corrupt(&w_path, e))
    }
}
