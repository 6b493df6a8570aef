//! Request validation and introspection the way PySOA's Conformity does them.
//!
//! A PySOA action declares its request as a Conformity schema; the server checks every body against it before the
//! action runs, reports **every** error at once (code `INVALID`, `MISSING` or `UNKNOWN`, Conformity's message, the
//! field's dotted pointer), and `introspect` reports the schema in Conformity's description format. rsoa does the
//! same from a schema in that description format: [`check`] validates a body against one, and [`describe`] writes
//! one from a Rust type with [`schemars`]' `JsonSchema` derive, which reads serde's attributes (`rename`,
//! `deny_unknown_fields`, `default`, `Option`) and schemars' constraints:
//!
//! | Rust | Conformity |
//! |---|---|
//! | a struct (`deny_unknown_fields`: no extra keys) | `Dictionary` (`Option` and `#[serde(default)]` fields optional) |
//! | `i64`, `u32`, … (`#[schemars(range(min = 0))]`: `gte`, `lte`) | `Integer` (unsigned: `gte=0`) |
//! | `f64`, `f32` | `Float` (an integer is a float too, as in Conformity) |
//! | `String` (`#[schemars(length(min = 1))]`; `#[schemars(extend("allow_blank" = false))]`) | `UnicodeString` |
//! | `bool` | `Boolean` |
//! | `Vec<T>` (`length` constrains the items) | `List` |
//! | `HashMap<String, T>`, `BTreeMap` | `SchemalessDictionary` |
//! | `Option<T>` | `Nullable` |
//! | a unit-variant enum | `Constant` |
//! | an untagged enum | `Any` |
//! | doc comments | `description` |
//!
//! A schema type this module does not know (a JSON Schema written by hand, say) is not checked: the body then
//! goes to serde as it would without a schema.
//!
//! ```
//! use rsoa_protocol::Value;
//! use rsoa_server::conformity;
//!
//! /// The number to square.
//! #[derive(serde::Deserialize, schemars::JsonSchema)]
//! #[serde(deny_unknown_fields)]
//! struct Square {
//!     #[schemars(range(min = 0))]
//!     number: i64,
//! }
//!
//! let schema = conformity::describe::<Square>();
//! let body: Value = [("number", Value::from(-2)), ("zz", Value::from(1)), ("aa", Value::from(2))]
//!     .into_iter()
//!     .collect();
//! let errors: Vec<_> = conformity::check(&schema, &body)
//!     .into_iter()
//!     .map(|e| (e.code.to_string(), e.message, e.field))
//!     .collect();
//! assert_eq!(
//!     errors,
//!     [
//!         ("INVALID".to_owned(), "Value not >= 0".to_owned(), Some("number".to_owned())),
//!         ("UNKNOWN".to_owned(), "Extra keys present: aa, zz".to_owned(), None),
//!     ]
//! );
//! ```

use std::cmp::Ordering;

use rsoa_protocol::{Error, ErrorCode, Map, Value};
use schemars::JsonSchema;

/// Every error in `body` against the Conformity description `schema`, in Conformity's order: a dictionary's keys
/// in the order of its `contents`, then its extra keys; each a caller error whose field is the dotted pointer.
/// To check many bodies against one schema, read it once with [`Schema::new`].
pub fn check(schema: &Value, body: &Value) -> Vec<Error> {
    Schema::new(schema).check(body)
}

/// The Conformity description of a request type: what `introspect` reports and what [`check`] validates against.
pub fn describe<T: JsonSchema>() -> Value {
    let schema = schemars::generate::SchemaSettings::draft2020_12()
        .with(|s| s.inline_subschemas = true)
        .into_generator()
        .into_root_schema_for::<T>();
    from_json_schema(schema.as_value())
}

/// A Conformity description from a JSON Schema as [`schemars`] writes it (see the module's table); what has no
/// Conformity counterpart becomes `Anything`.
pub fn from_json_schema(schema: &serde_json::Value) -> Value {
    Converter { root: schema }.field(schema, 0)
}

