//! Saving and loading an [`MlpPolicy`]: one self-describing, checksummed file, replaced
//! atomically.
//!
//! # Format (version 2, written by [`MlpPolicy::save`], [`QNetwork::save`], [`SacModel::save`]
//! and [`Td3Model::save`])
//!
//! `MlpPolicy::save(dir)` writes a directory holding one file, [`MODEL_FILE`]
//! (`policy.safetensors`). It is an ordinary [safetensors] file, so any safetensors tool reads
//! the weights:
//!
//! - one float32 tensor per parameter, named by SB3's `state_dict` keys, in name order;
//! - the header's `__metadata__` string map holds
//!   - `format`: [`MODEL_FORMAT`] (`rl-policy/MlpPolicy/2`) or, for a [`QNetwork`] (DQN's
//!     Q-function, parameters `q_net.{0,2,..}.{weight,bias}`), [`QNETWORK_FORMAT`]
//!     (`rl-policy/QNetwork/1`), or for SAC's networks (`actor.*`, `critic.*`,
//!     `critic_target.*`) [`SAC_FORMAT`] (`rl-policy/SacPolicy/1`), or for TD3's and DDPG's
//!     (`actor.*`, `actor_target.*`, `critic.*`, `critic_target.*`) [`TD3_FORMAT`]
//!     (`rl-policy/Td3Policy/1`), with SB3's `state_dict` names (see
//!     [`crate::offpolicy_model`]);
//!   - `policy`: JSON with the same `format` tag, the model's config ([`MlpPolicyConfig`],
//!     [`QNetworkConfig`], [`SacModelConfig`] or [`Td3ModelConfig`]) and both spaces
//!     (infinite Box bounds as `"inf"` / `"-inf"`), so the file reloads without restating its
//!     architecture;
//!   - `checksum`: `fnv1a64:` and 16 hex digits, FNV-1a (64 bit) over a canonical encoding of
//!     every other metadata entry (sorted by key) and every tensor (sorted by name: name,
//!     dtype, shape, raw bytes), each piece length-prefixed.
//!
//! Later additions (normalization statistics, say) go in as further tensors and metadata
//! entries. The checksum scheme is fixed across format versions and covers whatever entries a
//! file has, so a file of a later version is recognized as intact and refused as
//! [`PolicyError::Unsupported`]; a reader that meets a tensor it does not know refuses the file
//! and names the tensor.
//!
//! Every kind goes through one save path (atomic, below) and one loader (checksum, format
//! tag, description, tensors); [`SavedModel::load`] opens any of them and says which it is,
//! and [`SavedModel::open`] also takes Stable-Baselines3 zips (A2C, PPO, DQN, SAC, TD3, DDPG).
//!
//! # Integrity
//!
//! [`MlpPolicy::load`] recomputes the checksum and refuses a file whose checksum differs
//! ([`PolicyError::Corrupt`], "checksum mismatch"). Any damage either breaks the safetensors
//! structure, or changes what the checksum covers, or leaves the loaded model bit-identical
//! (padding that is not part of any value): a flipped bit never loads as a different model.
//! FNV-1a detects every change of one byte of the covered data with certainty and others with
//! probability 1 - 2^-64; it guards against damage, not against an adversary who rewrites the
//! checksum. (Builds for the fuzz targets, `cfg(fuzzing)`, skip the comparison so that mutated
//! files reach the checks behind it.) On top of that, every loader checks that each tensor has exactly the shape the
//! description implies and that every value is finite (see [`crate::limits`] for the sizes
//! a file may declare).
//!
//! # Atomicity
//!
//! The file is written as `policy.safetensors.tmp<pid>-<n>` in the same directory, flushed
//! (`fsync`), renamed over `policy.safetensors` (one atomic `rename`), and the directory is
//! flushed. A save that is killed or fails at any moment leaves either the previous model or
//! the new one under the real name, never a mix. After a successful save the files of the
//! legacy layout (below) and temporary files of saves whose process no longer runs (on
//! systems without `/proc`: older than an hour) are removed, so interrupted saves never
//! accumulate.
//!
//! # Legacy layout (version 1)
//!
//! Directories written before version 2 hold [`WEIGHTS_FILE`] (`model.safetensors`, the
//! tensors) and [`CONFIG_FILE`] (`policy.json`, tagged [`FORMAT`]). [`MlpPolicy::load`] still
//! reads them (with the same shape, size and finiteness checks, but there is no checksum to
//! verify) when a directory has no [`MODEL_FILE`]. Saving into such a directory replaces
//! them with [`MODEL_FILE`].
//!
//! [safetensors]: https://huggingface.co/docs/safetensors

use crate::error::{PolicyError, ReadError, Result};
use crate::limits::{MAX_DESCRIPTION_BYTES, MAX_FILE_BYTES, MAX_TENSOR_RANK};
use crate::mlp::{MlpPolicy, MlpPolicyConfig};
use crate::offpolicy_model::{
    self, SacModel, SacModelConfig, SacNetworks, Td3Model, Td3ModelConfig, Td3Networks,
};
use crate::qnet::{QFunction, QNetwork, QNetworkConfig};
use crate::validate::{self, HostTensor};
use candle_core::Var;
use candle_core::{DType, Device};
use rl_env::Space;
use safetensors::tensor::{Dtype, SafeTensors};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The single file inside a saved-policy directory (format version 2).
pub const MODEL_FILE: &str = "policy.safetensors";
/// The `format` tag of [`MODEL_FILE`].
pub const MODEL_FORMAT: &str = "rl-policy/MlpPolicy/2";
/// The `format` tag of a [`MODEL_FILE`] holding a [`QNetwork`] (DQN's Q-function).
pub const QNETWORK_FORMAT: &str = "rl-policy/QNetwork/1";
/// The `format` tag of a [`MODEL_FILE`] holding a [`SacModel`] (SAC's actor, critics and
/// target critics).
pub const SAC_FORMAT: &str = "rl-policy/SacPolicy/1";
/// The `format` tag of a [`MODEL_FILE`] holding a [`Td3Model`] (TD3's or DDPG's actor, target
/// actor, critics and target critics).
pub const TD3_FORMAT: &str = "rl-policy/Td3Policy/1";
/// Every format tag this version reads from a [`MODEL_FILE`].
const MODEL_FORMATS: [&str; 4] = [MODEL_FORMAT, QNETWORK_FORMAT, SAC_FORMAT, TD3_FORMAT];
/// Legacy layout: file name of the weights inside a saved-policy directory.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// Legacy layout: file name of the description inside a saved-policy directory.
pub const CONFIG_FILE: &str = "policy.json";
/// Legacy layout: the `format` tag of [`CONFIG_FILE`].
pub const FORMAT: &str = "rl-policy/MlpPolicy/1";

/// Prefix of the checksum value in the metadata.
const CHECKSUM_PREFIX: &str = "fnv1a64:";
/// Temporary files of interrupted saves on systems without `/proc` are removed after this
/// long (a save takes well under a second; an hour leaves any slow disk alone).
const STALE_TEMP_AGE: Duration = Duration::from_secs(3600);
/// Temporary files written by the previous format's saves.
const LEGACY_TEMP_FILES: [&str; 2] = ["model.tmp", "policy.tmp"];

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

/// A space as stored in the description.
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

    /// The space, with its declared shape checked (overflow, [`crate::limits`], bound counts)
    /// before anything of that size exists.
    fn space(&self, what: &str) -> Result<Space, ReadError> {
        match self {
            SpaceSpec::Discrete { n, start } => Ok(Space::Discrete {
                n: *n,
                start: *start,
            }),
            SpaceSpec::Box { low, high, shape } => {
                let n = validate::space_elements(shape, what)?;
                if low.len() != n || high.len() != n {
                    return Err(ReadError::Corrupt(format!(
                        "{what}: Box shape {shape:?} needs {n} bounds, the file has {} low and {} high",
                        low.len(),
                        high.len()
                    )));
                }
                let vals = |v: &[Bound]| -> Result<Vec<f32>, ReadError> {
                    v.iter()
                        .map(|b| {
                            b.value().ok_or_else(|| {
                                ReadError::Corrupt(format!("{what}: a Box bound is not a number"))
                            })
                        })
                        .collect()
                };
                Space::boxed(vals(low)?, vals(high)?, shape.clone())
                    .map_err(|e| ReadError::Corrupt(format!("{what}: {e}")))
            }
        }
    }
}

