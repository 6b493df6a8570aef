//! `cargo xtask bench redis`: `call_action` over the Redis gateway beside the floor, a minimal hand-written fred
//! loop doing the same four Redis commands per call (push script, BLPOP, push script, BLPOP), in the same run on
//! the same `redis-server` (started here on a free port).
//!
//! Workloads: sequential latency (p50/p99), and throughput with 1, 16 and 128 concurrent callers against one
//! server process, for a tiny body and a 10 KB body.
//!
//! Each server (the floor's loop, rsoa's server) runs on a thread of its own with a one-thread runtime, as a
//! server process does, and the callers share another one-thread runtime, as in a client process. Sequential
//! latency is measured with the floor and both rsoa servers running side by side and one caller taking turns
//! among them, a block of calls at a time, so that the machine's noise falls on all three alike.

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use fred::prelude::{
    Builder, ClientLike, Config, ListInterface, LuaInterface, ServerConfig, Value as RedisValue,
};
use fred::types::scripts::Script;
use rsoa_client::Client;
use rsoa_protocol::{Map, Value};
use rsoa_server::{serve, ActionContext, ActionError, Server};
use rsoa_transport_redis::{
    serve_workers, RedisBackend, RedisClientTransport, RedisServerTransport, RedisSettings,
};
use tokio::sync::oneshot;

const LUA: &str = "if redis.call('llen', KEYS[1]) >= tonumber(ARGV[2]) then\n    return redis.error_reply(\"queue full\")\nend\nredis.call('rpush', KEYS[1], ARGV[3])\nredis.call('expire', KEYS[1], ARGV[1])";

#[derive(serde::Deserialize)]
struct Echo {
    data: String,
}

#[derive(serde::Serialize)]
struct Echoed {
    data: String,
}

fn body(size: usize) -> Map {
    [("data", Value::from("x".repeat(size)))]
        .into_iter()
        .collect()
}

struct Stats {
    calls: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Stats {
    fn per_sec(&self) -> f64 {
        self.calls as f64 / self.elapsed.as_secs_f64()
    }

    fn quantile(&self, q: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)]
    }
}

/// The median of some figures.
fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Runs `callers` concurrent loops of `call` until `total` calls are done.
async fn drive<F, Fut>(callers: usize, total: usize, call: F) -> Stats
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let call = Arc::new(call);
    let per_caller = total / callers;
    let start = Instant::now();
    let tasks: Vec<_> = (0..callers)
        .map(|caller| {
            let call = call.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per_caller);
                for _ in 0..per_caller {
                    let t = Instant::now();
                    call(caller).await;
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("caller finishes"));
    }
    Stats {
        calls: latencies.len(),
        elapsed: start.elapsed(),
        latencies,
    }
}

async fn fred_client(port: u16) -> fred::prelude::Client {
    let client = Builder::from_config(Config {
        server: ServerConfig::new_centralized("127.0.0.1", port),
        ..Config::default()
    })
    .build()
    .expect("client");
    client.init().await.expect("connect");
    client
}

/// Runs a server on a thread of its own, on a one-thread runtime (as in a server process of its own), and returns
/// once the server has said it is ready through the sender it is given.
async fn on_own_thread<S, F>(serve: S) -> std::thread::JoinHandle<()>
where
    S: FnOnce(oneshot::Sender<()>) -> F + Send + 'static,
    F: std::future::Future<Output = ()>,
{
    let (ready, started) = oneshot::channel();
    let thread = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("server runtime")
            .block_on(serve(ready));
    });
    started.await.expect("the server starts");
    thread
}

/// A running server thread and how to stop it.
struct Running {
    stop: Box<dyn FnOnce() + Send>,
    thread: std::thread::JoinHandle<()>,
}

impl Running {
    fn stop(self) {
        (self.stop)();
        self.thread.join().expect("the server stops");
    }
}

