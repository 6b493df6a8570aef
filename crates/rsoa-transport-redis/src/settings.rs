//! Redis gateway settings, with PySOA's names and defaults, loadable from JSON.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::frame::ProtocolVersion;
use crate::Error;

/// Which kind of Redis deployment holds the queues.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum BackendType {
    /// One or more independent Redis servers (PySOA's `redis.standard`).
    #[serde(rename = "redis.standard")]
    Standard,
    /// Masters found through Redis Sentinel (PySOA's `redis.sentinel`).
    #[serde(rename = "redis.sentinel")]
    Sentinel,
    /// A Redis Cluster (beyond PySOA: every key the protocol touches is a single key, so it works on a cluster).
    #[serde(rename = "redis.cluster")]
    Cluster,
}

/// A host: `"host"` (port from `redis_port`), `"host:port"`, `["host", port]`, or a URL: `redis://[user:password@]host[:port][/db]`,
/// `rediss://…` (TLS, with `ssl_ca_certs` as for `ssl`), or `unix:///path/to/redis.sock[?db=N]` (a Unix socket, as
/// redis-py writes it; `redis+unix://` too). A URL's credentials and database win over `connection_kwargs`.
/// `Debug` shows a URL's password as `***`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Host {
    /// A name or address, optionally with `:port`.
    Name(String),
    /// A name or address and a port.
    Pair(String, u16),
}

impl Host {
    /// The URL this host is given as, if it is one.
    pub fn url(&self) -> Option<&str> {
        match self {
            Host::Name(name) if name.contains("://") => Some(name),
            _ => None,
        }
    }

    /// The host and port, using `default_port` when the host gives none.
    pub fn resolve(&self, default_port: u16) -> Result<(String, u16), Error> {
        match self {
            Host::Pair(host, port) => Ok((host.clone(), *port)),
            Host::Name(name) => match name.rsplit_once(':') {
                // An IPv6 address without a port has colons too; only take a suffix that is a port number.
                Some((host, port)) if !host.is_empty() && !host.ends_with(':') => {
                    match port.parse() {
                        Ok(port) => Ok((host.trim_matches(['[', ']']).to_owned(), port)),
                        Err(_) => Err(Error::Settings(format!(
                            "host {name:?} has an invalid port"
                        ))),
                    }
                }
                _ => Ok((name.clone(), default_port)),
            },
        }
    }
}

/// Connection options, named as redis-py names them in PySOA's `connection_kwargs` and `sentinel_kwargs`. `Debug`
/// shows the password as `***`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ConnectionSettings {
    /// The ACL user name (Redis 6 and later).
    pub username: Option<String>,
    /// The password.
    pub password: Option<String>,
    /// The database number (`redis_db` sets it too).
    pub db: Option<u8>,
    /// Whether to use TLS.
    pub ssl: bool,
    /// A PEM file of certificate authorities to trust, for TLS.
    pub ssl_ca_certs: Option<String>,
    /// A PEM file with this client's certificate (and any intermediates), for a Redis that requires client
    /// certificates (`tls-auth-clients yes`); goes with `ssl_keyfile`.
    pub ssl_certfile: Option<String>,
    /// The PEM file of that certificate's private key.
    pub ssl_keyfile: Option<String>,
    /// How long to wait for a connection, in seconds (default 5).
    pub socket_connect_timeout: f64,
    /// How long to wait for a command's reply, in seconds (none by default; blocking pops are never cut short).
    pub socket_timeout: Option<f64>,
    /// Whether to enable TCP keep-alive (default true).
    pub socket_keepalive: bool,
    /// The longest pause between reconnection attempts, in seconds (default 2).
    pub reconnect_max_delay: f64,
}

impl fmt::Debug for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(name) => f.debug_tuple("Name").field(&redacted(name)).finish(),
            Host::Pair(name, port) => f.debug_tuple("Pair").field(name).field(port).finish(),
        }
    }
}

