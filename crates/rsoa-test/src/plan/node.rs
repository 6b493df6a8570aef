//! The data a plan builds and checks: request bodies, expectations and responses, as one tree, with PySOA's path
//! language (`foo.bar.0`, `foo.{bar.baz}`, `foo.{0}`) and its comparison rules.
//!
//! A test case is held the way PySOA's parser holds it (a dict of action cases, each a dict of inputs and
//! expectations), because PySOA's semantics live in that shape: global directives are merged into each test case
//! path by path, and `[[…]]` substitutions walk every string leaf.

use std::fmt::{self, Write as _};

use rsoa_protocol::{Error as WireError, Int, Map, Value};

/// One node of a plan's data.
#[derive(Clone, Debug)]
pub(crate) enum Node {
    /// A dict, in insertion order; keys are strings, or integers where PySOA's paths put them.
    Map(Vec<(Value, Node)>),
    /// A list.
    List(Vec<Node>),
    /// A plain value (never a map or an array: those are `Map` and `List`).
    Value(Value),
    /// An integer too large for the wire (PySOA's Python ints are unbounded; MessagePack's are not).
    BigInt(String),
    /// Any value of a type (`expect any …`), or `None` too.
    Any {
        data_type: String,
        permit_none: bool,
    },
    /// A string matching (or not) a regular expression anchored at its start (`expect regex …`).
    Regex {
        pattern: String,
        regex: regex::Regex,
        negate: bool,
    },
    /// An expected error (`expect: error: code=…`); `None` fields match anything.
    Error(ErrorSpec),
    /// A Python `mock:` directive's data: not something rsoa can run.
    Mock,
}

/// An expected error: the code, and the field and message when the directive names them.
#[derive(Clone, Debug)]
pub(crate) struct ErrorSpec {
    pub(crate) code: String,
    pub(crate) field: Option<String>,
    pub(crate) message: Option<String>,
    /// The directive's line.
    pub(crate) line: usize,
}

impl ErrorSpec {
    fn matches(&self, error: &WireError) -> bool {
        error.code == self.code.as_str()
            && self
                .field
                .as_ref()
                .is_none_or(|f| error.field.as_deref() == Some(f))
            && self.message.as_ref().is_none_or(|m| error.message == *m)
    }
}

impl fmt::Display for ErrorSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "code={}", self.code)?;
        if let Some(field) = &self.field {
            write!(f, ", field={field}")?;
        }
        if let Some(message) = &self.message {
            write!(f, ", message={message}")?;
        }
        Ok(())
    }
}

/// One element of a path: a dict key or a list index.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Slot {
    Key(String),
    Index(usize),
}

impl Slot {
    fn key(&self) -> Value {
        match self {
            Slot::Key(k) => Value::from(k.as_str()),
            Slot::Index(i) => Value::from(*i as u64),
        }
    }
}

/// Why a path could not be followed or written.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct PathError(pub(crate) String);

/// Splits off a path's first element, PySOA's way: dots separate, digits are indexes unless in braces, and braces
/// (which must balance) keep dots and digits literal.
pub(crate) fn next_slot(path: &str) -> Option<(Slot, Option<&str>)> {
    if path.is_empty() {
        return None;
    }
    let mut element = String::new();
    let mut depth = 0usize;
    let mut was_in_brace = false;
    let mut end = path.len();
    for (i, c) in path.char_indices() {
        if c == '{' {
            was_in_brace = true;
            depth += 1;
            if depth == 1 {
                continue;
            }
        }
        if c == '}' {
            depth = depth.saturating_sub(1);
            if depth == 0 {
                continue;
            }
        }
        if c == '.' && depth == 0 {
            end = i;
            break;
        }
        element.push(c);
    }
    let rest = path.get(end + 1..).filter(|r| !r.is_empty());
    let slot =
        if !was_in_brace && !element.is_empty() && element.bytes().all(|b| b.is_ascii_digit()) {
            match element.parse() {
                Ok(i) => Slot::Index(i),
                Err(_) => Slot::Key(element),
            }
        } else {
            Slot::Key(element)
        };
    Some((slot, rest))
}

