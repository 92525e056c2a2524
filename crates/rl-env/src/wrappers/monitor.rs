//! SB3's `Monitor` with its `monitor.csv`: [`RecordEpisodeStatistics`] plus one CSV row per
//! episode, in the file format SB3's `load_results` and rl-zoo's plotting scripts read.
//!
//! The file is SB3's byte for byte, apart from the clock readings: a first line
//! `#{"t_start": <time.time()>, "env_id": "<id>"}` ending in `\n` (written by hand, as
//! `json.dumps` would), then the header `r,l,t` and one row per episode, both ending in `\r\n`
//! (Python's `csv` module's line terminator), with `r = round(return, 6)`, `l` the length and
//! `t = round(seconds since t_start, 6)`, floats printed as Python's `repr`
//! ([`crate::pyfmt`]).
//!
//! Naming follows SB3's `ResultsWriter`: a path that does not end in `monitor.csv` gets
//! `.monitor.csv` appended, or `/monitor.csv` when it is a directory; vector environments use
//! one file per sub-environment, `<dir>/<rank>.monitor.csv` ([`monitor_path`], as SB3's
//! `make_vec_env(monitor_dir=...)`). Missing parent directories are created and an existing
//! file is replaced (SB3's `override_existing=True`).
//!
//! Each row is formatted into a reused buffer and handed to the operating system in one
//! `write` (SB3 flushes after every row too), so a reader never sees half a row from a live
//! run and stepping allocates nothing. A failed write surfaces as [`EnvError::Io`] from the
//! `step` that ended the episode.

use crate::env::{Action, Env, Info, StepOutcome};
use crate::error::{EnvError, Result};
use crate::pyfmt::{round, write_float_repr};
use crate::seeding::Seed;
use crate::space::Space;
use crate::wrappers::RecordEpisodeStatistics;
use crate::EpisodeStats;
use std::fmt::Write as _;
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// SB3's `Monitor.EXT`.
pub const MONITOR_EXT: &str = "monitor.csv";

/// `<dir>/<rank>.monitor.csv`: the file of sub-environment `rank` of a vector (SB3's
/// `make_vec_env(monitor_dir=dir)`).
pub fn monitor_path(dir: impl AsRef<Path>, rank: usize) -> PathBuf {
    dir.as_ref().join(format!("{rank}.{MONITOR_EXT}"))
}

/// SB3's file name rule: `path` itself when it ends in `monitor.csv`, `path/monitor.csv` when
/// it is a directory, else `path.monitor.csv`.
pub fn monitor_file_name(path: impl AsRef<Path>) -> PathBuf {
    let path = path.as_ref();
    if path.to_string_lossy().ends_with(MONITOR_EXT) {
        path.to_path_buf()
    } else if path.is_dir() {
        path.join(MONITOR_EXT)
    } else {
        let mut name = path.as_os_str().to_owned();
        name.push(".");
        name.push(MONITOR_EXT);
        PathBuf::from(name)
    }
}

/// Writes `s` as a JSON string the way Python's `json.dumps` does (`ensure_ascii=True`).
fn write_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    // Writing into a String cannot fail.
                    let _ = write!(out, "\\u{u:04x}");
                }
            }
        }
    }
    out.push('"');
}

/// The writer of one `monitor.csv` (SB3's `ResultsWriter` with the `r,l,t` columns).
#[derive(Debug)]
pub struct MonitorWriter {
    file: File,
    path: PathBuf,
    t_start: f64,
    row: String,
}