impl fmt::Debug for ConnectionSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Every field, so that a new one cannot be left out unseen; the password masked.
        let ConnectionSettings {
            username,
            password,
            db,
            ssl,
            ssl_ca_certs,
            ssl_certfile,
            ssl_keyfile,
            socket_connect_timeout,
            socket_timeout,
            socket_keepalive,
            reconnect_max_delay,
        } = self;
        f.debug_struct("ConnectionSettings")
            .field("username", username)
            .field("password", &password.as_ref().map(|_| "***"))
            .field("db", db)
            .field("ssl", ssl)
            .field("ssl_ca_certs", ssl_ca_certs)
            .field("ssl_certfile", ssl_certfile)
            .field("ssl_keyfile", ssl_keyfile)
            .field("socket_connect_timeout", socket_connect_timeout)
            .field("socket_timeout", socket_timeout)
            .field("socket_keepalive", socket_keepalive)
            .field("reconnect_max_delay", reconnect_max_delay)
            .finish()
    }
}

impl Default for ConnectionSettings {
    fn default() -> ConnectionSettings {
        ConnectionSettings {
            username: None,
            password: None,
            db: None,
            ssl: false,
            ssl_ca_certs: None,
            ssl_certfile: None,
            ssl_keyfile: None,
            socket_connect_timeout: 5.0,
            socket_timeout: None,
            socket_keepalive: true,
            reconnect_max_delay: 2.0,
        }
    }
}

/// Where the Redis servers are (PySOA's `backend_layer_kwargs`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct BackendSettings {
    /// The Redis servers (standard), the Sentinels (sentinel) or the cluster's seed nodes (cluster). Empty means
    /// `localhost` on the default port.
    pub hosts: Vec<Host>,
    /// The port of hosts given without one (default 6379; 26379 for Sentinels, unlike PySOA, which wrongly uses
    /// 6379 there).
    pub redis_port: Option<u16>,
    /// The database number.
    pub redis_db: Option<u8>,
    /// How to connect to the Redis servers.
    pub connection_kwargs: ConnectionSettings,
    /// The Sentinel master names, in ring order; must be the same list, in the same order, on every client and
    /// server. When empty, as in PySOA, the masters are those `SENTINEL MASTERS` lists on the first Sentinel that
    /// answers, in its order; that order is not stable across Sentinels (PySOA's known bug 12), so with more
    /// than one master a warning asks for the list.
    pub sentinel_services: Vec<String>,
    /// How many times to retry finding a master after a failover (default 0).
    pub sentinel_failover_retries: u32,
    /// How to connect to the Sentinels.
    pub sentinel_kwargs: ConnectionSettings,
}

/// Which serializer a transport writes with (PySOA's `default_serializer_config`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SerializerSettings {
    /// `msgpack` or `json`, or PySOA's class paths for them.
    pub path: String,
}

impl Default for SerializerSettings {
    fn default() -> SerializerSettings {
        SerializerSettings {
            path: "msgpack".to_owned(),
        }
    }
}

impl SerializerSettings {
    /// The MIME type of the chosen serializer.
    pub fn mime_type(&self) -> Result<&'static str, Error> {
        match self.path.as_str() {
            "msgpack" | "pysoa.common.serializer:MsgpackSerializer" | "application/msgpack" => {
                Ok("application/msgpack")
            }
            "json" | "pysoa.common.serializer:JSONSerializer" | "application/json" => {
                Ok("application/json")
            }
            other => Err(Error::Settings(format!(
                "default_serializer_config.path: unknown serializer {other:?} (use msgpack or json)"
            ))),
        }
    }
}

