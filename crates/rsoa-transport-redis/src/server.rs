//! The server half: pop requests from the service's queue on every master at once, push responses to each
//! request's reply queue.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use rsoa_codec::Serializer;
use rsoa_protocol::{Error as WireError, ErrorCode, JobResponse, Map, Value};
use rsoa_transport::{
    BoxFuture, Error, IncomingJob, JobBody, ReceivedJob, ReplyHandle, ServerTransport, Source,
};
use tokio::sync::mpsc;

use crate::backend::{lock, BlockingConnection, Popped, RedisBackend};
use crate::frame::{self, ProtocolVersion};
use crate::message::{self, EncodeError};
use crate::metric;
use crate::ring::{service_queue_key, KEY_PREFIX};

/// How long one blocking pop waits at most, so that receivers notice a shutdown quickly.
const POP_SLICE: f64 = 1.0;

/// A server transport for one service over the Redis gateway.
///
/// A receiver task per master waits on the service's queue (PySOA's server polls the masters one after another,
/// waiting up to the receive timeout on each), so a request on any master is picked up at once. Receivers hand
/// requests over through a small buffer and stop popping when it is full, so a busy server leaves work in Redis
/// for other servers. Malformed messages, chunked requests, requests without `reply_to` and expired requests are
/// logged and dropped; none of them can stop the server.
pub struct RedisServerTransport {
    shared: Arc<Shared>,
    /// Locked only for the length of a poll, so that [`ServerTransport::take_buffered`] can reach it from a
    /// thread outside a runtime that is stuck.
    receiver: std::sync::Mutex<mpsc::Receiver<ReceivedJob>>,
    /// The receive loops' batch size and sender, until the first [`ServerTransport::receive`] starts them: a
    /// transport that is built but never served pops nothing (a popped request held by nobody would be lost).
    unstarted: std::sync::Mutex<Option<(usize, mpsc::Sender<ReceivedJob>)>>,
    /// The per-master receive loops, once started (after that, checking costs one atomic load per receive).
    tasks: OnceLock<Vec<tokio::task::JoinHandle<()>>>,
}

struct Shared {
    backend: RedisBackend,
    service: String,
    default: &'static dyn Serializer,
    stopping: AtomicBool,
    /// Set once a Redis has answered that it has no `BLMPOP`.
    no_blmpop: AtomicBool,
    /// The largest request read (`maximum_request_size_in_bytes`).
    max_request: usize,
    /// Decoders of requests, with `maximum_nesting_depth`.
    msgpack: rsoa_codec::MsgpackSerializer,
    json: rsoa_codec::JsonSerializer,
}

impl Shared {
    fn new(backend: &RedisBackend, service: &str) -> Result<Shared, crate::Error> {
        let settings = backend.settings();
        settings.validate_server()?;
        let mime = settings.default_serializer_config.mime_type()?;
        let default = rsoa_codec::by_mime_type(mime)
            .ok_or_else(|| crate::Error::Settings(format!("no serializer for {mime}")))?;
        let limits = rsoa_codec::Limits::DEFAULT.with_max_depth(
            settings
                .maximum_nesting_depth
                .unwrap_or(crate::settings::DEFAULT_MAXIMUM_NESTING_DEPTH),
        );
        Ok(Shared {
            backend: backend.clone(),
            service: service.to_owned(),
            default,
            stopping: AtomicBool::new(false),
            no_blmpop: AtomicBool::new(false),
            max_request: settings
                .maximum_request_size_in_bytes
                .unwrap_or(crate::settings::DEFAULT_MAXIMUM_REQUEST_SIZE),
            msgpack: rsoa_codec::MsgpackSerializer::default().with_limits(limits),
            json: rsoa_codec::JsonSerializer::default().with_limits(limits),
        })
    }

    /// The decoder of requests for a serializer: the same format, with this server's limits.
    fn decoder(&self, serializer: &dyn Serializer) -> &dyn Serializer {
        if serializer.mime_type() == rsoa_codec::JsonSerializer::MIME_TYPE {
            &self.json
        } else {
            &self.msgpack
        }
    }
}

/// How to answer one request.
#[derive(Clone)]
struct Reply {
    key: String,
    version: ProtocolVersion,
    serializer: &'static dyn Serializer,
    caller_flag: bool,
}

