//! PySOA's plan assertions: an expected structure against a response body, error lists, absent keys.

use rsoa_protocol::{Error as WireError, Value};

use super::node::Node;

/// What a comparison found: paths missing from the actual data, paths whose values differ (with both values),
/// and paths present in the actual data but not expected.
#[derive(Default, Debug)]
pub(crate) struct Comparison {
    pub(crate) missing: Vec<String>,
    pub(crate) mismatch: Vec<(String, String, String)>,
    pub(crate) extra: Vec<String>,
}

impl Comparison {
    fn absorb(&mut self, other: Comparison) {
        self.missing.extend(other.missing);
        self.mismatch.extend(other.mismatch);
        self.extra.extend(other.extra);
    }

    fn sort(mut self) -> Comparison {
        self.missing.sort();
        self.mismatch.sort_by(|a, b| a.0.cmp(&b.0));
        self.extra.sort();
        self
    }
}

fn key_path(key: &Value, prefix: Option<&str>) -> String {
    let mut path = match key {
        Value::String(s) => s.to_string(),
        other => super::node::python_str(other),
    };
    if path.contains('.') && !path.contains('{') {
        path = format!("{{{path}}}");
    }
    match prefix {
        Some(prefix) => format!("{prefix}.{path}"),
        None => path,
    }
}

/// PySOA's `_check_subset_dict`.
pub(crate) fn check_subset_dict(
    expected: &Node,
    actual: &Node,
    subset_lists: bool,
    prefix: Option<&str>,
) -> Result<Comparison, String> {
    let (Node::Map(expected), Node::Map(actual)) = (expected, actual) else {
        return Err(match expected {
            Node::Map(_) => "actual value is not a dict".to_owned(),
            _ => "expected value is not a dict".to_owned(),
        });
    };
    let mut out = Comparison::default();
    for (key, expected_val) in expected {
        let full_path = key_path(key, prefix);
        let Some((_, actual_val)) = actual
            .iter()
            .find(|(k, _)| super::node::values_equal(k, key))
        else {
            for sub in expected_val.all_paths(false) {
                if sub.is_empty() {
                    out.missing.push(full_path.clone());
                } else {
                    out.missing.push(format!("{full_path}.{sub}"));
                }
            }
            continue;
        };
        out.absorb(compare_values(
            expected_val,
            actual_val,
            Some(&full_path),
            subset_lists,
        )?);
    }
    for (key, actual_val) in actual {
        if !expected
            .iter()
            .any(|(k, _)| super::node::values_equal(k, key))
        {
            let full_path = key_path(key, prefix);
            out.extra
                .extend(actual_val.all_paths(false).into_iter().map(|p| {
                    if p.is_empty() {
                        full_path.clone()
                    } else {
                        format!("{full_path}.{p}")
                    }
                }));
        }
    }
    Ok(out.sort())
}

/// PySOA's `_compare_values`.
fn compare_values(
    expected: &Node,
    actual: &Node,
    full_path: Option<&str>,
    subset_lists: bool,
) -> Result<Comparison, String> {
    let path = full_path.unwrap_or("").to_owned();
    let mut out = Comparison::default();
    let mismatch = |out: &mut Comparison| {
        out.mismatch
            .push((path.clone(), expected.render(), actual.render()));
    };
    match (expected, actual) {
        (Node::Map(e), Node::Map(_)) => {
            if !e.is_empty() {
                out.absorb(check_subset_dict(
                    expected,
                    actual,
                    subset_lists,
                    full_path,
                )?);
            } else if actual.truthy() {
                mismatch(&mut out);
                out.extra.extend(prefixed(actual, &path));
            }
        }
        (_, Node::List(_)) if subset_lists || matches!(expected, Node::List(_)) => {
            if expected.truthy() {
                out.absorb(check_subset_list(
                    expected,
                    actual,
                    subset_lists,
                    full_path,
                )?);
            } else if actual.truthy() {
                mismatch(&mut out);
                out.extra.extend(prefixed(actual, &path));
            }
        }
        _ => {
            if !expected.matches(actual) {
                mismatch(&mut out);
            }
        }
    }
    Ok(out.sort())
}

fn prefixed(node: &Node, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    for p in node.all_paths(false) {
        out.push(match (prefix.is_empty(), p.is_empty()) {
            (true, _) => p,
            (false, true) => prefix.to_owned(),
            (false, false) => format!("{prefix}.{p}"),
        });
    }
    out
}

/// PySOA's `_check_subset_list`.
fn check_subset_list(
    expected: &Node,
    actual: &Node,
    subset_lists: bool,
    prefix: Option<&str>,
) -> Result<Comparison, String> {
    let Node::List(actual_items) = actual else {
        return Err("actual value is not a list".to_owned());
    };
    let mut out = Comparison::default();
    let Node::List(expected_items) = expected else {
        if !subset_lists {
            return Err("expected value is not a list".to_owned());
        }
        if !actual_items.iter().any(|a| expected.matches(a)) {
            out.missing.push(format!(
                "{}.{}",
                prefix.unwrap_or("None"),
                leaf_text(expected)
            ));
        }
        return Ok(out);
    };
    for (i, expected_val) in expected_items.iter().enumerate() {
        if subset_lists && !matches!(expected_val, Node::Map(_) | Node::List(_)) {
            if !actual_items.iter().any(|a| expected_val.matches(a)) {
                out.missing.push(match prefix {
                    Some(prefix) => format!("{prefix}.{i}.{}", leaf_text(expected_val)),
                    None => format!("{i}.{}", leaf_text(expected_val)),
                });
            }
            continue;
        }
        let full_path = match prefix {
            Some(prefix) => format!("{prefix}.{i}"),
            None => i.to_string(),
        };
        let Some(actual_val) = actual_items.get(i) else {
            out.missing.push(full_path);
            continue;
        };
        out.absorb(compare_values(
            expected_val,
            actual_val,
            Some(&full_path),
            subset_lists,
        )?);
    }
    if expected_items.len() < actual_items.len() {
        for i in expected_items.len()..actual_items.len() {
            out.extra.push(match prefix {
                Some(prefix) if !prefix.is_empty() => format!("{prefix}.{i}"),
                _ => i.to_string(),
            });
        }
    }
    Ok(out.sort())
}

