//! Train an agent, in the spirit of rl-baselines3-zoo's `train.py`.
//!
//! ```text
//! cargo run --release --example train -- --algo a2c --env CartPole-v1
//! ```
//!
//! A2C, PPO, DQN, SAC, TD3 and DDPG train with rl-zoo's settings for the env
//! (`hyperparams/<algo>.yml`, the zoo's classic-control entries: `n_envs`, `n_timesteps`,
//! `normalize` (VecNormalize), gSDE, `policy_kwargs`, schedules, action noise; see
//! `docs/zoo.md`) and SB3's defaults for envs without an entry (one environment, 1M steps);
//! SAC, TD3 and DDPG need a Box action space. REINFORCE trains on one environment. Every
//! `--eval-freq` environment steps
//! the deterministic policy is evaluated on its own environment (`--eval-episodes` episodes);
//! training stops early once `--solved-evals` evaluations in a row reach the environment's
//! registered reward threshold. A progress bar (on a terminal) and SB3's log tables show how
//! it goes (`--quiet` silences both).
//!
//! The output directory (`--out`, default `runs/<algo>_<env>_<seed>/`) receives
//! `learning_curve.csv` (`timesteps,mean,std`), `learning_curve.svg`, `progress.csv` (the
//! logger's values) and `model/` (the final policy: an `MlpPolicy`, a `QNetwork` for DQN, or
//! SAC/TD3/DDPG's actor, critics and their targets, with its training context — env id,
//! kwargs, VecNormalize statistics — playable with the `enjoy` example). `--save <dir>` keeps a
//! resumable checkpoint there (refreshed after every evaluation and at the end; DQN's, SAC's,
//! TD3's and DDPG's include the replay buffer);
//! `--resume <dir>` continues that run: training resumes bit for
//! bit (the weights end up identical to an uninterrupted run's), while the evaluation
//! environment restarts from its seed, so later evaluations see other episodes than they
//! would have. `--json-out <file>` writes a summary for scripts.
//!
//! Every algorithm but REINFORCE takes rl-zoo's hyperparameters: `--hyperparams-file FILE` reads
//! rl-zoo's YAML as it is (the env's section: `n_envs`, `n_timesteps`, `policy_kwargs`,
//! `lin_<v>` schedules, `noise_type`/`noise_std`, every key of the algorithm; a key this
//! program does not support is an error naming it), by default the shipped
//! `hyperparams/<algo>.yml` (rl-zoo's classic-control entries;
//! SB3's defaults for envs without an entry), and `--hyperparams key:value ...` overrides keys
//! like rl-zoo's `-params`. `--n-envs` and `--total-timesteps` override both. The zoo's
//! `normalize` wraps the training environments in a `VecNormalize` (with the section's `gamma`
//! when it sets one, as rl-zoo does); evaluations act through its statistics, frozen, on
//! unnormalized rewards, and the saved model carries them (with the env id and kwargs) for
//! `enjoy`.
//!
//! `--env-kwargs key:value ...` passes keyword arguments to the environments as
//! `gymnasium.make(id, **kwargs)` does (`--env-kwargs g:9.81 max_episode_steps:100`; an
//! unknown keyword is an error naming it). `--tensorboard-log DIR` also writes TensorBoard
//! event files, under `DIR/<env>/<ALGO>_<n>` as rl-zoo lays them out (a resumed run continues
//! in the latest folder); view them with `tensorboard --logdir DIR`.

#[macro_use]
#[path = "common/cli.rs"]
mod cli;
#[path = "common/plot.rs"]
mod plot;

use candle_core::Device;
use clap::{Parser, ValueEnum};
use plot::CurvePoint;
use rand::rngs::StdRng;
use rand::SeedableRng;
use rl_algos::callbacks::EvalSummary;
use rl_algos::off_policy::OffPolicyTrainer;
use rl_algos::sac::{Sac, SacConfig};
use rl_algos::td3::{Td3, Td3Config};
use rl_algos::tensorboard::latest_run_id;
use rl_algos::zoo::{
    parse_override, NetArchKwarg, NormalizeKwargs, PolicyKwargs, ZooEntry, ZooRun, ZooValue,
};
use rl_algos::{
    evaluate_policy, A2c, A2cConfig, AlgoError, Algorithm, Budget, Callback, Dqn, DqnConfig,
    EvalCallback, EvalChild, Locals, Logger, Ppo, PpoConfig, ProgressBarCallback, Reinforce,
    ReinforceConfig,
};
use rl_env::{
    make_with, registry, AutoresetMode, Env, EnvSpec, KwargValue, Space, SyncVecEnv, ThreadVecEnv,
    VecEnv, VecNormalize, VecNormalizeConfig,
};
use rl_policy::context::{save_model_file, with_context};
use rl_policy::{
    Activation, ContinuousCritic, GreedyQPolicy, MlpConfig, MlpPolicy, MlpPolicyConfig, NetArch,
    NormalizedPolicy, Policy, QNetwork, QNetworkConfig, SacActor, Td3Actor, TrainingContext,
};
use serde::{Deserialize, Serialize};
use std::error::Error;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

type BoxError = Box<dyn Error>;

/// File names inside a `--save` directory.
const RUN_FILE: &str = "run.json";
const CHECKPOINT_FILE: &str = "checkpoint.bin";
/// The `format` tag of [`RUN_FILE`].
const RUN_FORMAT: &str = "rl-train/1";
/// Offsets of the evaluation environments' seeds from the run's seed, so that evaluation
/// episodes are not the training ones.
const EVAL_SEED_OFFSET: u64 = 1_000;
const FINAL_EVAL_SEED_OFFSET: u64 = 2_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Algo {
    /// Synchronous advantage actor-critic (SB3's A2C).
    A2c,
    /// Proximal policy optimization (SB3's PPO).
    Ppo,
    /// Monte-Carlo policy gradient over whole episodes.
    Reinforce,
    /// Deep Q-learning (SB3's DQN).
    Dqn,
    /// Soft actor-critic (SB3's SAC; Box actions).
    Sac,
    /// Twin delayed DDPG (SB3's TD3; Box actions).
    Td3,
    /// Deep deterministic policy gradient (SB3's DDPG; Box actions).
    Ddpg,
}

impl fmt::Display for Algo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Algo::A2c => "a2c",
            Algo::Ppo => "ppo",
            Algo::Reinforce => "reinforce",
            Algo::Dqn => "dqn",
            Algo::Sac => "sac",
            Algo::Td3 => "td3",
            Algo::Ddpg => "ddpg",
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum VecKind {
    /// All environments step in the calling thread.
    Sync,
    /// Environments step on worker threads.
    Thread,
}

