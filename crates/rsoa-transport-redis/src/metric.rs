//! The Redis transport's metrics, through the [`metrics`] facade, under PySOA's names where PySOA has one
//! (`server.transport.redis_gateway.*` and `client.transport.redis_gateway.*`); durations in seconds, sizes in
//! bytes.
//!
//! | name | kind | labels | PySOA |
//! |---|---|---|---|
//! | `{server,client}.transport.redis_gateway.send` | histogram: seconds to push a message (Redis round trip) | — | same (timer) |
//! | `{server,client}.transport.redis_gateway.send.message_size` | histogram: bytes | — | same |
//! | `server.transport.redis_gateway.send.chunk_count` | histogram: chunks of a chunked response | — | same |
//! | `{server,client}.transport.redis_gateway.send.queue_full_retry` | counter | — | same |
//! | `{server,client}.transport.redis_gateway.send.error.redis_queue_full` | counter | — | same |
//! | `server.transport.redis_gateway.receive.dropped` | counter: requests logged and dropped | `reason` | — (PySOA exits) |
//! | `server.error.response_too_large`, `server.error.response_not_serializable` | counter | — | same |
//! | `client.transport.redis_gateway.receive.error.timeout` | counter: calls that timed out | — | same |

use std::sync::OnceLock;
use std::time::Instant;

use metrics::Histogram;

/// `server.transport.redis_gateway.receive.dropped`.
pub const DROPPED: &str = "server.transport.redis_gateway.receive.dropped";
/// `server.transport.redis_gateway.send.chunk_count`.
pub const CHUNK_COUNT: &str = "server.transport.redis_gateway.send.chunk_count";
/// `server.error.response_too_large`.
pub const RESPONSE_TOO_LARGE: &str = "server.error.response_too_large";
/// `server.error.response_not_serializable`.
pub const RESPONSE_NOT_SERIALIZABLE: &str = "server.error.response_not_serializable";
/// `client.transport.redis_gateway.receive.error.timeout`.
pub const RECEIVE_TIMEOUT: &str = "client.transport.redis_gateway.receive.error.timeout";

/// A backend's handles on its send metrics (client side first), registered with the recorder of the moment when
/// first used: a lookup by name costs more than the update itself.
#[derive(Default)]
pub(crate) struct SendHandles {
    time: [OnceLock<Histogram>; 2],
    size: [OnceLock<Histogram>; 2],
}

/// Which side sent a message: responses go to reply queues, whose names have a `!`.
#[derive(Clone, Copy)]
pub(crate) struct Side(bool);

impl Side {
    pub(crate) fn of_queue(key: &str) -> Side {
        Side(key.contains('!'))
    }

    fn name(self, server: &'static str, client: &'static str) -> &'static str {
        if self.0 {
            server
        } else {
            client
        }
    }

    /// Records a message pushed: how long the push took and how large the message was.
    pub(crate) fn sent(self, handles: &SendHandles, started: Instant, size: usize) {
        let seconds = started.elapsed().as_secs_f64();
        let i = usize::from(self.0);
        handles.time[i]
            .get_or_init(|| {
                metrics::histogram!(self.name(
                    "server.transport.redis_gateway.send",
                    "client.transport.redis_gateway.send"
                ))
            })
            .record(seconds);
        handles.size[i]
            .get_or_init(|| {
                metrics::histogram!(self.name(
                    "server.transport.redis_gateway.send.message_size",
                    "client.transport.redis_gateway.send.message_size"
                ))
            })
            .record(size as f64);
    }

    pub(crate) fn queue_full_retry(self) {
        metrics::counter!(self.name(
            "server.transport.redis_gateway.send.queue_full_retry",
            "client.transport.redis_gateway.send.queue_full_retry"
        ))
        .increment(1);
    }

    pub(crate) fn queue_full(self) {
        metrics::counter!(self.name(
            "server.transport.redis_gateway.send.error.redis_queue_full",
            "client.transport.redis_gateway.send.error.redis_queue_full"
        ))
        .increment(1);
    }
}

/// A request logged and dropped from a service queue, by why.
pub(crate) fn dropped(reason: &'static str) {
    metrics::counter!(DROPPED, "reason" => reason).increment(1);
}
