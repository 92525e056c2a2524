//! Command-line hygiene shared by the examples: they behave like the Unix tools they sit among.
//!
//! - **Output that cannot be written ends the program quietly.** `println!` panics (exit code
//!   101, with a panic message and a backtrace hint) when stdout is a pipe whose reader has gone
//!   (`example | head -n 1`) or a full disk (`example > /dev/full`). [`outln!`] and [`out!`]
//!   print like `println!`/`print!` but, when stdout fails, end the process at once: silently
//!   with exit code 141 (what a shell reports for a process killed by `SIGPIPE`, the usual fate
//!   of a C tool in a broken pipe) for a closed pipe, and with one line on stderr and exit code
//!   1 for any other error (as coreutils do). [`errln!`] prints to stderr and never panics.
//!   [`init`] also turns the panic of a `print!` elsewhere (in a library) into that same exit.
//! - **Arguments:** [`parse_args`] runs a clap parser; `--help` prints to stdout and exits 0,
//!   and a bad argument is one line on stderr (`NAME: what is wrong (see --help)`) and exit
//!   code 2. [`positive_finite`] and [`unit_interval`] are value parsers for the usual ranges.
//!
//! Include it at the top of an example, before any use of the macros:
//!
//! ```ignore
//! #[macro_use]
//! #[path = "common/cli.rs"]
//! mod cli;
//!
//! fn main() -> std::process::ExitCode {
//!     cli::init();
//!     let args: Args = cli::parse_args();
//!     outln!("hello");
//!     // ...
//! }
//! ```

// Each example uses only some of these helpers.
#![allow(dead_code, unused_macros)]

use std::fmt;
use std::io::{self, Write};

/// Exit code for a closed stdout: 128 + `SIGPIPE`, as a shell reports a process the signal
/// killed.
pub const EXIT_BROKEN_PIPE: i32 = 141;
/// Exit code for any other failure to write stdout (a full disk, an I/O error).
pub const EXIT_WRITE_ERROR: i32 = 1;
/// Exit code for bad command-line arguments (as clap and most tools use).
pub const EXIT_USAGE: i32 = 2;

/// `println!` for stdout that may be closed or full: see the module docs.
macro_rules! outln {
    () => {
        $crate::cli::write_stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cli::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` for stdout that may be closed or full: see the module docs.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::write_stdout(format_args!($($arg)*))
    };
}

/// `eprintln!` that never panics (a message that cannot be shown is dropped).
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::cli::write_stderr(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// Writes `args` to stdout and flushes it (so that a failure shows at once, not at exit); if
/// that fails, ends the process as the module docs say.
pub fn write_stdout(args: fmt::Arguments<'_>) {
    let mut stdout = io::stdout().lock();
    if let Err(e) = stdout.write_fmt(args).and_then(|()| stdout.flush()) {
        stdout_failed(&e.to_string(), e.kind() == io::ErrorKind::BrokenPipe)
    }
}

/// Writes `args` to stderr, ignoring failure.
pub fn write_stderr(args: fmt::Arguments<'_>) {
    let _ = io::stderr().lock().write_fmt(args);
}

/// Ends the process after stdout failed with `error`.
fn stdout_failed(error: &str, broken_pipe: bool) -> ! {
    if broken_pipe {
        std::process::exit(EXIT_BROKEN_PIPE);
    }
    errln!("{}: cannot write to stdout: {error}", program_name());
    std::process::exit(EXIT_WRITE_ERROR)
}

/// The name the program was started as (its file name), for messages.
pub fn program_name() -> String {
    std::env::args_os()
        .next()
        .as_deref()
        .map(std::path::Path::new)
        .and_then(|p| p.file_stem())
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "example".into())
}

/// Makes a failed `print!`/`println!` anywhere in the process (a library's, say) end it like
/// [`outln!`] does, instead of panicking with a backtrace; every other panic is reported as
/// before. `print!` panics with "failed printing to stdout: ERROR".
pub fn init() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str));
        if let Some(error) = message.and_then(|m| m.strip_prefix("failed printing to stdout: ")) {
            stdout_failed(error, error.to_lowercase().contains("broken pipe"));
        }
        previous(info)
    }));
}

/// Parses the command line into `T`. `--help` (and `--version`) print to stdout and exit 0; an
/// invalid command line prints one line on stderr, `NAME: what is wrong (see --help)`, and
/// exits with code 2.
pub fn parse_args<T: clap::Parser>() -> T {
    use clap::error::ErrorKind;
    match T::try_parse() {
        Ok(args) => args,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            out!("{}", e.render());
            std::process::exit(0)
        }
        Err(e) => {
            errln!(
                "{}: {} (see --help)",
                T::command().get_name(),
                first_paragraph(&e.render().to_string())
            );
            std::process::exit(EXIT_USAGE)
        }
    }
}

/// Value parser for a finite number above 0 (a learning rate, say):
/// `#[arg(long, value_parser = cli::positive_finite)]`.
pub fn positive_finite(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        Ok(v) => Err(format!("{v} is not a finite number above 0")),
        Err(e) => Err(e.to_string()),
    }
}

/// Value parser for a number in `[0, 1]` (a discount factor, say):
/// `#[arg(long, value_parser = cli::unit_interval)]`.
pub fn unit_interval(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        Ok(v) => Err(format!("{v} is not in [0, 1]")),
        Err(e) => Err(e.to_string()),
    }
}

/// The first paragraph of a clap error, on one line and without its `error: ` prefix (the rest
/// is the usage and tips).
fn first_paragraph(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .take_while(|l| !l.is_empty())
        .collect();
    let joined = lines.join(" ");
    let message = joined.strip_prefix("error: ").unwrap_or(&joined);
    if message.is_empty() {
        "invalid command line".into()
    } else {
        message.to_owned()
    }
}

/// Value parser for one `--env-kwargs` entry, `key:value` (rl-zoo's syntax): the value is
/// read as [`rl_env::KwargValue::parse_literal`] reads Python literals (`9.81`, `200`,
/// `True`, `'text'`).
pub fn env_kwarg(s: &str) -> Result<(String, rl_env::KwargValue), String> {
    match s.split_once(':') {
        Some((key, value)) if !key.trim().is_empty() => Ok((
            key.trim().to_string(),
            rl_env::KwargValue::parse_literal(value),
        )),
        _ => Err(format!("{s:?} is not key:value")),
    }
}

/// The `--env-kwargs` entries as a dictionary (a repeated key keeps the last value).
pub fn env_kwargs(pairs: &[(String, rl_env::KwargValue)]) -> rl_env::EnvKwargs {
    pairs.iter().cloned().collect()
}

/// Saved `key:value` texts (a run's `run.json`, a model's training context) read back as
/// [`env_kwarg`] reads `--env-kwargs`, as a dictionary.
pub fn env_kwargs_from_texts(texts: &[String]) -> Result<rl_env::EnvKwargs, String> {
    let pairs: Vec<(String, rl_env::KwargValue)> = texts
        .iter()
        .map(|t| env_kwarg(t))
        .collect::<Result<_, _>>()?;
    Ok(env_kwargs(&pairs))
}
