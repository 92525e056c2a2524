//! Every bad input gets its own typed error naming what was expected and what was found.

use candle_core::{DType, Device, Tensor};
use rl_env::{BoxSpace, EnvError, Space};
use rl_tensor_bridge::*;

fn cpu() -> Device {
    Device::Cpu
}

fn box_space(shape: Vec<usize>) -> Space {
    Space::Box(BoxSpace::uniform(-1.0, 1.0, shape).unwrap())
}

#[test]
fn host_data_of_the_wrong_length() {
    let err = slice_to_tensor(&[0.0f32; 5], (2, 3), &cpu()).unwrap_err();
    assert!(matches!(
        &err,
        BridgeError::ElementCount { shape, expected: 6, actual: 5, .. } if shape == &[2, 3]
    ));
    assert_eq!(
        err.to_string(),
        "host data has 5 elements but shape [2, 3] needs 6"
    );
    assert!(matches!(
        vec_to_tensor(vec![1i64; 7], 6, &cpu()),
        Err(BridgeError::ElementCount {
            expected: 6,
            actual: 7,
            ..
        })
    ));
    assert!(matches!(
        batch_to_tensor(&[0u32; 7], 2, 4, &cpu()),
        Err(BridgeError::ElementCount {
            expected: 8,
            actual: 7,
            ..
        })
    ));
    assert!(matches!(
        slice_to_tensor_as(&[0.0f32; 3], 4, DType::F64, &cpu()),
        Err(BridgeError::ElementCount {
            expected: 4,
            actual: 3,
            ..
        })
    ));
}

#[test]
fn ragged_rows() {
    let rows = [vec![1.0f32, 2.0], vec![3.0, 4.0], vec![5.0]];
    let err = rows_to_tensor(&rows, &cpu()).unwrap_err();
    assert!(matches!(
        err,
        BridgeError::RaggedRows {
            row: 2,
            expected: 2,
            actual: 1
        }
    ));
    assert_eq!(err.to_string(), "row 2 has 1 elements but row 0 has 2");
}

#[test]
fn unsupported_requested_dtype() {
    let err = slice_to_tensor_as(&[1.0f32], 1, DType::U8, &cpu()).unwrap_err();
    assert!(matches!(
        err,
        BridgeError::DType {
            actual: DType::U8,
            ..
        }
    ));
    assert!(err.to_string().contains("f32, f64"), "{err}");
}

#[test]
fn reading_a_tensor_with_the_wrong_dtype_or_size() {
    let t = Tensor::new(&[1.0f32, 2.0, 3.0], &cpu()).unwrap();
    let err = tensor_to_vec::<f64>(&t).unwrap_err();
    assert!(matches!(
        err,
        BridgeError::DType {
            actual: DType::F32,
            expected: "f64",
            ..
        }
    ));
    assert_eq!(err.to_string(), "tensor has dtype f32 but f64 is needed");

    let err = copy_tensor_to_slice(&t, &mut [0.0f32; 4]).unwrap_err();
    assert!(matches!(
        &err,
        BridgeError::ElementCount { what: "output buffer", expected: 3, actual: 4, shape } if shape == &[3]
    ));
    assert!(matches!(
        copy_tensor_to_f32(&t, &mut [0.0; 2]),
        Err(BridgeError::ElementCount {
            expected: 3,
            actual: 2,
            ..
        })
    ));

    let err = tensor_to_array::<f32, 4>(&t).unwrap_err();
    assert!(matches!(&err, BridgeError::Shape { actual, .. } if actual == &[3]));
    assert_eq!(err.to_string(), "tensor has shape [3] but [4] is needed");
    assert!(matches!(
        tensor_to_rows::<f32>(&t),
        Err(BridgeError::Shape { .. })
    ));

    let ints = Tensor::new(&[1u32, 2], &cpu()).unwrap();
    assert!(matches!(
        copy_tensor_to_f32(&ints, &mut [0.0; 2]),
        Err(BridgeError::DType {
            actual: DType::U32,
            ..
        })
    ));
    assert!(matches!(
        copy_tensor_to_f64(&ints, &mut [0.0; 2]),
        Err(BridgeError::DType {
            actual: DType::U32,
            ..
        })
    ));
    assert!(matches!(
        copy_tensor_to_i64(&t, &mut [0; 3]),
        Err(BridgeError::DType {
            actual: DType::F32,
            ..
        })
    ));
}

