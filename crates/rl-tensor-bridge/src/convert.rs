//! Conversions between host data (`&[T]`, `Vec<T>`, `[T; N]`, rows, flat row batches) and
//! [`Tensor`]s, on an explicit [`Device`].
//!
//! Host to tensor costs one copy (none for [`vec_to_tensor`] on the CPU). Tensor to host reads
//! the storage of contiguous CPU tensors in place; other tensors are staged through one copy.

use crate::error::{BridgeError, Result};
use crate::host::{check_dtype, check_out_len, with_host_slice};
use candle_core::{DType, Device, Shape, Tensor, WithDType};

fn check_count(what: &'static str, shape: &Shape, actual: usize) -> Result<()> {
    let expected = shape.elem_count();
    if expected == actual {
        Ok(())
    } else {
        Err(BridgeError::ElementCount {
            what,
            shape: shape.dims().to_vec(),
            expected,
            actual,
        })
    }
}

/// Copies `data` into a new tensor of shape `shape` (dtype `T`) on `device`.
///
/// ```
/// use candle_core::Device;
/// use rl_tensor_bridge::slice_to_tensor;
///
/// let t = slice_to_tensor(&[1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], (2, 3), &Device::Cpu)?;
/// assert_eq!(t.dims(), &[2, 3]);
/// assert!(slice_to_tensor(&[1.0f32; 5], (2, 3), &Device::Cpu).is_err());
/// # Ok::<(), rl_tensor_bridge::BridgeError>(())
/// ```
pub fn slice_to_tensor<T: WithDType, S: Into<Shape>>(
    data: &[T],
    shape: S,
    device: &Device,
) -> Result<Tensor> {
    let shape = shape.into();
    check_count("host data", &shape, data.len())?;
    Ok(Tensor::from_slice(data, shape, device)?)
}

/// Moves `data` into a new tensor of shape `shape`; on the CPU the vector becomes the tensor's
/// storage without a copy.
pub fn vec_to_tensor<T: WithDType, S: Into<Shape>>(
    data: Vec<T>,
    shape: S,
    device: &Device,
) -> Result<Tensor> {
    let shape = shape.into();
    check_count("host data", &shape, data.len())?;
    Ok(Tensor::from_vec(data, shape, device)?)
}

/// Copies a fixed-size array into a 1-D tensor of shape `[N]`.
pub fn array_to_tensor<T: WithDType, const N: usize>(
    data: &[T; N],
    device: &Device,
) -> Result<Tensor> {
    Ok(Tensor::from_slice(data.as_slice(), N, device)?)
}

/// Copies `n_rows` rows of `n_cols` elements, stored row after row in `data`, into a
/// `[n_rows, n_cols]` tensor: the layout of a vector environment's observation buffer.
pub fn batch_to_tensor<T: WithDType>(
    data: &[T],
    n_rows: usize,
    n_cols: usize,
    device: &Device,
) -> Result<Tensor> {
    let shape = Shape::from((n_rows, n_cols));
    check_count("row batch", &shape, data.len())?;
    Ok(Tensor::from_slice(data, shape, device)?)
}

/// Stacks equally long rows (`&[[T; N]]`, `&[Vec<T>]`, `&[&[T]]`, ...) into a `[rows, width]`
/// tensor with one copy. An empty list gives a `[0, 0]` tensor.
///
/// ```
/// use candle_core::Device;
/// use rl_tensor_bridge::rows_to_tensor;
///
/// let t = rows_to_tensor(&[[1u32, 2], [3, 4], [5, 6]], &Device::Cpu)?;
/// assert_eq!(t.dims(), &[3, 2]);
/// assert!(rows_to_tensor(&[vec![1.0f32], vec![2.0, 3.0]], &Device::Cpu).is_err());
/// # Ok::<(), rl_tensor_bridge::BridgeError>(())
/// ```
pub fn rows_to_tensor<T: WithDType, R: AsRef<[T]>>(rows: &[R], device: &Device) -> Result<Tensor> {
    let width = rows.first().map_or(0, |r| r.as_ref().len());
    if let Some((row, r)) = rows
        .iter()
        .enumerate()
        .find(|(_, r)| r.as_ref().len() != width)
    {
        return Err(BridgeError::RaggedRows {
            row,
            expected: width,
            actual: r.as_ref().len(),
        });
    }
    let mut data = Vec::with_capacity(rows.len() * width);
    for r in rows {
        data.extend_from_slice(r.as_ref());
    }
    Ok(Tensor::from_vec(data, (rows.len(), width), device)?)
}

/// Copies `data` into a tensor of shape `shape` and dtype `dtype`, converting each element
/// as Rust's `as` does: `dtype` is `T`'s own dtype (no conversion), `F32` or `F64`.
///
/// This is how `f32` observations become an `f64` tensor for an `f64` model in one pass.
///
/// ```
/// use candle_core::{DType, Device};
/// use rl_tensor_bridge::slice_to_tensor_as;
///
/// let t = slice_to_tensor_as(&[0.5f32, -1.0], 2, DType::F64, &Device::Cpu)?;
/// assert_eq!(t.to_vec1::<f64>()?, vec![0.5, -1.0]);
/// # Ok::<(), rl_tensor_bridge::BridgeError>(())
/// ```
pub fn slice_to_tensor_as<T: WithDType, S: Into<Shape>>(
    data: &[T],
    shape: S,
    dtype: DType,
    device: &Device,
) -> Result<Tensor> {
    let shape = shape.into();
    check_count("host data", &shape, data.len())?;
    let t = if dtype == T::DTYPE {
        Tensor::from_slice(data, shape, device)?
    } else {
        // The converted vector becomes the tensor's storage: still a single pass and allocation.
        match dtype {
            DType::F32 => {
                Tensor::from_iter(data.iter().map(|v| v.to_f64() as f32), device)?.reshape(shape)?
            }
            DType::F64 => {
                Tensor::from_iter(data.iter().map(|v| v.to_f64()), device)?.reshape(shape)?
            }
            other => {
                return Err(BridgeError::DType {
                    what: "requested tensor",
                    expected: "f32, f64 or the host data's own dtype",
                    actual: other,
                })
            }
        }
    };
    Ok(t)
}

