//! The `example-service` binary, run as a process by the standalone entry point: its settings file, the
//! environment over it, every kind of bad settings, and serving on a real `redis-server` until SIGTERM.

#[path = "../../../crates/rsoa-transport-redis/tests/support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use assert_cmd::cargo::cargo_bin;
use nix::sys::signal::Signal;

const SETTINGS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/example-service.toml");

fn service() -> Command {
    let mut command = Command::new(cargo_bin("example-service"));
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default());
    command
}

/// A settings file of this test's own, with `text` in it.
fn settings_file(name: &str, text: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("example-service");
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write settings");
    path
}

const GOOD: &str = "[transport.kwargs]\nbackend_type = \"redis.standard\"\n";

/// Runs `--check-settings` on the example's settings file with `env`, expecting success; what it printed.
fn check_settings(env: &[(&str, &str)]) -> serde_json::Value {
    let output = service()
        .args(["--settings", SETTINGS, "--check-settings"])
        .envs(env.iter().copied())
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&stdout).expect("JSON")
}

#[test]
fn check_settings_needs_no_redis_and_shows_the_effective_settings() {
    let shown = check_settings(&[]);
    assert_eq!(shown["max_concurrent_jobs"], 64);
    assert_eq!(
        shown["transport"]["kwargs"]["receive_batch_size"], 128,
        "the tuned default"
    );
    assert_eq!(shown["extra"]["greeting"], "hello");
}

#[test]
fn the_environment_wins_over_the_file() {
    let shown = check_settings(&[
        ("RSOA_MAX_CONCURRENT_JOBS", "3"),
        (
            "RSOA_TRANSPORT__KWARGS__BACKEND_LAYER_KWARGS__HOSTS",
            "[\"10.9.8.7:6380\"]",
        ),
        (
            "RSOA_TRANSPORT__KWARGS__BACKEND_LAYER_KWARGS__CONNECTION_KWARGS__PASSWORD",
            "hunter2",
        ),
    ]);
    assert_eq!(shown["max_concurrent_jobs"], 3);
    assert_eq!(shown["transport"]["kwargs"]["receive_batch_size"], 6);
    let kwargs = &shown["transport"]["kwargs"]["backend_layer_kwargs"];
    assert_eq!(kwargs["hosts"][0], "10.9.8.7:6380");
    assert_eq!(kwargs["connection_kwargs"]["password"], "********");
    assert!(!shown.to_string().contains("hunter2"));
}

#[test]
fn every_kind_of_bad_settings_exits_1_naming_what_is_wrong() {
    let cases = [
        ("missing.toml", None, "missing.toml"),
        ("settings.ini", Some(GOOD), "extension"),
        ("syntax.toml", Some("[transport.kwargs\n"), "syntax.toml"),
        (
            "unknown.toml",
            Some(&*format!("{GOOD}queue_capacty = 5\n")),
            "queue_capacty",
        ),
        (
            "type.toml",
            Some(&*format!("{GOOD}queue_capacity = \"many\"\n")),
            "transport.kwargs.queue_capacity",
        ),
        (
            "zero.toml",
            Some(&*format!("max_concurrent_jobs = 0\n{GOOD}")),
            "max_concurrent_jobs",
        ),
        (
            "no-transport.yaml",
            Some("max_concurrent_jobs: 4\n"),
            "transport",
        ),
        (
            "bad.json",
            Some("{\"transport\": {\"kwargs\": {\"backend_type\": \"redis.nope\"}}}"),
            "backend_type",
        ),
        (
            "ratio.toml",
            Some(&*format!("{GOOD}[traces]\nsample_ratio = 1.5\n")),
            "traces.sample_ratio: 1.5 is not a share from 0 to 1",
        ),
        (
            "endpoint.toml",
            Some(&*format!(
                "{GOOD}[traces]\notlp_endpoint = \"collector:4318\"\n"
            )),
            "traces.otlp_endpoint: \"collector:4318\" is not an http:// or https:// URL",
        ),
    ];
    for (name, text, expected) in cases {
        let path = match text {
            Some(text) => settings_file(name, text),
            None => PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
                .join("example-service")
                .join(name),
        };
        let output = service()
            .arg("--settings")
            .arg(&path)
            .arg("--check-settings")
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{name}: {stderr}");
        assert!(stderr.contains(expected), "{name}: {stderr}");
        assert!(output.stdout.is_empty(), "{name}");
    }
}

#[test]
fn a_command_line_mistake_exits_2() {
    let output = service().arg("--check-settings").output().expect("run");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--settings"));
}

