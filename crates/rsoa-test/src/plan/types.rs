//! The data types of plan values (`input int: …`, `expect datetime: …`), date-time expressions, and `[[…]]`
//! substitutions.

use base64::Engine as _;
use rsoa_protocol::{Date, DateTime, Time, UtcDateTime, Value};

use super::node::{python_str, Node};

/// Every data type name, as PySOA's grammar lists them (the longest first where one is a prefix of another, as
/// pyparsing's `oneOf` matches).
pub(crate) const DATA_TYPES: &[&str] = &[
    "base64_bytes",
    "bool",
    "bytes",
    "datetime",
    "date",
    "decimal",
    "emptydict",
    "emptylist",
    "emptystr",
    "encoded_ascii",
    "encoded_unicode",
    "float",
    "int",
    "none",
    "None",
    "not regex",
    "regex",
    "str",
    "time",
];

const MICROS_PER_SECOND: i64 = 1_000_000;
const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SECOND;

/// A value could not be read as its type.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ConversionError(pub(crate) String);

/// PySOA's `get_typed_value` (with `any`, `regex` and `not regex` from `get_parsed_data_type_value`): the node a
/// directive's text stands for. `now` is the current time as the plan sees it (frozen by `freeze time`); rsoa
/// takes local time to be UTC.
pub(crate) fn typed_value(
    data_type: Option<&str>,
    any: bool,
    text: &str,
    now: UtcDateTime,
) -> Result<Node, ConversionError> {
    let data_type = data_type.unwrap_or("str");
    if any {
        return Ok(Node::Any {
            data_type: data_type.to_owned(),
            permit_none: false,
        });
    }
    if data_type == "regex" || data_type == "not regex" {
        let regex = regex::Regex::new(&format!("^(?:{text})"))
            .map_err(|e| ConversionError(format!("invalid regular expression {text:?}: {e}")))?;
        return Ok(Node::Regex {
            pattern: text.to_owned(),
            regex,
            negate: data_type == "not regex",
        });
    }
    if has_substitution(text) {
        return Ok(Node::str(ensure_action_index(text)));
    }
    let value = match data_type {
        "None" | "none" | "null" => Value::Null,
        "bytes" => Value::Bytes(text.as_bytes().to_vec()),
        "base64_bytes" => {
            if text.is_empty() {
                Value::Bytes(Vec::new())
            } else {
                Value::Bytes(decode_base64(text)?)
            }
        }
        "int" if text.is_empty() => Value::from(0i64),
        "int" => return parse_int(text),
        "float" if text.is_empty() => Value::Float(0.0),
        "float" => Value::Float(parse_float(text)?),
        "decimal" if text.is_empty() => Value::Decimal("0.0".parse().expect("valid")),
        "decimal" => Value::Decimal(text.trim().replace('_', "").parse().map_err(|_| {
            ConversionError(format!("[<class 'decimal.ConversionSyntax'>]: {text:?}"))
        })?),
        "bool" => Value::Bool(text.eq_ignore_ascii_case("true")),
        "str" => Value::from(text),
        "encoded_ascii" => {
            if !text.is_ascii() {
                return Err(ConversionError(format!(
                    "'ascii' codec can't encode the text {text:?}"
                )));
            }
            Value::from(unicode_escape(text.as_bytes())?)
        }
        "encoded_unicode" => Value::from(unicode_escape(text.as_bytes())?),
        "emptystr" => Value::from(""),
        "emptylist" => return Ok(Node::List(Vec::new())),
        "emptydict" => return Ok(Node::empty_map()),
        "datetime" => datetime_value(text, now)?,
        "date" => date_value(text, now)?,
        "time" => time_value(text, now)?,
        other => return Err(ConversionError(format!("Unknown type: {other}"))),
    };
    Ok(Node::Value(value))
}

fn parse_int(text: &str) -> Result<Node, ConversionError> {
    let cleaned: String = text.trim().replace('_', "");
    let invalid = || ConversionError(format!("invalid literal for int() with base 10: '{text}'"));
    let (negative, digits) = match cleaned.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, cleaned.strip_prefix('+').unwrap_or(&cleaned)),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    if let Ok(v) = cleaned.trim_start_matches('+').parse::<i64>() {
        return Ok(Node::Value(Value::from(v)));
    }
    if !negative {
        if let Ok(v) = digits.parse::<u64>() {
            return Ok(Node::Value(Value::from(v)));
        }
    }
    let digits = digits.trim_start_matches('0');
    Ok(Node::BigInt(format!(
        "{}{digits}",
        if negative { "-" } else { "" }
    )))
}

