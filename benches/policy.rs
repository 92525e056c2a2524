//! Policy inference latency: CartPole-v1's default MlpPolicy (SB3's 64-64 tanh actor and critic)
//! acting on one and on eight observations, deterministic and sampled, plus the full
//! actor-critic forward, and the cost of the two ways to compute tanh.
//!
//! `cargo bench --bench policy -- --warm-up-time 1 --measurement-time 3`

use candle_core::{Device, Tensor};
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rl_policy::{ActorCritic, MlpPolicy, MlpPolicyConfig, Policy};

fn cartpole_policy(device: &Device) -> MlpPolicy {
    let env = rl_env::make("CartPole-v1").expect("CartPole-v1 is registered");
    MlpPolicy::new(
        env.observation_space(),
        env.action_space(),
        MlpPolicyConfig::default(),
        0,
        device,
    )
    .expect("CartPole policy")
}

fn observations(batch: usize) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(1);
    (0..batch * 4)
        .map(|_| rng.gen_range(-0.1f32..0.1))
        .collect()
}

fn act(c: &mut Criterion) {
    std::env::set_var(
        "RAYON_NUM_THREADS",
        std::env::var("RAYON_NUM_THREADS").unwrap_or("1".into()),
    );
    let dev = Device::Cpu;
    let policy = cartpole_policy(&dev);
    let mut rng = StdRng::seed_from_u64(2);
    let mut group = c.benchmark_group("cartpole_mlp_policy");
    for batch in [1usize, 8] {
        let host = observations(batch);
        let obs = Tensor::from_slice(&host, (batch, 4), &dev).expect("obs tensor");
        group.bench_with_input(
            BenchmarkId::new("act_deterministic", batch),
            &batch,
            |b, _| b.iter(|| policy.act(black_box(&obs), true, &mut rng).expect("act")),
        );
        // Host slice in, host actions out: what an env loop pays per step.
        group.bench_with_input(
            BenchmarkId::new("act_deterministic_host_roundtrip", batch),
            &batch,
            |b, _| {
                b.iter(|| {
                    let obs =
                        Tensor::from_slice(black_box(&host), (batch, 4), &dev).expect("obs tensor");
                    policy
                        .act(&obs, true, &mut rng)
                        .expect("act")
                        .to_vec1::<u32>()
                        .expect("actions")
                })
            },
        );
        // Baseline: the same actor and arg-max with plain Candle ops (Tensor::tanh, separate
        // bias add, log-softmax before the arg-max), the way a straightforward port computes it.
        let sd = policy.state_dict().expect("state dict");
        let layer = |i: &str| {
            (
                sd[&format!("{i}.weight")].t().expect("t"),
                sd[&format!("{i}.bias")].clone(),
            )
        };
        let (w0, b0) = layer("mlp_extractor.policy_net.0");
        let (w2, b2) = layer("mlp_extractor.policy_net.2");
        let (wa, ba) = layer("action_net");
        group.bench_with_input(
            BenchmarkId::new("baseline_plain_candle_act_deterministic", batch),
            &batch,
            |b, _| {
                b.iter(|| {
                    let h = black_box(&obs)
                        .matmul(&w0)
                        .and_then(|x| x.broadcast_add(&b0))
                        .and_then(|x| x.tanh())
                        .expect("l0");
                    let h = h
                        .matmul(&w2)
                        .and_then(|x| x.broadcast_add(&b2))
                        .and_then(|x| x.tanh())
                        .expect("l2");
                    let logits = h
                        .matmul(&wa)
                        .and_then(|x| x.broadcast_add(&ba))
                        .expect("head");
                    let lp = candle_nn::ops::log_softmax(&logits, 1).expect("log_softmax");
                    lp.argmax(1).expect("argmax")
                })
            },
        );
        group.bench_with_input(BenchmarkId::new("act_sampled", batch), &batch, |b, _| {
            b.iter(|| policy.act(black_box(&obs), false, &mut rng).expect("act"))
        });
        group.bench_with_input(
            BenchmarkId::new("forward_dist_and_value", batch),
            &batch,
            |b, _| b.iter(|| policy.forward(black_box(&obs)).expect("forward")),
        );
    }
    group.finish();
}

/// `Tensor::tanh` (glibc `tanhf`, one value at a time) against `2 sigmoid(2x) - 1` and
/// rl-policy's vectorized `ops::tanh`.
fn tanh_forms(c: &mut Criterion) {
    std::env::set_var(
        "RAYON_NUM_THREADS",
        std::env::var("RAYON_NUM_THREADS").unwrap_or("1".into()),
    );
    let dev = Device::Cpu;
    let mut group = c.benchmark_group("tanh_64_wide");
    for rows in [1usize, 8, 40] {
        let mut rng = StdRng::seed_from_u64(3);
        let x: Vec<f32> = (0..rows * 64).map(|_| rng.gen_range(-3f32..3.0)).collect();
        let x = Tensor::from_vec(x, (rows, 64), &dev).expect("tensor");
        group.bench_with_input(BenchmarkId::new("tanh", rows), &rows, |b, _| {
            b.iter(|| black_box(&x).tanh().expect("tanh"))
        });
        group.bench_with_input(BenchmarkId::new("2sigmoid2x-1", rows), &rows, |b, _| {
            b.iter(|| {
                let s = candle_nn::ops::sigmoid(&(black_box(&x) * 2.0).expect("scale"))
                    .expect("sigmoid");
                s.affine(2.0, -1.0).expect("affine")
            })
        });
        group.bench_with_input(
            BenchmarkId::new("rl_policy_ops_tanh", rows),
            &rows,
            |b, _| b.iter(|| rl_policy::ops::tanh(black_box(&x)).expect("tanh")),
        );
    }
    group.finish();
}

criterion_group!(benches, act, tanh_forms);
criterion_main!(benches);
