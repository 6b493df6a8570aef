//! The Redis transport's metrics, through the [`metrics`] facade, under PySOA's names where PySOA has one
//! (`server.transport.redis_gateway.*` and `client.transport.redis_gateway.*`); durations in seconds, sizes in
//! bytes. A backend registers its handles with the recorder installed when it first uses them: install one before
//! connecting.
//!
//! | name | kind | labels | PySOA |
//! |---|---|---|---|
//! | `{server,client}.transport.redis_gateway.send` | histogram: seconds to push a message (Redis round trip) | — | same (timer) |
//! | `{server,client}.transport.redis_gateway.send.message_size` | histogram: bytes | — | same |
//! | `server.transport.redis_gateway.send.chunk_count` | histogram: chunks of a chunked response | — | same |
//! | `{server,client}.transport.redis_gateway.send.queue_full_retry` | counter | — | same |
//! | `{server,client}.transport.redis_gateway.send.error.redis_queue_full` | counter | — | same |
//! | `{server,client}.transport.redis_gateway.receive.message_size` | histogram: bytes of each message received (a chunked response whole): its count is the messages received | — | — |
//! | `client.transport.redis_gateway.receive` | histogram: seconds from sending a request to having its response | — | same name (PySOA times the wait in `receive` alone) |
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

/// A backend's handles on the metrics of every message (client side first), registered with the recorder of the
/// moment when first used: a lookup by name costs more than the update itself.
#[derive(Default)]
pub(crate) struct Handles {
    time: [OnceLock<Histogram>; 2],
    size: [OnceLock<Histogram>; 2],
    received: [OnceLock<Histogram>; 2],
    response_time: OnceLock<Histogram>,
}

impl Handles {
    /// Records a message received whole (its chunks together): its size in bytes.
    pub(crate) fn received(&self, side: Side, size: usize) {
        self.received[usize::from(side.0)]
            .get_or_init(|| {
                metrics::histogram!(side.name(
                    "server.transport.redis_gateway.receive.message_size",
                    "client.transport.redis_gateway.receive.message_size"
                ))
            })
            .record(size as f64);
    }

    /// Records the seconds a call waited from sending its request to having its response.
    pub(crate) fn response_time(&self, sent: Instant) {
        self.response_time
            .get_or_init(|| metrics::histogram!("client.transport.redis_gateway.receive"))
            .record(sent.elapsed().as_secs_f64());
    }
}

/// Which side sent a message: responses go to reply queues, whose names have a `!`.
#[derive(Clone, Copy)]
pub(crate) struct Side(bool);

impl Side {
    pub(crate) fn of_queue(key: &str) -> Side {
        Side(key.contains('!'))
    }

    /// The server's side: it receives requests and sends responses.
    pub(crate) const SERVER: Side = Side(true);
    /// The client's side.
    pub(crate) const CLIENT: Side = Side(false);

    fn name(self, server: &'static str, client: &'static str) -> &'static str {
        if self.0 {
            server
        } else {
            client
        }
    }

    /// Records a message pushed: how long the push took and how large the message was.
    pub(crate) fn sent(self, handles: &Handles, started: Instant, size: usize) {
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
