//! Test doubles for rsoa services and their callers.
//!
//! - [`TestServer`]: an in-process harness that runs your real [`Server`] behind the local transport (through
//!   MessagePack and back by default, so values that would not survive the wire fail the test), with a client
//!   ready to call it.
//! - Assertions on a call's outcome, like PySOA's `assertActionRunsWith…` family: [`assert_error_codes`],
//!   [`assert_only_error_codes`], [`assert_field_errors`], [`assert_only_field_errors`].
//! - [`StubTransport`]: a fake service, or a real one with some actions stubbed out (PySOA's `stub_action`), which
//!   records every request body it answers.
//! - With the `otel` feature, [`trace::RecordedSpans`]: the OpenTelemetry spans a test makes, in memory, to assert
//!   that a trace crosses services.
//!
//! ```
//! use rsoa_server::{ActionContext, ActionError, Server};
//! use rsoa_test::{assert_field_errors, TestServer};
//!
//! #[derive(serde::Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct Square { number: i64 }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let server = Server::builder("example")
//!     .action_fn("square", |req: Square, _ctx: ActionContext| async move {
//!         Ok::<_, ActionError>(serde_json::json!({"square": req.number * req.number}))
//!     })
//!     .build()
//!     .unwrap();
//! let harness = TestServer::new(server);
//!
//! let ok = harness.call_action("square", &serde_json::json!({"number": 3})).await.unwrap();
//! assert_eq!(ok.body.get("square").and_then(|v| v.as_i64()), Some(9));
//!
//! let bad = harness.call_action("square", &serde_json::json!({"number": "three"})).await;
//! assert_field_errors(&bad, &[("INVALID", "number")]);
//! # }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use rsoa_client::{CallError, Client, IntoBody};
use rsoa_protocol::{ActionResponse, Error as WireError, JobResponse, Map};
use rsoa_server::Server;
use rsoa_transport::{
    BoxFuture, ClientRequest, ClientResponse, ClientTransport, Error, PendingResponse,
};
use rsoa_transport_local::LocalTransport;

#[cfg(feature = "otel")]
pub mod trace;

/// A real server behind the in-process transport, with a client to call it.
#[derive(Debug, Clone)]
pub struct TestServer {
    server: Server,
    client: Client,
}

impl TestServer {
    /// A harness whose messages go through MessagePack and back, as on the wire.
    pub fn new(server: Server) -> TestServer {
        TestServer::with_round_trip(server, true)
    }

    /// A harness that passes messages without serializing them when `round_trip` is false (faster, but values
    /// that cannot be serialized go unnoticed).
    pub fn with_round_trip(server: Server, round_trip: bool) -> TestServer {
        let client = Client::builder()
            .service(LocalTransport::new(server.clone()).round_trip(round_trip))
            .build();
        TestServer { server, client }
    }

    /// The server under test.
    pub fn server(&self) -> &Server {
        &self.server
    }

    /// A client that calls the server (any call style, any option).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Calls one action of the server.
    pub async fn call_action(
        &self,
        action: &str,
        body: impl IntoBody,
    ) -> Result<ActionResponse, CallError> {
        self.client
            .call_action(self.server.service_name(), action, body)
            .await
    }

    /// Calls several actions in one job, returning errors inside the response instead of raising them.
    pub async fn call_actions(
        &self,
        actions: impl IntoIterator<Item = rsoa_protocol::ActionRequest>,
    ) -> Result<JobResponse, CallError> {
        self.client
            .call_actions(self.server.service_name(), actions)
            .raise_action_errors(false)
            .raise_job_errors(false)
            .await
    }
}

/// Every wire error of a call's outcome: the action errors of a response or of a [`CallError::Action`], or the
/// job errors of a [`CallError::Job`].
fn wire_errors(outcome: &Result<ActionResponse, CallError>) -> Vec<WireError> {
    match outcome {
        Ok(response) => response.errors.clone(),
        Err(err) => err.wire_errors().into_iter().cloned().collect(),
    }
}

