//! Reading a flat PyTorch `state_dict` saved by `torch.save` (a zip holding `*/data.pkl` and
//! one raw little-endian storage per tensor under `*/data/<key>`) from bytes in memory.
//!
//! The pickle is parsed by `candle_core::pickle::Stack`; the object tree is walked here with
//! checked indexing and checked arithmetic, so a malformed file gives an error, not a panic.

use candle_core::pickle::{Object, Stack};
use candle_core::{Device, Tensor};
use std::collections::HashMap;
use std::io::{Cursor, Read};

/// Reads every member of a zip archive into memory (checking each member's CRC-32).
pub(crate) fn read_zip_members(bytes: &[u8]) -> Result<HashMap<String, Vec<u8>>, String> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| format!("not a readable zip archive: {e}"))?;
    let mut members = HashMap::new();
    for i in 0..zip.len() {
        let mut f = zip
            .by_index(i)
            .map_err(|e| format!("zip member #{i}: {e}"))?;
        let name = f
            .name()
            .map_err(|e| format!("zip member #{i}: {e}"))?
            .into_owned();
        // Bound the allocation by what the archive can actually hold.
        let mut buf = Vec::with_capacity((f.size() as usize).min(bytes.len().saturating_mul(2)));
        f.read_to_end(&mut buf)
            .map_err(|e| format!("zip member {name}: {e}"))?;
        members.insert(name, buf);
    }
    Ok(members)
}

/// One tensor of the state dict, as described by `torch._utils._rebuild_tensor_v2`.
struct TensorRef {
    storage_key: String,
    dtype: String,
    offset: usize,
    size: Vec<usize>,
    stride: Vec<usize>,
}

fn as_usize(o: &Object) -> Option<usize> {
    match o {
        Object::Int(i) => usize::try_from(*i).ok(),
        Object::Long(i) => usize::try_from(*i).ok(),
        _ => None,
    }
}

fn usize_tuple(o: &Object) -> Option<Vec<usize>> {
    match o {
        Object::Tuple(v) => v.iter().map(as_usize).collect(),
        _ => None,
    }
}

/// Recognizes `_rebuild_tensor_v2(storage, offset, size, stride, ...)`, possibly wrapped in
/// `_rebuild_parameter`. Returns `Ok(None)` for non-tensor values.
fn tensor_ref(value: &Object) -> Result<Option<TensorRef>, String> {
    let Object::Reduce { callable, args } = value else {
        return Ok(None);
    };
    let Object::Class {
        module_name,
        class_name,
    } = callable.as_ref()
    else {
        return Ok(None);
    };
    let args = match args.as_ref() {
        Object::Tuple(a) => a,
        _ => return Err("tensor arguments are not a tuple".into()),
    };
    if module_name == "torch._utils" && class_name == "_rebuild_parameter" {
        return match args.first() {
            Some(inner) => tensor_ref(inner),
            None => Err("empty _rebuild_parameter".into()),
        };
    }
    if module_name != "torch._utils" || class_name != "_rebuild_tensor_v2" {
        return Err(format!(
            "a {module_name}.{class_name} object, not a plain tensor"
        ));
    }
    let bad = || "malformed _rebuild_tensor_v2 arguments".to_string();
    let storage = match args.first() {
        Some(Object::PersistentLoad(s)) => s.as_ref(),
        _ => return Err(bad()),
    };
    // ('storage', torch.FloatStorage, key, location, numel)
    let Object::Tuple(st) = storage else {
        return Err(bad());
    };
    let (
        Some(Object::Class {
            class_name: dtype, ..
        }),
        Some(Object::Unicode(key)),
    ) = (st.get(1), st.get(2))
    else {
        return Err(bad());
    };
    let offset = args.get(1).and_then(as_usize).ok_or_else(bad)?;
    let size = args.get(2).and_then(usize_tuple).ok_or_else(bad)?;
    let stride = args.get(3).and_then(usize_tuple).ok_or_else(bad)?;
    if size.len() != stride.len() {
        return Err(bad());
    }
    Ok(Some(TensorRef {
        storage_key: key.clone(),
        dtype: dtype.clone(),
        offset,
        size,
        stride,
    }))
}

