//! Stubbed actions: a client answers some actions of some services itself, for tests (PySOA's `stub_action`).
//!
//! Every [`Client`](crate::Client) has a [`Stubs`] registry, shared by its clones and by the clients a server hands
//! its actions ([`Client::with_context`](crate::Client::with_context)). Stubbing an action there takes effect at
//! once, without rebuilding the client or the server holding it, and lasts until the returned [`ActionStub`] is
//! dropped. A job to a service with stubbed actions is split: the stubbed actions are answered here, the others go
//! to the service's real transport (if the client has one) and the responses are merged back in order, as PySOA's
//! `stub_action` does. A stubbed action's failure stops the job (the real actions after it are not sent) unless the
//! job continues on error. A service the client has no transport for can be stubbed too; its actions that are not
//! stubbed get PySOA's `UNKNOWN` error.
//!
//! The registry also keeps a record of every stubbed request and response ([`Stubs::calls`]), PySOA's
//! `get_stubbed_requests`/`get_stubbed_responses`, for checking the contracts a service relies on.
//!
//! ```
//! use rsoa_client::{stub::StubResponse, Client};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let client = Client::builder().build();
//! let get_user = client.stubs().stub(
//!     "users",
//!     "get_user",
//!     StubResponse::Body([("name", "Ada")].into_iter().collect()),
//! );
//! let response = client.call_action("users", "get_user", &serde_json::json!({"id": 1})).await.unwrap();
//! assert_eq!(response.body.get("name").and_then(|v| v.as_str()), Some("Ada"));
//! assert_eq!(get_user.call_count(), 1);
//! drop(get_user); // the stub is gone: "users" is unknown again
//! assert!(client.call_action("users", "get_user", &serde_json::json!({})).await.is_err());
//! # }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use rsoa_protocol::{ActionResponse, Error as WireError, JobResponse, Map};
use rsoa_transport::{
    BoxFuture, ClientRequest, ClientResponse, ClientTransport, Error, PendingResponse,
};

/// What a stubbed action answers.
#[non_exhaustive]
pub enum StubResponse {
    /// A successful response with this body.
    Body(Map),
    /// A failed response with these errors.
    Errors(Vec<WireError>),
    /// A response computed from the request body.
    Fn(Box<dyn Fn(&Map) -> Result<Map, Vec<WireError>> + Send + Sync>),
}

impl fmt::Debug for StubResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StubResponse::Body(body) => f.debug_tuple("Body").field(body).finish(),
            StubResponse::Errors(errors) => f.debug_tuple("Errors").field(errors).finish(),
            StubResponse::Fn(_) => f.write_str("Fn(..)"),
        }
    }
}

impl StubResponse {
    /// A response computed from the request body.
    pub fn from_fn(
        f: impl Fn(&Map) -> Result<Map, Vec<WireError>> + Send + Sync + 'static,
    ) -> StubResponse {
        StubResponse::Fn(Box::new(f))
    }

    fn answer(&self, body: &Map) -> Result<Map, Vec<WireError>> {
        match self {
            StubResponse::Body(body) => Ok(body.clone()),
            StubResponse::Errors(errors) => Err(errors.clone()),
            StubResponse::Fn(f) => f(body),
        }
    }
}

/// One call a stub answered: what was asked and what it answered.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct StubbedCall {
    /// The stubbed service.
    pub service: String,
    /// The stubbed action.
    pub action: String,
    /// The request body.
    pub request: Map,
    /// The response body, or the errors.
    pub response: Result<Map, Vec<WireError>>,
}

struct Stub {
    id: u64,
    response: StubResponse,
    calls: Mutex<Vec<Map>>,
}

#[derive(Default)]
struct Registry {
    /// Service → action → stubs, the newest last (it answers; dropping it uncovers the one before).
    services: HashMap<String, HashMap<String, Vec<Arc<Stub>>>>,
    next_id: u64,
}

#[derive(Default)]
struct Shared {
    /// How many stubs are in place: a call checks this before anything else, so a client with none pays one load.
    active: AtomicUsize,
    registry: RwLock<Registry>,
    record: Mutex<Vec<StubbedCall>>,
}

