//! Python's text for floats, for files that Python tools read back byte for byte.
//!
//! SB3's `monitor.csv`, its `progress.csv` and Gymnasium's error messages print floats with
//! Python's `repr` (the shortest text that reads back to the same value, with Python's own
//! choice between positional and scientific notation) after `round(x, n)`. Rust's `Display`
//! picks the same digits but never switches to scientific notation, so the two differ for very
//! small and very large values. Both functions here write into caller-provided buffers and
//! allocate nothing, so they can run once per episode on a training hot path.

use std::fmt::{self, Write};

/// A fixed-capacity text buffer on the stack: enough for `{:.255}` of `f64::MAX`.
struct StackText {
    buf: [u8; 640],
    len: usize,
}

impl StackText {
    fn new() -> Self {
        StackText {
            buf: [0; 640],
            len: 0,
        }
    }

    fn as_str(&self) -> &str {
        // Only whole `&str`s are ever appended, so the prefix is valid UTF-8.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl Write for StackText {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(fmt::Error)?;
        let dst = self.buf.get_mut(self.len..end).ok_or(fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Python's `round(x, ndigits)` for a float: the double nearest to `x` correctly rounded to
/// `ndigits` decimals, exact ties to even. NaN and the infinities come back unchanged.
///
/// ```
/// use rl_env::pyfmt::round;
/// assert_eq!(round(0.0078125, 6), 0.007812); // an exact tie, to even (Python: 0.007812)
/// assert_eq!(round(2.0 / 3.0, 6), 0.666667);
/// ```
pub fn round(x: f64, ndigits: u8) -> f64 {
    if !x.is_finite() {
        return x;
    }
    // Rust's fixed-precision formatting is exact and rounds exact ties to even, as CPython's
    // `_Py_dg_dtoa` mode 3 does; reading the text back gives the nearest double, as CPython's
    // `_Py_dg_strtod` does.
    let mut text = StackText::new();
    if write!(text, "{:.*}", usize::from(ndigits), x).is_err() {
        return x;
    }
    text.as_str().parse().unwrap_or(x)
}

/// Writes Python's `repr(x)` of a float: `0.1`, `100.0`, `1e-05`, `1.5e+16`, `-0.0`, `nan`,
/// `inf`. Positional between `1e-4` and `1e16`, scientific with a signed two-digit (or longer)
/// exponent outside, like CPython's `float_repr_style = 'short'`.
///
/// ```
/// let mut s = String::new();
/// rl_env::pyfmt::write_float_repr(&mut s, 0.00001)?;
/// assert_eq!(s, "1e-05");
/// # Ok::<(), std::fmt::Error>(())
/// ```
pub fn write_float_repr<W: Write + ?Sized>(out: &mut W, x: f64) -> fmt::Result {
    if x.is_nan() {
        return out.write_str("nan");
    }
    if x.is_infinite() {
        return out.write_str(if x > 0.0 { "inf" } else { "-inf" });
    }
    // `{:e}` gives the shortest round-trip digits: "-1.2345e-7", "0e0".
    let mut sci = StackText::new();
    write!(sci, "{x:e}")?;
    let sci = sci.as_str();
    let (mantissa, exp) = sci.split_once('e').ok_or(fmt::Error)?;
    let exp: i32 = exp.parse().map_err(|_| fmt::Error)?;
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    let (lead, rest) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if negative {
        out.write_char('-')?;
    }
    if (-4..16).contains(&exp) {
        // Positional: the digits `lead rest` with the point after digit `exp`.
        let digits = || lead.chars().chain(rest.chars());
        let n = 1 + rest.len();
        if exp < 0 {
            out.write_str("0.")?;
            for _ in 0..(-exp - 1) {
                out.write_char('0')?;
            }
            for d in digits() {
                out.write_char(d)?;
            }
        } else {
            let int_len = exp as usize + 1;
            for d in digits().take(int_len) {
                out.write_char(d)?;
            }
            for _ in n..int_len {
                out.write_char('0')?;
            }
            out.write_char('.')?;
            if n > int_len {
                for d in digits().skip(int_len) {
                    out.write_char(d)?;
                }
            } else {
                out.write_char('0')?;
            }
        }
        Ok(())
    } else {
        out.write_str(lead)?;
        if !rest.is_empty() {
            out.write_char('.')?;
            out.write_str(rest)?;
        }
        let sign = if exp < 0 { '-' } else { '+' };
        write!(out, "e{sign}{:02}", exp.unsigned_abs())
    }
}

/// Python's `repr(x)` of a float, as a new string (see [`write_float_repr`]).
pub fn float_repr(x: f64) -> String {
    let mut s = String::new();
    // Writing into a String cannot fail, and every branch above writes whole strs.
    let _ = write_float_repr(&mut s, x);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repr_matches_python() {
        // Expected strings are what CPython 3.11 prints for repr(x).
        let cases = [
            (22.4, "22.4"),
            (100.0, "100.0"),
            (0.00001, "1e-05"),
            (0.0001, "0.0001"),
            (0.000123, "0.000123"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (9999999999999998.0, "9999999999999998.0"),
            (123456789012345.0, "123456789012345.0"),
            (-2.5e-7, "-2.5e-07"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1796406170.6333556, "1796406170.6333556"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1e100, "1e+100"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (f64::NAN, "nan"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::INFINITY, "inf"),
            (12.0, "12.0"),
            (-500.0, "-500.0"),
        ];
        for (x, want) in cases {
            assert_eq!(float_repr(x), want, "{x:e}");
        }
    }

    #[test]
    fn round_matches_python() {
        // Expected values are CPython 3.11's round(x, n).
        let cases = [
            (0.0078125, 6, 0.007812),
            (0.0234375, 6, 0.023438),
            (0.125, 2, 0.12),
            (0.375, 2, 0.38),
            (2.5, 0, 2.0),
            (3.5, 0, 4.0),
            (2.675, 2, 2.67), // 2.675 is 2.67499999... in binary
            (-1.0000005, 6, -1.000001),
            (1e300, 6, 1e300),
            (123.4567891, 6, 123.456789),
        ];
        for (x, n, want) in cases {
            assert_eq!(round(x, n).to_bits(), f64::to_bits(want), "round({x}, {n})");
        }
        assert!(round(f64::NAN, 6).is_nan());
        assert_eq!(round(f64::INFINITY, 6), f64::INFINITY);
        assert_eq!(round(f64::MAX, 255), f64::MAX);
    }
}