/// Gathers a strided view of `storage` (elements of `elem` bytes, decoded by `decode`) into
/// a contiguous f32 vector, with every index bounds-checked.
fn gather(
    t: &TensorRef,
    storage: &[u8],
    elem: usize,
    decode: fn(&[u8]) -> f32,
) -> Result<Vec<f32>, String> {
    let n_elems = storage.len() / elem;
    let count = t
        .size
        .iter()
        .try_fold(1usize, |a, &s| a.checked_mul(s))
        .ok_or("tensor too large")?;
    if count > n_elems {
        return Err(format!(
            "{} elements but the storage holds {n_elems}",
            count
        ));
    }
    let mut out = Vec::with_capacity(count);
    let mut idx = vec![0usize; t.size.len()];
    for _ in 0..count {
        let mut pos = t.offset;
        for (i, s) in idx.iter().zip(&t.stride) {
            pos = i
                .checked_mul(*s)
                .and_then(|d| pos.checked_add(d))
                .ok_or("index overflow")?;
        }
        if pos >= n_elems {
            return Err(format!(
                "element {pos} lies outside its storage of {n_elems}"
            ));
        }
        out.push(decode(&storage[pos * elem..(pos + 1) * elem]));
        // Advance the row-major multi-index.
        for d in (0..idx.len()).rev() {
            idx[d] += 1;
            if idx[d] < t.size[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    Ok(out)
}

fn f32_le(b: &[u8]) -> f32 {
    f32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn f64_le(b: &[u8]) -> f32 {
    f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32
}

/// Reads a `torch.save`d flat state dict (the bytes of a `.pth` file) into f32 tensors on
/// `device`. Non-tensor entries (such as `_metadata`) are skipped.
pub(crate) fn read_state_dict(
    pth: &[u8],
    device: &Device,
) -> Result<HashMap<String, Tensor>, String> {
    let members = read_zip_members(pth)?;
    let pkl_name = members
        .keys()
        .find(|n| n.ends_with("/data.pkl") || n.as_str() == "data.pkl")
        .ok_or("no data.pkl in the PyTorch archive")?
        .clone();
    let prefix = &pkl_name[..pkl_name.len() - "data.pkl".len()];
    if let Some(order) = members.get(&format!("{prefix}byteorder")) {
        if order.as_slice() != b"little" {
            return Err(format!(
                "byte order {:?} is not supported",
                String::from_utf8_lossy(order)
            ));
        }
    }
    let mut stack = Stack::empty();
    stack
        .read_loop(&mut Cursor::new(&members[&pkl_name]))
        .map_err(|e| format!("{pkl_name}: cannot parse the pickle: {e}"))?;
    let root = stack.finalize().map_err(|e| format!("{pkl_name}: {e}"))?;
    let Object::Dict(entries) = root else {
        return Err(format!("{pkl_name} does not hold a state dict"));
    };
    let mut tensors = HashMap::new();
    for (key, value) in &entries {
        let Object::Unicode(name) = key else { continue };
        let t = match tensor_ref(value) {
            Ok(Some(t)) => t,
            Ok(None) => continue,
            Err(e) => return Err(format!("entry {name}: {e}")),
        };
        let storage_name = format!("{prefix}data/{}", t.storage_key);
        let storage = members
            .get(&storage_name)
            .ok_or_else(|| format!("entry {name}: missing storage {storage_name}"))?;
        let values = match t.dtype.as_str() {
            "FloatStorage" => gather(&t, storage, 4, f32_le),
            "DoubleStorage" => gather(&t, storage, 8, f64_le),
            other => Err(format!(
                "dtype {other} is not supported (float32/float64 only)"
            )),
        }
        .map_err(|e| format!("entry {name}: {e}"))?;
        let tensor = Tensor::from_vec(values, t.size.as_slice(), device)
            .map_err(|e| format!("entry {name}: {e}"))?;
        tensors.insert(name.clone(), tensor);
    }
    Ok(tensors)
}
