//! The built-in `status` and `introspect` actions, with PySOA's request rules and response shapes.

use std::sync::{Arc, OnceLock};

use rsoa_protocol::{Error as WireError, ErrorCode, Map, Value};
use rsoa_transport::BoxFuture;

use crate::server::ServerInner;
use crate::{ActionDescription, ActionError};

/// What health checks found, reported under `status`'s `healthcheck`.
///
/// ```
/// use rsoa_server::HealthReport;
///
/// let mut report = HealthReport::default();
/// report.error("DB_DOWN", "The database does not answer");
/// report.diagnostic("db_latency_ms", 1500);
/// assert_eq!(report.errors.len(), 1);
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct HealthReport {
    /// `(code, description)` pairs of problems that make the service unhealthy.
    pub errors: Vec<(String, String)>,
    /// `(code, description)` pairs of problems worth knowing about.
    pub warnings: Vec<(String, String)>,
    /// Any other facts.
    pub diagnostics: Map,
}

impl HealthReport {
    /// Records an error.
    pub fn error(&mut self, code: impl Into<String>, description: impl Into<String>) {
        self.errors.push((code.into(), description.into()));
    }

    /// Records a warning.
    pub fn warning(&mut self, code: impl Into<String>, description: impl Into<String>) {
        self.warnings.push((code.into(), description.into()));
    }

    /// Records a diagnostic.
    pub fn diagnostic(&mut self, key: impl Into<String>, value: impl Into<Value>) {
        self.diagnostics.insert(key.into(), value);
    }
}

impl HealthReport {
    /// Adds everything `other` found.
    fn merge(&mut self, other: HealthReport) {
        self.errors.extend(other.errors);
        self.warnings.extend(other.warnings);
        for (key, value) in other.diagnostics {
            self.diagnostics.insert(key, value);
        }
    }
}

/// A health check: a report, now or later.
pub(crate) trait HealthCheck: Send + Sync + 'static {
    fn check(&self) -> BoxFuture<'static, HealthReport>;
}

impl<F: Fn(&mut HealthReport) + Send + Sync + 'static> HealthCheck for F {
    fn check(&self) -> BoxFuture<'static, HealthReport> {
        let mut report = HealthReport::default();
        self(&mut report);
        Box::pin(std::future::ready(report))
    }
}

/// An asynchronous health check.
pub(crate) struct AsyncCheck(
    pub(crate) Arc<dyn Fn() -> BoxFuture<'static, HealthReport> + Send + Sync>,
);

impl HealthCheck for AsyncCheck {
    fn check(&self) -> BoxFuture<'static, HealthReport> {
        (self.0)()
    }
}

fn pairs(items: &[(String, String)]) -> Value {
    Value::Array(
        items
            .iter()
            .map(|(code, description)| {
                Value::Array(vec![code.as_str().into(), description.as_str().into()])
            })
            .collect(),
    )
}

fn extra_keys(body: &Map, allowed: &str) -> Result<(), ActionError> {
    let extra: Vec<String> = body
        .keys()
        .filter(|k| k.as_str() != Some(allowed))
        .map(|k| k.as_str().map_or_else(|| format!("{k:?}"), str::to_owned))
        .collect();
    if extra.is_empty() {
        Ok(())
    } else {
        Err(ActionError::from(rsoa_protocol::ValueError::unknown(
            &extra,
        )))
    }
}

fn description_value(d: &ActionDescription) -> Value {
    let mut map = Map::with_capacity(3);
    map.push("documentation", d.documentation.clone());
    map.push(
        "request_schema",
        d.request_schema.clone().unwrap_or_default(),
    );
    map.push(
        "response_schema",
        d.response_schema.clone().unwrap_or_default(),
    );
    Value::Map(map)
}

impl ServerInner {
    /// `status`: versions, and the health checks unless `verbose` is `false`.
    pub(crate) async fn status(&self, body: Map) -> Result<Map, ActionError> {
        extra_keys(&body, "verbose")?;
        let verbose = match body.get("verbose") {
            None => true,
            Some(Value::Bool(v)) => *v,
            Some(_) => {
                return Err(ActionError::from_errors([WireError::new(
                    ErrorCode::INVALID,
                    "Not a boolean",
                )
                .with_field("verbose")]))
            }
        };
        let mut response = Map::with_capacity(6);
        response.push("conformity", format!("rsoa {}", env!("CARGO_PKG_VERSION")));
        response.push("pysoa", "1.4.9");
        response.push("python", "n/a (rsoa, Rust)");
        response.push("version", self.version.as_str());
        if let Some(build) = &self.build {
            response.push("build", build.as_str());
        }
        if verbose {
            let mut report = HealthReport::default();
            let checks = self.health_checks.iter().map(|check| check.check());
            for found in futures::future::join_all(checks).await {
                report.merge(found);
            }
            let mut health = Map::with_capacity(3);
            health.push("errors", pairs(&report.errors));
            health.push("warnings", pairs(&report.warnings));
            health.push("diagnostics", report.diagnostics);
            response.push("healthcheck", health);
        }
        Ok(response)
    }

