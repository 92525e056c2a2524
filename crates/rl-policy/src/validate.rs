//! Load-time validation shared by every loader (SB3 zips, saved policies in both layouts).
//!
//! A file declares sizes in two places: its description (spaces, `net_arch`) and its tensors.
//! Building an [`MlpPolicy`] allocates what the description asks for, so a description saying
//! `net_arch [100000, 100000]` next to a 4x64 weight would allocate 40 GB before the mismatch
//! showed. Here the parameters the description implies are listed with checked arithmetic
//! and [`crate::limits`], and compared name by name and shape by shape with the tensors
//! actually present; only then is anything built. Every value must also be finite: a NaN
//! weight would make a deterministic `act` quietly return action 0.

use crate::error::{PolicyError, ReadError, Result};
use crate::limits::{MAX_HIDDEN_LAYERS, MAX_LAYER_WIDTH, MAX_PARAMETERS, MAX_SPACE_ELEMENTS};
use crate::mlp::{MlpPolicy, MlpPolicyConfig};
use crate::qnet::{QNetwork, QNetworkConfig};
use candle_core::{Device, Tensor};
use rl_env::Space;
use std::collections::{BTreeMap, HashMap};

/// A tensor decoded from a file, still on the host.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct HostTensor {
    /// Dimensions, outermost first.
    pub(crate) shape: Vec<usize>,
    /// Values in row-major order (`shape`'s product of them).
    pub(crate) data: Vec<f32>,
}

fn corrupt(m: impl Into<String>) -> ReadError {
    ReadError::Corrupt(m.into())
}

/// The element count of a Box `shape` declared by a file: checked, and at most
/// [`MAX_SPACE_ELEMENTS`].
pub(crate) fn space_elements(shape: &[usize], what: &str) -> Result<usize, ReadError> {
    let n = shape
        .iter()
        .try_fold(1usize, |a, &s| a.checked_mul(s))
        .ok_or_else(|| {
            ReadError::limit(
                format!("{what}: Box shape {shape:?} (its element count overflows)"),
                MAX_SPACE_ELEMENTS,
            )
        })?;
    if n > MAX_SPACE_ELEMENTS {
        return Err(ReadError::limit(
            format!("{what}: Box shape {shape:?} of {n} elements"),
            MAX_SPACE_ELEMENTS,
        ));
    }
    Ok(n)
}

