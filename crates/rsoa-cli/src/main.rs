//! `rsoa`: call and inspect PySOA and rsoa services over the Redis transport from a shell.
//!
//! ```text
//! rsoa --redis 127.0.0.1:6379 call example square '{"number": 7}'
//! rsoa --settings service.toml status example
//! rsoa --redis 127.0.0.1:6379 introspect example square
//! ```
//!
//! The connection may also come from the environment: `SOA_REDIS` (comma-separated), `SOA_SETTINGS`,
//! `SOA_REDIS_USERNAME`, `SOA_REDIS_PASSWORD` (not `RSOA_`, which the standalone runner reads as its settings).
//!
//! Exit codes: 0 success, 1 the call answered with action or job errors, 2 a usage mistake (a bad flag or body),
//! 3 the service could not be reached (transport failure or timeout).

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use bench::{Load, Stop};
use clap::{Args, Parser, Subcommand};
use rsoa_client::{CallError, Client};
use rsoa_protocol::{ActionRequest, Error as WireError, Map, Value};
use rsoa_transport_redis::{RedisBackend, RedisClientTransport, RedisSettings};

mod bench;
mod tagged;

/// Exit code: the call answered with action or job errors.
const ANSWERED_WITH_ERRORS: u8 = 1;
/// Exit code: a usage mistake (clap's own, a bad body, no connection given).
const USAGE: u8 = 2;
/// Exit code: the service could not be reached.
const UNREACHABLE: u8 = 3;

/// Call and inspect PySOA and rsoa services over Redis.
#[derive(Debug, Parser)]
#[command(name = "rsoa", version, about)]
struct Cli {
    #[command(flatten)]
    connection: Connection,
    #[command(subcommand)]
    command: Command,
}

