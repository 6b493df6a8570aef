//! JSON exactly as PySOA 1.4.9 writes it (Python's `json.dumps` defaults) and reads it (`json.loads`).
//!
//! Output: separators `", "` and `": "`; every character outside printable ASCII escaped as `\uXXXX` (lower-case
//! hex, astral characters as surrogate pairs); floats in Python's `repr` form (`1.0`, `1e+16`, `1e-05`); the
//! non-standard tokens `NaN`, `Infinity` and `-Infinity`; map keys that are integers, floats, booleans or null
//! turned into text as Python does. Bytes, date-times, dates, times, decimals, amounts and extension values have no
//! JSON form in PySOA and are refused.
//!
//! Input: RFC 8259 JSON plus the three non-finite tokens. Numbers with a fraction or exponent are floats, others
//! integers; integers beyond the 64-bit range (which Python accepts, but MessagePack cannot carry) are refused. A
//! lone surrogate escape (`"\ud800"`, which Python decodes into a lone surrogate) becomes
//! [`Value::NonUtf8String`] holding the bytes Python's `surrogatepass` would write.
//!
//! Neither direction is `serde_json`: it cannot read `NaN` or `Infinity`, cannot write Python's float format, and
//! would need a second pass to preserve the order and variants of [`Value`]. The writer and the reader here are
//! small, and the golden vectors pin their behaviour.

use std::fmt::Write as _;

use rsoa_protocol::{Int, JobRequest, JobResponse, Map, Value};

use crate::{envelope, Error, Limits, Serializer};

/// The `application/json` serializer.
///
/// ```
/// use rsoa_codec::{JsonSerializer, Serializer};
/// use rsoa_protocol::Value;
///
/// let value: Value = [("b", Value::from(1.0)), ("a", Value::from("é"))].into_iter().collect();
/// let text = JsonSerializer::default().encode(&value).unwrap();
/// assert_eq!(text, br#"{"b": 1.0, "a": "\u00e9"}"#);
/// assert_eq!(JsonSerializer::default().decode(&text).unwrap(), value);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct JsonSerializer {
    /// Decoding limits.
    pub limits: Limits,
}

impl JsonSerializer {
    /// The MIME type PySOA registers for JSON.
    pub const MIME_TYPE: &'static str = "application/json";

    /// A serializer with these decoding limits.
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }
}

impl Serializer for JsonSerializer {
    fn mime_type(&self) -> &'static str {
        Self::MIME_TYPE
    }

    fn encode_into(&self, value: &Value, out: &mut Vec<u8>) -> Result<(), Error> {
        let mut text = String::new();
        write_value(&mut text, value)?;
        out.extend_from_slice(text.as_bytes());
        Ok(())
    }

    fn encode_request_into(
        &self,
        request_id: &Value,
        meta: &Map,
        job: &JobRequest,
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let mut sink = Sink::default();
        envelope::request(&mut sink, request_id, meta, job)?;
        out.extend_from_slice(sink.out.as_bytes());
        Ok(())
    }

    fn encode_response_into(
        &self,
        request_id: &Value,
        meta: &Map,
        job: &JobResponse,
        with_is_caller_error: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let mut sink = Sink::default();
        envelope::response(&mut sink, request_id, meta, job, with_is_caller_error)?;
        out.extend_from_slice(sink.out.as_bytes());
        Ok(())
    }

    fn decode(&self, bytes: &[u8]) -> Result<Value, Error> {
        if bytes.len() > self.limits.max_size {
            return Err(Error::TooLarge {
                size: bytes.len(),
                limit: self.limits.max_size,
            });
        }
        let mut reader = Reader {
            buf: bytes,
            pos: 0,
            depth: 0,
            max_depth: self.limits.max_depth,
        };
        reader.skip_ws();
        let value = reader.value()?;
        reader.skip_ws();
        if reader.pos != bytes.len() {
            return Err(reader.invalid("extra data after the value"));
        }
        Ok(value)
    }
}

/// JSON written a piece at a time, with Python's separators: `", "` between items, `": "` after keys.
#[derive(Default)]
struct Sink {
    out: String,
    /// For each open container: whether it is an array, and how many items it holds so far.
    open: Vec<(bool, usize)>,
}

impl Sink {
    /// Before a value: in an array, the separator from the previous item.
    fn item(&mut self) {
        if let Some((true, count)) = self.open.last_mut() {
            if *count > 0 {
                self.out.push_str(", ");
            }
            *count += 1;
        }
    }
}

