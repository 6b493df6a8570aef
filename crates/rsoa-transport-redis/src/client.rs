//! The client half: push requests to a service's queue and pop each response from a reply queue of its own.
//!
//! PySOA gives each client one reply queue and matches responses by request id, which breaks when two chunked
//! responses interleave, and hands a late response to whichever call reads next. rsoa gives each request its own
//! reply queue (`service.<name>.<client id>!<request id>`, a name PySOA servers answer to like any other), so
//! chunks can never interleave, a late response lands where nobody reads, and Redis expires it.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rsoa_codec::Serializer;
use rsoa_protocol::{JobResponse, Value};
use rsoa_transport::{
    BoxFuture, ClientRequest, ClientResponse, ClientTransport, Error, PendingResponse,
};

use crate::backend::{BackendInner, RedisBackend, WAKE, WAKE_TTL_SECONDS};
use crate::frame::{self, ProtocolVersion};
use crate::message::{self, EncodeError};
use crate::metric;
use crate::replies::Waiter;
use crate::ring::{service_queue_key, KEY_PREFIX};
use crate::SerializerSettings;

/// A client transport to one service over the Redis gateway.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use rsoa_client::Client;
/// use rsoa_transport_redis::{RedisBackend, RedisClientTransport, RedisSettings};
///
/// let backend = RedisBackend::connect(RedisSettings::standard(["127.0.0.1:6379"])).await?;
/// let client = Client::builder().service(RedisClientTransport::new(&backend, "example")?).build();
/// let response = client.call_action("example", "status", ()).await?;
/// # Ok(()) }
/// ```
pub struct RedisClientTransport {
    backend: RedisBackend,
    service: String,
    request_key: String,
    client_id: String,
    /// `service.{service}.{client_id}!`, the part of every `reply_to` before the request id.
    reply_prefix: String,
    serializer: &'static dyn Serializer,
    version: ProtocolVersion,
}

impl fmt::Debug for RedisClientTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisClientTransport")
            .field("service", &self.service)
            .field("client_id", &self.client_id)
            .field("serializer", &self.serializer.mime_type())
            .field("version", &self.version)
            .finish()
    }
}

impl RedisClientTransport {
    /// A transport to `service` on `backend`, with the backend's serializer and protocol version, checking the
    /// backend's settings for a client. The backend may be a server's too: one backend can serve a service and the
    /// clients its actions use, on the same connections.
    pub fn new(
        backend: &RedisBackend,
        service: &str,
    ) -> Result<RedisClientTransport, crate::Error> {
        RedisClientTransport::builder(backend, service).build()
    }

    /// A transport to `service` whose serializer or protocol version differ from the backend's, as PySOA lets each
    /// service's client settings choose them. Every service shares the backend's connections.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// use rsoa_transport_redis::{RedisBackend, RedisClientTransport, RedisSettings};
    ///
    /// let backend = RedisBackend::connect(RedisSettings::standard(["127.0.0.1:6379"])).await?;
    /// // This service still reads JSON over framing version 2; the others on the backend use MessagePack.
    /// let legacy = RedisClientTransport::builder(&backend, "legacy")
    ///     .serializer("json")
    ///     .protocol_version(2)
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    pub fn builder<'a>(
        backend: &'a RedisBackend,
        service: &str,
    ) -> RedisClientTransportBuilder<'a> {
        RedisClientTransportBuilder {
            backend,
            service: service.to_owned(),
            serializer: None,
            protocol_version: None,
        }
    }
}

/// Builds a [`RedisClientTransport`] with its own serializer or protocol version; see
/// [`RedisClientTransport::builder`].
#[derive(Debug)]
#[must_use]
pub struct RedisClientTransportBuilder<'a> {
    backend: &'a RedisBackend,
    service: String,
    serializer: Option<String>,
    protocol_version: Option<u8>,
}

