//! Saturated throughput of a service's server processes, with no load generator competing for the CPU while it
//! is measured: `bench-backlog <redis port> <service> <body size> <calls>`.
//!
//! It builds `calls` `echo` requests as PySOA's client frames them (protocol v3, MessagePack), all replying to one
//! queue, and pushes them onto a staging list. A single `RENAME` then puts the whole backlog on the service's
//! queue at once, and the clock runs until every response is on the reply queue (watched with `LLEN` once a
//! millisecond). Every response is then checked: an error answered fast must not pass for throughput.
//!
//! Prints one JSON line, as the other load generators do: `{"calls": n, "seconds": s, "calls_per_sec": x,
//! "redis_cpu_us_per_call": r}`, the last being the CPU Redis spent (from `INFO cpu`) while the backlog drained.

use std::time::{Duration, Instant};

use fred::prelude::{Builder, ClientLike, Config, KeysInterface, ListInterface, ServerConfig};
use fred::types::InfoKind;
use rsoa_codec::Serializer;
use rsoa_protocol::{ActionRequest, JobRequest, JobResponse, Map, Value};
use rsoa_transport_redis::{
    parse_frame, service_queue_key, write_frame, ProtocolVersion, KEY_PREFIX,
};

/// How long the whole backlog may take before the run counts as failed.
const DEADLINE: Duration = Duration::from_secs(300);

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [port, service, size, calls] = &args[..] else {
        return Err("usage: bench-backlog <redis port> <service> <body size> <calls>".into());
    };
    let (port, size, calls): (u16, usize, usize) = (port.parse()?, size.parse()?, calls.parse()?);
    let redis = Builder::from_config(Config {
        server: ServerConfig::new_centralized("127.0.0.1", port),
        ..Config::default()
    })
    .build()?;
    redis.init().await?;

    let reply_to = format!("service.{service}.backlog!");
    let reply_key = format!("{KEY_PREFIX}{reply_to}");
    let queue = service_queue_key(service);
    let staging = format!("{queue}.staging");
    let _: i64 = redis.del(vec![reply_key.clone(), staging.clone()]).await?;

    let codec = rsoa_codec::by_mime_type("application/msgpack").ok_or("no MessagePack codec")?;
    let expiry = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs_f64()
        + DEADLINE.as_secs_f64();
    let mut body = Map::new();
    body.insert("data", Value::from("x".repeat(size)));
    let mut job = JobRequest::new(vec![ActionRequest::new("echo", body)]);
    job.context.correlation_id = "backlog".to_owned();
    let job = job.into_value();
    let mut frames = Vec::with_capacity(500);
    for request_id in 0..calls {
        let mut meta = Map::new();
        meta.insert(
            "client_version",
            Value::Array(vec![1.into(), 4.into(), 9.into()]),
        );
        meta.insert("reply_to", reply_to.as_str());
        meta.insert("__expiry__", expiry);
        let mut envelope = Map::new();
        envelope.insert("request_id", request_id as i64);
        envelope.insert("meta", meta);
        envelope.insert("body", job.clone());
        let payload = codec.encode(&Value::Map(envelope))?;
        frames.push(write_frame(
            ProtocolVersion::V3,
            codec.mime_type(),
            None,
            &payload,
        ));
        if frames.len() == 500 || request_id + 1 == calls {
            let _: i64 = redis.rpush(&staging, std::mem::take(&mut frames)).await?;
        }
    }

    let redis_before = redis_cpu_seconds(&redis).await?;
    let start = Instant::now();
    let () = redis.rename(&staging, &queue).await?;
    loop {
        let answered: usize = redis.llen(&reply_key).await?;
        if answered >= calls {
            break;
        }
        if start.elapsed() > DEADLINE {
            return Err(format!("only {answered} of {calls} responses after {DEADLINE:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let seconds = start.elapsed().as_secs_f64();
    let redis_cpu = redis_cpu_seconds(&redis).await? - redis_before;

    let responses: Vec<bytes::Bytes> = redis.lrange(&reply_key, 0, -1).await?;
    let _: i64 = redis.del(reply_key).await?;
    if responses.len() != calls {
        return Err(format!("{} responses for {calls} requests", responses.len()).into());
    }
    for response in &responses {
        check(codec, response, size)?;
    }
    println!(
        "{{\"calls\": {calls}, \"seconds\": {seconds:.6}, \"calls_per_sec\": {:.1}, \"redis_cpu_us_per_call\": {:.1}}}",
        calls as f64 / seconds,
        redis_cpu / calls as f64 * 1e6
    );
    Ok(())
}

/// The CPU time Redis has used, user and system, from `INFO cpu`.
async fn redis_cpu_seconds(
    redis: &fred::prelude::Client,
) -> Result<f64, Box<dyn std::error::Error>> {
    let info: String = redis.info(Some(InfoKind::Cpu)).await?;
    let field = |name: &str| -> Result<f64, Box<dyn std::error::Error>> {
        let line = info
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .ok_or_else(|| format!("no {name} in INFO cpu"))?;
        Ok(line.trim().parse()?)
    };
    Ok(field("used_cpu_sys:")? + field("used_cpu_user:")?)
}

/// That a response echoes the request's body, with no error.
fn check(
    codec: &dyn Serializer,
    frame: &[u8],
    size: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let frame = parse_frame(frame)?;
    let Value::Map(mut envelope) = codec.decode(frame.payload)? else {
        return Err("a response is not a map".into());
    };
    let body = envelope.remove("body").ok_or("a response has no body")?;
    let job = JobResponse::from_owned_value(body)?;
    let data = job.actions.first().and_then(|a| a.body.get("data"));
    match data {
        Some(Value::String(s)) if job.errors.is_empty() && s.len() == size => Ok(()),
        _ => Err(format!("a response does not echo the request: {job:?}").into()),
    }
}