impl fmt::Debug for RedisServerTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisServerTransport")
            .field("service", &self.shared.service)
            .finish_non_exhaustive()
    }
}

impl RedisServerTransport {
    /// A transport receiving requests for `service` on every master of `backend`. It pops nothing until it is first
    /// asked to [`receive`](ServerTransport::receive); from then on it waits on every master at once, on the
    /// Tokio runtime that first called `receive`.
    pub fn new(
        backend: &RedisBackend,
        service: &str,
    ) -> Result<RedisServerTransport, crate::Error> {
        let shared = Arc::new(Shared::new(backend, service)?);
        let batch = backend.settings().receive_batch_size.unwrap_or(1);
        // Room for a batch per master: each receiver reserves its room before it pops, and with less than that a
        // receiver waiting on an idle master would hold the only room while requests wait on another master.
        let masters = backend.inner.masters.len();
        let (sender, receiver) = mpsc::channel(batch.max(1) * masters);
        Ok(RedisServerTransport {
            shared,
            receiver: std::sync::Mutex::new(receiver),
            unstarted: std::sync::Mutex::new(Some((batch, sender))),
            tasks: OnceLock::new(),
        })
    }

    /// Starts the receive loops, once. The transport's own sender is dropped then, so that the channel closes
    /// when the last loop ends.
    fn start_receiving(&self) {
        self.tasks.get_or_init(|| {
            let masters = self.shared.backend.inner.masters.len();
            lock(&self.unstarted)
                .take()
                .map(|(batch, sender)| {
                    (0..masters)
                        .map(|master| {
                            tokio::spawn(receive_loop(
                                self.shared.clone(),
                                master,
                                batch,
                                sender.clone(),
                            ))
                        })
                        .collect()
                })
                .unwrap_or_default()
        });
    }
}

impl Drop for RedisServerTransport {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::Relaxed);
        for task in self.tasks.get().into_iter().flatten() {
            task.abort();
        }
    }
}

/// Pops requests from one master until the transport stops.
async fn receive_loop(
    shared: Arc<Shared>,
    master: usize,
    batch: usize,
    sender: mpsc::Sender<ReceivedJob>,
) {
    let inner = &shared.backend.inner;
    let key = service_queue_key(&shared.service);
    let mut failures = 0_u32;
    // After a full batch the queue probably holds more, so the next pop is a plain LPOP of a whole batch (one
    // command instead of BLPOP and LPOP); an empty reply falls back to waiting with BLPOP.
    let mut backlog = false;
    while !shared.stopping.load(Ordering::Relaxed) {
        // Only pop when there is room to hand the request over, so nothing popped waits in this process while
        // another server is idle.
        let Ok(permit) = sender.reserve().await else {
            return;
        };
        if !backlog {
            // The room just freed up because the serve loop took the last request, whose job is now waiting to
            // run, on this thread in a one-thread server. Letting it run first puts its response on the wire
            // before this loop's next BLPOP: a lone call's p50 fell about 7 % in interleaved runs.
            tokio::task::yield_now().await;
        }
        let mut connection = match inner.blocking(master).await {
            Ok(c) => c,
            Err(e) => {
                failures += 1;
                backoff(&shared, failures, &e).await;
                continue;
            }
        };
        let eager = if std::mem::take(&mut backlog) {
            match connection.lpop_many(&key, batch).await {
                Ok(frames) => frames,
                Err(e) => {
                    pop_failed(&shared, &mut connection, &mut failures, &e).await;
                    continue;
                }
            }
        } else {
            Vec::new()
        };
        let mut permit = Some(permit);
        let popped = if !eager.is_empty() {
            backlog = eager.len() == batch;
            eager
        } else if batch > 1 && !shared.no_blmpop.load(Ordering::Relaxed) {
            // One round trip brings the first request and whatever waits behind it: a lone request costs no
            // second, empty pop.
            match connection.blmpop(&key, POP_SLICE, batch).await {
                Ok(Popped::Frames(frames)) => {
                    backlog = frames.len() == batch;
                    frames
                }
                Ok(Popped::Nothing) => {
                    failures = 0;
                    continue;
                }
                Ok(Popped::Unsupported) => {
                    tracing::info!(service = %shared.service, "this Redis has no BLMPOP (before 7.0): popping with BLPOP and LPOP");
                    shared.no_blmpop.store(true, Ordering::Relaxed);
                    continue;
                }
                Err(e) => {
                    pop_failed(&shared, &mut connection, &mut failures, &e).await;
                    continue;
                }
            }
        } else {
            match connection.blpop(&key, POP_SLICE).await {
                Ok(Some(frame)) => {
                    // The first request starts at once; only then are the others that wait fetched.
                    if !hand_over(&shared, &sender, &mut permit, [frame]).await {
                        return;
                    }
                    let mut more = Vec::new();
                    if batch > 1 {
                        match connection.lpop_many(&key, batch - 1).await {
                            Ok(frames) => more = frames,
                            Err(e) => {
                                tracing::warn!(service = %shared.service, error = %e, "LPOP failed")
                            }
                        }
                    }
                    backlog = batch > 1 && more.len() == batch - 1;
                    more
                }
                Ok(None) => {
                    failures = 0;
                    continue;
                }
                Err(e) => {
                    pop_failed(&shared, &mut connection, &mut failures, &e).await;
                    continue;
                }
            }
        };
        failures = 0;
        drop(connection);
        if !hand_over(&shared, &sender, &mut permit, popped).await {
            return;
        }
    }
}

