//! Vector steps allocate nothing, in either engine and in either autoreset mode (resets inside
//! the step included). One test in this binary, so that no other test thread allocates while
//! the global allocator is counting.

use rl_env::{AutoresetMode, EnvSpec, SyncVecEnv, ThreadVecEnv, VecAction, VecEnv};
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

#[test]
fn vector_steps_allocate_nothing() {
    // A short time limit makes both truncations and terminations happen inside the window.
    let spec = EnvSpec {
        max_episode_steps: Some(10),
        ..EnvSpec::default()
    };
    for mode in [AutoresetMode::SameStep, AutoresetMode::NextStep] {
        let engines: Vec<(&str, Box<dyn VecEnv>)> = vec![
            (
                "sync",
                Box::new(SyncVecEnv::make_with("CartPole-v1", &spec, 64, mode).unwrap()),
            ),
            (
                "thread",
                Box::new(ThreadVecEnv::make_with("CartPole-v1", &spec, 64, 2, mode).unwrap()),
            ),
            (
                "thread, continuous",
                Box::new(ThreadVecEnv::make_with("Pendulum-v1", &spec, 64, 2, mode).unwrap()),
            ),
        ];
        for (name, mut v) in engines {
            v.reset(Some(0)).unwrap();
            let discrete: Vec<i64> = (0..64).map(|i| i % 2).collect();
            let continuous: Vec<f32> = (0..64).map(|i| (i % 5) as f32 - 2.0).collect();
            let actions = if v.action_space().n().is_some() {
                VecAction::Discrete(&discrete)
            } else {
                VecAction::Continuous(&continuous)
            };
            // Warm up: the OS-entropy generators of unseeded resets are created on first use.
            for _ in 0..30 {
                v.step(actions).unwrap();
            }
            let before = ALLOCS.load(Ordering::Relaxed);
            for _ in 0..50 {
                v.step(actions).unwrap();
            }
            let allocs = ALLOCS.load(Ordering::Relaxed) - before;
            assert_eq!(
                allocs, 0,
                "{name} {mode:?}: {allocs} allocations in 50 steps"
            );
        }
    }
}
