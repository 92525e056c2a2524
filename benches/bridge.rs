//! The bridge's two per-step copies, each beside a plain memcpy of the same bytes in the same
//! run:
//!
//! - `obs_to_tensor`: a CartPole-shaped `[n_envs, 4]` f32 observation batch to a tensor
//!   (`ObsBatcher::to_tensor`); baselines `memcpy` (into a preallocated buffer) and
//!   `to_vec` (memcpy into a fresh allocation, which any new tensor needs for its storage) and
//!   `candle_from_slice` (Candle's own constructor, without the bridge's checks);
//! - `action_to_host`: an action tensor to the reused host buffer
//!   (`ActionBuffer::fill_from_tensor`) for `[n_envs]` i64 and u32 discrete actions and
//!   `[n_envs, 2]` f32 continuous actions; baselines `memcpy` of the same bytes.
//!
//! Run: `cargo bench -p rl --bench bridge`; figures in docs/benchmarks/bridge.md.

use candle_core::{DType, Device, Tensor};
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rl_env::{BoxSpace, Space};
use rl_tensor_bridge::{ActionBuffer, ObsBatcher};
use std::time::Duration;

const N_ENVS: [usize; 4] = [1, 8, 256, 4096];
const OBS_DIM: usize = 4;
const ACT_DIM: usize = 2;

fn ensure_rayon_threads() {
    // Candle re-reads /proc/cpuinfo on every op when this is unset (docs/benchmarks).
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        std::env::set_var("RAYON_NUM_THREADS", "1");
    }
}

fn memcpy<T: Copy>(dst: &mut [T], src: &[T]) {
    dst.copy_from_slice(black_box(src));
    black_box(dst);
}

fn obs_to_tensor(c: &mut Criterion) {
    ensure_rayon_threads();
    let space = Space::Box(BoxSpace::uniform(-1.0, 1.0, vec![OBS_DIM]).expect("valid box"));
    let mut group = c.benchmark_group("obs_to_tensor");
    for n in N_ENVS {
        let obs: Vec<f32> = (0..n * OBS_DIM).map(|i| i as f32 * 0.25).collect();
        let mut dst = vec![0.0f32; obs.len()];
        let batcher = ObsBatcher::new(&space, n, DType::F32, Device::Cpu).expect("batcher");
        group.throughput(Throughput::Bytes((obs.len() * 4) as u64));
        group.bench_with_input(BenchmarkId::new("bridge", n), &n, |b, _| {
            b.iter(|| batcher.to_tensor(black_box(&obs)).expect("to_tensor"))
        });
        group.bench_with_input(BenchmarkId::new("memcpy", n), &n, |b, _| {
            b.iter(|| memcpy(&mut dst, &obs))
        });
        group.bench_with_input(BenchmarkId::new("to_vec", n), &n, |b, _| {
            b.iter(|| black_box(&obs).to_vec())
        });
        group.bench_with_input(BenchmarkId::new("candle_from_slice", n), &n, |b, _| {
            b.iter(|| {
                Tensor::from_slice(black_box(&obs), (n, OBS_DIM), &Device::Cpu).expect("tensor")
            })
        });
    }
    group.finish();
}

fn action_to_host(c: &mut Criterion) {
    ensure_rayon_threads();
    let discrete = Space::discrete(2);
    let boxed = Space::Box(BoxSpace::uniform(-1.0, 1.0, vec![ACT_DIM]).expect("valid box"));
    let mut group = c.benchmark_group("action_to_host");
    for n in N_ENVS {
        let host: Vec<i64> = (0..n as i64).map(|i| i % 2).collect();
        let t_i64 = Tensor::from_slice(&host, n, &Device::Cpu).expect("tensor");
        let t_u32 = t_i64.to_dtype(DType::U32).expect("u32");
        let mut buf = ActionBuffer::new(&discrete, n);
        let mut dst = vec![0i64; n];
        group.throughput(Throughput::Bytes((n * 8) as u64));
        group.bench_with_input(BenchmarkId::new("bridge_i64", n), &n, |b, _| {
            b.iter(|| {
                buf.fill_from_tensor(black_box(&t_i64)).expect("fill");
            })
        });
        group.bench_with_input(BenchmarkId::new("bridge_u32", n), &n, |b, _| {
            b.iter(|| {
                buf.fill_from_tensor(black_box(&t_u32)).expect("fill");
            })
        });
        group.bench_with_input(BenchmarkId::new("memcpy_i64", n), &n, |b, _| {
            b.iter(|| memcpy(&mut dst, &host))
        });

        let cont: Vec<f32> = (0..n * ACT_DIM)
            .map(|i| (i % 7) as f32 * 0.1 - 0.3)
            .collect();
        let t_f32 = Tensor::from_slice(&cont, (n, ACT_DIM), &Device::Cpu).expect("tensor");
        let mut buf = ActionBuffer::new(&boxed, n);
        let mut dst = vec![0.0f32; cont.len()];
        group.throughput(Throughput::Bytes((cont.len() * 4) as u64));
        group.bench_with_input(BenchmarkId::new("bridge_box_f32", n), &n, |b, _| {
            b.iter(|| {
                buf.fill_from_tensor(black_box(&t_f32)).expect("fill");
            })
        });
        group.bench_with_input(BenchmarkId::new("memcpy_box_f32", n), &n, |b, _| {
            b.iter(|| memcpy(&mut dst, &cont))
        });
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50)
}

criterion_group! {
    name = benches;
    config = config();
    targets = obs_to_tensor, action_to_host
}
criterion_main!(benches);
