//! SB3-style logger: values recorded under keys like `rollout/ep_rew_mean` during an iteration
//! are written out together on [`Logger::dump`]:
//!
//! - as SB3's `HumanOutputFormat` table (section headers per `tag/`, sorted keys, floats as
//!   Python's `%-8.3g`) on stdout when `verbose`, and/or to any writer
//!   ([`Logger::with_table_writer`]);
//! - as CSV ([`Logger::with_csv`], SB3's `CSVOutputFormat`: the header is the union of all keys
//!   seen so far, the file is rewritten with padded rows when a new key appears);
//! - as JSON lines ([`Logger::with_json`], SB3's `JSONOutputFormat`: one object per dump);
//! - as TensorBoard event files ([`Logger::with_tensorboard`], SB3's
//!   `TensorBoardOutputFormat`, see [`crate::tensorboard`]): view them with
//!   `tensorboard --logdir DIR`.
//!
//! Write errors: [`Logger::try_dump`] returns them; [`Logger::dump`] (what algorithms call,
//! infallible so that a full disk never aborts a training run) keeps the first one, readable
//! with [`Logger::first_error`] and [`Logger::take_error`].

use crate::error::{AlgoError, Result};
use crate::tensorboard::TensorBoardOutput;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// SB3's default `max_length` of a key or value in the table (output at most 79 wide).
const DEFAULT_MAX_LENGTH: usize = 36;

/// Collects key/value pairs during an iteration and writes them as SB3 does.
pub struct Logger {
    values: BTreeMap<String, f64>,
    int_keys: BTreeSet<String>,
    verbose: bool,
    max_length: usize,
    table_writer: Option<Box<dyn Write + Send>>,
    csv: Option<CsvOutput>,
    json: Option<JsonOutput>,
    tensorboard: Option<TensorBoardOutput>,
    first_error: Option<AlgoError>,
}

impl fmt::Debug for Logger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Logger")
            .field("values", &self.values)
            .field("int_keys", &self.int_keys)
            .field("verbose", &self.verbose)
            .field("table_writer", &self.table_writer.is_some())
            .field("csv", &self.csv.as_ref().map(|c| &c.path))
            .field("json", &self.json.as_ref().map(|j| &j.path))
            .field("tensorboard", &self.tensorboard.as_ref().map(|t| t.path()))
            .field("first_error", &self.first_error)
            .finish()
    }
}

impl Default for Logger {
    fn default() -> Self {
        Logger::new(false)
    }
}

impl Logger {
    /// A logger that prints tables on stdout when `verbose`, and writes no files.
    pub fn new(verbose: bool) -> Self {
        Logger {
            values: BTreeMap::new(),
            int_keys: BTreeSet::new(),
            verbose,
            max_length: DEFAULT_MAX_LENGTH,
            table_writer: None,
            csv: None,
            json: None,
            tensorboard: None,
            first_error: None,
        }
    }

    /// Also writes every dump as a CSV row to `path` (created or truncated now).
    pub fn with_csv(mut self, path: impl AsRef<Path>) -> Result<Self> {
        self.csv = Some(CsvOutput::create(path.as_ref())?);
        Ok(self)
    }

    /// Also writes every dump as one JSON object per line to `path` (created or truncated now).
    pub fn with_json(mut self, path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = File::create(&path).map_err(|source| io_error(&path, source))?;
        self.json = Some(JsonOutput { path, file });
        Ok(self)
    }

    /// Also writes every dump to a new TensorBoard event file in `dir` (created with its
    /// parents now), at the step given to [`Logger::dump`]. SB3 puts each run in a folder of its
    /// own, `<tensorboard_log>/<ALGO>_<n>` ([`crate::tensorboard::next_run_dir`]).
    pub fn with_tensorboard(mut self, dir: impl AsRef<Path>) -> Result<Self> {
        self.tensorboard = Some(TensorBoardOutput::create(dir)?);
        Ok(self)
    }

    /// The TensorBoard event file, when [`Logger::with_tensorboard`] was used.
    pub fn tensorboard_file(&self) -> Option<&Path> {
        self.tensorboard.as_ref().map(|t| t.path())
    }

    /// Also writes every table to `writer` (SB3's `log.txt` output, or a buffer in tests),
    /// whether or not the logger is verbose.
    pub fn with_table_writer(mut self, writer: Box<dyn Write + Send>) -> Self {
        self.table_writer = Some(writer);
        self
    }

