//! A server's lifecycle: setup before the first request, pre- and post-request hooks around each job, idle hooks
//! when nothing arrives, teardown at the end; asynchronous health checks; `call_local_action`; a client in job
//! middleware. Served through [`rsoa_server::serve`] on an in-memory transport with the clock paused, so receive
//! timeouts pass at once and nothing sleeps for real.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rsoa_client::{action, Client};
use rsoa_protocol::{ActionRequest, ActionResponse, JobRequest, JobResponse, Map, Value};
use rsoa_server::{
    boxed, job_fn, serve, ActionContext, ActionError, ActionNext, HealthReport, ServeOutcome,
    Server, ServerBuilder, ServerMiddleware,
};
use rsoa_transport::{
    BoxFuture, Error, IncomingJob, JobBody, ReceivedJob, ReplyHandle, ServerTransport,
};
use rsoa_transport_local::LocalTransport;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::mpsc;

/// A server transport over channels: requests in, `(request id, response)` out. A receive with nothing waiting
/// times out after a second (of paused time), as Redis's does after its receive timeout.
struct Channels {
    requests: Mutex<mpsc::UnboundedReceiver<IncomingJob>>,
    responses: mpsc::UnboundedSender<(Value, JobResponse)>,
    stopping: AtomicBool,
}

impl ServerTransport for Channels {
    fn service_name(&self) -> &str {
        "svc"
    }

    fn receive(&self) -> BoxFuture<'_, Result<Option<ReceivedJob>, Error>> {
        Box::pin(async move {
            if self.stopping.load(Ordering::Relaxed) {
                let next = self.requests.lock().expect("lock").try_recv().ok();
                return next
                    .map(|job| Some(ReceivedJob::new(job, ReplyHandle::new(()))))
                    .ok_or(Error::Closed);
            }
            let next = std::future::poll_fn(|cx| self.requests.lock().expect("lock").poll_recv(cx));
            match tokio::time::timeout(Duration::from_secs(1), next).await {
                Ok(Some(job)) => Ok(Some(ReceivedJob::new(job, ReplyHandle::new(())))),
                Ok(None) => Err(Error::Closed),
                Err(_) => Ok(None),
            }
        })
    }

    fn respond(
        &self,
        _reply: ReplyHandle,
        request_id: Value,
        _meta: Arc<Map>,
        response: JobResponse,
    ) -> BoxFuture<'_, Result<(), Error>> {
        let _ = self.responses.send((request_id, response));
        Box::pin(std::future::ready(Ok(())))
    }

    fn stop_receiving(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }
}

/// What the hooks did, in order.
#[derive(Clone, Default)]
struct Journal(Arc<Mutex<Vec<String>>>);

impl Journal {
    fn note(&self, event: &str) {
        self.0.lock().expect("lock").push(event.to_owned());
    }

    fn events(&self) -> Vec<String> {
        self.0.lock().expect("lock").clone()
    }

