//! Import of Stable-Baselines3 SAC, TD3 and DDPG model files (`model.save(...)` zips with
//! `MlpPolicy`): the actor, the critics and their targets.
//!
//! The architectures come from the `policy.pth` tensor shapes (`actor.latent_pi.*`,
//! `actor.mu*`, `actor.log_std.*`, `critic.qf{i}.*`, `critic_target.qf{i}.*`,
//! `actor_target.mu.*`) and are checked against `data["policy_kwargs"]` (`net_arch` as a list or
//! `dict(pi=..., qf=...)`, `n_critics`); the activation is `policy_kwargs["activation_fn"]`,
//! ReLU by default as in SB3's off-policy policies. gSDE SAC models (`use_sde=True`) import
//! with their `log_std` matrix and mean layer (`actor.mu.0.*` under `clip_mean`), their
//! `log_std_init`, `use_expln` and `clip_mean` from `policy_kwargs` (SB3's defaults -3, False
//! and 2.0 otherwise); SB3 does not save exploration matrices, so the imported policy draws
//! its own. Shared feature extractors and other extractors are refused by name. Every tensor must be present with its shape,
//! finite, and nothing else may be in `policy.pth`.

use crate::activation::Activation;
use crate::continuous::{
    ContinuousCritic, Critic, DeterministicActor, GaussianActor, MlpConfig, SacActor, SacSdeConfig,
    Td3Actor,
};
use crate::error::{PolicyError, Result};
use crate::limits::MAX_SPACE_ELEMENTS;
use crate::offpolicy_model::{SacModel, Td3Model};
use crate::sb3::{int_list, open_model, policy_class_names, read_space, sequential_sizes};
use crate::validate::HostTensor;
use crate::{io, pth};
use candle_core::{Device, Tensor, Var};
use rl_env::Space;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// A Stable-Baselines3 SAC model: its actor, critics and target critics, and its spaces (the
/// same type as a SAC model this crate saves, [`SacModel`]).
pub type Sb3Sac = SacModel;

/// A Stable-Baselines3 TD3 or DDPG model (both save a `TD3Policy`): its actor and target
/// actor, critics and target critics, and its spaces (the same type as [`Td3Model`]).
pub type Sb3Td3 = Td3Model;

impl Sb3Sac {
    /// Loads the SB3 SAC model file at `path` onto `device`. Errors as
    /// [`crate::MlpPolicy::from_sb3_zip`]'s: [`PolicyError::Unsupported`] names what is not
    /// supported, [`PolicyError::Corrupt`] a damaged file, [`PolicyError::LimitExceeded`] sizes
    /// over [`crate::limits`].
    pub fn from_zip(path: impl AsRef<Path>, device: &Device) -> Result<Self> {
        let path = path.as_ref();
        let bytes = io::read_bounded(path)?;
        Self::from_zip_bytes_at(&bytes, device, &path.display().to_string())
    }

    /// [`Sb3Sac::from_zip`] from the bytes of the zip.
    pub fn from_zip_bytes(bytes: &[u8], device: &Device) -> Result<Self> {
        Self::from_zip_bytes_at(bytes, device, "<SB3 zip>")
    }

    pub(crate) fn from_zip_bytes_at(bytes: &[u8], device: &Device, path: &str) -> Result<Self> {
        let m = Model::open(bytes, path, "stable_baselines3.sac.policies", "SACPolicy")?;
        let use_sde =
            m.data.get("use_sde").and_then(Value::as_bool) == Some(true) || m.kwargs.use_sde;
        let obs_dim = m.observation_space.flat_dim();
        let act_dim = m.action_space.flat_dim();
        let (latent, last) = sequential_sizes(&m.tensors, "actor.latent_pi", obs_dim)?;
        let sde = if use_sde {
            let sde = SacSdeConfig {
                log_std_init: m.kwargs.log_std_init.unwrap_or(-3.0),
                use_expln: m.kwargs.use_expln,
                clip_mean: m.kwargs.clip_mean.unwrap_or(2.0),
            };
            let mu = if sde.clip_mean > 0.0 { "mu.0" } else { "mu" };
            m.expect_shape(&format!("actor.{mu}.weight"), &[act_dim, last])?;
            m.expect_shape("actor.log_std", &[last, act_dim])?;
            Some(sde)
        } else {
            for head in ["mu", "log_std"] {
                m.expect_shape(&format!("actor.{head}.weight"), &[act_dim, last])?;
            }
            None
        };
        m.check_arch("actor", &latent, m.kwargs.pi.as_deref())?;
        let (critic_arch, n_critics) = m.critic_arch("critic", obs_dim + act_dim)?;
        let actor_config = MlpConfig {
            net_arch: latent,
            activation: m.kwargs.activation,
            sde,
        };
        let critic_config = MlpConfig {
            net_arch: critic_arch,
            activation: m.kwargs.activation,
            sde: None,
        };
        let (o, a) = (&m.observation_space, &m.action_space);
        let actor = SacActor::new(o, a, actor_config, 0, device)?;
        let critic = ContinuousCritic::new(o, a, critic_config.clone(), n_critics, 0, device)?;
        let critic_target = ContinuousCritic::new(o, a, critic_config, n_critics, 0, device)?;
        let mut used = Vec::new();
        m.assign(&actor.trainable_vars(), "actor.", &mut used)?;
        m.assign(&critic.trainable_vars(), "critic.", &mut used)?;
        m.assign(&critic_target.trainable_vars(), "critic_target.", &mut used)?;
        m.refuse_unused(&used)?;
        Ok(Sb3Sac {
            actor,
            critic,
            critic_target,
            observation_space: m.observation_space,
            action_space: m.action_space,
        })
    }
}