fn parse_float(text: &str) -> Result<f64, ConversionError> {
    let cleaned = text.trim().replace('_', "");
    let lower = cleaned.to_ascii_lowercase();
    let unsigned = lower.trim_start_matches(['+', '-']);
    let negative = lower.starts_with('-');
    match unsigned {
        "inf" | "infinity" => Ok(if negative {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        }),
        "nan" => Ok(f64::NAN),
        _ => cleaned
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .ok_or_else(|| ConversionError(format!("could not convert string to float: '{text}'"))),
    }
}

fn decode_base64(text: &str) -> Result<Vec<u8>, ConversionError> {
    // Python's b64decode drops characters outside the alphabet before decoding.
    let cleaned: String = text
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '='))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(cleaned.as_bytes())
        .map_err(|_| ConversionError("Incorrect padding".to_owned()))
}

/// Python's `bytes.decode('unicode_escape')`: backslash escapes decoded, every other byte taken as Latin-1.
fn unicode_escape(bytes: &[u8]) -> Result<String, ConversionError> {
    let mut out = String::with_capacity(bytes.len());
    let mut i = 0;
    let hex = |s: &[u8], n: usize, at: usize| -> Result<u32, ConversionError> {
        let digits = s
            .get(at..at + n)
            .filter(|d| d.iter().all(u8::is_ascii_hexdigit));
        let digits = digits.ok_or_else(|| {
            ConversionError(format!(
                "'unicodeescape' codec can't decode bytes in position {}-{}: truncated escape",
                at.saturating_sub(2),
                at + n - 1
            ))
        })?;
        Ok(u32::from_str_radix(std::str::from_utf8(digits).expect("hex digits"), 16).expect("hex"))
    };
    while i < bytes.len() {
        let b = bytes[i];
        if b != b'\\' || i + 1 >= bytes.len() {
            if b == b'\\' {
                return Err(ConversionError("\\ at end of string".to_owned()));
            }
            out.push(char::from(b));
            i += 1;
            continue;
        }
        let e = bytes[i + 1];
        i += 2;
        let simple = match e {
            b'\n' => Some(None),
            b'\\' => Some(Some('\\')),
            b'\'' => Some(Some('\'')),
            b'"' => Some(Some('"')),
            b'a' => Some(Some('\u{7}')),
            b'b' => Some(Some('\u{8}')),
            b'f' => Some(Some('\u{c}')),
            b'n' => Some(Some('\n')),
            b'r' => Some(Some('\r')),
            b't' => Some(Some('\t')),
            b'v' => Some(Some('\u{b}')),
            _ => None,
        };
        if let Some(c) = simple {
            out.extend(c);
            continue;
        }
        let (n, code) = match e {
            b'x' => (2, hex(bytes, 2, i)?),
            b'u' => (4, hex(bytes, 4, i)?),
            b'U' => (8, hex(bytes, 8, i)?),
            b'0'..=b'7' => {
                let mut value = u32::from(e - b'0');
                let mut taken = 0;
                while taken < 2
                    && i + taken < bytes.len()
                    && (b'0'..=b'7').contains(&bytes[i + taken])
                {
                    value = value * 8 + u32::from(bytes[i + taken] - b'0');
                    taken += 1;
                }
                (taken, value)
            }
            _ => {
                // An unknown escape stays as it is.
                out.push('\\');
                out.push(char::from(e));
                continue;
            }
        };
        i += n;
        out.push(char::from_u32(code).ok_or_else(|| {
            ConversionError(format!(
                "'unicodeescape' codec can't decode: illegal Unicode character {code:#x}"
            ))
        })?);
    }
    Ok(out)
}

fn int_args(text: &str, max: usize) -> Result<Vec<i64>, ConversionError> {
    text.splitn(max, ',')
        .map(|part| {
            let part = part.trim();
            part.parse::<i64>().map_err(|_| {
                ConversionError(format!("invalid literal for int() with base 10: '{part}'"))
            })
        })
        .collect()
}

