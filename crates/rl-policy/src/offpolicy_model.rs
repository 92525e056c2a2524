//! Trained SAC, TD3 and DDPG models as whole units: [`SacModel`] (actor, critics, target
//! critics) and [`Td3Model`] (actor, target actor, critics, target critics; DDPG is a
//! one-critic `Td3Model`, as SB3 saves both with its `TD3Policy`).
//!
//! They are what [`SavedModel`](crate::SavedModel) loads from this crate's saved-model files
//! (formats [`SAC_FORMAT`](crate::io::SAC_FORMAT) and [`TD3_FORMAT`](crate::io::TD3_FORMAT),
//! written through the same atomic, checksummed path as every other model; see
//! [`crate::io`]) and from Stable-Baselines3 SAC/TD3/DDPG zips ([`Sb3Sac`](crate::Sb3Sac) and
//! [`Sb3Td3`](crate::Sb3Td3) are these types). Parameters carry SB3's `state_dict` names
//! (`actor.latent_pi.0.weight`, `critic.qf0.0.weight`, `critic_target.qf1.4.bias`,
//! `actor_target.mu.2.weight`, ...), so a saved file and an SB3 zip hold the same tensors.
//!
//! The targets are saved because they are part of the model SB3 saves and a run continued
//! from the model (rather than from a training checkpoint) starts from the same targets;
//! playing the model needs the actor alone ([`SacModel::into_policy`],
//! [`Td3Model::into_policy`]).
//!
//! Loading checks before building: the sizes the description declares are turned into the
//! parameter list with checked arithmetic and [`crate::limits`], compared name by name and
//! shape by shape with the tensors actually present, and every value must be finite; only then
//! are the networks built.

use crate::continuous::{
    ContinuousCritic, Critic, DeterministicActor, DeterministicPolicy, GaussianActor, MlpConfig,
    SacActor, SacPolicy, Td3Actor,
};
use crate::error::{PolicyError, ReadError, Result};
use crate::limits::{MAX_HIDDEN_LAYERS, MAX_LAYER_WIDTH, MAX_PARAMETERS, MAX_SPACE_ELEMENTS};
use crate::validate::{self, HostTensor};
use candle_core::{Device, Tensor, Var};
use rl_env::Space;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Most critic heads a saved model may declare (as [`ContinuousCritic::new`] allows).
const MAX_CRITICS: usize = 16;

/// The architecture of a [`SacModel`], as its saved description stores it. Every field has a
/// default (SB3's SAC: `[256, 256]` ReLU, two critics), so settings added later (gSDE's, say)
/// read as their defaults from files written before them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SacModelConfig {
    /// The actor's hidden layers (`latent_pi`) and activation.
    pub actor: MlpConfig,
    /// Each critic head's hidden layers and activation.
    pub critic: MlpConfig,
    /// Number of critic heads (`n_critics`, 2).
    pub n_critics: usize,
}

impl Default for SacModelConfig {
    fn default() -> Self {
        SacModelConfig {
            actor: MlpConfig::sac(),
            critic: MlpConfig::sac(),
            n_critics: 2,
        }
    }
}

/// The architecture of a [`Td3Model`], as its saved description stores it. Every field has a
/// default (SB3's TD3: `[400, 300]` ReLU, two critics; DDPG has one).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Td3ModelConfig {
    /// The actor's hidden layers (`mu`, before the output layer) and activation.
    pub actor: MlpConfig,
    /// Each critic head's hidden layers and activation.
    pub critic: MlpConfig,
    /// Number of critic heads (`n_critics`: 2 for TD3, 1 for DDPG).
    pub n_critics: usize,
}

impl Default for Td3ModelConfig {
    fn default() -> Self {
        Td3ModelConfig {
            actor: MlpConfig::td3(),
            critic: MlpConfig::td3(),
            n_critics: 2,
        }
    }
}

/// A SAC model: its actor, critics and target critics, and its spaces (SB3's `SACPolicy`).
#[derive(Debug)]
pub struct SacModel {
    /// The actor (`actor.*`).
    pub actor: SacActor,
    /// The critics (`critic.qf{i}.*`).
    pub critic: ContinuousCritic,
    /// The target critics (`critic_target.qf{i}.*`).
    pub critic_target: ContinuousCritic,
    /// The observation space.
    pub observation_space: Space,
    /// The action space.
    pub action_space: Space,
}