/// Hands popped requests to the serve loop (the first through `permit`, if still unused), dropping what
/// [`accept`] refuses; false once the serve loop is gone.
async fn hand_over(
    shared: &Shared,
    sender: &mpsc::Sender<ReceivedJob>,
    permit: &mut Option<mpsc::Permit<'_, ReceivedJob>>,
    frames: impl IntoIterator<Item = Bytes>,
) -> bool {
    for frame in frames {
        let job = match accept(shared, &frame) {
            Accepted::Job(job) => job,
            Accepted::Answer(reply) => {
                answer(shared, reply).await;
                continue;
            }
            Accepted::Dropped => continue,
        };
        match permit.take() {
            Some(p) => p.send(job),
            None => {
                if sender.send(job).await.is_err() {
                    return false;
                }
            }
        }
    }
    true
}

/// After a failed pop: the connection is closed instead of reused (its pop may still deliver to it), and the next
/// attempt waits a pause that grows with the failures in a row.
async fn pop_failed(
    shared: &Shared,
    connection: &mut BlockingConnection,
    failures: &mut u32,
    error: &Error,
) {
    connection.discard();
    *failures += 1;
    backoff(shared, *failures, error).await;
}

async fn backoff(shared: &Shared, failures: u32, error: &Error) {
    let pause = Duration::from_millis((50_u64 << failures.min(6)).min(2_000));
    tracing::error!(service = %shared.service, %error, ?pause, "receiving from Redis failed; retrying");
    tokio::time::sleep(pause).await;
}

/// What becomes of a popped request.
// The job is the common case and goes straight on to the serve loop: boxing it would cost an allocation per request.
#[allow(clippy::large_enum_variant)]
enum Accepted {
    /// A job for the server.
    Job(ReceivedJob),
    /// A request the transport answers itself with a job error, without running it.
    Answer(Answer),
    /// Logged and dropped.
    Dropped,
}

struct Answer {
    reply: Reply,
    request_id: Value,
    meta: Arc<Map>,
    response: JobResponse,
}

