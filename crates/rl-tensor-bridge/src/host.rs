//! Borrowing a tensor's elements as a host slice: straight from the storage for contiguous CPU
//! tensors (no copy, no allocation), through one device-to-host copy otherwise.

use crate::error::{BridgeError, Result};
use candle_core::{DType, Device, Storage, Tensor, WithDType};

/// Runs `f` on the elements of `t` in row-major order, as a slice of its own element type `T`.
///
/// The caller checks `T::DTYPE == t.dtype()` first, so that a mismatch is reported as a
/// [`BridgeError::DType`] naming the conversion rather than as a Candle error.
pub(crate) fn with_host_slice<T: WithDType, R>(t: &Tensor, f: impl FnOnce(&[T]) -> R) -> Result<R> {
    debug_assert_eq!(T::DTYPE, t.dtype());
    let staged;
    let src = if t.device().is_cpu() && t.is_contiguous() {
        t
    } else {
        // Other devices and strided views: one copy into contiguous host memory.
        staged = t.to_device(&Device::Cpu)?.contiguous()?;
        &staged
    };
    let (storage, layout) = src.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else {
        return Err(
            candle_core::Error::Msg("tensor is not in CPU memory after to_device".into()).into(),
        );
    };
    let (start, end) = layout.contiguous_offsets().ok_or_else(|| {
        candle_core::Error::Msg("tensor is not contiguous after contiguous()".into())
    })?;
    let all = cpu.as_slice::<T>()?;
    let data = all.get(start..end).ok_or_else(|| {
        candle_core::Error::Msg(format!(
            "layout offsets {start}..{end} exceed the storage's {} elements",
            all.len()
        ))
    })?;
    Ok(f(data))
}

/// Errors unless `t` has dtype `T`.
pub(crate) fn check_dtype<T: WithDType>(t: &Tensor, what: &'static str) -> Result<()> {
    if t.dtype() == T::DTYPE {
        Ok(())
    } else {
        Err(BridgeError::DType {
            what,
            expected: dtype_name(T::DTYPE),
            actual: t.dtype(),
        })
    }
}

/// Lower-case name of a dtype, as used in error messages.
pub(crate) fn dtype_name(d: DType) -> &'static str {
    d.as_str()
}

/// Errors unless `out` has exactly as many elements as `t`.
pub(crate) fn check_out_len(t: &Tensor, out_len: usize) -> Result<()> {
    if t.elem_count() == out_len {
        Ok(())
    } else {
        Err(BridgeError::ElementCount {
            what: "output buffer",
            shape: t.dims().to_vec(),
            expected: t.elem_count(),
            actual: out_len,
        })
    }
}