/// A TD3 or DDPG model (both are SB3's `TD3Policy`): its actor and target actor, critics and
/// target critics, and its spaces.
#[derive(Debug)]
pub struct Td3Model {
    /// The actor (`actor.mu.*`).
    pub actor: Td3Actor,
    /// The target actor (`actor_target.mu.*`).
    pub actor_target: Td3Actor,
    /// The critics (`critic.qf{i}.*`; one for DDPG).
    pub critic: ContinuousCritic,
    /// The target critics.
    pub critic_target: ContinuousCritic,
    /// The observation space.
    pub observation_space: Space,
    /// The action space.
    pub action_space: Space,
}

/// A borrowed view of SAC's networks, for saving them without copying (what
/// `rl_algos`' `Sac::save_policy` uses); [`SacModel::networks`] gives one of a model.
#[derive(Clone, Copy, Debug)]
pub struct SacNetworks<'a> {
    /// The actor.
    pub actor: &'a SacActor,
    /// The critics.
    pub critic: &'a ContinuousCritic,
    /// The target critics.
    pub critic_target: &'a ContinuousCritic,
    /// The observation space.
    pub observation_space: &'a Space,
    /// The action space.
    pub action_space: &'a Space,
}

/// A borrowed view of TD3's (or DDPG's) networks, for saving them without copying;
/// [`Td3Model::networks`] gives one of a model.
#[derive(Clone, Copy, Debug)]
pub struct Td3Networks<'a> {
    /// The actor.
    pub actor: &'a Td3Actor,
    /// The target actor.
    pub actor_target: &'a Td3Actor,
    /// The critics.
    pub critic: &'a ContinuousCritic,
    /// The target critics.
    pub critic_target: &'a ContinuousCritic,
    /// The observation space.
    pub observation_space: &'a Space,
    /// The action space.
    pub action_space: &'a Space,
}

/// `vars` with `prefix` before each name.
fn prefixed(prefix: &str, vars: Vec<(String, Var)>) -> impl Iterator<Item = (String, Var)> + '_ {
    vars.into_iter()
        .map(move |(n, v)| (format!("{prefix}{n}"), v))
}

/// Checks that a target network has the architecture of its online network.
fn same_config(
    online: &MlpConfig,
    target: &MlpConfig,
    heads: (usize, usize),
    what: &str,
) -> Result<()> {
    if online != target || heads.0 != heads.1 {
        return Err(PolicyError::InvalidArgument(format!(
            "{what}: the target's architecture differs from the online network's"
        )));
    }
    Ok(())
}

impl SacNetworks<'_> {
    /// The architecture.
    pub fn config(&self) -> SacModelConfig {
        SacModelConfig {
            actor: self.actor.config().clone(),
            critic: self.critic.config().clone(),
            n_critics: self.critic.n_critics(),
        }
    }

    /// Every parameter under its SB3 `state_dict` name (`actor.*`, `critic.*`,
    /// `critic_target.*`); an error when the target critics' architecture differs.
    pub fn named_parameters(&self) -> Result<Vec<(String, Var)>> {
        same_config(
            self.critic.config(),
            self.critic_target.config(),
            (self.critic.n_critics(), self.critic_target.n_critics()),
            "SAC's critic_target",
        )?;
        Ok(prefixed("actor.", self.actor.trainable_vars())
            .chain(prefixed("critic.", self.critic.trainable_vars()))
            .chain(prefixed(
                "critic_target.",
                self.critic_target.trainable_vars(),
            ))
            .collect())
    }
}

