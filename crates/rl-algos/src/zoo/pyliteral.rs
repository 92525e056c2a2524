//! The Python literals rl-zoo writes inside its YAML strings: `"dict(log_std_init=-2,
//! ortho_init=False, net_arch=dict(pi=[64], vf=[64]), activation_fn=nn.ReLU)"` and
//! `"{'norm_obs': False, 'norm_reward': True}"`.
//!
//! rl-zoo `eval`s these strings; this parser reads the literal subset they use (calls of
//! `dict`, `{...}` dicts with string keys, lists, tuples, numbers, strings, `True`/`False`/
//! `None` and dotted names such as `nn.ReLU`) and nothing else, with bounded nesting.

use super::ZooValue;

/// Deepest nesting accepted (rl-zoo's strings nest two or three levels).
const MAX_DEPTH: usize = 32;
/// Longest literal accepted.
const MAX_LEN: usize = 64 * 1024;

/// Parses one literal; the error says what was expected where.
pub(crate) fn parse(text: &str) -> Result<ZooValue, String> {
    if text.len() > MAX_LEN {
        return Err(format!(
            "literal of {} bytes (at most {MAX_LEN})",
            text.len()
        ));
    }
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
    };
    let v = p.value(0)?;
    p.ws();
    if p.i != p.s.len() {
        return Err(p.err("end of the literal"));
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn err(&self, expected: &str) -> String {
        let rest = String::from_utf8_lossy(&self.s[self.i..]);
        let rest: String = rest.chars().take(24).collect();
        format!("expected {expected} at byte {} (found {rest:?})", self.i)
    }

    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(self.err(&format!("{:?}", c as char)))
        }
    }

    fn ident(&mut self) -> Option<String> {
        self.ws();
        let start = self.i;
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_alphanumeric() || matches!(self.s[self.i], b'_' | b'.'))
        {
            self.i += 1;
        }
        let word = &self.s[start..self.i];
        (!word.is_empty() && !word[0].is_ascii_digit() && word[0] != b'.')
            .then(|| String::from_utf8_lossy(word).into_owned())
            .or_else(|| {
                self.i = start;
                None
            })
    }

    fn value(&mut self, depth: usize) -> Result<ZooValue, String> {
        if depth > MAX_DEPTH {
            return Err(format!("literal nested deeper than {MAX_DEPTH} levels"));
        }
        match self.peek() {
            Some(b'[') => {
                self.i += 1;
                Ok(ZooValue::List(self.items(b']', depth)?))
            }
            Some(b'(') => {
                self.i += 1;
                Ok(ZooValue::List(self.items(b')', depth)?))
            }
            Some(b'{') => {
                self.i += 1;
                let mut entries = Vec::new();
                while !self.eat(b'}') {
                    let key = match self.value(depth + 1)? {
                        ZooValue::Str(k) => k,
                        other => return Err(format!("dict keys must be strings, got {other}")),
                    };
                    self.expect(b':')?;
                    entries.push((key, self.value(depth + 1)?));
                    if !self.eat(b',') {
                        self.expect(b'}')?;
                        break;
                    }
                }
                Ok(ZooValue::Dict(entries))
            }
            Some(q @ (b'\'' | b'"')) => {
                self.i += 1;
                let start = self.i;
                while self.i < self.s.len() && self.s[self.i] != q {
                    if self.s[self.i] == b'\\' {
                        return Err(self.err("a string without escapes"));
                    }
                    self.i += 1;
                }
                if self.i == self.s.len() {
                    return Err(self.err("a closing quote"));
                }
                let text = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
                self.i += 1;
                Ok(ZooValue::Str(text))
            }
            Some(c) if c.is_ascii_digit() || matches!(c, b'-' | b'+' | b'.') => self.number(),
            Some(_) => {
                let name = self.ident().ok_or_else(|| self.err("a value"))?;
                match name.as_str() {
                    "True" => Ok(ZooValue::Bool(true)),
                    "False" => Ok(ZooValue::Bool(false)),
                    "None" => Ok(ZooValue::Null),
                    "dict" if self.eat(b'(') => {
                        let mut entries = Vec::new();
                        while !self.eat(b')') {
                            let key = self.ident().ok_or_else(|| self.err("a keyword"))?;
                            self.expect(b'=')?;
                            entries.push((key, self.value(depth + 1)?));
                            if !self.eat(b',') {
                                self.expect(b')')?;
                                break;
                            }
                        }
                        Ok(ZooValue::Dict(entries))
                    }
                    _ if self.peek() == Some(b'(') => Err(format!(
                        "calls other than dict(...) are not supported: {name}(...)"
                    )),
                    _ => Ok(ZooValue::Name(name)),
                }
            }
            None => Err(self.err("a value")),
        }
    }

    fn items(&mut self, close: u8, depth: usize) -> Result<Vec<ZooValue>, String> {
        let mut items = Vec::new();
        while !self.eat(close) {
            items.push(self.value(depth + 1)?);
            if !self.eat(b',') {
                self.expect(close)?;
                break;
            }
        }
        Ok(items)
    }

    fn number(&mut self) -> Result<ZooValue, String> {
        self.ws();
        let start = self.i;
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_alphanumeric()
                || matches!(self.s[self.i], b'-' | b'+' | b'.' | b'_'))
        {
            self.i += 1;
        }
        let text = String::from_utf8_lossy(&self.s[start..self.i]).replace('_', "");
        if let Ok(v) = text.parse::<i64>() {
            return Ok(ZooValue::Int(v));
        }
        match text.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(ZooValue::Float(v)),
            _ => {
                self.i = start;
                Err(self.err("a finite number"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rl_zoo_literals() {
        let v = parse(
            "dict(log_std_init=-2, ortho_init=False,\n net_arch=dict(pi=[64, 64], vf=[64]), \
             activation_fn=nn.ReLU, x=1e-5, y=(1, 'episode'),)",
        )
        .unwrap();
        let ZooValue::Dict(d) = v else {
            panic!("dict expected")
        };
        assert_eq!(d[0], ("log_std_init".into(), ZooValue::Int(-2)));
        assert_eq!(d[1], ("ortho_init".into(), ZooValue::Bool(false)));
        assert_eq!(
            d[3],
            ("activation_fn".into(), ZooValue::Name("nn.ReLU".into()))
        );
        assert_eq!(d[4], ("x".into(), ZooValue::Float(1e-5)));
        let v = parse("{'norm_obs': False, \"norm_reward\": True}").unwrap();
        assert_eq!(
            v,
            ZooValue::Dict(vec![
                ("norm_obs".into(), ZooValue::Bool(false)),
                ("norm_reward".into(), ZooValue::Bool(true))
            ])
        );
    }

    #[test]
    fn refuses_what_is_not_a_literal() {
        for bad in [
            "dict(a=os.system('x'))",
            "__import__('os')",
            "dict(a=1",
            "[1, 2",
            "dict(a=1) extra",
            "{1: 2}",
            "1e999",
            "'unterminated",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert!(parse(&deep).unwrap_err().contains("nested"));
    }
}
