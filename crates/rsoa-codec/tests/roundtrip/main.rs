//! Property tests: any value round-trips through each serializer, and no input makes a decoder panic.

#[path = "../support/mod.rs"]
mod support;

use proptest::prelude::*;
use rsoa_codec::{DateTimeEncoding, JsonSerializer, MsgpackSerializer, Serializer};
use rsoa_protocol::{Amount, Date, DateTime, Decimal, Ext, Map, Time, UtcDateTime, Value};
use support::same;

const MIN_US: i64 = -62_135_596_800_000_000; // 0001-01-01T00:00:00
const MAX_US: i64 = 253_402_300_799_999_999; // 9999-12-31T23:59:59.999999

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::Float),
        ".*".prop_map(Value::from),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(|b| match String::from_utf8(b) {
            Ok(s) => Value::from(s),
            Err(e) => Value::NonUtf8String(e.into_bytes()),
        }),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Value::Bytes),
        (MIN_US..=MAX_US).prop_map(|us| Value::DateTime(DateTime::from_epoch_micros(us).unwrap())),
        (MIN_US..=MAX_US)
            .prop_map(|us| Value::UtcDateTime(UtcDateTime::from_epoch_micros(us).unwrap())),
        (1..=9999_i32, 1..=12_u8, 1..=28_u8)
            .prop_map(|(y, m, d)| Value::Date(Date::new(y, m, d).unwrap())),
        (0..24_u8, 0..60_u8, 0..60_u8, 0..1_000_000_u32)
            .prop_map(|(h, m, s, us)| Value::Time(Time::new(h, m, s, us).unwrap())),
        "-?[0-9]{1,40}(\\.[0-9]{1,20})?(E[+-][0-9]{1,3})?"
            .prop_map(|s| Value::Decimal(s.parse::<Decimal>().unwrap())),
        (
            prop::sample::select(vec!["USD", "EUR", "JPY", "BHD", "MGA"]),
            any::<i64>()
        )
            .prop_map(|(c, m)| Value::Amount(Amount::new(c, m).unwrap())),
        (
            any::<i8>().prop_filter("not a PySOA code", |c| {
                !rsoa_protocol::PYSOA_EXTENSION_CODES.contains(c)
            }),
            proptest::collection::vec(any::<u8>(), 0..20)
        )
            .prop_map(|(c, d)| Value::Ext(Ext::new(c, d).unwrap())),
    ]
}

fn any_value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            proptest::collection::vec((inner.clone(), inner), 0..8)
                .prop_map(|e| Value::Map(Map::from(e))),
        ]
    })
}

/// The JSON-representable subset: no bytes or PySOA types, string keys, and NaN only in its canonical form.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| Value::Float(if f.is_nan() { f64::NAN } else { f })),
        ".*".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            proptest::collection::vec((".*", inner), 0..8).prop_map(|e| Value::Map(Map::from(
                e.into_iter()
                    .map(|(k, v)| (Value::from(k), v))
                    .collect::<Vec<_>>()
            ))),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn msgpack_round_trips_any_value(value in any_value()) {
        let s = MsgpackSerializer::default()
            .with_datetime_encoding(DateTimeEncoding::Exact)
            .with_python_incompatible(true);
        let bytes = s.encode(&value).unwrap();
        let back = s.decode(&bytes).unwrap();
        prop_assert!(same(&back, &value), "{:?} became {:?}", value, back);
        prop_assert_eq!(s.encode(&back).unwrap(), bytes);
    }

    #[test]
    fn pysoa_datetime_encoding_is_within_a_microsecond(us in MIN_US..=MAX_US) {
        let s = MsgpackSerializer::default();
        let value = Value::DateTime(DateTime::from_epoch_micros(us).unwrap());
        match s.decode(&s.encode(&value).unwrap()) {
            Ok(Value::DateTime(back)) => {
                // Within 2^53 µs of 1970 PySOA's float loses at most one microsecond.
                if us.unsigned_abs() < 1 << 53 {
                    prop_assert!((back.epoch_micros() - us).abs() <= 1);
                }
            }
            // Only the last moments of year 9999 round up to year 10000, which neither side can read.
            Err(_) => prop_assert!(us > MAX_US - 1_000_000),
            Ok(other) => prop_assert!(false, "{:?}", other),
        }
    }

    #[test]
    fn json_round_trips_its_subset(value in json_value()) {
        let s = JsonSerializer::default();
        let bytes = s.encode(&value).unwrap();
        prop_assert!(bytes.is_ascii());
        let back = s.decode(&bytes).unwrap();
        prop_assert!(same(&back, &value), "{:?} became {:?}", value, back);
    }

    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = MsgpackSerializer::default().decode(&bytes);
        let _ = JsonSerializer::default().decode(&bytes);
    }

    #[test]
    fn truncated_messages_are_errors_not_panics(value in any_value(), cut in any::<prop::sample::Index>()) {
        let s = MsgpackSerializer::default().with_python_incompatible(true);
        let bytes = s.encode(&value).unwrap();
        let cut = cut.index(bytes.len());
        if cut < bytes.len() {
            prop_assert!(s.decode(&bytes[..cut]).is_err());
        }
    }
}

/// PySOA's `bytes` (MessagePack `bin`) reach a Rust `Vec<u8>` through `serde_bytes`, and go back as `bin`.
#[test]
fn python_bytes_travel_as_msgpack_bin_into_rust_byte_fields() {
    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Upload {
        #[serde(with = "rsoa_protocol::serde_bytes")]
        data: Vec<u8>,
        thumbnail: rsoa_protocol::ByteBuf,
    }
    // What PySOA packs for {"data": b"\x00\xff", "thumbnail": b"x"} (use_bin_type=True: bin 8).
    let wire = b"\x82\xa4data\xc4\x02\x00\xff\xa9thumbnail\xc4\x01x";
    let value = MsgpackSerializer::default().decode(wire).expect("decode");
    let upload: Upload = rsoa_protocol::from_value(value).expect("typed");
    assert_eq!(upload.data, [0x00, 0xff]);
    assert_eq!(upload.thumbnail.as_slice(), b"x");
    let back = rsoa_protocol::to_value(&upload).expect("to value");
    assert_eq!(
        MsgpackSerializer::default().encode(&back).expect("encode"),
        wire
    );
    // JSON has no bytes, as in PySOA: encoding them is an error, not a list of numbers.
    assert!(JsonSerializer::default().encode(&back).is_err());
}