fn describe(errors: &[WireError]) -> String {
    if errors.is_empty() {
        return "no errors".to_owned();
    }
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Asserts that the call failed with at least these error codes (others may be present too).
#[track_caller]
pub fn assert_error_codes(outcome: &Result<ActionResponse, CallError>, codes: &[&str]) {
    let errors = wire_errors(outcome);
    for code in codes {
        assert!(
            errors.iter().any(|e| e.code == *code),
            "expected an error with code {code}, got {}",
            describe(&errors)
        );
    }
}

/// Asserts that the call failed with exactly these error codes, in any order.
#[track_caller]
pub fn assert_only_error_codes(outcome: &Result<ActionResponse, CallError>, codes: &[&str]) {
    let errors = wire_errors(outcome);
    let mut got: Vec<&str> = errors.iter().map(|e| e.code.as_str()).collect();
    let mut want: Vec<&str> = codes.to_vec();
    got.sort_unstable();
    want.sort_unstable();
    assert_eq!(
        got,
        want,
        "expected only the codes {codes:?}, got {}",
        describe(&errors)
    );
}

/// Asserts that the call failed with at least these `(code, field)` errors.
#[track_caller]
pub fn assert_field_errors(outcome: &Result<ActionResponse, CallError>, expected: &[(&str, &str)]) {
    let errors = wire_errors(outcome);
    for (code, field) in expected {
        assert!(
            errors
                .iter()
                .any(|e| e.code == *code && e.field.as_deref() == Some(*field)),
            "expected an error {code} at field {field}, got {}",
            describe(&errors)
        );
    }
}

/// Asserts that the call failed with exactly these `(code, field)` errors, in any order.
#[track_caller]
pub fn assert_only_field_errors(
    outcome: &Result<ActionResponse, CallError>,
    expected: &[(&str, &str)],
) {
    let errors = wire_errors(outcome);
    let mut got: Vec<(String, String)> = errors
        .iter()
        .map(|e| (e.code.to_string(), e.field.clone().unwrap_or_default()))
        .collect();
    let mut want: Vec<(String, String)> = expected
        .iter()
        .map(|(c, f)| ((*c).to_owned(), (*f).to_owned()))
        .collect();
    got.sort();
    want.sort();
    assert_eq!(
        got,
        want,
        "expected only the field errors {expected:?}, got {}",
        describe(&errors)
    );
}

/// What a stubbed action answers.
#[non_exhaustive]
pub enum StubResponse {
    /// A successful response with this body.
    Body(Map),
    /// A failed response with these errors.
    Errors(Vec<WireError>),
    /// A response computed from the request body.
    Fn(Box<dyn Fn(&Map) -> Result<Map, Vec<WireError>> + Send + Sync>),
}

impl fmt::Debug for StubResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StubResponse::Body(body) => f.debug_tuple("Body").field(body).finish(),
            StubResponse::Errors(errors) => f.debug_tuple("Errors").field(errors).finish(),
            StubResponse::Fn(_) => f.write_str("Fn(..)"),
        }
    }
}

impl StubResponse {
    /// A response computed from the request body.
    pub fn from_fn(
        f: impl Fn(&Map) -> Result<Map, Vec<WireError>> + Send + Sync + 'static,
    ) -> StubResponse {
        StubResponse::Fn(Box::new(f))
    }

    fn answer(&self, body: &Map) -> Result<Map, Vec<WireError>> {
        match self {
            StubResponse::Body(body) => Ok(body.clone()),
            StubResponse::Errors(errors) => Err(errors.clone()),
            StubResponse::Fn(f) => f(body),
        }
    }
}

/// A handle on one stubbed action: what it was called with.
#[derive(Debug, Clone)]
pub struct StubHandle {
    calls: Arc<Mutex<Vec<Map>>>,
}

impl StubHandle {
    /// The request bodies of every call so far, in order.
    pub fn call_bodies(&self) -> Vec<Map> {
        self.calls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// How many times the action was called.
    pub fn call_count(&self) -> usize {
        self.calls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }
}

struct Stub {
    response: StubResponse,
    calls: Arc<Mutex<Vec<Map>>>,
}

/// A client transport that answers some (or all) actions of a service itself.
///
/// Built without an inner transport it is a fake service: any action that is not stubbed gets PySOA's `UNKNOWN`
/// error. Built around a real transport, stubbed actions are answered here and the rest of the job goes to the
/// real service, the responses merged back in order, as PySOA's `stub_action` does. A stubbed action's failure
/// stops the job (the real actions after it are not sent) unless the job continues on error.
///
/// ```
/// use rsoa_client::Client;
/// use rsoa_test::{StubResponse, StubTransport};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let mut users = StubTransport::new("users");
/// let get_user = users.stub("get_user", StubResponse::Body([("name", "Ada")].into_iter().collect()));
/// let client = Client::builder().service(users).build();
///
/// let response = client.call_action("users", "get_user", &serde_json::json!({"id": 1})).await.unwrap();
/// assert_eq!(response.body.get("name").and_then(|v| v.as_str()), Some("Ada"));
/// assert_eq!(get_user.call_count(), 1);
/// # }
/// ```
pub struct StubTransport {
    service: String,
    inner: Option<Arc<dyn ClientTransport>>,
    stubs: HashMap<String, Stub>,
}

impl fmt::Debug for StubTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut actions: Vec<&str> = self.stubs.keys().map(String::as_str).collect();
        actions.sort_unstable();
        f.debug_struct("StubTransport")
            .field("service", &self.service)
            .field("stubbed", &actions)
            .finish()
    }
}

