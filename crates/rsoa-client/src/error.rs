//! What a call can fail with.

use std::time::Duration;

use rsoa_protocol::{ActionResponse, Error as WireError, ValueError};

/// Why a call did not return what was asked for.
///
/// Each variant says exactly what happened: the service answered with errors ([`CallError::Job`],
/// [`CallError::Action`]), no answer came ([`CallError::Timeout`]), the transport failed ([`CallError::Transport`]),
/// or the call could not be made at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The client has no transport for this service.
    #[error("no transport is configured for service {service:?}")]
    UnknownService {
        /// The service asked for.
        service: String,
    },
    /// The job failed as a whole (validation, job middleware, a response too large to send, …).
    #[error("service {service:?} failed the job: {}", summary(errors))]
    Job {
        /// The service.
        service: String,
        /// The job-level errors.
        errors: Vec<WireError>,
    },
    /// One or more actions returned errors.
    #[error("service {service:?}: {}", action_summary(actions))]
    Action {
        /// The service.
        service: String,
        /// The responses of the actions that failed, in request order.
        actions: Vec<ActionResponse>,
    },
    /// No response arrived within the call's timeout.
    #[error("service {service:?} did not respond within {after:?}")]
    Timeout {
        /// The service.
        service: String,
        /// The timeout.
        after: Duration,
    },
    /// The transport failed to send the request or receive the response.
    #[error("transport to service {service:?} failed: {source}")]
    Transport {
        /// The service.
        service: String,
        /// What went wrong.
        #[source]
        source: rsoa_transport::Error,
    },
    /// A request body could not be turned into a message.
    #[error("invalid request body: {0}")]
    InvalidRequest(#[source] ValueError),
    /// A response did not have the expected shape (from a typed call).
    #[error("unexpected response body: {0}")]
    InvalidResponse(#[source] ValueError),
    /// An expansion was asked for that the client's expansion settings do not define.
    #[error("invalid expansion: {0}")]
    InvalidExpansion(String),
    /// A blocking call was made from inside an async runtime, where it would stall the runtime.
    #[error("a blocking call cannot run inside an async runtime; await the async client instead")]
    BlockingInAsync,
    /// Client middleware refused the call.
    #[error("client middleware refused the call: {0}")]
    Middleware(String),
}

impl CallError {
    /// A transport's failure for `service`: a transport that gave up waiting (for a response, or for room to send)
    /// reports the same [`CallError::Timeout`] as the client's own timer.
    pub(crate) fn transport(service: &str, source: rsoa_transport::Error) -> CallError {
        match source {
            rsoa_transport::Error::Timeout(after) => CallError::Timeout {
                service: service.to_owned(),
                after,
            },
            source => CallError::Transport {
                service: service.to_owned(),
                source,
            },
        }
    }

    /// Every wire error this call failed with: the job's, or every failing action's.
    pub fn wire_errors(&self) -> Vec<&WireError> {
        match self {
            CallError::Job { errors, .. } => errors.iter().collect(),
            CallError::Action { actions, .. } => actions.iter().flat_map(|a| &a.errors).collect(),
            _ => Vec::new(),
        }
    }

    /// Whether any wire error has this code.
    pub fn has_code(&self, code: &str) -> bool {
        self.wire_errors().iter().any(|e| e.code == code)
    }
}

fn summary(errors: &[WireError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

fn action_summary(actions: &[ActionResponse]) -> String {
    actions
        .iter()
        .map(|a| format!("action {:?} failed: {}", a.action, summary(&a.errors)))
        .collect::<Vec<_>>()
        .join("; ")
}
