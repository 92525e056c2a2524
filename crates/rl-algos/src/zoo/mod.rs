//! rl-zoo hyperparameter files (`hyperparams/<algo>.yml`), read as rl-zoo reads them.
//!
//! A file maps env ids to sections of SB3 constructor arguments plus rl-zoo's own keys
//! (`n_timesteps`, `n_envs`, `policy`, `normalize`, `policy_kwargs`, `env_kwargs`, ...).
//! [`ZooEntry::from_yaml`] takes one env's section (YAML merge keys `<<:` included);
//! [`ZooEntry::set`] applies overrides such as rl-zoo's `-params key:value`
//! ([`parse_override`]); the typed readers ([`ZooEntry::a2c`], [`ZooEntry::ppo`],
//! [`ZooEntry::dqn`], [`ZooEntry::sac`], [`ZooEntry::td3`]) turn it into this crate's
//! configurations, reading `lin_<v>` schedules, `!!float` numbers and the Python literals rl-zoo
//! puts in strings (`policy_kwargs: "dict(log_std_init=-2, ortho_init=False)"`, `normalize:
//! "{'norm_obs': True, 'norm_reward': False}"`), and refuse every key they do not use with an
//! error that names it, so nothing in a file is silently ignored.
//!
//! ```
//! use rl_algos::zoo::ZooEntry;
//!
//! let yaml = "CartPole-v1:\n  n_envs: 8\n  n_timesteps: !!float 1e5\n  policy: 'MlpPolicy'\n  \
//!             n_steps: 32\n  learning_rate: lin_0.001\n  clip_range: lin_0.2\n";
//! let entry = ZooEntry::from_yaml(yaml, "CartPole-v1")?;
//! let run = entry.ppo()?;
//! assert_eq!(run.n_envs, 8);
//! assert_eq!(run.n_timesteps, Some(100_000));
//! assert_eq!(run.config.n_steps, 32);
//! # Ok::<(), rl_algos::AlgoError>(())
//! ```

mod pyliteral;

use crate::a2c::A2cConfig;
use crate::dqn::DqnConfig;
use crate::error::{AlgoError, Result};
use crate::noise::ActionNoise;
use crate::off_policy::{GradientSteps, TrainFreq};
use crate::optim::Schedule;
use crate::ppo::PpoConfig;
use crate::sac::{EntCoef, SacConfig};
use crate::td3::Td3Config;
use rl_env::VecNormalizeConfig;
use rl_policy::{Activation, MlpConfig, MlpPolicyConfig, NetArch, SacSdeConfig};
use std::collections::BTreeSet;
use std::fmt;
use yaml_rust2::{Yaml, YamlLoader};

/// The shipped hyperparameter file of `algo` (`"a2c"`, `"ppo"`, `"dqn"`, `"sac"`, `"td3"`,
/// `"ddpg"`): rl-zoo's classic-control entries, unchanged (the repository's `hyperparams/`).
pub fn shipped(algo: &str) -> Option<&'static str> {
    Some(match algo {
        "a2c" => include_str!("../../../../hyperparams/a2c.yml"),
        "ppo" => include_str!("../../../../hyperparams/ppo.yml"),
        "dqn" => include_str!("../../../../hyperparams/dqn.yml"),
        "sac" => include_str!("../../../../hyperparams/sac.yml"),
        "td3" => include_str!("../../../../hyperparams/td3.yml"),
        "ddpg" => include_str!("../../../../hyperparams/ddpg.yml"),
        _ => return None,
    })
}

/// Largest hyperparameter file read (rl-zoo's largest is ~20 KB).
pub const MAX_FILE_BYTES: usize = 4 << 20;

/// A value of a hyperparameter file.
#[derive(Clone, Debug, PartialEq)]
pub enum ZooValue {
    /// `null` / `None`.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string (schedules such as `lin_0.001` and Python literals stay strings until read).
    Str(String),
    /// A (dotted) Python name inside a literal, e.g. `nn.ReLU`.
    Name(String),
    /// A list (or tuple).
    List(Vec<ZooValue>),
    /// A mapping, in file order.
    Dict(Vec<(String, ZooValue)>),
}

impl fmt::Display for ZooValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ZooValue::Null => write!(f, "None"),
            ZooValue::Bool(b) => write!(f, "{}", if *b { "True" } else { "False" }),
            ZooValue::Int(v) => write!(f, "{v}"),
            ZooValue::Float(v) => write!(f, "{v:?}"),
            ZooValue::Str(s) => write!(f, "{s:?}"),
            ZooValue::Name(n) => write!(f, "{n}"),
            ZooValue::List(items) => {
                write!(f, "[")?;
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{v}")?;
                }
                write!(f, "]")
            }
            ZooValue::Dict(entries) => {
                write!(f, "dict(")?;
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{k}={v}")?;
                }
                write!(f, ")")
            }
        }
    }
}

impl ZooValue {
    /// A number as f64.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            ZooValue::Int(v) => Some(v as f64),
            ZooValue::Float(v) => Some(v),
            _ => None,
        }
    }

    /// A whole, non-negative number (`1e6` written as a float included).
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            ZooValue::Int(v) => u64::try_from(v).ok(),
            ZooValue::Float(v) if v >= 0.0 && v.fract() == 0.0 && v < 1.8e19 => Some(v as u64),
            _ => None,
        }
    }

    /// A Python literal held in a string, parsed; other values as they are.
    fn literal(&self) -> std::result::Result<ZooValue, String> {
        match self {
            ZooValue::Str(s) => pyliteral::parse(s),
            other => Ok(other.clone()),
        }
    }
}

