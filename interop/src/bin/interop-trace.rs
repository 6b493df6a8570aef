//! A trace across a Python hop: `interop-trace <redis port>`.
//!
//! Serves `rstrace` in this process, then, inside a span, calls the PySOA service's `call_service`, which calls
//! `rstrace` with PySOA's own chained client. Both Rust spans are recorded in memory: the `rstrace` job span must be
//! in the caller's trace, the child of the caller's span, through the request context that PySOA forwarded
//! unchanged. Prints `PASS trace_through_python`, or `FAIL trace_through_python: why` and exits 1.

use std::future::IntoFuture;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use rsoa_protocol::{Map, Value};
use rsoa_server::{serve, ActionContext, ActionError, Server};
use rsoa_test::trace::RecordedSpans;
use rsoa_transport_redis::{RedisBackend, RedisServerTransport};
use tracing::Instrument;

/// The service this binary serves; the PySOA service routes calls to it.
const SERVICE: &str = "rstrace";

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => {
            println!("PASS trace_through_python");
            ExitCode::SUCCESS
        }
        Err(why) => {
            println!("FAIL trace_through_python: {why}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = std::env::args()
        .nth(1)
        .ok_or("usage: interop-trace <redis port>")?
        .parse()?;
    // The spans of this thread, where the server's tasks run too (a current-thread runtime).
    let recorded = RecordedSpans::start();
    let server = Server::builder(SERVICE)
        .action_fn("context", |_: Map, ctx: ActionContext| async move {
            let mut body = Map::new();
            for key in ["traceparent", "calling_service"] {
                let seen = match key {
                    "calling_service" => ctx.context().calling_service.clone().map(Value::from),
                    _ => ctx.context().extra.get(key).cloned(),
                };
                body.insert(key, seen.unwrap_or_default());
            }
            Ok::<_, ActionError>(body)
        })
        .build()?;
    let backend = RedisBackend::connect(interop::server_settings(port)).await?;
    let transport = Arc::new(RedisServerTransport::new(&backend, SERVICE)?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(serve(
        server,
        transport,
        async move {
            let _ = stopped.await;
        },
        Duration::from_secs(5),
    ));

    let client = interop::client(port, |_| {}).await?;
    let mut body = Map::new();
    body.insert("service", SERVICE);
    let response = client
        .call_action("pyinterop", "call_service", body)
        .into_future()
        .instrument(tracing::info_span!("checkout"))
        .await?;
    let _ = stop.send(());
    serving.await?;

    let spans = recorded.spans();
    let checkout = RecordedSpans::find(&spans, "checkout", &[]);
    let job = RecordedSpans::find(&spans, "job", &[("service", SERVICE)]);
    let downstream = response
        .body
        .get("downstream")
        .ok_or_else(|| format!("no downstream body in {:?}", response.body))?;
    let expected = format!(
        "00-{}-{}-01",
        checkout.span_context.trace_id(),
        checkout.span_context.span_id()
    );
    let checks = [
        (
            downstream.get("traceparent").and_then(Value::as_str) == Some(expected.as_str()),
            format!("the context PySOA forwarded: {downstream:?}, expected traceparent {expected}"),
        ),
        (
            downstream.get("calling_service").and_then(Value::as_str) == Some("pyinterop"),
            format!("the call did not come through pyinterop: {downstream:?}"),
        ),
        (
            job.span_context.trace_id() == checkout.span_context.trace_id(),
            format!(
                "the rstrace job is in trace {}, the caller in {}",
                job.span_context.trace_id(),
                checkout.span_context.trace_id()
            ),
        ),
        (
            job.parent_span_id == checkout.span_context.span_id() && job.parent_span_is_remote,
            format!(
                "the rstrace job's parent is {} (remote: {}), not the caller's span {}",
                job.parent_span_id,
                job.parent_span_is_remote,
                checkout.span_context.span_id()
            ),
        ),
    ];
    match checks.into_iter().find(|(ok, _)| !ok) {
        None => Ok(()),
        Some((_, why)) => Err(why.into()),
    }
}