/// The stubbed actions of a client (see the [module](self) documentation). Clones share the registry.
#[derive(Clone, Default)]
pub struct Stubs {
    shared: Arc<Shared>,
}

impl fmt::Debug for Stubs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let registry = read(&self.shared.registry);
        let mut stubbed: Vec<String> = registry
            .services
            .iter()
            .flat_map(|(service, actions)| actions.keys().map(move |a| format!("{service}.{a}")))
            .collect();
        stubbed.sort_unstable();
        f.debug_struct("Stubs").field("stubbed", &stubbed).finish()
    }
}

impl Stubs {
    /// A registry of its own, not attached to any client (for a [`StubLayer`] built by hand).
    pub fn new() -> Stubs {
        Stubs::default()
    }

    /// Stubs `service`'s `action` until the returned handle is dropped. Stubbing an action that is already stubbed
    /// hides the earlier stub until this one is dropped.
    pub fn stub(
        &self,
        service: impl Into<String>,
        action: impl Into<String>,
        response: StubResponse,
    ) -> ActionStub {
        let (service, action) = (service.into(), action.into());
        let mut registry = write(&self.shared.registry);
        registry.next_id += 1;
        let stub = Arc::new(Stub {
            id: registry.next_id,
            response,
            calls: Mutex::new(Vec::new()),
        });
        registry
            .services
            .entry(service.clone())
            .or_default()
            .entry(action.clone())
            .or_default()
            .push(stub.clone());
        self.shared.active.fetch_add(1, Ordering::Release);
        ActionStub {
            stubs: self.clone(),
            service,
            action,
            stub,
        }
    }

    /// Whether any action is stubbed.
    pub fn is_empty(&self) -> bool {
        self.shared.active.load(Ordering::Acquire) == 0
    }

    /// Whether any action of `service` is stubbed.
    pub fn stubs_service(&self, service: &str) -> bool {
        !self.is_empty() && read(&self.shared.registry).services.contains_key(service)
    }

    /// Every call a stub of this registry answered, in order (PySOA's stubbed requests and responses).
    pub fn calls(&self) -> Vec<StubbedCall> {
        lock(&self.shared.record).clone()
    }

    /// Forgets the record of answered calls.
    pub fn clear_calls(&self) {
        lock(&self.shared.record).clear();
    }

    fn remove(&self, service: &str, action: &str, id: u64) {
        let mut registry = write(&self.shared.registry);
        let Some(actions) = registry.services.get_mut(service) else {
            return;
        };
        let Some(stubs) = actions.get_mut(action) else {
            return;
        };
        let before = stubs.len();
        stubs.retain(|s| s.id != id);
        if stubs.len() < before {
            self.shared.active.fetch_sub(1, Ordering::Release);
        }
        if stubs.is_empty() {
            actions.remove(action);
        }
        if actions.is_empty() {
            registry.services.remove(service);
        }
    }

    /// Answers `action` of `service` if it is stubbed, recording the call.
    fn answer(&self, service: &str, action: &str, body: &Map) -> Option<ActionResponse> {
        let stub = read(&self.shared.registry)
            .services
            .get(service)?
            .get(action)?
            .last()?
            .clone();
        lock(&stub.calls).push(body.clone());
        let answer = stub.response.answer(body);
        lock(&self.shared.record).push(StubbedCall {
            service: service.to_owned(),
            action: action.to_owned(),
            request: body.clone(),
            response: answer.clone(),
        });
        Some(match answer {
            Ok(body) => ActionResponse::new(action, body),
            Err(errors) => ActionResponse::with_errors(action, errors),
        })
    }
}

/// One stubbed action: what it was called with. Dropping it removes the stub.
#[must_use = "the stub is removed when this handle is dropped"]
pub struct ActionStub {
    stubs: Stubs,
    service: String,
    action: String,
    stub: Arc<Stub>,
}

impl fmt::Debug for ActionStub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActionStub")
            .field("service", &self.service)
            .field("action", &self.action)
            .field("calls", &self.call_count())
            .finish()
    }
}

impl ActionStub {
    /// The request bodies of every call so far, in order.
    pub fn call_bodies(&self) -> Vec<Map> {
        lock(&self.stub.calls).clone()
    }