/// The stderr lines of a child process, read on a thread of their own.
struct Logs(mpsc::Receiver<String>);

impl Logs {
    fn of(child: &mut Child) -> Logs {
        let stderr = child.stderr.take().expect("stderr");
        let (lines, logged) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        Logs(logged)
    }

    /// The next JSON log line whose message is `message`, within the deadline.
    fn next(&self, message: &str) -> serde_json::Value {
        loop {
            let line = self
                .0
                .recv_timeout(support::DEADLINE)
                .unwrap_or_else(|_| panic!("no log line {message:?}"));
            let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else {
                panic!("not a JSON log line: {line}");
            };
            if event["fields"]["message"] == message {
                return event;
            }
        }
    }
}

/// `example`'s `square` of 7 through Redis at `port`.
fn square_over_redis(port: u16) -> Option<i64> {
    let (runtime, client) = example_client(port);
    let response = runtime
        .block_on(async {
            client
                .call_action("example", "square", &serde_json::json!({"number": 7}))
                .timeout(Duration::from_secs(10))
                .await
        })
        .expect("call");
    response.body["square"].as_i64()
}

/// `example-service` with the example's settings file, its server and its route to `ledger` on the Redis at
/// `port`.
fn service_on(port: u16) -> Command {
    let hosts = format!("[\"127.0.0.1:{port}\"]");
    let mut command = service();
    command
        .args(["--settings", SETTINGS])
        .env(
            "RSOA_TRANSPORT__KWARGS__BACKEND_LAYER_KWARGS__HOSTS",
            &hosts,
        )
        .env(
            "RSOA_CLIENT_ROUTING__LEDGER__TRANSPORT__KWARGS__BACKEND_LAYER_KWARGS__HOSTS",
            &hosts,
        );
    command
}

/// Starts `example-service` on the Redis at `port` with JSON logs, these extra arguments and environment.
fn start_on(port: u16, args: &[&str], env: &[(&str, &str)]) -> Child {
    service_on(port)
        .args(["--log-format", "json"])
        .args(args)
        .envs(env.iter().copied())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start")
}

fn signal(pid: u32, signal: nix::sys::signal::Signal) {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).expect("pid"));
    nix::sys::signal::kill(pid, signal).unwrap_or_else(|e| panic!("{signal} to {pid}: {e}"));
}

/// Sends SIGTERM to `child` and expects it to exit cleanly.
fn stop_cleanly(child: &mut Child) {
    signal(child.id(), Signal::SIGTERM);
    let status = support::wait_for("the process to exit", || child.try_wait().ok().flatten());
    assert!(status.success(), "{status}");
}

fn is_running(pid: u64) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn serves_on_redis_until_sigterm_and_stops_cleanly() {
    let redis = support::redis(&[]);
    let mut child = start_on(redis.port, &[], &[]);
    let logs = Logs::of(&mut child);
    // The setup hook read the service's own settings.
    assert_eq!(logs.next("set up")["fields"]["greeting"], "hello");
    logs.next("serving");
    // The server and its route to `ledger` (the same Redis settings) share one backend: two connections for
    // sending and the server's one receiving, beside the one counting (a backend of its own for the route would
    // add two more).
    support::wait_for("the service's three connections", || {
        (support::connections(redis.port) == 4).then_some(())
    });
    assert_eq!(square_over_redis(redis.port), Some(49));
    // `status` runs the built-in health check: the Redis master answers.
    let (runtime, client) = example_client(redis.port);
    let status = runtime
        .block_on(async {
            client
                .call_action("example", "status", ())
                .timeout(Duration::from_secs(10))
                .await
        })
        .expect("status");
    let health = &status.body["healthcheck"];
    assert_eq!(
        health["errors"],
        rsoa_protocol::Value::Array(vec![]),
        "{health:?}"
    );
    let ping =
        &health["diagnostics"]["redis_ping_ms"][format!("127.0.0.1:{}", redis.port).as_str()];
    assert!(ping.as_f64().is_some_and(|ms| ms >= 0.0), "{health:?}");
    signal(child.id(), Signal::SIGTERM);
    logs.next("stopped");
    let status = support::wait_for("the service to exit", || child.try_wait().ok().flatten());
    assert!(status.success(), "{status}");
}

