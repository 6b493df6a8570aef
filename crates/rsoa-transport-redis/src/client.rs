//! The client half: push requests to a service's queue and pop each response from a reply queue of its own.
//!
//! PySOA gives each client one reply queue and matches responses by request id, which breaks when two chunked
//! responses interleave, and hands a late response to whichever call reads next. rsoa gives each request its own
//! reply queue (`service.<name>.<client id>!<request id>`, a name PySOA servers answer to like any other), so
//! chunks can never interleave, a late response lands where nobody reads, and Redis expires it.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rsoa_codec::Serializer;
use rsoa_protocol::{JobResponse, Value};
use rsoa_transport::{
    BoxFuture, ClientRequest, ClientResponse, ClientTransport, Error, PendingResponse,
};

use crate::backend::{BlockingConnection, RedisBackend};
use crate::frame::{self, ProtocolVersion};
use crate::message::{self, EncodeError};
use crate::ring::{service_queue_key, KEY_PREFIX};

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
    /// A transport to `service` on `backend`, checking the backend's settings for a client.
    pub fn new(
        backend: &RedisBackend,
        service: &str,
    ) -> Result<RedisClientTransport, crate::Error> {
        let settings = backend.settings();
        settings.validate_client()?;
        let mime = settings.default_serializer_config.mime_type()?;
        let client_id = uuid::Uuid::new_v4().simple().to_string();
        Ok(RedisClientTransport {
            backend: backend.clone(),
            service: service.to_owned(),
            request_key: service_queue_key(service),
            reply_prefix: format!("service.{service}.{client_id}!"),
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
            // The reply's BLPOP goes out before the request, on its own connection, so that the response is
            // handed over the moment the server pushes it, and nothing is left to do between the push and the pop.
            let pending = if suppress {
                None
            } else {
                let connection = inner.blocking(inner.reply_master(&reply_key)).await?;
                let default = self.serializer;
                let wait = expiry.map_or(settings.receive_timeout_in_seconds as f64, |t| {
                    t.as_secs_f64()
                });
                let mut pending = PendingResponse::new(async move {
                    receive(connection, &reply_key, request_id, wait, default).await
                });
                // Polling once sends the BLPOP; the caller's await polls again with its own waker.
                let mut cx = Context::from_waker(Waker::noop());
                if let Poll::Ready(result) = Pin::new(&mut pending).poll(&mut cx) {
                    pending = PendingResponse::ready(result);
                }
                Some(pending)
            };
            let deadline = expiry.map(|t| Instant::now() + t);
            let master = inner.request_master();
            match <[Vec<u8>; 1]>::try_from(frames) {
                Ok([frame]) => {
                    inner
                        .push_batched(master, &self.request_key, ttl, Bytes::from(frame), deadline)
                        .await?
                }
                Err(frames) => {
                    for frame in frames {
                        inner
                            .push(master, &self.request_key, ttl, Bytes::from(frame), deadline)
                            .await?;
                    }
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

/// Pops a response (reassembling chunks) from its own reply queue.
async fn receive(
    mut connection: BlockingConnection,
    key: &str,
    request_id: u64,
    wait: f64,
    default: &'static dyn Serializer,
) -> Result<ClientResponse, Error> {
    let timeout = Duration::try_from_secs_f64(wait).unwrap_or(Duration::MAX);
    let first = connection
        .blpop(key, wait)
        .await?
        .ok_or(Error::Timeout(timeout))?;
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
                let next = connection
                    .blpop(key, wait)
                    .await?
                    .ok_or(Error::Timeout(timeout))?;
                let chunk = frame::parse(&next)
                    .map_err(|e| Error::invalid_message("unreadable response chunk", e))?;
                if chunk.chunk_count.and_then(|c| c.parse::<usize>().ok()) != Some(count) {
                    return Err(invalid(
                        "a response chunk does not carry the same chunk-count",
                    ));
                }
                payload.extend_from_slice(chunk.payload);
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
