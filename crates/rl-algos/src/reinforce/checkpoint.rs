//! REINFORCE checkpoints: configuration, counters, the ChaCha generator's position, policy
//! and baseline weights, both Adam states and the episode statistics window.
//!
//! The environment's state is not read out of it (the `Env` trait has no such hook). Every
//! episode starts with a reset seeded from the run's generator, so between episodes nothing
//! else is needed. A checkpoint taken in the middle of an episode (by a callback, or after a
//! callback stopped `learn`) also stores that episode's seed, observations, actions and
//! rewards; loading resets the environment with the seed and replays the actions, comparing
//! every observation and reward bit for bit, which reproduces its state exactly for any
//! environment that is deterministic given its seed and actions (and fails loudly otherwise).
//!
//! The file is framed and encoded by `crate::codec` under the magic `RLRFCK\0\0`; this module
//! decides what is stored and in which order.

use super::baseline::ValueNet;
use super::{Baseline, BaselineConfig, EpisodeProgress, Reinforce, ReinforceConfig};
use crate::codec::{self, Reader, Writer};
use crate::error::Result;
use crate::run::{EpisodeWindow, RunState};
use rl_env::{Action, Env, Seed, Space};
use rl_policy::StochasticPolicy;
use std::path::Path;

const MAGIC: &[u8; 8] = b"RLRFCK\0\0";
const VERSION: u32 = 3;

fn write_config(w: &mut Writer, c: &ReinforceConfig) {
    w.f64(c.learning_rate);
    w.f64(c.gamma);
    w.bool(c.normalize_returns);
    w.f64(c.normalize_eps);
    w.bool(c.baseline.is_some());
    if let Some(b) = &c.baseline {
        w.usize(b.hidden.len());
        for &h in &b.hidden {
            w.usize(h);
        }
        w.f64(b.learning_rate);
    }
    w.f64(c.adam_eps);
    w.opt_f64(c.max_grad_norm);
    w.opt_u64(c.max_episode_steps);
    w.opt_u64(c.seed);
    w.u64(c.log_interval);
    w.usize(c.stats_window_size);
    w.bool(c.verbose);
}

fn read_config(r: &mut Reader<'_>) -> Result<ReinforceConfig> {
    let learning_rate = r.f64("learning_rate")?;
    let gamma = r.f64("gamma")?;
    let normalize_returns = r.bool("normalize_returns")?;
    let normalize_eps = r.f64("normalize_eps")?;
    let baseline = if r.bool("baseline flag")? {
        let n = r.len(8, "baseline layers")?;
        Some(BaselineConfig {
            hidden: (0..n)
                .map(|_| r.usize("baseline layer size"))
                .collect::<Result<_>>()?,
            learning_rate: r.f64("baseline learning_rate")?,
        })
    } else {
        None
    };
    let config = ReinforceConfig {
        learning_rate,
        gamma,
        normalize_returns,
        normalize_eps,
        baseline,
        adam_eps: r.f64("adam_eps")?,
        max_grad_norm: r.opt_f64("max_grad_norm")?,
        max_episode_steps: r.opt_u64("max_episode_steps")?,
        seed: r.opt_u64("seed")?,
        log_interval: r.u64("log_interval")?,
        stats_window_size: r.usize("stats_window_size")?,
        verbose: r.bool("verbose")?,
    };
    config
        .validate()
        .map_err(|e| r.err(format!("stored configuration is invalid: {e}")))?;
    Ok(config)
}

pub(super) fn save<P: StochasticPolicy, E: Env>(a: &Reinforce<P, E>, path: &Path) -> Result<()> {
    let mut w = Writer::new(MAGIC, VERSION);
    write_config(&mut w, &a.config);
    a.run.write(&mut w);
    w.u64(a.episodes);
    a.ep_info.write(&mut w);
    let p = &a.progress;
    w.bool(p.in_episode);
    w.bool(p.finished);
    w.u64(p.seed);
    w.f64(p.ep_return);
    w.f32s(&a.obs);
    w.f32s(&a.episode.obs);
    w.u32s(&a.episode.indices);
    w.f32s(&a.episode.actions);
    w.f64s(&a.episode.rewards);
    w.vars(&a.policy.trainable_vars())?;
    w.optimizer(&a.optimizer)?;
    if let Some(b) = &a.baseline {
        w.vars(&b.net.vars())?;
        w.optimizer(&b.optimizer)?;
    }
    w.save(path)
}

