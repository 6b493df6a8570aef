//! Run an rsoa service as a process, the way PySOA services run: one settings file, a command line, logging, and
//! the defaults that make a server fast.
//!
//! A service's `main` is a few lines; everything else is configuration:
//!
//! ```no_run
//! use rsoa_server::{ActionContext, ActionError, Server};
//!
//! #[derive(serde::Deserialize)]
//! struct Square { number: i64 }
//! #[derive(serde::Serialize)]
//! struct Squared { square: i64 }
//!
//! fn main() -> std::process::ExitCode {
//!     rsoa_standalone::run(|_settings, client| {
//!         Server::builder("example").client(client).action_fn(
//!             "square",
//!             |req: Square, _ctx: ActionContext| async move {
//!                 Ok::<_, ActionError>(Squared { square: req.number * req.number })
//!             },
//!         )
//!     })
//! }
//! ```
//!
//! ```text
//! example --settings example.toml [--workers N] [--check-settings] [--log-level info] [--log-format human|json]
//! ```
//!
//! - The settings file ([`Settings`]) is TOML, YAML or JSON, chosen by its extension, in PySOA's shape
//!   (`transport.kwargs` holds the Redis settings, `client_routing.<service>.transport.kwargs` those of each
//!   service this one calls). Environment variables prefixed `RSOA_` override it, with `__` between nested keys.
//! - A bad file or value exits with status 1 before any connection is made, naming the key, the value and what
//!   was expected; `--check-settings` checks, prints the effective settings with secrets masked, and exits.
//! - The server runs on a one-thread runtime and pops twice `max_concurrent_jobs` requests per round trip under
//!   a backlog, and (with the default `mimalloc` feature) the process allocates with mimalloc: what the
//!   benchmarks measured fastest (`docs/operations.md`). Run one process per core.
//! - SIGINT or SIGTERM stops it gracefully: every request already taken is answered, and running jobs get
//!   `harakiri.shutdown_grace` seconds.
//! - `--workers N` runs N worker processes of the same binary and restarts one that exits, with a growing pause,
//!   giving up after `supervisor.max_crashes` crashes within `supervisor.crash_window_in_seconds`; a signal
//!   is passed to every worker, and a second one kills them.

mod heartbeat;
mod logging;
mod settings;
mod supervise;
mod watchdog;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use rsoa_client::Client;
use rsoa_server::{HealthReport, ServeOutcome, ServerBuilder, ServerSettings, Watch};
use rsoa_transport_redis::{
    RedisBackend, RedisClientTransport, RedisServerTransport, RedisSettings,
};

pub use watchdog::BLOCKED_EXIT_CODE;

pub use settings::{
    ClientRoute, Harakiri, LogFormat, LoggingSettings, MetricsSettings, Settings, SettingsError,
    Supervisor, TracesSettings, TransportSettings, ENV_PREFIX,
};

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The command line of a service binary.
#[derive(Debug, Parser)]
#[command(about = "An rsoa service", long_about = None)]
#[non_exhaustive]
pub struct Cli {
    /// The settings file: .toml, .yaml, .yml or .json.
    #[arg(long, value_name = "FILE")]
    pub settings: PathBuf,
    /// Check the settings, print them (secrets masked) and exit: 0 when they are good, 1 otherwise.
    #[arg(long)]
    pub check_settings: bool,
    /// Run N worker processes of this binary and restart any that exits (PySOA's `--fork`); one per core.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub workers: Option<u16>,
    /// Set by the supervisor on each worker it starts: the worker's number, from 1 (`{{fid}}` in
    /// `heartbeat_file`).
    #[arg(long, value_name = "N", hide = true)]
    pub worker_number: Option<u16>,
    /// The log filter, in `tracing_subscriber::EnvFilter` syntax (`info`, `warn,rsoa_server=debug`, …); wins over
    /// `logging.level` (default `info`).
    #[arg(long, value_name = "FILTER")]
    pub log_level: Option<String>,
    /// How log lines are written; wins over `logging.format` (default `human`).
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,
}

