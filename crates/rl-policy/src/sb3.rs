//! Import of Stable-Baselines3 model files (`model.save(...)` zips of A2C or PPO with
//! `MlpPolicy`) into [`MlpPolicy`].
//!
//! An SB3 zip holds `data` (JSON; objects that JSON cannot hold are cloudpickled, with a few
//! readable fields beside the pickle) and `policy.pth` (the policy's `state_dict`). The
//! architecture comes from the `policy.pth` tensor shapes, the activation from
//! `data["policy_kwargs"]`, the spaces from the readable fields of `data`. Box bounds are read
//! from NumPy's printed form of the arrays, which shows at most 8 decimals: bounds that need
//! more digits come back rounded (they only matter for clipping actions).

use crate::activation::Activation;
use crate::error::{PolicyError, ReadError, Result};
use crate::limits::{MAX_DESCRIPTION_BYTES, MAX_SPACE_ELEMENTS};
use crate::mlp::{MlpPolicy, MlpPolicyConfig, NetArch};
use crate::validate::{self, HostTensor};
use crate::zipread::ZipArchive;
use crate::{io, pth};
use candle_core::Device;
use rl_env::Space;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

impl MlpPolicy {
    /// Loads the policy of a Stable-Baselines3 model file (A2C or PPO with `MlpPolicy`,
    /// `Discrete` or `Box` actions, flat `Box` observations) onto `device`.
    ///
    /// gSDE models (`use_sde=True`, SB3's `full_std=True` without `use_expln` or squashing)
    /// import with their `log_std` matrix; exploration matrices are not saved by SB3, so the
    /// policy draws new ones at its first [`crate::StochasticPolicy::reset_noise`].
    ///
    /// Unsupported contents (another policy class, a custom features extractor, gSDE variants, Dict or
    /// other spaces, compressed members) give [`PolicyError::Unsupported`] naming what is
    /// unsupported; a truncated, damaged, ambiguous or non-zip file gives
    /// [`PolicyError::Corrupt`]; sizes over [`crate::limits`] give
    /// [`PolicyError::LimitExceeded`]; NaN or infinite weights give
    /// [`PolicyError::NonFiniteWeight`].
    pub fn from_sb3_zip(path: impl AsRef<Path>, device: &Device) -> Result<MlpPolicy> {
        let path = path.as_ref();
        let bytes = io::read_bounded(path)?;
        import(&bytes, device, &path.display().to_string())
    }

    /// [`MlpPolicy::from_sb3_zip`] from the bytes of the zip.
    pub fn from_sb3_zip_bytes(bytes: &[u8], device: &Device) -> Result<MlpPolicy> {
        import(bytes, device, "<SB3 zip>")
    }
}

/// Imports the SB3 zip `bytes`; errors name `path`. Declared sizes (spaces, `net_arch`) are
/// checked against the tensors of `policy.pth` before anything is built.
fn import(bytes: &[u8], device: &Device, path: &str) -> Result<MlpPolicy> {
    let corrupt = |reason: String| PolicyError::Corrupt {
        path: path.to_string(),
        reason,
    };
    let (zip, data) = open_model(bytes, path)?;
    check_policy_class(&data)?;
    let mut kwargs = PolicyKwargs::read(data.get("policy_kwargs"))?;
    // The algorithm passes its `use_sde` to the policy (it is not in `policy_kwargs`).
    kwargs.use_sde |= data.get("use_sde").and_then(Value::as_bool) == Some(true);
    let pth_bytes = zip
        .get("policy.pth")
        .map_err(|e| e.at(path))?
        .ok_or_else(|| corrupt("no `policy.pth` member".into()))?;
    let tensors = pth::read_state_dict(pth_bytes).map_err(|e| e.context("policy.pth").at(path))?;
    // A policy's first layer (or action head) has one column per observation element and its
    // action head one row per action, so no space can be larger than the weights.
    let n_weights: usize = tensors.values().map(|t| t.data.len()).sum();
    let space_limit = n_weights.min(MAX_SPACE_ELEMENTS);
    let observation_space = read_space(&data, "observation_space", space_limit, path)?;
    let action_space = read_space(&data, "action_space", space_limit, path)?;
    if observation_space.as_box().is_none() {
        return Err(PolicyError::Unsupported(format!(
            "observation space {observation_space} (MlpPolicy import needs a Box)"
        )));
    }
    let net_arch = infer_net_arch(&tensors, observation_space.flat_dim(), kwargs.use_sde)?;
    if let Some(declared) = &kwargs.net_arch {
        if *declared != net_arch {
            return Err(corrupt(format!(
                "policy_kwargs net_arch {declared:?} disagrees with the policy.pth shapes {net_arch:?}"
            )));
        }
    }
    let config = MlpPolicyConfig {
        net_arch,
        activation: kwargs.activation,
        ortho_init: kwargs.ortho_init,
        log_std_init: kwargs.log_std_init,
        use_sde: kwargs.use_sde,
    };
    validate::build_policy(
        &observation_space,
        &action_space,
        config,
        tensors,
        device,
        &format!("{path}/policy.pth"),
    )
}

