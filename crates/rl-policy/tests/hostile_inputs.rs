//! SB3 zips and the `policy.pth` archives inside them are untrusted: every reproducer of a
//! crash, hang or unbounded allocation found so far is built here and must give a typed error
//! (or, for inputs that are merely odd, a correct result) quickly and in little memory.

use candle_core::{Device, Tensor};
use rl_policy::fuzzing::read_state_dict;
use rl_policy::{MlpPolicy, PolicyError, StochasticPolicy};
use serde_json::Value;
use std::io::Read;

// ---------------------------------------------------------------------------------------------
// Building archives by hand.

/// One zip entry: its name, data and compression method (0 stored, 8 deflate); the data is
/// written as given (a "deflate" entry holds whatever bytes it is given).
struct Entry<'a> {
    name: &'a str,
    data: &'a [u8],
    method: u16,
}

fn stored<'a>(name: &'a str, data: &'a [u8]) -> Entry<'a> {
    Entry {
        name,
        data,
        method: 0,
    }
}

/// A local file header (and its data) as the zip format lays it out.
fn local_header(out: &mut Vec<u8>, e: &Entry) {
    out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
    out.extend_from_slice(&20u16.to_le_bytes()); // version needed
    out.extend_from_slice(&0u16.to_le_bytes()); // flags
    out.extend_from_slice(&e.method.to_le_bytes());
    out.extend_from_slice(&[0; 4]); // time, date
    out.extend_from_slice(&crc32fast::hash(e.data).to_le_bytes());
    out.extend_from_slice(&(e.data.len() as u32).to_le_bytes());
    out.extend_from_slice(&(e.data.len() as u32).to_le_bytes());
    out.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes()); // extra length
    out.extend_from_slice(e.name.as_bytes());
    out.extend_from_slice(e.data);
}

/// A central directory entry for `e`, whose local header is at `offset`.
fn central_header(out: &mut Vec<u8>, e: &Entry, offset: u32) {
    out.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
    out.extend_from_slice(&20u16.to_le_bytes()); // version made by
    out.extend_from_slice(&20u16.to_le_bytes()); // version needed
    out.extend_from_slice(&0u16.to_le_bytes()); // flags
    out.extend_from_slice(&e.method.to_le_bytes());
    out.extend_from_slice(&[0; 4]); // time, date
    out.extend_from_slice(&crc32fast::hash(e.data).to_le_bytes());
    out.extend_from_slice(&(e.data.len() as u32).to_le_bytes());
    out.extend_from_slice(&(e.data.len() as u32).to_le_bytes());
    out.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
    out.extend_from_slice(&[0; 12]); // extra, comment, disk, attributes
    out.extend_from_slice(&offset.to_le_bytes());
    out.extend_from_slice(e.name.as_bytes());
}

