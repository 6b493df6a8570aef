//! The connections: one ring of masters, each with a pool for pushes and dedicated connections for blocking pops.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use fred::prelude::Server as RedisServer;
use fred::prelude::{
    Builder, ClientLike, Config, Error as RedisError, ErrorKind, ListInterface, LuaInterface, Pool,
    ReconnectPolicy, ServerConfig, TcpConfig, Value as RedisValue,
};
use fred::types::scripts::Script;
use fred::types::{ClusterHash, CustomCommand, Key};
use rsoa_transport::{BoxFuture, Error as TransportError};
use tokio::sync::{mpsc, oneshot};

use crate::metric::{self, Side};
use crate::replies::{Replies, ReplySettings};
use crate::ring::{reply_master_index, RoundRobin};
use crate::settings::{BackendSettings, BackendType, ConnectionSettings};
use crate::{Error, RedisSettings};

/// PySOA's push script (wire-spec §9.1): refuse when the list is at capacity, else push and refresh the expiry.
pub(crate) const PUSH_SCRIPT: &str = "if redis.call('llen', KEYS[1]) >= tonumber(ARGV[2]) then\n    return redis.error_reply(\"queue full\")\nend\nredis.call('rpush', KEYS[1], ARGV[3])\nredis.call('expire', KEYS[1], ARGV[1])";

/// rsoa's batched form of [`PUSH_SCRIPT`]: the same check, push and expiry for each key in turn, in one call.
/// `ARGV` is the capacity, then a TTL and a frame per key; the reply holds 1 for each frame pushed and 0 for each
/// refused because its queue was full. What lands in Redis is exactly what PySOA's script leaves there.
pub(crate) const PUSH_MANY_SCRIPT: &str = "local capacity = tonumber(ARGV[1])\nlocal pushed = {}\nfor i = 1, #KEYS do\n    if redis.call('llen', KEYS[i]) >= capacity then\n        pushed[i] = 0\n    else\n        redis.call('rpush', KEYS[i], ARGV[2 * i + 1])\n        redis.call('expire', KEYS[i], ARGV[2 * i])\n        pushed[i] = 1\n    end\nend\nreturn pushed";

/// The check that follows rsoa's pushes of large frames, run by `EVAL` in one `MULTI`/`EXEC` with the `RPUSH`es
/// it checks (see [`Pusher::push_then_check`]). `KEYS` holds the queue of each frame just pushed, in push order;
/// `ARGV` is the capacity, then each frame's TTL. For each queue it takes back, from the tail, the frames that
/// [`PUSH_SCRIPT`] would have refused (those beyond the capacity, counting the queue's length before the pushes),
/// and sets the TTL of the last frame kept, so Redis ends as PySOA's script, called frame by frame, leaves it.
/// The reply holds 1 for each frame kept and 0 for each taken back. A key that is not a list (`RPUSH` failed on it)
/// keeps nothing, and the other queues are still checked.
pub(crate) const PUSHED_CHECK_SCRIPT: &str = "local capacity = tonumber(ARGV[1])
local count, room, ttl, pushed = {}, {}, {}, {}
for _, key in ipairs(KEYS) do count[key] = (count[key] or 0) + 1 end
for key, n in pairs(count) do
    local len = redis.pcall('llen', key)
    if type(len) == 'number' then
        local free = math.max(0, math.min(n, capacity - (len - n)))
        if free < n then redis.call('ltrim', key, 0, free - n - 1) end
        room[key] = free
    else
        room[key] = 0
    end
end
for i, key in ipairs(KEYS) do
    if room[key] > 0 then
        room[key] = room[key] - 1
        ttl[key] = ARGV[i + 1]
        pushed[i] = 1
    else
        pushed[i] = 0
    end
end
for key, seconds in pairs(ttl) do redis.call('expire', key, seconds) end
return pushed";

/// Pops every frame waiting in any of `KEYS` (up to 64 per key), for a reply listener that waits on many reply
/// queues (see `replies`). The reply is flat: the 1-based index of a key in `KEYS`, then a frame popped from it, and
/// so on, each key's frames in order. `EXISTS` first counts the queues that hold frames (Redis deletes an empty
/// list), so a drain that finds nothing costs one command, and the scan stops at the last ready queue: a call from
/// Lua costs Redis about 0.6 µs, and 128 of them made an empty drain cost 81 µs where this costs 21 µs. `LPOP` with
/// a count needs Redis 6.2, as the server's batched pops do.
pub(crate) const DRAIN_SCRIPT: &str = "local ready = redis.call('exists', unpack(KEYS))
local out = {}
local i = 0
while ready > 0 and i < #KEYS do
    i = i + 1
    local frames = redis.call('lpop', KEYS[i], 64)
    if frames then
        ready = ready - 1
        for _, frame in ipairs(frames) do
            out[#out + 1] = i
            out[#out + 1] = frame
        end
    end
end
return out";

/// Which of `KEYS` hold frames, as their 1-based indexes, without touching the frames: the first step of a drain of
/// large frames (see `replies`), whose frames are then popped by plain `LPOP`s, since a script copies every frame
/// it pops into a Lua string at a cost of about 20 µs of Redis's time per 10 KB (measured).
pub(crate) const READY_SCRIPT: &str = "local ready = redis.call('exists', unpack(KEYS))
local out = {}
local i = 0
while ready > 0 and i < #KEYS do
    i = i + 1
    if redis.call('exists', KEYS[i]) == 1 then
        ready = ready - 1
        out[#out + 1] = i
    end
end
return out";

/// A batch holding a frame of at least this many bytes is pushed with `RPUSH` and checked after by
/// [`PUSHED_CHECK_SCRIPT`] instead of passing through [`PUSH_MANY_SCRIPT`]: every string handed to a Lua script is
/// copied and hashed byte by byte as it becomes a Lua string (Redis 7.0 on Debian), so a 10 KB frame costs Redis
/// about 26 µs through the script and 10 µs this way (`docs/benchmarks.md`). Below 2 KB the two cost Redis the
/// same. A frame pushed alone always takes PySOA's script: one command, where the other way takes four (fred
/// writes each with a system call of its own), which would lengthen a lone call more than Redis's time saves. Not on
/// a cluster either: fred follows a `MOVED` for each pipelined command on its own, which could carry an `RPUSH` out
/// of its `MULTI` to another node, unchecked.
pub(crate) const LARGE_FRAME: usize = 4096;

/// How many idle blocking connections a master keeps for reuse (a server's receivers; clients wait on
/// [`Replies`]).
const MAX_IDLE_BLOCKING: usize = 64;

/// How long a reply listener's wake key lives after its last wake.
pub(crate) const WAKE_TTL_SECONDS: u64 = 60;

/// What a wake pushes (nothing reads it).
pub(crate) const WAKE: &[u8] = b"wake";

/// At most this many frames go into one batched push.
const MAX_BATCH: usize = 64;

/// A connection to the Redis deployment named by one set of settings, shared by every transport built on it.
///
/// Build one with [`RedisBackend::connect`] and make client and server transports from it; like PySOA's backend
/// layer cache, every transport of a process with the same settings should share one backend.
#[derive(Clone)]
pub struct RedisBackend {
    pub(crate) inner: Arc<BackendInner>,
    /// The runtime of a backend connected with [`RedisBackend::connect_blocking`], stopped with the last clone.
    own_runtime: Option<Arc<OwnRuntime>>,
}

/// A runtime a backend runs on by itself, for synchronous programs.
struct OwnRuntime(Option<tokio::runtime::Runtime>);

impl Drop for OwnRuntime {
    fn drop(&mut self) {
        // Never blocks, so the last clone may be dropped anywhere, inside another runtime too.
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

pub(crate) struct BackendInner {
    pub(crate) settings: RedisSettings,
    pub(crate) masters: Vec<Arc<Master>>,
    round_robin: RoundRobin,
    /// What starts every client id of this backend's transports: on a cluster a hash tag (`{…}`), so that all of
    /// a process's reply queues share a hash slot and one `BLPOP` can wait on many of them; elsewhere empty.
    pub(crate) client_id_prefix: String,
    pub(crate) metrics: metric::Handles,
}

pub(crate) struct Master {
    pusher: Arc<Pusher>,
    /// A client whose `clone_new` makes fresh connections with the same settings.
    template: fred::prelude::Client,
    idle: Mutex<Vec<fred::prelude::Client>>,
    connect_timeout: Duration,
    /// Pushes not finished yet, direct or queued for the batcher.
    in_flight: AtomicUsize,
    /// Frames for the batcher task, which pushes whatever has queued up in one call.
    batch: mpsc::UnboundedSender<Queued>,
    /// The connections that wait for responses to this process's calls.
    pub(crate) replies: Arc<Replies>,
}

/// What pushes to one master: its pool and scripts. Shared by the backend and the master's batcher task.
pub(crate) struct Pusher {
    pub(crate) label: String,
    pool: Pool,
    cluster: bool,
    script: Script,
    many: Script,
    drain: Script,
    ready: Script,
}

/// A frame waiting for the batcher, and where to say how it went.
struct Queued {
    key: String,
    ttl_seconds: u64,
    frame: Bytes,
    done: oneshot::Sender<Pushed>,
}

impl Queued {
    fn as_push(&self) -> Push<'_> {
        Push {
            key: &self.key,
            ttl_seconds: self.ttl_seconds,
            frame: &self.frame,
        }
    }
}

/// One frame to push onto a queue.
#[derive(Clone, Copy)]
struct Push<'a> {
    key: &'a str,
    ttl_seconds: u64,
    frame: &'a Bytes,
}

impl Push<'_> {
    fn ttl(&self) -> RedisValue {
        int_arg(self.ttl_seconds)
    }
}

/// The array a script answered with, or a protocol error naming `what` asked.
fn script_array(reply: RedisValue, what: &str) -> Result<Vec<RedisValue>, RedisError> {
    match reply {
        RedisValue::Array(items) => Ok(items),
        other => Err(RedisError::new(
            ErrorKind::Protocol,
            format!("unexpected reply to {what}: {other:?}"),
        )),
    }
}

/// A script's 1-based index into `count` keys, as a 0-based one.
fn key_index(value: RedisValue, count: usize, what: &str) -> Result<usize, RedisError> {
    match value {
        RedisValue::Integer(i) if i >= 1 && (i as usize) <= count => Ok(i as usize - 1),
        other => Err(RedisError::new(
            ErrorKind::Protocol,
            format!("unexpected key index in {what}: {other:?}"),
        )),
    }
}

/// A frame as fred hands it back (text that is valid UTF-8 comes as a string).
pub(crate) fn frame_bytes(value: RedisValue) -> Option<Bytes> {
    match value {
        RedisValue::Bytes(b) => Some(b),
        RedisValue::String(s) => Some(s.into_inner()),
        _ => None,
    }
}

/// A count or a number of seconds as a script argument (Redis integers are signed; larger values saturate).
fn int_arg(n: u64) -> RedisValue {
    RedisValue::Integer(i64::try_from(n).unwrap_or(i64::MAX))
}

/// The per-frame outcome of a push script's reply: an array of `count` flags, 1 for a frame pushed.
fn flags(reply: RedisValue, count: usize) -> Result<Vec<bool>, RedisError> {
    match reply {
        RedisValue::Array(flags) if flags.len() == count => Ok(flags
            .iter()
            .map(|f| matches!(f, RedisValue::Integer(1)))
            .collect()),
        other => Err(RedisError::new(
            ErrorKind::Protocol,
            format!("unexpected reply to a push: {other:?}"),
        )),
    }
}

/// How a batched push went for one frame.
enum Pushed {
    Yes,
    QueueFull,
    Failed(RedisError),
}

impl std::ops::Deref for Master {
    type Target = Pusher;

    fn deref(&self) -> &Pusher {
        &self.pusher
    }
}

impl fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let labels: Vec<&str> = self
            .inner
            .masters
            .iter()
            .map(|m| m.label.as_str())
            .collect();
        f.debug_struct("RedisBackend")
            .field("backend_type", &self.inner.settings.backend_type)
            .field("masters", &labels)
            .finish()
    }
}