/// The zip archive of an SB3 model file and its `data` member parsed (bounded in size).
pub(crate) fn open_model<'a>(bytes: &'a [u8], path: &str) -> Result<(ZipArchive<'a>, Value)> {
    let corrupt = |reason: String| PolicyError::Corrupt {
        path: path.to_string(),
        reason,
    };
    let zip = ZipArchive::new(bytes).map_err(|e| e.at(path))?;
    let data = zip
        .get("data")
        .map_err(|e| e.at(path))?
        .ok_or_else(|| corrupt("no `data` member".into()))?;
    if data.len() > MAX_DESCRIPTION_BYTES {
        return Err(ReadError::limit(
            format!("a `data` member of {} bytes", data.len()),
            MAX_DESCRIPTION_BYTES,
        )
        .at(path));
    }
    let data: Value =
        serde_json::from_slice(data).map_err(|e| corrupt(format!("`data` is not JSON: {e}")))?;
    Ok((zip, data))
}

/// The policy class of an SB3 model's `data`: `(module, class)`, read from the cloudpickled
/// class's readable fields (`__module__`, and the class name in `__init__`'s repr).
pub(crate) fn policy_class(data: &Value) -> Result<(String, String)> {
    let pc = data
        .get("policy_class")
        .ok_or_else(|| PolicyError::Unsupported("a model without `policy_class`".into()))?;
    let module = pc.get("__module__").and_then(Value::as_str).unwrap_or("?");
    let init = pc.get("__init__").and_then(Value::as_str).unwrap_or("");
    // "<function ActorCriticPolicy.__init__ at 0x...>"
    let class = init
        .strip_prefix("<function ")
        .and_then(|s| s.split(".__init__").next())
        .unwrap_or("?");
    Ok((module.to_string(), class.to_string()))
}

/// Accepts `ActorCriticPolicy` (what `"MlpPolicy"` means for A2C and PPO) only. The class is
/// cloudpickled; its readable fields give the module and, through `__init__`'s repr, the
/// class whose `__dict__` was dumped.
fn check_policy_class(data: &Value) -> Result<()> {
    let (module, class) = policy_class(data)?;
    if module == "stable_baselines3.common.policies" && class == "ActorCriticPolicy" {
        Ok(())
    } else {
        Err(PolicyError::Unsupported(format!(
            "policy class {module}.{class} (only ActorCriticPolicy / MlpPolicy is supported)"
        )))
    }
}

/// The parts of `policy_kwargs` that matter here.
struct PolicyKwargs {
    net_arch: Option<NetArch>,
    activation: Activation,
    ortho_init: bool,
    log_std_init: f64,
    use_sde: bool,
}

impl PolicyKwargs {
    fn read(v: Option<&Value>) -> Result<PolicyKwargs> {
        let defaults = MlpPolicyConfig::default();
        let mut kw = PolicyKwargs {
            net_arch: None,
            activation: defaults.activation,
            ortho_init: defaults.ortho_init,
            log_std_init: defaults.log_std_init,
            use_sde: false,
        };
        let Some(Value::Object(map)) = v else {
            return Ok(kw);
        };
        for (key, value) in map {
            match key.as_str() {
                "net_arch" => kw.net_arch = Some(parse_net_arch(value)?),
                "activation_fn" => {
                    let s = value.as_str().unwrap_or("");
                    kw.activation = if s.ends_with(".Tanh'>") {
                        Activation::Tanh
                    } else if s.ends_with(".ReLU'>") {
                        Activation::ReLU
                    } else {
                        return Err(PolicyError::Unsupported(format!("activation_fn {value}")));
                    };
                }
                "ortho_init" => kw.ortho_init = value.as_bool().unwrap_or(kw.ortho_init),
                "log_std_init" => kw.log_std_init = value.as_f64().unwrap_or(kw.log_std_init),
                "features_extractor_class"
                    if !value
                        .as_str()
                        .is_some_and(|s| s.contains(".FlattenExtractor'>")) =>
                {
                    return Err(PolicyError::Unsupported(format!(
                        "features_extractor_class {value}"
                    )));
                }
                "squash_output" | "use_expln" if value.as_bool() == Some(true) => {
                    return Err(PolicyError::Unsupported(format!(
                        "policy_kwargs {key}=True"
                    )));
                }
                "use_sde" => kw.use_sde = value.as_bool() == Some(true),
                // gSDE variants other than ActorCriticPolicy's default.
                "full_std" if value.as_bool() == Some(false) => {
                    return Err(PolicyError::Unsupported(
                        "gSDE with policy_kwargs full_std=False".into(),
                    ));
                }
                // Optimizer, image normalization and extractor sharing do not change the policy
                // function; `:type:`/`:serialized:` are SB3's own bookkeeping.
                _ => {}
            }
        }
        Ok(kw)
    }
}

