//! Reading a flat PyTorch `state_dict` saved by `torch.save` (a zip holding `<dir>/data.pkl`
//! and one raw little-endian storage per tensor under `<dir>/data/<key>`) from bytes in memory.
//!
//! The archive is read by [`crate::zipread`], the pickle by [`crate::pickle`] (both bounded);
//! this module walks the few object shapes a state dict uses with checked arithmetic:
//!
//! - the archive must be unambiguous: exactly one `data.pkl`, every member under its
//!   directory, no key twice in the state dict;
//! - a storage must hold exactly the element count its reference declares;
//! - a tensor's rank is at most [`MAX_TENSOR_RANK`], its element count and its furthest
//!   element (offset plus strides) are computed with checked arithmetic and must lie inside its
//!   storage *before* its values are gathered;
//! - views may share storages, but all tensors together may decode at most one f32 per byte of
//!   the archive (at most 4x the archive's size in memory), so a few views of one big storage
//!   cannot multiply it.

use crate::error::ReadError;
use crate::limits::{MAX_PICKLE_BYTES, MAX_TENSOR_RANK};
use crate::pickle::{self, Id, Pickle, Value};
use crate::validate::HostTensor;
use crate::zipread::ZipArchive;
use std::collections::BTreeMap;

fn corrupt(m: impl Into<String>) -> ReadError {
    ReadError::Corrupt(m.into())
}

/// One tensor of the state dict, as described by `torch._utils._rebuild_tensor_v2`.
struct TensorRef {
    storage_key: String,
    dtype: String,
    storage_numel: usize,
    offset: usize,
    size: Vec<usize>,
    stride: Vec<usize>,
}

fn as_usize(p: &Pickle, id: Id) -> Option<usize> {
    match p.get(id) {
        Value::Int(i) => usize::try_from(*i).ok(),
        _ => None,
    }
}

fn usize_tuple(p: &Pickle, id: Id) -> Option<Vec<usize>> {
    match p.get(id) {
        Value::Tuple(v) if v.len() <= MAX_TENSOR_RANK => {
            v.iter().map(|&i| as_usize(p, i)).collect()
        }
        _ => None,
    }
}

fn global(p: &Pickle, id: Id) -> Option<(&str, &str)> {
    match p.get(id) {
        Value::Global { module, name } => Some((module, name)),
        _ => None,
    }
}

/// Recognizes `_rebuild_tensor_v2(storage, offset, size, stride, ...)`, possibly wrapped once
/// in `_rebuild_parameter`. Returns `Ok(None)` for values that are not calls.
fn tensor_ref(p: &Pickle, value: Id) -> Result<Option<TensorRef>, ReadError> {
    let Value::Call { callable, args } = p.get(value) else {
        return Ok(None);
    };
    let (mut callable, mut args) = (*callable, *args);
    if global(p, callable) == Some(("torch._utils", "_rebuild_parameter")) {
        // _rebuild_parameter(data, requires_grad, backward_hooks): one level, never a chain.
        let inner = match p.get(args) {
            Value::Tuple(a) => a.first().copied(),
            _ => None,
        };
        match inner.map(|i| p.get(i)) {
            Some(Value::Call {
                callable: c,
                args: a,
            }) => (callable, args) = (*c, *a),
            _ => return Err(corrupt("malformed _rebuild_parameter")),
        }
    }
    match global(p, callable) {
        Some(("torch._utils", "_rebuild_tensor_v2")) => {}
        Some((module, name)) => {
            return Err(ReadError::Unsupported(format!(
                "a {module}.{name} object, not a plain tensor"
            )))
        }
        None => return Err(corrupt("a call of something that is not a class")),
    }
    let Value::Tuple(args) = p.get(args) else {
        return Err(corrupt("tensor arguments are not a tuple"));
    };
    let bad = |what: &str| corrupt(format!("malformed _rebuild_tensor_v2 arguments: {what}"));
    let arg = |i: usize| args.get(i).copied();
    // ('storage', torch.FloatStorage, key, location, numel)
    let storage = match arg(0).map(|i| p.get(i)) {
        Some(Value::PersistentId(s)) => *s,
        _ => return Err(bad("no storage reference")),
    };
    let Value::Tuple(st) = p.get(storage) else {
        return Err(bad("the storage reference is not a tuple"));
    };
    let field = |i: usize| st.get(i).map(|&id| p.get(id));
    if !matches!(field(0), Some(Value::Str(s)) if s == "storage") {
        return Err(bad("the storage reference is not ('storage', ...)"));
    }
    let dtype = match st.get(1).and_then(|&i| global(p, i)) {
        Some(("torch", name)) => name.to_string(),
        _ => return Err(bad("no storage type")),
    };
    let Some(Value::Str(key)) = field(2) else {
        return Err(bad("no storage key"));
    };
    let storage_numel = st
        .get(4)
        .and_then(|&i| as_usize(p, i))
        .ok_or_else(|| bad("no storage size"))?;
    let offset = arg(1)
        .and_then(|i| as_usize(p, i))
        .ok_or_else(|| bad("offset"))?;
    let size = arg(2)
        .and_then(|i| usize_tuple(p, i))
        .ok_or_else(|| bad("size (or rank over the limit)"))?;
    let stride = arg(3)
        .and_then(|i| usize_tuple(p, i))
        .ok_or_else(|| bad("stride"))?;
    if size.len() != stride.len() {
        return Err(bad("size and stride differ in rank"));
    }
    Ok(Some(TensorRef {
        storage_key: key.clone(),
        dtype,
        storage_numel,
        offset,
        size,
        stride,
    }))
}