/// Train an RL agent on a registered environment.
#[derive(Parser, Debug)]
#[command(name = "train")]
struct Cli {
    /// Algorithm (required unless resuming).
    #[arg(long, value_enum)]
    algo: Option<Algo>,
    /// Environment id, e.g. CartPole-v1 (required unless resuming).
    #[arg(long)]
    env: Option<String>,
    /// Seed of everything random [default: 0].
    #[arg(long)]
    seed: Option<u64>,
    /// Parallel environments [default: all but reinforce: the hyperparameters' n_envs (1
    /// without); reinforce uses 1].
    #[arg(long)]
    n_envs: Option<usize>,
    /// Environment-step budget (an absolute target when resuming) [default: all but reinforce:
    /// the hyperparameters' n_timesteps, else 1000000; reinforce 500000 for CartPole-v1 and
    /// Acrobot-v1, 1000000 otherwise].
    #[arg(long)]
    total_timesteps: Option<u64>,
    /// rl-zoo hyperparameter file (YAML), for every algo but reinforce [default: the shipped
    /// hyperparams/<algo>.yml].
    #[arg(long, value_name = "FILE")]
    hyperparams_file: Option<PathBuf>,
    /// Hyperparameter overrides, `key:value` in the YAML file's syntax (rl-zoo's -params), e.g.
    /// `--hyperparams n_steps:16 learning_rate:lin_0.001`.
    #[arg(long, num_args = 1.., value_name = "KEY:VALUE")]
    hyperparams: Vec<String>,
    /// Environment steps between evaluations.
    #[arg(long, default_value_t = 10_000)]
    eval_freq: u64,
    /// Episodes per evaluation.
    #[arg(long, default_value_t = 10)]
    eval_episodes: usize,
    /// Stop once this many evaluations in a row reach the reward threshold (0: never stop).
    #[arg(long, default_value_t = 2)]
    solved_evals: u32,
    /// Output directory [default: runs/<algo>_<env>_<seed>].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Keep a resumable checkpoint in this directory.
    #[arg(long)]
    save: Option<PathBuf>,
    /// Continue the run saved in this directory (by --save).
    #[arg(long)]
    resume: Option<PathBuf>,
    /// Write a JSON summary of the run to this file.
    #[arg(long)]
    json_out: Option<PathBuf>,
    /// Candle's CPU threads (sets RAYON_NUM_THREADS) [default: $RAYON_NUM_THREADS, else 1].
    #[arg(long)]
    threads: Option<usize>,
    /// How the environments are stepped (every algo but reinforce).
    #[arg(long, value_enum, default_value_t = VecKind::Sync)]
    vec: VecKind,
    /// No progress bar, log tables or evaluation lines.
    #[arg(long)]
    quiet: bool,
    /// Keyword arguments of the environment, as `key:value` (values read as Python literals:
    /// 9.81, 200, True, 'text'), e.g. `--env-kwargs g:9.81 max_episode_steps:100`.
    #[arg(long, num_args = 1.., value_name = "KEY:VALUE", value_parser = cli::env_kwarg)]
    env_kwargs: Vec<(String, KwargValue)>,
    /// Also write TensorBoard event files under DIR/<env>/<ALGO>_<n> (view them with
    /// `tensorboard --logdir DIR`).
    #[arg(long, value_name = "DIR")]
    tensorboard_log: Option<PathBuf>,
}

/// One evaluation of the learning curve (also the JSON shape).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
struct EvalPoint {
    timesteps: u64,
    mean: f64,
    std: f64,
}

/// What a `--save` directory says about its run ([`RUN_FILE`]).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct RunInfo {
    format: String,
    algo: Algo,
    env: String,
    seed: u64,
    n_envs: usize,
    total_timesteps: u64,
    num_timesteps: u64,
    evals: Vec<EvalPoint>,
    /// `--env-kwargs`, as `key:value` texts (absent in files of runs without them).
    #[serde(default)]
    env_kwargs: Vec<String>,
    /// `--hyperparams-file` (absent: the shipped file).
    #[serde(default)]
    hyperparams_file: Option<PathBuf>,
    /// `--hyperparams` overrides.
    #[serde(default)]
    hyperparams: Vec<String>,
}

impl RunInfo {
    fn load(dir: &Path) -> Result<RunInfo, BoxError> {
        let shown = dir.display();
        if !dir.exists() {
            return Err(format!("cannot resume from {shown}: no such directory").into());
        }
        if !dir.is_dir() {
            return Err(format!("cannot resume from {shown}: not a directory").into());
        }
        let path = dir.join(RUN_FILE);
        let text = std::fs::read(&path).map_err(|e| {
            format!("cannot resume from {shown}: cannot read {RUN_FILE} ({e}); expected a directory written by --save")
        })?;
        let info: RunInfo = serde_json::from_slice(&text)
            .map_err(|e| format!("cannot resume from {shown}: {RUN_FILE} is corrupt ({e})"))?;
        if info.format != RUN_FORMAT {
            return Err(format!(
                "cannot resume from {shown}: {RUN_FILE} has format {:?}, this program reads {RUN_FORMAT:?}",
                info.format
            )
            .into());
        }
        if !dir.join(CHECKPOINT_FILE).is_file() {
            return Err(format!("cannot resume from {shown}: {CHECKPOINT_FILE} is missing").into());
        }
        Ok(info)
    }

    /// Writes the checkpoint, then (atomically) the description, into `dir`.
    fn save(&self, dir: &Path, algo: &dyn Algorithm) -> rl_algos::Result<()> {
        let io = |path: &Path, source| AlgoError::Io {
            path: path.display().to_string(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        algo.save_checkpoint(&dir.join(CHECKPOINT_FILE))?;
        let json = serde_json::to_vec_pretty(self).map_err(|e| {
            AlgoError::InvalidArgument(format!("cannot serialize the run description: {e}"))
        })?;
        let (path, tmp) = (dir.join(RUN_FILE), dir.join(format!("{RUN_FILE}.tmp")));
        std::fs::write(&tmp, json).map_err(|e| io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| io(&path, e))
    }
}

/// Everything a run needs, resolved from the command line and the run being resumed.
struct Spec {
    algo: Algo,
    env: String,
    seed: u64,
    n_envs: usize,
    total_timesteps: u64,
    threshold: Option<f64>,
    out: PathBuf,
    /// What `make_with` gets: the `--env-kwargs`.
    env_spec: EnvSpec,
    /// The hyperparameters of an A2C or PPO run.
    hyper: Hyper,
    /// Where they came from, for the run's first line and `run.json`.
    hyperparams_file: Option<PathBuf>,
    hyperparams: Vec<String>,
    /// The VecNormalize the hyperparameters ask for (rl-zoo's `normalize`).
    normalize: Option<VecNormalizeConfig>,
}

/// An algorithm's configuration and what rl-zoo's section says besides it.
enum Hyper {
    A2c(Box<ZooRun<A2cConfig>>),
    Ppo(Box<ZooRun<PpoConfig>>),
    Dqn(Box<ZooRun<DqnConfig>>),
    Sac(Box<ZooRun<SacConfig>>),
    /// TD3, or DDPG (read with `Td3Config::ddpg` as the defaults).
    Td3(Box<ZooRun<Td3Config>>),
    Reinforce,
}

/// rl-zoo's section for `env` of the hyperparameter file (the shipped one without `file`),
/// with the overrides applied. An env the shipped file has no entry for gets SB3's defaults.
fn zoo_entry(
    algo: Algo,
    env: &str,
    file: Option<&Path>,
    overrides: &[String],
) -> Result<ZooEntry, BoxError> {
    let mut entry = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            ZooEntry::from_yaml(&text, env).map_err(|e| format!("{}: {e}", path.display()))?
        }
        None => {
            let text = rl_algos::zoo::shipped(&algo.to_string())
                .ok_or_else(|| format!("no shipped hyperparameters for {algo}"))?;
            ZooEntry::from_yaml(text, env)
                .or_else(|_| ZooEntry::from_yaml(&format!("{env}: {{}}"), env))?
        }
    };
    for o in overrides {
        let (key, value) = parse_override(o)?;
        entry.set(&key, value);
    }
    Ok(entry)
}

