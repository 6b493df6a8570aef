//! rsoa's automation: `cargo xtask <task>`.
//!
//! - `ci`: everything CI checks: formatting, clippy with warnings as errors, the whole test suite, the docs with
//!   warnings as errors, the interop cases against Python PySOA, and `cargo deny check` when cargo-deny is
//!   installed.
//! - `interop`: the interoperability cases against the real Python PySOA 1.4.9, both directions, over a Redis this
//!   task starts (it sets up a Python virtualenv under `target/interop-venv` the first time).
//! - `bench <codec|local|redis|pysoa|pysoa-backlog|observability>`: the benchmarks, in release mode, each reporting rsoa beside a baseline
//!   measured in the same run.
//! - `chaos <scenario|all> [seconds]`: a service under load from 150
//!   callers while a fault comes and goes, with an account of every call; `ci` runs each for seven seconds.
//! - `soak [--minutes N]`: the example service under a steady mixed load, its figures every minute (not in CI).
//! - `fuzz [seconds]`: a bounded coverage-guided run of each fuzz target (needs `cargo install cargo-fuzz`); `ci`
//!   runs it for eight seconds a target when cargo-fuzz is installed.

use std::io::{BufRead, Read, Write};
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use xshell::{cmd, Shell};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("interop") => interop(),
        Some("bench") => bench(args.get(1).map(String::as_str)),
        Some("fuzz") => fuzz(args.get(1).map(String::as_str)),
        // `soak 30` or `soak --minutes 30`.
        Some("soak") => soak(
            args.iter()
                .skip(1)
                .find(|a| *a != "--minutes")
                .map(String::as_str),
        ),
        Some("chaos") => chaos(
            args.get(1).map(String::as_str),
            args.get(2).map(String::as_str),
        ),
        _ => {
            eprintln!("usage: cargo xtask <ci | interop | bench <codec|local|redis|pysoa|pysoa-backlog|observability> | fuzz [seconds] | chaos <scenario|all> [seconds] | soak [--minutes N]>");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

fn shell() -> Result<Shell> {
    let sh = Shell::new()?;
    // Run from the workspace root whatever the caller's directory.
    sh.change_dir(env!("CARGO_MANIFEST_DIR"));
    sh.change_dir("..");
    Ok(sh)
}

fn step(name: &str) {
    println!("\n==> {name}");
}

fn ci() -> Result {
    let sh = shell()?;
    step("cargo fmt --check");
    cmd!(sh, "cargo fmt --all -- --check").run()?;
    step("cargo clippy -D warnings");
    cmd!(
        sh,
        "cargo clippy --workspace --all-targets --locked -- -D warnings"
    )
    .run()?;
    step("cargo test");
    cmd!(sh, "cargo test --workspace --all-targets --locked").run()?;
    cmd!(sh, "cargo test --workspace --doc --locked").run()?;
    step("cargo doc -D warnings");
    cmd!(sh, "cargo doc --workspace --no-deps --locked")
        .env("RUSTDOCFLAGS", "-D warnings")
        .run()?;
    step("interop with Python PySOA 1.4.9");
    interop()?;
    step("chaos: each fault for a short run under load");
    chaos_report(
        &sh.current_dir().join("target/debug"),
        &CHAOS_SCENARIOS,
        CI_CHAOS_SECONDS,
    )?;
    if cmd!(sh, "cargo fuzz --version")
        .quiet()
        .ignore_stderr()
        .read()
        .is_ok()
    {
        fuzz(Some(CI_FUZZ_SECONDS))?;
    } else {
        println!("\n(cargo-fuzz is not installed; skipping the bounded fuzzing run)");
    }
    if cmd!(sh, "cargo deny --version")
        .quiet()
        .ignore_stderr()
        .read()
        .is_ok()
    {
        step("cargo deny check");
        cmd!(sh, "cargo deny check bans licenses sources").run()?;
        // Security advisories fail the build whenever the advisory database can be fetched; a machine that cannot
        // reach it (no route to GitHub) says so and goes on.
        if cmd!(sh, "cargo deny fetch db").quiet().run().is_ok() {
            step("cargo deny check advisories");
            cmd!(sh, "cargo deny --offline check advisories").run()?;
        } else {
            println!("\n(the RustSec advisory database cannot be fetched from here; advisories not checked)");
        }
    } else {
        println!("\n(cargo-deny is not installed; skipping `cargo deny check`)");
    }
    Ok(())
}

fn bench(which: Option<&str>) -> Result {
    let sh = shell()?;
    match which {
        Some("codec") => cmd!(sh, "cargo bench --locked -p rsoa-codec --bench codec").run()?,
        Some("local") => bench_local(&sh)?,
        Some("redis") => {
            // The example service, run by the standalone entry point, is measured beside the in-process servers.
            cmd!(
                sh,
                "cargo build --quiet --locked --release -p examples --bin example-service"
            )
            .run()?;
            let example = sh.current_dir().join("target/release/example-service");
            cmd!(
                sh,
                "cargo bench --locked -p rsoa-transport-redis --bench redis"
            )
            .env("BENCH_EXAMPLE_SERVICE", &example)
            .run()?;
            rsoa_cli_bench(&sh)?;
            pysoa_client_connections(&sh)?;
        }
        Some("pysoa") => bench_pysoa(false)?,
        Some("pysoa-backlog") => bench_pysoa(true)?,
        Some("observability") => bench_observability()?,
        other => {
            return Err(format!(
                "unknown benchmark {other:?}; choose codec, local, redis, pysoa, pysoa-backlog or observability"
            )
            .into())
        }
    }
    Ok(())
}

/// PySOA 1.4.9's own client with 1, 16, 128 and 2 000 requests in flight (`send_request`, then
/// `get_all_responses`) against the Rust interop server, with the connections it holds, to set beside rsoa's
/// figures from the Redis bench.
fn pysoa_client_connections(sh: &Shell) -> Result {
    let python = ensure_venv(sh)?;
    cmd!(sh, "cargo build --quiet --locked -p interop").run()?;
    let (_redis, port) = start_redis()?;
    let port_text = port.to_string();
    let mut server = Command::new(sh.current_dir().join("target/debug/interop-server"));
    server.arg(&port_text);
    let _server = start_ready(
        server,
        "the rsoa interop server",
        "bench-connections-server",
    )?;
    let lines = cmd!(
        sh,
        "{python} interop/python/client_connections.py --port {port_text} --service rsinterop"
    )
    .read()?;
    println!("\nPySOA 1.4.9's client with requests in flight (send_request, then get_all_responses; CLIENT LIST):\n");
    println!("| requests in flight | answered | PySOA client connections |");
    println!("|---:|---:|---:|");
    for line in lines.lines() {
        let number = |key| json_number(line, key).ok_or_else(|| format!("no {key} in {line:?}"));
        println!(
            "| {} | {} | {} |",
            number("calls")?,
            number("answered")?,
            number("connections")?
        );
    }
    Ok(())
}

/// `rsoa bench` (the command-line load generator) against the example service, beside `bench-client` (the load
/// generator of `bench pysoa`) in alternating rounds, in the same run as the Redis bench.
fn rsoa_cli_bench(sh: &Shell) -> Result {
    let target = release_build(
        sh,
        &[
            "-p",
            "rsoa-cli",
            "--bin",
            "rsoa",
            "-p",
            "interop",
            "--bin",
            "bench-client",
        ],
    )?;
    let root = sh.current_dir();
    let (_redis, port) = start_redis()?;
    let port_text = port.to_string();
    let service = example_service(&root, &target, port, "example");
    let _service = start_serving(service, "the example service", "bench-rsoa-cli-example")?;
    let redis = format!("127.0.0.1:{port}");
    let body = r#"{"data":"xxxxxxxx"}"#;
    println!("\n`rsoa bench` against the example service (echo, 8-byte body), beside bench-client; medians of 3 alternating rounds:\n");
    println!("| callers | rsoa bench calls/s | bench-client calls/s | rsoa bench p50 µs | bench-client p50 µs |");
    println!("|---:|---:|---:|---:|---:|");
    for callers in [1_usize, 16] {
        let callers_text = callers.to_string();
        let calls = if callers == 1 { "5000" } else { "20000" };
        let (mut cli_rate, mut cli_p50, mut rate, mut p50) = (vec![], vec![], vec![], vec![]);
        for _ in 0..3 {
            let line = cmd!(sh, "{target}/rsoa --redis {redis} bench example echo {body} --concurrency {callers_text} --count {calls} --json").read()?;
            cli_rate.push(json_number(&line, "calls_per_sec").ok_or("no calls_per_sec")?);
            cli_p50.push(json_number(&line, "p50_us").ok_or("no p50_us")?);
            let line = cmd!(
                sh,
                "{target}/bench-client {port_text} example 8 {callers_text} {calls}"
            )
            .read()?;
            rate.push(json_number(&line, "calls_per_sec").ok_or("no calls_per_sec")?);
            p50.push(json_number(&line, "p50_us").ok_or("no p50_us")?);
        }
        println!(
            "| {callers} | {:.0} | {:.0} | {:.0} | {:.0} |",
            median(cli_rate),
            median(rate),
            median(cli_p50),
            median(p50)
        );
    }
    Ok(())
}

/// rsoa's local-transport benchmark, then PySOA's local transport doing the same calls in the same run.
fn bench_local(sh: &Shell) -> Result {
    let rsoa = cmd!(
        sh,
        "cargo bench --locked -p rsoa-transport-local --bench local"
    )
    .read()?;
    println!("{rsoa}");
    let python = ensure_venv(sh)?;
    let line = cmd!(sh, "{python} interop/python/bench_local.py --calls 20000").read()?;
    let number = |key| json_number(&line, key).ok_or_else(|| format!("no {key} in {line:?}"));
    let (py_rate, py_p50, py_p99) = (
        number("calls_per_sec")?,
        number("p50_us")?,
        number("p99_us")?,
    );
    let rsoa_rate = rsoa
        .lines()
        .find(|l| l.starts_with("| sequential: call_action, local transport |"))
        .and_then(|l| l.split('|').nth(2))
        .and_then(|cell| cell.trim().parse::<f64>().ok())
        .ok_or("no sequential call_action row in the rsoa benchmark's output")?;
    println!("| sequential: PySOA 1.4.9 call_action, local transport | {py_rate:.0} | {py_p50:.2} | {py_p99:.2} | |");
    println!(
        "\nrsoa's sequential local call_action: {:.1}x PySOA's calls per second",
        rsoa_rate / py_rate
    );
    Ok(())
}

/// The fuzz targets (`fuzz/fuzz_targets`): both decoders, the Redis frame and header parser, and job validation.
const FUZZ_TARGETS: [&str; 4] = [
    "msgpack_decode",
    "json_decode",
    "frame_parse",
    "job_validate",
];

/// Seconds each fuzz target runs in `cargo xtask ci`.
const CI_FUZZ_SECONDS: &str = "8";

fn fuzz(seconds: Option<&str>) -> Result {
    let sh = shell()?;
    let seconds = seconds.unwrap_or("60");
    if cmd!(sh, "cargo fuzz --version")
        .quiet()
        .ignore_stderr()
        .read()
        .is_err()
    {
        return Err("cargo-fuzz is not installed: run `cargo install cargo-fuzz --locked`".into());
    }
    sh.change_dir("fuzz");
    for target in FUZZ_TARGETS {
        step(&format!("fuzz {target} for {seconds} s"));
        // The working corpus grows under fuzz/corpus (not committed); the seeds from PySOA's vectors are
        // committed under fuzz/seeds (`python3 fuzz/make_seeds.py` writes them).
        let corpus = format!("corpus/{target}");
        let seeds = format!("seeds/{target}");
        sh.create_dir(&corpus)?;
        // libFuzzer needs nightly-only flags; RUSTC_BOOTSTRAP lets the stable toolchain accept them.
        cmd!(
            sh,
            "cargo fuzz run {target} {corpus} {seeds} -- -max_total_time={seconds}"
        )
        .env("RUSTC_BOOTSTRAP", "1")
        .run()?;
    }
    Ok(())
}

/// Seconds each chaos scenario runs in `cargo xtask ci` (with the debug binaries the interop run built).
const CI_CHAOS_SECONDS: u64 = 7;

/// The fault scenarios of `cargo xtask chaos`.
const CHAOS_SCENARIOS: [&str; 12] = [
    "redis-restart",
    "redis-stop",
    "ring-master-down",
    "worker-kill",
    "worker-stop",
    "slow-consumer",
    "clock-ahead",
    "clock-behind",
    "net-delay",
    "net-cut",
    "net-flaky",
    "sentinel-failover",
];

/// `cargo xtask chaos <scenario> [seconds]`: three client processes of 50 callers each keep calling a service
/// (one call in ten with a chunked 200 KB response) while a fault is injected a third of the way in and lifted
/// after a while, then report every call: answered, failed with a typed error, hung (neither within its timeout),
/// and from the service's own record of what it ran, requests run twice, run but unanswered, and never run.
fn chaos(scenario: Option<&str>, seconds: Option<&str>) -> Result {
    let scenario = scenario.ok_or("usage: cargo xtask chaos <scenario> [seconds]")?;
    let scenarios: Vec<&str> = if scenario == "all" {
        CHAOS_SCENARIOS.to_vec()
    } else if CHAOS_SCENARIOS.contains(&scenario) {
        vec![scenario]
    } else {
        return Err(format!(
            "unknown scenario {scenario:?}; choose one of {CHAOS_SCENARIOS:?} or all"
        )
        .into());
    };
    let seconds: u64 = seconds.unwrap_or("30").parse()?;
    let sh = shell()?;
    let target = release_build(
        &sh,
        &[
            "-p",
            "interop",
            "--bin",
            "chaos-server",
            "--bin",
            "chaos-client",
        ],
    )?;
    chaos_report(&target, &scenarios, seconds)
}

/// Runs the scenarios with the chaos binaries in `target` and prints the report; an error when a call hung, a
/// request ran twice or the service never recovered.
fn chaos_report(target: &std::path::Path, scenarios: &[&str], seconds: u64) -> Result {
    let mut rows = Vec::new();
    let mut failed = Vec::new();
    for &scenario in scenarios {
        let (row, sound) = chaos_run(target, scenario, seconds)?;
        rows.push(row);
        if !sound {
            failed.push(scenario);
        }
    }
    println!("\nRuns of {seconds} s, 150 callers in three processes, every call accounted for:\n");
    println!("| scenario | calls | answered | typed errors | hung | run twice | run, unanswered | never run | recovery |");
    println!("|---|---:|---:|---|---:|---:|---:|---:|---:|");
    for row in rows {
        println!("{row}");
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(
            format!("calls hung, requests ran twice or the service did not recover in {failed:?}")
                .into(),
        )
    }
}

/// One chaos run: its line of the report, and whether nothing hung, nothing ran twice and the service recovered.
fn chaos_run(target: &std::path::Path, scenario: &str, seconds: u64) -> Result<(String, bool)> {
    // A ring of three masters where one goes down; else one Redis.
    let masters = if scenario == "ring-master-down" { 3 } else { 1 };
    let mut redis = (0..masters)
        .map(|_| start_redis())
        .collect::<Result<Vec<(Child, u16)>>>()?;
    // Sentinel: a replica of the master and three Sentinels, which the service and its clients are given.
    let sentinel = scenario == "sentinel-failover";
    let mut watchers = Vec::new();
    if sentinel {
        let replica = start_redis()?;
        let replicate = ["REPLICAOF", "127.0.0.1", &redis[0].1.to_string()];
        redis_command(replica.1, &replicate)?;
        wait_until("the replica to sync", || {
            redis_command(replica.1, &["INFO", "replication"])
                .is_ok_and(|r| r.contains("master_link_status:up"))
        })?;
        redis.push(replica);
        for _ in 0..3 {
            watchers.push(start_sentinel(redis[0].1)?);
        }
    }
    let ports = if sentinel { &watchers } else { &redis }
        .iter()
        .map(|(_, port)| port.to_string())
        .collect::<Vec<_>>()
        .join(",");
    // A slow consumer fills its queue: a small capacity, reached within the outage.
    let capacity = (scenario == "slow-consumer").then_some("50");
    // Network faults: the clients reach Redis through a proxy that can delay and cut (the service directly).
    let proxy = scenario
        .starts_with("net-")
        .then(|| Proxy::start(redis[0].1))
        .transpose()?;
    let client_ports = proxy.as_ref().map_or(ports.clone(), |p| p.port.to_string());
    let logs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/xtask-logs");
    std::fs::create_dir_all(&logs)?;
    let executions = logs.join(format!("chaos-{scenario}-executions.txt"));
    let _ = std::fs::remove_file(&executions);
    let server = |n: u32| -> Result<Child> {
        // Clock skew: the service's wall clock (not its monotonic one) 30 s off its callers', with libfaketime.
        let skew = match scenario {
            "clock-ahead" => Some("+30s"),
            "clock-behind" => Some("-30s"),
            _ => None,
        };
        let mut c = match skew {
            Some(skew) => {
                let mut c = Command::new("faketime");
                c.args(["-f", skew])
                    .arg(target.join("chaos-server"))
                    .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
                c
            }
            None => Command::new(target.join("chaos-server")),
        };
        c.arg(&ports).arg(&executions);
        if let Some(capacity) = capacity {
            c.env("CHAOS_QUEUE_CAPACITY", capacity);
        }
        if sentinel {
            c.env("CHAOS_SENTINEL", SENTINEL_MASTER);
        }
        start_ready(
            c,
            "the chaos service",
            &format!("chaos-{scenario}-server-{n}"),
        )
    };
    let mut service = server(1)?;
    let clients: Vec<std::process::Child> = (1..=3)
        .map(|i| {
            let mut c = Command::new(target.join("chaos-client"));
            if let Some(capacity) = capacity {
                c.env("CHAOS_QUEUE_CAPACITY", capacity);
            }
            if sentinel {
                c.env("CHAOS_SENTINEL", SENTINEL_MASTER);
            }
            c.args([&client_ports, &format!("c{i}"), "50", &seconds.to_string()])
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
        })
        .collect::<std::io::Result<_>>()?;
    let started = Instant::now();
    // The fault, from a third of the run for a sixth of it (at least two seconds).
    std::thread::sleep(Duration::from_secs(seconds / 3));
    let fault_at = started.elapsed();
    let outage = Duration::from_secs((seconds / 6).max(2));
    let signal = |pid: u32, sig: &str| Command::new("kill").args([sig, &pid.to_string()]).status();
    match scenario {
        "redis-restart" | "ring-master-down" => {
            // The first master of one, the second of three.
            let (down, port) = &mut redis[masters / 2];
            let _ = down.0.kill();
            let _ = down.0.wait();
            std::thread::sleep(outage);
            *down = start_redis_on(*port)?;
        }
        // The master killed for good: the Sentinels promote the replica.
        "sentinel-failover" => {
            let _ = redis[0].0 .0.kill();
            let _ = redis[0].0 .0.wait();
            std::thread::sleep(outage);
        }
        "redis-stop" => {
            signal(redis[0].0 .0.id(), "-STOP")?;
            std::thread::sleep(outage);
            signal(redis[0].0 .0.id(), "-CONT")?;
        }
        "worker-kill" => {
            let _ = service.0.kill();
            let _ = service.0.wait();
            std::thread::sleep(outage);
            service = server(2)?;
        }
        "worker-stop" | "slow-consumer" => {
            signal(service.0.id(), "-STOP")?;
            std::thread::sleep(outage);
            signal(service.0.id(), "-CONT")?;
        }
        // The skew lasts the whole run.
        "clock-ahead" | "clock-behind" => std::thread::sleep(outage),
        "net-delay" | "net-cut" | "net-flaky" => {
            let proxy = proxy.as_ref().ok_or("no proxy")?;
            match scenario {
                // 50 ms (± 25 ms) on every read, both ways.
                "net-delay" => {
                    proxy.delay_ms.store(50, Ordering::SeqCst);
                    std::thread::sleep(outage);
                    proxy.delay_ms.store(0, Ordering::SeqCst);
                }
                // Every connection cut, and new ones refused.
                "net-cut" => {
                    proxy.cut(true);
                    std::thread::sleep(outage);
                    proxy.cut(false);
                }
                // One connection cut every 200 ms.
                _ => {
                    let end = Instant::now() + outage;
                    while Instant::now() < end {
                        proxy.cut_one();
                        std::thread::sleep(Duration::from_millis(200));
                    }
                }
            }
        }
        other => return Err(format!("unknown scenario {other:?}").into()),
    }
    let lifted = started.elapsed();
    let mut calls = Vec::new();
    for client in clients {
        let output = client.wait_with_output()?;
        if !output.status.success() {
            return Err(format!("a chaos client failed: {}", output.status).into());
        }
        calls.extend(
            String::from_utf8_lossy(&output.stdout)
                .lines()
                .map(str::to_owned),
        );
    }
    drop(service);
    drop(redis);
    // What the service ran, by id.
    let mut runs: std::collections::HashMap<String, u32> = std::collections::HashMap::new();
    for id in std::fs::read_to_string(&executions)?.lines() {
        *runs.entry(id.to_owned()).or_default() += 1;
    }
    let mut outcomes: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    let (mut answered, mut hung, mut unanswered, mut never_run) = (0, 0, 0, 0);
    let mut recovered: Option<u64> = None;
    for line in &calls {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let [id, outcome, began, ended] = parts[..] else {
            return Err(format!("a chaos client wrote {line:?}").into());
        };
        let (began, ended): (u64, u64) = (began.parse()?, ended.parse()?);
        let ran = runs.get(id).copied().unwrap_or(0);
        match outcome {
            "ok" => {
                answered += 1;
                // Recovery: the first call begun after the fault was lifted that was answered.
                if u128::from(began) >= lifted.as_millis() {
                    let after = ended.saturating_sub(lifted.as_millis() as u64);
                    recovered = Some(recovered.map_or(after, |r| r.min(after)));
                }
            }
            "hung" => hung += 1,
            other => *outcomes.entry(other.to_owned()).or_default() += 1,
        }
        if outcome != "ok" {
            if ran > 0 {
                unanswered += 1;
            } else {
                never_run += 1;
            }
        }
    }
    let twice = runs.values().filter(|&&n| n > 1).count();
    let errors = outcomes
        .iter()
        .map(|(k, v)| format!("{v} {k}"))
        .collect::<Vec<_>>()
        .join(", ");
    let recovery = recovered.map_or("never".to_owned(), |ms| {
        format!("{:.1} s", ms as f64 / 1000.0)
    });
    println!(
        "\n{scenario}: fault at {:.1} s, lifted at {:.1} s; {} calls",
        fault_at.as_secs_f64(),
        lifted.as_secs_f64(),
        calls.len()
    );
    // A service whose clock is ahead of its callers' by more than their timeouts finds every request expired on
    // arrival (the protocol's expiry is wall-clock time): sound when it runs none and every call fails typed.
    let sound = if scenario == "clock-ahead" {
        hung == 0 && answered == 0 && runs.is_empty()
    } else {
        hung == 0 && twice == 0 && recovered.is_some()
    };
    if !sound {
        eprintln!("{scenario}: {hung} calls hung, {twice} requests ran twice, recovery {recovery}");
    }
    let errors = if errors.is_empty() {
        "0".to_owned()
    } else {
        errors
    };
    let row = format!(
        "| {scenario} | {} | {answered} | {errors} | {hung} | {twice} | {unanswered} | {never_run} | {recovery} |",
        calls.len()
    );
    Ok((row, sound))
}

/// `cargo xtask soak [--minutes N]` (default 30): the example service as a user runs it, under a steady mixed load
/// (32 paced callers, tiny calls and 20 KB echoes) for that long, reporting every minute its calls, errors, latency
/// percentiles and the server's resident memory, so that drift and leaks show. Not in CI.
fn soak(minutes: Option<&str>) -> Result {
    let minutes: u64 = minutes.unwrap_or("30").parse()?;
    let sh = shell()?;
    let target = release_build(
        &sh,
        &[
            "-p",
            "examples",
            "--bin",
            "example-service",
            "-p",
            "interop",
            "--bin",
            "soak-client",
        ],
    )?;
    let root = sh.current_dir();
    let (_redis, port) = start_redis()?;
    let service = start_serving(
        example_service(&root, &target, port, "soak"),
        "the soak service",
        "soak-service",
    )?;
    let pid = service.0.id().to_string();
    let port = port.to_string();
    let minutes_text = minutes.to_string();
    step(&format!("soak: {minutes} minutes"));
    let mut client = Command::new(target.join("soak-client"))
        .args([&port, "soak", &pid, &minutes_text, "32"])
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = client.stdout.take().ok_or("no soak-client output")?;
    println!("| minute | calls | errors | p50 ms | p99 ms | p99.9 ms | max ms | server RSS MiB |");
    println!("|---:|---:|---|---:|---:|---:|---:|---:|");
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line?;
        let number = |key| json_number(&line, key).unwrap_or(f64::NAN);
        let errors = line
            .split("\"errors\": {")
            .nth(1)
            .and_then(|rest| rest.split('}').next())
            .filter(|e| !e.is_empty())
            .unwrap_or("0");
        println!(
            "| {} | {} | {errors} | {:.2} | {:.2} | {:.2} | {:.2} | {:.1} |",
            number("minute"),
            number("calls"),
            number("p50_ms"),
            number("p99_ms"),
            number("p999_ms"),
            number("max_ms"),
            number("server_rss_mib")
        );
    }
    if !client.wait()?.success() {
        return Err("the soak client failed".into());
    }
    Ok(())
}

