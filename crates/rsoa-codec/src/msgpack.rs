//! MessagePack exactly as PySOA 1.4.9 writes and reads it.
//!
//! # Encoding
//!
//! Every value takes the smallest format that fits; non-negative integers always use the unsigned formats; floats
//! are always float64; text is `str` and bytes are `bin`; maps keep insertion order; extension payloads of 1, 2, 4,
//! 8 or 16 bytes use `fixext`. The six PySOA extension types use PySOA's payload layouts (big-endian): naive
//! date-time (1) and UTC date-time (10) as i64 microseconds since 1970, date (3) as u16 year + u8 month + u8 day,
//! time (4) as u8 hour, minute, second + u32 microsecond, decimal (5) as u16 length + ASCII text, currency amount
//! (2) as three ASCII letters + i64 minor units.
//!
//! ## Date-times: PySOA's float truncation, deliberately
//!
//! PySOA computes the microsecond count through a float, `int(total_seconds * 1e6)`, so about one date-time in a
//! hundred is written one microsecond short of its true value (one microsecond long before 1970), and beyond
//! 2²⁵³ µs from 1970 (after the year 2255) precision drops further. By default rsoa reproduces that computation
//! bit for bit, so a Rust peer puts exactly the bytes on the wire that a Python peer would, and a message relayed
//! through rsoa is indistinguishable from one relayed through Python. Where exact microseconds matter more than
//! byte identity (Rust talking to Rust), choose [`DateTimeEncoding::Exact`]: Python decodes exact values
//! correctly too (its decoder rounds to the nearest microsecond), so either choice interoperates. Decoding is
//! always exact.
//!
//! # Decoding
//!
//! Decoding never panics and never trusts a declared length beyond the bytes that remain; it stops at
//! [`Limits::max_depth`] levels of nesting and refuses input over [`Limits::max_size`] bytes. Errors carry the byte
//! offset. It differs from PySOA in two deliberate ways, both in the direction of losing nothing: a `str` that is
//! not valid UTF-8 becomes [`Value::NonUtf8String`], and an unknown extension code becomes [`Value::Ext`], where
//! PySOA would fail the whole message (and a Python server would crash). Encoding those two values is refused
//! unless [`MsgpackSerializer::allow_python_incompatible`] is set, because a Python peer cannot read them.

use rmp::encode;
use rmp::Marker;
use rsoa_protocol::{
    Amount, CompactString, Currency, Date, DateTime, Decimal, Ext, Int, JobRequest, JobResponse,
    Map, Time, UtcDateTime, Value,
};

use crate::{envelope, Error, Limits, Serializer};

/// The map keys of PySOA's envelope, job, action and error, which make up most of the texts in a message: one of
/// these is recognized by its bytes and held as a static text, skipping UTF-8 validation and a copy.
fn protocol_key(bytes: &[u8]) -> Option<&'static str> {
    Some(match bytes {
        b"request_id" => "request_id",
        b"meta" => "meta",
        b"body" => "body",
        b"reply_to" => "reply_to",
        b"client_version" => "client_version",
        b"__expiry__" => "__expiry__",
        b"control" => "control",
        b"context" => "context",
        b"actions" => "actions",
        b"action" => "action",
        b"continue_on_error" => "continue_on_error",
        b"suppress_response" => "suppress_response",
        b"timeout" => "timeout",
        b"switches" => "switches",
        b"correlation_id" => "correlation_id",
        b"caller" => "caller",
        b"calling_service" => "calling_service",
        b"errors" => "errors",
        b"code" => "code",
        b"message" => "message",
        b"field" => "field",
        b"traceback" => "traceback",
        b"variables" => "variables",
        b"denied_permissions" => "denied_permissions",
        b"is_caller_error" => "is_caller_error",
        _ => return None,
    })
}

/// How date-times are turned into microseconds on the wire.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DateTimeEncoding {
    /// PySOA's float computation, byte-identical to a Python peer (see the module documentation).
    #[default]
    PySoa,
    /// The exact microsecond count.
    Exact,
}

