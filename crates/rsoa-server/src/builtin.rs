//! The built-in `status` and `introspect` actions, with PySOA's request rules and response shapes.

use std::sync::Arc;

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

    fn builtin_description(name: &str) -> ActionDescription {
        let documentation = match name {
            "status" => "Returns the versions of the service and its libraries, and the results of its health checks \
                         unless `verbose` is false.",
            _ => "Returns the documentation of the service and of its actions.",
        };
        ActionDescription {
            documentation: Some(documentation.to_owned()),
            ..ActionDescription::default()
        }
    }

    /// Every `(name, description)` introspect lists, switched actions expanded, sorted by name.
    fn described_actions(&self) -> Vec<(String, ActionDescription)> {
        let mut entries = Vec::new();
        for name in self.action_names() {
            match self.actions.get(&name) {
                Some(action) => {
                    let switched = action.switched_entries();
                    if switched.is_empty() {
                        entries.push((name, action.describe()));
                    } else {
                        entries.extend(
                            switched
                                .into_iter()
                                .map(|(label, d)| (format!("{name}[{label}]"), d)),
                        );
                    }
                }
                None => {
                    let d = Self::builtin_description(&name);
                    entries.push((name, d));
                }
            }
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        entries
    }

    /// `introspect`: the service's and its actions' documentation, or one action's.
    pub(crate) fn introspect(&self, body: Map) -> Result<Map, ActionError> {
        extra_keys(&body, "action_name")?;
        let all = self.described_actions();
        let Some(requested) = body.get("action_name") else {
            let mut actions = Map::with_capacity(all.len());
            let mut names = Vec::with_capacity(all.len());
            for (name, d) in &all {
                actions.push(name.as_str(), description_value(d));
                names.push(Value::from(name.as_str()));
            }
            let mut response = Map::with_capacity(3);
            response.push("actions", actions);
            response.push("action_names", Value::Array(names));
            response.push("documentation", self.description.clone());
            return Ok(response);
        };
        let invalid = |message: &str| {
            ActionError::from_errors([
                WireError::new(ErrorCode::INVALID, message).with_field("action_name")
            ])
        };
        let name = match requested {
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
        let mut names = Vec::with_capacity(matches.len());
        for (entry, d) in matches {
            actions.push(entry.as_str(), description_value(d));
            names.push(Value::from(entry.as_str()));
        }
        let mut response = Map::with_capacity(2);
        response.push("action_names", Value::Array(names));
        response.push("actions", actions);
        Ok(response)
    }
}
