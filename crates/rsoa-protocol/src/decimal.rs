//! Arbitrary-precision decimals, kept as Python's canonical text.

use std::fmt;
use std::str::FromStr;

use crate::magic::{self, Magic};
use crate::ValueError;

/// A decimal number of any length (PySOA extension type 5), held as the text Python's `str(Decimal(...))` prints.
///
/// Parsing accepts what Python's `Decimal` constructor accepts (signs, exponents, `Infinity`, `NaN` with a payload,
/// `sNaN`, surrounding white space, underscores anywhere) except non-ASCII digits, which never occur on the wire, and
/// normalises it to Python's canonical form, so a
/// decimal from rsoa puts the same bytes on the wire as the same decimal from Python. Arithmetic is left to a
/// decimal crate of your choice: convert through [`Decimal::as_str`].
///
/// ```
/// use rsoa_protocol::Decimal;
///
/// assert_eq!("12345.678900".parse::<Decimal>().unwrap().as_str(), "12345.678900");
/// assert_eq!("1e3".parse::<Decimal>().unwrap().as_str(), "1E+3");
/// assert_eq!("0.0000001".parse::<Decimal>().unwrap().as_str(), "1E-7");
/// assert_eq!("-inf".parse::<Decimal>().unwrap().as_str(), "-Infinity");
/// assert!("abcd".parse::<Decimal>().is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Decimal(String);

impl Decimal {
    /// The canonical text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is a NaN (quiet or signalling).
    pub fn is_nan(&self) -> bool {
        self.0.trim_start_matches('-').contains("NaN")
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Decimal({})", self.0)
    }
}

impl From<i64> for Decimal {
    fn from(n: i64) -> Decimal {
        Decimal(n.to_string())
    }
}

impl FromStr for Decimal {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Decimal, ValueError> {
        canonical(s)
            .map(Decimal)
            .ok_or_else(|| ValueError::invalid(format!("{s:?} is not a decimal number")))
    }
}

/// The ASCII digits of `s`, or `None` if it is empty or holds anything else.
fn digits(s: &str) -> Option<String> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.to_owned())
}

fn strip_leading_zeros(d: &str) -> &str {
    let t = d.trim_start_matches('0');
    if t.is_empty() {
        "0"
    } else {
        t
    }
}

/// Whether `s` is already in Python's canonical plain form, the common case on the wire: an optional `-`, an
/// integer part without leading zeros, an optional fraction, and (for small numbers) at most six zeros after the
/// point before the first significant digit.
fn is_plain_canonical(s: &str) -> bool {
    let unsigned = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = match unsigned.split_once('.') {
        Some((int, frac)) if !frac.is_empty() => (int, frac),
        Some(_) => return false,
        None => (unsigned, ""),
    };
    let all_digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(int) || !(frac.is_empty() || all_digits(frac)) {
        return false;
    }
    if int.len() > 1 && int.starts_with('0') {
        return false;
    }
    if int != "0" {
        return true;
    }
    // 0.000001 is plain but 0.0000001 is 1E-7: the adjusted exponent must be at least -6.
    let significant = frac.trim_start_matches('0');
    let coefficient_len = if significant.is_empty() {
        1
    } else {
        significant.len()
    } as i64;
    let adjusted = coefficient_len - 1 - frac.len() as i64;
    adjusted >= -6
}