/// SB3's `MlpPolicy` configuration from rl-zoo's `policy_kwargs` (SB3's defaults for what
/// they leave out).
fn mlp_config(kwargs: &PolicyKwargs, use_sde: bool) -> Result<MlpPolicyConfig, BoxError> {
    Ok(kwargs.mlp_policy_config(use_sde)?)
}

/// DQN's Q-network from rl-zoo's `policy_kwargs` (SB3's `QNetwork` defaults: [64, 64], ReLU).
fn q_network_config(kwargs: &PolicyKwargs) -> Result<QNetworkConfig, BoxError> {
    let d = QNetworkConfig::default();
    if kwargs.ortho_init.is_some() || kwargs.log_std_init.is_some() || kwargs.n_critics.is_some() {
        return Err("policy_kwargs ortho_init, log_std_init and n_critics are not DQN's".into());
    }
    Ok(QNetworkConfig {
        net_arch: match &kwargs.net_arch {
            None => d.net_arch,
            Some(NetArchKwarg::Same(l)) => l.clone(),
            Some(NetArchKwarg::Split { .. }) => {
                return Err("DQN's net_arch is one list of layer sizes".into())
            }
        },
        activation: kwargs.activation_fn.unwrap_or(d.activation),
    })
}

type ZooParts<'a> = (
    Option<usize>,
    Option<u64>,
    Option<&'a NormalizeKwargs>,
    &'a [(String, ZooValue)],
);

/// What an rl-zoo section says besides the algorithm's config: `n_envs`, `n_timesteps`,
/// its `normalize` and its `env_kwargs`.
fn zoo_parts<C>(r: &ZooRun<C>) -> ZooParts<'_> {
    (
        Some(r.n_envs),
        r.n_timesteps,
        r.normalize.as_ref(),
        &r.env_kwargs,
    )
}

/// rl-zoo's `env_kwargs` as `--env-kwargs` values.
fn zoo_env_kwargs(items: &[(String, ZooValue)]) -> Result<Vec<(String, KwargValue)>, BoxError> {
    items
        .iter()
        .map(|(k, v)| {
            let text = match v {
                ZooValue::Bool(_) | ZooValue::Int(_) | ZooValue::Float(_) => v.to_string(),
                ZooValue::Str(s) => format!("'{s}'"),
                other => {
                    return Err(
                        format!("env_kwargs {k}={other}: not a number, bool or string").into(),
                    )
                }
            };
            Ok((k.clone(), KwargValue::parse_literal(&text)))
        })
        .collect()
}

impl Spec {
    /// A new environment of the run.
    fn make_env(&self) -> Result<Box<dyn Env>, BoxError> {
        Ok(make_with(&self.env, &self.env_spec)?)
    }

    /// The `--env-kwargs` as `key:value` texts that [`cli::env_kwarg`] reads back.
    fn env_kwargs_texts(&self) -> Vec<String> {
        self.env_spec
            .kwargs
            .iter()
            .map(|(k, v)| format!("{k}:{v}"))
            .collect()
    }
}

/// The command-line value, the saved one, or an error when both are given and differ.
fn pick<T: PartialEq + fmt::Display>(
    flag: &str,
    given: Option<T>,
    saved: Option<T>,
) -> Result<Option<T>, BoxError> {
    match (given, saved) {
        (Some(g), Some(s)) if g != s => Err(format!(
            "{flag} {g} differs from the resumed run's {s}; leave it out when resuming"
        )
        .into()),
        (g, s) => Ok(g.or(s)),
    }
}

/// REINFORCE's budget without `--total-timesteps`.
fn reinforce_total_timesteps(env: &str) -> u64 {
    match env {
        "CartPole-v1" | "Acrobot-v1" => 500_000,
        _ => 1_000_000,
    }
}

