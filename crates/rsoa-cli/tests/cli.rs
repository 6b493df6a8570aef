//! The `rsoa` binary against an rsoa service on a real `redis-server`: every subcommand, every exit code.

#[path = "../../rsoa-transport-redis/tests/support/mod.rs"]
mod support;

use std::time::Duration;

use assert_cmd::Command;
use rsoa_server::{ActionContext, ActionError, Server};
use rsoa_transport_redis::RedisSettings;

/// The number to square.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct Square {
    /// The number to square
    #[schemars(range(min = 0))]
    number: i64,
}

#[derive(serde::Serialize)]
struct Squared {
    square: i64,
}

fn service() -> Server {
    Server::builder("calc")
        .version("1.2.3")
        .validated_fn("square", |req: Square, _ctx: ActionContext| async move {
            Ok::<_, ActionError>(Squared {
                square: req.number * req.number,
            })
        })
        .action_fn("echo", |body: rsoa_protocol::Map, _ctx: ActionContext| async move {
            Ok::<_, ActionError>(body)
        })
        .action_fn(
            "context",
            |_: rsoa_protocol::Map, ctx: ActionContext| async move {
                let c = ctx.context();
                let mut body = rsoa_protocol::Map::new();
                body.insert("correlation_id", c.correlation_id.as_str());
                body.insert(
                    "switches",
                    rsoa_protocol::Value::Array(ctx.switches().iter().map(Into::into).collect()),
                );
                body.insert("team", c.extra.get("team").cloned().unwrap_or_default());
                Ok::<_, ActionError>(body)
            },
        )
        .build()
        .expect("a valid service")
}

