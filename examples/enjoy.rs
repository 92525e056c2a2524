//! Watch a trained policy play: loads a model saved by `MlpPolicy::save`, `QNetwork::save` or
//! SAC/TD3/DDPG's `save_policy` (a directory, e.g. `train`'s `model/`) or a Stable-Baselines3
//! model zip (A2C/PPO, DQN, SAC, TD3 or DDPG `MlpPolicy`; a Q-network plays greedily, SAC
//! `tanh` of its mean, TD3/DDPG their actor, each mapped onto the Box's bounds), runs
//! evaluation episodes printing each
//! return, and with `--gif` records the first episode as an animated GIF at the environment's
//! render rate, with Gymnasium's `rgb_array` pictures (CartPole-v1 at 50 fps; Acrobot-v1,
//! MountainCar-v0 and MountainCarContinuous-v0 render too, Pendulum-v1 does not).
//!
//! ```text
//! cargo run --release --example enjoy -- --model tests/golden/sb3/a2c_cartpole.zip \
//!     [--env CartPole-v1] [--episodes 5] [--seed 0] [--gif /tmp/cartpole.gif] [--stochastic] \
//!     [--env-kwargs key:value ...]
//! ```
//!
//! `--env-kwargs` passes keyword arguments to the environment as `gymnasium.make(id, **kwargs)`
//! does (the same syntax as `train`'s).

#[macro_use]
#[path = "common/cli.rs"]
mod cli;

use candle_core::Device;
use clap::Parser;
use rand::rngs::StdRng;
use rand::SeedableRng;
use rl_env::classic_control::{Acrobot, CartPole, MountainCar, MountainCarContinuous};
use rl_env::render::{Frame, Render, Rgb};
use rl_env::wrappers::TimeLimit;
use rl_env::{registry, Env, EnvKwargs, EnvSpec, KwargReader, KwargValue, Seed, Space};
use rl_policy::context::load_context;
use rl_policy::{GreedyQPolicy, NormalizedPolicy, Policy, SavedModel};
use rl_tensor_bridge::ActionBuffer;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// GIFs hold the first episode only, and at most this many frames (10 s at 50 fps).
const MAX_GIF_FRAMES: usize = 500;

type BoxError = Box<dyn std::error::Error>;

/// Play a saved policy in a Gymnasium environment.
#[derive(Parser, Debug)]
#[command(name = "enjoy")]
struct Args {
    /// The model: a directory written by `MlpPolicy::save`, `QNetwork::save` or `save_policy`
    /// (SAC, TD3, DDPG), or an SB3 model `.zip` (A2C, PPO, DQN, SAC, TD3, DDPG).
    #[arg(long)]
    model: PathBuf,
    /// Environment id [default: the env the model was trained on, which `train` saves with
    /// it; CartPole-v1 for models that do not say, such as SB3 zips].
    #[arg(long)]
    env: Option<String>,
    /// Number of episodes.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    episodes: u32,
    /// Seed of the first reset (later resets continue its generator, as in Gymnasium) and of
    /// the action sampling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Record the first episode into this GIF file.
    #[arg(long)]
    gif: Option<PathBuf>,
    /// Sample actions from the policy instead of taking the most likely one (Q-networks
    /// always act greedily, TD3/DDPG actors deterministically).
    #[arg(long)]
    stochastic: bool,
    /// Keyword arguments of the environment, as `key:value` (values read as Python literals),
    /// e.g. `--env-kwargs g:9.81` [default: those the model was trained with, when it plays
    /// that env].
    #[arg(long, num_args = 1.., value_name = "KEY:VALUE", value_parser = cli::env_kwarg)]
    env_kwargs: Vec<(String, KwargValue)>,
}

