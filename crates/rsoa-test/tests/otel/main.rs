//! W3C trace context across services (the `otel` feature): a caller's span is the parent of the job it calls,
//! through the request context alone, and an action's downstream calls go on in the same trace.
//!
//! The services run through a local transport that encodes every message and runs each job in a task of its own,
//! outside the caller's span, as over Redis: only the request context can link the spans.

use std::future::IntoFuture;

use opentelemetry::trace::{SpanId, TraceId};
use rsoa_client::Client;
use rsoa_protocol::Map;
use rsoa_server::{ActionContext, ActionError, Server};
use rsoa_test::trace::{attribute, RecordedSpans};
use rsoa_transport_local::LocalTransport;
use tracing::Instrument;

/// `inventory.stock` answers with the trace context its request carried; `orders.place` calls it.
fn services() -> Client {
    let inventory = Server::builder("inventory")
        .action_fn("stock", |_: Map, ctx: ActionContext| async move {
            let seen = ctx.context().extra.get("traceparent").cloned();
            let mut body = Map::new();
            body.insert("traceparent", seen.unwrap_or_default());
            Ok::<_, ActionError>(body)
        })
        .build()
        .expect("inventory");
    let local = |server: Server| {
        LocalTransport::new(server)
            .round_trip(true)
            .spawn_jobs(true)
    };
    let orders = Server::builder("orders")
        .client(Client::builder().service(local(inventory)).build())
        .action_fn("place", |_: Map, ctx: ActionContext| async move {
            let stock = ctx.client().call_action("inventory", "stock", ()).await?;
            Ok::<_, ActionError>(stock.body)
        })
        .build()
        .expect("orders");
    Client::builder().service(local(orders)).build()
}

/// `orders.place`, called inside a span `checkout`.
async fn place_in_checkout() -> rsoa_protocol::ActionResponse {
    services()
        .call_action("orders", "place", ())
        .into_future()
        .instrument(tracing::info_span!("checkout"))
        .await
        .expect("the call succeeds")
}

#[tokio::test]
async fn a_trace_goes_from_the_caller_through_a_service_to_the_next() {
    let recorded = RecordedSpans::start();
    let response = place_in_checkout().await;

    let spans = recorded.spans();
    let checkout = RecordedSpans::find(&spans, "checkout", &[]);
    let trace = checkout.span_context.trace_id();
    let orders_job = RecordedSpans::find(&spans, "job", &[("service", "orders")]);
    let place = RecordedSpans::find(&spans, "action", &[("action", "place")]);
    let inventory_job = RecordedSpans::find(&spans, "job", &[("service", "inventory")]);
    let stock = RecordedSpans::find(&spans, "action", &[("action", "stock")]);
    for s in [orders_job, place, inventory_job, stock] {
        assert_eq!(
            s.span_context.trace_id(),
            trace,
            "{s:#?} is in the caller's trace"
        );
    }
    assert_eq!(orders_job.parent_span_id, checkout.span_context.span_id());
    assert_eq!(place.parent_span_id, orders_job.span_context.span_id());
    assert_eq!(
        inventory_job.parent_span_id,
        place.span_context.span_id(),
        "a downstream call is the child of the action that made it"
    );
    assert_eq!(stock.parent_span_id, inventory_job.span_context.span_id());
    // What went on the wire: the W3C form of the `place` action's span.
    assert_eq!(
        response.body.get("traceparent").and_then(|v| v.as_str()),
        Some(format!("00-{trace}-{}-01", place.span_context.span_id()).as_str())
    );
    // The job span carries the request's ids, as every log line inside it does.
    assert!(attribute(orders_job, "request_id").is_some_and(|id| id.parse::<i64>().is_ok()));
    assert!(attribute(orders_job, "correlation_id").is_some_and(|c| !c.is_empty()));
    assert_eq!(
        attribute(inventory_job, "calling_service").as_deref(),
        Some("orders")
    );
    assert_eq!(
        attribute(inventory_job, "correlation_id"),
        attribute(orders_job, "correlation_id"),
        "a downstream call keeps the correlation id"
    );
}

#[tokio::test]
async fn a_trace_context_forwarded_by_another_service_is_adopted() {
    // What a PySOA service in between does: it forwards its request's context, `traceparent` included, unchanged.
    let recorded = RecordedSpans::start();
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent = "00f067aa0ba902b7";
    services()
        .call_action("orders", "place", ())
        .context("traceparent", format!("00-{trace}-{parent}-01"))
        .context("tracestate", "vendor=1")
        .await
        .expect("the call succeeds");

    let spans = recorded.spans();
    let orders_job = RecordedSpans::find(&spans, "job", &[("service", "orders")]);
    assert_eq!(
        orders_job.span_context.trace_id(),
        TraceId::from_hex(trace).unwrap()
    );
    assert_eq!(orders_job.parent_span_id, SpanId::from_hex(parent).unwrap());
    assert!(orders_job.parent_span_is_remote);
    assert_eq!(orders_job.span_context.trace_state().header(), "vendor=1");
    let inventory_job = RecordedSpans::find(&spans, "job", &[("service", "inventory")]);
    assert_eq!(
        inventory_job.span_context.trace_id(),
        TraceId::from_hex(trace).unwrap()
    );
}

#[tokio::test]
async fn a_malformed_trace_context_starts_a_new_trace_and_the_call_goes_on() {
    let recorded = RecordedSpans::start();
    let response = services()
        .call_action("orders", "place", ())
        .context("traceparent", "00-not-a-trace-01")
        .await
        .expect("the call succeeds");

    let spans = recorded.spans();
    let orders_job = RecordedSpans::find(&spans, "job", &[("service", "orders")]);
    assert_eq!(orders_job.parent_span_id, SpanId::INVALID, "a root span");
    assert!(orders_job.span_context.is_valid());
    let place = RecordedSpans::find(&spans, "action", &[("action", "place")]);
    // The downstream call carries the new trace, not the malformed context.
    assert_eq!(
        response.body.get("traceparent").and_then(|v| v.as_str()),
        Some(
            format!(
                "00-{}-{}-01",
                orders_job.span_context.trace_id(),
                place.span_context.span_id()
            )
            .as_str()
        )
    );
}

#[tokio::test]
async fn without_a_recorded_span_the_context_is_left_as_it_is() {
    // No OpenTelemetry layer: nothing is added to the request context.
    let response = place_in_checkout().await;
    assert_eq!(
        response.body.get("traceparent").and_then(|v| v.as_str()),
        None
    );
}