/// Python's `Decimal.__str__` of the text `s` (the "to-scientific-string" operation), or `None` if `s` is not a
/// decimal.
fn canonical(s: &str) -> Option<String> {
    if is_plain_canonical(s) {
        return Some(s.to_owned());
    }
    // Python strips surrounding white space and removes every underscore before it parses.
    let cleaned = s.trim().replace('_', "");
    let s = cleaned.as_str();
    let (negative, rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let sign = if negative { "-" } else { "" };
    let lower = rest.to_ascii_lowercase();
    if lower == "inf" || lower == "infinity" {
        return Some(format!("{sign}Infinity"));
    }
    for (prefix, name) in [("snan", "sNaN"), ("nan", "NaN")] {
        if let Some(payload) = lower.strip_prefix(prefix) {
            if payload.is_empty() {
                return Some(format!("{sign}{name}"));
            }
            let payload = digits(payload)?;
            let payload = payload.trim_start_matches('0');
            return Some(format!("{sign}{name}{payload}"));
        }
    }

    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let (int_part, frac_part) = match mantissa.split_once('.') {
        Some((i, f)) => (i, f),
        None => (mantissa, ""),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    let int_digits = if int_part.is_empty() {
        String::new()
    } else {
        digits(int_part)?
    };
    let frac_digits = if frac_part.is_empty() {
        String::new()
    } else {
        digits(frac_part)?
    };
    let mut exp: i64 = match exponent {
        Some(e) => {
            let (eneg, edigits) = match e.as_bytes().first()? {
                b'-' => (true, &e[1..]),
                b'+' => (false, &e[1..]),
                _ => (false, e),
            };
            let value: i64 = strip_leading_zeros(&digits(edigits)?).parse().ok()?;
            if eneg {
                -value
            } else {
                value
            }
        }
        None => 0,
    };
    exp = exp.checked_sub(i64::try_from(frac_digits.len()).ok()?)?;
    let all = format!("{int_digits}{frac_digits}");
    let coeff = strip_leading_zeros(&all);
    let len = i64::try_from(coeff.len()).ok()?;
    let adjusted = exp.checked_add(len - 1)?;

    let body = if exp <= 0 && adjusted >= -6 {
        if exp == 0 {
            coeff.to_owned()
        } else {
            let point = len + exp; // digits before the decimal point
            if point > 0 {
                let point = point as usize;
                format!("{}.{}", &coeff[..point], &coeff[point..])
            } else {
                format!("0.{}{coeff}", "0".repeat((-point) as usize))
            }
        }
    } else {
        let (first, tail) = coeff.split_at(1);
        let dot = if tail.is_empty() { "" } else { "." };
        let esign = if adjusted >= 0 { "+" } else { "-" };
        format!("{first}{dot}{tail}E{esign}{}", adjusted.unsigned_abs())
    };
    Some(format!("{sign}{body}"))
}

impl Magic for Decimal {
    const NAME: &'static str = magic::DECIMAL;
    const EXPECTING: &'static str = "a decimal";
    type Repr = String;

    fn to_repr(&self) -> String {
        self.0.clone()
    }

    fn from_repr(repr: String) -> Result<Self, ValueError> {
        repr.parse()
    }
}

magic::serde_via_magic!(Decimal);

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn canon(s: &str) -> String {
        s.parse::<Decimal>().unwrap().0
    }

    #[test]
    fn matches_python_str() {
        // Each pair is (input, Python's str(Decimal(input))).
        let cases = [
            ("1e3", "1E+3"),
            ("007", "7"),
            ("0.00", "0.00"),
            ("-0", "-0"),
            ("1E-7", "1E-7"),
            ("0.000001", "0.000001"),
            ("0.0000001", "1E-7"),
            ("123.4500", "123.4500"),
            ("nan", "NaN"),
            ("-nan", "-NaN"),
            ("NaN123", "NaN123"),
            ("NaN0", "NaN"),
            ("snan", "sNaN"),
            ("inf", "Infinity"),
            ("-Infinity", "-Infinity"),
            ("1.5E+10", "1.5E+10"),
            ("+5", "5"),
            (".5", "0.5"),
            ("5.", "5"),
            ("1_000", "1000"),
            ("_1", "1"),
            ("1e_5", "1E+5"),
            ("N_aN", "NaN"),
            ("10e-7", "0.0000010"),
            ("1.0E-5", "0.000010"),
            ("-0.0", "-0.0"),
            ("0E-7", "0E-7"),
            ("nan00123", "NaN123"),
            ("-sNaN7", "-sNaN7"),
            ("1e00003", "1E+3"),
            (" 5 ", "5"),
            ("1e-1000000", "1E-1000000"),
            ("12345.678900", "12345.678900"),
            ("100E-2", "1.00"),
            ("0E+2", "0E+2"),
            ("0E-8", "0E-8"),
            ("0.0000000", "0E-7"),
            ("0.000000", "0.000000"),
            ("00.5", "0.5"),
            ("0", "0"),
            ("-0.5", "-0.5"),
            (
                "123456789012345678901234567890.123456789",
                "123456789012345678901234567890.123456789",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(canon(input), expected, "input {input:?}");
        }
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "_",
            "abcd",
            ".",
            "-",
            "e5",
            "1e",
            "1.2.3",
            "--1",
            "1e+-2",
            "infinit",
            "Infinity1",
            "nanx",
            "1 000",
            "0x10",
            "٣",
        ] {
            assert!(bad.parse::<Decimal>().is_err(), "accepted {bad:?}");
        }
    }
}