impl Td3Networks<'_> {
    /// The architecture.
    pub fn config(&self) -> Td3ModelConfig {
        Td3ModelConfig {
            actor: self.actor.config().clone(),
            critic: self.critic.config().clone(),
            n_critics: self.critic.n_critics(),
        }
    }

    /// Every parameter under its SB3 `state_dict` name (`actor.*`, `actor_target.*`,
    /// `critic.*`, `critic_target.*`); an error when a target's architecture differs.
    pub fn named_parameters(&self) -> Result<Vec<(String, Var)>> {
        same_config(
            self.actor.config(),
            self.actor_target.config(),
            (1, 1),
            "TD3's actor_target",
        )?;
        same_config(
            self.critic.config(),
            self.critic_target.config(),
            (self.critic.n_critics(), self.critic_target.n_critics()),
            "TD3's critic_target",
        )?;
        Ok(prefixed("actor.", self.actor.trainable_vars())
            .chain(prefixed(
                "actor_target.",
                self.actor_target.trainable_vars(),
            ))
            .chain(prefixed("critic.", self.critic.trainable_vars()))
            .chain(prefixed(
                "critic_target.",
                self.critic_target.trainable_vars(),
            ))
            .collect())
    }
}

impl SacModel {
    /// A view of the networks (for saving).
    pub fn networks(&self) -> SacNetworks<'_> {
        SacNetworks {
            actor: &self.actor,
            critic: &self.critic,
            critic_target: &self.critic_target,
            observation_space: &self.observation_space,
            action_space: &self.action_space,
        }
    }

    /// The architecture.
    pub fn config(&self) -> SacModelConfig {
        self.networks().config()
    }

    /// The policy that plays the model (SB3's `SAC.predict`: `tanh(mean)` when
    /// deterministic, else a squashed Gaussian sample, mapped onto the action space's
    /// bounds).
    pub fn into_policy(self) -> Result<SacPolicy<SacActor>> {
        SacPolicy::new(self.actor, &self.action_space)
    }
}

impl Td3Model {
    /// A view of the networks (for saving).
    pub fn networks(&self) -> Td3Networks<'_> {
        Td3Networks {
            actor: &self.actor,
            actor_target: &self.actor_target,
            critic: &self.critic,
            critic_target: &self.critic_target,
            observation_space: &self.observation_space,
            action_space: &self.action_space,
        }
    }

    /// The architecture.
    pub fn config(&self) -> Td3ModelConfig {
        self.networks().config()
    }

    /// The policy that plays the model (SB3's `TD3.predict`: the actor's action mapped onto
    /// the action space's bounds).
    pub fn into_policy(self) -> Result<DeterministicPolicy<Td3Actor>> {
        DeterministicPolicy::new(self.actor, &self.action_space)
    }
}

fn corrupt(m: impl Into<String>) -> ReadError {
    ReadError::Corrupt(m.into())
}

/// Lists parameters with checked sizes and a running total bounded by [`MAX_PARAMETERS`].
struct ParamList {
    params: Vec<(String, Vec<usize>)>,
    total: usize,
}

impl ParamList {
    fn new() -> Self {
        ParamList {
            params: Vec::new(),
            total: 0,
        }
    }

    fn add(&mut self, name: String, shape: Vec<usize>) -> Result<(), ReadError> {
        self.total = shape
            .iter()
            .try_fold(1usize, |a, &s| a.checked_mul(s))
            .and_then(|n| self.total.checked_add(n))
            .filter(|&t| t <= MAX_PARAMETERS)
            .ok_or_else(|| {
                ReadError::limit(
                    format!("number of parameters (at {name} {shape:?})"),
                    MAX_PARAMETERS,
                )
            })?;
        self.params.push((name, shape));
        Ok(())
    }

    /// Layers `prefix.{0,2,..}` from `in_dim` through `hidden` (to `out` when given); returns
    /// the last width.
    fn stack(
        &mut self,
        prefix: &str,
        in_dim: usize,
        config: &MlpConfig,
        out: Option<usize>,
    ) -> Result<usize, ReadError> {
        let hidden = &config.net_arch;
        if hidden.len() > MAX_HIDDEN_LAYERS {
            return Err(ReadError::limit(
                format!("{prefix}: net_arch of {} hidden layers", hidden.len()),
                MAX_HIDDEN_LAYERS,
            ));
        }
        let mut dim = in_dim;
        for (i, &width) in hidden.iter().chain(out.as_ref()).enumerate() {
            if width == 0 {
                return Err(corrupt(format!(
                    "{prefix}: net_arch {hidden:?} has a zero-width layer"
                )));
            }
            if width > MAX_LAYER_WIDTH && i < hidden.len() {
                return Err(ReadError::limit(
                    format!("{prefix}: net_arch {hidden:?} has a layer of width {width}"),
                    MAX_LAYER_WIDTH,
                ));
            }
            self.add(format!("{prefix}.{}.weight", 2 * i), vec![width, dim])?;
            self.add(format!("{prefix}.{}.bias", 2 * i), vec![width])?;
            dim = width;
        }
        Ok(dim)
    }