/// The floor's server: one loop doing BLPOP on `queue` and pushing each frame back through the push script to the
/// key named in the frame's first 16 bytes.
async fn floor_server(port: u16, queue: &'static str, sha: fred::bytes_utils::Str) -> Running {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let server_stop = stop.clone();
    let thread = on_own_thread(move |ready| async move {
        let server = fred_client(port).await;
        let pusher = fred_client(port).await;
        let _ = ready.send(());
        while !server_stop.load(std::sync::atomic::Ordering::Relaxed) {
            let popped: RedisValue = match server.blpop(queue, 1.0).await {
                Ok(v) => v,
                Err(_) => continue,
            };
            if let RedisValue::Array(mut pair) = popped {
                let frame = match pair.pop() {
                    Some(RedisValue::Bytes(frame)) => Some(frame),
                    // fred hands back text that is valid UTF-8 as a string.
                    Some(RedisValue::String(text)) => Some(text.into_inner()),
                    _ => None,
                };
                if let Some(frame) = frame {
                    let key = String::from_utf8_lossy(&frame[..16]).into_owned();
                    let args = vec![
                        RedisValue::Integer(60),
                        RedisValue::Integer(10_000),
                        RedisValue::Bytes(frame),
                    ];
                    let _: RedisValue = pusher.evalsha(sha.clone(), key, args).await.expect("push");
                }
            }
        }
    })
    .await;
    Running {
        stop: Box::new(move || stop.store(true, std::sync::atomic::Ordering::Relaxed)),
        thread,
    }
}

/// The floor's callers: each pushes its frame through the push script and pops the echo from its own key.
struct FloorCallers {
    push: fred::prelude::Client,
    blockers: Vec<fred::prelude::Client>,
    sha: fred::bytes_utils::Str,
    queue: &'static str,
    frames: Vec<Bytes>,
}

impl FloorCallers {
    async fn new(
        port: u16,
        queue: &'static str,
        sha: fred::bytes_utils::Str,
        size: usize,
        callers: usize,
    ) -> FloorCallers {
        let mut blockers = Vec::new();
        for _ in 0..callers {
            blockers.push(fred_client(port).await);
        }
        let payload = "x".repeat(size);
        FloorCallers {
            push: fred_client(port).await,
            blockers,
            sha,
            queue,
            frames: (0..callers)
                .map(|caller| Bytes::from(format!("floor:reply:{caller:04}{payload}")))
                .collect(),
        }
    }

    async fn call(&self, caller: usize) {
        let args = vec![
            RedisValue::Integer(60),
            RedisValue::Integer(10_000),
            RedisValue::Bytes(self.frames[caller].clone()),
        ];
        let _: RedisValue = self
            .push
            .evalsha(self.sha.clone(), self.queue, args)
            .await
            .expect("push");
        let key = format!("floor:reply:{caller:04}");
        let reply: RedisValue = self.blockers[caller].blpop(key, 5.0).await.expect("reply");
        std::hint::black_box(reply);
    }
}

/// Loads the floor's push script and returns its SHA-1.
async fn floor_script(port: u16) -> fred::bytes_utils::Str {
    let setup = fred_client(port).await;
    let _: RedisValue = setup.script_load(LUA).await.expect("script load");
    Script::from_lua(LUA).sha1().clone()
}

/// The floor: one server loop (BLPOP, push script) and callers (push script, BLPOP on their own key).
async fn floor(port: u16, size: usize, callers: usize, total: usize) -> Stats {
    let sha = floor_script(port).await;
    let server = floor_server(port, "floor:request", sha.clone()).await;
    let callers_ = Arc::new(FloorCallers::new(port, "floor:request", sha, size, callers).await);
    let stats = drive(callers, total, move |caller| {
        let callers = callers_.clone();
        async move { callers.call(caller).await }
    })
    .await;
    server.stop();
    stats
}

/// rsoa's server for `service`, serving an `echo` action: `rsoa_server::serve` on a `RedisServerTransport`, or
/// `serve_workers` (32 per master) when `workers` is set.
async fn rsoa_server(port: u16, service: &'static str, batch: usize, workers: bool) -> Running {
    let (stop, stopped) = oneshot::channel::<()>();
    let thread = on_own_thread(move |ready| async move {
        let mut server_settings = RedisSettings::standard([format!("127.0.0.1:{port}")]);
        server_settings.receive_batch_size = Some(batch);
        let backend = RedisBackend::connect(server_settings)
            .await
            .expect("connect");
        let server = Server::builder(service)
            .action_fn("echo", |req: Echo, _ctx: ActionContext| async move {
                Ok::<_, ActionError>(Echoed { data: req.data })
            })
            .build()
            .expect("server");
        let stopped = async move {
            let _ = stopped.await;
        };
        let _ = ready.send(());
        if workers {
            serve_workers(&backend, server, 32, stopped)
                .await
                .expect("serve");
        } else {
            let transport = RedisServerTransport::new(&backend, service).expect("transport");
            serve(server, Arc::new(transport), stopped, Duration::from_secs(5)).await;
        }
        backend.close().await;
    })
    .await;
    Running {
        stop: Box::new(move || {
            let _ = stop.send(());
        }),
        thread,
    }
}