impl Sb3Td3 {
    /// Loads the TD3 or DDPG model file at `path` onto `device` (errors as [`Sb3Sac::from_zip`]).
    pub fn from_zip(path: impl AsRef<Path>, device: &Device) -> Result<Self> {
        let path = path.as_ref();
        let bytes = io::read_bounded(path)?;
        Self::from_zip_bytes_at(&bytes, device, &path.display().to_string())
    }

    /// [`Sb3Td3::from_zip`] from the bytes of the zip.
    pub fn from_zip_bytes(bytes: &[u8], device: &Device) -> Result<Self> {
        Self::from_zip_bytes_at(bytes, device, "<SB3 zip>")
    }

    pub(crate) fn from_zip_bytes_at(bytes: &[u8], device: &Device, path: &str) -> Result<Self> {
        let m = Model::open(bytes, path, "stable_baselines3.td3.policies", "TD3Policy")?;
        let obs_dim = m.observation_space.flat_dim();
        let act_dim = m.action_space.flat_dim();
        let actor_arch = |prefix: &str| -> Result<Vec<usize>> {
            let (mut sizes, last) = sequential_sizes(&m.tensors, prefix, obs_dim)?;
            if last != act_dim || sizes.is_empty() {
                return Err(PolicyError::Unsupported(format!(
                    "{prefix}: its last layer has {last} outputs, the action space {act_dim}"
                )));
            }
            sizes.pop();
            Ok(sizes)
        };
        let arch = actor_arch("actor.mu")?;
        if actor_arch("actor_target.mu")? != arch {
            return Err(m.corrupt("actor_target's shapes differ from actor's".into()));
        }
        m.check_arch("actor", &arch, m.kwargs.pi.as_deref())?;
        let (critic_arch, n_critics) = m.critic_arch("critic", obs_dim + act_dim)?;
        let config = |net_arch: Vec<usize>| MlpConfig {
            net_arch,
            activation: m.kwargs.activation,
            sde: None,
        };
        let (o, a) = (&m.observation_space, &m.action_space);
        let actor = Td3Actor::new(o, a, config(arch.clone()), 0, device)?;
        let actor_target = Td3Actor::new(o, a, config(arch), 0, device)?;
        let critic =
            ContinuousCritic::new(o, a, config(critic_arch.clone()), n_critics, 0, device)?;
        let critic_target = ContinuousCritic::new(o, a, config(critic_arch), n_critics, 0, device)?;
        let mut used = Vec::new();
        m.assign(&actor.trainable_vars(), "actor.", &mut used)?;
        m.assign(&actor_target.trainable_vars(), "actor_target.", &mut used)?;
        m.assign(&critic.trainable_vars(), "critic.", &mut used)?;
        m.assign(&critic_target.trainable_vars(), "critic_target.", &mut used)?;
        m.refuse_unused(&used)?;
        Ok(Sb3Td3 {
            actor,
            actor_target,
            critic,
            critic_target,
            observation_space: m.observation_space,
            action_space: m.action_space,
        })
    }
}

/// Which kind of model an SB3 zip holds, by its policy class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ZipKind {
    /// SAC's `SACPolicy`.
    Sac,
    /// TD3's (and DDPG's) `TD3Policy`.
    Td3,
    /// Anything else (A2C/PPO/DQN, or unsupported: the importers say which).
    Other,
}

/// Reads the policy class of the SB3 zip `bytes` (errors name `path`).
pub(crate) fn zip_kind(bytes: &[u8], path: &str) -> Result<ZipKind> {
    let (_, data) = open_model(bytes, path)?;
    let Ok((module, _)) = policy_class_names(&data) else {
        return Ok(ZipKind::Other);
    };
    Ok(match module.as_str() {
        "stable_baselines3.sac.policies" => ZipKind::Sac,
        "stable_baselines3.td3.policies" => ZipKind::Td3,
        _ => ZipKind::Other,
    })
}