/// The description: `policy` in [`MODEL_FILE`]'s metadata, or the legacy [`CONFIG_FILE`].
/// `C` is the model's config ([`MlpPolicyConfig`] or [`QNetworkConfig`]).
#[derive(Serialize, Deserialize)]
struct Saved<C> {
    format: String,
    config: C,
    observation_space: SpaceSpec,
    action_space: SpaceSpec,
}

/// The description of a saved [`MlpPolicy`].
type SavedPolicy = Saved<MlpPolicyConfig>;

impl<C: DeserializeOwned> Saved<C> {
    /// Parses a description tagged `format` and builds its spaces.
    fn parse(json: &[u8], format: &str) -> Result<(C, Space, Space), ReadError> {
        if json.len() > MAX_DESCRIPTION_BYTES {
            return Err(ReadError::limit(
                format!("a description of {} bytes", json.len()),
                MAX_DESCRIPTION_BYTES,
            ));
        }
        let saved: Saved<C> = serde_json::from_slice(json)
            .map_err(|e| ReadError::Corrupt(format!("the description: {e}")))?;
        if saved.format != format {
            return Err(ReadError::Corrupt(format!(
                "format {:?}, expected {format:?}",
                saved.format
            )));
        }
        let obs = saved.observation_space.space("observation_space")?;
        let act = saved.action_space.space("action_space")?;
        Ok((saved.config, obs, act))
    }
}

pub(crate) fn io_err(path: &Path, source: std::io::Error) -> PolicyError {
    PolicyError::Io {
        path: path.display().to_string(),
        source,
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

/// FNV-1a, 64 bits, over length-prefixed pieces.
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn raw(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn u64(&mut self, v: u64) {
        self.raw(&v.to_le_bytes());
    }
    fn piece(&mut self, bytes: &[u8]) {
        self.u64(bytes.len() as u64);
        self.raw(bytes);
    }
}

/// One tensor as stored: name, dtype, shape, little-endian bytes.
pub(crate) struct StoredTensor<'a> {
    pub(crate) dtype: Dtype,
    pub(crate) shape: Vec<usize>,
    pub(crate) data: &'a [u8],
}

/// Domain tag of the checksum. The scheme stays the same when the format changes, so a file
/// of any version can be told intact or damaged.
const CHECKSUM_SCHEME: &str = "rl-policy checksum 1";

/// The checksum of the metadata (without `checksum`) and the tensors, as stored.
fn checksum(
    metadata: &BTreeMap<String, String>,
    tensors: &BTreeMap<String, StoredTensor>,
) -> String {
    let mut h = Fnv::new();
    h.piece(CHECKSUM_SCHEME.as_bytes());
    let meta: Vec<_> = metadata.iter().filter(|(k, _)| *k != "checksum").collect();
    h.u64(meta.len() as u64);
    for (k, v) in meta {
        h.piece(k.as_bytes());
        h.piece(v.as_bytes());
    }
    h.u64(tensors.len() as u64);
    for (name, t) in tensors {
        h.piece(name.as_bytes());
        h.piece(format!("{:?}", t.dtype).as_bytes());
        h.u64(t.shape.len() as u64);
        for &d in &t.shape {
            h.u64(d as u64);
        }
        h.piece(t.data);
    }
    format!("{CHECKSUM_PREFIX}{:016x}", h.0)
}

/// Decodes the tensors of a safetensors file into host f32 tensors (F32 or, in legacy files,
/// F64), by name.
fn host_tensors(
    tensors: &BTreeMap<String, StoredTensor>,
) -> Result<BTreeMap<String, HostTensor>, ReadError> {
    let mut out = BTreeMap::new();
    for (name, t) in tensors {
        if t.shape.len() > MAX_TENSOR_RANK {
            return Err(ReadError::limit(
                format!("tensor {name} of rank {}", t.shape.len()),
                MAX_TENSOR_RANK,
            ));
        }
        let data: Vec<f32> = match t.dtype {
            Dtype::F32 => t
                .data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Dtype::F64 => t
                .data
                .chunks_exact(8)
                .map(|b| {
                    f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32
                })
                .collect(),
            other => {
                return Err(ReadError::Corrupt(format!(
                    "tensor {name} has dtype {other:?}; saved policies hold float32"
                )))
            }
        };
        out.insert(
            name.clone(),
            HostTensor {
                shape: t.shape.clone(),
                data,
            },
        );
    }
    Ok(out)
}

/// Parses a safetensors file: its `__metadata__` (sorted) and its tensors (sorted by name).
/// The `safetensors` crate checks the header length, the JSON, and that the tensors' byte
/// ranges tile the data exactly with sizes matching dtype and shape (checked arithmetic).
#[allow(clippy::type_complexity)]
fn parse_safetensors(
    bytes: &[u8],
) -> Result<(BTreeMap<String, String>, BTreeMap<String, StoredTensor<'_>>), ReadError> {
    // The header's declared length, checked before the header is parsed.
    if let Some(len) = bytes.get(..8) {
        let mut n = [0u8; 8];
        n.copy_from_slice(len);
        let n = u64::from_le_bytes(n);
        if n > bytes.len() as u64 - 8 {
            return Err(ReadError::Corrupt(format!(
                "the safetensors header declares {n} bytes, the file holds {}",
                bytes.len()
            )));
        }
        if n > MAX_DESCRIPTION_BYTES as u64 {
            return Err(ReadError::limit(
                format!("a safetensors header of {n} bytes"),
                MAX_DESCRIPTION_BYTES,
            ));
        }
    }
    let (n, meta) = SafeTensors::read_metadata(bytes)
        .map_err(|e| ReadError::Corrupt(format!("not a readable safetensors file: {e}")))?;
    let data_start = n
        .checked_add(8)
        .ok_or_else(|| ReadError::Corrupt("header length overflows".into()))?;
    let metadata: BTreeMap<String, String> = meta
        .metadata()
        .as_ref()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    let mut tensors = BTreeMap::new();
    for (name, info) in meta.tensors() {
        let (s, e) = info.data_offsets;
        let data = data_start
            .checked_add(s)
            .zip(data_start.checked_add(e))
            .and_then(|(s, e)| bytes.get(s..e))
            .ok_or_else(|| ReadError::Corrupt(format!("tensor {name}: bad data offsets")))?;
        tensors.insert(
            name,
            StoredTensor {
                dtype: info.dtype,
                shape: info.shape.clone(),
                data,
            },
        );
    }
    Ok((metadata, tensors))
}

/// The bytes of a [`MODEL_FILE`] tagged `format`, holding `description` (the `policy` JSON)
/// and `tensors` (float32), with its checksum.
fn encode_model_file(
    format: &str,
    description: String,
    tensors: &BTreeMap<String, StoredTensor>,
) -> Result<Vec<u8>> {
    let mut metadata = BTreeMap::new();
    metadata.insert("format".to_string(), format.to_string());
    metadata.insert("policy".to_string(), description);
    encode_with_metadata(metadata, tensors)
}

/// The bytes of a [`MODEL_FILE`] holding `metadata` (its `checksum` entry is recomputed) and
/// `tensors` (float32).
pub(crate) fn encode_with_metadata(
    mut metadata: BTreeMap<String, String>,
    tensors: &BTreeMap<String, StoredTensor>,
) -> Result<Vec<u8>> {
    metadata.remove("checksum");
    metadata.insert("checksum".to_string(), checksum(&metadata, tensors));
    let json_err = |e: serde_json::Error| {
        PolicyError::InvalidArgument(format!("cannot serialize the safetensors header: {e}"))
    };
    // The safetensors header: metadata, then each tensor's dtype, shape and byte range.
    let mut header = serde_json::Map::new();
    header.insert(
        "__metadata__".into(),
        serde_json::to_value(&metadata).map_err(json_err)?,
    );
    let mut offset = 0usize;
    for (name, t) in tensors {
        let end = offset + t.data.len();
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": "F32", "shape": t.shape, "data_offsets": [offset, end]}),
        );
        offset = end;
    }
    let mut header = serde_json::to_vec(&header).map_err(json_err)?;
    // Pad to 8 bytes so the data is aligned, as safetensors writers do.
    header.resize(header.len().next_multiple_of(8), b' ');
    let mut out = Vec::with_capacity(8 + header.len() + offset);
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(&header);
    for t in tensors.values() {
        out.extend_from_slice(t.data);
    }
    Ok(out)
}