#[test]
fn a_failing_setup_hook_exits_1_before_serving() {
    let redis = support::redis(&[]);
    let mut child = start_on(redis.port, &[], &[("RSOA_EXTRA__GREETING", "\"\"")]);
    let logs = Logs::of(&mut child);
    let failed = logs.next("the server could not start");
    assert!(
        failed["fields"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("extra.greeting must be a non-empty string")),
        "{failed}"
    );
    let status = support::wait_for("the service to exit", || child.try_wait().ok().flatten());
    assert_eq!(status.code(), Some(1));
}

#[test]
fn workers_serve_a_killed_one_is_replaced_and_sigterm_stops_them_all() {
    let redis = support::redis(&[]);
    let mut supervisor = start_on(redis.port, &["--workers", "2"], &[]);
    let logs = Logs::of(&mut supervisor);
    let mut pids = Vec::new();
    for _ in 0..2 {
        pids.push(
            logs.next("worker started")["fields"]["pid"]
                .as_u64()
                .expect("pid"),
        );
    }
    logs.next("serving");
    logs.next("serving");
    assert_eq!(square_over_redis(redis.port), Some(49));
    // A worker killed outright is started again, as a new process.
    signal(pids[0] as u32, Signal::SIGKILL);
    logs.next("worker exited; restarting it");
    let restarted = logs.next("worker started");
    let new_pid = restarted["fields"]["pid"].as_u64().expect("pid");
    assert!(!pids.contains(&new_pid), "{restarted}");
    logs.next("serving");
    assert_eq!(square_over_redis(redis.port), Some(49));
    // SIGTERM reaches every worker; each stops gracefully, and so does the supervisor.
    stop_cleanly(&mut supervisor);
    for pid in [pids[1], new_pid] {
        assert!(!is_running(pid), "worker {pid} still runs");
    }
}

#[test]
fn a_worker_that_cannot_run_makes_the_supervisor_give_up() {
    let nothing = support::free_port();
    // Redis is not there: each worker fails to connect within a fifth of a second and exits 1.
    let mut supervisor = service()
        .args(["--settings", SETTINGS, "--workers", "1"])
        .env(
            "RSOA_TRANSPORT__KWARGS__BACKEND_LAYER_KWARGS__HOSTS",
            format!("[\"127.0.0.1:{nothing}\"]"),
        )
        .env(
            "RSOA_TRANSPORT__KWARGS__BACKEND_LAYER_KWARGS__CONNECTION_KWARGS__SOCKET_CONNECT_TIMEOUT",
            "0.2",
        )
        .env("RSOA_SUPERVISOR__MAX_CRASHES", "3")
        .stderr(Stdio::piped())
        .spawn()
        .expect("start");
    let status = support::wait_for("the supervisor to give up", || {
        supervisor.try_wait().ok().flatten()
    });
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut supervisor.stderr.take().expect("stderr"), &mut stderr)
        .expect("stderr");
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("gave up after 3 worker crashes"),
        "{stderr}"
    );
}

#[test]
fn the_heartbeat_file_stays_fresh_while_serving_and_is_removed_on_exit() {
    let redis = support::redis(&[]);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("heartbeat");
    std::fs::create_dir_all(&dir).expect("dir");
    let template = dir.join("example-{{pid}}-{{fid}}.beat");
    let mut child = start_on(
        redis.port,
        &[],
        &[("RSOA_HEARTBEAT_FILE", template.to_str().expect("path"))],
    );
    let logs = Logs::of(&mut child);
    logs.next("serving");
    let path = dir.join(format!("example-{}-main.beat", child.id()));
    let read = || -> Option<f64> { std::fs::read_to_string(&path).ok()?.parse().ok() };
    let first = read().expect("a heartbeat written before serving");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    assert!((now - first).abs() < 30.0, "{first} is the time ({now})");
    let later = support::wait_for("the heartbeat to be refreshed", || {
        read().filter(|&t| t > first)
    });
    assert!(later - first < 10.0, "{first} then {later}");
    stop_cleanly(&mut child);
    assert!(!path.exists(), "removed on a clean exit");
}

