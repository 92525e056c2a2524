//! Property tests: host -> tensor -> host is the identity, over seeded random shapes, values
//! and dtypes (every case is reproducible from the seed printed on failure).

use candle_core::{DType, Device, IndexOp, Tensor, WithDType};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rl_env::{BoxSpace, Space, VecAction};
use rl_tensor_bridge::*;

const CASES: u64 = 200;

fn random_shape(rng: &mut StdRng) -> Vec<usize> {
    let rank = rng.gen_range(0..=4);
    (0..rank).map(|_| rng.gen_range(0..=6)).collect()
}

/// Values drawn from raw bit patterns so that NaN payloads, infinities, subnormals and -0.0 all
/// occur; comparisons are bitwise.
trait Random: WithDType {
    fn random(rng: &mut StdRng) -> Self;
    fn bits(self) -> u64;
}
impl Random for f32 {
    fn random(rng: &mut StdRng) -> Self {
        f32::from_bits(rng.gen())
    }
    fn bits(self) -> u64 {
        u64::from(self.to_bits())
    }
}
impl Random for f64 {
    fn random(rng: &mut StdRng) -> Self {
        f64::from_bits(rng.gen())
    }
    fn bits(self) -> u64 {
        self.to_bits()
    }
}
impl Random for i64 {
    fn random(rng: &mut StdRng) -> Self {
        rng.gen()
    }
    fn bits(self) -> u64 {
        self as u64
    }
}
impl Random for u32 {
    fn random(rng: &mut StdRng) -> Self {
        rng.gen()
    }
    fn bits(self) -> u64 {
        u64::from(self)
    }
}
impl Random for u8 {
    fn random(rng: &mut StdRng) -> Self {
        rng.gen()
    }
    fn bits(self) -> u64 {
        u64::from(self)
    }
}
impl Random for i32 {
    fn random(rng: &mut StdRng) -> Self {
        rng.gen()
    }
    fn bits(self) -> u64 {
        self as u32 as u64
    }
}

fn bits<T: Random>(v: &[T]) -> Vec<u64> {
    v.iter().map(|&x| x.bits()).collect()
}

fn slice_roundtrip<T: Random>(seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    for case in 0..CASES {
        let shape = random_shape(&mut rng);
        let n: usize = shape.iter().product();
        let data: Vec<T> = (0..n).map(|_| T::random(&mut rng)).collect();
        let ctx = format!(
            "seed {seed} case {case} dtype {:?} shape {shape:?}",
            T::DTYPE
        );

        let t = slice_to_tensor(&data, shape.as_slice(), &Device::Cpu).unwrap();
        assert_eq!(t.dims(), shape.as_slice(), "{ctx}");
        assert_eq!(t.dtype(), T::DTYPE, "{ctx}");
        // Candle's own reader agrees with ours.
        let theirs = t.flatten_all().unwrap().to_vec1::<T>().unwrap();
        assert_eq!(bits(&theirs), bits(&data), "{ctx}");

        assert_eq!(bits(&tensor_to_vec::<T>(&t).unwrap()), bits(&data), "{ctx}");
        let mut out = vec![T::zero(); n];
        copy_tensor_to_slice(&t, &mut out).unwrap();
        assert_eq!(bits(&out), bits(&data), "{ctx}");

        let moved = vec_to_tensor(data.clone(), shape.as_slice(), &Device::Cpu).unwrap();
        assert_eq!(
            bits(&tensor_to_vec::<T>(&moved).unwrap()),
            bits(&data),
            "{ctx}"
        );
    }
}

#[test]
fn f32_roundtrip() {
    slice_roundtrip::<f32>(1);
}

#[test]
fn f64_roundtrip() {
    slice_roundtrip::<f64>(2);
}

#[test]
fn i64_roundtrip() {
    slice_roundtrip::<i64>(3);
}

#[test]
fn u32_roundtrip() {
    slice_roundtrip::<u32>(4);
}

#[test]
fn u8_and_i32_roundtrip() {
    slice_roundtrip::<u8>(5);
    slice_roundtrip::<i32>(6);
}

/// Views with a start offset (narrow) and with strides (transpose) read back in logical order.
#[test]
fn views_read_back_in_logical_order() {
    let mut rng = StdRng::seed_from_u64(7);
    for case in 0..CASES {
        let (rows, cols) = (rng.gen_range(1..=9), rng.gen_range(1..=9));
        let data: Vec<f32> = (0..rows * cols).map(|_| rng.gen_range(-1e3..1e3)).collect();
        let t = batch_to_tensor(&data, rows, cols, &Device::Cpu).unwrap();

        let first = rng.gen_range(0..rows);
        let len = rng.gen_range(0..=rows - first);
        let narrowed = t.narrow(0, first, len).unwrap();
        assert_eq!(
            tensor_to_vec::<f32>(&narrowed).unwrap(),
            data[first * cols..(first + len) * cols].to_vec(),
            "case {case}"
        );

        let transposed = t.t().unwrap();
        let expected: Vec<f32> = (0..cols)
            .flat_map(|c| (0..rows).map(move |r| (r, c)))
            .map(|(r, c)| data[r * cols + c])
            .collect();
        assert_eq!(
            tensor_to_vec::<f32>(&transposed).unwrap(),
            expected,
            "case {case}"
        );
        let mut out = vec![0.0; rows * cols];
        copy_tensor_to_slice(&transposed, &mut out).unwrap();
        assert_eq!(out, expected, "case {case}");

        let column = rng.gen_range(0..cols);
        let col: Vec<f32> = (0..rows).map(|r| data[r * cols + column]).collect();
        assert_eq!(
            tensor_to_vec::<f32>(&t.i((.., column)).unwrap()).unwrap(),
            col
        );
    }
}

