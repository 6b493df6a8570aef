//! Real Redis for the tests: `redis-server` (and Sentinel, and Cluster) processes on free loopback ports, started
//! by the test that needs them and killed when it drops them. Every wait has a deadline; nothing sleeps blindly.

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to start or change state.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// A free TCP port on 127.0.0.1 (bound and released; `redis-server` binds it right after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind a free port")
        .local_addr()
        .expect("local address")
        .port()
}

/// Polls `check` until it returns `Some` or the deadline passes.
pub fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    let mut pause = Duration::from_millis(5);
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// How many connections Redis has open that are not counting connections: those whose last command is not
/// `CLIENT LIST`. Polling with [`connections`] opens a connection a time, and the one before may still be listed
/// while Redis reaps it, which would count one connection too many.
pub fn working_connections(port: u16) -> usize {
    command(port, &["CLIENT", "LIST"])
        .map(|list| {
            list.lines()
                .filter(|l| {
                    l.starts_with("id=")
                        && !l.contains(" cmd=client|list ")
                        && !l.contains(" cmd=client ")
                })
                .count()
        })
        .unwrap_or(0)
}

/// How many connections Redis has open, from `CLIENT LIST` (the one asking included).
pub fn connections(port: u16) -> usize {
    command(port, &["CLIENT", "LIST"])
        .map(|list| list.lines().filter(|l| l.starts_with("id=")).count())
        .unwrap_or(0)
}

/// Every command Redis runs while it lasts, as `MONITOR` reports them (`<time> [<db> <client>] "<command>" …`, with
/// `lua` as the client of commands a script runs).
pub struct Monitor {
    stream: TcpStream,
    lines: std::thread::JoinHandle<Vec<String>>,
}

impl Monitor {
    /// Starts monitoring the Redis on `port`; commands run after this returns are recorded.
    pub fn start(port: u16) -> Monitor {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect for MONITOR");
        stream
            .write_all(b"*1\r\n$7\r\nMONITOR\r\n")
            .expect("MONITOR");
        let mut reader = BufReader::new(stream.try_clone().expect("clone the stream"));
        let mut ok = String::new();
        reader.read_line(&mut ok).expect("MONITOR's +OK");
        assert!(ok.starts_with("+OK"), "{ok:?}");
        let lines = std::thread::spawn(move || {
            reader
                .lines()
                .map_while(Result::ok)
                .map(|line| line.trim_start_matches('+').to_owned())
                .collect()
        });
        Monitor { stream, lines }
    }

    /// Stops and returns what was recorded.
    pub fn stop(self) -> Vec<String> {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        self.lines.join().expect("monitor thread")
    }
}

/// Sends one command in RESP and returns the raw reply (enough for PING, INFO, SENTINEL and CLUSTER queries).
pub fn command(port: u16, args: &[&str]) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let mut request = format!("*{}\r\n", args.len());
    for arg in args {
        request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    stream.write_all(request.as_bytes()).ok()?;
    let mut reader = BufReader::new(stream);
    let mut out = String::new();
    read_reply(&mut reader, &mut out).ok()?;
    Some(out)
}

fn read_reply(reader: &mut impl BufRead, out: &mut String) -> std::io::Result<()> {
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let body = line.trim_end().to_owned();
    match body.chars().next() {
        Some('$') => {
            let len: i64 = body[1..].parse().unwrap_or(-1);
            if len >= 0 {
                let mut buf = vec![0; len as usize + 2];
                reader.read_exact(&mut buf)?;
                out.push_str(&String::from_utf8_lossy(&buf[..len as usize]));
                out.push('\n');
            }
        }
        Some('*') => {
            let n: i64 = body[1..].parse().unwrap_or(0);
            for _ in 0..n.max(0) {
                read_reply(reader, out)?;
            }
        }
        _ => {
            out.push_str(&body);
            out.push('\n');
        }
    }
    Ok(())
}