/// Elements decoded so far, and how many all tensors together may decode.
struct Budget {
    decoded: usize,
    limit: usize,
}

/// Gathers a strided view of `storage` (elements of `elem` bytes, decoded by `decode`) into a
/// contiguous vector. The whole view is bounds-checked before anything is allocated.
fn gather(
    t: &TensorRef,
    storage: &[u8],
    elem: usize,
    decode: fn(&[u8]) -> f32,
    budget: &mut Budget,
) -> Result<Vec<f32>, ReadError> {
    let n_elems = t.storage_numel;
    if n_elems.checked_mul(elem) != Some(storage.len()) {
        return Err(corrupt(format!(
            "its storage declares {n_elems} elements of {elem} bytes but holds {} bytes",
            storage.len()
        )));
    }
    let count = t
        .size
        .iter()
        .try_fold(1usize, |a, &s| a.checked_mul(s))
        .ok_or_else(|| corrupt(format!("shape {:?} overflows", t.size)))?;
    if count > 0 {
        // The furthest element the view touches.
        let last = t
            .size
            .iter()
            .zip(&t.stride)
            .try_fold(t.offset, |pos, (&s, &st)| {
                (s - 1).checked_mul(st).and_then(|d| pos.checked_add(d))
            })
            .ok_or_else(|| corrupt("offset and strides overflow"))?;
        if last >= n_elems {
            return Err(corrupt(format!(
                "shape {:?}, stride {:?} and offset {} reach element {last} of a storage of {n_elems}",
                t.size, t.stride, t.offset
            )));
        }
    }
    let total = budget
        .decoded
        .checked_add(count)
        .filter(|&t| t <= budget.limit)
        .ok_or_else(|| {
            ReadError::limit(
                format!(
                    "{}+{count} decoded tensor elements (views sharing storages)",
                    budget.decoded
                ),
                budget.limit,
            )
        })?;
    budget.decoded = total;
    let mut out = Vec::with_capacity(count);
    let mut idx = vec![0usize; t.size.len()];
    for _ in 0..count {
        // In range (checked above), so these cannot overflow or miss; stay checked anyway.
        let pos = idx
            .iter()
            .zip(&t.stride)
            .try_fold(t.offset, |pos, (&i, &s)| {
                i.checked_mul(s).and_then(|d| pos.checked_add(d))
            })
            .ok_or_else(|| corrupt("index overflow"))?;
        let bytes = pos
            .checked_mul(elem)
            .and_then(|start| storage.get(start..start.checked_add(elem)?))
            .ok_or_else(|| corrupt(format!("element {pos} lies outside its storage")))?;
        out.push(decode(bytes));
        // Advance the row-major multi-index.
        for (i, &s) in idx.iter_mut().zip(&t.size).rev() {
            *i += 1;
            if *i < s {
                break;
            }
            *i = 0;
        }
    }
    Ok(out)
}

