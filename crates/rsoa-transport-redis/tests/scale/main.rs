//! The Redis client at scale: many calls in flight on a bounded number of connections, against real `redis-server`
//! processes started here on free loopback ports.

#[path = "../support/mod.rs"]
mod support;

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fred::prelude::{Builder, ClientLike, Config, ServerConfig};
use fred::types::{ClusterHash, CustomCommand};
use rsoa_client::{CallError, Client};
use rsoa_server::{ActionContext, ActionError, Server};
use rsoa_transport_redis::{RedisBackend, RedisClientTransport, RedisSettings};
use serde::{Deserialize, Serialize};
use support::{connections, redis, wait_for, working_connections, Served};

/// The child process's environment: the Redis port it calls through.
const CHILD_PORT: &str = "RSOA_SCALE_CHILD_PORT";

/// Calls the child makes, all in flight at once.
const CALLS: usize = 10_000;

/// Every this many calls, one gets a response large enough to be chunked.
const CHUNKED_EVERY: usize = 50;

/// The size of a chunked response's text (the server chunks above 102 400 bytes).
const CHUNKED_SIZE: usize = 150_000;

#[derive(Deserialize)]
struct ItemRequest {
    n: u64,
    size: usize,
}

#[derive(Serialize, Deserialize)]
struct Item {
    n: u64,
    text: String,
}

#[derive(Deserialize)]
struct Sleep {
    millis: u64,
}

#[derive(Serialize)]
struct Slept {
    slept: u64,
}

fn service() -> Server {
    Server::builder("scale")
        .action_fn("item", |req: ItemRequest, _ctx: ActionContext| async move {
            let text: String = (0..req.size)
                .map(|i| char::from(b'a' + ((i as u64 + req.n) % 26) as u8))
                .collect();
            Ok::<_, ActionError>(Item { n: req.n, text })
        })
        .action_fn("sleep", |req: Sleep, _ctx: ActionContext| async move {
            tokio::time::sleep(Duration::from_millis(req.millis)).await;
            Ok::<_, ActionError>(Slept { slept: req.millis })
        })
        .build()
        .expect("server")
}

fn settings(port: u16) -> RedisSettings {
    RedisSettings::standard([format!("127.0.0.1:{port}")])
}

/// Serves `scale` on the Redis at `port`, chunking responses above 102 400 bytes, with a client of `client`
/// settings.
async fn serve(port: u16, client: RedisSettings) -> Served {
    let mut server = settings(port);
    server.chunk_messages_larger_than_bytes = Some(102_400);
    server.maximum_message_size_in_bytes = Some(1_000_000);
    Served::start(service(), server, client).await
}

/// Calls `item` `n`, expecting a response of `size` characters that is this call's own.
async fn call_item(client: &Client, n: u64, size: usize) -> Result<(), String> {
    let response = client
        .call_action("scale", "item", &serde_json::json!({"n": n, "size": size}))
        .timeout(Duration::from_secs(120))
        .await
        .map_err(|e| format!("call {n}: {e}"))?;
    let item: Item =
        rsoa_protocol::from_value(response.body.into()).map_err(|e| format!("call {n}: {e}"))?;
    let first = item.text.bytes().next();
    if item.n != n || item.text.len() != size || (size > 0 && first != Some(b'a' + (n % 26) as u8))
    {
        return Err(format!("call {n} got the response of call {}", item.n));
    }
    Ok(())
}