fn redis_config(
    server: ServerConfig,
    connection: &ConnectionSettings,
    db: Option<u8>,
) -> Result<Config, Error> {
    let mut config = Config {
        server,
        ..Config::default()
    };
    config.username.clone_from(&connection.username);
    config.password.clone_from(&connection.password);
    config.database = connection.db.or(db);
    if connection.ssl {
        config.tls = Some(tls_config(connection)?);
    }
    Ok(config)
}

/// The connection to a standard host given as a URL (see [`crate::Host`]), parsed by fred. What the URL leaves
/// out (credentials, database) comes from `connection` and `db`; TLS follows `rediss://` or `connection.ssl`, with
/// the certificate authorities of `ssl_ca_certs`.
pub(crate) fn url_config(
    url: &str,
    connection: &ConnectionSettings,
    db: Option<u8>,
) -> Result<Config, Error> {
    let invalid =
        |why: String| Error::Settings(format!("host {}: {why}", crate::settings::redacted(url)));
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| invalid("not a URL".to_owned()))?;
    let mut config = match scheme {
        "redis" | "rediss" => Config::from_url_centralized(url).map_err(|e| invalid(e.to_string()))?,
        "unix" | "redis+unix" => {
            // redis-py's `unix:///path?db=N`; fred reads the path and leaves the database to the caller.
            let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
            let mut config = Config::from_url_unix(&format!("redis+unix://{path}"))
                .map_err(|e| invalid(e.to_string()))?;
            for pair in query.split('&').filter(|p| !p.is_empty()) {
                match pair.split_once('=') {
                    Some(("db", n)) => {
                        config.database = Some(n.parse().map_err(|_| {
                            invalid(format!("db {n:?} is not a database number"))
                        })?);
                    }
                    _ => return Err(invalid(format!("unknown query parameter {pair:?}"))),
                }
            }
            config
        }
        other => {
            return Err(invalid(format!(
                "scheme {other:?} is not one of redis, rediss, unix (clusters and Sentinels have their own backend_type)"
            )))
        }
    };
    if config.username.is_none() {
        config.username.clone_from(&connection.username);
    }
    if config.password.is_none() {
        config.password.clone_from(&connection.password);
    }
    if config.database.is_none() {
        config.database = connection.db.or(db);
    }
    config.tls = if scheme == "rediss" || connection.ssl {
        Some(tls_config(connection)?)
    } else {
        None
    };
    Ok(config)
}

fn tls_config(connection: &ConnectionSettings) -> Result<fred::prelude::TlsConfig, Error> {
    use fred::rustls::{ClientConfig, RootCertStore};

    let mut roots = RootCertStore::empty();
    match &connection.ssl_ca_certs {
        Some(path) => {
            let pem = std::fs::read(path)
                .map_err(|e| Error::Settings(format!("ssl_ca_certs {path}: {e}")))?;
            for cert in rustls_pemfile_certs(&pem)
                .map_err(|e| Error::Settings(format!("ssl_ca_certs {path}: {e}")))?
            {
                roots
                    .add(cert)
                    .map_err(|e| Error::Settings(format!("ssl_ca_certs {path}: {e}")))?;
            }
        }
        None => {
            for cert in fred::rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
        }
    }
    let builder = ClientConfig::builder().with_root_certificates(roots);
    let config = match (&connection.ssl_certfile, &connection.ssl_keyfile) {
        (Some(certfile), Some(keyfile)) => {
            use fred::rustls::pki_types::pem::PemObject;
            use fred::rustls::pki_types::PrivateKeyDer;
            let certs = std::fs::read(certfile)
                .map_err(|e| e.to_string())
                .and_then(|pem| rustls_pemfile_certs(&pem))
                .map_err(|e| Error::Settings(format!("ssl_certfile {certfile}: {e}")))?;
            let key = PrivateKeyDer::from_pem_file(keyfile)
                .map_err(|e| Error::Settings(format!("ssl_keyfile {keyfile}: {e}")))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| Error::Settings(format!("ssl_certfile and ssl_keyfile: {e}")))?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => {
            return Err(Error::Settings(
                "ssl_certfile and ssl_keyfile go together".to_owned(),
            ))
        }
    };
    Ok(fred::prelude::TlsConnector::from(config).into())
}

/// The certificates of a PEM file.
fn rustls_pemfile_certs(
    pem: &[u8],
) -> Result<Vec<fred::rustls::pki_types::CertificateDer<'static>>, String> {
    use fred::rustls::pki_types::pem::PemObject;
    fred::rustls::pki_types::CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())
}

/// The configured hosts with ports, or `localhost` on `default_port` when none are given.
fn resolve_hosts(
    backend: &BackendSettings,
    default_port: u16,
) -> Result<Vec<(String, u16)>, Error> {
    if backend.hosts.is_empty() {
        return Ok(vec![("localhost".to_owned(), default_port)]);
    }
    backend
        .hosts
        .iter()
        .map(|h| h.resolve(default_port))
        .collect()
}