/// A TCP proxy on loopback for the network faults of `cargo xtask chaos`: it can delay every read (with jitter),
/// cut every connection and refuse new ones, or cut one connection at a time. Threads, not a runtime: it only
/// forwards bytes.
struct Proxy {
    port: u16,
    delay_ms: std::sync::Arc<AtomicU64>,
    cut: std::sync::Arc<AtomicBool>,
    open: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
}

impl Proxy {
    /// A proxy to the Redis at `upstream`.
    fn start(upstream: u16) -> Result<Proxy> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let proxy = Proxy {
            port: listener.local_addr()?.port(),
            delay_ms: Default::default(),
            cut: Default::default(),
            open: Default::default(),
        };
        let (delay, cut, open) = (
            proxy.delay_ms.clone(),
            proxy.cut.clone(),
            proxy.open.clone(),
        );
        std::thread::spawn(move || {
            for client in listener.incoming().map_while(std::io::Result::ok) {
                if cut.load(Ordering::SeqCst) {
                    continue; // dropped: the connection closes at once
                }
                let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let mut open = open
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                for (from, to) in [(&client, &server), (&server, &client)] {
                    if let (Ok(from), Ok(to)) = (from.try_clone(), to.try_clone()) {
                        let delay = delay.clone();
                        std::thread::spawn(move || Proxy::pump(from, to, &delay));
                    }
                }
                open.push(client);
                open.push(server);
            }
        });
        Ok(proxy)
    }

    /// Copies one direction until either side closes, delaying each read as asked.
    fn pump(mut from: std::net::TcpStream, mut to: std::net::TcpStream, delay_ms: &AtomicU64) {
        let mut buffer = vec![0_u8; 64 * 1024];
        let mut jitter = u64::from(std::process::id());
        loop {
            let n = match from.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let delay = delay_ms.load(Ordering::Relaxed);
            if delay > 0 {
                // A cheap spread of ± half the delay (xorshift): jitter, not statistics.
                jitter ^= jitter << 13;
                jitter ^= jitter >> 7;
                jitter ^= jitter << 17;
                let spread = jitter % (delay + 1);
                std::thread::sleep(Duration::from_millis(delay / 2 + spread));
            }
            if to.write_all(&buffer[..n]).is_err() {
                break;
            }
        }
        let _ = from.shutdown(std::net::Shutdown::Both);
        let _ = to.shutdown(std::net::Shutdown::Both);
    }

    /// Cuts every connection and refuses new ones (`true`), or takes them again (`false`).
    fn cut(&self, cut: bool) {
        self.cut.store(cut, Ordering::SeqCst);
        if cut {
            let open = std::mem::take(
                &mut *self
                    .open
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            );
            for stream in open {
                let _ = stream.shutdown(std::net::Shutdown::Both);
            }
        }
    }

    /// Cuts the oldest open connection (and its other end).
    fn cut_one(&self) {
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if open.len() >= 2 {
            for stream in open.drain(..2) {
                let _ = stream.shutdown(std::net::Shutdown::Both);
            }
        }
    }
}

