//! Keyword arguments for environments, as `gymnasium.make(id, **kwargs)` takes them.
//!
//! rl-zoo's hyperparameter files and command lines configure environments with a dictionary of
//! plain values (`env_kwargs: {g: 9.81}`, `--env-kwargs g:9.81`). [`EnvKwargs`] is that
//! dictionary: an ordered map from names to [`KwargValue`]s (`Bool`, `Int`, `Float`, `Str`), so a
//! YAML or CLI layer can fill it without knowing any environment. Constructors read it through a
//! [`KwargReader`], whose typed getters name the environment and the keyword in every error and
//! remember what was read, so [`crate::make_with`] can refuse keywords no constructor took, as
//! Python refuses an unexpected keyword argument.
//!
//! ```
//! use rl_env::{make_with, EnvKwargs, EnvSpec};
//!
//! let spec = EnvSpec {
//!     kwargs: EnvKwargs::new().with("g", 9.81).with("max_episode_steps", 100),
//!     ..EnvSpec::default()
//! };
//! let env = make_with("Pendulum-v1", &spec)?;
//! assert_eq!(env.id(), "Pendulum-v1");
//!
//! let typo = EnvSpec { kwargs: EnvKwargs::new().with("gravity", 9.81), ..EnvSpec::default() };
//! let err = make_with("Pendulum-v1", &typo).err().expect("an unknown keyword is an error");
//! assert!(err.to_string().contains("unexpected keyword argument \"gravity\""));
//! # Ok::<(), rl_env::EnvError>(())
//! ```

use crate::error::{EnvError, Result};
use crate::pyfmt::write_float_repr;
use std::fmt;

/// One keyword argument's value: the scalar types of YAML and of Python literals.
#[derive(Clone, Debug, PartialEq)]
pub enum KwargValue {
    /// `True` / `False`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float (may be NaN or infinite here; the getters of [`KwargReader`] refuse those).
    Float(f64),
    /// A string.
    Str(String),
}

impl KwargValue {
    /// The name of the value's type, as Python calls it (`bool`, `int`, `float`, `str`).
    pub fn type_name(&self) -> &'static str {
        match self {
            KwargValue::Bool(_) => "bool",
            KwargValue::Int(_) => "int",
            KwargValue::Float(_) => "float",
            KwargValue::Str(_) => "str",
        }
    }

    /// Reads a command-line value the way rl-zoo's `--env-kwargs key:value` does for plain
    /// literals: `True`/`False` (or `true`/`false`) are bools, integers are ints, other numbers
    /// (`9.81`, `1e-3`, `inf`, `nan`) are floats, text in matching quotes is that text, anything
    /// else is a string as written.
    ///
    /// ```
    /// use rl_env::KwargValue;
    /// assert_eq!(KwargValue::parse_literal("9.81"), KwargValue::Float(9.81));
    /// assert_eq!(KwargValue::parse_literal("200"), KwargValue::Int(200));
    /// assert_eq!(KwargValue::parse_literal("True"), KwargValue::Bool(true));
    /// assert_eq!(KwargValue::parse_literal("'x'"), KwargValue::Str("x".into()));
    /// ```
    pub fn parse_literal(text: &str) -> KwargValue {
        let t = text.trim();
        match t {
            "True" | "true" => return KwargValue::Bool(true),
            "False" | "false" => return KwargValue::Bool(false),
            _ => {}
        }
        if let Ok(i) = t.parse::<i64>() {
            return KwargValue::Int(i);
        }
        // `f64::from_str` also takes "infinity" and "NaN"; Python spells them inf and nan.
        let numeric = t
            .trim_start_matches(['+', '-'])
            .starts_with(|c: char| c.is_ascii_digit() || c == '.')
            || matches!(
                t.trim_start_matches(['+', '-'])
                    .to_ascii_lowercase()
                    .as_str(),
                "inf" | "nan"
            );
        if numeric {
            if let Ok(x) = t.parse::<f64>() {
                return KwargValue::Float(x);
            }
        }
        for q in ['\'', '"'] {
            if let Some(inner) = t.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
                return KwargValue::Str(inner.to_string());
            }
        }
        KwargValue::Str(t.to_string())
    }
}

