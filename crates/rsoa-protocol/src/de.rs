//! Deserializing a [`Value`] into any `T: Deserialize`, and [`Value`] itself from any serde format.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IntoDeserializer, Unexpected, Visitor};

/// Forwards the named `deserialize_*` methods to [`ValueDeserializer::deserialize_plain`].
macro_rules! forward_plain {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
            self.deserialize_plain(visitor)
        }
    )*};
}

use crate::magic;
use crate::{CompactString, Int, Map, Value, ValueError};

/// Converts a [`Value`] into a deserializable type; a failure names the field, PySOA-style (`items.0.name`).
///
/// ```
/// use rsoa_protocol::{from_value, Value};
///
/// #[derive(serde::Deserialize, Debug, PartialEq)]
/// struct Square { number: i64 }
///
/// let body: Value = [("number", 4)].into_iter().collect();
/// assert_eq!(from_value::<Square>(body).unwrap(), Square { number: 4 });
///
/// let bad: Value = [("number", "four")].into_iter().collect();
/// assert_eq!(from_value::<Square>(bad).unwrap_err().field(), Some("number"));
/// ```
pub fn from_value<T: de::DeserializeOwned>(value: Value) -> Result<T, ValueError> {
    serde_path_to_error::deserialize(ValueDeserializer(value)).map_err(|e| {
        let path = e.path().clone();
        crate::error::with_path(&path, e.into_inner())
    })
}

fn unexpected(value: &Value) -> Unexpected<'_> {
    match value {
        Value::Null => Unexpected::Unit,
        Value::Bool(b) => Unexpected::Bool(*b),
        Value::Int(i) => match i.as_i64() {
            Some(n) => Unexpected::Signed(n),
            None => Unexpected::Unsigned(i.as_u64().unwrap_or_default()),
        },
        Value::Float(f) => Unexpected::Float(*f),
        Value::String(s) => Unexpected::Str(s),
        Value::Bytes(b) => Unexpected::Bytes(b),
        Value::Array(_) => Unexpected::Seq,
        Value::Map(_) => Unexpected::Map,
        other => Unexpected::Other(other.kind()),
    }
}

/// The serde deserializer that reads a [`Value`].
#[derive(Debug)]
struct ValueDeserializer(Value);

impl<'de> Deserializer<'de> for ValueDeserializer {
    type Error = ValueError;