impl envelope::Sink for Sink {
    fn begin_map(&mut self, _len: usize) -> Result<(), Error> {
        self.item();
        self.out.push('{');
        self.open.push((false, 0));
        Ok(())
    }

    fn begin_array(&mut self, _len: usize) -> Result<(), Error> {
        self.item();
        self.out.push('[');
        self.open.push((true, 0));
        Ok(())
    }

    fn key(&mut self, key: &str) -> Result<(), Error> {
        if let Some((false, count)) = self.open.last_mut() {
            if *count > 0 {
                self.out.push_str(", ");
            }
            *count += 1;
        }
        write_str(&mut self.out, key.chars());
        self.out.push_str(": ");
        Ok(())
    }

    fn text(&mut self, text: &str) -> Result<(), Error> {
        self.item();
        write_str(&mut self.out, text.chars());
        Ok(())
    }

    fn value(&mut self, value: &Value) -> Result<(), Error> {
        self.item();
        write_value(&mut self.out, value)
    }

    fn entries(&mut self, map: &Map) -> Result<(), Error> {
        self.item();
        write_map(&mut self.out, map)
    }

    fn end(&mut self) {
        if let Some((array, _)) = self.open.pop() {
            self.out.push(if array { ']' } else { '}' });
        }
    }
}

fn write_value(out: &mut String, value: &Value) -> Result<(), Error> {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => write_float(out, *f),
        Value::String(s) => write_str(out, s.chars()),
        Value::NonUtf8String(b) => match wtf8_chars(b) {
            Some(units) => write_units(out, &units),
            None => {
                return Err(Error::unencodable(
                    "",
                    "a string that is not valid UTF-8 has no JSON form",
                ))
            }
        },
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(out, item).map_err(|e| e.under(&i.to_string()))?;
            }
            out.push(']');
        }
        Value::Map(map) => write_map(out, map)?,
        other => {
            return Err(Error::unencodable(
                "",
                format!("a {} has no JSON form", other.kind()),
            ));
        }
    }
    Ok(())
}

fn write_map(out: &mut String, map: &Map) -> Result<(), Error> {
    out.push('{');
    for (i, (k, v)) in map.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let key: std::borrow::Cow<'_, str> = match k {
            Value::String(s) => s.as_str().into(),
            // A key with a lone surrogate (from a JSON "\ud800" escape) is written back the same way.
            Value::NonUtf8String(bytes) => {
                let units = wtf8_chars(bytes).ok_or_else(|| {
                    Error::unencodable("", "a map key that is not valid UTF-8 has no JSON form")
                })?;
                write_units(out, &units);
                out.push_str(": ");
                let path = String::from_utf8_lossy(bytes);
                write_value(out, v).map_err(|e| e.under(&path))?;
                continue;
            }
            Value::Int(n) => n.to_string().into(),
            Value::Float(f) => {
                let mut s = String::new();
                write_float(&mut s, *f);
                s.into()
            }
            Value::Bool(true) => "true".into(),
            Value::Bool(false) => "false".into(),
            Value::Null => "null".into(),
            other => {
                return Err(Error::unencodable(
                    "",
                    format!(
                    "a {} map key has no JSON form (keys must be text, numbers, booleans or null)",
                    other.kind()
                ),
                ))
            }
        };
        write_str(out, key.chars());
        out.push_str(": ");
        write_value(out, v).map_err(|e| e.under(&key))?;
    }
    out.push('}');
    Ok(())
}

/// Writes a JSON string with Python's `ensure_ascii` escaping.
fn write_str(out: &mut String, chars: impl Iterator<Item = char>) {
    out.push('"');
    for c in chars {
        escape_unit(out, c as u32);
    }
    out.push('"');
}

/// Writes code points that may include lone surrogates.
fn write_units(out: &mut String, code_points: &[u32]) {
    out.push('"');
    for &cp in code_points {
        escape_unit(out, cp);
    }
    out.push('"');
}

fn escape_unit(out: &mut String, cp: u32) {
    match cp {
        0x22 => out.push_str("\\\""),
        0x5c => out.push_str("\\\\"),
        0x0a => out.push_str("\\n"),
        0x0d => out.push_str("\\r"),
        0x09 => out.push_str("\\t"),
        0x08 => out.push_str("\\b"),
        0x0c => out.push_str("\\f"),
        // Printable ASCII is written as is; everything else is escaped, as Python's ensure_ascii does.
        0x20..=0x7e => out.push(char::from(cp as u8)),
        0x10000.. => {
            let v = cp - 0x10000;
            let _ = write!(
                out,
                "\\u{:04x}\\u{:04x}",
                0xd800 + (v >> 10),
                0xdc00 + (v & 0x3ff)
            );
        }
        _ => {
            let _ = write!(out, "\\u{cp:04x}");
        }
    }
}

