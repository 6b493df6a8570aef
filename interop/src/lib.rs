//! The Rust side of the interoperability runs against Python PySOA 1.4.9 (`cargo xtask interop`).
//!
//! Both sides implement the same service contract (see `interop/python/README.md`): the Rust service is
//! `rsinterop`, the Python one `pyinterop`, on the same Redis. Python's client runs its cases against the Rust
//! service and the Rust client runs the same cases against the Python service, including a chain through both.

use std::time::Duration;

use rsoa_client::{Client, ServiceOptions};
use rsoa_protocol::{Error as WireError, Map, Value};
use rsoa_server::{
    ActionContext, ActionDescription, ActionError, JsonSchema, RawAction, Server, ServerSettings,
};
use rsoa_transport::BoxFuture;
use rsoa_transport_redis::{Host, RedisBackend, RedisClientTransport, RedisSettings};
use serde::{Deserialize, Serialize};

/// The largest message either side sends in the interop runs (the 3 MB chunked case needs room).
pub const MAX_MESSAGE: usize = 5 * 1024 * 1024;

/// Redis settings for the interop runs: one local Redis.
pub fn redis_settings(port: u16) -> RedisSettings {
    RedisSettings::standard([format!("127.0.0.1:{port}")])
}

/// The Redis of the chaos binaries (`cargo xtask chaos`): the masters on `ports` (a comma-separated list) as one
/// ring (or, with `CHAOS_SENTINEL`, the Sentinels of that master), and the queue capacity `CHAOS_QUEUE_CAPACITY`
/// when it is set.
pub fn chaos_redis(
    settings: &mut RedisSettings,
    ports: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    settings.backend_layer_kwargs.hosts = ports
        .split(',')
        .map(|port| Ok(Host::Name(format!("127.0.0.1:{}", port.parse::<u16>()?))))
        .collect::<Result<_, std::num::ParseIntError>>()?;
    if let Ok(capacity) = std::env::var("CHAOS_QUEUE_CAPACITY") {
        settings.queue_capacity = capacity.parse()?;
    }
    // `CHAOS_SENTINEL=<master name>`: the ports are Sentinels watching that master.
    if let Ok(master) = std::env::var("CHAOS_SENTINEL") {
        settings.backend_type = rsoa_transport_redis::BackendType::Sentinel;
        settings.backend_layer_kwargs.sentinel_services = vec![master];
    }
    Ok(())
}

/// A client for both interop services; `tweak` adjusts the client-side settings (serializer, protocol version).
pub async fn client(
    port: u16,
    tweak: impl Fn(&mut RedisSettings),
) -> Result<Client, Box<dyn std::error::Error>> {
    client_for(port, &["pyinterop", "rsinterop"], tweak).await
}

/// A client for the named services on the local Redis.
pub async fn client_for(
    port: u16,
    services: &[&str],
    tweak: impl Fn(&mut RedisSettings),
) -> Result<Client, Box<dyn std::error::Error>> {
    let mut settings = redis_settings(port);
    settings.maximum_message_size_in_bytes = Some(MAX_MESSAGE);
    tweak(&mut settings);
    let backend = RedisBackend::connect(settings).await?;
    let options = ServiceOptions::new().timeout(Duration::from_secs(20));
    let mut builder = Client::builder();
    for service in services {
        builder = builder.service_with(
            RedisClientTransport::new(&backend, service)?,
            options.clone(),
        );
    }
    Ok(builder.build())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Square {
    number: i64,
}

#[derive(Serialize)]
struct Squared {
    square: i64,
}

// The request types below are the PySOA service's Conformity schemas written as Rust types; their doc comments
// are the PySOA actions' docstrings, which `introspect` reports.

/// Always fails with one action error carrying every optional `Error` field.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Fail {}

/// Raises an unhandled exception (which PySOA turns into a SERVER_ERROR).
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Boom {}

/// Returns selected values from the job request context.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ContextRequest {}

/// Validates its body: `n` (int, required) and `s` (unicode, optional).
#[derive(Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Typed {
    n: i64,
    // Optional but not nullable, as PySOA's `optional_keys=['s']` with a plain `UnicodeString()`.
    #[serde(default)]
    #[schemars(with = "String")]
    s: Option<String>,
}

/// Returns a string of `size` letters `a` (used to exercise chunked responses).
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Big {
    size: usize,
}

#[derive(Serialize)]
struct Data {
    data: String,
}

/// Calls action `context` on `service` with the request's chained client and returns its body.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct CallService {
    service: String,
}

/// Sleeps for `seconds` seconds, then returns an empty body.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Sleep {
    #[schemars(range(min = 0))]
    seconds: f64,
}

/// Squares a number, and describes itself as the PySOA `square` does, for `introspect`.
struct SquareAction;

