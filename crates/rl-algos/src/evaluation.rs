//! `evaluate_policy` (SB3's `common/evaluation.py`): run a policy for a number of episodes and
//! report the mean and (population) standard deviation of the episode returns.

use crate::error::{AlgoError, Result};
use rand::RngCore;
use rl_env::{AutoresetMode, Env, Info, VecEnv};
use rl_policy::Policy;
use rl_tensor_bridge::ActionBuffer;

/// SB3's default number of evaluation episodes.
pub const DEFAULT_N_EVAL_EPISODES: usize = 10;

/// The outcome of [`evaluate_policy`]: per-episode returns and lengths in the order the
/// episodes finished, and the mean and population standard deviation (NumPy's `np.std`) of the
/// returns.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalResult {
    /// Mean episode return.
    pub mean: f64,
    /// Population standard deviation of the episode returns.
    pub std: f64,
    /// Return of each episode.
    pub episode_returns: Vec<f64>,
    /// Length of each episode.
    pub episode_lengths: Vec<u64>,
}

impl EvalResult {
    /// Summarizes finished episodes; errors when there are none.
    pub fn from_episodes(episode_returns: Vec<f64>, episode_lengths: Vec<u64>) -> Result<Self> {
        if episode_returns.is_empty() || episode_returns.len() != episode_lengths.len() {
            return Err(AlgoError::InvalidArgument(format!(
                "an evaluation needs at least one episode and one length per return, got {} \
                 returns and {} lengths",
                episode_returns.len(),
                episode_lengths.len()
            )));
        }
        let (mean, std) = mean_std(&episode_returns);
        Ok(EvalResult {
            mean,
            std,
            episode_returns,
            episode_lengths,
        })
    }

    /// Mean episode length.
    pub fn mean_length(&self) -> f64 {
        self.episode_lengths.iter().map(|&l| l as f64).sum::<f64>()
            / self.episode_lengths.len().max(1) as f64
    }
}

/// Mean and population standard deviation (`np.mean`, `np.std`) of `xs`; `(NaN, NaN)` when empty.
pub fn mean_std(xs: &[f64]) -> (f64, f64) {
    if xs.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
    (mean, var.sqrt())
}

fn check_n(n_eval_episodes: usize) -> Result<()> {
    if n_eval_episodes == 0 {
        return Err(AlgoError::InvalidArgument(
            "n_eval_episodes must be at least 1".into(),
        ));
    }
    Ok(())
}

/// The return and length to record for an episode that just ended: the episode statistics a
/// `RecordEpisodeStatistics` wrapper put in `info` when there are some (SB3 prefers the
/// `Monitor`'s, which see the unnormalized rewards), else the evaluator's own sums.
fn episode_outcome(info: &Info, own_return: f64, own_length: u64) -> (f64, u64) {
    match info.episode {
        Some(stats) => (stats.r#return, stats.length),
        None => (own_return, own_length),
    }
}

/// Runs `policy` on `env` for `n_eval_episodes` whole episodes (SB3 default 10) and returns
/// their returns. Each episode starts with `env.reset(None)`: to evaluate from a given seed,
/// reset the environment once with that seed beforehand, as with Gymnasium.
///
/// Actions are the distribution's mode when `deterministic` (SB3's default `true`), else
/// samples drawn from `rng`. Discrete indices are shifted by the space's `start`; continuous
/// actions are clipped into the action space, as SB3's `predict` does.
///
/// Environments without a time limit must end their episodes: a policy that never ends one
/// keeps this function running, as it does SB3's.
pub fn evaluate_policy<P, E>(
    policy: &P,
    env: &mut E,
    n_eval_episodes: usize,
    deterministic: bool,
    rng: &mut dyn RngCore,
) -> Result<EvalResult>
where
    P: Policy + ?Sized,
    E: Env + ?Sized,
{
    check_n(n_eval_episodes)?;
    let obs_dim = env.observation_space().flat_dim();
    let mut obs = vec![0.0f32; obs_dim];
    let mut actions = ActionBuffer::new(env.action_space(), 1);
    let act_dim = env.action_space().flat_dim();
    let mut returns = Vec::with_capacity(n_eval_episodes);
    let mut lengths = Vec::with_capacity(n_eval_episodes);
    for _ in 0..n_eval_episodes {
        env.reset_into(None, &mut obs)?;
        let (mut ep_return, mut ep_length) = (0.0f64, 0u64);
        loop {
            let act = policy.predict(&obs, 1, deterministic, rng)?;
            let action = actions.fill_from_policy(&act)?.get(0, act_dim);
            let out = env.step_into(action, &mut obs)?;
            ep_return += out.reward;
            ep_length += 1;
            if out.done() {
                let (r, l) = episode_outcome(&out.info, ep_return, ep_length);
                returns.push(r);
                lengths.push(l);
                break;
            }
        }
    }
    EvalResult::from_episodes(returns, lengths)
}

/// [`evaluate_policy`] on a vector of environments, with SB3's even split: sub-environment
/// `i` contributes `(n_eval_episodes + i) / n_envs` episodes, so that short episodes are not
/// over-represented. The vector is reset (`reset(None)`) first; episodes are listed in the
/// order they finish. Both autoreset modes are handled (in `NextStep` mode the reset step that
/// follows an episode's end is not counted).
pub fn evaluate_policy_vec<P, V>(
    policy: &P,
    venv: &mut V,
    n_eval_episodes: usize,
    deterministic: bool,
    rng: &mut dyn RngCore,
) -> Result<EvalResult>
where
    P: Policy + ?Sized,
    V: VecEnv + ?Sized,
{
    check_n(n_eval_episodes)?;
    let n_envs = venv.num_envs();
    if n_envs == 0 {
        return Err(AlgoError::InvalidArgument(
            "cannot evaluate on a vector of 0 environments".into(),
        ));
    }
    let next_step = venv.autoreset_mode() == AutoresetMode::NextStep;
    let targets: Vec<usize> = (0..n_envs)
        .map(|i| (n_eval_episodes + i) / n_envs)
        .collect();
    let mut counts = vec![0usize; n_envs];
    let mut cur_return = vec![0.0f64; n_envs];
    let mut cur_length = vec![0u64; n_envs];
    let mut resetting = vec![false; n_envs];
    let mut actions = ActionBuffer::new(venv.action_space(), n_envs);
    let mut returns = Vec::with_capacity(n_eval_episodes);
    let mut lengths = Vec::with_capacity(n_eval_episodes);
    venv.reset(None)?;
    while counts.iter().zip(&targets).any(|(c, t)| c < t) {
        let act = policy.predict(venv.observations(), n_envs, deterministic, rng)?;
        venv.step(actions.fill_from_policy(&act)?)?;
        let buffers = venv.buffers();
        for i in 0..n_envs {
            if std::mem::take(&mut resetting[i]) {
                continue;
            }
            cur_return[i] += buffers.rewards()[i];
            cur_length[i] += 1;
            if buffers.done(i) {
                if counts[i] < targets[i] {
                    let (r, l) = episode_outcome(&buffers.infos()[i], cur_return[i], cur_length[i]);
                    returns.push(r);
                    lengths.push(l);
                    counts[i] += 1;
                }
                cur_return[i] = 0.0;
                cur_length[i] = 0;
                resetting[i] = next_step;
            }
        }
    }
    EvalResult::from_episodes(returns, lengths)
}
