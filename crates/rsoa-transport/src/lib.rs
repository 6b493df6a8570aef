//! The transport traits of rsoa: how a client's job reaches a server and how the response comes back.
//!
//! This crate holds traits and plain types only, with no runtime or network dependencies, so that a transport
//! (in-process, Redis, or your own) plugs into `rsoa-client` and `rsoa-server` without either knowing which it is.
//!
//! # Client side
//!
//! A [`ClientTransport`] sends one job to the service it was built for. [`ClientTransport::send`] returns once the
//! request is on its way, handing back a [`PendingResponse`] future for the reply (or nothing when the job asked for
//! no response). Responses are matched to requests by the transport, so a reply can never be delivered to the
//! wrong call, a reply that arrives after its caller gave up is dropped, and a suppressed response leaves nothing
//! behind: the three client bugs PySOA documents cannot happen by construction.
//!
//! # Server side
//!
//! A server is a [`JobHandler`]: give it an [`IncomingJob`] and it returns the [`JobResponse`] (or nothing, when the
//! job suppressed its response). An in-process transport calls the handler directly; a network transport pulls
//! requests with a [`ServerTransport`] and pushes the handler's responses back.
//!
//! Every future here is cancellation-safe: dropping one abandons that call and nothing else.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use rsoa_protocol::{JobRequest, JobResponse, Map, Value};

/// A boxed, `Send` future, the return type of the object-safe methods here.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A job on its way from a client to a service.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ClientRequest {
    /// The id that matches the response to this request; unique per client and service.
    pub request_id: u64,
    /// Envelope metadata; client middleware may add keys, which travel on the wire.
    pub meta: Map,
    /// The job.
    pub job: JobRequest,
    /// How long the request stays valid; a server drops it unanswered once this has passed.
    pub expiry: Option<Duration>,
}

impl ClientRequest {
    /// A request with empty meta and no expiry.
    pub fn new(request_id: u64, job: JobRequest) -> ClientRequest {
        ClientRequest {
            request_id,
            meta: Map::new(),
            job,
            expiry: None,
        }
    }
}

/// A service's reply to a [`ClientRequest`].
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ClientResponse {
    /// The id of the request this answers.
    pub request_id: u64,
    /// Envelope metadata as the server sent it.
    pub meta: Map,
    /// The job's response.
    pub job: JobResponse,
}

impl ClientResponse {
    /// A response with empty meta.
    pub fn new(request_id: u64, job: JobResponse) -> ClientResponse {
        ClientResponse {
            request_id,
            meta: Map::new(),
            job,
        }
    }
}

/// The reply to a sent request, still to come.
///
/// Awaiting it waits as long as the transport lets it; callers put their own timeout around it. Dropping it
/// abandons the reply, which the transport then discards when it arrives.
#[must_use = "a pending response does nothing unless awaited"]
pub struct PendingResponse(BoxFuture<'static, Result<ClientResponse, Error>>);

impl PendingResponse {
    /// Wraps a future that resolves to the reply.
    pub fn new(
        future: impl Future<Output = Result<ClientResponse, Error>> + Send + 'static,
    ) -> PendingResponse {
        PendingResponse(Box::pin(future))
    }

    /// A reply that is already known.
    pub fn ready(result: Result<ClientResponse, Error>) -> PendingResponse {
        PendingResponse::new(std::future::ready(result))
    }
}

impl Future for PendingResponse {
    type Output = Result<ClientResponse, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        self.0.as_mut().poll(cx)
    }
}

impl fmt::Debug for PendingResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PendingResponse")
    }
}

/// The client half of a transport, bound to one service.
///
/// ```
/// use rsoa_transport::{BoxFuture, ClientRequest, ClientResponse, ClientTransport, Error, PendingResponse};
/// use rsoa_protocol::JobResponse;
///
/// /// A transport that answers every job with an empty response, for illustration.
/// #[derive(Debug)]
/// struct Echo;
///
/// impl ClientTransport for Echo {
///     fn service_name(&self) -> &str {
///         "echo"
///     }
///
///     fn send(&self, request: ClientRequest) -> BoxFuture<'_, Result<Option<PendingResponse>, Error>> {
///         let reply = ClientResponse::new(request.request_id, JobResponse::default());
///         Box::pin(async move { Ok(Some(PendingResponse::ready(Ok(reply)))) })
///     }
/// }
/// ```
pub trait ClientTransport: Send + Sync + fmt::Debug + 'static {
    /// The service this transport reaches.
    fn service_name(&self) -> &str;

    /// Sends a job. Resolves once the request is on its way, to the pending reply, or to `None` when the job's
    /// `control.suppress_response` is set (no reply will come).
    fn send(&self, request: ClientRequest)
        -> BoxFuture<'_, Result<Option<PendingResponse>, Error>>;
}