/// The `application/msgpack` serializer, PySOA's default.
///
/// ```
/// use rsoa_codec::{MsgpackSerializer, Serializer};
/// use rsoa_protocol::Value;
///
/// let value: Value = [("number", 7)].into_iter().collect();
/// let bytes = MsgpackSerializer::default().encode(&value).unwrap();
/// assert_eq!(bytes, [0x81, 0xa6, b'n', b'u', b'm', b'b', b'e', b'r', 0x07]);
/// assert_eq!(MsgpackSerializer::default().decode(&bytes).unwrap(), value);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MsgpackSerializer {
    /// How date-times are encoded.
    pub datetime_encoding: DateTimeEncoding,
    /// Whether to encode non-UTF-8 strings and unknown extension values, which make a Python peer fail the whole
    /// message. Off by default.
    pub allow_python_incompatible: bool,
    /// Decoding limits.
    pub limits: Limits,
}

impl MsgpackSerializer {
    /// The MIME type PySOA registers for MessagePack.
    pub const MIME_TYPE: &'static str = "application/msgpack";

    /// A serializer with the given date-time encoding.
    #[must_use]
    pub fn with_datetime_encoding(mut self, encoding: DateTimeEncoding) -> Self {
        self.datetime_encoding = encoding;
        self
    }

    /// A serializer that also encodes values a Python peer cannot read.
    #[must_use]
    pub fn with_python_incompatible(mut self, allow: bool) -> Self {
        self.allow_python_incompatible = allow;
        self
    }

    /// A serializer with these decoding limits.
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }
}

impl Serializer for MsgpackSerializer {
    fn mime_type(&self) -> &'static str {
        Self::MIME_TYPE
    }

    fn encode_into(&self, value: &Value, out: &mut Vec<u8>) -> Result<(), Error> {
        Encoder { config: self, out }.value(value)
    }

    fn encode_request_into(
        &self,
        request_id: &Value,
        meta: &Map,
        job: &JobRequest,
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        envelope::request(&mut Encoder { config: self, out }, request_id, meta, job)
    }

    fn encode_response_into(
        &self,
        request_id: &Value,
        meta: &Map,
        job: &JobResponse,
        with_is_caller_error: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let mut encoder = Encoder { config: self, out };
        envelope::response(&mut encoder, request_id, meta, job, with_is_caller_error)
    }

    fn decode(&self, bytes: &[u8]) -> Result<Value, Error> {
        if bytes.len() > self.limits.max_size {
            return Err(Error::TooLarge {
                size: bytes.len(),
                limit: self.limits.max_size,
            });
        }
        let mut decoder = Decoder {
            buf: bytes,
            pos: 0,
            depth: 0,
            max_depth: self.limits.max_depth,
        };
        let value = decoder.value()?;
        if decoder.pos != bytes.len() {
            return Err(invalid(decoder.pos, "extra data after the value"));
        }
        Ok(value)
    }
}

/// PySOA's microsecond count for an exact one: `int(float(exact / 10**6) * 1e6)`, where the division is Python's
/// correctly rounded true division of integers.
pub(crate) fn pysoa_micros(exact: i64) -> i64 {
    let seconds = correctly_rounded_div_million(exact);
    // `as` truncates toward zero, like Python's int(); the value is far inside i64.
    (seconds * 1e6) as i64
}

/// The f64 nearest to `n / 1_000_000`, ties to even, as Python's `int / int` computes it.
fn correctly_rounded_div_million(n: i64) -> f64 {
    const TWO_53: i64 = 1 << 53;
    if (-TWO_53..=TWO_53).contains(&n) {
        // Both operands are exact doubles, and IEEE division rounds correctly.
        return n as f64 / 1e6;
    }
    // Beyond 2^53 the integer itself would round first. Start near the answer and compare each neighbouring
    // double with the exact quotient in integer arithmetic (the candidates are about 2^38 with an exponent near
    // -14, so every product fits in i128).
    let guess = (n / 1_000_000) as f64 + (n % 1_000_000) as f64 / 1e6;
    let exact = i128::from(n);
    // |c * 10^6 - n|, scaled by 2^20 so that it is an integer (see `scaled`).
    let error = |c: f64| (scaled(c) * 1_000_000 - (exact << SCALE)).abs();
    let mut best = guess;
    for candidate in [next_down(guess), next_up(guess)] {
        let (err_c, err_b) = (error(candidate), error(best));
        // Ties go to the double with an even mantissa, as IEEE rounding does.
        if err_c < err_b || (err_c == err_b && candidate.to_bits() % 2 == 0) {
            best = candidate;
        }
    }
    best
}