/// The Redis gateway transport's settings, with PySOA's names and defaults.
///
/// ```
/// use rsoa_transport_redis::RedisSettings;
///
/// let settings = RedisSettings::from_json(r#"{
///     "backend_type": "redis.standard",
///     "backend_layer_kwargs": {"hosts": ["127.0.0.1:6379", ["10.0.0.2", 6380]]},
///     "receive_timeout_in_seconds": 3
/// }"#).unwrap();
/// assert_eq!(settings.queue_capacity, 10_000);
///
/// let err = RedisSettings::from_json(r#"{"backend_type": "redis.standard", "queue_capacty": 5}"#).unwrap_err();
/// assert!(err.to_string().contains("queue_capacty"), "{err}");
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RedisSettings {
    /// The kind of deployment (required, as in PySOA).
    pub backend_type: BackendType,
    /// Where the servers are.
    #[serde(default)]
    pub backend_layer_kwargs: BackendSettings,
    /// How long a message stays valid, in seconds (default 60).
    #[serde(default = "defaults::message_expiry")]
    pub message_expiry_in_seconds: u64,
    /// The most messages a queue may hold (default 10 000).
    #[serde(default = "defaults::queue_capacity")]
    pub queue_capacity: u64,
    /// How many times to retry pushing to a full queue (default 10).
    #[serde(default = "defaults::queue_full_retries")]
    pub queue_full_retries: u32,
    /// The longest total pause across queue-full retries, in seconds (default 10; PySOA's back-off can add up to
    /// four minutes). A client call's own timeout bounds it too.
    #[serde(default = "defaults::queue_full_max_wait")]
    pub queue_full_max_wait_in_seconds: f64,
    /// How long a receive waits, in seconds (default 5).
    #[serde(default = "defaults::receive_timeout")]
    pub receive_timeout_in_seconds: u64,
    /// The serializer for outgoing messages (incoming ones use the one their `content-type` names).
    #[serde(default)]
    pub default_serializer_config: SerializerSettings,
    /// The largest serialized message this side sends (102 400 for clients, 256 000 for servers).
    #[serde(default)]
    pub maximum_message_size_in_bytes: Option<usize>,
    /// Messages larger than this are logged (same defaults; 0 turns it off).
    #[serde(default)]
    pub log_messages_larger_than_bytes: Option<usize>,
    /// Clients only: the framing version to send (1, 2 or 3; default 3).
    #[serde(default)]
    pub protocol_version: Option<u8>,
    /// Servers only: split responses larger than this into chunks (at least 102 400; negative, the default, never).
    #[serde(default)]
    pub chunk_messages_larger_than_bytes: Option<i64>,
    /// Servers only: how many requests a server pops at once from each master (default 1; more lets one server
    /// process take several requests per round trip to Redis).
    #[serde(default)]
    pub receive_batch_size: Option<usize>,
    /// Servers only: the largest request a server reads (default 1 MiB, ten times what a PySOA or rsoa client sends
    /// by default; PySOA reads any). A larger one is not decoded: its caller gets `REQUEST_TOO_LARGE` (its request id and meta are read from before the body, where
    /// PySOA's and rsoa's clients put them), or, if even they cannot be read, it is logged and dropped.
    #[serde(default)]
    pub maximum_request_size_in_bytes: Option<usize>,
    /// Servers only: the deepest nesting of arrays and maps a request may have (default 256). A deeper one is
    /// answered with `INVALID` on `body`, as above.
    #[serde(default)]
    pub maximum_nesting_depth: Option<usize>,
    /// Clients only: the most connections per master that wait for responses (default 8). Each waits on the reply
    /// queues of many calls at once, so a process never holds more than this (plus two for sending) however many
    /// calls are in flight.
    #[serde(default = "defaults::reply_connections")]
    pub reply_connections: usize,
    /// Clients only: how many calls one reply connection waits for at once (default 128). Calls beyond
    /// `reply_connections × replies_per_connection` per master wait inside the process for a place, within their
    /// own timeouts. At most [`MAX_REPLIES_PER_CONNECTION`].
    #[serde(default = "defaults::replies_per_connection")]
    pub replies_per_connection: usize,
    /// Clients only: a reply connection with no call to wait for is closed after this many seconds (default 60).
    #[serde(default = "defaults::idle_connection_timeout")]
    pub idle_connection_timeout_in_seconds: f64,
}