#[test]
fn ten_thousand_calls_in_flight_under_ulimit_256_use_at_most_the_configured_connections() {
    let redis = redis(&[]);
    let port = redis.port;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let served = runtime.block_on(serve(port, settings(port)));
    // The server's connections (not the ones that count them).
    let before = working_connections(port);
    let watching = Arc::new(AtomicBool::new(true));
    let most = Arc::new(AtomicUsize::new(0));
    let watcher = {
        let (watching, most) = (watching.clone(), most.clone());
        std::thread::spawn(move || {
            while watching.load(Ordering::Relaxed) {
                most.fetch_max(working_connections(port), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    // The child is this test binary again, running only `child_makes_ten_thousand_calls`, under a limit of 256
    // open files: with a connection per call in flight it would run out after about 250 calls.
    let exe = std::env::current_exe().expect("test binary");
    let output = Command::new("sh")
        .arg("-c")
        .arg(r#"ulimit -n 256 && exec "$0" "$@""#)
        .arg(exe)
        .args([
            "--exact",
            "child_makes_ten_thousand_calls",
            "--ignored",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_PORT, port.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("run the child");
    watching.store(false, Ordering::Relaxed);
    watcher.join().expect("watcher");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains(&format!("SCALE ok={CALLS} ")),
        "not every call succeeded: {stdout}"
    );
    // At most eight reply connections and the two that push, whatever the number of calls in flight.
    let child = most.load(Ordering::Relaxed).saturating_sub(before);
    assert!(
        (1..=10).contains(&child),
        "the child held {child} connections at once"
    );
    drop(served);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the child of the ulimit test, run in a process of its own"]
async fn child_makes_ten_thousand_calls() {
    let Ok(port) = std::env::var(CHILD_PORT) else {
        eprintln!("run by ten_thousand_calls_in_flight_under_ulimit_256_use_at_most_the_configured_connections");
        return;
    };
    let port: u16 = port.parse().expect("port");
    let backend = RedisBackend::connect(settings(port))
        .await
        .expect("connect");
    let client = Client::builder()
        .service(RedisClientTransport::new(&backend, "scale").expect("transport"))
        .build();
    let calls: Vec<_> = (0..CALLS)
        .map(|n| {
            let client = client.clone();
            let size = if n % CHUNKED_EVERY == 0 {
                CHUNKED_SIZE
            } else {
                0
            };
            tokio::spawn(async move { call_item(&client, n as u64, size).await })
        })
        .collect();
    let mut ok = 0;
    let mut failures = Vec::new();
    for call in calls {
        match call.await.expect("call task") {
            Ok(()) => ok += 1,
            Err(e) => failures.push(e),
        }
    }
    failures.truncate(5);
    println!("SCALE ok={ok} failures={failures:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_beyond_the_places_wait_their_turn_within_their_own_timeouts() {
    let redis = redis(&[]);
    let mut client = settings(redis.port);
    client.reply_connections = 1;
    client.replies_per_connection = 2;
    let served = serve(redis.port, client).await;
    let client = &served.client;
    // Forty calls through two places on one connection.
    let calls = (0..40).map(|n| call_item(client, n, 10));
    for outcome in futures::future::join_all(calls).await {
        outcome.expect("call");
    }
    // Two slow calls hold both places; a third with a short timeout gives up waiting for one.
    let slow = || {
        client
            .call_action("scale", "sleep", &serde_json::json!({"millis": 1_500}))
            .timeout(Duration::from_secs(10))
    };
    let (first, second, third) = tokio::join!(slow(), slow(), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        client
            .call_action("scale", "item", &serde_json::json!({"n": 1, "size": 1}))
            .timeout(Duration::from_millis(300))
            .await
    });
    assert!(matches!(third, Err(CallError::Timeout { .. })), "{third:?}");
    for slow in [first, second] {
        assert_eq!(slow.expect("slow call").body["slept"].as_i64(), Some(1_500));
    }
    // And the places are free again.
    call_item(client, 7, 10).await.expect("call after");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_response_never_reaches_another_call() {
    let redis = redis(&[]);
    let mut client = settings(redis.port);
    // One connection, so that the late response arrives where the other calls wait.
    client.reply_connections = 1;
    let served = serve(redis.port, client).await;
    let client = &served.client;
    let late = client
        .call_action("scale", "sleep", &serde_json::json!({"millis": 700}))
        .timeout(Duration::from_millis(200))
        .await;
    assert!(matches!(late, Err(CallError::Timeout { .. })), "{late:?}");
    // These wait on the same connection while the late response arrives, and each gets its own.
    let (long, items) = tokio::join!(
        client
            .call_action("scale", "sleep", &serde_json::json!({"millis": 1_200}))
            .timeout(Duration::from_secs(10)),
        futures::future::join_all((0..50).map(|n| call_item(client, n, 100))),
    );
    assert_eq!(long.expect("long call").body["slept"].as_i64(), Some(1_200));
    for item in items {
        item.expect("item");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_reply_connections_close() {
    let redis = redis(&[]);
    let port = redis.port;
    let served = serve(port, settings(port)).await;
    let mut client_settings = settings(port);
    client_settings.idle_connection_timeout_in_seconds = 0.5;
    let backend = RedisBackend::connect(client_settings)
        .await
        .expect("connect");
    let client = Client::builder()
        .service(RedisClientTransport::new(&backend, "scale").expect("transport"))
        .build();
    let before = connections(port);
    let calls = (0..300).map(|n| call_item(&client, n, 10));
    for outcome in futures::future::join_all(calls).await {
        outcome.expect("call");
    }
    let open = backend.reply_connections();
    assert!(open[0] >= 1 && open[0] <= 8, "{open:?}");
    wait_for("idle reply connections to close", || {
        (backend.reply_connections() == [0] && connections(port) == before).then_some(())
    });
    // And the next call opens one again.
    call_item(&client, 1, 10).await.expect("call after idling");
    assert_eq!(backend.reply_connections(), [1]);
    drop(served);
}

/// A fred client that stays connected, for changing Redis's configuration when it takes no new connections.
async fn admin(port: u16) -> fred::prelude::Client {
    let admin = Builder::from_config(Config {
        server: ServerConfig::new_centralized("127.0.0.1", port),
        ..Config::default()
    })
    .build()
    .expect("admin");
    admin.init().await.expect("admin connects");
    admin
}

async fn set_maxclients(admin: &fred::prelude::Client, n: usize) {
    let config = CustomCommand::new_static("CONFIG", ClusterHash::Random, false);
    let _: fred::prelude::Value = admin
        .custom(
            config,
            vec!["SET".to_owned(), "maxclients".to_owned(), n.to_string()],
        )
        .await
        .expect("CONFIG SET maxclients");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_at_maxclients_fails_no_call_that_a_connection_already_open_can_carry() {
    let redis = redis(&[]);
    let port = redis.port;
    let served = serve(port, settings(port)).await;
    let admin = admin(port).await;
    // Room for exactly one more connection (the counting one closes before the limit is set).
    let room_for_one = connections(port);
    set_maxclients(&admin, room_for_one).await;
    // The first call opens a reply connection; the burst behind it would open more, which Redis refuses.
    call_item(&served.client, 0, 10).await.expect("first call");
    let calls = (1..400).map(|n| call_item(&served.client, n, 10));
    let failed: Vec<String> = futures::future::join_all(calls)
        .await
        .into_iter()
        .filter_map(Result::err)
        .collect();
    assert!(
        failed.is_empty(),
        "{} failed: {:?}",
        failed.len(),
        &failed[..failed.len().min(3)]
    );
    set_maxclients(&admin, 10_000).await;
    drop(served);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_connection_to_be_had_calls_fail_transiently_and_the_client_recovers_by_itself() {
    let redis = redis(&[]);
    let port = redis.port;
    let served = serve(port, settings(port)).await;
    let admin = admin(port).await;
    // No room at all once the counting connection has closed.
    let full = connections(port) - 1;
    set_maxclients(&admin, full).await;
    let calls = (0..20).map(|n| call_item(&served.client, n, 10));
    let outcomes = futures::future::join_all(calls).await;
    for outcome in &outcomes {
        let error = outcome
            .as_ref()
            .expect_err("no reply connection can be opened");
        assert!(error.contains("cannot open a reply connection"), "{error}");
    }
    let error = served
        .client
        .call_action("scale", "item", &serde_json::json!({"n": 1, "size": 1}))
        .await
        .expect_err("still full");
    match error {
        CallError::Transport { source, .. } => assert!(source.is_transient(), "{source}"),
        other => panic!("expected a transport error, got {other:?}"),
    }
    set_maxclients(&admin, 10_000).await;
    call_item(&served.client, 99, 10)
        .await
        .expect("recovered without a restart");
}