impl MonitorWriter {
    /// Creates (or replaces) the file named by SB3's rule ([`monitor_file_name`]) and writes
    /// the two header lines, with `t_start` the current Unix time. Errors: [`EnvError::Io`].
    pub fn create(path: impl AsRef<Path>, env_id: &str) -> Result<Self> {
        let path = monitor_file_name(path);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| EnvError::io(dir, &e))?;
        }
        let t_start = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let mut header = String::with_capacity(64 + env_id.len());
        header.push_str("#{\"t_start\": ");
        // Writing into a String cannot fail.
        let _ = write_float_repr(&mut header, t_start);
        header.push_str(", \"env_id\": ");
        write_json_string(&mut header, env_id);
        header.push_str("}\nr,l,t\r\n");
        let mut file = File::create(&path).map_err(|e| EnvError::io(&path, &e))?;
        file.write_all(header.as_bytes())
            .map_err(|e| EnvError::io(&path, &e))?;
        Ok(MonitorWriter {
            file,
            path,
            t_start,
            row: String::with_capacity(96),
        })
    }

    /// Appends the row of a finished episode: `round(r, 6),l,round(t, 6)`.
    pub fn write_episode(&mut self, stats: &EpisodeStats) -> Result<()> {
        self.row.clear();
        // Writing into a String cannot fail.
        let _ = write_float_repr(&mut self.row, round(stats.r#return, 6));
        let _ = write!(self.row, ",{},", stats.length);
        let _ = write_float_repr(&mut self.row, round(stats.time_s, 6));
        self.row.push_str("\r\n");
        self.file
            .write_all(self.row.as_bytes())
            .map_err(|e| EnvError::io(&self.path, &e))
    }

    /// The file written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The Unix time in the header (`t_start`).
    pub fn t_start(&self) -> f64 {
        self.t_start
    }
}

/// SB3's `Monitor(env, filename)`: [`RecordEpisodeStatistics`] that also writes each finished
/// episode to a `monitor.csv` (see the [module docs](self)).
///
/// ```
/// use rl_env::wrappers::Monitor;
/// use rl_env::{make, Action, Env};
///
/// let dir = std::env::temp_dir().join(format!("rl-monitor-doc-{}", std::process::id()));
/// let mut env = Monitor::new(make("CartPole-v1")?, &dir.join("0"))?;
/// env.reset(Some(0))?;
/// let stats = loop {
///     if let Some(stats) = env.step(Action::Discrete(0))?.info.episode {
///         break stats;
///     }
/// };
/// let text = std::fs::read_to_string(dir.join("0.monitor.csv")).unwrap();
/// let lines: Vec<&str> = text.lines().collect();
/// assert!(lines[0].starts_with("#{\"t_start\": ") && lines[0].ends_with(", \"env_id\": \"CartPole-v1\"}"));
/// assert_eq!(lines[1], "r,l,t"); // `lines` drops the `\r\n` of the CSV rows
/// assert!(text.contains("}\nr,l,t\r\n"));
/// // CartPole pays 1 per step: r is the length, printed as a Python float.
/// assert!(lines[2].starts_with(&format!("{0}.0,{0},", stats.length)));
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), rl_env::EnvError>(())
/// ```
#[derive(Debug)]
pub struct Monitor<E> {
    env: RecordEpisodeStatistics<E>,
    writer: MonitorWriter,
}

impl<E: Env> Monitor<E> {
    /// Wraps `env`, writing to the file SB3 would name for `path` ([`monitor_file_name`]),
    /// with `env.id()` as the header's `env_id`. Errors: [`EnvError::Io`].
    pub fn new(env: E, path: impl AsRef<Path>) -> Result<Self> {
        let writer = MonitorWriter::create(path, env.id())?;
        // Created after the file, so `t` counts from (just after) `t_start`.
        let env = RecordEpisodeStatistics::new(env);
        Ok(Monitor { env, writer })
    }

    /// Sub-environment `rank` of a vector: writes `<dir>/<rank>.monitor.csv`.
    pub fn for_rank(env: E, dir: impl AsRef<Path>, rank: usize) -> Result<Self> {
        Self::new(env, monitor_path(dir, rank))
    }

    /// The file written.
    pub fn path(&self) -> &Path {
        self.writer.path()
    }

    /// The episode statistics ([`RecordEpisodeStatistics`] inside).
    pub fn inner(&self) -> &RecordEpisodeStatistics<E> {
        &self.env
    }

    /// The statistics wrapper, mutably.
    pub fn inner_mut(&mut self) -> &mut RecordEpisodeStatistics<E> {
        &mut self.env
    }

    /// Unwraps (closing the file).
    pub fn into_inner(self) -> RecordEpisodeStatistics<E> {
        self.env
    }
}

impl<E: Env> Env for Monitor<E> {
    fn observation_space(&self) -> &Space {
        self.env.observation_space()
    }

    fn action_space(&self) -> &Space {
        self.env.action_space()
    }

    fn reset_into(&mut self, seed: Option<&Seed>, obs: &mut [f32]) -> Result<Info> {
        self.env.reset_into(seed, obs)
    }

    fn step_into(&mut self, action: Action<'_>, obs: &mut [f32]) -> Result<StepOutcome> {
        let out = self.env.step_into(action, obs)?;
        if let Some(stats) = &out.info.episode {
            self.writer.write_episode(stats)?;
        }
        Ok(out)
    }

    fn id(&self) -> &str {
        self.env.id()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_are_python_json_dumps() {
        let mut s = String::new();
        write_json_string(&mut s, "a\"b\\c\nd\u{1}é😀");
        // json.dumps('a"b\\c\nd\x01é😀')
        assert_eq!(s, r#""a\"b\\c\nd\u0001\u00e9\ud83d\ude00""#);
    }

    #[test]
    fn file_names_follow_sb3() {
        assert_eq!(monitor_path("logs", 3), Path::new("logs/3.monitor.csv"));
        assert_eq!(monitor_file_name("x/run"), Path::new("x/run.monitor.csv"));
        assert_eq!(
            monitor_file_name("x/monitor.csv"),
            Path::new("x/monitor.csv")
        );
        let dir = std::env::temp_dir();
        assert_eq!(monitor_file_name(&dir), dir.join("monitor.csv"));
    }
}