/// PySOA's discovery when `sentinel_services` is omitted: the master names `SENTINEL MASTERS` gives on the first
/// Sentinel that answers, in the order it gives them.
async fn discover_masters(
    sentinels: &[(String, u16)],
    kwargs: &ConnectionSettings,
) -> Result<Vec<String>, Error> {
    let timeout = seconds(kwargs.socket_connect_timeout);
    let mut failures = Vec::new();
    for (host, port) in sentinels {
        let config = redis_config(ServerConfig::new_centralized(host, *port), kwargs, None)?;
        let client = fred::prelude::Client::new(config, None, None, None);
        let asked = tokio::time::timeout(timeout, async {
            client.init().await?;
            client
                .custom::<RedisValue, _>(
                    CustomCommand::new_static("SENTINEL", None, false),
                    vec!["MASTERS"],
                )
                .await
        })
        .await;
        let _ = client.quit().await;
        match asked {
            Ok(Ok(reply)) => return Ok(master_names(reply)),
            Ok(Err(e)) => failures.push(format!("{host}:{port}: {e}")),
            Err(_) => failures.push(format!("{host}:{port}: no answer within {timeout:?}")),
        }
    }
    Err(Error::Connect {
        master: "sentinel discovery".to_owned(),
        message: format!("no Sentinel listed its masters ({})", failures.join("; ")),
    })
}

/// The `name` of each master in a `SENTINEL MASTERS` reply: flat key-value arrays (RESP2) or maps (RESP3).
fn master_names(reply: RedisValue) -> Vec<String> {
    let RedisValue::Array(masters) = reply else {
        return Vec::new();
    };
    let is_name = |key: &RedisValue| key.as_str().is_some_and(|k| k == "name");
    masters
        .into_iter()
        .filter_map(|master| match master {
            RedisValue::Array(fields) => fields
                .chunks(2)
                .find(|pair| is_name(&pair[0]))
                .and_then(|pair| pair.get(1)?.as_string()),
            RedisValue::Map(fields) => fields
                .inner()
                .into_iter()
                .find(|(key, _)| key.as_str().is_some_and(|k| k == "name"))
                .and_then(|(_, value)| value.as_string()),
            _ => None,
        })
        .collect()
}

fn seconds(s: f64) -> Duration {
    Duration::try_from_secs_f64(s.max(0.0)).unwrap_or(Duration::MAX)
}