impl Node {
    pub(crate) fn empty_map() -> Node {
        Node::Map(Vec::new())
    }

    pub(crate) fn str(s: impl Into<String>) -> Node {
        Node::Value(Value::from(s.into()))
    }

    /// The node of a wire value.
    pub(crate) fn from_value(value: &Value) -> Node {
        match value {
            Value::Map(map) => Node::Map(
                map.iter()
                    .map(|(k, v)| (k.clone(), Node::from_value(v)))
                    .collect(),
            ),
            Value::Array(items) => Node::List(items.iter().map(Node::from_value).collect()),
            other => Node::Value(other.clone()),
        }
    }

    /// The wire value of a node that holds only plain data.
    pub(crate) fn to_value(&self) -> Result<Value, String> {
        Ok(match self {
            Node::Map(entries) => {
                let mut map = Map::with_capacity(entries.len());
                for (k, v) in entries {
                    map.insert(k.clone(), v.to_value()?);
                }
                Value::Map(map)
            }
            Node::List(items) => {
                Value::Array(items.iter().map(Node::to_value).collect::<Result<_, _>>()?)
            }
            Node::Value(v) => v.clone(),
            Node::BigInt(digits) => {
                return Err(format!(
                    "the integer {digits} does not fit in 64 bits, so it cannot go on the wire"
                ))
            }
            other => {
                return Err(format!(
                    "{} can only be expected, not sent",
                    other.describe()
                ))
            }
        })
    }

    /// The wire map of a node that must be a dict (a request body, a context).
    pub(crate) fn to_map(&self) -> Result<Map, String> {
        match self.to_value()? {
            Value::Map(map) => Ok(map),
            other => Err(format!("expected a dict, found {}", other.kind())),
        }
    }

    pub(crate) fn as_map(&self) -> Option<&Vec<(Value, Node)>> {
        match self {
            Node::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// The text of a string node.
    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Node::Value(Value::String(s)) => Some(s),
            _ => None,
        }
    }

    /// The text of `key`, when it is a string.
    pub(crate) fn get_str(&self, key: &str) -> Option<String> {
        self.get(key).and_then(Node::as_str).map(str::to_owned)
    }

    /// The strings of a list node (anything else in it skipped); empty for any other node.
    pub(crate) fn strings(&self) -> Vec<String> {
        match self {
            Node::List(items) => items
                .iter()
                .filter_map(Node::as_str)
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        }
    }

