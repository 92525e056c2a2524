//! The wrappers on real and test environments: episode statistics, normalization, clipping,
//! composition and bad input.

use rl_env::wrappers::{
    ClipAction, NormalizeObservation, NormalizeReward, RecordEpisodeStatistics, RunningMeanStd,
    TimeLimit,
};
use rl_env::{make, Action, BoxSpace, Env, EnvError, Info, Seed, Space, StepOutcome};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Counts the allocations of the current thread, to check that stepping allocates nothing.
struct CountingAlloc;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; the counter is a const-initialized thread local
// without destructor, so touching it never allocates.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

fn allocations() -> u64 {
    ALLOCATIONS.with(|c| c.get())
}

/// A Box-action environment that records the action it receives. Observation = that action;
/// reward = its first component; episodes never end on their own.
struct Recorder {
    obs_space: Space,
    act_space: Space,
    last: Vec<f32>,
}

impl Recorder {
    fn new() -> Self {
        Recorder {
            obs_space: Space::Box(BoxSpace::uniform(-10.0, 10.0, vec![2]).unwrap()),
            act_space: Space::boxed(vec![-1.0, 0.0], vec![1.0, 2.0], vec![2]).unwrap(),
            last: vec![f32::NAN; 2],
        }
    }
}

impl Env for Recorder {
    fn observation_space(&self) -> &Space {
        &self.obs_space
    }

    fn action_space(&self) -> &Space {
        &self.act_space
    }

    fn reset_into(&mut self, _seed: Option<&Seed>, obs: &mut [f32]) -> rl_env::Result<Info> {
        obs.fill(0.0);
        Ok(Info::default())
    }

    fn step_into(&mut self, action: Action<'_>, obs: &mut [f32]) -> rl_env::Result<StepOutcome> {
        self.act_space.check_action(action)?;
        let Action::Continuous(x) = action else {
            unreachable!("check_action accepted a discrete action for a Box space")
        };
        self.last.copy_from_slice(x);
        obs.copy_from_slice(x);
        Ok(StepOutcome {
            reward: f64::from(x[0]),
            ..Default::default()
        })
    }
}

/// Runs one CartPole episode with alternating actions; returns (rewards seen, final outcome).
fn run_episode(env: &mut impl Env, seed: u64) -> (Vec<f64>, StepOutcome) {
    let mut obs = vec![0.0f32; env.observation_space().flat_dim()];
    env.reset_into(Some(&Seed::from(seed)), &mut obs).unwrap();
    let mut rewards = Vec::new();
    for t in 0.. {
        let out = env.step_into(Action::Discrete(t % 2), &mut obs).unwrap();
        rewards.push(out.reward);
        if out.done() {
            return (rewards, out);
        }
    }
    unreachable!()
}