impl RedisBackend {
    /// Connects to every master the settings name and waits until each answers (within the connect timeout).
    pub async fn connect(settings: RedisSettings) -> Result<RedisBackend, Error> {
        let backend = &settings.backend_layer_kwargs;
        let connection = &backend.connection_kwargs;
        let mut configs = Vec::new();
        match settings.backend_type {
            BackendType::Standard => {
                let port = backend.redis_port.unwrap_or(6379);
                if backend.hosts.iter().any(|h| h.url().is_some()) {
                    // Hosts in ring order, each a URL or a name.
                    for host in &backend.hosts {
                        configs.push(match host.url() {
                            Some(url) => (
                                crate::settings::redacted(url),
                                url_config(url, connection, backend.redis_db)?,
                            ),
                            None => {
                                let (host, port) = host.resolve(port)?;
                                (
                                    format!("{host}:{port}"),
                                    redis_config(
                                        ServerConfig::new_centralized(host, port),
                                        connection,
                                        backend.redis_db,
                                    )?,
                                )
                            }
                        });
                    }
                } else {
                    for (host, port) in resolve_hosts(backend, port)? {
                        let label = format!("{host}:{port}");
                        configs.push((
                            label,
                            redis_config(
                                ServerConfig::new_centralized(host, port),
                                connection,
                                backend.redis_db,
                            )?,
                        ));
                    }
                }
            }
            BackendType::Sentinel => {
                let port = backend.redis_port.unwrap_or(26379);
                let sentinels = resolve_hosts(backend, port)?;
                let services = if backend.sentinel_services.is_empty() {
                    let found = discover_masters(&sentinels, &backend.sentinel_kwargs).await?;
                    if found.len() > 1 {
                        // PySOA's known bug 12: another process may be told another order by another Sentinel,
                        // and a response would then go to a master its caller does not listen on.
                        tracing::warn!(
                            masters = ?found,
                            "sentinel_services is not set, so the masters were discovered, in the order one \
                             Sentinel gave them; list them in backend_layer_kwargs.sentinel_services, in the same \
                             order on every client and server"
                        );
                    }
                    found
                } else {
                    backend.sentinel_services.clone()
                };
                for service in &services {
                    let server = ServerConfig::Sentinel {
                        hosts: sentinels
                            .iter()
                            .map(|(h, p)| RedisServer::new(h.as_str(), *p))
                            .collect(),
                        service_name: service.clone(),
                        username: backend.sentinel_kwargs.username.clone(),
                        password: backend.sentinel_kwargs.password.clone(),
                    };
                    configs.push((
                        format!("sentinel master {service}"),
                        redis_config(server, connection, backend.redis_db)?,
                    ));
                }
            }
            BackendType::Cluster => {
                let port = backend.redis_port.unwrap_or(6379);
                let nodes = resolve_hosts(backend, port)?;
                let label = format!("cluster via {}:{}", nodes[0].0, nodes[0].1);
                configs.push((
                    label,
                    redis_config(ServerConfig::new_clustered(nodes), connection, None)?,
                ));
            }
        }
        let connect_timeout = seconds(connection.socket_connect_timeout);
        let backend_id = uuid::Uuid::new_v4().simple().to_string();
        let cluster = settings.backend_type == BackendType::Cluster;
        let client_id_prefix = if cluster {
            ["{", &backend_id, "}"].concat()
        } else {
            String::new()
        };
        let runtime = tokio::runtime::Handle::current();
        let max_delay_ms = (connection.reconnect_max_delay * 1000.0).clamp(10.0, 60_000.0) as u32;
        let mut masters = Vec::with_capacity(configs.len());
        for (label, config) in configs {
            let configure = |builder: &mut Builder, command_timeout: Option<f64>| {
                builder
                    .with_connection_config(|c| {
                        c.connection_timeout = connect_timeout;
                        c.tcp = TcpConfig {
                            nodelay: Some(true),
                            ..TcpConfig::default()
                        };
                        // fred re-sends commands that were in flight when a connection broke; a push that ran
                        // before the break would then run twice and a server would run the job twice. Send once.
                        c.max_command_attempts = 1;
                    })
                    .set_policy(ReconnectPolicy::new_exponential(0, 10, max_delay_ms, 2));
                if let Some(timeout) = command_timeout {
                    builder
                        .with_performance_config(|p| p.default_command_timeout = seconds(timeout));
                }
            };
            let connect_error = |e: RedisError| Error::Connect {
                master: label.clone(),
                message: e.to_string(),
            };
            let mut pool_builder = Builder::from_config(config.clone());
            configure(&mut pool_builder, connection.socket_timeout);
            let pool = pool_builder.build_pool(2).map_err(connect_error)?;
            // Blocking pops get no command timeout: BLPOP has its own.
            let mut blocking_builder = Builder::from_config(config);
            configure(&mut blocking_builder, None);
            let template = blocking_builder.build().map_err(connect_error)?;
            let connected = tokio::time::timeout(connect_timeout, pool.init()).await;
            match connected {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    return Err(Error::Connect {
                        master: label,
                        message: e.to_string(),
                    })
                }
                Err(_) => {
                    let _ = pool.quit().await;
                    return Err(Error::Connect {
                        master: label,
                        message: format!("no connection within {connect_timeout:?}"),
                    });
                }
            }
            let pusher = Arc::new(Pusher {
                label,
                pool,
                cluster: settings.backend_type == BackendType::Cluster,
                script: Script::from_lua(PUSH_SCRIPT),
                many: Script::from_lua(PUSH_MANY_SCRIPT),
                drain: Script::from_lua(DRAIN_SCRIPT),
                ready: Script::from_lua(READY_SCRIPT),
            });
            let (batch, queued) = mpsc::unbounded_channel();
            tokio::spawn(batcher(pusher.clone(), settings.queue_capacity, queued));
            let replies = Replies::new(
                ReplySettings {
                    label: pusher.label.clone(),
                    template: template.clone(),
                    connect_timeout,
                    max_connections: settings.reply_connections.max(1),
                    per_connection: settings.replies_per_connection.max(1),
                    idle_timeout: seconds(settings.idle_connection_timeout_in_seconds),
                    wake_prefix: format!(
                        "{}rsoa.wake.{client_id_prefix}{backend_id}.{}.",
                        crate::ring::KEY_PREFIX,
                        masters.len()
                    ),
                    pusher: pusher.clone(),
                    queue_capacity: settings.queue_capacity,
                },
                runtime.clone(),
            );
            masters.push(Arc::new(Master {
                pusher,
                replies: Arc::new(replies),
                template,
                idle: Mutex::new(Vec::new()),
                connect_timeout,
                in_flight: AtomicUsize::new(0),
                batch,
            }));
        }
        let round_robin = RoundRobin::new(masters.len());
        Ok(RedisBackend {
            own_runtime: None,
            inner: Arc::new(BackendInner {
                settings,
                masters,
                round_robin,
                client_id_prefix,
                metrics: metric::Handles::default(),
            }),
        })
    }

    /// Connects from a synchronous program: like [`RedisBackend::connect`], but the backend runs its connections
    /// on a runtime of its own (one thread), which stops when the last clone of the backend is dropped. Calls made
    /// through it from [`rsoa_client::blocking::BlockingClient`](https://docs.rs/rsoa-client) need no runtime of
    /// yours. Inside an async runtime, use [`RedisBackend::connect`] instead.
    ///
    /// ```no_run
    /// use rsoa_client::blocking::BlockingClient;
    /// use rsoa_client::Client;
    /// use rsoa_transport_redis::{RedisBackend, RedisClientTransport, RedisSettings};
    ///
    /// fn main() -> Result<(), Box<dyn std::error::Error>> {
    ///     let backend = RedisBackend::connect_blocking(RedisSettings::standard(["127.0.0.1:6379"]))?;
    ///     let client = Client::builder().service(RedisClientTransport::new(&backend, "example")?).build();
    ///     let client = BlockingClient::new(client)?;
    ///     let status = client.call_action("example", "status", ())?;
    ///     println!("{:?}", status.body);
    ///     Ok(())
    /// }
    /// ```
    pub fn connect_blocking(settings: RedisSettings) -> Result<RedisBackend, Error> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::Runtime(
                "connect_blocking cannot run inside an async runtime; await RedisBackend::connect there".to_owned(),
            ));
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("rsoa-redis")
            .enable_all()
            .build()
            .map_err(|e| Error::Runtime(format!("cannot start the backend's runtime: {e}")))?;
        let mut backend = runtime.block_on(RedisBackend::connect(settings))?;
        backend.own_runtime = Some(Arc::new(OwnRuntime(Some(runtime))));
        Ok(backend)
    }

    /// The settings this backend was built with.
    pub fn settings(&self) -> &RedisSettings {
        &self.inner.settings
    }

    /// How many connections wait for responses to this process's calls, per master (in ring order).
    pub fn reply_connections(&self) -> Vec<usize> {
        self.inner
            .masters
            .iter()
            .map(|m| m.replies.connections())
            .collect()
    }

    /// Sends `PING` to every master at once, each within the connect timeout: per master (in ring order), its
    /// address and how long it took to answer, or why it did not. A health check for `status`.
    pub async fn ping(&self) -> Vec<(String, Result<Duration, String>)> {
        let pings = self.inner.masters.iter().map(|master| async move {
            let started = Instant::now();
            let answer = tokio::time::timeout(
                master.connect_timeout,
                master.pool.next().ping::<RedisValue>(None),
            )
            .await;
            let outcome = match answer {
                Ok(Ok(_)) => Ok(started.elapsed()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!("no answer within {:?}", master.connect_timeout)),
            };
            (master.label.clone(), outcome)
        });
        futures::future::join_all(pings).await
    }

    /// The length of `service`'s request queue on every master at once (`LLEN`, read-only), each within the
    /// connect timeout: per master (in ring order), its address and the number of requests waiting, or why it
    /// could not be read.
    pub async fn queue_lengths(&self, service: &str) -> Vec<(String, Result<u64, String>)> {
        let key = crate::ring::service_queue_key(service);
        let key = key.as_str();
        let reads = self.inner.masters.iter().map(|master| async move {
            let answer = tokio::time::timeout(
                master.connect_timeout,
                master.pool.next().llen::<u64, _>(key),
            )
            .await;
            let outcome = match answer {
                Ok(Ok(length)) => Ok(length),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!("no answer within {:?}", master.connect_timeout)),
            };
            (master.label.clone(), outcome)
        });
        futures::future::join_all(reads).await
    }

    /// The reply queues of calls to `service` that hold responses nobody has read yet, on every master at once
    /// (`SCAN` for `pysoa:service.<name>.*!*`, then `LLEN` each: read-only), each within four connect timeouts:
    /// per master (in ring order), its address and the number of such queues and of responses in them, or why
    /// they could not be read.
    pub async fn reply_queues(&self, service: &str) -> Vec<(String, Result<(u64, u64), String>)> {
        use futures::TryStreamExt;
        let pattern = format!("{}service.{service}.*!*", crate::ring::KEY_PREFIX);
        let reads = self.inner.masters.iter().map(|master| {
            let pattern = pattern.clone();
            async move {
                let client = master.pool.next();
                let count = async {
                    let keys: Vec<Key> = if master.cluster {
                        client
                            .scan_cluster_buffered(pattern, Some(1_000), None)
                            .try_collect()
                            .await?
                    } else {
                        client
                            .scan_buffered(pattern, Some(1_000), None)
                            .try_collect()
                            .await?
                    };
                    let mut responses = 0;
                    for key in &keys {
                        responses += client.llen::<u64, _>(key.clone()).await?;
                    }
                    Ok::<_, RedisError>((keys.len() as u64, responses))
                };
                let limit = master.connect_timeout * 4;
                let outcome = match tokio::time::timeout(limit, count).await {
                    Ok(Ok(found)) => Ok(found),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err(format!("no answer within {limit:?}")),
                };
                (master.label.clone(), outcome)
            }
        });
        futures::future::join_all(reads).await
    }

    /// Closes every connection. Calls still waiting for a response fail with a closed-transport error. A master
    /// that does not answer (gone, or being reconnected to) is given up on after its connect timeout (at most
    /// 5 s): closing never hangs.
    pub async fn close(&self) {
        for master in &self.inner.masters {
            let closing = async {
                master.replies.close().await;
                let idle: Vec<_> = std::mem::take(&mut *lock(&master.idle));
                for client in idle {
                    let _ = client.quit().await;
                }
                let _ = master.pool.quit().await;
            };
            let within = master.connect_timeout.min(Duration::from_secs(5));
            if tokio::time::timeout(within, closing).await.is_err() {
                tracing::warn!(master = %master.label, "Redis did not answer QUIT in time; closing without it");
            }
        }
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn connection_error(pusher: &Pusher, e: &RedisError) -> TransportError {
    redis_error(&pusher.label, e)
}

/// The transport's error for a Redis error at the master labelled `label`: a refusal for lack of rights is
/// [`TransportError::Denied`] (saying what rsoa needs), anything else a connection error.
pub(crate) fn redis_error(label: &str, e: &RedisError) -> TransportError {
    let details = e.details();
    if details.starts_with("NOPERM") || details.contains("can't run this command") {
        // Redis names the command it refused, except one run by a script.
        let scripts = if details.contains("can't run this command") {
            " (rsoa's scripts run llen, rpush, expire, ltrim, exists and lpop)"
        } else {
            ""
        };
        return TransportError::Denied {
            message: format!(
                "{label}: the Redis user may not run a command rsoa needs{scripts}: {details}; \
                 the least rights are in rsoa's docs/redis-transport.md"
            ),
            source: Some(Box::new(e.clone())),
        };
    }
    TransportError::Connection {
        message: format!("{label}: {e}"),
        source: Some(Box::new(e.clone())),
    }
}

fn is_readonly(e: &RedisError) -> bool {
    e.details().starts_with("READONLY")
}

impl Pusher {
    /// `EVALSHA` of `script` (whose source is `lua`), loading the script first when Redis does not know it.
    ///
    /// fred's command futures are kilobytes long. Boxed here, they stay out of every future that pushes (a call's
    /// send, a server's respond), which are themselves boxed, and would otherwise be copied on every call. The
    /// keys and arguments are borrowed: fred takes them by value, and only a `NOSCRIPT` needs them a second time.
    fn eval<'a>(
        &'a self,
        script: &'a Script,
        lua: &'a str,
        keys: &'a [&'a str],
        args: &'a [RedisValue],
    ) -> BoxFuture<'a, Result<RedisValue, RedisError>> {
        let keys = move || -> Vec<Key> { keys.iter().map(|k| Key::from(*k)).collect() };
        Box::pin(async move {
            let client = self.pool.next();
            match client
                .evalsha(script.sha1().clone(), keys(), args.to_vec())
                .await
            {
                Err(e) if e.details().starts_with("NOSCRIPT") => {
                    let _: RedisValue = if self.cluster {
                        client.script_load_cluster(lua).await?
                    } else {
                        client.script_load(lua).await?
                    };
                    client
                        .evalsha(script.sha1().clone(), keys(), args.to_vec())
                        .await
                }
                other => other,
            }
        })
    }

    /// Pushes one frame through PySOA's own script, exactly as a PySOA peer sends it: true when it went on, false
    /// when the queue is full.
    async fn push_one(&self, capacity: u64, push: &Push<'_>) -> Result<bool, RedisError> {
        let args = [
            push.ttl(),
            int_arg(capacity),
            RedisValue::Bytes(push.frame.clone()),
        ];
        match self
            .eval(&self.script, PUSH_SCRIPT, &[push.key], &args)
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.details().contains("queue full") => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Pops every frame waiting in `keys` ([`DRAIN_SCRIPT`]): pairs of a key's index in `keys` and a frame.
    pub(crate) async fn drain(&self, keys: &[&str]) -> Result<Vec<(usize, Bytes)>, RedisError> {
        let reply = self.eval(&self.drain, DRAIN_SCRIPT, keys, &[]).await?;
        let items = script_array(reply, "a drain")?;
        let mut frames = Vec::with_capacity(items.len() / 2);
        let mut items = items.into_iter();
        while let (Some(index), Some(frame)) = (items.next(), items.next()) {
            let index = key_index(index, keys.len(), "a drain")?;
            let frame = frame_bytes(frame).ok_or_else(|| {
                RedisError::new(ErrorKind::Protocol, "unexpected frame in a drain")
            })?;
            frames.push((index, frame));
        }
        Ok(frames)
    }

    /// Pops every frame waiting in `keys` without passing them through a script, for large frames: which queues
    /// hold frames ([`READY_SCRIPT`]), then one pipeline of `LPOP key 64` for those. Pairs as [`Pusher::drain`].
    pub(crate) async fn drain_large(
        &self,
        keys: &[&str],
    ) -> Result<Vec<(usize, Bytes)>, RedisError> {
        let reply = self.eval(&self.ready, READY_SCRIPT, keys, &[]).await?;
        let ready = script_array(reply, "a ready check")?
            .into_iter()
            .map(|index| key_index(index, keys.len(), "a ready check"))
            .collect::<Result<Vec<usize>, RedisError>>()?;
        if ready.is_empty() {
            return Ok(Vec::new());
        }
        let pipeline = self.pool.next().pipeline();
        for &i in &ready {
            let _: RedisValue = pipeline.lpop(keys[i], Some(64)).await?;
        }
        let popped: Vec<RedisValue> = pipeline.all().await?;
        let mut frames = Vec::new();
        for (i, value) in ready.into_iter().zip(popped) {
            match value {
                RedisValue::Array(items) => {
                    frames.extend(items.into_iter().filter_map(frame_bytes).map(|f| (i, f)));
                }
                RedisValue::Null => {}
                other => frames.extend(frame_bytes(other).map(|f| (i, f))),
            }
        }
        Ok(frames)
    }

    /// Pushes a wake for a reply listener (see `replies`), through PySOA's script like any other frame.
    pub(crate) async fn push_wake(&self, capacity: u64, key: &str) -> Result<bool, RedisError> {
        let frame = Bytes::from_static(WAKE);
        self.push_one(
            capacity,
            &Push {
                key,
                ttl_seconds: WAKE_TTL_SECONDS,
                frame: &frame,
            },
        )
        .await
    }

    /// After a failed push: a master demoted by a failover (`READONLY`, while the connection stayed up) is
    /// reconnected, which asks the Sentinels for the new master (PySOA disconnects on `READONLY` too).
    async fn failed(&self, e: &RedisError) {
        if is_readonly(e) {
            tracing::warn!(master = %self.label, "master became a replica; reconnecting");
            let _ = self.pool.force_reconnection().await;
        }
    }

    /// Pushes frames, each onto its queue only if the queue then holds fewer than `capacity` frames (PySOA's check,
    /// frame after frame), and says which went on. One frame goes through PySOA's own script
    /// ([`Pusher::push_one`]); several through [`PUSH_MANY_SCRIPT`], or, when any is large and Redis is not a
    /// cluster, with `RPUSH` and a check after ([`Pusher::push_then_check`]). On a cluster, every key must share a
    /// hash slot.
    async fn push_checked(
        &self,
        capacity: u64,
        frames: &[Push<'_>],
    ) -> Result<Vec<bool>, RedisError> {
        if let [single] = frames {
            return self
                .push_one(capacity, single)
                .await
                .map(|pushed| vec![pushed]);
        }
        if !self.cluster && frames.iter().any(|f| f.frame.len() >= LARGE_FRAME) {
            return self.push_then_check(int_arg(capacity), frames).await;
        }
        let mut args = Vec::with_capacity(1 + 2 * frames.len());
        args.push(int_arg(capacity));
        for f in frames {
            args.push(f.ttl());
            args.push(RedisValue::Bytes(f.frame.clone()));
        }
        let keys: Vec<&str> = frames.iter().map(|f| f.key).collect();
        let reply = self
            .eval(&self.many, PUSH_MANY_SCRIPT, &keys, &args)
            .await?;
        flags(reply, frames.len())
    }

    /// Pushes frames with `RPUSH` and checks them with [`PUSHED_CHECK_SCRIPT`], all in one `MULTI`/`EXEC`, so no
    /// other client sees a queue between the two: what is left in Redis is what PySOA's script would leave, while
    /// the frames never pass through Lua. The script goes by `EVAL`: inside a transaction, a `NOSCRIPT` from
    /// `EVALSHA` would come after the pushes had already happened.
    ///
    /// Boxed: its futures are fred's, kilobytes long, and would otherwise size every push's (see [`Pusher::eval`]).
    fn push_then_check<'a>(
        &'a self,
        capacity: RedisValue,
        frames: &'a [Push<'a>],
    ) -> BoxFuture<'a, Result<Vec<bool>, RedisError>> {
        Box::pin(async move {
            let mut args = Vec::with_capacity(3 + 2 * frames.len());
            args.push(RedisValue::from_static_str(PUSHED_CHECK_SCRIPT));
            args.push(RedisValue::Integer(frames.len() as i64));
            args.extend(frames.iter().map(|f| RedisValue::from(f.key)));
            args.push(capacity);
            args.extend(frames.iter().map(Push::ttl));
            // One RPUSH per queue, its frames in order: the check counts per queue, so the order across queues is free.
            let mut queues: Vec<(&str, Vec<RedisValue>)> = Vec::new();
            for f in frames {
                let frame = RedisValue::Bytes(f.frame.clone());
                match queues.iter_mut().find(|(key, _)| *key == f.key) {
                    Some((_, queued)) => queued.push(frame),
                    None => queues.push((f.key, vec![frame])),
                }
            }
            let rpushes = queues.len();
            // One pipeline, which fred writes in one pass, so no other command lands between MULTI and EXEC. Not fred's
            // transactions: they re-send the whole block once after a connection error, even when EXEC has already run
            // and only its reply was lost, which would push every frame twice (rsoa sets `max_command_attempts` to 1
            // to have no such retries). A connection dropped before EXEC discards the open MULTI in Redis.
            let pipeline = self.pool.next().pipeline();
            let command = |name| CustomCommand::new_static(name, ClusterHash::Random, false);
            let _: RedisValue = pipeline
                .custom(command("MULTI"), Vec::<RedisValue>::new())
                .await?;
            for (key, queued) in queues {
                let _: RedisValue = pipeline.rpush(key, queued).await?;
            }
            let _: RedisValue = pipeline.custom(command("EVAL"), args).await?;
            let _: RedisValue = pipeline
                .custom(command("EXEC"), Vec::<RedisValue>::new())
                .await?;
            let exec: RedisValue = pipeline.last().await?;
            match exec {
                RedisValue::Array(mut replies) if replies.len() == rpushes + 1 => {
                    flags(replies.pop().unwrap_or(RedisValue::Null), frames.len())
                }
                other => Err(RedisError::new(
                    ErrorKind::Protocol,
                    format!("unexpected reply to a checked push: {other:?}"),
                )),
            }
        })
    }

    /// Pushes a batch (on a cluster, one push per hash slot, since a script's keys must share a slot) and tells
    /// each frame's sender how it went.
    async fn push_many(&self, capacity: u64, batch: Vec<Queued>) {
        let mut groups: Vec<Vec<Queued>> = Vec::new();
        if self.cluster {
            let mut by_slot: Vec<(u16, Vec<Queued>)> = Vec::new();
            for queued in batch {
                let slot = fred::util::redis_keyslot(queued.key.as_bytes());
                match by_slot.iter_mut().find(|(s, _)| *s == slot) {
                    Some((_, group)) => group.push(queued),
                    None => by_slot.push((slot, vec![queued])),
                }
            }
            groups.extend(by_slot.into_iter().map(|(_, group)| group));
        } else {
            groups.push(batch);
        }
        let pushes = groups.into_iter().map(|group| async move {
            let frames: Vec<Push<'_>> = group.iter().map(Queued::as_push).collect();
            let outcome = self.push_checked(capacity, &frames).await;
            match outcome {
                Ok(flags) => {
                    for (queued, pushed) in group.into_iter().zip(flags) {
                        let _ = queued.done.send(if pushed {
                            Pushed::Yes
                        } else {
                            Pushed::QueueFull
                        });
                    }
                }
                Err(e) => {
                    self.failed(&e).await;
                    for queued in group {
                        let _ = queued.done.send(Pushed::Failed(e.clone()));
                    }
                }
            }
        });
        futures::future::join_all(pushes).await;
    }
}