mod defaults {
    pub(super) fn message_expiry() -> u64 {
        60
    }
    pub(super) fn queue_capacity() -> u64 {
        10_000
    }
    pub(super) fn queue_full_retries() -> u32 {
        10
    }
    pub(super) fn queue_full_max_wait() -> f64 {
        10.0
    }
    pub(super) fn receive_timeout() -> u64 {
        5
    }
    pub(super) fn reply_connections() -> usize {
        8
    }
    pub(super) fn replies_per_connection() -> usize {
        128
    }
    pub(super) fn idle_connection_timeout() -> f64 {
        60.0
    }
}

/// The most calls one reply connection may wait for at once (`replies_per_connection`).
pub const MAX_REPLIES_PER_CONNECTION: usize = 4096;

/// A URL with its password, if any, replaced by `***`, for messages and labels.
pub(crate) fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// The default of `maximum_request_size_in_bytes`.
pub const DEFAULT_MAXIMUM_REQUEST_SIZE: usize = 1024 * 1024;

/// The default of `maximum_nesting_depth`: the codec's.
pub const DEFAULT_MAXIMUM_NESTING_DEPTH: usize = rsoa_codec::Limits::DEFAULT.max_depth;

/// The smallest chunk threshold PySOA accepts.
pub const MIN_CHUNK_THRESHOLD: i64 = 102_400;

impl RedisSettings {
    /// Settings for a standard backend on these hosts, everything else default.
    pub fn standard<H: Into<String>>(hosts: impl IntoIterator<Item = H>) -> RedisSettings {
        let mut settings = RedisSettings::new(BackendType::Standard);
        settings.backend_layer_kwargs.hosts =
            hosts.into_iter().map(|h| Host::Name(h.into())).collect();
        settings
    }

    /// Default settings for a backend type.
    pub fn new(backend_type: BackendType) -> RedisSettings {
        RedisSettings {
            backend_type,
            backend_layer_kwargs: BackendSettings::default(),
            message_expiry_in_seconds: defaults::message_expiry(),
            queue_capacity: defaults::queue_capacity(),
            queue_full_retries: defaults::queue_full_retries(),
            queue_full_max_wait_in_seconds: defaults::queue_full_max_wait(),
            receive_timeout_in_seconds: defaults::receive_timeout(),
            default_serializer_config: SerializerSettings::default(),
            maximum_message_size_in_bytes: None,
            log_messages_larger_than_bytes: None,
            protocol_version: None,
            chunk_messages_larger_than_bytes: None,
            receive_batch_size: None,
            maximum_request_size_in_bytes: None,
            maximum_nesting_depth: None,
            reply_connections: defaults::reply_connections(),
            replies_per_connection: defaults::replies_per_connection(),
            idle_connection_timeout_in_seconds: defaults::idle_connection_timeout(),
        }
    }

