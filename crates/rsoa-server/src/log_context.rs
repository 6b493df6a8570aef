//! The job a task is running, for log lines: PySOA's logging context (`PySOALogContextFilter`), which puts the
//! request id, correlation id and action on every record made while a job runs.
//!
//! While a server runs a job, the job's task carries a [`LogContext`]: the service, the request id, the
//! correlation id, the caller and the calling service, and the action that is running. Whatever logs inside the job
//! (the server's request logs, the service's own `tracing` calls, a downstream client's) can read it with
//! [`current`]: the standalone runner's log subscriber adds it to every line. Setting it costs a few hundred
//! instructions per job, where a `tracing` span with those fields costs about ten thousand with `tracing-subscriber`'s
//! formatter (`docs/observability.md`); the spans are there too, at `DEBUG` (see [`SPAN_TARGET`]).
//!
//! Like a span, the context does not follow a task the action spawns.
//!
//! ```
//! use rsoa_server::{log_context, ActionContext, ActionError, Server};
//! use rsoa_protocol::Map;
//!
//! let server = Server::builder("ledger")
//!     .action_fn("balance", |_: Map, _ctx: ActionContext| async move {
//!         let context = log_context::current().expect("inside a job");
//!         assert_eq!(context.service(), "ledger");
//!         assert_eq!(context.action(), Some("balance"));
//!         Ok::<_, ActionError>(Map::new())
//!     })
//!     .build()
//!     .unwrap();
//! # drop(server);
//! assert!(log_context::current().is_none(), "outside any job");
//! ```

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use rsoa_transport::IncomingJob;

use crate::span::ContextRef;

/// The target of the `job` and `action` spans (at `DEBUG`): enable it (`rsoa_server::span=debug`) to record them,
/// for OpenTelemetry or a subscriber of your own.
pub const SPAN_TARGET: &str = "rsoa_server::span";

tokio::task_local! {
    static JOB: Arc<JobFields>;
    static ACTION: Arc<str>;
}

/// What a job's request says about it, for log lines.
#[derive(Debug)]
pub(crate) struct JobFields {
    service: Arc<str>,
    request_id: Option<i64>,
    correlation_id: Option<String>,
    caller: Option<String>,
    calling_service: Option<String>,
}

impl JobFields {
    pub(crate) fn of(service: &Arc<str>, job: &IncomingJob) -> Arc<JobFields> {
        let context = ContextRef::of(&job.body);
        let text = |key| context.text(key).map(str::to_owned);
        Arc::new(JobFields {
            service: service.clone(),
            request_id: job.request_id.as_i64(),
            correlation_id: text("correlation_id"),
            caller: text("caller"),
            calling_service: text("calling_service"),
        })
    }
}

/// The job (and action) the current task is running: read it with [`current`].
#[derive(Clone, Debug)]
pub struct LogContext {
    job: Arc<JobFields>,
    action: Option<Arc<str>>,
}

impl LogContext {
    /// The service running the job.
    pub fn service(&self) -> &str {
        &self.job.service
    }

    /// The request id of the job's message, when it is an integer (as every PySOA and rsoa client sends).
    pub fn request_id(&self) -> Option<i64> {
        self.job.request_id
    }

    /// The correlation id the request carries.
    pub fn correlation_id(&self) -> Option<&str> {
        self.job.correlation_id.as_deref()
    }

    /// The request context's `caller`, if the calling application set one.
    pub fn caller(&self) -> Option<&str> {
        self.job.caller.as_deref()
    }

    /// The service that made the call, when another service's action did.
    pub fn calling_service(&self) -> Option<&str> {
        self.job.calling_service.as_deref()
    }

    /// The action running now; `None` between actions (job middleware, request logs).
    pub fn action(&self) -> Option<&str> {
        self.action.as_deref()
    }

    /// Every field that is set, in this order: `service`, `request_id`, `correlation_id`, `caller`,
    /// `calling_service`, `action`.
    pub fn fields(&self) -> impl Iterator<Item = (&'static str, Field<'_>)> + '_ {
        [
            Some(("service", Field::Text(self.service()))),
            self.request_id().map(|id| ("request_id", Field::Int(id))),
            self.correlation_id()
                .map(|v| ("correlation_id", Field::Text(v))),
            self.caller().map(|v| ("caller", Field::Text(v))),
            self.calling_service()
                .map(|v| ("calling_service", Field::Text(v))),
            self.action().map(|v| ("action", Field::Text(v))),
        ]
        .into_iter()
        .flatten()
    }
}