/// A [`MODEL_FILE`]'s metadata and tensors, after checking that it has a `format` tag and
/// that its checksum matches (the first checks of every reader of model files).
#[allow(clippy::type_complexity)]
pub(crate) fn verified_model_file<'a>(
    bytes: &'a [u8],
    path: &str,
) -> Result<(BTreeMap<String, String>, BTreeMap<String, StoredTensor<'a>>)> {
    let (metadata, tensors) = parse_safetensors(bytes).map_err(|e| e.at(path))?;
    let corrupt = |m: String| ReadError::Corrupt(m).at(path);
    if !metadata.contains_key("format") {
        return Err(corrupt(
            "no `format` in the metadata: not a saved rl-policy model".into(),
        ));
    }
    let stored = metadata
        .get("checksum")
        .ok_or_else(|| corrupt("no `checksum` in the metadata".into()))?;
    let computed = checksum(&metadata, &tensors);
    // Fuzzing builds (cargo-fuzz sets `cfg(fuzzing)`) skip the comparison, or mutated files
    // would never get past it to the description and tensor checks.
    if *stored != computed && !cfg!(fuzzing) {
        return Err(corrupt(format!(
            "checksum mismatch (stored {stored}, computed {computed}): the file is damaged"
        )));
    }
    Ok((metadata, tensors))
}

/// Reads [`MODEL_FILE`] bytes: checksum first, then the format tag, then the description,
/// then the model it describes.
fn load_model_file(bytes: &[u8], device: &Device, path: &str) -> Result<SavedModel> {
    let (metadata, tensors) = verified_model_file(bytes, path)?;
    let corrupt = |m: String| ReadError::Corrupt(m).at(path);
    let format = &metadata["format"];
    // Intact, so an unknown tag is a file from another version, not damage.
    if !MODEL_FORMATS.contains(&format.as_str()) {
        return Err(PolicyError::Unsupported(format!(
            "{path}: format {format:?} (this version reads {MODEL_FORMATS:?})"
        )));
    }
    let description = metadata
        .get("policy")
        .ok_or_else(|| corrupt("no `policy` description in the metadata".into()))?;
    if format == QNETWORK_FORMAT {
        let (config, obs, act) = Saved::<QNetworkConfig>::parse(description.as_bytes(), format)
            .map_err(|e| e.at(path))?;
        let host = host_tensors(&tensors).map_err(|e| e.at(path))?;
        validate::build_qnetwork(&obs, &act, config, host, device, path).map(SavedModel::QNetwork)
    } else if format == SAC_FORMAT {
        let (config, obs, act) = Saved::<SacModelConfig>::parse(description.as_bytes(), format)
            .map_err(|e| e.at(path))?;
        let host = host_tensors(&tensors).map_err(|e| e.at(path))?;
        offpolicy_model::build_sac(obs, act, config, host, device, path).map(SavedModel::Sac)
    } else if format == TD3_FORMAT {
        let (config, obs, act) = Saved::<Td3ModelConfig>::parse(description.as_bytes(), format)
            .map_err(|e| e.at(path))?;
        let host = host_tensors(&tensors).map_err(|e| e.at(path))?;
        offpolicy_model::build_td3(obs, act, config, host, device, path).map(SavedModel::Td3)
    } else {
        let (config, obs, act) =
            SavedPolicy::parse(description.as_bytes(), format).map_err(|e| e.at(path))?;
        let host = host_tensors(&tensors).map_err(|e| e.at(path))?;
        validate::build_policy(&obs, &act, config, host, device, path).map(SavedModel::MlpPolicy)
    }
}

/// A model loaded by [`SavedModel::load`]: whichever kind the file holds.
#[derive(Debug)]
#[non_exhaustive]
pub enum SavedModel {
    /// An actor-critic policy (A2C, PPO, REINFORCE), format [`MODEL_FORMAT`].
    MlpPolicy(MlpPolicy),
    /// A Q-network (DQN), format [`QNETWORK_FORMAT`].
    QNetwork(QNetwork),
    /// SAC's actor, critics and target critics, format [`SAC_FORMAT`].
    Sac(SacModel),
    /// TD3's or DDPG's actor, critics and their targets, format [`TD3_FORMAT`].
    Td3(Td3Model),
}

impl SavedModel {
    /// Loads any model saved by [`MlpPolicy::save`], [`QNetwork::save`], [`SacModel::save`]
    /// or [`Td3Model::save`] (or `save_policy` of `rl_algos`' SAC/TD3/DDPG) from `path` (the
    /// directory, or the [`MODEL_FILE`] inside it; a legacy [`MlpPolicy`] directory loads too)
    /// onto `device`, with the checksum, shape, size and finiteness checks of the
    /// [module docs](crate::io).
    pub fn load(path: impl AsRef<Path>, device: &Device) -> Result<SavedModel> {
        let path = path.as_ref();
        let file = if path.is_file() {
            path.to_path_buf()
        } else {
            path.join(MODEL_FILE)
        };
        match std::fs::metadata(&file) {
            Ok(_) => {
                let bytes = read_bounded(&file)?;
                load_model_file(&bytes, device, &file.display().to_string())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let cfg_path = path.join(CONFIG_FILE);
                let w_path = path.join(WEIGHTS_FILE);
                let config = read_bounded(&cfg_path)?;
                let weights = read_bounded(&w_path)?;
                load_legacy(
                    &config,
                    &cfg_path.display().to_string(),
                    &weights,
                    &w_path.display().to_string(),
                    device,
                )
                .map(SavedModel::MlpPolicy)
            }
            Err(e) => Err(io_err(&file, e)),
        }
    }

    /// Opens any model file this crate reads, for playing it: what [`SavedModel::load`] reads
    /// (a directory, or its [`MODEL_FILE`]), or a Stable-Baselines3 zip (told apart by its
    /// `PK` signature): A2C/PPO give an [`MlpPolicy`] (see [`MlpPolicy::from_sb3_zip`]), DQN
    /// its online [`QNetwork`] (see [`QNetwork::from_sb3_zip`]), SAC a [`SacModel`] and
    /// TD3/DDPG a [`Td3Model`] (see [`crate::Sb3Sac`] and [`crate::Sb3Td3`]).
    pub fn open(path: impl AsRef<Path>, device: &Device) -> Result<SavedModel> {
        let path = path.as_ref();
        if !path.is_file() {
            return SavedModel::load(path, device);
        }
        let bytes = read_bounded(path)?;
        let shown = path.display().to_string();
        if bytes.starts_with(b"PK") {
            use crate::sb3_offpolicy::{zip_kind, ZipKind};
            match zip_kind(&bytes, &shown)? {
                ZipKind::Sac => {
                    return SacModel::from_zip_bytes_at(&bytes, device, &shown).map(SavedModel::Sac)
                }
                ZipKind::Td3 => {
                    return Td3Model::from_zip_bytes_at(&bytes, device, &shown).map(SavedModel::Td3)
                }
                ZipKind::Other => {}
            }
            Ok(match crate::sb3::import_any(&bytes, device, &shown)? {
                crate::sb3::Sb3Model::ActorCritic(p) => SavedModel::MlpPolicy(p),
                crate::sb3::Sb3Model::Dqn(d) => SavedModel::QNetwork(d.q_net),
            })
        } else {
            load_model_file(&bytes, device, &shown)
        }
    }

