//! The dynamic [`Value`] that every PySOA message body, context and meta map is made of.

use std::fmt;

pub use compact_str::CompactString;

use crate::{Amount, Date, DateTime, Decimal, Time, UtcDateTime};

/// Any value PySOA can put on the wire, without loss.
///
/// Every MessagePack value PySOA 1.4.9 writes decodes into exactly one variant, and encodes back to the same bytes.
/// JSON is a subset: it has no bytes, temporal, decimal, amount or extension values.
///
/// ```
/// use rsoa_protocol::{Map, Value};
///
/// let mut body = Map::new();
/// body.insert("number", 7);
/// body.insert("name", "seven");
/// let value = Value::Map(body);
/// assert_eq!(value.get("number").and_then(Value::as_i64), Some(7));
/// assert_eq!(value["name"].as_str(), Some("seven"));
/// ```
///
/// # Equality
///
/// `==` compares floats as numbers, the way Rust and Python do: `NaN` is not equal to itself, and `-0.0` equals
/// `0.0`. Maps compare their entries in order. To ask whether two values are the same *on the wire* (same bytes
/// once encoded), use [`Value::same_as`], which compares floats bit for bit.
///
/// ```
/// use rsoa_protocol::Value;
///
/// assert_ne!(Value::from(f64::NAN), Value::from(f64::NAN));
/// assert!(Value::from(f64::NAN).same_as(&Value::from(f64::NAN)));
/// assert_eq!(Value::from(-0.0), Value::from(0.0));
/// assert!(!Value::from(-0.0).same_as(&Value::from(0.0)));
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Value {
    /// MessagePack nil, JSON `null`, Python `None`.
    #[default]
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer from −2⁶³ to 2⁶⁴−1, the range both PySOA and MessagePack can carry.
    Int(Int),
    /// A 64-bit float (PySOA always writes float64).
    Float(f64),
    /// A UTF-8 text string.
    ///
    /// Held as a [`CompactString`], which stores up to 24 bytes inline: the keys and short texts that make up most
    /// of every message then cost no allocation to decode, build, clone or drop.
    String(CompactString),
    /// A MessagePack `str` whose bytes are not valid UTF-8.
    ///
    /// Python can emit these (it packs strings with `surrogatepass`, so a lone surrogate becomes `ED A0 80`).
    /// rsoa keeps the bytes as they were so that nothing is lost, and refuses them wherever real text is needed.
    NonUtf8String(Vec<u8>),
    /// A byte string (MessagePack `bin`, Python `bytes`).
    Bytes(Vec<u8>),
    /// An array (Python list or tuple).
    Array(Vec<Value>),
    /// A map that keeps its entries in insertion order.
    Map(Map),
    /// A date-time without a time zone (extension type 1).
    DateTime(DateTime),
    /// A date-time in UTC (extension type 10).
    UtcDateTime(UtcDateTime),
    /// A calendar date (extension type 3).
    Date(Date),
    /// A time of day (extension type 4).
    Time(Time),
    /// A decimal number of any length (extension type 5).
    Decimal(Decimal),
    /// An amount of money in minor units of a currency (extension type 2).
    Amount(Amount),
    /// A MessagePack extension value with a code PySOA does not define, kept as raw bytes.
    Ext(Ext),
}

impl Value {
    /// Whether the two values put the same bytes on the wire: like `==`, except that floats are compared bit for
    /// bit (`NaN` is the same as a `NaN` of the same bits, `-0.0` is not the same as `0.0`), at any depth.
    pub fn same_as(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Float(a), Value::Float(b)) => a.to_bits() == b.to_bits(),
            (Value::Array(a), Value::Array(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(a, b)| a.same_as(b))
            }
            (Value::Map(a), Value::Map(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .zip(b.iter())
                        .all(|((ka, va), (kb, vb))| ka.same_as(kb) && va.same_as(vb))
            }
            (a, b) => a == b,
        }
    }

    /// A short name for the variant, used in error messages (`"string"`, `"map"`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Int(_) => "integer",
            Value::Float(_) => "float",
            Value::String(_) => "string",
            Value::NonUtf8String(_) => "non-UTF-8 string",
            Value::Bytes(_) => "bytes",
            Value::Array(_) => "array",
            Value::Map(_) => "map",
            Value::DateTime(_) => "date-time",
            Value::UtcDateTime(_) => "UTC date-time",
            Value::Date(_) => "date",
            Value::Time(_) => "time",
            Value::Decimal(_) => "decimal",
            Value::Amount(_) => "amount",
            Value::Ext(_) => "extension value",
        }
    }

    /// Whether this is [`Value::Null`].
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The boolean, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The integer as `i64`, if this is an integer in that range.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => i.as_i64(),
            _ => None,
        }
    }

    /// The integer as `u64`, if this is a non-negative integer.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Int(i) => i.as_u64(),
            _ => None,
        }
    }

    /// The number as `f64`, if this is a float or an integer.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Float(f) => Some(*f),
            Value::Int(i) => Some(i.as_f64()),
            _ => None,
        }
    }

    /// The text, if this is a UTF-8 string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The bytes, if this is a byte string.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The elements, if this is an array.
    pub fn as_array(&self) -> Option<&Vec<Value>> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The elements, mutably, if this is an array.
    pub fn as_array_mut(&mut self) -> Option<&mut Vec<Value>> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The map, if this is one.
    pub fn as_map(&self) -> Option<&Map> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The map, mutably, if this is one.
    pub fn as_map_mut(&mut self) -> Option<&mut Map> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// Looks up a string key, if this is a map (the last entry wins when a key repeats, as in Python).
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_map().and_then(|m| m.get(key))
    }
}