    /// An async hook that notes `event`.
    fn hook(&self, event: &'static str) -> impl Fn() -> BoxFuture<'static, ()> + Send + Sync {
        let journal = self.clone();
        move || {
            let journal = journal.clone();
            Box::pin(async move { journal.note(event) })
        }
    }
}

#[derive(Deserialize)]
struct Number {
    number: i64,
}

#[derive(Serialize)]
struct Squared {
    square: i64,
}

fn job(number: i64) -> IncomingJob {
    let request = action("square", &json!({ "number": number })).expect("action");
    IncomingJob::new(
        number.into(),
        Map::new(),
        JobBody::Typed(JobRequest::new(vec![request])),
    )
}

/// Serves `server` on fresh channels; returns the request sender, the response receiver, the stop trigger and
/// the running serve loop.
#[allow(clippy::type_complexity)]
fn start(
    server: Server,
) -> (
    mpsc::UnboundedSender<IncomingJob>,
    mpsc::UnboundedReceiver<(Value, JobResponse)>,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<ServeOutcome>,
) {
    let (requests, incoming) = mpsc::unbounded_channel();
    let (outgoing, responses) = mpsc::unbounded_channel();
    let transport = Arc::new(Channels {
        requests: Mutex::new(incoming),
        responses: outgoing,
        stopping: AtomicBool::new(false),
    });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(serve(
        server,
        transport,
        async move {
            let _ = stopped.await;
        },
        Duration::from_secs(5),
    ));
    (requests, responses, stop, serving)
}

fn square_server(journal: &Journal) -> ServerBuilder {
    let noted = journal.clone();
    Server::builder("svc").action_fn("square", move |req: Number, _ctx: ActionContext| {
        let noted = noted.clone();
        async move {
            noted.note("action");
            Ok::<_, ActionError>(Squared {
                square: req.number * req.number,
            })
        }
    })
}

#[tokio::test(start_paused = true)]
async fn setup_runs_first_each_job_is_wrapped_idle_runs_when_quiet_and_teardown_last() {
    let journal = Journal::default();
    let server = square_server(&journal)
        .setup({
            let journal = journal.clone();
            move || {
                let journal = journal.clone();
                async move {
                    journal.note("setup");
                    Ok::<_, String>(())
                }
            }
        })
        .pre_request(journal.hook("pre_request"))
        .post_request(journal.hook("post_request"))
        .idle(journal.hook("idle"))
        .teardown(journal.hook("teardown"))
        .build()
        .expect("server");
    let (requests, mut responses, stop, serving) = start(server);
    requests.send(job(3)).expect("send");
    let (id, response) = responses.recv().await.expect("response");
    assert_eq!(id, Value::from(3));
    assert_eq!(response.actions[0].body["square"], Value::from(9));
    // Nothing more arrives: the receive timeout passes and the idle hook runs.
    let idle = async {
        while !journal.events().contains(&"idle".to_owned()) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), idle)
        .await
        .expect("the idle hook ran");
    stop.send(()).expect("stop");
    assert_eq!(serving.await.expect("serve"), ServeOutcome::Stopped);
    let events = journal.events();
    let busy: Vec<&str> = events
        .iter()
        .map(String::as_str)
        .filter(|e| *e != "idle")
        .collect();
    assert_eq!(
        busy,
        ["setup", "pre_request", "action", "post_request", "teardown"]
    );
    assert_eq!(events.last().map(String::as_str), Some("teardown"));
}

#[tokio::test(start_paused = true)]
async fn a_failing_setup_takes_no_request_and_reports_why() {
    let journal = Journal::default();
    let server = square_server(&journal)
        .setup(|| async { Err("the database is not there") })
        .teardown(journal.hook("teardown"))
        .build()
        .expect("server");
    assert_eq!(
        server.setup().await.expect_err("fails").to_string(),
        "setup failed: the database is not there"
    );
    let (requests, mut responses, _stop, serving) = start(server);
    requests.send(job(3)).expect("send");
    assert_eq!(serving.await.expect("serve"), ServeOutcome::SetupFailed);
    assert!(responses.try_recv().is_err(), "the request was not taken");
    assert!(journal.events().is_empty(), "{:?}", journal.events());
}

#[tokio::test(start_paused = true)]
async fn status_merges_async_and_sync_health_checks() {
    let server = Server::builder("svc")
        .health_check(|report| report.diagnostic("sync", true))
        .async_health_check(|| async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            let mut report = HealthReport::default();
            report.error("DB_DOWN", "The database does not answer");
            report.diagnostic("db_latency_ms", 1500);
            report
        })
        .build()
        .expect("server");
    let client = Client::builder()
        .service(LocalTransport::new(server))
        .build();
    let status = client
        .call_action("svc", "status", ())
        .await
        .expect("status");
    let health = &status.body["healthcheck"];
    assert_eq!(
        health["errors"],
        Value::Array(vec![Value::Array(vec![
            "DB_DOWN".into(),
            "The database does not answer".into()
        ])])
    );
    assert_eq!(health["diagnostics"]["sync"], Value::Bool(true));
    assert_eq!(health["diagnostics"]["db_latency_ms"], Value::from(1500));
}

/// Counts the actions that pass through the action middleware.
struct Counting(Arc<Mutex<Vec<String>>>);

#[async_trait]
impl ServerMiddleware for Counting {
    async fn action(
        &self,
        request: ActionRequest,
        ctx: &ActionContext,
        next: ActionNext<'_>,
    ) -> ActionResponse {
        self.0.lock().expect("lock").push(request.action.clone());
        next.run(request, ctx).await
    }
}

