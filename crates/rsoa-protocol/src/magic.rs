//! How the PySOA-specific types travel through serde.
//!
//! serde has no data model for a date-time or a decimal. Like `toml_datetime`, each such type serializes as a
//! newtype struct with a private name; the [`Value`](crate::Value) serializer and deserializer recognise the name
//! and turn the plain inner representation (an integer, a string, a pair) into the right `Value` variant and back.
//! Human-readable formats such as JSON get the ISO or decimal text instead, so a user struct holding a
//! [`DateTime`](crate::DateTime) still prints sensibly with `serde_json`.
//!
//! A [`Value`](crate::Value) that has to pass through `deserialize_any` (a `Value` field inside a user struct)
//! arrives as a one-entry map whose key is the private name; the `Value` visitor recognises that too.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{Amount, Date, DateTime, Decimal, Ext, Int, Time, UtcDateTime, Value, ValueError};

pub(crate) const DATETIME: &str = "$__rsoa_private_DateTime";
pub(crate) const UTC_DATETIME: &str = "$__rsoa_private_UtcDateTime";
pub(crate) const DATE: &str = "$__rsoa_private_Date";
pub(crate) const TIME: &str = "$__rsoa_private_Time";
pub(crate) const DECIMAL: &str = "$__rsoa_private_Decimal";
pub(crate) const AMOUNT: &str = "$__rsoa_private_Amount";
pub(crate) const EXT: &str = "$__rsoa_private_Ext";
pub(crate) const NON_UTF8: &str = "$__rsoa_private_NonUtf8String";

/// A type carried as a private newtype struct.
pub(crate) trait Magic:
    Sized + std::fmt::Display + std::str::FromStr<Err = ValueError>
{
    const NAME: &'static str;
    const EXPECTING: &'static str;
    type Repr: Serialize + DeserializeOwned;

    fn to_repr(&self) -> Self::Repr;
    fn from_repr(repr: Self::Repr) -> Result<Self, ValueError>;
}

/// Implements `Serialize` and `Deserialize` for [`Magic`] types.
macro_rules! serde_via_magic {
    ($($t:ty),*) => {$(
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                if serializer.is_human_readable() {
                    serializer.collect_str(self)
                } else {
                    serializer.serialize_newtype_struct(
                        <$t as $crate::magic::Magic>::NAME,
                        &<$t as $crate::magic::Magic>::to_repr(self),
                    )
                }
            }
        }

        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                $crate::magic::deserialize::<$t, D>(deserializer)
            }
        }
    )*};
}
pub(crate) use serde_via_magic;

pub(crate) fn deserialize<'de, T: Magic, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<T, D::Error> {
    use serde::de::{self, Visitor};
    use std::fmt;
    use std::marker::PhantomData;

    struct V<T>(PhantomData<T>);

    impl<'de, T: Magic> Visitor<'de> for V<T> {
        type Value = T;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(T::EXPECTING)
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            v.parse().map_err(E::custom)
        }

        fn visit_newtype_struct<D: serde::Deserializer<'de>>(self, d: D) -> Result<T, D::Error> {
            let repr = T::Repr::deserialize(d)?;
            T::from_repr(repr).map_err(de::Error::custom)
        }
    }

    use serde::Deserialize;
    if deserializer.is_human_readable() {
        deserializer.deserialize_str(V(PhantomData))
    } else {
        deserializer.deserialize_newtype_struct(T::NAME, V(PhantomData))
    }
}

/// Whether `name` is one of the private newtype names.
pub(crate) fn is_magic(name: &str) -> bool {
    name.starts_with("$__rsoa_private_")
}

fn repr<T: Magic>(inner: Value) -> Result<T, ValueError> {
    let repr: T::Repr = crate::from_value(inner)?;
    T::from_repr(repr)
}

/// Builds the `Value` variant named by `name` from its plain representation.
pub(crate) fn from_repr(name: &str, inner: Value) -> Result<Value, ValueError> {
    Ok(match name {
        DATETIME => Value::DateTime(repr::<DateTime>(inner)?),
        UTC_DATETIME => Value::UtcDateTime(repr::<UtcDateTime>(inner)?),
        DATE => Value::Date(repr::<Date>(inner)?),
        TIME => Value::Time(repr::<Time>(inner)?),
        DECIMAL => Value::Decimal(repr::<Decimal>(inner)?),
        AMOUNT => Value::Amount(repr::<Amount>(inner)?),
        EXT => match inner {
            Value::Array(mut parts) if parts.len() == 2 => {
                let code = parts[0].as_i64().and_then(|c| i8::try_from(c).ok());
                match (code, parts.pop()) {
                    (Some(code), Some(Value::Bytes(data))) => Value::Ext(Ext::new(code, data)?),
                    _ => {
                        return Err(ValueError::invalid(
                            "expected an extension code and its bytes",
                        ))
                    }
                }
            }
            other => {
                return Err(ValueError::invalid(format!(
                    "expected an extension pair, found {}",
                    other.kind()
                )))
            }
        },
        NON_UTF8 => match inner {
            Value::Bytes(b) => match String::from_utf8(b) {
                Ok(s) => Value::from(s),
                Err(e) => Value::NonUtf8String(e.into_bytes()),
            },
            other => {
                return Err(ValueError::invalid(format!(
                    "expected bytes, found {}",
                    other.kind()
                )))
            }
        },
        _ => return Err(ValueError::invalid(format!("unknown private type {name}"))),
    })
}

/// The private name and plain representation of a `Value` variant that has one.
pub(crate) fn to_repr(value: &Value) -> Option<(&'static str, Value)> {
    Some(match value {
        Value::DateTime(v) => (DATETIME, Value::from(v.to_repr())),
        Value::UtcDateTime(v) => (UTC_DATETIME, Value::from(v.to_repr())),
        Value::Date(v) => (DATE, Value::from(v.to_repr())),
        Value::Time(v) => (TIME, Value::from(v.to_repr())),
        Value::Decimal(v) => (DECIMAL, Value::from(v.to_repr())),
        Value::Amount(v) => {
            let (code, minor) = v.to_repr();
            (
                AMOUNT,
                Value::Array(vec![Value::from(code), Value::Int(Int::from(minor))]),
            )
        }
        Value::Ext(e) => (
            EXT,
            Value::Array(vec![Value::from(e.code()), Value::Bytes(e.data().to_vec())]),
        ),
        Value::NonUtf8String(b) => (NON_UTF8, Value::Bytes(b.clone())),
        _ => return None,
    })
}
