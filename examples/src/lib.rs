//! Two example services, used by the `demo` program and by the tests.
//!
//! - `example`: `square` (a typed action), `invoice` (dates, date-times and decimals), `echo` (a raw action),
//!   `slow` (waits), `block` (holds the thread: what not to do), `fail` (an action error),
//!   `call_service` (calls the `ledger` service, carrying this request's context), and the built-in `status` and
//!   `introspect`.
//! - `ledger`: `whoami`, which reports the context it received: correlation id, switches, caller, calling service.

use std::time::Duration;

use rsoa_client::Client;
use rsoa_protocol::{Date, DateTime, Decimal, UtcDateTime};
use rsoa_protocol::{Int, Map};
use rsoa_server::{
    Action, ActionContext, ActionDescription, ActionError, RawAction, Server, ServerBuilder,
};
use rsoa_transport::BoxFuture;
use serde::{Deserialize, Serialize};

/// The switch that makes `square` also return the square root.
pub const SWITCH_SHOW_ROOT: i64 = 12;

/// `square`'s request.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SquareRequest {
    /// The number to square.
    pub number: i64,
}

/// `square`'s response.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct SquareResponse {
    /// The square.
    pub square: i64,
    /// The square root, when switch [`SWITCH_SHOW_ROOT`] is active.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub root: Option<f64>,
}

/// Answers the request's body as it came: a raw action, so the body is neither typed nor copied (what the
/// benchmarks call).
#[derive(Debug)]
pub struct Echo;

impl RawAction for Echo {
    fn call(&self, body: Map, _ctx: ActionContext) -> BoxFuture<'_, Result<Map, ActionError>> {
        Box::pin(std::future::ready(Ok(body)))
    }

    fn describe(&self) -> ActionDescription {
        let mut description = ActionDescription::default();
        description.documentation = Some("Answers the request's body as it came.".to_owned());
        description
    }
}

/// Squares a number.
#[derive(Debug)]
pub struct Square;

impl Action for Square {
    type Request = SquareRequest;
    type Response = SquareResponse;

    fn description(&self) -> Option<&str> {
        Some("Squares a number; with switch 12 active, also returns its square root.")
    }

    fn validate(&self, request: &SquareRequest, _ctx: &ActionContext) -> Result<(), ActionError> {
        if request.number.unsigned_abs() > 3_037_000_499 {
            return Err(
                ActionError::new("TOO_LARGE", "The square would not fit in 64 bits")
                    .with_field("number"),
            );
        }
        Ok(())
    }

    async fn run(
        &self,
        request: SquareRequest,
        ctx: ActionContext,
    ) -> Result<SquareResponse, ActionError> {
        let root = ctx
            .switches()
            .is_active(SWITCH_SHOW_ROOT)
            .then(|| (request.number as f64).abs().sqrt());
        Ok(SquareResponse {
            square: request.number * request.number,
            root,
        })
    }
}

/// One line of an invoice.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvoiceLine {
    /// What is sold.
    pub item: String,
    /// The unit price.
    pub price: Decimal,
    /// How many.
    pub quantity: u32,
}

/// `invoice`'s request.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvoiceRequest {
    /// When it is due.
    pub due: Date,
    /// The lines.
    pub lines: Vec<InvoiceLine>,
}

/// `invoice`'s response.
#[derive(Debug, Serialize, Deserialize)]
pub struct InvoiceResponse {
    /// The sum of every line.
    pub total: Decimal,
    /// The due date, echoed.
    pub due: Date,
    /// Days from the issue date to the due date.
    pub days_to_pay: i64,
    /// When the invoice was issued (fixed, so the demo's output is stable).
    pub issued_at: DateTime,
    /// The same instant in UTC.
    pub issued_at_utc: UtcDateTime,
}

/// Totals an invoice, with decimal arithmetic and dates.
#[derive(Debug)]
pub struct Invoice;

fn to_rust_decimal(d: &Decimal, field: String) -> Result<rust_decimal::Decimal, ActionError> {
    d.as_str()
        .parse::<rust_decimal::Decimal>()
        .or_else(|_| rust_decimal::Decimal::from_scientific(d.as_str()))
        .map_err(|_| {
            ActionError::new("INVALID", "Not a finite decimal of at most 28 digits")
                .with_field(field)
        })
}

impl Action for Invoice {
    type Request = InvoiceRequest;
    type Response = InvoiceResponse;

    fn description(&self) -> Option<&str> {
        Some("Totals the lines of an invoice and says how many days there are to pay it.")
    }