/// A Conformity description read once, to check bodies against.
#[derive(Clone, Debug)]
pub struct Schema(Node);

#[derive(Clone, Debug)]
enum Node {
    Dictionary {
        /// Key, whether it is optional, and its field.
        contents: Vec<(Value, bool, Node)>,
        allow_extra_keys: bool,
    },
    SchemalessDictionary {
        key_type: Option<Box<Node>>,
        value_type: Option<Box<Node>>,
        min_length: Option<usize>,
        max_length: Option<usize>,
    },
    List {
        contents: Option<Box<Node>>,
        min_length: Option<usize>,
        max_length: Option<usize>,
    },
    Number {
        float: bool,
        /// `(bound, holds, word)`: `gt`, `lt`, `gte`, `lte`, in that order, as Conformity checks them.
        bounds: Vec<(Value, fn(Ordering) -> bool, &'static str)>,
    },
    Text {
        bytes: bool,
        min_length: Option<usize>,
        max_length: Option<usize>,
        allow_blank: bool,
    },
    Boolean,
    Null,
    Nullable(Option<Box<Node>>),
    Any(Vec<Node>),
    All(Vec<Node>),
    Constant(Vec<Value>, String),
    Temporal(&'static str),
    Decimal,
    /// `anything`, `hashable`, or a type this module does not check.
    Unchecked,
}

impl Schema {
    /// Reads a Conformity description; what it does not know is not checked.
    pub fn new(description: &Value) -> Schema {
        Schema(Node::read(description))
    }

    /// Every error in `body`; see [`check`].
    pub fn check(&self, body: &Value) -> Vec<Error> {
        let mut errors = Vec::new();
        self.0.errors(body, &mut Vec::new(), &mut errors);
        errors
    }
}

impl Node {
    fn read(schema: &Value) -> Node {
        let child = |key: &str| schema.get(key).map(|s| Box::new(Node::read(s)));
        let length = |key: &str| {
            schema
                .get(key)
                .and_then(Value::as_u64)
                .and_then(|n| usize::try_from(n).ok())
        };
        let list = |key: &str| {
            schema
                .get(key)
                .and_then(Value::as_array)
                .map_or(&[][..], Vec::as_slice)
        };
        let Some(kind) = schema.get("type").and_then(Value::as_str) else {
            return Node::Unchecked;
        };
        match kind {
            "dictionary" => {
                let optional = list("optional_keys");
                let contents = schema
                    .get("contents")
                    .and_then(Value::as_map)
                    .map_or(&[][..], Map::as_slice)
                    .iter()
                    .map(|(key, field)| (key.clone(), optional.contains(key), Node::read(field)))
                    .collect();
                Node::Dictionary {
                    contents,
                    allow_extra_keys: schema.get("allow_extra_keys").and_then(Value::as_bool)
                        == Some(true),
                }
            }
            "schemaless_dictionary" => Node::SchemalessDictionary {
                key_type: child("key_type"),
                value_type: child("value_type"),
                min_length: length("min_length"),
                max_length: length("max_length"),
            },
            "list" | "sequence" => Node::List {
                contents: child("contents"),
                min_length: length("min_length"),
                max_length: length("max_length"),
            },
            "integer" | "float" => {
                let checks: [(&str, fn(Ordering) -> bool, &'static str); 4] = [
                    ("gt", Ordering::is_gt, ">"),
                    ("lt", Ordering::is_lt, "<"),
                    ("gte", Ordering::is_ge, ">="),
                    ("lte", Ordering::is_le, "<="),
                ];
                let bounds = checks
                    .into_iter()
                    .filter_map(|(key, holds, word)| {
                        let bound = schema.get(key).filter(|b| !b.is_null())?;
                        Some((bound.clone(), holds, word))
                    })
                    .collect();
                Node::Number {
                    float: kind == "float",
                    bounds,
                }
            }
            "unicode" | "bytes" => Node::Text {
                bytes: kind == "bytes",
                min_length: length("min_length"),
                max_length: length("max_length"),
                allow_blank: schema.get("allow_blank").and_then(Value::as_bool) != Some(false),
            },
            "boolean" => Node::Boolean,
            "null" => Node::Null,
            "nullable" => Node::Nullable(child("nullable")),
            "any" => Node::Any(list("options").iter().map(Node::read).collect()),
            "all" => Node::All(list("requirements").iter().map(Node::read).collect()),
            "constant" => {
                let values = list("values").to_vec();
                let mut shown: Vec<String> = values.iter().map(python_repr).collect();
                shown.sort_unstable();
                let message = match &shown[..] {
                    [one] => format!("Value is not {one}"),
                    _ => format!("Value is not one of: {}", shown.join(", ")),
                };
                Node::Constant(values, message)
            }
            "datetime" => Node::Temporal("datetime"),
            "date" => Node::Temporal("date"),
            "time" => Node::Temporal("time"),
            "decimal" => Node::Decimal,
            _ => Node::Unchecked,
        }
    }

    fn errors<'s>(&'s self, value: &Value, path: &mut Vec<Step<'s>>, out: &mut Vec<Error>) {
        let invalid = |out: &mut Vec<Error>, message: String, path: &[Step<'_>]| {
            push(out, ErrorCode::INVALID, message, path);
        };
        match self {
            Node::Dictionary {
                contents,
                allow_extra_keys,
            } => {
                let Value::Map(map) = value else {
                    return invalid(out, "Not a dict".to_owned(), path);
                };
                let mut found = 0;
                for (key, optional, field) in contents {
                    let name = key.as_str().unwrap_or_default();
                    match map.get_value(key) {
                        None if *optional => {}
                        None => {
                            path.push(Step::Key(name));
                            push(
                                out,
                                ErrorCode::MISSING,
                                format!("Missing key: {name}"),
                                path,
                            );
                            path.pop();
                        }
                        Some(item) => {
                            found += 1;
                            path.push(Step::Key(name));
                            field.errors(item, path, out);
                            path.pop();
                        }
                    }
                }
                if *allow_extra_keys || found == map.len() {
                    return;
                }
                let mut extra: Vec<String> = map
                    .keys()
                    .filter(|key| !contents.iter().any(|(known, _, _)| known == *key))
                    .map(python_str)
                    .collect();
                if !extra.is_empty() {
                    extra.sort_unstable();
                    let message = format!("Extra keys present: {}", extra.join(", "));
                    push(out, ErrorCode::UNKNOWN, message, path);
                }
            }
            Node::SchemalessDictionary {
                key_type,
                value_type,
                min_length,
                max_length,
            } => {
                let Value::Map(map) = value else {
                    return invalid(out, "Not a dict".to_owned(), path);
                };
                if let Some(max) = max_length.filter(|&max| map.len() > max) {
                    invalid(out, format!("Dict contains more than {max} value(s)"), path);
                } else if let Some(min) = min_length.filter(|&min| map.len() < min) {
                    invalid(
                        out,
                        format!("Dict contains fewer than {min} value(s)"),
                        path,
                    );
                }
                if key_type.is_none() && value_type.is_none() {
                    return;
                }
                for (key, item) in map.iter() {
                    path.push(Step::Owned(python_str(key)));
                    if let Some(key_type) = key_type {
                        key_type.errors(key, path, out);
                    }
                    if let Some(value_type) = value_type {
                        value_type.errors(item, path, out);
                    }
                    path.pop();
                }
            }
            Node::List {
                contents,
                min_length,
                max_length,
            } => {
                let Value::Array(items) = value else {
                    return invalid(out, "Not a list".to_owned(), path);
                };
                if let Some(max) = max_length.filter(|&max| items.len() > max) {
                    invalid(out, format!("List is longer than {max}"), path);
                } else if let Some(min) = min_length.filter(|&min| items.len() < min) {
                    invalid(out, format!("List is shorter than {min}"), path);
                }
                if let Some(contents) = contents {
                    for (i, item) in items.iter().enumerate() {
                        path.push(Step::Index(i));
                        contents.errors(item, path, out);
                        path.pop();
                    }
                }
            }
            Node::Number { float, bounds } => {
                let number = match value {
                    Value::Int(_) => true,
                    Value::Float(_) => *float,
                    _ => false,
                };
                if !number {
                    let noun = if *float { "a float" } else { "an integer" };
                    return invalid(out, format!("Not {noun}"), path);
                }
                for (bound, holds, word) in bounds {
                    if compare(value, bound).is_some_and(|o| !holds(o)) {
                        invalid(out, format!("Value not {word} {}", python_str(bound)), path);
                    }
                }
            }
            Node::Text {
                bytes,
                min_length,
                max_length,
                allow_blank,
            } => {
                let measured = match (bytes, value) {
                    (false, Value::String(s)) => Some((s.chars().count(), s.trim().is_empty())),
                    (true, Value::Bytes(b)) => Some((b.len(), b.trim_ascii().is_empty())),
                    _ => None,
                };
                let Some((len, blank)) = measured else {
                    let noun = if *bytes {
                        "byte string"
                    } else {
                        "unicode string"
                    };
                    return invalid(out, format!("Not a {noun}"), path);
                };
                if let Some(min) = min_length.filter(|&min| len < min) {
                    invalid(
                        out,
                        format!("String must have a length of at least {min}"),
                        path,
                    );
                } else if let Some(max) = max_length.filter(|&max| len > max) {
                    invalid(
                        out,
                        format!("String must have a length no more than {max}"),
                        path,
                    );
                } else if blank && !allow_blank {
                    invalid(out, "String cannot be blank".to_owned(), path);
                }
            }
            Node::Boolean if !matches!(value, Value::Bool(_)) => {
                invalid(out, "Not a boolean".to_owned(), path);
            }
            Node::Null if !value.is_null() => invalid(out, "Value is not null".to_owned(), path),
            Node::Nullable(Some(inner)) if !value.is_null() => inner.errors(value, path, out),
            Node::Any(options) => {
                let mut all = Vec::new();
                for option in options {
                    let before = all.len();
                    option.errors(value, path, &mut all);
                    if all.len() == before {
                        return;
                    }
                }
                out.extend(all);
            }
            Node::All(requirements) => {
                for requirement in requirements {
                    requirement.errors(value, path, out);
                }
            }
            Node::Constant(values, message) if !values.iter().any(|v| python_eq(v, value)) => {
                push(out, ErrorCode::UNKNOWN, message.clone(), path);
            }
            Node::Temporal(kind) => {
                let fits = matches!(
                    (*kind, value),
                    ("datetime", Value::DateTime(_) | Value::UtcDateTime(_))
                        | ("date", Value::Date(_))
                        | ("time", Value::Time(_))
                );
                if !fits {
                    invalid(out, format!("Not a datetime.{kind} instance"), path);
                }
            }
            Node::Decimal if !matches!(value, Value::Decimal(_)) => {
                invalid(out, "Not a decimal".to_owned(), path);
            }
            _ => {}
        }
    }
}

/// A step of the pointer to a value: a key of the schema's (borrowed, so that a valid body costs no allocation), a
/// key of the body's, or a list index.
enum Step<'s> {
    Key(&'s str),
    Owned(String),
    Index(usize),
}

/// One caller error at `path` (none at the top), the steps joined with dots as Conformity's pointers are.
fn push(out: &mut Vec<Error>, code: ErrorCode, message: String, path: &[Step<'_>]) {
    let mut error = Error::new(code, message).caller_error(true);
    if !path.is_empty() {
        let steps: Vec<String> = path
            .iter()
            .map(|step| match step {
                Step::Key(key) => (*key).to_owned(),
                Step::Owned(key) => key.clone(),
                Step::Index(i) => i.to_string(),
            })
            .collect();
        error = error.with_field(steps.join("."));
    }
    out.push(error);
}

/// A number against a bound: exactly between integers, as floats otherwise.
fn compare(value: &Value, bound: &Value) -> Option<Ordering> {
    match (value, bound) {
        (Value::Int(a), Value::Int(b)) => Some(wide(*a).cmp(&wide(*b))),
        _ => value.as_f64()?.partial_cmp(&bound.as_f64()?),
    }
}

fn wide(n: rsoa_protocol::Int) -> i128 {
    n.as_i64()
        .map_or_else(|| i128::from(n.as_u64().unwrap_or(u64::MAX)), i128::from)
}

/// Python's `==` between two decoded values: `1 == 1.0 == True`.
fn python_eq(a: &Value, b: &Value) -> bool {
    let number = |v: &Value| match v {
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        other => other.as_f64(),
    };
    match (number(a), number(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// Python's `str()` of a scalar, as Conformity's messages print keys and bounds.
fn python_str(value: &Value) -> String {
    match value {
        Value::String(s) => s.to_string(),
        other => python_repr(other),
    }
}

/// Python's `repr()` of a scalar, as Conformity's `Constant` quotes its values.
fn python_repr(value: &Value) -> String {
    match value {
        Value::Null => "None".to_owned(),
        Value::Bool(true) => "True".to_owned(),
        Value::Bool(false) => "False".to_owned(),
        Value::Int(n) => n.to_string(),
        Value::Float(f) if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e16 => format!("{f:.1}"),
        Value::Float(f) => format!("{f:?}"),
        Value::String(s) => format!("\"{s}\""),
        other => format!("{other:?}"),
    }
}

/// JSON Schema (as schemars writes it) to a Conformity description, with keys in Conformity's order.
struct Converter<'a> {
    root: &'a serde_json::Value,
}

/// Nesting beyond this (a recursive type) is described as `Anything`.
const DEPTH: usize = 32;

impl Converter<'_> {
    fn field(&self, schema: &serde_json::Value, depth: usize) -> Value {
        let schema = self.resolve(schema);
        let description = schema
            .get("description")
            .and_then(serde_json::Value::as_str);
        let anything = || conformity("anything", [], description);
        if depth > DEPTH {
            return anything();
        }
        let Some(object) = schema.as_object() else {
            return anything();
        };
        if let Some(value) = object.get("const") {
            return conformity(
                "constant",
                [("values", Value::Array(vec![json_value(value)]))],
                description,
            );
        }
        if let Some(serde_json::Value::Array(values)) = object.get("enum") {
            let mut values: Vec<Value> = values.iter().map(json_value).collect();
            values.sort_by_key(python_str);
            return conformity("constant", [("values", Value::Array(values))], description);
        }
        for key in ["anyOf", "oneOf"] {
            if let Some(serde_json::Value::Array(options)) = object.get(key) {
                let null =
                    |o: &serde_json::Value| o.get("type").and_then(|t| t.as_str()) == Some("null");
                let rest: Vec<&serde_json::Value> = options.iter().filter(|o| !null(o)).collect();
                let inner = match &rest[..] {
                    [one] => self.field(one, depth + 1),
                    _ => {
                        let options = rest.iter().map(|o| self.field(o, depth + 1)).collect();
                        conformity("any", [("options", Value::Array(options))], None)
                    }
                };
                return if rest.len() < options.len() {
                    conformity("nullable", [("nullable", inner)], description)
                } else {
                    with_description(inner, description)
                };
            }
        }
        match object.get("type") {
            Some(serde_json::Value::Array(types)) => {
                let rest: Vec<&serde_json::Value> = types
                    .iter()
                    .filter(|t| t.as_str() != Some("null"))
                    .collect();
                let mut single = object.clone();
                single.remove("description");
                let inner = match &rest[..] {
                    [one] => {
                        single.insert("type".to_owned(), (*one).clone());
                        self.field(&serde_json::Value::Object(single), depth + 1)
                    }
                    _ => anything(),
                };
                if rest.len() < types.len() {
                    conformity("nullable", [("nullable", inner)], description)
                } else {
                    with_description(inner, description)
                }
            }
            Some(serde_json::Value::String(kind)) => self.typed(kind, object, description, depth),
            _ => anything(),
        }
    }

    fn typed(
        &self,
        kind: &str,
        object: &serde_json::Map<String, serde_json::Value>,
        description: Option<&str>,
        depth: usize,
    ) -> Value {
        let number = |key: &str| object.get(key).map(json_value);
        let count = |key: &str| object.get(key).map(json_value);
        let closed = object.get("additionalProperties") == Some(&serde_json::Value::Bool(false));
        match kind {
            "integer" | "number" => {
                let mut map = Map::new();
                map.push(
                    "type",
                    if kind == "integer" {
                        "integer"
                    } else {
                        "float"
                    },
                );
                push_some(&mut map, "description", description.map(Value::from));
                push_some(&mut map, "gt", number("exclusiveMinimum"));
                push_some(&mut map, "gte", number("minimum"));
                push_some(&mut map, "lt", number("exclusiveMaximum"));
                push_some(&mut map, "lte", number("maximum"));
                Value::Map(map)
            }
            "string" => {
                let mut map = Map::new();
                map.push("type", "unicode");
                push_some(&mut map, "description", description.map(Value::from));
                push_some(&mut map, "min_length", count("minLength"));
                push_some(&mut map, "max_length", count("maxLength"));
                if object.get("allow_blank") == Some(&serde_json::Value::Bool(false)) {
                    map.push("allow_blank", false);
                }
                Value::Map(map)
            }
            "boolean" => conformity("boolean", [], description),
            "null" => conformity("null", [], description),
            "array" => {
                let contents = object.get("items").map_or_else(
                    || conformity("anything", [], None),
                    |items| self.field(items, depth + 1),
                );
                let mut map = Map::new();
                map.push("type", "list");
                map.push("contents", contents);
                push_some(&mut map, "max_length", count("maxItems"));
                push_some(&mut map, "min_length", count("minItems"));
                push_some(&mut map, "description", description.map(Value::from));
                Value::Map(map)
            }
            "object" => match object
                .get("properties")
                .and_then(serde_json::Value::as_object)
            {
                // A struct (an empty one has no properties, and no other keys allowed).
                properties if properties.is_some() || closed => {
                    let empty = serde_json::Map::new();
                    let properties = properties.unwrap_or(&empty);
                    let required: Vec<&str> = object
                        .get("required")
                        .and_then(serde_json::Value::as_array)
                        .map(|r| r.iter().filter_map(serde_json::Value::as_str).collect())
                        .unwrap_or_default();
                    let mut contents = Map::with_capacity(properties.len());
                    let mut optional = Vec::new();
                    for (key, property) in properties {
                        contents.push(key.as_str(), self.field(property, depth + 1));
                        if !required.contains(&key.as_str()) {
                            optional.push(key.as_str());
                        }
                    }
                    optional.sort_unstable();
                    let allow_extra = !closed;
                    let mut map = Map::new();
                    map.push("type", "dictionary");
                    map.push("contents", contents);
                    map.push(
                        "optional_keys",
                        Value::Array(optional.into_iter().map(Value::from).collect()),
                    );
                    map.push("allow_extra_keys", allow_extra);
                    push_some(&mut map, "description", description.map(Value::from));
                    Value::Map(map)
                }
                _ => {
                    let mut map = Map::new();
                    map.push("type", "schemaless_dictionary");
                    push_some(&mut map, "max_length", count("maxProperties"));
                    push_some(&mut map, "min_length", count("minProperties"));
                    push_some(&mut map, "description", description.map(Value::from));
                    if let Some(values) =
                        object.get("additionalProperties").filter(|v| v.is_object())
                    {
                        map.push("value_type", self.field(values, depth + 1));
                    }
                    Value::Map(map)
                }
            },
            _ => conformity("anything", [], description),
        }
    }

    /// Follows a local `$ref` (left by schemars for recursive types).
    fn resolve<'s>(&'s self, schema: &'s serde_json::Value) -> &'s serde_json::Value {
        let mut schema = schema;
        for _ in 0..DEPTH {
            let Some(reference) = schema.get("$ref").and_then(serde_json::Value::as_str) else {
                break;
            };
            match reference
                .strip_prefix('#')
                .and_then(|pointer| self.root.pointer(pointer))
            {
                Some(target) => schema = target,
                None => break,
            }
        }
        schema
    }
}

fn conformity<const N: usize>(
    kind: &str,
    fields: [(&str, Value); N],
    description: Option<&str>,
) -> Value {
    let mut map = Map::with_capacity(N + 2);
    map.push("type", kind);
    for (key, value) in fields {
        map.push(key, value);
    }
    push_some(&mut map, "description", description.map(Value::from));
    Value::Map(map)
}

fn with_description(mut field: Value, description: Option<&str>) -> Value {
    if let (Some(map), Some(description)) = (field.as_map_mut(), description) {
        map.insert("description", description);
    }
    field
}

fn push_some(map: &mut Map, key: &str, value: Option<Value>) {
    if let Some(value) = value {
        map.push(key, value);
    }
}

/// A JSON value from a schema (a bound, a constant) as a decoded value.
fn json_value(value: &serde_json::Value) -> Value {
    match value {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => n
            .as_i64()
            .map(Value::from)
            .or_else(|| n.as_u64().map(Value::from))
            .unwrap_or_else(|| Value::from(n.as_f64().unwrap_or(f64::NAN))),
        serde_json::Value::String(s) => Value::from(s.as_str()),
        serde_json::Value::Array(items) => Value::Array(items.iter().map(json_value).collect()),
        serde_json::Value::Object(map) => Value::Map(
            map.iter()
                .map(|(k, v)| (Value::from(k.as_str()), json_value(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn json(value: serde_json::Value) -> Value {
        json_value(&value)
    }

    /// `(code, message, field)` of each error, for comparing with what Conformity 1.28 reports.
    fn found(schema: &Value, body: serde_json::Value) -> Vec<(String, String, Option<String>)> {
        check(schema, &json(body))
            .into_iter()
            .map(|e| (e.code.to_string(), e.message, e.field))
            .collect()
    }

    fn error(code: &str, message: &str, field: Option<&str>) -> (String, String, Option<String>) {
        (
            code.to_owned(),
            message.to_owned(),
            field.map(str::to_owned),
        )
    }

    /// An order line.
    #[derive(serde::Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Order {
        /// How many
        #[schemars(range(min = 1, max = 10))]
        quantity: i64,
        #[schemars(length(min = 1), extend("allow_blank" = false))]
        sku: String,
        price: f64,
        gift: bool,
        note: Option<String>,
        #[serde(default)]
        tags: Vec<String>,
        size: Size,
        extra: BTreeMap<String, i64>,
        address: Address,
    }

    #[derive(serde::Deserialize, JsonSchema)]
    #[serde(rename_all = "lowercase")]
    #[allow(dead_code)]
    enum Size {
        Small,
        Large,
    }

    #[derive(serde::Deserialize, JsonSchema)]
    #[allow(dead_code)]
    struct Address {
        city: String,
    }

    #[test]
    fn a_type_is_described_in_conformitys_format() {
        let described = serde_json::to_value(describe::<Order>()).unwrap();
        assert_eq!(
            described,
            serde_json::json!({
                "type": "dictionary",
                "contents": {
                    "quantity": {"type": "integer", "description": "How many", "gte": 1, "lte": 10},
                    "sku": {"type": "unicode", "min_length": 1, "allow_blank": false},
                    "price": {"type": "float"},
                    "gift": {"type": "boolean"},
                    "note": {"type": "nullable", "nullable": {"type": "unicode"}},
                    "tags": {"type": "list", "contents": {"type": "unicode"}},
                    "size": {"type": "constant", "values": ["large", "small"]},
                    "extra": {"type": "schemaless_dictionary", "value_type": {"type": "integer"}},
                    "address": {
                        "type": "dictionary",
                        "contents": {"city": {"type": "unicode"}},
                        "optional_keys": [],
                        "allow_extra_keys": true
                    }
                },
                "optional_keys": ["note", "tags"],
                "allow_extra_keys": false,
                "description": "An order line."
            })
        );
    }

    #[test]
    fn every_error_is_reported_in_conformitys_words_and_order() {
        let schema = describe::<Order>();
        let body = serde_json::json!({
            "zz": 1,
            "quantity": 0,
            "sku": " ",
            "price": "1.5",
            "gift": 1,
            "note": 5,
            "tags": ["a", 2],
            "size": "medium",
            "extra": {"a": "x"},
            "aa": 2
        });
        assert_eq!(
            found(&schema, body),
            [
                error("INVALID", "Value not >= 1", Some("quantity")),
                error("INVALID", "String cannot be blank", Some("sku")),
                error("INVALID", "Not a float", Some("price")),
                error("INVALID", "Not a boolean", Some("gift")),
                error("INVALID", "Not a unicode string", Some("note")),
                error("INVALID", "Not a unicode string", Some("tags.1")),
                error(
                    "UNKNOWN",
                    "Value is not one of: \"large\", \"small\"",
                    Some("size")
                ),
                error("INVALID", "Not an integer", Some("extra.a")),
                error("MISSING", "Missing key: address", Some("address")),
                error("UNKNOWN", "Extra keys present: aa, zz", None),
            ]
        );
    }

    #[test]
    fn valid_bodies_pass_and_integers_are_floats_too() {
        let schema = describe::<Order>();
        let body = serde_json::json!({
            "quantity": 10, "sku": "A-1", "price": 3, "gift": false, "note": null, "size": "small",
            "extra": {}, "address": {"city": "Paris", "zip": "75001"}
        });
        assert_eq!(found(&schema, body), []);
        assert_eq!(
            found(&schema, serde_json::json!([])),
            [error("INVALID", "Not a dict", None)]
        );
    }

    #[test]
    fn bounds_lengths_and_constants_read_as_conformity_writes_them() {
        let schema = json(serde_json::json!({
            "type": "dictionary",
            "contents": {
                "n": {"type": "integer", "gt": 0, "lt": 5},
                "f": {"type": "float", "lte": 1.5},
                "s": {"type": "unicode", "max_length": 2},
                "l": {"type": "list", "contents": {"type": "anything"}, "min_length": 2},
                "c": {"type": "constant", "values": [1]},
                "a": {"type": "any", "options": [{"type": "integer"}, {"type": "unicode"}]},
                "j": {"type": "a JSON Schema keyword, not checked"}
            },
            "optional_keys": [],
            "allow_extra_keys": false
        }));
        let body = serde_json::json!({
            "n": 5, "f": 2, "s": "abc", "l": [1], "c": 2, "a": true, "j": null
        });
        assert_eq!(
            found(&schema, body),
            [
                error("INVALID", "Value not < 5", Some("n")),
                error("INVALID", "Value not <= 1.5", Some("f")),
                error(
                    "INVALID",
                    "String must have a length no more than 2",
                    Some("s")
                ),
                error("INVALID", "List is shorter than 2", Some("l")),
                error("UNKNOWN", "Value is not 1", Some("c")),
                error("INVALID", "Not an integer", Some("a")),
                error("INVALID", "Not a unicode string", Some("a")),
            ]
        );
        // Python's equality: True == 1.
        let body =
            serde_json::json!({"n": 1, "f": 1, "s": "", "l": [1, 2], "c": true, "a": "x", "j": 1});
        assert_eq!(found(&schema, body), []);
    }
}