/// The master name the Sentinels of `cargo xtask chaos sentinel-failover` watch.
const SENTINEL_MASTER: &str = "chaos";

/// A Sentinel watching the master at `master` (quorum 2, quick failover), in a scratch directory of its own.
fn start_sentinel(master: u16) -> Result<(Child, u16)> {
    let port = free_port()?;
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../target/xtask-logs/sentinel-{port}"));
    std::fs::create_dir_all(&dir)?;
    let config = format!(
        "port {port}\nbind 127.0.0.1\nprotected-mode no\nsentinel monitor {SENTINEL_MASTER} 127.0.0.1 {master} 2\n\
         sentinel down-after-milliseconds {SENTINEL_MASTER} 500\nsentinel failover-timeout {SENTINEL_MASTER} 3000\n"
    );
    std::fs::write(dir.join("sentinel.conf"), config)?;
    let sentinel = Child(
        Command::new("redis-server")
            .arg(dir.join("sentinel.conf"))
            .arg("--sentinel")
            .current_dir(&dir)
            .stdout(Stdio::null())
            .spawn()?,
    );
    wait_until("the sentinel", || redis_answers(port))?;
    Ok((sentinel, port))
}

/// Builds in release mode what `packages` names (cargo's `-p … --bin …` arguments); the folder of the binaries.
fn release_build(sh: &Shell, packages: &[&str]) -> Result<PathBuf> {
    cmd!(sh, "cargo build --quiet --locked --release {packages...}").run()?;
    Ok(sh.current_dir().join("target/release"))
}