pub(crate) fn int_list(v: &Value) -> Option<Vec<usize>> {
    v.as_array()?
        .iter()
        .map(|x| x.as_u64().and_then(|x| usize::try_from(x).ok()))
        .collect()
}

/// SB3's `net_arch`: `[64, 64]` (same for both), `{"pi": [...], "vf": [...]}`, or the pre-1.8
/// `[shared..., {"pi": ..., "vf": ...}]`.
fn parse_net_arch(v: &Value) -> Result<NetArch> {
    let unsupported = || PolicyError::Unsupported(format!("net_arch {v}"));
    let dict = |d: &Value| -> Option<(Vec<usize>, Vec<usize>)> {
        let pi = d.get("pi").map(int_list).unwrap_or(Some(Vec::new()))?;
        let vf = d.get("vf").map(int_list).unwrap_or(Some(Vec::new()))?;
        Some((pi, vf))
    };
    match v {
        Value::Object(_) => {
            let (pi, vf) = dict(v).ok_or_else(unsupported)?;
            Ok(NetArch {
                shared: vec![],
                pi,
                vf,
            })
        }
        Value::Array(items) => {
            let mut shared = Vec::new();
            for (i, item) in items.iter().enumerate() {
                if let Some(n) = item.as_u64() {
                    shared.push(usize::try_from(n).map_err(|_| unsupported())?);
                } else if item.is_object() && i + 1 == items.len() {
                    let (pi, vf) = dict(item).ok_or_else(unsupported)?;
                    return Ok(NetArch { shared, pi, vf });
                } else {
                    return Err(unsupported());
                }
            }
            // A plain list: the same layers for actor and critic, nothing shared (SB3 >= 1.8).
            Ok(NetArch {
                shared: vec![],
                pi: shared.clone(),
                vf: shared,
            })
        }
        Value::Null => Ok(NetArch::default()),
        _ => Err(unsupported()),
    }
}

/// Parses NumPy's printed array (`"[-4.8  -inf  0.41887903]"`, possibly nested) into floats.
fn parse_numpy_array(s: &str) -> Option<Vec<f32>> {
    if s.contains("...") {
        return None; // a summarized large array
    }
    s.replace(['[', ']'], " ")
        .split_whitespace()
        .map(|tok| match tok {
            "inf" => Some(f32::INFINITY),
            "-inf" => Some(f32::NEG_INFINITY),
            t => t.parse::<f32>().ok().filter(|x| x.is_finite()),
        })
        .collect()
}

