//! The Rust client's interop cases against a PySOA service: `interop-client <redis port> [service]` (default
//! `pyinterop`). One `PASS name` or `FAIL name: why` line per case, then `rust cases: N passed, M failed`.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use rsoa_client::{action, CallError, CallOptions, Client, Job};
use rsoa_protocol::{Amount, Date, DateTime, Decimal, Map, Time, UtcDateTime, Value};

type Outcome = Result<(), String>;

fn check(ok: bool, why: impl FnOnce() -> String) -> Outcome {
    if ok {
        Ok(())
    } else {
        Err(why())
    }
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn square_of(response: &rsoa_protocol::ActionResponse) -> Option<i64> {
    response.body.get("square").and_then(Value::as_i64)
}

fn map(entries: Vec<(&str, Value)>) -> Map {
    entries.into_iter().collect()
}

/// Every PySOA type, for the echo round trip. The date-time avoids PySOA's float quirk (wire-spec §14.2).
fn every_type() -> Map {
    let mut body = Map::new();
    body.insert(
        "datetime",
        DateTime::from_epoch_micros(1_582_982_055_123_456).unwrap(),
    );
    body.insert(
        "datetime_utc",
        UtcDateTime::from_epoch_micros(1_640_995_199_500_000).unwrap(),
    );
    body.insert("date", Date::new(2020, 2, 29).unwrap());
    body.insert("time", Time::new(13, 14, 15, 123_456).unwrap());
    body.insert("decimal", "12.3400".parse::<Decimal>().unwrap());
    body.insert("decimal_exp", "1E+3".parse::<Decimal>().unwrap());
    body.insert("amount_usd", Amount::new("USD", 12_345).unwrap());
    body.insert("amount_jpy", Amount::new("JPY", -500).unwrap());
    body.insert("bytes", Value::Bytes(vec![0, 255]));
    body.insert("int_min", i64::MIN);
    body.insert("uint_max", u64::MAX);
    body.insert("float", 0.1);
    body.insert("inf", f64::INFINITY);
    body.insert("unicode", "h\u{e9}llo \u{65e5}\u{672c} \u{1d11e}");
    body.insert(
        "nested",
        Value::Array(vec![map(vec![(
            "a",
            Value::Array(vec![1.into(), Value::Null, true.into()]),
        )])
        .into()]),
    );
    body
}

async fn run_cases(client: &Client, port: u16, service: &str) -> Vec<(&'static str, Outcome)> {
    let mut results = Vec::new();
    macro_rules! case {
        ($name:expr, $body:expr) => {{
            let fut: Pin<Box<dyn Future<Output = Outcome> + '_>> = Box::pin($body);
            let outcome = match tokio::time::timeout(Duration::from_secs(60), fut).await {
                Ok(outcome) => outcome,
                Err(_) => Err("timed out".to_owned()),
            };
            match &outcome {
                Ok(()) => println!("PASS {}", $name),
                Err(why) => println!("FAIL {}: {why}", $name),
            }
            results.push(($name, outcome));
        }};
    }
    let sq = |n: i64| action("square", serde_json_free(n)).unwrap();

    case!("call_action_square", async {
        let r = client
            .call_action(service, "square", map(vec![("number", 7.into())]))
            .await
            .map_err(err)?;
        check(square_of(&r) == Some(49), || format!("got {:?}", r.body))
    });
    case!("call_actions_stop_on_error", async {
        let job = client
            .call_actions(service, [sq(2), action("fail", ()).unwrap(), sq(3)])
            .raise_action_errors(false)
            .await
            .map_err(err)?;
        check(
            job.actions.len() == 2 && !job.actions[1].errors.is_empty(),
            || format!("{job:?}"),
        )
    });
    case!("call_actions_continue_on_error", async {
        let job = client
            .call_actions(service, [sq(2), action("fail", ()).unwrap(), sq(3)])
            .continue_on_error(true)
            .raise_action_errors(false)
            .await
            .map_err(err)?;
        check(
            job.actions.len() == 3 && square_of(&job.actions[2]) == Some(9),
            || format!("{job:?}"),
        )
    });
    case!("call_actions_parallel", async {
        let rs = client
            .call_actions_parallel(service, (1..=10).map(sq))
            .await
            .map_err(err)?;
        let got: Vec<Option<i64>> = rs.iter().map(square_of).collect();
        check(
            got == (1..=10).map(|n| Some(n * n)).collect::<Vec<_>>(),
            || format!("{got:?}"),
        )
    });
    case!("call_jobs_parallel", async {
        let jobs = vec![
            Job::new(service, [sq(3)]),
            Job::new("rsinterop", [sq(4)]),
            Job::new(service, [sq(5), sq(6)]),
        ];
        let rs = client.call_jobs_parallel(jobs).await.map_err(err)?;
        check(
            square_of(&rs[1].actions[0]) == Some(16) && square_of(&rs[2].actions[1]) == Some(36),
            || format!("{rs:?}"),
        )
    });
    case!("echo_types_msgpack", async {
        let body = every_type();
        let r = client
            .call_action(service, "echo", body.clone())
            .await
            .map_err(err)?;
        for (key, value) in body.iter() {
            let key = key.as_str().unwrap_or_default();
            let got = r.body.get(key);
            check(got == Some(value), || {
                format!("{key}: sent {value:?}, got {got:?}")
            })?;
        }
        check(r.body.len() == body.len(), || {
            format!("extra keys: {:?}", r.body)
        })
    });
    case!("action_error_fields", async {
        let e = client
            .call_action(service, "fail", ())
            .await
            .err()
            .ok_or("no error")?;
        let errors = e.wire_errors();
        let first = errors.first().ok_or("no wire error")?;
        check(
            first.code == "FAIL_CODE"
                && first.message == "It failed"
                && first.field.as_deref() == Some("some.field")
                && first
                    .variables
                    .as_ref()
                    .and_then(|v| v.get("a"))
                    .and_then(Value::as_i64)
                    == Some(1)
                && first.denied_permissions.as_deref() == Some(&["perm.x".to_owned()][..])
                && first.is_caller_error,
            || format!("{first:?}"),
        )
    });
    case!("server_error", async {
        let e = client
            .call_action(service, "boom", ())
            .await
            .err()
            .ok_or("no error")?;
        let first = e
            .wire_errors()
            .first()
            .copied()
            .cloned()
            .ok_or("no wire error")?;
        check(
            first.code == "SERVER_ERROR"
                && first.message.starts_with("Internal server error")
                && !first.is_caller_error,
            || format!("{first:?}"),
        )
    });
    for (name, body, code, field) in [
        (
            "validation_error_missing",
            map(vec![]),
            "MISSING",
            Some("n"),
        ),
        (
            "validation_error_invalid",
            map(vec![("n", "x".into())]),
            "INVALID",
            Some("n"),
        ),
        (
            "validation_error_extra",
            map(vec![("n", 1.into()), ("zz", 2.into())]),
            "UNKNOWN",
            None,
        ),
    ] {
        case!(name, async {
            let e = client
                .call_action(service, "typed", body)
                .await
                .err()
                .ok_or("no error")?;
            let first = e
                .wire_errors()
                .first()
                .copied()
                .cloned()
                .ok_or("no wire error")?;
            check(
                first.code == code
                    && (field.is_none() || first.field.as_deref() == field)
                    && first.is_caller_error,
                || format!("{first:?}"),
            )
        });
    }
    case!("unknown_action", async {
        let e = client
            .call_action(service, "nope", ())
            .await
            .err()
            .ok_or("no error")?;
        let first = e
            .wire_errors()
            .first()
            .copied()
            .cloned()
            .ok_or("no wire error")?;
        check(
            first.code == "UNKNOWN" && first.field.as_deref() == Some("action"),
            || format!("{first:?}"),
        )
    });
    case!("chunked_response_3mb", async {
        let r = client
            .call_action(service, "big", map(vec![("size", 3_000_000.into())]))
            .await
            .map_err(err)?;
        let data = r
            .body
            .get("data")
            .and_then(Value::as_str)
            .unwrap_or_default();
        check(
            data.len() == 3_000_000 && data.bytes().all(|b| b == b'a'),
            || format!("{} bytes", data.len()),
        )
    });
    case!("context_and_switches", async {
        let r = client
            .call_action(service, "context", ())
            .correlation_id("rust-corr-1")
            .switches([7, 3])
            .context("custom", "v")
            .await
            .map_err(err)?;
        let b = &r.body;
        check(
            b["correlation_id"].as_str() == Some("rust-corr-1")
                && b["switches"] == Value::Array(vec![3.into(), 7.into()])
                && b["custom"].as_str() == Some("v"),
            || format!("{b:?}"),
        )
    });
    case!("chaining_rust_to_python_to_rust", async {
        let r = client
            .call_action(
                service,
                "call_service",
                map(vec![("service", "rsinterop".into())]),
            )
            .correlation_id("chain-1")
            .switch(5)
            .context("custom", "through")
            .await
            .map_err(err)?;
        let d = &r.body["downstream"];
        check(
            d["correlation_id"].as_str() == Some("chain-1")
                && d["switches"] == Value::Array(vec![5.into()])
                && d["calling_service"].as_str() == Some(service)
                && d["custom"].as_str() == Some("through"),
            || format!("{d:?}"),
        )
    });
    case!("suppress_response", async {
        client
            .call_action(service, "square", map(vec![("number", 2.into())]))
            .suppress_response()
            .await
            .map_err(err)?;
        let r = client
            .call_action(service, "square", map(vec![("number", 5.into())]))
            .await
            .map_err(err)?;
        check(square_of(&r) == Some(25), || format!("{:?}", r.body))
    });
    case!("expiry", async {
        let slow = client
            .call_action(service, "sleep", map(vec![("seconds", 2.0.into())]))
            .timeout(Duration::from_secs(1))
            .await;
        check(matches!(slow, Err(CallError::Timeout { .. })), || {
            format!("{slow:?}")
        })?;
        let r = client
            .call_action(service, "square", map(vec![("number", 6.into())]))
            .await
            .map_err(err)?;
        check(square_of(&r) == Some(36), || format!("{:?}", r.body))
    });
    case!("status", async {
        let verbose = client
            .call_action(service, "status", ())
            .await
            .map_err(err)?;
        let quiet = client
            .call_action(service, "status", map(vec![("verbose", false.into())]))
            .await
            .map_err(err)?;
        check(
            verbose.body["pysoa"].as_str() == Some("1.4.9")
                && verbose.body.contains_key("healthcheck")
                && !quiet.body.contains_key("healthcheck"),
            || format!("{:?} / {:?}", verbose.body, quiet.body),
        )
    });
    case!("introspect", async {
        let all = client
            .call_action(service, "introspect", ())
            .await
            .map_err(err)?;
        let one = client
            .call_action(
                service,
                "introspect",
                map(vec![("action_name", "square".into())]),
            )
            .await
            .map_err(err)?;
        let names = all.body["action_names"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        check(
            names.contains(&Value::from("square"))
                && names.contains(&Value::from("status"))
                && one.body["action_names"] == Value::Array(vec!["square".into()]),
            || format!("{:?} / {:?}", all.body, one.body),
        )
    });
    for (name, serializer, version) in [
        ("json_serializer", "json", 3),
        ("protocol_v1", "msgpack", 1),
        ("protocol_v2", "msgpack", 2),
        ("protocol_v3", "msgpack", 3),
    ] {
        case!(name, async move {
            let other = interop::client(port, |s| {
                s.default_serializer_config.path = serializer.to_owned();
                s.protocol_version = Some(version);
            })
            .await
            .map_err(err)?;
            let r = other
                .call_action(service, "square", map(vec![("number", 8.into())]))
                .await
                .map_err(err)?;
            check(square_of(&r) == Some(64), || format!("{:?}", r.body))
        });
    }
    case!("two_thousand_calls_in_flight_on_ten_connections", async {
        many_calls_in_flight(port, service).await
    });
    case!("send_request_get_all_responses", async {
        let first = client
            .send_request(service, vec![sq(2)], &CallOptions::new())
            .await
            .map_err(err)?;
        let second = client
            .send_request(service, vec![sq(3)], &CallOptions::new())
            .await
            .map_err(err)?;
        let outcomes = client.get_all_responses(service, None).await.map_err(err)?;
        let ids: Vec<u64> = outcomes.iter().map(|(id, _)| *id).collect();
        check(
            ids == [first, second] && outcomes.iter().all(|(_, o)| o.is_ok()),
            || format!("{outcomes:?}"),
        )
    });
    results
}

/// How many connections Redis has open, from `CLIENT LIST` (the asking connection included).
async fn connections(admin: &fred::prelude::Client) -> Result<usize, String> {
    use fred::prelude::ClientLike;

    let list: String = admin
        .custom(
            fred::types::CustomCommand::new_static(
                "CLIENT",
                fred::types::ClusterHash::Random,
                false,
            ),
            vec!["LIST"],
        )
        .await
        .map_err(err)?;
    Ok(list.lines().filter(|l| l.starts_with("id=")).count())
}

/// 2,000 calls in flight from a fresh client (`echo`, and a chunked `big` every 100th), each checked to get its
/// own response, while `CLIENT LIST` counts the client's connections: at most eight reply connections and two for
/// sending, where one connection per call would take 2,000.
async fn many_calls_in_flight(port: u16, service: &str) -> Outcome {
    use fred::prelude::ClientLike;

    const CALLS: i64 = 2_000;
    let admin = fred::prelude::Builder::from_config(fred::prelude::Config {
        server: fred::prelude::ServerConfig::new_centralized("127.0.0.1", port),
        ..fred::prelude::Config::default()
    })
    .build()
    .map_err(err)?;
    admin.init().await.map_err(err)?;
    let before = connections(&admin).await?;
    let client = interop::client_for(port, &[service], |_| {})
        .await
        .map_err(err)?;
    let calls = (0..CALLS).map(|n| {
        let client = client.clone();
        let service = service.to_owned();
        tokio::spawn(async move {
            if n % 100 == 0 {
                let size = 150_000 + n;
                let r = client
                    .call_action(&service, "big", map(vec![("size", size.into())]))
                    .timeout(Duration::from_secs(50))
                    .await
                    .map_err(err)?;
                let got = r.body["data"].as_str().map(str::len);
                check(got == usize::try_from(size).ok(), || {
                    format!("big {size} got {got:?}")
                })
            } else {
                let body = map(vec![("n", n.into())]);
                let r = client
                    .call_action(&service, "echo", body.clone())
                    .timeout(Duration::from_secs(50))
                    .await
                    .map_err(err)?;
                check(r.body == body, || format!("echo {n} got {:?}", r.body))
            }
        })
    });
    let calls: Vec<_> = calls.collect();
    let mut most = 0;
    let mut pending = join_tasks(calls);
    let outcomes = loop {
        tokio::select! {
            done = &mut pending => break done,
            _ = tokio::time::sleep(Duration::from_millis(5)) => {
                most = most.max(connections(&admin).await?);
            }
        }
    };
    let failed: Vec<&String> = outcomes.iter().filter_map(|o| o.as_ref().err()).collect();
    let used = most.saturating_sub(before);
    check(failed.is_empty() && (1..=10).contains(&used), || {
        format!(
            "{} of {CALLS} failed ({:?}); {used} connections at once",
            failed.len(),
            failed.first()
        )
    })
}

/// Waits for every task, as one boxed future (the case above polls it beside its connection counter).
fn join_tasks(
    tasks: Vec<tokio::task::JoinHandle<Outcome>>,
) -> Pin<Box<dyn Future<Output = Vec<Outcome>> + Send>> {
    Box::pin(async move {
        let mut outcomes = Vec::with_capacity(tasks.len());
        for task in tasks {
            outcomes.push(task.await.unwrap_or_else(|e| Err(err(e))));
        }
        outcomes
    })
}

/// `{"number": n}` without pulling in serde_json.
fn serde_json_free(n: i64) -> Map {
    map(vec![("number", n.into())])
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let port: u16 = args
        .next()
        .ok_or("usage: interop-client <redis port> [service]")?
        .parse()?;
    let service = args.next().unwrap_or_else(|| "pyinterop".to_owned());
    let client = interop::client(port, |_| {}).await?;
    let results = run_cases(&client, port, &service).await;
    let failed = results.iter().filter(|(_, o)| o.is_err()).count();
    println!(
        "rust cases: {} passed, {failed} failed",
        results.len() - failed
    );
    std::process::exit(i32::from(failed > 0));
}
