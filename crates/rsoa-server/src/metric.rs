//! The server's metrics, through the [`metrics`] facade: any recorder the application installs gets them (the
//! standalone runner's Prometheus exporter, for one); with none installed they cost next to nothing. Names follow
//! PySOA's (`pymetrics`) where PySOA has one; durations are in seconds. A server registers its handles with the
//! recorder installed when it runs its first job: install one before serving.
//!
//! | name | kind | labels | PySOA |
//! |---|---|---|---|
//! | `server.jobs` | counter | `outcome` (`success`, `error`) | — |
//! | `server.job.duration` | histogram | — | — |
//! | `server.actions` | counter | `action`, `outcome` | — |
//! | `server.action.duration` | histogram | `action` | — |
//! | `server.errors` | counter | `code`, `level` (`job`, `action`) | — |
//! | `server.error.harakiri` | counter | `harakiri_level` (`job`, `action`) | same |
//! | `server.error.unhandled_error` | counter | — | same |
//! | `server.error.job_error` | counter | — | same |

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use metrics::{Counter, Histogram, SharedString};
use rsoa_protocol::{ErrorCode, JobResponse};

/// Jobs answered (or run with their response suppressed), by outcome.
pub const JOBS: &str = "server.jobs";
/// Seconds from a job's start to its response.
pub const JOB_DURATION: &str = "server.job.duration";
/// Actions run, by action and outcome.
pub const ACTIONS: &str = "server.actions";
/// Seconds an action ran, by action.
pub const ACTION_DURATION: &str = "server.action.duration";
/// Errors in responses, by code and level.
pub const ERRORS: &str = "server.errors";
/// Jobs and actions interrupted for running too long (PySOA's name).
pub const HARAKIRI: &str = "server.error.harakiri";
/// Unexpected failures: panics and other `SERVER_ERROR`s (PySOA's name).
pub const UNHANDLED_ERROR: &str = "server.error.unhandled_error";
/// Jobs failed as a whole by an action (PySOA's `JobError`; PySOA's name).
pub const JOB_ERROR: &str = "server.error.job_error";

/// A server's handles on its metrics of every job, registered with the recorder of the moment when first used
/// (so install a recorder before the server runs its first job): a lookup by name and labels costs more than the
/// update itself. An action the server does not define is recorded without a handle kept.
#[derive(Default)]
pub(crate) struct Handles {
    job_duration: OnceLock<Histogram>,
    jobs: [OnceLock<Counter>; 2],
    actions: HashMap<Arc<str>, ActionHandles>,
}

/// The handles of one action: its duration, and its runs by outcome.
#[derive(Default)]
struct ActionHandles {
    duration: OnceLock<Histogram>,
    runs: [OnceLock<Counter>; 2],
}

/// The `outcome` label, and its place in the handle arrays.
fn outcome(failed: bool) -> (&'static str, usize) {
    if failed {
        ("error", 1)
    } else {
        ("success", 0)
    }
}

impl Handles {
    /// Handles for a server whose actions are `actions`.
    pub(crate) fn new<'a>(actions: impl IntoIterator<Item = &'a str>) -> Handles {
        Handles {
            actions: actions
                .into_iter()
                .map(|name| (Arc::from(name), ActionHandles::default()))
                .collect(),
            ..Handles::default()
        }
    }

    /// Records a finished job from its response: one pass over its errors.
    pub(crate) fn job_done(&self, response: &JobResponse, started: Instant) {
        self.job_duration
            .get_or_init(|| metrics::histogram!(JOB_DURATION))
            .record(started.elapsed().as_secs_f64());
        let mut failed = !response.errors.is_empty();
        for error in &response.errors {
            error_seen(&error.code, "job");
        }
        for action in &response.actions {
            failed |= !action.errors.is_empty();
            for error in &action.errors {
                error_seen(&error.code, "action");
            }
        }
        let (label, i) = outcome(failed);
        self.jobs[i]
            .get_or_init(|| metrics::counter!(JOBS, "outcome" => label))
            .increment(1);
    }

    /// Records an action's run: how long, and whether it failed. The name is shared, not copied.
    pub(crate) fn action_done(&self, action: &Arc<str>, started: Instant, failed: bool) {
        let seconds = started.elapsed().as_secs_f64();
        let name = || SharedString::from_shared(action.clone());
        let (label, i) = outcome(failed);
        match self.actions.get(&**action) {
            Some(handles) => {
                handles
                    .duration
                    .get_or_init(|| metrics::histogram!(ACTION_DURATION, "action" => name()))
                    .record(seconds);
                handles.runs[i]
                    .get_or_init(
                        || metrics::counter!(ACTIONS, "action" => name(), "outcome" => label),
                    )
                    .increment(1);
            }
            None => {
                metrics::histogram!(ACTION_DURATION, "action" => name()).record(seconds);
                metrics::counter!(ACTIONS, "action" => name(), "outcome" => label).increment(1);
            }
        }
    }
}