fn from_yaml(y: &Yaml, depth: usize) -> std::result::Result<ZooValue, String> {
    if depth > 32 {
        return Err("YAML nested deeper than 32 levels".into());
    }
    Ok(match y {
        Yaml::Null => ZooValue::Null,
        Yaml::Boolean(b) => ZooValue::Bool(*b),
        Yaml::Integer(i) => ZooValue::Int(*i),
        Yaml::Real(s) => ZooValue::Float(
            s.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| format!("{s:?} is not a finite number"))?,
        ),
        Yaml::String(s) => ZooValue::Str(s.clone()),
        Yaml::Array(items) => ZooValue::List(
            items
                .iter()
                .map(|v| from_yaml(v, depth + 1))
                .collect::<std::result::Result<_, _>>()?,
        ),
        Yaml::Hash(h) => {
            let mut entries: Vec<(String, ZooValue)> = Vec::new();
            let mut merged: Vec<(String, ZooValue)> = Vec::new();
            for (k, v) in h {
                let key = match k {
                    Yaml::String(s) => s.clone(),
                    Yaml::Integer(i) => i.to_string(),
                    other => return Err(format!("unsupported key {other:?}")),
                };
                if key == "<<" {
                    // YAML merge key: the mapping's own keys win over merged ones.
                    let sources = match v {
                        Yaml::Array(a) => a.clone(),
                        other => vec![other.clone()],
                    };
                    for s in &sources {
                        match from_yaml(s, depth + 1)? {
                            ZooValue::Dict(d) => merged.extend(d),
                            other => return Err(format!("cannot merge {other} into a mapping")),
                        }
                    }
                } else {
                    entries.push((key, from_yaml(v, depth + 1)?));
                }
            }
            for (k, v) in merged {
                if !entries.iter().any(|(e, _)| *e == k) {
                    entries.push((k, v));
                }
            }
            ZooValue::Dict(entries)
        }
        Yaml::Alias(_) | Yaml::BadValue => return Err("unresolved alias or bad value".into()),
    })
}

/// Parses one `key:value` override (rl-zoo's `-params`), the value in the YAML file's syntax:
/// numbers, booleans, `lin_<v>`, quoted Python literals.
pub fn parse_override(arg: &str) -> Result<(String, ZooValue)> {
    let (key, value) = arg.split_once(':').ok_or_else(|| {
        AlgoError::InvalidArgument(format!("hyperparameter override {arg:?} is not key:value"))
    })?;
    let key = key.trim();
    if key.is_empty() {
        return Err(AlgoError::InvalidArgument(format!(
            "hyperparameter override {arg:?} has no key"
        )));
    }
    let docs = YamlLoader::load_from_str(&format!("v: {value}"))
        .map_err(|e| AlgoError::InvalidArgument(format!("override {key}: {e}")))?;
    let v = docs
        .first()
        .map(|d| from_yaml(&d["v"], 0))
        .transpose()
        .map_err(|e| AlgoError::InvalidArgument(format!("override {key}: {e}")))?
        .unwrap_or(ZooValue::Null);
    Ok((key.to_string(), v))
}

/// One env's section of a hyperparameter file.
#[derive(Clone, Debug, PartialEq)]
pub struct ZooEntry {
    env_id: String,
    items: Vec<(String, ZooValue)>,
}

/// Virtual-environment normalization as rl-zoo's `normalize` key asks for it (`true`, or a
/// dict of `VecNormalize` arguments).
#[derive(Clone, Debug, PartialEq)]
pub struct NormalizeKwargs {
    /// Normalize observations (`True`).
    pub norm_obs: bool,
    /// Normalize rewards (`True`).
    pub norm_reward: bool,
    /// Other `VecNormalize` arguments given (`gamma`, `clip_obs`, `clip_reward`, `epsilon`).
    pub other: Vec<(String, f64)>,
}

impl NormalizeKwargs {
    /// The [`VecNormalizeConfig`] these arguments ask for (SB3's defaults for the rest), as
    /// rl-zoo builds the training `VecNormalize`; an invalid value is an error naming it.
    pub fn config(&self) -> Result<VecNormalizeConfig> {
        let mut c = VecNormalizeConfig {
            norm_obs: self.norm_obs,
            norm_reward: self.norm_reward,
            ..VecNormalizeConfig::default()
        };
        for (k, v) in &self.other {
            match k.as_str() {
                "gamma" => c.gamma = *v,
                "clip_obs" => c.clip_obs = *v,
                "clip_reward" => c.clip_reward = *v,
                "epsilon" => c.epsilon = *v,
                _ => {
                    return Err(AlgoError::InvalidArgument(format!(
                        "normalize: unsupported VecNormalize argument {k}"
                    )))
                }
            }
        }
        c.validate()
            .map_err(|e| AlgoError::InvalidArgument(format!("normalize: {e}")))?;
        Ok(c)
    }
}

/// A network architecture of `policy_kwargs`.
#[derive(Clone, Debug, PartialEq)]
pub enum NetArchKwarg {
    /// `net_arch=[64, 64]`: the same hidden layers for every network.
    Same(Vec<usize>),
    /// `net_arch=dict(pi=[..], vf=[..])` (on-policy) or `dict(pi=[..], qf=[..])` (SAC/TD3).
    Split {
        /// Actor layers.
        pi: Vec<usize>,
        /// Critic layers (`vf` or `qf`).
        critic: Vec<usize>,
    },
}

/// The `policy_kwargs` this crate supports, each `None` when not given (SB3's default then).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PolicyKwargs {
    /// `net_arch`.
    pub net_arch: Option<NetArchKwarg>,
    /// `activation_fn` (`nn.Tanh` or `nn.ReLU`).
    pub activation_fn: Option<Activation>,
    /// `ortho_init`.
    pub ortho_init: Option<bool>,
    /// `log_std_init`.
    pub log_std_init: Option<f64>,
    /// `n_critics` (SAC/TD3).
    pub n_critics: Option<usize>,
    /// `use_expln` (gSDE).
    pub use_expln: Option<bool>,
    /// `clip_mean` (SAC with gSDE).
    pub clip_mean: Option<f64>,
}

