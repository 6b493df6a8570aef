//! Bodies as JSON with PySOA's special types written as one-key objects, so that what `rsoa` prints can be sent
//! back exactly:
//!
//! | value | written |
//! |---|---|
//! | a date-time without a zone | `{"$datetime": "2026-12-04T19:30:05.123456"}` |
//! | a date-time in UTC | `{"$datetime": "2026-12-04T19:30:05.123456+00:00"}` (or `Z`) |
//! | a date | `{"$date": "2026-12-04"}` |
//! | a time of day | `{"$time": "19:30:05.123456"}` |
//! | a decimal | `{"$decimal": "-12.50"}` |
//! | an amount of money | `{"$amount": "1250 USD"}` (minor units, then the currency) |
//! | bytes | `{"$bytes": "00ff"}` (hex) |
//! | a float JSON cannot hold | `{"$float": "inf"}`, `"-inf"`, `"nan"` |
//! | text that is not UTF-8 | `{"$text_bytes": "ed a0 80"}` (hex) |
//! | an extension type PySOA does not define | `{"$ext": [99, "00ff"]}` (code, hex data) |
//!
//! Any other object is a map; a one-key object whose key starts with `$` and is not in the table is refused.

use rsoa_protocol::{Ext, Map, Value};

/// A body read from JSON; errors name the path to the bad value.
pub(crate) fn from_json(json: &serde_json::Value) -> Result<Value, String> {
    read(json, "body")
}

fn read(json: &serde_json::Value, path: &str) -> Result<Value, String> {
    Ok(match json {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Value::from(i),
            (None, Some(u)) => Value::from(u),
            (None, None) => Value::Float(
                n.as_f64()
                    .ok_or_else(|| format!("{path}: {n} is not a number"))?,
            ),
        },
        serde_json::Value::String(s) => Value::from(s.as_str()),
        serde_json::Value::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| read(item, &format!("{path}.{i}")))
                .collect::<Result<_, _>>()?,
        ),
        serde_json::Value::Object(map) => {
            if let (1, Some((tag, inner))) = (map.len(), map.iter().next()) {
                if tag.starts_with('$') {
                    return special(tag, inner).map_err(|why| format!("{path}: {why}"));
                }
            }
            let mut out = Map::with_capacity(map.len());
            for (key, item) in map {
                out.push(key.as_str(), read(item, &format!("{path}.{key}"))?);
            }
            Value::Map(out)
        }
    })
}

fn special(tag: &str, inner: &serde_json::Value) -> Result<Value, String> {
    let text = || {
        inner
            .as_str()
            .ok_or_else(|| format!("{{\"{tag}\": …}} takes a string"))
    };
    let parsed = |e: rsoa_protocol::ValueError| format!("{tag}: {e}");
    let hex = |text: &str| {
        let digits: String = text.split_whitespace().collect();
        hex::decode(digits).map_err(|e| format!("{tag}: not hex: {e}"))
    };
    Ok(match tag {
        "$datetime" => {
            let text = text()?;
            if text.ends_with('Z') || text.ends_with("+00:00") {
                Value::UtcDateTime(text.parse().map_err(parsed)?)
            } else {
                Value::DateTime(text.parse().map_err(parsed)?)
            }
        }
        "$date" => Value::Date(text()?.parse().map_err(parsed)?),
        "$time" => Value::Time(text()?.parse().map_err(parsed)?),
        "$decimal" => Value::Decimal(text()?.parse().map_err(parsed)?),
        "$amount" => Value::Amount(text()?.parse().map_err(parsed)?),
        "$bytes" => Value::Bytes(hex(text()?)?),
        "$text_bytes" => Value::NonUtf8String(hex(text()?)?),
        "$float" => Value::Float(match text()? {
            "inf" => f64::INFINITY,
            "-inf" => f64::NEG_INFINITY,
            "nan" => f64::NAN,
            other => return Err(format!("$float: {other:?} is not inf, -inf or nan")),
        }),
        "$ext" => {
            let pair = inner.as_array().filter(|p| p.len() == 2);
            let (code, data) = pair
                .and_then(|p| Some((p[0].as_i64()?, p[1].as_str()?)))
                .ok_or_else(|| "$ext takes [code, \"hex data\"]".to_owned())?;
            let code =
                i8::try_from(code).map_err(|_| format!("$ext: code {code} is not -128..127"))?;
            Value::Ext(Ext::new(code, hex(data)?).map_err(parsed)?)
        }
        other => return Err(format!("unknown type {other:?} (see `rsoa call --help`)")),
    })
}

/// A response as JSON, special types tagged as [`from_json`] reads them.
pub(crate) fn to_json(value: &Value) -> serde_json::Value {
    use serde_json::json;
    match value {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => json!(b),
        Value::Int(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => json!(i),
            (None, Some(u)) => json!(u),
            (None, None) => serde_json::Value::Null,
        },
        Value::Float(f) if f.is_nan() => json!({"$float": "nan"}),
        Value::Float(f) if f.is_infinite() => {
            json!({"$float": if *f > 0.0 { "inf" } else { "-inf" }})
        }
        Value::Float(f) => json!(f),
        Value::String(s) => json!(s.as_str()),
        Value::NonUtf8String(b) => json!({"$text_bytes": hex::encode(b)}),
        Value::Bytes(b) => json!({"$bytes": hex::encode(b)}),
        Value::Array(items) => serde_json::Value::Array(items.iter().map(to_json).collect()),
        Value::Map(map) => serde_json::Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let key = k.as_str().map_or_else(|| format!("{k:?}"), str::to_owned);
                    (key, to_json(v))
                })
                .collect(),
        ),
        Value::DateTime(d) => json!({"$datetime": d.to_string()}),
        Value::UtcDateTime(d) => json!({"$datetime": d.to_string()}),
        Value::Date(d) => json!({"$date": d.to_string()}),
        Value::Time(t) => json!({"$time": t.to_string()}),
        Value::Decimal(d) => json!({"$decimal": d.to_string()}),
        Value::Amount(a) => json!({"$amount": a.to_string()}),
        Value::Ext(e) => json!({"$ext": [e.code(), hex::encode(e.data())]}),
    }
}