/// The power of two that makes every quotient in range an integer.
const SCALE: u32 = 20;

/// `x * 2^20` as an exact integer. Quotients beyond 2^53 µs lie between 9.0e9 and 2.6e11 in magnitude, where
/// doubles are multiples of 2^-19 or coarser, so the product is exact and fits easily.
fn scaled(x: f64) -> i128 {
    (x * f64::from(1_u32 << SCALE)) as i128
}

fn next_up(x: f64) -> f64 {
    let bits = x.to_bits();
    f64::from_bits(if x >= 0.0 { bits + 1 } else { bits - 1 })
}

fn next_down(x: f64) -> f64 {
    let bits = x.to_bits();
    f64::from_bits(if x > 0.0 { bits - 1 } else { bits + 1 })
}

struct Encoder<'a> {
    config: &'a MsgpackSerializer,
    out: &'a mut Vec<u8>,
}

fn written<T, E>(r: Result<T, E>) -> Result<(), Error> {
    // Writing to a Vec cannot fail; keep the error path anyway rather than unwrap.
    r.map(drop)
        .map_err(|_| Error::unencodable("", "could not write to the output buffer"))
}

fn len_u32(len: usize, what: &str) -> Result<u32, Error> {
    u32::try_from(len).map_err(|_| {
        Error::unencodable(
            "",
            format!("{what} of {len} is longer than MessagePack allows"),
        )
    })
}

impl envelope::Sink for Encoder<'_> {
    fn begin_map(&mut self, len: usize) -> Result<(), Error> {
        written(encode::write_map_len(self.out, len_u32(len, "map")?))
    }

    fn begin_array(&mut self, len: usize) -> Result<(), Error> {
        written(encode::write_array_len(self.out, len_u32(len, "array")?))
    }

    fn key(&mut self, key: &str) -> Result<(), Error> {
        self.str_bytes(key.as_bytes())
    }

    fn text(&mut self, text: &str) -> Result<(), Error> {
        self.str_bytes(text.as_bytes())
    }

    fn value(&mut self, value: &Value) -> Result<(), Error> {
        Encoder::value(self, value)
    }

    fn entries(&mut self, map: &Map) -> Result<(), Error> {
        self.map(map)
    }

    fn end(&mut self) {}
}

