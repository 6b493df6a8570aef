//! The Redis gateway end to end, against real `redis-server` processes started here on free loopback ports.

#[path = "../support/mod.rs"]
mod support;

use std::time::Duration;

use rsoa_client::{action, CallError, CallOptions, Client, Job};
use rsoa_protocol::Value;
use rsoa_server::{ActionContext, ActionError, ServeOutcome, Server};
use rsoa_transport_redis::{
    reply_master_index, service_queue_key, Host, RedisBackend, RedisClientTransport,
    RedisServerTransport, RedisSettings,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use support::{command, llen, push_raw, redis, wait_for, Process, Served, DEADLINE};
use tokio::sync::oneshot;

#[derive(Deserialize)]
struct Square {
    number: i64,
}

#[derive(Deserialize)]
struct Big {
    size: usize,
}

#[derive(Deserialize)]
struct Sleep {
    millis: u64,
}

#[derive(Deserialize)]
struct Empty {}

#[derive(Serialize)]
struct Out(serde_json::Value);

fn service(name: &str) -> Server {
    Server::builder(name)
        .action_fn("square", |req: Square, _ctx: ActionContext| async move {
            Ok::<_, ActionError>(Out(json!({"square": req.number * req.number})))
        })
        .action_fn("big", |req: Big, _ctx: ActionContext| async move {
            // Text that does not compress into a run, so chunks differ from each other.
            let text: String = (0..req.size)
                .map(|i| char::from(b'a' + (i % 26) as u8))
                .collect();
            Ok::<_, ActionError>(Out(json!({"text": text, "size": req.size})))
        })
        .action_fn("sleep", |req: Sleep, _ctx: ActionContext| async move {
            tokio::time::sleep(Duration::from_millis(req.millis)).await;
            Ok::<_, ActionError>(Out(json!({"slept": req.millis})))
        })
        .action_fn("context", |_: Empty, ctx: ActionContext| async move {
            Ok::<_, ActionError>(Out(json!({
                "correlation_id": ctx.context().correlation_id,
                "switches": ctx.switches().to_vec(),
                "reply_to": ctx.meta().get("reply_to").and_then(Value::as_str),
            })))
        })
        .action_fn("fail", |_: Empty, _ctx: ActionContext| async move {
            Err::<Out, _>(ActionError::new("FAILED", "Asked to fail").with_field("x"))
        })
        .build()
        .expect("valid server")
}

fn settings(ports: &[u16]) -> RedisSettings {
    RedisSettings::standard(ports.iter().map(|p| format!("127.0.0.1:{p}")))
}

fn square(n: i64) -> rsoa_protocol::ActionRequest {
    action("square", &json!({"number": n})).unwrap()
}

fn squares(job: &rsoa_protocol::JobResponse) -> Vec<Option<i64>> {
    job.actions
        .iter()
        .map(|a| a.body.get("square").and_then(Value::as_i64))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_calling_style_over_redis() {
    let redis = redis(&[]);
    let running = Served::start(
        service("svc"),
        settings(&[redis.port]),
        settings(&[redis.port]),
    )
    .await;
    let client = &running.client;

    let one = client
        .call_action("svc", "square", &json!({"number": 7}))
        .await
        .unwrap();
    assert_eq!(one.body.get("square"), Some(&Value::from(49)));

    let job = client
        .call_actions("svc", [square(2), action("fail", ()).unwrap(), square(3)])
        .continue_on_error(true)
        .raise_action_errors(false)
        .await
        .unwrap();
    assert_eq!(squares(&job), [Some(4), None, Some(9)]);
    assert_eq!(job.actions[1].errors[0].code, "FAILED");
    assert!(
        job.actions[1].errors[0].is_caller_error,
        "rsoa's client announces 1.4.9, so the flag comes through"
    );

    let stopped = client
        .call_actions("svc", [square(2), action("fail", ()).unwrap(), square(3)])
        .raise_action_errors(false)
        .await
        .unwrap();
    assert_eq!(stopped.actions.len(), 2);

    let parallel = client
        .call_actions_parallel("svc", (1..=10).map(square))
        .await
        .unwrap();
    let got: Vec<i64> = parallel
        .iter()
        .map(|r| r.body["square"].as_i64().unwrap())
        .collect();
    assert_eq!(got, (1..=10).map(|n| n * n).collect::<Vec<_>>());

    let jobs = client
        .call_jobs_parallel((1..=4).map(|n| Job::new("svc", [square(n), square(n + 1)])))
        .await
        .unwrap();
    assert_eq!(squares(&jobs[3]), [Some(16), Some(25)]);

    let first = client
        .send_request("svc", vec![square(11)], &CallOptions::new())
        .await
        .unwrap();
    let second = client
        .send_request("svc", vec![square(12)], &CallOptions::new())
        .await
        .unwrap();
    let outcomes = client.get_all_responses("svc", None).await.unwrap();
    assert_eq!(
        outcomes.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        [first, second]
    );
    assert_eq!(squares(outcomes[1].1.as_ref().unwrap()), [Some(144)]);

    let context = client
        .call_action("svc", "context", ())
        .correlation_id("corr-redis")
        .switch(4)
        .await
        .unwrap();
    assert_eq!(
        context.body.get("correlation_id"),
        Some(&Value::from("corr-redis"))
    );
    let reply_to = context.body["reply_to"].as_str().unwrap();
    assert!(
        reply_to.starts_with("service.svc.") && reply_to.contains('!'),
        "{reply_to}"
    );

    // A suppressed response leaves nothing in any queue, and the next call is unaffected.
    client
        .call_action("svc", "square", &json!({"number": 1}))
        .suppress_response()
        .await
        .unwrap();
    assert_eq!(
        client
            .call_action("svc", "square", &json!({"number": 3}))
            .await
            .unwrap()
            .body["square"]
            .as_i64(),
        Some(9)
    );

    let status = client.call_action("svc", "status", ()).await.unwrap();
    assert_eq!(status.body.get("pysoa"), Some(&Value::from("1.4.9")));
    assert_eq!(running.stop().await, ServeOutcome::Stopped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_and_older_protocol_versions() {
    let redis = redis(&[]);
    for (serializer, version) in [("json", 3), ("msgpack", 2), ("msgpack", 1), ("json", 2)] {
        let mut client_settings = settings(&[redis.port]);
        client_settings.default_serializer_config.path = serializer.to_owned();
        client_settings.protocol_version = Some(version);
        let mut server_settings = settings(&[redis.port]);
        // A v1 request carries no content type: the server reads it with its own default, as PySOA does.
        server_settings.default_serializer_config.path = serializer.to_owned();
        let running = Served::start(service("svc"), server_settings, client_settings).await;
        let response = running
            .client
            .call_action("svc", "square", &json!({"number": 5}))
            .await
            .unwrap();
        assert_eq!(
            response.body.get("square"),
            Some(&Value::from(25)),
            "{serializer} v{version}"
        );
        running.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_responses_of_several_megabytes_under_parallel_calls() {
    let redis = redis(&[]);
    let mut server_settings = settings(&[redis.port]);
    server_settings.chunk_messages_larger_than_bytes = Some(102_400);
    server_settings.maximum_message_size_in_bytes = Some(16 * 1024 * 1024);
    let running = Served::start(service("svc"), server_settings, settings(&[redis.port])).await;
    let sizes = [
        3_000_000_usize,
        2_500_000,
        150_000,
        10,
        3_000_000,
        1_000_000,
    ];
    let calls = sizes
        .iter()
        .map(|size| action("big", &json!({"size": size})).unwrap());
    let responses = running
        .client
        .call_actions_parallel("svc", calls)
        .timeout(Duration::from_secs(30))
        .await
        .unwrap();
    for (response, size) in responses.iter().zip(sizes) {
        let text = response.body["text"].as_str().unwrap();
        assert_eq!(text.len(), size);
        assert!(
            text.bytes()
                .enumerate()
                .all(|(i, b)| b == b'a' + (i % 26) as u8),
            "chunks reassembled in order"
        );
    }
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_too_large_for_the_server_becomes_a_job_error() {
    let redis = redis(&[]);
    let running = Served::start(
        service("svc"),
        settings(&[redis.port]),
        settings(&[redis.port]),
    )
    .await;
    let err = running
        .client
        .call_action("svc", "big", &json!({"size": 300_000}))
        .await
        .unwrap_err();
    assert!(err.has_code("RESPONSE_TOO_LARGE"), "{err}");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_too_large_for_the_client_is_refused_before_sending() {
    let redis = redis(&[]);
    let running = Served::start(
        service("svc"),
        settings(&[redis.port]),
        settings(&[redis.port]),
    )
    .await;
    let text: String = "x".repeat(200_000);
    let err = running
        .client
        .call_action("svc", "square", &json!({"number": 1, "pad": text}))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            CallError::Transport {
                source: rsoa_transport::Error::MessageTooLarge { .. },
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(llen(redis.port, &service_queue_key("svc")), 0);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_requests_are_dropped_unanswered() {
    let redis = redis(&[]);
    // No server yet: a call with a 1 s timeout expires in the queue.
    let backend = RedisBackend::connect(settings(&[redis.port]))
        .await
        .unwrap();
    let client = Client::builder()
        .service(RedisClientTransport::new(&backend, "svc").unwrap())
        .build();
    let err = client
        .call_action("svc", "square", &json!({"number": 2}))
        .timeout(Duration::from_secs(1))
        .await;
    assert!(matches!(err, Err(CallError::Timeout { .. })), "{err:?}");
    let key = service_queue_key("svc");
    assert_eq!(llen(redis.port, &key), 1, "the request waits in the queue");
    // Now the server starts: it drops the expired request and answers a fresh one.
    let running = Served::start(
        service("svc"),
        settings(&[redis.port]),
        settings(&[redis.port]),
    )
    .await;
    let response = running
        .client
        .call_action("svc", "square", &json!({"number": 6}))
        .await
        .unwrap();
    assert_eq!(response.body["square"].as_i64(), Some(36));
    assert_eq!(llen(redis.port, &key), 0);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_is_reported_after_bounded_retries() {
    let redis = redis(&[]);
    let mut client_settings = settings(&[redis.port]);
    client_settings.queue_capacity = 2;
    client_settings.queue_full_retries = 3;
    client_settings.queue_full_max_wait_in_seconds = 1.0;
    let backend = RedisBackend::connect(client_settings).await.unwrap();
    let client = Client::builder()
        .service(RedisClientTransport::new(&backend, "svc").unwrap())
        .build();
    for n in 0..2 {
        client
            .send_request("svc", vec![square(n)], &CallOptions::new())
            .await
            .unwrap();
    }
    let started = std::time::Instant::now();
    let err = client
        .send_request("svc", vec![square(3)], &CallOptions::new())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            CallError::Transport {
                source: rsoa_transport::Error::QueueFull { .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the back-off is bounded"
    );
    assert_eq!(llen(redis.port, &service_queue_key("svc")), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_masters_round_robin_requests_and_hash_replies() {
    let masters: Vec<Process> = (0..3).map(|_| redis(&[])).collect();
    let ports: Vec<u16> = masters.iter().map(|m| m.port).collect();
    let running = Served::start(service("svc"), settings(&ports), settings(&ports)).await;
    // The server waits on every master at once (PySOA polls them one after another).
    wait_for("a blocked pop on every master", || {
        ports
            .iter()
            .all(|port| {
                support::command(*port, &["INFO", "clients"])
                    .is_some_and(|info| !info.contains("blocked_clients:0"))
            })
            .then_some(())
    });
    let responses = running
        .client
        .call_actions_parallel("svc", (0..30).map(square))
        .await
        .unwrap();
    assert_eq!(responses.len(), 30);
    for n in 0..6 {
        let response = running
            .client
            .call_action("svc", "context", ())
            .await
            .unwrap();
        let reply_key = format!("pysoa:{}", response.body["reply_to"].as_str().unwrap());
        // The reply went to the master PySOA's hash picks: the client read it there.
        let index = reply_master_index(&reply_key, 3);
        assert!(index < 3, "call {n}");
    }
    // Requests went to every master (the round-robin spreads them): each saw traffic.
    for port in &ports {
        let stats = support::command(*port, &["INFO", "commandstats"]).unwrap();
        assert!(
            stats.contains("cmdstat_evalsha") || stats.contains("cmdstat_blpop"),
            "master {port} idle"
        );
    }
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_service_queue_does_not_stop_the_server() {
    let redis = redis(&[]);
    let running = Served::start(
        service("svc"),
        settings(&[redis.port]),
        settings(&[redis.port]),
    )
    .await;
    let key = service_queue_key("svc");
    let garbage: Vec<Vec<u8>> = vec![
        b"\xc1\xc1\xc1".to_vec(), // not MessagePack
        b"pysoa-redis/9//content-type:application/msgpack;\x80".to_vec(), // unknown version
        b"pysoa-redis/3//content-type:application/msgpack;chunk-count:2;chunk-id:1;\x80".to_vec(), // chunked request
        b"\x81\xa4meta\x80".to_vec(), // no request_id
        b"\x83\xaarequest_id\x01\xa4meta\x80\xa4body\x80".to_vec(), // no reply_to
        b"\x93\x01\x02\x03".to_vec(), // not a map
        b"\x83\xaarequest_id\x01\xa4meta\x81\xa8reply_to\xa1x\xa4body\xd4\x63\x00".to_vec(), // unknown ext as body
        b"{\"request_id\": 1".to_vec(), // truncated JSON
        vec![],                         // empty
    ];
    for item in &garbage {
        push_raw(redis.port, &key, item);
    }
    wait_for("the server to drain the garbage", || {
        (llen(redis.port, &key) == 0).then_some(())
    });
    let response = running
        .client
        .call_action("svc", "square", &json!({"number": 9}))
        .await
        .unwrap();
    assert_eq!(response.body["square"].as_i64(), Some(81));
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_past_the_servers_limits_are_answered_with_why() {
    let redis = redis(&[]);
    let mut server_settings = settings(&[redis.port]);
    server_settings.maximum_request_size_in_bytes = Some(1_000);
    server_settings.maximum_nesting_depth = Some(10);
    let running = Served::start(service("svc"), server_settings, settings(&[redis.port])).await;
    let job_errors = |outcome: Result<rsoa_protocol::ActionResponse, CallError>| match outcome {
        Err(CallError::Job { errors, .. }) => errors
            .into_iter()
            .map(|e| (e.code.as_str().to_owned(), e.field, e.message))
            .collect::<Vec<_>>(),
        other => panic!("not a job error: {other:?}"),
    };
    let call = |body: serde_json::Value| {
        running
            .client
            .call_action("svc", "square", &body)
            .timeout(Duration::from_secs(5))
    };
    // Too large: not decoded, answered from the request id and meta before the body.
    let errors = job_errors(call(json!({"number": 3, "pad": "x".repeat(2_000)})).await);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].0, "REQUEST_TOO_LARGE");
    assert!(
        errors[0]
            .2
            .contains("larger than the 1000 bytes this server reads"),
        "{errors:?}"
    );
    // Too deep.
    let mut deep = json!(1);
    for _ in 0..20 {
        deep = json!([deep]);
    }
    let errors = job_errors(call(json!({"number": 3, "deep": deep})).await);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(
        (errors[0].0.as_str(), errors[0].1.as_deref()),
        ("INVALID", Some("body"))
    );
    assert!(
        errors[0].2.contains("nesting deeper than 10 levels"),
        "{errors:?}"
    );
    // Within both limits, served.
    let fine = call(json!({"number": 3})).await.unwrap();
    assert_eq!(fine.body["square"].as_i64(), Some(9));
    // A large message whose body comes before its request id cannot be answered: logged and dropped, and the
    // server serves on.
    let key = service_queue_key("svc");
    let mut frame =
        b"pysoa-redis/3//content-type:application/msgpack;\x83\xa4body\xda\x07\xd0".to_vec();
    frame.extend(std::iter::repeat_n(b'x', 2_000));
    frame.extend_from_slice(b"\xaarequest_id\x01\xa4meta\x81\xa8reply_to\xa9service.x!");
    push_raw(redis.port, &key, &frame);
    wait_for("the server to drop it", || {
        (llen(redis.port, &key) == 0).then_some(())
    });
    assert_eq!(
        call(json!({"number": 4})).await.unwrap().body["square"].as_i64(),
        Some(16)
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_answered_as_pysoa_answers_them() {
    let redis = redis(&[]);
    let running = Served::start(
        service("svc"),
        settings(&[redis.port]),
        settings(&[redis.port]),
    )
    .await;
    let port = redis.port;
    let key = service_queue_key("svc");
    let job = r#"{"control": {"continue_on_error": false}, "context": {"switches": [], "correlation_id": "c"}, "actions": [{"action": "echo", "body": {"v": 0}}]}"#;
    let push = |meta: &str, body: &str| {
        let frame = format!(
            r#"pysoa-redis/3//content-type:application/json;{{"request_id": 7, "meta": {meta}, "body": {body}}}"#
        );
        push_raw(port, &key, frame.as_bytes());
    };
    let reply = |queue: &str| -> serde_json::Value {
        let text = wait_for(&format!("a reply on {queue}"), || {
            command(port, &["LPOP", &format!("pysoa:{queue}")]).filter(|r| r.contains('{'))
        });
        let json = &text[text.find('{').unwrap()..];
        serde_json::from_str(json.trim_end()).unwrap()
    };

    // PySOA keeps `serializer` and `protocol_version` in the meta in process and takes them out before it
    // answers: a request that carries them does not get them back.
    push(
        r#"{"reply_to": "service.svc.t1!a", "serializer": "x", "protocol_version": 9, "zz": 1}"#,
        job,
    );
    let meta = reply("service.svc.t1!a")["meta"].clone();
    let keys: Vec<&str> = meta
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    // The request's order, `__expiry__` overwritten in place (here added last, since the request had none).
    assert_eq!(keys, ["reply_to", "zz", "__expiry__"], "{meta}");

    // A JSON integer beyond 64 bits: PySOA echoes it; rsoa cannot hold it, and says so rather than leave the
    // caller waiting for its timeout.
    push(
        r#"{"reply_to": "service.svc.t2!a"}"#,
        &job.replace(r#"{"v": 0}"#, r#"{"v": 123456789012345678901234567890}"#),
    );
    let body = reply("service.svc.t2!a")["body"].clone();
    assert_eq!(body["errors"][0]["code"], "INVALID", "{body}");
    assert_eq!(body["errors"][0]["field"], "body", "{body}");

    // A reply_to that names a service's request queue would bounce the response between services for ever:
    // refused, and the server goes on.
    push(r#"{"reply_to": "service.svc"}"#, job);
    wait_for("the server to take the request", || {
        (llen(port, &key) == 0).then_some(())
    });
    let response = running
        .client
        .call_action("svc", "square", &json!({"number": 5}))
        .await
        .unwrap();
    assert_eq!(response.body["square"].as_i64(), Some(25));
    assert_eq!(
        llen(port, &key),
        0,
        "nothing was pushed to the request queue"
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_transport_never_served_takes_no_requests() {
    let redis = redis(&[]);
    // Built first, so that if it popped it would be the first in line for every request; it is never served.
    let backend = RedisBackend::connect(settings(&[redis.port]))
        .await
        .unwrap();
    let idle = RedisServerTransport::new(&backend, "svc").unwrap();
    let running = Served::start(
        service("svc"),
        settings(&[redis.port]),
        settings(&[redis.port]),
    )
    .await;
    for n in 0..20 {
        let response = running
            .client
            .call_action("svc", "square", &json!({"number": n}))
            .await
            .unwrap();
        assert_eq!(response.body["square"].as_i64(), Some(n * n));
    }
    drop(idle);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_and_server_recover_after_a_redis_restart() {
    let redis_process = redis(&[]);
    let port = redis_process.port;
    let running = Served::start(service("svc"), settings(&[port]), settings(&[port])).await;
    assert_eq!(
        running
            .client
            .call_action("svc", "square", &json!({"number": 2}))
            .await
            .unwrap()
            .body["square"]
            .as_i64(),
        Some(4)
    );
    drop(redis_process);
    // Restart on the same port.
    let args = [
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
    ];
    let mut restarted = std::process::Command::new("redis-server")
        .args(args)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("restart redis");
    wait_for("redis to come back", || {
        support::command(port, &["PING"]).filter(|r| r.contains("PONG"))
    });
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        match running
            .client
            .call_action("svc", "square", &json!({"number": 3}))
            .timeout(Duration::from_secs(2))
            .await
        {
            Ok(response) => {
                assert_eq!(response.body["square"].as_i64(), Some(9));
                break;
            }
            Err(err) => {
                assert!(tokio::time::Instant::now() < deadline, "no recovery: {err}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    running.stop().await;
    let _ = restarted.kill();
    let _ = restarted.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_answers_every_request_already_taken() {
    let redis = redis(&[]);
    let running = Served::start(
        service("svc"),
        settings(&[redis.port]),
        settings(&[redis.port]),
    )
    .await;
    let client = running.client.clone();
    let mut sent = Vec::new();
    for _ in 0..5 {
        let sleep = vec![action("sleep", &json!({"millis": 300})).unwrap()];
        sent.push(
            client
                .send_request("svc", sleep, &CallOptions::new())
                .await
                .unwrap(),
        );
    }
    // Wait until the server has taken them all, then stop it while they run.
    wait_for("the server to take the requests", || {
        (llen(redis.port, &service_queue_key("svc")) == 0).then_some(())
    });
    let outcome = running.stop().await;
    assert_eq!(outcome, ServeOutcome::Stopped);
    let outcomes = client
        .get_all_responses("svc", Some(Duration::from_secs(10)))
        .await
        .unwrap();
    assert_eq!(outcomes.len(), 5);
    assert!(outcomes.iter().all(|(_, o)| o.is_ok()), "{outcomes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_push_script_is_pysoas() {
    // The SHA-1 Redis computes for our script is the one PySOA sends with EVALSHA.
    let redis = redis(&[]);
    let lua = "if redis.call('llen', KEYS[1]) >= tonumber(ARGV[2]) then\n    return redis.error_reply(\"queue full\")\nend\nredis.call('rpush', KEYS[1], ARGV[3])\nredis.call('expire', KEYS[1], ARGV[1])";
    let sha = support::command(redis.port, &["SCRIPT", "LOAD", lua]).unwrap();
    assert_eq!(sha.trim(), "948a1e602d4363b23f76bd259424d1e2c2db32da");
    // And a request's list carries PySOA's TTL: 60 s, or timeout + 10.
    let backend = RedisBackend::connect(settings(&[redis.port]))
        .await
        .unwrap();
    let client = Client::builder()
        .service(RedisClientTransport::new(&backend, "svc").unwrap())
        .build();
    let mut options = CallOptions::new();
    options.timeout = Some(Duration::from_secs(7));
    client
        .send_request("svc", vec![square(1)], &options)
        .await
        .unwrap();
    let ttl = support::command(redis.port, &["TTL", &service_queue_key("svc")]).unwrap();
    assert_eq!(ttl.trim(), ":17");
}

#[test]
fn settings_name_hosts_like_pysoa() {
    let s = RedisSettings::from_json(r#"{"backend_type": "redis.standard", "backend_layer_kwargs": {"hosts": [["127.0.0.1", 7000]]}}"#)
        .unwrap();
    assert_eq!(
        s.backend_layer_kwargs.hosts,
        [Host::Pair("127.0.0.1".into(), 7000)]
    );
}

#[tokio::test]
async fn connecting_to_nothing_fails_with_a_clear_error() {
    let port = support::free_port();
    let mut s = settings(&[port]);
    s.backend_layer_kwargs
        .connection_kwargs
        .socket_connect_timeout = 1.0;
    let err = RedisBackend::connect(s).await.unwrap_err();
    assert!(err.to_string().contains(&port.to_string()), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_server_keeps_its_connections() {
    use rsoa_transport::ServerTransport;
    let redis = redis(&[]);
    let mut s = settings(&[redis.port]);
    s.receive_timeout_in_seconds = 1;
    let backend = RedisBackend::connect(s).await.unwrap();
    let transport = RedisServerTransport::new(&backend, "svc").unwrap();
    // The first idle receive lets the receiver open its blocking connection.
    assert!(transport.receive().await.unwrap().is_none());
    let clients = || support::command(redis.port, &["INFO", "clients"]).unwrap();
    let before = clients();
    for _ in 0..2 {
        assert!(
            transport.receive().await.unwrap().is_none(),
            "an empty queue is idle, not an error"
        );
    }
    let count = |info: &str| {
        info.lines()
            .find(|l| l.starts_with("connected_clients:"))
            .map(str::to_owned)
    };
    assert_eq!(
        count(&clients()),
        count(&before),
        "no reconnection while idle"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_workers_answers_calls_and_stops_without_losing_any() {
    use rsoa_transport_redis::serve_workers;
    let redis = redis(&[]);
    let backend = RedisBackend::connect(settings(&[redis.port]))
        .await
        .unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let served = tokio::spawn(async move {
        serve_workers(&backend, service("svc"), 4, async move {
            let _ = stopped.await;
        })
        .await
    });
    let client_backend = RedisBackend::connect(settings(&[redis.port]))
        .await
        .unwrap();
    let client = Client::builder()
        .service(RedisClientTransport::new(&client_backend, "svc").unwrap())
        .build();
    let responses = client
        .call_actions_parallel("svc", (1..=12).map(square))
        .await
        .unwrap();
    assert_eq!(responses.len(), 12);
    let garbage = b"\xc1\xc1".to_vec();
    push_raw(redis.port, &service_queue_key("svc"), &garbage);
    assert_eq!(
        client
            .call_action("svc", "square", &json!({"number": 9}))
            .await
            .unwrap()
            .body["square"]
            .as_i64(),
        Some(81)
    );
    // Stop while four jobs run: each is still answered.
    for _ in 0..4 {
        let sleep = vec![action("sleep", &json!({"millis": 300})).unwrap()];
        client
            .send_request("svc", sleep, &CallOptions::new())
            .await
            .unwrap();
    }
    wait_for("the workers to take the requests", || {
        (llen(redis.port, &service_queue_key("svc")) == 0).then_some(())
    });
    stop.send(()).unwrap();
    served.await.unwrap().unwrap();
    let outcomes = client
        .get_all_responses("svc", Some(Duration::from_secs(10)))
        .await
        .unwrap();
    assert_eq!(outcomes.len(), 4);
    assert!(outcomes.iter().all(|(_, o)| o.is_ok()), "{outcomes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_is_drained_a_whole_batch_per_pop() {
    let redis = redis(&[]);
    // Forty requests wait in the queue before any server runs.
    let backend = RedisBackend::connect(settings(&[redis.port]))
        .await
        .unwrap();
    let client = Client::builder()
        .timeout(Duration::from_secs(10))
        .service(RedisClientTransport::new(&backend, "svc").unwrap())
        .build();
    for n in 0..40 {
        client
            .send_request("svc", vec![square(n)], &CallOptions::new())
            .await
            .unwrap();
    }
    assert_eq!(llen(redis.port, &service_queue_key("svc")), 40);
    let mut server_settings = settings(&[redis.port]);
    server_settings.receive_batch_size = Some(16);
    let monitor = support::Monitor::start(redis.port);
    let running = Served::start(service("svc"), server_settings, settings(&[redis.port])).await;
    let outcomes = client
        .get_all_responses("svc", Some(Duration::from_secs(10)))
        .await
        .unwrap();
    let answers: Vec<Vec<Option<i64>>> = outcomes
        .iter()
        .map(|(_, o)| squares(o.as_ref().expect("answered")))
        .collect();
    assert_eq!(
        answers,
        (0..40).map(|n| vec![Some(n * n)]).collect::<Vec<_>>()
    );
    running.stop().await;
    // One BLMPOP takes the first 16; a full batch means more is waiting, so the next two pops are plain LPOPs of
    // 16 (taking 16, then the last 8), after which the server waits with BLMPOP again. (The client's reply
    // listeners pop with LPOP inside a script, which MONITOR shows as run by `lua`.)
    let queue = service_queue_key("svc");
    let server_pops: Vec<String> = monitor
        .stop()
        .into_iter()
        .filter(|l| !l.contains(" lua]") && l.contains(&format!("\"{queue}\"")))
        .filter(|l| l.to_ascii_lowercase().contains("pop\""))
        .collect();
    let lpops = server_pops
        .iter()
        .filter(|l| l.to_ascii_lowercase().contains("\"lpop\""))
        .count();
    assert_eq!(lpops, 2, "{server_pops:#?}");
    let first = server_pops.first().map(|l| l.to_ascii_lowercase());
    assert!(
        first.is_some_and(|l| l.contains("\"blmpop\"") && l.contains("\"16\"")),
        "{server_pops:#?}"
    );
    // All on one connection, reused from pop to pop.
    let client_of = |line: &String| line.split(['[', ']']).nth(1).map(str::to_owned);
    let clients: std::collections::BTreeSet<_> = server_pops.iter().filter_map(client_of).collect();
    assert_eq!(clients.len(), 1, "{server_pops:#?}");
}

#[test]
fn a_synchronous_program_connects_and_calls_with_the_blocking_client() {
    use rsoa_client::blocking::BlockingClient;

    let redis = redis(&[]);
    // The service runs on a runtime of the test's; the caller below is plain synchronous code.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let served = runtime.block_on(Served::start(
        service("sync"),
        settings(&[redis.port]),
        settings(&[redis.port]),
    ));
    let backend = RedisBackend::connect_blocking(settings(&[redis.port])).expect("connect");
    let client = BlockingClient::new(
        Client::builder()
            .service(RedisClientTransport::new(&backend, "sync").expect("transport"))
            .build(),
    )
    .expect("blocking client");
    let response = client
        .call_action("sync", "square", &json!({"number": 7}))
        .expect("call");
    assert_eq!(response.body["square"], Value::from(49));
    // Inside an async runtime a blocking call is refused, and dropping the client and the backend there is fine.
    runtime.block_on(async move {
        assert!(matches!(
            client.call_action("sync", "square", &json!({"number": 1})),
            Err(CallError::BlockingInAsync)
        ));
        assert!(matches!(
            RedisBackend::connect_blocking(settings(&[redis.port])),
            Err(rsoa_transport_redis::Error::Runtime(_))
        ));
        drop(client);
        drop(backend);
        served.stop().await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_reports_each_master_and_one_that_is_gone() {
    let up = support::redis(&[]);
    let going = support::redis(&[]);
    let mut both = settings(&[up.port, going.port]);
    both.backend_layer_kwargs
        .connection_kwargs
        .socket_connect_timeout = 1.0;
    let backend = RedisBackend::connect(both).await.expect("connect");
    let pings = backend.ping().await;
    assert_eq!(
        pings
            .iter()
            .map(|(master, _)| master.clone())
            .collect::<Vec<_>>(),
        [
            format!("127.0.0.1:{}", up.port),
            format!("127.0.0.1:{}", going.port)
        ]
    );
    assert!(
        pings.iter().all(|(_, outcome)| outcome.is_ok()),
        "{pings:?}"
    );
    drop(going);
    let pings = backend.ping().await;
    assert!(pings[0].1.is_ok(), "{pings:?}");
    assert!(pings[1].1.is_err(), "{pings:?}");
    // Closing gives up on the master that is gone instead of waiting for it.
    backend.close().await;
}

/// A server popping in batches takes a lone request and a backlog with one `BLMPOP` each on Redis 7, and falls
/// back to `BLPOP` and `LPOP` on a Redis without it (here one where the command is renamed away).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_pops_use_blmpop_and_fall_back_without_it() {
    for (extra, blmpop) in [
        (&[][..], true),
        (
            &["--rename-command", "BLMPOP", "BLMPOP_RENAMED_AWAY"][..],
            false,
        ),
    ] {
        let redis = redis(extra);
        let mut server_settings = settings(&[redis.port]);
        server_settings.receive_batch_size = Some(16);
        let running = Served::start(service("svc"), server_settings, settings(&[redis.port])).await;
        let client = &running.client;
        let lone = client
            .call_action("svc", "square", &json!({"number": 3}))
            .await
            .unwrap();
        assert_eq!(lone.body["square"], Value::from(9));
        let backlog = client
            .call_actions_parallel("svc", (1..=50).map(square))
            .await
            .unwrap();
        let got: Vec<i64> = backlog
            .iter()
            .map(|r| r.body["square"].as_i64().unwrap())
            .collect();
        assert_eq!(got, (1..=50).map(|n| n * n).collect::<Vec<_>>());
        let stats = support::command(redis.port, &["INFO", "commandstats"]).expect("stats");
        assert_eq!(stats.contains("cmdstat_blmpop:calls="), blmpop, "{stats}");
    }
}

/// Each metric's name and labels (`k=v`, sorted) with its value: a counter's count, a histogram's samples.
fn metric_values(
    recorder: &metrics_util::debugging::DebuggingRecorder,
) -> Vec<(String, Vec<String>, u64)> {
    use metrics_util::debugging::DebugValue;
    recorder
        .snapshotter()
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            let mut labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            labels.sort();
            let value = match value {
                DebugValue::Counter(n) => n,
                DebugValue::Histogram(samples) => samples.len() as u64,
                DebugValue::Gauge(g) => g.into_inner() as u64,
            };
            (key.name().to_owned(), labels, value)
        })
        .collect()
}

#[test]
fn the_transport_counts_sends_drops_and_timeouts_under_pysoas_names() {
    let redis = redis(&[]);
    let port = redis.port;
    let recorder = metrics_util::debugging::DebuggingRecorder::new();
    // A recorder of this thread's, and a runtime on this thread: what this test records is its own.
    metrics::with_local_recorder(&recorder, || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let running =
                Served::start(service("svc"), settings(&[port]), settings(&[port])).await;
            let response = running
                .client
                .call_action("svc", "square", &json!({"number": 3}))
                .await
                .unwrap();
            assert_eq!(response.body["square"].as_i64(), Some(9));
            let key = service_queue_key("svc");
            push_raw(port, &key, b"\xc1\xc1");
            let expired = r#"pysoa-redis/3//content-type:application/json;{"request_id": 1, "meta": {"reply_to": "service.x!1", "__expiry__": 1.0}, "body": {}}"#;
            push_raw(port, &key, expired.as_bytes());
            // Nobody serves `nobody`: the call times out.
            let lost = Client::builder()
                .service(
                    RedisClientTransport::new(
                        &RedisBackend::connect(settings(&[port])).await.unwrap(),
                        "nobody",
                    )
                    .unwrap(),
                )
                .build();
            let timed_out = lost
                .call_action("nobody", "x", ())
                .timeout(Duration::from_secs(1))
                .await;
            assert!(matches!(timed_out, Err(CallError::Timeout { .. })), "{timed_out:?}");
            // The server has taken both bad messages once its queue is empty and the next call is answered.
            let deadline = tokio::time::Instant::now() + DEADLINE;
            while llen(port, &key) > 0 {
                assert!(tokio::time::Instant::now() < deadline, "the server never took the bad messages");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            running
                .client
                .call_action("svc", "square", &json!({"number": 4}))
                .await
                .unwrap();
            running.stop().await;
        });
    });
    let values = metric_values(&recorder);
    let value = |name: &str, labels: &[&str]| {
        values
            .iter()
            .find(|(n, l, _)| n == name && l.iter().map(String::as_str).eq(labels.iter().copied()))
            .map_or(0, |(_, _, v)| *v)
    };
    assert!(
        value("client.transport.redis_gateway.send", &[]) >= 2,
        "{values:?}"
    );
    assert!(
        value("client.transport.redis_gateway.send.message_size", &[]) >= 2,
        "{values:?}"
    );
    assert!(
        value("server.transport.redis_gateway.send", &[]) >= 2,
        "{values:?}"
    );
    assert_eq!(
        value(
            "server.transport.redis_gateway.receive.dropped",
            &["reason=malformed"]
        ),
        1,
        "{values:?}"
    );
    assert_eq!(
        value(
            "server.transport.redis_gateway.receive.dropped",
            &["reason=expired"]
        ),
        1,
        "{values:?}"
    );
    assert_eq!(
        value("client.transport.redis_gateway.receive.error.timeout", &[]),
        1,
        "{values:?}"
    );
    assert_eq!(value("server.jobs", &["outcome=success"]), 2, "{values:?}");
    // Received: the two calls and the two bad messages on the server's side; the two responses on the client's,
    // each timed from its request.
    assert_eq!(
        value("server.transport.redis_gateway.receive.message_size", &[]),
        4,
        "{values:?}"
    );
    assert_eq!(
        value("client.transport.redis_gateway.receive.message_size", &[]),
        2,
        "{values:?}"
    );
    assert_eq!(
        value("client.transport.redis_gateway.receive", &[]),
        2,
        "{values:?}"
    );
}