fn main() -> ExitCode {
    cli::init();
    // Candle re-reads the CPU topology on every matmul unless this is set.
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        std::env::set_var("RAYON_NUM_THREADS", "1");
    }
    let args = cli::parse_args::<Args>();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            errln!("enjoy: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), BoxError> {
    let device = Device::Cpu;
    let model = load_model(&args.model, &device)?;
    let context = load_context(&args.model)?;
    let env_id = args
        .env
        .clone()
        .or_else(|| context.env_id.clone())
        .unwrap_or_else(|| "CartPole-v1".to_string());
    // The training kwargs apply to the training env, unless the command line gives its own.
    let kwargs = if args.env_kwargs.is_empty() && context.env_id.as_deref() == Some(&env_id) {
        cli::env_kwargs_from_texts(&context.env_kwargs)
            .map_err(|e| format!("the model's saved env_kwargs: {e}"))?
    } else {
        cli::env_kwargs(&args.env_kwargs)
    };
    if args.env.is_none() && context.env_id.is_some() {
        let with = if kwargs.is_empty() {
            String::new()
        } else {
            format!(" with {kwargs}")
        };
        outln!("playing {env_id}{with}, the env the model was trained on");
    }
    let mut env = Playground::make(&env_id, &kwargs)?;
    check_spaces(&model, env.env(), &env_id)?;
    let policy: Box<dyn Policy> = match model {
        SavedModel::MlpPolicy(p) => Box::new(p),
        SavedModel::QNetwork(q) => Box::new(GreedyQPolicy::new(q)),
        SavedModel::Sac(m) => Box::new(m.into_policy()?),
        SavedModel::Td3(m) => Box::new(m.into_policy()?),
        other => return Err(format!("enjoy cannot play a {}", other.kind()).into()),
    };
    // A model trained under VecNormalize acts on observations normalized with its saved
    // statistics, frozen (rl-zoo's enjoy loads vecnormalize.pkl with training=False).
    let policy: Box<dyn Policy> = match context.normalization {
        Some(stats) => {
            outln!("normalizing observations with the model's saved VecNormalize statistics");
            Box::new(NormalizedPolicy::new(policy, stats))
        }
        None => policy,
    };
    let mut recorder = match &args.gif {
        Some(path) => {
            let renderer = env.renderer().ok_or_else(|| {
                format!(
                    "--gif: {} has no renderer (renderable: CartPole-v1, Acrobot-v1, \
                     MountainCar-v0, MountainCarContinuous-v0)",
                    env_id
                )
            })?;
            Some(GifRecorder::create(path, renderer)?)
        }
        None => None,
    };

    let obs_dim = env.env().observation_space().flat_dim();
    let mut obs = vec![0.0f32; obs_dim];
    let mut actions = ActionBuffer::single(env.env().action_space());
    let mut rng = StdRng::seed_from_u64(args.seed);
    let mut frame = Frame::default();
    let mut returns = Vec::new();
    for episode in 0..args.episodes {
        let seed = (episode == 0).then(|| Seed::from(args.seed));
        env.env_mut().reset_into(seed.as_ref(), &mut obs)?;
        let mut rec = recorder.as_mut().filter(|_| episode == 0);
        if let (Some(rec), Some(renderer)) = (rec.as_deref_mut(), env.renderer()) {
            rec.capture(renderer, &mut frame)?;
        }
        let (mut ret, mut len) = (0.0, 0u64);
        loop {
            // SB3's `predict`: Box actions are clipped into the bounds.
            policy.predict_into(&obs, !args.stochastic, &mut rng, &mut actions)?;
            let action = actions.action(0).ok_or("the policy returned no action")?;
            let out = env.env_mut().step_into(action, &mut obs)?;
            ret += out.reward;
            len += 1;
            if let (Some(rec), Some(renderer)) = (rec.as_deref_mut(), env.renderer()) {
                rec.capture(renderer, &mut frame)?;
            }
            if out.terminated || out.truncated {
                break;
            }
        }
        outln!("episode {episode:>3}: return {ret:>8.2}  length {len:>5}");
        returns.push(ret);
    }
    let n = returns.len() as f64;
    let mean = returns.iter().sum::<f64>() / n;
    let std = (returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / n).sqrt();
    outln!("mean return over {n} episodes: {mean:.2} +/- {std:.2}");
    if let (Some(rec), Some(path)) = (recorder, &args.gif) {
        let frames = rec.finish()?;
        outln!("wrote {frames} frames of episode 0 to {}", path.display());
    }
    Ok(())
}

/// A saved model (directory or its file) or an SB3 zip, whichever kind it holds.
fn load_model(path: &Path, device: &Device) -> Result<SavedModel, BoxError> {
    if path.exists() {
        Ok(SavedModel::open(path, device)?)
    } else {
        Err(format!("--model {}: no such file or directory", path.display()).into())
    }
}