    /// [`SavedModel::load`] from the bytes of a [`MODEL_FILE`].
    pub fn from_bytes(bytes: &[u8], device: &Device) -> Result<SavedModel> {
        load_model_file(bytes, device, "<saved model>")
    }

    /// What the file held: `"MlpPolicy"`, `"QNetwork"`, `"SacPolicy"` or `"Td3Policy"`.
    pub fn kind(&self) -> &'static str {
        match self {
            SavedModel::MlpPolicy(_) => "MlpPolicy",
            SavedModel::QNetwork(_) => "QNetwork",
            SavedModel::Sac(_) => "SacPolicy",
            SavedModel::Td3(_) => "Td3Policy",
        }
    }

    /// The observation space the model reads.
    pub fn observation_space(&self) -> &Space {
        match self {
            SavedModel::MlpPolicy(p) => p.observation_space(),
            SavedModel::QNetwork(q) => q.observation_space(),
            SavedModel::Sac(m) => &m.observation_space,
            SavedModel::Td3(m) => &m.observation_space,
        }
    }

    /// The action space the model acts in.
    pub fn action_space(&self) -> &Space {
        match self {
            SavedModel::MlpPolicy(p) => p.action_space(),
            SavedModel::QNetwork(q) => q.action_space(),
            SavedModel::Sac(m) => &m.action_space,
            SavedModel::Td3(m) => &m.action_space,
        }
    }

    fn into_mlp(self, path: &str) -> Result<MlpPolicy> {
        match self {
            SavedModel::MlpPolicy(p) => Ok(p),
            other => Err(PolicyError::Unsupported(format!(
                "{path} holds a {}, not an MlpPolicy",
                other.kind()
            ))),
        }
    }

    fn into_qnetwork(self, path: &str) -> Result<QNetwork> {
        match self {
            SavedModel::QNetwork(q) => Ok(q),
            other => Err(PolicyError::Unsupported(format!(
                "{path} holds a {}, not a QNetwork",
                other.kind()
            ))),
        }
    }

    fn into_sac(self, path: &str) -> Result<SacModel> {
        match self {
            SavedModel::Sac(m) => Ok(m),
            other => Err(PolicyError::Unsupported(format!(
                "{path} holds a {}, not a SacPolicy",
                other.kind()
            ))),
        }
    }

    fn into_td3(self, path: &str) -> Result<Td3Model> {
        match self {
            SavedModel::Td3(m) => Ok(m),
            other => Err(PolicyError::Unsupported(format!(
                "{path} holds a {}, not a Td3Policy",
                other.kind()
            ))),
        }
    }
}

/// Parameters as stored: by name, shape and float32 little-endian bytes.
type ParameterBytes = BTreeMap<String, (Vec<usize>, Vec<u8>)>;

/// A model's parameters as float32 little-endian bytes by name; a NaN or infinite value is an
/// error (such a model could not be loaded again).
fn parameter_bytes(vars: Vec<(String, Var)>) -> Result<ParameterBytes> {
    let mut values = BTreeMap::new();
    for (name, var) in vars {
        let t = var.as_tensor();
        let flat = t.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
        if let Some((index, &value)) = flat.iter().enumerate().find(|(_, x)| !x.is_finite()) {
            return Err(PolicyError::NonFiniteWeight {
                path: "<model being saved>".into(),
                tensor: name,
                index,
                value,
            });
        }
        let bytes = flat.iter().flat_map(|x| x.to_le_bytes()).collect();
        values.insert(name, (t.dims().to_vec(), bytes));
    }
    Ok(values)
}

/// The bytes of a [`MODEL_FILE`] tagged `format` for a model with this config, spaces and
/// parameters.
fn encode_model<C: Serialize>(
    format: &str,
    config: &C,
    observation_space: &Space,
    action_space: &Space,
    vars: Vec<(String, Var)>,
) -> Result<Vec<u8>> {
    let values = parameter_bytes(vars)?;
    let description = Saved {
        format: format.to_string(),
        config,
        observation_space: SpaceSpec::of(observation_space),
        action_space: SpaceSpec::of(action_space),
    };
    let description = serde_json::to_string(&description).map_err(|e| {
        PolicyError::InvalidArgument(format!("cannot serialize the model description: {e}"))
    })?;
    let stored: BTreeMap<String, StoredTensor> = values
        .iter()
        .map(|(n, (shape, data))| {
            (
                n.clone(),
                StoredTensor {
                    dtype: Dtype::F32,
                    shape: shape.clone(),
                    data,
                },
            )
        })
        .collect();
    encode_model_file(format, description, &stored)
}

/// Reads the legacy layout from the bytes of its two files.
pub(crate) fn load_legacy(
    config_json: &[u8],
    config_path: &str,
    weights: &[u8],
    weights_path: &str,
    device: &Device,
) -> Result<MlpPolicy> {
    let (config, obs, act) =
        SavedPolicy::parse(config_json, FORMAT).map_err(|e| e.at(config_path))?;
    let (_, tensors) = parse_safetensors(weights).map_err(|e| e.at(weights_path))?;
    let host = host_tensors(&tensors).map_err(|e| e.at(weights_path))?;
    validate::build_policy(&obs, &act, config, host, device, weights_path)
}

/// Points of a save where a crash can happen; tests stop a save there (without cleaning up,
/// as a killed process would) to check that the previous model survives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(test), allow(dead_code))]
enum Stage {
    /// Half the temporary file is written.
    PartialWrite,
    /// The temporary file is written but not flushed.
    Written,
    /// The temporary file is flushed, not yet renamed.
    Synced,
    /// Renamed into place; the directory is not flushed, nothing is cleaned up.
    Renamed,
}

/// Distinguishes the temporary files of concurrent saves within one process.
static SAVE_COUNTER: AtomicU64 = AtomicU64::new(0);

fn interrupted(stage: Stage, tmp: &Path) -> PolicyError {
    io_err(
        tmp,
        std::io::Error::other(format!("save interrupted at {stage:?} (test)")),
    )
}

/// Flushes directory `dir`'s entries (a rename is durable only once its directory is).
fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io_err(dir, e))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Whether process `pid` may still be running (so its temporary file may be in use).
fn may_be_running(pid: u32, file: &Path) -> bool {
    if Path::new("/proc/self").exists() {
        Path::new(&format!("/proc/{pid}")).exists()
    } else {
        // No way to ask: only files old enough to be certainly abandoned are removed.
        std::fs::metadata(file)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_none_or(|age| age < STALE_TEMP_AGE)
    }
}