#[test]
fn episode_stats_of_cartpole_are_the_sum_and_count_of_its_rewards() {
    let mut env = RecordEpisodeStatistics::new(make("CartPole-v1").unwrap());
    let mut totals = Vec::new();
    for seed in 0..3 {
        // The same episode without the wrapper.
        let (plain, _) = run_episode(&mut make("CartPole-v1").unwrap(), seed);
        let (rewards, last) = run_episode(&mut env, seed);
        assert_eq!(rewards, plain);
        let stats = last
            .info
            .episode
            .expect("the last step carries the statistics");
        assert_eq!(stats.r#return, rewards.iter().sum::<f64>());
        assert_eq!(stats.length, rewards.len() as u64);
        totals.push(rewards.len() as u64);
    }
    assert_eq!(env.episode_count(), 3);
    assert_eq!(env.total_steps(), totals.iter().sum::<u64>());
    assert_eq!(env.episode_lengths().collect::<Vec<_>>(), totals);
}

#[test]
fn truncation_also_ends_a_recorded_episode() {
    let limited = TimeLimit::new(make("CartPole-v1").unwrap(), 3).unwrap();
    let mut env = RecordEpisodeStatistics::new(limited);
    let (rewards, last) = run_episode(&mut env, 42);
    assert!(last.truncated);
    assert_eq!(rewards.len(), 3);
    assert_eq!(last.info.episode.unwrap().length, 3);
}

#[test]
fn wrapper_order_decides_whether_raw_or_normalized_returns_are_recorded() {
    // Inside the normalization: raw rewards, CartPole's 1 per step.
    let mut raw = NormalizeReward::new(RecordEpisodeStatistics::new(make("CartPole-v1").unwrap()));
    let (scaled, last) = run_episode(&mut raw, 7);
    let stats = last.info.episode.unwrap();
    assert_eq!(stats.r#return, scaled.len() as f64);
    assert!(scaled.iter().any(|r| *r != 1.0));

    // Outside it: the sum of the rewards it was handed, which are the scaled ones.
    let mut normed =
        RecordEpisodeStatistics::new(NormalizeReward::new(make("CartPole-v1").unwrap()));
    let (scaled2, last) = run_episode(&mut normed, 7);
    assert_eq!(
        scaled2, scaled,
        "same seed, same statistics, same scaled rewards"
    );
    assert_eq!(
        last.info.episode.unwrap().r#return,
        scaled2.iter().sum::<f64>()
    );
    assert_ne!(last.info.episode.unwrap().r#return, stats.r#return);
}

#[test]
fn normalized_observations_follow_the_exposed_statistics() {
    let mut env = NormalizeObservation::new(make("CartPole-v1").unwrap()).unwrap();
    let mut raw_env = make("CartPole-v1").unwrap();
    let mut obs = [0.0f32; 4];
    let mut raw = [0.0f32; 4];
    let mut stats = RunningMeanStd::new(4);
    env.reset_into(Some(&Seed::from(3u64)), &mut obs).unwrap();
    raw_env
        .reset_into(Some(&Seed::from(3u64)), &mut raw)
        .unwrap();
    stats.update_one(&raw).unwrap();
    for t in 0..60 {
        let out = env.step_into(Action::Discrete(t % 2), &mut obs).unwrap();
        raw_env
            .step_into(Action::Discrete(t % 2), &mut raw)
            .unwrap();
        assert_eq!(env.raw_obs(), &raw);
        stats.update_one(&raw).unwrap();
        assert_eq!(env.obs_rms(), &stats);
        for j in 0..4 {
            let z = (f64::from(raw[j]) - stats.mean()[j]) / (stats.var()[j] + 1e-8).sqrt();
            assert_eq!(obs[j], z.clamp(-10.0, 10.0) as f32);
        }
        if out.done() {
            env.reset_into(None, &mut obs).unwrap();
            raw_env.reset_into(None, &mut raw).unwrap();
            stats.update_one(&raw).unwrap();
        }
    }
}

#[test]
fn saved_statistics_restore_into_a_fresh_wrapper() {
    let mut trained = NormalizeObservation::new(make("CartPole-v1").unwrap()).unwrap();
    run_episode(&mut trained, 1);
    let saved = RunningMeanStd::from_parts(
        trained.obs_rms().mean().to_vec(),
        trained.obs_rms().var().to_vec(),
        trained.obs_rms().count(),
    )
    .unwrap();
    let mut eval = NormalizeObservation::new(make("CartPole-v1").unwrap()).unwrap();
    eval.set_obs_rms(saved).unwrap();
    eval.set_training(false);
    trained.set_training(false);
    let (_, a) = run_episode(&mut trained, 9);
    let (_, b) = run_episode(&mut eval, 9);
    assert_eq!(a, b);
    assert_eq!(trained.obs_rms(), eval.obs_rms());
}

#[test]
fn full_stack_is_deterministic_and_finished_episodes_need_a_reset() {
    let build = || {
        NormalizeReward::new(
            NormalizeObservation::new(RecordEpisodeStatistics::new(
                TimeLimit::new(make("CartPole-v1").unwrap(), 20).unwrap(),
            ))
            .unwrap(),
        )
    };
    let (mut a, mut b) = (build(), build());
    for seed in [5, 6] {
        let (ra, la) = run_episode(&mut a, seed);
        let (rb, lb) = run_episode(&mut b, seed);
        assert_eq!(ra.iter().map(|r| r.to_bits()).collect::<Vec<_>>(), {
            rb.iter().map(|r| r.to_bits()).collect::<Vec<_>>()
        });
        // Everything but the wall-clock time agrees.
        assert_eq!(
            (la.reward, la.terminated, la.truncated),
            (lb.reward, lb.terminated, lb.truncated)
        );
        let (ea, eb) = (la.info.episode.unwrap(), lb.info.episode.unwrap());
        assert_eq!((ea.r#return, ea.length), (eb.r#return, eb.length));
    }
    let mut obs = [0.0f32; 4];
    let ret = a.discounted_return();
    let before = a.ret_rms().clone();
    assert!(matches!(
        a.step_into(Action::Discrete(0), &mut obs),
        Err(EnvError::NeedsReset(_))
    ));
    // A refused step changes no statistics.
    assert_eq!(a.ret_rms(), &before);
    assert_eq!(a.discounted_return(), ret);
    assert_eq!(
        a.inner().inner().total_steps(),
        b.inner().inner().total_steps()
    );
}

#[test]
fn clip_action_clips_finite_actions_and_rejects_bad_ones() {
    let mut env = ClipAction::new(Recorder::new()).unwrap();
    assert_eq!(
        env.action_space().to_string(),
        "Box(-inf, inf, [2], float32)"
    );
    assert_eq!(env.bounds().high(), &[1.0, 2.0]);
    let mut obs = [0.0f32; 2];
    env.reset_into(None, &mut obs).unwrap();

    let out = env
        .step_into(Action::Continuous(&[3.5, -0.5]), &mut obs)
        .unwrap();
    assert_eq!(env.inner().last, [1.0, 0.0]);
    assert_eq!(out.reward, 1.0);
    env.step_into(Action::Continuous(&[-0.25, 1.5]), &mut obs)
        .unwrap();
    assert_eq!(env.inner().last, [-0.25, 1.5]);

    // Errors name the problem and never reach the environment.
    assert!(matches!(
        env.step_into(Action::Continuous(&[f32::NAN, 0.0]), &mut obs),
        Err(EnvError::NonFiniteAction { index: 0, .. })
    ));
    assert!(matches!(
        env.step_into(Action::Continuous(&[0.0, f32::NEG_INFINITY]), &mut obs),
        Err(EnvError::NonFiniteAction { index: 1, .. })
    ));
    assert!(matches!(
        env.step_into(Action::Continuous(&[0.0]), &mut obs),
        Err(EnvError::ActionLength {
            expected: 2,
            actual: 1
        })
    ));
    assert!(matches!(
        env.step_into(Action::Discrete(0), &mut obs),
        Err(EnvError::ActionKind {
            given: "discrete",
            ..
        })
    ));
    assert_eq!(env.inner().last, [-0.25, 1.5]);

    // Without the wrapper the out-of-bounds action reaches the environment unclipped.
    let mut bare = Recorder::new();
    bare.step_into(Action::Continuous(&[3.5, -0.5]), &mut obs)
        .unwrap();
    assert_eq!(bare.last, [3.5, -0.5]);
}

#[test]
fn clip_action_refuses_discrete_spaces_and_composes() {
    assert!(matches!(
        ClipAction::new(make("CartPole-v1").unwrap()),
        Err(EnvError::InvalidArgument(_))
    ));
    let mut env = RecordEpisodeStatistics::new(
        TimeLimit::new(ClipAction::new(Recorder::new()).unwrap(), 2).unwrap(),
    );
    let mut obs = [0.0f32; 2];
    env.reset_into(None, &mut obs).unwrap();
    env.step_into(Action::Continuous(&[5.0, 5.0]), &mut obs)
        .unwrap();
    let last = env
        .step_into(Action::Continuous(&[-5.0, 5.0]), &mut obs)
        .unwrap();
    // Rewards are the clipped first components: 1 and -1.
    assert_eq!(last.info.episode.unwrap().r#return, 0.0);
    assert_eq!(obs, [-1.0, 2.0]);
}

#[test]
fn stepping_wrapped_environments_allocates_nothing() {
    let mut env = NormalizeReward::new(
        NormalizeObservation::new(
            RecordEpisodeStatistics::with_buffer_len(
                TimeLimit::new(make("CartPole-v1").unwrap(), 30).unwrap(),
                4,
            )
            .unwrap(),
        )
        .unwrap(),
    );
    let mut clipped = RecordEpisodeStatistics::new(
        TimeLimit::new(ClipAction::new(Recorder::new()).unwrap(), 7).unwrap(),
    );
    let mut obs = [0.0f32; 4];
    let mut obs2 = [0.0f32; 2];
    env.reset_into(Some(&Seed::from(0u64)), &mut obs).unwrap();
    clipped.reset_into(None, &mut obs2).unwrap();
    let before = allocations();
    let mut episodes = 0;
    for t in 0..2000i64 {
        if env
            .step_into(Action::Discrete(t % 2), &mut obs)
            .unwrap()
            .done()
        {
            env.reset_into(None, &mut obs).unwrap();
            episodes += 1;
        }
        let a = [t as f32 * 0.01 - 3.0, 1.0];
        if clipped
            .step_into(Action::Continuous(&a), &mut obs2)
            .unwrap()
            .done()
        {
            clipped.reset_into(None, &mut obs2).unwrap();
        }
    }
    assert_eq!(allocations(), before);
    // Many more episodes than the ring holds went through it.
    assert!(episodes > 10 && clipped.episode_count() > 100);
}

#[test]
fn every_wrapper_passes_on_needs_reset_untouched() {
    let mut obs = [0.0f32; 4];
    let needs_reset = |r: rl_env::Result<StepOutcome>| matches!(r, Err(EnvError::NeedsReset(_)));

    let mut norm_obs = NormalizeObservation::new(make("CartPole-v1").unwrap()).unwrap();
    assert!(needs_reset(
        norm_obs.step_into(Action::Discrete(0), &mut obs)
    ));
    assert_eq!(norm_obs.obs_rms(), &RunningMeanStd::new(4));

    let mut norm_rew = NormalizeReward::new(make("CartPole-v1").unwrap());
    run_episode(&mut norm_rew, 0);
    let stats = norm_rew.ret_rms().clone();
    assert!(needs_reset(
        norm_rew.step_into(Action::Discrete(0), &mut obs)
    ));
    assert_eq!(norm_rew.ret_rms(), &stats);

    let mut clip = ClipAction::new(TimeLimit::new(Recorder::new(), 1).unwrap()).unwrap();
    let mut obs2 = [0.0f32; 2];
    assert!(needs_reset(
        clip.step_into(Action::Continuous(&[0.0, 0.0]), &mut obs2)
    ));
    clip.reset_into(None, &mut obs2).unwrap();
    assert!(
        clip.step_into(Action::Continuous(&[0.0, 0.0]), &mut obs2)
            .unwrap()
            .truncated
    );
    assert!(needs_reset(
        clip.step_into(Action::Continuous(&[0.0, 0.0]), &mut obs2)
    ));
}

#[test]
fn monitor_writes_its_rows_without_allocating() {
    let dir = std::env::temp_dir().join(format!("rl-wrappers-monitor-{}", std::process::id()));
    let mut env = rl_env::wrappers::Monitor::for_rank(
        TimeLimit::new(make("CartPole-v1").unwrap(), 9).unwrap(),
        &dir,
        0,
    )
    .unwrap();
    let mut obs = [0.0f32; 4];
    env.reset_into(Some(&Seed::from(0u64)), &mut obs).unwrap();
    let before = allocations();
    let mut episodes = 0;
    for t in 0..2000i64 {
        if env
            .step_into(Action::Discrete(t % 2), &mut obs)
            .unwrap()
            .done()
        {
            env.reset_into(None, &mut obs).unwrap();
            episodes += 1;
        }
    }
    assert_eq!(allocations(), before);
    let text = std::fs::read_to_string(env.path()).unwrap();
    // Two header lines, then one row per episode.
    assert_eq!(text.lines().count(), 2 + episodes);
    assert!(episodes > 200);
    std::fs::remove_dir_all(&dir).unwrap();
}