impl PolicyKwargs {
    /// SAC's actor and critic configurations as SB3's `SACPolicy` builds them from these
    /// kwargs: `net_arch` (SB3's default `[256, 256]`), `activation_fn` (ReLU), and with
    /// `use_sde` the actor's gSDE settings (`log_std_init` -3, `use_expln` False, `clip_mean`
    /// 2.0 unless given).
    pub fn sac_networks(&self, use_sde: bool) -> (MlpConfig, MlpConfig) {
        let (pi, qf) = match &self.net_arch {
            None => (vec![256, 256], vec![256, 256]),
            Some(NetArchKwarg::Same(l)) => (l.clone(), l.clone()),
            Some(NetArchKwarg::Split { pi, critic }) => (pi.clone(), critic.clone()),
        };
        let activation = self.activation_fn.unwrap_or(Activation::ReLU);
        let d = SacSdeConfig::default();
        let sde = use_sde.then(|| SacSdeConfig {
            log_std_init: self.log_std_init.unwrap_or(d.log_std_init),
            use_expln: self.use_expln.unwrap_or(d.use_expln),
            clip_mean: self.clip_mean.unwrap_or(d.clip_mean),
        });
        (
            MlpConfig {
                net_arch: pi,
                activation,
                sde,
            },
            MlpConfig {
                net_arch: qf,
                activation,
                sde: None,
            },
        )
    }
}

impl PolicyKwargs {
    /// SB3's `MlpPolicy` (A2C, PPO) these kwargs describe, SB3's defaults for what they leave
    /// out; `use_sde` comes from the algorithm's section. `n_critics` is an error (SAC/TD3's).
    pub fn mlp_policy_config(&self, use_sde: bool) -> Result<MlpPolicyConfig> {
        let d = MlpPolicyConfig::default();
        if self.n_critics.is_some() {
            return Err(AlgoError::InvalidArgument(
                "policy_kwargs n_critics is for SAC/TD3, not an MlpPolicy".into(),
            ));
        }
        Ok(MlpPolicyConfig {
            net_arch: match &self.net_arch {
                None => d.net_arch,
                Some(NetArchKwarg::Same(l)) => NetArch {
                    shared: vec![],
                    pi: l.clone(),
                    vf: l.clone(),
                },
                Some(NetArchKwarg::Split { pi, critic }) => NetArch {
                    shared: vec![],
                    pi: pi.clone(),
                    vf: critic.clone(),
                },
            },
            activation: self.activation_fn.unwrap_or(d.activation),
            ortho_init: self.ortho_init.unwrap_or(d.ortho_init),
            log_std_init: self.log_std_init.unwrap_or(d.log_std_init),
            use_sde,
        })
    }
}

/// An env's section read for one algorithm.
#[derive(Clone, Debug, PartialEq)]
pub struct ZooRun<C> {
    /// The algorithm's configuration (SB3's defaults where the file says nothing).
    pub config: C,
    /// `n_envs` (1 when absent).
    pub n_envs: usize,
    /// `n_timesteps`, when given.
    pub n_timesteps: Option<u64>,
    /// `normalize`, when on.
    pub normalize: Option<NormalizeKwargs>,
    /// `policy_kwargs`.
    pub policy_kwargs: PolicyKwargs,
    /// `env_kwargs`, in file order.
    pub env_kwargs: Vec<(String, ZooValue)>,
}

/// Reads keys of an entry, remembering which were read so the rest can be refused.
struct Reader<'a> {
    entry: &'a ZooEntry,
    used: BTreeSet<&'static str>,
}

impl<'a> Reader<'a> {
    fn err(&self, key: &str, msg: impl fmt::Display) -> AlgoError {
        AlgoError::InvalidArgument(format!(
            "rl-zoo hyperparameters for {}: {key}: {msg}",
            self.entry.env_id
        ))
    }

    fn get(&mut self, key: &'static str) -> Option<&'a ZooValue> {
        self.used.insert(key);
        self.entry
            .items
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    fn f64(&mut self, key: &'static str, default: f64) -> Result<f64> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_f64()
                .ok_or_else(|| self.err(key, format!("a number expected, got {v}"))),
        }
    }

    fn opt_f64(&mut self, key: &'static str, default: Option<f64>) -> Result<Option<f64>> {
        match self.get(key) {
            None => Ok(default),
            Some(ZooValue::Null) => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| self.err(key, format!("a number or None expected, got {v}"))),
        }
    }

