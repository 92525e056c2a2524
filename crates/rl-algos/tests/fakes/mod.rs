//! Test doubles shared by the REINFORCE, callback and evaluation tests: fixed policies, a
//! scripted environment and a fake `Algorithm`.
#![allow(dead_code)]

use candle_core::{Device, Tensor, Var};
use rl_algos::Algorithm;
use rl_env::{Action, Env, EnvError, EpisodeStats, Info, Seed, Space, StepOutcome};
use rl_policy::{ActionDist, Categorical, DiagGaussian, Policy, StochasticPolicy};
use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};

/// A policy with the same action distribution for every observation.
pub enum FixedPolicy {
    /// Categorical over these logits.
    Logits(Vec<f32>),
    /// Gaussian with this mean and log-std.
    Gaussian { mean: Vec<f32>, log_std: Vec<f32> },
}

impl StochasticPolicy for FixedPolicy {
    fn action_dist(&self, obs: &Tensor) -> rl_policy::Result<ActionDist> {
        let b = obs.dim(0)?;
        let dev = &Device::Cpu;
        Ok(match self {
            FixedPolicy::Logits(l) => {
                let t = Tensor::from_slice(l, (1, l.len()), dev)?
                    .broadcast_as((b, l.len()))?
                    .contiguous()?;
                ActionDist::Categorical(Categorical::from_logits(&t)?)
            }
            FixedPolicy::Gaussian { mean, log_std } => {
                let m = Tensor::from_slice(mean, (1, mean.len()), dev)?
                    .broadcast_as((b, mean.len()))?
                    .contiguous()?;
                let s = Tensor::from_slice(log_std, log_std.len(), dev)?;
                ActionDist::DiagGaussian(DiagGaussian::new(m, s)?)
            }
        })
    }

    fn trainable_vars(&self) -> Vec<(String, Var)> {
        Vec::new()
    }

    fn device(&self) -> &Device {
        &Device::Cpu
    }
}

/// An environment whose episodes have scripted lengths (cycled), reward `reward` per step,
/// observation `[step, episode]`, and that records the actions it receives. Errors on actions
/// outside its space, like real environments.
pub struct ScriptedEnv {
    pub lengths: Vec<u64>,
    pub reward: f64,
    pub action_space: Space,
    pub observation_space: Space,
    /// When set, the last step of an episode carries these statistics in `info.episode`.
    pub episode_info: Option<EpisodeStats>,
    pub episode: usize,
    pub step: u64,
    pub needs_reset: bool,
    pub discrete_actions: Vec<i64>,
    pub continuous_actions: Vec<Vec<f32>>,
    pub seeds: Vec<Option<Vec<u32>>>,
}

impl ScriptedEnv {
    pub fn new(lengths: Vec<u64>, action_space: Space) -> Self {
        ScriptedEnv {
            lengths,
            reward: 1.0,
            action_space,
            observation_space: Space::boxed(vec![-1e9; 2], vec![1e9; 2], vec![2]).unwrap(),
            episode_info: None,
            episode: 0,
            step: 0,
            needs_reset: true,
            discrete_actions: Vec::new(),
            continuous_actions: Vec::new(),
            seeds: Vec::new(),
        }
    }
}

impl Env for ScriptedEnv {
    fn observation_space(&self) -> &Space {
        &self.observation_space
    }

    fn action_space(&self) -> &Space {
        &self.action_space
    }

    fn reset_into(&mut self, seed: Option<&Seed>, obs: &mut [f32]) -> rl_env::Result<Info> {
        if !self.needs_reset || self.step > 0 {
            self.episode += 1;
        }
        self.seeds.push(seed.map(|s| s.words().to_vec()));
        self.step = 0;
        self.needs_reset = false;
        obs.copy_from_slice(&[0.0, self.episode as f32]);
        Ok(Info::default())
    }

    fn step_into(&mut self, action: Action<'_>, obs: &mut [f32]) -> rl_env::Result<StepOutcome> {
        if self.needs_reset {
            return Err(EnvError::NeedsReset("ScriptedEnv step"));
        }
        self.action_space.check_action(action)?;
        match action {
            Action::Discrete(a) => self.discrete_actions.push(a),
            Action::Continuous(a) => self.continuous_actions.push(a.to_vec()),
        }
        self.step += 1;
        let len = self.lengths[self.episode % self.lengths.len()];
        let done = self.step >= len;
        obs.copy_from_slice(&[self.step as f32, self.episode as f32]);
        let mut info = Info::default();
        if done {
            self.needs_reset = true;
            info.episode = self.episode_info;
        }
        Ok(StepOutcome {
            reward: self.reward,
            terminated: done,
            truncated: false,
            info,
        })
    }
}

/// An `Algorithm` whose counters the test sets, recording the checkpoints asked of it.
pub struct FakeAlgo {
    pub policy: FixedPolicy,
    pub steps: Cell<u64>,
    pub saved: RefCell<Vec<PathBuf>>,
}

impl FakeAlgo {
    pub fn new(policy: FixedPolicy) -> Self {
        FakeAlgo {
            policy,
            steps: Cell::new(0),
            saved: RefCell::new(Vec::new()),
        }
    }
}

impl Algorithm for FakeAlgo {
    fn policy(&self) -> &dyn Policy {
        &self.policy
    }

    fn num_timesteps(&self) -> u64 {
        self.steps.get()
    }

    fn save_checkpoint(&self, path: &Path) -> rl_algos::Result<()> {
        std::fs::write(path, b"fake checkpoint").map_err(|source| rl_algos::AlgoError::Io {
            path: path.display().to_string(),
            source,
        })?;
        self.saved.borrow_mut().push(path.to_path_buf());
        Ok(())
    }
}

/// A fresh, empty directory under the system's temporary directory.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rl-algos-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
