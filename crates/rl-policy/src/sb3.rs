//! Import of Stable-Baselines3 model files (`model.save(...)` zips with `MlpPolicy`): A2C or
//! PPO into [`MlpPolicy`], DQN into two [`QNetwork`]s (online and target).
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
use crate::qnet::{QNetwork, QNetworkConfig};
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

/// An SB3 zip's `data` JSON and its `policy.pth` state dict, read with every bound.
struct Sb3Zip {
    data: Value,
    class: PolicyClass,
    tensors: BTreeMap<String, HostTensor>,
}

/// Reads the SB3 zip `bytes`: `data`, its policy class, then `policy.pth`. Errors name
/// `path`.
fn open_zip(bytes: &[u8], path: &str) -> Result<Sb3Zip> {
    let corrupt = |reason: String| PolicyError::Corrupt {
        path: path.to_string(),
        reason,
    };
    let (zip, data) = open_model(bytes, path)?;
    let class = policy_class(&data)?;
    let pth_bytes = zip
        .get("policy.pth")
        .map_err(|e| e.at(path))?
        .ok_or_else(|| corrupt("no `policy.pth` member".into()))?;
    let tensors = pth::read_state_dict(pth_bytes).map_err(|e| e.context("policy.pth").at(path))?;
    Ok(Sb3Zip {
        data,
        class,
        tensors,
    })
}

/// Imports the SB3 zip `bytes` of A2C or PPO; errors name `path`. Declared sizes (spaces,
/// `net_arch`) are checked against the tensors of `policy.pth` before anything is built.
fn import(bytes: &[u8], device: &Device, path: &str) -> Result<MlpPolicy> {
    let zip = open_zip(bytes, path)?;
    if zip.class != PolicyClass::ActorCritic {
        return Err(PolicyError::Unsupported(format!(
            "{path} is a DQN model: import it with QNetwork::from_sb3_zip"
        )));
    }
    import_actor_critic(zip, device, path)
}

