//! Shared helpers for the codec's integration tests: reading the golden vectors and comparing values.

#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;

use rsoa_protocol::{Amount, Date, DateTime, Decimal, Ext, Map, Time, UtcDateTime, Value};
use serde_json::Value as Json;

/// Loads a vector file: from `../shared/vectors` beside the checkout when it exists (the source of truth), else
/// from the copy committed under `tests/data`.
pub fn load(name: &str) -> Json {
    let text = std::fs::read_to_string(vector_path(name)).expect("read vector file");
    serde_json::from_str(&text).expect("vector file is JSON")
}

pub fn vector_path(name: &str) -> PathBuf {
    let shared = shared_dir().join(name);
    if shared.exists() {
        shared
    } else {
        committed_dir().join(name)
    }
}

pub fn shared_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors")
}

pub fn committed_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// A tagged value that has no Rust representation (Python-only objects, integers beyond 64 bits).
#[derive(Debug)]
pub struct Unrepresentable(pub String);

fn s<'a>(j: &'a Json, key: &str) -> &'a str {
    j[key]
        .as_str()
        .unwrap_or_else(|| panic!("missing string {key} in {j}"))
}

/// Builds the [`Value`] a tagged vector value describes.
pub fn build(j: &Json) -> Result<Value, Unrepresentable> {
    let t = s(j, "t");
    Ok(match t {
        "nil" => Value::Null,
        "bool" => Value::Bool(j["v"].as_bool().unwrap()),
        "int" => {
            let text = s(j, "v");
            if let Ok(n) = text.parse::<i64>() {
                Value::from(n)
            } else if let Ok(n) = text.parse::<u64>() {
                Value::from(n)
            } else {
                return Err(Unrepresentable(format!("integer {text}")));
            }
        }
        "float" => Value::Float(f64::from_bits(
            u64::from_str_radix(s(j, "bits"), 16).unwrap(),
        )),
        "str" => match j.get("utf8_hex") {
            Some(h) => {
                let bytes = hex::decode(h.as_str().unwrap()).unwrap();
                match String::from_utf8(bytes) {
                    Ok(text) => Value::from(text),
                    Err(e) => Value::NonUtf8String(e.into_bytes()),
                }
            }
            None => Value::from(s(j, "v")),
        },
        "bytes" => Value::Bytes(hex::decode(s(j, "hex")).unwrap()),
        "list" => match j.get("repeat") {
            Some(r) => {
                let item = build(&r["item"])?;
                Value::Array(vec![item; r["count"].as_u64().unwrap() as usize])
            }
            None => Value::Array(
                j["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(build)
                    .collect::<Result<_, _>>()?,
            ),
        },
        "map" => {
            let mut entries = Vec::new();
            for pair in j["entries"].as_array().unwrap() {
                entries.push((build(&pair[0])?, build(&pair[1])?));
            }
            Value::Map(Map::from(entries))
        }
        "datetime" => {
            Value::DateTime(DateTime::from_epoch_micros(s(j, "epoch_us").parse().unwrap()).unwrap())
        }
        "datetime_utc" => Value::UtcDateTime(
            UtcDateTime::from_epoch_micros(s(j, "epoch_us").parse().unwrap()).unwrap(),
        ),
        "date" => Value::Date(s(j, "v").parse::<Date>().unwrap()),
        "time" => Value::Time(s(j, "v").parse::<Time>().unwrap()),
        "decimal" => Value::Decimal(s(j, "v").parse::<Decimal>().unwrap()),
        "amount" => {
            let minor = s(j, "minor")
                .parse::<i64>()
                .map_err(|_| Unrepresentable(format!("minor units {}", s(j, "minor"))))?;
            Value::Amount(Amount::new(s(j, "currency"), minor).unwrap())
        }
        "ext" => Value::Ext(
            Ext::new(
                j["code"].as_i64().unwrap() as i8,
                hex::decode(s(j, "hex")).unwrap(),
            )
            .unwrap(),
        ),
        "python" => return Err(Unrepresentable(s(j, "repr").to_owned())),
        other => panic!("unknown tag {other}"),
    })
}

/// Structural equality that compares floats by their bits, so NaN equals NaN and -0.0 differs from 0.0.
pub fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => x.to_bits() == y.to_bits(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y.iter())
                    .all(|((k1, v1), (k2, v2))| same(k1, k2) && same(v1, v2))
        }
        _ => a == b,
    }
}
