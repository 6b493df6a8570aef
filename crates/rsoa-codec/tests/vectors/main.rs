//! Every golden vector PySOA 1.4.9 produced, encoded and decoded by rsoa's serializers.
//!
//! A case either matches PySOA exactly or is listed below in `DELIBERATE` with the reason rsoa differs.

#[path = "../support/mod.rs"]
mod support;

use rsoa_codec::{DateTimeEncoding, Error, JsonSerializer, MsgpackSerializer, Serializer};
use rsoa_protocol::Value;
use support::{build, load, same};

/// Cases where rsoa deliberately does not do what PySOA does, and what it does instead.
const DELIBERATE: &[(&str, &str)] = &[
    (
        "str_lone_surrogate",
        "PySOA cannot decode the lone surrogate it encodes; rsoa decodes it losslessly to Value::NonUtf8String so \
         one odd field does not make the whole message unreadable",
    ),
    (
        "unknown_ext_code_99",
        "PySOA fails the whole message on an unknown extension code (a Python server crashes); rsoa keeps it as \
         Value::Ext",
    ),
    ("ext_type_0", "kept as Value::Ext, as above"),
    ("ext_negative_type", "kept as Value::Ext, as above"),
    (
        "int_huge",
        "Python's JSON reads integers of any size; rsoa refuses integers beyond 64 bits with a typed error, since \
         MessagePack and every rsoa Value are limited to that range",
    ),
];

fn deliberate(name: &str) -> bool {
    DELIBERATE.iter().any(|(n, _)| *n == name)
}

fn unhex(case: &serde_json::Value, key: &str) -> Vec<u8> {
    hex::decode(case[key].as_str().unwrap()).unwrap()
}

fn name(case: &serde_json::Value) -> &str {
    case["name"].as_str().unwrap()
}

#[test]
fn msgpack_values_encode_and_decode_exactly() {
    // The lone-surrogate case is a string PySOA encodes but rsoa refuses to send by default; allow it to check bytes.
    let permissive = MsgpackSerializer::default().with_python_incompatible(true);
    let strict = MsgpackSerializer::default();
    // Decoding is exact, so re-encoding exactly reproduces the bytes; PySOA's float truncation would move a
    // decoded quirk date-time by another microsecond, as it does in Python.
    let exact = permissive.with_datetime_encoding(DateTimeEncoding::Exact);
    let cases = load("msgpack_values.json")["cases"]
        .as_array()
        .unwrap()
        .clone();
    assert!(cases.len() > 100);
    for case in &cases {
        let name = name(case);
        let value = build(&case["value"]).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let bytes = unhex(case, "hex");
        assert_eq!(
            hex::encode(permissive.encode(&value).unwrap()),
            hex::encode(&bytes),
            "{name}: encoding"
        );
        if !matches!(value, Value::NonUtf8String(_)) {
            assert_eq!(
                strict.encode(&value).unwrap(),
                bytes,
                "{name}: strict encoding"
            );
        }
        let decoded = strict.decode(&bytes);
        match (case.get("decode_error"), deliberate(name)) {
            (Some(_), false) => assert!(
                decoded.is_err(),
                "{name}: PySOA refuses these bytes, rsoa decoded {decoded:?}"
            ),
            (Some(_), true) => assert!(same(&decoded.unwrap(), &value), "{name}: lossless decode"),
            (None, _) => {
                let expected = build(case.get("decoded").unwrap_or(&case["value"])).unwrap();
                let decoded = decoded.unwrap_or_else(|e| panic!("{name}: {e}"));
                assert!(same(&decoded, &expected), "{name}: decoded {decoded:?}");
                assert_eq!(
                    exact.encode(&decoded).unwrap(),
                    bytes,
                    "{name}: re-encoding"
                );
            }
        }
    }
}

#[test]
fn msgpack_refusals_match() {
    let strict = MsgpackSerializer::default();
    let file = load("msgpack_errors.json");
    for case in file["encode_errors"].as_array().unwrap() {
        let name = name(case);
        // Each of these values is refused already when it is built in Rust: Python objects with no wire form,
        // integers beyond 64 bits, minor units beyond i64, time zones other than UTC (UtcDateTime is UTC only).
        match build(&case["value"]) {
            Err(_) => {}
            Ok(value) => assert!(strict.encode(&value).is_err(), "{name}: encoded {value:?}"),
        }
    }
    for case in file["decode_errors"].as_array().unwrap() {
        let name = name(case);
        let decoded = strict.decode(&unhex(case, "hex"));
        if let Some(expected) = case.get("decoded") {
            let expected = build(expected).unwrap();
            assert!(same(&decoded.unwrap(), &expected), "{name}");
        } else if deliberate(name) {
            let value = decoded.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(
                matches!(value, Value::NonUtf8String(_) | Value::Ext(_)),
                "{name}: {value:?}"
            );
        } else {
            match decoded {
                Err(Error::Invalid { .. }) => {}
                other => panic!("{name}: expected a decode error, got {other:?}"),
            }
        }
    }
}