/// Where the services are.
#[derive(Debug, Args)]
struct Connection {
    /// A settings file of the standalone runner (TOML, YAML or JSON): its `transport` is the Redis to use.
    #[arg(long, global = true, value_name = "FILE", env = "SOA_SETTINGS")]
    settings: Option<PathBuf>,
    /// A Redis master, `HOST:PORT` or a `redis://`/`rediss://` URL; repeat it for a ring of masters.
    #[arg(
        long = "redis",
        global = true,
        value_name = "HOST:PORT",
        env = "SOA_REDIS",
        value_delimiter = ','
    )]
    redis: Vec<String>,
    /// Seconds to wait for a response.
    #[arg(long, global = true, default_value_t = 10, value_name = "SECONDS")]
    timeout: u64,
    /// The Redis user (ACL).
    #[arg(long, global = true, value_name = "NAME", env = "SOA_REDIS_USERNAME")]
    username: Option<String>,
    /// The Redis password.
    #[arg(
        long,
        global = true,
        value_name = "SECRET",
        env = "SOA_REDIS_PASSWORD",
        hide_env_values = true
    )]
    password: Option<String>,
    /// The Redis database number.
    #[arg(long, global = true, value_name = "N")]
    db: Option<u8>,
    /// Connect with TLS.
    #[arg(long, global = true)]
    tls: bool,
    /// With --tls: the certificate authorities to trust (a PEM file).
    #[arg(long, global = true, value_name = "FILE", requires = "tls")]
    ca_certs: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Call an action and print its response body.
    Call {
        /// The service.
        service: String,
        /// The action (not with --job).
        #[arg(required_unless_present = "job", conflicts_with = "job")]
        action: Option<String>,
        /// The request body as JSON, `@FILE` to read it from a file, or `-` for standard input (default `{}`).
        /// PySOA's special types are one-key objects: {"$datetime": "2026-12-04T19:30:05.123456"} (with +00:00 or Z
        /// in UTC), {"$date": "2026-12-04"}, {"$time": "19:30:05"}, {"$decimal": "-12.50"}, {"$amount": "1250
        /// USD"}, {"$bytes": "00ff"} (hex); responses are printed the same way.
        body: Option<String>,
        /// A context value, `KEY=VALUE` (the value as JSON, or as text when it is not JSON); repeatable.
        #[arg(long = "context", value_name = "KEY=VALUE")]
        context: Vec<String>,
        /// A switch to turn on; repeatable.
        #[arg(long = "switch", value_name = "N")]
        switches: Vec<i64>,
        /// The correlation id (default: a new one).
        #[arg(long, value_name = "ID")]
        correlation_id: Option<String>,
        /// Print the response on one line.
        #[arg(long)]
        raw: bool,
        /// Several actions in one job, from a JSON file (`-` for standard input): a list of
        /// `{"action": NAME, "body": {...}}`; the job's actions are printed with their bodies and errors.
        #[arg(long, value_name = "FILE")]
        job: Option<String>,
        /// With --job: the file is a list of jobs (each a list of actions), sent all at once.
        #[arg(long, requires = "job")]
        parallel: bool,
        /// With --job: run every action even after one fails.
        #[arg(long, requires = "job")]
        continue_on_error: bool,
        /// Send the request in JSON (PySOA's JSON serializer) instead of MessagePack.
        #[arg(long)]
        json: bool,
    },
    /// Print a service's `status`: versions and health checks.
    Status {
        /// The service.
        service: String,
        /// Print the response as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print how many requests wait in each service's queue, per Redis master (read-only: `LLEN`).
    Queues {
        /// The services.
        #[arg(required = true)]
        services: Vec<String>,
        /// Print again every `--interval` seconds, in place on a terminal, until interrupted.
        #[arg(long)]
        watch: bool,
        /// Seconds between two prints with `--watch`.
        #[arg(long, default_value_t = 1.0, value_name = "SECONDS")]
        interval: f64,
        /// With `--watch`, stop after this many prints.
        #[arg(long, value_name = "N")]
        count: Option<u64>,
        /// Print JSON (one document a print).
        #[arg(long)]
        json: bool,
    },
    /// Load-test an action: concurrent callers for a count or a duration, optionally rate-limited, with a progress
    /// bar and a latency summary.
    Bench {
        /// The service.
        service: String,
        /// The action.
        action: String,
        /// The request body, as for `call` (default `{}`).
        body: Option<String>,
        /// Callers calling at once.
        #[arg(long, default_value_t = 8, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        concurrency: u64,
        /// Stop after this many calls (default: run for --duration).
        #[arg(long, value_name = "N")]
        count: Option<u64>,
        /// Seconds to run when no --count is given.
        #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
        duration: f64,
        /// At most this many calls a second, all callers together.
        #[arg(long, value_name = "CALLS")]
        rate: Option<f64>,
        /// Print the results as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run PySOA test plans (`*.pysoa` fixture files) against a running service, Python or Rust.
    #[command(subcommand)]
    Plan(PlanCommand),
    /// Print a completion script for a shell (e.g. `rsoa completions bash > /etc/bash_completion.d/rsoa`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff; e.g. `rsoa man > rsoa.1`).
    Man,
    /// Print a service's actions, their documentation and their request and response schemas.
    Introspect {
        /// The service.
        service: String,
        /// Only this action.
        action: Option<String>,
        /// Print the response as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `rsoa plan …`.
#[derive(Debug, Subcommand)]
enum PlanCommand {
    /// Run every case of the fixture files in a folder (or of one file) against the service, and print each
    /// outcome, every failure in full and the counts; exits 1 if a case failed. Cases that stub downstream calls
    /// or freeze time need the service in-process (`rsoa_test::plan`) and are skipped here.
    Run {
        /// A folder of `*.pysoa` files, or one file.
        path: PathBuf,
        /// The service to run them against.
        #[arg(long)]
        service: String,
        /// Only this fixture (the file name without `.pysoa`), like PySOA's `--pysoa-fixture`.
        #[arg(long, value_name = "NAME")]
        fixture: Option<String>,
        /// Only this case, like PySOA's `--pysoa-test-case`.
        #[arg(long, value_name = "NAME", conflicts_with = "case_regex")]
        case: Option<String>,
        /// Only the cases whose name matches, like PySOA's `--pysoa-test-case-regex`.
        #[arg(long, value_name = "REGEX")]
        case_regex: Option<String>,
        /// The values `[[name.path]]` substitutions read (PySOA's `model_constants`): a JSON object, or `@FILE`.
        #[arg(long, value_name = "JSON")]
        model_constants: Option<String>,
    },
}

/// Why a command failed, with its exit code.
#[derive(Debug)]
struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    fn usage(message: impl Into<String>) -> Failure {
        Failure {
            code: USAGE,
            message: message.into(),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(UNREACHABLE);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

async fn run(cli: Cli) -> Result<u8, Failure> {
    match cli.command {
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(
                shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "rsoa",
                &mut script,
            );
            emit(&String::from_utf8_lossy(&script));
            return Ok(0);
        }
        Command::Man => {
            let mut page = Vec::new();
            clap_mangen::Man::new(<Cli as clap::CommandFactory>::command())
                .render(&mut page)
                .map_err(|e| Failure::usage(format!("cannot write the manual page: {e}")))?;
            emit(&String::from_utf8_lossy(&page));
            return Ok(0);
        }
        _ => {}
    }
    let settings = redis_settings(&cli.connection)?;
    let timeout = Duration::from_secs(cli.connection.timeout);
    match cli.command {
        Command::Call {
            service,
            action,
            body,
            context,
            switches,
            correlation_id,
            raw,
            job,
            parallel,
            continue_on_error,
            json,
        } => {
            let request = match (&job, action) {
                (Some(file), _) => Request::Jobs(read_jobs(file, parallel)?),
                (None, Some(action)) => Request::Action(action, read_body(body.as_deref())?),
                (None, None) => return Err(Failure::usage("give an ACTION or --job FILE")),
            };
            let backend = connect_backend(settings, timeout).await?;
            let mut transport = RedisClientTransport::builder(&backend, &service);
            if json {
                transport = transport.serializer("json");
            }
            let transport = transport.build().map_err(|e| unreachable(&e))?;
            let client = Client::builder()
                .timeout(timeout)
                .service(transport)
                .build();
            // Every option in one place: a builder's `options` replaces what was set on it before.
            let mut options = rsoa_client::CallOptions::new()
                .timeout(timeout)
                .switches(switches)
                .continue_on_error(continue_on_error);
            if let Some(id) = correlation_id {
                options = options.correlation_id(id);
            }
            for pair in &context {
                let (key, value) = context_value(pair)?;
                options = options.context(key, value);
            }
            match request {
                Request::Action(action, body) => {
                    let response = client
                        .call_action(&service, &action, body)
                        .options(options)
                        .await
                        .map_err(|e| call_failure(&e))?;
                    emit(&json_text(&Value::Map(response.body), raw)?);
                }
                Request::Jobs(jobs) => {
                    // A job's errors are shown with its actions, not raised.
                    let options = options.raise_action_errors(false).raise_job_errors(false);
                    let parallel = jobs.len() > 1 || parallel;
                    let responses = if parallel {
                        let jobs = jobs
                            .into_iter()
                            .map(|actions| rsoa_client::Job::new(&service, actions));
                        client
                            .call_jobs_parallel(jobs)
                            .options(options)
                            .await
                            .map_err(|e| call_failure(&e))?
                    } else {
                        let actions = jobs.into_iter().next().unwrap_or_default();
                        vec![client
                            .call_actions(&service, actions)
                            .options(options)
                            .await
                            .map_err(|e| call_failure(&e))?]
                    };
                    let failed = responses.iter().any(|r| {
                        !r.errors.is_empty() || r.actions.iter().any(|a| !a.errors.is_empty())
                    });
                    let shown: Vec<Value> = responses.iter().map(|r| r.to_value(true)).collect();
                    let shown = if parallel {
                        Value::Array(shown)
                    } else {
                        shown.into_iter().next().unwrap_or_default()
                    };
                    emit(&json_text(&shown, raw)?);
                    if failed {
                        return Ok(ANSWERED_WITH_ERRORS);
                    }
                }
            }
        }
        Command::Status { service, json } => {
            let body = builtin(settings, &service, "status", Map::new(), timeout).await?;
            emit(&render(body, json, status_text)?);
        }
        Command::Plan(PlanCommand::Run {
            path,
            service,
            fixture,
            case,
            case_regex,
            model_constants,
        }) => {
            let case_regex = case_regex.map(|re| regex_filter(&re)).transpose()?;
            let mut plan = rsoa_test::plan::Plan::new(&path).filter(rsoa_test::plan::Filter {
                fixture,
                case,
                case_regex,
            });
            if let Some(constants) = model_constants {
                plan = plan.model_constants(read_constants(&constants)?);
            }
            // A fixture that does not parse is a usage mistake, found before anything is sent.
            let fixtures = plan.load().map_err(|e| Failure::usage(e.to_string()))?;
            let backend = connect_backend(settings, timeout).await?;
            let transport = RedisClientTransport::builder(&backend, &service)
                .build()
                .map_err(|e| unreachable(&e))?;
            let client = Client::builder()
                .timeout(timeout)
                .service(transport)
                .build();
            let target = rsoa_test::plan::RemoteService::new(client, &service);
            let report = plan.run_fixtures(&fixtures, &target).await;
            emit(&format!("{report}\n"));
            return Ok(if report.failed() > 0 {
                ANSWERED_WITH_ERRORS
            } else {
                0
            });
        }
        Command::Introspect {
            service,
            action,
            json,
        } => {
            let mut body = Map::new();
            if let Some(action) = &action {
                body.insert("action_name", action.as_str());
            }
            let body = builtin(settings, &service, "introspect", body, timeout).await?;
            emit(&render(body, json, introspection_text)?);
        }
        Command::Queues {
            services,
            watch,
            interval,
            count,
            json,
        } => {
            let interval = Duration::try_from_secs_f64(interval)
                .map_err(|e| Failure::usage(format!("--interval: {e}")))?;
            let backend = connect_backend(settings, timeout).await?;
            let prints = if watch { count } else { Some(1) };
            queues(&backend, &services, interval, prints, json).await?;
        }
        Command::Bench {
            service,
            action,
            body,
            concurrency,
            count,
            duration,
            rate,
            json,
        } => {
            let body = read_body(body.as_deref())?;
            let stop = match count {
                Some(count) => Stop::Count(count),
                None => Stop::After(
                    Duration::try_from_secs_f64(duration)
                        .map_err(|e| Failure::usage(format!("--duration: {e}")))?,
                ),
            };
            let pause = match rate {
                None => None,
                Some(rate) if rate > 0.0 && rate.is_finite() => {
                    Some(Duration::from_secs_f64(1.0 / rate))
                }
                Some(rate) => {
                    return Err(Failure::usage(format!(
                        "--rate {rate}: a positive number of calls a second"
                    )))
                }
            };
            let client = connect(settings, &service, timeout).await?;
            let load = Load {
                service,
                action,
                body,
                concurrency,
                stop,
                pause,
                timeout,
            };
            let results = bench::run(&client, load).await;
            emit(&if json { results.json() } else { results.text() });
            if results.errors() > 0 {
                return Ok(ANSWERED_WITH_ERRORS);
            }
        }
        // Answered above, before any Redis is needed.
        Command::Completions { .. } | Command::Man => {}
    }
    Ok(0)
}

/// The Redis settings: from `--settings` (its `transport`, as a client), or a standard ring from `--redis`; the
/// connection flags over either.
fn redis_settings(connection: &Connection) -> Result<RedisSettings, Failure> {
    let mut redis = match (&connection.settings, connection.redis.is_empty()) {
        (Some(_), false) => return Err(Failure::usage("give --settings or --redis, not both")),
        (Some(path), true) => {
            let settings = rsoa_standalone::Settings::load(path)
                .map_err(|e| Failure::usage(format!("settings: {e}")))?;
            let mut redis = settings.transport.kwargs;
            // What only a server uses.
            redis.receive_batch_size = None;
            redis.chunk_messages_larger_than_bytes = None;
            redis
        }
        (None, false) => RedisSettings::standard(connection.redis.iter().cloned()),
        (None, true) => {
            return Err(Failure::usage(
                "no Redis to use: give --redis HOST:PORT or --settings FILE",
            ))
        }
    };
    let kwargs = &mut redis.backend_layer_kwargs.connection_kwargs;
    if let Some(username) = &connection.username {
        kwargs.username = Some(username.clone());
    }
    if let Some(password) = &connection.password {
        kwargs.password = Some(password.clone());
    }
    if let Some(db) = connection.db {
        kwargs.db = Some(db);
    }
    if connection.tls {
        kwargs.ssl = true;
    }
    if let Some(ca_certs) = &connection.ca_certs {
        kwargs.ssl_ca_certs = Some(ca_certs.clone());
    }
    Ok(redis)
}

fn unreachable(e: &dyn std::fmt::Display) -> Failure {
    Failure {
        code: UNREACHABLE,
        message: format!("redis: {e}"),
    }
}

async fn connect_backend(
    settings: RedisSettings,
    timeout: Duration,
) -> Result<RedisBackend, Failure> {
    tokio::time::timeout(timeout, RedisBackend::connect(settings))
        .await
        .map_err(|_| unreachable(&format!("no connection within {} s", timeout.as_secs())))?
        .map_err(|e| unreachable(&e))
}

async fn connect(
    settings: RedisSettings,
    service: &str,
    timeout: Duration,
) -> Result<Client, Failure> {
    let backend = connect_backend(settings, timeout).await?;
    let transport = RedisClientTransport::new(&backend, service).map_err(|e| unreachable(&e))?;
    Ok(Client::builder()
        .timeout(timeout)
        .service(transport)
        .build())
}

/// `rsoa queues`: the depth of each service's request queue on each master, printed `prints` times (for ever
/// when `None`), `interval` apart.
async fn queues(
    backend: &RedisBackend,
    services: &[String],
    interval: Duration,
    prints: Option<u64>,
    json: bool,
) -> Result<(), Failure> {
    use std::fmt::Write;
    let in_place = prints != Some(1) && !json && std::io::stdout().is_terminal();
    let mut printed = 0;
    loop {
        // Per service and master: requests waiting, and reply queues with responses nobody has read yet.
        let mut rows = Vec::new();
        for service in services {
            let waiting = backend.queue_lengths(service).await;
            let replies = backend.reply_queues(service).await;
            for ((master, waiting), (_, replies)) in waiting.into_iter().zip(replies) {
                rows.push((service.as_str(), master, waiting, replies));
            }
        }
        let failed = rows.iter().find_map(|(_, master, waiting, replies)| {
            let error = waiting.as_ref().err().or(replies.as_ref().err())?;
            Some(format!("{master}: {error}"))
        });
        let text = if json {
            let rows: Vec<serde_json::Value> = rows
                .iter()
                .map(|(service, master, waiting, replies)| {
                    let replies = replies.as_ref().ok();
                    serde_json::json!({
                        "service": service,
                        "master": master,
                        "waiting": waiting.as_ref().ok(),
                        "reply_queues": replies.map(|r| r.0),
                        "unread_responses": replies.map(|r| r.1),
                    })
                })
                .collect();
            format!("{}\n", serde_json::Value::Array(rows))
        } else {
            let width = services
                .iter()
                .map(String::len)
                .max()
                .unwrap_or(0)
                .max("service".len());
            let mut out = String::new();
            if in_place {
                // Home and clear: the table is redrawn where it was.
                out.push_str("\u{1b}[H\u{1b}[2J");
            }
            let _ = writeln!(
                out,
                "{:width$}  {:24}  waiting  reply queues  unread responses",
                "service", "master"
            );
            for (service, master, waiting, replies) in &rows {
                let shown = |n: Result<u64, &String>| match n {
                    Ok(n) => n.to_string(),
                    Err(e) => format!("? ({e})"),
                };
                let (queues, unread) = match replies {
                    Ok((queues, unread)) => (queues.to_string(), unread.to_string()),
                    Err(e) => (format!("? ({e})"), String::new()),
                };
                let _ = writeln!(
                    out,
                    "{service:width$}  {master:24}  {:7}  {queues:12}  {unread}",
                    shown(waiting.as_ref().copied())
                );
            }
            out
        };
        emit(&text);
        if let Some(why) = failed {
            return Err(unreachable(&why));
        }
        printed += 1;
        if prints.is_some_and(|n| printed >= n) {
            return Ok(());
        }
        tokio::time::sleep(interval).await;
    }
}

/// Calls one of a service's built-in actions (`status`, `introspect`); its response body.
async fn builtin(
    settings: RedisSettings,
    service: &str,
    action: &str,
    body: Map,
    timeout: Duration,
) -> Result<Map, Failure> {
    let client = connect(settings, service, timeout).await?;
    let response = client
        .call_action(service, action, body)
        .timeout(timeout)
        .await
        .map_err(|e| call_failure(&e))?;
    Ok(response.body)
}

/// A built-in's response as JSON, or as `readable` writes it.
fn render(body: Map, json: bool, readable: fn(&Map) -> String) -> Result<String, Failure> {
    if json {
        json_text(&Value::Map(body), false)
    } else {
        Ok(readable(&body))
    }
}

/// What `rsoa call` sends: one action, or jobs of several actions (`--job`).
enum Request {
    Action(String, Map),
    Jobs(Vec<Vec<ActionRequest>>),
}

/// The jobs of a `--job` file: a list of actions, or with `parallel` a list of such lists.
fn read_jobs(file: &str, parallel: bool) -> Result<Vec<Vec<ActionRequest>>, Failure> {
    let text = if file == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| Failure::usage(format!("--job from standard input: {e}")))?;
        text
    } else {
        std::fs::read_to_string(file).map_err(|e| Failure::usage(format!("--job {file:?}: {e}")))?
    };
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        Failure::usage(format!(
            "--job {file:?} is not JSON: {e} (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    let actions = |json: &serde_json::Value, path: &str| -> Result<Vec<ActionRequest>, Failure> {
        let list = json.as_array().ok_or_else(|| {
            Failure::usage(format!("--job {path}: a list of actions is expected"))
        })?;
        list.iter()
            .enumerate()
            .map(|(i, entry)| {
                let name = entry
                    .get("action")
                    .and_then(serde_json::Value::as_str)
                    .ok_or_else(|| {
                        Failure::usage(format!(
                            "--job {path}.{i}: {{\"action\": NAME, \"body\": {{...}}}} is expected"
                        ))
                    })?;
                let body = match entry.get("body") {
                    None => Map::new(),
                    Some(body) => match tagged::from_json(body) {
                        Ok(Value::Map(map)) => map,
                        Ok(_) => {
                            return Err(Failure::usage(format!(
                                "--job {path}.{i}.body: not an object"
                            )))
                        }
                        Err(e) => return Err(Failure::usage(format!("--job {path}.{i}: {e}"))),
                    },
                };
                Ok(ActionRequest::new(name, body))
            })
            .collect()
    };
    if parallel {
        let jobs = json
            .as_array()
            .ok_or_else(|| Failure::usage("--job with --parallel: a list of jobs is expected"))?;
        jobs.iter()
            .enumerate()
            .map(|(i, job)| actions(job, &format!("jobs.{i}")))
            .collect()
    } else {
        Ok(vec![actions(&json, "actions")?])
    }
}

/// The request body: JSON from the argument, `@FILE`, or `-` for standard input; `{}` when there is none.
fn regex_filter(re: &str) -> Result<rsoa_test::plan::Regex, Failure> {
    rsoa_test::plan::Regex::new(re).map_err(|e| Failure::usage(format!("--case-regex: {e}")))
}

fn read_constants(arg: &str) -> Result<serde_json::Value, Failure> {
    let text = match arg.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| Failure::usage(format!("--model-constants file {path:?}: {e}")))?,
        None => arg.to_owned(),
    };
    match serde_json::from_str(&text) {
        Ok(value @ serde_json::Value::Object(_)) => Ok(value),
        Ok(_) => Err(Failure::usage("--model-constants must be a JSON object")),
        Err(e) => Err(Failure::usage(format!("--model-constants: {e}"))),
    }
}

fn read_body(body: Option<&str>) -> Result<Map, Failure> {
    let text = match body {
        None => return Ok(Map::new()),
        Some("-") => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| Failure::usage(format!("body from standard input: {e}")))?;
            text
        }
        Some(arg) => match arg.strip_prefix('@') {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|e| Failure::usage(format!("body file {path:?}: {e}")))?,
            None => arg.to_owned(),
        },
    };
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        Failure::usage(format!(
            "the body is not JSON: {e} (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    match tagged::from_json(&json) {
        Ok(Value::Map(map)) => Ok(map),
        Ok(other) => Err(Failure::usage(format!(
            "the body must be a JSON object, not a {}",
            other.kind()
        ))),
        Err(e) => Err(Failure::usage(format!("the body is not valid: {e}"))),
    }
}