/// What can stop a service from running once its settings are good.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The settings are bad.
    #[error("settings: {0}")]
    Settings(#[from] SettingsError),
    /// Redis could not be reached, or a transport could not be built.
    #[error("redis: {0}")]
    Redis(#[from] rsoa_transport_redis::Error),
    /// The server could not be built.
    #[error("server: {0}")]
    Server(#[from] rsoa_server::Error),
    /// The runtime or the log subscriber could not be started.
    #[error("process: {0}")]
    Process(String),
}

/// Runs a service as a process: parses the command line, loads and checks the settings, installs the log
/// subscriber, connects to Redis, builds the server with `build` (given the settings and a client for every
/// service in `client_routing`) and serves until SIGINT or SIGTERM. Returns the process's exit code: 0 after a
/// clean stop, 1 when the settings are bad or the service cannot start (command-line mistakes exit with 2).
pub fn run<F>(build: F) -> ExitCode
where
    F: FnOnce(&Settings, Client) -> ServerBuilder,
{
    let cli = Cli::parse();
    let settings = match Settings::load(&cli.settings) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("error: settings: {e}");
            return ExitCode::from(1);
        }
    };
    if cli.check_settings {
        let shown = serde_json::to_string_pretty(&settings.masked()).unwrap_or_default();
        println!("{shown}");
        return ExitCode::SUCCESS;
    }
    // Traces are exported by the processes that serve, not by a supervisor; flushed when this is dropped.
    let _telemetry =
        match logging::install(&cli, &settings, cli.worker_number, cli.workers.is_none()) {
            Ok(telemetry) => telemetry,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        };
    if let Some(workers) = cli.workers {
        return supervise::supervise(&cli, &settings, usize::from(workers));
    }
    match serve_process(settings, cli.worker_number, build) {
        Ok(ServeOutcome::StoppedWithJobsRunning(running)) => {
            tracing::warn!(
                running,
                "stopped with jobs still running after the grace period"
            );
            ExitCode::SUCCESS
        }
        Ok(ServeOutcome::SetupFailed) => {
            eprintln!("error: the service's setup failed (logged above)");
            ExitCode::from(1)
        }
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "the service could not run");
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// The server on a one-thread runtime: a process per core is how rsoa servers scale, and on one thread no call
/// pays for waking a second one (about a third less CPU per call in `cargo xtask bench pysoa`).
fn serve_process<F>(
    settings: Settings,
    worker_number: Option<u16>,
    build: F,
) -> Result<ServeOutcome, Error>
where
    F: FnOnce(&Settings, Client) -> ServerBuilder,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Process(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(async move {
        if let Some(address) = settings.metrics.prometheus {
            install_prometheus(address, worker_number)?;
        }
        let backend = RedisBackend::connect(settings.transport.kwargs.clone()).await?;
        let (client, mut backends) =
            client_sharing(&settings.client_routing, Some(&backend)).await?;
        backends.insert(0, backend.clone());
        let mut server_settings = ServerSettings::default();
        server_settings.max_concurrent_jobs = settings.max_concurrent_jobs;
        server_settings.max_actions_per_job = settings.max_actions_per_job;
        server_settings.harakiri_timeout_in_seconds = settings.harakiri.timeout;
        server_settings.request_log_success_level = settings.request_log_success_level;
        server_settings.request_log_error_level = settings.request_log_error_level;
        server_settings
            .extra_fields_to_redact
            .clone_from(&settings.extra_fields_to_redact);
        let watch = (settings.harakiri.timeout > 0).then(Watch::new);
        let mut builder = build(&settings, client)
            .settings(server_settings)
            .async_health_check(move || redis_health(backends.clone()));
        if let Some(watch) = &watch {
            builder = builder.watch(watch.clone());
        }
        let server = builder.build()?;
        let transport = Arc::new(RedisServerTransport::new(&backend, server.service_name())?);
        let heartbeat = match &settings.heartbeat_file {
            Some(template) => Some(
                heartbeat::Heartbeat::start(template, worker_number)
                    .map_err(|e| Error::Process(format!("heartbeat_file {template:?}: {e}")))?,
            ),
            None => None,
        };
        if let Some(watch) = watch {
            watchdog::start(watchdog::Watchdog {
                watch,
                limit: Duration::from_secs(settings.harakiri.timeout),
                service: server.service_name().to_owned(),
                redis: backend.settings().clone(),
                transport: transport.clone(),
                heartbeat: heartbeat.as_ref().map(|h| h.path().to_owned()),
            })
            .map_err(|e| Error::Process(format!("cannot start the watchdog thread: {e}")))?;
        }
        tracing::info!(service = server.service_name(), "serving");
        let grace = Duration::from_secs(settings.harakiri.shutdown_grace);
        let outcome =
            rsoa_server::serve(server, transport, rsoa_server::shutdown_signal(), grace).await;
        drop(heartbeat);
        tracing::info!(?outcome, "stopped");
        backend.close().await;
        Ok(outcome)
    })
}

/// Installs the Prometheus exporter as the process's metrics recorder, listening on `address` (plus the worker's
/// number less one, under `--workers`). Runs inside the runtime, which serves the scrapes.
fn install_prometheus(address: SocketAddr, worker_number: Option<u16>) -> Result<(), Error> {
    let mut address = address;
    if let Some(n) = worker_number {
        let port = address
            .port()
            .checked_add(n.saturating_sub(1))
            .ok_or_else(|| {
                Error::Process(format!(
                    "metrics.prometheus: no port for worker {n} after {address}"
                ))
            })?;
        address.set_port(port);
    }
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .with_http_listener(address)
        .install()
        .map_err(|e| Error::Process(format!("metrics.prometheus {address}: {e}")))?;
    tracing::info!(%address, "serving metrics for Prometheus at /metrics");
    Ok(())
}

/// A client for every service of a `client_routing` map; services with the same Redis settings share one backend
/// (and so its connections). A service run by [`run`] also shares its server's backend with the routes whose
/// settings are the server's but for the server-only ones.
///
/// ```no_run
/// # async fn demo(settings: rsoa_standalone::Settings) -> Result<(), rsoa_standalone::Error> {
/// let client = rsoa_standalone::client(&settings.client_routing).await?;
/// # Ok(()) }
/// ```
pub async fn client(routing: &BTreeMap<String, ClientRoute>) -> Result<Client, Error> {
    Ok(client_sharing(routing, None).await?.0)
}

/// [`client`], reusing `server`'s backend for the routes whose settings match its, server-only settings aside;
/// also returns the backends it connected.
async fn client_sharing(
    routing: &BTreeMap<String, ClientRoute>,
    server: Option<&RedisBackend>,
) -> Result<(Client, Vec<RedisBackend>), Error> {
    let mut backends: Vec<(RedisSettings, RedisBackend)> = Vec::new();
    let mut connected = Vec::new();
    if let Some(server) = server {
        let mut client_side = server.settings().clone();
        client_side.receive_batch_size = None;
        client_side.chunk_messages_larger_than_bytes = None;
        client_side.maximum_request_size_in_bytes = None;
        client_side.maximum_nesting_depth = None;
        backends.push((client_side, server.clone()));
    }
    let mut builder = Client::builder();
    for (service, route) in routing {
        let kwargs = &route.transport.kwargs;
        let backend = match backends.iter().find(|(s, _)| s == kwargs) {
            Some((_, backend)) => backend.clone(),
            None => {
                let backend = RedisBackend::connect(kwargs.clone()).await?;
                backends.push((kwargs.clone(), backend.clone()));
                connected.push(backend.clone());
                backend
            }
        };
        builder = builder.service(RedisClientTransport::new(&backend, service)?);
    }
    Ok((builder.build(), connected))
}

/// The built-in health check of a service run by [`run`]: every Redis master it uses (its own and those of the
/// services it calls) answers `PING`. A master that does not is a `REDIS_UNREACHABLE` error; how long each took
/// is the `redis_ping_ms` diagnostic.
async fn redis_health(backends: Vec<RedisBackend>) -> HealthReport {
    let mut report = HealthReport::default();
    let mut latencies = rsoa_protocol::Map::new();
    let pings = backends.iter().map(RedisBackend::ping);
    for (master, outcome) in futures::future::join_all(pings).await.into_iter().flatten() {
        match outcome {
            Ok(took) => {
                latencies.insert(master, took.as_secs_f64() * 1_000.0);
            }
            Err(e) => report.error(
                "REDIS_UNREACHABLE",
                format!("The Redis master {master} does not answer: {e}"),
            ),
        }
    }
    report.diagnostic("redis_ping_ms", latencies);
    report
}