/// A field of a [`LogContext`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field<'a> {
    /// The request id.
    Int(i64),
    /// Any other field.
    Text(&'a str),
}

impl fmt::Display for Field<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Field::Int(n) => write!(f, "{n}"),
            Field::Text(s) => f.write_str(s),
        }
    }
}

/// The job the current task is running, if it is running one.
pub fn current() -> Option<LogContext> {
    let job = JOB.try_with(Arc::clone).ok()?;
    Some(LogContext {
        job,
        action: ACTION.try_with(Arc::clone).ok(),
    })
}

/// Runs `job` with its fields as the task's log context.
pub(crate) fn in_job<F: Future>(fields: Arc<JobFields>, job: F) -> impl Future<Output = F::Output> {
    JOB.scope(fields, job)
}

/// Runs `action` with its name in the task's log context.
pub(crate) fn in_action<F: Future>(name: Arc<str>, action: F) -> impl Future<Output = F::Output> {
    ACTION.scope(name, action)
}

#[cfg(test)]
mod tests {
    use rsoa_protocol::{ActionRequest, JobRequest, Map, Value};
    use rsoa_transport::{IncomingJob, JobBody};

    use super::*;
    use crate::{job_fn, ActionContext, ActionError, Server};

    #[tokio::test]
    async fn a_job_and_its_action_carry_their_fields_and_nothing_leaks_out() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (in_action, in_middleware) = (seen.clone(), seen.clone());
        let server = Server::builder("ledger")
            .action_fn("balance", move |_: Map, _ctx: ActionContext| {
                let seen = in_action.clone();
                async move {
                    tokio::task::yield_now().await;
                    seen.lock()
                        .unwrap()
                        .push(current().expect("inside the action"));
                    Ok::<_, ActionError>(Map::new())
                }
            })
            .middleware(job_fn(move |job, next| {
                let seen = in_middleware.clone();
                Box::pin(async move {
                    seen.lock()
                        .unwrap()
                        .push(current().expect("inside the job"));
                    next.run(job).await
                }) as futures::future::BoxFuture<'_, _>
            }))
            .build()
            .unwrap();
        let mut request = JobRequest::new(vec![ActionRequest::new("balance", Map::new())]);
        request.context.correlation_id = "corr-9".to_owned();
        request.context.caller = Some("cli".to_owned());
        let job = IncomingJob::new(Value::from(12), Map::new(), JobBody::Typed(request));
        server.handle(job).await.expect("a response");
        assert!(current().is_none(), "the context ends with the job");

        let seen = seen.lock().unwrap();
        let [job, action] = &seen[..] else {
            panic!("{seen:?}")
        };
        assert_eq!(job.action(), None, "job middleware runs outside any action");
        assert_eq!(action.action(), Some("balance"));
        let fields: Vec<String> = action.fields().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(
            fields,
            [
                "service=ledger",
                "request_id=12",
                "correlation_id=corr-9",
                "caller=cli",
                "action=balance"
            ]
        );
    }

    #[tokio::test]
    async fn a_raw_job_is_read_as_it_came() {
        let server = Server::builder("ledger")
            .action_fn("balance", |_: Map, _ctx: ActionContext| async move {
                let context = current().expect("inside the action");
                Ok::<_, ActionError>(Map::from_iter([(
                    Value::from("seen"),
                    Value::from(format!(
                        "{:?} {:?}",
                        context.correlation_id(),
                        context.calling_service()
                    )),
                )]))
            })
            .build()
            .unwrap();
        let raw: Value = serde_json::from_value::<Value>(serde_json::json!({
            "control": {"continue_on_error": false},
            "context": {"switches": [], "correlation_id": "raw-1", "calling_service": "checkout"},
            "actions": [{"action": "balance", "body": {}}],
        }))
        .unwrap();
        let response = server
            .handle(IncomingJob::new(
                Value::from("id"),
                Map::new(),
                JobBody::Raw(raw),
            ))
            .await
            .expect("a response");
        assert_eq!(
            response.actions[0].body.get("seen").and_then(Value::as_str),
            Some(r#"Some("raw-1") Some("checkout")"#)
        );
    }
}