#[test]
fn json_values_match_python_text() {
    let json = JsonSerializer::default();
    let file = load("json_values.json");
    for case in file["values"].as_array().unwrap() {
        let name = name(case);
        let text = unhex(case, "hex");
        assert_eq!(
            case["text"].as_str().unwrap().as_bytes(),
            &text[..],
            "{name}: vector text and hex agree"
        );
        let value = match build(&case["value"]) {
            Ok(value) => value,
            Err(e) => {
                assert!(deliberate(name), "{name}: {e:?}");
                assert!(
                    matches!(json.decode(&text), Err(Error::Invalid { .. })),
                    "{name}"
                );
                continue;
            }
        };
        assert_eq!(
            String::from_utf8(json.encode(&value).unwrap()).unwrap(),
            case["text"].as_str().unwrap(),
            "{name}"
        );
        let expected = build(case.get("decoded").unwrap_or(&case["value"])).unwrap();
        assert!(
            same(&json.decode(&text).unwrap(), &expected),
            "{name}: decoding"
        );
    }
    for case in file["encode_errors"].as_array().unwrap() {
        let name = name(case);
        if let Ok(value) = build(&case["value"]) {
            assert!(
                matches!(json.encode(&value), Err(Error::Unencodable { .. })),
                "{name}"
            );
        }
    }
}

#[test]
fn every_deliberate_difference_names_a_real_case() {
    let mut names = Vec::new();
    for (file, keys) in [
        ("msgpack_values.json", &["cases"][..]),
        (
            "msgpack_errors.json",
            &["encode_errors", "decode_errors"][..],
        ),
        ("json_values.json", &["values", "encode_errors"][..]),
    ] {
        let loaded = load(file);
        for key in keys {
            names.extend(
                loaded[key]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| name(c).to_owned()),
            );
        }
    }
    for (case, _) in DELIBERATE {
        assert!(
            names.iter().any(|n| n == case),
            "{case} is not a vector case"
        );
    }
}

#[test]
fn committed_copy_matches_shared_vectors() {
    // Outside this checkout the committed copy stands alone; inside it, it must not drift from the source.
    for file in [
        "msgpack_values.json",
        "msgpack_errors.json",
        "json_values.json",
    ] {
        let shared = support::shared_dir().join(file);
        if shared.exists() {
            let committed = std::fs::read(support::committed_dir().join(file)).unwrap();
            assert_eq!(
                std::fs::read(shared).unwrap(),
                committed,
                "{file} differs from ../shared/vectors"
            );
        }
    }
}

#[test]
fn wire_spec_worked_example_round_trips() {
    // wire-spec §20.1: the 245-byte envelope of the smallest realistic request.
    let hex = "83aa726571756573745f696401a46d65746183ae636c69656e745f76657273696f6e93010409a87265706c795f746fd9\
               3a736572766963652e6563686f2e303132333435363738396162636465663031323334353637383961626364656621\
               303030303766303061613030aa5f5f6578706972795f5fcb41d954fc40200000a4626f647983a7636f6e74726f6c82\
               b1636f6e74696e75655f6f6e5f6572726f72c2b173757070726573735f726573706f6e7365c2a7636f6e7465787482\
               ae636f7272656c6174696f6e5f6964a26331a8737769746368657390a7616374696f6e739182a6616374696f6ea470\
               696e67a4626f647980";
    let bytes = hex::decode(hex.replace(' ', "")).unwrap();
    assert_eq!(bytes.len(), 245);
    let s = MsgpackSerializer::default();
    let value = s.decode(&bytes).unwrap();
    assert_eq!(value["meta"]["__expiry__"].as_f64(), Some(1_700_000_000.5));
    assert_eq!(value["body"]["actions"][0]["action"].as_str(), Some("ping"));
    assert_eq!(s.encode(&value).unwrap(), bytes);
}