/// The model must read the environment's observations and emit its kind of action.
fn check_spaces(policy: &SavedModel, env: &dyn Env, id: &str) -> Result<(), BoxError> {
    let (p_obs, e_obs) = (policy.observation_space(), env.observation_space());
    if p_obs.flat_dim() != e_obs.flat_dim() {
        return Err(format!("the model reads observations {p_obs} but {id} gives {e_obs}").into());
    }
    let (p_act, e_act) = (policy.action_space(), env.action_space());
    let same_kind = match (p_act, e_act) {
        (Space::Discrete { n: a, .. }, Space::Discrete { n: b, .. }) => a == b,
        (Space::Box(a), Space::Box(b)) => a.flat_dim() == b.flat_dim(),
        _ => false,
    };
    if !same_kind {
        return Err(format!("the model acts in {p_act} but {id} takes actions in {e_act}").into());
    }
    Ok(())
}

/// Both an environment and a renderer.
trait RenderedEnv: Env + Render {}
impl<T: Env + Render> RenderedEnv for T {}

/// The environment: concrete (with its renderer) where one exists, else from the registry.
enum Playground {
    Rendered(Box<dyn RenderedEnv>),
    Plain(Box<dyn Env>),
}

impl Playground {
    fn make(id: &str, kwargs: &EnvKwargs) -> Result<Self, BoxError> {
        let spec = EnvSpec {
            kwargs: kwargs.clone(),
            ..EnvSpec::default()
        };
        // The registry checks every keyword (an unknown one is an error naming it) ...
        let plain = rl_env::make_with(id, &spec)?;
        // ... and the concrete environments below read the ones they take.
        let mut r = KwargReader::new(id, kwargs);
        let limit = match r.get_int("max_episode_steps")? {
            Some(n) => Some(n.unsigned_abs()),
            None => registry::max_episode_steps(id)?,
        };
        // The registry's `TimeLimit` over the concrete environment, so it keeps its renderer.
        fn rendered<E: Env + Render + 'static>(
            env: E,
            limit: Option<u64>,
        ) -> Result<Playground, BoxError> {
            Ok(Playground::Rendered(match limit {
                Some(limit) => Box::new(TimeLimit::new(env, limit)?),
                None => Box::new(env),
            }))
        }
        match id {
            "CartPole-v1" => {
                let sutton_barto = r.get_bool("sutton_barto_reward")?.unwrap_or(false);
                rendered(
                    CartPole::new().with_sutton_barto_reward(sutton_barto),
                    limit,
                )
            }
            "Acrobot-v1" => rendered(Acrobot::new(), limit),
            "MountainCar-v0" => match r.get_float("goal_velocity")? {
                Some(v) => rendered(MountainCar::new().with_goal_velocity(v)?, limit),
                None => rendered(MountainCar::new(), limit),
            },
            "MountainCarContinuous-v0" => match r.get_float("goal_velocity")? {
                Some(v) => rendered(MountainCarContinuous::new().with_goal_velocity(v)?, limit),
                None => rendered(MountainCarContinuous::new(), limit),
            },
            _ => Ok(Playground::Plain(plain)),
        }
    }

    fn env(&self) -> &dyn Env {
        match self {
            Playground::Rendered(e) => e.as_ref(),
            Playground::Plain(e) => e.as_ref(),
        }
    }

    fn env_mut(&mut self) -> &mut dyn Env {
        match self {
            Playground::Rendered(e) => e.as_mut(),
            Playground::Plain(e) => e.as_mut(),
        }
    }

    fn renderer(&self) -> Option<&dyn Render> {
        match self {
            Playground::Rendered(e) => Some(e.as_ref()),
            Playground::Plain(_) => None,
        }
    }
}

/// Writes rendered frames into an animated GIF over the renderer's fixed palette. Each frame
/// after the first stores only the rectangle that changed, which keeps files small.
struct GifRecorder {
    encoder: gif::Encoder<BufWriter<File>>,
    palette: &'static [Rgb],
    width: u16,
    height: u16,
    delay_cs: u16,
    frames: usize,
    indices: Vec<u8>,
    previous: Vec<u8>,
    patch: Vec<u8>,
}

