//! From an envelope to the frames pushed to Redis, and from popped frames back to an envelope.

use rsoa_codec::Serializer;
use rsoa_protocol::{Map, Value};

use crate::frame::{self, ProtocolVersion};

/// Why a message could not be turned into frames.
#[derive(Debug)]
pub(crate) enum EncodeError {
    /// The serializer refused a value.
    NotSerializable(rsoa_codec::Error),
    /// The serialized envelope is larger than allowed (or needs chunking the receiver cannot take).
    TooLarge { size: usize, limit: usize },
}

/// Serializes an envelope (`write` appends it with the serializer it is given) and frames it: one frame, or
/// `ceil(len / threshold)` chunks when `chunk_threshold` is set and the message is larger (only v3 can carry
/// chunks; for older versions a message that would need them is too large, as in PySOA).
pub(crate) fn encode(
    serializer: &dyn Serializer,
    version: ProtocolVersion,
    write: impl FnOnce(&dyn Serializer, &mut Vec<u8>) -> Result<(), rsoa_codec::Error>,
    max_size: usize,
    chunk_threshold: Option<usize>,
) -> Result<Vec<Vec<u8>>, EncodeError> {
    let mime = serializer.mime_type();
    // The usual single frame is serialized straight after its header, with no copy; chunks are cut from it.
    let mut frame = Vec::with_capacity(256);
    frame::write_prefix(&mut frame, version, mime, None);
    let header = frame.len();
    write(serializer, &mut frame).map_err(EncodeError::NotSerializable)?;
    let size = frame.len() - header;
    if size > max_size {
        return Err(EncodeError::TooLarge {
            size,
            limit: max_size,
        });
    }
    match chunk_threshold {
        Some(threshold) if size > threshold && threshold > 0 => {
            if version != ProtocolVersion::V3 {
                return Err(EncodeError::TooLarge {
                    size,
                    limit: threshold,
                });
            }
            let chunks: Vec<&[u8]> = frame[header..].chunks(threshold).collect();
            let count = chunks.len();
            Ok(chunks
                .into_iter()
                .enumerate()
                .map(|(i, chunk)| frame::write(version, mime, Some((count, i + 1)), chunk))
                .collect())
        }
        _ => Ok(vec![frame]),
    }
}

/// A decoded message.
#[derive(Debug)]
pub(crate) struct Decoded {
    pub(crate) request_id: Value,
    pub(crate) meta: Map,
    pub(crate) body: Value,
    pub(crate) version: ProtocolVersion,
}

/// The serializer for a frame's `content-type`, or the default when it names none this side knows.
pub(crate) fn serializer_for(
    content_type: Option<&str>,
    default: &'static dyn Serializer,
) -> &'static dyn Serializer {
    content_type
        .and_then(rsoa_codec::by_mime_type)
        .unwrap_or(default)
}

/// Why a payload could not be decoded into an envelope.
#[derive(Debug)]
pub(crate) struct DecodeError {
    pub(crate) message: String,
    /// The payload is well-formed as far as it was read, but nests deeper or is larger than the decoder's limits.
    pub(crate) over_limit: bool,
}