    async fn run(
        &self,
        request: InvoiceRequest,
        _ctx: ActionContext,
    ) -> Result<InvoiceResponse, ActionError> {
        // `?` on a ValueError reports a caller error (it is meant for the request); a failure of the service's own
        // values is a server error instead.
        let issued = Date::new(2026, 11, 27).map_err(ActionError::server_error)?;
        let mut total = rust_decimal::Decimal::ZERO;
        for (i, line) in request.lines.iter().enumerate() {
            let price = to_rust_decimal(&line.price, format!("lines.{i}.price"))?;
            total += price * rust_decimal::Decimal::from(line.quantity);
        }
        let days_to_pay = (request.due.to_time_date() - issued.to_time_date()).whole_days();
        if days_to_pay < 0 {
            return Err(
                ActionError::new("PAST_DUE", "The due date is before the issue date")
                    .with_field("due"),
            );
        }
        let issued_at = DateTime::new(
            issued,
            rsoa_protocol::Time::new(9, 30, 0, 0).map_err(ActionError::server_error)?,
        );
        Ok(InvoiceResponse {
            total: total
                .to_string()
                .parse()
                .map_err(ActionError::server_error)?,
            due: request.due,
            days_to_pay,
            issued_at,
            issued_at_utc: UtcDateTime::from_epoch_micros(issued_at.epoch_micros())
                .map_err(ActionError::server_error)?,
        })
    }
}

/// `call_service`'s response: what the downstream service saw.
#[derive(Debug, Serialize, Deserialize)]
pub struct CallServiceResponse {
    /// The `ledger` service's `whoami` response.
    pub downstream: serde_json::Value,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Empty {}

/// `slow`'s request: how long to wait.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SlowRequest {
    millis: u64,
}

/// `slow`'s response.
#[derive(Debug, Serialize)]
struct SlowResponse {
    waited_ms: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FailRequest {
    #[serde(default)]
    code: Option<String>,
}

/// The `example` service; `client` is how it reaches `ledger`.
pub fn example_service(client: Client) -> Server {
    example_service_builder(client)
        .build()
        .expect("the example service is valid")
}

/// The `example` service, still to be built (the standalone runner adds the settings and builds it).
pub fn example_service_builder(client: Client) -> ServerBuilder {
    example_service_builder_as("example", client)
}

/// The `example` service's actions under another service name (a second copy on the same Redis, as the
/// benchmarks run it).
pub fn example_service_builder_as(service: &str, client: Client) -> ServerBuilder {
    Server::builder(service)
        .description("An example rsoa service.")
        .version(env!("CARGO_PKG_VERSION"))
        .client(client)
        .action("square", Square)
        .action("invoice", Invoice)
        .raw_action("echo", Echo)
        .action_fn("fail", |req: FailRequest, _ctx: ActionContext| async move {
            let code = req.code.unwrap_or_else(|| "FAILED".to_owned());
            // The runner adds the job's request id, correlation id and action to the service's own lines.
            tracing::warn!(%code, "failing as asked");
            Err::<(), _>(ActionError::new(code, "Failed on request"))
        })
        .action_fn("slow", |req: SlowRequest, _ctx: ActionContext| async move {
            // Waits as a call to a slow downstream service would, without holding the thread.
            tokio::time::sleep(Duration::from_millis(req.millis)).await;
            Ok::<_, ActionError>(SlowResponse {
                waited_ms: req.millis,
            })
        })
        .action_fn(
            "block",
            |req: SlowRequest, _ctx: ActionContext| async move {
                // What not to do: holds the thread without yielding, as CPU-bound code or blocking I/O in an async
                // action would. No deadline can cancel it; past harakiri.timeout the standalone runner's watchdog
                // answers its caller and replaces the worker.
                std::thread::sleep(Duration::from_millis(req.millis));
                Ok::<_, ActionError>(SlowResponse {
                    waited_ms: req.millis,
                })
            },
        )
        .action_fn("call_service", |_: Empty, ctx: ActionContext| async move {
            // ctx.client() carries this request's correlation id, switches and context to the next service.
            let response = ctx
                .client()
                .call_action("ledger", "whoami", ())
                .timeout(Duration::from_secs(2))
                .await?;
            let downstream = serde_json::to_value(rsoa_protocol::Value::Map(response.body))
                .map_err(ActionError::server_error)?;
            Ok(CallServiceResponse { downstream })
        })
}

/// `whoami`'s response.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct WhoAmI {
    /// The correlation id of the request.
    pub correlation_id: String,
    /// Its switches.
    pub switches: Vec<Int>,
    /// The service that called, if a service did.
    pub calling_service: Option<String>,
    /// The caller, if named.
    pub caller: Option<String>,
}

/// The `ledger` service.
pub fn ledger_service() -> Server {
    Server::builder("ledger")
        .description("Reports what it was told about its caller.")
        .action_fn("whoami", |_: Empty, ctx: ActionContext| async move {
            let context = ctx.context();
            Ok::<_, ActionError>(WhoAmI {
                correlation_id: context.correlation_id.clone(),
                switches: ctx.switches().to_vec(),
                calling_service: context.calling_service.clone(),
                caller: context.caller.clone(),
            })
        })
        .build()
        .expect("the ledger service is valid")
}

/// A client for both services over the local transport (optionally through MessagePack and back), with the
/// `example` service able to call `ledger`.
pub fn local_client(round_trip: bool) -> Client {
    use rsoa_transport_local::LocalTransport;

    let ledger = LocalTransport::new(ledger_service()).round_trip(round_trip);
    let downstream = Client::builder().service(ledger.clone()).build();
    let example = LocalTransport::new(example_service(downstream)).round_trip(round_trip);
    Client::builder()
        .caller("demo")
        .service(example)
        .service(ledger)
        .build()
}