impl Encoder<'_> {
    fn value(&mut self, value: &Value) -> Result<(), Error> {
        match value {
            Value::Null => written(encode::write_nil(self.out)),
            Value::Bool(b) => written(encode::write_bool(self.out, *b)),
            Value::Int(i) => self.int(*i),
            Value::Float(f) => written(encode::write_f64(self.out, *f)),
            Value::String(s) => self.str_bytes(s.as_bytes()),
            Value::NonUtf8String(b) => {
                if !self.config.allow_python_incompatible {
                    return Err(Error::unencodable(
                        "",
                        "a string that is not valid UTF-8 cannot be read by PySOA",
                    ));
                }
                self.str_bytes(b)
            }
            Value::Bytes(b) => {
                written(encode::write_bin_len(self.out, len_u32(b.len(), "bytes")?))?;
                self.out.extend_from_slice(b);
                Ok(())
            }
            Value::Array(items) => {
                written(encode::write_array_len(
                    self.out,
                    len_u32(items.len(), "array")?,
                ))?;
                for (i, item) in items.iter().enumerate() {
                    self.value(item).map_err(|e| e.under(&i.to_string()))?;
                }
                Ok(())
            }
            Value::Map(map) => self.map(map),
            Value::DateTime(dt) => self.datetime(1, dt.epoch_micros()),
            Value::UtcDateTime(dt) => self.datetime(10, dt.epoch_micros()),
            Value::Date(d) => {
                let year = u16::try_from(d.year())
                    .map_err(|_| Error::unencodable("", "year out of range"))?;
                let [y0, y1] = year.to_be_bytes();
                self.ext(3, &[y0, y1, d.month(), d.day()])
            }
            Value::Time(t) => {
                let mut payload = [t.hour(), t.minute(), t.second(), 0, 0, 0, 0];
                payload[3..].copy_from_slice(&t.microsecond().to_be_bytes());
                self.ext(4, &payload)
            }
            Value::Decimal(d) => self.decimal(d),
            Value::Amount(a) => {
                let mut payload = [0_u8; 11];
                payload[..3].copy_from_slice(a.currency().code().as_bytes());
                payload[3..].copy_from_slice(&a.minor_units().to_be_bytes());
                self.ext(2, &payload)
            }
            Value::Ext(ext) => {
                if !self.config.allow_python_incompatible {
                    return Err(Error::unencodable(
                        "",
                        format!("extension code {} cannot be read by PySOA", ext.code()),
                    ));
                }
                self.ext(ext.code(), ext.data())
            }
        }
    }

    fn int(&mut self, i: Int) -> Result<(), Error> {
        // PySOA writes every non-negative integer in the unsigned formats.
        match i.as_u64() {
            Some(n) => written(encode::write_uint(self.out, n)),
            None => written(encode::write_sint(self.out, i.as_i64().unwrap_or(i64::MIN))),
        }
    }

    fn str_bytes(&mut self, bytes: &[u8]) -> Result<(), Error> {
        written(encode::write_str_len(
            self.out,
            len_u32(bytes.len(), "string")?,
        ))?;
        self.out.extend_from_slice(bytes);
        Ok(())
    }

    fn map(&mut self, map: &Map) -> Result<(), Error> {
        written(encode::write_map_len(self.out, len_u32(map.len(), "map")?))?;
        for (k, v) in map.iter() {
            let key_text = || {
                k.as_str()
                    .map_or_else(|| format!("<{}>", k.kind()), str::to_owned)
            };
            self.value(k).map_err(|e| e.under(&key_text()))?;
            self.value(v).map_err(|e| e.under(&key_text()))?;
        }
        Ok(())
    }

    fn datetime(&mut self, code: i8, exact: i64) -> Result<(), Error> {
        let micros = match self.config.datetime_encoding {
            DateTimeEncoding::PySoa => pysoa_micros(exact),
            DateTimeEncoding::Exact => exact,
        };
        self.ext(code, &micros.to_be_bytes())
    }

    fn decimal(&mut self, d: &Decimal) -> Result<(), Error> {
        let text = d.as_str().as_bytes();
        let len = u16::try_from(text.len()).map_err(|_| {
            // PySOA silently truncates the text here, which changes the number; refusing is the honest choice.
            Error::unencodable(
                "",
                format!("decimal text of {} bytes is longer than 65535", text.len()),
            )
        })?;
        written(encode::write_ext_meta(self.out, 2 + u32::from(len), 5))?;
        self.out.extend_from_slice(&len.to_be_bytes());
        self.out.extend_from_slice(text);
        Ok(())
    }

    fn ext(&mut self, code: i8, payload: &[u8]) -> Result<(), Error> {
        written(encode::write_ext_meta(
            self.out,
            len_u32(payload.len(), "extension")?,
            code,
        ))?;
        self.out.extend_from_slice(payload);
        Ok(())
    }
}

fn invalid(offset: usize, reason: impl Into<String>) -> Error {
    Error::Invalid {
        format: "MessagePack",
        offset,
        reason: reason.into(),
    }
}

struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
    depth: usize,
    max_depth: usize,
}