/// Copies a tensor's elements, flattened in row-major order, into a new vector.
/// The tensor's dtype must be `T`'s.
pub fn tensor_to_vec<T: WithDType>(t: &Tensor) -> Result<Vec<T>> {
    check_dtype::<T>(t, "tensor")?;
    with_host_slice(t, |s: &[T]| s.to_vec())
}

/// Copies a tensor's elements, flattened in row-major order, into `out`, which must have
/// exactly as many elements. No allocation for contiguous CPU tensors: this is the call to
/// make every step into a reused buffer.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use rl_tensor_bridge::copy_tensor_to_slice;
///
/// let t = Tensor::new(&[[1i64, 2], [3, 4]], &Device::Cpu)?;
/// let mut out = [0i64; 4];
/// copy_tensor_to_slice(&t, &mut out)?;
/// assert_eq!(out, [1, 2, 3, 4]);
/// assert!(copy_tensor_to_slice(&t, &mut [0i64; 3]).is_err());
/// # Ok::<(), rl_tensor_bridge::BridgeError>(())
/// ```
pub fn copy_tensor_to_slice<T: WithDType>(t: &Tensor, out: &mut [T]) -> Result<()> {
    check_dtype::<T>(t, "tensor")?;
    check_out_len(t, out.len())?;
    with_host_slice(t, |s: &[T]| out.copy_from_slice(s))
}

/// Copies a 1-D tensor of shape `[N]` into an array.
pub fn tensor_to_array<T: WithDType, const N: usize>(t: &Tensor) -> Result<[T; N]> {
    if t.dims() != [N] {
        return Err(BridgeError::Shape {
            what: "tensor".into(),
            expected: format!("[{N}]"),
            actual: t.dims().to_vec(),
        });
    }
    check_dtype::<T>(t, "tensor")?;
    let mut out = [T::zero(); N];
    with_host_slice(t, |s: &[T]| out.copy_from_slice(s))?;
    Ok(out)
}

/// Copies a 2-D tensor into one vector per row.
pub fn tensor_to_rows<T: WithDType>(t: &Tensor) -> Result<Vec<Vec<T>>> {
    let &[n_rows, n_cols] = t.dims() else {
        return Err(BridgeError::Shape {
            what: "tensor".into(),
            expected: "a 2-D shape [rows, cols]".into(),
            actual: t.dims().to_vec(),
        });
    };
    check_dtype::<T>(t, "tensor")?;
    with_host_slice(t, |s: &[T]| {
        if n_cols == 0 {
            vec![Vec::new(); n_rows]
        } else {
            s.chunks_exact(n_cols).map(<[T]>::to_vec).collect()
        }
    })
}

/// Copies a floating-point tensor (`f32` or `f64`) into an `f32` buffer of the same element
/// count, converting `f64` values as `as f32` does (out-of-range values become infinities).
pub fn copy_tensor_to_f32(t: &Tensor, out: &mut [f32]) -> Result<()> {
    check_out_len(t, out.len())?;
    match t.dtype() {
        DType::F32 => with_host_slice(t, |s: &[f32]| out.copy_from_slice(s)),
        DType::F64 => with_host_slice(t, |s: &[f64]| {
            for (o, &v) in out.iter_mut().zip(s) {
                *o = v as f32;
            }
        }),
        other => Err(BridgeError::DType {
            what: "tensor",
            expected: "f32 or f64",
            actual: other,
        }),
    }
}

/// Copies a floating-point tensor (`f32` or `f64`) into an `f64` buffer of the same element
/// count (exactly: every `f32` is an `f64`).
pub fn copy_tensor_to_f64(t: &Tensor, out: &mut [f64]) -> Result<()> {
    check_out_len(t, out.len())?;
    match t.dtype() {
        DType::F64 => with_host_slice(t, |s: &[f64]| out.copy_from_slice(s)),
        DType::F32 => with_host_slice(t, |s: &[f32]| {
            for (o, &v) in out.iter_mut().zip(s) {
                *o = f64::from(v);
            }
        }),
        other => Err(BridgeError::DType {
            what: "tensor",
            expected: "f32 or f64",
            actual: other,
        }),
    }
}

/// Copies an integer tensor (`u8`, `u32`, `i16`, `i32` or `i64`) into an `i64` buffer of the
/// same element count; every such value is exactly an `i64`.
pub fn copy_tensor_to_i64(t: &Tensor, out: &mut [i64]) -> Result<()> {
    check_out_len(t, out.len())?;
    fn widen<T: WithDType + Into<i64>>(t: &Tensor, out: &mut [i64]) -> Result<()> {
        with_host_slice(t, |s: &[T]| {
            for (o, &v) in out.iter_mut().zip(s) {
                *o = v.into();
            }
        })
    }
    match t.dtype() {
        DType::I64 => with_host_slice(t, |s: &[i64]| out.copy_from_slice(s)),
        DType::U32 => widen::<u32>(t, out),
        DType::I32 => widen::<i32>(t, out),
        DType::I16 => widen::<i16>(t, out),
        DType::U8 => widen::<u8>(t, out),
        other => Err(BridgeError::DType {
            what: "tensor",
            expected: "u8, u32, i16, i32 or i64",
            actual: other,
        }),
    }
}