/// After a successful save: removes the legacy layout's files and temporary files left by
/// saves that were interrupted (by processes that no longer run). Best effort: the new model
/// is already in place, so a file that cannot be removed is left for the next save.
fn clean_up(dir: &Path, own_pid: u32) {
    for legacy in [WEIGHTS_FILE, CONFIG_FILE].iter().chain(&LEGACY_TEMP_FILES) {
        let _ = std::fs::remove_file(dir.join(legacy));
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let prefix = format!("{MODEL_FILE}.tmp");
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
            continue;
        };
        let Some(pid) = rest
            .split_once('-')
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let path = entry.path();
        if pid != own_pid && !may_be_running(pid, &path) {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// Writes the bytes of a [`MODEL_FILE`] into `dir` through the atomic save path.
pub(crate) fn save_model_file_bytes(bytes: &[u8], dir: &Path) -> Result<()> {
    save_model_bytes(bytes, dir, std::process::id(), None)
}

/// Writes `bytes` as [`MODEL_FILE`] into `dir` atomically, as process `pid`, stopping at
/// `interrupt` (tests only): the one save path of every model kind.
fn save_model_bytes(bytes: &[u8], dir: &Path, pid: u32, interrupt: Option<Stage>) -> Result<()> {
    let existed = dir.is_dir();
    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    if !existed {
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
    }
    let n = SAVE_COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp: PathBuf = dir.join(format!("{MODEL_FILE}.tmp{pid}-{n}"));
    let result = (|| {
        let mut f = std::fs::File::create_new(&tmp).map_err(|e| io_err(&tmp, e))?;
        if interrupt == Some(Stage::PartialWrite) {
            f.write_all(&bytes[..bytes.len() / 2])
                .map_err(|e| io_err(&tmp, e))?;
            return Err(interrupted(Stage::PartialWrite, &tmp));
        }
        f.write_all(bytes).map_err(|e| io_err(&tmp, e))?;
        if interrupt == Some(Stage::Written) {
            return Err(interrupted(Stage::Written, &tmp));
        }
        f.sync_all().map_err(|e| io_err(&tmp, e))?;
        drop(f);
        if interrupt == Some(Stage::Synced) {
            return Err(interrupted(Stage::Synced, &tmp));
        }
        let dest = dir.join(MODEL_FILE);
        std::fs::rename(&tmp, &dest).map_err(|e| io_err(&dest, e))?;
        if interrupt == Some(Stage::Renamed) {
            return Err(interrupted(Stage::Renamed, &tmp));
        }
        sync_dir(dir)
    })();
    match result {
        Ok(()) => {
            clean_up(dir, pid);
            Ok(())
        }
        Err(e) => {
            // A real failure removes its temporary file; a simulated crash leaves it, as
            // a killed process would.
            if interrupt.is_none() {
                let _ = std::fs::remove_file(&tmp);
            }
            Err(e)
        }
    }
}

impl MlpPolicy {
    /// The policy as the bytes of one self-describing, checksummed [`MODEL_FILE`] (see the
    /// [module docs](crate::io)); [`MlpPolicy::load_from_bytes`] reads it back. A parameter
    /// that is NaN or infinite is an error: such a model could not be loaded again.
    pub fn save_to_bytes(&self) -> Result<Vec<u8>> {
        encode_model(
            MODEL_FORMAT,
            self.config(),
            self.observation_space(),
            self.action_space(),
            crate::policy::StochasticPolicy::trainable_vars(self),
        )
    }

    /// Loads a policy from the bytes of a [`MODEL_FILE`] (what [`MlpPolicy::save_to_bytes`]
    /// returns) onto `device`, verifying its checksum, shapes and values.
    pub fn load_from_bytes(bytes: &[u8], device: &Device) -> Result<MlpPolicy> {
        load_model_file(bytes, device, "<saved policy>")?.into_mlp("<saved policy>")
    }

    /// Saves the policy into directory `dir` (created if needed) as one file, [`MODEL_FILE`],
    /// replaced atomically (see the [module docs](crate::io) for the format and the
    /// guarantees). Reload with [`MlpPolicy::load`] or [`SavedModel::load`].
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<()> {
        self.save_with(dir.as_ref(), std::process::id(), None)
    }

    /// [`MlpPolicy::save`] as process `pid`, stopping at `interrupt` (tests only).
    fn save_with(&self, dir: &Path, pid: u32, interrupt: Option<Stage>) -> Result<()> {
        save_model_bytes(&self.save_to_bytes()?, dir, pid, interrupt)
    }

    /// Loads a policy saved by [`MlpPolicy::save`] onto `device`. `path` is the directory
    /// `save` wrote (or the [`MODEL_FILE`] inside it); a directory in the legacy layout
    /// ([`WEIGHTS_FILE`] + [`CONFIG_FILE`]) loads too. Missing, damaged (checksum),
    /// oversized or inconsistent files give an error naming the file; a saved [`QNetwork`]
    /// is [`PolicyError::Unsupported`] (load it with [`QNetwork::load`] or
    /// [`SavedModel::load`]).
    pub fn load(path: impl AsRef<Path>, device: &Device) -> Result<MlpPolicy> {
        let path = path.as_ref();
        SavedModel::load(path, device)?.into_mlp(&path.display().to_string())
    }
}

impl QNetwork {
    /// The network as the bytes of one self-describing, checksummed [`MODEL_FILE`] tagged
    /// [`QNETWORK_FORMAT`] (config, spaces and the `q_net.*` parameters; see the
    /// [module docs](crate::io)). A NaN or infinite parameter is an error.
    pub fn save_to_bytes(&self) -> Result<Vec<u8>> {
        encode_model(
            QNETWORK_FORMAT,
            self.config(),
            self.observation_space(),
            self.action_space(),
            self.trainable_vars(),
        )
    }

    /// Loads a network from the bytes [`QNetwork::save_to_bytes`] returns onto `device`,
    /// verifying its checksum, shapes and values.
    pub fn load_from_bytes(bytes: &[u8], device: &Device) -> Result<QNetwork> {
        load_model_file(bytes, device, "<saved model>")?.into_qnetwork("<saved model>")
    }

    /// Saves the network into directory `dir` (created if needed) as one [`MODEL_FILE`],
    /// replaced atomically, through the same path as [`MlpPolicy::save`].
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<()> {
        save_model_bytes(
            &self.save_to_bytes()?,
            dir.as_ref(),
            std::process::id(),
            None,
        )
    }

    /// Loads a network saved by [`QNetwork::save`] (the directory or its [`MODEL_FILE`]) onto
    /// `device`; another kind of saved model is [`PolicyError::Unsupported`].
    pub fn load(path: impl AsRef<Path>, device: &Device) -> Result<QNetwork> {
        let path = path.as_ref();
        SavedModel::load(path, device)?.into_qnetwork(&path.display().to_string())
    }
}

impl SacNetworks<'_> {
    /// The networks as the bytes of one self-describing, checksummed [`MODEL_FILE`] tagged
    /// [`SAC_FORMAT`] (config, spaces, and the `actor.*`, `critic.*`, `critic_target.*`
    /// parameters). A NaN or infinite parameter is an error.
    pub fn save_to_bytes(&self) -> Result<Vec<u8>> {
        encode_model(
            SAC_FORMAT,
            &self.config(),
            self.observation_space,
            self.action_space,
            self.named_parameters()?,
        )
    }

    /// Saves the networks into directory `dir` (created if needed) as one [`MODEL_FILE`],
    /// replaced atomically, through the same path as [`MlpPolicy::save`]. Reload with
    /// [`SacModel::load`] or [`SavedModel::load`].
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<()> {
        save_model_bytes(
            &self.save_to_bytes()?,
            dir.as_ref(),
            std::process::id(),
            None,
        )
    }
}

impl Td3Networks<'_> {
    /// The networks as the bytes of one self-describing, checksummed [`MODEL_FILE`] tagged
    /// [`TD3_FORMAT`] (config, spaces, and the `actor.*`, `actor_target.*`, `critic.*`,
    /// `critic_target.*` parameters). A NaN or infinite parameter is an error.
    pub fn save_to_bytes(&self) -> Result<Vec<u8>> {
        encode_model(
            TD3_FORMAT,
            &self.config(),
            self.observation_space,
            self.action_space,
            self.named_parameters()?,
        )
    }

    /// Saves the networks into directory `dir` (created if needed) as one [`MODEL_FILE`],
    /// replaced atomically, through the same path as [`MlpPolicy::save`]. Reload with
    /// [`Td3Model::load`] or [`SavedModel::load`].
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<()> {
        save_model_bytes(
            &self.save_to_bytes()?,
            dir.as_ref(),
            std::process::id(),
            None,
        )
    }
}

impl SacModel {
    /// The model as the bytes of one [`MODEL_FILE`] (see [`SacNetworks::save_to_bytes`]).
    pub fn save_to_bytes(&self) -> Result<Vec<u8>> {
        self.networks().save_to_bytes()
    }