fn resolve(cli: &Cli, saved: Option<&RunInfo>) -> Result<Spec, BoxError> {
    let algo = pick("--algo", cli.algo, saved.map(|s| s.algo))?
        .ok_or("--algo is required (a2c, ppo, reinforce, dqn, sac, td3 or ddpg)")?;
    let env = pick("--env", cli.env.clone(), saved.map(|s| s.env.clone()))?
        .ok_or("--env is required (e.g. CartPole-v1)")?;
    // Unknown ids fail here, before anything is written.
    let threshold = registry::reward_threshold(&env)?;
    let hyperparams_file = pick(
        "--hyperparams-file",
        cli.hyperparams_file.clone().map(PathDisplay),
        saved.and_then(|s| s.hyperparams_file.clone().map(PathDisplay)),
    )?
    .map(|p| p.0);
    let hyperparams = match saved {
        Some(s) if !cli.hyperparams.is_empty() && cli.hyperparams != s.hyperparams => {
            return Err(format!(
                "--hyperparams {} differs from the resumed run's {}; leave it out when resuming",
                cli.hyperparams.join(" "),
                s.hyperparams.join(" ")
            )
            .into())
        }
        Some(s) => s.hyperparams.clone(),
        None => cli.hyperparams.clone(),
    };
    let hyper = match algo {
        Algo::Reinforce => {
            if hyperparams_file.is_some() || !hyperparams.is_empty() {
                return Err(
                    "--hyperparams-file and --hyperparams are for the algos with rl-zoo files (all but reinforce)"
                        .into(),
                );
            }
            Hyper::Reinforce
        }
        Algo::A2c | Algo::Ppo | Algo::Dqn => {
            let entry = zoo_entry(algo, &env, hyperparams_file.as_deref(), &hyperparams)?;
            match algo {
                Algo::A2c => Hyper::A2c(Box::new(entry.a2c()?)),
                Algo::Ppo => Hyper::Ppo(Box::new(entry.ppo()?)),
                _ => Hyper::Dqn(Box::new(entry.dqn()?)),
            }
        }
        Algo::Sac | Algo::Td3 | Algo::Ddpg => {
            let act_dim = continuous_act_dim(algo, &env)?;
            let entry = zoo_entry(algo, &env, hyperparams_file.as_deref(), &hyperparams)?;
            // Settings this program cannot train with fail here, before anything is written.
            let invalid = |e: AlgoError| format!("{algo} on {env}: {e}");
            match algo {
                Algo::Sac => {
                    let run = entry.sac(act_dim)?;
                    run.config.validate().map_err(invalid)?;
                    sac_configs(&run.policy_kwargs, run.config.use_sde)?;
                    Hyper::Sac(Box::new(run))
                }
                _ => {
                    let defaults = match algo {
                        Algo::Td3 => Td3Config::default(),
                        _ => Td3Config::ddpg(),
                    };
                    let run = entry.td3(defaults, act_dim)?;
                    run.config.validate().map_err(invalid)?;
                    continuous_configs(&run.policy_kwargs, MlpConfig::td3(), 2)?;
                    Hyper::Td3(Box::new(run))
                }
            }
        }
    };
    let (zoo_n_envs, zoo_timesteps, zoo_normalize, zoo_kwargs) = match &hyper {
        Hyper::A2c(r) => zoo_parts(r),
        Hyper::Ppo(r) => zoo_parts(r),
        Hyper::Dqn(r) => zoo_parts(r),
        Hyper::Sac(r) => zoo_parts(r),
        Hyper::Td3(r) => zoo_parts(r),
        Hyper::Reinforce => (None, None, None, &[][..]),
    };
    let normalize = zoo_normalize.map(NormalizeKwargs::config).transpose()?;
    let mut all_kwargs = zoo_env_kwargs(zoo_kwargs)?;
    all_kwargs.extend(cli.env_kwargs.iter().cloned());
    let mut kwargs = cli::env_kwargs(&all_kwargs);
    if let Some(saved) = saved {
        let saved_kwargs = cli::env_kwargs_from_texts(&saved.env_kwargs)
            .map_err(|e| format!("{RUN_FILE}: env_kwargs: {e}"))?;
        let sorted = |k: &rl_env::EnvKwargs| {
            let mut texts: Vec<String> = k.iter().map(|(k, v)| format!("{k}:{v}")).collect();
            texts.sort();
            texts
        };
        if !cli.env_kwargs.is_empty() && sorted(&kwargs) != sorted(&saved_kwargs) {
            return Err(format!(
                "--env-kwargs {kwargs} differs from the resumed run's {saved_kwargs}; leave it \
                 out when resuming"
            )
            .into());
        }
        kwargs = saved_kwargs;
    }
    let env_spec = EnvSpec {
        kwargs,
        ..EnvSpec::default()
    };
    // Unknown or invalid keyword arguments fail here too, naming the keyword.
    make_with(&env, &env_spec)?;
    let seed = pick("--seed", cli.seed, saved.map(|s| s.seed))?.unwrap_or(0);
    let n_envs = pick("--n-envs", cli.n_envs, saved.map(|s| s.n_envs))?;
    let n_envs = match (algo, n_envs) {
        (_, Some(0)) => return Err("--n-envs must be at least 1".into()),
        (Algo::Reinforce, Some(n)) if n != 1 => {
            return Err(format!(
                "reinforce trains on one environment; --n-envs {n} is not supported"
            )
            .into())
        }
        (Algo::Reinforce, _) => 1,
        (_, n) => n.or(zoo_n_envs).unwrap_or(1),
    };
    let total_timesteps = cli
        .total_timesteps
        .or(saved.map(|s| s.total_timesteps))
        .or(zoo_timesteps)
        .unwrap_or_else(|| match algo {
            Algo::Reinforce => reinforce_total_timesteps(&env),
            _ => 1_000_000,
        });
    if total_timesteps == 0 {
        return Err("--total-timesteps must be at least 1".into());
    }
    if let Some(done) = saved.map(|s| s.num_timesteps) {
        if done >= total_timesteps {
            return Err(format!(
                "the resumed run already has {done} steps, and the budget is {total_timesteps}: \
                 pass a larger --total-timesteps to train further"
            )
            .into());
        }
    }
    if cli.eval_freq == 0 {
        return Err("--eval-freq must be at least 1".into());
    }
    if cli.eval_episodes == 0 {
        return Err("--eval-episodes must be at least 1".into());
    }
    let out = cli
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("runs/{algo}_{env}_{seed}")));
    Ok(Spec {
        algo,
        env,
        seed,
        n_envs,
        total_timesteps,
        threshold,
        out,
        env_spec,
        hyper,
        hyperparams_file,
        hyperparams,
        normalize,
    })
}

/// A path compared and shown by its text (for [`pick`]).
#[derive(Clone, PartialEq)]
struct PathDisplay(PathBuf);

impl fmt::Display for PathDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.display())
    }
}

/// After each evaluation: records it, refreshes the `--save` checkpoint, and stops training
/// once `needed` evaluations in a row reach the threshold.
struct AfterEval {
    threshold: Option<f64>,
    needed: u32,
    streak: u32,
    verbose: bool,
    save: Option<(PathBuf, RunInfo)>,
}

impl EvalChild for AfterEval {
    fn on_eval(
        &mut self,
        eval: &EvalSummary<'_>,
        locals: &Locals<'_>,
        _logger: &mut Logger,
    ) -> rl_algos::Result<bool> {
        if let Some((dir, info)) = &mut self.save {
            info.num_timesteps = locals.num_timesteps;
            info.evals.push(EvalPoint {
                timesteps: locals.num_timesteps,
                mean: eval.last.mean,
                std: eval.last.std,
            });
            info.save(dir, locals.algo)?;
        }
        let Some(threshold) = self.threshold.filter(|_| self.needed > 0) else {
            return Ok(true);
        };
        self.streak = if eval.last.mean >= threshold {
            self.streak + 1
        } else {
            0
        };
        if self.streak >= self.needed {
            if self.verbose {
                outln!(
                    "Solved: {} evaluation(s) in a row with a mean return >= {threshold}; stopping at {} steps",
                    self.streak, locals.num_timesteps
                );
            }
            return Ok(false);
        }
        Ok(true)
    }
}