pub(super) fn load<P: StochasticPolicy, E: Env>(
    path: &Path,
    policy: P,
    env: E,
) -> Result<Reinforce<P, E>> {
    let bytes = codec::read_file(path)?;
    let mut r = Reader::open(&bytes, path, MAGIC, VERSION, "REINFORCE")?;
    let config = read_config(&mut r)?;
    let run = RunState::read(&mut r)?;
    let episodes = r.u64("episodes")?;
    let ep_info = EpisodeWindow::read(&mut r, config.stats_window_size)?;

    let progress = EpisodeProgress {
        in_episode: r.bool("episode flag")?,
        finished: r.bool("episode-finished flag")?,
        seed: r.u64("episode seed")?,
        ep_return: r.f64("episode return so far")?,
    };
    let next_obs = r.f32s("observation")?;
    let ep_obs = r.f32s("episode observations")?;
    let ep_indices = r.u32s("episode actions")?;
    let ep_actions = r.f32s("episode actions")?;
    let ep_rewards = r.f64s("episode rewards")?;

    // The baseline's weights are stored in full: one larger than the file is refused before
    // it is built.
    if let Some(b) = &config.baseline {
        let params = ValueNet::parameter_count(env.observation_space().flat_dim(), b)
            .map_err(|e| r.err(format!("stored configuration is invalid: {e}")))?;
        if params.saturating_mul(4) > r.remaining() {
            return Err(r.err(format!(
                "its baseline has {params} parameters, more than the file holds"
            )));
        }
    }
    let mut algo = Reinforce::new(policy, env, config)?;
    r.vars_into(&algo.policy.trainable_vars(), "policy")?;
    r.optimizer_into(&mut algo.optimizer, "policy optimizer")?;
    if let Some(Baseline { net, optimizer }) = algo.baseline.as_mut() {
        r.vars_into(&net.vars(), "baseline")?;
        r.optimizer_into(optimizer, "baseline optimizer")?;
    }
    r.finish()?;
    algo.run = run;
    algo.episodes = episodes;
    algo.ep_info = ep_info;
    algo.progress = progress;
    algo.episode.obs = ep_obs;
    algo.episode.indices = ep_indices;
    algo.episode.actions = ep_actions;
    algo.episode.rewards = ep_rewards;
    if next_obs.len() != algo.obs_dim {
        return Err(r.err(format!(
            "observation has {} elements, the environment's have {}",
            next_obs.len(),
            algo.obs_dim
        )));
    }
    if progress.in_episode {
        replay_episode(&mut algo, &next_obs).map_err(|reason| r.err(reason))?;
    }
    algo.obs = next_obs;
    Ok(algo)
}

/// Brings the environment to the middle of the saved episode: reset with its seed, replay its
/// actions, and check every observation and reward (and the final observation) bit for bit.
fn replay_episode<P: StochasticPolicy, E: Env>(
    a: &mut Reinforce<P, E>,
    next_obs: &[f32],
) -> std::result::Result<(), String> {
    let ep = &a.episode;
    let len = ep.rewards.len();
    let d = a.obs_dim;
    let space = a.env.action_space().clone();
    let act_dim = space.flat_dim();
    let actions_ok = match &space {
        Space::Discrete { .. } => ep.indices.len() == len && ep.actions.is_empty(),
        Space::Box(_) => ep.actions.len() == len * act_dim && ep.indices.is_empty(),
    };
    if ep.obs.len() != len * d || !actions_ok || len == 0 {
        return Err(format!(
            "the unfinished episode's {len} steps do not match its {} observation values, {} \
             discrete and {} continuous action values",
            ep.obs.len(),
            ep.indices.len(),
            ep.actions.len()
        ));
    }
    let same = |x: &[f32], y: &[f32]| x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits());
    let mut obs = vec![0.0f32; d];
    let mut clipped = vec![0.0f32; act_dim];
    a.env
        .reset_into(Some(&Seed::from(a.progress.seed)), &mut obs)
        .map_err(|e| format!("replaying the unfinished episode: reset failed: {e}"))?;
    for t in 0..len {
        if !same(&obs, &ep.obs[t * d..(t + 1) * d]) {
            return Err(format!(
                "replaying the unfinished episode: observation {t} differs from the saved one \
                 (the environment is not the same, or not deterministic given its seed and \
                 actions)"
            ));
        }
        let action = match &space {
            Space::Discrete { start, .. } => Action::Discrete(start + i64::from(ep.indices[t])),
            Space::Box(b) => {
                clipped.copy_from_slice(&ep.actions[t * act_dim..(t + 1) * act_dim]);
                b.clip(&mut clipped);
                Action::Continuous(&clipped)
            }
        };
        let out = a
            .env
            .step_into(action, &mut obs)
            .map_err(|e| format!("replaying the unfinished episode: step {t} failed: {e}"))?;
        if out.reward.to_bits() != ep.rewards[t].to_bits() {
            return Err(format!(
                "replaying the unfinished episode: reward {t} is {} but {} was saved",
                out.reward, ep.rewards[t]
            ));
        }
    }
    if !same(&obs, next_obs) {
        return Err(
            "replaying the unfinished episode: the last observation differs from the saved one"
                .into(),
        );
    }
    Ok(())
}