/// A master's batcher: waits for a queued frame, takes every other frame queued by then, and pushes them together,
/// until the backend is dropped.
async fn batcher(pusher: Arc<Pusher>, capacity: u64, mut queued: mpsc::UnboundedReceiver<Queued>) {
    while let Some(first) = queued.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queued.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        pusher.push_many(capacity, batch).await;
    }
}

/// Counts a push as in flight until dropped.
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl BackendInner {
    /// The master for a request queue: the next in the round-robin ring.
    pub(crate) fn request_master(&self) -> usize {
        self.round_robin.next()
    }

    /// The master for a reply queue: PySOA's hash of the full key.
    pub(crate) fn reply_master(&self, key: &str) -> usize {
        reply_master_index(key, self.masters.len())
    }

    /// Pushes one frame like [`BackendInner::push`], batching under load: when no other push to the master is in
    /// flight the frame goes straight out on its own (no added latency); otherwise it joins the master's
    /// batch, which goes out in one call as soon as the previous batch is answered. A full queue is then retried
    /// on its own, with PySOA's back-off.
    pub(crate) async fn push_batched(
        &self,
        master: usize,
        key: &str,
        ttl_seconds: u64,
        frame: Bytes,
        deadline: Option<Instant>,
    ) -> Result<(), TransportError> {
        let m = &self.masters[master];
        let busy = m.in_flight.fetch_add(1, Ordering::Relaxed) > 0;
        let _in_flight = InFlight(&m.in_flight);
        if !busy {
            return self.push(master, key, ttl_seconds, frame, deadline).await;
        }
        let started = Instant::now();
        let size = frame.len();
        let (done, outcome) = oneshot::channel();
        let queued = Queued {
            key: key.to_owned(),
            ttl_seconds,
            frame: frame.clone(),
            done,
        };
        if m.batch.send(queued).is_err() {
            return Err(TransportError::Closed);
        }
        match outcome.await {
            Ok(Pushed::Yes) => {
                Side::of_queue(key).sent(&self.metrics, started, size);
                Ok(())
            }
            Ok(Pushed::QueueFull) => self.push(master, key, ttl_seconds, frame, deadline).await,
            Ok(Pushed::Failed(e)) => Err(Box::pin(self.push_failed(master, &e)).await),
            Err(_) => Err(TransportError::Closed),
        }
    }

    /// Pushes one frame with PySOA's capacity check ([`Pusher::push_checked`]), retrying a full queue with PySOA's
    /// back-off (`(2^i + rand) / 4` s) until the retries, the total wait or `deadline` run out.
    pub(crate) async fn push(
        &self,
        master: usize,
        key: &str,
        ttl_seconds: u64,
        frame: Bytes,
        deadline: Option<Instant>,
    ) -> Result<(), TransportError> {
        let m = &self.masters[master];
        let settings = &self.settings;
        let started = Instant::now();
        let max_wait = seconds(settings.queue_full_max_wait_in_seconds);
        let push = Push {
            key,
            ttl_seconds,
            frame: &frame,
        };
        let mut attempt = 0_u32;
        let side = Side::of_queue(key);
        loop {
            match m.push_one(settings.queue_capacity, &push).await {
                Ok(true) => {
                    side.sent(&self.metrics, started, frame.len());
                    return Ok(());
                }
                Ok(false) => {
                    if attempt >= settings.queue_full_retries {
                        side.queue_full();
                        return Err(TransportError::QueueFull {
                            queue: key.to_owned(),
                        });
                    }
                    let jitter = f64::from(uuid::Uuid::new_v4().as_u128() as u16) / 65_536.0;
                    let pause = seconds((2_f64.powi(attempt.min(30) as i32) + jitter) / 4.0);
                    let waited = started.elapsed();
                    let budget_left = max_wait.saturating_sub(waited);
                    let deadline_left = deadline.map_or(Duration::MAX, |d| {
                        d.saturating_duration_since(Instant::now())
                    });
                    if pause > budget_left || pause > deadline_left {
                        side.queue_full();
                        return Err(TransportError::QueueFull {
                            queue: key.to_owned(),
                        });
                    }
                    side.queue_full_retry();
                    tracing::warn!(
                        queue = key,
                        attempt,
                        ?pause,
                        "Redis queue is full; retrying"
                    );
                    tokio::time::sleep(pause).await;
                    attempt += 1;
                }
                Err(e) => {
                    // Boxed: this rare path's futures would otherwise size every push's.
                    Box::pin(m.failed(&e)).await;
                    return Err(Box::pin(self.push_failed(master, &e)).await);
                }
            }
        }
    }

    /// The error for a failed push. After a failover, the master's idle blocking connections may point at the
    /// demoted master, so they are closed.
    async fn push_failed(&self, master: usize, e: &RedisError) -> TransportError {
        let master = &self.masters[master];
        if is_readonly(e) {
            let stale: Vec<_> = std::mem::take(&mut *lock(&master.idle));
            for client in stale {
                let _ = client.quit().await;
            }
        }
        connection_error(master, e)
    }

    /// A dedicated connection to a master for blocking pops.
    pub(crate) async fn blocking(
        &self,
        master: usize,
    ) -> Result<BlockingConnection, TransportError> {
        let master = self.masters[master].clone();
        let reused = lock(&master.idle).pop();
        let client = match reused {
            Some(client) => client,
            None => {
                open_connection(&master.template, &master.label, master.connect_timeout).await?
            }
        };
        Ok(BlockingConnection {
            client: Some(client),
            master,
            clean: false,
        })
    }
}

