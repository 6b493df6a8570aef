//! Any bytes as a Redis frame (PySOA's preamble and headers): parsing never panics, the payload is the input's tail,
//! and a frame written again from what was parsed parses to the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rsoa_transport_redis::{parse_frame, write_frame};

fuzz_target!(|data: &[u8]| {
    let Ok(frame) = parse_frame(data) else {
        return;
    };
    assert!(data.ends_with(frame.payload), "the payload is the frame's tail");
    let chunk = match (frame.chunk_count, frame.chunk_id) {
        (None, None) => None,
        (Some(count), Some(id)) => match (count.parse(), id.parse()) {
            (Ok(count), Ok(id)) => Some((count, id)),
            _ => return,
        },
        _ => return,
    };
    let Some(content_type) = frame.content_type else {
        return;
    };
    let again = write_frame(frame.version, content_type, chunk, frame.payload);
    let reparsed = parse_frame(&again).expect("a written frame parses");
    assert_eq!(reparsed.payload, frame.payload);
    assert_eq!(reparsed.content_type, Some(content_type));
});
