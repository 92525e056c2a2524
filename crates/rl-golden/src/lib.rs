//! Test support for the parity tests: finds the golden reference data (recorded from Gymnasium
//! 1.4.0 and Stable-Baselines3 2.9.2) and reads its number encoding.
//!
//! The data directory is `$RL_GOLDEN_DIR` when that variable is set, else the copy in the
//! repository's `tests/golden/`. Tests discover files by globbing a category folder and tell
//! kinds apart by content, never by file name; [`files`] fails when a folder holds no file of
//! the kind asked for, so a test can never pass vacuously.
//!
//! ```
//! let dir = rl_golden::golden_dir();
//! assert!(dir.ends_with("golden") || std::env::var_os("RL_GOLDEN_DIR").is_some());
//! ```

use serde_json::Value;
use std::path::{Path, PathBuf};

/// The golden data directory: `$RL_GOLDEN_DIR`, else `<repo>/tests/golden`.
pub fn golden_dir() -> PathBuf {
    match std::env::var_os("RL_GOLDEN_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden"),
    }
}

/// Every `*.json` file in `golden_dir()/category` whose parsed content satisfies `is_kind`,
/// sorted by path. Panics (failing the test) when there is none: a parity test must not pass
/// on an empty directory.
pub fn files(
    category: &str,
    what: &str,
    is_kind: impl Fn(&Value) -> bool,
) -> Vec<(PathBuf, Value)> {
    let dir = golden_dir().join(category);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read golden directory {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    let found: Vec<(PathBuf, Value)> = paths
        .into_iter()
        .filter_map(|p| {
            let text = std::fs::read_to_string(&p)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()));
            let v: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{} is not valid JSON: {e}", p.display()));
            is_kind(&v).then_some((p, v))
        })
        .collect();
    assert!(
        !found.is_empty(),
        "no {what} files in {} (set RL_GOLDEN_DIR to the golden data directory)",
        dir.display()
    );
    found
}

/// A JSON number as f64 (panics with the value on anything else).
pub fn f64_of(v: &Value) -> f64 {
    v.as_f64()
        .unwrap_or_else(|| panic!("expected a number, got {v}"))
}

/// A JSON number holding a float32 widened to f64, back as the exact f32.
pub fn f32_of(v: &Value) -> f32 {
    f64_of(v) as f32
}

/// A JSON list of numbers as f64s.
pub fn f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected a list, got {v}"))
        .iter()
        .map(f64_of)
        .collect()
}

/// A JSON list of float32-widened numbers as f32s.
pub fn f32s(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected a list, got {v}"))
        .iter()
        .map(f32_of)
        .collect()
}

/// A nested JSON list of numbers, flattened in row-major order, as f32s.
pub fn f32s_flat(v: &Value) -> Vec<f32> {
    let mut out = Vec::new();
    fn walk(v: &Value, out: &mut Vec<f32>) {
        match v {
            Value::Array(xs) => xs.iter().for_each(|x| walk(x, out)),
            x => out.push(f32_of(x)),
        }
    }
    walk(v, &mut out);
    out
}

/// A JSON string or number holding a non-negative integer, as its decimal text.
pub fn decimal(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => panic!("expected an integer or a decimal string, got {other}"),
    }
}

/// The file's name, for messages.
pub fn name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
