//! Vector steps allocate nothing, in either engine and in either autoreset mode (resets inside
//! the step included).
//!
//! This binary has its own `main` (`harness = false` in Cargo.toml): the allocator counts every
//! thread of the process, the worker threads of `ThreadVecEnv` included, so no thread but the
//! ones under test may exist. Under libtest the harness's own main thread does its bookkeeping
//! (it allocates) right after starting the test thread, and on a busy machine that could land
//! inside the counting window: the test failed about 1 run in 10 that way. Each engine is also
//! built only right before it is measured and dropped (its threads joined) before the next one,
//! so that no other engine's threads are starting or stopping while one is counted.

use rl_env::{
    AutoresetMode, EnvSpec, SyncVecEnv, ThreadVecEnv, VecAction, VecEnv, VecNormalize,
    VecNormalizeConfig,
};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; it only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        System.realloc(p, l, n)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

type Build = fn(&EnvSpec, AutoresetMode) -> Box<dyn VecEnv>;

/// Allocations made by the whole process during 50 steps of a warmed-up `v`.
fn allocations_in_50_steps(mut v: Box<dyn VecEnv>) -> usize {
    v.reset(Some(0)).unwrap();
    let discrete: Vec<i64> = (0..64).map(|i| i % 2).collect();
    let continuous: Vec<f32> = (0..64).map(|i| (i % 5) as f32 - 2.0).collect();
    let actions = if v.action_space().n().is_some() {
        VecAction::Discrete(&discrete)
    } else {
        VecAction::Continuous(&continuous)
    };
    // Warm up: every sub-environment goes through a reset inside the step.
    for _ in 0..30 {
        v.step(actions).unwrap();
    }
    let before = ALLOCS.load(Ordering::SeqCst);
    for _ in 0..50 {
        v.step(actions).unwrap();
    }
    ALLOCS.load(Ordering::SeqCst) - before
}

fn main() {
    // A short time limit makes both truncations and terminations happen inside the window.
    let spec = EnvSpec {
        max_episode_steps: Some(10),
        ..EnvSpec::default()
    };
    let engines: [(&str, Build); 5] = [
        ("sync", |spec, mode| {
            Box::new(SyncVecEnv::make_with("CartPole-v1", spec, 64, mode).unwrap())
        }),
        ("thread", |spec, mode| {
            Box::new(ThreadVecEnv::make_with("CartPole-v1", spec, 64, 2, mode).unwrap())
        }),
        ("thread, continuous", |spec, mode| {
            Box::new(ThreadVecEnv::make_with("Pendulum-v1", spec, 64, 2, mode).unwrap())
        }),
        ("VecNormalize(sync)", |spec, mode| {
            let v = SyncVecEnv::make_with("CartPole-v1", spec, 64, mode).unwrap();
            Box::new(VecNormalize::new(v, VecNormalizeConfig::default()).unwrap())
        }),
        ("VecNormalize(thread, continuous)", |spec, mode| {
            let v = ThreadVecEnv::make_with("Pendulum-v1", spec, 64, 2, mode).unwrap();
            Box::new(VecNormalize::new(v, VecNormalizeConfig::default()).unwrap())
        }),
    ];
    let mut failures = 0;
    for mode in [AutoresetMode::SameStep, AutoresetMode::NextStep] {
        for (name, build) in engines {
            let allocs = allocations_in_50_steps(build(&spec, mode));
            if allocs == 0 {
                println!("{name} {mode:?}: 0 allocations in 50 steps ... ok");
            } else {
                println!("{name} {mode:?}: {allocs} allocations in 50 steps ... FAILED");
                failures += 1;
            }
        }
    }
    let passed = 2 * engines.len() - failures;
    println!("\nvector_alloc: {passed} passed, {failures} failed");
    if failures > 0 {
        std::process::exit(1);
    }
}