impl rsoa_server::Action for SquareAction {
    type Request = Square;
    type Response = Squared;

    fn description(&self) -> Option<&str> {
        Some("Returns the square of `number`.")
    }

    fn request_schema(&self) -> Option<Value> {
        Some(dictionary("number", integer(Some("The number to square"))))
    }

    fn response_schema(&self) -> Option<Value> {
        Some(dictionary("square", integer(None)))
    }

    async fn run(&self, req: Square, _ctx: ActionContext) -> Result<Squared, ActionError> {
        Ok(Squared {
            square: req.number * req.number,
        })
    }
}

/// Conformity's description of `Dictionary({key: field})`.
fn dictionary(key: &str, field: Value) -> Value {
    let mut contents = Map::new();
    contents.insert(key, field);
    let mut schema = Map::new();
    schema.insert("type", "dictionary");
    schema.insert("contents", contents);
    schema.insert("optional_keys", Value::Array(vec![]));
    schema.insert("allow_extra_keys", false);
    Value::Map(schema)
}

/// Conformity's description of `Integer(description=...)`.
fn integer(description: Option<&str>) -> Value {
    let mut field = Map::new();
    field.insert("type", "integer");
    if let Some(description) = description {
        field.insert("description", description);
    }
    Value::Map(field)
}

/// Returns the request body unchanged: every PySOA type must survive both directions.
struct Echo;

impl RawAction for Echo {
    fn call(&self, body: Map, _ctx: ActionContext) -> BoxFuture<'_, Result<Map, ActionError>> {
        Box::pin(async move { Ok(body) })
    }

    fn describe(&self) -> ActionDescription {
        let mut d = ActionDescription::default();
        d.documentation =
            Some("Returns the request body unchanged (no request schema; any body).".to_owned());
        d
    }
}

/// The `rsinterop` service; `client` reaches both interop services for `call_service`.
pub fn service(client: Client) -> Server {
    let mut settings = ServerSettings::default();
    settings.max_concurrent_jobs = 32;
    Server::builder("rsinterop")
        .description("The interoperability service: one contract, served by PySOA and by rsoa.")
        .settings(settings)
        .client(client)
        .action("square", SquareAction)
        .raw_action("echo", Echo)
        .validated_fn("fail", |_: Fail, _ctx: ActionContext| async move {
            let mut variables = Map::new();
            variables.insert("a", 1);
            let error = WireError::new("FAIL_CODE", "It failed")
                .with_field("some.field")
                .with_variables(variables)
                .with_denied_permissions(["perm.x"]);
            Err::<(), _>(ActionError::from_errors([error]))
        })
        .validated_fn("boom", |_: Boom, _ctx: ActionContext| async move {
            if std::hint::black_box(true) {
                panic!("boom");
            }
            Ok::<(), ActionError>(())
        })
        .validated_fn("typed", |req: Typed, _ctx: ActionContext| async move {
            Ok::<_, ActionError>(req)
        })
        .validated_fn("big", |req: Big, _ctx: ActionContext| async move {
            Ok::<_, ActionError>(Data {
                data: "a".repeat(req.size),
            })
        })
        .validated_fn(
            "context",
            |_: ContextRequest, ctx: ActionContext| async move {
                let c = ctx.context();
                let mut body = Map::new();
                body.insert("correlation_id", c.correlation_id.as_str());
                body.insert(
                    "switches",
                    Value::Array(ctx.switches().iter().map(Value::from).collect()),
                );
                body.insert("calling_service", c.calling_service.clone());
                body.insert("caller", c.caller.clone());
                body.insert("custom", c.extra.get("custom").cloned().unwrap_or_default());
                Ok::<_, ActionError>(Value::Map(body))
            },
        )
        .validated_fn(
            "call_service",
            |req: CallService, ctx: ActionContext| async move {
                let response = ctx
                    .client()
                    .call_action(&req.service, "context", ())
                    .await?;
                let mut body = Map::new();
                body.insert("downstream", response.body);
                Ok::<_, ActionError>(Value::Map(body))
            },
        )
        .validated_fn("sleep", |req: Sleep, _ctx: ActionContext| async move {
            tokio::time::sleep(Duration::from_secs_f64(req.seconds.clamp(0.0, 60.0))).await;
            Ok::<(), ActionError>(())
        })
        .build()
        .expect("the interop service is valid")
}

/// Redis settings for the `rsinterop` server: chunking on, as on the Python side.
pub fn server_settings(port: u16) -> RedisSettings {
    let mut settings = redis_settings(port);
    settings.chunk_messages_larger_than_bytes = Some(102_400);
    settings.maximum_message_size_in_bytes = Some(MAX_MESSAGE);
    settings.receive_timeout_in_seconds = 1;
    settings
}
