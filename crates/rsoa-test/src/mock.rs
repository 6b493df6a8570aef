//! A mock transport: the test receives each request the client sends, asserts on it, and decides the reply.
//!
//! Where a [`StubTransport`](crate::StubTransport) answers by rule, a [`MockTransport`] hands every request to
//! the test through its [`MockHandle`], which makes tests of a caller's exact traffic (what it sends, in what
//! order, what it does with a late, failed or odd reply) read in order.
//!
//! ```
//! use rsoa_client::Client;
//! use rsoa_test::mock::mock;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let (transport, mut handle) = mock("users");
//! let client = Client::builder().service(transport).build();
//!
//! let call = tokio::spawn(async move {
//!     client.call_action("users", "get_user", &serde_json::json!({"id": 7})).await
//! });
//! let request = handle.next_request().await.expect("a request");
//! let body = request.single_action("get_user");
//! assert_eq!(body.get("id").and_then(|v| v.as_i64()), Some(7));
//! request.reply_bodies([[("name", "Ada")].into_iter().collect()]);
//!
//! let response = call.await.unwrap().unwrap();
//! assert_eq!(response.body.get("name").and_then(|v| v.as_str()), Some("Ada"));
//! # }
//! ```

use std::fmt;

use rsoa_protocol::{ActionResponse, Error as WireError, JobRequest, JobResponse, Map};
use rsoa_transport::{
    BoxFuture, ClientRequest, ClientResponse, ClientTransport, Error, PendingResponse,
};
use tokio::sync::{mpsc, oneshot};

/// A mock service and the handle that answers for it.
pub fn mock(service: impl Into<String>) -> (MockTransport, MockHandle) {
    let (sender, receiver) = mpsc::unbounded_channel();
    (
        MockTransport {
            service: service.into(),
            sender,
        },
        MockHandle { receiver },
    )
}

/// The client side of a mock service: every request goes to the [`MockHandle`].
#[derive(Debug, Clone)]
pub struct MockTransport {
    service: String,
    sender: mpsc::UnboundedSender<MockRequest>,
}

impl ClientTransport for MockTransport {
    fn service_name(&self) -> &str {
        &self.service
    }

    fn send(
        &self,
        request: ClientRequest,
    ) -> BoxFuture<'_, Result<Option<PendingResponse>, Error>> {
        Box::pin(async move {
            let suppress = request.job.control.suppress_response;
            let request_id = request.request_id;
            let (reply, answer) = oneshot::channel();
            self.sender
                .send(MockRequest {
                    request,
                    reply: Some(reply),
                })
                .map_err(|_| Error::connection("the mock's handle was dropped"))?;
            if suppress {
                return Ok(None);
            }
            Ok(Some(PendingResponse::new(async move {
                match answer.await {
                    Ok(Ok(job)) => Ok(ClientResponse::new(request_id, job)),
                    Ok(Err(error)) => Err(error),
                    Err(_) => Err(Error::connection(
                        "the mock dropped the request without a reply",
                    )),
                }
            })))
        })
    }
}

/// The test's side of a mock service: the requests, in the order they were sent.
#[derive(Debug)]
pub struct MockHandle {
    receiver: mpsc::UnboundedReceiver<MockRequest>,
}

impl MockHandle {
    /// The next request, waiting for it; `None` once every transport is dropped and all were taken.
    pub async fn next_request(&mut self) -> Option<MockRequest> {
        self.receiver.recv().await
    }

    /// The next request if one is waiting.
    pub fn try_next_request(&mut self) -> Option<MockRequest> {
        self.receiver.try_recv().ok()
    }

    /// Asserts that no request is waiting.
    #[track_caller]
    pub fn assert_no_request(&mut self) {
        if let Some(request) = self.try_next_request() {
            panic!("expected no request, but one was sent: {:?}", request.job());
        }
    }
}

/// One request sent to a mock service, to inspect and answer. Dropped without a reply, the caller gets a
/// connection error.
pub struct MockRequest {
    request: ClientRequest,
    reply: Option<oneshot::Sender<Result<JobResponse, Error>>>,
}

impl fmt::Debug for MockRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockRequest")
            .field("request_id", &self.request.request_id)
            .field("job", &self.request.job)
            .finish()
    }
}

impl MockRequest {
    /// The request as the transport got it (request id, meta, expiry, job).
    pub fn request(&self) -> &ClientRequest {
        &self.request
    }

    /// The job: control, context and actions.
    pub fn job(&self) -> &JobRequest {
        &self.request.job
    }

    /// The names of the job's actions, in order.
    pub fn action_names(&self) -> Vec<&str> {
        self.request
            .job
            .actions
            .iter()
            .map(|a| a.action.as_str())
            .collect()
    }

    /// Asserts that the job has exactly one action, named `action`, and returns its body.
    #[track_caller]
    pub fn single_action(&self, action: &str) -> &Map {
        let names = self.action_names();
        assert_eq!(
            names,
            [action],
            "expected one action {action:?}, the job has {names:?}"
        );
        &self.request.job.actions[0].body
    }

    /// Replies with a whole job response.
    pub fn reply(mut self, response: JobResponse) {
        if let Some(reply) = self.reply.take() {
            // The caller may have given up (timed out); its reply is then discarded, as a transport would.
            let _ = reply.send(Ok(response));
        }
    }

    /// Replies with one successful body per action, in order.
    pub fn reply_bodies(self, bodies: impl IntoIterator<Item = Map>) {
        let actions = self
            .request
            .job
            .actions
            .iter()
            .map(|a| a.action.clone())
            .collect::<Vec<_>>();
        let mut response = JobResponse::default();
        response.actions = actions
            .into_iter()
            .zip(bodies)
            .map(|(name, body)| ActionResponse::new(name, body))
            .collect();
        self.reply(response);
    }

    /// Replies that the (first) action failed with these errors.
    pub fn reply_action_errors(self, errors: impl IntoIterator<Item = WireError>) {
        let name = self
            .request
            .job
            .actions
            .first()
            .map(|a| a.action.clone())
            .unwrap_or_default();
        let mut response = JobResponse::default();
        response.actions = vec![ActionResponse::with_errors(
            name,
            errors.into_iter().collect(),
        )];
        self.reply(response);
    }

    /// Replies that the whole job failed with these errors.
    pub fn reply_job_errors(self, errors: impl IntoIterator<Item = WireError>) {
        let mut response = JobResponse::default();
        response.errors = errors.into_iter().collect();
        self.reply(response);
    }

    /// Fails the call at the transport (the caller sees [`rsoa_client::CallError::Transport`] or a timeout).
    pub fn fail(mut self, error: Error) {
        if let Some(reply) = self.reply.take() {
            let _ = reply.send(Err(error));
        }
    }
}
