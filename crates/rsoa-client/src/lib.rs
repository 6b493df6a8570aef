//! The rsoa client: call PySOA-style services, in Rust or in Python, over any rsoa transport.
//!
//! A [`Client`] is built with one transport per service it calls. Every PySOA calling style is there, async:
//!
//! | PySOA | rsoa |
//! |---|---|
//! | `call_action` | [`Client::call_action`] |
//! | `call_actions` | [`Client::call_actions`] |
//! | `call_actions_parallel` | [`Client::call_actions_parallel`] |
//! | `call_jobs_parallel` | [`Client::call_jobs_parallel`] |
//! | `send_request` / `get_all_responses` | [`Client::send_request`] / [`Client::get_all_responses`] |
//! | `call_*_future` | every call is a future already: spawn it, or hold it and await it later |
//! | `expansions={...}` | [`CallAction::expand`], with [`ExpansionSettings`] on the client |
//! | synchronous calls | [`blocking::BlockingClient`] |
//!
//! Each call returns a builder whose methods set the call's options (timeout, switches, correlation id, extra
//! context and control keys, continue-on-error, which errors to raise); awaiting it makes the call.
//! Failures are typed ([`CallError`]): job errors, action errors with every wire error, timeouts, transport
//! failures.
//!
//! Fixed here, compared with PySOA's client: a response that arrives after its call timed out is discarded rather
//! than handed to the next call; `suppress_response` leaves nothing outstanding; switches passed in a per-call
//! context are read, never taken out of the caller's map; and the client is safe to share between tasks.
//!
//! ```
//! use rsoa_client::{action, Client};
//!
//! # async fn demo(client: Client) -> Result<(), rsoa_client::CallError> {
//! // One job, two actions, run in order; the second still runs if the first fails.
//! let job = client
//!     .call_actions("orders", [action("get_order", ())?, action("get_refunds", ())?])
//!     .continue_on_error(true)
//!     .raise_action_errors(false)
//!     .await?;
//! for response in &job.actions {
//!     println!("{}: {} errors", response.action, response.errors.len());
//! }
//! # Ok(()) }
//! ```

pub mod blocking;
mod call;
mod client;
mod error;
mod expansion;
mod middleware;
pub mod stub;
#[cfg(feature = "otel")]
pub mod trace_context;

pub use call::{
    action, CallAction, CallActions, CallActionsParallel, CallJobsParallel, CallOptions, IntoBody,
    Job,
};
pub use client::{Client, ClientBuilder, ServiceOptions, CLIENT_VERSION, DEFAULT_TIMEOUT};
pub use error::CallError;
pub use expansion::{ExpansionSettings, TypeExpansion, TypeRoute};
pub use middleware::{request_fn, response_fn, ClientMiddleware, RequestNext, ResponseNext};
