//! One settings document per service, in PySOA's shape, from a TOML, YAML or JSON file and the environment.

use std::collections::BTreeMap;
use std::path::Path;

use figment::providers::{Env, Format, Json, Toml, Yaml};
use figment::Figment;
use rsoa_server::LogLevel;
use rsoa_transport_redis::RedisSettings;
use serde::{Deserialize, Serialize};

/// The prefix of environment variables that override the settings file: `RSOA_MAX_CONCURRENT_JOBS=8`, with `__`
/// between nested keys (`RSOA_TRANSPORT__KWARGS__QUEUE_CAPACITY=500`).
pub const ENV_PREFIX: &str = "RSOA_";

/// PySOA's class paths of the Redis gateway transports, accepted (and optional) in `path`.
const SERVER_PATH: &str = "pysoa.common.transport.redis_gateway.server:RedisServerTransport";
const CLIENT_PATH: &str = "pysoa.common.transport.redis_gateway.client:RedisClientTransport";

/// Why settings could not be had. Every message names the key at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// The file could not be read, or its extension names no format.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// A value is missing, unknown or of the wrong type (the message names the key, the value and what was
    /// expected).
    #[error("{0}")]
    Invalid(String),
}

/// A transport as PySOA's settings give it: a class path and its keyword arguments, which for the Redis gateway
/// are [`RedisSettings`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TransportSettings {
    /// PySOA's class path of the transport; optional, and only the Redis gateway's is accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The Redis gateway's settings, with PySOA's names and defaults.
    pub kwargs: RedisSettings,
}

/// A service this one calls (an entry of `client_routing`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ClientRoute {
    /// How to reach it.
    pub transport: TransportSettings,
}

/// PySOA's `harakiri` settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Harakiri {
    /// Seconds after which a job is cancelled and answered with `ACTION_TIMEOUT` or `JOB_TIMEOUT` (default 300, as
    /// in PySOA; 0 turns it off). A request's own `control.timeout` also cancels its job a second after it (when
    /// the caller has stopped waiting), if that is sooner.
    /// Cancellation takes effect at the job's next `.await`.
    #[serde(default = "defaults::harakiri_timeout")]
    pub timeout: u64,
    /// Seconds a stopping server waits for the jobs it is running (default 30, as in PySOA).
    #[serde(default = "defaults::shutdown_grace")]
    pub shutdown_grace: u64,
}

impl Default for Harakiri {
    fn default() -> Harakiri {
        Harakiri {
            timeout: defaults::harakiri_timeout(),
            shutdown_grace: defaults::shutdown_grace(),
        }
    }
}

/// How `--workers` restarts worker processes that exit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Supervisor {
    /// Crashes (exits the supervisor did not ask for) within `crash_window_in_seconds` after which it gives up,
    /// stops every worker and exits with status 1 (default 5).
    #[serde(default = "defaults::max_crashes")]
    pub max_crashes: usize,
    /// The window over which crashes are counted, in seconds (default 60).
    #[serde(default = "defaults::crash_window")]
    pub crash_window_in_seconds: u64,
    /// The longest pause before restarting a worker, in seconds; the pause starts at a quarter second and doubles
    /// with each crash in a row of that worker (default 30).
    #[serde(default = "defaults::max_restart_delay")]
    pub max_restart_delay_in_seconds: u64,
}

impl Default for Supervisor {
    fn default() -> Supervisor {
        Supervisor {
            max_crashes: defaults::max_crashes(),
            crash_window_in_seconds: defaults::crash_window(),
            max_restart_delay_in_seconds: defaults::max_restart_delay(),
        }
    }
}

