//! `ndarray` arrays and views (1-D, 2-D, dynamic, any layout) through tensors and back.
#![cfg(feature = "ndarray")]

use candle_core::{DType, Device, Tensor};
use ndarray::{s, Array, Array1, Array2, ArrayD, IxDyn};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rl_tensor_bridge::ndarray::*;
use rl_tensor_bridge::BridgeError;

#[test]
fn arrays_roundtrip_for_random_shapes() {
    let mut rng = StdRng::seed_from_u64(21);
    for case in 0..200 {
        let rank = rng.gen_range(0..=4);
        let shape: Vec<usize> = (0..rank).map(|_| rng.gen_range(0..=5)).collect();
        let n: usize = shape.iter().product();
        let data: Vec<f64> = (0..n).map(|_| rng.gen_range(-1e9..1e9)).collect();
        let a = ArrayD::from_shape_vec(IxDyn(&shape), data).unwrap();
        let t = array_to_tensor(&a, &Device::Cpu).unwrap();
        assert_eq!(t.dims(), shape.as_slice(), "case {case}");
        assert_eq!(tensor_to_arrayd::<f64>(&t).unwrap(), a, "case {case}");

        let (r, c) = (rng.gen_range(1..=6), rng.gen_range(1..=6));
        let m = Array2::from_shape_fn((r, c), |_| rng.gen::<i64>());
        let t = array_to_tensor(&m.view(), &Device::Cpu).unwrap();
        assert_eq!(tensor_to_array2::<i64>(&t).unwrap(), m, "case {case}");
        // Non-standard layouts: a transposed view and a strided slice.
        let t = array_to_tensor(&m.t(), &Device::Cpu).unwrap();
        assert_eq!(tensor_to_array2::<i64>(&t).unwrap(), m.t(), "case {case}");
        let every_other = m.slice(s![.., ..;2]);
        let t = array_to_tensor(&every_other, &Device::Cpu).unwrap();
        assert_eq!(
            tensor_to_array2::<i64>(&t).unwrap(),
            every_other,
            "case {case}"
        );

        let v: Array1<u32> = (0..rng.gen_range(0..10)).map(|_| rng.gen()).collect();
        let t = array_to_tensor(&v, &Device::Cpu).unwrap();
        assert_eq!(tensor_to_array1::<u32>(&t).unwrap(), v, "case {case}");
    }
}

#[test]
fn copy_into_existing_arrays_and_views() {
    let t = Tensor::new(&[[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]], &Device::Cpu).unwrap();
    let mut out = Array2::<f32>::zeros((2, 3));
    copy_tensor_to_array(&t, &mut out.view_mut()).unwrap();
    assert_eq!(
        out,
        Array::from_shape_vec((2, 3), vec![1., 2., 3., 4., 5., 6.]).unwrap()
    );
    // Into a transposed (non-standard layout) view of a [3, 2] array.
    let mut target = Array2::<f32>::zeros((3, 2));
    copy_tensor_to_array(&t, &mut target.view_mut().reversed_axes()).unwrap();
    assert_eq!(
        target,
        Array::from_shape_vec((3, 2), vec![1., 4., 2., 5., 3., 6.]).unwrap()
    );
}

#[test]
fn ndarray_errors_name_shapes_and_dtypes() {
    let t = Tensor::zeros((2, 3), DType::F32, &Device::Cpu).unwrap();
    let err = tensor_to_array1::<f32>(&t).unwrap_err();
    assert!(matches!(&err, BridgeError::Shape { actual, .. } if actual == &[2, 3]));
    assert_eq!(
        err.to_string(),
        "tensor has shape [2, 3] but a 1-D shape is needed"
    );
    assert!(matches!(
        tensor_to_array2::<f64>(&t),
        Err(BridgeError::DType {
            actual: DType::F32,
            ..
        })
    ));
    let mut wrong = Array2::<f32>::zeros((3, 2));
    let err = copy_tensor_to_array(&t, &mut wrong.view_mut()).unwrap_err();
    assert!(
        err.to_string().contains("[3, 2]") && err.to_string().contains("[2, 3]"),
        "{err}"
    );
}