    fn is_human_readable(&self) -> bool {
        false
    }

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(b),
            Value::Int(i) => match i.as_i64() {
                Some(n) if n < 0 => visitor.visit_i64(n),
                _ => visitor.visit_u64(i.as_u64().unwrap_or_default()),
            },
            Value::Float(f) => visitor.visit_f64(f),
            // A text on the heap moves into a `String` as it is; an inline one is lent, so that a visitor that only
            // compares it (a field name) allocates nothing.
            Value::String(s) if s.is_heap_allocated() => visitor.visit_string(s.into_string()),
            Value::String(s) => visitor.visit_str(&s),
            Value::Bytes(b) => visitor.visit_byte_buf(b),
            Value::Array(a) => visit_array(a, visitor),
            Value::Map(m) => visit_map(m, visitor),
            other => match magic::to_repr(&other) {
                // A PySOA type seen by a visitor that accepts anything: hand it over as a one-entry map that the
                // `Value` visitor recognises, so `Value` fields keep their variant.
                Some((name, repr)) => visitor.visit_map(MagicMap {
                    name: Some(name),
                    repr: Some(repr),
                }),
                None => Err(de::Error::invalid_type(unexpected(&other), &visitor)),
            },
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            other => visitor.visit_some(ValueDeserializer(other)),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        if !magic::is_magic(name) {
            return visitor.visit_newtype_struct(self);
        }
        match magic::to_repr(&self.0) {
            Some((found, repr)) if found == name => {
                visitor.visit_newtype_struct(ValueDeserializer(repr))
            }
            _ => Err(de::Error::invalid_type(unexpected(&self.0), &visitor)),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        match self.0 {
            Value::String(variant) => visitor.visit_enum(EnumAccess {
                variant,
                content: None,
            }),
            Value::Map(m) if m.len() == 1 => {
                let (k, v) = m.into_iter().next().unwrap_or_default();
                match k {
                    Value::String(variant) => visitor.visit_enum(EnumAccess {
                        variant,
                        content: Some(v),
                    }),
                    other => Err(de::Error::invalid_type(
                        unexpected(&other),
                        &"a variant name",
                    )),
                }
            }
            other => Err(de::Error::invalid_type(
                unexpected(&other),
                &"a variant name or a one-entry map",
            )),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            other => Err(de::Error::invalid_type(unexpected(&other), &visitor)),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        visitor.visit_unit()
    }

    forward_plain! {
        deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128 deserialize_f32
        deserialize_f64 deserialize_char deserialize_str deserialize_string deserialize_bytes deserialize_byte_buf
        deserialize_seq deserialize_map deserialize_identifier
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        self.deserialize_plain(visitor)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        self.deserialize_plain(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        self.deserialize_plain(visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        self.deserialize_plain(visitor)
    }
}

impl ValueDeserializer {
    /// `deserialize_any` for callers that asked for a specific shape: a PySOA type there is a type error that names
    /// the type, not a confusing "map".
    fn deserialize_plain<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        if magic::to_repr(&self.0).is_some() {
            return Err(de::Error::invalid_type(unexpected(&self.0), &visitor));
        }
        de::Deserializer::deserialize_any(self, visitor)
    }
}

fn visit_array<'de, V: Visitor<'de>>(
    array: Vec<Value>,
    visitor: V,
) -> Result<V::Value, ValueError> {
    let len = array.len();
    let mut access = SeqAccess(array.into_iter());
    let value = visitor.visit_seq(&mut access)?;
    match access.0.len() {
        0 => Ok(value),
        left => Err(de::Error::invalid_length(
            len,
            &format!("{} elements", len - left).as_str(),
        )),
    }
}

fn visit_map<'de, V: Visitor<'de>>(map: Map, visitor: V) -> Result<V::Value, ValueError> {
    let mut access = MapAccess {
        entries: map.into_iter(),
        value: None,
    };
    visitor.visit_map(&mut access)
}

struct SeqAccess(std::vec::IntoIter<Value>);

impl<'de> de::SeqAccess<'de> for SeqAccess {
    type Error = ValueError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, ValueError> {
        self.0
            .next()
            .map(|v| seed.deserialize(ValueDeserializer(v)))
            .transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct MapAccess {
    entries: std::vec::IntoIter<(Value, Value)>,
    value: Option<Value>,
}

impl<'de> de::MapAccess<'de> for MapAccess {
    type Error = ValueError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ValueError> {
        match self.entries.next() {
            Some((k, v)) => {
                self.value = Some(v);
                seed.deserialize(ValueDeserializer(k)).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, ValueError> {
        let value = self
            .value
            .take()
            .ok_or_else(|| ValueError::invalid("map value requested before its key"))?;
        seed.deserialize(ValueDeserializer(value))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// The one-entry map `{private name: representation}` that carries a PySOA type through `deserialize_any`.
struct MagicMap {
    name: Option<&'static str>,
    repr: Option<Value>,
}

impl<'de> de::MapAccess<'de> for MagicMap {
    type Error = ValueError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ValueError> {
        self.name
            .take()
            .map(|name| seed.deserialize(name.into_deserializer()))
            .transpose()
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, ValueError> {
        let repr = self
            .repr
            .take()
            .ok_or_else(|| ValueError::invalid("map value requested before its key"))?;
        seed.deserialize(ValueDeserializer(repr))
    }
}

struct EnumAccess {
    variant: CompactString,
    content: Option<Value>,
}

impl<'de> de::EnumAccess<'de> for EnumAccess {
    type Error = ValueError;
    type Variant = VariantAccess;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, VariantAccess), ValueError> {
        let variant = seed.deserialize(ValueDeserializer(Value::String(self.variant)))?;
        Ok((variant, VariantAccess(self.content)))
    }
}

struct VariantAccess(Option<Value>);

impl<'de> de::VariantAccess<'de> for VariantAccess {
    type Error = ValueError;

    fn unit_variant(self) -> Result<(), ValueError> {
        match self.0 {
            None | Some(Value::Null) => Ok(()),
            Some(other) => Err(de::Error::invalid_type(
                unexpected(&other),
                &"a unit variant",
            )),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, ValueError> {
        seed.deserialize(ValueDeserializer(self.0.unwrap_or_default()))
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        match self.0 {
            Some(Value::Array(a)) => visit_array(a, visitor),
            Some(other) => Err(de::Error::invalid_type(
                unexpected(&other),
                &"a tuple variant",
            )),
            None => Err(de::Error::invalid_type(
                Unexpected::UnitVariant,
                &"a tuple variant",
            )),
        }
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        match self.0 {
            Some(Value::Map(m)) => visit_map(m, visitor),
            Some(other) => Err(de::Error::invalid_type(
                unexpected(&other),
                &"a struct variant",
            )),
            None => Err(de::Error::invalid_type(
                Unexpected::UnitVariant,
                &"a struct variant",
            )),
        }
    }
}

impl<'de> de::Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

impl<'de> de::Deserialize<'de> for Map {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Map, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::Map(map) => Ok(map),
            other => Err(de::Error::invalid_type(unexpected(&other), &"a map")),
        }
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(Int::from(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Int(Int::from(v)))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        crate::to_value(&v).map_err(E::custom)
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        crate::to_value(&v).map_err(E::custom)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Bytes(v.to_vec()))
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Value, E> {
        Ok(Value::Bytes(v))
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        // Never trust a size hint for more than a modest pre-allocation.
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::with_capacity(access.size_hint().unwrap_or(0).min(4096));
        let Some(first) = access.next_key::<Value>()? else {
            return Ok(Value::Map(map));
        };
        if let Value::String(name) = &first {
            if magic::is_magic(name) {
                let repr: Value = access.next_value()?;
                return magic::from_repr(name, repr).map_err(de::Error::custom);
            }
        }
        map.push(first, access.next_value::<Value>()?);
        while let Some((k, v)) = access.next_entry::<Value, Value>()? {
            map.push(k, v);
        }
        Ok(Value::Map(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{to_value, Amount, Date, DateTime, Decimal, ErrorKind, Time, UtcDateTime};
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Typed {
        when: DateTime,
        utc: UtcDateTime,
        day: Date,
        at: Time,
        price: Decimal,
        cost: Amount,
        anything: Value,
        list: Vec<Value>,
        maybe: Option<i32>,
    }

    fn typed() -> Typed {
        Typed {
            when: "2020-02-29T13:14:15.123456".parse().unwrap(),
            utc: "2021-12-31T23:59:59.5+00:00".parse().unwrap(),
            day: Date::new(2020, 2, 29).unwrap(),
            at: Time::new(1, 2, 3, 4).unwrap(),
            price: "-12.3400".parse().unwrap(),
            cost: Amount::new("USD", 12345).unwrap(),
            anything: Value::Date(Date::new(1999, 12, 31).unwrap()),
            list: vec![Value::Decimal("1".parse().unwrap()), Value::from(1)],
            maybe: None,
        }
    }

    #[test]
    fn pysoa_types_become_their_variants_and_back() {
        let value = to_value(&typed()).unwrap();
        assert!(matches!(value["when"], Value::DateTime(_)));
        assert!(matches!(value["utc"], Value::UtcDateTime(_)));
        assert!(matches!(value["day"], Value::Date(_)));
        assert!(matches!(value["at"], Value::Time(_)));
        assert!(matches!(value["price"], Value::Decimal(_)));
        assert!(matches!(value["cost"], Value::Amount(_)));
        assert!(matches!(value["anything"], Value::Date(_)));
        assert!(matches!(value["list"][0], Value::Decimal(_)));
        let back: Typed = from_value(value).unwrap();
        assert_eq!(back, typed());
    }

    #[test]
    fn value_round_trips_through_itself() {
        let value = to_value(&typed()).unwrap();
        let again: Value = from_value(value.clone()).unwrap();
        assert_eq!(again, value);
        assert_eq!(to_value(&value).unwrap(), value);
    }

    #[test]
    fn human_readable_formats_get_text() {
        let json = serde_json::to_value(typed()).unwrap();
        assert_eq!(json["when"], "2020-02-29T13:14:15.123456");
        assert_eq!(json["price"], "-12.3400");
        assert_eq!(json["cost"], "12345 USD");
        let back: Typed = serde_json::from_value(json).unwrap();
        assert_eq!(back.when, typed().when);
    }

    #[test]
    fn errors_carry_pysoa_pointers() {
        let mut value = to_value(&typed()).unwrap();
        value.as_map_mut().unwrap().remove("price");
        let err = from_value::<Typed>(value.clone()).unwrap_err();
        assert_eq!(
            (err.kind(), err.field(), err.message()),
            (ErrorKind::Missing, Some("price"), "Missing key: price")
        );

        value.as_map_mut().unwrap().insert("price", "1.0");
        value.as_map_mut().unwrap().insert("zzz", 1);
        let err = from_value::<Typed>(value.clone()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");
        assert_eq!(err.field(), Some("price"));

        value
            .as_map_mut()
            .unwrap()
            .insert("price", Value::Decimal("1".parse().unwrap()));
        let err = from_value::<Typed>(value).unwrap_err();
        assert_eq!(
            (err.kind(), err.field(), err.message()),
            (ErrorKind::Unknown, None, "Extra keys present: zzz")
        );
    }

    #[test]
    fn nested_missing_key_points_at_the_key() {
        #[derive(Deserialize, Debug)]
        #[allow(dead_code)]
        struct Inner {
            need: i32,
        }
        #[derive(Deserialize, Debug)]
        #[allow(dead_code)]
        struct Outer {
            items: Vec<Inner>,
        }
        let value: Value = [("items", Value::Array(vec![Value::Map(Map::new())]))]
            .into_iter()
            .collect();
        let err = from_value::<Outer>(value).unwrap_err();
        assert_eq!(err.field(), Some("items.0.need"));
        assert_eq!(err.code().as_str(), "MISSING");
    }

    #[test]
    fn integers_check_their_range() {
        assert!(from_value::<u8>(Value::from(300)).is_err());
        assert_eq!(from_value::<i8>(Value::from(-5)).unwrap(), -5);
        assert_eq!(from_value::<f64>(Value::from(3)).unwrap(), 3.0);
        assert!(from_value::<u64>(Value::from(-1)).is_err());
    }

    #[test]
    fn enums_and_options() {
        #[derive(Serialize, Deserialize, Debug, PartialEq)]
        enum E {
            Unit,
            New(i32),
            Tuple(i32, String),
            Struct { a: bool },
        }
        for e in [
            E::Unit,
            E::New(3),
            E::Tuple(1, "x".into()),
            E::Struct { a: true },
        ] {
            let v = to_value(&e).unwrap();
            assert_eq!(from_value::<E>(v).unwrap(), e);
        }
        assert_eq!(from_value::<Option<i32>>(Value::Null).unwrap(), None);
        assert_eq!(from_value::<Option<i32>>(Value::from(1)).unwrap(), Some(1));
    }

    #[test]
    fn wrong_pysoa_type_is_invalid() {
        let err = from_value::<DateTime>(Value::from("2020-01-01T00:00:00")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Invalid);
        let err = from_value::<Date>(Value::DateTime(DateTime::from_epoch_micros(0).unwrap()))
            .unwrap_err();
        assert!(err.message().contains("date-time"), "{err}");
    }
}