impl DecodeError {
    fn new(message: String) -> DecodeError {
        DecodeError {
            message,
            over_limit: false,
        }
    }
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Decodes a whole (reassembled) payload into its envelope, checking it the way PySOA's transport does.
pub(crate) fn decode(
    payload: &[u8],
    version: ProtocolVersion,
    serializer: &dyn Serializer,
) -> Result<Decoded, DecodeError> {
    let value = serializer.decode(payload).map_err(|e| DecodeError {
        over_limit: matches!(
            e,
            rsoa_codec::Error::TooDeep { .. } | rsoa_codec::Error::TooLarge { .. }
        ),
        message: format!("cannot decode the message: {e}"),
    })?;
    let Value::Map(map) = value else {
        return Err(DecodeError::new(format!(
            "the message is a {}, not a map",
            value.kind()
        )));
    };
    // The envelope is taken apart in one pass (a repeated key: the last one counts, as in a Python dict).
    let (mut request_id, mut meta, mut body) = (Value::Null, None, Value::Null);
    for (key, value) in map {
        match key.as_str() {
            Some("request_id") => request_id = value,
            Some("meta") => meta = Some(value),
            Some("body") => body = value,
            _ => {}
        }
    }
    let meta = match meta {
        None => Map::new(),
        Some(Value::Map(meta)) => meta,
        Some(other) => {
            return Err(DecodeError::new(format!(
                "meta is a {}, not a map",
                other.kind()
            )))
        }
    };
    if request_id.is_null() {
        return Err(DecodeError::new("the message has no request_id".to_owned()));
    }
    Ok(Decoded {
        request_id,
        meta,
        body,
        version,
    })
}

/// The envelope of a message whose body cannot be decoded (a JSON integer beyond 64 bits, which PySOA reads as a
/// Python integer; a body nested too deep; a request too large to read): its request id and meta, read apart from
/// the body, so that the caller can be answered. Of MessagePack, only what comes before the body is read (PySOA's
/// and rsoa's clients write the request id and meta first).
pub(crate) fn decode_envelope_only(
    payload: &[u8],
    version: ProtocolVersion,
    serializer: &'static dyn Serializer,
) -> Option<Decoded> {
    let (request_id, meta) = if serializer.mime_type() == "application/json" {
        json_envelope(payload, serializer)?
    } else {
        msgpack_envelope(payload, serializer)?
    };
    let request_id = request_id.filter(|id| !id.is_null())?;
    let meta = match meta {
        None => Map::new(),
        Some(Value::Map(meta)) => meta,
        Some(_) => return None,
    };
    Some(Decoded {
        request_id,
        meta,
        body: Value::Null,
        version,
    })
}

/// The request id and meta of a JSON envelope, read with serde_json, which reads any number (beyond 64 bits, as a
/// float).
fn json_envelope(
    payload: &[u8],
    serializer: &dyn Serializer,
) -> Option<(Option<Value>, Option<Value>)> {
    let serde_json::Value::Object(mut envelope) = serde_json::from_slice(payload).ok()? else {
        return None;
    };
    let mut part = |key| {
        let text = serde_json::to_vec(&envelope.remove(key)?).ok()?;
        serializer.decode(&text).ok()
    };
    Some((part("request_id"), part("meta")))
}

/// The request id and meta of a MessagePack envelope, from the entries before `body`: each is skipped over with
/// rmpv to find its bytes, which the serializer then decodes.
fn msgpack_envelope(
    payload: &[u8],
    serializer: &dyn Serializer,
) -> Option<(Option<Value>, Option<Value>)> {
    let mut rest = payload;
    let entries = rmp::decode::read_map_len(&mut rest).ok()?;
    let (mut request_id, mut meta) = (None, None);
    for _ in 0..entries {
        let rmpv::ValueRef::String(key) = rmpv::decode::read_value_ref(&mut rest).ok()? else {
            return None;
        };
        let key = key.as_str()?.to_owned();
        if key == "body" {
            break;
        }
        let start = rest;
        rmpv::decode::read_value_ref(&mut rest).ok()?;
        let value = serializer.decode(&start[..start.len() - rest.len()]).ok()?;
        match key.as_str() {
            "request_id" => request_id = Some(value),
            "meta" => meta = Some(value),
            _ => {}
        }
    }
    Some((request_id, meta))
}

/// The epoch-seconds expiry in a meta map, if set and truthy.
pub(crate) fn expiry(meta: &Map) -> Option<f64> {
    meta.get("__expiry__")
        .and_then(Value::as_f64)
        .filter(|e| *e != 0.0)
}

/// The current time in epoch seconds, as Python's `time.time()`.
pub(crate) fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Sets `__expiry__` in place, or appends it, as PySOA does.
pub(crate) fn set_expiry(meta: &mut Map, at: f64) {
    meta.insert("__expiry__", at);
}

/// Whether a requester's `meta.client_version` is new enough (0.70 or later) to receive `is_caller_error`.
pub(crate) fn wants_caller_flag(meta: &Map) -> bool {
    match meta.get("client_version") {
        Some(Value::Array(parts)) => parts
            .iter()
            .map(|p| p.as_i64().unwrap_or(0))
            .cmp([0, 70, 0])
            .is_ge(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caller_flag_from_version_0_70_on() {
        let wants = |version: &[i64]| {
            let mut meta = Map::new();
            meta.insert(
                "client_version",
                Value::Array(version.iter().map(|&n| Value::from(n)).collect()),
            );
            wants_caller_flag(&meta)
        };
        assert!(wants(&[0, 70, 0]));
        assert!(wants(&[0, 70, 0, 1]));
        assert!(wants(&[1, 4, 9]));
        assert!(wants(&[0, 71]));
        assert!(!wants(&[0, 70]));
        assert!(!wants(&[0, 69, 9]));
        assert!(!wants(&[]));
        assert!(!wants_caller_flag(&Map::new()));
    }
}