#[test]
fn rows_and_arrays_roundtrip() {
    let mut rng = StdRng::seed_from_u64(8);
    for case in 0..CASES {
        let (n, width) = (rng.gen_range(1..=12), rng.gen_range(0..=7));
        let rows: Vec<Vec<i64>> = (0..n)
            .map(|_| (0..width).map(|_| rng.gen()).collect())
            .collect();
        let t = rows_to_tensor(&rows, &Device::Cpu).unwrap();
        assert_eq!(t.dims(), &[n, width], "case {case}");
        assert_eq!(tensor_to_rows::<i64>(&t).unwrap(), rows, "case {case}");

        let fixed: Vec<[f64; 3]> = (0..n).map(|_| rng.gen()).collect();
        let t = rows_to_tensor(&fixed, &Device::Cpu).unwrap();
        let back: Vec<[f64; 3]> = tensor_to_rows::<f64>(&t)
            .unwrap()
            .into_iter()
            .map(|r| [r[0], r[1], r[2]])
            .collect();
        assert_eq!(back, fixed, "case {case}");

        let a: [f32; 5] = rng.gen();
        let t = array_to_tensor(&a, &Device::Cpu).unwrap();
        assert_eq!(tensor_to_array::<f32, 5>(&t).unwrap(), a, "case {case}");
    }
}

/// f32 host data through f64 tensors and back is exact (every f32 is an f64); f64 data through
/// f32 tensors is `as f32`.
#[test]
fn float_dtype_conversions_roundtrip() {
    let mut rng = StdRng::seed_from_u64(9);
    for case in 0..CASES {
        let shape = random_shape(&mut rng);
        let n: usize = shape.iter().product();
        let data: Vec<f32> = (0..n).map(|_| f32::random(&mut rng)).collect();
        let t = slice_to_tensor_as(&data, shape.as_slice(), DType::F64, &Device::Cpu).unwrap();
        assert_eq!((t.dtype(), t.dims()), (DType::F64, shape.as_slice()));
        let mut back = vec![0.0f32; n];
        copy_tensor_to_f32(&t, &mut back).unwrap();
        for (i, (a, b)) in data.iter().zip(&back).enumerate() {
            assert!(
                a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
                "case {case} {i}"
            );
        }
        let mut wide = vec![0.0f64; n];
        copy_tensor_to_f64(&t, &mut wide).unwrap();
        let expected: Vec<f64> = data.iter().map(|&v| f64::from(v)).collect();
        assert_eq!(bits(&wide), bits(&expected), "case {case}");

        let doubles: Vec<f64> = (0..n).map(|_| rng.gen_range(-1e6..1e6)).collect();
        let t = slice_to_tensor_as(&doubles, shape.as_slice(), DType::F32, &Device::Cpu).unwrap();
        let narrowed: Vec<f32> = doubles.iter().map(|&v| v as f32).collect();
        assert_eq!(tensor_to_vec::<f32>(&t).unwrap(), narrowed, "case {case}");
    }
}

#[test]
fn integer_widening_is_exact() {
    let mut rng = StdRng::seed_from_u64(10);
    for _ in 0..CASES {
        let n = rng.gen_range(0..20);
        let a: Vec<u32> = (0..n).map(|_| rng.gen()).collect();
        let mut out = vec![0i64; n];
        copy_tensor_to_i64(&slice_to_tensor(&a, n, &Device::Cpu).unwrap(), &mut out).unwrap();
        assert_eq!(out, a.iter().map(|&v| i64::from(v)).collect::<Vec<_>>());
        let b: Vec<i32> = (0..n).map(|_| rng.gen()).collect();
        copy_tensor_to_i64(&slice_to_tensor(&b, n, &Device::Cpu).unwrap(), &mut out).unwrap();
        assert_eq!(out, b.iter().map(|&v| i64::from(v)).collect::<Vec<_>>());
    }
}