impl RedisClientTransportBuilder<'_> {
    /// The serializer requests are written with: `msgpack` or `json` (or PySOA's class paths for them, as in
    /// `default_serializer_config.path`). Responses are read with the one their `content-type` names.
    pub fn serializer(mut self, path: impl Into<String>) -> Self {
        self.serializer = Some(path.into());
        self
    }

    /// The framing version requests are sent in (1, 2 or 3), as the `protocol_version` setting.
    pub fn protocol_version(mut self, version: u8) -> Self {
        self.protocol_version = Some(version);
        self
    }

    /// The transport, or the setting that is wrong.
    pub fn build(self) -> Result<RedisClientTransport, crate::Error> {
        let backend = self.backend;
        let mut settings = backend.settings().clone();
        if let Some(path) = self.serializer {
            settings.default_serializer_config = SerializerSettings { path };
        }
        if let Some(version) = self.protocol_version {
            settings.protocol_version = Some(version);
        }
        // A backend that also serves a server may carry server-only settings; the client side ignores them.
        settings.check_client_side()?;
        let mime = settings.default_serializer_config.mime_type()?;
        let client_id = [
            backend.inner.client_id_prefix.as_str(),
            &uuid::Uuid::new_v4().simple().to_string(),
        ]
        .concat();
        let service = self.service;
        Ok(RedisClientTransport {
            backend: backend.clone(),
            request_key: service_queue_key(&service),
            reply_prefix: format!("service.{service}.{client_id}!"),
            service,
            client_id,
            serializer: rsoa_codec::by_mime_type(mime)
                .ok_or_else(|| crate::Error::Settings(format!("no serializer for {mime}")))?,
            version: settings.protocol_version()?,
        })
    }
}

/// Appends `value` in lowercase hexadecimal, zero-padded to at least `width` digits (`{value:0width$x}` for a
/// `width` of at most 16).
fn push_hex(out: &mut String, value: u64, width: usize) {
    let significant = 16 - value.leading_zeros() as usize / 4;
    for digit in (0..significant.max(width).clamp(1, 16)).rev() {
        out.push(char::from(
            b"0123456789abcdef"[(value >> (digit * 4)) as usize & 0xf],
        ));
    }
}

/// Whole seconds, rounded up, at least one (Redis takes whole seconds for EXPIRE).
fn whole_seconds(d: Duration) -> u64 {
    (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
}

impl ClientTransport for RedisClientTransport {
    fn service_name(&self) -> &str {
        &self.service
    }

    fn send(
        &self,
        request: ClientRequest,
    ) -> BoxFuture<'_, Result<Option<PendingResponse>, Error>> {
        Box::pin(async move {
            let inner = &self.backend.inner;
            let settings = &inner.settings;
            let ClientRequest {
                request_id,
                mut meta,
                job,
                expiry,
                ..
            } = request;
            let suppress = job.control.suppress_response;
            // PySOA's `service.{service}.{client_id}!{request_id:012x}`, built without the formatting machinery,
            // which cost more than the rest of the call's text handling.
            let mut reply_to = String::with_capacity(self.reply_prefix.len() + 16);
            reply_to.push_str(&self.reply_prefix);
            push_hex(&mut reply_to, request_id, 12);
            let reply_key = [KEY_PREFIX, &reply_to].concat();
            // With a per-call timeout T, PySOA sets the expiry to now + T and the list's TTL to T + 10.
            let (expiry_seconds, ttl) = match expiry {
                Some(t) => (whole_seconds(t), whole_seconds(t) + 10),
                None => (
                    settings.message_expiry_in_seconds,
                    settings.message_expiry_in_seconds,
                ),
            };
            meta.insert("reply_to", reply_to);
            message::set_expiry(&mut meta, message::now() + expiry_seconds as f64);
            let limit = settings.max_message_size(false);
            let write = |serializer: &dyn Serializer, out: &mut Vec<u8>| {
                serializer.encode_request_into(&Value::from(request_id), &meta, &job, out)
            };
            let frames = match message::encode(self.serializer, self.version, write, limit, None) {
                Ok(frames) => frames,
                Err(EncodeError::TooLarge { size, limit }) => {
                    return Err(Error::MessageTooLarge { size, limit })
                }
                Err(EncodeError::NotSerializable(e)) => {
                    return Err(Error::invalid_message(
                        "the request cannot be serialized",
                        e,
                    ))
                }
            };
            if let Some(threshold) = settings.log_threshold(false) {
                let size: usize = frames.iter().map(Vec::len).sum();
                if size > threshold {
                    tracing::warn!(target: "rsoa::transport::oversized_message", service = %self.service, size, "large request");
                }
            }
            // The call takes its place among the reply listeners before the request goes out, so its reply queue is
            // watched by the time the response can arrive.
            let deadline = expiry.map(|t| Instant::now() + t);
            let master = inner.request_master();
            let (pending, wake) = if suppress {
                (None, None)
            } else {
                let wait =
                    expiry.unwrap_or(Duration::from_secs(settings.receive_timeout_in_seconds));
                let until = tokio::time::Instant::now() + wait;
                let reply_master = inner.reply_master(&reply_key);
                let assigned = inner.masters[reply_master]
                    .replies
                    .wait(reply_key, until, wait)
                    .await?;
                let default = self.serializer;
                let pending = PendingResponse::new(receive(
                    assigned.waiter,
                    request_id,
                    until,
                    wait,
                    default,
                    (inner.clone(), Instant::now()),
                ));
                (Some(pending), assigned.wake.map(|key| (reply_master, key)))
            };
            let push = async {
                match <[Vec<u8>; 1]>::try_from(frames) {
                    Ok([frame]) => {
                        inner
                            .push_batched(
                                master,
                                &self.request_key,
                                ttl,
                                Bytes::from(frame),
                                deadline,
                            )
                            .await
                    }
                    Err(frames) => {
                        for frame in frames {
                            inner
                                .push(master, &self.request_key, ttl, Bytes::from(frame), deadline)
                                .await?;
                        }
                        Ok(())
                    }
                }
            };
            match wake {
                None => push.await?,
                Some((reply_master, key)) => {
                    // The listener is woken beside the request (the request is polled first, so it goes out first).
                    let wake = inner.push_batched(
                        reply_master,
                        &key,
                        WAKE_TTL_SECONDS,
                        Bytes::from_static(WAKE),
                        None,
                    );
                    let (pushed, woken) = futures::future::join(push, wake).await;
                    if let Err(e) = woken {
                        tracing::debug!(error = %e, "could not wake a reply listener; it looks again within seconds");
                    }
                    pushed?;
                }
            }
            Ok(pending)
        })
    }
}