/// The names and shapes of the parameters an [`MlpPolicy`] with these spaces and config has
/// (SB3's `state_dict` keys), computed without allocating any of them.
pub(crate) fn expected_parameters(
    observation_space: &Space,
    action_space: &Space,
    config: &MlpPolicyConfig,
) -> Result<Vec<(String, Vec<usize>)>, ReadError> {
    let obs_dim = match observation_space {
        Space::Box(b) => b.flat_dim(),
        other => {
            return Err(ReadError::Unsupported(format!(
                "observation space {other} (MlpPolicy needs a Box)"
            )))
        }
    };
    let (out, gaussian) = match action_space {
        Space::Discrete { .. } if config.use_sde => {
            return Err(ReadError::Unsupported(format!(
                "gSDE (use_sde) with the discrete action space {action_space}"
            )))
        }
        Space::Discrete { n, .. } => {
            let n = usize::try_from(*n)
                .ok()
                .filter(|&n| n >= 1 && u32::try_from(n).is_ok())
                .ok_or_else(|| corrupt(format!("Discrete action space with n = {n}")))?;
            (n, false)
        }
        Space::Box(b) => (b.flat_dim(), true),
    };
    if obs_dim == 0 || out == 0 {
        return Err(corrupt(format!(
            "empty space: observations {observation_space}, actions {action_space}"
        )));
    }
    let arch = &config.net_arch;
    let mut params = Vec::new();
    let mut total = 0usize;
    let mut add = |params: &mut Vec<(String, Vec<usize>)>, name: String, shape: Vec<usize>| {
        total = shape
            .iter()
            .try_fold(1usize, |a, &s| a.checked_mul(s))
            .and_then(|n| total.checked_add(n))
            .filter(|&t| t <= MAX_PARAMETERS)
            .ok_or_else(|| {
                ReadError::limit(
                    format!("number of parameters (at {name} {shape:?})"),
                    MAX_PARAMETERS,
                )
            })?;
        params.push((name, shape));
        Ok::<(), ReadError>(())
    };
    let mut stack = |params: &mut Vec<(String, Vec<usize>)>,
                     prefix: &str,
                     sizes: &[usize],
                     mut in_dim: usize|
     -> Result<usize, ReadError> {
        if sizes.len() > MAX_HIDDEN_LAYERS {
            return Err(ReadError::limit(
                format!("net_arch {prefix}: {} hidden layers", sizes.len()),
                MAX_HIDDEN_LAYERS,
            ));
        }
        for (i, &width) in sizes.iter().enumerate() {
            if width == 0 {
                return Err(corrupt(format!("net_arch {prefix}: a zero-width layer")));
            }
            if width > MAX_LAYER_WIDTH {
                return Err(ReadError::limit(
                    format!("net_arch {prefix}: a layer of width {width}"),
                    MAX_LAYER_WIDTH,
                ));
            }
            let name = format!("mlp_extractor.{prefix}.{}", 2 * i);
            add(params, format!("{name}.weight"), vec![width, in_dim])?;
            add(params, format!("{name}.bias"), vec![width])?;
            in_dim = width;
        }
        Ok(in_dim)
    };
    let latent = stack(&mut params, "shared_net", &arch.shared, obs_dim)?;
    let latent_pi = stack(&mut params, "policy_net", &arch.pi, latent)?;
    let latent_vf = stack(&mut params, "value_net", &arch.vf, latent)?;
    add(
        &mut params,
        "action_net.weight".into(),
        vec![out, latent_pi],
    )?;
    add(&mut params, "action_net.bias".into(), vec![out])?;
    add(&mut params, "value_net.weight".into(), vec![1, latent_vf])?;
    add(&mut params, "value_net.bias".into(), vec![1])?;
    if gaussian && config.use_sde {
        add(&mut params, "log_std".into(), vec![latent_pi, out])?;
    } else if gaussian {
        add(&mut params, "log_std".into(), vec![out])?;
    }
    Ok(params)
}