/// A redis-server and the `calc` service on it, served from a thread of its own until dropped.
struct Running {
    redis: support::Process,
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    fn start() -> Running {
        let redis = support::redis(&[]);
        let port = redis.port;
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let (ready, is_ready) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let settings = RedisSettings::standard([format!("127.0.0.1:{port}")]);
                let backend = rsoa_transport_redis::RedisBackend::connect(settings)
                    .await
                    .expect("connect");
                let transport = std::sync::Arc::new(
                    rsoa_transport_redis::RedisServerTransport::new(&backend, "calc")
                        .expect("transport"),
                );
                ready.send(()).expect("ready");
                let shutdown = async move {
                    let _ = tokio::task::spawn_blocking(move || stopped.recv()).await;
                };
                rsoa_server::serve(service(), transport, shutdown, Duration::from_secs(5)).await;
            });
        });
        is_ready
            .recv_timeout(support::DEADLINE)
            .expect("the service starts");
        Running {
            redis,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The binary's output for these arguments.
    fn run(&self, args: &[&str]) -> std::process::Output {
        self.rsoa().args(args).output().expect("rsoa runs")
    }

    fn rsoa(&self) -> Command {
        let mut command = Command::cargo_bin("rsoa").expect("the rsoa binary");
        command.args(["--redis", &format!("127.0.0.1:{}", self.redis.port)]);
        command.timeout(support::DEADLINE);
        command
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn call_prints_the_response_and_exits_0() {
    let running = Running::start();
    let output = running.run(&["call", "calc", "square", r#"{"number": 7}"#]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let body: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("JSON on stdout");
    assert_eq!(body, serde_json::json!({"square": 49}));
    // One line with --raw; the body from a file and from standard input.
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let file = dir.join("rsoa-cli-body.json");
    std::fs::write(&file, r#"{"number": 3}"#).unwrap();
    let output = running.run(&[
        "call",
        "calc",
        "square",
        &format!("@{}", file.display()),
        "--raw",
    ]);
    assert_eq!(stdout(&output), "{\"square\":9}\n");
    let output = running
        .rsoa()
        .args(["call", "calc", "square", "-", "--raw"])
        .write_stdin(r#"{"number": 4}"#)
        .output()
        .unwrap();
    assert_eq!(stdout(&output), "{\"square\":16}\n");
}

#[test]
fn context_switches_and_correlation_id_reach_the_action() {
    let running = Running::start();
    let output = running.run(&[
        "call",
        "calc",
        "context",
        "--switch",
        "5",
        "--switch",
        "2",
        "--correlation-id",
        "abc",
        "--context",
        "team=payments",
        "--raw",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let body: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"correlation_id": "abc", "switches": [2, 5], "team": "payments"})
    );
}

#[test]
fn action_errors_exit_1_with_code_field_and_message() {
    let running = Running::start();
    let output = running.run(&["call", "calc", "square", r#"{"number": -1, "zz": 1}"#]);
    assert_eq!(output.status.code(), Some(1));
    let errors = stderr(&output);
    assert!(
        errors.contains("INVALID (number): Value not >= 0"),
        "{errors}"
    );
    assert!(
        errors.contains("UNKNOWN: Extra keys present: zz"),
        "{errors}"
    );
    let output = running.run(&["call", "calc", "nope"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("UNKNOWN (action)"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn usage_mistakes_exit_2_naming_the_problem() {
    let running = Running::start();
    let output = running.run(&["call", "calc", "square", "{\"number\": "]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("the body is not JSON"),
        "{}",
        stderr(&output)
    );
    assert!(
        stderr(&output).contains("line 1, column"),
        "{}",
        stderr(&output)
    );
    let output = running
        .rsoa()
        .args(["call", "calc", "square", "[1]"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("must be a JSON object"),
        "{}",
        stderr(&output)
    );
    // No Redis given at all.
    let output = Command::cargo_bin("rsoa")
        .unwrap()
        .env_remove("SOA_REDIS")
        .env_remove("SOA_SETTINGS")
        .args(["status", "calc"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("no Redis to use"),
        "{}",
        stderr(&output)
    );
    // clap's own mistakes.
    let output = running.run(&["call"]);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn an_unreachable_redis_or_a_silent_service_exits_3_within_the_timeout() {
    let port = support::free_port();
    let started = std::time::Instant::now();
    let output = Command::cargo_bin("rsoa")
        .unwrap()
        .args([
            "--redis",
            &format!("127.0.0.1:{port}"),
            "--timeout",
            "2",
            "status",
            "calc",
        ])
        .timeout(support::DEADLINE)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(started.elapsed() < support::DEADLINE);
    // Redis answers, but nobody serves `ghost`.
    let running = Running::start();
    let output = running.run(&["--timeout", "1", "call", "ghost", "anything"]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
}

#[test]
fn status_and_introspect_read_well_and_as_json() {
    let running = Running::start();
    let output = running.run(&["status", "calc"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("version: 1.2.3"),
        "{}",
        stdout(&output)
    );
    let output = running.run(&["status", "calc", "--json"]);
    let status: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(status["version"], "1.2.3");

    let output = running.run(&["introspect", "calc"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("square\n  The number to square."), "{text}");
    assert!(
        text.contains("    number: integer (gte 0) — The number to square"),
        "{text}"
    );
    let output = running.run(&["introspect", "calc", "square", "--json"]);
    let described: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(described["action_names"], serde_json::json!(["square"]));
    assert_eq!(
        described["actions"]["square"]["request_schema"]["contents"]["number"]["gte"],
        0
    );
}

#[test]
fn queues_shows_waiting_requests_per_master() {
    let running = Running::start();
    // Nobody serves `idle`: what is pushed there waits.
    for _ in 0..3 {
        support::push_raw(running.redis.port, "pysoa:service.idle", b"x");
    }
    let master = format!("127.0.0.1:{}", running.redis.port);
    // Two responses to a caller of `calc` that has not read them yet, in a reply queue of PySOA's naming.
    for _ in 0..2 {
        support::push_raw(
            running.redis.port,
            "pysoa:service.calc.0123456789abcdef0123456789abcdef!00000000abcd",
            b"y",
        );
    }
    let output = running.run(&["queues", "idle", "calc", "--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let rows: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(
        rows,
        serde_json::json!([
            {"service": "idle", "master": master, "waiting": 3, "reply_queues": 0, "unread_responses": 0},
            {"service": "calc", "master": master, "waiting": 0, "reply_queues": 1, "unread_responses": 2},
        ])
    );
    // A table for people; --watch prints again, --count times.
    let output = running.run(&[
        "queues",
        "idle",
        "--watch",
        "--interval",
        "0.1",
        "--count",
        "2",
    ]);
    let text = stdout(&output);
    assert_eq!(text.matches("service  master").count(), 2, "{text}");
    assert!(
        text.contains(&format!("idle     {master:24}  3        0             0")),
        "{text}"
    );
}

#[test]
fn completions_and_the_manual_page_come_from_the_command_line_definition() {
    let output = Command::cargo_bin("rsoa")
        .unwrap()
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let script = stdout(&output);
    assert!(
        script.contains("_rsoa()") && script.contains("introspect"),
        "{script}"
    );
    let output = Command::cargo_bin("rsoa")
        .unwrap()
        .arg("man")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let page = stdout(&output);
    assert!(
        page.contains(".TH rsoa") && page.contains("queues"),
        "{page}"
    );
}

#[test]
fn bench_counts_calls_latencies_and_errors() {
    let running = Running::start();
    let output = running.run(&[
        "bench",
        "calc",
        "square",
        r#"{"number": 2}"#,
        "--count",
        "60",
        "--concurrency",
        "4",
        "--json",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let results: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(results["ok"], 60, "{results}");
    assert_eq!(results["failed"], 0, "{results}");
    let latency = &results["latency"];
    assert!(latency["p50_us"].as_u64().unwrap() > 0, "{results}");
    assert!(
        latency["p50_us"].as_u64() <= latency["max_us"].as_u64(),
        "{results}"
    );
    // Errors are counted by code, and make the exit code 1.
    let output = running.run(&[
        "bench",
        "calc",
        "square",
        r#"{"number": -2}"#,
        "--count",
        "5",
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("errors INVALID: 5"),
        "{}",
        stdout(&output)
    );
    // A rate limit spaces the calls: 20 calls at 100 a second take at least the 19 intervals between them.
    let output = running.run(&[
        "bench",
        "calc",
        "square",
        r#"{"number": 1}"#,
        "--count",
        "20",
        "--rate",
        "100",
        "--json",
    ]);
    let results: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(results["ok"], 20, "{results}");
    assert!(results["seconds"].as_f64().unwrap() >= 0.19, "{results}");
}

/// Every special type, written as `rsoa` reads and prints them.
const SPECIAL: &str = r#"{"when": {"$datetime": "2026-12-04T19:30:05.123456"}, "utc": {"$datetime": "2026-12-04T19:30:05.000001+00:00"}, "day": {"$date": "2026-12-04"}, "at": {"$time": "19:30:05.123456"}, "price": {"$decimal": "-12.50"}, "cost": {"$amount": "1250 USD"}, "raw": {"$bytes": "00ff"}, "big": 18446744073709551615, "half": 0.5, "list": [1, "x", null, true]}"#;

#[test]
fn special_types_round_trip_exactly() {
    let running = Running::start();
    let output = running.run(&["call", "calc", "echo", SPECIAL, "--raw"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let sent: serde_json::Value = serde_json::from_str(SPECIAL).unwrap();
    let echoed: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(echoed, sent);
    // A bad special value names where it is and why.
    let output = running
        .rsoa()
        .args([
            "call",
            "calc",
            "echo",
            r#"{"a": [{"$date": "2026-13-01"}]}"#,
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("body.a.0: $date"),
        "{}",
        stderr(&output)
    );
    let output = running.run(&["call", "calc", "echo", r#"{"a": {"$when": "now"}}"#]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("unknown type \"$when\""),
        "{}",
        stderr(&output)
    );
}

#[test]
fn jobs_of_several_actions_in_one_or_in_parallel() {
    let running = Running::start();
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let job = dir.join("rsoa-cli-job.json");
    std::fs::write(
        &job,
        r#"[{"action": "square", "body": {"number": -1}}, {"action": "square", "body": {"number": 3}}]"#,
    )
    .unwrap();
    // The first fails; with --continue-on-error the second runs too. Errors are shown with the actions: exit 1.
    let output = running.run(&[
        "call",
        "calc",
        "--job",
        job.to_str().unwrap(),
        "--continue-on-error",
        "--raw",
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let response: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    let actions = response["actions"].as_array().expect("the job's actions");
    assert_eq!(actions.len(), 2, "{response}");
    assert_eq!(actions[0]["errors"][0]["code"], "INVALID", "{response}");
    assert_eq!(
        actions[1]["body"],
        serde_json::json!({"square": 9}),
        "{response}"
    );
    // Without it the job stops at the failure.
    let output = running.run(&["call", "calc", "--job", job.to_str().unwrap(), "--raw"]);
    let response: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(
        response["actions"].as_array().map(Vec::len),
        Some(1),
        "{response}"
    );
    // Several jobs at once, in JSON on the wire.
    let jobs = dir.join("rsoa-cli-jobs.json");
    std::fs::write(
        &jobs,
        r#"[[{"action": "square", "body": {"number": 2}}], [{"action": "square", "body": {"number": 5}}]]"#,
    )
    .unwrap();
    let output = running.run(&[
        "call",
        "calc",
        "--job",
        jobs.to_str().unwrap(),
        "--parallel",
        "--json",
        "--raw",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let responses: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    let squares: Vec<&serde_json::Value> = responses
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["actions"][0]["body"]["square"])
        .collect();
    assert_eq!(squares, [&serde_json::json!(4), &serde_json::json!(25)]);
    // A bad job file names where.
    std::fs::write(&job, r#"[{"body": {}}]"#).unwrap();
    let output = running.run(&["call", "calc", "--job", job.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("--job actions.0"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn connection_flags_reach_a_locked_down_redis() {
    let redis = support::redis(&["--requirepass", "s3cret"]);
    let redis_at = format!("127.0.0.1:{}", redis.port);
    let queues = |extra: &[&str]| {
        Command::cargo_bin("rsoa")
            .unwrap()
            .args(["--redis", &redis_at, "--timeout", "3"])
            .args(extra)
            .args(["queues", "calc", "--json"])
            .timeout(support::DEADLINE)
            .output()
            .unwrap()
    };
    let output = queues(&["--password", "s3cret"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output).contains(r#""waiting":0"#),
        "{}",
        stdout(&output)
    );
    // Without the password Redis refuses: the service cannot be reached.
    let output = queues(&[]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    // The connection from the environment.
    let output = Command::cargo_bin("rsoa")
        .unwrap()
        .env("SOA_REDIS", &redis_at)
        .env("SOA_REDIS_PASSWORD", "s3cret")
        .args(["queues", "calc", "--json"])
        .timeout(support::DEADLINE)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

#[test]
fn plan_run_reports_each_case_and_exits_1_on_a_failure() {
    let running = Running::start();
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("rsoa-cli-plans");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("calc.pysoa"),
        "# The calc service's contract, as PySOA test plan cases.\n\
         square: global input int: number: 7\n\
         \n\
         test name: square_of_seven\n\
         test description: The global input is squared\n\
         square: expect: no errors\n\
         square: expect int: attribute value: square: 49\n\
         \n\
         test name: square_of_a_square\n\
         test description: A substitution from an earlier response\n\
         square.0: input int: number: 3\n\
         square.1: input int: number: [[SQUARE.0.square]]\n\
         square.1: expect int: attribute value: square: 81\n\
         \n\
         test name: negative_is_invalid\n\
         test description: Validation errors come back with their field\n\
         square: input int: number: -1\n\
         square: expect: error: code=INVALID, field=number\n\
         \n\
         test name: context_and_switches\n\
         test description: Job context reaches the action\n\
         context: job context input int: switches.0: 5\n\
         context: job context input: team: plans\n\
         context: expect int: attribute value: switches.0: 5\n\
         context: expect: attribute value: team: plans\n\
         \n\
         test name: stubbed_downstream\n\
         test description: Needs the service in-process\n\
         square: stub action: other: thing: body: a: b\n\
         square: expect: no errors\n",
    )
    .unwrap();
    let plans = dir.display().to_string();
    let output = running.run(&["plan", "run", &plans, "--service", "calc"]);
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{out}{}", stderr(&output));
    assert!(out.contains("PASS calc::square_of_seven\n"), "{out}");
    assert!(
        out.contains("SKIP calc::stubbed_downstream: `stub action` needs the service in-process"),
        "{out}"
    );
    assert!(
        out.trim_end()
            .ends_with("plans: 4 passed, 0 failed, 1 skipped (1 fixtures)"),
        "{out}"
    );

    // Filters, and a failing case: exit 1 with the directive, expected and actual.
    let output = running.run(&[
        "plan",
        "run",
        &plans,
        "--service",
        "calc",
        "--case-regex",
        "^square_of",
    ]);
    assert!(stdout(&output)
        .trim_end()
        .ends_with("plans: 2 passed, 0 failed, 0 skipped (1 fixtures)"));
    let text = std::fs::read_to_string(dir.join("calc.pysoa"))
        .unwrap()
        .replace("square: 81", "square: 80");
    std::fs::write(dir.join("calc.pysoa"), text).unwrap();
    let output = running.run(&[
        "plan",
        "run",
        &plans,
        "--service",
        "calc",
        "--case",
        "square_of_a_square",
    ]);
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{out}");
    assert!(
        out.contains("calc.pysoa:13: case calc::square_of_a_square, action square.1"),
        "{out}"
    );
    assert!(
        out.contains("directive: square.1: expect int: attribute value: square: 80"),
        "{out}"
    );
    assert!(
        out.contains("Expected: 80") && out.contains("Actual:   81"),
        "{out}"
    );

    // A fixture that does not parse is a usage mistake (exit 2), reported before anything is sent.
    std::fs::write(
        dir.join("broken.pysoa"),
        "test name: x\ntest description: y\nsquare: expect no errors\n",
    )
    .unwrap();
    let output = running.run(&["plan", "run", &plans, "--service", "calc"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("broken.pysoa:3: Failed to parse line"),
        "{}",
        stderr(&output)
    );
    let output = running.run(&[
        "plan",
        "run",
        &plans,
        "--service",
        "calc",
        "--model-constants",
        "[1]",
    ]);
    assert_eq!(output.status.code(), Some(2));
}
