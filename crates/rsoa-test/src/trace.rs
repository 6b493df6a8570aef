//! The OpenTelemetry spans a test makes, recorded in memory (the `otel` feature).
//!
//! ```
//! use rsoa_test::trace::RecordedSpans;
//!
//! let recorded = RecordedSpans::start();
//! tracing::info_span!("checkout", order = "A-1").in_scope(|| {});
//! let spans = recorded.spans();
//! let checkout = RecordedSpans::find(&spans, "checkout", &[("order", "A-1")]);
//! assert!(checkout.span_context.is_valid());
//! ```

use opentelemetry::trace::TracerProvider;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing::subscriber::DefaultGuard;
use tracing_subscriber::layer::SubscriberExt;

/// Records, while it lives, the spans of the current thread through a `tracing-opentelemetry` layer (a
/// current-thread runtime's tasks included), and hands them over as the SDK exports them.
#[derive(Debug)]
pub struct RecordedSpans {
    exporter: InMemorySpanExporter,
    provider: SdkTracerProvider,
    _guard: DefaultGuard,
}

impl RecordedSpans {
    /// Starts recording: an OpenTelemetry layer becomes this thread's `tracing` subscriber.
    pub fn start() -> RecordedSpans {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("rsoa-test"));
        let guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));
        RecordedSpans {
            exporter,
            provider,
            _guard: guard,
        }
    }

    /// The spans that have ended so far, in the order they ended.
    ///
    /// # Panics
    ///
    /// If the SDK cannot flush them (it always can in memory).
    pub fn spans(&self) -> Vec<SpanData> {
        self.provider.force_flush().expect("in-memory spans flush");
        self.exporter
            .get_finished_spans()
            .expect("in-memory spans are readable")
    }

    /// The one span called `name` that has every attribute in `attributes`.
    ///
    /// # Panics
    ///
    /// Unless exactly one span matches, showing every span.
    pub fn find<'a>(
        spans: &'a [SpanData],
        name: &str,
        attributes: &[(&str, &str)],
    ) -> &'a SpanData {
        let found: Vec<_> = spans
            .iter()
            .filter(|s| {
                s.name == name
                    && attributes
                        .iter()
                        .all(|&(k, v)| attribute(s, k).as_deref() == Some(v))
            })
            .collect();
        assert_eq!(
            found.len(),
            1,
            "expected one {name} span with {attributes:?} in {spans:#?}"
        );
        found[0]
    }
}

/// The value of a span's attribute, as text.
pub fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.as_str().into_owned())
}