fn f32_le(b: &[u8]) -> f32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(b);
    f32::from_le_bytes(a)
}

fn f64_le(b: &[u8]) -> f32 {
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    f64::from_le_bytes(a) as f32
}

/// The one `data.pkl` of the archive and the directory prefix all members share.
fn archive_root<'a>(zip: &ZipArchive<'a>) -> Result<(String, &'a [u8]), ReadError> {
    let pickles: Vec<&str> = zip
        .names()
        .filter(|n| {
            *n == "data.pkl"
                || n.strip_suffix("/data.pkl")
                    .is_some_and(|dir| !dir.is_empty() && !dir.contains('/'))
        })
        .collect();
    let pkl_name = match pickles.as_slice() {
        [one] => one.to_string(),
        [] => return Err(corrupt("no data.pkl in the PyTorch archive")),
        [a, b, ..] => {
            return Err(corrupt(format!(
                "ambiguous PyTorch archive: two pickles, {a} and {b}"
            )))
        }
    };
    let prefix = pkl_name[..pkl_name.len() - "data.pkl".len()].to_string();
    if let Some(stray) = zip.names().find(|n| !n.starts_with(prefix.as_str())) {
        return Err(corrupt(format!(
            "ambiguous PyTorch archive: member {stray} lies outside the archive directory of {pkl_name}"
        )));
    }
    let pkl = zip.get(&pkl_name)?.unwrap_or(&[]);
    Ok((prefix, pkl))
}

/// Reads a `torch.save`d flat state dict (the bytes of a `.pth` file) into f32 host tensors,
/// by key. Entries that are not tensors (none in a `state_dict`) are skipped; tensors must be
/// float32 or float64.
pub(crate) fn read_state_dict(pth: &[u8]) -> Result<BTreeMap<String, HostTensor>, ReadError> {
    let zip = ZipArchive::new(pth)?;
    let (prefix, pkl) = archive_root(&zip)?;
    if let Some(order) = zip.get(&format!("{prefix}byteorder"))? {
        if order != b"little" {
            return Err(ReadError::Unsupported(format!(
                "byte order {:?}",
                String::from_utf8_lossy(order)
            )));
        }
    }
    if pkl.len() > MAX_PICKLE_BYTES {
        return Err(ReadError::limit(
            format!("data.pkl of {} bytes", pkl.len()),
            MAX_PICKLE_BYTES,
        ));
    }
    let p = pickle::read(pkl).map_err(|e| e.context(&format!("{prefix}data.pkl")))?;
    let Value::Dict(entries) = p.get(p.root()) else {
        return Err(corrupt(format!(
            "{prefix}data.pkl does not hold a state dict"
        )));
    };
    // One f32 per archive byte: 4x the archive at most, 1x when every tensor has its own
    // float32 storage.
    let mut budget = Budget {
        decoded: 0,
        limit: pth.len(),
    };
    let mut tensors = BTreeMap::new();
    for &(key, value) in entries {
        let Value::Str(name) = p.get(key) else {
            continue;
        };
        let t = match tensor_ref(&p, value) {
            Ok(Some(t)) => t,
            Ok(None) => continue,
            Err(e) => return Err(e.context(&format!("entry {name}"))),
        };
        if tensors.contains_key(name) {
            return Err(corrupt(format!(
                "ambiguous state dict: entry {name} appears twice"
            )));
        }
        let storage_name = format!("{prefix}data/{}", t.storage_key);
        let storage = zip
            .get(&storage_name)?
            .ok_or_else(|| corrupt(format!("entry {name}: missing storage {storage_name}")))?;
        let data = match t.dtype.as_str() {
            "FloatStorage" => gather(&t, storage, 4, f32_le, &mut budget),
            "DoubleStorage" => gather(&t, storage, 8, f64_le, &mut budget),
            other => Err(ReadError::Unsupported(format!(
                "dtype {other} (float32/float64 only)"
            ))),
        }
        .map_err(|e| e.context(&format!("entry {name}")))?;
        tensors.insert(
            name.clone(),
            HostTensor {
                shape: t.size,
                data,
            },
        );
    }
    Ok(tensors)
}