/// Opens a fresh connection with the settings of `template`, within `timeout`.
pub(crate) async fn open_connection(
    template: &fred::prelude::Client,
    label: &str,
    timeout: Duration,
) -> Result<fred::prelude::Client, TransportError> {
    let client = template.clone_new();
    match tokio::time::timeout(timeout, client.init()).await {
        Ok(Ok(_)) => Ok(client),
        Ok(Err(e)) => {
            let _ = client.quit().await;
            Err(TransportError::Connection {
                message: format!("{label}: {e}"),
                source: Some(Box::new(e)),
            })
        }
        Err(_) => {
            let _ = client.quit().await;
            Err(TransportError::connection(format!(
                "{label}: no connection within {timeout:?}"
            )))
        }
    }
}

/// A connection used for one blocking pop at a time. Returned to its master's idle list when the last pop
/// finished cleanly; closed when dropped in the middle of one (its pop may still deliver to it, so it must not be
/// reused).
pub(crate) struct BlockingConnection {
    client: Option<fred::prelude::Client>,
    master: Arc<Master>,
    clean: bool,
}

/// What a [`BlockingConnection::blmpop`] brought.
pub(crate) enum Popped {
    /// One frame or more.
    Frames(Vec<Bytes>),
    /// Nothing arrived within the timeout.
    Nothing,
    /// The Redis server has no `BLMPOP` (before 7.0).
    Unsupported,
}