/// Decodes generalised UTF-8 (UTF-8 that may encode surrogates, as Python's `surrogatepass` writes) into code
/// points; `None` if the bytes are not even that.
fn wtf8_chars(bytes: &[u8]) -> Option<Vec<u32>> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b0 = bytes[i];
        let (len, init) = match b0 {
            0x00..=0x7f => (1, u32::from(b0)),
            0xc2..=0xdf => (2, u32::from(b0 & 0x1f)),
            0xe0..=0xef => (3, u32::from(b0 & 0x0f)),
            0xf0..=0xf4 => (4, u32::from(b0 & 0x07)),
            _ => return None,
        };
        let tail = bytes.get(i + 1..i + len)?;
        let mut cp = init;
        for &b in tail {
            if b & 0xc0 != 0x80 {
                return None;
            }
            cp = (cp << 6) | u32::from(b & 0x3f);
        }
        let min = [0, 0, 0x80, 0x800, 0x10000][len];
        if cp < min || cp > 0x10ffff {
            return None;
        }
        out.push(cp);
        i += len;
    }
    Some(out)
}

/// The generalised UTF-8 bytes of code points (lone surrogates included), as Python's `surrogatepass` writes them.
fn wtf8_bytes(code_points: &[u32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(code_points.len());
    for &cp in code_points {
        match cp {
            0..=0x7f => out.push(cp as u8),
            0x80..=0x7ff => out.extend([0xc0 | (cp >> 6) as u8, 0x80 | (cp & 0x3f) as u8]),
            0x800..=0xffff => {
                out.extend([
                    0xe0 | (cp >> 12) as u8,
                    0x80 | ((cp >> 6) & 0x3f) as u8,
                    0x80 | (cp & 0x3f) as u8,
                ]);
            }
            _ => out.extend([
                0xf0 | (cp >> 18) as u8,
                0x80 | ((cp >> 12) & 0x3f) as u8,
                0x80 | ((cp >> 6) & 0x3f) as u8,
                0x80 | (cp & 0x3f) as u8,
            ]),
        }
    }
    out
}

/// Writes a float as Python's `repr` does: the shortest text that reads back to the same double, in fixed notation
/// when the decimal exponent is in -4..16 (with `.0` for integral values), else as `d.ddde±XX`.
pub(crate) fn write_float(out: &mut String, f: f64) {
    if f.is_nan() {
        out.push_str("NaN");
        return;
    }
    if f.is_infinite() {
        out.push_str(if f > 0.0 { "Infinity" } else { "-Infinity" });
        return;
    }
    // Rust's `{:e}` gives the shortest round-trip digits in scientific form, e.g. "-1.5e-300" or "1e16".
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if negative {
        out.push('-');
    }
    if (-4..16).contains(&exp) {
        let point = exp + 1; // digits before the decimal point
        if point <= 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-point) as usize));
            out.push_str(&digits);
        } else if point as usize >= digits.len() {
            out.push_str(&digits);
            out.extend(std::iter::repeat_n('0', point as usize - digits.len()));
            out.push_str(".0");
        } else {
            let (int, frac) = digits.split_at(point as usize);
            out.push_str(int);
            out.push('.');
            out.push_str(frac);
        }
    } else {
        let (first, rest) = digits.split_at(1);
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        let sign = if exp < 0 { '-' } else { '+' };
        let _ = write!(out, "e{sign}{:02}", exp.unsigned_abs());
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    depth: usize,
    max_depth: usize,
}