#[derive(Serialize)]
struct Fourth {
    fourth_power: i64,
    correlation_id: String,
}

#[tokio::test]
async fn call_local_action_runs_another_action_in_the_same_job_without_middleware() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let server = Server::builder("svc")
        .middleware(Counting(seen.clone()))
        .action_fn("square", |req: Number, ctx: ActionContext| async move {
            if req.number < 0 {
                return Err(
                    ActionError::new("NEGATIVE", "no negative numbers").with_field("number")
                );
            }
            assert_eq!(ctx.action_name(), "square");
            Ok(Squared {
                square: req.number * req.number,
            })
        })
        .action_fn("fourth", |req: Number, ctx: ActionContext| async move {
            let square = ctx
                .call_local_action("square", &json!({ "number": req.number }))
                .await?;
            let square = square["square"].as_i64().unwrap_or_default();
            Ok::<_, ActionError>(Fourth {
                fourth_power: square * square,
                correlation_id: ctx.context().correlation_id.clone(),
            })
        })
        .action_fn("missing", |_: Map, ctx: ActionContext| async move {
            ctx.call_local_action("nothing", ()).await
        })
        .action_fn("version", |_: Map, ctx: ActionContext| async move {
            ctx.call_local_action("status", &json!({"verbose": false}))
                .await
        })
        .build()
        .expect("server");
    let client = Client::builder()
        .service(LocalTransport::new(server))
        .build();
    let fourth = client
        .call_action("svc", "fourth", &json!({"number": 3}))
        .correlation_id("corr-1")
        .await
        .expect("fourth");
    assert_eq!(fourth.body["fourth_power"], Value::from(81));
    assert_eq!(fourth.body["correlation_id"], Value::from("corr-1"));
    assert_eq!(*seen.lock().expect("lock"), ["fourth"], "no middleware");

    let negative = client
        .call_action("svc", "fourth", &json!({"number": -3}))
        .await;
    rsoa_test::assert_field_errors(&negative, &[("NEGATIVE", "number")]);
    let missing = client.call_action("svc", "missing", ()).await;
    rsoa_test::assert_field_errors(&missing, &[("UNKNOWN", "action")]);
    let version = client
        .call_action("svc", "version", ())
        .await
        .expect("status");
    assert_eq!(version.body["version"], Value::from("unknown"));
}

#[derive(Serialize)]
struct Caller {
    correlation_id: String,
    calling_service: Option<String>,
}

#[tokio::test]
async fn job_middleware_gets_a_client_carrying_the_jobs_context() {
    let downstream = Server::builder("downstream")
        .action_fn("whoami", |_: Map, ctx: ActionContext| async move {
            Ok::<_, ActionError>(Caller {
                correlation_id: ctx.context().correlation_id.clone(),
                calling_service: ctx.context().calling_service.clone(),
            })
        })
        .build()
        .expect("downstream");
    let to_downstream = Client::builder()
        .service(LocalTransport::new(downstream))
        .build();
    let asked = Arc::new(Mutex::new(None));
    let noted = asked.clone();
    let server = Server::builder("svc")
        .client(to_downstream)
        .middleware(job_fn(move |job: JobRequest, next| {
            let noted = noted.clone();
            boxed(async move {
                let client = next.client(&job);
                let answer = client
                    .call_action("downstream", "whoami", ())
                    .await
                    .expect("whoami");
                *noted.lock().expect("lock") = Some(answer.body);
                next.run(job).await
            })
        }))
        .action_fn("noop", |_: Map, _ctx: ActionContext| async move {
            Ok::<_, ActionError>(Map::new())
        })
        .build()
        .expect("server");
    let client = Client::builder()
        .service(LocalTransport::new(server))
        .build();
    client
        .call_action("svc", "noop", ())
        .correlation_id("corr-2")
        .await
        .expect("noop");
    let answer = asked.lock().expect("lock").take().expect("asked");
    assert_eq!(answer["correlation_id"], Value::from("corr-2"));
    assert_eq!(answer["calling_service"], Value::from("svc"));
}