/// Python's spelling of the value (`True`, `200`, `9.81`, `1e-05`); strings quoted (`"x"`).
impl fmt::Display for KwargValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KwargValue::Bool(b) => f.write_str(if *b { "True" } else { "False" }),
            KwargValue::Int(i) => write!(f, "{i}"),
            KwargValue::Float(x) => write_float_repr(f, *x),
            KwargValue::Str(s) => write!(f, "{s:?}"),
        }
    }
}

impl From<bool> for KwargValue {
    fn from(v: bool) -> Self {
        KwargValue::Bool(v)
    }
}

impl From<i64> for KwargValue {
    fn from(v: i64) -> Self {
        KwargValue::Int(v)
    }
}

impl From<i32> for KwargValue {
    fn from(v: i32) -> Self {
        KwargValue::Int(i64::from(v))
    }
}

impl From<u32> for KwargValue {
    fn from(v: u32) -> Self {
        KwargValue::Int(i64::from(v))
    }
}

impl From<f64> for KwargValue {
    fn from(v: f64) -> Self {
        KwargValue::Float(v)
    }
}

impl From<&str> for KwargValue {
    fn from(v: &str) -> Self {
        KwargValue::Str(v.to_string())
    }
}

impl From<String> for KwargValue {
    fn from(v: String) -> Self {
        KwargValue::Str(v)
    }
}

/// Keyword arguments for [`crate::make_with`] (through [`crate::EnvSpec::kwargs`]): names to
/// values, in insertion order, each name at most once (inserting a name again replaces its
/// value in place, as a Python dict does).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EnvKwargs {
    entries: Vec<(String, KwargValue)>,
}

impl EnvKwargs {
    /// No keyword arguments.
    pub fn new() -> Self {
        EnvKwargs::default()
    }

    /// Adds or replaces `name` (builder style).
    pub fn with(mut self, name: impl Into<String>, value: impl Into<KwargValue>) -> Self {
        self.insert(name, value);
        self
    }

    /// Adds `name`, or replaces its value keeping its position; returns the old value.
    pub fn insert(
        &mut self,
        name: impl Into<String>,
        value: impl Into<KwargValue>,
    ) -> Option<KwargValue> {
        let name = name.into();
        let value = value.into();
        match self.entries.iter_mut().find(|(n, _)| *n == name) {
            Some((_, v)) => Some(std::mem::replace(v, value)),
            None => {
                self.entries.push((name, value));
                None
            }
        }
    }

    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&KwargValue> {
        self.entries.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// Removes `name`, returning its value.
    pub fn remove(&mut self, name: &str) -> Option<KwargValue> {
        let i = self.entries.iter().position(|(n, _)| n == name)?;
        Some(self.entries.remove(i).1)
    }

    /// Number of keyword arguments.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The names and values, in insertion order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &KwargValue)> + '_ {
        self.entries.iter().map(|(n, v)| (n.as_str(), v))
    }

    /// `other`'s entries added over these (later values win), as `dict.update` does.
    pub fn update(&mut self, other: &EnvKwargs) {
        for (n, v) in other.iter() {
            self.insert(n, v.clone());
        }
    }
}

impl<K: Into<String>, V: Into<KwargValue>> FromIterator<(K, V)> for EnvKwargs {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut kwargs = EnvKwargs::new();
        kwargs.extend(iter);
        kwargs
    }
}

impl<K: Into<String>, V: Into<KwargValue>> Extend<(K, V)> for EnvKwargs {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k, v);
        }
    }
}

/// Python's call syntax: `g=9.81, sutton_barto_reward=True`.
impl fmt::Display for EnvKwargs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (n, v)) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{n}={v}")?;
        }
        Ok(())
    }
}

/// Typed access to the keyword arguments of one environment, for constructors registered with
/// [`crate::register`] (and the built-in ones).
///
/// Every getter returns `Ok(None)` when the keyword is absent, the value when it has the right
/// type, and [`EnvError::InvalidKwarg`] (naming the environment, the keyword and the value)
/// otherwise. The reader remembers which names were asked for: [`KwargReader::finish`] refuses
/// the keywords that were given but never read, with [`EnvError::UnknownKwarg`] listing the
/// names that were.
#[derive(Debug)]
pub struct KwargReader<'a> {
    env_id: &'a str,
    kwargs: &'a EnvKwargs,
    read: Vec<bool>,
    asked: Vec<String>,
}