/// PySOA's `timedelta(days, hours, minutes, seconds, microseconds)` from `+d,h,m,s,us`, in microseconds.
fn delta_micros(text: &str) -> Result<i64, ConversionError> {
    let factors = [
        MICROS_PER_DAY,
        3_600 * MICROS_PER_SECOND,
        60 * MICROS_PER_SECOND,
        MICROS_PER_SECOND,
        1,
    ];
    let mut total = 0i64;
    // Python reads a sixth field (it must be an integer) before it stops at five.
    for (i, part) in text.split(',').take(6).enumerate() {
        let part = part.trim();
        let n: i64 = part.replace('_', "").parse().map_err(|_| {
            ConversionError(format!("invalid literal for int() with base 10: '{part}'"))
        })?;
        if let Some(factor) = factors.get(i) {
            total += n * factor;
        }
    }
    Ok(total)
}

fn split_expression(text: &str) -> (&str, &str) {
    let trimmed = text.trim();
    match trimmed.split_once(' ') {
        Some((head, rest)) => (head, rest),
        None => (trimmed, ""),
    }
}

fn range_error(what: &str) -> ConversionError {
    ConversionError(format!("{what} out of range"))
}

fn datetime_value(text: &str, now: UtcDateTime) -> Result<Value, ConversionError> {
    if text.is_empty() {
        return Err(ConversionError(
            "Attempt to convert false-y value to datetime value".to_owned(),
        ));
    }
    if ["now", "utc_now", "midnight", "utc_midnight"]
        .iter()
        .any(|p| text.starts_with(p))
    {
        let (head, delta) = split_expression(text);
        let now_micros = now.epoch_micros();
        let seconds = now_micros - now_micros.rem_euclid(MICROS_PER_SECOND);
        let midnight = now_micros - now_micros.rem_euclid(MICROS_PER_DAY);
        let (base, aware) = match head {
            "now" => (seconds, false),
            "utc_now" => (seconds, true),
            "midnight" => (midnight, false),
            _ => (midnight, true),
        };
        let micros = base
            + if delta.is_empty() {
                0
            } else {
                delta_micros(delta)?
            };
        return if aware {
            UtcDateTime::from_epoch_micros(micros)
                .map(Value::UtcDateTime)
                .map_err(|_| range_error("date"))
        } else {
            DateTime::from_epoch_micros(micros)
                .map(Value::DateTime)
                .map_err(|_| range_error("date"))
        };
    }
    let args = int_args(text, 7)?;
    if args.len() < 3 {
        return Err(ConversionError(format!(
            "function missing required argument 'day' (pos 3) in {text:?}"
        )));
    }
    let at = |i: usize| args.get(i).copied().unwrap_or(0);
    let date = make_date(at(0), at(1), at(2))?;
    let time = make_time(at(3), at(4), at(5), at(6))?;
    Ok(Value::DateTime(DateTime::new(date, time)))
}

fn make_date(year: i64, month: i64, day: i64) -> Result<Date, ConversionError> {
    let (Ok(year), Ok(month), Ok(day)) =
        (i32::try_from(year), u8::try_from(month), u8::try_from(day))
    else {
        return Err(range_error("date value"));
    };
    Date::new(year, month, day).map_err(|e| ConversionError(e.to_string()))
}

fn make_time(hour: i64, minute: i64, second: i64, micro: i64) -> Result<Time, ConversionError> {
    let (Ok(h), Ok(m), Ok(s), Ok(us)) = (
        u8::try_from(hour),
        u8::try_from(minute),
        u8::try_from(second),
        u32::try_from(micro),
    ) else {
        return Err(range_error("time value"));
    };
    Time::new(h, m, s, us).map_err(|e| ConversionError(e.to_string()))
}

fn date_value(text: &str, now: UtcDateTime) -> Result<Value, ConversionError> {
    if text.is_empty() {
        return Err(ConversionError(
            "Attempt to convert false-y value to date value".to_owned(),
        ));
    }
    if text == "today" || text == "utc_today" {
        return Ok(Value::Date(now.naive().date()));
    }
    let args = int_args(text, 7)?;
    if args.len() != 3 {
        return Err(ConversionError(format!(
            "date() takes exactly 3 arguments ({} given)",
            args.len()
        )));
    }
    Ok(Value::Date(make_date(args[0], args[1], args[2])?))
}