    /// How many times the action was called.
    pub fn call_count(&self) -> usize {
        lock(&self.stub.calls).len()
    }

    /// The stubbed service.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The stubbed action.
    pub fn action(&self) -> &str {
        &self.action
    }
}

impl Drop for ActionStub {
    fn drop(&mut self) {
        self.stubs.remove(&self.service, &self.action, self.stub.id);
    }
}

/// A client transport that answers a service's stubbed actions from a [`Stubs`] registry and sends the rest of
/// each job to an inner transport (or answers them `UNKNOWN` without one).
pub struct StubLayer {
    service: String,
    stubs: Stubs,
    inner: Option<Arc<dyn ClientTransport>>,
}

impl fmt::Debug for StubLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StubLayer")
            .field("service", &self.service)
            .field("stubs", &self.stubs)
            .field("has_inner", &self.inner.is_some())
            .finish()
    }
}

impl StubLayer {
    /// Answers `service`'s stubbed actions from `stubs`, forwarding the rest to `inner` if given.
    pub fn new(
        service: impl Into<String>,
        stubs: Stubs,
        inner: Option<Arc<dyn ClientTransport>>,
    ) -> StubLayer {
        StubLayer {
            service: service.into(),
            stubs,
            inner,
        }
    }
}

impl ClientTransport for StubLayer {
    fn service_name(&self) -> &str {
        &self.service
    }

    fn send(
        &self,
        request: ClientRequest,
    ) -> BoxFuture<'_, Result<Option<PendingResponse>, Error>> {
        Box::pin(async move {
            let ClientRequest {
                request_id,
                meta,
                mut job,
                expiry,
                ..
            } = request;
            let continue_on_error = job.control.continue_on_error;
            let suppress = job.control.suppress_response;
            // Answer the stubbed actions in order; remember where the real ones go.
            let mut slots: Vec<Option<ActionResponse>> = Vec::with_capacity(job.actions.len());
            let mut real = Vec::new();
            for action in std::mem::take(&mut job.actions) {
                match self
                    .stubs
                    .answer(&self.service, &action.action, &action.body)
                {
                    Some(response) => {
                        let failed = !response.errors.is_empty();
                        slots.push(Some(response));
                        if failed && !continue_on_error {
                            break;
                        }
                    }
                    None => {
                        slots.push(None);
                        real.push(action);
                    }
                }
            }
            let real_response = if real.is_empty() {
                None
            } else if let Some(inner) = &self.inner {
                job.actions = real;
                let mut forwarded = ClientRequest::new(request_id, job);
                forwarded.meta = meta.clone();
                forwarded.expiry = expiry;
                match inner.send(forwarded).await? {
                    Some(pending) => Some(pending.await?.job),
                    None => None,
                }
            } else {
                let mut response = JobResponse::default();
                response.actions = real
                    .iter()
                    .map(|a| {
                        ActionResponse::with_errors(
                            a.action.clone(),
                            vec![WireError::unknown_action(&a.action)],
                        )
                    })
                    .collect();
                Some(response)
            };
            if suppress {
                return Ok(None);
            }
            let mut response = JobResponse::default();
            let mut real_actions = match real_response {
                Some(real) if !real.errors.is_empty() => {
                    // The real service failed the whole job.
                    return Ok(Some(PendingResponse::ready(Ok(ClientResponse::new(
                        request_id, real,
                    )))));
                }
                Some(real) => {
                    response.context = real.context;
                    real.actions.into_iter()
                }
                None => Vec::new().into_iter(),
            };
            for slot in slots {
                let next = match slot {
                    Some(stubbed) => stubbed,
                    // The real service stopped early: nothing after its last response ran.
                    None => match real_actions.next() {
                        Some(real) => real,
                        None => break,
                    },
                };
                let failed = !next.errors.is_empty();
                response.actions.push(next);
                if failed && !continue_on_error {
                    break;
                }
            }
            let mut reply = ClientResponse::new(request_id, response);
            reply.meta = meta;
            Ok(Some(PendingResponse::ready(Ok(reply))))
        })
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every critical section here leaves the data consistent, so a poisoned lock is still usable.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