#[test]
fn sigterm_with_jobs_in_flight_answers_every_one() {
    let redis = support::redis(&[]);
    let (runtime, client) = example_client(redis.port);
    // Twenty slow requests wait in the queue before the service starts.
    let options = rsoa_client::CallOptions::new().timeout(Duration::from_secs(30));
    let ids: Vec<u64> = runtime.block_on(async {
        let mut ids = Vec::new();
        for n in 0..20_u64 {
            let slow = rsoa_client::action("slow", &serde_json::json!({"millis": 1_000 + n}))
                .expect("action");
            ids.push(
                client
                    .send_request("example", vec![slow], &options)
                    .await
                    .expect("sent"),
            );
        }
        ids
    });
    let mut child = start_on(redis.port, &[], &[]);
    let logs = Logs::of(&mut child);
    logs.next("serving");
    // Once the queue is empty, every request is inside the process, running; then the stop comes.
    support::wait_for("the service to take every request", || {
        (support::llen(redis.port, "pysoa:service.example") == 0).then_some(())
    });
    signal(child.id(), Signal::SIGTERM);
    let answered =
        runtime.block_on(client.get_all_responses("example", Some(Duration::from_secs(30))));
    let answered = answered.expect("responses");
    assert_eq!(answered.iter().map(|(id, _)| *id).collect::<Vec<_>>(), ids);
    for (n, (_, outcome)) in answered.iter().enumerate() {
        let job = outcome.as_ref().expect("answered");
        assert_eq!(
            job.actions[0].body["waited_ms"].as_i64(),
            Some(1_000 + n as i64)
        );
    }
    let status = support::wait_for("the service to exit", || child.try_wait().ok().flatten());
    assert!(status.success(), "{status}");
}

/// A client of `example` on the Redis at `port`, with the runtime to drive it.
fn example_client(port: u16) -> (tokio::runtime::Runtime, rsoa_client::Client) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let backend = runtime.block_on(async {
        rsoa_transport_redis::RedisBackend::connect(rsoa_transport_redis::RedisSettings::standard(
            [format!("127.0.0.1:{port}")],
        ))
        .await
        .expect("connect")
    });
    let client = rsoa_client::Client::builder()
        .service(
            rsoa_transport_redis::RedisClientTransport::new(&backend, "example")
                .expect("transport"),
        )
        .build();
    (runtime, client)
}

/// The error codes of a job's response: the job's own, or else those of its actions.
fn error_codes(job: &rsoa_protocol::JobResponse) -> Vec<String> {
    let errors = if job.errors.is_empty() {
        job.actions
            .iter()
            .flat_map(|a| &a.errors)
            .collect::<Vec<_>>()
    } else {
        job.errors.iter().collect()
    };
    errors.iter().map(|e| e.code.to_string()).collect()
}

#[test]
fn past_harakiri_an_async_action_times_out_and_a_blocking_one_gets_its_worker_replaced() {
    let redis = support::redis(&[]);
    let (runtime, client) = example_client(redis.port);
    let mut supervisor = start_on(
        redis.port,
        &["--workers", "1"],
        &[("RSOA_HARAKIRI__TIMEOUT", "2")],
    );
    let logs = Logs::of(&mut supervisor);
    let first = logs.next("worker started")["fields"]["pid"]
        .as_u64()
        .expect("pid");
    logs.next("serving");
    let options = rsoa_client::CallOptions::new().timeout(Duration::from_secs(30));
    let send = |action: &str, millis: u64| {
        let request =
            rsoa_client::action(action, &serde_json::json!({ "millis": millis })).expect("action");
        runtime
            .block_on(client.send_request("example", vec![request], &options))
            .expect("sent")
    };
    let answers = |count: usize| {
        let mut answers = Vec::new();
        while answers.len() < count {
            let got = runtime
                .block_on(client.get_all_responses("example", Some(Duration::from_secs(30))))
                .expect("responses");
            answers.extend(
                got.into_iter()
                    .map(|(id, outcome)| (id, outcome.expect("answered"))),
            );
        }
        answers
    };

    // An action that waits (yields) past harakiri.timeout is cancelled; its caller gets ACTION_TIMEOUT and the
    // worker goes on.
    send("slow", 20_000);
    let timed_out = answers(1);
    assert_eq!(error_codes(&timed_out[0].1), ["ACTION_TIMEOUT"]);
    assert_eq!(square_over_redis(redis.port), Some(49));

    // An action that holds the thread cannot be cancelled: the watchdog names it, answers its caller and the
    // caller of a job that was running beside it, and exits; the supervisor starts a new worker.
    let waiting = send("slow", 5_000);
    support::wait_for("the worker to take the slow request", || {
        (support::llen(redis.port, "pysoa:service.example") == 0).then_some(())
    });
    let blocking = send("block", 60_000);
    let blocked = logs.next(
        "the runtime has been blocked past harakiri.timeout by code that does not yield; answering every \
         caller and exiting so that a fresh worker takes over",
    );
    assert_eq!(blocked["fields"]["action"], "block", "{blocked}");
    assert_eq!(blocked["fields"]["jobs_held"], 2, "{blocked}");
    let mut answered = answers(2);
    answered.sort_by_key(|(id, _)| *id);
    assert_eq!(answered[0].0, waiting);
    assert_eq!(error_codes(&answered[0].1), ["SERVER_ERROR"]);
    assert_eq!(answered[1].0, blocking);
    assert_eq!(error_codes(&answered[1].1), ["JOB_TIMEOUT"]);
    let exited = logs.next("worker exited; restarting it");
    assert_eq!(
        exited["fields"]["status"],
        format!("exit status: {}", rsoa_standalone::BLOCKED_EXIT_CODE),
        "{exited}"
    );
    let replacement = logs.next("worker started")["fields"]["pid"]
        .as_u64()
        .expect("pid");
    assert_ne!(replacement, first);
    logs.next("serving");
    assert_eq!(square_over_redis(redis.port), Some(49));
    stop_cleanly(&mut supervisor);
}