    fn u64(&mut self, key: &'static str, default: u64) -> Result<u64> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_u64()
                .ok_or_else(|| self.err(key, format!("a whole number >= 0 expected, got {v}"))),
        }
    }

    fn i64(&mut self, key: &'static str, default: i64) -> Result<i64> {
        match self.get(key) {
            None => Ok(default),
            Some(ZooValue::Int(v)) => Ok(*v),
            Some(v) => Err(self.err(key, format!("a whole number expected, got {v}"))),
        }
    }

    fn usize(&mut self, key: &'static str, default: usize) -> Result<usize> {
        let v = self.u64(key, default as u64)?;
        usize::try_from(v).map_err(|_| self.err(key, format!("{v} is too large")))
    }

    fn bool(&mut self, key: &'static str, default: bool) -> Result<bool> {
        match self.get(key) {
            None => Ok(default),
            Some(ZooValue::Bool(b)) => Ok(*b),
            Some(v) => Err(self.err(key, format!("true or false expected, got {v}"))),
        }
    }

    /// A number or rl-zoo's `lin_<v>` (SB3's `linear_schedule(v)`: `progress_remaining * v`).
    fn schedule(&mut self, key: &'static str, default: Schedule) -> Result<Schedule> {
        match self.get(key) {
            None => Ok(default),
            Some(ZooValue::Str(s)) => {
                let v = s
                    .strip_prefix("lin_")
                    .and_then(|x| x.parse::<f64>().ok())
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| {
                        self.err(key, format!("a number or lin_<value> expected, got {s:?}"))
                    })?;
                Ok(Schedule::LinearToZero(v))
            }
            Some(v) => v
                .as_f64()
                .map(Schedule::Constant)
                .ok_or_else(|| self.err(key, format!("a number or lin_<value> expected, got {v}"))),
        }
    }

    fn train_freq(&mut self, default: TrainFreq) -> Result<TrainFreq> {
        let key = "train_freq";
        match self.get(key) {
            None => Ok(default),
            Some(ZooValue::List(l)) if l.len() == 2 => {
                let n = l[0]
                    .as_u64()
                    .ok_or_else(|| self.err(key, format!("a count expected, got {}", l[0])))?;
                match &l[1] {
                    ZooValue::Str(u) if u == "step" => Ok(TrainFreq::Steps(n)),
                    ZooValue::Str(u) if u == "episode" => Ok(TrainFreq::Episodes(n)),
                    other => {
                        Err(self.err(key, format!("unit \"step\" or \"episode\", got {other}")))
                    }
                }
            }
            Some(v) => v
                .as_u64()
                .map(TrainFreq::Steps)
                .ok_or_else(|| self.err(key, format!("n or [n, \"step\"|\"episode\"], got {v}"))),
        }
    }

    fn gradient_steps(&mut self, default: GradientSteps) -> Result<GradientSteps> {
        match self.get("gradient_steps") {
            None => Ok(default),
            Some(ZooValue::Int(-1)) => Ok(GradientSteps::AsCollected),
            Some(v) => v.as_u64().map(GradientSteps::Fixed).ok_or_else(|| {
                self.err("gradient_steps", format!("a count or -1 expected, got {v}"))
            }),
        }
    }

    /// rl-zoo's `noise_type` / `noise_std` for an action space of `act_dim` dimensions.
    fn action_noise(&mut self, act_dim: usize) -> Result<Option<ActionNoise>> {
        let kind = self.get("noise_type").cloned();
        let std = self.opt_f64("noise_std", None)?;
        match (kind, std) {
            (None, None) => Ok(None),
            (Some(ZooValue::Str(k)), Some(s)) if k == "normal" => {
                Ok(Some(ActionNoise::normal(act_dim, s)))
            }
            (Some(ZooValue::Str(k)), Some(s)) if k == "ornstein-uhlenbeck" => {
                Ok(Some(ActionNoise::ornstein_uhlenbeck(act_dim, s)))
            }
            (kind, std) => Err(self.err(
                "noise_type",
                format!(
                    "'normal' or 'ornstein-uhlenbeck' with a noise_std expected, got {} and {}",
                    kind.map_or("nothing".into(), |k| k.to_string()),
                    std.map_or("nothing".into(), |s| s.to_string())
                ),
            )),
        }
    }

    /// The rl-zoo keys every algorithm shares, and the end of the reading: unread keys are
    /// refused by name.
    fn finish<C>(mut self, config: C, on_policy: bool) -> Result<ZooRun<C>> {
        match self.get("policy") {
            None => {}
            Some(ZooValue::Str(p)) if p == "MlpPolicy" => {}
            Some(v) => {
                return Err(self.err("policy", format!("only 'MlpPolicy' is supported, got {v}")))
            }
        }
        let n_envs = self.usize("n_envs", 1)?;
        if n_envs == 0 {
            return Err(self.err("n_envs", "must be at least 1"));
        }
        let n_timesteps = match self.get("n_timesteps") {
            None => None,
            Some(v) => Some(v.as_u64().filter(|&n| n > 0).ok_or_else(|| {
                self.err(
                    "n_timesteps",
                    format!("a whole number > 0 expected, got {v}"),
                )
            })?),
        };
        let mut normalize = self.normalize()?;
        // rl-zoo gives VecNormalize the algorithm's discount when the section sets `gamma`.
        if let (Some(n), Some(g)) = (
            normalize.as_mut(),
            self.entry
                .items
                .iter()
                .find(|(k, _)| k == "gamma")
                .and_then(|(_, v)| v.as_f64()),
        ) {
            n.other.retain(|(k, _)| k != "gamma");
            n.other.push(("gamma".into(), g));
        }
        let policy_kwargs = self.policy_kwargs(on_policy)?;
        let env_kwargs = match self.get("env_kwargs") {
            None | Some(ZooValue::Null) => Vec::new(),
            Some(v) => match v.literal().map_err(|e| self.err("env_kwargs", e))? {
                ZooValue::Dict(d) => d,
                other => {
                    return Err(self.err("env_kwargs", format!("a dict expected, got {other}")))
                }
            },
        };
        let unknown: Vec<&str> = self
            .entry
            .items
            .iter()
            .map(|(k, _)| k.as_str())
            .filter(|k| !self.used.contains(k))
            .collect();
        if !unknown.is_empty() {
            return Err(AlgoError::InvalidArgument(format!(
                "rl-zoo hyperparameters for {}: unsupported key(s) {}",
                self.entry.env_id,
                unknown.join(", ")
            )));
        }
        Ok(ZooRun {
            config,
            n_envs,
            n_timesteps,
            normalize,
            policy_kwargs,
            env_kwargs,
        })
    }

    fn normalize(&mut self) -> Result<Option<NormalizeKwargs>> {
        let key = "normalize";
        let v = match self.get(key) {
            None | Some(ZooValue::Bool(false)) => return Ok(None),
            Some(ZooValue::Bool(true)) => {
                return Ok(Some(NormalizeKwargs {
                    norm_obs: true,
                    norm_reward: true,
                    other: Vec::new(),
                }))
            }
            Some(v) => v.literal().map_err(|e| self.err(key, e))?,
        };
        let ZooValue::Dict(d) = v else {
            return Err(self.err(key, format!("true, false or a dict expected, got {v}")));
        };
        let mut n = NormalizeKwargs {
            norm_obs: true,
            norm_reward: true,
            other: Vec::new(),
        };
        for (k, v) in d {
            match (k.as_str(), &v) {
                ("norm_obs", ZooValue::Bool(b)) => n.norm_obs = *b,
                ("norm_reward", ZooValue::Bool(b)) => n.norm_reward = *b,
                ("gamma" | "clip_obs" | "clip_reward" | "epsilon", _) if v.as_f64().is_some() => {
                    n.other.push((k.clone(), v.as_f64().unwrap_or_default()))
                }
                _ => {
                    return Err(self.err(key, format!("unsupported VecNormalize argument {k}={v}")))
                }
            }
        }
        Ok(Some(n))
    }

    fn policy_kwargs(&mut self, on_policy: bool) -> Result<PolicyKwargs> {
        let key = "policy_kwargs";
        let mut pk = PolicyKwargs::default();
        let v = match self.get(key) {
            None | Some(ZooValue::Null) => return Ok(pk),
            Some(v) => v.literal().map_err(|e| self.err(key, e))?,
        };
        let ZooValue::Dict(d) = v else {
            return Err(self.err(key, format!("a dict expected, got {v}")));
        };
        let layers = |v: &ZooValue| -> Option<Vec<usize>> {
            match v {
                ZooValue::List(l) => l
                    .iter()
                    .map(|x| {
                        x.as_u64()
                            .and_then(|n| usize::try_from(n).ok())
                            .filter(|&n| n > 0)
                    })
                    .collect(),
                _ => None,
            }
        };
        for (k, v) in d {
            let bad = |what: &str| self.err(key, format!("{k}: {what} expected, got {v}"));
            match k.as_str() {
                "net_arch" => {
                    pk.net_arch = Some(match &v {
                        ZooValue::Dict(parts) => {
                            let part =
                                |name: &str| parts.iter().find(|(n, _)| n == name).map(|(_, x)| x);
                            let critic_key = if on_policy { "vf" } else { "qf" };
                            if parts.iter().any(|(n, _)| n != "pi" && n != critic_key) {
                                return Err(bad(&format!("dict(pi=[..], {critic_key}=[..])")));
                            }
                            NetArchKwarg::Split {
                                pi: part("pi")
                                    .and_then(layers)
                                    .ok_or_else(|| bad("a pi list"))?,
                                critic: part(critic_key)
                                    .and_then(layers)
                                    .ok_or_else(|| bad(&format!("a {critic_key} list")))?,
                            }
                        }
                        other => NetArchKwarg::Same(
                            layers(other).ok_or_else(|| bad("a list of layer sizes"))?,
                        ),
                    })
                }
                "activation_fn" => {
                    pk.activation_fn = Some(match &v {
                        ZooValue::Name(n) if n.ends_with("nn.Tanh") || n == "Tanh" => {
                            Activation::Tanh
                        }
                        ZooValue::Name(n) if n.ends_with("nn.ReLU") || n == "ReLU" => {
                            Activation::ReLU
                        }
                        _ => return Err(bad("nn.Tanh or nn.ReLU")),
                    })
                }
                "ortho_init" => match v {
                    ZooValue::Bool(b) => pk.ortho_init = Some(b),
                    _ => return Err(bad("True or False")),
                },
                "log_std_init" => {
                    pk.log_std_init = Some(v.as_f64().ok_or_else(|| bad("a number"))?)
                }
                "use_expln" => match v {
                    ZooValue::Bool(b) => pk.use_expln = Some(b),
                    _ => return Err(bad("True or False")),
                },
                "clip_mean" => pk.clip_mean = Some(v.as_f64().ok_or_else(|| bad("a number"))?),
                "n_critics" => {
                    pk.n_critics = Some(
                        v.as_u64()
                            .and_then(|n| usize::try_from(n).ok())
                            .ok_or_else(|| bad("a count"))?,
                    )
                }
                other => {
                    return Err(self.err(key, format!("unsupported policy keyword {other}={v}")))
                }
            }
        }
        Ok(pk)
    }
}