/// A `KEY=VALUE` context entry: the value as JSON when it parses, else as text.
fn context_value(pair: &str) -> Result<(String, Value), Failure> {
    let (key, text) = pair
        .split_once('=')
        .ok_or_else(|| Failure::usage(format!("--context {pair:?}: expected KEY=VALUE")))?;
    let value = serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|json| tagged::from_json(&json).ok())
        .unwrap_or_else(|| Value::from(text));
    Ok((key.to_owned(), value))
}

/// What a failed call says, and its exit code: errors the service answered with (1), or no answer (3).
fn call_failure(error: &CallError) -> Failure {
    let errors = error.wire_errors();
    if errors.is_empty() {
        return Failure {
            code: UNREACHABLE,
            message: error.to_string(),
        };
    }
    let lines: Vec<String> = errors.iter().map(|e| describe_error(e)).collect();
    Failure {
        code: ANSWERED_WITH_ERRORS,
        message: format!("the call failed:\n{}", lines.join("\n")),
    }
}

fn describe_error(error: &WireError) -> String {
    match &error.field {
        Some(field) => format!("  {} ({field}): {}", error.code, error.message),
        None => format!("  {}: {}", error.code, error.message),
    }
}

/// Writes `text` to standard output; a reader that went away (`rsoa … | head`) ends the output, not the process
/// with a panic.
fn emit(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("error: cannot write the output: {e}");
        }
    }
}

