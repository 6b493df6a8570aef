//! `cargo xtask bench local`: `call_action` over the in-process transport, sequential and with 64 concurrent
//! callers, beside the server alone (`Server::handle` on a ready-made job) measured in the same run.
//!
//! The ratio says what the client, its request building and the transport add on top of running the job.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rsoa_client::Client;
use rsoa_protocol::{ActionRequest, JobRequest, Map, Value};
use rsoa_server::{ActionContext, ActionError, Server};
use rsoa_transport::{IncomingJob, JobBody};
use rsoa_transport_local::LocalTransport;

/// The number to square.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct SquareRequest {
    number: i64,
}

#[derive(serde::Serialize)]
struct SquareResponse {
    square: i64,
}

async fn square(req: SquareRequest, _ctx: ActionContext) -> Result<SquareResponse, ActionError> {
    Ok(SquareResponse {
        square: req.number * req.number,
    })
}

fn server() -> Server {
    Server::builder("bench")
        .action_fn("square", square)
        .build()
        .expect("valid server")
}

/// The same service with its request checked against the request type's Conformity schema first.
fn validated_server() -> Server {
    Server::builder("bench")
        .validated_fn("square", square)
        .build()
        .expect("valid server")
}

fn body() -> Map {
    [("number", Value::from(7))].into_iter().collect()
}

struct Stats {
    calls_per_sec: f64,
    p50: Duration,
    p99: Duration,
}

fn stats(mut latencies: Vec<Duration>, elapsed: Duration) -> Stats {
    latencies.sort_unstable();
    let pick = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    Stats {
        calls_per_sec: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50: pick(0.50),
        p99: pick(0.99),
    }
}

const SEQUENTIAL_CALLS: usize = 300_000;
const CONCURRENT_TASKS: usize = 64;
const CALLS_PER_TASK: usize = 10_000;

async fn sequential_client(client: &Client) -> Stats {
    let mut latencies = Vec::with_capacity(SEQUENTIAL_CALLS);
    let start = Instant::now();
    for _ in 0..SEQUENTIAL_CALLS {
        let t = Instant::now();
        let response = client
            .call_action("bench", "square", body())
            .await
            .expect("call succeeds");
        std::hint::black_box(response);
        latencies.push(t.elapsed());
    }
    stats(latencies, start.elapsed())
}

async fn sequential_server(server: &Server) -> Stats {
    let mut latencies = Vec::with_capacity(SEQUENTIAL_CALLS);
    let start = Instant::now();
    for i in 0..SEQUENTIAL_CALLS {
        let t = Instant::now();
        let mut job = JobRequest::new(vec![ActionRequest::new("square", body())]);
        job.context.correlation_id = "bench".to_owned();
        let response = server
            .handle(IncomingJob::new(
                Value::from(i),
                Map::new(),
                JobBody::Typed(job),
            ))
            .await;
        std::hint::black_box(response);
        latencies.push(t.elapsed());
    }
    stats(latencies, start.elapsed())
}

async fn concurrent_client(client: Client) -> Stats {
    let start = Instant::now();
    let tasks: Vec<_> = (0..CONCURRENT_TASKS)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(CALLS_PER_TASK);
                for _ in 0..CALLS_PER_TASK {
                    let t = Instant::now();
                    let response = client
                        .call_action("bench", "square", body())
                        .await
                        .expect("call succeeds");
                    std::hint::black_box(response);
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(CONCURRENT_TASKS * CALLS_PER_TASK);
    for task in tasks {
        latencies.extend(task.await.expect("task finishes"));
    }
    stats(latencies, start.elapsed())
}

async fn concurrent_server(server: Server) -> Stats {
    let server = Arc::new(server);
    let start = Instant::now();
    let tasks: Vec<_> = (0..CONCURRENT_TASKS)
        .map(|_| {
            let server = server.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(CALLS_PER_TASK);
                for i in 0..CALLS_PER_TASK {
                    let t = Instant::now();
                    let mut job = JobRequest::new(vec![ActionRequest::new("square", body())]);
                    job.context.correlation_id = "bench".to_owned();
                    let incoming =
                        IncomingJob::new(Value::from(i), Map::new(), JobBody::Typed(job));
                    std::hint::black_box(server.handle(incoming).await);
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("task finishes"));
    }
    stats(latencies, start.elapsed())
}

fn row(name: &str, s: &Stats, floor: &Stats) {
    println!(
        "| {name} | {:.0} | {:.2} | {:.2} | {:.2}x |",
        s.calls_per_sec,
        s.p50.as_secs_f64() * 1e6,
        s.p99.as_secs_f64() * 1e6,
        floor.calls_per_sec / s.calls_per_sec
    );
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("local bench: run with `cargo xtask bench local`");
        return;
    }
    let current = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let multi = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let plain = Client::builder()
        .service(LocalTransport::new(server()))
        .build();
    let round_trip = Client::builder()
        .service(LocalTransport::new(server()).round_trip(true))
        .build();

    // Warm up allocators and caches.
    current.block_on(async {
        for _ in 0..20_000 {
            plain
                .call_action("bench", "square", body())
                .await
                .expect("call succeeds");
        }
    });

    let seq_server = current.block_on(sequential_server(&server()));
    let seq_client = current.block_on(sequential_client(&plain));
    let seq_round_trip = current.block_on(sequential_client(&round_trip));
    let con_server = multi.block_on(concurrent_server(server()));
    let con_client = multi.block_on(concurrent_client(plain.clone()));

    println!();
    println!("| workload | calls/s | p50 µs | p99 µs | time vs server alone |");
    println!("|---|---:|---:|---:|---:|");
    row("sequential: server alone (floor)", &seq_server, &seq_server);
    row(
        "sequential: call_action, local transport",
        &seq_client,
        &seq_server,
    );
    row(
        "sequential: call_action, local + MessagePack round trip",
        &seq_round_trip,
        &seq_server,
    );
    row(
        "64 concurrent callers: server alone (floor)",
        &con_server,
        &con_server,
    );
    row(
        "64 concurrent callers: call_action, local transport",
        &con_client,
        &con_server,
    );
    // Conformity validation before serde, against the serde path alone: alternating rounds, medians.
    let validated = Client::builder()
        .service(LocalTransport::new(validated_server()))
        .build();
    let (mut serde_only, mut checked) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        serde_only.push(current.block_on(sequential_client(&plain)).calls_per_sec);
        checked.push(
            current
                .block_on(sequential_client(&validated))
                .calls_per_sec,
        );
    }
    let median = |rates: &mut Vec<f64>| {
        rates.sort_by(f64::total_cmp);
        rates[rates.len() / 2]
    };
    let (serde_only, checked) = (median(&mut serde_only), median(&mut checked));
    println!();
    println!(
        "validated_fn (Conformity check, then serde) vs action_fn (serde only), sequential call_action, median of 5 \
         alternating rounds: {checked:.0} vs {serde_only:.0} calls/s, {:.1}% slower (target at most 10%)",
        (serde_only / checked - 1.0) * 100.0
    );
    println!();
    println!(
        "targets: sequential call_action at least 300000 calls/s (got {:.0}) and p50 under 4 µs (got {:.2} µs)",
        seq_client.calls_per_sec,
        seq_client.p50.as_secs_f64() * 1e6
    );
}