/// A job as a server receives it.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct IncomingJob {
    /// The request id to echo back (any non-null value; PySOA clients send integers).
    pub request_id: Value,
    /// Envelope metadata, echoed back in the response's meta. Shared: the job's actions read it while the
    /// transport holds it for the response, and neither needs a copy.
    pub meta: Arc<Map>,
    /// The job itself.
    pub body: JobBody,
    /// The message the job was decoded from, if the transport kept it.
    pub source: Option<Source>,
}

impl IncomingJob {
    /// A received job.
    pub fn new(request_id: Value, meta: impl Into<Arc<Map>>, body: JobBody) -> IncomingJob {
        IncomingJob {
            request_id,
            meta: meta.into(),
            body,
            source: None,
        }
    }

    /// The same job, with the message it was decoded from.
    #[must_use]
    pub fn with_source(mut self, source: Source) -> IncomingJob {
        self.source = Some(source);
        self
    }
}

/// The message a job was decoded from, shared rather than copied (a transport's receive buffer), and how to decode
/// its body again: what lets a server show a failed job's request as it came (PySOA logs it again at its error
/// level) without keeping a decoded copy of every request that succeeds.
#[derive(Clone)]
pub struct Source {
    payload: bytes::Bytes,
    body: fn(&[u8]) -> Option<Value>,
}

impl Source {
    /// A message's `payload`, and `body`, which decodes the job's body from it.
    pub fn new(payload: bytes::Bytes, body: fn(&[u8]) -> Option<Value>) -> Source {
        Source { payload, body }
    }

    /// The job's body, decoded again; `None` if it cannot be.
    pub fn body(&self) -> Option<Value> {
        (self.body)(&self.payload)
    }
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Source")
            .field("bytes", &self.payload.len())
            .finish_non_exhaustive()
    }
}

impl PartialEq for Source {
    fn eq(&self, other: &Source) -> bool {
        self.payload == other.payload
    }
}

/// A job's body: typed when it came from a trusted in-process caller, raw when it came off the wire and must be
/// validated the way PySOA validates it.
#[derive(Clone, Debug, PartialEq)]
pub enum JobBody {
    /// Built in this process by an rsoa client: well-formed by construction.
    Typed(JobRequest),
    /// Decoded from a message: the server validates it before running it.
    Raw(Value),
}

/// Something that runs jobs: a server.
pub trait JobHandler: Send + Sync + 'static {
    /// The service's name.
    fn service_name(&self) -> &str;

    /// Runs a job, resolving to its response, or to `None` when the job suppressed its response.
    fn handle_job(&self, job: IncomingJob) -> BoxFuture<'_, Option<JobResponse>>;
}

/// A job a [`ServerTransport`] received, with what the transport needs to answer it.
#[derive(Debug)]
#[non_exhaustive]
pub struct ReceivedJob {
    /// The job.
    pub job: IncomingJob,
    /// Where and how to send the reply; opaque to the server.
    pub reply: ReplyHandle,
}

impl ReceivedJob {
    /// A received job and how to answer it.
    pub fn new(job: IncomingJob, reply: ReplyHandle) -> ReceivedJob {
        ReceivedJob { job, reply }
    }
}

/// A transport's private record of how to answer one request (reply queue, framing, serializer, …).
pub struct ReplyHandle(Box<dyn std::any::Any + Send + Sync>);

impl ReplyHandle {
    /// Wraps the transport's own reply information.
    pub fn new<T: Send + Sync + 'static>(state: T) -> ReplyHandle {
        ReplyHandle(Box::new(state))
    }

    /// The transport's reply information, if it is of type `T`.
    pub fn downcast<T: Send + Sync + 'static>(self) -> Result<Box<T>, ReplyHandle> {
        self.0.downcast().map_err(ReplyHandle)
    }

    /// The transport's reply information, if it is of type `T`, left in place.
    pub fn downcast_ref<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.0.downcast_ref()
    }
}