fn leaf_text(node: &Node) -> String {
    match node {
        Node::Value(v) => super::node::python_str(v),
        other => other.render(),
    }
}

/// PySOA's `assert_subset_structure`: every expected path is in the actual data with a matching value.
pub(crate) fn assert_subset_structure(expected: &Node, actual: &Node) -> Result<(), Failure> {
    let comparison = check_subset_dict(expected, actual, false, None).map_err(Failure::plain)?;
    if comparison.missing.is_empty() && comparison.mismatch.is_empty() {
        return Ok(());
    }
    let mut message = String::new();
    if !comparison.missing.is_empty() {
        message.push_str("Missing values:\n");
        for path in &comparison.missing {
            message.push_str(&format!("  `{path}`\n"));
        }
    }
    if !comparison.mismatch.is_empty() {
        message.push_str("Mismatch values:\n");
        for (path, expected, actual) in &comparison.mismatch {
            message.push_str(&format!(
                "  `{path}` is incorrect:\n    Expected: {expected}\n    Actual:   {actual}\n"
            ));
        }
    }
    let mut paths: Vec<String> = comparison.missing.clone();
    paths.extend(comparison.mismatch.iter().map(|m| m.0.clone()));
    Err(Failure { message, paths })
}

/// PySOA's `assert_not_expected`: each path is absent from the actual data (or `None` there).
pub(crate) fn assert_not_expected(not_expected: &Node, actual: &Node) -> Result<(), Failure> {
    let mut comparison =
        check_subset_dict(not_expected, actual, true, None).map_err(Failure::plain)?;
    let all = not_expected.all_paths(false);
    for (path, expected, actual) in &comparison.mismatch {
        if actual == "None" && expected != "None" {
            comparison.missing.push(path.clone());
        }
    }
    if comparison.missing.len() == all.len() {
        return Ok(());
    }
    let present: Vec<String> = all
        .into_iter()
        .filter(|p| !comparison.missing.contains(p))
        .collect();
    let mut message = String::from("Not expected fields present:\n");
    for path in &present {
        message.push_str(&format!("  `{path}`\n"));
    }
    Err(Failure {
        message,
        paths: present,
    })
}

/// PySOA's `assert_not_present`: none of the paths exists in the actual data, even as a key.
pub(crate) fn assert_not_present(not_present: &Node, actual: &Node) -> Result<(), Failure> {
    let present: Vec<String> = not_present
        .all_paths(false)
        .into_iter()
        .filter(|p| actual.path_get(p).is_some())
        .collect();
    if present.is_empty() {
        return Ok(());
    }
    let mut message = String::from("Should not be present:\n");
    for path in &present {
        message.push_str(&format!("  `{path}`\n"));
    }
    Err(Failure {
        message,
        paths: present,
    })
}

/// How an error list is checked.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum ErrorCheck {
    /// Every expected error is among the actual ones.
    Subset,
    /// The expected errors are exactly the actual ones, in any order.
    Exact,
    /// None of these errors is among the actual ones.
    Not,
}

/// PySOA's error-list assertions over expected error nodes.
pub(crate) fn assert_errors(
    expected: &[Node],
    actual: &[WireError],
    check: ErrorCheck,
) -> Result<(), Failure> {
    let found = |e: &Node| actual.iter().any(|a| e.matches_error(a));
    let bad: Vec<&Node> = match check {
        ErrorCheck::Not => expected.iter().filter(|e| found(e)).collect(),
        _ => expected.iter().filter(|e| !found(e)).collect(),
    };
    let length_ok = check != ErrorCheck::Exact || expected.len() == actual.len();
    if bad.is_empty() && length_ok {
        return Ok(());
    }
    let describe_actual = if actual.is_empty() {
        "no errors".to_owned()
    } else {
        actual
            .iter()
            .map(|e| {
                let mut s = format!("code={}", e.code);
                if let Some(field) = &e.field {
                    s.push_str(&format!(", field={field}"));
                }
                s.push_str(&format!(", message={}", e.message));
                s
            })
            .collect::<Vec<_>>()
            .join("\n    ")
    };
    let mut message = match check {
        ErrorCheck::Not => "Errors that should not be there:\n".to_owned(),
        ErrorCheck::Exact => "Expected exactly these errors:\n".to_owned(),
        ErrorCheck::Subset => "Expected errors not found:\n".to_owned(),
    };
    let listed: Vec<&Node> = if check == ErrorCheck::Exact {
        expected.iter().collect()
    } else {
        bad
    };
    for e in &listed {
        if let Node::Error(spec) = e {
            message.push_str(&format!("    {spec} (line {})\n", spec.line));
        }
    }
    message.push_str(&format!("  Actual errors:\n    {describe_actual}\n"));
    if let Some(server_error) = actual.iter().find(|e| e.code == "SERVER_ERROR") {
        message.push_str(&format!("\nSERVER_ERROR: {}\n", server_error.message));
    }
    Err(Failure::plain(message))
}

/// A failed assertion: what is wrong, the paths involved (to find their directives) and the paths involved.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) message: String,
    pub(crate) paths: Vec<String>,
}

impl Failure {
    pub(crate) fn plain(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            paths: Vec::new(),
        }
    }
}
