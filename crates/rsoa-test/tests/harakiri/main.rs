//! Deadlines (PySOA's harakiri, cooperatively): a job past `harakiri_timeout_in_seconds` or its request's
//! `control.timeout` is cancelled and answered with `ACTION_TIMEOUT` or `JOB_TIMEOUT`, and its slot is freed.
//! Time is paused: Tokio moves the clock on whenever every task waits, so nothing here sleeps for real.

use std::time::Duration;

use rsoa_client::{action, Client};
use rsoa_protocol::{ErrorCode, JobRequest, JobResponse};
use rsoa_server::{boxed, job_fn, ActionContext, ActionError, Server, ServerSettings};
use rsoa_transport::{IncomingJob, JobBody};
use rsoa_transport_local::LocalTransport;
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Deserialize)]
struct Sleep {
    seconds: u64,
}

#[derive(Serialize)]
struct Slept {
    slept: u64,
}

fn settings(harakiri: u64, jobs: usize) -> ServerSettings {
    let mut settings = ServerSettings::default();
    settings.harakiri_timeout_in_seconds = harakiri;
    settings.max_concurrent_jobs = jobs;
    settings
}

fn sleeper(settings: ServerSettings) -> Server {
    Server::builder("sleepy")
        .settings(settings)
        .action_fn("sleep", |req: Sleep, _ctx: ActionContext| async move {
            tokio::time::sleep(Duration::from_secs(req.seconds)).await;
            Ok::<_, ActionError>(Slept { slept: req.seconds })
        })
        .build()
        .expect("server")
}

fn client(server: Server) -> Client {
    Client::builder()
        .timeout(Duration::from_secs(3600))
        .service(LocalTransport::new(server))
        .build()
}

fn sleep(seconds: u64) -> rsoa_protocol::ActionRequest {
    action("sleep", &json!({"seconds": seconds})).expect("action")
}

/// Runs a job on the server directly, as a transport would hand it over.
async fn handle(server: &Server, job: JobRequest) -> JobResponse {
    server
        .handle(IncomingJob::new(
            1.into(),
            rsoa_protocol::Map::new(),
            JobBody::Typed(job),
        ))
        .await
        .expect("answered")
}

#[tokio::test(start_paused = true)]
async fn an_action_past_the_harakiri_timeout_gets_action_timeout_and_the_job_stops() {
    let client = client(sleeper(settings(5, 4)));
    let started = tokio::time::Instant::now();
    let job = client
        .call_actions("sleepy", [sleep(1), sleep(60), sleep(1)])
        .continue_on_error(true)
        .raise_action_errors(false)
        .await
        .expect("job");
    assert_eq!(
        job.actions.len(),
        2,
        "the job stops at the interrupted action: {job:?}"
    );
    assert!(job.actions[0].errors.is_empty());
    let error = &job.actions[1].errors[0];
    assert_eq!(error.code, ErrorCode::ACTION_TIMEOUT);
    assert_eq!(
        error.message,
        "The action \"sleep\" ran for too long and had to be interrupted."
    );
    assert!(!error.is_caller_error);
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(5),
        "cancelled at the deadline"
    );
}

/// A second after the caller's own timeout, once it has stopped waiting, the job is cancelled (not at the same
/// instant, which would race the caller's timer and give it an error a PySOA server would not).
#[tokio::test(start_paused = true)]
async fn the_requests_own_timeout_sets_a_sooner_deadline() {
    let server = sleeper(settings(300, 4));
    let started = tokio::time::Instant::now();
    // What a client sends with a per-call timeout of two seconds.
    let mut job = JobRequest::new(vec![sleep(60)]);
    job.control.timeout = Some(2);
    let response = handle(&server, job).await;
    assert_eq!(
        response.actions[0].errors[0].code,
        ErrorCode::ACTION_TIMEOUT
    );
    assert_eq!(started.elapsed(), Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn no_deadline_by_default() {
    let client = client(sleeper(ServerSettings::default()));
    let response = client
        .call_action("sleepy", "sleep", &json!({"seconds": 1000}))
        .await
        .expect("a long action runs to its end");
    assert_eq!(response.body["slept"].as_i64(), Some(1000));
}

#[tokio::test(start_paused = true)]
async fn middleware_past_the_deadline_gets_job_timeout() {
    let server = Server::builder("stuck")
        .settings(settings(3, 4))
        .middleware(job_fn(|job, next| {
            boxed(async move {
                let response = next.run(job).await;
                // Stuck after the actions ran.
                std::future::pending::<()>().await;
                response
            })
        }))
        .action_fn("sleep", |req: Sleep, _ctx: ActionContext| async move {
            Ok::<_, ActionError>(Slept { slept: req.seconds })
        })
        .build()
        .expect("server");
    let job = JobRequest::new(vec![sleep(0)]);
    let response = handle(&server, job).await;
    assert_eq!(response.errors.len(), 1, "{response:?}");
    assert_eq!(response.errors[0].code, ErrorCode::JOB_TIMEOUT);
    assert!(response.actions.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_job_frees_its_slot() {
    // One slot: the second job can only run once the first, stuck one, has been cancelled.
    let client = client(sleeper(settings(5, 1)));
    let stuck = client
        .call_action("sleepy", "sleep", &json!({"seconds": 3600}))
        .raise_action_errors(false);
    let next = async {
        tokio::task::yield_now().await;
        client
            .call_action("sleepy", "sleep", &json!({"seconds": 1}))
            .await
    };
    let (stuck, next) = tokio::join!(stuck, next);
    assert_eq!(
        stuck.expect("answered").errors[0].code,
        ErrorCode::ACTION_TIMEOUT
    );
    assert_eq!(next.expect("ran after").body["slept"].as_i64(), Some(1));
}