impl BlockingConnection {
    /// `BLPOP key timeout`: the popped frame, or `None` on timeout.
    pub(crate) async fn blpop(
        &mut self,
        key: &str,
        timeout_seconds: f64,
    ) -> Result<Option<Bytes>, TransportError> {
        let Some(client) = &self.client else {
            return Err(TransportError::Closed);
        };
        self.clean = false;
        let value: RedisValue = match client.blpop(key, timeout_seconds).await {
            Ok(value) => value,
            // fred reports BLPOP's nil reply (nothing arrived in time) as a timeout error; the blocking connections
            // have no client-side command timeout, so this is always Redis saying "nothing".
            Err(e) if *e.kind() == ErrorKind::Timeout => RedisValue::Null,
            Err(e) => return Err(connection_error(&self.master, &e)),
        };
        self.clean = true;
        match value {
            RedisValue::Null => Ok(None),
            RedisValue::Array(mut pair) if pair.len() == 2 => match pair.pop() {
                Some(RedisValue::Bytes(b)) => Ok(Some(b)),
                Some(RedisValue::String(s)) => Ok(Some(s.into_inner())),
                other => Err(TransportError::invalid_message(
                    "unexpected BLPOP reply",
                    format!("{other:?}"),
                )),
            },
            other => Err(TransportError::invalid_message(
                "unexpected BLPOP reply",
                format!("{other:?}"),
            )),
        }
    }

    /// `BLMPOP timeout 1 key LEFT COUNT count` (Redis 7.0 and later): as soon as one frame is there, it and up to
    /// `count - 1` more, in one round trip; [`Popped::Unsupported`] from an older Redis.
    pub(crate) async fn blmpop(
        &mut self,
        key: &str,
        timeout_seconds: f64,
        count: usize,
    ) -> Result<Popped, TransportError> {
        let Some(client) = &self.client else {
            return Err(TransportError::Closed);
        };
        self.clean = false;
        let slot = fred::util::redis_keyslot(key.as_bytes());
        let command = CustomCommand::new_static("BLMPOP", ClusterHash::Custom(slot), true);
        let args: Vec<RedisValue> = vec![
            timeout_seconds.into(),
            1_i64.into(),
            key.into(),
            "LEFT".into(),
            "COUNT".into(),
            int_arg(count as u64),
        ];
        let value: RedisValue = match client.custom(command, args).await {
            Ok(value) => value,
            Err(e) if *e.kind() == ErrorKind::Timeout => RedisValue::Null,
            Err(e) if e.details().to_ascii_lowercase().contains("unknown command") => {
                self.clean = true;
                return Ok(Popped::Unsupported);
            }
            Err(e) => return Err(connection_error(&self.master, &e)),
        };
        self.clean = true;
        match value {
            RedisValue::Null => Ok(Popped::Nothing),
            RedisValue::Array(mut pair) if pair.len() == 2 => match pair.pop() {
                Some(RedisValue::Array(items)) => Ok(Popped::Frames(
                    items.into_iter().filter_map(frame_bytes).collect(),
                )),
                other => Err(TransportError::invalid_message(
                    "unexpected BLMPOP reply",
                    format!("{other:?}"),
                )),
            },
            other => Err(TransportError::invalid_message(
                "unexpected BLMPOP reply",
                format!("{other:?}"),
            )),
        }
    }

    /// `LPOP key count` without blocking: up to `count` more frames.
    pub(crate) async fn lpop_many(
        &mut self,
        key: &str,
        count: usize,
    ) -> Result<Vec<Bytes>, TransportError> {
        let Some(client) = &self.client else {
            return Err(TransportError::Closed);
        };
        self.clean = false;
        let value: RedisValue = client
            .lpop(key, Some(count))
            .await
            .map_err(|e| connection_error(&self.master, &e))?;
        // A plain pop that was answered leaves nothing in flight: the connection may be reused. (Left unclean, every
        // pop of a backlog closed its connection and opened a new one.)
        self.clean = true;
        Ok(match value {
            RedisValue::Null => Vec::new(),
            RedisValue::Array(items) => items.into_iter().filter_map(frame_bytes).collect(),
            RedisValue::Bytes(b) => vec![b],
            _ => Vec::new(),
        })
    }

    /// Marks the connection broken so that it is closed, not reused.
    pub(crate) fn discard(&mut self) {
        self.clean = false;
    }
}

impl Drop for BlockingConnection {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        if self.clean {
            let mut idle = lock(&self.master.idle);
            if idle.len() < MAX_IDLE_BLOCKING {
                idle.push(client);
                return;
            }
        }
        // Close it in the background; without a runtime (process exit) the socket simply closes with it.
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let _ = client.quit().await;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support as support;
    use crate::{BackendType, Host};

    /// Successful `EVALSHA` calls so far, from `INFO commandstats` (a NOSCRIPT reply counts as a failed call).
    fn evalsha_successes(port: u16) -> u64 {
        let stats = support::command(port, &["INFO", "commandstats"]).expect("INFO");
        let Some(line) = stats.lines().find(|l| l.starts_with("cmdstat_evalsha:")) else {
            return 0;
        };
        let field = |name: &str| -> u64 {
            line.split(&[':', ','][..])
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
                .unwrap_or(0)
        };
        field("calls") - field("failed_calls")
    }

    fn settings(port: u16) -> RedisSettings {
        RedisSettings::standard([format!("127.0.0.1:{port}")])
    }

    async fn connected(settings: RedisSettings) -> RedisBackend {
        RedisBackend::connect(settings).await.expect("connect")
    }

    fn frames(port: u16, key: &str) -> String {
        support::command(port, &["LRANGE", key, "0", "-1"]).expect("LRANGE")
    }

    #[tokio::test]
    async fn pushes_made_while_one_is_in_flight_go_out_in_one_batch() {
        let redis = support::redis(&[]);
        let backend = connected(settings(redis.port)).await;
        let inner = &backend.inner;
        // All twenty are started before any reply can arrive: the first goes out alone, the rest queue behind it.
        let keys: Vec<String> = (0..4).map(|k| format!("batch:{k}")).collect();
        let pushes = (0..20_u64).map(|i| {
            let key = &keys[(i % 4) as usize];
            inner.push_batched(0, key, 60 + i % 4, Bytes::from(format!("frame {i}")), None)
        });
        for result in futures::future::join_all(pushes).await {
            result.expect("pushed");
        }
        assert_eq!(
            evalsha_successes(redis.port),
            2,
            "one push alone, then one batch"
        );
        for key in 0..4_u64 {
            let name = format!("batch:{key}");
            assert_eq!(support::llen(redis.port, &name), 5);
            let ttl = support::command(redis.port, &["TTL", &name]).expect("TTL");
            assert!(
                ttl.contains(&format!("{}", 60 + key)),
                "{name} expires as asked: {ttl:?}"
            );
            // Each queue holds the batch's frames in the order they were queued (frame 0 went out on its own, so
            // it may land before or after the batch).
            let listed = frames(redis.port, &name);
            let order: Vec<usize> = (0..5)
                .map(|n| key as usize + 4 * n)
                .filter(|&i| i > 0)
                .map(|i| listed.find(&format!("frame {i}\n")).expect("frame"))
                .collect();
            assert!(order.windows(2).all(|w| w[0] < w[1]), "{listed:?}");
        }
    }

    /// A frame of `len` bytes or more, told apart by `i`.
    fn numbered(i: usize, len: usize) -> Bytes {
        let mut frame = format!("frame {i}:").into_bytes();
        frame.resize(len.max(frame.len()), b'.');
        Bytes::from(frame)
    }

    #[tokio::test]
    async fn a_full_queue_refuses_exactly_the_frames_over_capacity_in_a_batch() {
        let redis = support::redis(&[]);
        let mut settings = settings(redis.port);
        settings.queue_capacity = 3;
        settings.queue_full_retries = 0;
        let backend = connected(settings).await;
        let inner = &backend.inner;
        // Small frames go through the scripts, large ones through RPUSH and the check after.
        for (key, len) in [("full", 0), ("full-large", LARGE_FRAME)] {
            let pushes = (0..8).map(|i| inner.push_batched(0, key, 60, numbered(i, len), None));
            let results = futures::future::join_all(pushes).await;
            let pushed = results.iter().filter(|r| r.is_ok()).count();
            let refused = results
                .iter()
                .filter(|r| matches!(r, Err(TransportError::QueueFull { queue }) if queue == key))
                .count();
            assert_eq!((pushed, refused), (3, 5), "{key}: {results:?}");
            assert_eq!(support::llen(redis.port, key), 3, "{key}");
            // Only the large frames' batch went through MULTI/EXEC.
            assert_eq!(command_calls(redis.port, "exec") > 0, len > 0, "{key}");
        }
    }