    /// Saves the model into directory `dir` (see [`SacNetworks::save`]).
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<()> {
        self.networks().save(dir)
    }

    /// Loads a model saved by [`SacModel::save`] (the directory or its [`MODEL_FILE`]) onto
    /// `device`, verifying its checksum, shapes and values; another kind of saved model is
    /// [`PolicyError::Unsupported`]. (SB3 zips: [`SavedModel::open`] or
    /// [`crate::Sb3Sac::from_zip`].)
    pub fn load(path: impl AsRef<Path>, device: &Device) -> Result<SacModel> {
        let path = path.as_ref();
        SavedModel::load(path, device)?.into_sac(&path.display().to_string())
    }

    /// Loads a model from the bytes [`SacModel::save_to_bytes`] returns onto `device`.
    pub fn load_from_bytes(bytes: &[u8], device: &Device) -> Result<SacModel> {
        load_model_file(bytes, device, "<saved model>")?.into_sac("<saved model>")
    }
}

impl Td3Model {
    /// The model as the bytes of one [`MODEL_FILE`] (see [`Td3Networks::save_to_bytes`]).
    pub fn save_to_bytes(&self) -> Result<Vec<u8>> {
        self.networks().save_to_bytes()
    }

    /// Saves the model into directory `dir` (see [`Td3Networks::save`]).
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<()> {
        self.networks().save(dir)
    }

    /// Loads a model saved by [`Td3Model::save`] (the directory or its [`MODEL_FILE`]) onto
    /// `device`, verifying its checksum, shapes and values; another kind of saved model is
    /// [`PolicyError::Unsupported`]. (SB3 zips: [`SavedModel::open`] or
    /// [`crate::Sb3Td3::from_zip`].)
    pub fn load(path: impl AsRef<Path>, device: &Device) -> Result<Td3Model> {
        let path = path.as_ref();
        SavedModel::load(path, device)?.into_td3(&path.display().to_string())
    }