/// Checks and decodes a popped request; logs and drops anything a server should not run.
fn accept(shared: &Shared, bytes: &Bytes) -> Accepted {
    let service = &shared.service;
    let drop_it = |kind: &'static str, why: &str| {
        tracing::warn!(%service, size = bytes.len(), reason = why, "dropping a message from the service queue");
        metric::dropped(kind);
        Accepted::Dropped
    };
    shared
        .backend
        .inner
        .metrics
        .received(metric::Side::SERVER, bytes.len());
    let parsed = match frame::parse(bytes) {
        Ok(parsed) => parsed,
        Err(e) => return drop_it("malformed", &e.to_string()),
    };
    if parsed.chunk_count.is_some() {
        return drop_it("chunked", "requests cannot be chunked");
    }
    let serializer = message::serializer_for(parsed.content_type, shared.default);
    let size = parsed.payload.len();
    let (mut decoded, undecodable) = if size > shared.max_request {
        // Not decoded: only the request id and meta before the body are read, to tell the caller.
        let why = format!(
            "The request of {size} bytes is larger than the {} bytes this server reads",
            shared.max_request
        );
        match message::decode_envelope_only(parsed.payload, parsed.version, serializer) {
            Some(decoded) => (
                decoded,
                Some(WireError::new(ErrorCode::REQUEST_TOO_LARGE, why)),
            ),
            None => return drop_it("too_large", &why),
        }
    } else {
        match message::decode(parsed.payload, parsed.version, shared.decoder(serializer)) {
            Ok(decoded) => (decoded, None),
            // The envelope can be read though the body cannot (a JSON integer beyond 64 bits, nesting deeper than
            // the limit): the caller hears why instead of waiting for its timeout. A MessagePack body that is
            // merely malformed is dropped, as PySOA drops it.
            Err(e) => match (e.over_limit || serializer.mime_type() == "application/json")
                .then(|| message::decode_envelope_only(parsed.payload, parsed.version, serializer))
                .flatten()
            {
                Some(decoded) => (
                    decoded,
                    Some(WireError::new(ErrorCode::INVALID, e.message).with_field("body")),
                ),
                None => return drop_it("malformed", &e.message),
            },
        }
    };
    if message::expiry(&decoded.meta).is_some_and(|at| at < message::now()) {
        tracing::debug!(%service, "dropping an expired request");
        metric::dropped("expired");
        return Accepted::Dropped;
    }
    let Some(reply_to) = decoded.meta.get("reply_to").and_then(Value::as_str) else {
        return drop_it(
            "no_reply_to",
            "the request has no meta.reply_to to answer to",
        );
    };
    if reply_to.starts_with("service.") && !reply_to.contains('!') {
        // A service's request queue: answering there would hand the response to that service as a request, and
        // an answer to it back again, for ever.
        return drop_it(
            "reply_to_service_queue",
            "meta.reply_to names a service request queue, not a reply queue",
        );
    }
    let reply = Reply {
        key: [KEY_PREFIX, reply_to].concat(),
        version: decoded.version,
        serializer,
        caller_flag: message::wants_caller_flag(&decoded.meta),
    };
    // Keys PySOA's transport keeps in the meta in process and takes out before it answers.
    decoded.meta.remove("serializer");
    decoded.meta.remove("protocol_version");
    if let Some(error) = undecodable {
        tracing::warn!(%service, size = bytes.len(), reason = %error.message, "answering a request whose body cannot be read");
        return Accepted::Answer(Answer {
            reply,
            request_id: decoded.request_id,
            meta: Arc::new(decoded.meta),
            response: JobResponse::from_errors(vec![error]),
        });
    }
    let body_of = if serializer.mime_type() == "application/json" {
        json_body
    } else {
        msgpack_body
    };
    let source = Source::new(bytes.slice_ref(parsed.payload), body_of);
    let job = IncomingJob::new(decoded.request_id, decoded.meta, JobBody::Raw(decoded.body))
        .with_source(source);
    Accepted::Job(ReceivedJob::new(job, ReplyHandle::new(reply)))
}

/// The body of a MessagePack envelope, decoded again (for [`Source`]).
fn msgpack_body(payload: &[u8]) -> Option<Value> {
    envelope_body(payload, "application/msgpack")
}

/// The body of a JSON envelope, decoded again (for [`Source`]).
fn json_body(payload: &[u8]) -> Option<Value> {
    envelope_body(payload, "application/json")
}

fn envelope_body(payload: &[u8], mime_type: &str) -> Option<Value> {
    match rsoa_codec::by_mime_type(mime_type)?.decode(payload).ok()? {
        Value::Map(mut envelope) => envelope.remove("body"),
        _ => None,
    }
}

/// Sends the answer [`accept`] gave a request in place of a job.
async fn answer(shared: &Shared, answer: Answer) {
    let Answer {
        reply,
        request_id,
        meta,
        response,
    } = answer;
    if let Err(error) = send_reply(shared, reply, request_id, meta, response).await {
        tracing::error!(service = %shared.service, %error, "could not send a response");
    }
}