impl fmt::Debug for ReplyHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReplyHandle")
    }
}

/// The server half of a network transport, bound to one service.
pub trait ServerTransport: Send + Sync + 'static {
    /// The service this transport serves.
    fn service_name(&self) -> &str;

    /// Waits for the next request; `None` when none arrived within the transport's receive timeout (the server
    /// runs its idle work then). Malformed messages are logged and dropped by the transport, never returned.
    fn receive(&self) -> BoxFuture<'_, Result<Option<ReceivedJob>, Error>>;

    /// Sends the response to a received request, echoing its request id and meta (the job's own, shared with it
    /// while it ran; by now usually held here alone, so taking it out copies nothing).
    fn respond(
        &self,
        reply: ReplyHandle,
        request_id: Value,
        meta: Arc<Map>,
        response: JobResponse,
    ) -> BoxFuture<'_, Result<(), Error>>;

    /// A second handle to answer the same request with, when the transport can make one (`None` by default). A
    /// watchdog uses it to answer the callers of a worker whose runtime is stuck, over a connection of its own.
    fn copy_reply(&self, reply: &ReplyHandle) -> Option<ReplyHandle> {
        let _ = reply;
        None
    }

    /// Takes out the requests popped from the backend that [`ServerTransport::receive`] has not returned yet, for
    /// someone else to answer (a watchdog whose server's runtime is stuck). None by default.
    fn take_buffered(&self) -> Vec<ReceivedJob> {
        Vec::new()
    }

    /// Stops taking new requests from the backend. Requests already taken are still returned by
    /// [`ServerTransport::receive`], after which it returns [`Error::Closed`]; nothing taken is lost.
    fn stop_receiving(&self) {}
}

/// What went wrong in a transport.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No response arrived in time.
    #[error("no response within {0:?}")]
    Timeout(Duration),
    /// The serialized message is larger than the transport may send.
    #[error("message of {size} bytes is larger than the limit of {limit} bytes")]
    MessageTooLarge {
        /// The message's size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The destination queue stayed full.
    #[error("queue {queue} is full")]
    QueueFull {
        /// The queue's name.
        queue: String,
    },
    /// The message expired before it could be handled.
    #[error("message expired")]
    Expired,
    /// The transport could not reach its backend, or lost it.
    #[error("connection failed: {message}")]
    Connection {
        /// What happened.
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The backend refused a command for lack of rights (a Redis ACL user without a command the transport needs).
    /// Retrying does not help until the rights are granted.
    #[error("permission denied: {message}")]
    Denied {
        /// What was refused.
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// A message could not be encoded or decoded, or broke the protocol.
    #[error("invalid message: {message}")]
    InvalidMessage {
        /// What was wrong.
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The transport has been shut down.
    #[error("transport closed")]
    Closed,
}

impl Error {
    /// A connection error with a message.
    pub fn connection(message: impl Into<String>) -> Error {
        Error::Connection {
            message: message.into(),
            source: None,
        }
    }

    /// An invalid-message error with a message and a cause.
    pub fn invalid_message(
        message: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Error {
        Error::InvalidMessage {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// Whether retrying may succeed (PySOA's `TransientPySOATransportError`).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::Timeout(_) | Error::Connection { .. } | Error::QueueFull { .. } | Error::Expired
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_handle_downcasts() {
        let handle = ReplyHandle::new(42_u32);
        let handle = handle.downcast::<String>().unwrap_err();
        assert_eq!(*handle.downcast::<u32>().unwrap(), 42);
    }

    #[test]
    fn transient_errors() {
        assert!(Error::Timeout(Duration::from_secs(1)).is_transient());
        assert!(!Error::MessageTooLarge { size: 2, limit: 1 }.is_transient());
        assert!(!Error::Closed.is_transient());
    }

    #[test]
    fn traits_are_object_safe() {
        fn _client(_: &dyn ClientTransport) {}
        fn _handler(_: &dyn JobHandler) {}
        fn _server(_: &dyn ServerTransport) {}
    }
}
