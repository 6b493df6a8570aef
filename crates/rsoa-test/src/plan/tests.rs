//! PySOA's own vectors for its path language, data types and substitutions (`tests/plan/pysoa-unit/vectors.json`,
//! produced by `dump_plans.py --vectors` with the real PySOA 1.4.9 functions).

use base64::Engine as _;
use rsoa_protocol::{Date, DateTime, Time, UtcDateTime, Value};
use serde_json::Value as J;

use super::node::Node;
use super::types::{substitute, typed_value};
use super::{node_json, value_json};

fn vectors() -> J {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/plan/pysoa-unit/vectors.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("the vectors")).expect("JSON")
}

/// The node a normalized JSON value stands for.
fn node(j: &J) -> Node {
    match j {
        J::Null => Node::Value(Value::Null),
        J::Bool(b) => Node::Value(Value::Bool(*b)),
        J::Number(n) => Node::Value(
            n.as_i64()
                .map(Value::from)
                .unwrap_or_else(|| Value::from(n.as_u64().unwrap_or(0))),
        ),
        J::String(s) => Node::str(s.as_str()),
        J::Array(items) => Node::List(items.iter().map(node).collect()),
        J::Object(map) => {
            let text = |k: &str| {
                map.get(k)
                    .and_then(J::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            if map.contains_key("$float") {
                return Node::Value(Value::Float(text("$float").parse().expect("a float")));
            }
            if map.contains_key("$bytes") {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(text("$bytes"))
                    .expect("base64");
                return Node::Value(Value::Bytes(bytes));
            }
            if map.contains_key("$decimal") {
                return Node::Value(Value::Decimal(text("$decimal").parse().expect("a decimal")));
            }
            if map.contains_key("$bigint") {
                return Node::BigInt(text("$bigint"));
            }
            if map.contains_key("$datetime") {
                let iso = text("$datetime");
                return Node::Value(match iso.strip_suffix("+00:00") {
                    Some(naive) => Value::UtcDateTime(
                        format!("{naive}Z")
                            .parse::<UtcDateTime>()
                            .expect("a date-time"),
                    ),
                    None => Value::DateTime(iso.parse::<DateTime>().expect("a date-time")),
                });
            }
            if map.contains_key("$date") {
                return Node::Value(Value::Date(text("$date").parse::<Date>().expect("a date")));
            }
            if map.contains_key("$time") {
                return Node::Value(Value::Time(text("$time").parse::<Time>().expect("a time")));
            }
            Node::Map(
                map.iter()
                    .map(|(k, v)| (Value::from(k.as_str()), node(v)))
                    .collect(),
            )
        }
    }
}

fn is_error(j: &J) -> bool {
    j.get("$error").is_some()
}

fn now() -> UtcDateTime {
    "2026-01-02T03:04:05Z".parse().expect("an instant")
}

#[test]
fn path_put_matches_pysoa() {
    let all = vectors();
    let cases = all["path_put"].as_array().expect("cases");
    assert!(cases.len() >= 20);
    for case in cases {
        let mut data = Node::empty_map();
        let puts: Vec<(String, J)> = match case.get("puts") {
            Some(J::Array(puts)) => puts
                .iter()
                .map(|p| (p[0].as_str().expect("a path").to_owned(), p[1].clone()))
                .collect(),
            _ => vec![(
                case["path"].as_str().expect("a path").to_owned(),
                case["value"].clone(),
            )],
        };
        let mut failed = false;
        for (path, value) in puts {
            failed |= data.put(&path, node(&value)).is_err();
        }
        if is_error(&case["result"]) {
            assert!(failed, "{case}: PySOA failed, rsoa did not");
        } else {
            assert!(!failed, "{case}: rsoa failed");
            assert_eq!(node_json(&data), case["result"], "{case}");
        }
    }
}

#[test]
fn path_get_matches_pysoa() {
    let all = vectors();
    for case in all["path_get"].as_array().expect("cases") {
        let data = node(&case["data"]);
        let got = data.path_get(case["path"].as_str().expect("a path"));
        if is_error(&case["result"]) {
            assert!(
                got.is_none(),
                "{case}: PySOA found nothing, rsoa found {got:?}"
            );
        } else {
            assert_eq!(
                got.as_ref().map(node_json),
                Some(case["result"].clone()),
                "{case}"
            );
        }
    }
}

#[test]
fn get_all_paths_matches_pysoa() {
    let all = vectors();
    for case in all["get_all_paths"].as_array().expect("cases") {
        let data = node(&case["data"]);
        let got = data.all_paths(case["allow_blank"].as_bool().unwrap_or(false));
        let expected: Vec<String> = serde_json::from_value(case["result"].clone()).expect("paths");
        assert_eq!(got, expected, "{case}");
    }
}

#[test]
fn typed_values_match_pysoa() {
    let all = vectors();
    let mut checked = 0;
    for case in all["get_typed_value"].as_array().expect("cases") {
        // Python-only inputs (bytes, ints, None handed straight to the function) cannot come from a fixture line;
        // `regex` types never reach this function from a fixture (the grammar handles them first).
        let text = match &case["text"] {
            J::String(s) => s.clone(),
            J::Null => String::new(),
            _ => continue,
        };
        let data_type = case["type"].as_str();
        if matches!(data_type, Some("regex" | "not regex")) {
            continue;
        }
        let got = typed_value(data_type.or(Some("str")), false, &text, now());
        if is_error(&case["result"]) {
            assert!(got.is_err(), "{case}: PySOA failed, rsoa gave {got:?}");
        } else {
            let got = got.unwrap_or_else(|e| panic!("{case}: {}", e.0));
            assert_eq!(node_json(&got), case["result"], "{case}");
        }
        checked += 1;
    }
    assert!(checked >= 150, "only {checked} typed-value vectors checked");
}

#[test]
fn substitutions_match_pysoa() {
    let all = vectors();
    for case in all["substitute_variables"].as_array().expect("cases") {
        let mut data = node(&case["data"]);
        let sources: Vec<Node> = case["sources"]
            .as_array()
            .expect("sources")
            .iter()
            .map(node)
            .collect();
        let refs: Vec<&Node> = sources.iter().collect();
        let got = substitute(&mut data, &refs);
        if is_error(&case["result"]) {
            assert!(got.is_err(), "{case}: PySOA failed, rsoa did not");
        } else {
            assert!(got.is_ok(), "{case}: {got:?}");
            assert_eq!(node_json(&data), case["result"], "{case}");
        }
    }
}

#[test]
fn value_json_writes_python_forms() {
    assert_eq!(
        value_json(&Value::Float(22.5)),
        serde_json::json!({"$float": "22.5"})
    );
    assert_eq!(
        value_json(&Value::Float(1e20)),
        serde_json::json!({"$float": "1e+20"})
    );
}