impl ServerTransport for RedisServerTransport {
    fn service_name(&self) -> &str {
        &self.shared.service
    }

    fn receive(&self) -> BoxFuture<'_, Result<Option<ReceivedJob>, Error>> {
        Box::pin(async move {
            let timeout = Duration::from_secs(
                self.shared
                    .backend
                    .settings()
                    .receive_timeout_in_seconds
                    .max(1),
            );
            self.start_receiving();
            let next = std::future::poll_fn(|cx| lock(&self.receiver).poll_recv(cx));
            match tokio::time::timeout(timeout, next).await {
                Ok(Some(job)) => Ok(Some(job)),
                Ok(None) => Err(Error::Closed),
                Err(_) => Ok(None),
            }
        })
    }

    fn stop_receiving(&self) {
        self.shared.stopping.store(true, Ordering::Relaxed);
    }

    fn take_buffered(&self) -> Vec<ReceivedJob> {
        let mut receiver = lock(&self.receiver);
        std::iter::from_fn(|| receiver.try_recv().ok()).collect()
    }

    fn copy_reply(&self, reply: &ReplyHandle) -> Option<ReplyHandle> {
        reply.downcast_ref::<Reply>().cloned().map(ReplyHandle::new)
    }

    fn respond(
        &self,
        reply: ReplyHandle,
        request_id: Value,
        meta: Arc<Map>,
        response: JobResponse,
    ) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(async move {
            let reply = reply
                .downcast::<Reply>()
                .map_err(|_| Error::invalid_message("foreign reply handle", "not a Redis reply"))?;
            send_reply(&self.shared, *reply, request_id, meta, response).await
        })
    }
}

/// Writes the envelope of a response straight from the typed job, with no value built for it.
fn write_response<'a>(
    request_id: &'a Value,
    meta: &'a Map,
    job: &'a JobResponse,
    with_is_caller_error: bool,
) -> impl FnOnce(&dyn Serializer, &mut Vec<u8>) -> Result<(), rsoa_codec::Error> + 'a {
    move |serializer, out| {
        serializer.encode_response_into(request_id, meta, job, with_is_caller_error, out)
    }
}

/// Answers one request: frames the response (chunked if needed) and pushes it to the request's reply queue; a
/// response too large or not serializable is replaced by PySOA's job error.
async fn send_reply(
    shared: &Shared,
    reply: Reply,
    request_id: Value,
    meta: Arc<Map>,
    response: JobResponse,
) -> Result<(), Error> {
    let inner = &shared.backend.inner;
    let settings = &inner.settings;
    // The job is over, so the meta is usually no longer shared and is taken as it is.
    let mut meta = Arc::unwrap_or_clone(meta);
    let ttl = settings.message_expiry_in_seconds;
    message::set_expiry(&mut meta, message::now() + ttl as f64);
    let limit = settings.max_message_size(true);
    let respond = |job| write_response(&request_id, &meta, job, reply.caller_flag);
    let frames = match message::encode(
        reply.serializer,
        reply.version,
        respond(&response),
        limit,
        settings.chunk_threshold(),
    ) {
        Ok(frames) => frames,
        Err(failure) => {
            // PySOA answers with a job error instead, framed as v3 in the server's default serializer (it
            // no longer knows the request's); Python clients read either, so rsoa does the same.
            let (code, message) = match failure {
                EncodeError::TooLarge { size, .. } => {
                    tracing::error!(service = %shared.service, size, "response too large");
                    metrics::counter!(metric::RESPONSE_TOO_LARGE).increment(1);
                    (
                        ErrorCode::RESPONSE_TOO_LARGE,
                        "Could not send the response because it was too large",
                    )
                }
                EncodeError::NotSerializable(e) => {
                    tracing::error!(service = %shared.service, error = %e, "response not serializable");
                    metrics::counter!(metric::RESPONSE_NOT_SERIALIZABLE).increment(1);
                    (
                        ErrorCode::RESPONSE_NOT_SERIALIZABLE,
                        "Could not send the response because it failed to serialize",
                    )
                }
            };
            let replacement = JobResponse::from_errors(vec![WireError::new(code, message)]);
            message::encode(
                shared.default,
                ProtocolVersion::V3,
                respond(&replacement),
                usize::MAX,
                None,
            )
            .map_err(|_| {
                Error::invalid_message("cannot encode the error response", "encoding failed")
            })?
        }
    };
    if let Some(threshold) = settings.log_threshold(true) {
        let size: usize = frames.iter().map(Vec::len).sum();
        if size > threshold {
            tracing::warn!(target: "rsoa::transport::oversized_message", service = %shared.service, size, "large response");
        }
    }
    let master = inner.reply_master(&reply.key);
    let frames = match <[Vec<u8>; 1]>::try_from(frames) {
        Ok([frame]) => {
            return inner
                .push_batched(master, &reply.key, ttl, Bytes::from(frame), None)
                .await
        }
        Err(frames) => frames,
    };
    // A chunked response's frames go one after another, in order.
    metrics::histogram!(metric::CHUNK_COUNT).record(frames.len() as f64);
    for frame in frames {
        inner
            .push(master, &reply.key, ttl, Bytes::from(frame), None)
            .await?;
    }
    Ok(())
}

