//! Replays PySOA's transport vectors: every frame PySOA parsed parses the same here, and every frame PySOA wrote
//! is written byte for byte from the same envelope.

#[path = "../../rsoa-codec/tests/support/mod.rs"]
#[allow(clippy::all)]
mod support;

use rsoa_codec::{by_mime_type, Serializer};
use serde_json::Value as Json;

use crate::frame::{self, FrameError, ProtocolVersion};
use crate::message;

fn unhex(s: &Json) -> Vec<u8> {
    hex::decode(s.as_str().unwrap()).unwrap()
}

#[test]
fn header_parsing_matches_pysoa() {
    let file = support::load("header_parsing.json");
    for case in file["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let bytes = unhex(&case["frame_hex"]);
        match frame::parse(&bytes) {
            Err(FrameError::UnknownVersion(v)) => {
                assert!(case.get("error").is_some(), "{name}: refused version {v}");
            }
            Ok(parsed) => {
                assert!(
                    case.get("error").is_none(),
                    "{name}: PySOA refuses this frame"
                );
                assert_eq!(
                    parsed.version as u64,
                    case["version"].as_u64().unwrap(),
                    "{name}: version"
                );
                let headers = case["headers"].as_object().unwrap();
                let header = |n: &str| headers.get(n).and_then(Json::as_str);
                assert_eq!(
                    parsed.content_type,
                    header("content-type"),
                    "{name}: content-type"
                );
                assert_eq!(
                    parsed.chunk_count,
                    header("chunk-count"),
                    "{name}: chunk-count"
                );
                assert_eq!(parsed.chunk_id, header("chunk-id"), "{name}: chunk-id");
                assert_eq!(
                    hex::encode(parsed.payload),
                    case["payload_hex"].as_str().unwrap(),
                    "{name}: payload"
                );
            }
        }
    }
}

#[test]
fn transport_frames_match_pysoa_byte_for_byte() {
    let file = support::load("transport_frames.json");
    let threshold = file["chunk_messages_larger_than_bytes"].as_u64().unwrap() as usize;
    let exchanges = file["exchanges"].as_array().unwrap();
    assert!(exchanges.len() >= 16);
    for exchange in exchanges {
        let name = exchange["name"].as_str().unwrap();
        let default = by_mime_type(exchange["serializer"].as_str().unwrap()).unwrap();
        for side in ["request", "response"] {
            let record = &exchange[side];
            let frames: Vec<Vec<u8>> = record["frames"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| unhex(&f["hex"]))
                .collect();
            // Parse each frame and reassemble the payload as a receiver would.
            let mut payload = Vec::new();
            let mut first = None;
            for (i, (bytes, meta)) in frames
                .iter()
                .zip(record["frames"].as_array().unwrap())
                .enumerate()
            {
                let parsed = frame::parse(bytes).unwrap();
                let prefix = meta["prefix_text"].as_str().unwrap();
                assert_eq!(
                    &bytes[..prefix.len()],
                    prefix.as_bytes(),
                    "{name} {side} frame {i}: prefix"
                );
                assert_eq!(
                    parsed.payload.len(),
                    meta["payload_length"].as_u64().unwrap() as usize,
                    "{name} {side}"
                );
                if frames.len() > 1 {
                    assert_eq!(
                        parsed.chunk_id,
                        Some((i + 1).to_string().as_str()),
                        "{name}: chunk ids count from 1"
                    );
                    assert_eq!(parsed.chunk_count, Some(frames.len().to_string().as_str()));
                }
                first.get_or_insert(parsed);
                payload.extend_from_slice(parsed.payload);
            }
            let first = first.unwrap();
            let serializer = message::serializer_for(first.content_type, default);
            let decoded = message::decode(&payload, first.version, serializer).unwrap();
            let expected = support::build(&record["envelope"]).unwrap();
            let got: rsoa_protocol::Value = [
                ("request_id", decoded.request_id),
                ("meta", rsoa_protocol::Value::Map(decoded.meta)),
                ("body", decoded.body),
            ]
            .into_iter()
            .collect();
            assert!(
                support::same(&got, &expected),
                "{name} {side}: decoded envelope"
            );

            // Writing the same envelope gives the same frames.
            let chunking = if side == "response" {
                Some(threshold)
            } else {
                None
            };
            let written = message::encode(
                serializer,
                first.version,
                write(&expected),
                usize::MAX,
                chunking,
            )
            .unwrap();
            assert_eq!(written.len(), frames.len(), "{name} {side}: frame count");
            for (i, (w, f)) in written.iter().zip(&frames).enumerate() {
                assert_eq!(
                    hex::encode(w),
                    hex::encode(f),
                    "{name} {side} frame {i}: bytes"
                );
            }
            for (i, f) in record["frames"].as_array().unwrap().iter().enumerate() {
                let key = f["redis_key"].as_str().unwrap();
                let expected_key = if side == "request" {
                    crate::ring::service_queue_key(file["service"].as_str().unwrap())
                } else {
                    format!("pysoa:{}", decoded_reply_to(&expected))
                };
                assert_eq!(key, expected_key, "{name} {side} frame {i}: key");
                assert_eq!(f["queue_capacity"].as_u64(), Some(10_000));
            }
        }
        // The list's expiry: 60 s, or timeout + 10 when the client gave a timeout.
        let request_expiry = exchange["request"]["frames"][0]["expire_seconds"]
            .as_u64()
            .unwrap();
        let timeout = support::build(&exchange["request"]["envelope"]).unwrap()["body"]["control"]
            ["timeout"]
            .as_u64();
        assert_eq!(
            request_expiry,
            timeout.map_or(60, |t| t + 10),
            "{name}: request list expiry"
        );
        assert_eq!(
            exchange["response"]["frames"][0]["expire_seconds"].as_u64(),
            Some(60)
        );
    }
}

fn decoded_reply_to(envelope: &rsoa_protocol::Value) -> String {
    envelope["meta"]["reply_to"].as_str().unwrap().to_owned()
}

#[test]
fn a_v2_request_cannot_get_a_chunked_response() {
    let serializer: &dyn Serializer = by_mime_type("application/msgpack").unwrap();
    let big: rsoa_protocol::Value = [("data", rsoa_protocol::Value::Bytes(vec![0; 200_000]))]
        .into_iter()
        .collect();
    assert!(matches!(
        message::encode(
            serializer,
            ProtocolVersion::V2,
            write(&big),
            1_000_000,
            Some(102_400)
        ),
        Err(message::EncodeError::TooLarge { .. })
    ));
    assert_eq!(
        message::encode(
            serializer,
            ProtocolVersion::V3,
            write(&big),
            1_000_000,
            Some(102_400)
        )
        .unwrap()
        .len(),
        2
    );
    assert!(matches!(
        message::encode(
            serializer,
            ProtocolVersion::V3,
            write(&big),
            150_000,
            Some(102_400)
        ),
        Err(message::EncodeError::TooLarge {
            size: _,
            limit: 150_000
        })
    ));
}

/// Writes `value` as it is, for [`message::encode`].
fn write(
    value: &rsoa_protocol::Value,
) -> impl FnOnce(&dyn Serializer, &mut Vec<u8>) -> Result<(), rsoa_codec::Error> + '_ {
    move |serializer, out| serializer.encode_into(value, out)
}