/// Rebuilds a Gymnasium space from the readable fields SB3 writes beside its cloudpickle. A
/// Box's declared shape must hold at most `max_elements` elements (checked before its bounds
/// are built).
pub(crate) fn read_space(
    data: &Value,
    key: &str,
    max_elements: usize,
    path: &str,
) -> Result<Space> {
    let v = data
        .get(key)
        .ok_or_else(|| PolicyError::Unsupported(format!("a model without `{key}`")))?;
    let ty = v.get(":type:").and_then(Value::as_str).unwrap_or("?");
    let bad = |what: &str| PolicyError::Unsupported(format!("{key}: cannot read {what} of {ty}"));
    let shape = || -> Option<Vec<usize>> { int_list(v.get("_shape")?) };
    if ty.ends_with(".Discrete'>") {
        // `n` and `start` are numpy ints, printed as strings.
        let num = |k: &str| -> Option<i64> {
            match v.get(k)? {
                Value::String(s) => s.trim().parse().ok(),
                n => n.as_i64(),
            }
        };
        let n = num("n")
            .and_then(|n| u64::try_from(n).ok())
            .filter(|&n| n >= 1)
            .ok_or_else(|| bad("n"))?;
        let start = num("start").unwrap_or(0);
        Ok(Space::Discrete { n, start })
    } else if ty.ends_with(".Box'>") {
        let dtype = v.get("dtype").and_then(Value::as_str).unwrap_or("float32");
        if !dtype.starts_with("float") {
            return Err(PolicyError::Unsupported(format!(
                "{key}: Box of dtype {dtype}"
            )));
        }
        let shape = shape().ok_or_else(|| bad("the shape"))?;
        let n = validate::space_elements(&shape, key).map_err(|e| e.at(path))?;
        if n > max_elements {
            return Err(PolicyError::Corrupt {
                path: path.to_string(),
                reason: format!(
                    "{key}: Box shape {shape:?} has {n} elements, more than policy.pth's {max_elements} weights"
                ),
            });
        }
        let bound = |k: &str| -> Result<Vec<f32>> {
            // Large arrays print summarized ("..."); Gymnasium then may still keep the scalar of
            // a uniform bound in `low_repr` / `high_repr`.
            let scalar = || -> Option<Vec<f32>> {
                let x = v
                    .get(format!("{k}_repr"))?
                    .as_str()?
                    .trim()
                    .parse::<f32>()
                    .ok()?;
                (!x.is_nan()).then(|| vec![x; n])
            };
            let b = v
                .get(k)
                .and_then(Value::as_str)
                .and_then(parse_numpy_array)
                .or_else(scalar)
                .ok_or_else(|| bad(k))?;
            // NumPy prints a uniform array in full, so the count must match the shape.
            if b.len() == n {
                Ok(b)
            } else {
                Err(bad(k))
            }
        };
        Space::boxed(bound("low")?, bound("high")?, shape)
            .map_err(|e| PolicyError::Unsupported(format!("{key}: {e}")))
    } else {
        Err(PolicyError::Unsupported(format!("{key} of type {ty}")))
    }
}

/// The layer sizes of one `nn.Sequential(Linear, act, Linear, act, ...)` named `prefix`, from
/// its `{prefix}.{0,2,4,...}.weight` shapes; checks that the layers chain from `in_dim`.
pub(crate) fn sequential_sizes(
    tensors: &BTreeMap<String, HostTensor>,
    prefix: &str,
    in_dim: usize,
) -> Result<(Vec<usize>, usize)> {
    let mut sizes = Vec::new();
    let mut dim = in_dim;
    loop {
        let name = format!("{prefix}.{}.weight", 2 * sizes.len());
        let Some(w) = tensors.get(&name) else { break };
        match w.shape.as_slice() {
            [out, inp] if *inp == dim && *out > 0 => {
                sizes.push(*out);
                dim = *out;
            }
            dims => {
                return Err(PolicyError::Unsupported(format!(
                    "{name} has shape {dims:?}; expected [_, {dim}] for a Linear layer fed by the previous one"
                )))
            }
        }
    }
    Ok((sizes, dim))
}

