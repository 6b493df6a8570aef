//! Serializers for rsoa message bodies, byte-identical to PySOA 1.4.9's.
//!
//! A [`Serializer`] turns a [`Value`] into bytes and back and names its MIME type, which the Redis transport puts
//! in every frame's `content-type` header. Two ship here:
//!
//! - [`MsgpackSerializer`] (`application/msgpack`, PySOA's default), with PySOA's five extension types;
//! - [`JsonSerializer`] (`application/json`), with Python's exact `json.dumps` output.
//!
//! Both reproduce PySOA's bytes exactly (golden vectors produced by PySOA itself prove it), and both decode
//! hostile input safely: no panics, no allocation driven by a declared length larger than the input, a nesting
//! limit, a size limit, and errors that say what was wrong and at which byte.
//!
//! ```
//! use rsoa_codec::{by_mime_type, Serializer};
//! use rsoa_protocol::{Date, Value};
//!
//! let msgpack = by_mime_type("application/msgpack").unwrap();
//! let value: Value = [("day", Value::Date(Date::new(2020, 1, 2).unwrap()))].into_iter().collect();
//! let bytes = msgpack.encode(&value).unwrap();
//! assert_eq!(bytes, [0x81, 0xa3, b'd', b'a', b'y', 0xd6, 0x03, 0x07, 0xe4, 0x01, 0x02]);
//! assert_eq!(msgpack.decode(&bytes).unwrap(), value);
//! ```

use std::fmt;

use rsoa_protocol::{JobRequest, JobResponse, Map, Value};

mod envelope;
mod json;
mod msgpack;

pub use json::JsonSerializer;
pub use msgpack::{DateTimeEncoding, MsgpackSerializer};

/// Turns message values into bytes and back.
///
/// Implementations must be deterministic: the same value always gives the same bytes.
pub trait Serializer: Send + Sync + fmt::Debug + 'static {
    /// The MIME type that names this format on the wire (`application/msgpack`).
    fn mime_type(&self) -> &'static str;

    /// Appends the encoding of `value` to `out`. On error, `out` may hold a partial encoding.
    fn encode_into(&self, value: &Value, out: &mut Vec<u8>) -> Result<(), Error>;

    /// The encoding of `value`.
    fn encode(&self, value: &Value) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        self.encode_into(value, &mut out)?;
        Ok(out)
    }

    /// Decodes exactly one value that fills all of `bytes`.
    fn decode(&self, bytes: &[u8]) -> Result<Value, Error>;

    /// Appends the envelope `{request_id, meta, body}` of a request whose body is `job`: the bytes (or the error)
    /// of [`Serializer::encode_into`] on that envelope built as a value. The built-in serializers write it
    /// straight from `job`, without building and dropping the value; this default builds it.
    fn encode_request_into(
        &self,
        request_id: &Value,
        meta: &Map,
        job: &JobRequest,
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        self.encode_into(&envelope(request_id, meta, job.to_value()), out)
    }

    /// Appends the envelope `{request_id, meta, body}` of a response whose body is `job` (with `is_caller_error`
    /// in its errors when `with_is_caller_error`), like [`Serializer::encode_request_into`].
    fn encode_response_into(
        &self,
        request_id: &Value,
        meta: &Map,
        job: &JobResponse,
        with_is_caller_error: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        self.encode_into(
            &envelope(request_id, meta, job.to_value(with_is_caller_error)),
            out,
        )
    }
}

/// The envelope `{request_id, meta, body}` in PySOA's key order, as a value.
fn envelope(request_id: &Value, meta: &Map, body: Value) -> Value {
    let mut map = Map::with_capacity(3);
    map.push("request_id", request_id.clone());
    map.push("meta", meta.clone());
    map.push("body", body);
    Value::Map(map)
}

/// The built-in serializer registered under a MIME type, as PySOA looks one up from a `content-type` header.
///
/// ```
/// assert_eq!(rsoa_codec::by_mime_type("application/json").unwrap().mime_type(), "application/json");
/// assert!(rsoa_codec::by_mime_type("text/plain").is_none());
/// ```
pub fn by_mime_type(mime_type: &str) -> Option<&'static dyn Serializer> {
    static MSGPACK: MsgpackSerializer = MsgpackSerializer {
        datetime_encoding: DateTimeEncoding::PySoa,
        allow_python_incompatible: false,
        limits: Limits::DEFAULT,
    };
    static JSON: JsonSerializer = JsonSerializer {
        limits: Limits::DEFAULT,
    };
    match mime_type {
        MsgpackSerializer::MIME_TYPE => Some(&MSGPACK),
        JsonSerializer::MIME_TYPE => Some(&JSON),
        _ => None,
    }
}

/// Bounds on what a decoder accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// The deepest nesting of arrays and maps (default 256).
    pub max_depth: usize,
    /// The largest input in bytes (default 256 MiB; PySOA sets no limit on receipt, and chunked responses can be
    /// many megabytes).
    pub max_size: usize,
}

impl Limits {
    /// The defaults.
    pub const DEFAULT: Limits = Limits {
        max_depth: 256,
        max_size: 256 * 1024 * 1024,
    };

    /// Limits with this nesting depth.
    #[must_use]
    pub fn with_max_depth(mut self, max_depth: usize) -> Limits {
        self.max_depth = max_depth;
        self
    }

    /// Limits with this input size.
    #[must_use]
    pub fn with_max_size(mut self, max_size: usize) -> Limits {
        self.max_size = max_size;
        self
    }
}

impl Default for Limits {
    fn default() -> Limits {
        Limits::DEFAULT
    }
}

/// Why a value could not be encoded or bytes could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The value has no representation in this format (PySOA's `InvalidField`).
    #[error("cannot encode the value{}: {reason}", at(path))]
    Unencodable {
        /// Where in the value, as a PySOA pointer (`body.items.0`); empty at the top.
        path: String,
        /// Why.
        reason: String,
    },
    /// The bytes are not a valid encoding (PySOA's `InvalidMessage`).
    #[error("invalid {format} at byte {offset}: {reason}")]
    Invalid {
        /// `MessagePack` or `JSON`.
        format: &'static str,
        /// Where the problem starts.
        offset: usize,
        /// What is wrong.
        reason: String,
    },
    /// Arrays and maps are nested deeper than [`Limits::max_depth`].
    #[error("nesting deeper than {limit} levels at byte {offset}")]
    TooDeep {
        /// Where the level that went too deep starts.
        offset: usize,
        /// The limit.
        limit: usize,
    },
    /// The input is larger than [`Limits::max_size`].
    #[error("input of {size} bytes is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The input's size.
        size: usize,
        /// The limit.
        limit: usize,
    },
}

fn at(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!(" at {path}")
    }
}

impl Error {
    pub(crate) fn unencodable(path: &str, reason: impl Into<String>) -> Error {
        Error::Unencodable {
            path: path.to_owned(),
            reason: reason.into(),
        }
    }

    /// The same error one level further down, under `key`.
    pub(crate) fn under(self, key: &str) -> Error {
        match self {
            Error::Unencodable { path, reason } => {
                let path = if path.is_empty() {
                    key.to_owned()
                } else {
                    format!("{key}.{path}")
                };
                Error::Unencodable { path, reason }
            }
            other => other,
        }
    }
}