/// The end records for `n` entries whose central directory of `size` bytes starts at `start`
/// (zip64 records too when `n` does not fit in 16 bits, as `torch.save` always writes).
fn end_records(out: &mut Vec<u8>, n: usize, start: usize, size: usize) {
    let zip64 = n > 0xFFFF;
    if zip64 {
        let rec = out.len();
        out.extend_from_slice(&0x0606_4b50u32.to_le_bytes());
        out.extend_from_slice(&44u64.to_le_bytes());
        out.extend_from_slice(&[45, 0, 45, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        out.extend_from_slice(&(n as u64).to_le_bytes());
        out.extend_from_slice(&(n as u64).to_le_bytes());
        out.extend_from_slice(&(size as u64).to_le_bytes());
        out.extend_from_slice(&(start as u64).to_le_bytes());
        out.extend_from_slice(&0x0706_4b50u32.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&(rec as u64).to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
    }
    let n16 = if zip64 { 0xFFFF } else { n as u16 };
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0; 4]); // disks
    out.extend_from_slice(&n16.to_le_bytes());
    out.extend_from_slice(&n16.to_le_bytes());
    out.extend_from_slice(&(size as u32).to_le_bytes());
    out.extend_from_slice(&(start as u32).to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes()); // comment length
}

fn write_zip(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut offsets = Vec::new();
    for e in entries {
        offsets.push(out.len() as u32);
        local_header(&mut out, e);
    }
    let start = out.len();
    let mut central = Vec::new();
    for (e, &off) in entries.iter().zip(&offsets) {
        central_header(&mut central, e, off);
    }
    out.extend_from_slice(&central);
    end_records(&mut out, entries.len(), start, central.len());
    out
}

/// A `torch.save`-style archive: `archive/data.pkl`, `archive/byteorder`, the storages.
fn torch_archive(pickle: &[u8], storages: &[(String, Vec<u8>)]) -> Vec<u8> {
    let names: Vec<String> = storages
        .iter()
        .map(|(k, _)| format!("archive/data/{k}"))
        .collect();
    let mut entries = vec![
        stored("archive/data.pkl", pickle),
        stored("archive/byteorder", b"little"),
    ];
    for (name, (_, data)) in names.iter().zip(storages) {
        entries.push(stored(name, data));
    }
    write_zip(&entries)
}

// ---------------------------------------------------------------------------------------------
// Building pickles by hand (protocol 2, as `torch.save` writes them).

fn op_str(p: &mut Vec<u8>, s: &str) {
    p.push(b'X');
    p.extend_from_slice(&(s.len() as u32).to_le_bytes());
    p.extend_from_slice(s.as_bytes());
}

fn op_int(p: &mut Vec<u8>, v: u64) {
    p.extend_from_slice(&[0x8a, 8]); // LONG1, 8 bytes
    p.extend_from_slice(&v.to_le_bytes());
}

fn op_global(p: &mut Vec<u8>, module: &str, name: &str) {
    p.push(b'c');
    p.extend_from_slice(format!("{module}\n{name}\n").as_bytes());
}

fn op_int_tuple(p: &mut Vec<u8>, v: &[u64]) {
    p.push(b'(');
    for &x in v {
        op_int(p, x);
    }
    p.push(b't');
}

/// How one state-dict entry refers to its storage.
struct TensorSpec<'a> {
    name: &'a str,
    storage_class: &'a str,
    key: &'a str,
    numel: u64,
    offset: u64,
    size: Vec<u64>,
    stride: Vec<u64>,
}

impl TensorSpec<'_> {
    /// A contiguous tensor of `shape` filling storage `key`.
    fn contiguous<'a>(name: &'a str, key: &'a str, shape: &[usize]) -> TensorSpec<'a> {
        let size: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
        let mut stride = vec![1u64; size.len()];
        for i in (0..size.len().saturating_sub(1)).rev() {
            stride[i] = stride[i + 1] * size[i + 1];
        }
        TensorSpec {
            name,
            storage_class: "FloatStorage",
            key,
            numel: size.iter().product(),
            offset: 0,
            size,
            stride,
        }
    }
}

/// `OrderedDict(name -> _rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict()))`.
fn state_dict_pickle(specs: &[TensorSpec]) -> Vec<u8> {
    let mut p = vec![0x80, 2];
    op_global(&mut p, "collections", "OrderedDict");
    p.extend_from_slice(b")R(");
    for s in specs {
        op_str(&mut p, s.name);
        op_global(&mut p, "torch._utils", "_rebuild_tensor_v2");
        p.extend_from_slice(b"((");
        op_str(&mut p, "storage");
        op_global(&mut p, "torch", s.storage_class);
        op_str(&mut p, s.key);
        op_str(&mut p, "cpu");
        op_int(&mut p, s.numel);
        p.extend_from_slice(b"tQ");
        op_int(&mut p, s.offset);
        op_int_tuple(&mut p, &s.size);
        op_int_tuple(&mut p, &s.stride);
        p.push(0x89);
        op_global(&mut p, "collections", "OrderedDict");
        p.extend_from_slice(b")RtR");
    }
    p.extend_from_slice(b"u.");
    p
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A `policy.pth` holding `tensors` (name, shape, values), one storage each.
fn pth_of(tensors: &[(String, Vec<usize>, Vec<f32>)]) -> Vec<u8> {
    let keys: Vec<String> = (0..tensors.len()).map(|i| i.to_string()).collect();
    let specs: Vec<TensorSpec> = tensors
        .iter()
        .zip(&keys)
        .map(|((name, shape, _), key)| TensorSpec::contiguous(name, key, shape))
        .collect();
    let storages: Vec<(String, Vec<u8>)> = tensors
        .iter()
        .zip(&keys)
        .map(|((_, _, v), k)| (k.clone(), f32_bytes(v)))
        .collect();
    torch_archive(&state_dict_pickle(&specs), &storages)
}

// ---------------------------------------------------------------------------------------------
// SB3 zips.

/// A golden SB3 zip with a Discrete action space (CartPole), as its members in order.
fn cartpole_zip_members() -> Vec<(String, Vec<u8>)> {
    for (path, file) in rl_golden::files("sb3", "SB3 model-outputs", |v| {
        v.get("model_file").is_some() && v.get("outputs").is_some()
    }) {
        let zip = path.with_file_name(file["model_file"].as_str().unwrap());
        let p = MlpPolicy::from_sb3_zip(&zip, &Device::Cpu).unwrap();
        if p.action_space().n().is_some() && p.config().net_arch == Default::default() {
            let bytes = std::fs::read(&zip).unwrap();
            let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
            return (0..z.len())
                .map(|i| {
                    let mut f = z.by_index(i).unwrap();
                    let mut buf = Vec::new();
                    f.read_to_end(&mut buf).unwrap();
                    (f.name().unwrap().into_owned(), buf)
                })
                .collect();
        }
    }
    panic!("no SB3 CartPole zip with the default net_arch in the golden data");
}

/// The members with `name` replaced by `data`, as a zip.
fn replaced(members: &[(String, Vec<u8>)], name: &str, data: &[u8]) -> Vec<u8> {
    let entries: Vec<Entry> = members
        .iter()
        .map(|(n, d)| stored(n, if n == name { data } else { d }))
        .collect();
    write_zip(&entries)
}

/// The tensors of the policy in `members`' `policy.pth`, as (name, shape, values).
fn golden_tensors(members: &[(String, Vec<u8>)]) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let p = MlpPolicy::from_sb3_zip_bytes(&write_zip(&to_entries(members)), &Device::Cpu).unwrap();
    p.trainable_vars()
        .into_iter()
        .map(|(n, v)| {
            let t = v.as_tensor();
            let values = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            (n, t.dims().to_vec(), values)
        })
        .collect()
}

