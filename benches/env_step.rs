//! Environment stepping throughput: one CartPole-v1 (static and dynamic dispatch) and the two
//! vector engines at 8, 64 and 1024 sub-environments. Random actions are drawn before timing;
//! episodes end and reset inside the timed loop, as in training.
//!
//! `cargo bench --bench env_step -- --warm-up-time 1 --measurement-time 3`

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rl_env::classic_control::CartPole;
use rl_env::wrappers::TimeLimit;
use rl_env::{make, Action, AutoresetMode, Env, SyncVecEnv, ThreadVecEnv, VecAction, VecEnv};

const SIZES: [usize; 3] = [8, 64, 1024];
/// Pre-drawn actions per sub-environment, cycled through (a power of two).
const ACTION_ROWS: usize = 256;

fn random_actions(n: usize, seed: u64) -> Vec<i64> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n).map(|_| rng.gen_range(0..2)).collect()
}

/// One `step_into` per iteration, plus the reset when the episode ends.
fn step_single<E: Env>(env: &mut E, actions: &[i64], k: &mut usize, obs: &mut [f32; 4]) -> f64 {
    let a = actions[*k & (actions.len() - 1)];
    *k += 1;
    let out = env
        .step_into(Action::Discrete(a), obs)
        .expect("valid action");
    if out.terminated || out.truncated {
        env.reset_into(None, obs).expect("reset");
    }
    out.reward
}

fn single_env(c: &mut Criterion) {
    let actions = random_actions(1 << 16, 1);
    let mut group = c.benchmark_group("cartpole_step");
    group.throughput(Throughput::Elements(1));

    let mut env = TimeLimit::new(CartPole::new(), 500).expect("limit");
    let mut obs = [0.0f32; 4];
    env.reset_into(Some(&0u64.into()), &mut obs).expect("reset");
    let mut k = 0;
    group.bench_function("TimeLimit<CartPole>", |b| {
        b.iter(|| black_box(step_single(&mut env, &actions, &mut k, &mut obs)))
    });

    let mut env = make("CartPole-v1").expect("registered");
    env.reset_into(Some(&0u64.into()), &mut obs).expect("reset");
    let mut k = 0;
    group.bench_function("Box<dyn Env> (make)", |b| {
        b.iter(|| black_box(step_single(&mut env, &actions, &mut k, &mut obs)))
    });
    group.finish();
}

/// Times `venv.step` on pre-drawn random actions (cycled through); episodes end and reset
/// inside the timed loop.
fn bench_vec(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    mut venv: Box<dyn VecEnv>,
) {
    let n = venv.num_envs();
    venv.reset(Some(0)).expect("reset");
    let actions = random_actions(n * ACTION_ROWS, n as u64);
    let mut row = 0;
    group.throughput(Throughput::Elements(n as u64));
    group.bench_function(BenchmarkId::new(name, n), |b| {
        b.iter(|| {
            let r = row & (ACTION_ROWS - 1);
            row += 1;
            venv.step(VecAction::Discrete(&actions[r * n..(r + 1) * n]))
                .expect("step");
            black_box(venv.rewards()[0])
        })
    });
}

/// The engines side by side at each size, so that each ratio comes from back-to-back runs.
fn vector_envs(c: &mut Criterion) {
    let mode = AutoresetMode::SameStep;
    let mut group = c.benchmark_group("vec_step");
    for n in SIZES {
        let sync = SyncVecEnv::make("CartPole-v1", n, mode).expect("make");
        bench_vec(&mut group, "sync", Box::new(sync));
        let env = || TimeLimit::new(CartPole::new(), 500);
        let sync_static = SyncVecEnv::from_fn(n, mode, |_| env()).expect("build");
        bench_vec(&mut group, "sync_static", Box::new(sync_static));
        let threaded = ThreadVecEnv::make("CartPole-v1", n, 2, mode).expect("make");
        bench_vec(&mut group, "thread_2_workers", Box::new(threaded));
    }
    group.finish();
}

fn setup() {
    // This bench does not touch Candle; kept for the workspace rule that every bench sets it.
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        std::env::set_var("RAYON_NUM_THREADS", "1");
    }
}

fn all(c: &mut Criterion) {
    setup();
    single_env(c);
    vector_envs(c);
}

criterion_group!(benches, all);
criterion_main!(benches);