/// The policy of a fresh run: SB3's `MlpPolicy` for A2C; for REINFORCE the PyTorch
/// tutorial's single hidden layer of 128 ReLU units (its value head is unused).
fn new_policy(spec: &Spec, env: &dyn Env, device: &Device) -> Result<MlpPolicy, BoxError> {
    let config = match &spec.hyper {
        Hyper::A2c(r) => mlp_config(&r.policy_kwargs, r.config.use_sde)?,
        Hyper::Ppo(r) => mlp_config(&r.policy_kwargs, r.config.use_sde)?,
        Hyper::Dqn(_) | Hyper::Sac(_) | Hyper::Td3(_) => {
            return Err(format!("{} does not train an MlpPolicy", spec.algo).into())
        }
        Hyper::Reinforce => MlpPolicyConfig {
            net_arch: NetArch {
                shared: vec![],
                pi: vec![128],
                vf: vec![],
            },
            activation: Activation::ReLU,
            ortho_init: false,
            log_std_init: 0.0,
            use_sde: false,
        },
    };
    MlpPolicy::new(
        env.observation_space(),
        env.action_space(),
        config,
        spec.seed,
        device,
    )
    .map_err(|e| format!("{} cannot train on {}: {e}", spec.algo, spec.env).into())
}

/// DQN's Q-network of a fresh run (its init drawn from the run's seed).
fn new_q_network(spec: &Spec, env: &dyn Env, device: &Device) -> Result<QNetwork, BoxError> {
    let Hyper::Dqn(run) = &spec.hyper else {
        return Err(format!("{} trains an MlpPolicy, not a QNetwork", spec.algo).into());
    };
    QNetwork::new(
        env.observation_space(),
        env.action_space(),
        q_network_config(&run.policy_kwargs)?,
        spec.seed,
        device,
    )
    .map_err(|e| format!("dqn cannot train on {}: {e}", spec.env).into())
}

/// The action dimension of `env` for SAC/TD3/DDPG; an environment with discrete actions is an
/// error naming the algorithm and the space.
fn continuous_act_dim(algo: Algo, env: &str) -> Result<usize, BoxError> {
    let probe = rl_env::make(env)?;
    match probe.action_space() {
        Space::Box(b) => Ok(b.flat_dim()),
        other => Err(format!(
            "{algo} needs a Box (continuous) action space, but {env} has {other}; use a2c, ppo \
             or dqn for discrete actions"
        )
        .into()),
    }
}

/// The actor's and critics' layers and the number of critics from rl-zoo's `policy_kwargs`
/// (SB3's defaults for what they leave out: `default` layers, ReLU, `n_critics` critics).
fn continuous_configs(
    kwargs: &PolicyKwargs,
    default: MlpConfig,
    n_critics: usize,
) -> Result<(MlpConfig, MlpConfig, usize), BoxError> {
    if kwargs.ortho_init.is_some() {
        return Err("policy_kwargs ortho_init is for A2C/PPO, not SAC/TD3/DDPG".into());
    }
    if kwargs.log_std_init.is_some() || kwargs.use_expln.is_some() || kwargs.clip_mean.is_some() {
        return Err(
            "policy_kwargs log_std_init, use_expln and clip_mean belong to gSDE (use_sde), which \
             TD3 and DDPG do not have"
                .into(),
        );
    }
    let (pi, qf) = match &kwargs.net_arch {
        None => (default.net_arch.clone(), default.net_arch),
        Some(NetArchKwarg::Same(l)) => (l.clone(), l.clone()),
        Some(NetArchKwarg::Split { pi, critic }) => (pi.clone(), critic.clone()),
    };
    let activation = kwargs.activation_fn.unwrap_or(default.activation);
    let mlp = |net_arch| MlpConfig {
        net_arch,
        activation,
        sde: None,
    };
    Ok((mlp(pi), mlp(qf), kwargs.n_critics.unwrap_or(n_critics)))
}

/// SAC's actor (with gSDE when the section's `use_sde` asks for it: `log_std_init`,
/// `use_expln`, `clip_mean`) and critics from rl-zoo's `policy_kwargs`, SB3's defaults for the
/// rest, and the number of critics.
fn sac_configs(
    kwargs: &PolicyKwargs,
    use_sde: bool,
) -> Result<(MlpConfig, MlpConfig, usize), BoxError> {
    if kwargs.ortho_init.is_some() {
        return Err("policy_kwargs ortho_init is for A2C/PPO, not SAC".into());
    }
    let (actor, critic) = kwargs.sac_networks(use_sde);
    Ok((actor, critic, kwargs.n_critics.unwrap_or(2)))
}

/// SAC's actor and critics of a fresh run (actor init from the run's seed, critics' from the
/// seed + 100, as the learning tests draw them).
fn new_sac_networks(
    spec: &Spec,
    env: &dyn Env,
    device: &Device,
) -> Result<(SacActor, ContinuousCritic), BoxError> {
    let Hyper::Sac(run) = &spec.hyper else {
        return Err(format!("{} does not train SAC's networks", spec.algo).into());
    };
    let (actor, critic, n) = sac_configs(&run.policy_kwargs, run.config.use_sde)?;
    let (o, a) = (env.observation_space(), env.action_space());
    let cannot = |e| -> BoxError { format!("sac cannot train on {}: {e}", spec.env).into() };
    Ok((
        SacActor::new(o, a, actor, spec.seed, device).map_err(cannot)?,
        ContinuousCritic::new(o, a, critic, n, spec.seed.wrapping_add(100), device)
            .map_err(cannot)?,
    ))
}

/// TD3's (or DDPG's: one critic unless `n_critics` says otherwise, as SB3's DDPG) actor and
/// critics of a fresh run.
fn new_td3_networks(
    spec: &Spec,
    env: &dyn Env,
    device: &Device,
) -> Result<(Td3Actor, ContinuousCritic), BoxError> {
    let Hyper::Td3(run) = &spec.hyper else {
        return Err(format!("{} does not train TD3's networks", spec.algo).into());
    };
    let n_critics = if spec.algo == Algo::Ddpg { 1 } else { 2 };
    let (actor, critic, n) = continuous_configs(&run.policy_kwargs, MlpConfig::td3(), n_critics)?;
    let (o, a) = (env.observation_space(), env.action_space());
    let cannot =
        |e| -> BoxError { format!("{} cannot train on {}: {e}", spec.algo, spec.env).into() };
    Ok((
        Td3Actor::new(o, a, actor, spec.seed, device).map_err(cannot)?,
        ContinuousCritic::new(o, a, critic, n, spec.seed.wrapping_add(100), device)
            .map_err(cannot)?,
    ))
}

/// The training environments, wrapped in the hyperparameters' VecNormalize if they ask for one.
fn make_vec_env(spec: &Spec, kind: VecKind) -> Result<Box<dyn VecEnv>, BoxError> {
    let venv = make_plain_vec_env(spec, kind)?;
    Ok(match spec.normalize {
        Some(cfg) => Box::new(VecNormalize::new(venv, cfg)?),
        None => venv,
    })
}

fn make_plain_vec_env(spec: &Spec, kind: VecKind) -> Result<Box<dyn VecEnv>, BoxError> {
    Ok(match kind {
        VecKind::Sync => Box::new(SyncVecEnv::make_with(
            &spec.env,
            &spec.env_spec,
            spec.n_envs,
            AutoresetMode::SameStep,
        )?),
        VecKind::Thread => {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            Box::new(ThreadVecEnv::make_with(
                &spec.env,
                &spec.env_spec,
                spec.n_envs,
                spec.n_envs.min(cores),
                AutoresetMode::SameStep,
            )?)
        }
    })
}