/// What an off-policy policy's `policy_kwargs` say.
struct Kwargs {
    pi: Option<Vec<usize>>,
    qf: Option<Vec<usize>>,
    activation: Activation,
    n_critics: Option<usize>,
    use_sde: bool,
    log_std_init: Option<f64>,
    use_expln: bool,
    clip_mean: Option<f64>,
}

impl Kwargs {
    fn read(v: Option<&Value>) -> Result<Kwargs> {
        let mut kw = Kwargs {
            pi: None,
            qf: None,
            // SB3's SAC/TD3 policies default to ReLU.
            activation: Activation::ReLU,
            n_critics: None,
            use_sde: false,
            log_std_init: None,
            use_expln: false,
            clip_mean: None,
        };
        let Some(Value::Object(map)) = v else {
            return Ok(kw);
        };
        let unsupported = |what: String| PolicyError::Unsupported(format!("policy_kwargs {what}"));
        for (key, value) in map {
            match key.as_str() {
                "net_arch" => match value {
                    Value::Array(_) => {
                        let l = int_list(value)
                            .ok_or_else(|| unsupported(format!("net_arch {value}")))?;
                        kw.pi = Some(l.clone());
                        kw.qf = Some(l);
                    }
                    Value::Object(parts) => {
                        for (k, v) in parts {
                            let l = int_list(v)
                                .ok_or_else(|| unsupported(format!("net_arch {value}")))?;
                            match k.as_str() {
                                "pi" => kw.pi = Some(l),
                                "qf" => kw.qf = Some(l),
                                ":type:" | ":serialized:" => {}
                                _ => return Err(unsupported(format!("net_arch {value}"))),
                            }
                        }
                    }
                    _ => return Err(unsupported(format!("net_arch {value}"))),
                },
                "activation_fn" => {
                    let s = value.as_str().unwrap_or("");
                    kw.activation = if s.ends_with(".Tanh'>") {
                        Activation::Tanh
                    } else if s.ends_with(".ReLU'>") {
                        Activation::ReLU
                    } else {
                        return Err(unsupported(format!("activation_fn {value}")));
                    };
                }
                "n_critics" => {
                    kw.n_critics = Some(
                        value
                            .as_u64()
                            .and_then(|n| usize::try_from(n).ok())
                            .ok_or_else(|| unsupported(format!("n_critics {value}")))?,
                    )
                }
                "use_sde" => kw.use_sde = value.as_bool() == Some(true),
                "use_expln" => kw.use_expln = value.as_bool() == Some(true),
                "log_std_init" | "clip_mean" => {
                    let v = value
                        .as_f64()
                        .filter(|v| v.is_finite())
                        .ok_or_else(|| unsupported(format!("{key} {value}")))?;
                    if key == "log_std_init" {
                        kw.log_std_init = Some(v);
                    } else {
                        kw.clip_mean = Some(v);
                    }
                }
                "share_features_extractor" if value.as_bool() == Some(true) => {
                    return Err(unsupported("share_features_extractor=True".into()))
                }
                "features_extractor_class"
                    if !value
                        .as_str()
                        .is_some_and(|s| s.contains(".FlattenExtractor'>")) =>
                {
                    return Err(unsupported(format!("features_extractor_class {value}")))
                }
                // The optimizer, SB3's bookkeeping.
                _ => {}
            }
        }
        Ok(kw)
    }
}

/// An opened model: its `data`, kwargs, spaces and `policy.pth` tensors.
struct Model {
    path: String,
    data: Value,
    kwargs: Kwargs,
    observation_space: Space,
    action_space: Space,
    tensors: BTreeMap<String, HostTensor>,
}

impl Model {
    fn open(bytes: &[u8], path: &str, module: &str, class: &str) -> Result<Model> {
        let (zip, data) = open_model(bytes, path)?;
        let (m, c) = policy_class_names(&data)?;
        if m != module || c != class {
            return Err(PolicyError::Unsupported(format!(
                "policy class {m}.{c} (expected {module}.{class})"
            )));
        }
        let kwargs = Kwargs::read(data.get("policy_kwargs"))?;
        let pth_bytes = zip
            .get("policy.pth")
            .map_err(|e| e.at(path))?
            .ok_or_else(|| PolicyError::Corrupt {
                path: path.to_string(),
                reason: "no `policy.pth` member".into(),
            })?;
        let tensors =
            pth::read_state_dict(pth_bytes).map_err(|e| e.context("policy.pth").at(path))?;
        let n_weights: usize = tensors.values().map(|t| t.data.len()).sum();
        let limit = n_weights.min(MAX_SPACE_ELEMENTS);
        let observation_space = read_space(&data, "observation_space", limit, path)?;
        let action_space = read_space(&data, "action_space", limit, path)?;
        if observation_space.as_box().is_none() || action_space.as_box().is_none() {
            return Err(PolicyError::Unsupported(format!(
                "spaces {observation_space} -> {action_space} (Box observations and actions needed)"
            )));
        }
        Ok(Model {
            path: path.to_string(),
            data,
            kwargs,
            observation_space,
            action_space,
            tensors,
        })
    }