/// A service's settings, with PySOA's names.
///
/// ```
/// use rsoa_standalone::Settings;
///
/// let settings = Settings::from_toml(r#"
///     max_concurrent_jobs = 16
///     [transport.kwargs]
///     backend_type = "redis.standard"
///     backend_layer_kwargs = { hosts = ["127.0.0.1:6379"] }
///     [client_routing.ledger.transport.kwargs]
///     backend_type = "redis.standard"
/// "#).unwrap();
/// assert_eq!(settings.max_concurrent_jobs, 16);
/// // The tuned default: a server pops twice as many requests per round trip as it runs at once.
/// assert_eq!(settings.transport.kwargs.receive_batch_size, Some(32));
/// assert!(settings.client_routing.contains_key("ledger"));
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Settings {
    /// How the service receives its requests (the server's transport).
    pub transport: TransportSettings,
    /// The services this one calls, by name; [`crate::client`] builds the client.
    #[serde(default)]
    pub client_routing: BTreeMap<String, ClientRoute>,
    /// How many jobs the process runs at once (default 64).
    #[serde(default = "defaults::max_concurrent_jobs")]
    pub max_concurrent_jobs: usize,
    /// The most actions one job may hold; a job with more is refused whole with `INVALID` (default 10 000).
    #[serde(default = "defaults::max_actions_per_job")]
    pub max_actions_per_job: usize,
    /// The graceful stop.
    #[serde(default)]
    pub harakiri: Harakiri,
    /// How `--workers` restarts worker processes.
    #[serde(default)]
    pub supervisor: Supervisor,
    /// A file rewritten with the current time every 2.5 s while the server runs, and removed when it stops
    /// (PySOA's liveness signal): `{{pid}}` becomes the process id, `{{fid}}` the worker number (or `main`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_file: Option<String>,
    /// The level at which a successful job's request and response are logged, censored (default `DEBUG`; PySOA's
    /// is `INFO`): `DEBUG`, `INFO`, `WARNING`, `ERROR` or `CRITICAL`.
    #[serde(default = "defaults::request_log_success_level")]
    pub request_log_success_level: LogLevel,
    /// The level at which a job's request and response are logged when the response has errors (default `INFO`).
    #[serde(default = "defaults::request_log_error_level")]
    pub request_log_error_level: LogLevel,
    /// Keys whose values are censored in those logs, beside PySOA's list of sensitive keys.
    #[serde(default)]
    pub extra_fields_to_redact: Vec<String>,
    /// Where the process's metrics go.
    #[serde(default)]
    pub metrics: MetricsSettings,
    /// What the process logs, how and where (`--log-level` and `--log-format` win over these).
    #[serde(default)]
    pub logging: LoggingSettings,
    /// Where the process's traces go (OpenTelemetry).
    #[serde(default)]
    pub traces: TracesSettings,
    /// Free-form settings of the service itself.
    #[serde(default)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// What the process logs, how and where.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct LoggingSettings {
    /// The filter, in `tracing_subscriber::EnvFilter` syntax: a level, and levels per target
    /// (`"info,rsoa_server::job=debug"`). Default `info`.
    #[serde(default = "defaults::log_level")]
    pub level: String,
    /// `human` (one readable line per event, the default) or `json` (one object per line).
    #[serde(default)]
    pub format: LogFormat,
    /// Append the log to this file instead of standard error; `{{pid}}` and `{{fid}}` as in `heartbeat_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

impl Default for LoggingSettings {
    fn default() -> LoggingSettings {
        LoggingSettings {
            level: defaults::log_level(),
            format: LogFormat::default(),
            file: None,
        }
    }
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum LogFormat {
    /// One readable line per event.
    #[default]
    Human,
    /// One JSON object per event.
    Json,
}

/// Where the process's metrics (`rsoa_server::metric`, `rsoa_transport_redis::metric`) go.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct MetricsSettings {
    /// Serve them in Prometheus' text format at `http://ADDRESS/metrics`, e.g. `"0.0.0.0:9464"`. With
    /// `--workers N`, worker `i` (from 1) listens on the port plus `i - 1`, so that each is scraped on its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<std::net::SocketAddr>,
}

/// Where the process's traces go: OpenTelemetry over OTLP/HTTP, with rsoa's `otel` feature.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TracesSettings {
    /// Export the spans of every job and action (and the service's own) to this OTLP/HTTP traces URL, e.g.
    /// `"http://otel-collector:4318/v1/traces"`. Each job's span is the child of its caller's, named by the
    /// W3C trace context its request carries. Off when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otlp_endpoint: Option<String>,
    /// The share of the traces that start here which are recorded, from 0 to 1 (default 1); a trace that comes
    /// with its caller's is recorded when the caller's was.
    #[serde(default = "defaults::sample_ratio")]
    pub sample_ratio: f64,
    /// The `service.name` the spans are exported under; default `OTEL_SERVICE_NAME`, else the executable's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
}

impl Default for TracesSettings {
    fn default() -> TracesSettings {
        TracesSettings {
            otlp_endpoint: None,
            sample_ratio: defaults::sample_ratio(),
            service_name: None,
        }
    }
}

/// The defaults; those the server has are read from `ServerSettings::default()`, so they are stated once.
mod defaults {
    use rsoa_server::{LogLevel, ServerSettings};