    /// Loads a model from the bytes [`Td3Model::save_to_bytes`] returns onto `device`.
    pub fn load_from_bytes(bytes: &[u8], device: &Device) -> Result<Td3Model> {
        load_model_file(bytes, device, "<saved model>")?.into_td3("<saved model>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mlp::NetArch;

    /// No process has this id (Linux's largest is 2^22), so its temporary files are stale.
    const DEAD_PID: u32 = 999_999_999;

    fn scratch(tag: &str) -> PathBuf {
        let n = SAVE_COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("rl-policy-io-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn policy(seed: u64) -> MlpPolicy {
        let obs = Space::boxed(vec![-1.0; 3], vec![1.0; 3], vec![3]).unwrap();
        let act = Space::Discrete { n: 2, start: 0 };
        let config = MlpPolicyConfig {
            net_arch: NetArch {
                shared: vec![],
                pi: vec![8],
                vf: vec![8],
            },
            ..MlpPolicyConfig::default()
        };
        MlpPolicy::new(&obs, &act, config, seed, &Device::Cpu).unwrap()
    }

    fn weights(p: &MlpPolicy) -> Vec<(String, Vec<u32>)> {
        crate::policy::StochasticPolicy::trainable_vars(p)
            .into_iter()
            .map(|(n, v)| {
                let bits = v
                    .as_tensor()
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap()
                    .iter()
                    .map(|x| x.to_bits())
                    .collect();
                (n, bits)
            })
            .collect()
    }

    fn files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_save_interrupted_at_any_stage_leaves_a_loadable_model() {
        let (old, new) = (policy(1), policy(2));
        for stage in [
            Stage::PartialWrite,
            Stage::Written,
            Stage::Synced,
            Stage::Renamed,
        ] {
            let dir = scratch("interrupted");
            old.save(&dir).unwrap();
            let r = new.save_with(&dir, DEAD_PID, Some(stage));
            assert!(matches!(r, Err(PolicyError::Io { .. })), "{stage:?}: {r:?}");
            let loaded = MlpPolicy::load(&dir, &Device::Cpu).unwrap();
            let expected = if stage == Stage::Renamed { &new } else { &old };
            assert_eq!(weights(&loaded), weights(expected), "{stage:?}");
            if stage != Stage::Renamed {
                // The crashed save's temporary file is still there...
                assert_eq!(files(&dir).len(), 2, "{stage:?}: {:?}", files(&dir));
            }
            // ...until the next successful save, which removes it.
            new.save(&dir).unwrap();
            assert_eq!(files(&dir), [MODEL_FILE], "{stage:?}");
            let loaded = MlpPolicy::load(&dir, &Device::Cpu).unwrap();
            assert_eq!(weights(&loaded), weights(&new));
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }

    #[test]
    fn an_interrupted_save_over_the_legacy_layout_keeps_it() {
        let (old, new) = (policy(3), policy(4));
        let dir = scratch("legacy");
        std::fs::create_dir_all(&dir).unwrap();
        // The legacy layout, as version 1 wrote it.
        let sd = old.state_dict().unwrap();
        candle_core::safetensors::save(&sd, dir.join(WEIGHTS_FILE)).unwrap();
        let saved = SavedPolicy {
            format: FORMAT.into(),
            config: old.config().clone(),
            observation_space: SpaceSpec::of(old.observation_space()),
            action_space: SpaceSpec::of(old.action_space()),
        };
        std::fs::write(
            dir.join(CONFIG_FILE),
            serde_json::to_vec_pretty(&saved).unwrap(),
        )
        .unwrap();
        std::fs::write(dir.join("model.tmp"), b"half a file").unwrap();
        let loaded = MlpPolicy::load(&dir, &Device::Cpu).unwrap();
        assert_eq!(weights(&loaded), weights(&old));
        for stage in [Stage::PartialWrite, Stage::Written, Stage::Synced] {
            assert!(new.save_with(&dir, DEAD_PID, Some(stage)).is_err());
            let loaded = MlpPolicy::load(&dir, &Device::Cpu).unwrap();
            assert_eq!(weights(&loaded), weights(&old), "{stage:?}");
        }
        // A successful save replaces the legacy files (and every leftover) by one file.
        new.save(&dir).unwrap();
        assert_eq!(files(&dir), [MODEL_FILE]);
        let loaded = MlpPolicy::load(&dir, &Device::Cpu).unwrap();
        assert_eq!(weights(&loaded), weights(&new));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn temporary_files_of_running_processes_are_left_alone() {
        let p = policy(5);
        let dir = scratch("alive");
        std::fs::create_dir_all(&dir).unwrap();
        let ours = format!("{MODEL_FILE}.tmp{}-77", std::process::id());
        let init = format!("{MODEL_FILE}.tmp1-0"); // pid 1 always runs
        let dead = format!("{MODEL_FILE}.tmp{DEAD_PID}-3");
        let unrelated = format!("{MODEL_FILE}.tmpx");
        for name in [&ours, &init, &dead, &unrelated] {
            std::fs::write(dir.join(name), b"partial").unwrap();
        }
        p.save(&dir).unwrap();
        let mut expected = vec![MODEL_FILE.to_string(), init, ours, unrelated];
        expected.sort();
        assert_eq!(files(&dir), expected);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn safetensors_headers_are_bounded_before_parsing() {
        // Declared longer than the file: damage.
        let mut short = (1u64 << 40).to_le_bytes().to_vec();
        short.extend_from_slice(b"{}");
        assert!(matches!(
            parse_safetensors(&short),
            Err(ReadError::Corrupt(m)) if m.contains("declares")
        ));
        // Present but over the limit: refused without parsing 64 MiB of JSON.
        let n = MAX_DESCRIPTION_BYTES + 8;
        let mut big = (n as u64).to_le_bytes().to_vec();
        big.resize(8 + n, b' ');
        assert!(matches!(
            parse_safetensors(&big),
            Err(ReadError::Limit { .. })
        ));
    }

    /// A description can only be edited by rewriting the checksum; whoever does must still
    /// get an error for sizes that do not match the weights, before anything is allocated.
    #[test]
    fn hostile_descriptions_with_valid_checksums_are_rejected() {
        let p = policy(6);
        let bytes = p.save_to_bytes().unwrap();
        let (metadata, tensors) = parse_safetensors(&bytes).unwrap();
        let description: serde_json::Value = serde_json::from_str(&metadata["policy"]).unwrap();
        type Edit = fn(&mut serde_json::Value);
        let cases: [(Edit, &str); 6] = [
            (
                |d| d["config"]["net_arch"]["pi"] = serde_json::json!([100_000, 100_000]),
                "exceeds the limit",
            ),
            (
                |d| d["config"]["net_arch"]["pi"] = serde_json::json!([100, 100]),
                "mlp_extractor.policy_net.0.weight has shape [8, 3]",
            ),
            (
                |d| d["observation_space"]["shape"] = serde_json::json!([100_000, 100_000]),
                "exceeds the limit",
            ),
            (
                |d| d["observation_space"]["shape"] = serde_json::json!([usize::MAX, usize::MAX]),
                "overflows",
            ),
            (
                |d| d["observation_space"]["shape"] = serde_json::json!([4]),
                "needs 4 bounds",
            ),
            (
                |d| d["action_space"]["n"] = serde_json::json!(u64::MAX),
                "Discrete action space",
            ),
        ];
        for (edit, message) in cases {
            let mut d = description.clone();
            edit(&mut d);
            let forged = encode_model_file(MODEL_FORMAT, d.to_string(), &tensors).unwrap();
            let err = MlpPolicy::load_from_bytes(&forged, &Device::Cpu).unwrap_err();
            assert!(err.to_string().contains(message), "{message}: {err}");
        }
        // Tensors the description does not know are refused by name.
        let mut extra = parse_safetensors(&bytes).unwrap().1;
        let zeros = [0u8; 8];
        extra.insert(
            "normalization.obs_mean".into(),
            StoredTensor {
                dtype: Dtype::F32,
                shape: vec![2],
                data: &zeros,
            },
        );
        let forged = encode_model_file(MODEL_FORMAT, metadata["policy"].clone(), &extra).unwrap();
        let err = MlpPolicy::load_from_bytes(&forged, &Device::Cpu).unwrap_err();
        assert!(err.to_string().contains("normalization.obs_mean"), "{err}");
        // An intact file of a later version is unsupported, not damaged.
        let later = encode_model_file(
            "rl-policy/MlpPolicy/3",
            metadata["policy"].clone(),
            &tensors,
        )
        .unwrap();
        assert!(matches!(
            MlpPolicy::load_from_bytes(&later, &Device::Cpu),
            Err(PolicyError::Unsupported(m)) if m.contains("rl-policy/MlpPolicy/3")
        ));
        // Non-finite weights with a valid checksum: named.
        let mut nan = parse_safetensors(&bytes).unwrap().1;
        let bad = [0u8, 0, 0xc0, 0x7f, 0, 0, 0, 0];
        nan.insert(
            "action_net.bias".into(),
            StoredTensor {
                dtype: Dtype::F32,
                shape: vec![2],
                data: &bad,
            },
        );
        let forged = encode_model_file(MODEL_FORMAT, metadata["policy"].clone(), &nan).unwrap();
        assert!(matches!(
            MlpPolicy::load_from_bytes(&forged, &Device::Cpu),
            Err(PolicyError::NonFiniteWeight { tensor, index: 0, .. }) if tensor == "action_net.bias"
        ));
    }

    fn qnet(seed: u64, arch: Vec<usize>) -> QNetwork {
        let obs = Space::boxed(vec![-1.0; 3], vec![1.0; 3], vec![3]).unwrap();
        let act = Space::Discrete { n: 2, start: 0 };
        let config = QNetworkConfig {
            net_arch: arch,
            activation: crate::Activation::Tanh,
        };
        QNetwork::new(&obs, &act, config, seed, &Device::Cpu).unwrap()
    }

    #[test]
    fn qnetwork_saves_share_the_atomic_path() {
        let (old, new) = (qnet(1, vec![8]), qnet(2, vec![8]));
        let q_bits = |q: &QNetwork| -> Vec<u32> {
            q.trainable_vars()
                .iter()
                .flat_map(|(_, v)| {
                    v.as_tensor()
                        .flatten_all()
                        .unwrap()
                        .to_vec1::<f32>()
                        .unwrap()
                })
                .map(f32::to_bits)
                .collect()
        };
        for stage in [Stage::PartialWrite, Stage::Synced] {
            let dir = scratch("qnet-interrupted");
            old.save(&dir).unwrap();
            let bytes = new.save_to_bytes().unwrap();
            assert!(save_model_bytes(&bytes, &dir, DEAD_PID, Some(stage)).is_err());
            assert_eq!(
                q_bits(&QNetwork::load(&dir, &Device::Cpu).unwrap()),
                q_bits(&old)
            );
            new.save(&dir).unwrap();
            assert_eq!(files(&dir), [MODEL_FILE], "{stage:?}");
            assert_eq!(
                q_bits(&QNetwork::load(&dir, &Device::Cpu).unwrap()),
                q_bits(&new)
            );
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }

    /// QNetwork descriptions edited with a valid checksum: errors before allocation.
    #[test]
    fn hostile_qnetwork_descriptions_with_valid_checksums_are_rejected() {
        let q = qnet(6, vec![8]);
        let bytes = q.save_to_bytes().unwrap();
        let (metadata, tensors) = parse_safetensors(&bytes).unwrap();
        assert_eq!(metadata["format"], QNETWORK_FORMAT);
        let description: serde_json::Value = serde_json::from_str(&metadata["policy"]).unwrap();
        type Edit = fn(&mut serde_json::Value);
        let cases: [(Edit, &str); 6] = [
            (
                |d| d["config"]["net_arch"] = serde_json::json!([100_000, 100_000]),
                "exceeds the limit",
            ),
            (
                |d| d["config"]["net_arch"] = serde_json::json!(vec![65_536; 64]),
                "exceeds the limit",
            ),
            (
                |d| d["config"]["net_arch"] = serde_json::json!([16]),
                "q_net.0.weight has shape [8, 3]",
            ),
            (
                |d| d["config"]["net_arch"] = serde_json::json!([0]),
                "zero-width",
            ),
            (
                |d| {
                    d["action_space"] = serde_json::json!({"type": "Box", "low": [0.0], "high": [1.0], "shape": [1]})
                },
                "Discrete",
            ),
            (
                |d| d["action_space"]["n"] = serde_json::json!(u64::MAX),
                "Discrete action space",
            ),
        ];
        for (edit, message) in cases {
            let mut d = description.clone();
            edit(&mut d);
            let forged = encode_model_file(QNETWORK_FORMAT, d.to_string(), &tensors).unwrap();
            let err = QNetwork::load_from_bytes(&forged, &Device::Cpu).unwrap_err();
            assert!(err.to_string().contains(message), "{message}: {err}");
        }
        // Non-finite weights: named.
        let mut nan = parse_safetensors(&bytes).unwrap().1;
        let bad = [0u8, 0, 0x80, 0x7f, 0, 0, 0, 0];
        nan.insert(
            "q_net.2.bias".into(),
            StoredTensor {
                dtype: Dtype::F32,
                shape: vec![2],
                data: &bad,
            },
        );
        let forged = encode_model_file(QNETWORK_FORMAT, metadata["policy"].clone(), &nan).unwrap();
        assert!(matches!(
            QNetwork::load_from_bytes(&forged, &Device::Cpu),
            Err(PolicyError::NonFiniteWeight { tensor, index: 0, .. }) if tensor == "q_net.2.bias"
        ));
        // A QNetwork description under the MlpPolicy tag (or the reverse) is corrupt.
        let swapped =
            encode_model_file(MODEL_FORMAT, metadata["policy"].clone(), &tensors).unwrap();
        assert!(matches!(
            MlpPolicy::load_from_bytes(&swapped, &Device::Cpu),
            Err(PolicyError::Corrupt { .. })
        ));
    }

    fn sac_model() -> SacModel {
        use crate::continuous::{ContinuousCritic, MlpConfig, SacActor};
        let obs = Space::boxed(vec![-1.0; 3], vec![1.0; 3], vec![3]).unwrap();
        let act = Space::boxed(vec![-2.0; 2], vec![2.0; 2], vec![2]).unwrap();
        let cfg = MlpConfig {
            net_arch: vec![8],
            activation: crate::Activation::ReLU,
            sde: None,
        };
        let dev = Device::Cpu;
        SacModel {
            actor: SacActor::new(&obs, &act, cfg.clone(), 0, &dev).unwrap(),
            critic: ContinuousCritic::new(&obs, &act, cfg.clone(), 2, 1, &dev).unwrap(),
            critic_target: ContinuousCritic::new(&obs, &act, cfg, 2, 2, &dev).unwrap(),
            observation_space: obs,
            action_space: act,
        }
    }

    /// SAC/TD3 descriptions edited with a valid checksum: errors before allocation.
    #[test]
    fn hostile_sac_and_td3_descriptions_with_valid_checksums_are_rejected() {
        let m = sac_model();
        let bytes = m.save_to_bytes().unwrap();
        let (metadata, tensors) = parse_safetensors(&bytes).unwrap();
        assert_eq!(metadata["format"], SAC_FORMAT);
        let description: serde_json::Value = serde_json::from_str(&metadata["policy"]).unwrap();
        type Edit = fn(&mut serde_json::Value);
        let cases: [(Edit, &str); 9] = [
            (
                |d| d["config"]["actor"]["net_arch"] = serde_json::json!([100_000, 100_000]),
                "exceeds the limit",
            ),
            (
                |d| d["config"]["critic"]["net_arch"] = serde_json::json!(vec![65_536; 64]),
                "exceeds the limit",
            ),
            (
                |d| d["config"]["n_critics"] = serde_json::json!(1u64 << 40),
                "n_critics",
            ),
            (
                |d| d["config"]["n_critics"] = serde_json::json!(3),
                "missing parameter critic.qf2",
            ),
            (
                |d| d["config"]["actor"]["net_arch"] = serde_json::json!([16]),
                "actor.latent_pi.0.weight has shape [8, 3]",
            ),
            (
                |d| d["config"]["critic"]["net_arch"] = serde_json::json!([0]),
                "zero-width",
            ),
            (
                |d| d["action_space"] = serde_json::json!({"type": "Discrete", "n": 2, "start": 0}),
                "Box",
            ),
            (
                |d| d["observation_space"]["shape"] = serde_json::json!([usize::MAX, 2]),
                "overflows",
            ),
            (
                |d| {
                    d["action_space"]["low"] = serde_json::json!(["-inf", "-inf"]);
                },
                "finite bounds",
            ),
        ];
        for (edit, message) in cases {
            let mut d = description.clone();
            edit(&mut d);
            let forged = encode_model_file(SAC_FORMAT, d.to_string(), &tensors).unwrap();
            let err = SacModel::load_from_bytes(&forged, &Device::Cpu).unwrap_err();
            assert!(err.to_string().contains(message), "{message}: {err}");
        }
        // Config fields left out read as their defaults (files written before a field was
        // added): n_critics 2 fits; the default [256, 256] actor does not fit these tensors.
        let mut d = description.clone();
        d["config"].as_object_mut().unwrap().remove("n_critics");
        let forged = encode_model_file(SAC_FORMAT, d.to_string(), &tensors).unwrap();
        assert_eq!(
            SacModel::load_from_bytes(&forged, &Device::Cpu)
                .unwrap()
                .config(),
            m.config()
        );
        d["config"].as_object_mut().unwrap().remove("actor");
        let forged = encode_model_file(SAC_FORMAT, d.to_string(), &tensors).unwrap();
        let err = SacModel::load_from_bytes(&forged, &Device::Cpu).unwrap_err();
        assert!(err.to_string().contains("has shape"), "{err}");
        d.as_object_mut().unwrap().remove("config");
        let forged = encode_model_file(SAC_FORMAT, d.to_string(), &tensors).unwrap();
        let err = SacModel::load_from_bytes(&forged, &Device::Cpu).unwrap_err();
        assert!(err.to_string().contains("config"), "{err}");
        // Non-finite weights, in a target too: named.
        let mut nan = parse_safetensors(&bytes).unwrap().1;
        let bad = [0u8, 0, 0xc0, 0x7f];
        nan.insert(
            "critic_target.qf1.2.bias".into(),
            StoredTensor {
                dtype: Dtype::F32,
                shape: vec![1],
                data: &bad,
            },
        );
        let forged = encode_model_file(SAC_FORMAT, metadata["policy"].clone(), &nan).unwrap();
        assert!(matches!(
            SacModel::load_from_bytes(&forged, &Device::Cpu),
            Err(PolicyError::NonFiniteWeight { tensor, .. }) if tensor == "critic_target.qf1.2.bias"
        ));
        // Extra tensors are refused by name; a SAC description under the TD3 tag is corrupt.
        let mut extra = parse_safetensors(&bytes).unwrap().1;
        extra.insert(
            "actor_target.mu.0.bias".into(),
            StoredTensor {
                dtype: Dtype::F32,
                shape: vec![1],
                data: &[0u8; 4],
            },
        );
        let forged = encode_model_file(SAC_FORMAT, metadata["policy"].clone(), &extra).unwrap();
        let err = SacModel::load_from_bytes(&forged, &Device::Cpu).unwrap_err();
        assert!(err.to_string().contains("actor_target.mu.0.bias"), "{err}");
        let swapped = encode_model_file(TD3_FORMAT, metadata["policy"].clone(), &tensors).unwrap();
        assert!(matches!(
            Td3Model::load_from_bytes(&swapped, &Device::Cpu),
            Err(PolicyError::Corrupt { .. })
        ));
        // An intact file of a later SAC version is unsupported, not damaged.
        let later = encode_model_file(
            "rl-policy/SacPolicy/2",
            metadata["policy"].clone(),
            &tensors,
        )
        .unwrap();
        assert!(matches!(
            SacModel::load_from_bytes(&later, &Device::Cpu),
            Err(PolicyError::Unsupported(m)) if m.contains("rl-policy/SacPolicy/2")
        ));
    }

    #[test]
    fn sac_and_td3_saves_share_the_atomic_path() {
        let (old, new) = (sac_model(), sac_model());
        let (_, var) = crate::GaussianActor::trainable_vars(&new.actor).swap_remove(0);
        var.set(&candle_core::Tensor::ones(var.dims(), DType::F32, &Device::Cpu).unwrap())
            .unwrap();
        let sac_bits = |m: &SacModel| -> Vec<u32> {
            m.networks()
                .named_parameters()
                .unwrap()
                .iter()
                .flat_map(|(_, v)| {
                    v.as_tensor()
                        .flatten_all()
                        .unwrap()
                        .to_vec1::<f32>()
                        .unwrap()
                })
                .map(f32::to_bits)
                .collect()
        };
        assert_ne!(sac_bits(&old), sac_bits(&new));
        for stage in [Stage::PartialWrite, Stage::Written, Stage::Synced] {
            let dir = scratch("sac-interrupted");
            old.save(&dir).unwrap();
            let bytes = new.save_to_bytes().unwrap();
            assert!(save_model_bytes(&bytes, &dir, DEAD_PID, Some(stage)).is_err());
            assert_eq!(
                sac_bits(&SacModel::load(&dir, &Device::Cpu).unwrap()),
                sac_bits(&old)
            );
            new.save(&dir).unwrap();
            assert_eq!(files(&dir), [MODEL_FILE], "{stage:?}");
            assert_eq!(
                sac_bits(&SacModel::load(&dir, &Device::Cpu).unwrap()),
                sac_bits(&new)
            );
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }
}