/// The names and shapes of the parameters of a [`QNetwork`] with these spaces and config
/// (`q_net.{0,2,..}.{weight,bias}`), computed with checked arithmetic and [`crate::limits`]
/// without allocating any of them. [`QNetwork::new`] checks its config through this too.
pub(crate) fn expected_q_parameters(
    observation_space: &Space,
    action_space: &Space,
    config: &QNetworkConfig,
) -> Result<Vec<(String, Vec<usize>)>, ReadError> {
    let obs_dim = match observation_space {
        Space::Box(b) if b.flat_dim() > 0 => b.flat_dim(),
        other => {
            return Err(ReadError::Unsupported(format!(
                "observation space {other} (a QNetwork needs a non-empty Box)"
            )))
        }
    };
    let n_actions = match action_space {
        Space::Discrete { n, .. } => usize::try_from(*n)
            .ok()
            .filter(|&n| (1..=MAX_LAYER_WIDTH).contains(&n))
            .ok_or_else(|| {
                ReadError::limit(
                    format!("a Discrete action space of {n} actions"),
                    MAX_LAYER_WIDTH,
                )
            })?,
        other => {
            return Err(ReadError::Unsupported(format!(
                "action space {other} (a QNetwork, DQN's, needs a Discrete one)"
            )))
        }
    };
    if obs_dim > MAX_LAYER_WIDTH {
        return Err(ReadError::limit(
            format!("observations of {obs_dim} values (a QNetwork's input width)"),
            MAX_LAYER_WIDTH,
        ));
    }
    let arch = &config.net_arch;
    if arch.len() > MAX_HIDDEN_LAYERS {
        return Err(ReadError::limit(
            format!("net_arch of {} hidden layers", arch.len()),
            MAX_HIDDEN_LAYERS,
        ));
    }
    let mut dims = Vec::with_capacity(arch.len() + 2);
    dims.push(obs_dim);
    for &width in arch {
        if width == 0 {
            return Err(corrupt(format!("net_arch {arch:?}: a zero-width layer")));
        }
        if width > MAX_LAYER_WIDTH {
            return Err(ReadError::limit(
                format!("net_arch {arch:?}: a layer of width {width}"),
                MAX_LAYER_WIDTH,
            ));
        }
        dims.push(width);
    }
    dims.push(n_actions);
    let mut params = Vec::with_capacity(2 * (dims.len() - 1));
    let mut total = 0usize;
    for (i, w) in dims.windows(2).enumerate() {
        let (inp, out) = (w[0], w[1]);
        total = out
            .checked_mul(inp)
            .and_then(|n| n.checked_add(out))
            .and_then(|n| total.checked_add(n))
            .filter(|&t| t <= MAX_PARAMETERS)
            .ok_or_else(|| {
                ReadError::limit(
                    format!("number of parameters of net_arch {arch:?} (at layer {i})"),
                    MAX_PARAMETERS,
                )
            })?;
        params.push((format!("q_net.{}.weight", 2 * i), vec![out, inp]));
        params.push((format!("q_net.{}.bias", 2 * i), vec![out]));
    }
    Ok(params)
}

/// Checks `tensors` against the `expected` names and shapes and that every value is finite.
pub(crate) fn check_tensors(
    expected: &[(String, Vec<usize>)],
    tensors: &BTreeMap<String, HostTensor>,
    declared_by: &str,
    path: &str,
) -> Result<()> {
    let at = |m: String| corrupt(m).at(path);
    for (name, shape) in expected {
        let t = tensors.get(name).ok_or_else(|| {
            at(format!(
                "missing parameter {name} (the {declared_by} declare {shape:?})"
            ))
        })?;
        if &t.shape != shape {
            return Err(at(format!(
                "parameter {name} has shape {:?} but the {declared_by} declare {shape:?}",
                t.shape
            )));
        }
        if let Some((index, &value)) = t.data.iter().enumerate().find(|(_, x)| !x.is_finite()) {
            return Err(PolicyError::NonFiniteWeight {
                path: path.to_string(),
                tensor: name.clone(),
                index,
                value,
            });
        }
    }
    let unexpected: Vec<&String> = tensors
        .keys()
        .filter(|k| !expected.iter().any(|(n, _)| n == *k))
        .collect();
    if !unexpected.is_empty() {
        return Err(at(format!(
            "unexpected parameter(s) {unexpected:?} for these {declared_by}"
        )));
    }
    Ok(())
}

/// Moves checked host tensors onto `device`.
fn to_device(
    tensors: BTreeMap<String, HostTensor>,
    device: &Device,
) -> Result<HashMap<String, Tensor>> {
    let mut on_device = HashMap::with_capacity(tensors.len());
    for (name, t) in tensors {
        let tensor = Tensor::from_vec(t.data, t.shape, device)?;
        on_device.insert(name, tensor);
    }
    Ok(on_device)
}