    pub(crate) fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    pub(crate) fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        match self {
            Node::Map(entries) => entries
                .iter_mut()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    fn get_slot(&self, slot: &Slot) -> Option<&Node> {
        match (self, slot) {
            (Node::Map(entries), slot) => {
                let key = slot.key();
                entries
                    .iter()
                    .find(|(k, _)| keys_equal(k, &key))
                    .map(|(_, v)| v)
            }
            (Node::List(items), Slot::Index(i)) => items.get(*i),
            _ => None,
        }
    }

    /// Inserts or replaces a key, keeping its place if it was there.
    pub(crate) fn set(&mut self, key: Value, value: Node) {
        if let Node::Map(entries) = self {
            match entries.iter_mut().find(|(k, _)| keys_equal(k, &key)) {
                Some((_, slot)) => *slot = value,
                None => entries.push((key, value)),
            }
        }
    }

    /// PySOA's `path_put`: writes `value` at `path`, making dicts and lists on the way (a numeric next element
    /// makes a list) and filling a list's gap with empty dicts.
    pub(crate) fn put(&mut self, path: &str, value: Node) -> Result<(), PathError> {
        let Some((slot, rest)) = next_slot(path) else {
            return Ok(());
        };
        let Some(rest) = rest else {
            return match self {
                Node::List(items) => {
                    let Slot::Index(i) = slot else {
                        return Err(PathError(format!("{path}: a list needs a numeric index")));
                    };
                    vivify(items, i, Node::empty_map);
                    items[i] = value;
                    Ok(())
                }
                Node::Map(_) => {
                    self.set(slot.key(), value);
                    Ok(())
                }
                other => Err(PathError(format!(
                    "{path}: cannot put a value inside {}",
                    other.describe()
                ))),
            };
        };
        let list_next = matches!(next_slot(rest), Some((Slot::Index(_), _)));
        let prototype = || {
            if list_next {
                Node::List(Vec::new())
            } else {
                Node::empty_map()
            }
        };
        let child = match self {
            Node::Map(entries) => {
                let key = slot.key();
                match entries.iter().position(|(k, _)| keys_equal(k, &key)) {
                    Some(i) => &mut entries[i].1,
                    None => {
                        entries.push((key, prototype()));
                        &mut entries.last_mut().expect("just pushed").1
                    }
                }
            }
            Node::List(items) => {
                let Slot::Index(i) = slot else {
                    return Err(PathError(format!("{path}: a list needs a numeric index")));
                };
                vivify(items, i, prototype);
                &mut items[i]
            }
            other => {
                return Err(PathError(format!(
                    "{path}: cannot put a value inside {}",
                    other.describe()
                )))
            }
        };
        child.put(rest, value)
    }

    /// PySOA's `path_get`: the node at `path`, if every element exists. As in Python, an index into a string
    /// gives its character, and into bytes the byte's value.
    pub(crate) fn path_get(&self, path: &str) -> Option<Node> {
        let (slot, rest) = next_slot(path)?;
        let child = match (self, &slot) {
            (Node::Value(Value::String(s)), Slot::Index(i)) => {
                Node::str(s.chars().nth(*i)?.to_string())
            }
            (Node::Value(Value::Bytes(b)), Slot::Index(i)) => {
                Node::Value(Value::from(u64::from(*b.get(*i)?)))
            }
            _ => self.get_slot(&slot)?.clone(),
        };
        match rest {
            None => Some(child),
            Some(rest) => child.path_get(rest),
        }
    }

    /// PySOA's `get_all_paths`: the path of every leaf (and, with `allow_blank`, of every empty dict or list).
    pub(crate) fn all_paths(&self, allow_blank: bool) -> Vec<String> {
        let mut out = Vec::new();
        self.collect_paths(String::new(), allow_blank, &mut out);
        out
    }

    fn collect_paths(&self, current: String, allow_blank: bool, out: &mut Vec<String>) {
        if allow_blank && !current.is_empty() && !self.truthy() {
            out.push(current);
            return;
        }
        match self {
            Node::Map(entries) => {
                for (k, v) in entries {
                    let key = match k {
                        Value::String(s)
                            if s.bytes().all(|b| b.is_ascii_digit()) && !s.is_empty() =>
                        {
                            format!("{{{s}}}")
                        }
                        Value::String(s) if s.contains('.') => format!("{{{s}}}"),
                        Value::String(s) => s.to_string(),
                        other => python_str(other),
                    };
                    v.collect_paths(dot_join(&current, &key), allow_blank, out);
                }
            }
            Node::List(items) => {
                for (i, v) in items.iter().enumerate() {
                    v.collect_paths(dot_join(&current, &i.to_string()), allow_blank, out);
                }
            }
            _ => out.push(current),
        }
    }

    /// Python's truth value.
    pub(crate) fn truthy(&self) -> bool {
        match self {
            Node::Map(e) => !e.is_empty(),
            Node::List(i) => !i.is_empty(),
            Node::Value(v) => match v {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Int(i) => i.as_i64() != Some(0),
                Value::Float(f) => *f != 0.0,
                Value::String(s) => !s.is_empty(),
                Value::Bytes(b) | Value::NonUtf8String(b) => !b.is_empty(),
                _ => true,
            },
            _ => true,
        }
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            Node::Map(_) => "a dict".to_owned(),
            Node::List(_) => "a list".to_owned(),
            Node::Value(v) => format!("a {}", v.kind()),
            Node::BigInt(_) => "an integer".to_owned(),
            Node::Any { .. } => "an any-value expectation".to_owned(),
            Node::Regex { .. } => "a regex expectation".to_owned(),
            Node::Error(_) => "an error expectation".to_owned(),
            Node::Mock => "a mock".to_owned(),
        }
    }

