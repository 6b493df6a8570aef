//! Any bytes: decoding never panics, and whatever decodes re-encodes to text that decodes to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rsoa_codec::{JsonSerializer, Serializer};

fuzz_target!(|data: &[u8]| {
    let s = JsonSerializer::default();
    if let Ok(value) = s.decode(data) {
        let text = s.encode(&value).expect("a decoded value encodes");
        let again = s.decode(&text).expect("an encoded value decodes");
        assert_eq!(s.encode(&again).expect("re-encode"), text);
    }
});