#[test]
fn observation_batches_roundtrip() {
    let mut rng = StdRng::seed_from_u64(11);
    for case in 0..CASES {
        let (n_envs, obs_dim) = (rng.gen_range(0..=64), rng.gen_range(1..=9));
        let space = Space::Box(BoxSpace::uniform(-1.0, 1.0, vec![obs_dim]).unwrap());
        let obs: Vec<f32> = (0..n_envs * obs_dim)
            .map(|_| rng.gen_range(-5.0..5.0))
            .collect();
        for dtype in [DType::F32, DType::F64] {
            let b = ObsBatcher::new(&space, n_envs, dtype, Device::Cpu).unwrap();
            let t = b.to_tensor(&obs).unwrap();
            b.check(&t).unwrap();
            let mut back = vec![0.0f32; obs.len()];
            copy_tensor_to_f32(&t, &mut back).unwrap();
            assert_eq!(back, obs, "case {case} {dtype:?}");
        }
    }
}

#[test]
fn discrete_actions_roundtrip_in_every_dtype_and_shape() {
    let mut rng = StdRng::seed_from_u64(12);
    for case in 0..CASES {
        let n = rng.gen_range(1..=50u64);
        let start = if rng.gen_bool(0.5) {
            0
        } else {
            rng.gen_range(-5..5)
        };
        let space = Space::Discrete { n, start };
        let n_envs = rng.gen_range(0..=40);
        let actions: Vec<i64> = (0..n_envs)
            .map(|_| start + rng.gen_range(0..n) as i64)
            .collect();
        let mut buf = ActionBuffer::new(&space, n_envs);
        let mut dtypes = vec![DType::I64, DType::I32, DType::F32, DType::F64];
        if start >= 0 {
            dtypes.extend([DType::U32, DType::U8]);
        }
        for dtype in dtypes {
            let t = Tensor::new(actions.as_slice(), &Device::Cpu)
                .unwrap()
                .to_dtype(dtype)
                .unwrap();
            for t in [t.clone(), t.unsqueeze(1).unwrap()] {
                let got = buf.fill_from_tensor(&t).unwrap();
                assert_eq!(got, VecAction::Discrete(&actions), "case {case} {dtype:?}");
            }
        }
        for dtype in [DType::I64, DType::U32, DType::U8] {
            if dtype != DType::I64 && start < 0 {
                continue;
            }
            let t = discrete_actions_to_tensor(&actions, &space, dtype, &Device::Cpu).unwrap();
            assert_eq!(t.dtype(), dtype);
            let got = buf.fill_from_tensor(&t).unwrap();
            assert_eq!(got, VecAction::Discrete(&actions), "case {case} {dtype:?}");
        }
    }
}

#[test]
fn box_actions_roundtrip_in_every_shape() {
    let mut rng = StdRng::seed_from_u64(13);
    for case in 0..CASES {
        let shape: Vec<usize> = (0..rng.gen_range(1..=3))
            .map(|_| rng.gen_range(1..=4))
            .collect();
        let d: usize = shape.iter().product();
        let space = Space::Box(BoxSpace::uniform(-2.0, 2.0, shape.clone()).unwrap());
        let n_envs = rng.gen_range(0..=20);
        // Out-of-bounds but finite values pass: clipping is not the bridge's job.
        let actions: Vec<f32> = (0..n_envs * d)
            .map(|_| rng.gen_range(-10.0..10.0))
            .collect();
        let mut buf = ActionBuffer::new(&space, n_envs);
        let mut full = vec![n_envs];
        full.extend(&shape);
        for dims in [vec![n_envs, d], full] {
            let t = Tensor::from_slice(&actions, dims.as_slice(), &Device::Cpu).unwrap();
            let got = buf.fill_from_tensor(&t).unwrap();
            assert_eq!(got, VecAction::Continuous(&actions), "case {case} {dims:?}");
            let wide = t.to_dtype(DType::F64).unwrap();
            let got = buf.fill_from_tensor(&wide).unwrap();
            assert_eq!(
                got,
                VecAction::Continuous(&actions),
                "case {case} {dims:?} f64"
            );
        }
    }
}

/// A single-env buffer accepts the unbatched shapes as well as a batch of one.
#[test]
fn single_env_action_shapes() {
    let discrete = Space::Discrete { n: 3, start: 1 };
    let mut buf = ActionBuffer::single(&discrete);
    for t in [
        Tensor::new(3i64, &Device::Cpu).unwrap(),
        Tensor::new(&[3i64], &Device::Cpu).unwrap(),
        Tensor::new(&[[3i64]], &Device::Cpu).unwrap(),
    ] {
        assert_eq!(buf.fill_from_tensor(&t).unwrap(), VecAction::Discrete(&[3]));
    }
    let b = Space::Box(BoxSpace::uniform(-1.0, 1.0, vec![2, 2]).unwrap());
    let mut buf = ActionBuffer::single(&b);
    let x = [0.5f32, -0.5, 0.25, 1.0];
    for dims in [vec![4], vec![2, 2], vec![1, 4], vec![1, 2, 2]] {
        let t = Tensor::from_slice(&x, dims.as_slice(), &Device::Cpu).unwrap();
        assert_eq!(buf.fill_from_tensor(&t).unwrap(), VecAction::Continuous(&x));
    }
}