impl GifRecorder {
    fn create(path: &Path, renderer: &dyn Render) -> Result<Self, BoxError> {
        let (w, h) = renderer.render_size();
        let too_big = || format!("{w} x {h} frames do not fit a GIF");
        if w == 0 || h == 0 {
            return Err(too_big().into());
        }
        let (width, height) = (
            u16::try_from(w).map_err(|_| too_big())?,
            u16::try_from(h).map_err(|_| too_big())?,
        );
        let palette = renderer.palette();
        if palette.is_empty() || palette.len() > 256 {
            return Err(format!(
                "a renderer palette of {} colors does not fit a GIF",
                palette.len()
            )
            .into());
        }
        let file = File::create(path).map_err(|e| format!("--gif {}: {e}", path.display()))?;
        let flat: Vec<u8> = palette.iter().flatten().copied().collect();
        let mut encoder = gif::Encoder::new(BufWriter::new(file), width, height, &flat)?;
        encoder.set_repeat(gif::Repeat::Infinite)?;
        Ok(GifRecorder {
            encoder,
            palette,
            width,
            height,
            delay_cs: (100 / renderer.render_fps().max(1)).clamp(1, u16::MAX as u32) as u16,
            frames: 0,
            indices: Vec::new(),
            previous: Vec::new(),
            patch: Vec::new(),
        })
    }

    /// Renders the current state and appends it, until [`MAX_GIF_FRAMES`].
    fn capture(&mut self, renderer: &dyn Render, frame: &mut Frame) -> Result<(), BoxError> {
        if self.frames >= MAX_GIF_FRAMES {
            return Ok(());
        }
        renderer.render_rgb(frame)?;
        if (frame.width(), frame.height()) != (self.width as usize, self.height as usize) {
            return Err("the renderer changed its frame size mid-episode".into());
        }
        self.quantize(frame);
        let (left, top, right, bottom) = self.changed_rect();
        let stride = self.width as usize;
        self.patch.clear();
        for y in top..=bottom {
            self.patch
                .extend_from_slice(&self.indices[y * stride + left..=y * stride + right]);
        }
        let gif_frame = gif::Frame {
            delay: self.delay_cs,
            left: left as u16,
            top: top as u16,
            width: (right - left + 1) as u16,
            height: (bottom - top + 1) as u16,
            buffer: std::borrow::Cow::Borrowed(&self.patch),
            ..gif::Frame::default()
        };
        self.encoder.write_frame(&gif_frame)?;
        std::mem::swap(&mut self.indices, &mut self.previous);
        self.frames += 1;
        Ok(())
    }

    /// Maps every pixel to its palette index (the nearest color, should a renderer draw one
    /// outside its palette).
    fn quantize(&mut self, frame: &Frame) {
        let palette = self.palette;
        let nearest = |px: &[u8]| -> u8 {
            let dist = |c: &Rgb| {
                (0..3)
                    .map(|i| (px[i] as i32 - c[i] as i32).pow(2))
                    .sum::<i32>()
            };
            (0..palette.len())
                .min_by_key(|&i| dist(&palette[i]))
                .unwrap_or(0) as u8
        };
        let mut last: Option<(&[u8], u8)> = None;
        self.indices.clear();
        for px in frame.data().chunks_exact(3) {
            // Long runs of one color make the previous pixel's answer right most of the time.
            let index = match last {
                Some((color, index)) if color == px => index,
                _ => nearest(px),
            };
            last = Some((px, index));
            self.indices.push(index);
        }
    }

    /// The smallest rectangle (inclusive `left, top, right, bottom`) holding every pixel that
    /// differs from the previous frame: the whole frame first, one pixel when nothing changed.
    fn changed_rect(&self) -> (usize, usize, usize, usize) {
        let (w, h) = (self.width as usize, self.height as usize);
        if self.previous.len() != self.indices.len() {
            return (0, 0, w - 1, h - 1);
        }
        let (mut left, mut top, mut right, mut bottom) = (w, h, 0, 0);
        for y in 0..h {
            let (now, before) = (
                &self.indices[y * w..(y + 1) * w],
                &self.previous[y * w..(y + 1) * w],
            );
            if let Some(first) = now.iter().zip(before).position(|(a, b)| a != b) {
                let last = w
                    - 1
                    - now
                        .iter()
                        .rev()
                        .zip(before.iter().rev())
                        .position(|(a, b)| a != b)
                        .unwrap_or(0);
                left = left.min(first);
                right = right.max(last);
                top = top.min(y);
                bottom = y;
            }
        }
        if top == h {
            (0, 0, 0, 0)
        } else {
            (left, top, right, bottom)
        }
    }

    /// Writes the GIF trailer; returns the number of frames.
    fn finish(self) -> Result<usize, BoxError> {
        self.encoder.into_inner()?.flush()?;
        Ok(self.frames)
    }
}