fn time_value(text: &str, now: UtcDateTime) -> Result<Value, ConversionError> {
    if text.is_empty() {
        return Err(ConversionError(
            "Attempt to convert false-y value to time value".to_owned(),
        ));
    }
    if ["now", "utc_now", "midnight"]
        .iter()
        .any(|p| text.starts_with(p))
    {
        let (head, delta) = split_expression(text);
        let base = match head {
            "now" | "utc_now" => now.epoch_micros(),
            // PySOA starts from 2000-01-01 00:00, so a delta past a day wraps within the time of day.
            _ => 0,
        };
        let micros = base
            + if delta.is_empty() {
                0
            } else {
                delta_micros(delta)?
            };
        let seconds = micros - micros.rem_euclid(MICROS_PER_SECOND);
        let dt = DateTime::from_epoch_micros(seconds).map_err(|_| range_error("date"))?;
        return Ok(Value::Time(dt.time()));
    }
    let args = int_args(text, 7)?;
    if args.len() > 4 {
        return Err(ConversionError(format!(
            "time() takes at most 4 arguments ({} given)",
            args.len()
        )));
    }
    let at = |i: usize| args.get(i).copied().unwrap_or(0);
    Ok(Value::Time(make_time(at(0), at(1), at(2), at(3))?))
}

/// One `[[…]]` token: PySOA's `VARIABLE_SUBSTITUTION_RE` groups.
#[derive(Debug, PartialEq)]
pub(crate) struct Token {
    /// The whole token, brackets included.
    pub(crate) token: String,
    /// The path inside the brackets.
    pub(crate) full_path: String,
    /// `NAME.index`, when the path starts with one.
    pub(crate) action: Option<String>,
    /// The rest of the path after `NAME.index`.
    pub(crate) action_path: String,
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '{' | '}' | '-')
}

/// Every `[[…]]` token in a string, left to right.
pub(crate) fn tokens(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(start) = text[from..].find("[[").map(|i| i + from) {
        let inner_start = start + 2;
        let inner_len = text[inner_start..]
            .find(|c: char| !is_token_char(c))
            .unwrap_or(text.len() - inner_start);
        let inner = &text[inner_start..inner_start + inner_len];
        if text[inner_start + inner_len..].starts_with("]]") {
            let (action, action_path) = split_action(inner);
            out.push(Token {
                token: format!("[[{inner}]]"),
                full_path: inner.to_owned(),
                action,
                action_path,
            });
            from = inner_start + inner_len + 2;
        } else {
            from = start + 1;
        }
    }
    out
}

/// Splits `NAME.digits` off the front of a path (`[a-zA-Z_-]+\.\d+`), if it is there.
fn split_action(path: &str) -> (Option<String>, String) {
    let name_len = path
        .find(|c: char| !(c.is_ascii_alphabetic() || c == '_' || c == '-'))
        .unwrap_or(path.len());
    if name_len > 0 && path[name_len..].starts_with('.') {
        let digits_len = path[name_len + 1..]
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(path.len() - name_len - 1);
        if digits_len > 0 {
            let end = name_len + 1 + digits_len;
            return (Some(path[..end].to_owned()), path[end..].to_owned());
        }
    }
    (None, path.to_owned())
}

pub(crate) fn has_substitution(text: &str) -> bool {
    !tokens(text).is_empty()
}