    /// Python's `==` between an expected node and an actual one, with `any` and `regex` expectations matching as
    /// PySOA's `AnyValue` and `RegexValue` do.
    pub(crate) fn matches(&self, actual: &Node) -> bool {
        match (self, actual) {
            (
                Node::Any {
                    data_type,
                    permit_none,
                },
                actual,
            ) => any_matches(data_type, *permit_none, actual),
            (expected, Node::Any { .. }) if !matches!(expected, Node::Any { .. }) => {
                actual.matches(expected)
            }
            (Node::Regex { regex, negate, .. }, Node::Value(Value::String(s))) => {
                regex.is_match(s) != *negate
            }
            (Node::Regex { .. }, _) => false,
            (Node::Map(a), Node::Map(b)) => {
                a.len() == b.len()
                    && a.iter().all(|(k, v)| {
                        b.iter()
                            .find(|(bk, _)| keys_equal(k, bk))
                            .is_some_and(|(_, bv)| v.matches(bv))
                    })
            }
            (Node::List(a), Node::List(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.matches(y))
            }
            (Node::Value(a), Node::Value(b)) => values_equal(a, b),
            (Node::BigInt(a), Node::BigInt(b)) => a == b,
            _ => false,
        }
    }

    /// Whether an error expectation is met by a wire error.
    pub(crate) fn matches_error(&self, error: &WireError) -> bool {
        matches!(self, Node::Error(spec) if spec.matches(error))
    }

    /// A Python-like rendering, for failure messages.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        self.render_into(&mut out);
        out
    }

    fn render_into(&self, out: &mut String) {
        match self {
            Node::Map(entries) => {
                out.push('{');
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    out.push_str(&python_repr(k));
                    out.push_str(": ");
                    v.render_into(out);
                }
                out.push('}');
            }
            Node::List(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    v.render_into(out);
                }
                out.push(']');
            }
            Node::Value(v) => out.push_str(&python_repr(v)),
            Node::BigInt(d) => out.push_str(d),
            Node::Any {
                data_type,
                permit_none,
            } => {
                let _ = write!(
                    out,
                    "any {data_type} type value{}",
                    if *permit_none { " or None" } else { "" }
                );
            }
            Node::Regex {
                pattern, negate, ..
            } => {
                let _ = write!(out, "regex{} {pattern}", if *negate { " not" } else { "" });
            }
            Node::Error(spec) => {
                let _ = write!(out, "Error({spec})");
            }
            Node::Mock => out.push_str("<mock>"),
        }
    }
}

fn vivify(items: &mut Vec<Node>, index: usize, prototype: impl Fn() -> Node) {
    while items.len() <= index {
        items.push(prototype());
    }
}

fn dot_join(a: &str, b: &str) -> String {
    if a.is_empty() {
        b.to_owned()
    } else {
        format!("{a}.{b}")
    }
}

/// Dict keys compare as Python's do: `1 == 1`, `"a" == "a"`, never a string with an integer.
fn keys_equal(a: &Value, b: &Value) -> bool {
    values_equal(a, b)
}