#[test]
fn requests_and_responses_are_logged_censored_at_the_configured_levels() {
    let redis = support::redis(&[]);
    let mut child = start_on(
        redis.port,
        &[],
        &[
            ("RSOA_REQUEST_LOG_SUCCESS_LEVEL", "INFO"),
            ("RSOA_EXTRA_FIELDS_TO_REDACT", "[\"nickname\"]"),
        ],
    );
    let logs = Logs::of(&mut child);
    logs.next("serving");
    let (runtime, client) = example_client(redis.port);
    let body = serde_json::json!({"password": "hunter2", "nickname": "bob", "city": "Oslo"});
    let echoed = runtime
        .block_on(async { client.call_action("example", "echo", &body).await })
        .expect("echo");
    assert_eq!(
        echoed.body["password"].as_str(),
        Some("hunter2"),
        "the caller gets it all"
    );
    for (message, field) in [("Job request", "request"), ("Job response", "response")] {
        let event = logs.next(message);
        assert_eq!(event["target"], "rsoa_server::job", "{event}");
        assert_eq!(event["level"], "INFO", "{event}");
        let logged = event["fields"][field]
            .as_str()
            .expect("logged as JSON text");
        assert!(logged.contains(r#""password":"**********""#), "{logged}");
        assert!(logged.contains(r#""nickname":"**********""#), "{logged}");
        assert!(logged.contains(r#""city":"Oslo""#), "{logged}");
        assert!(
            !logged.contains("hunter2") && !logged.contains("bob"),
            "{logged}"
        );
    }
    // A job with errors is logged at the error level (INFO by default).
    let failed = runtime.block_on(async { client.call_action("example", "fail", ()).await });
    assert!(failed.is_err());
    logs.next("Job request");
    let response = logs.next("Job response");
    assert!(
        response["fields"]["response"]
            .as_str()
            .is_some_and(|r| r.contains("FAILED")),
        "{response}"
    );
    stop_cleanly(&mut child);
}

/// The body of `GET /metrics` from the Prometheus endpoint at `port`, once it answers.
fn scrape(port: u16) -> String {
    use std::io::{Read, Write};
    support::wait_for("the metrics endpoint", || {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        stream
            .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .ok()?;
        let mut text = String::new();
        stream.read_to_string(&mut text).ok()?;
        text.starts_with("HTTP/1.").then_some(text)
    })
}

#[test]
fn metrics_are_served_for_prometheus_under_pysoas_names() {
    let redis = support::redis(&[]);
    let metrics_port = support::free_port();
    let address = format!("127.0.0.1:{metrics_port}");
    let mut child = start_on(redis.port, &[], &[("RSOA_METRICS__PROMETHEUS", &address)]);
    let logs = Logs::of(&mut child);
    logs.next("serving");
    assert_eq!(square_over_redis(redis.port), Some(49));
    // Prometheus' text format; PySOA's dotted names with the dots made underscores.
    let body = support::wait_for("the call's metrics", || {
        let text = scrape(metrics_port);
        text.contains("server_jobs{outcome=\"success\"}")
            .then_some(text)
    });
    assert!(body.contains("# TYPE server_jobs counter"), "{body}");
    assert!(
        body.contains("server_actions{action=\"square\",outcome=\"success\"} 1"),
        "{body}"
    );
    assert!(
        body.contains("server_transport_redis_gateway_send_message_size"),
        "{body}"
    );
    assert!(body.contains("server_job_duration"), "{body}");
    stop_cleanly(&mut child);
}

#[test]
fn a_failed_jobs_request_is_logged_again_from_the_message_it_came_in() {
    let redis = support::redis(&[]);
    // Default levels: successes at DEBUG (filtered out by the runner's `info`), failures at INFO.
    let mut child = start_on(redis.port, &[], &[]);
    let logs = Logs::of(&mut child);
    logs.next("serving");
    let (runtime, client) = example_client(redis.port);
    let body = serde_json::json!({"password": "hunter2", "city": "Oslo"});
    let failed =
        runtime.block_on(async { client.call_action("example", "no_such_action", &body).await });
    assert!(failed.is_err());
    let request = logs.next("Job request");
    assert_eq!(request["level"], "INFO", "{request}");
    let logged = request["fields"]["request"]
        .as_str()
        .expect("logged as JSON text");
    assert!(logged.contains(r#""action":"no_such_action""#), "{logged}");
    assert!(logged.contains(r#""password":"**********""#), "{logged}");
    assert!(
        logged.contains(r#""city":"Oslo""#) && !logged.contains("hunter2"),
        "{logged}"
    );
    logs.next("Job response");
    stop_cleanly(&mut child);
}

#[test]
fn logging_is_chosen_in_the_settings_and_can_go_to_a_file() {
    let redis = support::redis(&[]);
    let dir = tempfile_dir("logging");
    let template = dir.join("service-{{fid}}.log");
    let mut child = service_on(redis.port)
        .env("RSOA_LOGGING__FORMAT", "json")
        .env(
            "RSOA_LOGGING__LEVEL",
            "warn,rsoa_standalone=info,rsoa_server::job=debug",
        )
        .env(
            "RSOA_LOGGING__FILE",
            template.to_str().expect("a UTF-8 path"),
        )
        .stderr(Stdio::piped())
        .spawn()
        .expect("start");
    let file = dir.join("service-main.log");
    let read = || std::fs::read_to_string(&file).unwrap_or_default();
    support::wait_for("the service to log that it serves", || {
        read().contains(r#""message":"serving""#).then_some(())
    });
    assert_eq!(square_over_redis(redis.port), Some(49));
    // A successful job's request at DEBUG, shown because the per-target filter asks for it, as JSON lines.
    let text = support::wait_for("the job's log lines", || {
        let text = read();
        text.contains(r#""message":"Job response""#).then_some(text)
    });
    let request: serde_json::Value = text
        .lines()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line).expect("one JSON object per line")
        })
        .find(|event| event["fields"]["message"] == "Job request")
        .expect("the request");
    assert_eq!(request["level"], "DEBUG", "{request}");
    stop_cleanly(&mut child);
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr).unwrap();
    assert!(
        !stderr.contains("Job request"),
        "the log went to the file: {stderr}"
    );
}

#[test]
fn every_line_inside_a_job_carries_the_jobs_fields() {
    let redis = support::redis(&[]);
    let mut child = start_on(redis.port, &[], &[]);
    let logs = Logs::of(&mut child);
    logs.next("serving");
    let (runtime, client) = example_client(redis.port);
    let outcome = runtime.block_on(async {
        client
            .call_action("example", "fail", &serde_json::json!({"code": "NOPE"}))
            .correlation_id("corr-77")
            .timeout(Duration::from_secs(10))
            .await
    });
    assert!(outcome.is_err(), "{outcome:?}");
    // The action's own line, and the server's log of the failed job (at its error level, INFO), outside any action.
    for (message, action) in [("failing as asked", Some("fail")), ("Job response", None)] {
        let event = logs.next(message);
        assert_eq!(event["service"], "example", "{event}");
        assert_eq!(event["correlation_id"], "corr-77", "{event}");
        assert!(event["request_id"].is_i64(), "{event}");
        assert_eq!(event["action"].as_str(), action, "{event}");
    }
    // A line outside any job has none of them.
    signal(child.id(), Signal::SIGTERM);
    let stopping = logs.next("SIGTERM received; stopping");
    assert_eq!(stopping.get("correlation_id"), None, "{stopping}");
    support::wait_for("the process to exit", || child.try_wait().ok().flatten());
}

/// A stand-in OpenTelemetry collector: an HTTP server on a free loopback port that answers every request 200 and
/// hands over the body of each POST.
struct Collector {
    port: u16,
    bodies: mpsc::Receiver<Vec<u8>>,
}

impl Collector {
    fn start() -> Collector {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        let (posted, bodies) = mpsc::channel();
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let posted = posted.clone();
                std::thread::spawn(move || Collector::serve(stream, &posted));
            }
        });
        Collector { port, bodies }
    }

    /// Reads the requests of one connection (HTTP/1.1, bodies with a Content-Length) until it closes.
    fn serve(stream: std::net::TcpStream, posted: &mpsc::Sender<Vec<u8>>) {
        use std::io::{Read, Write};
        let mut reader = BufReader::new(stream.try_clone().expect("clone"));
        let mut writer = stream;
        loop {
            let mut length = 0;
            let mut line = String::new();
            loop {
                line.clear();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                let header = line.trim_end();
                if header.is_empty() {
                    break;
                }
                if let Some((name, value)) = header.split_once(':') {
                    if name.eq_ignore_ascii_case("content-length") {
                        length = value.trim().parse().unwrap_or(0);
                    }
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                return;
            }
            let _ = posted.send(body);
            let ok = b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
            if writer.write_all(ok).is_err() {
                return;
            }
        }
    }
}

#[test]
fn spans_go_to_an_otlp_collector_in_the_callers_trace() {
    let redis = support::redis(&[]);
    let collector = Collector::start();
    let endpoint = format!("http://127.0.0.1:{}/v1/traces", collector.port);
    let mut child = start_on(
        redis.port,
        &[],
        &[
            ("RSOA_TRACES__OTLP_ENDPOINT", &endpoint),
            ("RSOA_TRACES__SERVICE_NAME", "example-traced"),
        ],
    );
    let logs = Logs::of(&mut child);
    logs.next("serving");
    // The caller's span, as an rsoa or PySOA client in a trace sends it.
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let (runtime, client) = example_client(redis.port);
    let response = runtime
        .block_on(async {
            client
                .call_action("example", "square", &serde_json::json!({"number": 3}))
                .context("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
                .timeout(Duration::from_secs(10))
                .await
        })
        .expect("call");
    assert_eq!(response.body["square"].as_i64(), Some(9));
    // The spans are batched: stopping flushes them.
    stop_cleanly(&mut child);
    let mut posted = Vec::new();
    while let Ok(body) = collector.bodies.recv_timeout(support::DEADLINE) {
        posted.extend(body);
        let has = |needle: &[u8]| posted.windows(needle.len()).any(|w| w == needle);
        let trace_id = hex::decode(trace).expect("hex");
        if has(&trace_id) && has(b"example-traced") && has(b"square") {
            return;
        }
    }
    panic!("no span of trace {trace} reached the collector: {posted:?}");
}

/// Every input of wire-spec §19 (what makes a PySOA server process exit), random bytes, truncated and trailing
/// bytes, deep nesting, huge declared lengths, a chunk header on a request and a job of 100 000 actions, pushed
/// onto the queue of a running service: it takes them all, answers what can be answered, keeps serving, and its
/// memory stays bounded (the peak is printed; `docs/reliability.md` has it).
#[test]
fn hostile_input_on_the_queue_leaves_the_service_serving_with_bounded_memory() {
    let redis = support::redis(&[]);
    // Room for the 100 000-action job (4.5 MB), which is then refused for its actions.
    let room = [(
        "RSOA_TRANSPORT__KWARGS__MAXIMUM_REQUEST_SIZE_IN_BYTES",
        "8388608",
    )];
    let mut child = start_on(redis.port, &[], &room);
    let logs = Logs::of(&mut child);
    logs.next("serving");
    let key = "pysoa:service.example";
    let msgpack = |payload: &[u8]| {
        let mut frame = b"pysoa-redis/3//content-type:application/msgpack;".to_vec();
        frame.extend_from_slice(payload);
        frame
    };
    let json =
        |text: &str| format!("pysoa-redis/3//content-type:application/json;{text}").into_bytes();
    // A well-formed request (request id 1, replying to `service.hostile!1`), with `body` spliced in.
    let request = |body: &[u8]| {
        let mut payload =
            b"\x83\xaarequest_id\x01\xa4meta\x81\xa8reply_to\xb1service.hostile!1\xa4body".to_vec();
        payload.extend_from_slice(body);
        msgpack(&payload)
    };
    let job = b"\x83\xa7control\x81\xb1continue_on_error\xc2\xa7context\x82\xa8switches\x90\xaecorrelation_id\xa1c\xa7actions\x91\x82\xa6action\xa6square\xa4body\x81\xa6number\x02";
    let mut hostile: Vec<Vec<u8>> = vec![
        // §19: undecodable, an unknown ext code, invalid UTF-8, an unknown version, a chunked request.
        msgpack(b"\xc1\xc1"),
        request(b"\xd4\x63\x00"),
        request(b"\xa3\xff\xfe\xfd"),
        b"pysoa-redis/9//content-type:application/msgpack;\x80".to_vec(),
        b"pysoa-redis/3//content-type:application/msgpack;chunk-count:2;chunk-id:1;\x80".to_vec(),
        // §19: no or null request_id, null meta, no reply_to, a bad client_version, request_id in the context,
        // a body or context that is not a map.
        msgpack(b"\x82\xa4meta\x80\xa4body\x80"),
        msgpack(b"\x83\xaarequest_id\xc0\xa4meta\x80\xa4body\x80"),
        msgpack(b"\x83\xaarequest_id\x01\xa4meta\xc0\xa4body\x80"),
        msgpack(b"\x83\xaarequest_id\x01\xa4meta\x80\xa4body\x80"),
        json(
            r#"{"request_id": 1, "meta": {"reply_to": "service.hostile!1", "client_version": "x"}, "body": {}}"#,
        ),
        json(
            r#"{"request_id": 1, "meta": {"reply_to": "service.hostile!1"}, "body": {"control": {"continue_on_error": false}, "context": {"switches": [], "correlation_id": "c", "request_id": 5}, "actions": []}}"#,
        ),
        request(b"\x93\x01\x02\x03"),
        json(
            r#"{"request_id": 1, "meta": {"reply_to": "service.hostile!1"}, "body": {"control": {}, "context": [1], "actions": []}}"#,
        ),
        // Deep nesting, as MessagePack and JSON, far past any limit.
        request(&[&[0x91_u8; 100_000][..], b"\x01"].concat()),
        json(&format!(
            r#"{{"request_id": 1, "meta": {{"reply_to": "service.hostile!1"}}, "body": {}1{}}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        )),
        // Huge declared lengths: a string, an array and a map of four billion, with a few bytes behind them.
        request(b"\xdb\xff\xff\xff\xffabc"),
        request(b"\xdd\xff\xff\xff\xff\x01\x02"),
        request(b"\xdf\xff\xff\xff\xff\xa1a\x01"),
        b"pysoa-redis/3//content-type:application/msgpack;\xc6\xff\xff\xff\xff".to_vec(),
        Vec::new(),
        // Larger than the server reads: refused unread.
        request(&[&b"\xc6\x00\x90\x00\x00"[..], &[0_u8; 9_437_184][..]].concat()),
    ];
    // A valid request cut short at many places, and with bytes after it.
    let whole = request(job);
    for end in (0..whole.len()).step_by(7) {
        hostile.push(whole[..end].to_vec());
    }
    hostile.push([&whole[..], b"\x00\xffgarbage"].concat());
    // Random bytes, with and without a frame header (a fixed seed: the same bytes every run).
    let mut rng = fastrand::Rng::with_seed(17);
    for i in 0..300 {
        let mut bytes = vec![0_u8; rng.usize(0..4_096)];
        rng.fill(&mut bytes);
        hostile.push(if i % 2 == 0 { msgpack(&bytes) } else { bytes });
    }
    // A job of 100 000 actions, which the server refuses whole.
    let actions = vec![r#"{"action": "square", "body": {"number": 2}}"#; 100_000].join(",");
    hostile.push(json(&format!(
        r#"{{"request_id": 2, "meta": {{"reply_to": "service.hostile!2"}}, "body": {{"control": {{"continue_on_error": false}}, "context": {{"switches": [], "correlation_id": "c"}}, "actions": [{actions}]}}}}"#
    )));
    for frame in &hostile {
        support::push_raw(redis.port, key, frame);
    }
    support::wait_for("the service to take every message", || {
        (support::llen(redis.port, key) == 0).then_some(())
    });
    let refused = support::wait_for("the answer to the 100 000-action job", || {
        support::command(redis.port, &["LPOP", "pysoa:service.hostile!2"])
            .filter(|r| r.contains('{'))
    });
    assert!(refused.contains("List is longer than 10000"), "{refused}");
    // Still serving, in the same process.
    assert_eq!(square_over_redis(redis.port), Some(49));
    assert!(
        child.try_wait().expect("status").is_none(),
        "the service exited"
    );
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).expect("status");
    let peak_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM");
    println!(
        "{} hostile messages ({} bytes in all): the service's peak RSS was {} MiB",
        hostile.len(),
        hostile.iter().map(Vec::len).sum::<usize>(),
        peak_kib / 1024
    );
    assert!(peak_kib < 256 * 1024, "peak RSS {peak_kib} KiB");
    stop_cleanly(&mut child);
}

/// A fresh directory under the target directory for one test's files.
fn tempfile_dir(name: &str) -> PathBuf {
    let dir =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}