    /// The longest key or value shown in tables before it is cut with `...` (SB3: 36).
    pub fn with_max_length(mut self, max_length: usize) -> Result<Self> {
        if max_length < 4 {
            return Err(AlgoError::InvalidArgument(format!(
                "logger max_length must be at least 4, got {max_length}"
            )));
        }
        self.max_length = max_length;
        Ok(self)
    }

    /// Whether tables are printed on stdout.
    pub fn verbose(&self) -> bool {
        self.verbose
    }

    /// Records `value` under `key` (overwriting an earlier value of this iteration).
    pub fn record(&mut self, key: &str, value: f64) {
        self.int_keys.remove(key);
        // A key recorded before keeps its String: training loops record every step.
        match self.values.get_mut(key) {
            Some(v) => *v = value,
            None => {
                self.values.insert(key.to_string(), value);
            }
        }
    }

    /// Records an integer (counters such as `time/total_timesteps`), shown without decimals as
    /// SB3 shows Python ints.
    pub fn record_int(&mut self, key: &str, value: i64) {
        match self.values.get_mut(key) {
            Some(v) => *v = value as f64,
            None => {
                self.values.insert(key.to_string(), value as f64);
            }
        }
        if !self.int_keys.contains(key) {
            self.int_keys.insert(key.to_string());
        }
    }

    /// Records SB3's `rollout/ep_rew_mean` and `rollout/ep_len_mean` over `episodes` (returns
    /// and lengths of the recent finished episodes); nothing before the first one finishes.
    pub(crate) fn record_episode_means(&mut self, episodes: &VecDeque<(f64, u64)>) {
        if episodes.is_empty() {
            return;
        }
        let n = episodes.len() as f64;
        let rew = episodes.iter().map(|e| e.0).sum::<f64>() / n;
        let len = episodes.iter().map(|e| e.1 as f64).sum::<f64>() / n;
        self.record("rollout/ep_rew_mean", rew);
        self.record("rollout/ep_len_mean", len);
    }

    /// The values recorded since the last dump.
    pub fn values(&self) -> &BTreeMap<String, f64> {
        &self.values
    }

    /// Whether `key` was recorded with [`Logger::record_int`].
    pub fn is_int(&self, key: &str) -> bool {
        self.int_keys.contains(key)
    }

    /// The SB3 table of the values recorded since the last dump (empty when there are none).
    /// Errors when two keys of a section are cut to the same text, as SB3 does.
    pub fn format_table(&self) -> Result<String> {
        // (tag, shown key) -> shown value, in first-insertion order like the Python dict.
        let mut rows: Vec<(Option<String>, String, String)> = Vec::new();
        let mut tag: Option<String> = None;
        for (key, &value) in &self.values {
            let value_str = if self.is_int(key) {
                format!("{}", value as i64)
            } else {
                format!("{:<8}", format_g(value, 3))
            };
            if let Some(pos) = key.find('/').filter(|&p| p > 0) {
                let t = key[..=pos].to_string();
                let shown = self.truncate(&t);
                if !rows
                    .iter()
                    .any(|(rt, rk, _)| rt.as_deref() == Some(&t) && *rk == shown)
                {
                    rows.push((Some(t.clone()), shown, String::new()));
                }
                tag = Some(t);
            }
            // SB3 strips the current tag from any key that contains it, then indents.
            let key = match &tag {
                Some(t) if key.contains(t.as_str()) => {
                    format!("   {}", key.get(t.len()..).unwrap_or(""))
                }
                _ => key.clone(),
            };
            let shown = self.truncate(&key);
            if rows.iter().any(|(rt, rk, _)| *rt == tag && *rk == shown) {
                return Err(AlgoError::InvalidArgument(format!(
                    "logger key '{key}' truncated to '{shown}' that already exists; \
                     increase max_length"
                )));
            }
            rows.push((tag.clone(), shown, self.truncate(&value_str)));
        }
        if rows.is_empty() {
            return Ok(String::new());
        }
        let key_width = rows.iter().map(|r| r.1.chars().count()).max().unwrap_or(0);
        let val_width = rows.iter().map(|r| r.2.chars().count()).max().unwrap_or(0);
        let dashes = "-".repeat(key_width + val_width + 7);
        let mut out = String::with_capacity((rows.len() + 2) * (dashes.len() + 1));
        out.push_str(&dashes);
        out.push('\n');
        for (_, key, value) in &rows {
            let kpad = key_width - key.chars().count();
            let vpad = val_width - value.chars().count();
            out.push_str(&format!(
                "| {key}{} | {value}{} |\n",
                " ".repeat(kpad),
                " ".repeat(vpad)
            ));
        }
        out.push_str(&dashes);
        out.push('\n');
        Ok(out)
    }

