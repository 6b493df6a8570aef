//! Test doubles for rsoa services and their callers.
//!
//! - [`TestServer`]: an in-process harness that runs your real [`Server`] behind the local transport (through
//!   MessagePack and back by default, so values that would not survive the wire fail the test), with a client
//!   ready to call it.
//! - Assertions on a call's outcome, like PySOA's `assertActionRunsWith…` family: [`assert_error_codes`],
//!   [`assert_only_error_codes`], [`assert_field_errors`], [`assert_only_field_errors`].
//! - [`StubTransport`]: a fake service, or a real one with some actions stubbed out (PySOA's `stub_action`), which
//!   records every request body it answers.
//! - [`mock::mock`]: a mock service whose every request the test receives, inspects and answers.
//! - [`plan`]: PySOA's `.pysoa` test plan files, run unchanged against an rsoa service, in-process or not.
//! - To stub a downstream action on a client or server that is already built: [`Client::stubs`].
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

use std::fmt;
use std::sync::Arc;

use rsoa_client::stub::{ActionStub, StubLayer, Stubs};
pub use rsoa_client::stub::{StubResponse, StubbedCall};
use rsoa_client::{CallError, Client, IntoBody};
use rsoa_protocol::{ActionResponse, Error as WireError, JobResponse, Map};
use rsoa_server::Server;
use rsoa_transport::{BoxFuture, ClientRequest, ClientTransport, Error, PendingResponse};
use rsoa_transport_local::LocalTransport;

pub mod mock;
pub mod plan;
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

/// A handle on one action stubbed on a [`StubTransport`]: what it was called with.
#[derive(Debug, Clone)]
pub struct StubHandle {
    stub: Arc<ActionStub>,
}

impl StubHandle {
    /// The request bodies of every call so far, in order.
    pub fn call_bodies(&self) -> Vec<Map> {
        self.stub.call_bodies()
    }

    /// How many times the action was called.
    pub fn call_count(&self) -> usize {
        self.stub.call_count()
    }
}

/// A client transport that answers some (or all) actions of a service itself.
///
/// Built without an inner transport it is a fake service: any action that is not stubbed gets PySOA's `UNKNOWN`
/// error. Built around a real transport, stubbed actions are answered here and the rest of the job goes to the
/// real service, the responses merged back in order, as PySOA's `stub_action` does. A stubbed action's failure
/// stops the job (the real actions after it are not sent) unless the job continues on error.
///
/// To stub actions on a client that is already built (a server's, for instance), use its registry instead:
/// [`Client::stubs`](rsoa_client::Client::stubs).
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
    layer: StubLayer,
    stubs: Stubs,
    /// The stubs live as long as the transport (or a handle on them).
    kept: Vec<Arc<ActionStub>>,
}

impl fmt::Debug for StubTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StubTransport")
            .field("service", &self.layer.service_name())
            .field("stubs", &self.stubs)
            .finish()
    }
}

impl StubTransport {
    /// A fake service that knows only the actions stubbed on it.
    pub fn new(service: impl Into<String>) -> StubTransport {
        let stubs = Stubs::new();
        StubTransport {
            layer: StubLayer::new(service, stubs.clone(), None),
            stubs,
            kept: Vec::new(),
        }
    }

    /// A real service's transport with some actions stubbed out.
    pub fn wrap(inner: impl ClientTransport) -> StubTransport {
        let stubs = Stubs::new();
        let service = inner.service_name().to_owned();
        StubTransport {
            layer: StubLayer::new(service, stubs.clone(), Some(Arc::new(inner))),
            stubs,
            kept: Vec::new(),
        }
    }

    /// Stubs an action; the handle tells what it was called with.
    pub fn stub(&mut self, action: impl Into<String>, response: StubResponse) -> StubHandle {
        let stub = Arc::new(self.stubs.stub(self.layer.service_name(), action, response));
        self.kept.push(stub.clone());
        StubHandle { stub }
    }

    /// Every call the stubs answered, in order, with their responses.
    pub fn calls(&self) -> Vec<StubbedCall> {
        self.stubs.calls()
    }
}

impl ClientTransport for StubTransport {
    fn service_name(&self) -> &str {
        self.layer.service_name()
    }

    fn send(
        &self,
        request: ClientRequest,
    ) -> BoxFuture<'_, Result<Option<PendingResponse>, Error>> {
        self.layer.send(request)
    }
}