fn to_entries(members: &[(String, Vec<u8>)]) -> Vec<Entry<'_>> {
    members.iter().map(|(n, d)| stored(n, d)).collect()
}

fn import(bytes: &[u8]) -> Result<MlpPolicy, PolicyError> {
    MlpPolicy::from_sb3_zip_bytes(bytes, &Device::Cpu)
}

fn assert_limit(r: Result<impl std::fmt::Debug, PolicyError>, what: &str) {
    match r {
        Err(PolicyError::LimitExceeded { what: w, .. }) if w.contains(what) => {}
        other => panic!("expected a limit on {what:?}, got {other:?}"),
    }
}

fn assert_corrupt(r: Result<impl std::fmt::Debug, PolicyError>, reason: &str) {
    match r {
        Err(PolicyError::Corrupt { reason: m, .. }) if m.contains(reason) => {}
        other => panic!("expected Corrupt mentioning {reason:?}, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// The hand-built archives are what the reader reads.

#[test]
fn hand_built_policy_pth_imports_like_the_original() {
    let members = cartpole_zip_members();
    let tensors = golden_tensors(&members);
    let pth = pth_of(&tensors);
    assert_eq!(read_state_dict(&pth).unwrap(), tensors.len());
    let p = import(&replaced(&members, "policy.pth", &pth)).unwrap();
    for (name, shape, values) in &tensors {
        let sd = p.state_dict().unwrap();
        assert_eq!(sd[name].dims(), shape.as_slice());
        assert_eq!(
            &sd[name].flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            values
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Pickles.

/// A pickle wrapped as the `policy.pth` of an otherwise valid SB3 zip.
fn pickle_in_sb3_zip(pickle: &[u8]) -> Vec<u8> {
    replaced(
        &cartpole_zip_members(),
        "policy.pth",
        &torch_archive(pickle, &[]),
    )
}

/// Once overflowed the stack (SIGABRT): a million nested lists, built three ways.
#[test]
fn pickle_nested_a_million_deep_is_a_limit() {
    const N: usize = 1_000_000;
    // [[[...]]] as Python writes it: a million EMPTY_LISTs, then a million APPENDs.
    let mut stacked = vec![0x80, 2];
    stacked.extend(std::iter::repeat_n(b']', N));
    stacked.extend(std::iter::repeat_n(b'a', N - 1));
    stacked.push(b'.');
    assert_limit(read_state_dict(&torch_archive(&stacked, &[])), "stack");
    assert_limit(import(&pickle_in_sb3_zip(&stacked)), "stack");
    // The same nesting with a constant stack: l = [l] through the memo, a million times.
    let mut chained = vec![0x80, 2, b']', b'q', 0];
    for _ in 0..N {
        chained.extend_from_slice(b"0]h\x00aq\x00");
    }
    chained.push(b'.');
    assert_limit(
        read_state_dict(&torch_archive(&chained, &[])),
        "nesting depth",
    );
    // A million MARKs.
    let mut marks = vec![0x80, 2];
    marks.extend(std::iter::repeat_n(b'(', N));
    marks.push(b'.');
    assert_limit(read_state_dict(&torch_archive(&marks, &[])), "MARK");
}

/// Once grew past 8 GB in seconds: a 231-byte pickle that keeps combining its own memo
/// entries (each round doubles the object a copying reader builds).
#[test]
fn pickle_memo_copying_stays_small() {
    let mut bomb = vec![0x80, 2, b']', b'q', 0];
    for _ in 0..28 {
        bomb.extend_from_slice(b"0h\x00h\x00\x86q\x00");
    }
    // As a state dict value: {'w': <the bomb>}, a value that is not a tensor.
    let mut as_value = vec![0x80, 2, b'}', b'X', 1, 0, 0, 0, b'w'];
    as_value.extend_from_slice(&bomb[2..]);
    as_value.extend_from_slice(b"s.");
    bomb.push(b'.');
    assert!(bomb.len() <= 231, "{} bytes", bomb.len());
    assert_corrupt(
        read_state_dict(&torch_archive(&bomb, &[])),
        "does not hold a state dict",
    );
    assert_eq!(read_state_dict(&torch_archive(&as_value, &[])).unwrap(), 0);
    // Imported as a policy: nothing to build from, and said so.
    let r = import(&pickle_in_sb3_zip(&as_value));
    assert!(matches!(r, Err(PolicyError::Corrupt { .. })), "{r:?}");
}

#[test]
fn pickle_object_and_memo_floods_are_limits() {
    // 30 batches of 90,000 Nones appended to a list: 5.4 million objects.
    let mut objects = vec![0x80, 2, b']'];
    for _ in 0..30 {
        objects.push(b'(');
        objects.extend(std::iter::repeat_n(b'N', 90_000));
        objects.push(b'e');
    }
    objects.push(b'.');
    assert_limit(
        read_state_dict(&torch_archive(&objects, &[])),
        "pickle objects",
    );
    // 1.1 million distinct memo keys.
    let mut memo = vec![0x80, 2, b'N'];
    for k in 0..1_100_000u32 {
        memo.push(b'r');
        memo.extend_from_slice(&k.to_le_bytes());
    }
    memo.push(b'.');
    assert_limit(read_state_dict(&torch_archive(&memo, &[])), "memo");
}

/// Lengths declared by opcodes are checked against the bytes present before allocating.
#[test]
fn pickle_huge_declared_lengths_are_errors() {
    for (what, p) in [
        ("BINUNICODE 4 GiB", &b"\x80\x02X\xff\xff\xff\xff"[..]),
        (
            "BINUNICODE8 2^63",
            b"\x80\x02\x8d\x00\x00\x00\x00\x00\x00\x00\x80",
        ),
        ("BINBYTES 1 GiB", b"\x80\x02B\x00\x00\x00\x40"),
        (
            "BINBYTES8 2^64-1",
            b"\x80\x02\x8e\xff\xff\xff\xff\xff\xff\xff\xff",
        ),
        ("LONG4 2 GiB", b"\x80\x02\x8b\xff\xff\xff\x7f"),
        ("LONG4 negative", b"\x80\x02\x8b\x00\x00\x00\x80"),
        ("unterminated GLOBAL", b"\x80\x02ctorch\nFloat"),
    ] {
        let r = read_state_dict(&torch_archive(p, &[]));
        assert!(
            matches!(r, Err(PolicyError::Corrupt { .. })),
            "{what}: {r:?}"
        );
    }
    // A protocol this reader does not know, an opcode it does not read (text INT).
    for p in [&b"\x80\x09N."[..], b"\x80\x02I1\n."] {
        let r = read_state_dict(&torch_archive(p, &[]));
        assert!(
            matches!(r, Err(PolicyError::Unsupported(_))),
            "{p:?}: {r:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Storages, shapes, strides.

fn one_tensor(spec: TensorSpec, storage: Vec<u8>) -> Result<usize, PolicyError> {
    let key = spec.key.to_string();
    read_state_dict(&torch_archive(
        &state_dict_pickle(&[spec]),
        &[(key, storage)],
    ))
}

#[test]
fn tensor_views_outside_their_storage_are_errors() {
    let four = f32_bytes(&[1.0, 2.0, 3.0, 4.0]);
    let ok = || TensorSpec::contiguous("w", "0", &[2, 2]);
    assert_eq!(one_tensor(ok(), four.clone()).unwrap(), 1);
    let cases: Vec<(&str, TensorSpec, &str)> = vec![
        (
            "element count overflows",
            TensorSpec {
                size: vec![1 << 40, 1 << 40],
                stride: vec![1, 1],
                ..ok()
            },
            "overflows",
        ),
        (
            "a million elements from a storage of four",
            TensorSpec {
                size: vec![1_000_000],
                stride: vec![1],
                ..ok()
            },
            "reach element",
        ),
        (
            "offset past the end",
            TensorSpec {
                offset: 1 << 62,
                ..ok()
            },
            "reach element",
        ),
        (
            "offset plus strides overflow",
            TensorSpec {
                offset: u64::MAX >> 1,
                stride: vec![u64::MAX >> 1, u64::MAX >> 1],
                ..ok()
            },
            "overflow",
        ),
        (
            "stride past the end",
            TensorSpec {
                stride: vec![3, 1],
                ..ok()
            },
            "reach element",
        ),
        (
            "storage declares more elements than it holds",
            TensorSpec {
                numel: 1 << 40,
                ..ok()
            },
            "declares",
        ),
        (
            "rank over the limit",
            TensorSpec {
                size: vec![1; 17],
                stride: vec![1; 17],
                ..ok()
            },
            "rank",
        ),
        (
            "size and stride of different ranks",
            TensorSpec {
                stride: vec![1],
                ..ok()
            },
            "differ in rank",
        ),
    ];
    for (what, spec, reason) in cases {
        match one_tensor(spec, four.clone()) {
            Err(PolicyError::Corrupt { reason: m, .. }) if m.contains(reason) => {}
            other => panic!("{what}: expected Corrupt mentioning {reason:?}, got {other:?}"),
        }
    }
    // Int storages and unknown classes are named, not misread.
    let r = one_tensor(
        TensorSpec {
            storage_class: "LongStorage",
            ..ok()
        },
        four.clone(),
    );
    assert!(
        matches!(&r, Err(PolicyError::Unsupported(m)) if m.contains("LongStorage")),
        "{r:?}"
    );
}

/// Views may share a storage, but a hundred full views of a 256 KiB storage would decode
/// 25 MB: all tensors together decode at most one float per archive byte.
#[test]
fn many_views_of_one_storage_are_a_limit() {
    let n = 65_536;
    let storage = f32_bytes(&vec![0.5; n]);
    let names: Vec<String> = (0..100).map(|i| format!("w{i}")).collect();
    let specs: Vec<TensorSpec> = names
        .iter()
        .map(|name| TensorSpec::contiguous(name, "0", &[n]))
        .collect();
    let pth = torch_archive(&state_dict_pickle(&specs), &[("0".into(), storage.clone())]);
    assert_limit(read_state_dict(&pth), "decoded tensor elements");
    // Two views of one storage are fine.
    let pth = torch_archive(&state_dict_pickle(&specs[..2]), &[("0".into(), storage)]);
    assert_eq!(read_state_dict(&pth).unwrap(), 2);
}

// ---------------------------------------------------------------------------------------------
// 2. Zips.

/// Once used 2 GB: a 1.2 MB zip whose central directory has a thousand entries all pointing
/// at one 1 MiB member.
#[test]
fn zip_entries_sharing_one_member_are_rejected() {
    let big = vec![7u8; 1 << 20];
    let member = stored("policy.pth", &big);
    let mut out = Vec::new();
    local_header(&mut out, &member);
    let start = out.len();
    let mut central = Vec::new();
    // The first entry is the member itself, the other 999 point at it under other names.
    let names: Vec<String> = (0..1000)
        .map(|i| {
            if i == 0 {
                "policy.pth".to_string()
            } else {
                format!("m{i}")
            }
        })
        .collect();
    for name in &names {
        central_header(&mut central, &stored(name, &big), 0);
    }
    out.extend_from_slice(&central);
    end_records(&mut out, names.len(), start, central.len());
    assert!(out.len() < 1_300_000);
    assert_corrupt(import(&out), "more than the archive");
    assert_corrupt(read_state_dict(&out), "more than the archive");
}

/// A member hidden inside another member's data: both would read, overlapping.
#[test]
fn overlapping_zip_entries_are_rejected() {
    let inner = stored("data", b"{}");
    let mut inner_bytes = Vec::new();
    local_header(&mut inner_bytes, &inner);
    let outer = stored("policy.pth", &inner_bytes);
    let mut out = Vec::new();
    local_header(&mut out, &outer);
    let inner_offset = (out.len() - inner_bytes.len()) as u32;
    let start = out.len();
    let mut central = Vec::new();
    central_header(&mut central, &outer, 0);
    central_header(&mut central, &inner, inner_offset);
    out.extend_from_slice(&central);
    end_records(&mut out, 2, start, central.len());
    assert_corrupt(import(&out), "overlap");
}

#[test]
fn too_many_zip_entries_are_a_limit() {
    let names: Vec<String> = (0..70_000).map(|i| format!("{i}")).collect();
    let entries: Vec<Entry> = names.iter().map(|n| stored(n, b"")).collect();
    let bytes = write_zip(&entries);
    assert_limit(import(&bytes), "zip entries");
}

#[test]
fn compressed_members_are_named_not_misread() {
    let members = cartpole_zip_members();
    for name in ["data", "policy.pth"] {
        let entries: Vec<Entry> = members
            .iter()
            .map(|(n, d)| Entry {
                name: n,
                data: d,
                method: if n == name { 8 } else { 0 },
            })
            .collect();
        match import(&write_zip(&entries)) {
            Err(PolicyError::Unsupported(m)) => {
                assert!(m.contains(name) && m.contains("compressed"), "{m}")
            }
            other => panic!("{name} compressed: {other:?}"),
        }
    }
}

#[test]
fn duplicate_zip_member_names_are_ambiguous() {
    let members = cartpole_zip_members();
    let mut entries = to_entries(&members);
    entries.push(stored("data", b"{}"));
    assert_corrupt(import(&write_zip(&entries)), "two members named data");
}

// ---------------------------------------------------------------------------------------------
// 3. Declared sizes.

fn with_data(edit: impl Fn(&mut Value)) -> Vec<u8> {
    let members = cartpole_zip_members();
    let data = &members.iter().find(|(n, _)| n == "data").unwrap().1;
    let mut v: Value = serde_json::from_slice(data).unwrap();
    edit(&mut v);
    replaced(&members, "data", &serde_json::to_vec(&v).unwrap())
}

/// A 40-400 GB observation space or `net_arch` declared by `data` must not be built.
#[test]
fn declared_sizes_in_sb3_data_are_checked_against_the_weights() {
    let r = import(&with_data(|v| {
        v["observation_space"]["_shape"] = serde_json::json!([100_000, 100_000]);
        v["observation_space"]["low_repr"] = "0.0".into();
        v["observation_space"]["high_repr"] = "1.0".into();
        v["observation_space"]["low"] = "[0. 0. ... 0.]".into();
        v["observation_space"]["high"] = "[1. 1. ... 1.]".into();
    }));
    assert_limit(r, "Box shape [100000, 100000]");
    let r = import(&with_data(|v| {
        v["observation_space"]["_shape"] = serde_json::json!([u64::MAX, 4]);
    }));
    assert_limit(r, "overflows");
    let r = import(&with_data(|v| {
        v["observation_space"]["_shape"] = serde_json::json!([500_000]);
        v["observation_space"]["low_repr"] = "0.0".into();
        v["observation_space"]["high_repr"] = "1.0".into();
        v["observation_space"]["low"] = "[0. 0. ... 0.]".into();
        v["observation_space"]["high"] = "[1. 1. ... 1.]".into();
    }));
    assert_corrupt(r, "more than policy.pth's");
    let r = import(&with_data(|v| {
        v["action_space"]["n"] = "1000000000000".into();
    }));
    assert_corrupt(r, "Discrete action space with n = 1000000000000");
    let r = import(&with_data(|v| {
        v["action_space"]["n"] = "1000".into();
    }));
    assert_corrupt(r, "action_net.weight has shape [2, 64]");
    let r = import(&with_data(|v| {
        v["policy_kwargs"] = serde_json::json!({"net_arch": [100_000, 100_000]});
    }));
    assert_corrupt(r, "disagrees with the policy.pth shapes");
}

// ---------------------------------------------------------------------------------------------
// 4. Ambiguous archives.

#[test]
fn ambiguous_torch_archives_are_rejected_naming_both() {
    let members = cartpole_zip_members();
    let tensors = golden_tensors(&members);
    let pth = pth_of(&tensors);
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(pth)).unwrap();
    let inner: Vec<(String, Vec<u8>)> = (0..z.len())
        .map(|i| {
            let mut f = z.by_index(i).unwrap();
            let mut buf = Vec::new();
            f.read_to_end(&mut buf).unwrap();
            (f.name().unwrap().into_owned(), buf)
        })
        .collect();
    // A second archive directory with its own data.pkl.
    let mut two = inner.clone();
    for (n, d) in &inner {
        two.push((n.replace("archive/", "other/"), d.clone()));
    }
    let r = import(&replaced(
        &members,
        "policy.pth",
        &write_zip(&to_entries(&two)),
    ));
    assert_corrupt(r, "two pickles, archive/data.pkl and other/data.pkl");
    // One stray member outside the archive directory.
    let mut stray = inner.clone();
    stray.push(("other/data/0".into(), vec![0; 4]));
    let r = import(&replaced(
        &members,
        "policy.pth",
        &write_zip(&to_entries(&stray)),
    ));
    assert_corrupt(r, "other/data/0 lies outside");
    // A key twice in the state dict.
    let specs = [
        TensorSpec::contiguous("w", "0", &[1]),
        TensorSpec::contiguous("w", "0", &[1]),
    ];
    let r = read_state_dict(&torch_archive(
        &state_dict_pickle(&specs),
        &[("0".into(), f32_bytes(&[1.0]))],
    ));
    assert_corrupt(r, "entry w appears twice");
}

// ---------------------------------------------------------------------------------------------
// 5. Non-finite weights.

/// A NaN weight once made a deterministic `act` quietly return action 0.
#[test]
fn non_finite_weights_in_sb3_zips_are_errors_naming_the_tensor() {
    let members = cartpole_zip_members();
    for (target, value) in [
        ("mlp_extractor.policy_net.0.weight", f32::NAN),
        ("action_net.bias", f32::INFINITY),
        ("value_net.bias", f32::NEG_INFINITY),
    ] {
        let mut tensors = golden_tensors(&members);
        for (name, _, values) in tensors.iter_mut() {
            if name == target {
                let last = values.len() - 1;
                values[last] = value;
            }
        }
        let r = import(&replaced(&members, "policy.pth", &pth_of(&tensors)));
        match r {
            Err(PolicyError::NonFiniteWeight { tensor, path, .. }) => {
                assert_eq!(tensor, target);
                assert!(path.contains("policy.pth"), "{path}");
            }
            other => panic!("{target}: {other:?}"),
        }
    }
    // f64 storages whose values overflow f32 become infinities, and are refused too.
    let mut tensors = golden_tensors(&members);
    tensors.retain(|(n, _, _)| n != "value_net.bias");
    let mut specs: Vec<TensorSpec> = Vec::new();
    let keys: Vec<String> = (0..=tensors.len()).map(|i| i.to_string()).collect();
    for ((name, shape, _), key) in tensors.iter().zip(&keys) {
        specs.push(TensorSpec::contiguous(name, key, shape));
    }
    let last = &keys[tensors.len()];
    specs.push(TensorSpec {
        storage_class: "DoubleStorage",
        ..TensorSpec::contiguous("value_net.bias", last, &[1])
    });
    let mut storages: Vec<(String, Vec<u8>)> = tensors
        .iter()
        .zip(&keys)
        .map(|((_, _, v), k)| (k.clone(), f32_bytes(v)))
        .collect();
    storages.push((last.clone(), 1e300f64.to_le_bytes().to_vec()));
    let pth = torch_archive(&state_dict_pickle(&specs), &storages);
    let r = import(&replaced(&members, "policy.pth", &pth));
    assert!(
        matches!(&r, Err(PolicyError::NonFiniteWeight { tensor, .. }) if tensor == "value_net.bias"),
        "{r:?}"
    );
    // The acting path never sees such a model; a finite one still acts.
    let ok = import(&replaced(
        &members,
        "policy.pth",
        &pth_of(&golden_tensors(&members)),
    ));
    let obs = Tensor::new(&[[0.0f32, 0.0, 0.0, 0.0]], &Device::Cpu).unwrap();
    assert!(ok.unwrap().action_dist(&obs).is_ok());
}