fn invalid(message: impl Into<String>) -> Error {
    Error::InvalidMessage {
        message: message.into(),
        source: None,
    }
}

/// Receives a response (reassembling chunks) from the call's own reply queue, as its listener pops it.
async fn receive(
    mut waiter: Waiter,
    request_id: u64,
    deadline: tokio::time::Instant,
    wait: Duration,
    default: &'static dyn Serializer,
    (backend, sent): (Arc<BackendInner>, Instant),
) -> Result<ClientResponse, Error> {
    let first = waiter.next(deadline, wait).await?;
    let mut size = first.len();
    let parsed =
        frame::parse(&first).map_err(|e| Error::invalid_message("unreadable response frame", e))?;
    let version = parsed.version;
    let serializer = message::serializer_for(parsed.content_type, default);
    let decoded = match parsed.chunk_count {
        None => message::decode(parsed.payload, version, serializer),
        Some(count) => {
            let count: usize = count
                .parse()
                .map_err(|_| invalid(format!("chunk-count {count:?} is not a number")))?;
            let mut payload = Vec::with_capacity(parsed.payload.len() * count.min(64));
            payload.extend_from_slice(parsed.payload);
            // PySOA does not check that the first chunk is number 1; rsoa does.
            let mut expected = 1;
            let mut id = parsed.chunk_id.map(str::to_owned);
            loop {
                if id.as_deref().and_then(|s| s.parse::<usize>().ok()) != Some(expected) {
                    return Err(invalid(format!(
                        "expected chunk {expected} of {count}, got {id:?}"
                    )));
                }
                if expected == count {
                    break;
                }
                expected += 1;
                let next = waiter.next(deadline, wait).await?;
                let chunk = frame::parse(&next)
                    .map_err(|e| Error::invalid_message("unreadable response chunk", e))?;
                if chunk.chunk_count.and_then(|c| c.parse::<usize>().ok()) != Some(count) {
                    return Err(invalid(
                        "a response chunk does not carry the same chunk-count",
                    ));
                }
                payload.extend_from_slice(chunk.payload);
                size += next.len();
                id = chunk.chunk_id.map(str::to_owned);
            }
            message::decode(&payload, version, serializer)
        }
    }
    .map_err(|e| invalid(format!("unreadable response: {e}")))?;
    if message::expiry(&decoded.meta).is_some_and(|at| at < message::now()) {
        return Err(Error::Expired);
    }
    if decoded.request_id.as_u64() != Some(request_id) {
        return Err(invalid(format!(
            "the response is for request {:?}, not {request_id}",
            decoded.request_id
        )));
    }
    let job = JobResponse::from_owned_value(decoded.body)
        .map_err(|e| Error::invalid_message("invalid job response", e))?;
    backend.metrics.received(metric::Side::CLIENT, size);
    backend.metrics.response_time(sent);
    let mut response = ClientResponse::new(request_id, job);
    response.meta = decoded.meta;
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_matches_the_formatting_machinery() {
        for value in [0, 1, 0xabc, 0xffff_ffff_ffff, 0x1_0000_0000_0000, u64::MAX] {
            for width in [0, 12, 16] {
                let mut out = String::new();
                push_hex(&mut out, value, width);
                assert_eq!(out, format!("{value:0width$x}"), "{value} {width}");
            }
        }
    }
}