    pub(super) fn request_log_success_level() -> LogLevel {
        ServerSettings::default().request_log_success_level
    }
    pub(super) fn request_log_error_level() -> LogLevel {
        ServerSettings::default().request_log_error_level
    }
    pub(super) fn log_level() -> String {
        "info".to_owned()
    }
    pub(super) fn sample_ratio() -> f64 {
        1.0
    }
    pub(super) fn shutdown_grace() -> u64 {
        30
    }
    pub(super) fn harakiri_timeout() -> u64 {
        300
    }
    pub(super) fn max_concurrent_jobs() -> usize {
        ServerSettings::default().max_concurrent_jobs
    }
    pub(super) fn max_actions_per_job() -> usize {
        ServerSettings::default().max_actions_per_job
    }
    pub(super) fn max_crashes() -> usize {
        5
    }
    pub(super) fn crash_window() -> u64 {
        60
    }
    pub(super) fn max_restart_delay() -> u64 {
        30
    }
}

impl Settings {
    /// Reads the settings file (its format chosen by its extension: `.toml`, `.yaml`/`.yml` or `.json`), applies
    /// the [`ENV_PREFIX`] environment variables over it, checks every value and fills in the tuned defaults.
    pub fn load(path: &Path) -> Result<Settings, SettingsError> {
        let file_error = |message: String| SettingsError::File {
            path: path.display().to_string(),
            message,
        };
        // figment passes over a missing file silently; a service must not start on defaults by mistake.
        std::fs::metadata(path).map_err(|e| file_error(e.to_string()))?;
        let figment = match path.extension().and_then(|e| e.to_str()) {
            Some("toml") => Figment::from(Toml::file(path)),
            Some("yaml" | "yml") => Figment::from(Yaml::file(path)),
            Some("json") => Figment::from(Json::file(path)),
            _ => {
                return Err(file_error(
                    "the extension names no settings format (use .toml, .yaml, .yml or .json)"
                        .to_owned(),
                ))
            }
        };
        Settings::extract(figment.merge(Env::prefixed(ENV_PREFIX).split("__")))
    }

    /// Settings from TOML text alone (no environment), checked and completed like [`Settings::load`].
    pub fn from_toml(text: &str) -> Result<Settings, SettingsError> {
        Settings::extract(Figment::from(Toml::string(text)))
    }

    fn extract(figment: Figment) -> Result<Settings, SettingsError> {
        let mut settings: Settings = figment.extract().map_err(|e| {
            // One line per problem, each naming its key (without figment's profile, which rsoa does not use).
            let lines: Vec<String> = e
                .into_iter()
                .map(|e| e.to_string().replace("for key \"default.", "for key \""))
                .collect();
            SettingsError::Invalid(lines.join("\n"))
        })?;
        settings.check()?;
        settings.complete();
        Ok(settings)
    }

    fn check(&self) -> Result<(), SettingsError> {
        let invalid = |key: &str, why: String| Err(SettingsError::Invalid(format!("{key}: {why}")));
        if self.max_concurrent_jobs == 0 {
            return invalid("max_concurrent_jobs", "must be at least 1".to_owned());
        }
        if self.max_actions_per_job == 0 {
            return invalid("max_actions_per_job", "must be at least 1".to_owned());
        }
        if self.supervisor.max_crashes == 0 {
            return invalid("supervisor.max_crashes", "must be at least 1".to_owned());
        }
        if !(0.0..=1.0).contains(&self.traces.sample_ratio) {
            return invalid(
                "traces.sample_ratio",
                format!("{} is not a share from 0 to 1", self.traces.sample_ratio),
            );
        }
        if let Some(endpoint) = &self.traces.otlp_endpoint {
            if !cfg!(feature = "otel") {
                return invalid(
                    "traces.otlp_endpoint",
                    "this binary was built without rsoa's `otel` feature".to_owned(),
                );
            }
            if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
                return invalid(
                    "traces.otlp_endpoint",
                    format!("{endpoint:?} is not an http:// or https:// URL"),
                );
            }
        }
        check_path(&self.transport, SERVER_PATH, "transport.path")?;
        if let Err(e) = self.transport.kwargs.validate_server() {
            return invalid("transport.kwargs", e.to_string());
        }
        for (service, route) in &self.client_routing {
            let key = format!("client_routing.{service}.transport");
            check_path(&route.transport, CLIENT_PATH, &format!("{key}.path"))?;
            if let Err(e) = route.transport.kwargs.validate_client() {
                return invalid(&format!("{key}.kwargs"), e.to_string());
            }
        }
        Ok(())
    }

    /// The defaults that make a server fast (`docs/operations.md`), where the file leaves them open.
    fn complete(&mut self) {
        let kwargs = &mut self.transport.kwargs;
        // Popping twice as many requests per round trip as the server runs at once keeps the next batch in the
        // process while the current one runs: 10-20 % more calls per second than batches of one
        // `max_concurrent_jobs`, in `cargo xtask bench pysoa-backlog`.
        if kwargs.receive_batch_size.is_none() {
            kwargs.receive_batch_size = Some(2 * self.max_concurrent_jobs);
        }
    }

    /// The settings as JSON, with every password, secret or token masked, for showing to people.
    pub fn masked(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        mask(&mut value);
        value
    }
}