    /// Each key's frames and TTL, for comparing what two ways of pushing leave in Redis.
    fn state(port: u16, keys: &[String]) -> Vec<(String, String)> {
        keys.iter()
            .map(|k| {
                let ttl = support::command(port, &["TTL", k]).expect("TTL");
                (frames(port, k), ttl)
            })
            .collect()
    }

    #[tokio::test]
    async fn large_frames_are_checked_after_rpush_exactly_as_pysoas_script_checks_before() {
        let redis = support::redis(&[]);
        let backend = connected(settings(redis.port)).await;
        let pusher = &backend.inner.masters[0].pusher;
        let capacity = 3;
        // Queues that start empty, part full, full and over capacity (those with frames also with a TTL of their
        // own), each pushed to several times in one batch.
        let plan = [
            ("a", 1, 10),
            ("a", 1, 11),
            ("b", 3, 12),
            ("c", 0, 13),
            ("a", 1, 14),
            ("c", 0, 15),
            ("c", 0, 16),
            ("c", 0, 17),
            ("d", 2, 18),
            ("a", 1, 19),
            ("e", 5, 20),
        ];
        let mut outcomes = Vec::new();
        let mut states = Vec::new();
        for way in ["script", "checked"] {
            let key = |name: &str| format!("{way}:{name}");
            for (name, already, _) in plan {
                let _ = support::command(redis.port, &["DEL", &key(name)]);
                for n in 0..already {
                    let old = format!("old {n}");
                    support::command(redis.port, &["RPUSH", &key(name), &old]).expect("RPUSH");
                }
                if already > 0 {
                    support::command(redis.port, &["EXPIRE", &key(name), "1000"]).expect("EXPIRE");
                }
            }
            let keys: Vec<String> = plan.iter().map(|(name, _, _)| key(name)).collect();
            let bodies: Vec<Bytes> = (0..plan.len()).map(|i| numbered(i, LARGE_FRAME)).collect();
            let pushes: Vec<Push<'_>> = plan
                .iter()
                .enumerate()
                .map(|(i, (_, _, ttl))| Push {
                    key: &keys[i],
                    ttl_seconds: *ttl,
                    frame: &bodies[i],
                })
                .collect();
            let pushed = if way == "script" {
                // PySOA's way: its script, frame after frame.
                let mut pushed = Vec::new();
                for push in pushes {
                    pushed.push(
                        pusher
                            .push_one(capacity as u64, &push)
                            .await
                            .expect("pushed"),
                    );
                }
                pushed
            } else {
                let execs = command_calls(redis.port, "exec");
                let pushed = pusher
                    .push_checked(capacity as u64, &pushes)
                    .await
                    .expect("pushed");
                assert_eq!(
                    command_calls(redis.port, "exec"),
                    execs + 1,
                    "one transaction"
                );
                pushed
            };
            outcomes.push(pushed);
            let mut names: Vec<String> = plan.iter().map(|(name, _, _)| key(name)).collect();
            names.dedup();
            names.sort();
            names.dedup();
            states.push(state(redis.port, &names));
        }
        assert_eq!(outcomes[0], outcomes[1]);
        assert_eq!(
            outcomes[0],
            [true, true, false, true, false, true, true, false, true, false, false]
        );
        assert_eq!(states[0], states[1]);
    }

    #[tokio::test]
    async fn both_drains_pop_every_ready_frame_with_its_keys_index_in_order() {
        let redis = support::redis(&[]);
        let backend = connected(settings(redis.port)).await;
        let pusher = &backend.inner.masters[0].pusher;
        let keys = ["d:0", "d:1", "d:2", "d:3"];
        for large in [false, true] {
            let drain = |keys| async move {
                if large {
                    pusher.drain_large(keys).await
                } else {
                    pusher.drain(keys).await
                }
            };
            assert!(drain(&keys).await.expect("drain").is_empty());
            for (key, frame) in [
                ("d:1", "a"),
                ("d:3", "b"),
                ("d:1", "c"),
                ("d:3", "d"),
                ("d:1", "e"),
            ] {
                support::command(redis.port, &["RPUSH", key, frame]).expect("RPUSH");
            }
            let drained: Vec<(usize, String)> = drain(&keys)
                .await
                .expect("drain")
                .into_iter()
                .map(|(i, f)| (i, String::from_utf8_lossy(&f).into_owned()))
                .collect();
            let expected = [(1, "a"), (1, "c"), (1, "e"), (3, "b"), (3, "d")];
            assert_eq!(
                drained,
                expected.map(|(i, f)| (i, f.to_owned())),
                "each key's frames in order, by index (large: {large})"
            );
            assert_eq!(support::llen(redis.port, "d:1"), 0);
            assert!(drain(&keys).await.expect("drain").is_empty());
        }
    }

    #[tokio::test]
    async fn a_lone_large_frame_takes_pysoas_script() {
        let redis = support::redis(&[]);
        let backend = connected(settings(redis.port)).await;
        let frame = numbered(1, 4 * LARGE_FRAME);
        backend
            .inner
            .push(0, "lone", 60, frame.clone(), None)
            .await
            .expect("pushed");
        assert_eq!(evalsha_successes(redis.port), 1);
        assert_eq!(command_calls(redis.port, "exec"), 0);
        assert_eq!(frames(redis.port, "lone").len(), frame.len() + 1);
    }

    #[tokio::test]
    async fn a_key_that_is_not_a_list_fails_a_checked_push_and_the_other_queues_stay_in_bounds() {
        let redis = support::redis(&[]);
        let mut settings = settings(redis.port);
        settings.queue_capacity = 1;
        let backend = connected(settings).await;
        let pusher = &backend.inner.masters[0].pusher;
        support::command(redis.port, &["SET", "text", "not a list"]).expect("SET");
        let (first, second, third) = (
            numbered(1, LARGE_FRAME),
            numbered(2, LARGE_FRAME),
            numbered(3, LARGE_FRAME),
        );
        let pushes = vec![
            Push {
                key: "queue",
                ttl_seconds: 30,
                frame: &first,
            },
            Push {
                key: "text",
                ttl_seconds: 30,
                frame: &second,
            },
            Push {
                key: "queue",
                ttl_seconds: 30,
                frame: &third,
            },
        ];
        let failed = pusher
            .push_checked(1, &pushes)
            .await
            .expect_err("WRONGTYPE");
        assert!(failed.details().contains("WRONGTYPE"), "{failed}");
        assert_eq!(support::llen(redis.port, "queue"), 1, "capacity kept");
        assert!(frames(redis.port, "queue").starts_with("frame 1:"));
        let ttl = support::command(redis.port, &["TTL", "queue"]).expect("TTL");
        assert!(ttl.contains("30") || ttl.contains("29"), "{ttl:?}");
    }

    /// How many times Redis has run `command`, from `INFO commandstats`.
    fn command_calls(port: u16, command: &str) -> u64 {
        let stats = support::command(port, &["INFO", "commandstats"]).expect("INFO");
        stats
            .lines()
            .find_map(|l| l.strip_prefix(&format!("cmdstat_{command}:calls=")))
            .and_then(|rest| rest.split(',').next()?.parse().ok())
            .unwrap_or(0)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_a_cluster_a_batch_goes_out_once_per_hash_slot() {
        let nodes = support::cluster();
        let mut settings = RedisSettings::new(BackendType::Cluster);
        settings.backend_layer_kwargs.hosts = nodes
            .iter()
            .map(|n| Host::Pair("127.0.0.1".into(), n.port))
            .collect();
        let backend = connected(settings).await;
        let inner = &backend.inner;
        // Keys in many slots (and so on every node); a multi-key script across slots would fail with CROSSSLOT.
        // Every other key gets large frames, which on a cluster go through the scripts too.
        let keys: Vec<String> = (0..12).map(|i| format!("slot-key-{i}")).collect();
        let pushes = (0..48).map(|i| {
            let len = if i % 2 == 0 { 0 } else { LARGE_FRAME };
            inner.push_batched(0, &keys[i % 12], 60, numbered(i, len), None)
        });
        for result in futures::future::join_all(pushes).await {
            result.expect("pushed");
        }
        for key in &keys {
            let slot = fred::util::redis_keyslot(key.as_bytes());
            let total: i64 = nodes
                .iter()
                .filter_map(|n| {
                    let reply = support::command(
                        n.port,
                        &["CLUSTER", "COUNTKEYSINSLOT", &slot.to_string()],
                    )?;
                    (reply.trim().trim_start_matches(':') == "1")
                        .then(|| support::llen(n.port, key))
                })
                .sum();
            assert_eq!(total, 4, "{key}");
        }
    }
}