/// PySOA's `ENSURE_ACTION_SUBSTITUTION_DEFAULT_INDEX_RE`: `[[ACTION.path]]` (an upper-case action name with no
/// index) becomes `[[ACTION.0.path]]`.
pub(crate) fn ensure_action_index(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 4);
    let mut rest = text;
    while let Some(start) = rest.find("[[") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_uppercase() || c == '_' || c == '-'))
            .unwrap_or(after.len());
        let tail = &after[name_len..];
        let replaced = name_len > 0
            && tail.starts_with('.')
            && !tail[1..].starts_with(|c: char| c.is_ascii_digit())
            && {
                let body_len = tail[1..]
                    .find(|c: char| !is_token_char(c))
                    .unwrap_or(tail.len() - 1);
                tail[1 + body_len..].starts_with("]]")
            };
        if replaced {
            let body_len = tail[1..]
                .find(|c: char| !is_token_char(c))
                .unwrap_or(tail.len() - 1);
            out.push_str(&format!(
                "[[{}.0.{}]]",
                &after[..name_len],
                &tail[1..1 + body_len]
            ));
            rest = &tail[1 + body_len + 2..];
        } else {
            out.push_str("[[");
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// A `[[…]]` path could not be found.
#[derive(Debug)]
pub(crate) struct SubstitutionError(pub(crate) String);

/// PySOA's `substitute_variables`: every string leaf of `data` holding `[[…]]` tokens gets them replaced from the
/// sources (a token that is the whole string keeps the found value's type).
pub(crate) fn substitute(data: &mut Node, sources: &[&Node]) -> Result<(), SubstitutionError> {
    for path in data.all_paths(false) {
        let Some(Node::Value(Value::String(text))) = data.path_get(&path) else {
            continue;
        };
        let text = text.to_string();
        let found = tokens(&text);
        if found.is_empty() {
            continue;
        }
        let mut value = Node::str(text.clone());
        for token in found {
            let mut find_path = token.full_path.clone();
            if let Some(action) = &token.action {
                let name = action.to_lowercase();
                for source in sources {
                    if source.get(&name).is_some() {
                        find_path = format!("{{{name}}}{}", token.action_path);
                    }
                }
            }
            let replacement = find_in_sources(&find_path, sources).ok_or_else(|| {
                SubstitutionError(format!(
                    "Could not find value {find_path} for {} in the responses so far or the model constants",
                    token.token
                ))
            })?;
            value = match value {
                Node::Value(Value::String(current)) if current.as_str() == token.token => {
                    replacement
                }
                Node::Value(Value::String(current)) => {
                    Node::str(current.replace(&token.token, &node_str(&replacement)))
                }
                // An earlier token was the whole string and is replaced already.
                other => other,
            };
        }
        data.put(&path, value).map_err(|e| SubstitutionError(e.0))?;
    }
    Ok(())
}

fn node_str(node: &Node) -> String {
    match node {
        Node::Value(v) => python_str(v),
        other => other.render(),
    }
}

fn find_in_sources(path: &str, sources: &[&Node]) -> Option<Node> {
    let lower = path.to_lowercase();
    let indexed = add_index_zero(&lower);
    for source in sources {
        for candidate in [path, lower.as_str(), indexed.as_str()] {
            if let Some(found) = source.path_get(candidate) {
                return Some(found);
            }
        }
    }
    None
}

/// PySOA's `^([\w_]+)\.(?!\d+\.)` → `{\1.0}.`: a lower-case action name without an index gets index 0.
fn add_index_zero(path: &str) -> String {
    let name_len = path
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(path.len());
    if name_len == 0 || !path[name_len..].starts_with('.') {
        return path.to_owned();
    }
    let after = &path[name_len + 1..];
    let digits = after
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(after.len());
    if digits > 0 && after[digits..].starts_with('.') {
        return path.to_owned();
    }
    format!("{{{}.0}}.{after}", &path[..name_len])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_split_action_and_path() {
        let found =
            tokens("x [[STUBBED_OUT.0.user.username]] y [[test_users.1.username]] [[plain]]");
        assert_eq!(found.len(), 3);
        assert_eq!(found[0].action.as_deref(), Some("STUBBED_OUT.0"));
        assert_eq!(found[0].action_path, ".user.username");
        assert_eq!(found[1].action.as_deref(), Some("test_users.1"));
        assert_eq!(found[2].action, None);
        assert_eq!(found[2].full_path, "plain");
        assert!(tokens("[[not closed] ]").is_empty());
    }

    #[test]
    fn action_index_is_inserted_for_upper_case_names_only() {
        assert_eq!(
            ensure_action_index("[[STUBBED_OUT.user.username]]"),
            "[[STUBBED_OUT.0.user.username]]"
        );
        assert_eq!(ensure_action_index("[[WALK.1.value]]"), "[[WALK.1.value]]");
        assert_eq!(
            ensure_action_index("a [[lower.path]] b"),
            "a [[lower.path]] b"
        );
        assert_eq!(
            add_index_zero("stubbed_out.user.name"),
            "{stubbed_out.0}.user.name"
        );
        assert_eq!(add_index_zero("walk.1.value"), "walk.1.value");
    }

    #[test]
    fn escapes_decode_as_python_does() {
        assert_eq!(unicode_escape(br"item\x0b name").unwrap(), "item\u{b} name");
        assert_eq!(unicode_escape(br"x\U0001f61e").unwrap(), "x\u{1f61e}");
        assert_eq!(unicode_escape(br"\101\n").unwrap(), "A\n");
        assert!(unicode_escape(br"bad \x4").is_err());
    }
}