/// Indexing a map by a string key, yielding [`Value::Null`] where there is no such key or no map.
impl std::ops::Index<&str> for Value {
    type Output = Value;

    fn index(&self, key: &str) -> &Value {
        static NULL: Value = Value::Null;
        self.get(key).unwrap_or(&NULL)
    }
}

/// Indexing an array by position, yielding [`Value::Null`] where there is no such element or no array.
impl std::ops::Index<usize> for Value {
    type Output = Value;

    fn index(&self, index: usize) -> &Value {
        static NULL: Value = Value::Null;
        self.as_array().and_then(|a| a.get(index)).unwrap_or(&NULL)
    }
}

/// An integer in the range −2⁶³ ..= 2⁶⁴−1.
///
/// Negative numbers are held as `i64` and the rest as `u64`, so two equal numbers are always equal values,
/// whichever type they were built from.
///
/// ```
/// use rsoa_protocol::Int;
///
/// assert_eq!(Int::from(5_i8), Int::from(5_u64));
/// assert_eq!(Int::from(u64::MAX).as_i64(), None);
/// assert_eq!(Int::from(-1).as_u64(), None);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Int(IntRepr);

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum IntRepr {
    /// Always below zero.
    Negative(i64),
    NonNegative(u64),
}

impl Int {
    /// The number as `i64`, if it fits.
    pub fn as_i64(self) -> Option<i64> {
        match self.0 {
            IntRepr::Negative(n) => Some(n),
            IntRepr::NonNegative(n) => i64::try_from(n).ok(),
        }
    }

    /// The number as `u64`, if it is not negative.
    pub fn as_u64(self) -> Option<u64> {
        match self.0 {
            IntRepr::Negative(_) => None,
            IntRepr::NonNegative(n) => Some(n),
        }
    }

    /// The number as the nearest `f64`.
    pub fn as_f64(self) -> f64 {
        match self.0 {
            IntRepr::Negative(n) => n as f64,
            IntRepr::NonNegative(n) => n as f64,
        }
    }

    /// Whether the number is below zero.
    pub fn is_negative(self) -> bool {
        matches!(self.0, IntRepr::Negative(_))
    }
}

impl fmt::Debug for Int {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Int {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IntRepr::Negative(n) => fmt::Display::fmt(&n, f),
            IntRepr::NonNegative(n) => fmt::Display::fmt(&n, f),
        }
    }
}

macro_rules! int_from_signed {
    ($($t:ty),*) => {$(
        impl From<$t> for Int {
            fn from(n: $t) -> Int {
                let n = n as i64;
                if n < 0 { Int(IntRepr::Negative(n)) } else { Int(IntRepr::NonNegative(n as u64)) }
            }
        }
        impl From<$t> for Value {
            fn from(n: $t) -> Value {
                Value::Int(Int::from(n))
            }
        }
    )*};
}
macro_rules! int_from_unsigned {
    ($($t:ty),*) => {$(
        impl From<$t> for Int {
            fn from(n: $t) -> Int {
                Int(IntRepr::NonNegative(n as u64))
            }
        }
        impl From<$t> for Value {
            fn from(n: $t) -> Value {
                Value::Int(Int::from(n))
            }
        }
    )*};
}
int_from_signed!(i8, i16, i32, i64, isize);
int_from_unsigned!(u8, u16, u32, u64, usize);

impl PartialEq<i64> for Int {
    fn eq(&self, other: &i64) -> bool {
        self.as_i64() == Some(*other)
    }
}

impl<'de> serde::Deserialize<'de> for Int {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Int, D::Error> {
        struct IntVisitor;

        impl serde::de::Visitor<'_> for IntVisitor {
            type Value = Int;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer from -2^63 to 2^64-1")
            }

            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Int, E> {
                Ok(Int::from(n))
            }

            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Int, E> {
                Ok(Int::from(n))
            }
        }

        deserializer.deserialize_any(IntVisitor)
    }
}