/// Serves a service straight from Redis with `workers_per_master` workers on each master, each popping one
/// request, running it on `handler` and pushing the response, all in one task, until `shutdown` resolves; then
/// every worker finishes the request it holds and stops (within a second when idle). Nothing popped is lost.
///
/// This is the shortest path from Redis to a job and back (PySOA's own loop, many times over): no hand-over
/// between tasks. `rsoa_server::serve` with a [`RedisServerTransport`] is the general path, which works with any
/// transport.
///
/// ```no_run
/// # async fn demo(server: rsoa_server::Server) -> Result<(), Box<dyn std::error::Error>> {
/// use rsoa_transport_redis::{serve_workers, RedisBackend, RedisSettings};
///
/// let backend = RedisBackend::connect(RedisSettings::from_json_file("redis.json")?).await?;
/// serve_workers(&backend, server, 32, rsoa_server::shutdown_signal()).await?;
/// # Ok(()) }
/// ```
pub async fn serve_workers<H>(
    backend: &RedisBackend,
    handler: H,
    workers_per_master: usize,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), crate::Error>
where
    H: rsoa_transport::JobHandler + Clone,
{
    let shared = Arc::new(Shared::new(backend, handler.service_name())?);
    let mut workers = Vec::new();
    for master in 0..backend.inner.masters.len() {
        for _ in 0..workers_per_master.max(1) {
            workers.push(tokio::spawn(worker(
                shared.clone(),
                master,
                handler.clone(),
            )));
        }
    }
    tracing::info!(service = %shared.service, workers = workers.len(), "serving");
    shutdown.await;
    shared.stopping.store(true, Ordering::Relaxed);
    for worker in workers {
        let _ = worker.await;
    }
    Ok(())
}

/// One worker: pop, run, answer, until stopped.
async fn worker<H: rsoa_transport::JobHandler>(shared: Arc<Shared>, master: usize, handler: H) {
    let inner = &shared.backend.inner;
    let key = service_queue_key(&shared.service);
    let mut failures = 0_u32;
    while !shared.stopping.load(Ordering::Relaxed) {
        let popped = match inner.blocking(master).await {
            Ok(mut connection) => match connection.blpop(&key, POP_SLICE).await {
                Ok(popped) => popped,
                Err(e) => {
                    pop_failed(&shared, &mut connection, &mut failures, &e).await;
                    continue;
                }
            },
            Err(e) => {
                failures += 1;
                backoff(&shared, failures, &e).await;
                continue;
            }
        };
        failures = 0;
        let Some(frame) = popped else { continue };
        let received = match accept(&shared, &frame) {
            Accepted::Job(job) => job,
            Accepted::Answer(reply) => {
                answer(&shared, reply).await;
                continue;
            }
            Accepted::Dropped => continue,
        };
        let ReceivedJob { job, reply, .. } = received;
        let (request_id, meta) = (job.request_id.clone(), job.meta.clone());
        let Some(response) = handler.handle_job(job).await else {
            continue;
        };
        let Ok(reply) = reply.downcast::<Reply>() else {
            continue;
        };
        if let Err(error) = send_reply(&shared, *reply, request_id, meta, response).await {
            tracing::error!(service = %shared.service, %error, "could not send a response");
        }
    }
}