impl ZooEntry {
    /// The section for `env_id` of the hyperparameter file `yaml`.
    pub fn from_yaml(yaml: &str, env_id: &str) -> Result<Self> {
        if yaml.len() > MAX_FILE_BYTES {
            return Err(AlgoError::InvalidArgument(format!(
                "hyperparameter file of {} bytes (at most {MAX_FILE_BYTES})",
                yaml.len()
            )));
        }
        let docs = YamlLoader::load_from_str(yaml)
            .map_err(|e| AlgoError::InvalidArgument(format!("hyperparameter file: {e}")))?;
        let doc = docs.first().ok_or_else(|| {
            AlgoError::InvalidArgument("hyperparameter file: empty document".into())
        })?;
        let Yaml::Hash(top) = doc else {
            return Err(AlgoError::InvalidArgument(
                "hyperparameter file: a mapping of env ids expected at the top".into(),
            ));
        };
        let section = top
            .iter()
            .find(|(k, _)| k.as_str() == Some(env_id))
            .map(|(_, v)| v)
            .ok_or_else(|| {
                let ids: Vec<&str> = top.keys().filter_map(Yaml::as_str).collect();
                AlgoError::InvalidArgument(format!(
                    "hyperparameter file has no entry for {env_id} (it has {})",
                    ids.join(", ")
                ))
            })?;
        match from_yaml(section, 0)
            .map_err(|e| AlgoError::InvalidArgument(format!("hyperparameters for {env_id}: {e}")))?
        {
            ZooValue::Dict(items) => Ok(ZooEntry {
                env_id: env_id.to_string(),
                items,
            }),
            other => Err(AlgoError::InvalidArgument(format!(
                "hyperparameters for {env_id}: a mapping expected, got {other}"
            ))),
        }
    }