/// Reads the MLP extractor's architecture from the state-dict shapes and rejects any tensor
/// this MLP policy would not have (a CNN, another extractor, a matrix-shaped `log_std` in a
/// model saved without gSDE). With `use_sde` the `log_std` shape is checked when the policy is
/// built.
fn infer_net_arch(
    tensors: &BTreeMap<String, HostTensor>,
    obs_dim: usize,
    use_sde: bool,
) -> Result<NetArch> {
    let (shared, latent) = sequential_sizes(tensors, "mlp_extractor.shared_net", obs_dim)?;
    let (pi, _) = sequential_sizes(tensors, "mlp_extractor.policy_net", latent)?;
    let (vf, _) = sequential_sizes(tensors, "mlp_extractor.value_net", latent)?;
    let arch = NetArch { shared, pi, vf };
    let mut expected: Vec<String> = vec![
        "action_net.weight".into(),
        "action_net.bias".into(),
        "value_net.weight".into(),
        "value_net.bias".into(),
        "log_std".into(),
    ];
    for (prefix, sizes) in [
        ("shared_net", &arch.shared),
        ("policy_net", &arch.pi),
        ("value_net", &arch.vf),
    ] {
        for i in 0..sizes.len() {
            for p in ["weight", "bias"] {
                expected.push(format!("mlp_extractor.{prefix}.{}.{p}", 2 * i));
            }
        }
    }
    let mut unknown: Vec<&String> = tensors.keys().filter(|k| !expected.contains(k)).collect();
    if !unknown.is_empty() {
        unknown.sort();
        return Err(PolicyError::Unsupported(format!(
            "policy parameters {unknown:?} (not part of an MlpPolicy: another features extractor or network)"
        )));
    }
    if let Some(ls) = tensors.get("log_std") {
        if ls.shape.len() != 1 && !use_sde {
            return Err(PolicyError::Unsupported(format!(
                "log_std of shape {:?} (gSDE's state-dependent noise) in a model without use_sde",
                ls.shape
            )));
        }
    }
    Ok(arch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numpy_arrays_parse() {
        assert_eq!(
            parse_numpy_array("[-4.8               -inf -0.41887903        -inf]"),
            Some(vec![
                -4.8,
                f32::NEG_INFINITY,
                -0.418_879_03,
                f32::NEG_INFINITY
            ])
        );
        assert_eq!(
            parse_numpy_array("[[1. 2.]\n [3. 4.]]"),
            Some(vec![1.0, 2.0, 3.0, 4.0])
        );
        assert_eq!(parse_numpy_array("[0. 0. ... 0.]"), None);
        assert_eq!(parse_numpy_array("[1. nan]"), None);
    }

    #[test]
    fn net_arch_forms() {
        let v: Value = serde_json::json!({"pi": [32, 32], "vf": [64]});
        assert_eq!(
            parse_net_arch(&v).unwrap(),
            NetArch {
                shared: vec![],
                pi: vec![32, 32],
                vf: vec![64]
            }
        );
        let v: Value = serde_json::json!([16, 16]);
        assert_eq!(
            parse_net_arch(&v).unwrap(),
            NetArch {
                shared: vec![],
                pi: vec![16, 16],
                vf: vec![16, 16]
            }
        );
        let v: Value = serde_json::json!([8, {"pi": [4], "vf": []}]);
        assert_eq!(
            parse_net_arch(&v).unwrap(),
            NetArch {
                shared: vec![8],
                pi: vec![4],
                vf: vec![]
            }
        );
        assert!(parse_net_arch(&serde_json::json!("big")).is_err());
        assert!(parse_net_arch(&serde_json::json!([{"pi": [4]}, 8])).is_err());
    }

    #[test]
    fn spaces_from_readable_fields() {
        let data = serde_json::json!({
            "d": {":type:": "<class 'gymnasium.spaces.discrete.Discrete'>", "n": "3", "start": "-1"},
            "b": {":type:": "<class 'gymnasium.spaces.box.Box'>", "dtype": "float32", "_shape": [2, 2],
                  "low": "[[-1. -1.]\n [-1. -1.]]", "high": "[[1. 2.]\n [3. inf]]"},
            "big": {":type:": "<class 'gymnasium.spaces.box.Box'>", "dtype": "float32", "_shape": [2000],
                    "low": "[0. 0. 0. ... 0. 0. 0.]", "high": "[1. 1. 1. ... 1. 1. 1.]",
                    "low_repr": "0.0", "high_repr": "1.0"},
            "img": {":type:": "<class 'gymnasium.spaces.box.Box'>", "dtype": "uint8", "_shape": [84, 84, 3]},
            "summarized": {":type:": "<class 'gymnasium.spaces.box.Box'>", "dtype": "float32", "_shape": [2000],
                           "low": "[0. ... 0.]", "high": "[1. ... 1.]", "low_repr": null, "high_repr": null},
        });
        assert_eq!(
            read_space(&data, "d", MAX_SPACE_ELEMENTS, "test.zip").unwrap(),
            Space::Discrete { n: 3, start: -1 }
        );
        let b = read_space(&data, "b", MAX_SPACE_ELEMENTS, "test.zip").unwrap();
        let b = b.as_box().unwrap();
        assert_eq!(
            (b.shape(), b.high()),
            (&[2usize, 2][..], &[1.0, 2.0, 3.0, f32::INFINITY][..])
        );
        assert_eq!(
            read_space(&data, "big", MAX_SPACE_ELEMENTS, "test.zip")
                .unwrap()
                .flat_dim(),
            2000
        );
        assert!(
            matches!(read_space(&data, "img", MAX_SPACE_ELEMENTS, "test.zip"), Err(PolicyError::Unsupported(m)) if m.contains("uint8"))
        );
        assert!(matches!(
            read_space(&data, "summarized", MAX_SPACE_ELEMENTS, "test.zip"),
            Err(PolicyError::Unsupported(_))
        ));
        assert!(matches!(
            read_space(&data, "absent", MAX_SPACE_ELEMENTS, "test.zip"),
            Err(PolicyError::Unsupported(_))
        ));
    }
}
