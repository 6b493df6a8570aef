//! The connections: one ring of masters, each with a pool for pushes and dedicated connections for blocking pops.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use fred::prelude::Server as RedisServer;
use fred::prelude::{
    Builder, ClientLike, Config, Error as RedisError, ErrorKind, ListInterface, LuaInterface, Pool,
    ReconnectPolicy, ServerConfig, TcpConfig, Value as RedisValue,
};
use fred::types::scripts::Script;
use rsoa_transport::Error as TransportError;

use crate::ring::{reply_master_index, RoundRobin};
use crate::settings::{BackendSettings, BackendType, ConnectionSettings};
use crate::{Error, RedisSettings};

/// PySOA's push script (wire-spec §9.1): refuse when the list is at capacity, else push and refresh the expiry.
pub(crate) const PUSH_SCRIPT: &str = "if redis.call('llen', KEYS[1]) >= tonumber(ARGV[2]) then\n    return redis.error_reply(\"queue full\")\nend\nredis.call('rpush', KEYS[1], ARGV[3])\nredis.call('expire', KEYS[1], ARGV[1])";

/// How many idle blocking connections a master keeps for reuse.
const MAX_IDLE_BLOCKING: usize = 512;

/// A connection to the Redis deployment named by one set of settings, shared by every transport built on it.
///
/// Build one with [`RedisBackend::connect`] and make client and server transports from it; like PySOA's backend
/// layer cache, every transport of a process with the same settings should share one backend.
#[derive(Clone)]
pub struct RedisBackend {
    pub(crate) inner: Arc<BackendInner>,
}

pub(crate) struct BackendInner {
    pub(crate) settings: RedisSettings,
    pub(crate) masters: Vec<Arc<Master>>,
    round_robin: RoundRobin,
    script: Script,
}

pub(crate) struct Master {
    label: String,
    pool: Pool,
    /// A client whose `clone_new` makes fresh connections with the same settings.
    template: fred::prelude::Client,
    idle: Mutex<Vec<fred::prelude::Client>>,
    connect_timeout: Duration,
    cluster: bool,
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
    let config = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
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
                let hosts = resolve_hosts(backend, port)?;
                for (host, port) in hosts {
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
            BackendType::Sentinel => {
                let port = backend.redis_port.unwrap_or(26379);
                let sentinels = resolve_hosts(backend, port)?;
                if backend.sentinel_services.is_empty() {
                    return Err(Error::Settings(
                        "backend_layer_kwargs.sentinel_services: list the master names".to_owned(),
                    ));
                }
                for service in &backend.sentinel_services {
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
            masters.push(Arc::new(Master {
                label,
                pool,
                template,
                idle: Mutex::new(Vec::new()),
                connect_timeout,
                cluster: settings.backend_type == BackendType::Cluster,
            }));
        }
        let round_robin = RoundRobin::new(masters.len());
        Ok(RedisBackend {
            inner: Arc::new(BackendInner {
                settings,
                masters,
                round_robin,
                script: Script::from_lua(PUSH_SCRIPT),
            }),
        })
    }

    /// The settings this backend was built with.
    pub fn settings(&self) -> &RedisSettings {
        &self.inner.settings
    }

    /// Closes every connection.
    pub async fn close(&self) {
        for master in &self.inner.masters {
            let idle: Vec<_> = std::mem::take(&mut *lock(&master.idle));
            for client in idle {
                let _ = client.quit().await;
            }
            let _ = master.pool.quit().await;
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn connection_error(master: &Master, e: &RedisError) -> TransportError {
    TransportError::Connection {
        message: format!("{}: {e}", master.label),
        source: Some(Box::new(e.clone())),
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

    /// Pushes one frame with PySOA's capacity-checking script, retrying a full queue with PySOA's back-off
    /// (`(2^i + rand) / 4` s) until the retries, the total wait or `deadline` run out.
    pub(crate) async fn push(
        &self,
        master: usize,
        key: &str,
        ttl_seconds: u64,
        frame: Bytes,
        deadline: Option<Instant>,
    ) -> Result<(), TransportError> {
        let master = &self.masters[master];
        let settings = &self.settings;
        let started = Instant::now();
        let max_wait = seconds(settings.queue_full_max_wait_in_seconds);
        let args = vec![
            RedisValue::Integer(i64::try_from(ttl_seconds).unwrap_or(i64::MAX)),
            RedisValue::Integer(i64::try_from(settings.queue_capacity).unwrap_or(i64::MAX)),
            RedisValue::Bytes(frame),
        ];
        let mut attempt = 0_u32;
        loop {
            let client = master.pool.next();
            let result: Result<RedisValue, RedisError> = match client
                .evalsha(self.script.sha1().clone(), key, args.clone())
                .await
            {
                Err(e) if e.details().starts_with("NOSCRIPT") => {
                    let loaded: Result<RedisValue, RedisError> = if master.cluster {
                        client.script_load_cluster(PUSH_SCRIPT).await
                    } else {
                        client.script_load(PUSH_SCRIPT).await
                    };
                    match loaded {
                        Ok(_) => {
                            client
                                .evalsha(self.script.sha1().clone(), key, args.clone())
                                .await
                        }
                        Err(e) => Err(e),
                    }
                }
                other => other,
            };
            match result {
                Ok(_) => return Ok(()),
                Err(e) if e.details().contains("queue full") => {
                    if attempt >= settings.queue_full_retries {
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
                        return Err(TransportError::QueueFull {
                            queue: key.to_owned(),
                        });
                    }
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
                    if e.details().starts_with("READONLY") {
                        // The "master" was demoted by a failover while the connection stayed up: reconnect, which
                        // asks the Sentinels for the new master (PySOA disconnects on READONLY too).
                        tracing::warn!(master = %master.label, "master became a replica; reconnecting");
                        let _ = master.pool.force_reconnection().await;
                        let stale: Vec<_> = std::mem::take(&mut *lock(&master.idle));
                        for client in stale {
                            let _ = client.quit().await;
                        }
                    }
                    return Err(connection_error(master, &e));
                }
            }
        }
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
                let client = master.template.clone_new();
                match tokio::time::timeout(master.connect_timeout, client.init()).await {
                    Ok(Ok(_)) => client,
                    Ok(Err(e)) => return Err(connection_error(&master, &e)),
                    Err(_) => {
                        let _ = client.quit().await;
                        return Err(TransportError::connection(format!(
                            "{}: no connection within {:?}",
                            master.label, master.connect_timeout
                        )));
                    }
                }
            }
        };
        Ok(BlockingConnection {
            client: Some(client),
            master,
            clean: false,
        })
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

    /// `LPOP key count` without blocking: up to `count` more frames.
    pub(crate) async fn lpop_many(
        &mut self,
        key: &str,
        count: usize,
    ) -> Result<Vec<Bytes>, TransportError> {
        let Some(client) = &self.client else {
            return Err(TransportError::Closed);
        };
        let value: RedisValue = client
            .lpop(key, Some(count))
            .await
            .map_err(|e| connection_error(&self.master, &e))?;
        Ok(match value {
            RedisValue::Null => Vec::new(),
            RedisValue::Array(items) => items
                .into_iter()
                .filter_map(|v| match v {
                    RedisValue::Bytes(b) => Some(b),
                    RedisValue::String(s) => Some(s.into_inner()),
                    _ => None,
                })
                .collect(),
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