    fn critics(
        &mut self,
        prefix: &str,
        in_dim: usize,
        config: &MlpConfig,
        n_critics: usize,
    ) -> Result<(), ReadError> {
        for i in 0..n_critics {
            self.stack(&format!("{prefix}.qf{i}"), in_dim, config, Some(1))?;
        }
        Ok(())
    }
}

/// `(obs_dim, act_dim)` of the spaces a SAC/TD3 model reads and acts in: non-empty Box
/// spaces of at most [`MAX_SPACE_ELEMENTS`] values, and a critic count in `1..=16`.
fn dims(
    observation_space: &Space,
    action_space: &Space,
    n_critics: usize,
) -> Result<(usize, usize), ReadError> {
    let dim = |space: &Space, what: &str| match space {
        Space::Box(b) if (1..=MAX_SPACE_ELEMENTS).contains(&b.flat_dim()) => Ok(b.flat_dim()),
        other => Err(ReadError::Unsupported(format!(
            "{what} {other} (SAC/TD3 models need non-empty Box spaces)"
        ))),
    };
    let obs = dim(observation_space, "observation space")?;
    let act = dim(action_space, "action space")?;
    if !(1..=MAX_CRITICS).contains(&n_critics) {
        return Err(corrupt(format!(
            "n_critics {n_critics} (1..={MAX_CRITICS} allowed)"
        )));
    }
    Ok((obs, act))
}

/// The names and shapes of a [`SacModel`]'s parameters with these spaces and architecture
/// (SB3's `state_dict` keys), computed with checked arithmetic and [`crate::limits`] without
/// allocating any of them.
pub(crate) fn expected_sac_parameters(
    observation_space: &Space,
    action_space: &Space,
    config: &SacModelConfig,
) -> Result<Vec<(String, Vec<usize>)>, ReadError> {
    let (obs, act) = dims(observation_space, action_space, config.n_critics)?;
    let mut p = ParamList::new();
    let last = p.stack("actor.latent_pi", obs, &config.actor, None)?;
    match &config.actor.sde {
        // gSDE: the mean layer (`mu.0` under clip_mean's Hardtanh) and the log_std matrix.
        Some(sde) => {
            let mu = if sde.clip_mean > 0.0 {
                "actor.mu.0"
            } else {
                "actor.mu"
            };
            p.add(format!("{mu}.weight"), vec![act, last])?;
            p.add(format!("{mu}.bias"), vec![act])?;
            p.add("actor.log_std".into(), vec![last, act])?;
        }
        None => {
            for head in ["actor.mu", "actor.log_std"] {
                p.add(format!("{head}.weight"), vec![act, last])?;
                p.add(format!("{head}.bias"), vec![act])?;
            }
        }
    }
    let q_in = obs + act;
    p.critics("critic", q_in, &config.critic, config.n_critics)?;
    p.critics("critic_target", q_in, &config.critic, config.n_critics)?;
    Ok(p.params)
}

/// The names and shapes of a [`Td3Model`]'s parameters (as [`expected_sac_parameters`]).
pub(crate) fn expected_td3_parameters(
    observation_space: &Space,
    action_space: &Space,
    config: &Td3ModelConfig,
) -> Result<Vec<(String, Vec<usize>)>, ReadError> {
    let (obs, act) = dims(observation_space, action_space, config.n_critics)?;
    let mut p = ParamList::new();
    p.stack("actor.mu", obs, &config.actor, Some(act))?;
    p.stack("actor_target.mu", obs, &config.actor, Some(act))?;
    let q_in = obs + act;
    p.critics("critic", q_in, &config.critic, config.n_critics)?;
    p.critics("critic_target", q_in, &config.critic, config.n_critics)?;
    Ok(p.params)
}