    fn corrupt(&self, reason: String) -> PolicyError {
        PolicyError::Corrupt {
            path: self.path.clone(),
            reason,
        }
    }

    fn expect_shape(&self, name: &str, shape: &[usize]) -> Result<()> {
        match self.tensors.get(name) {
            Some(t) if t.shape == shape => Ok(()),
            Some(t) => Err(self.corrupt(format!(
                "{name} has shape {:?}, expected {shape:?}",
                t.shape
            ))),
            None => Err(self.corrupt(format!("policy.pth has no {name}"))),
        }
    }

    fn check_arch(&self, what: &str, found: &[usize], declared: Option<&[usize]>) -> Result<()> {
        match declared {
            Some(d) if d != found => Err(self.corrupt(format!(
                "policy_kwargs give the {what} net_arch {d:?}, policy.pth's shapes {found:?}"
            ))),
            _ => Ok(()),
        }
    }

    /// The hidden layers and head count of the critics named `prefix` (`qf0`, `qf1`, ...),
    /// each a chain from `in_dim` to one value, all alike; the target must match.
    fn critic_arch(&self, prefix: &str, in_dim: usize) -> Result<(Vec<usize>, usize)> {
        let mut arch: Option<Vec<usize>> = None;
        let mut n = 0;
        while self
            .tensors
            .contains_key(&format!("{prefix}.qf{n}.0.weight"))
        {
            let (mut sizes, last) =
                sequential_sizes(&self.tensors, &format!("{prefix}.qf{n}"), in_dim)?;
            if last != 1 {
                return Err(self.corrupt(format!("{prefix}.qf{n} ends with {last} outputs, not 1")));
            }
            sizes.pop();
            match &arch {
                Some(a) if *a != sizes => {
                    return Err(self.corrupt(format!("{prefix}.qf{n}'s layers differ from qf0's")))
                }
                _ => arch = Some(sizes),
            }
            n += 1;
        }
        let arch = arch.ok_or_else(|| self.corrupt(format!("policy.pth has no {prefix}.qf0")))?;
        if let Some(k) = self.kwargs.n_critics {
            if k != n {
                return Err(self.corrupt(format!(
                    "policy_kwargs n_critics={k} but policy.pth has {n} critics"
                )));
            }
        }
        self.check_arch("critic", &arch, self.kwargs.qf.as_deref())?;
        if prefix == "critic" {
            let (target, m) = self.critic_arch("critic_target", in_dim)?;
            if (target, m) != (arch.clone(), n) {
                return Err(self.corrupt("critic_target's shapes differ from critic's".into()));
            }
        }
        Ok((arch, n))
    }

    /// Sets `vars` from the tensors named `prefix` + name: each present with the variable's
    /// shape and finite values. Records the names used.
    fn assign(&self, vars: &[(String, Var)], prefix: &str, used: &mut Vec<String>) -> Result<()> {
        let mut staged = Vec::with_capacity(vars.len());
        for (name, var) in vars {
            let key = format!("{prefix}{name}");
            let t = self
                .tensors
                .get(&key)
                .ok_or_else(|| self.corrupt(format!("policy.pth has no {key}")))?;
            if t.shape != var.dims() {
                return Err(self.corrupt(format!(
                    "{key} has shape {:?}, expected {:?}",
                    t.shape,
                    var.dims()
                )));
            }
            if let Some((i, v)) = t.data.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                return Err(PolicyError::NonFiniteWeight {
                    path: self.path.clone(),
                    tensor: key,
                    index: i,
                    value: *v,
                });
            }
            staged.push((
                var,
                Tensor::from_slice(&t.data, t.shape.as_slice(), var.device())?,
            ));
            used.push(key);
        }
        for (var, t) in staged {
            var.set(&t)?;
        }
        Ok(())
    }

    fn refuse_unused(&self, used: &[String]) -> Result<()> {
        let unknown: Vec<&String> = self.tensors.keys().filter(|k| !used.contains(k)).collect();
        if unknown.is_empty() {
            Ok(())
        } else {
            Err(PolicyError::Unsupported(format!(
                "policy parameters {unknown:?} (not part of SB3's MlpPolicy for this algorithm)"
            )))
        }
    }
}