fn error_seen(code: &ErrorCode, level: &'static str) {
    let code_label = SharedString::from(code.as_str().to_owned());
    metrics::counter!(ERRORS, "code" => code_label, "level" => level).increment(1);
    match code.as_str() {
        "JOB_TIMEOUT" if level == "job" => {
            metrics::counter!(HARAKIRI, "harakiri_level" => "job").increment(1);
        }
        "ACTION_TIMEOUT" => metrics::counter!(HARAKIRI, "harakiri_level" => "action").increment(1),
        "SERVER_ERROR" => metrics::counter!(UNHANDLED_ERROR).increment(1),
        _ => {}
    }
}

/// Records a job failed as a whole by one of its actions.
pub(crate) fn job_error() {
    metrics::counter!(JOB_ERROR).increment(1);
}

#[cfg(test)]
mod tests {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    use metrics_util::MetricKind;
    use rsoa_protocol::{ActionRequest, JobRequest, Map, Value};
    use rsoa_transport::{IncomingJob, JobBody};

    use crate::{ActionContext, ActionError, Server};

    fn job(actions: &[&str], continue_on_error: bool) -> IncomingJob {
        let mut job = JobRequest::new(
            actions
                .iter()
                .map(|name| ActionRequest::new(*name, Map::new()))
                .collect(),
        );
        job.control.continue_on_error = continue_on_error;
        IncomingJob::new(Value::from(1), Map::new(), JobBody::Typed(job))
    }

    /// `(kind, name, labels, value)` of each metric, labels as `k=v` sorted, counters as their count and histograms
    /// as their number of samples.
    fn recorded(recorder: &DebuggingRecorder) -> Vec<(MetricKind, String, Vec<String>, u64)> {
        let mut out: Vec<_> = recorder
            .snapshotter()
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(key, _, _, value)| {
                let (kind, key) = key.into_parts();
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
                (kind, key.name().to_owned(), labels, value)
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn jobs_actions_and_errors_are_counted_under_pysoas_names() {
        let server = Server::builder("svc")
            .action_fn("ok", |_: Map, _ctx: ActionContext| async move {
                Ok::<_, ActionError>(Map::new())
            })
            .action_fn("fail", |_: Map, _ctx: ActionContext| async move {
                Err::<Map, _>(ActionError::new("NOPE", "no"))
            })
            .action_fn("panic", |_: Map, _ctx: ActionContext| async move {
                if std::hint::black_box(true) {
                    panic!("boom");
                }
                Ok::<_, ActionError>(Map::new())
            })
            .action_fn("abort", |_: Map, _ctx: ActionContext| async move {
                Err::<Map, _>(ActionError::job([rsoa_protocol::Error::new(
                    "GONE", "gone",
                )]))
            })
            .build()
            .unwrap();
        let recorder = DebuggingRecorder::new();
        metrics::with_local_recorder(&recorder, || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                server.handle(job(&["ok"], false)).await;
                server.handle(job(&["fail", "ok"], true)).await;
                server.handle(job(&["panic"], false)).await;
                server.handle(job(&["abort"], false)).await;
            });
        });
        // One snapshot: taking one drains the histograms' samples.
        let all = recorded(&recorder);
        let counters: Vec<(String, Vec<String>, u64)> = all
            .iter()
            .filter(|(kind, ..)| *kind == MetricKind::Counter)
            .cloned()
            .map(|(_, name, labels, n)| (name, labels, n))
            .collect();
        let c = |name: &str, labels: &[&str], n: u64| {
            (
                name.to_owned(),
                labels.iter().map(|l| (*l).to_owned()).collect::<Vec<_>>(),
                n,
            )
        };
        assert_eq!(
            counters,
            [
                // An action that fails the whole job failed too.
                c("server.actions", &["action=abort", "outcome=error"], 1),
                c("server.actions", &["action=fail", "outcome=error"], 1),
                c("server.actions", &["action=ok", "outcome=success"], 2),
                c("server.actions", &["action=panic", "outcome=error"], 1),
                c("server.error.job_error", &[], 1),
                c("server.error.unhandled_error", &[], 1),
                c("server.errors", &["code=GONE", "level=job"], 1),
                c("server.errors", &["code=NOPE", "level=action"], 1),
                c("server.errors", &["code=SERVER_ERROR", "level=action"], 1),
                c("server.jobs", &["outcome=error"], 3),
                c("server.jobs", &["outcome=success"], 1),
            ]
        );
        let histograms: Vec<(String, Vec<String>, u64)> = all
            .into_iter()
            .filter(|(kind, ..)| *kind == MetricKind::Histogram)
            .map(|(_, name, labels, n)| (name, labels, n))
            .collect();
        assert!(
            histograms.contains(&c("server.job.duration", &[], 4)),
            "{histograms:?}"
        );
        assert!(
            histograms.contains(&c("server.action.duration", &["action=ok"], 2)),
            "{histograms:?}"
        );
    }
}
