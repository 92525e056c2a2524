//! Conversions between `ndarray` arrays and tensors (feature `ndarray`).
//!
//! Arrays in standard (C) layout are copied with one memcpy; other layouts (transposed or
//! sliced views) are gathered in logical order with one pass.

use crate::error::{BridgeError, Result};
use crate::host::{check_dtype, with_host_slice};
use ::ndarray::{Array1, Array2, ArrayBase, ArrayD, ArrayViewMut, Data, Dimension, IxDyn};
use candle_core::{Device, Tensor, WithDType};

/// Copies an array or array view of any dimension into a tensor of the same shape.
///
/// ```
/// use candle_core::Device;
/// use ndarray::array;
/// use rl_tensor_bridge::ndarray::{array_to_tensor, tensor_to_array2};
///
/// let a = array![[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]];
/// let t = array_to_tensor(&a.t(), &Device::Cpu)?; // a transposed view
/// assert_eq!(t.dims(), &[3, 2]);
/// assert_eq!(tensor_to_array2::<f32>(&t)?, a.t());
/// # Ok::<(), rl_tensor_bridge::BridgeError>(())
/// ```
pub fn array_to_tensor<T, S, D>(a: &ArrayBase<S, D>, device: &Device) -> Result<Tensor>
where
    T: WithDType,
    S: Data<Elem = T>,
    D: Dimension,
{
    let shape = a.shape().to_vec();
    let t = match a.as_slice() {
        Some(s) => Tensor::from_slice(s, shape, device)?,
        None => Tensor::from_vec(a.iter().copied().collect::<Vec<T>>(), shape, device)?,
    };
    Ok(t)
}

fn check_rank(t: &Tensor, rank: usize) -> Result<()> {
    if t.rank() == rank {
        Ok(())
    } else {
        Err(BridgeError::Shape {
            what: "tensor".into(),
            expected: format!("a {rank}-D shape"),
            actual: t.dims().to_vec(),
        })
    }
}

/// Copies a tensor of any rank into a dynamic-dimension array of the same shape.
pub fn tensor_to_arrayd<T: WithDType>(t: &Tensor) -> Result<ArrayD<T>> {
    check_dtype::<T>(t, "tensor")?;
    let data = with_host_slice(t, |s: &[T]| s.to_vec())?;
    ArrayD::from_shape_vec(IxDyn(t.dims()), data).map_err(|e| shape_error(t, e))
}

/// Copies a 1-D tensor into an [`Array1`].
pub fn tensor_to_array1<T: WithDType>(t: &Tensor) -> Result<Array1<T>> {
    check_rank(t, 1)?;
    check_dtype::<T>(t, "tensor")?;
    Ok(Array1::from_vec(with_host_slice(t, |s: &[T]| s.to_vec())?))
}

/// Copies a 2-D tensor into an [`Array2`].
pub fn tensor_to_array2<T: WithDType>(t: &Tensor) -> Result<Array2<T>> {
    check_rank(t, 2)?;
    check_dtype::<T>(t, "tensor")?;
    let data = with_host_slice(t, |s: &[T]| s.to_vec())?;
    Array2::from_shape_vec((t.dims()[0], t.dims()[1]), data).map_err(|e| shape_error(t, e))
}

/// Copies a tensor into an existing array (or mutable view) of exactly the same shape, in any
/// memory layout, without allocating for contiguous CPU tensors.
pub fn copy_tensor_to_array<T: WithDType, D: Dimension>(
    t: &Tensor,
    out: &mut ArrayViewMut<'_, T, D>,
) -> Result<()> {
    if t.dims() != out.shape() {
        return Err(BridgeError::Shape {
            what: "tensor copied into an array".into(),
            expected: format!("{:?} (the array's shape)", out.shape()),
            actual: t.dims().to_vec(),
        });
    }
    check_dtype::<T>(t, "tensor")?;
    with_host_slice(t, |s: &[T]| match out.as_slice_mut() {
        Some(o) => o.copy_from_slice(s),
        None => {
            for (o, &v) in out.iter_mut().zip(s) {
                *o = v;
            }
        }
    })
}

fn shape_error(t: &Tensor, e: ::ndarray::ShapeError) -> BridgeError {
    BridgeError::Candle(candle_core::Error::Msg(format!(
        "tensor of shape {:?} does not fit an array: {e}",
        t.dims()
    )))
}
