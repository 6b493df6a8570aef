//! Sentinel failover and Redis Cluster, with real processes.

#[path = "../support/mod.rs"]
mod support;

use std::time::Duration;

use rsoa_client::{action, Client};
use rsoa_server::{ActionContext, ActionError, Server};
use rsoa_transport_redis::{BackendType, Host, RedisBackend, RedisSettings};
use serde_json::json;
use support::{cluster, command, redis, replica, sentinel, wait_for, Served, DEADLINE};

#[derive(serde::Deserialize)]
struct Square {
    number: i64,
}

#[derive(serde::Deserialize)]
struct Big {
    size: usize,
}

#[derive(serde::Serialize)]
struct Squared {
    square: i64,
}

#[derive(serde::Serialize)]
struct Text {
    text: String,
}

fn service() -> Server {
    Server::builder("svc")
        .action_fn("square", |req: Square, _ctx: ActionContext| async move {
            Ok::<_, ActionError>(Squared {
                square: req.number * req.number,
            })
        })
        .action_fn("big", |req: Big, _ctx: ActionContext| async move {
            Ok::<_, ActionError>(Text {
                text: "z".repeat(req.size),
            })
        })
        .build()
        .unwrap()
}

async fn square_eventually(client: &Client, n: i64) -> i64 {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        match client
            .call_action("svc", "square", &json!({"number": n}))
            .timeout(Duration::from_secs(2))
            .await
        {
            Ok(response) => return response.body["square"].as_i64().unwrap(),
            Err(err) => {
                assert!(tokio::time::Instant::now() < deadline, "no answer: {err}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_failover_recovers_by_itself() {
    let master = redis(&[]);
    let replica = replica(master.port);
    let sentinels: Vec<_> = (0..3)
        .map(|_| sentinel("mymaster", master.port, 2))
        .collect();
    let settings = || {
        let mut s = RedisSettings::new(BackendType::Sentinel);
        s.backend_layer_kwargs.hosts = sentinels
            .iter()
            .map(|p| Host::Pair("127.0.0.1".into(), p.port))
            .collect();
        s.backend_layer_kwargs.sentinel_services = vec!["mymaster".into()];
        s.backend_layer_kwargs.connection_kwargs.reconnect_max_delay = 0.2;
        s
    };
    let served = Served::start(service(), settings(), settings()).await;
    let client = &served.client;
    assert_eq!(square_eventually(client, 3).await, 9);

    // Kill the master mid-run: the Sentinels promote the replica, and calls work again without intervention.
    let old = master.port;
    drop(master);
    let sentinel_port = sentinels[0].port;
    wait_for("the sentinels to promote the replica", || {
        command(
            sentinel_port,
            &["SENTINEL", "get-master-addr-by-name", "mymaster"],
        )
        .filter(|r| r.contains(&replica.port.to_string()) && !r.contains(&old.to_string()))
    });
    assert_eq!(square_eventually(client, 4).await, 16);
    let parallel = client
        .call_actions_parallel(
            "svc",
            (1..=5).map(|n| action("square", &json!({"number": n})).unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(parallel.len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_masters_are_discovered_when_sentinel_services_is_omitted() {
    let first = redis(&[]);
    let second = redis(&[]);
    // One Sentinel monitoring two masters, and a Sentinel listed first that is not there: discovery asks the
    // next one.
    let watcher = sentinel("alpha", first.port, 1);
    command(
        watcher.port,
        &[
            "SENTINEL",
            "MONITOR",
            "beta",
            "127.0.0.1",
            &second.port.to_string(),
            "1",
        ],
    )
    .expect("monitor beta");
    let settings = || {
        let mut s = RedisSettings::new(BackendType::Sentinel);
        s.backend_layer_kwargs.hosts = vec![
            Host::Pair("127.0.0.1".into(), support::free_port()),
            Host::Pair("127.0.0.1".into(), watcher.port),
        ];
        s.backend_layer_kwargs
            .sentinel_kwargs
            .socket_connect_timeout = 1.0;
        s
    };
    let served = Served::start(service(), settings(), settings()).await;
    let client = &served.client;
    assert_eq!(square_eventually(client, 6).await, 36);
    // Both masters are in the ring: the service listens on each, and calls spread their requests over both.
    let parallel = client
        .call_actions_parallel(
            "svc",
            (1..=20).map(|n| action("square", &json!({"number": n})).unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(parallel.len(), 20);
    for port in [first.port, second.port] {
        wait_for("a connection to each master", || {
            (support::connections(port) > 1).then_some(())
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cluster_carries_every_call() {
    let nodes = cluster();
    let settings = || {
        let mut s = RedisSettings::new(BackendType::Cluster);
        s.backend_layer_kwargs.hosts = nodes
            .iter()
            .map(|n| Host::Pair("127.0.0.1".into(), n.port))
            .collect();
        s
    };
    let mut server_settings = settings();
    server_settings.chunk_messages_larger_than_bytes = Some(102_400);
    server_settings.maximum_message_size_in_bytes = Some(4_000_000);
    let served = Served::start(service(), server_settings, settings()).await;
    let client = &served.client;
    assert_eq!(square_eventually(client, 5).await, 25);
    // Many calls in flight: their reply queues share the backend's hash tag, so one BLPOP waits on many of them
    // (across slots Redis would refuse it with CROSSSLOT).
    let parallel = client
        .call_actions_parallel(
            "svc",
            (1..=40).map(|n| action("square", &json!({"number": n})).unwrap()),
        )
        .await
        .unwrap();
    let got: Vec<i64> = parallel
        .iter()
        .map(|r| r.body["square"].as_i64().unwrap())
        .collect();
    assert_eq!(got, (1..=40).map(|n| n * n).collect::<Vec<_>>());
    let big = client
        .call_action("svc", "big", &json!({"size": 500_000}))
        .await
        .unwrap();
    assert_eq!(big.body["text"].as_str().map(str::len), Some(500_000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_and_acl_users() {
    let redis = redis(&[
        "--requirepass",
        "secret",
        "--user",
        "alice",
        "on",
        ">wonderland",
        "~*",
        "&*",
        "+@all",
    ]);
    let settings = |user: Option<&str>, password: &str| {
        let mut s = RedisSettings::standard([format!("127.0.0.1:{}", redis.port)]);
        s.backend_layer_kwargs.connection_kwargs.username = user.map(str::to_owned);
        s.backend_layer_kwargs.connection_kwargs.password = Some(password.to_owned());
        s.backend_layer_kwargs
            .connection_kwargs
            .socket_connect_timeout = 2.0;
        s
    };
    // The default user with the server's password serves; an ACL user calls.
    let served = Served::start(
        service(),
        settings(None, "secret"),
        settings(Some("alice"), "wonderland"),
    )
    .await;
    let client = &served.client;
    assert_eq!(square_eventually(client, 6).await, 36);
    // A wrong password is a clear connection error, not a hang.
    let err = RedisBackend::connect(settings(Some("alice"), "wrong"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains(&redis.port.to_string()), "{err}");
}

/// The least a server or a client needs of Redis (`docs/redis-transport.md`): its queues' keys, no channels, and
/// these commands.
const LEAST_PRIVILEGE: &[&str] = &[
    "resetchannels",
    "~pysoa:*",
    "-@all",
    "+blmpop",
    "+blpop",
    "+lpop",
    "+llen",
    "+rpush",
    "+ltrim",
    "+exists",
    "+expire",
    "+evalsha",
    "+eval",
    "+script|load",
    "+multi",
    "+exec",
    "+ping",
    "+info",
    "+client|id",
];

/// Settings for the ACL user `user` (password `p`) on the Redis at `port`.
fn acl_user(port: u16, user: &str) -> RedisSettings {
    let mut s = RedisSettings::standard([format!("127.0.0.1:{port}")]);
    s.backend_layer_kwargs.connection_kwargs.username = Some(user.to_owned());
    s.backend_layer_kwargs.connection_kwargs.password = Some("p".to_owned());
    s.backend_layer_kwargs
        .connection_kwargs
        .socket_connect_timeout = 2.0;
    s
}

/// Creates the ACL user `user` (password `p`) with the least-privilege rights but `without`.
fn set_acl_user(port: u16, user: &str, without: Option<&str>) {
    let mut args = vec!["ACL", "SETUSER", user, "reset", "on", ">p"];
    args.extend(
        LEAST_PRIVILEGE
            .iter()
            .copied()
            .filter(|r| Some(*r) != without),
    );
    let reply = command(port, &args).expect("ACL SETUSER");
    assert!(reply.starts_with("+OK"), "{reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_privilege_acl_users_serve_and_call_and_one_missing_a_right_fails_naming_it() {
    let redis = redis(&[]);
    set_acl_user(redis.port, "server", None);
    set_acl_user(redis.port, "app", None);
    let mut server = acl_user(redis.port, "server");
    server.chunk_messages_larger_than_bytes = Some(102_400);
    server.maximum_message_size_in_bytes = Some(4_000_000);
    let served = Served::start(service(), server, acl_user(redis.port, "app")).await;
    // Every path: a tiny call, a chunked response of large frames, and calls in parallel (drained together).
    assert_eq!(square_eventually(&served.client, 6).await, 36);
    let big = served
        .client
        .call_action("svc", "big", &json!({"size": 500_000}))
        .await
        .unwrap();
    assert_eq!(big.body["text"].as_str().map(str::len), Some(500_000));
    let parallel = served
        .client
        .call_actions_parallel(
            "svc",
            (0..32).map(|n| action("square", &json!({"number": n})).unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(parallel.len(), 32);

    // A client without any one of the rights its calls need fails, naming the command it was refused.
    for right in [
        "+evalsha",
        "+script|load",
        "+llen",
        "+rpush",
        "+expire",
        "+blpop",
    ] {
        let user = format!("app-without-{}", &right[1..]);
        set_acl_user(redis.port, &user, Some(right));
        // The push script must be loaded again, by this user.
        command(redis.port, &["SCRIPT", "FLUSH"]).expect("SCRIPT FLUSH");
        let backend = RedisBackend::connect(acl_user(redis.port, &user))
            .await
            .unwrap();
        let client = Client::builder()
            .service(rsoa_transport_redis::RedisClientTransport::new(&backend, "svc").unwrap())
            .build();
        let outcome = client
            .call_action("svc", "square", &json!({"number": 2}))
            .timeout(Duration::from_secs(3))
            .await;
        let error = outcome.expect_err(right).to_string();
        // Redis names the command it refused, except one a script runs: then the error names the scripts' ones.
        let named = match right {
            "+llen" | "+rpush" | "+expire" => "rsoa's scripts run llen, rpush, expire".to_owned(),
            _ => format!("to run the '{}' command", &right[1..]),
        };
        assert!(
            error.contains("permission denied")
                && error.contains("the Redis user may not run a command rsoa needs")
                && error.contains(&named),
            "without {right}: {error}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_private_authority() {
    let (redis, ca) = support::redis_tls();
    let settings = || {
        let mut s = RedisSettings::standard([format!("localhost:{}", redis.port)]);
        let connection = &mut s.backend_layer_kwargs.connection_kwargs;
        connection.ssl = true;
        connection.ssl_ca_certs = Some(ca.display().to_string());
        connection.socket_connect_timeout = 3.0;
        s
    };
    let served = Served::start(service(), settings(), settings()).await;
    let client = &served.client;
    assert_eq!(square_eventually(client, 7).await, 49);
    let big = client
        .call_action("svc", "big", &json!({"size": 50_000}))
        .await
        .unwrap();
    assert_eq!(big.body["text"].as_str().map(str::len), Some(50_000));
    // Without trusting the authority, the connection is refused.
    let mut untrusted = settings();
    untrusted
        .backend_layer_kwargs
        .connection_kwargs
        .ssl_ca_certs = None;
    assert!(RedisBackend::connect(untrusted).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_given_as_redis_rediss_and_unix_urls() {
    // A Unix socket, with the database in redis-py's query form.
    let socket = std::env::temp_dir().join(format!("rsoa-{}.sock", support::free_port()));
    let socket_text = socket.display().to_string();
    let unix = redis(&["--unixsocket", &socket_text, "--unixsocketperm", "700"]);
    let url = |url: String| RedisSettings::standard([url]);
    let served = Served::start(
        service(),
        url(format!("unix://{socket_text}?db=2")),
        url(format!("unix://{socket_text}?db=2")),
    )
    .await;
    assert_eq!(square_eventually(&served.client, 6).await, 36);
    let clients = command(unix.port, &["CLIENT", "LIST"]).unwrap();
    assert!(
        clients
            .lines()
            .any(|l| l.contains("db=2") && l.contains("addr=/")),
        "{clients}"
    );
    drop(served);
    // TCP with the database in the path, and credentials in the URL.
    let secured = redis(&["--requirepass", "s3cret"]);
    let tcp = format!("redis://:s3cret@127.0.0.1:{}/3", secured.port);
    let served = Served::start(service(), url(tcp.clone()), url(tcp)).await;
    assert_eq!(square_eventually(&served.client, 5).await, 25);
    drop(served);
    // TLS, trusting the test's own authority.
    let (tls, ca) = support::redis_tls();
    let tls_settings = || {
        let mut s = url(format!("rediss://localhost:{}", tls.port));
        s.backend_layer_kwargs.connection_kwargs.ssl_ca_certs = Some(ca.display().to_string());
        s
    };
    let served = Served::start(service(), tls_settings(), tls_settings()).await;
    assert_eq!(square_eventually(&served.client, 4).await, 16);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_client_certificates() {
    let (redis, ca, client) = support::redis_tls_with(true);
    let (certfile, keyfile) = client.expect("client certificate");
    let settings = |with_certificate: bool| {
        let mut s = RedisSettings::standard([format!("localhost:{}", redis.port)]);
        let connection = &mut s.backend_layer_kwargs.connection_kwargs;
        connection.ssl = true;
        connection.ssl_ca_certs = Some(ca.display().to_string());
        connection.socket_connect_timeout = 3.0;
        if with_certificate {
            connection.ssl_certfile = Some(certfile.display().to_string());
            connection.ssl_keyfile = Some(keyfile.display().to_string());
        }
        s
    };
    let served = Served::start(service(), settings(true), settings(true)).await;
    assert_eq!(square_eventually(&served.client, 9).await, 81);
    // Redis refuses a client without a certificate.
    assert!(RedisBackend::connect(settings(false)).await.is_err());
    // Half a pair is a settings error, before any connection.
    let mut half = settings(true);
    half.backend_layer_kwargs.connection_kwargs.ssl_keyfile = None;
    let err = RedisBackend::connect(half).await.unwrap_err().to_string();
    assert!(
        err.contains("ssl_certfile and ssl_keyfile go together"),
        "{err}"
    );
}
