//! End-to-end tests over the in-process transport: every calling style, every job-processing rule, middleware
//! order on both sides, context chaining through two hops, switches, panics, timeouts and bad bodies.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rsoa_client::{
    action, CallError, CallOptions, Client, ClientMiddleware, Job, RequestNext, ResponseNext,
};
use rsoa_protocol::{
    ActionRequest, ActionResponse, Error as WireError, JobRequest, JobResponse, Map, Value,
};
use rsoa_server::{
    ActionContext, ActionError, ActionNext, JobNext, Server, ServerMiddleware, ServerSettings,
    SwitchedAction,
};
use rsoa_test::{
    assert_field_errors, assert_only_error_codes, assert_only_field_errors, TestServer,
};
use rsoa_transport::{ClientRequest, ClientResponse, IncomingJob, JobBody, PendingResponse};
use rsoa_transport_local::LocalTransport;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::Barrier;

/// A deadline for anything that waits: long enough never to fire on a healthy run, short enough to fail fast.
const DEADLINE: Duration = Duration::from_secs(10);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Square {
    number: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Empty {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Wait {
    millis: u64,
}

#[derive(Serialize)]
struct Out(serde_json::Value);

fn ok(value: serde_json::Value) -> Result<Out, ActionError> {
    Ok(Out(value))
}

/// A service exercising every rule; `barrier` lets tests prove that jobs run at the same time.
fn service(barrier: Arc<Barrier>) -> Server {
    Server::builder("svc")
        .action_fn("square", |req: Square, _ctx: ActionContext| async move {
            ok(json!({"square": req.number * req.number}))
        })
        .action_fn("fail", |_: Empty, _ctx: ActionContext| async move {
            Err::<Out, _>(
                ActionError::new("NOPE", "Asked to fail")
                    .and("ALSO", "A second error")
                    .with_field("x"),
            )
        })
        .action_fn("abort_job", |_: Empty, _ctx: ActionContext| async move {
            Err::<Out, _>(ActionError::job([WireError::new(
                "JOB_BROKEN",
                "The whole job failed",
            )]))
        })
        .action_fn("panic", |_: Empty, _ctx: ActionContext| async move {
            if std::hint::black_box(true) {
                panic!("kaboom");
            }
            ok(json!({}))
        })
        .action_fn("not_a_map", |_: Empty, _ctx: ActionContext| async move {
            Ok::<_, ActionError>(vec![1, 2])
        })
        .action_fn("wait", |req: Wait, _ctx: ActionContext| async move {
            tokio::time::sleep(Duration::from_millis(req.millis)).await;
            ok(json!({"waited": req.millis}))
        })
        .action_fn("rendezvous", move |_: Empty, _ctx: ActionContext| {
            let barrier = barrier.clone();
            async move {
                barrier.wait().await;
                ok(json!({"met": true}))
            }
        })
        .action_fn("context", |_: Empty, ctx: ActionContext| async move {
            let c = ctx.context();
            ok(json!({
                "correlation_id": c.correlation_id,
                "switches": ctx.switches().to_vec(),
                "caller": c.caller,
                "calling_service": c.calling_service,
                "locale": c.extra.get("locale").and_then(Value::as_str),
                "timeout": ctx.control().timeout,
            }))
        })
        .action_fn("bytes", |_: Empty, _ctx: ActionContext| async move {
            let mut body = Map::new();
            body.insert("raw", Value::Bytes(vec![0, 1, 2]));
            Ok::<_, ActionError>(Value::Map(body))
        })
        .build()
        .expect("valid server")
}

fn harness() -> TestServer {
    TestServer::new(service(Arc::new(Barrier::new(3))))
}

fn square(n: i64) -> ActionRequest {
    action("square", &json!({"number": n})).expect("a map body")
}

fn named(name: &str) -> ActionRequest {
    action(name, ()).expect("empty body")
}

fn squares(response: &JobResponse) -> Vec<Option<i64>> {
    response
        .actions
        .iter()
        .map(|a| a.body.get("square").and_then(Value::as_i64))
        .collect()
}

async fn within<T>(f: impl std::future::IntoFuture<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, f)
        .await
        .expect("finished before the deadline")
}

// ---------------------------------------------------------------------------------------------------------------
// Calling styles

#[tokio::test]
async fn call_action_returns_the_body() {
    let h = harness();
    let response = h
        .call_action("square", &json!({"number": 9}))
        .await
        .unwrap();
    assert_eq!(response.action, "square");
    assert_eq!(response.body.get("square"), Some(&Value::from(81)));
    assert!(response.errors.is_empty());
}

#[tokio::test]
async fn call_actions_runs_in_order_and_stops_at_the_first_error() {
    let h = harness();
    let job = h
        .call_actions([square(2), named("fail"), square(3)])
        .await
        .unwrap();
    assert_eq!(job.actions.len(), 2, "the job stops after the failure");
    assert_eq!(job.actions[0].body.get("square"), Some(&Value::from(4)));
    assert_eq!(job.actions[1].errors.len(), 2);
}

#[tokio::test]
async fn call_actions_with_continue_on_error_runs_everything() {
    let h = harness();
    let job = h
        .client()
        .call_actions("svc", [square(2), named("fail"), square(3)])
        .continue_on_error(true)
        .raise_action_errors(false)
        .await
        .unwrap();
    assert_eq!(squares(&job), [Some(4), None, Some(9)]);
}

#[tokio::test]
async fn call_actions_raises_only_the_failing_actions() {
    let h = harness();
    let err = h
        .client()
        .call_actions("svc", [square(2), named("fail"), square(3)])
        .continue_on_error(true)
        .await
        .unwrap_err();
    match err {
        CallError::Action { service, actions } => {
            assert_eq!(service, "svc");
            assert_eq!(actions.len(), 1);
            assert_eq!(actions[0].action, "fail");
            let codes: Vec<&str> = actions[0].errors.iter().map(|e| e.code.as_str()).collect();
            assert_eq!(codes, ["NOPE", "ALSO"]);
            assert_eq!(actions[0].errors[1].field.as_deref(), Some("x"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn call_actions_parallel_answers_in_order() {
    let h = harness();
    let responses = h
        .client()
        .call_actions_parallel("svc", (1..=6).map(square))
        .await
        .unwrap();
    let got: Vec<i64> = responses
        .iter()
        .map(|r| r.body.get("square").and_then(Value::as_i64).unwrap())
        .collect();
    assert_eq!(got, [1, 4, 9, 16, 25, 36]);
}

#[tokio::test]
async fn parallel_calls_really_run_at_the_same_time() {
    // Three actions wait on a barrier of three: run one after the other, the first would wait forever.
    let h = harness();
    let responses = within(h.client().call_actions_parallel(
        "svc",
        [
            named("rendezvous"),
            named("rendezvous"),
            named("rendezvous"),
        ],
    ))
    .await
    .unwrap();
    assert!(responses
        .iter()
        .all(|r| r.body.get("met") == Some(&Value::Bool(true))));
}

#[tokio::test]
async fn call_actions_parallel_each_reports_every_outcome() {
    let h = harness();
    let outcomes = h
        .client()
        .call_actions_parallel("svc", [square(2), named("fail"), named("nope")])
        .each()
        .await;
    assert!(outcomes[0].is_ok());
    assert!(matches!(&outcomes[1], Err(CallError::Action { .. })));
    assert_only_error_codes(&outcomes[2], &["UNKNOWN"]);
}

#[tokio::test]
async fn call_jobs_parallel_reaches_several_services() {
    let a = LocalTransport::new(service(Arc::new(Barrier::new(2))));
    let b = Server::builder("other")
        .action_fn("hello", |_: Empty, _ctx: ActionContext| async move {
            ok(json!({"hello": "world"}))
        })
        .build()
        .unwrap();
    let client = Client::builder()
        .service(a)
        .service(LocalTransport::new(b))
        .build();
    let jobs = vec![
        Job::new("svc", [square(5), square(6)]),
        Job::new("other", [named("hello")]),
        Job::new("svc", [named("rendezvous")]),
        Job::new("svc", [named("rendezvous")]),
    ];
    let responses = within(client.call_jobs_parallel(jobs)).await.unwrap();
    assert_eq!(squares(&responses[0]), [Some(25), Some(36)]);
    assert_eq!(
        responses[1].actions[0].body.get("hello"),
        Some(&Value::from("world"))
    );
    assert_eq!(responses.len(), 4);
}

#[tokio::test]
async fn send_request_and_get_all_responses() {
    let h = harness();
    let client = h.client();
    let first = client
        .send_request("svc", vec![square(3)], &CallOptions::new())
        .await
        .unwrap();
    let second = client
        .send_request("svc", vec![square(4)], &CallOptions::new())
        .await
        .unwrap();
    assert_eq!(second, first + 1, "request ids count up per service");
    let responses = client.get_all_responses("svc", None).await.unwrap();
    let got: Vec<(u64, Vec<Option<i64>>)> = responses
        .iter()
        .map(|(id, r)| (*id, squares(r.as_ref().unwrap())))
        .collect();
    assert_eq!(got, [(first, vec![Some(9)]), (second, vec![Some(16)])]);
    assert!(
        client
            .get_all_responses("svc", None)
            .await
            .unwrap()
            .is_empty(),
        "nothing is left outstanding"
    );
}

#[tokio::test]
async fn one_late_response_does_not_lose_the_others() {
    let h = harness();
    let client = h.client();
    let wait = vec![action("wait", &json!({"millis": 5_000})).unwrap()];
    let slow = client
        .send_request("svc", wait, &CallOptions::new())
        .await
        .unwrap();
    let quick = client
        .send_request("svc", vec![square(5)], &CallOptions::new())
        .await
        .unwrap();
    let outcomes = client
        .get_all_responses("svc", Some(Duration::from_millis(200)))
        .await
        .unwrap();
    assert_eq!(outcomes.len(), 2);
    assert_eq!(outcomes[0].0, slow);
    assert!(matches!(outcomes[0].1, Err(CallError::Timeout { .. })));
    assert_eq!(outcomes[1].0, quick);
    assert_eq!(squares(outcomes[1].1.as_ref().unwrap()), [Some(25)]);
}

#[tokio::test]
async fn outstanding_requests_belong_to_their_client() {
    let h = harness();
    let client = h.client();
    let mine = client
        .send_request("svc", vec![square(2)], &CallOptions::new())
        .await
        .unwrap();
    // A server job's chained client is a different client: it cannot collect this request.
    let mut context = rsoa_protocol::Context::default();
    context.correlation_id = "c".into();
    let chained = client.with_context(&context);
    assert!(chained
        .get_all_responses("svc", None)
        .await
        .unwrap()
        .is_empty());
    // A clone shares the list.
    let clone = client.clone();
    let outcomes = clone.get_all_responses("svc", None).await.unwrap();
    assert_eq!(
        outcomes.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        [mine]
    );
}

#[tokio::test]
async fn typed_calls_convert_the_body() {
    #[derive(Deserialize, Debug)]
    struct Squared {
        square: i64,
    }
    #[derive(Deserialize, Debug)]
    #[allow(dead_code)]
    struct Wrong {
        missing: String,
    }
    let h = harness();
    let squared: Squared = h
        .client()
        .call_action("svc", "square", &json!({"number": 6}))
        .typed()
        .await
        .unwrap();
    assert_eq!(squared.square, 36);
    let err = h
        .client()
        .call_action("svc", "square", &json!({"number": 6}))
        .typed::<Wrong>()
        .await
        .unwrap_err();
    assert!(matches!(err, CallError::InvalidResponse(_)), "{err}");
}

#[tokio::test]
async fn unknown_service_is_a_typed_error() {
    let h = harness();
    let err = h
        .client()
        .call_action("nowhere", "x", ())
        .await
        .unwrap_err();
    assert!(
        matches!(err, CallError::UnknownService { ref service } if service == "nowhere"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Job-processing rules

#[tokio::test]
async fn unknown_action_is_a_caller_error_on_field_action() {
    let h = harness();
    let err = h.call_action("nope", ()).await;
    assert_only_field_errors(&err, &[("UNKNOWN", "action")]);
    let errors = err
        .unwrap_err()
        .wire_errors()
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    assert_eq!(
        errors[0].message,
        "The action \"nope\" was not found on this server."
    );
    assert!(errors[0].is_caller_error);
}

#[tokio::test]
async fn request_validation_names_the_field() {
    let h = harness();
    assert_only_field_errors(
        &h.call_action("square", &json!({"number": "x"})).await,
        &[("INVALID", "number")],
    );
    assert_only_field_errors(
        &h.call_action("square", &json!({})).await,
        &[("MISSING", "number")],
    );
    let extra = h
        .call_action("square", &json!({"number": 1, "extra": 2}))
        .await;
    assert_only_error_codes(&extra, &["UNKNOWN"]);
    let errors: Vec<WireError> = extra
        .unwrap_err()
        .wire_errors()
        .into_iter()
        .cloned()
        .collect();
    assert_eq!(errors[0].message, "Extra keys present: extra");
    assert!(errors[0].is_caller_error);
}

#[tokio::test]
async fn response_validation_failure_is_a_server_error() {
    let h = harness();
    let outcome = h.call_action("not_a_map", ()).await;
    assert_only_error_codes(&outcome, &["SERVER_ERROR"]);
    let errors: Vec<WireError> = outcome
        .unwrap_err()
        .wire_errors()
        .into_iter()
        .cloned()
        .collect();
    assert!(!errors[0].is_caller_error);
}

#[tokio::test]
async fn a_job_error_from_an_action_discards_the_whole_job() {
    let h = harness();
    let job = h
        .call_actions([square(2), named("abort_job"), square(3)])
        .await
        .unwrap();
    assert!(job.actions.is_empty());
    assert_eq!(job.errors.len(), 1);
    assert_eq!(job.errors[0].code, "JOB_BROKEN");
    assert!(!job.errors[0].is_caller_error);
    let raised = h
        .client()
        .call_actions("svc", [named("abort_job")])
        .await
        .unwrap_err();
    assert!(matches!(raised, CallError::Job { .. }), "{raised}");
}

#[tokio::test]
async fn a_panic_becomes_a_server_error_and_the_server_keeps_serving() {
    let h = harness();
    let outcome = h.call_action("panic", ()).await;
    let errors: Vec<WireError> = outcome
        .unwrap_err()
        .wire_errors()
        .into_iter()
        .cloned()
        .collect();
    assert_eq!(errors[0].code, "SERVER_ERROR");
    assert_eq!(errors[0].message, "Internal server error: kaboom");
    let traceback = errors[0].traceback.as_deref().unwrap_or_default();
    assert!(
        traceback.contains("main.rs"),
        "the traceback names where it happened: {traceback}"
    );
    assert!(!errors[0].is_caller_error);
    assert_eq!(
        h.call_action("square", &json!({"number": 2}))
            .await
            .unwrap()
            .body
            .get("square"),
        Some(&Value::from(4))
    );
}

#[tokio::test]
async fn invalid_raw_jobs_get_pysoa_job_errors() {
    let server = service(Arc::new(Barrier::new(1)));
    let job: Value = [
        ("control", Value::Map(Map::new())),
        (
            "context",
            [("switches", Value::Array(vec![1.into()]))]
                .into_iter()
                .collect(),
        ),
        ("actions", Value::Array(vec![])),
        ("extra", Value::Null),
    ]
    .into_iter()
    .collect();
    let response = handle_job(&server, JobBody::Raw(job)).await.unwrap();
    let got: Vec<(&str, Option<&str>)> = response
        .errors
        .iter()
        .map(|e| (e.code.as_str(), e.field.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            ("MISSING", Some("control.continue_on_error")),
            ("MISSING", Some("context.correlation_id")),
            ("INVALID", Some("actions")),
            ("UNKNOWN", None),
        ]
    );
    assert!(response.actions.is_empty());
    assert!(
        response.context.is_empty(),
        "job-level failures have an empty context, as in PySOA"
    );
}

#[tokio::test]
async fn a_job_with_more_actions_than_the_limit_is_refused_whole_before_any_runs() {
    let ran = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = ran.clone();
    let mut settings = ServerSettings::default();
    settings.max_actions_per_job = 3;
    let server = Server::builder("svc")
        .settings(settings)
        .action_fn("tick", move |_: Empty, _ctx: ActionContext| {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move { ok(json!({})) }
        })
        .build()
        .unwrap();
    let tick = || {
        [
            ("action", Value::from("tick")),
            ("body", Value::Map(Map::new())),
        ]
        .into_iter()
        .collect::<Value>()
    };
    let control: Value = [("continue_on_error", Value::from(false))]
        .into_iter()
        .collect();
    // At the limit, every action runs; past it, as it came off the wire or built in process, none does.
    let at_limit = handle_job(&server, raw_job(control.clone(), vec![tick(); 3]))
        .await
        .unwrap();
    assert_eq!(at_limit.actions.len(), 3);
    assert!(at_limit.errors.is_empty(), "{:?}", at_limit.errors);
    let typed = JobRequest::new(
        (0..4)
            .map(|_| ActionRequest::new("tick", Map::new()))
            .collect(),
    );
    for body in [
        raw_job(control, vec![tick(); 100_000]),
        JobBody::Typed(typed),
    ] {
        let refused = handle_job(&server, body).await.unwrap();
        let errors: Vec<_> = refused
            .errors
            .iter()
            .map(|e| (e.code.as_str(), e.field.as_deref(), e.message.as_str()))
            .collect();
        assert_eq!(
            errors,
            [("INVALID", Some("actions"), "List is longer than 3")]
        );
        assert!(refused.actions.is_empty());
    }
    assert_eq!(ran.load(std::sync::atomic::Ordering::SeqCst), 3);
    // The limit is checked with the other settings.
    let mut zero = ServerSettings::default();
    zero.max_actions_per_job = 0;
    assert!(matches!(
        Server::builder("s").settings(zero).build(),
        Err(rsoa_server::Error::InvalidSettings {
            field: "max_actions_per_job",
            ..
        })
    ));
}

#[tokio::test]
async fn an_empty_typed_job_is_refused() {
    let server = service(Arc::new(Barrier::new(1)));
    let response = handle_job(&server, JobBody::Typed(JobRequest::new(vec![])))
        .await
        .unwrap();
    assert_eq!(response.errors[0].message, "List is shorter than 1");
}

#[tokio::test]
async fn the_response_context_echoes_the_correlation_id() {
    let server = service(Arc::new(Barrier::new(1)));
    let mut job = JobRequest::new(vec![square(2)]);
    job.context.correlation_id = "abc".to_owned();
    let response = handle_job(&server, JobBody::Typed(job)).await.unwrap();
    assert_eq!(
        response.context.get("correlation_id"),
        Some(&Value::from("abc"))
    );
    assert_eq!(response.context.len(), 1);
}

#[tokio::test]
async fn status_and_introspect_are_built_in() {
    let h = harness();
    let status = h.call_action("status", ()).await.unwrap();
    let keys: Vec<&str> = status.body.keys().filter_map(Value::as_str).collect();
    assert_eq!(
        keys,
        ["conformity", "pysoa", "python", "version", "healthcheck"]
    );
    let quiet = h
        .call_action("status", &json!({"verbose": false}))
        .await
        .unwrap();
    assert!(!quiet.body.contains_key("healthcheck"));
    assert_only_error_codes(
        &h.call_action("status", &json!({"bogus": 1})).await,
        &["UNKNOWN"],
    );

    let all = h.call_action("introspect", ()).await.unwrap();
    let names: Vec<&str> = all
        .body
        .get("action_names")
        .and_then(Value::as_array)
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(names.windows(2).all(|w| w[0] < w[1]), "sorted");
    assert!(
        names.contains(&"status") && names.contains(&"introspect") && names.contains(&"square")
    );
    let one = h
        .call_action("introspect", &json!({"action_name": "square"}))
        .await
        .unwrap();
    assert_eq!(
        one.body
            .keys()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>(),
        ["action_names", "actions"]
    );
    assert_only_field_errors(
        &h.call_action("introspect", &json!({"action_name": "missing"}))
            .await,
        &[("INVALID", "action_name")],
    );
}

#[tokio::test]
async fn introspect_keeps_pysoa_order_wording_and_builtin_schemas() {
    let h = harness();
    let all = h.call_action("introspect", ()).await.unwrap();
    let order: Vec<&str> = all.body["actions"]
        .as_map()
        .unwrap()
        .keys()
        .filter_map(Value::as_str)
        .collect();
    // PySOA's order: the built-ins it adds, then the service's actions as declared (`action_names` is sorted).
    assert_eq!(
        order[..4],
        ["introspect", "status", "square", "fail"],
        "{order:?}"
    );
    let status = h
        .call_action("introspect", &json!({"action_name": "status"}))
        .await
        .unwrap();
    let schema = &status.body["actions"]["status"]["request_schema"];
    assert_eq!(schema["type"], Value::from("dictionary"));
    assert_eq!(
        schema["contents"]["verbose"]["type"],
        Value::from("boolean")
    );
    let documented = status.body["actions"]["status"]["documentation"]
        .as_str()
        .unwrap();
    assert!(documented.starts_with("Returns version info for the service"));
    let introspect = h
        .call_action("introspect", &json!({"action_name": "introspect"}))
        .await
        .unwrap();
    let response_schema = &introspect.body["actions"]["introspect"]["response_schema"];
    assert_eq!(response_schema["type"], Value::from("dictionary"));
    // Conformity's `UnicodeString(min_length=1, allow_blank=False)`: the length first, then the blank check.
    for (name, message) in [
        ("", "String must have a length of at least 1"),
        ("  ", "String cannot be blank"),
    ] {
        let errors = h
            .call_action("introspect", &json!({"action_name": name}))
            .await
            .unwrap_err();
        assert!(
            format!("{errors:?}").contains(message),
            "{name:?}: {errors:?}"
        );
    }
}

/// `server`'s response to a job with this body, as a transport hands it over.
async fn handle_job(server: &Server, body: JobBody) -> Option<JobResponse> {
    server
        .handle(IncomingJob::new(Value::from(1), Map::new(), body))
        .await
}

/// A raw job whose control is `control` and whose actions are `actions`, with a valid context.
fn raw_job(control: Value, actions: Vec<Value>) -> JobBody {
    let context: Value = [
        ("switches", Value::Array(vec![])),
        ("correlation_id", Value::from("c")),
    ]
    .into_iter()
    .collect();
    JobBody::Raw(job_value(control, context, actions))
}

/// A job request as it comes off the wire.
fn job_value(control: Value, context: Value, actions: Vec<Value>) -> Value {
    [
        ("control", control),
        ("context", context),
        ("actions", Value::Array(actions)),
    ]
    .into_iter()
    .collect()
}

/// The control header PySOA's client sends.
fn default_control() -> Value {
    [("continue_on_error", Value::from(false))]
        .into_iter()
        .collect()
}

#[tokio::test]
async fn suppress_response_is_read_from_the_raw_control_even_when_the_job_is_invalid() {
    let server = service(Arc::new(Barrier::new(1)));
    let control = |suppress: Value| -> Value {
        [
            ("continue_on_error", Value::from(false)),
            ("suppress_response", suppress),
        ]
        .into_iter()
        .collect()
    };
    // PySOA tests the header's Python truth value before it answers, valid job or not.
    for (suppress, answered) in [
        (Value::from(true), false),
        (Value::from(1), false),
        (Value::from("yes"), false),
        (Value::Array(vec![Value::Null]), false),
        (Value::from(false), true),
        (Value::from(0), true),
        (Value::from(""), true),
        (Value::Null, true),
    ] {
        let response = handle_job(&server, raw_job(control(suppress.clone()), vec![])).await;
        assert_eq!(
            response.is_some(),
            answered,
            "suppress_response {suppress:?}"
        );
    }
    // No control header at all: answered.
    let response = handle_job(&server, raw_job(Value::Null, vec![])).await;
    assert!(response.is_some());
}

#[tokio::test]
async fn a_wrong_text_field_is_not_a_unicode_string() {
    let server = service(Arc::new(Barrier::new(1)));
    let mut context: Map = Map::new();
    context.insert("switches", Value::Array(vec![]));
    context.insert("correlation_id", Value::from(5));
    let body = job_value(default_control(), Value::Map(context), vec![]);
    let response = handle_job(&server, JobBody::Raw(body)).await.unwrap();
    assert_eq!(response.errors[0].message, "Not a unicode string");
}

#[tokio::test]
async fn health_checks_report_through_status() {
    let server = Server::builder("healthy")
        .version("2.0.0")
        .build_info("build-7")
        .health_check(|report| {
            report.warning("SLOW_DISK", "The disk is slow");
            report.diagnostic("disk_ms", 40);
        })
        .build()
        .unwrap();
    let status = TestServer::new(server)
        .call_action("status", ())
        .await
        .unwrap();
    assert_eq!(status.body.get("version"), Some(&Value::from("2.0.0")));
    assert_eq!(status.body.get("build"), Some(&Value::from("build-7")));
    let health = status.body.get("healthcheck").unwrap();
    assert_eq!(health["warnings"][0][0].as_str(), Some("SLOW_DISK"));
    assert_eq!(health["diagnostics"]["disk_ms"].as_i64(), Some(40));
}

#[test]
fn building_refuses_bad_configuration() {
    let dup = Server::builder("s")
        .action_fn(
            "a",
            |_: Empty, _ctx: ActionContext| async move { ok(json!({})) },
        )
        .action_fn(
            "a",
            |_: Empty, _ctx: ActionContext| async move { ok(json!({})) },
        )
        .build();
    assert!(matches!(dup, Err(rsoa_server::Error::DuplicateAction(ref n)) if n == "a"));
    let bad_name = Server::builder("s")
        .action_fn("a b", |_: Empty, _ctx: ActionContext| async move {
            ok(json!({}))
        })
        .build();
    assert!(matches!(
        bad_name,
        Err(rsoa_server::Error::InvalidActionName(_))
    ));
    let mut settings = ServerSettings::default();
    settings.max_concurrent_jobs = 0;
    assert!(matches!(
        Server::builder("s").settings(settings).build(),
        Err(rsoa_server::Error::InvalidSettings { .. })
    ));
    assert!(matches!(
        Server::builder("").build(),
        Err(rsoa_server::Error::InvalidServiceName(_))
    ));
}

#[tokio::test]
async fn the_concurrency_limit_holds_jobs_back() {
    // Pairs of jobs meet at a barrier of two, so two jobs always run at once; with a limit of two, never more.
    use std::sync::atomic::{AtomicUsize, Ordering};
    let barrier = Arc::new(Barrier::new(2));
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let mut settings = ServerSettings::default();
    settings.max_concurrent_jobs = 2;
    let (r, p) = (running.clone(), peak.clone());
    let server = Server::builder("svc")
        .settings(settings)
        .action_fn("rendezvous", move |_: Empty, _ctx: ActionContext| {
            let (barrier, running, peak) = (barrier.clone(), r.clone(), p.clone());
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                barrier.wait().await;
                running.fetch_sub(1, Ordering::SeqCst);
                ok(json!({}))
            }
        })
        .build()
        .unwrap();
    let client = Client::builder()
        .service(LocalTransport::new(server))
        .build();
    let results =
        within(client.call_actions_parallel("svc", (0..8).map(|_| named("rendezvous")))).await;
    assert_eq!(results.unwrap().len(), 8);
    assert_eq!(peak.load(Ordering::SeqCst), 2);
}

// ---------------------------------------------------------------------------------------------------------------
// Middleware

type Log = Arc<Mutex<Vec<String>>>;

struct Recorder {
    name: &'static str,
    log: Log,
}

impl Recorder {
    fn push(&self, what: String) {
        self.log.lock().unwrap().push(what);
    }
}

#[async_trait]
impl ServerMiddleware for Recorder {
    async fn job(&self, job: JobRequest, next: JobNext<'_>) -> JobResponse {
        self.push(format!("{} job in", self.name));
        let response = next.run(job).await;
        self.push(format!("{} job out", self.name));
        response
    }

    async fn action(
        &self,
        request: ActionRequest,
        ctx: &ActionContext,
        next: ActionNext<'_>,
    ) -> ActionResponse {
        self.push(format!("{} action {} in", self.name, ctx.action_name()));
        let response = next.run(request, ctx).await;
        self.push(format!("{} action {} out", self.name, ctx.action_name()));
        response
    }
}

#[async_trait]
impl ClientMiddleware for Recorder {
    async fn request(
        &self,
        mut request: ClientRequest,
        next: RequestNext<'_>,
    ) -> Result<Option<PendingResponse>, CallError> {
        self.push(format!("{} request", self.name));
        request.meta.insert(format!("seen_by_{}", self.name), true);
        next.run(request).await
    }

    async fn response(
        &self,
        response: ClientResponse,
        next: ResponseNext<'_>,
    ) -> Result<ClientResponse, CallError> {
        let response = next.run(response).await?;
        self.push(format!("{} response", self.name));
        Ok(response)
    }
}

#[tokio::test]
async fn server_middleware_is_an_onion_first_listed_outermost() {
    let log: Log = Arc::default();
    let server = Server::builder("svc")
        .middleware(Recorder {
            name: "outer",
            log: log.clone(),
        })
        .middleware(Recorder {
            name: "inner",
            log: log.clone(),
        })
        .action_fn("square", |req: Square, _ctx: ActionContext| async move {
            ok(json!({"square": req.number * req.number}))
        })
        .build()
        .unwrap();
    TestServer::new(server)
        .call_actions([square(1), square(2)])
        .await
        .unwrap();
    assert_eq!(
        *log.lock().unwrap(),
        [
            "outer job in",
            "inner job in",
            "outer action square in",
            "inner action square in",
            "inner action square out",
            "outer action square out",
            "outer action square in",
            "inner action square in",
            "inner action square out",
            "outer action square out",
            "inner job out",
            "outer job out",
        ]
    );
}

#[tokio::test]
async fn client_middleware_is_an_onion_and_meta_reaches_the_server() {
    let log: Log = Arc::default();
    let server = Server::builder("svc")
        .action_fn("meta", |_: Empty, ctx: ActionContext| async move {
            let seen: Vec<String> = ctx
                .meta()
                .keys()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect();
            ok(json!({"meta": seen}))
        })
        .build()
        .unwrap();
    let client = Client::builder()
        .middleware(Recorder {
            name: "outer",
            log: log.clone(),
        })
        .middleware(Recorder {
            name: "inner",
            log: log.clone(),
        })
        .service(LocalTransport::new(server).round_trip(true))
        .build();
    let response = client.call_action("svc", "meta", ()).await.unwrap();
    assert_eq!(
        *log.lock().unwrap(),
        [
            "outer request",
            "inner request",
            "inner response",
            "outer response"
        ]
    );
    let meta: Vec<&str> = response.body["meta"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(meta, ["client_version", "seen_by_outer", "seen_by_inner"]);
}

#[tokio::test]
async fn a_panicking_job_middleware_is_a_job_error() {
    struct Explode;
    #[async_trait]
    impl ServerMiddleware for Explode {
        async fn job(&self, _job: JobRequest, _next: JobNext<'_>) -> JobResponse {
            panic!("middleware exploded");
        }
    }
    let server = Server::builder("svc").middleware(Explode).build().unwrap();
    let job = TestServer::new(server)
        .call_actions([named("status")])
        .await
        .unwrap();
    assert_eq!(job.errors[0].code, "SERVER_ERROR");
    assert_eq!(
        job.errors[0].message,
        "Internal server error: middleware exploded"
    );
}

#[tokio::test]
async fn closure_middleware_adapters() {
    let server = Server::builder("svc")
        .middleware(rsoa_server::action_response_fn(|ctx, mut response| {
            response.body.insert("via", ctx.action_name().to_owned());
            response
        }))
        .middleware(rsoa_server::job_fn(|mut job, next| {
            rsoa_server::boxed(async move {
                job.context.extra.insert("added_by", "job_fn");
                next.run(job).await
            })
        }))
        .action_fn("added", |_: Empty, ctx: ActionContext| async move {
            ok(json!({"added_by": ctx.context().extra.get("added_by").and_then(Value::as_str)}))
        })
        .build()
        .unwrap();
    let client = Client::builder()
        .middleware(rsoa_client::request_fn(|mut request| {
            request.job.context.extra.insert("from_client", 1);
            Ok(request)
        }))
        .middleware(rsoa_client::response_fn(|mut response| {
            response.job.context.insert("checked", true);
            Ok(response)
        }))
        .service(LocalTransport::new(server))
        .build();
    let response = client.call_action("svc", "added", ()).await.unwrap();
    assert_eq!(response.body.get("added_by"), Some(&Value::from("job_fn")));
    assert_eq!(response.body.get("via"), Some(&Value::from("added")));
}

// ---------------------------------------------------------------------------------------------------------------
// Context, switches and chaining

#[tokio::test]
async fn context_chains_through_two_hops() {
    // client -> front -> middle -> back: back sees the original correlation id, switches and custom keys, and
    // the service that called it.
    let back = Server::builder("back")
        .action_fn("context", |_: Empty, ctx: ActionContext| async move {
            let c = ctx.context();
            ok(json!({
                "correlation_id": c.correlation_id,
                "switches": ctx.switches().to_vec(),
                "calling_service": c.calling_service,
                "locale": c.extra.get("locale").and_then(Value::as_str),
                "caller": c.caller,
            }))
        })
        .build()
        .unwrap();
    let relay = |name: &str, next_service: &'static str, client: Client| {
        Server::builder(name)
            .client(client)
            .action_fn("relay", move |_: Empty, ctx: ActionContext| async move {
                let action = if next_service == "back" {
                    "context"
                } else {
                    "relay"
                };
                let response = ctx.client().call_action(next_service, action, ()).await?;
                Ok::<_, ActionError>(Value::Map(response.body))
            })
            .build()
            .unwrap()
    };
    let to_back = Client::builder()
        .service(LocalTransport::new(back).round_trip(true))
        .build();
    let middle = relay("middle", "back", to_back);
    let to_middle = Client::builder()
        .service(LocalTransport::new(middle).round_trip(true))
        .build();
    let front = relay("front", "middle", to_middle);
    let client = Client::builder()
        .caller("tests")
        .service(LocalTransport::new(front).round_trip(true))
        .build();

    let response = client
        .call_action("front", "relay", ())
        .correlation_id("corr-42")
        .switch(3)
        .switches([9, 3])
        .context("locale", "fr_FR")
        .await
        .unwrap();
    let body = &response.body;
    assert_eq!(body.get("correlation_id"), Some(&Value::from("corr-42")));
    assert_eq!(
        body.get("switches"),
        Some(&Value::Array(vec![3.into(), 9.into()]))
    );
    assert_eq!(body.get("calling_service"), Some(&Value::from("middle")));
    assert_eq!(body.get("locale"), Some(&Value::from("fr_FR")));
    assert_eq!(body.get("caller"), Some(&Value::from("tests")));
}

#[tokio::test]
async fn client_switches_and_context_switches_are_united_without_consuming_them() {
    let h = harness();
    let client = Client::builder()
        .switch(1)
        .service(LocalTransport::new(service(Arc::new(Barrier::new(1)))))
        .build();
    let mut options = CallOptions::new();
    options
        .context
        .insert("switches", Value::Array(vec![5.into(), 1.into()]));
    options.switches.insert(2);
    // The same options serve several parallel jobs: each one gets the switches (PySOA gave them to the first).
    let responses = client
        .call_actions_parallel("svc", [named("context"), named("context")])
        .options(options.clone())
        .await
        .unwrap();
    for response in &responses {
        assert_eq!(
            response.body.get("switches"),
            Some(&Value::Array(vec![1.into(), 2.into(), 5.into()]))
        );
    }
    assert_eq!(
        options.context.get("switches"),
        Some(&Value::Array(vec![5.into(), 1.into()])),
        "left untouched"
    );
    drop(h);
}

#[tokio::test]
async fn switched_actions_choose_by_switch_and_zero_works() {
    let pick = |label: &'static str| {
        rsoa_server::action_fn(move |_: Empty, _ctx: ActionContext| async move {
            ok(json!({"picked": label}))
        })
    };
    let server = Server::builder("svc")
        .raw_action(
            "pick",
            SwitchedAction::new()
                .case(0, pick("zero"))
                .case(5, pick("five"))
                .default_action(pick("default")),
        )
        .build()
        .unwrap();
    let h = TestServer::new(server);
    let picked = |r: ActionResponse| {
        r.body
            .get("picked")
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let client = h.client();
    assert_eq!(
        picked(client.call_action("svc", "pick", ()).await.unwrap()).as_deref(),
        Some("default")
    );
    assert_eq!(
        picked(
            client
                .call_action("svc", "pick", ())
                .switch(5)
                .await
                .unwrap()
        )
        .as_deref(),
        Some("five")
    );
    assert_eq!(
        picked(
            client
                .call_action("svc", "pick", ())
                .switch(0)
                .switch(5)
                .await
                .unwrap()
        )
        .as_deref(),
        Some("zero")
    );
    let introspect = client
        .call_action("svc", "introspect", &json!({"action_name": "pick"}))
        .await
        .unwrap();
    let names: Vec<&str> = introspect.body["action_names"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(names, ["pick[DEFAULT]", "pick[switch:0]", "pick[switch:5]"]);
}

#[tokio::test]
async fn the_call_timeout_reaches_the_server_as_control_timeout() {
    let h = harness();
    let response = h
        .client()
        .call_action("svc", "context", ())
        .timeout(Duration::from_millis(2500))
        .await
        .unwrap();
    assert_eq!(
        response.body.get("timeout"),
        Some(&Value::from(3)),
        "whole seconds, rounded up"
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Timeouts, suppressed responses, bad bodies

#[tokio::test]
async fn a_timed_out_call_never_hands_its_late_response_to_the_next_call() {
    let h = harness();
    let client = h.client();
    let err = client
        .call_action("svc", "wait", &json!({"millis": 5_000}))
        .timeout(Duration::from_millis(50))
        .await;
    assert!(matches!(err, Err(CallError::Timeout { .. })), "{err:?}");
    // The next call on the same client gets its own answer.
    let response = client
        .call_action("svc", "square", &json!({"number": 4}))
        .await
        .unwrap();
    assert_eq!(response.body.get("square"), Some(&Value::from(16)));
}

#[tokio::test]
async fn a_spawned_job_survives_its_callers_timeout() {
    // With spawn_jobs, a job keeps running after its caller stops waiting, as on a real server.
    let finished = Arc::new(tokio::sync::Notify::new());
    let signal = finished.clone();
    let server = Server::builder("svc")
        .action_fn("slow", move |_: Empty, _ctx: ActionContext| {
            let signal = signal.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                signal.notify_one();
                ok(json!({}))
            }
        })
        .build()
        .unwrap();
    let client = Client::builder()
        .service(LocalTransport::new(server).spawn_jobs(true))
        .build();
    let err = client
        .call_action("svc", "slow", ())
        .timeout(Duration::from_millis(10))
        .await
        .unwrap_err();
    assert!(matches!(err, CallError::Timeout { .. }), "{err}");
    within(finished.notified()).await;
}

#[tokio::test]
async fn suppress_response_runs_the_job_and_leaves_nothing_behind() {
    let counter = Arc::new(Mutex::new(0));
    let seen = counter.clone();
    let server = Server::builder("svc")
        .action_fn("count", move |_: Empty, _ctx: ActionContext| {
            let seen = seen.clone();
            async move {
                *seen.lock().unwrap() += 1;
                ok(json!({}))
            }
        })
        .build()
        .unwrap();
    let client = Client::builder()
        .service(LocalTransport::new(server))
        .build();
    client
        .call_action("svc", "count", ())
        .suppress_response()
        .await
        .unwrap();
    assert_eq!(*counter.lock().unwrap(), 1, "the job ran");
    // PySOA's client would now wait for the suppressed response and time out; rsoa's does not.
    client
        .call_action("svc", "count", ())
        .timeout(Duration::from_secs(5))
        .await
        .unwrap();
    let mut options = CallOptions::new();
    options.suppress_response = true;
    client
        .send_request("svc", vec![named("count")], &options)
        .await
        .unwrap();
    assert!(client
        .get_all_responses("svc", Some(Duration::from_millis(100)))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(*counter.lock().unwrap(), 3);
}

#[tokio::test]
async fn a_body_that_is_not_a_map_is_refused_before_sending() {
    let h = harness();
    let err = h
        .client()
        .call_action("svc", "square", Value::from(5))
        .await
        .unwrap_err();
    assert!(matches!(err, CallError::InvalidRequest(_)), "{err}");
}

#[tokio::test]
async fn a_response_the_wire_cannot_carry_becomes_response_not_serializable() {
    // JSON has no bytes: through a JSON round trip the server's answer is replaced, as PySOA replaces it.
    let server = service(Arc::new(Barrier::new(1)));
    let client = Client::builder()
        .service(LocalTransport::new(server).round_trip_with(rsoa_codec::JsonSerializer::default()))
        .build();
    let err = client.call_action("svc", "bytes", ()).await.unwrap_err();
    match err {
        CallError::Job { errors, .. } => assert_eq!(errors[0].code, "RESPONSE_NOT_SERIALIZABLE"),
        other => panic!("{other}"),
    }
    // Without the round trip, bytes pass through untouched.
    let plain = Client::builder()
        .service(LocalTransport::new(service(Arc::new(Barrier::new(1)))))
        .build();
    let response = plain.call_action("svc", "bytes", ()).await.unwrap();
    assert_eq!(response.body.get("raw"), Some(&Value::Bytes(vec![0, 1, 2])));
}

#[tokio::test]
async fn field_error_helpers() {
    let h = harness();
    let outcome = h.call_action("fail", ()).await;
    assert_field_errors(&outcome, &[("ALSO", "x")]);
    assert_only_error_codes(&outcome, &["ALSO", "NOPE"]);
}

// ---------------------------------------------------------------------------------------------------------------
// Stubs

#[tokio::test]
async fn a_stub_service_answers_and_records() {
    use rsoa_test::{StubResponse, StubTransport};
    let mut users = StubTransport::new("users");
    let get = users.stub(
        "get_user",
        StubResponse::from_fn(|body| {
            let id = body.get("id").and_then(Value::as_i64).unwrap_or(0);
            Ok([
                ("id", Value::from(id)),
                ("name", Value::from(format!("user {id}"))),
            ]
            .into_iter()
            .collect())
        }),
    );
    let gone = users.stub(
        "delete_user",
        StubResponse::Errors(vec![WireError::new("NOT_ALLOWED", "No")]),
    );
    let client = Client::builder().service(users).build();
    let response = client
        .call_action("users", "get_user", &json!({"id": 7}))
        .await
        .unwrap();
    assert_eq!(response.body.get("name"), Some(&Value::from("user 7")));
    assert_only_error_codes(
        &client.call_action("users", "delete_user", ()).await,
        &["NOT_ALLOWED"],
    );
    assert_only_error_codes(
        &client.call_action("users", "other", ()).await,
        &["UNKNOWN"],
    );
    assert_eq!(
        get.call_bodies(),
        vec![[("id", Value::from(7))].into_iter().collect::<Map>()]
    );
    assert_eq!(gone.call_count(), 1);
}

#[tokio::test]
async fn stubbing_one_action_of_a_real_service_merges_in_order() {
    use rsoa_test::{StubResponse, StubTransport};
    let real = LocalTransport::new(service(Arc::new(Barrier::new(1))));
    let mut stubbed = StubTransport::wrap(real);
    let fake = stubbed.stub(
        "fake",
        StubResponse::Body([("fake", true)].into_iter().collect()),
    );
    let fail = stubbed.stub(
        "fake_fail",
        StubResponse::Errors(vec![WireError::new("STUB_FAIL", "stubbed failure")]),
    );
    let client = Client::builder().service(stubbed).build();

    let job = client
        .call_actions("svc", [square(2), named("fake"), square(3)])
        .await
        .unwrap();
    assert_eq!(
        job.actions
            .iter()
            .map(|a| a.action.as_str())
            .collect::<Vec<_>>(),
        ["square", "fake", "square"]
    );
    assert_eq!(squares(&job), [Some(4), None, Some(9)]);
    assert_eq!(fake.call_count(), 1);

    // A stubbed failure stops the job: the real action after it is never sent.
    let job = client
        .call_actions("svc", [square(2), named("fake_fail"), square(3)])
        .raise_action_errors(false)
        .await
        .unwrap();
    assert_eq!(job.actions.len(), 2);
    assert_eq!(job.actions[1].errors[0].code, "STUB_FAIL");
    assert_eq!(fail.call_count(), 1);
}

// ---------------------------------------------------------------------------------------------------------------
// The blocking facade

#[test]
fn the_blocking_client_calls_from_synchronous_code() {
    use rsoa_client::blocking::BlockingClient;
    let client = Client::builder()
        .service(LocalTransport::new(service(Arc::new(Barrier::new(1)))).round_trip(true))
        .build();
    let blocking = BlockingClient::new(client).unwrap();
    let response = blocking
        .call_action("svc", "square", &json!({"number": 12}))
        .unwrap();
    assert_eq!(response.body.get("square"), Some(&Value::from(144)));
    let job = blocking
        .call_actions("svc", [square(1), square(2)])
        .unwrap();
    assert_eq!(squares(&job), [Some(1), Some(4)]);
    let many = blocking
        .call_actions_parallel("svc", [square(3), square(4)])
        .unwrap();
    assert_eq!(many.len(), 2);
    let with_options = blocking
        .run(
            blocking
                .client()
                .call_action("svc", "context", ())
                .switch(4),
        )
        .unwrap();
    assert_eq!(
        with_options.body.get("switches"),
        Some(&Value::Array(vec![4.into()]))
    );
}

#[tokio::test]
async fn the_blocking_client_refuses_to_block_inside_a_runtime() {
    use rsoa_client::blocking::BlockingClient;
    let blocking =
        tokio::task::spawn_blocking(|| BlockingClient::new(Client::builder().build()).unwrap())
            .await
            .unwrap();
    let err = blocking.call_action("svc", "square", ()).unwrap_err();
    assert!(matches!(err, CallError::BlockingInAsync), "{err}");
    // Dropping a runtime inside another is not allowed either; hand it back to a blocking thread.
    tokio::task::spawn_blocking(move || drop(blocking))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_failed_downstream_call_is_a_server_error_with_a_traceback() {
    let server = Server::builder("caller")
        .action_fn("relay", |_: Empty, ctx: ActionContext| async move {
            let response = ctx.client().call_action("nowhere", "square", ()).await?;
            Ok::<_, ActionError>(Value::Map(response.body))
        })
        .build()
        .unwrap();
    let h = TestServer::new(server);
    let err = h.call_action("relay", ()).await.unwrap_err();
    assert!(matches!(err, CallError::Action { .. }), "{err:?}");
    let error = err.wire_errors()[0];
    assert_eq!(error.code.as_str(), "SERVER_ERROR");
    assert!(
        error.message.starts_with("Internal server error: "),
        "{error:?}"
    );
    let traceback = error.traceback.as_deref().expect("a traceback");
    // Where the `?` was, in this file, and what failed.
    assert!(traceback.contains("local/main.rs"), "{traceback}");
    assert!(traceback.contains("CallError: "), "{traceback}");
}

#[tokio::test]
async fn switches_beyond_i64_are_accepted_and_carried_onwards() {
    // PySOA accepts any integer as a switch; MessagePack carries up to 2^64-1.
    let huge = rsoa_protocol::Int::from(u64::MAX);
    let downstream = Server::builder("downstream")
        .action_fn("switches", |_: Empty, ctx: ActionContext| async move {
            ok(json!({"switches": ctx.switches().to_vec()}))
        })
        .build()
        .unwrap();
    let client = Client::builder()
        .service(LocalTransport::new(downstream))
        .build();
    let server = Server::builder("upstream")
        .client(client)
        .action_fn("relay", |_: Empty, ctx: ActionContext| async move {
            let response = ctx
                .client()
                .call_action("downstream", "switches", ())
                .await?;
            Ok::<_, ActionError>(Value::Map(response.body))
        })
        .build()
        .unwrap();
    let mut context = Map::new();
    context.insert("switches", Value::Array(vec![huge.into(), 3.into()]));
    context.insert("correlation_id", "c");
    let relay: Value = [("action", Value::from("relay"))].into_iter().collect();
    let body = job_value(default_control(), Value::Map(context), vec![relay]);
    let response = handle_job(&server, JobBody::Raw(body)).await.unwrap();
    assert!(response.errors.is_empty(), "{:?}", response.errors);
    assert_eq!(
        response.actions[0].body["switches"],
        Value::Array(vec![3.into(), huge.into()])
    );
}

/// Halves a number, and promises an integer back (which it does not keep for odd numbers).
struct Halve;

/// A number to halve.
// Through the re-export, without a dependency on schemars of this crate's own.
#[derive(Deserialize, rsoa_server::JsonSchema)]
#[schemars(crate = "rsoa_server::schemars")]
#[serde(deny_unknown_fields)]
struct HalveRequest {
    #[schemars(range(min = 0))]
    number: i64,
}

#[derive(Serialize, rsoa_server::JsonSchema)]
#[schemars(crate = "rsoa_server::schemars")]
struct Halved {
    half: serde_json::Value,
}

impl rsoa_server::Action for Halve {
    type Request = HalveRequest;
    type Response = Halved;

    fn request_schema(&self) -> Option<Value> {
        Some(rsoa_server::conformity::describe::<HalveRequest>())
    }

    fn response_schema(&self) -> Option<Value> {
        let mut schema = rsoa_server::conformity::describe::<Halved>();
        // Promise an integer, as a hand-written Conformity schema would.
        let contents = schema.as_map_mut().unwrap().get_mut("contents").unwrap();
        contents
            .as_map_mut()
            .unwrap()
            .insert("half", json_to_value(json!({"type": "integer"})));
        Some(schema)
    }

    async fn run(&self, req: HalveRequest, _ctx: ActionContext) -> Result<Halved, ActionError> {
        let half = if req.number % 2 == 0 {
            json!(req.number / 2)
        } else {
            json!(req.number as f64 / 2.0)
        };
        Ok(Halved { half })
    }
}

fn json_to_value(json: serde_json::Value) -> Value {
    rsoa_protocol::to_value(&json).unwrap()
}

#[tokio::test]
async fn an_actions_schemas_check_its_request_and_its_response_as_pysoa_does() {
    let h = TestServer::new(
        Server::builder("halver")
            .action("halve", Halve)
            .build()
            .unwrap(),
    );
    let ok = h.call_action("halve", &json!({"number": 8})).await.unwrap();
    assert_eq!(ok.body["half"].as_i64(), Some(4));
    // Every request error at once, in Conformity's words.
    let err = h
        .call_action("halve", &json!({"number": -1, "b": 1, "a": 2}))
        .await
        .unwrap_err();
    let got: Vec<(&str, &str)> = err
        .wire_errors()
        .iter()
        .map(|e| (e.code.as_str(), e.message.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("INVALID", "Value not >= 0"),
            ("UNKNOWN", "Extra keys present: a, b")
        ]
    );
    // A response that breaks the promise is the server's error.
    let err = h
        .call_action("halve", &json!({"number": 3}))
        .await
        .unwrap_err();
    let error = err.wire_errors()[0];
    assert_eq!(error.code.as_str(), "SERVER_ERROR");
    assert_eq!(
        error.message,
        "Internal server error: halve had an invalid response:\n\thalf INVALID: Not an integer"
    );
    // introspect reports both schemas.
    let described = h
        .call_action("introspect", &json!({"action_name": "halve"}))
        .await
        .unwrap();
    let halve = &described.body["actions"]["halve"];
    assert_eq!(
        halve["request_schema"]["contents"]["number"]["gte"].as_i64(),
        Some(0)
    );
    assert_eq!(
        halve["response_schema"]["contents"]["half"]["type"].as_str(),
        Some("integer")
    );
}