/// Checks `tensors` against what the spaces and config declare for a [`QNetwork`] (names,
/// shapes, finite values) and only then builds it on `device`. Errors name `path`.
pub(crate) fn build_qnetwork(
    observation_space: &Space,
    action_space: &Space,
    config: QNetworkConfig,
    tensors: BTreeMap<String, HostTensor>,
    device: &Device,
    path: &str,
) -> Result<QNetwork> {
    let expected =
        expected_q_parameters(observation_space, action_space, &config).map_err(|e| e.at(path))?;
    check_tensors(&expected, &tensors, "spaces and net_arch", path)?;
    let on_device = to_device(tensors, device)?;
    QNetwork::from_named_tensors(observation_space, action_space, config, &on_device, device)
        .map_err(|e| match e {
            e @ PolicyError::Unsupported(_) => e,
            e => corrupt(format!("the weights do not fit the spaces and config: {e}")).at(path),
        })
}

/// Checks `tensors` against what the spaces and config declare (names, shapes, finite values)
/// and only then builds the policy on `device`. Errors name `path` and the parameter.
pub(crate) fn build_policy(
    observation_space: &Space,
    action_space: &Space,
    config: MlpPolicyConfig,
    tensors: BTreeMap<String, HostTensor>,
    device: &Device,
    path: &str,
) -> Result<MlpPolicy> {
    let expected =
        expected_parameters(observation_space, action_space, &config).map_err(|e| e.at(path))?;
    let at = |m: String| corrupt(m).at(path);
    check_tensors(&expected, &tensors, "spaces and net_arch", path)?;
    let on_device = to_device(tensors, device)?;
    MlpPolicy::from_named_tensors(observation_space, action_space, config, &on_device, device)
        .map_err(|e| match e {
            e @ PolicyError::Unsupported(_) => e,
            e => at(format!("the weights do not fit the spaces and config: {e}")),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mlp::NetArch;

    #[test]
    fn expected_parameters_match_a_built_policy() {
        let obs = Space::boxed(vec![-1.0; 3], vec![1.0; 3], vec![3]).unwrap();
        for (act, arch) in [
            (Space::Discrete { n: 4, start: 0 }, NetArch::default()),
            (
                Space::boxed(vec![-1.0; 2], vec![1.0; 2], vec![2]).unwrap(),
                NetArch {
                    shared: vec![8],
                    pi: vec![5],
                    vf: vec![],
                },
            ),
        ] {
            let config = MlpPolicyConfig {
                net_arch: arch,
                ..MlpPolicyConfig::default()
            };
            let mut expected = expected_parameters(&obs, &act, &config).unwrap();
            expected.sort();
            let p = MlpPolicy::new(&obs, &act, config, 0, &Device::Cpu).unwrap();
            let mut actual: Vec<(String, Vec<usize>)> = p
                .state_dict()
                .unwrap()
                .into_iter()
                .map(|(n, t)| (n, t.dims().to_vec()))
                .collect();
            actual.sort();
            assert_eq!(expected, actual);
        }
    }

    #[test]
    fn absurd_declarations_are_limits_not_allocations() {
        let obs = Space::boxed(vec![-1.0; 4], vec![1.0; 4], vec![4]).unwrap();
        let act = Space::Discrete { n: 2, start: 0 };
        let wide = |pi: Vec<usize>| MlpPolicyConfig {
            net_arch: NetArch {
                shared: vec![],
                pi,
                vf: vec![64],
            },
            ..MlpPolicyConfig::default()
        };
        for pi in [
            vec![100_000, 100_000],
            vec![usize::MAX],
            vec![60_000; 100],
            vec![65_536; 63],
        ] {
            let r = expected_parameters(&obs, &act, &wide(pi.clone()));
            assert!(matches!(r, Err(ReadError::Limit { .. })), "{pi:?}: {r:?}");
        }
        assert!(matches!(
            space_elements(&[usize::MAX, 2], "obs"),
            Err(ReadError::Limit { .. })
        ));
        assert!(matches!(
            space_elements(&[100_000, 100_000], "obs"),
            Err(ReadError::Limit { .. })
        ));
        assert_eq!(space_elements(&[], "obs").unwrap(), 1);
        assert_eq!(space_elements(&[84, 84, 4], "obs").unwrap(), 28_224);
    }
}