    /// The env id of the section.
    pub fn env_id(&self) -> &str {
        &self.env_id
    }

    /// The section's keys and values, in file order.
    pub fn items(&self) -> &[(String, ZooValue)] {
        &self.items
    }

    /// Sets (or adds) `key` (rl-zoo's `-params key:value`).
    pub fn set(&mut self, key: &str, value: ZooValue) {
        match self.items.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = value,
            None => self.items.push((key.to_string(), value)),
        }
    }

    fn reader(&self) -> Reader<'_> {
        Reader {
            entry: self,
            used: BTreeSet::new(),
        }
    }

    /// The section as an A2C run (SB3's `A2C` arguments).
    pub fn a2c(&self) -> Result<ZooRun<A2cConfig>> {
        let mut r = self.reader();
        let d = A2cConfig::default();
        let config = A2cConfig {
            learning_rate: r.schedule("learning_rate", d.learning_rate)?,
            n_steps: r.usize("n_steps", d.n_steps)?,
            gamma: r.f64("gamma", d.gamma)?,
            gae_lambda: r.f64("gae_lambda", d.gae_lambda)?,
            ent_coef: r.f64("ent_coef", d.ent_coef)?,
            vf_coef: r.f64("vf_coef", d.vf_coef)?,
            max_grad_norm: r.f64("max_grad_norm", d.max_grad_norm)?,
            rms_prop_eps: r.f64("rms_prop_eps", d.rms_prop_eps)?,
            use_rms_prop: r.bool("use_rms_prop", d.use_rms_prop)?,
            normalize_advantage: r.bool("normalize_advantage", d.normalize_advantage)?,
            use_sde: r.bool("use_sde", d.use_sde)?,
            sde_sample_freq: r.i64("sde_sample_freq", d.sde_sample_freq)?,
            stats_window_size: r.usize("stats_window_size", d.stats_window_size)?,
            ..d
        };
        r.finish(config, true)
    }

    /// The section as a PPO run (SB3's `PPO` arguments).
    pub fn ppo(&self) -> Result<ZooRun<PpoConfig>> {
        let mut r = self.reader();
        let d = PpoConfig::default();
        let clip_range_vf = match r.get("clip_range_vf") {
            None | Some(ZooValue::Null) => None,
            Some(_) => {
                r.used.remove("clip_range_vf");
                Some(r.schedule("clip_range_vf", Schedule::Constant(0.0))?)
            }
        };
        let config = PpoConfig {
            learning_rate: r.schedule("learning_rate", d.learning_rate)?,
            n_steps: r.usize("n_steps", d.n_steps)?,
            batch_size: r.usize("batch_size", d.batch_size)?,
            n_epochs: r.usize("n_epochs", d.n_epochs)?,
            gamma: r.f64("gamma", d.gamma)?,
            gae_lambda: r.f64("gae_lambda", d.gae_lambda)?,
            clip_range: r.schedule("clip_range", d.clip_range)?,
            clip_range_vf,
            normalize_advantage: r.bool("normalize_advantage", d.normalize_advantage)?,
            ent_coef: r.f64("ent_coef", d.ent_coef)?,
            vf_coef: r.f64("vf_coef", d.vf_coef)?,
            max_grad_norm: r.f64("max_grad_norm", d.max_grad_norm)?,
            target_kl: r.opt_f64("target_kl", d.target_kl)?,
            use_sde: r.bool("use_sde", d.use_sde)?,
            sde_sample_freq: r.i64("sde_sample_freq", d.sde_sample_freq)?,
            stats_window_size: r.usize("stats_window_size", d.stats_window_size)?,
            ..d
        };
        r.finish(config, true)
    }

    /// The section as a DQN run (SB3's `DQN` arguments).
    pub fn dqn(&self) -> Result<ZooRun<DqnConfig>> {
        let mut r = self.reader();
        let d = DqnConfig::default();
        let config = DqnConfig {
            learning_rate: r.schedule("learning_rate", d.learning_rate)?,
            buffer_size: r.usize("buffer_size", d.buffer_size)?,
            learning_starts: r.u64("learning_starts", d.learning_starts)?,
            batch_size: r.usize("batch_size", d.batch_size)?,
            tau: r.f64("tau", d.tau)?,
            gamma: r.f64("gamma", d.gamma)?,
            train_freq: r.train_freq(d.train_freq)?,
            gradient_steps: r.gradient_steps(d.gradient_steps)?,
            n_steps: r.usize("n_steps", d.n_steps)?,
            target_update_interval: r.u64("target_update_interval", d.target_update_interval)?,
            exploration_fraction: r.f64("exploration_fraction", d.exploration_fraction)?,
            exploration_initial_eps: r.f64("exploration_initial_eps", d.exploration_initial_eps)?,
            exploration_final_eps: r.f64("exploration_final_eps", d.exploration_final_eps)?,
            max_grad_norm: r.f64("max_grad_norm", d.max_grad_norm)?,
            stats_window_size: r.usize("stats_window_size", d.stats_window_size)?,
            ..d
        };
        r.finish(config, false)
    }

    /// The section as a SAC run (SB3's `SAC` arguments) for an action space of `act_dim`
    /// dimensions (for `noise_std`).
    pub fn sac(&self, act_dim: usize) -> Result<ZooRun<SacConfig>> {
        let mut r = self.reader();
        let d = SacConfig::default();
        let ent_coef = match r.get("ent_coef") {
            None => d.ent_coef,
            Some(ZooValue::Str(s)) if s == "auto" => EntCoef::Auto(1.0),
            Some(ZooValue::Str(s)) if s.starts_with("auto_") => EntCoef::Auto(
                s[5..]
                    .parse()
                    .map_err(|_| r.err("ent_coef", format!("auto_<value> expected, got {s:?}")))?,
            ),
            Some(v) => EntCoef::Fixed(v.as_f64().ok_or_else(|| {
                r.err(
                    "ent_coef",
                    format!("'auto', 'auto_<v>' or a number, got {v}"),
                )
            })?),
        };
        let target_entropy =
            match r.get("target_entropy") {
                None => None,
                Some(ZooValue::Str(s)) if s == "auto" => None,
                Some(v) => Some(v.as_f64().ok_or_else(|| {
                    r.err("target_entropy", format!("'auto' or a number, got {v}"))
                })?),
            };
        let config = SacConfig {
            learning_rate: r.schedule("learning_rate", d.learning_rate)?,
            buffer_size: r.usize("buffer_size", d.buffer_size)?,
            learning_starts: r.u64("learning_starts", d.learning_starts)?,
            batch_size: r.usize("batch_size", d.batch_size)?,
            tau: r.f64("tau", d.tau)?,
            gamma: r.f64("gamma", d.gamma)?,
            train_freq: r.train_freq(d.train_freq)?,
            gradient_steps: r.gradient_steps(d.gradient_steps)?,
            n_steps: r.usize("n_steps", d.n_steps)?,
            action_noise: r.action_noise(act_dim)?,
            ent_coef,
            target_update_interval: r.u64("target_update_interval", d.target_update_interval)?,
            target_entropy,
            use_sde: r.bool("use_sde", d.use_sde)?,
            sde_sample_freq: r.i64("sde_sample_freq", d.sde_sample_freq)?,
            use_sde_at_warmup: r.bool("use_sde_at_warmup", d.use_sde_at_warmup)?,
            stats_window_size: r.usize("stats_window_size", d.stats_window_size)?,
            ..d
        };
        r.finish(config, false)
    }

    /// The section as a TD3 run (SB3's `TD3` arguments; give [`Td3Config::ddpg`] as `defaults`
    /// for DDPG) for an action space of `act_dim` dimensions (for `noise_std`).
    pub fn td3(&self, defaults: Td3Config, act_dim: usize) -> Result<ZooRun<Td3Config>> {
        let mut r = self.reader();
        let d = defaults;
        let config = Td3Config {
            learning_rate: r.schedule("learning_rate", d.learning_rate)?,
            buffer_size: r.usize("buffer_size", d.buffer_size)?,
            learning_starts: r.u64("learning_starts", d.learning_starts)?,
            batch_size: r.usize("batch_size", d.batch_size)?,
            tau: r.f64("tau", d.tau)?,
            gamma: r.f64("gamma", d.gamma)?,
            train_freq: r.train_freq(d.train_freq)?,
            gradient_steps: r.gradient_steps(d.gradient_steps)?,
            n_steps: r.usize("n_steps", d.n_steps)?,
            action_noise: r.action_noise(act_dim)?,
            policy_delay: r.u64("policy_delay", d.policy_delay)?,
            target_policy_noise: r.f64("target_policy_noise", d.target_policy_noise)?,
            target_noise_clip: r.f64("target_noise_clip", d.target_noise_clip)?,
            stats_window_size: r.usize("stats_window_size", d.stats_window_size)?,
            ..d
        };
        r.finish(config, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
defaults: &defaults
  normalize: true
  policy: 'MlpPolicy'
  ent_coef: .0

Acrobot-v1:
  <<: *defaults
  n_envs: 16
  n_timesteps: !!float 5e5

Pendulum-v1:
  normalize: "{'norm_obs': True, 'norm_reward': False}"
  n_envs: 8
  n_steps: 8
  learning_rate: lin_7e-4
  use_rms_prop: True
  policy_kwargs: "dict(log_std_init=-2, ortho_init=False,
                       net_arch=dict(pi=[32], vf=[64, 64]), activation_fn=nn.ReLU)"

MountainCar-v0:
  n_timesteps: !!float 1.2e5
  train_freq: [1, "episode"]
  gradient_steps: -1
  policy_kwargs: "dict(net_arch=[256, 256])"
  env_kwargs: "dict(goal_velocity=0.1)"

Bad-v0:
  frame_stack: 4
  env_wrapper: x
"#;

    #[test]
    fn reads_sections_merges_and_literals() {
        let e = ZooEntry::from_yaml(FILE, "Acrobot-v1").unwrap();
        let run = e.a2c().unwrap();
        assert_eq!((run.n_envs, run.n_timesteps), (16, Some(500_000)));
        assert_eq!(run.config.ent_coef, 0.0);
        assert!(run.normalize.as_ref().unwrap().norm_reward);

        let run = ZooEntry::from_yaml(FILE, "Pendulum-v1")
            .unwrap()
            .a2c()
            .unwrap();
        assert_eq!(run.config.learning_rate, Schedule::LinearToZero(7e-4));
        assert!(run.config.use_rms_prop);
        let n = run.normalize.unwrap();
        assert!(n.norm_obs && !n.norm_reward);
        assert_eq!(run.policy_kwargs.log_std_init, Some(-2.0));
        assert_eq!(run.policy_kwargs.ortho_init, Some(false));
        assert_eq!(run.policy_kwargs.activation_fn, Some(Activation::ReLU));
        assert_eq!(
            run.policy_kwargs.net_arch,
            Some(NetArchKwarg::Split {
                pi: vec![32],
                critic: vec![64, 64]
            })
        );

        let run = ZooEntry::from_yaml(FILE, "MountainCar-v0")
            .unwrap()
            .dqn()
            .unwrap();
        assert_eq!(run.config.train_freq, TrainFreq::Episodes(1));
        assert_eq!(run.config.gradient_steps, GradientSteps::AsCollected);
        assert_eq!(run.n_timesteps, Some(120_000));
        assert_eq!(
            run.env_kwargs,
            vec![("goal_velocity".into(), ZooValue::Float(0.1))]
        );
    }

    #[test]
    fn unknown_keys_values_and_envs_are_named() {
        let e = ZooEntry::from_yaml(FILE, "Bad-v0").unwrap();
        let msg = e.ppo().unwrap_err().to_string();
        assert!(
            msg.contains("frame_stack") && msg.contains("env_wrapper"),
            "{msg}"
        );
        let msg = ZooEntry::from_yaml(FILE, "Nope-v0")
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("Nope-v0") && msg.contains("Acrobot-v1"),
            "{msg}"
        );
        let mut e = ZooEntry::from_yaml(FILE, "Acrobot-v1").unwrap();
        let (k, v) = parse_override("learning_rate:lin_oops").unwrap();
        e.set(&k, v);
        let msg = e.a2c().unwrap_err().to_string();
        assert!(msg.contains("learning_rate"), "{msg}");
        // PPO keys are not A2C keys.
        let (k, v) = parse_override("n_epochs:4").unwrap();
        let mut e = ZooEntry::from_yaml(FILE, "Acrobot-v1").unwrap();
        e.set(&k, v);
        assert!(e.a2c().unwrap_err().to_string().contains("n_epochs"));
        assert_eq!(e.ppo().unwrap().config.n_epochs, 4);
        assert!(ZooEntry::from_yaml("- a\n- b\n", "x").is_err());
        assert!(ZooEntry::from_yaml("a: [unclosed\n", "a").is_err());
    }

    /// Every entry of the shipped files reads with its algorithm's reader (SAC's gSDE entry
    /// included).
    #[test]
    fn the_shipped_hyperparameter_files_read() {
        let mut read = 0;
        for algo in ["a2c", "ppo", "dqn", "sac", "td3", "ddpg"] {
            let text = shipped(algo).unwrap();
            let ids: Vec<String> = YamlLoader::load_from_str(text).unwrap()[0]
                .as_hash()
                .unwrap()
                .keys()
                .map(|k| k.as_str().unwrap().to_string())
                .collect();
            assert!(!ids.is_empty(), "{algo}: no entries");
            for id in ids {
                let e = ZooEntry::from_yaml(text, &id).unwrap();
                let result = match algo {
                    "a2c" => e.a2c().map(|r| r.n_timesteps),
                    "ppo" => e.ppo().map(|r| r.n_timesteps),
                    "dqn" => e.dqn().map(|r| r.n_timesteps),
                    "sac" => e.sac(1).and_then(|r| {
                        r.config.validate()?;
                        Ok(r.n_timesteps)
                    }),
                    _ => e
                        .td3(
                            if algo == "ddpg" {
                                Td3Config::ddpg()
                            } else {
                                Td3Config::default()
                            },
                            1,
                        )
                        .map(|r| r.n_timesteps),
                };
                match result {
                    Ok(n) => {
                        assert!(n.is_some(), "{algo} {id}: no n_timesteps");
                        read += 1;
                    }
                    Err(err) => panic!("{algo} {id}: {err}"),
                }
            }
        }
        assert!(read >= 19, "only {read} entries read");
    }

    /// SAC's gSDE keys and policy kwargs, and the shipped MountainCarContinuous entry.
    #[test]
    fn sac_gsde_settings_read() {
        let yaml = "X-v0:\n  use_sde: True\n  sde_sample_freq: 4\n  use_sde_at_warmup: True\n  \
                    policy_kwargs: \"dict(log_std_init=-1.5, net_arch=dict(pi=[32], qf=[16, 16]), \
                    use_expln=True, clip_mean=1.5)\"\n";
        let run = ZooEntry::from_yaml(yaml, "X-v0").unwrap().sac(1).unwrap();
        assert!(run.config.use_sde && run.config.use_sde_at_warmup);
        assert_eq!(run.config.sde_sample_freq, 4);
        let (actor, critic) = run.policy_kwargs.sac_networks(true);
        assert_eq!(
            actor.sde,
            Some(SacSdeConfig {
                log_std_init: -1.5,
                use_expln: true,
                clip_mean: 1.5
            })
        );
        assert_eq!((actor.net_arch, critic.net_arch), (vec![32], vec![16, 16]));
        assert_eq!(critic.sde, None);
        assert_eq!(run.policy_kwargs.sac_networks(false).0.sde, None);
        let bad = "X-v0:\n  policy_kwargs: \"dict(use_expln=3)\"\n";
        assert!(ZooEntry::from_yaml(bad, "X-v0").unwrap().sac(1).is_err());

        let e = ZooEntry::from_yaml(shipped("sac").unwrap(), "MountainCarContinuous-v0").unwrap();
        let run = e.sac(1).unwrap();
        assert!(run.config.use_sde);
        let (actor, _) = run.policy_kwargs.sac_networks(run.config.use_sde);
        assert_eq!(actor.net_arch, vec![64, 64]);
        assert_eq!(actor.sde.unwrap().log_std_init, -3.67);
        assert_eq!(actor.sde.unwrap().clip_mean, 2.0);
    }

    #[test]
    fn overrides_use_the_files_syntax() {
        assert_eq!(parse_override("n_envs:4").unwrap().1, ZooValue::Int(4));
        assert_eq!(
            parse_override("learning_rate: !!float 1e-3").unwrap().1,
            ZooValue::Float(1e-3)
        );
        assert_eq!(
            parse_override("normalize:true").unwrap().1,
            ZooValue::Bool(true)
        );
        assert_eq!(
            parse_override("policy_kwargs:\"dict(ortho_init=False)\"")
                .unwrap()
                .1,
            ZooValue::Str("dict(ortho_init=False)".into())
        );
        assert!(parse_override("novalue").is_err());
        assert!(parse_override(":3").is_err());
    }
}