/// A client of the given services over Redis.
async fn rsoa_client(port: u16, services: &[&str]) -> (RedisBackend, Client) {
    let backend = RedisBackend::connect(RedisSettings::standard([format!("127.0.0.1:{port}")]))
        .await
        .expect("connect");
    let mut client = Client::builder();
    for service in services {
        client = client.service(RedisClientTransport::new(&backend, service).expect("transport"));
    }
    (backend, client.build())
}

/// rsoa: a served `echo` action and `call_action` callers sharing one client.
async fn rsoa(
    port: u16,
    size: usize,
    callers: usize,
    total: usize,
    batch: usize,
    workers: bool,
) -> Stats {
    let server = rsoa_server(port, "bench", batch, workers).await;
    let (client_backend, client) = rsoa_client(port, &["bench"]).await;
    let request = body(size);
    // Warm the connections (one blocking connection per concurrent caller).
    let warm = client.clone();
    let warm_body = request.clone();
    drive(callers, callers * 4, move |_| {
        let client = warm.clone();
        let body = warm_body.clone();
        async move {
            client
                .call_action("bench", "echo", body)
                .await
                .expect("call");
        }
    })
    .await;
    let stats = drive(callers, total, move |_| {
        let client = client.clone();
        let body = request.clone();
        async move {
            let response = client
                .call_action("bench", "echo", body)
                .await
                .expect("call");
            std::hint::black_box(response);
        }
    })
    .await;
    client_backend.close().await;
    server.stop();
    stats
}

/// The most connections an rsoa client process holds while `callers` call `echo` concurrently (four calls each),
/// counted with `CLIENT LIST` beside the server's, and how many calls succeeded.
async fn client_connections(port: u16, callers: usize) -> (usize, usize) {
    let server = rsoa_server(port, "bench-connections", 16, false).await;
    let before = support::connections(port);
    let (client_backend, client) = rsoa_client(port, &["bench-connections"]).await;
    let watching = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let watcher = {
        let watching = watching.clone();
        std::thread::spawn(move || {
            let mut most = 0;
            while watching.load(std::sync::atomic::Ordering::Relaxed) {
                most = most.max(support::connections(port));
                std::thread::sleep(Duration::from_millis(5));
            }
            most
        })
    };
    let request = body(8);
    let stats = drive(callers, callers * 4, move |_| {
        let client = client.clone();
        let body = request.clone();
        async move {
            let response = client
                .call_action("bench-connections", "echo", body)
                .await
                .expect("call");
            std::hint::black_box(response);
        }
    })
    .await;
    watching.store(false, std::sync::atomic::Ordering::Relaxed);
    let most = watcher.join().expect("watcher");
    client_backend.close().await;
    server.stop();
    (most.saturating_sub(before), stats.calls)
}

/// Calls in a block of the interleaved sequential run.
const BLOCK: usize = 25;

/// The service the standalone example service answers as, when the bench runs it.
const STANDALONE: &str = "bench-standalone";

/// The example service run as a process by the standalone entry point, with its settings file and defaults
/// (`cargo xtask bench redis` builds it and names it in `BENCH_EXAMPLE_SERVICE`); SIGTERM when dropped.
struct Standalone(std::process::Child);

impl Standalone {
    fn start(port: u16) -> Option<Standalone> {
        let binary = std::env::var_os("BENCH_EXAMPLE_SERVICE")?;
        let settings = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/example-service.toml"
        );
        let hosts = format!("[\"127.0.0.1:{port}\"]");
        let mut child = std::process::Command::new(binary)
            .args(["--settings", settings, "--log-format", "json"])
            .env(
                "RSOA_TRANSPORT__KWARGS__BACKEND_LAYER_KWARGS__HOSTS",
                &hosts,
            )
            .env(
                "RSOA_CLIENT_ROUTING__LEDGER__TRANSPORT__KWARGS__BACKEND_LAYER_KWARGS__HOSTS",
                &hosts,
            )
            .env("RSOA_EXTRA__SERVICE_NAME", STANDALONE)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start the example service");
        let stderr = child.stderr.take().expect("stderr");
        let (serving, started) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            let mut seen = Vec::new();
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if line.contains(r#""message":"serving""#) {
                    let _ = serving.send(Ok(()));
                }
                seen.push(line);
            }
            let _ = serving.send(Err(seen.join("\n")));
        });
        match started.recv_timeout(Duration::from_secs(60)) {
            Ok(Ok(())) => {}
            Ok(Err(logged)) => panic!("the example service exited:\n{logged}"),
            Err(e) => panic!("the example service did not start serving: {e}"),
        }
        Some(Standalone(child))
    }
}