/// A killed-on-drop child process with its own scratch directory.
pub struct Process {
    child: Child,
    pub port: u16,
    pub dir: PathBuf,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn scratch_dir(name: &str, port: u16) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rsoa-test-{name}-{port}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

fn spawn(name: &str, port: u16, args: &[String]) -> Process {
    let dir = scratch_dir(name, port);
    let child = Command::new("redis-server")
        .args(args)
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server must be installed (bash .ci/run installs it)");
    Process { child, port, dir }
}

fn base_args(port: u16) -> Vec<String> {
    [
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--protected-mode",
        "no",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

/// Starts a plain Redis server and waits until it answers.
pub fn redis(extra: &[&str]) -> Process {
    let port = free_port();
    let mut args = base_args(port);
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let process = spawn("redis", port, &args);
    // A server that requires a password answers NOAUTH, which also means it is up.
    wait_for("redis-server to answer PING", || {
        command(port, &["PING"]).filter(|r| r.contains("PONG") || r.contains("NOAUTH"))
    });
    process
}

/// Starts a replica of `master`.
pub fn replica(master: u16) -> Process {
    let port = free_port();
    let mut args = base_args(port);
    args.extend([
        "--replicaof".to_owned(),
        "127.0.0.1".to_owned(),
        master.to_string(),
    ]);
    let process = spawn("replica", port, &args);
    wait_for("the replica to sync", || {
        command(port, &["INFO", "replication"]).filter(|r| r.contains("master_link_status:up"))
    });
    process
}

/// Starts a Sentinel monitoring `master` under `name` with a quorum of `quorum` and quick failover.
pub fn sentinel(name: &str, master: u16, quorum: u32) -> Process {
    let port = free_port();
    let dir = scratch_dir("sentinel", port);
    let config = format!(
        "port {port}\nbind 127.0.0.1\nprotected-mode no\nsentinel monitor {name} 127.0.0.1 {master} {quorum}\n\
         sentinel down-after-milliseconds {name} 500\nsentinel failover-timeout {name} 3000\n\
         sentinel parallel-syncs {name} 1\n"
    );
    let path = dir.join("sentinel.conf");
    std::fs::write(&path, config).expect("write sentinel.conf");
    let child = Command::new("redis-server")
        .arg(&path)
        .arg("--sentinel")
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server must be installed");
    let process = Process { child, port, dir };
    wait_for("the sentinel to answer", || {
        command(port, &["PING"]).filter(|r| r.contains("PONG"))
    });
    process
}

/// Starts a three-master Redis Cluster and waits until every slot is served.
pub fn cluster() -> Vec<Process> {
    let nodes: Vec<Process> = (0..3)
        .map(|_| {
            let port = free_port();
            let mut args = base_args(port);
            args.extend(
                [
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "2000",
                ]
                .iter()
                .map(|s| (*s).to_owned()),
            );
            let process = spawn("cluster", port, &args);
            wait_for("a cluster node to answer", || {
                command(port, &["PING"]).filter(|r| r.contains("PONG"))
            });
            process
        })
        .collect();
    let mut create = Command::new("redis-cli");
    create.arg("--cluster").arg("create");
    for node in &nodes {
        create.arg(format!("127.0.0.1:{}", node.port));
    }
    let status = create
        .arg("--cluster-yes")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("redis-cli must be installed");
    assert!(status.success(), "redis-cli --cluster create failed");
    for node in &nodes {
        wait_for("the cluster to be ok", || {
            command(node.port, &["CLUSTER", "INFO"]).filter(|r| r.contains("cluster_state:ok"))
        });
    }
    nodes
}

/// Pushes raw bytes onto a list (RPUSH), for planting malformed messages.
pub fn push_raw(port: u16, key: &str, value: &[u8]) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to redis");
    let mut request = format!(
        "*3\r\n$5\r\nRPUSH\r\n${}\r\n{key}\r\n${}\r\n",
        key.len(),
        value.len()
    )
    .into_bytes();
    request.extend_from_slice(value);
    request.extend_from_slice(b"\r\n");
    stream.write_all(&request).expect("send RPUSH");
    let mut reply = [0_u8; 64];
    let _ = stream.read(&mut reply);
}

/// The length of a list.
pub fn llen(port: u16, key: &str) -> i64 {
    command(port, &["LLEN", key])
        .and_then(|r| r.trim().trim_start_matches(':').parse().ok())
        .unwrap_or(-1)
}

/// Starts a TLS-only Redis with a certificate for `localhost` and `127.0.0.1` signed by a throwaway authority;
/// returns the server and the authority's PEM file.
pub fn redis_tls() -> (Process, PathBuf) {
    let (process, ca, _) = redis_tls_with(false);
    (process, ca)
}

/// A TLS-only `redis-server` like [`redis_tls`]; with `client_certificates`, one that requires a client certificate
/// from the same authority, whose certificate and key files it also returns.
pub fn redis_tls_with(client_certificates: bool) -> (Process, PathBuf, Option<(PathBuf, PathBuf)>) {
    let port = free_port();
    let dir = scratch_dir("tls", port);
    let openssl = |args: &[&str]| {
        let status = Command::new("openssl")
            .args(args)
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("openssl must be installed (bash .ci/run installs it)");
        assert!(status.success(), "openssl {args:?} failed");
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=rsoa-test-ca",
    ]);
    // A key and a certificate signed by the authority; the extension also makes it version 3, which rustls
    // requires (a plain `x509 -req` makes version 1).
    let issue = |name: &str, subject: &str, extension: &str| {
        let (key, csr, crt, ext) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.crt"),
            format!("{name}-ext.cnf"),
        );
        openssl(&[
            "req", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &csr, "-subj", subject,
        ]);
        std::fs::write(dir.join(&ext), format!("{extension}\n")).expect("write the extension");
        openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &crt,
            "-days",
            "2",
            "-extfile",
            &ext,
        ]);
    };
    issue(
        "server",
        "/CN=localhost",
        "subjectAltName=DNS:localhost,IP:127.0.0.1",
    );
    if client_certificates {
        issue(
            "client",
            "/CN=rsoa-test-client",
            "extendedKeyUsage=clientAuth",
        );
    }
    let child = Command::new("redis-server")
        .args([
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .args([
            "--tls-cert-file",
            "server.crt",
            "--tls-key-file",
            "server.key",
            "--tls-ca-cert-file",
            "ca.crt",
        ])
        .args([
            "--tls-auth-clients",
            if client_certificates { "yes" } else { "no" },
        ])
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server must be installed");
    let ca = dir.join("ca.crt");
    let client = client_certificates.then(|| (dir.join("client.crt"), dir.join("client.key")));
    let process = Process { child, port, dir };
    wait_for("the TLS port to accept connections", || {
        TcpStream::connect(("127.0.0.1", port)).ok()
    });
    (process, ca, client)
}

/// A service served on Redis with `rsoa_server::serve`, and a client for it; the server stops on drop.
pub struct Served {
    pub client: rsoa_client::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<rsoa_server::ServeOutcome>>,
}

impl Served {
    /// Serves `server` with `server_settings` and connects a client with `client_settings`.
    pub async fn start(
        server: rsoa_server::Server,
        server_settings: rsoa_transport_redis::RedisSettings,
        client_settings: rsoa_transport_redis::RedisSettings,
    ) -> Served {
        use rsoa_transport_redis::{RedisBackend, RedisClientTransport, RedisServerTransport};
        let name = server.service_name().to_owned();
        let server_backend = RedisBackend::connect(server_settings)
            .await
            .expect("server connects");
        let transport = std::sync::Arc::new(
            RedisServerTransport::new(&server_backend, &name).expect("server transport"),
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let served = tokio::spawn(rsoa_server::serve(
            server,
            transport,
            shutdown,
            Duration::from_secs(5),
        ));
        let backend = RedisBackend::connect(client_settings)
            .await
            .expect("client connects");
        let client = rsoa_client::Client::builder()
            .timeout(Duration::from_secs(10))
            .service(RedisClientTransport::new(&backend, &name).expect("client transport"))
            .build();
        Served {
            client,
            stop: Some(stop),
            served: Some(served),
        }
    }

    /// Stops the server and reports how its serve loop ended.
    pub async fn stop(mut self) -> rsoa_server::ServeOutcome {
        let _ = self.stop.take().map(|s| s.send(()));
        self.served
            .take()
            .expect("served")
            .await
            .expect("serve task")
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