impl<'a> KwargReader<'a> {
    /// A reader of `kwargs` for the environment `env_id` (used in messages).
    pub fn new(env_id: &'a str, kwargs: &'a EnvKwargs) -> Self {
        KwargReader {
            env_id,
            kwargs,
            read: vec![false; kwargs.len()],
            asked: Vec::new(),
        }
    }

    /// The environment id the keywords are for.
    pub fn env_id(&self) -> &str {
        self.env_id
    }

    /// The raw value of `name`, marking it as read.
    pub fn get(&mut self, name: &str) -> Option<&'a KwargValue> {
        if !self.asked.iter().any(|n| n == name) {
            self.asked.push(name.to_string());
        }
        let i = self.kwargs.entries.iter().position(|(n, _)| n == name)?;
        self.read[i] = true;
        Some(&self.kwargs.entries[i].1)
    }

    /// [`EnvError::InvalidKwarg`] for `name = value`, saying what was `expected`; for checks of
    /// a constructor's own (e.g. "a positive size").
    pub fn invalid(&self, name: &str, value: &KwargValue, expected: &str) -> EnvError {
        EnvError::InvalidKwarg {
            env: self.env_id.to_string(),
            kwarg: name.to_string(),
            value: value.to_string(),
            expected: expected.to_string(),
        }
    }

    /// A `bool` keyword (`True`/`False` only: `1` is not taken for `True`).
    pub fn get_bool(&mut self, name: &str) -> Result<Option<bool>> {
        match self.get(name) {
            None => Ok(None),
            Some(KwargValue::Bool(b)) => Ok(Some(*b)),
            Some(v) => {
                Err(self.invalid(name, v, &format!("expected a bool, got {}", v.type_name())))
            }
        }
    }

    /// An `int` keyword.
    pub fn get_int(&mut self, name: &str) -> Result<Option<i64>> {
        match self.get(name) {
            None => Ok(None),
            Some(KwargValue::Int(i)) => Ok(Some(*i)),
            Some(v) => {
                Err(self.invalid(name, v, &format!("expected an int, got {}", v.type_name())))
            }
        }
    }

    /// A finite `float` keyword; an `int` is taken too and converted, as Python's arithmetic
    /// would. NaN and the infinities are refused: no environment here is defined for them.
    pub fn get_float(&mut self, name: &str) -> Result<Option<f64>> {
        let x = match self.get(name) {
            None => return Ok(None),
            Some(KwargValue::Float(x)) => *x,
            Some(KwargValue::Int(i)) => *i as f64,
            Some(v) => {
                return Err(self.invalid(
                    name,
                    v,
                    &format!("expected a float, got {}", v.type_name()),
                ))
            }
        };
        if x.is_finite() {
            Ok(Some(x))
        } else {
            Err(self.invalid(name, &KwargValue::Float(x), "expected a finite number"))
        }
    }

    /// A `str` keyword.
    pub fn get_str(&mut self, name: &str) -> Result<Option<&'a str>> {
        match self.get(name) {
            None => Ok(None),
            Some(KwargValue::Str(s)) => Ok(Some(s.as_str())),
            Some(v) => {
                Err(self.invalid(name, v, &format!("expected a str, got {}", v.type_name())))
            }
        }
    }

    /// Refuses the keywords that were given but never read: [`EnvError::UnknownKwarg`] naming
    /// the first of them and listing `also_accepted` (keywords handled outside the
    /// constructor, such as `max_episode_steps`) and the names the constructor asked for.
    pub fn finish(self, also_accepted: &[&str]) -> Result<()> {
        let unread = self
            .kwargs
            .entries
            .iter()
            .zip(&self.read)
            .find(|(_, read)| !**read);
        match unread {
            None => Ok(()),
            Some(((name, _), _)) => {
                let mut accepted: Vec<&str> = self.asked.iter().map(String::as_str).collect();
                accepted.extend(
                    also_accepted
                        .iter()
                        .filter(|n| !self.asked.iter().any(|a| a == *n)),
                );
                Err(EnvError::UnknownKwarg {
                    env: self.env_id.to_string(),
                    kwarg: name.clone(),
                    accepted: if accepted.is_empty() {
                        "no keyword arguments".to_string()
                    } else {
                        accepted.join(", ")
                    },
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insertion_order_and_replacement() {
        let mut kw = EnvKwargs::new().with("b", 1).with("a", true);
        assert_eq!(kw.insert("b", 2.5), Some(KwargValue::Int(1)));
        assert_eq!(kw.iter().map(|(n, _)| n).collect::<Vec<_>>(), ["b", "a"]);
        assert_eq!(kw.get("b"), Some(&KwargValue::Float(2.5)));
        assert_eq!(kw.to_string(), "b=2.5, a=True");
        let mut other = EnvKwargs::new().with("c", "x").with("a", false);
        other.update(&kw);
        assert_eq!(other.to_string(), "c=\"x\", a=True, b=2.5");
        assert_eq!(other.remove("c"), Some(KwargValue::Str("x".into())));
        assert_eq!(other.len(), 2);
        let collected: EnvKwargs = [("x", 1), ("y", 2), ("x", 3)].into_iter().collect();
        assert_eq!(collected.to_string(), "x=3, y=2");
    }

    #[test]
    fn literals_parse_like_python() {
        use KwargValue::*;
        let cases = [
            ("True", Bool(true)),
            ("false", Bool(false)),
            ("-3", Int(-3)),
            ("1e-3", Float(1e-3)),
            ("-.5", Float(-0.5)),
            ("inf", Float(f64::INFINITY)),
            ("'abc'", Str("abc".into())),
            ("\"a b\"", Str("a b".into())),
            ("rgb_array", Str("rgb_array".into())),
            ("infinity_mode", Str("infinity_mode".into())),
        ];
        for (text, want) in cases {
            assert_eq!(KwargValue::parse_literal(text), want, "{text}");
        }
        assert!(matches!(KwargValue::parse_literal("nan"), Float(x) if x.is_nan()));
    }

    #[test]
    fn getters_check_types_and_name_everything() {
        let kw = EnvKwargs::new()
            .with("flag", true)
            .with("n", 3)
            .with("x", 2)
            .with("s", "hi")
            .with("bad", f64::NAN);
        let mut r = KwargReader::new("My-v0", &kw);
        assert_eq!(r.get_bool("flag").unwrap(), Some(true));
        assert_eq!(r.get_int("n").unwrap(), Some(3));
        assert_eq!(r.get_float("x").unwrap(), Some(2.0));
        assert_eq!(r.get_str("s").unwrap(), Some("hi"));
        assert_eq!(r.get_float("absent").unwrap(), None);
        let err = r.get_float("bad").unwrap_err();
        assert_eq!(
            err.to_string(),
            "My-v0: invalid keyword argument bad = nan: expected a finite number"
        );
        let err = r.get_bool("n").unwrap_err();
        assert_eq!(
            err,
            EnvError::InvalidKwarg {
                env: "My-v0".into(),
                kwarg: "n".into(),
                value: "3".into(),
                expected: "expected a bool, got int".into()
            }
        );
        assert!(r
            .get_float("s")
            .unwrap_err()
            .to_string()
            .contains("s = \"hi\""));
        r.finish(&["max_episode_steps"]).unwrap();

        let kw = EnvKwargs::new().with("n", 1).with("typo", 2);
        let mut r = KwargReader::new("My-v0", &kw);
        r.get_int("n").unwrap();
        r.get_int("other").unwrap();
        assert_eq!(
            r.finish(&["max_episode_steps"]).unwrap_err().to_string(),
            "My-v0 got an unexpected keyword argument \"typo\"; it takes: n, other, max_episode_steps"
        );
        let kw = EnvKwargs::new().with("anything", 1);
        let err = KwargReader::new("Plain-v0", &kw).finish(&[]).unwrap_err();
        assert!(
            err.to_string().ends_with("it takes: no keyword arguments"),
            "{err}"
        );
    }
}