impl From<Int> for Value {
    fn from(n: Int) -> Value {
        Value::Int(n)
    }
}

impl serde::Serialize for Int {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            IntRepr::Negative(n) => serializer.serialize_i64(n),
            IntRepr::NonNegative(n) => serializer.serialize_u64(n),
        }
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<f64> for Value {
    fn from(f: f64) -> Value {
        Value::Float(f)
    }
}

impl From<f32> for Value {
    fn from(f: f32) -> Value {
        Value::Float(f64::from(f))
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::String(CompactString::from(s))
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::String(CompactString::from(s))
    }
}

impl From<CompactString> for Value {
    fn from(s: CompactString) -> Value {
        Value::String(s)
    }
}

impl From<Vec<u8>> for Value {
    fn from(b: Vec<u8>) -> Value {
        Value::Bytes(b)
    }
}

impl From<Vec<Value>> for Value {
    fn from(a: Vec<Value>) -> Value {
        Value::Array(a)
    }
}

impl From<Map> for Value {
    fn from(m: Map) -> Value {
        Value::Map(m)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(o: Option<T>) -> Value {
        o.map_or(Value::Null, Into::into)
    }
}

macro_rules! value_from_wrapper {
    ($($t:ident),*) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Value {
                Value::$t(v)
            }
        }
    )*};
}
value_from_wrapper!(DateTime, UtcDateTime, Date, Time, Decimal, Amount, Ext);

impl<K: Into<Value>, V: Into<Value>> FromIterator<(K, V)> for Value {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Value {
        Value::Map(iter.into_iter().collect())
    }
}

impl<V: Into<Value>> FromIterator<V> for Value {
    fn from_iter<I: IntoIterator<Item = V>>(iter: I) -> Value {
        Value::Array(iter.into_iter().map(Into::into).collect())
    }
}

/// A map whose entries stay in insertion order, like a Python `dict`.
///
/// Keys are usually strings, but PySOA's decoder accepts any key (integer-keyed maps appear in expansions), so a key
/// is a [`Value`]. Entries are stored in a vector: bodies are small, and decoding stays a straight copy.
/// A map decoded from the wire keeps every entry, even a repeated key, so that it re-encodes to the same bytes;
/// lookups, like Python, see the last one.
///
/// ```
/// use rsoa_protocol::{Map, Value};
///
/// let mut map = Map::new();
/// map.insert("b", 1);
/// map.insert("a", 2);
/// map.insert("b", 3);
/// let keys: Vec<&str> = map.keys().filter_map(Value::as_str).collect();
/// assert_eq!(keys, ["b", "a"]);
/// assert_eq!(map.get("b"), Some(&Value::from(3)));
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Map {
    entries: Vec<(Value, Value)>,
}

impl Map {
    /// An empty map.
    pub fn new() -> Map {
        Map::default()
    }

    /// An empty map with room for `capacity` entries.
    pub fn with_capacity(capacity: usize) -> Map {
        Map {
            entries: Vec::with_capacity(capacity),
        }
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn position(&self, key: &str) -> Option<usize> {
        self.entries
            .iter()
            .rposition(|(k, _)| k.as_str() == Some(key))
    }

    fn position_of(&self, key: &Value) -> Option<usize> {
        self.entries.iter().rposition(|(k, _)| k == key)
    }

    /// The value of a string key.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.position(key).map(|i| &self.entries[i].1)
    }

