//! Any bytes: decoding never panics, and whatever decodes re-encodes to bytes that decode to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rsoa_codec::{DateTimeEncoding, MsgpackSerializer, Serializer};

fuzz_target!(|data: &[u8]| {
    let s = MsgpackSerializer::default()
        .with_datetime_encoding(DateTimeEncoding::Exact)
        .with_python_incompatible(true);
    if let Ok(value) = s.decode(data) {
        let bytes = s.encode(&value).expect("a decoded value encodes");
        let again = s.decode(&bytes).expect("an encoded value decodes");
        // NaN breaks equality, so compare the canonical bytes instead.
        assert_eq!(s.encode(&again).expect("re-encode"), bytes);
    }
});