/// Sets `vars` (named without `prefix`) from the checked host tensors named `prefix` + name.
/// Nothing is set unless every tensor is there with the variable's shape.
fn assign(
    vars: &[(String, Var)],
    prefix: &str,
    tensors: &mut BTreeMap<String, HostTensor>,
    path: &str,
) -> Result<()> {
    let mut staged = Vec::with_capacity(vars.len());
    for (name, var) in vars {
        let key = format!("{prefix}{name}");
        let t = tensors
            .remove(&key)
            .ok_or_else(|| corrupt(format!("missing parameter {key}")).at(path))?;
        if t.shape != var.dims() {
            return Err(corrupt(format!(
                "parameter {key} has shape {:?}, the network {:?}",
                t.shape,
                var.dims()
            ))
            .at(path));
        }
        staged.push((var, Tensor::from_vec(t.data, t.shape, var.device())?));
    }
    for (var, t) in staged {
        var.set(&t)?;
    }
    Ok(())
}

/// Maps a construction error of a checked description to a file error.
fn building(path: &str) -> impl Fn(PolicyError) -> PolicyError + '_ {
    move |e| match e {
        e @ PolicyError::Unsupported(_) => e,
        e => corrupt(format!("the weights do not fit the spaces and config: {e}")).at(path),
    }
}

/// Checks `tensors` against what the spaces and config declare for a [`SacModel`] (names,
/// shapes, finite values) and only then builds it on `device`. Errors name `path`.
pub(crate) fn build_sac(
    observation_space: Space,
    action_space: Space,
    config: SacModelConfig,
    mut tensors: BTreeMap<String, HostTensor>,
    device: &Device,
    path: &str,
) -> Result<SacModel> {
    let expected = expected_sac_parameters(&observation_space, &action_space, &config)
        .map_err(|e| e.at(path))?;
    validate::check_tensors(&expected, &tensors, "spaces and net_arch", path)?;
    let (o, a) = (&observation_space, &action_space);
    let n = config.n_critics;
    let actor = SacActor::new(o, a, config.actor, 0, device).map_err(building(path))?;
    let critic =
        ContinuousCritic::new(o, a, config.critic.clone(), n, 0, device).map_err(building(path))?;
    let critic_target =
        ContinuousCritic::new(o, a, config.critic, n, 0, device).map_err(building(path))?;
    assign(&actor.trainable_vars(), "actor.", &mut tensors, path)?;
    assign(&critic.trainable_vars(), "critic.", &mut tensors, path)?;
    assign(
        &critic_target.trainable_vars(),
        "critic_target.",
        &mut tensors,
        path,
    )?;
    Ok(SacModel {
        actor,
        critic,
        critic_target,
        observation_space,
        action_space,
    })
}