fn any_matches(data_type: &str, permit_none: bool, actual: &Node) -> bool {
    let value = match actual {
        Node::Value(Value::Null) => return permit_none,
        Node::Any {
            data_type: other, ..
        } => return other == data_type,
        Node::Map(_) => return data_type == "dict",
        Node::List(_) => return data_type == "list",
        Node::BigInt(_) => return data_type == "int",
        Node::Value(v) => v,
        _ => return false,
    };
    match data_type {
        "str" => matches!(value, Value::String(_)),
        "bytes" => matches!(value, Value::Bytes(_)),
        "int" => matches!(value, Value::Int(_) | Value::Bool(_)),
        "float" => matches!(value, Value::Float(_)),
        "bool" => matches!(value, Value::Bool(_)),
        "decimal" | "Decimal" => matches!(value, Value::Decimal(_)),
        "datetime" => match value {
            Value::DateTime(_) | Value::UtcDateTime(_) => true,
            Value::String(s) => looks_like_datetime(s),
            _ => false,
        },
        "date" => match value {
            Value::Date(_) => true,
            Value::String(s) => looks_like_date(s),
            _ => false,
        },
        "time" => matches!(value, Value::Time(_)),
        "NoneType" => false,
        _ => false,
    }
}

/// PySOA's `DATETIME_RE` (`\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z`), matched at the start.
fn looks_like_datetime(s: &str) -> bool {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z").expect("valid")
    })
    .is_match(s)
}

fn looks_like_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 10
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[5..7].iter().all(u8::is_ascii_digit)
        && b[7] == b'-'
        && b[8..10].iter().all(u8::is_ascii_digit)
}

/// Python's `==` between two plain values: numbers compare by value across int, float, bool and decimal; a naive
/// date-time never equals an aware one.
pub(crate) fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Bytes(x), Value::Bytes(y)) | (Value::NonUtf8String(x), Value::NonUtf8String(y)) => {
            x == y
        }
        (Value::DateTime(x), Value::DateTime(y)) => x == y,
        (Value::UtcDateTime(x), Value::UtcDateTime(y)) => x == y,
        (Value::Date(x), Value::Date(y)) => x == y,
        (Value::Time(x), Value::Time(y)) => x == y,
        (Value::Amount(x), Value::Amount(y)) => x == y,
        (Value::Ext(x), Value::Ext(y)) => x == y,
        (Value::Map(x), Value::Map(y)) => Node::from_value(&Value::Map(x.clone()))
            .matches(&Node::from_value(&Value::Map(y.clone()))),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| values_equal(p, q))
        }
        (x, y) => match (number(x), number(y)) {
            (Some(p), Some(q)) => p.equals(&q),
            _ => false,
        },
    }
}

/// A number of any kind, for Python's cross-type numeric equality.
enum Number {
    Int(i128),
    Float(f64),
    Decimal(std::string::String),
}

fn number(v: &Value) -> Option<Number> {
    Some(match v {
        Value::Bool(b) => Number::Int(i128::from(*b)),
        Value::Int(i) => Number::Int(int_to_i128(*i)),
        Value::Float(f) => Number::Float(*f),
        Value::Decimal(d) => Number::Decimal(d.as_str().to_owned()),
        _ => return None,
    })
}

fn int_to_i128(i: Int) -> i128 {
    match (i.as_i64(), i.as_u64()) {
        (Some(v), _) => i128::from(v),
        (None, Some(v)) => i128::from(v),
        (None, None) => 0,
    }
}

impl Number {
    fn equals(&self, other: &Number) -> bool {
        use Number::{Decimal, Float, Int};
        match (self, other) {
            (Int(a), Int(b)) => a == b,
            (Int(a), Float(b)) | (Float(b), Int(a)) => {
                b.fract() == 0.0 && *b == *a as f64 && (*b as i128) == *a
            }
            (Float(a), Float(b)) => a == b,
            // Python compares decimals with other numbers exactly.
            (Decimal(d), Int(i)) | (Int(i), Decimal(d)) => {
                exact_decimal(d) == exact_decimal(&i.to_string())
            }
            (Decimal(d), Float(f)) | (Float(f), Decimal(d)) => {
                f.is_finite() && exact_decimal(d) == exact_decimal(&format!("{f:.1100}"))
            }
            (Decimal(a), Decimal(b)) => exact_decimal(a) == exact_decimal(b),
        }
    }
}

