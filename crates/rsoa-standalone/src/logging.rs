//! The runner's log subscriber: `tracing-subscriber`'s formatter, human or JSON, with the running job's fields
//! ([`rsoa_server::log_context`]) on every line made inside a job.

use std::fmt;

use rsoa_server::log_context::{self, Field, SPAN_TARGET};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::{Cli, Error, LogFormat, Settings};

/// What must live as long as the process logs: the trace exporter, flushed when this is dropped.
#[derive(Default)]
#[must_use]
pub(crate) struct Telemetry {
    #[cfg(feature = "otel")]
    traces: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        #[cfg(feature = "otel")]
        if let Some(provider) = self.traces.take() {
            if let Err(e) = provider.shutdown() {
                eprintln!("error: the last traces could not be exported: {e}");
            }
        }
    }
}

/// Installs the process's subscriber: the command line's level and format over the settings', written to standard
/// error or appended to `logging.file`; with `traces` (a serving process) and `traces.otlp_endpoint`, the spans
/// exported too.
pub(crate) fn install(
    cli: &Cli,
    settings: &Settings,
    worker: Option<u16>,
    traces: bool,
) -> Result<Telemetry, Error> {
    let logging = &settings.logging;
    let level = cli.log_level.as_deref().unwrap_or(&logging.level);
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .map_err(|e| Error::Process(format!("log level {level:?}: {e}")))?;
    let format = cli.log_format.unwrap_or(logging.format);
    let writer = match &logging.file {
        None => BoxMakeWriter::new(std::io::stderr),
        Some(template) => {
            let fid = worker.map_or_else(|| "main".to_owned(), |w| w.to_string());
            let path = template
                .replace("{{pid}}", &std::process::id().to_string())
                .replace("{{fid}}", &fid);
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| Error::Process(format!("logging.file {path:?}: {e}")))?;
            BoxMakeWriter::new(std::sync::Mutex::new(file))
        }
    };
    let ansi = logging.file.is_none() && std::io::IsTerminal::is_terminal(&std::io::stderr());
    #[cfg(feature = "otel")]
    if let (true, Some(endpoint)) = (traces, &settings.traces.otlp_endpoint) {
        let logs = Logs {
            filter,
            format,
            writer,
            ansi,
        };
        return otlp::install(logs, level, endpoint, &settings.traces);
    }
    let _ = traces;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi);
    let installed = match format {
        LogFormat::Human => builder
            .map_event_format(|format| WithLogContext::new(format, LogFormat::Human))
            .try_init(),
        LogFormat::Json => builder
            .json()
            .map_event_format(|format| WithLogContext::new(format, LogFormat::Json))
            .try_init(),
    };
    installed.map_err(|e| Error::Process(format!("cannot install the log subscriber: {e}")))?;
    Ok(Telemetry::default())
}

/// How log lines are chosen and written.
#[cfg(feature = "otel")]
struct Logs {
    filter: tracing_subscriber::EnvFilter,
    format: LogFormat,
    writer: BoxMakeWriter,
    ansi: bool,
}

/// Traces over OTLP/HTTP beside the log lines.
#[cfg(feature = "otel")]
mod otlp {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::WithExportConfig as _;
    use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::Layer as _;

    use super::{Logs, Telemetry, WithLogContext, SPAN_TARGET};
    use crate::{Error, LogFormat, TracesSettings};

    /// The log lines as without traces (the filter applies to them alone), and an OpenTelemetry layer that also
    /// records rsoa's `job` and `action` spans.
    pub(super) fn install(
        logs: Logs,
        level: &str,
        endpoint: &str,
        settings: &TracesSettings,
    ) -> Result<Telemetry, Error> {
        let bad = |e: &dyn std::fmt::Display| {
            Error::Process(format!("traces.otlp_endpoint {endpoint:?}: {e}"))
        };
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(endpoint)
            .build()
            .map_err(|e| bad(&e))?;
        let mut resource = opentelemetry_sdk::Resource::builder();
        if let Some(name) = service_name(settings) {
            resource = resource.with_service_name(name);
        }
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
                settings.sample_ratio,
            ))))
            .with_resource(resource.build())
            .build();
        let spans = tracing_subscriber::EnvFilter::try_new(format!("{level},{SPAN_TARGET}=debug"))
            .map_err(|e| Error::Process(format!("log level {level:?}: {e}")))?;
        let traces = tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("rsoa"))
            .with_filter(spans);
        let lines = tracing_subscriber::fmt::layer()
            .with_writer(logs.writer)
            .with_ansi(logs.ansi);
        let lines = match logs.format {
            LogFormat::Human => lines
                .map_event_format(|f| WithLogContext::new(f, LogFormat::Human))
                .with_filter(logs.filter)
                .boxed(),
            LogFormat::Json => lines
                .json()
                .map_event_format(|f| WithLogContext::new(f, LogFormat::Json))
                .with_filter(logs.filter)
                .boxed(),
        };
        tracing_subscriber::registry()
            .with(lines)
            .with(traces)
            .try_init()
            .map_err(|e| Error::Process(format!("cannot install the log subscriber: {e}")))?;
        Ok(Telemetry {
            traces: Some(provider),
        })
    }

    /// `traces.service_name`; else none when `OTEL_SERVICE_NAME` names it (the SDK reads it); else the
    /// executable's name.
    fn service_name(settings: &TracesSettings) -> Option<String> {
        if let Some(name) = &settings.service_name {
            return Some(name.clone());
        }
        if std::env::var_os("OTEL_SERVICE_NAME").is_some() {
            return None;
        }
        let exe = std::env::current_exe().ok()?;
        Some(exe.file_stem()?.to_string_lossy().into_owned())
    }
}