/// [`build_sac`] for a [`Td3Model`].
pub(crate) fn build_td3(
    observation_space: Space,
    action_space: Space,
    config: Td3ModelConfig,
    mut tensors: BTreeMap<String, HostTensor>,
    device: &Device,
    path: &str,
) -> Result<Td3Model> {
    let expected = expected_td3_parameters(&observation_space, &action_space, &config)
        .map_err(|e| e.at(path))?;
    validate::check_tensors(&expected, &tensors, "spaces and net_arch", path)?;
    let (o, a) = (&observation_space, &action_space);
    let n = config.n_critics;
    let actor = Td3Actor::new(o, a, config.actor.clone(), 0, device).map_err(building(path))?;
    let actor_target = Td3Actor::new(o, a, config.actor, 0, device).map_err(building(path))?;
    let critic =
        ContinuousCritic::new(o, a, config.critic.clone(), n, 0, device).map_err(building(path))?;
    let critic_target =
        ContinuousCritic::new(o, a, config.critic, n, 0, device).map_err(building(path))?;
    assign(&actor.trainable_vars(), "actor.", &mut tensors, path)?;
    assign(
        &actor_target.trainable_vars(),
        "actor_target.",
        &mut tensors,
        path,
    )?;
    assign(&critic.trainable_vars(), "critic.", &mut tensors, path)?;
    assign(
        &critic_target.trainable_vars(),
        "critic_target.",
        &mut tensors,
        path,
    )?;
    Ok(Td3Model {
        actor,
        actor_target,
        critic,
        critic_target,
        observation_space,
        action_space,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Activation;

    fn spaces() -> (Space, Space) {
        (
            Space::boxed(vec![-1.0; 3], vec![1.0; 3], vec![3]).unwrap(),
            Space::boxed(vec![-2.0; 2], vec![2.0; 2], vec![2]).unwrap(),
        )
    }

    fn names_and_shapes(vars: Vec<(String, Var)>) -> Vec<(String, Vec<usize>)> {
        let mut v: Vec<_> = vars
            .into_iter()
            .map(|(n, v)| (n, v.dims().to_vec()))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn expected_parameters_match_built_networks() {
        let (o, a) = spaces();
        let dev = Device::Cpu;
        let mlp = |arch: Vec<usize>| MlpConfig {
            net_arch: arch,
            activation: Activation::ReLU,
            sde: None,
        };
        for (actor, critic, n) in [(vec![8, 4], vec![5], 2), (vec![], vec![3, 3, 3], 1)] {
            let config = SacModelConfig {
                actor: mlp(actor.clone()),
                critic: mlp(critic.clone()),
                n_critics: n,
            };
            let m = SacModel {
                actor: SacActor::new(&o, &a, config.actor.clone(), 0, &dev).unwrap(),
                critic: ContinuousCritic::new(&o, &a, config.critic.clone(), n, 0, &dev).unwrap(),
                critic_target: ContinuousCritic::new(&o, &a, config.critic.clone(), n, 0, &dev)
                    .unwrap(),
                observation_space: o.clone(),
                action_space: a.clone(),
            };
            let mut expected = expected_sac_parameters(&o, &a, &config).unwrap();
            expected.sort();
            let actual = names_and_shapes(m.networks().named_parameters().unwrap());
            assert_eq!(expected, actual);
            assert_eq!(m.config(), config);

            let config = Td3ModelConfig {
                actor: mlp(actor),
                critic: mlp(critic),
                n_critics: n,
            };
            let m = Td3Model {
                actor: Td3Actor::new(&o, &a, config.actor.clone(), 0, &dev).unwrap(),
                actor_target: Td3Actor::new(&o, &a, config.actor.clone(), 0, &dev).unwrap(),
                critic: ContinuousCritic::new(&o, &a, config.critic.clone(), n, 0, &dev).unwrap(),
                critic_target: ContinuousCritic::new(&o, &a, config.critic.clone(), n, 0, &dev)
                    .unwrap(),
                observation_space: o.clone(),
                action_space: a.clone(),
            };
            let mut expected = expected_td3_parameters(&o, &a, &config).unwrap();
            expected.sort();
            let actual = names_and_shapes(m.networks().named_parameters().unwrap());
            assert_eq!(expected, actual);
            assert_eq!(m.config(), config);
        }
    }

    #[test]
    fn absurd_declarations_are_errors_before_allocation() {
        let (o, a) = spaces();
        let mlp = |arch: Vec<usize>| MlpConfig {
            net_arch: arch,
            activation: Activation::ReLU,
            sde: None,
        };
        let sac = |actor: Vec<usize>, n| SacModelConfig {
            actor: mlp(actor),
            critic: mlp(vec![8]),
            n_critics: n,
        };
        for (config, limit) in [
            (sac(vec![100_000, 100_000], 2), true),
            (sac(vec![60_000; 100], 2), true),
            (sac(vec![65_536; 63], 2), true),
            (sac(vec![usize::MAX], 2), true),
            (sac(vec![0], 2), false),
            (sac(vec![8], 0), false),
            (sac(vec![8], 1 << 40), false),
        ] {
            let r = expected_sac_parameters(&o, &a, &config);
            match r {
                Err(ReadError::Limit { .. }) if limit => {}
                Err(ReadError::Corrupt(_)) if !limit => {}
                other => panic!("{config:?}: {other:?}"),
            }
        }
        let discrete = Space::Discrete { n: 2, start: 0 };
        assert!(matches!(
            expected_td3_parameters(&o, &discrete, &Td3ModelConfig::default()),
            Err(ReadError::Unsupported(_))
        ));
    }
}