#[test]
fn observation_batches_are_checked_against_the_space() {
    let space = box_space(vec![4]);
    let err = ObsBatcher::new(&space, 2, DType::U32, cpu()).unwrap_err();
    assert!(matches!(
        err,
        BridgeError::DType {
            actual: DType::U32,
            ..
        }
    ));

    let b = ObsBatcher::new(&space, 2, DType::F32, cpu()).unwrap();
    let err = b.to_tensor(&[0.0; 6]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "observation batch has 6 elements but shape [2, 4] needs 8"
    );
    assert!(matches!(
        b.one_to_tensor(&[0.0; 3]),
        Err(BridgeError::ElementCount {
            expected: 4,
            actual: 3,
            ..
        })
    ));

    let wrong_shape = Tensor::zeros((4, 2), DType::F32, &cpu()).unwrap();
    let err = b.check(&wrong_shape).unwrap_err();
    assert!(matches!(&err, BridgeError::Shape { actual, .. } if actual == &[4, 2]));
    assert!(err.to_string().contains("[2, 4]"), "{err}");
    let wrong_dtype = Tensor::zeros((2, 4), DType::F64, &cpu()).unwrap();
    assert!(matches!(
        b.check(&wrong_dtype),
        Err(BridgeError::DType {
            actual: DType::F64,
            expected: "f32",
            ..
        })
    ));
}

#[test]
fn discrete_action_tensor_of_the_wrong_shape() {
    let mut buf = ActionBuffer::new(&Space::discrete(2), 3);
    for dims in [vec![2], vec![3, 2], vec![], vec![1, 3]] {
        let t = Tensor::zeros(dims.as_slice(), DType::U32, &cpu()).unwrap();
        let err = buf.fill_from_tensor(&t).unwrap_err();
        assert!(matches!(&err, BridgeError::Shape { actual, .. } if actual == &dims));
        let msg = err.to_string();
        assert!(
            msg.contains("[3] or [3, 1]") && msg.contains(&format!("{dims:?}")),
            "{msg}"
        );
        assert!(msg.contains("Discrete(2)"), "{msg}");
    }
}

#[test]
fn discrete_action_tensor_of_the_wrong_dtype() {
    let mut buf = ActionBuffer::new(&Space::discrete(2), 2);
    let t = Tensor::zeros(2, DType::F16, &cpu()).unwrap();
    let err = buf.fill_from_tensor(&t).unwrap_err();
    assert!(matches!(
        err,
        BridgeError::DType {
            actual: DType::F16,
            ..
        }
    ));
    assert!(err.to_string().contains("u32"), "{err}");
}

#[test]
fn discrete_action_out_of_range() {
    let space = Space::Discrete { n: 3, start: -1 };
    let mut buf = ActionBuffer::new(&space, 4);
    let t = Tensor::new(&[0i64, 1, 2, -1], &cpu()).unwrap();
    let err = buf.fill_from_tensor(&t).unwrap_err();
    assert!(matches!(
        err,
        BridgeError::ActionOutOfRange {
            env: 2,
            action: 2,
            n: 3,
            start: -1
        }
    ));
    assert_eq!(
        err.to_string(),
        "action 2 of env 2 is outside the action space Discrete(n=3, start=-1), i.e. the range [-1, 2)"
    );
    let below = Tensor::new(&[-2i64, 0, 0, 0], &cpu()).unwrap();
    assert!(matches!(
        buf.fill_from_tensor(&below),
        Err(BridgeError::ActionOutOfRange {
            env: 0,
            action: -2,
            ..
        })
    ));
    // u32 actions from an argmax over 3 logits against a Discrete(2) space.
    let mut buf = ActionBuffer::new(&Space::discrete(2), 2);
    let t = Tensor::new(&[1u32, 2], &cpu()).unwrap();
    assert!(matches!(
        buf.fill_from_tensor(&t),
        Err(BridgeError::ActionOutOfRange {
            env: 1,
            action: 2,
            n: 2,
            start: 0
        })
    ));
}