/// A value as JSON: indented (coloured keys on a terminal), or on one line.
fn json_text(value: &Value, raw: bool) -> Result<String, Failure> {
    let json = tagged::to_json(value);
    let text = if raw {
        serde_json::to_string(&json)
    } else {
        serde_json::to_string_pretty(&json)
    }
    .map_err(|e| Failure {
        code: ANSWERED_WITH_ERRORS,
        message: format!("the response cannot be shown as JSON: {e}"),
    })?;
    if !raw && std::io::stdout().is_terminal() {
        return Ok(format!("{}\n", colour_keys(&text)));
    }
    Ok(format!("{text}\n"))
}

/// Pretty JSON with its object keys in bold blue (a terminal's reading aid; never when piped).
fn colour_keys(text: &str) -> String {
    text.lines()
        .map(|line| {
            let trimmed = line.trim_start();
            let indent = &line[..line.len() - trimmed.len()];
            match trimmed
                .strip_prefix('"')
                .and_then(|rest| rest.split_once("\": "))
            {
                Some((key, rest)) => format!("{indent}\u{1b}[1;34m\"{key}\"\u{1b}[0m: {rest}"),
                None => line.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn status_text(body: &Map) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for key in ["version", "build", "pysoa", "conformity", "python"] {
        if let Some(value) = body.get(key).and_then(Value::as_str) {
            let _ = writeln!(out, "{key}: {value}");
        }
    }
    let Some(health) = body.get("healthcheck") else {
        return out;
    };
    for (title, key) in [("errors", "errors"), ("warnings", "warnings")] {
        let entries = health
            .get(key)
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        if entries.is_empty() {
            let _ = writeln!(out, "{title}: none");
        } else {
            let _ = writeln!(out, "{title}:");
        }
        for entry in entries {
            let parts: Vec<&str> = entry
                .as_array()
                .map(|pair| pair.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let _ = writeln!(out, "  {}", parts.join(": "));
        }
    }
    if let Some(diagnostics) = health
        .get("diagnostics")
        .filter(|d| d.as_map().is_some_and(|m| !m.is_empty()))
    {
        let _ = writeln!(out, "diagnostics:");
        if let Ok(text) = serde_json::to_string_pretty(diagnostics) {
            for line in text.lines() {
                let _ = writeln!(out, "  {line}");
            }
        }
    }
    out
}

fn introspection_text(body: &Map) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    if let Some(doc) = body.get("documentation").and_then(Value::as_str) {
        let _ = writeln!(out, "{doc}\n");
    }
    let Some(actions) = body.get("actions").and_then(Value::as_map) else {
        return out;
    };
    let names = body
        .get("action_names")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    for name in names.iter().filter_map(Value::as_str) {
        let Some(action) = actions.get(name) else {
            continue;
        };
        let _ = writeln!(out, "{name}");
        if let Some(doc) = action.get("documentation").and_then(Value::as_str) {
            let _ = writeln!(out, "  {doc}");
        }
        for (title, key) in [
            ("request", "request_schema"),
            ("response", "response_schema"),
        ] {
            match action.get(key).filter(|s| !s.is_null()) {
                None => {
                    let _ = writeln!(out, "  {title}: any");
                }
                Some(schema) => {
                    let _ = writeln!(out, "  {title}:");
                    schema_text(&mut out, schema, 2);
                }
            }
        }
        out.push('\n');
    }
    out
}

/// A Conformity description as an indented tree: one line a field, its type and constraints.
fn schema_text(out: &mut String, schema: &Value, depth: usize) {
    use std::fmt::Write;
    let pad = "  ".repeat(depth);
    match schema.get("type").and_then(Value::as_str) {
        Some("dictionary") => {
            let optional = schema.get("optional_keys").and_then(Value::as_array);
            let contents = schema.get("contents").and_then(Value::as_map);
            for (key, field) in contents.into_iter().flat_map(Map::iter) {
                let key_text = key.as_str().unwrap_or("?");
                let mark = if optional.is_some_and(|o| o.contains(key)) {
                    "?"
                } else {
                    ""
                };
                let _ = writeln!(out, "{pad}{key_text}{mark}: {}", summary(field));
                if matches!(
                    field.get("type").and_then(Value::as_str),
                    Some("dictionary" | "list")
                ) {
                    schema_text(out, field, depth + 1);
                }
            }
        }
        Some("list") => {
            if let Some(contents) = schema.get("contents") {
                let _ = writeln!(out, "{pad}[items]: {}", summary(contents));
                if contents.get("type").and_then(Value::as_str) == Some("dictionary") {
                    schema_text(out, contents, depth + 1);
                }
            }
        }
        _ => {
            let _ = writeln!(out, "{pad}{}", summary(schema));
        }
    }
}

/// A field's type and its constraints on one line, e.g. `integer (gte 0) — The number to square`.
fn summary(field: &Value) -> String {
    // A nullable field's description may sit on the field it wraps.
    let description = field.get("description").or_else(|| {
        field
            .get("nullable")
            .and_then(|inner| inner.get("description"))
    });
    match description.and_then(Value::as_str) {
        Some(description) => format!("{} — {description}", bare(field)),
        None => bare(field),
    }
}

/// A field's type and its constraints, without its description.
fn bare(field: &Value) -> String {
    let kind = field.get("type").and_then(Value::as_str).unwrap_or("?");
    let mut constraints = Vec::new();
    for key in ["gt", "gte", "lt", "lte", "min_length", "max_length"] {
        if let Some(bound) = field.get(key).filter(|b| !b.is_null()) {
            constraints.push(format!(
                "{key} {}",
                serde_json::to_string(bound).unwrap_or_default()
            ));
        }
    }
    if field.get("allow_blank").and_then(Value::as_bool) == Some(false) {
        constraints.push("not blank".to_owned());
    }
    let text = match kind {
        "nullable" => format!(
            "{} or null",
            field.get("nullable").map_or_else(|| "?".to_owned(), bare)
        ),
        "constant" => format!(
            "one of {}",
            field
                .get("values")
                .map(|v| serde_json::to_string(v).unwrap_or_default())
                .unwrap_or_default()
        ),
        other => other.to_owned(),
    };
    if constraints.is_empty() {
        text
    } else {
        format!("{text} ({})", constraints.join(", "))
    }
}
