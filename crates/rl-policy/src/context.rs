//! What a saved model needs besides its weights to be played as it was trained: the
//! environment id and keyword arguments, and the `VecNormalize` statistics (rl-zoo keeps them
//! next to the model as `args.yml`/`env_kwargs.yml` and `vecnormalize.pkl`).
//!
//! They travel inside the model's [`MODEL_FILE`], as two more entries of its safetensors
//! metadata, so the one atomic save writes model and statistics together and the one checksum
//! covers both: a model can never be paired with another run's statistics.
//!
//! - `env`: JSON `{"id": "<env id>", "kwargs": ["key:value", ...]}` (kwargs as Python
//!   literals, as `train --env-kwargs` takes them);
//! - `vec_normalize`: lowercase hex of [`VecNormalizeSnapshot::to_bytes`].
//!
//! Loaders of any version ignore entries they do not read, so a file with a context loads as
//! before with [`crate::SavedModel::load`]; [`load_context`] reads the context.

use crate::error::{PolicyError, ReadError, Result};
use crate::io::{
    encode_with_metadata, read_bounded, save_model_file_bytes, verified_model_file, MODEL_FILE,
};
use rl_env::VecNormalizeSnapshot;
use safetensors::tensor::Dtype;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Metadata key of the environment description.
const ENV_KEY: &str = "env";
/// Metadata key of the normalization statistics.
const VEC_NORMALIZE_KEY: &str = "vec_normalize";

/// The training context saved with a model (see the [module docs](crate::context)).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TrainingContext {
    /// The environment id the model was trained on (e.g. `"Pendulum-v1"`).
    pub env_id: Option<String>,
    /// The environment's keyword arguments as `key:value` texts (values as Python literals).
    pub env_kwargs: Vec<String>,
    /// The `VecNormalize` statistics and settings of the training environments.
    pub normalization: Option<VecNormalizeSnapshot>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EnvEntry {
    id: String,
    #[serde(default)]
    kwargs: Vec<String>,
}

fn corrupt(path: &str, msg: String) -> PolicyError {
    ReadError::Corrupt(msg).at(path)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// `model_file` (the bytes of a [`MODEL_FILE`], e.g. from `MlpPolicy::save_to_bytes`) with
/// `context` stored in it (replacing any context it had), re-checksummed. A damaged input
/// (checksum mismatch) or an invalid snapshot is an error.
pub fn with_context(model_file: &[u8], context: &TrainingContext) -> Result<Vec<u8>> {
    let path = "<model file>";
    let (mut metadata, tensors) = verified_model_file(model_file, path)?;
    if let Some((name, t)) = tensors.iter().find(|(_, t)| t.dtype != Dtype::F32) {
        return Err(PolicyError::Unsupported(format!(
            "{path}: tensor {name} is {:?}; only float32 model files take a context",
            t.dtype
        )));
    }
    metadata.remove(ENV_KEY);
    metadata.remove(VEC_NORMALIZE_KEY);
    if let Some(id) = &context.env_id {
        let entry = EnvEntry {
            id: id.clone(),
            kwargs: context.env_kwargs.clone(),
        };
        let json = serde_json::to_string(&entry)
            .map_err(|e| PolicyError::InvalidArgument(format!("the env entry: {e}")))?;
        metadata.insert(ENV_KEY.into(), json);
    } else if !context.env_kwargs.is_empty() {
        return Err(PolicyError::InvalidArgument(
            "env_kwargs without an env_id".into(),
        ));
    }
    if let Some(snap) = &context.normalization {
        snap.validate()?;
        metadata.insert(VEC_NORMALIZE_KEY.into(), hex(&snap.to_bytes()));
    }
    encode_with_metadata(metadata, &tensors)
}

/// The context stored in the bytes of a [`MODEL_FILE`] (empty when it has none), after the
/// checksum is verified; a damaged or malformed entry is an error naming it.
pub fn context_from_bytes(model_file: &[u8]) -> Result<TrainingContext> {
    read_context(model_file, "<model file>")
}

fn read_context(bytes: &[u8], path: &str) -> Result<TrainingContext> {
    let (metadata, _) = verified_model_file(bytes, path)?;
    let mut context = TrainingContext::default();
    if let Some(json) = metadata.get(ENV_KEY) {
        let entry: EnvEntry = serde_json::from_str(json)
            .map_err(|e| corrupt(path, format!("the `{ENV_KEY}` entry: {e}")))?;
        context.env_id = Some(entry.id);
        context.env_kwargs = entry.kwargs;
    }
    if let Some(text) = metadata.get(VEC_NORMALIZE_KEY) {
        let bytes = unhex(text).ok_or_else(|| {
            corrupt(
                path,
                format!("the `{VEC_NORMALIZE_KEY}` entry is not hexadecimal"),
            )
        })?;
        let snap = VecNormalizeSnapshot::from_bytes(&bytes)
            .map_err(|e| corrupt(path, format!("the `{VEC_NORMALIZE_KEY}` entry: {e}")))?;
        context.normalization = Some(snap);
    }
    Ok(context)
}

/// The context of a saved model at `path` (a directory written by a model's `save`, or its
/// [`MODEL_FILE`]); an SB3 zip or a legacy directory has none (empty context).
pub fn load_context(path: impl AsRef<Path>) -> Result<TrainingContext> {
    let path = path.as_ref();
    let file = if path.is_file() {
        path.to_path_buf()
    } else {
        path.join(MODEL_FILE)
    };
    if !file.is_file() {
        // The legacy layout: no context.
        return Ok(TrainingContext::default());
    }
    let bytes = read_bounded(&file)?;
    if bytes.starts_with(b"PK") {
        return Ok(TrainingContext::default());
    }
    read_context(&bytes, &file.display().to_string())
}

/// Saves `model_file` (the bytes of a [`MODEL_FILE`]) into directory `dir` through the atomic
/// save path every model uses, after checking that the bytes are an intact model file.
/// Together with [`with_context`]: `save_model_file(dir, &with_context(&policy.save_to_bytes()?, &ctx)?)`.
pub fn save_model_file(dir: impl AsRef<Path>, model_file: &[u8]) -> Result<()> {
    verified_model_file(model_file, "<model file>")?;
    save_model_file_bytes(model_file, dir.as_ref())
}