impl<'a> Decoder<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let start = self.pos;
        match self.buf.get(start..start.saturating_add(n)) {
            Some(slice) if start.checked_add(n).is_some() => {
                self.pos += n;
                Ok(slice)
            }
            _ => Err(invalid(
                start,
                format!(
                    "incomplete input: {n} bytes needed, {} left",
                    self.buf.len() - start
                ),
            )),
        }
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let slice = self.take(N)?;
        let mut out = [0; N];
        out.copy_from_slice(slice);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, Error> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, Error> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// Decodes one value. Only containers recurse, so this frame stays small and deep nesting stays within the
    /// stack even in debug builds; everything else is in [`Decoder::scalar`].
    fn value(&mut self) -> Result<Value, Error> {
        let start = self.pos;
        let marker = Marker::from_u8(self.u8()?);
        match marker {
            Marker::FixArray(n) => self.array_of(start, usize::from(n)),
            Marker::Array16 => {
                let n = self.u16()?;
                self.array_of(start, usize::from(n))
            }
            Marker::Array32 => {
                let n = self.u32()?;
                self.array_of(start, n as usize)
            }
            Marker::FixMap(n) => self.map_of(start, usize::from(n)),
            Marker::Map16 => {
                let n = self.u16()?;
                self.map_of(start, usize::from(n))
            }
            Marker::Map32 => {
                let n = self.u32()?;
                self.map_of(start, n as usize)
            }
            _ => self.scalar(start, marker),
        }
    }

    #[inline(never)]
    fn scalar(&mut self, start: usize, marker: Marker) -> Result<Value, Error> {
        Ok(match marker {
            Marker::FixPos(n) => Value::from(n),
            Marker::FixNeg(n) => Value::from(n),
            Marker::Null => Value::Null,
            Marker::True => Value::Bool(true),
            Marker::False => Value::Bool(false),
            Marker::U8 => Value::from(self.u8()?),
            Marker::U16 => Value::from(self.u16()?),
            Marker::U32 => Value::from(self.u32()?),
            Marker::U64 => Value::from(u64::from_be_bytes(self.array()?)),
            Marker::I8 => Value::from(i8::from_be_bytes(self.array()?)),
            Marker::I16 => Value::from(i16::from_be_bytes(self.array()?)),
            Marker::I32 => Value::from(i32::from_be_bytes(self.array()?)),
            Marker::I64 => Value::from(i64::from_be_bytes(self.array()?)),
            Marker::F32 => Value::Float(f64::from(f32::from_be_bytes(self.array()?))),
            Marker::F64 => Value::Float(f64::from_be_bytes(self.array()?)),
            Marker::FixStr(n) => self.str(usize::from(n))?,
            Marker::Str8 => {
                let n = self.u8()?;
                self.str(usize::from(n))?
            }
            Marker::Str16 => {
                let n = self.u16()?;
                self.str(usize::from(n))?
            }
            Marker::Str32 => {
                let n = self.u32()?;
                self.str(n as usize)?
            }
            Marker::Bin8 => {
                let n = self.u8()?;
                Value::Bytes(self.take(usize::from(n))?.to_vec())
            }
            Marker::Bin16 => {
                let n = self.u16()?;
                Value::Bytes(self.take(usize::from(n))?.to_vec())
            }
            Marker::Bin32 => {
                let n = self.u32()?;
                Value::Bytes(self.take(n as usize)?.to_vec())
            }
            Marker::FixExt1 => self.ext(start, 1)?,
            Marker::FixExt2 => self.ext(start, 2)?,
            Marker::FixExt4 => self.ext(start, 4)?,
            Marker::FixExt8 => self.ext(start, 8)?,
            Marker::FixExt16 => self.ext(start, 16)?,
            Marker::Ext8 => {
                let n = self.u8()?;
                self.ext(start, usize::from(n))?
            }
            Marker::Ext16 => {
                let n = self.u16()?;
                self.ext(start, usize::from(n))?
            }
            Marker::Ext32 => {
                let n = self.u32()?;
                self.ext(start, n as usize)?
            }
            Marker::Reserved => return Err(invalid(start, "reserved marker byte 0xc1")),
            // Containers are handled by `value`.
            Marker::FixArray(_)
            | Marker::Array16
            | Marker::Array32
            | Marker::FixMap(_)
            | Marker::Map16
            | Marker::Map32 => return Err(invalid(start, "unexpected container")),
        })
    }

    fn str(&mut self, len: usize) -> Result<Value, Error> {
        let bytes = self.take(len)?;
        if let Some(key) = protocol_key(bytes) {
            return Ok(Value::String(CompactString::const_new(key)));
        }
        Ok(match std::str::from_utf8(bytes) {
            Ok(s) => Value::from(s),
            Err(_) => Value::NonUtf8String(bytes.to_vec()),
        })
    }

    fn enter(&mut self, start: usize) -> Result<(), Error> {
        self.depth += 1;
        if self.depth > self.max_depth {
            return Err(Error::TooDeep {
                offset: start,
                limit: self.max_depth,
            });
        }
        Ok(())
    }

    fn array_of(&mut self, start: usize, len: usize) -> Result<Value, Error> {
        self.enter(start)?;
        // Every element takes at least one byte, so the remaining input bounds the allocation.
        let mut items = Vec::with_capacity(len.min(self.buf.len() - self.pos));
        for _ in 0..len {
            items.push(self.value()?);
        }
        self.depth -= 1;
        Ok(Value::Array(items))
    }

    fn map_of(&mut self, start: usize, len: usize) -> Result<Value, Error> {
        self.enter(start)?;
        let mut map = Map::with_capacity(len.min((self.buf.len() - self.pos) / 2));
        for _ in 0..len {
            let key = self.value()?;
            let value = self.value()?;
            map.push(key, value);
        }
        self.depth -= 1;
        Ok(Value::Map(map))
    }

    fn ext(&mut self, start: usize, len: usize) -> Result<Value, Error> {
        let code = self.u8()? as i8;
        let data = self.take(len)?;
        let wrong_len = |expected: usize| {
            invalid(
                start,
                format!("extension {code} needs {expected} bytes of payload, found {len}"),
            )
        };
        let bad = |e: rsoa_protocol::ValueError| {
            invalid(start, format!("extension {code}: {}", e.message()))
        };
        Ok(match code {
            1 | 10 => {
                let bytes: [u8; 8] = data.try_into().map_err(|_| wrong_len(8))?;
                let micros = i64::from_be_bytes(bytes);
                if code == 1 {
                    Value::DateTime(DateTime::from_epoch_micros(micros).map_err(bad)?)
                } else {
                    Value::UtcDateTime(UtcDateTime::from_epoch_micros(micros).map_err(bad)?)
                }
            }
            3 => {
                let [y0, y1, m, d]: [u8; 4] = data.try_into().map_err(|_| wrong_len(4))?;
                Value::Date(Date::new(i32::from(u16::from_be_bytes([y0, y1])), m, d).map_err(bad)?)
            }
            4 => {
                let [h, m, s, u0, u1, u2, u3]: [u8; 7] =
                    data.try_into().map_err(|_| wrong_len(7))?;
                Value::Time(Time::new(h, m, s, u32::from_be_bytes([u0, u1, u2, u3])).map_err(bad)?)
            }
            5 => {
                let text_len = match data {
                    [a, b, ..] => usize::from(u16::from_be_bytes([*a, *b])),
                    _ => return Err(wrong_len(2)),
                };
                if data.len() != 2 + text_len {
                    return Err(invalid(
                        start,
                        format!(
                            "decimal declares {text_len} bytes of text but carries {}",
                            data.len() - 2
                        ),
                    ));
                }
                let text = std::str::from_utf8(&data[2..])
                    .map_err(|_| invalid(start, "decimal text is not ASCII"))?;
                Value::Decimal(text.parse::<Decimal>().map_err(bad)?)
            }
            2 => {
                let bytes: [u8; 11] = data.try_into().map_err(|_| wrong_len(11))?;
                let currency = Currency::from_code_bytes(&bytes[..3]).map_err(bad)?;
                let mut minor = [0; 8];
                minor.copy_from_slice(&bytes[3..]);
                Value::Amount(Amount::from_currency(currency, i64::from_be_bytes(minor)))
            }
            _ => Value::Ext(Ext::new(code, data.to_vec()).map_err(bad)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_keys_decode_to_their_own_text() {
        let keys = [
            "request_id",
            "meta",
            "body",
            "reply_to",
            "client_version",
            "__expiry__",
            "control",
            "context",
            "actions",
            "action",
            "continue_on_error",
            "suppress_response",
            "timeout",
            "switches",
            "correlation_id",
            "caller",
            "calling_service",
            "errors",
            "code",
            "message",
            "field",
            "traceback",
            "variables",
            "denied_permissions",
            "is_caller_error",
        ];
        for key in keys {
            assert_eq!(protocol_key(key.as_bytes()), Some(key));
        }
        for other in ["", "data", "Meta", "body ", "request_i"] {
            assert_eq!(protocol_key(other.as_bytes()), None);
        }
    }

    #[test]
    fn pysoa_micros_matches_python_examples() {
        // From the golden vectors: these encode one microsecond off.
        assert_eq!(pysoa_micros(2_241_054_088_310_353), 2_241_054_088_310_352);
        assert_eq!(pysoa_micros(-275_558_199_153_914), -275_558_199_153_913);
        assert_eq!(pysoa_micros(32_503_679_999_999_999), 32_503_680_000_000_000);
        assert_eq!(
            pysoa_micros(253_402_300_799_999_999),
            253_402_300_800_000_000
        );
        assert_eq!(pysoa_micros(0), 0);
        assert_eq!(pysoa_micros(1), 1);
        assert_eq!(pysoa_micros(-1), -1);
    }

    #[test]
    fn correctly_rounded_division_beyond_2_pow_53() {
        // Compare against an exact rational check for a spread of large values.
        for n in [
            9_007_199_254_740_993_i64,
            32_503_679_999_999_999,
            253_402_300_799_999_999,
            -62_135_596_800_000_001,
        ] {
            let q = correctly_rounded_div_million(n);
            for other in [next_up(q), next_down(q)] {
                let err = |c: f64| (scaled(c) * 1_000_000 - (i128::from(n) << SCALE)).abs();
                assert!(err(q) <= err(other), "{n}: {q} is not the nearest double");
            }
        }
    }

    #[test]
    fn hostile_lengths_do_not_allocate() {
        let s = MsgpackSerializer::default();
        // array32 claiming 4 billion elements, with nothing behind it.
        assert!(matches!(
            s.decode(&[0xdd, 0xff, 0xff, 0xff, 0xff]),
            Err(Error::Invalid { offset: 5, .. })
        ));
        assert!(matches!(
            s.decode(&[0xdf, 0xff, 0xff, 0xff, 0xff]),
            Err(Error::Invalid { .. })
        ));
        assert!(matches!(
            s.decode(&[0xdb, 0xff, 0xff, 0xff, 0xff]),
            Err(Error::Invalid { offset: 5, .. })
        ));
        assert!(matches!(
            s.decode(&[0xc9, 0xff, 0xff, 0xff, 0xff, 0x01]),
            Err(Error::Invalid { .. })
        ));
    }

    #[test]
    fn depth_is_limited() {
        let s = MsgpackSerializer::default();
        let deep = vec![0x91_u8; 10_000];
        assert!(matches!(
            s.decode(&deep),
            Err(Error::TooDeep { limit: 256, .. })
        ));
        let mut ok = vec![0x91_u8; 255];
        ok.push(0xc0);
        assert!(s.decode(&ok).is_ok());
    }

    #[test]
    fn size_is_limited() {
        let s = MsgpackSerializer::default().with_limits(Limits {
            max_size: 4,
            ..Limits::default()
        });
        assert!(matches!(
            s.decode(&[0xa4, b'a', b'b', b'c', b'd']),
            Err(Error::TooLarge { size: 5, limit: 4 })
        ));
    }

    #[test]
    fn encode_errors_name_the_path() {
        let value: Value = [(
            "body",
            Value::Array(vec![Value::from(1), Value::NonUtf8String(vec![0xff])]),
        )]
        .into_iter()
        .collect();
        let err = MsgpackSerializer::default().encode(&value).unwrap_err();
        assert!(err.to_string().contains("body.1"), "{err}");
    }

    #[test]
    fn exact_datetimes_on_request() {
        let dt = Value::DateTime(DateTime::from_epoch_micros(2_241_054_088_310_353).unwrap());
        let exact = MsgpackSerializer::default().with_datetime_encoding(DateTimeEncoding::Exact);
        assert_eq!(exact.decode(&exact.encode(&dt).unwrap()).unwrap(), dt);
        let pysoa = MsgpackSerializer::default();
        assert_ne!(pysoa.decode(&pysoa.encode(&dt).unwrap()).unwrap(), dt);
    }
}
