//! The rsoa server: PySOA-style services in Rust.
//!
//! A [`Server`] is a service name, its actions, middleware and settings. It processes jobs exactly as PySOA does:
//! the job is validated (with PySOA's error codes, messages and field pointers), job middleware wraps the run,
//! actions run in order through action middleware, and the job stops at the first failing action unless the
//! caller asked to continue. A panic in an action becomes a `SERVER_ERROR` with the panic's message and a
//! traceback, and the server keeps serving. Unlike a PySOA process, a server runs many jobs at once
//! ([`ServerSettings::max_concurrent_jobs`]).
//!
//! Actions are typed by default ([`Action`], or [`ServerBuilder::action_fn`] for a closure) and stored erased
//! ([`RawAction`]). Every server answers `status` and `introspect` unless it defines them itself.
//!
//! ```
//! use rsoa_server::{ActionContext, ActionError, Server};
//!
//! #[derive(serde::Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct SquareRequest { number: i64 }
//!
//! #[derive(serde::Serialize)]
//! struct SquareResponse { square: i64 }
//!
//! let server = Server::builder("example")
//!     .action_fn("square", |req: SquareRequest, _ctx: ActionContext| async move {
//!         Ok::<_, ActionError>(SquareResponse { square: req.number * req.number })
//!     })
//!     .build()
//!     .expect("a valid server");
//! # drop(server);
//! ```

mod action;
mod builtin;
pub mod clock;
pub mod conformity;
pub mod log_context;
pub mod metric;
mod middleware;
mod panic;
mod request_log;
mod serve;
mod server;
mod span;
mod switched;
mod watch;

use std::future::Future;

pub use action::{Action, ActionContext, ActionDescription, ActionError, RawAction};
pub use builtin::HealthReport;
pub use middleware::{action_response_fn, boxed, job_fn, ActionNext, JobNext, ServerMiddleware};
pub use request_log::{
    censor, is_sensitive, LogLevel, CENSORED, SENSITIVE_FIELDS, TARGET as REQUEST_LOG_TARGET,
};
/// The schema crate [`ServerBuilder::validated_fn`] reads types with; its `JsonSchema` derive is re-exported.
pub use schemars::{self, JsonSchema};
pub use serve::{serve, shutdown_signal, ServeOutcome};
pub use server::{Server, ServerBuilder, ServerSettings};
pub use switched::SwitchedAction;
pub use watch::{Blocked, HeldJob, Watch};

/// A [`RawAction`] from an async closure taking a typed request, for places that take a `RawAction` (such as
/// [`SwitchedAction::case`]).
pub fn action_fn<F, Fut, Req, Resp>(f: F) -> impl RawAction
where
    F: Fn(Req, ActionContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Resp, ActionError>> + Send + 'static,
    Req: serde::de::DeserializeOwned + Send + 'static,
    Resp: serde::Serialize + 'static,
{
    action::FnAction::new(f)
}

/// Why a server could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Two actions have the same name.
    #[error("action {0:?} is defined twice")]
    DuplicateAction(String),
    /// An action name is empty or has characters other than letters, digits, `_`, `-` and `.`.
    #[error("action name {0:?} is invalid (use letters, digits, '_', '-' and '.')")]
    InvalidActionName(String),
    /// The service name is empty.
    #[error("service name {0:?} is invalid")]
    InvalidServiceName(String),
    /// A setup hook failed.
    #[error("setup failed: {0}")]
    Setup(String),
    /// A setting has a bad value.
    #[error("invalid setting {field}: {reason}")]
    InvalidSettings {
        /// The setting.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}
