//! The Redis gateway transport, wire-compatible with PySOA 1.4.9.
//!
//! A Python PySOA client or server cannot tell that the other side is rsoa: queue names, the push script, the
//! list expiry, framing versions 1 to 3, headers, chunked responses, the envelope and its meta, and the choice of
//! master for each queue are PySOA's, byte for byte (the tests replay PySOA's own recorded frames).
//!
//! Build a [`RedisBackend`] from [`RedisSettings`] (PySOA's setting names and defaults, loadable from JSON), then
//! a [`RedisClientTransport`] per service a client calls and a [`RedisServerTransport`] for a server, which
//! `rsoa_server::serve` runs.
//!
//! Beyond PySOA:
//!
//! - Each request gets its own reply queue, so chunked responses are safe with parallel calls, a late response
//!   never reaches the wrong call, and a timed-out call leaves nothing behind but a list Redis expires.
//! - A server waits on every master at once, instead of polling them one by one.
//! - Redis Cluster works: every key the protocol touches is a single key.
//! - Queue-full back-off is bounded by a setting and by the call's timeout (PySOA's can wait four minutes).
//! - A malformed message never stops a server: it is logged and dropped.
//!
//! ```no_run
//! # async fn demo(server: rsoa_server::Server) -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use rsoa_transport_redis::{RedisBackend, RedisServerTransport, RedisSettings};
//!
//! let settings = RedisSettings::from_json_file("redis.json")?;
//! let backend = RedisBackend::connect(settings).await?;
//! let transport = Arc::new(RedisServerTransport::new(&backend, server.service_name())?);
//! rsoa_server::serve(server, transport, rsoa_server::shutdown_signal(), Duration::from_secs(30)).await;
//! # Ok(()) }
//! ```

mod backend;
mod client;
mod frame;
mod message;
pub mod metric;
mod replies;
mod ring;
mod server;
mod settings;
#[cfg(test)]
mod vectors;

// The unit tests that need a real Redis share the integration tests' process fixtures.
#[cfg(test)]
#[path = "../tests/support/mod.rs"]
mod test_support;
#[cfg(test)]
extern crate self as rsoa_transport_redis;

pub use backend::RedisBackend;
pub use client::{RedisClientTransport, RedisClientTransportBuilder};
pub use frame::{parse as parse_frame, write as write_frame, Frame, FrameError, ProtocolVersion};
pub use ring::{reply_master_index, service_queue_key, KEY_PREFIX};
pub use server::{serve_workers, RedisServerTransport};
pub use settings::{
    BackendSettings, BackendType, ConnectionSettings, Host, RedisSettings, SerializerSettings,
    DEFAULT_MAXIMUM_NESTING_DEPTH, DEFAULT_MAXIMUM_REQUEST_SIZE, MAX_REPLIES_PER_CONNECTION,
    MIN_CHUNK_THRESHOLD,
};

/// What can go wrong building the Redis transport.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The settings are invalid.
    #[error("invalid Redis transport settings: {0}")]
    Settings(String),
    /// A runtime for the backend could not be had: none can be started, or a blocking constructor was called
    /// inside an async runtime.
    #[error("runtime: {0}")]
    Runtime(String),
    /// A master could not be reached.
    #[error("cannot connect to Redis ({master}): {message}")]
    Connect {
        /// Which master.
        master: String,
        /// What went wrong.
        message: String,
    },
}