/// A trained learner of either algorithm.
enum Model {
    A2c(Box<A2c<MlpPolicy, Box<dyn VecEnv>>>),
    Ppo(Box<Ppo<MlpPolicy, Box<dyn VecEnv>>>),
    Reinforce(Box<Reinforce<MlpPolicy, Box<dyn Env>>>),
    Dqn(Box<Dqn<QNetwork, Box<dyn VecEnv>>>),
    Sac(Box<SacLearner>),
    Td3(Box<Td3Learner>),
}

/// SAC with SB3's `MlpPolicy` networks.
type SacLearner = Sac<SacActor, ContinuousCritic, Box<dyn VecEnv>>;
/// TD3 or DDPG with SB3's `MlpPolicy` networks.
type Td3Learner = Td3<Td3Actor, ContinuousCritic, Box<dyn VecEnv>>;

/// The trained model: an actor-critic policy, DQN's greedy Q-network, or a SAC/TD3/DDPG
/// learner (kept whole: its model file holds the target networks too).
enum FinalPolicy {
    Mlp(MlpPolicy),
    Greedy(GreedyQPolicy<QNetwork>),
    Sac(Box<SacLearner>),
    Td3(Box<Td3Learner>),
}

impl FinalPolicy {
    fn policy(&self) -> &dyn Policy {
        match self {
            FinalPolicy::Mlp(p) => p,
            FinalPolicy::Greedy(p) => p,
            FinalPolicy::Sac(m) => m.trainer().policy(),
            FinalPolicy::Td3(m) => m.trainer().policy(),
        }
    }

    /// Saves the model with its training context (env id and kwargs, VecNormalize
    /// statistics) in one atomic file, for `enjoy`.
    fn save(&self, dir: &Path, context: &TrainingContext) -> rl_policy::Result<()> {
        let bytes = match self {
            FinalPolicy::Mlp(p) => p.save_to_bytes()?,
            FinalPolicy::Greedy(p) => p.q_function().save_to_bytes()?,
            FinalPolicy::Sac(m) => m.networks().save_to_bytes()?,
            FinalPolicy::Td3(m) => m.networks().save_to_bytes()?,
        };
        save_model_file(dir, &with_context(&bytes, context)?)
    }
}

impl Model {
    fn algorithm(&self) -> &dyn Algorithm {
        match self {
            Model::A2c(m) => m.as_ref(),
            Model::Ppo(m) => m.as_ref(),
            Model::Reinforce(m) => m.as_ref(),
            Model::Dqn(m) => m.as_ref(),
            Model::Sac(m) => m.as_ref(),
            Model::Td3(m) => m.as_ref(),
        }
    }

    fn into_policy(self) -> FinalPolicy {
        match self {
            Model::A2c(m) => FinalPolicy::Mlp(m.into_parts().0),
            Model::Ppo(m) => FinalPolicy::Mlp(m.into_parts().0),
            Model::Reinforce(m) => FinalPolicy::Mlp(m.into_parts().0),
            Model::Dqn(m) => FinalPolicy::Greedy(GreedyQPolicy::new(m.into_parts().0)),
            Model::Sac(m) => FinalPolicy::Sac(m),
            Model::Td3(m) => FinalPolicy::Td3(m),
        }
    }
}

/// Restores the run saved in `dir`, checking that its `run.json` (already read into `spec`)
/// still describes the checkpoint: an edited algo, env, n_envs or seed is an error naming it.
fn restore(spec: &Spec, cli: &Cli, dir: &Path, probe: Box<dyn Env>) -> Result<Model, BoxError> {
    let path = dir.join(CHECKPOINT_FILE);
    let device = Device::Cpu;
    let policy = || new_policy(spec, &probe, &device);
    let loaded = match spec.algo {
        Algo::A2c => A2c::load(&path, policy()?, make_vec_env(spec, cli.vec)?)
            .map(|m| Model::A2c(Box::new(m))),
        Algo::Ppo => Ppo::load(&path, policy()?, make_vec_env(spec, cli.vec)?)
            .map(|m| Model::Ppo(Box::new(m))),
        Algo::Reinforce => {
            let policy = policy()?;
            Reinforce::load(&path, policy, probe).map(|m| Model::Reinforce(Box::new(m)))
        }
        Algo::Dqn => Dqn::load(
            &path,
            new_q_network(spec, &probe, &device)?,
            make_vec_env(spec, cli.vec)?,
        )
        .map(|m| Model::Dqn(Box::new(m))),
        Algo::Sac => Sac::load(
            &path,
            new_sac_networks(spec, &probe, &device)?,
            make_vec_env(spec, cli.vec)?,
        )
        .map(|m| Model::Sac(Box::new(m))),
        Algo::Td3 | Algo::Ddpg => Td3::load(
            &path,
            new_td3_networks(spec, &probe, &device)?,
            make_vec_env(spec, cli.vec)?,
        )
        .map(|m| Model::Td3(Box::new(m))),
    };
    let shown = dir.display();
    let model = loaded.map_err(|e| -> BoxError {
        match &e {
            AlgoError::CheckpointKind { found, .. } => format!(
                "cannot resume from {shown}: {RUN_FILE} says algo {}, but {CHECKPOINT_FILE} is a \
                 checkpoint of {found}",
                spec.algo
            )
            .into(),
            _ => format!(
                "cannot resume from {shown}: {CHECKPOINT_FILE} does not match {RUN_FILE}'s env \
                 {} with n_envs {}, or {RUN_FILE}'s algo {} ({e})",
                spec.env, spec.n_envs, spec.algo
            )
            .into(),
        }
    })?;
    let seed = match &model {
        Model::A2c(m) => m.seed(),
        Model::Ppo(m) => m.seed(),
        Model::Reinforce(m) => m.seed(),
        Model::Dqn(m) => m.seed(),
        Model::Sac(m) => m.seed(),
        Model::Td3(m) => m.seed(),
    };
    if seed != spec.seed {
        return Err(format!(
            "cannot resume from {shown}: {RUN_FILE} says seed {}, but {CHECKPOINT_FILE} holds a \
             run with seed {seed}",
            spec.seed
        )
        .into());
    }
    Ok(model)
}

/// What training produced.
struct Trained {
    model: Model,
    start_timesteps: u64,
    wall_s: f64,
}

