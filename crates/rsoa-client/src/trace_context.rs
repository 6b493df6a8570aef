//! W3C trace context in the request context (the `otel` feature).
//!
//! A call made inside a `tracing` span that an OpenTelemetry layer
//! ([`tracing_opentelemetry`](https://docs.rs/tracing-opentelemetry)) records carries that span's trace context
//! in its request context, under the W3C names `traceparent` and `tracestate`. An rsoa server makes it the parent
//! of the job's span; a PySOA service forwards its whole request context to the calls its actions make, so the
//! trace goes on through it unchanged. A call made outside any recorded span leaves the context as it is: a
//! trace context that came in with a server's request is passed on.

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry::Context;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use rsoa_protocol::{Map, Value};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Writes the current span's trace context into a request context, when the span belongs to a trace.
///
/// ```
/// use rsoa_protocol::Map;
///
/// // No OpenTelemetry layer records this span: the context is left alone.
/// let mut context = Map::new();
/// rsoa_client::trace_context::inject(&mut context);
/// assert!(context.is_empty());
/// ```
pub fn inject(context: &mut Map) {
    let current = tracing::Span::current().context();
    if current.span().span_context().is_valid() {
        TraceContextPropagator::new().inject_context(&current, &mut Writer(context));
    }
}

/// The trace context a request context carries, as the OpenTelemetry context of the caller's span; `None` when it
/// carries none, or one that is malformed.
///
/// ```
/// use rsoa_protocol::Map;
/// use opentelemetry::trace::TraceContextExt;
///
/// let mut context = Map::new();
/// context.insert("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
/// let parent = rsoa_client::trace_context::extract(&context).expect("a valid traceparent");
/// assert_eq!(parent.span().span_context().trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
///
/// context.insert("traceparent", "not a trace");
/// assert!(rsoa_client::trace_context::extract(&context).is_none());
/// ```
pub fn extract(context: &Map) -> Option<Context> {
    let parent = TraceContextPropagator::new().extract(&Reader(context));
    parent.span().span_context().is_valid().then_some(parent)
}

/// Sets the propagator's keys in a request context, replacing what was there; an empty `tracestate` is left out.
struct Writer<'a>(&'a mut Map);

impl Injector for Writer<'_> {
    fn set(&mut self, key: &str, value: String) {
        if value.is_empty() {
            self.0.remove(key);
        } else {
            self.0.insert(key, value);
        }
    }
}

/// Reads the propagator's keys from a request context: string values only.
struct Reader<'a>(&'a Map);

impl Extractor for Reader<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(Value::as_str)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().filter_map(Value::as_str).collect()
    }
}