/// An event formatter that adds the running job's fields to each line made inside a job: after the event's own
/// fields in the human format (`… service="ledger" request_id=7 correlation_id="…" action="balance"`), as
/// top-level keys in the JSON format (`{…, "service": "ledger", "request_id": 7, …}`). A line already inside
/// rsoa's `job` span (when [`SPAN_TARGET`] is enabled) shows them there, and gets nothing more.
pub(crate) struct WithLogContext<F> {
    inner: F,
    format: LogFormat,
}

impl<F> WithLogContext<F> {
    pub(crate) fn new(inner: F, format: LogFormat) -> WithLogContext<F> {
        WithLogContext { inner, format }
    }
}

impl<S, N, F> FormatEvent<S, N> for WithLogContext<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let in_job_span = || {
            ctx.event_scope()
                .is_some_and(|mut scope| scope.any(|span| span.metadata().target() == SPAN_TARGET))
        };
        let context = match log_context::current() {
            Some(context) if !in_job_span() => context,
            _ => return self.inner.format_event(ctx, writer, event),
        };
        let mut line = String::new();
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        let body = line.strip_suffix('\n').unwrap_or(&line);
        match self.format {
            LogFormat::Human => {
                writer.write_str(body)?;
                for (key, value) in context.fields() {
                    match value {
                        Field::Int(n) => write!(writer, " {key}={n}")?,
                        Field::Text(text) => write!(writer, " {key}={text:?}")?,
                    }
                }
            }
            LogFormat::Json => {
                // The formatter writes one object per line: the fields go in before it closes.
                let Some(open) = body.strip_suffix('}') else {
                    return writer.write_str(&line);
                };
                writer.write_str(open)?;
                for (key, value) in context.fields() {
                    match value {
                        Field::Int(n) => write!(writer, ",\"{key}\":{n}")?,
                        Field::Text(text) => write!(writer, ",\"{key}\":{}", json_string(text))?,
                    }
                }
                writer.write_char('}')?;
            }
        }
        writeln!(writer)
    }
}

/// A string as a JSON string literal.
fn json_string(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use rsoa_protocol::Map;
    use rsoa_server::{ActionContext, ActionError, Server};
    use rsoa_transport::{IncomingJob, JobBody};
    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

    /// Lines written by a subscriber, kept for the test to read.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Lines {
        type Writer = Lines;
        fn make_writer(&'a self) -> Lines {
            self.clone()
        }
    }

    /// What a service logs while running one job whose action logs a line, and before it.
    fn logged(format: LogFormat, filter: &str) -> Vec<String> {
        let lines = Lines::default();
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(lines.clone())
            .with_ansi(false);
        let subscriber: Box<dyn Subscriber + Send + Sync> = match format {
            LogFormat::Human => Box::new(
                builder
                    .map_event_format(|f| WithLogContext::new(f, LogFormat::Human))
                    .finish(),
            ),
            LogFormat::Json => Box::new(
                builder
                    .json()
                    .map_event_format(|f| WithLogContext::new(f, LogFormat::Json))
                    .finish(),
            ),
        };
        let _guard = tracing::subscriber::set_default(subscriber);
        let server = Server::builder("ledger")
            .action_fn("balance", |_: Map, _ctx: ActionContext| async move {
                tracing::info!(account = "a-1", "reading \"the\" balance");
                Ok::<_, ActionError>(Map::new())
            })
            .build()
            .unwrap();
        let mut job = rsoa_protocol::JobRequest::new(vec![rsoa_protocol::ActionRequest::new(
            "balance",
            Map::new(),
        )]);
        job.context.correlation_id = "corr-1".to_owned();
        job.context.calling_service = Some("checkout".to_owned());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        tracing::info!("before the job");
        runtime.block_on(server.handle(IncomingJob::new(
            7.into(),
            Map::new(),
            JobBody::Typed(job),
        )));
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        text.lines().map(str::to_owned).collect()
    }

    #[test]
    fn human_lines_inside_a_job_end_with_its_fields() {
        let lines = logged(LogFormat::Human, "info");
        assert_eq!(lines.len(), 2, "{lines:#?}");
        assert!(lines[0].ends_with("before the job"), "{}", lines[0]);
        assert!(
            lines[1].ends_with(
                r#"reading "the" balance account="a-1" service="ledger" request_id=7 correlation_id="corr-1" calling_service="checkout" action="balance""#
            ),
            "{}",
            lines[1]
        );
    }

    #[test]
    fn json_lines_inside_a_job_have_its_fields_at_the_top() {
        let lines = logged(LogFormat::Json, "info");
        let events: Vec<serde_json::Value> = lines
            .iter()
            .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
            .collect();
        assert_eq!(events.len(), 2, "{lines:#?}");
        assert_eq!(events[0].get("correlation_id"), None, "{}", lines[0]);
        let inside = &events[1];
        assert_eq!(inside["fields"]["message"], "reading \"the\" balance");
        assert_eq!(inside["fields"]["account"], "a-1");
        assert_eq!(inside["service"], "ledger");
        assert_eq!(inside["request_id"], 7);
        assert_eq!(inside["correlation_id"], "corr-1");
        assert_eq!(inside["calling_service"], "checkout");
        assert_eq!(inside["action"], "balance");
        assert_eq!(inside.get("caller"), None, "no caller was set");
    }

    #[test]
    fn with_the_spans_recorded_the_fields_are_shown_once_in_them() {
        let lines = logged(LogFormat::Human, "info,rsoa_server::span=debug");
        let inside = lines.last().expect("a line");
        assert!(
            inside.contains(r#"job{service="ledger" request_id=7 correlation_id="corr-1" calling_service="checkout"}:action{action="balance"}:"#),
            "{inside}"
        );
        assert_eq!(inside.matches("corr-1").count(), 1, "{inside}");
    }
}