/// Builds (or restores, with `resume`) the learner and trains it up to the budget.
fn train(
    spec: &Spec,
    cli: &Cli,
    resume: Option<&Path>,
    callbacks: &mut [&mut dyn Callback],
) -> Result<Trained, BoxError> {
    let device = Device::Cpu;
    let probe = spec.make_env()?;
    let verbose = !cli.quiet;
    let mut model = match resume {
        Some(dir) => restore(spec, cli, dir, probe)?,
        None => match &spec.hyper {
            Hyper::Dqn(r) => {
                let q_net = new_q_network(spec, &probe, &device)?;
                let config = DqnConfig {
                    seed: Some(spec.seed),
                    verbose,
                    ..r.config.clone()
                };
                Model::Dqn(Box::new(Dqn::new(
                    q_net,
                    make_vec_env(spec, cli.vec)?,
                    config,
                )?))
            }
            Hyper::A2c(r) => {
                let policy = new_policy(spec, &probe, &device)?;
                let config = A2cConfig {
                    seed: Some(spec.seed),
                    verbose,
                    ..r.config.clone()
                };
                Model::A2c(Box::new(A2c::new(
                    policy,
                    make_vec_env(spec, cli.vec)?,
                    config,
                )?))
            }
            Hyper::Ppo(r) => {
                let policy = new_policy(spec, &probe, &device)?;
                let config = PpoConfig {
                    seed: Some(spec.seed),
                    verbose,
                    ..r.config.clone()
                };
                Model::Ppo(Box::new(Ppo::new(
                    policy,
                    make_vec_env(spec, cli.vec)?,
                    config,
                )?))
            }
            Hyper::Sac(r) => {
                let (actor, critic) = new_sac_networks(spec, &probe, &device)?;
                let config = SacConfig {
                    seed: Some(spec.seed),
                    verbose,
                    ..r.config.clone()
                };
                let env = make_vec_env(spec, cli.vec)?;
                Model::Sac(Box::new(Sac::new(actor, critic, env, config)?))
            }
            Hyper::Td3(r) => {
                let (actor, critic) = new_td3_networks(spec, &probe, &device)?;
                let config = Td3Config {
                    seed: Some(spec.seed),
                    verbose,
                    ..r.config.clone()
                };
                let env = make_vec_env(spec, cli.vec)?;
                Model::Td3(Box::new(Td3::new(actor, critic, env, config)?))
            }
            Hyper::Reinforce => {
                let policy = new_policy(spec, &probe, &device)?;
                let config = ReinforceConfig {
                    learning_rate: 5e-3,
                    seed: Some(spec.seed),
                    verbose,
                    ..ReinforceConfig::default()
                };
                Model::Reinforce(Box::new(Reinforce::new(policy, probe, config)?))
            }
        },
    };
    // Created only now, so that a bad checkpoint leaves the output directory alone.
    let mut logger = Logger::new(verbose).with_csv(spec.out.join("progress.csv"))?;
    if let Some(root) = &cli.tensorboard_log {
        logger = logger.with_tensorboard(tensorboard_dir(root, spec, resume.is_some()))?;
    }
    let start_timesteps = model.algorithm().num_timesteps();
    let start = Instant::now();
    match &mut model {
        Model::A2c(m) => {
            *m.logger_mut() = logger;
            m.learn(spec.total_timesteps, callbacks)?;
        }
        Model::Ppo(m) => {
            *m.logger_mut() = logger;
            m.learn(spec.total_timesteps, callbacks)?;
        }
        Model::Reinforce(m) => {
            *m.logger_mut() = logger;
            m.learn(Budget::Timesteps(spec.total_timesteps), callbacks)?;
        }
        Model::Dqn(m) => {
            *m.logger_mut() = logger;
            m.learn(spec.total_timesteps, callbacks)?;
        }
        Model::Sac(m) => {
            *m.logger_mut() = logger;
            m.learn(spec.total_timesteps, callbacks)?;
        }
        Model::Td3(m) => {
            *m.logger_mut() = logger;
            m.learn(spec.total_timesteps, callbacks)?;
        }
    }
    Ok(Trained {
        model,
        start_timesteps,
        wall_s: start.elapsed().as_secs_f64(),
    })
}

/// rl-zoo's TensorBoard folder, `root/<env>/<ALGO>_<n>`: the next `n` for a new run, the
/// latest for a resumed one (SB3's `reset_num_timesteps=False`).
fn tensorboard_dir(root: &Path, spec: &Spec, resumed: bool) -> PathBuf {
    let base = root.join(&spec.env);
    let name = spec.algo.to_string().to_uppercase();
    let latest = latest_run_id(&base, &name);
    let n = if resumed && latest > 0 {
        latest
    } else {
        latest + 1
    };
    base.join(format!("{name}_{n}"))
}