impl StubTransport {
    /// A fake service that knows only the actions stubbed on it.
    pub fn new(service: impl Into<String>) -> StubTransport {
        StubTransport {
            service: service.into(),
            inner: None,
            stubs: HashMap::new(),
        }
    }

    /// A real service's transport with some actions stubbed out.
    pub fn wrap(inner: impl ClientTransport) -> StubTransport {
        StubTransport {
            service: inner.service_name().to_owned(),
            inner: Some(Arc::new(inner)),
            stubs: HashMap::new(),
        }
    }

    /// Stubs an action; the handle tells what it was called with.
    pub fn stub(&mut self, action: impl Into<String>, response: StubResponse) -> StubHandle {
        let calls = Arc::new(Mutex::new(Vec::new()));
        self.stubs.insert(
            action.into(),
            Stub {
                response,
                calls: calls.clone(),
            },
        );
        StubHandle { calls }
    }

    fn answer(&self, action: &str, body: &Map) -> Option<ActionResponse> {
        let stub = self.stubs.get(action)?;
        stub.calls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(body.clone());
        Some(match stub.response.answer(body) {
            Ok(body) => ActionResponse::new(action, body),
            Err(errors) => ActionResponse::with_errors(action, errors),
        })
    }
}

impl ClientTransport for StubTransport {
    fn service_name(&self) -> &str {
        &self.service
    }

    fn send(
        &self,
        request: ClientRequest,
    ) -> BoxFuture<'_, Result<Option<PendingResponse>, Error>> {
        Box::pin(async move {
            let ClientRequest {
                request_id,
                meta,
                mut job,
                expiry,
                ..
            } = request;
            let continue_on_error = job.control.continue_on_error;
            let suppress = job.control.suppress_response;
            // Answer the stubbed actions in order; remember where the real ones go.
            let mut slots: Vec<Option<ActionResponse>> = Vec::with_capacity(job.actions.len());
            let mut real = Vec::new();
            for action in std::mem::take(&mut job.actions) {
                match self.answer(&action.action, &action.body) {
                    Some(response) => {
                        let failed = !response.errors.is_empty();
                        slots.push(Some(response));
                        if failed && !continue_on_error {
                            break;
                        }
                    }
                    None => {
                        slots.push(None);
                        real.push(action);
                    }
                }
            }
            let real_response = if real.is_empty() {
                None
            } else if let Some(inner) = &self.inner {
                job.actions = real;
                let mut forwarded = ClientRequest::new(request_id, job);
                forwarded.meta = meta.clone();
                forwarded.expiry = expiry;
                match inner.send(forwarded).await? {
                    Some(pending) => Some(pending.await?.job),
                    None => None,
                }
            } else {
                let errors = real
                    .iter()
                    .map(|a| {
                        ActionResponse::with_errors(
                            a.action.clone(),
                            vec![WireError::new(
                                rsoa_protocol::ErrorCode::UNKNOWN,
                                format!(
                                    "The action \"{}\" was not found on this server.",
                                    a.action
                                ),
                            )
                            .with_field("action")
                            .caller_error(true)],
                        )
                    })
                    .collect();
                let mut response = JobResponse::default();
                response.actions = errors;
                Some(response)
            };
            if suppress {
                return Ok(None);
            }
            let mut response = JobResponse::default();
            let mut real_actions = match real_response {
                Some(real) if !real.errors.is_empty() => {
                    // The real service failed the whole job.
                    return Ok(Some(PendingResponse::ready(Ok(ClientResponse::new(
                        request_id, real,
                    )))));
                }
                Some(real) => {
                    response.context = real.context;
                    real.actions.into_iter()
                }
                None => Vec::new().into_iter(),
            };
            for slot in slots {
                let next = match slot {
                    Some(stubbed) => stubbed,
                    // The real service stopped early: nothing after its last response ran.
                    None => match real_actions.next() {
                        Some(real) => real,
                        None => break,
                    },
                };
                let failed = !next.errors.is_empty();
                response.actions.push(next);
                if failed && !continue_on_error {
                    break;
                }
            }
            let mut reply = ClientResponse::new(request_id, response);
            reply.meta = meta;
            Ok(Some(PendingResponse::ready(Ok(reply))))
        })
    }
}