impl Reader<'_> {
    fn invalid(&self, reason: impl Into<String>) -> Error {
        Error::Invalid {
            format: "JSON",
            offset: self.pos,
            reason: reason.into(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn literal(&mut self, text: &str, value: Value) -> Result<Value, Error> {
        if self.buf[self.pos..].starts_with(text.as_bytes()) {
            self.pos += text.len();
            Ok(value)
        } else {
            Err(self.invalid("unexpected character"))
        }
    }

    fn value(&mut self) -> Result<Value, Error> {
        match self.peek() {
            None => Err(self.invalid("unexpected end of input")),
            Some(b'n') => self.literal("null", Value::Null),
            Some(b't') => self.literal("true", Value::Bool(true)),
            Some(b'f') => self.literal("false", Value::Bool(false)),
            Some(b'N') => self.literal("NaN", Value::Float(f64::NAN)),
            Some(b'I') => self.literal("Infinity", Value::Float(f64::INFINITY)),
            Some(b'-') if self.buf[self.pos..].starts_with(b"-Infinity") => {
                self.literal("-Infinity", Value::Float(f64::NEG_INFINITY))
            }
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b'"') => self.string(),
            Some(b'[') => self.array(),
            Some(b'{') => self.object(),
            Some(_) => Err(self.invalid("unexpected character")),
        }
    }

    fn enter(&mut self) -> Result<(), Error> {
        self.depth += 1;
        if self.depth > self.max_depth {
            return Err(Error::TooDeep {
                offset: self.pos,
                limit: self.max_depth,
            });
        }
        Ok(())
    }

    fn array(&mut self) -> Result<Value, Error> {
        self.enter()?;
        self.pos += 1;
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
        } else {
            loop {
                self.skip_ws();
                items.push(self.value()?);
                self.skip_ws();
                match self.peek() {
                    Some(b',') => self.pos += 1,
                    Some(b']') => {
                        self.pos += 1;
                        break;
                    }
                    _ => return Err(self.invalid("expected ',' or ']'")),
                }
            }
        }
        self.depth -= 1;
        Ok(Value::Array(items))
    }

    fn object(&mut self) -> Result<Value, Error> {
        self.enter()?;
        self.pos += 1;
        let mut map = Map::new();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
        } else {
            loop {
                self.skip_ws();
                if self.peek() != Some(b'"') {
                    return Err(self.invalid("expected a string key"));
                }
                let key = self.string()?;
                self.skip_ws();
                if self.peek() != Some(b':') {
                    return Err(self.invalid("expected ':'"));
                }
                self.pos += 1;
                self.skip_ws();
                let value = self.value()?;
                map.push(key, value);
                self.skip_ws();
                match self.peek() {
                    Some(b',') => self.pos += 1,
                    Some(b'}') => {
                        self.pos += 1;
                        break;
                    }
                    _ => return Err(self.invalid("expected ',' or '}'")),
                }
            }
        }
        self.depth -= 1;
        Ok(Value::Map(map))
    }

    fn number(&mut self) -> Result<Value, Error> {
        let start = self.pos;
        let mut is_float = false;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.invalid("expected a digit")),
        }
        if self.peek() == Some(b'.') {
            is_float = true;
            self.pos += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.invalid("expected a digit after '.'"));
            }
            self.digits();
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            is_float = true;
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.invalid("expected a digit in the exponent"));
            }
            self.digits();
        }
        // The scanned bytes are ASCII digits, signs, '.', 'e' and 'E'.
        let text = std::str::from_utf8(&self.buf[start..self.pos]).unwrap_or_default();
        if is_float {
            return text
                .parse::<f64>()
                .map(Value::Float)
                .map_err(|_| self.invalid("malformed number"));
        }
        if let Ok(n) = text.parse::<i64>() {
            return Ok(Value::Int(Int::from(n)));
        }
        text.parse::<u64>()
            .map(|n| Value::Int(Int::from(n)))
            .map_err(|_| Error::Invalid {
                format: "JSON",
                offset: start,
                reason: format!(
                    "integer {text} is outside the 64-bit range MessagePack and rsoa can carry"
                ),
            })
    }

    fn digits(&mut self) {
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
    }

    fn hex4(&mut self) -> Result<u32, Error> {
        let digits = self
            .buf
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| self.invalid("incomplete \\u escape"))?;
        let text = std::str::from_utf8(digits).map_err(|_| self.invalid("invalid \\u escape"))?;
        let cp = u32::from_str_radix(text, 16).map_err(|_| self.invalid("invalid \\u escape"))?;
        if !digits.iter().all(u8::is_ascii_hexdigit) {
            return Err(self.invalid("invalid \\u escape"));
        }
        self.pos += 4;
        Ok(cp)
    }

    fn string(&mut self) -> Result<Value, Error> {
        self.pos += 1;
        // Code points, because a JSON string may escape lone surrogates that no Rust `String` can hold.
        let mut units: Vec<u32> = Vec::new();
        let mut lone_surrogate = false;
        loop {
            let start = self.pos;
            // Copy a run of plain characters at once.
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            if self.pos > start {
                let run = std::str::from_utf8(&self.buf[start..self.pos]).map_err(|e| {
                    Error::Invalid {
                        format: "JSON",
                        offset: start + e.valid_up_to(),
                        reason: "invalid UTF-8".to_owned(),
                    }
                })?;
                units.extend(run.chars().map(u32::from));
            }
            match self.peek() {
                None => return Err(self.invalid("unterminated string")),
                Some(b'"') => {
                    self.pos += 1;
                    break;
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let escape = self
                        .peek()
                        .ok_or_else(|| self.invalid("unterminated escape"))?;
                    self.pos += 1;
                    let cp = match escape {
                        b'"' => 0x22,
                        b'\\' => 0x5c,
                        b'/' => 0x2f,
                        b'b' => 0x08,
                        b'f' => 0x0c,
                        b'n' => 0x0a,
                        b'r' => 0x0d,
                        b't' => 0x09,
                        b'u' => {
                            let hi = self.hex4()?;
                            if (0xd800..0xdc00).contains(&hi)
                                && self.buf[self.pos..].starts_with(b"\\u")
                            {
                                let save = self.pos;
                                self.pos += 2;
                                let lo = self.hex4()?;
                                if (0xdc00..0xe000).contains(&lo) {
                                    0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00)
                                } else {
                                    self.pos = save;
                                    lone_surrogate = true;
                                    hi
                                }
                            } else {
                                lone_surrogate |= (0xd800..0xe000).contains(&hi);
                                hi
                            }
                        }
                        _ => {
                            self.pos -= 1;
                            return Err(self.invalid("invalid escape"));
                        }
                    };
                    units.push(cp);
                }
                Some(_) => return Err(self.invalid("control character in a string")),
            }
        }
        if lone_surrogate {
            return Ok(Value::NonUtf8String(wtf8_bytes(&units)));
        }
        Ok(Value::String(
            units.into_iter().filter_map(char::from_u32).collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repr(f: f64) -> String {
        let mut s = String::new();
        write_float(&mut s, f);
        s
    }

    #[test]
    // Literals such as 123456789012345678.0 are the inputs Python was given; their rounding is the point.
    #[allow(clippy::lossy_float_literal)]
    fn floats_match_python_repr() {
        let cases = [
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-300, "1.5e-300"),
            (5e-324, "5e-324"),
            (1e22, "1e+22"),
            (f64::MAX, "1.7976931348623157e+308"),
            (100.0, "100.0"),
            (1234567890123456.7, "1234567890123456.8"),
            (9999999999999998.0, "9999999999999998.0"),
            (0.001, "0.001"),
            (-0.0, "-0.0"),
            (1e-7, "1e-07"),
            (2.5e-05, "2.5e-05"),
            (1e100, "1e+100"),
            (12345678901234567890.0, "1.2345678901234567e+19"),
            (0.1, "0.1"),
            (3.0, "3.0"),
            (-2.5, "-2.5"),
        ];
        for (f, expected) in cases {
            assert_eq!(repr(f), expected, "{f:e}");
        }
    }

    #[test]
    fn lone_surrogates_round_trip() {
        let json = JsonSerializer::default();
        let v = json.decode(br#""a\ud800b""#).unwrap();
        assert_eq!(v, Value::NonUtf8String(vec![b'a', 0xed, 0xa0, 0x80, b'b']));
        assert_eq!(json.encode(&v).unwrap(), br#""a\ud800b""#);
        assert!(json.encode(&Value::NonUtf8String(vec![0xff])).is_err());
    }

    #[test]
    fn lone_surrogate_keys_round_trip() {
        // Found by the fuzzer: a key with a lone surrogate escape decoded but could not be encoded again.
        let json = JsonSerializer::default();
        let text = br#"{"a\udc00": 1}"#;
        let value = json.decode(text).unwrap();
        assert_eq!(json.encode(&value).unwrap(), text);
    }

    #[test]
    fn rejects_malformed_input_with_offsets() {
        let json = JsonSerializer::default();
        for (bad, offset) in [
            (&b"{"[..], 1),
            (b"[1,]", 3),
            (b"01", 1),
            (b"\"\x01\"", 1),
            (b"nul", 0),
            (b"1 2", 2),
            (b"{\"a\" 1}", 5),
            (b"\"\\x\"", 2),
            (b"1.", 2),
            (b"-", 1),
            (b"\"\xff\"", 1),
        ] {
            match json.decode(bad) {
                Err(Error::Invalid { offset: got, .. }) => {
                    assert_eq!(got, offset, "{:?}", String::from_utf8_lossy(bad))
                }
                other => panic!("{:?}: {other:?}", String::from_utf8_lossy(bad)),
            }
        }
        assert!(matches!(
            json.decode(&[b'['; 1000]),
            Err(Error::TooDeep { .. })
        ));
    }
}