    /// The value of a string key, mutably.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.position(key).map(move |i| &mut self.entries[i].1)
    }

    /// The value of any key.
    pub fn get_value(&self, key: &Value) -> Option<&Value> {
        self.position_of(key).map(|i| &self.entries[i].1)
    }

    /// The value of any key, mutably.
    pub fn get_value_mut(&mut self, key: &Value) -> Option<&mut Value> {
        self.position_of(key).map(move |i| &mut self.entries[i].1)
    }

    /// Whether a string key is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_some()
    }

    /// Sets a key, replacing the value in place if the key is present (keeping its position, as Python does),
    /// else appending. Returns the old value.
    pub fn insert(&mut self, key: impl Into<Value>, value: impl Into<Value>) -> Option<Value> {
        let key = key.into();
        let value = value.into();
        match self.position_of(&key) {
            Some(i) => Some(std::mem::replace(&mut self.entries[i].1, value)),
            None => {
                self.entries.push((key, value));
                None
            }
        }
    }

    /// Appends an entry without looking for an existing one; the decoders use it, and it is the fast way to build a
    /// map whose keys are known to be distinct.
    pub fn push(&mut self, key: impl Into<Value>, value: impl Into<Value>) {
        self.entries.push((key.into(), value.into()));
    }

    /// Removes a string key (every entry with it), returning the value lookups saw.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let mut found = None;
        self.entries.retain_mut(|(k, v)| {
            if k.as_str() == Some(key) {
                found = Some(std::mem::take(v));
                false
            } else {
                true
            }
        });
        found
    }

    /// The keys in order.
    pub fn keys(&self) -> impl Iterator<Item = &Value> {
        self.entries.iter().map(|(k, _)| k)
    }

    /// The values in order.
    pub fn values(&self) -> impl Iterator<Item = &Value> {
        self.entries.iter().map(|(_, v)| v)
    }

    /// The entries in order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&Value, &Value)> + ExactSizeIterator {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    /// The entries in order, values mutable.
    pub fn iter_mut(
        &mut self,
    ) -> impl DoubleEndedIterator<Item = (&Value, &mut Value)> + ExactSizeIterator {
        self.entries.iter_mut().map(|(k, v)| (&*k, v))
    }

    /// The entries as a slice of pairs.
    pub fn as_slice(&self) -> &[(Value, Value)] {
        &self.entries
    }
}

/// Indexing by a string key, yielding [`Value::Null`] where there is no such key.
impl std::ops::Index<&str> for Map {
    type Output = Value;

    fn index(&self, key: &str) -> &Value {
        static NULL: Value = Value::Null;
        self.get(key).unwrap_or(&NULL)
    }
}

impl IntoIterator for Map {
    type Item = (Value, Value);
    type IntoIter = std::vec::IntoIter<(Value, Value)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl<K: Into<Value>, V: Into<Value>> FromIterator<(K, V)> for Map {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Map {
        let mut map = Map::new();
        map.extend(iter);
        map
    }
}

impl<K: Into<Value>, V: Into<Value>> Extend<(K, V)> for Map {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k, v);
        }
    }
}

impl From<Vec<(Value, Value)>> for Map {
    /// Takes the entries as they are, repeated keys included.
    fn from(entries: Vec<(Value, Value)>) -> Map {
        Map { entries }
    }
}

/// A MessagePack extension value whose code PySOA does not define.
///
/// ```
/// use rsoa_protocol::Ext;
///
/// let ext = Ext::new(42, vec![1, 2]).unwrap();
/// assert_eq!(ext.code(), 42);
/// assert!(Ext::new(1, vec![]).is_err(), "code 1 is PySOA's date-time");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Ext {
    code: i8,
    data: Vec<u8>,
}

/// The extension codes PySOA gives meaning to; an [`Ext`] never carries one of them.
pub const PYSOA_EXTENSION_CODES: [i8; 6] = [1, 2, 3, 4, 5, 10];

impl Ext {
    /// An extension value; fails for the codes PySOA uses (1, 2, 3, 4, 5, 10), which have their own variants.
    pub fn new(code: i8, data: Vec<u8>) -> Result<Ext, crate::ValueError> {
        if PYSOA_EXTENSION_CODES.contains(&code) {
            return Err(crate::ValueError::invalid(format!(
                "extension code {code} is reserved for a PySOA type"
            )));
        }
        Ok(Ext { code, data })
    }

    /// The extension code.
    pub fn code(&self) -> i8 {
        self.code
    }

    /// The raw payload.
    pub fn data(&self) -> &[u8] {
        &self.data
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_normalises_sign() {
        assert_eq!(Int::from(0_i64), Int::from(0_u8));
        assert_eq!(Int::from(i64::MIN).as_i64(), Some(i64::MIN));
        assert_eq!(Int::from(u64::MAX).as_u64(), Some(u64::MAX));
        assert!(Int::from(-5).is_negative());
        assert_eq!(Int::from(-5).to_string(), "-5");
    }

    #[test]
    fn map_lookup_sees_last_duplicate() {
        let map = Map::from(vec![
            (Value::from("k"), Value::from(1)),
            (Value::from("k"), Value::from(2)),
        ]);
        assert_eq!(map.get("k"), Some(&Value::from(2)));
        assert_eq!(map.len(), 2);
    }

    #[test]
    fn map_remove_drops_every_duplicate() {
        let mut map = Map::from(vec![
            (Value::from("k"), Value::from(1)),
            (Value::from("x"), Value::from(0)),
            (Value::from("k"), Value::from(2)),
        ]);
        assert_eq!(map.remove("k"), Some(Value::from(2)));
        assert_eq!(map.len(), 1);
        assert_eq!(map.remove("k"), None);
    }

    #[test]
    fn indexing_missing_is_null() {
        let v = Value::from(3);
        assert!(v["nope"].is_null());
        assert!(v[4].is_null());
    }
}
