//! The Redis gateway framing: an optional version preamble, headers, then the serialized envelope (or a slice of
//! it, for a chunk).
//!
//! Parsing follows PySOA 1.4.9's regular expressions exactly (wire-spec §5.2 and §5.3): the preamble
//! `pysoa-redis/<digits>//` at byte 0 gives the version (1, 2 or 3; any other number is an error), else a frame
//! starting with `content-type` is version 2, else version 1. Then headers `name:value;` are read while they match,
//! with ASCII white space allowed around names, colons and values; only `content-type`, `chunk-count` and
//! `chunk-id` are headers, values are limited to `[A-Za-z0-9_/.-]`, and everything from the first text that is not
//! a header on is payload, white space included.

use std::fmt;

/// A framing protocol version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProtocolVersion {
    /// The bare serialized envelope; the serializer is agreed in advance.
    V1 = 1,
    /// `content-type:<mime>;` then the envelope.
    V2 = 2,
    /// `pysoa-redis/3//` then headers; the only version that chunks. PySOA's default since 1.0.
    V3 = 3,
}

impl ProtocolVersion {
    /// The version with this number.
    pub fn from_number(n: u64) -> Option<ProtocolVersion> {
        match n {
            1 => Some(ProtocolVersion::V1),
            2 => Some(ProtocolVersion::V2),
            3 => Some(ProtocolVersion::V3),
            _ => None,
        }
    }
}

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", *self as u8)
    }
}

/// A parsed frame, borrowing from the bytes it came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The protocol version.
    pub version: ProtocolVersion,
    /// The `content-type` header's value.
    pub content_type: Option<&'a str>,
    /// The `chunk-count` header's value.
    pub chunk_count: Option<&'a str>,
    /// The `chunk-id` header's value.
    pub chunk_id: Option<&'a str>,
    /// What follows the headers.
    pub payload: &'a [u8],
}

/// Why a frame could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The preamble names a version other than 1, 2 or 3.
    #[error("unknown protocol version {0}")]
    UnknownVersion(String),
}

const PREAMBLE: &[u8] = b"pysoa-redis/";
const HEADER_NAMES: [&str; 3] = ["content-type", "chunk-count", "chunk-id"];

/// Python's `\s` in a bytes pattern.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn is_value_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'/' | b'.' | b'-')
}

fn skip_space(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() && is_space(bytes[i]) {
        i += 1;
    }
    i
}

/// Matches one header at `start`; returns the name, the value and where the header ends.
fn header_at(bytes: &[u8], start: usize) -> Option<(&'static str, &str, usize)> {
    let mut i = skip_space(bytes, start);
    let name = HEADER_NAMES
        .iter()
        .copied()
        .find(|n| bytes[i..].starts_with(n.as_bytes()))?;
    i = skip_space(bytes, i + name.len());
    if bytes.get(i) != Some(&b':') {
        return None;
    }
    i = skip_space(bytes, i + 1);
    let value_start = i;
    while i < bytes.len() && is_value_byte(bytes[i]) {
        i += 1;
    }
    if i == value_start {
        return None;
    }
    // The value bytes are ASCII by construction.
    let value = std::str::from_utf8(&bytes[value_start..i]).ok()?;
    i = skip_space(bytes, i);
    if bytes.get(i) != Some(&b';') {
        return None;
    }
    Some((name, value, i + 1))
}