/// The kernel's clock ticks per second, in which `/proc/<pid>/stat` counts CPU time.
fn clock_ticks(sh: &Shell) -> Result<f64> {
    Ok(cmd!(sh, "getconf CLK_TCK")
        .read()?
        .trim()
        .parse()
        .map_err(|e| format!("getconf CLK_TCK: {e}"))?)
}

/// A child process killed when dropped.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Waits, up to a deadline, until `ready` says so.
fn wait_until(what: &str, mut ready: impl FnMut() -> bool) -> Result {
    let start = Instant::now();
    while !ready() {
        if start.elapsed() > Duration::from_secs(60) {
            return Err(format!("timed out waiting for {what}").into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

fn redis_answers(port: u16) -> bool {
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let mut reply = [0_u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG\r\n"
}

/// A command to the Redis at `port`, by `redis-cli`; its reply as text.
fn redis_command(port: u16, args: &[&str]) -> Result<String> {
    let output = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()?;
    if !output.status.success() {
        return Err(format!("redis-cli {args:?}: {}", output.status).into());
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// A `redis-server` on a free loopback port, stopped when dropped.
fn start_redis() -> Result<(Child, u16)> {
    let port = free_port()?;
    Ok((start_redis_on(port)?, port))
}

/// A `redis-server` on `port`, keeping nothing on disk; killed when dropped.
fn start_redis_on(port: u16) -> Result<Child> {
    // A folder of its own: a master that feeds a replica writes an RDB file there, whatever `--save` says.
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../target/xtask-logs/redis-{port}"));
    std::fs::create_dir_all(&dir)?;
    let redis = Child(
        Command::new("redis-server")
            .current_dir(&dir)
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()?,
    );
    wait_until("redis-server", || redis_answers(port))?;
    Ok(redis)
}

/// Starts a program and waits for it to print `READY` on its standard output. Its standard error goes to
/// `target/xtask-logs/<log>.log`, so that servers' logs (such as the traceback of a deliberate panic) stay out of the
/// report but are kept for debugging.
fn start_ready(command: Command, what: &str, log: &str) -> Result<Child> {
    start_until(command, what, log, Ready::StdoutLine("READY"))
}

/// Starts a service run by the standalone entry point with `--log-format json`, and waits for its `serving` log
/// line; its standard error goes on to `target/xtask-logs/<log>.log`.
fn start_serving(command: Command, what: &str, log: &str) -> Result<Child> {
    start_until(
        command,
        what,
        log,
        Ready::StderrHas(r#""message":"serving""#),
    )
}

/// What a started program prints once it is ready.
#[derive(Clone, Copy)]
enum Ready {
    /// This line on its standard output.
    StdoutLine(&'static str),
    /// A line with this in it on its standard error (which is also copied to the log).
    StderrHas(&'static str),
}

fn start_until(mut command: Command, what: &str, log: &str, ready: Ready) -> Result<Child> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/xtask-logs");
    std::fs::create_dir_all(&dir)?;
    let mut file = std::fs::File::create(dir.join(format!("{log}.log")))?;
    let mut child = match ready {
        Ready::StdoutLine(_) => Child(
            command
                .stdout(Stdio::piped())
                .stderr(file.try_clone()?)
                .spawn()?,
        ),
        Ready::StderrHas(_) => Child(
            command
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()?,
        ),
    };
    let watched: Box<dyn std::io::Read + Send> = match ready {
        Ready::StdoutLine(_) => Box::new(child.0.stdout.take().ok_or("no stdout")?),
        Ready::StderrHas(_) => Box::new(child.0.stderr.take().ok_or("no stderr")?),
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(watched)
            .lines()
            .map_while(std::result::Result::ok)
        {
            match ready {
                Ready::StdoutLine(wanted) if line.trim() == wanted => {
                    let _ = tx.send(());
                }
                Ready::StderrHas(wanted) => {
                    if line.contains(wanted) {
                        let _ = tx.send(());
                    }
                    let _ = writeln!(file, "{line}");
                }
                Ready::StdoutLine(_) => {}
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(60))
        .map_err(|_| format!("{what} did not become ready"))?;
    Ok(child)
}

/// The PySOA 1.4.9 virtualenv under `target/interop-venv`, created the first time; returns its python.
fn ensure_venv(sh: &Shell) -> Result<PathBuf> {
    let venv = sh.current_dir().join("target/interop-venv");
    let python = venv.join("bin/python");
    let ready = cmd!(
        sh,
        "{python} -c 'import pysoa, msgpack, currint, pytest, pyparsing, pysoa.test.plan'"
    )
    .quiet()
    .ignore_stderr()
    .run()
    .is_ok();
    if !ready {
        step("creating the PySOA 1.4.9 virtualenv under target/interop-venv");
        cmd!(sh, "python3 -m venv {venv}").run()?;
        cmd!(sh, "{python} -m pip install --quiet --disable-pip-version-check -r interop/python/requirements.txt")
            .run()?;
    }
    Ok(python)
}

fn interop() -> Result {
    let sh = shell()?;
    let root = sh.current_dir();
    let python = ensure_venv(&sh)?;
    cmd!(sh, "cargo build --quiet --locked -p interop -p rsoa-cli").run()?;
    let (_redis, port) = start_redis()?;
    let port_text = port.to_string();
    let target = root.join("target/debug");
    let mut rust_server = Command::new(target.join("interop-server"));
    rust_server.arg(&port_text);
    let _rust_server = start_ready(
        rust_server,
        "the rsoa interop server",
        "interop-rsoa-server",
    )?;
    let mut python_server = Command::new(&python);
    python_server
        .arg(root.join("interop/python/service.py"))
        .args(["--port", &port_text, "--log-level", "WARNING"]);
    let _python_server = start_ready(
        python_server,
        "the PySOA interop server",
        "interop-pysoa-server",
    )?;

    step("rsoa client -> PySOA server");
    let rust_cases = cmd!(sh, "{target}/interop-client {port_text} pyinterop")
        .ignore_status()
        .read()?;
    println!("{rust_cases}");
    step("PySOA client -> rsoa server");
    let python_cases = cmd!(
        sh,
        "{python} interop/python/client_cases.py --port {port_text} --service rsinterop --python-service pyinterop"
    )
    .ignore_status()
    .read()?;
    println!("{python_cases}");
    let count = |prefix: &str| {
        rust_cases
            .lines()
            .chain(python_cases.lines())
            .filter(|l| l.starts_with(prefix))
            .count()
    };
    step("the rsoa command-line tool -> PySOA server");
    let cli_cases = rsoa_cli_cases(&sh, &target, &port_text)?;
    println!("{cli_cases}");
    step("the interop contract's PySOA test plans (interop/plans), by PySOA and by rsoa");
    let plan_cases = plan_cases(&sh, &python, &target, &port_text)?;
    println!("{plan_cases}");
    step("a trace from an rsoa client through the PySOA server to an rsoa server");
    let trace = cmd!(sh, "{target}/interop-trace {port_text}")
        .ignore_status()
        .output()?;
    let trace_case = String::from_utf8_lossy(&trace.stdout);
    println!("{trace_case}{}", String::from_utf8_lossy(&trace.stderr));
    // It passes only by saying so and exiting 0 (a panic says neither).
    let trace_passed = trace.status.success() && trace_case.starts_with("PASS ");
    let (passed, failed) = (
        count("PASS ")
            + cli_cases.matches("PASS ").count()
            + plan_cases.matches("PASS ").count()
            + usize::from(trace_passed),
        count("FAIL ")
            + cli_cases.matches("FAIL ").count()
            + plan_cases.matches("FAIL ").count()
            + usize::from(!trace_passed),
    );
    step("differential check: the same raw frames to PySOA and to rsoa");
    let differential = cmd!(
        sh,
        "{python} interop/python/differential.py --port {port_text}"
    )
    .ignore_status()
    .output()?;
    let report = String::from_utf8_lossy(&differential.stdout);
    println!("{report}{}", String::from_utf8_lossy(&differential.stderr));
    println!("interop: {passed} passed, {failed} failed");
    if failed > 0 || passed == 0 {
        return Err(format!("{failed} interop cases failed").into());
    }
    if !differential.status.success() || !report.contains("differential: ") {
        return Err(
            "the differential check found a difference that is neither deliberate nor known".into(),
        );
    }
    Ok(())
}

/// The interop plan files run four ways, each a `PASS name` or `FAIL name: why` line: by PySOA's own
/// `ServicePlanTestCase` against `pyinterop` in-process, by rsoa's runner against `rsinterop` in-process (the
/// `plans` test of the interop crate), and by `rsoa plan run` over Redis against both running services.
fn plan_cases(
    sh: &Shell,
    python: &std::path::Path,
    target: &std::path::Path,
    port: &str,
) -> Result<String> {
    let redis = format!("127.0.0.1:{port}");
    let runs: [(&str, std::process::Output, &str); 4] = [
        (
            "plans_pysoa_in_process_pyinterop",
            cmd!(sh, "{python} interop/python/plan_cases.py")
                .ignore_status()
                .output()?,
            "python plans: ",
        ),
        (
            "plans_rsoa_in_process_rsinterop",
            cmd!(sh, "cargo test --quiet --locked -p interop --test plans")
                .ignore_status()
                .output()?,
            "test result: ok.",
        ),
        (
            "plans_rsoa_over_redis_rsinterop",
            cmd!(
                sh,
                "{target}/rsoa --redis {redis} plan run interop/plans --service rsinterop"
            )
            .ignore_status()
            .output()?,
            "plans: ",
        ),
        (
            "plans_rsoa_over_redis_pyinterop",
            cmd!(
                sh,
                "{target}/rsoa --redis {redis} plan run interop/plans --service pyinterop"
            )
            .ignore_status()
            .output()?,
            "plans: ",
        ),
    ];
    let mut lines = Vec::new();
    for (name, output, summary) in runs {
        let stdout = String::from_utf8_lossy(&output.stdout);
        let counts = stdout
            .lines()
            .rev()
            .find(|l| l.contains(summary))
            .unwrap_or("no summary line")
            .trim()
            .to_owned();
        // Green only with a zero exit, a summary, no failure and something run.
        let ran = !counts.contains(" 0 passed") && counts != "no summary line";
        if output.status.success()
            && ran
            && (counts.contains(" 0 failed") || counts.starts_with("test result: ok."))
        {
            lines.push(format!("PASS {name} ({counts})"));
        } else {
            lines.push(format!(
                "FAIL {name}: {counts}\n{stdout}{}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
    }
    Ok(lines.join("\n"))
}

/// The `rsoa` binary against the PySOA service: each case a `PASS name` or `FAIL name: why` line.
fn rsoa_cli_cases(sh: &Shell, target: &std::path::Path, port: &str) -> Result<String> {
    let redis = format!("127.0.0.1:{port}");
    // (name, arguments, the exit code expected, what its output must contain)
    // PySOA's special types through the Python service's `echo`, and back exactly as sent.
    let special = r#"{"when":{"$datetime":"2026-12-04T19:30:05.123456"},"utc":{"$datetime":"2026-12-04T19:30:05.000001+00:00"},"day":{"$date":"2026-12-04"},"at":{"$time":"19:30:05.123456"},"price":{"$decimal":"-12.50"},"cost":{"$amount":"1250 USD"},"raw":{"$bytes":"00ff"}}"#;
    let cases: [(&str, &[&str], i32, &str); 7] = [
        (
            "cli_special_types",
            &["call", "pyinterop", "echo", special, "--raw"],
            0,
            special,
        ),
        (
            "cli_call",
            &["call", "pyinterop", "square", r#"{"number": 6}"#, "--raw"],
            0,
            r#"{"square":36}"#,
        ),
        (
            "cli_action_error",
            &["call", "pyinterop", "fail"],
            1,
            "FAIL_CODE (some.field): It failed",
        ),
        (
            "cli_introspect",
            &["introspect", "pyinterop", "square"],
            0,
            "number: integer — The number to square",
        ),
        ("cli_status", &["status", "pyinterop"], 0, "pysoa: 1.4.9"),
        (
            "cli_queues",
            &["queues", "pyinterop", "--json"],
            0,
            r#""service":"pyinterop""#,
        ),
        (
            "cli_bench",
            &[
                "bench",
                "pyinterop",
                "square",
                r#"{"number": 2}"#,
                "--count",
                "50",
                "--json",
            ],
            0,
            r#""ok":50,"failed":0"#,
        ),
    ];
    let mut report = String::new();
    for (name, args, code, expected) in cases {
        let output = cmd!(sh, "{target}/rsoa --redis {redis} {args...}")
            .ignore_status()
            .output()?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        if output.status.code() == Some(code) && text.contains(expected) {
            report.push_str(&format!("PASS {name}\n"));
        } else {
            report.push_str(&format!(
                "FAIL {name}: exit {:?}, expected {code} and {expected:?} in {text:?}\n",
                output.status.code()
            ));
        }
    }
    Ok(report)
}

/// A number from a flat JSON object line, e.g. `"p50_us": 12.5`.
fn json_number(line: &str, key: &str) -> Option<f64> {
    let start = line.find(&format!("\"{key}\":"))? + key.len() + 3;
    let rest = line[start..].trim_start();
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    rest[..end].trim().parse().ok()
}

/// One measurement of the side-by-side benchmark.
struct Row {
    client: &'static str,
    server: &'static str,
    processes: usize,
    size: usize,
    callers: usize,
    calls_per_sec: f64,
    p50: f64,
    p99: f64,
    /// CPU time (user + system, all threads) the server processes spent per call served, in µs.
    server_cpu_us: f64,
}

/// CPU seconds (user + system, all threads) a process has used so far, from `/proc/<pid>/stat`.
fn cpu_seconds(pid: u32, ticks_per_second: f64) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .ok_or("unreadable /proc stat")?
        .1
        .split_whitespace()
        .collect();
    // After the command name: state, ppid, … with utime and stime the 12th and 13th.
    let field = |i: usize| -> Result<f64> {
        Ok(fields
            .get(i)
            .ok_or("short /proc stat")?
            .parse::<f64>()
            .map_err(|e| format!("/proc stat: {e}"))?)
    };
    Ok((field(11)? + field(12)?) / ticks_per_second)
}

/// The example service as `example-service` runs it from its settings file, serving `service` on the Redis at
/// `port`, with JSON logs (so that [`start_serving`] sees it serve).
fn example_service(
    root: &std::path::Path,
    target: &std::path::Path,
    port: u16,
    service: &str,
) -> Command {
    let hosts = format!("[\"127.0.0.1:{port}\"]");
    let mut c = Command::new(target.join("example-service"));
    c.arg("--settings")
        .arg(root.join("examples/example-service.toml"))
        .args(["--log-format", "json"])
        .env(
            "RSOA_TRANSPORT__KWARGS__BACKEND_LAYER_KWARGS__HOSTS",
            &hosts,
        )
        .env(
            "RSOA_CLIENT_ROUTING__LEDGER__TRANSPORT__KWARGS__BACKEND_LAYER_KWARGS__HOSTS",
            &hosts,
        )
        .env("RSOA_EXTRA__SERVICE_NAME", service);
    c
}

/// Rounds of `bench observability`: each runs every workload on every deployment, one after the other.
const OBSERVABILITY_ROUNDS: usize = 7;

/// `cargo xtask bench observability`: the example service as a user runs it, side by side on one Redis in four
/// deployments: with logging and metrics off, with the runner's default logging (`--log-level info`, request logs
/// at their default levels, the job's fields on every line), with that and metrics served to Prometheus, and with
/// both and the job and action spans recorded (as for OpenTelemetry). Sequential calls (p50), a saturated
/// backlog (calls/s) and server CPU per call, the deployments taking turns every round. Target: at most 5 % worse
/// with both on.
fn bench_observability() -> Result {
    let sh = shell()?;
    let target = release_build(
        &sh,
        &[
            "-p",
            "examples",
            "--bin",
            "example-service",
            "-p",
            "interop",
            "--bin",
            "bench-client",
            "--bin",
            "bench-backlog",
        ],
    )?;
    let root = sh.current_dir();
    let (_redis, port) = start_redis()?;
    let port_text = port.to_string();
    let ticks = clock_ticks(&sh)?;
    let mut deployments = Vec::new();
    for (service, logs, metrics, spans) in [
        ("quiet", false, false, false),
        ("logged", true, false, false),
        ("observed", true, true, false),
        ("spanned", true, true, true),
    ] {
        let mut c = example_service(&root, &target, port, service);
        if metrics {
            c.env(
                "RSOA_METRICS__PROMETHEUS",
                format!("127.0.0.1:{}", free_port()?),
            );
        }
        if !logs {
            // Only the runner's own lines (it says when it serves): no request logs.
            c.args(["--log-level", "off,rsoa_standalone=info"]);
        }
        if spans {
            // The job and action spans recorded by the log subscriber, as for OpenTelemetry.
            c.args(["--log-level", "info,rsoa_server::span=debug"]);
        }
        let child = start_serving(c, service, &format!("bench-observability-{service}"))?;
        deployments.push((service, child));
    }
    const SEQUENTIAL_CALLS: usize = 3_000;
    // Per deployment: sequential p50, sequential CPU µs/call, saturated calls/s, saturated CPU µs/call.
    let mut figures = vec![[const { Vec::new() }; 4]; deployments.len()];
    for _ in 0..OBSERVABILITY_ROUNDS {
        for ((service, child), figures) in deployments.iter().zip(&mut figures) {
            let pid = child.0.id();
            let number = |line: &str, key| {
                json_number(line, key).ok_or_else(|| format!("no {key} in {line:?}"))
            };
            let calls = SEQUENTIAL_CALLS.to_string();
            let before = cpu_seconds(pid, ticks)?;
            let line = cmd!(
                sh,
                "{target}/bench-client {port_text} {service} 8 1 {calls}"
            )
            .read()?;
            let cpu = cpu_seconds(pid, ticks)? - before;
            figures[0].push(number(&line, "p50_us")?);
            figures[1].push(cpu / (SEQUENTIAL_CALLS + 20) as f64 * 1e6);
            // Three backlogs a round: CPU time is counted in ticks of 10 ms, over a second or so of work.
            let backlog = BACKLOG_CALLS.to_string();
            let before = cpu_seconds(pid, ticks)?;
            for _ in 0..3 {
                let line = cmd!(
                    sh,
                    "{target}/bench-backlog {port_text} {service} 8 {backlog}"
                )
                .read()?;
                figures[2].push(number(&line, "calls_per_sec")?);
            }
            let cpu = cpu_seconds(pid, ticks)? - before;
            figures[3].push(cpu / (3 * BACKLOG_CALLS) as f64 * 1e6);
        }
    }
    let medians: Vec<[f64; 4]> = figures.into_iter().map(|f| f.map(median)).collect();
    println!("\nThe example service with logging and metrics off, default logging on, both on, and both with the job and action spans recorded; medians of {OBSERVABILITY_ROUNDS} alternating rounds:\n");
    println!("| workload | off | logging | logging / off | logging + metrics | both / off | both + spans | spans / off |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (i, workload) in [
        "sequential p50 µs",
        "sequential server CPU µs/call",
        "saturated calls/s",
        "saturated server CPU µs/call",
    ]
    .into_iter()
    .enumerate()
    {
        let [off, logged, both, spanned] = [0, 1, 2, 3].map(|d| medians[d][i]);
        println!(
            "| {workload} | {off:.1} | {logged:.1} | {:.3}x | {both:.1} | {:.3}x | {spanned:.1} | {:.3}x |",
            logged / off,
            both / off,
            spanned / off
        );
    }
    println!("\ntarget: with both on, sequential p50 at most 1.05x and saturated calls/s at least 1/1.05x of off");
    Ok(())
}

/// How many times `bench pysoa` runs every workload.
const PYSOA_ROUNDS: usize = 3;

/// The median of some figures (of the upper two when their number is even).
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Requests in each backlog run (the reply queue takes them all: PySOA's queue capacity is 10 000).
const BACKLOG_CALLS: usize = 8_000;

/// One backlog run: a deployment's server processes draining a queue filled in advance.
struct Backlog {
    server: &'static str,
    processes: usize,
    size: usize,
    /// Calls per second per server process.
    per_process: f64,
    server_cpu_us: f64,
    redis_cpu_us: f64,
}

/// `cargo xtask bench pysoa`; with `backlog_only`, just the saturated runs (`bench pysoa-backlog`).
fn bench_pysoa(backlog_only: bool) -> Result {
    let sh = shell()?;
    let root = sh.current_dir();
    let python = ensure_venv(&sh)?;
    step("rebuilding msgpack's C extension for a fair Python baseline");
    cmd!(sh, "bash interop/python/build_msgpack_ext.sh {python}").run()?;
    // Every bin of interop (the bench servers and clients), then the example service.
    release_build(&sh, &["-p", "interop"])?;
    let target = release_build(&sh, &["-p", "examples", "--bin", "example-service"])?;
    let (_redis, port) = start_redis()?;
    let port_text = port.to_string();
    let ticks = clock_ticks(&sh)?;
    // Every deployment (PySOA and rsoa, one and two processes) runs from the start on a service of its own, so the
    // four client/server pairs of a workload run back to back, round after round: the machine's noise drifts
    // over minutes, and each figure reported is the median over the rounds.
    let mut deployments = Vec::new();
    for server in ["PySOA", "rsoa", "standalone"] {
        for processes in [1_usize, 2] {
            let service = format!(
                "{}{processes}",
                match server {
                    "rsoa" => "rsbench",
                    "standalone" => "rsstd",
                    _ => "pybench",
                }
            );
            let mut children = Vec::new();
            for n in 0..processes {
                let log = format!("bench-{service}-server-{n}");
                let what = format!("a {server} bench server");
                let child = match server {
                    "rsoa" => {
                        let mut c = Command::new(target.join("bench-server"));
                        c.args([port_text.as_str(), service.as_str()]);
                        start_ready(c, &what, &log)?
                    }
                    "standalone" => {
                        // The example service as a user runs it: its settings file, defaults for everything else.
                        let c = example_service(&root, &target, port, &service);
                        start_serving(c, &what, &log)?
                    }
                    _ => {
                        let mut c = Command::new(&python);
                        c.arg(root.join("interop/python/bench_service.py")).args([
                            "--port",
                            &port_text,
                            "--service",
                            &service,
                        ]);
                        start_ready(c, &what, &log)?
                    }
                };
                children.push(child);
            }
            deployments.push((server, processes, service, children));
        }
    }
    let server_cpu = |servers: &[Child]| -> Result<f64> {
        servers.iter().map(|s| cpu_seconds(s.0.id(), ticks)).sum()
    };
    let mut runs = Vec::new();
    let mut backlogs = Vec::new();
    for round in 1..=PYSOA_ROUNDS {
        step(&format!("round {round} of {PYSOA_ROUNDS}"));
        for size in [8_usize, 10_240] {
            // Saturation with no load generator running: each deployment drains a backlog pushed in advance.
            for (server, processes, service, servers) in &deployments {
                let (size_text, calls_text) = (size.to_string(), BACKLOG_CALLS.to_string());
                let cpu_before = server_cpu(servers)?;
                let line = cmd!(
                    sh,
                    "{target}/bench-backlog {port_text} {service} {size_text} {calls_text}"
                )
                .read()?;
                let cpu = server_cpu(servers)? - cpu_before;
                let number =
                    |key| json_number(&line, key).ok_or_else(|| format!("no {key} in {line:?}"));
                let rate = number("calls_per_sec")?;
                backlogs.push(Backlog {
                    server,
                    processes: *processes,
                    size,
                    per_process: rate / *processes as f64,
                    server_cpu_us: cpu / BACKLOG_CALLS as f64 * 1e6,
                    redis_cpu_us: number("redis_cpu_us_per_call")?,
                });
            }
            if backlog_only {
                continue;
            }
            for callers in [1_usize, 4, 16] {
                for (server, processes, service, servers) in &deployments {
                    for client in ["PySOA", "rsoa"] {
                        // Four callers measure light load on the server, as PySOA's clients make it.
                        if callers == 4 && client == "rsoa" {
                            continue;
                        }
                        let calls = match (client, callers) {
                            ("rsoa", 1) => 2_000,
                            ("rsoa", _) => 8_000,
                            (_, 1) => 500,
                            (_, 4) => 1_000,
                            _ => 2_000,
                        };
                        let (size_text, callers_text, calls_text) =
                            (size.to_string(), callers.to_string(), calls.to_string());
                        let cpu_before = server_cpu(servers)?;
                        let line = if client == "rsoa" {
                            cmd!(sh, "{target}/bench-client {port_text} {service} {size_text} {callers_text} {calls_text}")
                                .read()?
                        } else {
                            cmd!(sh, "{python} interop/python/bench_client.py --port {port_text} --service {service} --body-size {size_text} --callers {callers_text} --calls {calls_text}")
                                .read()?
                        };
                        let cpu = server_cpu(servers)? - cpu_before;
                        let number = |key| {
                            json_number(&line, key).ok_or_else(|| format!("no {key} in {line:?}"))
                        };
                        // Both load generators make 20 unmeasured warm-up calls per caller first.
                        let served = number("calls")? + (20 * callers) as f64;
                        runs.push(Row {
                            client,
                            server,
                            processes: *processes,
                            size,
                            callers,
                            calls_per_sec: number("calls_per_sec")?,
                            p50: number("p50_us")?,
                            p99: number("p99_us")?,
                            server_cpu_us: cpu / served * 1e6,
                        });
                    }
                }
            }
        }
    }
    drop(deployments);
    println!("\nSaturated: each deployment drains {BACKLOG_CALLS} requests queued in advance (no load generator runs meanwhile);");
    println!("calls per second per server process, and the server processes' CPU per call, medians over {PYSOA_ROUNDS} rounds:");
    println!("\n| body bytes | server processes | PySOA calls/s per process | rsoa calls/s per process | rsoa/PySOA | PySOA CPU µs/call | rsoa CPU µs/call | Redis CPU µs/call (PySOA, rsoa) | standalone calls/s per process | standalone CPU µs/call |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for size in [8, 10_240] {
        for processes in [1, 2] {
            let median = |server: &str, field: fn(&Backlog) -> f64| {
                median(
                    backlogs
                        .iter()
                        .filter(|b| {
                            b.server == server && b.size == size && b.processes == processes
                        })
                        .map(field)
                        .collect(),
                )
            };
            let (py, rs) = (
                median("PySOA", |b| b.per_process),
                median("rsoa", |b| b.per_process),
            );
            println!(
                "| {size} | {processes} | {py:.0} | {rs:.0} | {:.1}x | {:.0} | {:.0} | {:.0}, {:.0} | {:.0} | {:.0} |",
                rs / py,
                median("PySOA", |b| b.server_cpu_us),
                median("rsoa", |b| b.server_cpu_us),
                median("PySOA", |b| b.redis_cpu_us),
                median("rsoa", |b| b.redis_cpu_us),
                median("standalone", |b| b.per_process),
                median("standalone", |b| b.server_cpu_us),
            );
        }
    }
    if backlog_only {
        return Ok(());
    }
    // One row per workload and pair: the medians over the rounds.
    let mut rows: Vec<Row> = Vec::new();
    for run in &runs {
        let same = |r: &Row| {
            (r.client, r.server, r.processes, r.size, r.callers)
                == (run.client, run.server, run.processes, run.size, run.callers)
        };
        if rows.iter().any(same) {
            continue;
        }
        let mine: Vec<&Row> = runs.iter().filter(|r| same(r)).collect();
        let median = |field: fn(&Row) -> f64| median(mine.iter().map(|r| field(r)).collect());
        rows.push(Row {
            calls_per_sec: median(|r| r.calls_per_sec),
            p50: median(|r| r.p50),
            p99: median(|r| r.p99),
            server_cpu_us: median(|r| r.server_cpu_us),
            ..*run
        });
    }
    println!("\nMedians over {PYSOA_ROUNDS} rounds.");
    println!("\n| client | server | server processes | body bytes | callers | calls/s | p50 µs | p99 µs | server CPU µs/call |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {} | {} | {:.0} | {:.0} | {:.0} | {:.0} |",
            r.client,
            r.server,
            r.processes,
            r.size,
            r.callers,
            r.calls_per_sec,
            r.p50,
            r.p99,
            r.server_cpu_us
        );
    }
    println!("\nrsoa/PySOA: end to end (each with its own client), with the same rsoa client against both servers, and");
    println!("the server processes' CPU per call (the throughput a server process reaches on a core of its own):");
    println!("\n| body bytes | callers | server processes | end to end throughput | same client throughput | PySOA server CPU µs/call | rsoa server CPU µs/call | CPU per call PySOA/rsoa | PySOA p99 µs | rsoa p99 µs |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let find = |client: &str, server: &str, size: usize, callers: usize, processes: usize| {
        rows.iter()
            .find(|r| {
                r.client == client
                    && r.server == server
                    && r.size == size
                    && r.callers == callers
                    && r.processes == processes
            })
            .ok_or_else(|| format!("no {client} → {server} row"))
    };
    for size in [8, 10_240] {
        for callers in [1, 16] {
            for processes in [1, 2] {
                let py = find("PySOA", "PySOA", size, callers, processes)?;
                let rs = find("rsoa", "rsoa", size, callers, processes)?;
                let rs_to_py = find("rsoa", "PySOA", size, callers, processes)?;
                println!(
                    "| {size} | {callers} | {processes} | {:.1}x | {:.1}x | {:.0} | {:.0} | {:.1}x | {:.0} | {:.0} |",
                    rs.calls_per_sec / py.calls_per_sec,
                    rs.calls_per_sec / rs_to_py.calls_per_sec,
                    rs_to_py.server_cpu_us,
                    rs.server_cpu_us,
                    rs_to_py.server_cpu_us / rs.server_cpu_us,
                    py.p99,
                    rs.p99
                );
            }
        }
    }
    let saturated = |server: &str, size: usize, field: fn(&Backlog) -> f64| {
        median(
            backlogs
                .iter()
                .filter(|b| b.server == server && b.size == size && b.processes == 1)
                .map(field)
                .collect(),
        )
    };
    println!("\nThe example service run by the standalone entry point with its default settings, beside the tuned bench");
    println!("server (one process each; standalone/tuned, target at most 1.1x CPU per call and at least 1/1.1 the calls/s):");
    println!("\n| body bytes | load | tuned CPU µs/call | standalone CPU µs/call | CPU standalone/tuned | throughput standalone/tuned |");
    println!("|---:|---|---:|---:|---:|---:|");
    for size in [8, 10_240] {
        for (client, callers) in [("PySOA", 1), ("PySOA", 4), ("PySOA", 16), ("rsoa", 16)] {
            let tuned = find(client, "rsoa", size, callers, 1)?;
            let standalone = find(client, "standalone", size, callers, 1)?;
            println!(
                "| {size} | {callers} {client} callers | {:.0} | {:.0} | {:.2}x | {:.2}x |",
                tuned.server_cpu_us,
                standalone.server_cpu_us,
                standalone.server_cpu_us / tuned.server_cpu_us,
                standalone.calls_per_sec / tuned.calls_per_sec
            );
        }
        let (tuned, standalone) = (
            saturated("rsoa", size, |b| b.server_cpu_us),
            saturated("standalone", size, |b| b.server_cpu_us),
        );
        println!(
            "| {size} | saturated | {tuned:.0} | {standalone:.0} | {:.2}x | {:.2}x |",
            standalone / tuned,
            saturated("standalone", size, |b| b.per_process)
                / saturated("rsoa", size, |b| b.per_process)
        );
    }
    println!("\nServer CPU per call, PySOA 1.4.9's server against the standalone example service (one process each, PySOA's");
    println!("client calling; target PySOA/standalone at least 10x at every load):");
    println!("\n| body bytes | load | PySOA server CPU µs/call | standalone CPU µs/call | PySOA/standalone |");
    println!("|---:|---|---:|---:|---:|");
    for size in [8, 10_240] {
        for callers in [1, 4, 16] {
            let py = find("PySOA", "PySOA", size, callers, 1)?;
            let standalone = find("PySOA", "standalone", size, callers, 1)?;
            println!(
                "| {size} | {callers} sequential callers | {:.0} | {:.0} | {:.1}x |",
                py.server_cpu_us,
                standalone.server_cpu_us,
                py.server_cpu_us / standalone.server_cpu_us
            );
        }
        let (py, standalone) = (
            saturated("PySOA", size, |b| b.server_cpu_us),
            saturated("standalone", size, |b| b.server_cpu_us),
        );
        println!(
            "| {size} | saturated | {py:.0} | {standalone:.0} | {:.1}x |",
            py / standalone
        );
    }
    Ok(())
}