/// A decimal's exact value in one canonical spelling: sign, digits without leading or trailing zeros, and the
/// power of ten of the last digit. `None` for the non-finite.
fn exact_decimal(text: &str) -> Option<(bool, String, i64)> {
    let text = text.trim();
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(i) => (&unsigned[..i], unsigned[i + 1..].parse::<i64>().ok()?),
        None => (unsigned, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if !(int.bytes().all(|b| b.is_ascii_digit()) && frac.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    let digits = format!("{int}{frac}");
    let mut power = exponent - frac.len() as i64;
    let digits = digits.trim_start_matches('0');
    let trimmed = digits.trim_end_matches('0');
    power += (digits.len() - trimmed.len()) as i64;
    if trimmed.is_empty() {
        return Some((false, String::new(), 0));
    }
    Some((negative, trimmed.to_owned(), power))
}

/// Python's `str()` of a value, as a substitution writes it into a longer string.
pub(crate) fn python_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.to_string(),
        other => python_repr(other),
    }
}

/// Python's `repr()` of a value (close enough for messages and substitutions).
pub(crate) fn python_repr(v: &Value) -> String {
    match v {
        Value::Null => "None".to_owned(),
        Value::Bool(true) => "True".to_owned(),
        Value::Bool(false) => "False".to_owned(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => python_float(*f),
        Value::String(s) => format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'")),
        Value::Bytes(b) | Value::NonUtf8String(b) => {
            let mut out = String::from("b'");
            for &byte in b {
                match byte {
                    b'\\' => out.push_str("\\\\"),
                    b'\'' => out.push_str("\\'"),
                    b'\n' => out.push_str("\\n"),
                    b'\r' => out.push_str("\\r"),
                    b'\t' => out.push_str("\\t"),
                    0x20..=0x7e => out.push(char::from(byte)),
                    _ => {
                        let _ = write!(out, "\\x{byte:02x}");
                    }
                }
            }
            out.push('\'');
            out
        }
        Value::Array(_) | Value::Map(_) => Node::from_value(v).render(),
        Value::DateTime(dt) => format!("datetime({})", iso_datetime(dt.epoch_micros(), false)),
        Value::UtcDateTime(dt) => format!("datetime({})", iso_datetime(dt.epoch_micros(), true)),
        Value::Date(d) => format!("date({d})"),
        Value::Time(t) => format!("time({})", iso_time(t)),
        Value::Decimal(d) => format!("Decimal('{d}')"),
        other => format!("{other:?}"),
    }
}

/// Python's `repr(float)`: the shortest text that reads back, with `.0` on integral values.
pub(crate) fn python_float(f: f64) -> String {
    if f.is_nan() {
        return "nan".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-4..1e16).contains(&abs) {
        let s = format!("{f:e}");
        // Rust writes `1e20` and `1.5e-7`; Python writes `1e+20` and `1.5e-07`.
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let exp: i32 = exp.parse().unwrap_or(0);
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exp.abs());
    }
    let s = format!("{f}");
    if s.contains('.') {
        s
    } else {
        format!("{s}.0")
    }
}

/// Python's `datetime.isoformat()`, from microseconds since the epoch.
pub(crate) fn iso_datetime(micros: i64, aware: bool) -> String {
    let dt = rsoa_protocol::DateTime::from_epoch_micros(micros).expect("a valid date-time");
    format!(
        "{}T{}{}",
        dt.date(),
        iso_time(&dt.time()),
        if aware { "+00:00" } else { "" }
    )
}

/// Python's `time.isoformat()`: microseconds only when there are some.
pub(crate) fn iso_time(t: &rsoa_protocol::Time) -> String {
    let base = format!("{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second());
    if t.microsecond() == 0 {
        base
    } else {
        format!("{base}.{:06}", t.microsecond())
    }
}