fn import_actor_critic(zip: Sb3Zip, device: &Device, path: &str) -> Result<MlpPolicy> {
    let corrupt = |reason: String| PolicyError::Corrupt {
        path: path.to_string(),
        reason,
    };
    let Sb3Zip { data, tensors, .. } = zip;
    let mut kwargs = PolicyKwargs::read(data.get("policy_kwargs"))?;
    // The algorithm passes its `use_sde` to the policy (it is not in `policy_kwargs`).
    kwargs.use_sde |= data.get("use_sde").and_then(Value::as_bool) == Some(true);
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

/// A Stable-Baselines3 DQN imported by [`QNetwork::from_sb3_zip`]: its online Q-network and
/// its target network (SB3's `policy.q_net` and `policy.q_net_target`).
#[derive(Debug)]
pub struct Sb3Dqn {
    /// The online network (`q_net.q_net.*`), whose greedy action `DQN.predict` returns.
    pub q_net: QNetwork,
    /// The target network (`q_net_target.q_net.*`).
    pub q_net_target: QNetwork,
}

impl QNetwork {
    /// Loads the Q-networks of a Stable-Baselines3 DQN model file (`DQNPolicy` / `MlpPolicy`,
    /// flat `Box` observations, `Discrete` actions) onto `device`: `policy.pth`'s
    /// `q_net.q_net.*` and `q_net_target.q_net.*`, with the activation of `data`'s
    /// `policy_kwargs` (ReLU by default) and the architecture from the tensor shapes, checked
    /// against `policy_kwargs.net_arch`.
    ///
    /// Errors as [`MlpPolicy::from_sb3_zip`]'s; a CNN or other features extractor, `Box`
    /// actions, another policy class (an A2C/PPO zip included) or an unknown tensor is
    /// [`PolicyError::Unsupported`], naming it.
    pub fn from_sb3_zip(path: impl AsRef<Path>, device: &Device) -> Result<Sb3Dqn> {
        let path = path.as_ref();
        let bytes = io::read_bounded(path)?;
        import_dqn_bytes(&bytes, device, &path.display().to_string())
    }

    /// [`QNetwork::from_sb3_zip`] from the bytes of the zip.
    pub fn from_sb3_zip_bytes(bytes: &[u8], device: &Device) -> Result<Sb3Dqn> {
        import_dqn_bytes(bytes, device, "<SB3 zip>")
    }
}

/// A model imported from an SB3 zip by [`import_any`]: an actor-critic policy (A2C, PPO) or
/// a DQN.
pub(crate) enum Sb3Model {
    ActorCritic(MlpPolicy),
    Dqn(Sb3Dqn),
}

/// Imports whichever supported model an SB3 zip holds.
pub(crate) fn import_any(bytes: &[u8], device: &Device, path: &str) -> Result<Sb3Model> {
    let zip = open_zip(bytes, path)?;
    match zip.class {
        PolicyClass::ActorCritic => {
            import_actor_critic(zip, device, path).map(Sb3Model::ActorCritic)
        }
        PolicyClass::Dqn => import_dqn(zip, device, path).map(Sb3Model::Dqn),
    }
}

fn import_dqn_bytes(bytes: &[u8], device: &Device, path: &str) -> Result<Sb3Dqn> {
    let zip = open_zip(bytes, path)?;
    if zip.class != PolicyClass::Dqn {
        return Err(PolicyError::Unsupported(format!(
            "{path} holds an actor-critic policy (A2C/PPO), not a DQN: import it with \
             MlpPolicy::from_sb3_zip"
        )));
    }
    import_dqn(zip, device, path)
}

/// Builds both Q-networks of a DQN zip. Sizes declared by `data` are checked against the
/// tensors before anything is built.
fn import_dqn(zip: Sb3Zip, device: &Device, path: &str) -> Result<Sb3Dqn> {
    let corrupt = |reason: String| PolicyError::Corrupt {
        path: path.to_string(),
        reason,
    };
    let Sb3Zip { data, tensors, .. } = zip;
    let kwargs = data.get("policy_kwargs");
    // Checks the features extractor, squashing and the activation's class.
    let parsed = PolicyKwargs::read(kwargs)?;
    let activation = match kwargs.and_then(|k| k.get("activation_fn")) {
        Some(_) => parsed.activation,
        None => Activation::ReLU, // DQNPolicy's default
    };
    let declared_arch = match kwargs.and_then(|k| k.get("net_arch")) {
        None | Some(Value::Null) => None,
        Some(v) => {
            Some(int_list(v).ok_or_else(|| PolicyError::Unsupported(format!("DQN net_arch {v}")))?)
        }
    };
    // Split the state dict into the two networks, named as QNetwork's `q_net.N.*`.
    let mut online = BTreeMap::new();
    let mut target = BTreeMap::new();
    let mut unknown = Vec::new();
    for (name, t) in tensors {
        if let Some(rest) = name.strip_prefix("q_net_target.q_net.") {
            target.insert(format!("q_net.{rest}"), t);
        } else if let Some(rest) = name.strip_prefix("q_net.q_net.") {
            online.insert(format!("q_net.{rest}"), t);
        } else {
            unknown.push(name);
        }
    }
    if !unknown.is_empty() {
        return Err(PolicyError::Unsupported(format!(
            "policy parameters {unknown:?} (not part of DQN's MlpPolicy: a CNN or another \
             features extractor or network)"
        )));
    }
    let n_weights: usize = online.values().map(|t| t.data.len()).sum();
    let space_limit = n_weights.min(MAX_SPACE_ELEMENTS);
    let observation_space = read_space(&data, "observation_space", space_limit, path)?;
    let action_space = read_space(&data, "action_space", space_limit, path)?;
    if observation_space.as_box().is_none() {
        return Err(PolicyError::Unsupported(format!(
            "observation space {observation_space} (DQN import needs a Box)"
        )));
    }
    if action_space.as_box().is_some() {
        return Err(PolicyError::Unsupported(format!(
            "action space {action_space} (a DQN acts in a Discrete space)"
        )));
    }
    let (mut sizes, _) = sequential_sizes(&online, "q_net", observation_space.flat_dim())?;
    // The last Linear is the output layer (one unit per action).
    if sizes.pop().is_none() {
        return Err(corrupt("policy.pth has no q_net.q_net.0.weight".into()));
    }
    if let Some(declared) = &declared_arch {
        if *declared != sizes {
            return Err(corrupt(format!(
                "policy_kwargs net_arch {declared:?} disagrees with the policy.pth shapes {sizes:?}"
            )));
        }
    }
    let config = QNetworkConfig {
        net_arch: sizes,
        activation,
    };
    let at = format!("{path}/policy.pth");
    let q_net = validate::build_qnetwork(
        &observation_space,
        &action_space,
        config.clone(),
        online,
        device,
        &at,
    )?;
    let q_net_target = validate::build_qnetwork(
        &observation_space,
        &action_space,
        config,
        target,
        device,
        &at,
    )?;
    Ok(Sb3Dqn {
        q_net,
        q_net_target,
    })
}

/// The policy classes this crate imports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PolicyClass {
    /// `ActorCriticPolicy` (what `"MlpPolicy"` means for A2C and PPO).
    ActorCritic,
    /// `DQNPolicy` (what `"MlpPolicy"` means for DQN).
    Dqn,
}

/// Reads `policy_class` (from its readable `__module__` and `__init__` fields beside the
/// cloudpickle); any class other than A2C/PPO's `ActorCriticPolicy` and DQN's `DQNPolicy`
/// (CNN, multi-input, recurrent, dueling or custom policies) is unsupported, by name.
fn policy_class(data: &Value) -> Result<PolicyClass> {
    let (module, class) = policy_class_names(data)?;
    match (module.as_str(), class.as_str()) {
        ("stable_baselines3.common.policies", "ActorCriticPolicy") => Ok(PolicyClass::ActorCritic),
        ("stable_baselines3.dqn.policies", "DQNPolicy") => Ok(PolicyClass::Dqn),
        _ => Err(PolicyError::Unsupported(format!(
            "policy class {module}.{class} (only ActorCriticPolicy / MlpPolicy of A2C and PPO \
             and DQNPolicy / MlpPolicy of DQN are supported here; SAC and TD3/DDPG import \
             through Sb3Sac and Sb3Td3)"
        ))),
    }
}

/// The policy class of an SB3 model's `data`: `(module, class)`, read from the cloudpickled
/// class's readable fields (`__module__`, and the class name in `__init__`'s repr).
pub(crate) fn policy_class_names(data: &Value) -> Result<(String, String)> {
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