fn check_path(
    transport: &TransportSettings,
    expected: &str,
    key: &str,
) -> Result<(), SettingsError> {
    match &transport.path {
        Some(path) if path != expected => Err(SettingsError::Invalid(format!(
            "{key}: {path:?} is not a transport rsoa has (use {expected:?}, or leave it out)"
        ))),
        _ => Ok(()),
    }
}

/// Replaces the values of sensitive keys, at any depth.
fn mask(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                let key = key.to_ascii_lowercase();
                let sensitive = ["password", "secret", "token"]
                    .iter()
                    .any(|s| key.contains(s));
                if sensitive && !value.is_null() {
                    *value = serde_json::Value::from("********");
                } else {
                    mask(value);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(mask),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "[transport.kwargs]\nbackend_type = \"redis.standard\"\n";

    #[test]
    fn every_problem_names_its_key() {
        for (text, expected) in [
            ("", "transport"),
            (
                "[transport.kwargs]\nbackend_type = \"redis.standard\"\nqueue_capacty = 5\n",
                "queue_capacty",
            ),
            (
                "[transport.kwargs]\nbackend_type = \"redis.standard\"\nqueue_capacity = \"many\"\n",
                "transport.kwargs.queue_capacity",
            ),
            (
                "max_concurrent_jobs = 0\n[transport.kwargs]\nbackend_type = \"redis.standard\"\n",
                "max_concurrent_jobs",
            ),
            (
                "[transport.kwargs]\nbackend_type = \"redis.standard\"\nprotocol_version = 3\n",
                "transport.kwargs",
            ),
            (
                "[transport]\npath = \"my.own:Transport\"\n[transport.kwargs]\nbackend_type = \"redis.standard\"\n",
                "transport.path",
            ),
            (
                "[transport.kwargs]\nbackend_type = \"redis.standard\"\n[client_routing.x.transport.kwargs]\nbackend_type = \"redis.standard\"\nreceive_batch_size = 4\n",
                "client_routing.x.transport.kwargs",
            ),
            (
                "heartbeat_fil = \"/tmp/x\"\n[transport.kwargs]\nbackend_type = \"redis.standard\"\n",
                "heartbeat_fil",
            ),
        ]
        .map(|(t, e)| (t.to_owned(), e))
        {
            let err = Settings::from_toml(&text).unwrap_err().to_string();
            assert!(err.contains(expected), "{text:?}: {err}");
        }
    }

    #[test]
    fn defaults_and_the_tuned_batch() {
        let settings = Settings::from_toml(MINIMAL).unwrap();
        assert_eq!(settings.max_concurrent_jobs, 64);
        assert_eq!(settings.harakiri.shutdown_grace, 30);
        assert_eq!(settings.harakiri.timeout, 300);
        assert_eq!(settings.transport.kwargs.receive_batch_size, Some(128));
        let chosen = Settings::from_toml(&format!("{MINIMAL}receive_batch_size = 3\n")).unwrap();
        assert_eq!(chosen.transport.kwargs.receive_batch_size, Some(3));
    }

    #[test]
    fn secrets_are_masked() {
        let settings = Settings::from_toml(
            "[transport.kwargs]\nbackend_type = \"redis.standard\"\n[transport.kwargs.backend_layer_kwargs.connection_kwargs]\nusername = \"svc\"\npassword = \"hunter2\"\n[extra]\napi_token = \"abc\"\n",
        )
        .unwrap();
        let shown = settings.masked().to_string();
        assert!(
            !shown.contains("hunter2") && !shown.contains("abc"),
            "{shown}"
        );
        assert!(
            shown.contains("svc") && shown.contains("********"),
            "{shown}"
        );
    }
}