    /// A built-in's documentation and schemas: PySOA 1.4.9's own, as its `introspect` reports them (the
    /// differential check in `cargo xtask interop` compares them with PySOA's), so that callers see no difference.
    fn builtin_description(name: &str) -> ActionDescription {
        static BUILTINS: OnceLock<Map> = OnceLock::new();
        let builtins = BUILTINS.get_or_init(|| {
            let json = rsoa_codec::by_mime_type("application/json").expect("the JSON serializer");
            match json.decode(include_bytes!("builtin_schemas.json")) {
                Ok(Value::Map(map)) => map,
                other => panic!("builtin_schemas.json is not a JSON object: {other:?}"),
            }
        });
        let field = |key: &str| builtins.get(name).and_then(|d| d.get(key)).cloned();
        ActionDescription {
            documentation: field("documentation").and_then(|d| d.as_str().map(str::to_owned)),
            request_schema: field("request_schema"),
            response_schema: field("response_schema"),
        }
    }

    /// Every `(name, description)` introspect lists, switched actions expanded, in PySOA's order: the built-ins
    /// the service does not define itself (`introspect`, then `status`), then its actions as they were added.
    fn described_actions(&self) -> Vec<(String, ActionDescription)> {
        let mut entries = Vec::new();
        for builtin in ["introspect", "status"] {
            if !self.actions.contains_key(builtin) {
                entries.push((builtin.to_owned(), Self::builtin_description(builtin)));
            }
        }
        for name in &self.declared {
            let action = &self.actions[name];
            let switched = action.switched_entries();
            if switched.is_empty() {
                entries.push((name.clone(), action.describe()));
            } else {
                entries.extend(
                    switched
                        .into_iter()
                        .map(|(label, d)| (format!("{name}[{label}]"), d)),
                );
            }
        }
        entries
    }

    /// `introspect`: the service's and its actions' documentation, or one action's.
    pub(crate) fn introspect(&self, body: Map) -> Result<Map, ActionError> {
        extra_keys(&body, "action_name")?;
        let all = self.described_actions();
        let Some(requested) = body.get("action_name") else {
            let mut actions = Map::with_capacity(all.len());
            for (name, d) in &all {
                actions.push(name.as_str(), description_value(d));
            }
            let mut response = Map::with_capacity(3);
            response.push("actions", actions);
            response.push("action_names", sorted_names(all.iter()));
            response.push("documentation", self.description.clone());
            return Ok(response);
        };
        let invalid = |message: &str| {
            ActionError::from_errors([
                WireError::new(ErrorCode::INVALID, message).with_field("action_name")
            ])
        };
        let name = match requested {
            // Conformity's `UnicodeString(min_length=1, allow_blank=False)`, checked in its order.
            Value::String(s) if s.is_empty() => {
                return Err(invalid("String must have a length of at least 1"))
            }
            Value::String(s) if !s.trim().is_empty() => s.as_str(),
            Value::String(_) => return Err(invalid("String cannot be blank")),
            _ => return Err(invalid("Not a unicode string")),
        };
        let matches: Vec<&(String, ActionDescription)> = all
            .iter()
            .filter(|(entry, _)| {
                entry == name
                    || (entry.starts_with(name) && entry.as_bytes().get(name.len()) == Some(&b'['))
            })
            .collect();
        if matches.is_empty() {
            return Err(invalid("Action not defined in service"));
        }
        let mut actions = Map::with_capacity(matches.len());
        for (entry, d) in &matches {
            actions.push(entry.as_str(), description_value(d));
        }
        let mut response = Map::with_capacity(2);
        response.push("action_names", sorted_names(matches.into_iter()));
        response.push("actions", actions);
        Ok(response)
    }
}

/// The names of introspect's entries, sorted: PySOA lists `action_names` sorted and `actions` in its own order.
fn sorted_names<'a>(entries: impl Iterator<Item = &'a (String, ActionDescription)>) -> Value {
    let mut names: Vec<&str> = entries.map(|(name, _)| name.as_str()).collect();
    names.sort_unstable();
    Value::Array(names.into_iter().map(Value::from).collect())
}
