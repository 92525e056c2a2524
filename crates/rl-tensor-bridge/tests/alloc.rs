//! The per-step paths allocate nothing beyond the storage of the tensors they return.
//! (Only the test thread's allocations are counted.)

use candle_core::{DType, Device, Tensor};
use rl_env::{AutoresetMode, Space, SyncVecEnv, VecAction, VecEnv};
use rl_tensor_bridge::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Counts the allocations of the current thread only: the paths measured here run on the
/// test's thread, and libtest's own threads (which allocate at moments the OS decides) must not
/// be counted with them.
struct Counting;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards every call to the system allocator unchanged; the counter is a
// const-initialized thread local without destructor, so touching it never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        System.realloc(p, l, n)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn count<R>(f: impl FnOnce() -> R) -> (usize, R) {
    let before = ALLOCS.with(Cell::get);
    let r = f();
    (ALLOCS.with(Cell::get) - before, r)
}

#[test]
fn hot_paths_allocate_only_tensor_storage() {
    let dev = Device::Cpu;
    let n = 16;

    // Tensor -> reused host buffer: no allocation at all.
    let mut actions = ActionBuffer::new(&Space::discrete(2), n);
    let t = Tensor::zeros(n, DType::U32, &dev).unwrap();
    actions.fill_from_tensor(&t).unwrap();
    assert_eq!(count(|| actions.fill_from_tensor(&t).map(|_| ())).0, 0);
    let t = Tensor::zeros(n, DType::I64, &dev).unwrap();
    assert_eq!(count(|| actions.fill_from_tensor(&t).map(|_| ())).0, 0);
    let mut out = vec![0.0f32; 64];
    let t = Tensor::zeros((16, 4), DType::F64, &dev).unwrap();
    assert_eq!(count(|| copy_tensor_to_f32(&t, &mut out)).0, 0);

    // Host -> tensor: exactly what Candle's own constructor allocates.
    let obs = vec![0.5f32; n * 4];
    let space = Space::boxed(vec![0.0; 4], vec![1.0; 4], vec![4]).unwrap();
    let batcher = ObsBatcher::new(&space, n, DType::F32, dev.clone()).unwrap();
    let (candle, _) = count(|| Tensor::from_slice(&obs, (n, 4), &dev).unwrap());
    let (ours, _) = count(|| batcher.to_tensor(&obs).unwrap());
    assert_eq!(ours, candle);

    // A vector step: the plain step's allocations plus the four returned tensors.
    let mut plain = SyncVecEnv::make("CartPole-v1", n, AutoresetMode::SameStep).unwrap();
    let inner = SyncVecEnv::make("CartPole-v1", n, AutoresetMode::SameStep).unwrap();
    let mut tvec = TensorVecEnv::new(inner, dev.clone()).unwrap();
    plain.reset(Some(0)).unwrap();
    tvec.reset(Some(0)).unwrap();
    let zeros = vec![0i64; n];
    let action = Tensor::zeros(n, DType::U32, &dev).unwrap();
    let (plain_step, _) = count(|| plain.step(VecAction::Discrete(&zeros)).unwrap());
    let (tensors, _) = count(|| {
        let o = Tensor::from_slice(plain.observations(), (n, 4), &dev).unwrap();
        let r = Tensor::from_iter(plain.rewards().iter().map(|&r| r as f32), &dev).unwrap();
        let a = Tensor::from_iter(plain.terminated().iter().map(|&b| u8::from(b)), &dev).unwrap();
        let b = Tensor::from_iter(plain.truncated().iter().map(|&b| u8::from(b)), &dev).unwrap();
        (o, r, a, b)
    });
    let (ours, ended) = count(|| tvec.step(&action).unwrap().final_envs.len());
    assert_eq!(ended, 0, "the first step of CartPole ends no episode");
    assert_eq!(ours, plain_step + tensors);
}