    fn truncate(&self, s: &str) -> String {
        if s.chars().count() > self.max_length {
            let mut t: String = s.chars().take(self.max_length - 3).collect();
            t.push_str("...");
            t
        } else {
            s.to_string()
        }
    }

    /// Writes the recorded values to every output and clears them, returning the first write
    /// error. The values are cleared even when an output fails. `step` (the number of
    /// timesteps, as SB3 passes it) is the x-axis of the TensorBoard output; like SB3's text
    /// outputs, the others do not write it.
    pub fn try_dump(&mut self, step: u64) -> Result<()> {
        let result = self.write_all_outputs(step);
        self.values.clear();
        self.int_keys.clear();
        result
    }

    fn write_all_outputs(&mut self, step: u64) -> Result<()> {
        if self.values.is_empty() {
            return Ok(());
        }
        let mut first: Option<AlgoError> = None;
        let table_needed = self.verbose || self.table_writer.is_some();
        if table_needed {
            match self.format_table() {
                Ok(table) => {
                    if self.verbose {
                        let mut out = std::io::stdout().lock();
                        if let Err(source) =
                            out.write_all(table.as_bytes()).and_then(|_| out.flush())
                        {
                            first.get_or_insert(io_error(Path::new("<stdout>"), source));
                        }
                    }
                    if let Some(w) = self.table_writer.as_mut() {
                        if let Err(source) = w.write_all(table.as_bytes()).and_then(|_| w.flush()) {
                            first.get_or_insert(io_error(Path::new("<table writer>"), source));
                        }
                    }
                }
                Err(e) => {
                    first.get_or_insert(e);
                }
            }
        }
        if let Some(csv) = self.csv.as_mut() {
            if let Err(e) = csv.write(&self.values, &self.int_keys) {
                first.get_or_insert(e);
            }
        }
        if let Some(json) = self.json.as_mut() {
            if let Err(e) = json.write(&self.values, &self.int_keys) {
                first.get_or_insert(e);
            }
        }
        if let Some(tb) = self.tensorboard.as_mut() {
            if let Err(e) = tb.write(&self.values, step) {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// Prints/writes the recorded values and clears them. A write error does not stop
    /// training: the first one is kept for [`Logger::first_error`] / [`Logger::take_error`].
    pub fn dump(&mut self, step: u64) {
        if let Err(e) = self.try_dump(step) {
            self.first_error.get_or_insert(e);
        }
    }

    /// The first error a [`Logger::dump`] met, if any.
    pub fn first_error(&self) -> Option<&AlgoError> {
        self.first_error.as_ref()
    }

    /// Takes the first error a [`Logger::dump`] met, leaving none.
    pub fn take_error(&mut self) -> Option<AlgoError> {
        self.first_error.take()
    }
}

fn io_error(path: &Path, source: std::io::Error) -> AlgoError {
    AlgoError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// SB3's `CSVOutputFormat`.
struct CsvOutput {
    path: PathBuf,
    file: File,
    keys: Vec<String>,
}

impl CsvOutput {
    fn create(path: &Path) -> Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(|source| io_error(path, source))?;
        Ok(CsvOutput {
            path: path.to_path_buf(),
            file,
            keys: Vec::new(),
        })
    }

    fn write(&mut self, values: &BTreeMap<String, f64>, int_keys: &BTreeSet<String>) -> Result<()> {
        let path = self.path.clone();
        self.write_inner(values, int_keys)
            .map_err(|source| io_error(&path, source))
    }

    fn write_inner(
        &mut self,
        values: &BTreeMap<String, f64>,
        int_keys: &BTreeSet<String>,
    ) -> std::io::Result<()> {
        let extra: Vec<&String> = values.keys().filter(|k| !self.keys.contains(k)).collect();
        if !extra.is_empty() {
            // A new column: rewrite the header and pad the earlier rows, as SB3 does.
            self.keys.extend(extra.iter().map(|k| (*k).clone()));
            let mut old = String::new();
            self.file.seek(SeekFrom::Start(0))?;
            self.file.read_to_string(&mut old)?;
            let mut text = self.keys.join(",");
            text.push('\n');
            for line in old.lines().skip(1) {
                text.push_str(line);
                text.push_str(&",".repeat(extra.len()));
                text.push('\n');
            }
            self.file.seek(SeekFrom::Start(0))?;
            self.file.set_len(0)?;
            self.file.write_all(text.as_bytes())?;
        }
        let mut row = String::new();
        for (i, key) in self.keys.iter().enumerate() {
            if i > 0 {
                row.push(',');
            }
            if let Some(&v) = values.get(key) {
                if int_keys.contains(key) {
                    row.push_str(&format!("{}", v as i64));
                } else {
                    row.push_str(&python_repr(v));
                }
            }
        }
        row.push('\n');
        self.file.seek(SeekFrom::End(0))?;
        self.file.write_all(row.as_bytes())?;
        self.file.flush()
    }
}

/// SB3's `JSONOutputFormat` (non-finite floats become `null`: JSON has no NaN).
struct JsonOutput {
    path: PathBuf,
    file: File,
}

impl JsonOutput {
    fn write(&mut self, values: &BTreeMap<String, f64>, int_keys: &BTreeSet<String>) -> Result<()> {
        let mut map = serde_json::Map::new();
        for (k, &v) in values {
            let json = if int_keys.contains(k) {
                serde_json::Value::from(v as i64)
            } else {
                serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, Into::into)
            };
            map.insert(k.clone(), json);
        }
        let mut line = serde_json::Value::Object(map).to_string();
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .and_then(|_| self.file.flush())
            .map_err(|source| io_error(&self.path, source))
    }
}

/// Python's `format(value, ".{precision}g")` (without the width): `precision` significant
/// digits, scientific notation when the exponent is below -4 or at least `precision`, trailing
/// zeros removed.
pub fn format_g(value: f64, precision: usize) -> String {
    let precision = precision.max(1);
    if let Some(s) = python_special(value, "0") {
        return s;
    }
    // The exponent after rounding to `precision` digits decides the notation.
    let sci = format!("{:.*e}", precision - 1, value);
    let (mantissa, exp) = split_exp(&sci);
    if exp < -4 || exp >= precision as i32 {
        format!("{}e{}{:02}", strip_zeros(mantissa), sign(exp), exp.abs())
    } else {
        let decimals = (precision as i32 - 1 - exp).max(0) as usize;
        strip_zeros(&format!("{:.*}", decimals, value)).to_string()
    }
}

/// Python's `str(float)` / `repr(float)`: the shortest text that reads back to the same value,
/// scientific when the exponent is below -4 or at least 16, and always with a `.` or `e`.
pub fn python_repr(value: f64) -> String {
    if let Some(s) = python_special(value, "0.0") {
        return s;
    }
    let sci = format!("{value:e}");
    let (mantissa, exp) = split_exp(&sci);
    if !(-4..16).contains(&exp) {
        format!("{mantissa}e{}{:02}", sign(exp), exp.abs())
    } else {
        let s = format!("{value}");
        if s.contains('.') {
            s
        } else {
            format!("{s}.0")
        }
    }
}

/// Python's text for NaN, the infinities and the signed zeros (`zero` is how the format
/// writes 0); `None` for every other value.
fn python_special(value: f64, zero: &str) -> Option<String> {
    if value.is_nan() {
        Some("nan".into())
    } else if value.is_infinite() {
        Some(if value > 0.0 { "inf" } else { "-inf" }.into())
    } else if value == 0.0 {
        Some(if value.is_sign_negative() {
            format!("-{zero}")
        } else {
            zero.into()
        })
    } else {
        None
    }
}

fn split_exp(sci: &str) -> (&str, i32) {
    match sci.split_once('e') {
        Some((m, e)) => (m, e.parse().unwrap_or(0)),
        None => (sci, 0),
    }
}

fn sign(exp: i32) -> char {
    if exp < 0 {
        '-'
    } else {
        '+'
    }
}

fn strip_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_g_matches_python() {
        let cases = [
            (22.4, "22.4"),
            (1234.5, "1.23e+03"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (100.0, "100"),
            (999.5, "1e+03"),
            (0.5, "0.5"),
            (-1.375, "-1.38"),
            (0.125, "0.125"),
            (1.0, "1"),
            (f64::NAN, "nan"),
            (f64::NEG_INFINITY, "-inf"),
            (-0.0, "-0"),
            (123.0, "123"),
            (0.000123456, "0.000123"),
        ];
        for (v, want) in cases {
            assert_eq!(format_g(v, 3), want, "{v}");
        }
    }

    #[test]
    fn python_repr_matches_python() {
        let cases = [
            (22.4, "22.4"),
            (100.0, "100.0"),
            (0.00001, "1e-05"),
            (0.0001, "0.0001"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (123456789012345.0, "123456789012345.0"),
            (-2.5e-7, "-2.5e-07"),
            (0.1 + 0.2, "0.30000000000000004"),
        ];
        for (v, want) in cases {
            assert_eq!(python_repr(v), want, "{v}");
        }
    }

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("rl-algos-logger-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    #[test]
    fn table_matches_sb3_layout() {
        let record = |logger: &mut Logger| {
            logger.record("rollout/ep_rew_mean", 22.4);
            logger.record("rollout/ep_len_mean", 22.4);
            logger.record_int("time/fps", 1234);
            logger.record_int("time/total_timesteps", 2048);
            logger.record("train/value_loss", 0.000123456);
            logger.record("train/learning_rate", 0.0007);
        };
        let mut logger = Logger::new(false);
        record(&mut logger);
        let want = "\
---------------------------------
| rollout/           |          |
|    ep_len_mean     | 22.4     |
|    ep_rew_mean     | 22.4     |
| time/              |          |
|    fps             | 1234     |
|    total_timesteps | 2048     |
| train/             |          |
|    learning_rate   | 0.0007   |
|    value_loss      | 0.000123 |
---------------------------------
";
        assert_eq!(logger.format_table().unwrap(), want);
        let sink = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl Write for Sink {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut logger =
            std::mem::take(&mut logger).with_table_writer(Box::new(Sink(sink.clone())));
        record(&mut logger);
        logger.try_dump(1).unwrap();
        assert_eq!(
            String::from_utf8(sink.lock().unwrap().clone()).unwrap(),
            want
        );
        assert!(logger.values().is_empty());
    }

    #[test]
    fn table_truncates_and_rejects_collisions() {
        let mut logger = Logger::new(false).with_max_length(8).unwrap();
        logger.record("a/abcdefghij", 1.0);
        let t = logger.format_table().unwrap();
        assert!(t.contains("|    ab... | 1        |"), "{t}");
        logger.record("a/abcdefghik", 2.0);
        assert!(logger.format_table().is_err());
        assert!(Logger::new(false).format_table().unwrap().is_empty());
    }

    #[test]
    fn csv_header_is_the_union_of_keys() {
        let path = temp("progress.csv");
        let mut logger = Logger::new(false).with_csv(&path).unwrap();
        logger.record("b", 1.5);
        logger.record_int("a", 3);
        logger.dump(1);
        logger.record("b", 0.00001);
        logger.dump(2);
        logger.record("c", 100.0);
        logger.record_int("a", 4);
        logger.dump(3);
        assert!(logger.take_error().is_none());
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "a,b,c\n3,1.5,\n,1e-05,\n4,,100.0\n");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn json_lines_parse() {
        let path = temp("progress.json");
        let mut logger = Logger::new(false).with_json(&path).unwrap();
        logger.record("train/loss", 0.25);
        logger.record_int("time/iterations", 7);
        logger.record("train/nan", f64::NAN);
        logger.dump(1);
        logger.record("train/loss", -1.0);
        logger.dump(2);
        logger.dump(3); // nothing recorded: no line
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["train/loss"], 0.25);
        assert_eq!(lines[0]["time/iterations"], 7);
        assert!(lines[0]["time/iterations"].is_i64());
        assert!(lines[0]["train/nan"].is_null());
        assert_eq!(lines[1]["train/loss"], -1.0);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn write_errors_are_kept_not_thrown() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("disk full"))
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut logger = Logger::new(false).with_table_writer(Box::new(Broken));
        logger.record("x", 1.0);
        assert!(logger.try_dump(0).is_err());
        logger.record("x", 1.0);
        logger.dump(1);
        logger.record("x", 2.0);
        logger.dump(2);
        let err = logger.take_error().unwrap();
        assert!(err.to_string().contains("disk full"), "{err}");
        assert!(logger.first_error().is_none());
        assert!(Logger::new(false)
            .with_csv("/nonexistent-dir/x/progress.csv")
            .is_err());
    }
}
