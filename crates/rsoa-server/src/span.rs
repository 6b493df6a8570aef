//! The `tracing` spans a job and its actions run in, at `DEBUG` under [`SPAN_TARGET`].
//!
//! With them recorded, every event inside a job (the server's request logs, the service's own `tracing` calls, a
//! downstream [`Client`](rsoa_client::Client)'s) is inside the job's span and, while an action runs, its action's
//! span. They are off at the runner's default `info`: with `tracing-subscriber`'s formatter two spans cost about
//! a sixth of a tiny call's CPU, and the [log context](crate::log_context) gives log lines the same fields for
//! next to nothing.
//!
//! With the `otel` feature, a job whose request context carries W3C trace context (`traceparent`, put there by an
//! rsoa client or forwarded by any PySOA service in between) becomes the OpenTelemetry child of the caller's span.

use rsoa_protocol::{Context, Map, Value};
use rsoa_transport::{IncomingJob, JobBody};
use tracing::Span;

use crate::log_context::SPAN_TARGET;

/// The request context of a job as it came: typed when built in process, else the decoded map (if it is one).
pub(crate) enum ContextRef<'a> {
    Typed(&'a Context),
    Raw(Option<&'a Map>),
}

impl<'a> ContextRef<'a> {
    pub(crate) fn of(body: &'a JobBody) -> ContextRef<'a> {
        match body {
            JobBody::Typed(job) => ContextRef::Typed(&job.context),
            JobBody::Raw(value) => ContextRef::Raw(value.get("context").and_then(Value::as_map)),
        }
    }

    /// A string-valued key of the context.
    pub(crate) fn text(&self, key: &str) -> Option<&'a str> {
        match self {
            ContextRef::Typed(context) => match key {
                "correlation_id" => Some(context.correlation_id.as_str()),
                "caller" => context.caller.as_deref(),
                "calling_service" => context.calling_service.as_deref(),
                _ => context.extra.get(key).and_then(Value::as_str),
            },
            ContextRef::Raw(map) => map.and_then(|m| m.get(key)).and_then(Value::as_str),
        }
    }
}

/// The span a job runs in: the service, and the request id, correlation id, caller and calling service the request
/// carries (each left out when the request has none).
pub(crate) fn job(service: &str, job: &IncomingJob) -> Span {
    let context = ContextRef::of(&job.body);
    // The fields are read only when a subscriber records the span.
    let span = tracing::debug_span!(
        target: SPAN_TARGET,
        "job",
        service,
        request_id = job.request_id.as_i64(),
        correlation_id = context.text("correlation_id"),
        caller = context.text("caller"),
        calling_service = context.text("calling_service"),
    );
    #[cfg(feature = "otel")]
    if !span.is_disabled() {
        adopt_remote_parent(&span, &context);
    }
    span
}

/// The span an action runs in, inside its job's.
pub(crate) fn action(name: &str) -> Span {
    tracing::debug_span!(target: SPAN_TARGET, "action", action = name)
}

/// Makes the caller's span, named by the request context's trace context, the OpenTelemetry parent of `span`.
#[cfg(feature = "otel")]
fn adopt_remote_parent(span: &Span, context: &ContextRef<'_>) {
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    let parent = match context {
        ContextRef::Typed(context) => rsoa_client::trace_context::extract(&context.extra),
        ContextRef::Raw(Some(map)) => rsoa_client::trace_context::extract(map),
        ContextRef::Raw(None) => None,
    };
    if let Some(parent) = parent {
        // Fails only when no OpenTelemetry layer records the span: then there is no trace to join.
        let _ = span.set_parent(parent);
    }
}