    /// Reads settings from JSON text; an error names the field at fault.
    pub fn from_json(text: &str) -> Result<RedisSettings, Error> {
        let de = &mut serde_json::Deserializer::from_str(text);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            Error::Settings(if path == "." {
                e.into_inner().to_string()
            } else {
                format!("{path}: {}", e.into_inner())
            })
        })
    }

    /// Reads settings from a JSON file.
    pub fn from_json_file(path: impl AsRef<Path>) -> Result<RedisSettings, Error> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Settings(format!("cannot read {}: {e}", path.display())))?;
        RedisSettings::from_json(&text)
            .map_err(|e| Error::Settings(format!("{}: {e}", path.display())))
    }

    fn check_common(&self) -> Result<(), Error> {
        let bad = |field: &str, why: &str| Err(Error::Settings(format!("{field}: {why}")));
        if self.message_expiry_in_seconds == 0 {
            return bad("message_expiry_in_seconds", "must be at least 1");
        }
        if self.queue_capacity == 0 {
            return bad("queue_capacity", "must be at least 1");
        }
        // NaN fails this check too.
        if self.queue_full_max_wait_in_seconds.is_nan() || self.queue_full_max_wait_in_seconds < 0.0
        {
            return bad("queue_full_max_wait_in_seconds", "must be zero or more");
        }
        self.default_serializer_config.mime_type()?;
        let backend = &self.backend_layer_kwargs;
        for (key, connection) in [
            ("connection_kwargs", &backend.connection_kwargs),
            ("sentinel_kwargs", &backend.sentinel_kwargs),
        ] {
            if connection.ssl_certfile.is_some() != connection.ssl_keyfile.is_some() {
                return bad(
                    &format!("backend_layer_kwargs.{key}"),
                    "ssl_certfile and ssl_keyfile go together",
                );
            }
        }
        for host in &backend.hosts {
            match host.url() {
                Some(url) if self.backend_type != BackendType::Standard => {
                    return bad(
                        "backend_layer_kwargs.hosts",
                        &format!("{} is a URL; URLs name standard hosts only", redacted(url)),
                    )
                }
                Some(url) => {
                    crate::backend::url_config(url, &backend.connection_kwargs, None)?;
                }
                None => {
                    host.resolve(6379)?;
                }
            }
        }
        match self.backend_type {
            BackendType::Cluster if backend.redis_db.unwrap_or(0) != 0 => bad(
                "backend_layer_kwargs.redis_db",
                "a Redis Cluster has only database 0",
            ),
            _ => Ok(()),
        }
    }

    /// Checks a client's own settings, naming the first bad value; server-only settings there are refused as a
    /// likely mistake.
    pub fn validate_client(&self) -> Result<(), Error> {
        if self.chunk_messages_larger_than_bytes.is_some()
            || self.receive_batch_size.is_some()
            || self.maximum_request_size_in_bytes.is_some()
            || self.maximum_nesting_depth.is_some()
        {
            return Err(Error::Settings(
                "chunk_messages_larger_than_bytes, receive_batch_size, maximum_request_size_in_bytes and \
                 maximum_nesting_depth are server settings"
                    .to_owned(),
            ));
        }
        self.check_client_side()
    }

    /// Checks what a client transport uses, on a backend that may serve a server too (whose server-only settings
    /// the client side ignores).
    pub(crate) fn check_client_side(&self) -> Result<(), Error> {
        self.check_common()?;
        self.protocol_version()?;
        if self.reply_connections == 0 {
            return Err(Error::Settings(
                "reply_connections: must be at least 1".to_owned(),
            ));
        }
        // A listener passes its keys to a script, whose Lua stack takes at most 8,000 values.
        if !(1..=MAX_REPLIES_PER_CONNECTION).contains(&self.replies_per_connection) {
            return Err(Error::Settings(format!(
                "replies_per_connection: must be from 1 to {MAX_REPLIES_PER_CONNECTION}"
            )));
        }
        let idle = self.idle_connection_timeout_in_seconds;
        if idle.is_nan() || idle < 0.0 {
            return Err(Error::Settings(
                "idle_connection_timeout_in_seconds: must be zero or more".to_owned(),
            ));
        }
        Ok(())
    }

    /// Checks the settings for a server, naming the first bad value.
    pub fn validate_server(&self) -> Result<(), Error> {
        self.check_common()?;
        if self.protocol_version.is_some() {
            return Err(Error::Settings(
                "protocol_version is a client setting (a server answers in each request's version)"
                    .to_owned(),
            ));
        }
        if let Some(threshold) = self.chunk_threshold() {
            if (threshold as i64) < MIN_CHUNK_THRESHOLD {
                return Err(Error::Settings(format!(
                    "chunk_messages_larger_than_bytes: must be negative (off) or at least {MIN_CHUNK_THRESHOLD}"
                )));
            }
            if self.max_message_size(true) < threshold * 5 {
                return Err(Error::Settings(
                    "maximum_message_size_in_bytes: must be at least 5 times chunk_messages_larger_than_bytes"
                        .to_owned(),
                ));
            }
        }
        if self.maximum_request_size_in_bytes == Some(0) {
            return Err(Error::Settings(
                "maximum_request_size_in_bytes: must be at least 1".to_owned(),
            ));
        }
        if self.maximum_nesting_depth == Some(0) {
            return Err(Error::Settings(
                "maximum_nesting_depth: must be at least 1".to_owned(),
            ));
        }
        if self.receive_batch_size == Some(0) {
            return Err(Error::Settings(
                "receive_batch_size: must be at least 1".to_owned(),
            ));
        }
        Ok(())
    }

    /// The framing version a client sends.
    pub fn protocol_version(&self) -> Result<ProtocolVersion, Error> {
        match self.protocol_version {
            None => Ok(ProtocolVersion::V3),
            Some(n) => ProtocolVersion::from_number(u64::from(n))
                .ok_or_else(|| Error::Settings(format!("protocol_version: {n} is not 1, 2 or 3"))),
        }
    }

    /// The size limit for messages this side sends.
    pub fn max_message_size(&self, server: bool) -> usize {
        self.maximum_message_size_in_bytes
            .unwrap_or(if server { 256_000 } else { 102_400 })
    }

    /// The size above which sent messages are logged, if any.
    pub fn log_threshold(&self, server: bool) -> Option<usize> {
        match self.log_messages_larger_than_bytes {
            Some(0) => None,
            Some(n) => Some(n),
            None => Some(if server { 256_000 } else { 102_400 }),
        }
    }

    /// The chunking threshold, if chunking is on.
    pub fn chunk_threshold(&self) -> Option<usize> {
        self.chunk_messages_larger_than_bytes
            .filter(|&n| n >= 0)
            .map(|n| n as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_shows_no_password() {
        let mut settings = RedisSettings::standard(["redis://ops:url-secret@redis-1:6379"]);
        settings.backend_layer_kwargs.connection_kwargs.username = Some("svc".into());
        settings.backend_layer_kwargs.connection_kwargs.password = Some("conn-secret".into());
        settings.backend_layer_kwargs.sentinel_kwargs.password = Some("sentinel-secret".into());
        let shown = format!("{settings:?} {settings:#?}");
        for secret in ["url-secret", "conn-secret", "sentinel-secret"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("redis://ops:***@redis-1:6379"), "{shown}");
        assert!(shown.contains(r#"password: Some("***")"#), "{shown}");
        assert!(shown.contains(r#"username: Some("svc")"#), "{shown}");
    }

    #[test]
    fn hosts_resolve() {
        assert_eq!(
            Host::Name("redis".into()).resolve(6379).unwrap(),
            ("redis".into(), 6379)
        );
        assert_eq!(
            Host::Name("redis:7000".into()).resolve(6379).unwrap(),
            ("redis".into(), 7000)
        );
        assert_eq!(
            Host::Name("[::1]:7000".into()).resolve(6379).unwrap(),
            ("::1".into(), 7000)
        );
        assert_eq!(
            Host::Pair("10.0.0.1".into(), 26379).resolve(6379).unwrap(),
            ("10.0.0.1".into(), 26379)
        );
        assert!(Host::Name("redis:port".into()).resolve(6379).is_err());
    }

    #[test]
    fn side_specific_settings_are_checked() {
        let mut s = RedisSettings::standard(["localhost"]);
        assert!(s.validate_client().is_ok() && s.validate_server().is_ok());
        s.chunk_messages_larger_than_bytes = Some(1000);
        assert!(s.validate_client().is_err());
        assert!(s.validate_server().is_err(), "below the minimum threshold");
        s.chunk_messages_larger_than_bytes = Some(102_400);
        assert!(
            s.validate_server().is_err(),
            "max size must be 5x the threshold"
        );
        s.maximum_message_size_in_bytes = Some(512_000);
        assert!(s.validate_server().is_ok());
        s.chunk_messages_larger_than_bytes = Some(-1);
        assert_eq!(s.chunk_threshold(), None);
        for (url, ok) in [
            ("redis://127.0.0.1:6380/2", true),
            ("redis://:secret@cache:6379", true),
            ("rediss://user:pw@cache", true),
            ("unix:///run/redis.sock?db=3", true),
            ("redis+unix:///run/redis.sock", true),
            ("unix:///run/redis.sock?db=x", false),
            ("unix:///run/redis.sock?timeout=3", false),
            ("redis-cluster://a:1", false),
            ("http://cache", false),
        ] {
            let outcome = RedisSettings::standard([url]).validate_client();
            assert_eq!(outcome.is_ok(), ok, "{url}: {outcome:?}");
        }
        let mut half = RedisSettings::standard(["localhost"]);
        half.backend_layer_kwargs.connection_kwargs.ssl_certfile = Some("client.crt".to_owned());
        let err = half.validate_client().unwrap_err().to_string();
        assert!(
            err.contains("ssl_certfile and ssl_keyfile go together"),
            "{err}"
        );
        let mut sentinel = RedisSettings::standard(["redis://a:1"]);
        sentinel.backend_type = BackendType::Sentinel;
        sentinel.backend_layer_kwargs.sentinel_services = vec!["m".to_owned()];
        assert!(
            sentinel.validate_client().is_err(),
            "URLs name standard hosts only"
        );
        assert_eq!(redacted("redis://u:pw@h:1/2"), "redis://u:***@h:1/2");
        assert_eq!(redacted("redis://h:1"), "redis://h:1");
        let err = RedisSettings::standard(["redis://u:pw@h:x"])
            .validate_client()
            .unwrap_err()
            .to_string();
        assert!(!err.contains("pw"), "{err}");
        let mut c = RedisSettings::standard(["localhost"]);
        c.protocol_version = Some(4);
        assert!(c.validate_client().is_err());
        let client = RedisSettings::standard(["localhost"]);
        for (bad, field) in [
            (
                RedisSettings {
                    reply_connections: 0,
                    ..client.clone()
                },
                "reply_connections",
            ),
            (
                RedisSettings {
                    replies_per_connection: 0,
                    ..client.clone()
                },
                "replies_per_connection",
            ),
            (
                RedisSettings {
                    replies_per_connection: MAX_REPLIES_PER_CONNECTION + 1,
                    ..client.clone()
                },
                "replies_per_connection",
            ),
            (
                RedisSettings {
                    idle_connection_timeout_in_seconds: f64::NAN,
                    ..client.clone()
                },
                "idle_connection_timeout_in_seconds",
            ),
        ] {
            let err = bad.validate_client().unwrap_err().to_string();
            assert!(err.contains(field), "{err}");
        }
        assert!(
            RedisSettings::new(BackendType::Sentinel)
                .validate_client()
                .is_ok(),
            "the masters are discovered when sentinel_services is empty"
        );
    }

    #[test]
    fn pysoa_style_settings_load() {
        let s = RedisSettings::from_json(
            r#"{"backend_type": "redis.sentinel",
                "backend_layer_kwargs": {"hosts": [["s1", 26379], "s2:26380"], "sentinel_services": ["mymaster"],
                                         "connection_kwargs": {"password": "p", "ssl": true}},
                "default_serializer_config": {"path": "pysoa.common.serializer:JSONSerializer"},
                "protocol_version": 2}"#,
        )
        .unwrap();
        assert_eq!(
            s.default_serializer_config.mime_type().unwrap(),
            "application/json"
        );
        assert_eq!(s.protocol_version().unwrap(), ProtocolVersion::V2);
        assert!(s.validate_client().is_ok());
        let err = RedisSettings::from_json(r#"{"backend_type": "redis.magic"}"#).unwrap_err();
        assert!(err.to_string().contains("backend_type"), "{err}");
        let err = RedisSettings::from_json(r#"{"backend_type": "redis.standard", "backend_layer_kwargs": {"connection_kwargs": {"pasword": 1}}}"#)
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("backend_layer_kwargs.connection_kwargs"),
            "{err}"
        );
    }
}