/// Parses a frame as PySOA does.
pub fn parse(bytes: &[u8]) -> Result<Frame<'_>, FrameError> {
    let mut pos = 0;
    let mut version = ProtocolVersion::V1;
    if bytes.starts_with(PREAMBLE) {
        let digits_start = PREAMBLE.len();
        let digits_end = digits_start
            + bytes[digits_start..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
        if digits_end > digits_start && bytes[digits_end..].starts_with(b"//") {
            let text = std::str::from_utf8(&bytes[digits_start..digits_end]).unwrap_or_default();
            version = text
                .parse::<u64>()
                .ok()
                .and_then(ProtocolVersion::from_number)
                .ok_or_else(|| FrameError::UnknownVersion(text.to_owned()))?;
            pos = digits_end + 2;
        }
    } else if bytes.starts_with(b"content-type") {
        version = ProtocolVersion::V2;
    }
    let mut frame = Frame {
        version,
        content_type: None,
        chunk_count: None,
        chunk_id: None,
        payload: &[],
    };
    if version != ProtocolVersion::V1 {
        while let Some((name, value, end)) = header_at(bytes, pos) {
            match name {
                "content-type" => frame.content_type = Some(value),
                "chunk-count" => frame.chunk_count = Some(value),
                _ => frame.chunk_id = Some(value),
            }
            pos = end;
        }
    }
    frame.payload = &bytes[pos..];
    Ok(frame)
}

/// Appends a frame's header (see [`write`]) to `out`.
pub(crate) fn write_prefix(
    out: &mut Vec<u8>,
    version: ProtocolVersion,
    content_type: &str,
    chunk: Option<(usize, usize)>,
) {
    match version {
        ProtocolVersion::V1 => {}
        ProtocolVersion::V2 => {
            out.extend_from_slice(b"content-type:");
            out.extend_from_slice(content_type.as_bytes());
            out.push(b';');
        }
        ProtocolVersion::V3 => {
            out.extend_from_slice(b"pysoa-redis/3//content-type:");
            out.extend_from_slice(content_type.as_bytes());
            out.push(b';');
            if let Some((count, id)) = chunk {
                out.extend_from_slice(format!("chunk-count:{count};chunk-id:{id};").as_bytes());
            }
        }
    }
}

/// Frames a payload as PySOA does: the v3 preamble and `content-type` (plus the chunk headers for a chunk), only
/// the `content-type` header for v2, nothing for v1.
pub fn write(
    version: ProtocolVersion,
    content_type: &str,
    chunk: Option<(usize, usize)>,
    payload: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 80);
    write_prefix(&mut out, version, content_type, chunk);
    out.extend_from_slice(payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_each_version() {
        for version in [
            ProtocolVersion::V1,
            ProtocolVersion::V2,
            ProtocolVersion::V3,
        ] {
            let bytes = write(version, "application/msgpack", None, b"\x80");
            let frame = parse(&bytes).unwrap();
            assert_eq!(frame.version, version);
            assert_eq!(frame.payload, b"\x80");
            assert_eq!(frame.content_type.is_some(), version != ProtocolVersion::V1);
        }
        let chunk = write(ProtocolVersion::V3, "application/json", Some((3, 2)), b"{");
        let frame = parse(&chunk).unwrap();
        assert_eq!((frame.chunk_count, frame.chunk_id), (Some("3"), Some("2")));
    }

    #[test]
    fn odd_preambles() {
        assert_eq!(
            parse(b"pysoa-redis/9//x"),
            Err(FrameError::UnknownVersion("9".into()))
        );
        assert_eq!(
            parse(b"pysoa-redis/99999999999999999999999//x"),
            Err(FrameError::UnknownVersion("99999999999999999999999".into()))
        );
        // Without digits or the double slash, the preamble is not one: the whole frame is a v1 payload.
        assert_eq!(parse(b"pysoa-redis//x").unwrap().payload, b"pysoa-redis//x");
        assert_eq!(
            parse(b"pysoa-redis/3/x").unwrap().version,
            ProtocolVersion::V1
        );
        assert_eq!(
            parse(b"pysoa-redis/2//content-type:a;z").unwrap().version,
            ProtocolVersion::V2
        );
        assert_eq!(parse(b"").unwrap().payload, b"");
    }

    #[test]
    fn later_duplicate_headers_win_and_payload_keeps_its_spaces() {
        let frame = parse(b"pysoa-redis/3//content-type:a;content-type:b; \x80").unwrap();
        assert_eq!(frame.content_type, Some("b"));
        assert_eq!(frame.payload, b" \x80");
    }
}