impl Drop for Standalone {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

/// Sequential latency of the floor and the rsoa server paths, interleaved: the servers run side by side on queues
/// of their own, and one caller takes turns among them, `BLOCK` calls at a time (the order rotating from block to
/// block), so that every path meets the same moments of the machine's noise. Each round makes `calls` calls on
/// every path; the result is each round's stats per path, in the order floor, serve, workers, and the standalone
/// example service when it runs.
async fn sequential(
    port: u16,
    size: usize,
    rounds: usize,
    calls: usize,
    standalone: bool,
) -> Vec<Vec<Stats>> {
    let sha = floor_script(port).await;
    let floor_server = floor_server(port, "floor:request", sha.clone()).await;
    let floor_callers = FloorCallers::new(port, "floor:request", sha, size, 1).await;
    let serve_server = rsoa_server(port, "bench", 1, false).await;
    let workers_server = rsoa_server(port, "bench-workers", 1, true).await;
    let (client_backend, client) = rsoa_client(port, &["bench", "bench-workers", STANDALONE]).await;
    let request = body(size);
    let paths = if standalone { 4 } else { 3 };
    let call = |path: usize| {
        let client = &client;
        let floor_callers = &floor_callers;
        let request = request.clone();
        async move {
            match path {
                0 => floor_callers.call(0).await,
                _ => {
                    let service = ["bench", "bench-workers", STANDALONE][path - 1];
                    let response = client
                        .call_action(service, "echo", request)
                        .await
                        .expect("call");
                    std::hint::black_box(response);
                }
            }
        }
    };
    for path in 0..paths {
        for _ in 0..BLOCK {
            call(path).await;
        }
    }
    let mut results = Vec::new();
    for _ in 0..rounds {
        let mut latencies: Vec<Vec<Duration>> = vec![Vec::new(); paths];
        for block in 0..calls.div_ceil(BLOCK) {
            for turn in 0..paths {
                let path = (block + turn) % paths;
                for _ in 0..BLOCK {
                    let t = Instant::now();
                    call(path).await;
                    latencies[path].push(t.elapsed());
                }
            }
        }
        results.push(
            latencies
                .into_iter()
                .map(|latencies| Stats {
                    calls: latencies.len(),
                    elapsed: latencies.iter().sum(),
                    latencies,
                })
                .collect(),
        );
    }
    client_backend.close().await;
    for server in [floor_server, serve_server, workers_server] {
        server.stop();
    }
    results
}

/// `callers` calling the standalone example service's `echo` at once, `total` calls in all.
async fn standalone_calls(port: u16, size: usize, callers: usize, total: usize) -> Stats {
    let (client_backend, client) = rsoa_client(port, &[STANDALONE]).await;
    let request = body(size);
    let run = |total: usize| {
        let client = client.clone();
        let request = request.clone();
        drive(callers, total, move |_| {
            let client = client.clone();
            let body = request.clone();
            async move {
                let response = client
                    .call_action(STANDALONE, "echo", body)
                    .await
                    .expect("call");
                std::hint::black_box(response);
            }
        })
    };
    run(callers * 4).await;
    let stats = run(total).await;
    client_backend.close().await;
    stats
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("redis bench: run with `cargo xtask bench redis`");
        return;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let redis = support::redis(&[]);
    let port = redis.port;
    let standalone = Standalone::start(port);
    println!("\nredis-server on 127.0.0.1:{port}; each server on a one-thread runtime of its own, the callers on another");
    println!("\n`serve` is rsoa_server::serve on a RedisServerTransport; `workers` is serve_workers (32 per master).");
    if standalone.is_some() {
        println!("`standalone` is the example service as a process of its own, run by rsoa-standalone with its settings file.");
    }
    let path_names: &[&str] = if standalone.is_some() {
        &["serve", "workers", "standalone"]
    } else {
        &["serve", "workers"]
    };
    println!("\n| body | callers | server path | floor calls/s | rsoa calls/s | rsoa / floor | floor p50 µs | rsoa p50 µs | p50 ratio | floor p99 µs | rsoa p99 µs |");
    println!("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut best_floor = [0.0_f64; 2];
    let mut best_rsoa = [0.0_f64; 2];
    let mut sequential_p50 = Vec::new();
    // `cargo bench -p rsoa-transport-redis --bench redis -- sequential` measures only one caller.
    let sequential_only = std::env::args().any(|a| a == "sequential");
    for (i, (label, size)) in [("tiny", 8_usize), ("10 KB", 10_240)]
        .into_iter()
        .enumerate()
    {
        for callers in [1_usize, 16, 128] {
            if sequential_only && callers > 1 {
                continue;
            }
            // The machine's noise drifts over seconds, so the floor and both server paths take turns, round after
            // round, and each figure is the median over the rounds (each ratio the median of the rounds' ratios).
            // One caller takes turns block by block within each round (see `sequential`).
            let mut floors = Vec::new();
            let mut paths: Vec<Vec<Stats>> = path_names.iter().map(|_| Vec::new()).collect();
            if callers == 1 {
                let rounds = sequential(port, size, 7, 1_000, standalone.is_some());
                for round in runtime.block_on(rounds) {
                    let mut round = round.into_iter();
                    floors.extend(round.next());
                    for (path, stats) in paths.iter_mut().zip(round) {
                        path.push(stats);
                    }
                }
            } else {
                let (rounds, total, batch) = (3, 8_000, 16);
                runtime.block_on(floor(port, size, callers, callers * 4));
                for _ in 0..rounds {
                    floors.push(runtime.block_on(floor(port, size, callers, total)));
                    for (path, workers) in [false, true].into_iter().enumerate() {
                        paths[path].push(
                            runtime.block_on(rsoa(port, size, callers, total, batch, workers)),
                        );
                    }
                    if standalone.is_some() {
                        paths[2]
                            .push(runtime.block_on(standalone_calls(port, size, callers, total)));
                    }
                }
            }
            let us = |d: Duration| d.as_secs_f64() * 1e6;
            let floor_rate = median(floors.iter().map(Stats::per_sec));
            best_floor[i] = best_floor[i].max(floor_rate);
            for (&path, runs) in path_names.iter().zip(&paths) {
                let rate = median(runs.iter().map(Stats::per_sec));
                best_rsoa[i] = best_rsoa[i].max(rate);
                let p50_ratios: Vec<f64> = runs
                    .iter()
                    .zip(&floors)
                    .map(|(r, f)| us(r.quantile(0.5)) / us(f.quantile(0.5)))
                    .collect();
                let p50_ratio = median(p50_ratios.iter().copied());
                if callers == 1 {
                    sequential_p50.push((label, path, p50_ratio, p50_ratios));
                }
                println!(
                    "| {label} | {callers} | {path} | {floor_rate:.0} | {rate:.0} | {:.2}x | {:.0} | {:.0} | {p50_ratio:.2}x | {:.0} | {:.0} |",
                    median(runs.iter().zip(&floors).map(|(r, f)| r.per_sec() / f.per_sec())),
                    median(floors.iter().map(|f| us(f.quantile(0.5)))),
                    median(runs.iter().map(|r| us(r.quantile(0.5)))),
                    median(floors.iter().map(|f| us(f.quantile(0.99)))),
                    median(runs.iter().map(|r| us(r.quantile(0.99)))),
                );
            }
        }
    }
    println!();
    for (i, label) in ["tiny", "10 KB"].iter().enumerate() {
        println!(
            "{label}: rsoa's best throughput {:.0} calls/s is {:.2}x the floor's best {:.0} (target at least 1.0x)",
            best_rsoa[i],
            best_rsoa[i] / best_floor[i],
            best_floor[i]
        );
    }
    for (label, path, ratio, rounds) in sequential_p50 {
        let rounds: Vec<String> = rounds.iter().map(|r| format!("{r:.2}")).collect();
        println!(
            "{label}, {path}: sequential p50 {ratio:.2}x the floor (median of the rounds: {})",
            rounds.join(", ")
        );
    }
    println!("target: sequential p50 within 1.2x of the floor");
    if sequential_only {
        return;
    }
    println!("\nConnections one client process holds while its callers call at once (CLIENT LIST; the floor holds one per caller plus one):\n");
    println!("| callers | calls | rsoa connections | floor connections |");
    println!("|---:|---:|---:|---:|");
    for callers in [1_usize, 16, 128, 2_000] {
        let (used, calls) = runtime.block_on(client_connections(port, callers));
        println!("| {callers} | {calls} | {used} | {} |", callers + 1);
    }
}