#[test]
fn discrete_action_floats_must_be_integers() {
    let mut buf = ActionBuffer::new(&Space::discrete(4), 3);
    for (bad, env) in [(0.5f32, 1usize), (f32::NAN, 2), (f32::INFINITY, 0)] {
        let mut v = [1.0f32; 3];
        v[env] = bad;
        let t = Tensor::new(&v, &cpu()).unwrap();
        match buf.fill_from_tensor(&t).unwrap_err() {
            BridgeError::NonIntegralAction { env: e, value } => {
                assert_eq!(e, env);
                assert!(
                    value.is_nan() == bad.is_nan() && (bad.is_nan() || value == f64::from(bad))
                );
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let huge = Tensor::new(&[1.0f64, 1e300, 0.0], &cpu()).unwrap();
    assert!(matches!(
        buf.fill_from_tensor(&huge),
        Err(BridgeError::NonIntegralAction { env: 1, .. })
    ));
}

#[test]
fn box_action_tensor_of_the_wrong_shape_or_dtype() {
    let space = box_space(vec![2]);
    let mut buf = ActionBuffer::new(&space, 3);
    for dims in [vec![3], vec![2, 3], vec![3, 3], vec![3, 2, 1]] {
        let t = Tensor::zeros(dims.as_slice(), DType::F32, &cpu()).unwrap();
        let err = buf.fill_from_tensor(&t).unwrap_err();
        assert!(
            matches!(&err, BridgeError::Shape { actual, .. } if actual == &dims),
            "{dims:?}"
        );
        assert!(err.to_string().contains("[3, 2]"), "{err}");
    }
    let t = Tensor::zeros((3, 2), DType::U32, &cpu()).unwrap();
    let err = buf.fill_from_tensor(&t).unwrap_err();
    assert!(matches!(
        err,
        BridgeError::DType {
            actual: DType::U32,
            expected: "f32 or f64",
            ..
        }
    ));
}

#[test]
fn box_action_must_be_finite() {
    let space = box_space(vec![3]);
    let mut buf = ActionBuffer::new(&space, 2);
    let t = Tensor::new(&[[0.0f32, 0.1, 0.2], [0.3, f32::NAN, 0.5]], &cpu()).unwrap();
    let err = buf.fill_from_tensor(&t).unwrap_err();
    assert!(matches!(
        err,
        BridgeError::NonFiniteAction {
            env: 1,
            component: 1,
            ..
        }
    ));
    assert_eq!(
        err.to_string(),
        "component 1 of the action of env 1 is NaN, not a finite number"
    );
    let t = Tensor::new(&[[0.0f32, f32::NEG_INFINITY, 0.2], [0.0; 3]], &cpu()).unwrap();
    assert!(matches!(
        buf.fill_from_tensor(&t),
        Err(BridgeError::NonFiniteAction { env: 0, component: 1, value }) if value == f64::NEG_INFINITY
    ));
    // An f64 too large for f32 becomes infinite and is rejected, not clipped.
    let t = Tensor::new(&[[0.0f64, 0.0, 0.0], [0.0, 0.0, 1e300]], &cpu()).unwrap();
    assert!(matches!(
        buf.fill_from_tensor(&t),
        Err(BridgeError::NonFiniteAction {
            env: 1,
            component: 2,
            ..
        })
    ));
}

#[test]
fn discrete_actions_to_tensor_errors() {
    let space = Space::Discrete { n: 3, start: -1 };
    assert!(matches!(
        discrete_actions_to_tensor(&[0, 2], &space, DType::I64, &cpu()),
        Err(BridgeError::ActionOutOfRange {
            env: 1,
            action: 2,
            ..
        })
    ));
    let err = discrete_actions_to_tensor(&[0, -1], &space, DType::U32, &cpu()).unwrap_err();
    assert!(matches!(
        err,
        BridgeError::NotRepresentable {
            index: 1,
            value: -1,
            dtype: DType::U32,
            ..
        }
    ));
    let big = Space::discrete(1000);
    assert!(matches!(
        discrete_actions_to_tensor(&[999], &big, DType::U8, &cpu()),
        Err(BridgeError::NotRepresentable {
            value: 999,
            dtype: DType::U8,
            ..
        })
    ));
    assert!(matches!(
        discrete_actions_to_tensor(&[0], &space, DType::F32, &cpu()),
        Err(BridgeError::DType {
            actual: DType::F32,
            ..
        })
    ));
    assert!(matches!(
        discrete_actions_to_tensor(&[0], &box_space(vec![1]), DType::I64, &cpu()),
        Err(BridgeError::Env(EnvError::ActionKind { .. }))
    ));
}

#[test]
fn candle_and_env_errors_convert() {
    let e: BridgeError = EnvError::NeedsReset("step").into();
    assert!(matches!(e, BridgeError::Env(EnvError::NeedsReset(_))));
    assert_eq!(e.to_string(), "step: call reset() first");
    let e: BridgeError = candle_core::Error::Msg("boom".into()).into();
    assert!(matches!(e, BridgeError::Candle(_)));
}
