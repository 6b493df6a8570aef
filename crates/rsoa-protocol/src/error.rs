//! The error of this crate: a value that does not fit where it was put.

use std::fmt;

use crate::ErrorCode;

/// What kind of problem a [`ValueError`] reports; each maps onto a PySOA error code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A required key is absent (`MISSING`).
    Missing,
    /// Keys are present that are not allowed (`UNKNOWN`).
    Unknown,
    /// A value has the wrong type or is out of range (`INVALID`).
    Invalid,
}

/// A value that could not be built, converted or deserialized, with the field where it happened.
///
/// `field` uses PySOA's pointer syntax (`items.0.name`), so a server turns this error straight into a wire error;
/// see [`ValueError::code`].
///
/// ```
/// use rsoa_protocol::{from_value, ErrorKind, Value};
///
/// #[derive(serde::Deserialize, Debug)]
/// struct Item { name: String }
/// #[derive(serde::Deserialize, Debug)]
/// struct Order { items: Vec<Item> }
///
/// let value: Value = [("items", Value::Array(vec![[("name", 5)].into_iter().collect()]))].into_iter().collect();
/// let err = from_value::<Order>(value).unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::Invalid);
/// assert_eq!(err.field(), Some("items.0.name"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValueError {
    kind: ErrorKind,
    field: Option<String>,
    message: String,
}

impl ValueError {
    /// A wrong value.
    pub fn invalid(message: impl Into<String>) -> ValueError {
        ValueError {
            kind: ErrorKind::Invalid,
            field: None,
            message: message.into(),
        }
    }

    /// A required key that is absent; the message is PySOA's `Missing key: <key>`.
    pub fn missing(key: &str) -> ValueError {
        ValueError {
            kind: ErrorKind::Missing,
            field: None,
            message: format!("Missing key: {key}"),
        }
    }

    /// Keys that are not allowed; the message is PySOA's `Extra keys present: <sorted keys>`.
    pub fn unknown<S: AsRef<str>>(keys: &[S]) -> ValueError {
        let mut keys: Vec<&str> = keys.iter().map(AsRef::as_ref).collect();
        keys.sort_unstable();
        ValueError {
            kind: ErrorKind::Unknown,
            field: None,
            message: format!("Extra keys present: {}", keys.join(", ")),
        }
    }

    /// The same error at a field pointer such as `items.0.name`; an empty pointer means the top level.
    #[must_use]
    pub fn with_field(mut self, field: impl Into<String>) -> ValueError {
        let field = field.into();
        self.field = if field.is_empty() { None } else { Some(field) };
        self
    }

    /// What kind of problem this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Where the problem is, as a PySOA field pointer; `None` at the top level.
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// The message, without the field.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The PySOA error code for this kind: `MISSING`, `UNKNOWN` or `INVALID`.
    pub fn code(&self) -> ErrorCode {
        match self.kind {
            ErrorKind::Missing => ErrorCode::MISSING,
            ErrorKind::Unknown => ErrorCode::UNKNOWN,
            ErrorKind::Invalid => ErrorCode::INVALID,
        }
    }
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{field}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ValueError {}

impl serde::de::Error for ValueError {
    fn custom<T: fmt::Display>(msg: T) -> ValueError {
        ValueError::invalid(msg.to_string())
    }

    fn missing_field(field: &'static str) -> ValueError {
        ValueError::missing(field)
    }

    fn unknown_field(field: &str, _expected: &'static [&'static str]) -> ValueError {
        ValueError::unknown(&[field])
    }
}

impl serde::ser::Error for ValueError {
    fn custom<T: fmt::Display>(msg: T) -> ValueError {
        ValueError::invalid(msg.to_string())
    }
}

/// Turns a `serde_path_to_error` path and the inner error into one [`ValueError`] with a PySOA pointer.
pub(crate) fn with_path(path: &serde_path_to_error::Path, inner: ValueError) -> ValueError {
    use serde_path_to_error::Segment;

    let mut pointer = String::new();
    let mut push = |part: &dyn fmt::Display| {
        if !pointer.is_empty() {
            pointer.push('.');
        }
        pointer.push_str(&part.to_string());
    };
    let mut segments: Vec<&Segment> = path.iter().collect();
    if inner.kind == ErrorKind::Unknown {
        // serde_path_to_error records the offending key itself; PySOA points at the map that holds it.
        segments.pop();
    }
    for segment in segments {
        match segment {
            Segment::Seq { index } => push(index),
            Segment::Map { key } => push(key),
            Segment::Enum { .. } | Segment::Unknown => {}
        }
    }
    if inner.kind == ErrorKind::Missing {
        // The pointer of a missing key names the key itself, as PySOA's does.
        if let Some(key) = inner.message.strip_prefix("Missing key: ") {
            push(&key);
        }
    }
    if inner.field.is_some() {
        // A nested conversion already placed the error; keep the deepest location.
        let inner_field = inner.field.clone().unwrap_or_default();
        return inner.with_field(if pointer.is_empty() {
            inner_field
        } else {
            format!("{pointer}.{inner_field}")
        });
    }
    inner.with_field(pointer)
}