fn main() -> ExitCode {
    cli::init();
    let cli: Cli = cli::parse_args();
    // Before Candle is touched: it reads the variable once, and without it re-reads
    // /proc/cpuinfo on every matmul.
    match cli.threads {
        Some(0) => {
            errln!("error: --threads must be at least 1");
            return ExitCode::FAILURE;
        }
        Some(n) => std::env::set_var("RAYON_NUM_THREADS", n.to_string()),
        None if std::env::var_os("RAYON_NUM_THREADS").is_none() => {
            std::env::set_var("RAYON_NUM_THREADS", "1")
        }
        None => {}
    }
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            errln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> Result<(), BoxError> {
    let saved = cli.resume.as_deref().map(RunInfo::load).transpose()?;
    let spec = resolve(cli, saved.as_ref())?;
    std::fs::create_dir_all(&spec.out)
        .map_err(|e| format!("cannot create {}: {e}", spec.out.display()))?;
    let verbose = !cli.quiet;
    let prior_evals = saved.as_ref().map(|s| s.evals.clone()).unwrap_or_default();
    let resumed_at = saved.as_ref().map_or(0, |s| s.num_timesteps);
    let threshold_text = spec.threshold.map_or("none".to_string(), |t| t.to_string());
    outln!(
        "{} {} on {} | seed {} | {} env(s) | budget {} steps | eval every {} steps ({} episodes) | \
         reward threshold {threshold_text} | output {}",
        if saved.is_some() { "Resuming" } else { "Training" },
        spec.algo,
        spec.env,
        spec.seed,
        spec.n_envs,
        spec.total_timesteps,
        cli.eval_freq,
        cli.eval_episodes,
        spec.out.display()
    );
    if !matches!(spec.hyper, Hyper::Reinforce) {
        let source = spec.hyperparams_file.as_ref().map_or_else(
            || format!("the shipped hyperparams/{}.yml", spec.algo),
            |p| p.display().to_string(),
        );
        let overrides = if spec.hyperparams.is_empty() {
            String::new()
        } else {
            format!(" with {}", spec.hyperparams.join(" "))
        };
        let note = match &spec.normalize {
            Some(c) => format!(
                " (VecNormalize: norm_obs={}, norm_reward={}, gamma={}, clip_obs={}, \
                 clip_reward={})",
                c.norm_obs, c.norm_reward, c.gamma, c.clip_obs, c.clip_reward
            ),
            None => String::new(),
        };
        outln!(
            "Hyperparameters: {} from {source}{overrides}{note}",
            spec.env
        );
    }
    let save = cli.save.clone().map(|dir| {
        let info = RunInfo {
            format: RUN_FORMAT.into(),
            algo: spec.algo,
            env: spec.env.clone(),
            seed: spec.seed,
            n_envs: spec.n_envs,
            total_timesteps: spec.total_timesteps,
            num_timesteps: resumed_at,
            evals: prior_evals.clone(),
            env_kwargs: spec.env_kwargs_texts(),
            hyperparams_file: spec.hyperparams_file.clone(),
            hyperparams: spec.hyperparams.clone(),
        };
        (dir, info)
    });
    let after_eval = AfterEval {
        threshold: spec.threshold,
        needed: cli.solved_evals,
        streak: 0,
        verbose,
        save: save.clone(),
    };
    // EvalCallback counts calls of on_step, i.e. vector steps of n_envs environment steps.
    let eval_calls = (cli.eval_freq / spec.n_envs as u64).max(1);
    let mut eval = EvalCallback::new(spec.make_env()?, eval_calls)?
        .with_n_eval_episodes(cli.eval_episodes)?
        .with_seed(Some(spec.seed + EVAL_SEED_OFFSET))
        .with_verbose(verbose)
        .with_callback_after_eval(after_eval);
    let mut progress = if verbose {
        ProgressBarCallback::new()
    } else {
        ProgressBarCallback::hidden()
    };

    let trained = train(
        &spec,
        cli,
        cli.resume.as_deref(),
        &mut [&mut progress, &mut eval],
    )?;

    let mut evals = prior_evals;
    evals.extend(eval.history().iter().map(|r| EvalPoint {
        timesteps: r.timesteps,
        mean: r.result.mean,
        std: r.result.std,
    }));
    let num_timesteps = trained.model.algorithm().num_timesteps();
    if let Some((dir, mut info)) = save {
        info.num_timesteps = num_timesteps;
        info.evals = evals.clone();
        info.save(&dir, trained.model.algorithm())?;
        outln!(
            "Checkpoint: {} (continue with --resume {})",
            dir.join(CHECKPOINT_FILE).display(),
            dir.display()
        );
    }
    // The training statistics, frozen: the final evaluation and the saved model use them.
    let normalization = trained.model.algorithm().normalization();
    let policy = trained.model.into_policy();

    let mut final_env = spec.make_env()?;
    final_env.reset(Some(spec.seed + FINAL_EVAL_SEED_OFFSET))?;
    let mut rng = StdRng::seed_from_u64(spec.seed + FINAL_EVAL_SEED_OFFSET);
    let normalized = normalization
        .clone()
        .map(|stats| NormalizedPolicy::new(policy.policy(), stats));
    let final_eval = evaluate_policy(
        match &normalized {
            Some(p) => p as &dyn Policy,
            None => policy.policy(),
        },
        &mut final_env,
        cli.eval_episodes,
        true,
        &mut rng,
    )?;
    let solved = spec.threshold.map(|t| final_eval.mean >= t);
    // Training may have stopped on its own evaluations; this one plays other episodes.
    let stopped_solved = spec.threshold.is_some_and(|t| {
        let needed = cli.solved_evals as usize;
        needed > 0
            && eval.history().len() >= needed
            && eval.history()[eval.history().len() - needed..]
                .iter()
                .all(|r| r.result.mean >= t)
    });
    let fps = (num_timesteps - trained.start_timesteps) as f64 / trained.wall_s.max(1e-9);
    outln!(
        "Final evaluation ({} episodes, deterministic): {:.2} +/- {:.2}{}",
        cli.eval_episodes,
        final_eval.mean,
        final_eval.std,
        match (solved, spec.threshold) {
            (Some(true), Some(t)) => format!(" — solved (threshold {t})"),
            (Some(false), Some(t)) if stopped_solved => format!(
                " — below the threshold {t} on these episodes (seed {}), though the last {} \
                 evaluation(s) during training (seed {}) reached it",
                spec.seed + FINAL_EVAL_SEED_OFFSET,
                cli.solved_evals,
                spec.seed + EVAL_SEED_OFFSET
            ),
            (Some(false), Some(t)) => format!(" — not solved (threshold {t})"),
            _ => String::new(),
        }
    );
    outln!(
        "Trained {} steps in {:.1} s ({fps:.0} steps/s)",
        num_timesteps - trained.start_timesteps,
        trained.wall_s
    );

    let context = TrainingContext {
        env_id: Some(spec.env.clone()),
        env_kwargs: spec.env_kwargs_texts(),
        normalization,
    };
    write_outputs(&spec, &policy, &context, &evals)?;
    if let Some(path) = &cli.json_out {
        let summary = serde_json::json!({
            "algo": spec.algo,
            "env": spec.env,
            "seed": spec.seed,
            "n_envs": spec.n_envs,
            "total_timesteps": num_timesteps,
            "budget_timesteps": spec.total_timesteps,
            "wall_s": trained.wall_s,
            "fps": fps,
            "evals": evals,
            "final_mean": final_eval.mean,
            "final_std": final_eval.std,
            "solved": solved,
        });
        let text = serde_json::to_string_pretty(&summary)?;
        std::fs::write(path, text + "\n")
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        outln!("Summary: {}", path.display());
    }
    Ok(())
}

/// `learning_curve.csv`, `learning_curve.svg` and `model/` in the output directory.
fn write_outputs(
    spec: &Spec,
    policy: &FinalPolicy,
    context: &TrainingContext,
    evals: &[EvalPoint],
) -> Result<(), BoxError> {
    let write = |name: &str, text: String| -> Result<(), BoxError> {
        let path = spec.out.join(name);
        std::fs::write(&path, text)
            .map_err(|e| format!("cannot write {}: {e}", path.display()).into())
    };
    let mut csv = String::from("timesteps,mean,std\n");
    for e in evals {
        csv.push_str(&format!("{},{},{}\n", e.timesteps, e.mean, e.std));
    }
    write("learning_curve.csv", csv)?;
    let points: Vec<CurvePoint> = evals
        .iter()
        .map(|e| CurvePoint {
            timesteps: e.timesteps,
            mean: e.mean,
            std: e.std,
        })
        .collect();
    let title = format!(
        "{} on {} (seed {})",
        spec.algo.to_string().to_uppercase(),
        spec.env,
        spec.seed
    );
    write(
        "learning_curve.svg",
        plot::learning_curve_svg(&title, &points, spec.threshold),
    )?;
    let model_dir = spec.out.join("model");
    policy.save(&model_dir, context)?;
    outln!(
        "Wrote {0}/learning_curve.csv, {0}/learning_curve.svg, {0}/progress.csv and the policy in {1}",
        spec.out.display(),
        model_dir.display()
    );
    Ok(())
}
