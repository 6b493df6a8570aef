//! The [`Client`] and how it turns a call into a request and a response.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use rsoa_protocol::{ActionRequest, Context, Control, JobRequest, JobResponse, Map, Value};
use rsoa_switches::SwitchSet;
use rsoa_transport::{ClientRequest, ClientResponse, ClientTransport, PendingResponse};
use tokio::task::JoinHandle;

use crate::stub::{StubLayer, Stubs};

use crate::call::{
    CallAction, CallActions, CallActionsParallel, CallJobsParallel, CallOptions, Job,
};
use crate::expansion::ExpansionSettings;
use crate::middleware::{ClientMiddleware, RequestNext, ResponseNext};
use crate::{CallError, IntoBody};

/// The protocol version rsoa speaks, sent as `meta.client_version` so that servers include `is_caller_error`.
pub const CLIENT_VERSION: [i64; 3] = [1, 4, 9];

/// How long a call waits for its response when neither the call nor the service sets a timeout (PySOA's
/// `receive_timeout_in_seconds`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Calls services. Cheap to clone (clones share the transports), `Send` and `Sync`.
///
/// A client is built once with a transport per service, and can then call any of them in every PySOA style:
/// [`call_action`](Client::call_action), [`call_actions`](Client::call_actions),
/// [`call_actions_parallel`](Client::call_actions_parallel), [`call_jobs_parallel`](Client::call_jobs_parallel),
/// and the lower [`send_request`](Client::send_request) / [`get_all_responses`](Client::get_all_responses) pair.
/// Each call returns a builder for its options (timeout, switches, context, …) that is awaited to make the call.
///
/// A client may carry a base context (see [`Client::with_context`]): its correlation id, switches and custom keys
/// go into every request it sends. A server hands each action a client whose base context is the action's own
/// request context, so calls made while serving a request carry it onwards.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
    base: Arc<BaseContext>,
    /// Requests sent with `send_request` and not yet collected, per service. Shared by clones; a client made with
    /// [`Client::with_context`] (each server job's client) has its own.
    outstanding: Arc<Mutex<HashMap<String, Vec<Outstanding>>>>,
}

type Outstanding = (u64, JoinHandle<Result<ClientResponse, CallError>>);

struct Inner {
    services: HashMap<String, Arc<Service>>,
    expansions: Option<ExpansionSettings>,
    stubs: Stubs,
}

pub(crate) struct Service {
    pub(crate) name: String,
    transport: Arc<dyn ClientTransport>,
    middleware: Vec<Arc<dyn ClientMiddleware>>,
    timeout: Duration,
    /// Shared with the stand-in a stubbed service gets, so that ids stay unique on the real transport.
    next_request_id: Arc<AtomicU64>,
}

/// What a client puts in every request's context.
#[derive(Clone, Debug, Default)]
struct BaseContext {
    correlation_id: Option<String>,
    switches: SwitchSet,
    caller: Option<String>,
    calling_service: Option<String>,
    extra: Map,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut services: Vec<&str> = self.inner.services.keys().map(String::as_str).collect();
        services.sort_unstable();
        f.debug_struct("Client")
            .field("services", &services)
            .field("context", &self.base)
            .finish()
    }
}

impl Client {
    /// Starts building a client.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// The names of the services this client can call, sorted.
    pub fn services(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.inner.services.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// A client sharing this one's transports whose requests carry `context`: its correlation id, switches,
    /// caller, calling service and custom keys. This is how a server chains context into downstream calls.
    #[must_use]
    pub fn with_context(&self, context: &Context) -> Client {
        Client {
            inner: self.inner.clone(),
            outstanding: Arc::default(),
            base: Arc::new(BaseContext {
                correlation_id: Some(context.correlation_id.clone()).filter(|c| !c.is_empty()),
                switches: SwitchSet::from_values(context.switches.iter().copied()),
                caller: context.caller.clone(),
                calling_service: context.calling_service.clone(),
                extra: context.extra.clone(),
            }),
        }
    }

    /// The correlation id every request of this client carries, if it has one.
    pub fn correlation_id(&self) -> Option<&str> {
        self.base.correlation_id.as_deref()
    }

    /// The switches every request of this client carries.
    pub fn switches(&self) -> &SwitchSet {
        &self.base.switches
    }

    /// Calls one action of a service in a job of its own, resolving to its response.
    ///
    /// ```
    /// # async fn demo(client: rsoa_client::Client) -> Result<(), rsoa_client::CallError> {
    /// use std::time::Duration;
    ///
    /// #[derive(serde::Serialize)]
    /// struct Square { number: i64 }
    /// #[derive(serde::Deserialize)]
    /// struct Squared { square: i64 }
    ///
    /// let response = client
    ///     .call_action("example", "square", &Square { number: 7 })
    ///     .timeout(Duration::from_secs(2))
    ///     .switch(5)
    ///     .await?;
    /// let squared: Squared = response.into_body_as().map_err(rsoa_client::CallError::InvalidResponse)?;
    /// assert_eq!(squared.square, 49);
    /// # Ok(()) }
    /// ```
    pub fn call_action(&self, service: &str, action: &str, body: impl IntoBody) -> CallAction<'_> {
        CallAction::new(
            self,
            service,
            ActionRequest::new(action, Map::new()),
            body.into_body(),
        )
    }

    /// Calls several actions of a service in one job, run in order by one server, resolving to the job's
    /// response. The job stops at the first action that fails unless [`CallActions::continue_on_error`] is set.
    pub fn call_actions(
        &self,
        service: &str,
        actions: impl IntoIterator<Item = ActionRequest>,
    ) -> CallActions<'_> {
        CallActions::new(self, service, actions.into_iter().collect())
    }

    /// Calls several actions of a service, each in a job of its own, all at once; resolves to their responses in
    /// the order given.
    pub fn call_actions_parallel(
        &self,
        service: &str,
        actions: impl IntoIterator<Item = ActionRequest>,
    ) -> CallActionsParallel<'_> {
        CallActionsParallel::new(self, service, actions.into_iter().collect())
    }

    /// Sends several jobs, possibly to different services, all at once; resolves to their responses in the order
    /// given.
    pub fn call_jobs_parallel(&self, jobs: impl IntoIterator<Item = Job>) -> CallJobsParallel<'_> {
        CallJobsParallel::new(self, jobs.into_iter().collect())
    }

    /// Sends a job without waiting for its response and returns its request id; collect the response later with
    /// [`Client::get_all_responses`]. The job starts at once, in the background.
    ///
    /// A job sent with `suppress_response` gets no response and is not waited for by `get_all_responses`.
    pub async fn send_request(
        &self,
        service: &str,
        actions: Vec<ActionRequest>,
        options: &CallOptions,
    ) -> Result<u64, CallError> {
        let svc = self.service(service)?;
        let (request_id, pending) = self.send_job(&svc, actions, options).await?;
        if let Some(pending) = pending {
            let svc2 = svc.clone();
            let handle = tokio::spawn(async move { svc2.receive(pending).await });
            lock(&self.outstanding)
                .entry(service.to_owned())
                .or_default()
                .push((request_id, handle));
        }
        Ok(request_id)
    }

    /// Waits for the responses to every request this client (or a clone of it) sent to `service` with
    /// [`Client::send_request`], returning each request's outcome by id, in the order the requests were sent.
    ///
    /// Each response is waited for up to `timeout` (the service's default when `None`); one that does not come in
    /// time is reported as [`CallError::Timeout`] for that request alone, and every other outcome is still
    /// returned. Nothing is left outstanding afterwards.
    pub async fn get_all_responses(
        &self,
        service: &str,
        timeout: Option<Duration>,
    ) -> Result<Vec<(u64, Result<JobResponse, CallError>)>, CallError> {
        let svc = self.service(service)?;
        let timeout = timeout.unwrap_or(svc.timeout);
        let pending = lock(&self.outstanding).remove(service).unwrap_or_default();
        let deadline = tokio::time::Instant::now() + timeout;
        let mut outcomes = Vec::with_capacity(pending.len());
        for (request_id, mut handle) in pending {
            let outcome = match tokio::time::timeout_at(deadline, &mut handle).await {
                Ok(Ok(result)) => result.map(|r| r.job),
                Ok(Err(join_error)) => Err(CallError::Transport {
                    service: service.to_owned(),
                    source: rsoa_transport::Error::connection(format!(
                        "response task failed: {join_error}"
                    )),
                }),
                Err(_) => {
                    handle.abort();
                    Err(CallError::Timeout {
                        service: service.to_owned(),
                        after: timeout,
                    })
                }
            };
            outcomes.push((request_id, outcome));
        }
        Ok(outcomes)
    }

    pub(crate) fn expansion_settings(&self) -> Option<&ExpansionSettings> {
        self.inner.expansions.as_ref()
    }

    pub(crate) fn service(&self, name: &str) -> Result<Arc<Service>, CallError> {
        let real = self.inner.services.get(name);
        if self.inner.stubs.stubs_service(name) {
            // Some of its actions are stubbed: the calls go through a layer that answers them.
            let inner = real.map(|svc| svc.transport.clone());
            let transport = Arc::new(StubLayer::new(name, self.inner.stubs.clone(), inner));
            return Ok(Arc::new(match real {
                Some(svc) => Service {
                    name: svc.name.clone(),
                    transport,
                    middleware: svc.middleware.clone(),
                    timeout: svc.timeout,
                    next_request_id: svc.next_request_id.clone(),
                },
                None => Service {
                    name: name.to_owned(),
                    transport,
                    middleware: Vec::new(),
                    timeout: DEFAULT_TIMEOUT,
                    next_request_id: Arc::new(AtomicU64::new(1)),
                },
            }));
        }
        real.cloned().ok_or_else(|| CallError::UnknownService {
            service: name.to_owned(),
        })
    }

    /// The client's stubbed actions, shared with its clones and with the clients a server gives its actions: a
    /// test stubs a downstream action here without rebuilding anything (see [`crate::stub`]).
    pub fn stubs(&self) -> &Stubs {
        &self.inner.stubs
    }

    /// Builds the job for a call, in PySOA's shape: control, then context with the correlation id and the union of
    /// the call's, the per-call context's and the base context's switches.
    pub(crate) fn build_job(
        &self,
        actions: Vec<ActionRequest>,
        options: &CallOptions,
    ) -> JobRequest {
        let base = &*self.base;
        let mut extra = base.extra.clone();
        let mut caller = base.caller.clone();
        let mut calling_service = base.calling_service.clone();
        let mut context_correlation_id = None;
        let mut switches = options.switches.clone();
        switches.union_with(&base.switches);
        for (key, value) in options.context.iter() {
            match (key.as_str(), value) {
                // Switches given in the per-call context are read, never taken out of the caller's map (PySOA bug).
                (Some("switches"), Value::Array(items)) => {
                    switches.extend(items.iter().filter_map(Value::as_i64))
                }
                (Some("correlation_id"), Value::String(id)) => {
                    context_correlation_id = Some(id.as_str().to_owned())
                }
                (Some("caller"), Value::String(c)) => caller = Some(c.as_str().to_owned()),
                (Some("calling_service"), Value::String(c)) => {
                    calling_service = Some(c.as_str().to_owned())
                }
                _ => {
                    extra.insert(key.clone(), value.clone());
                }
            }
        }
        let correlation_id = options
            .correlation_id
            .clone()
            .or(context_correlation_id)
            .or_else(|| base.correlation_id.clone())
            .unwrap_or_else(new_correlation_id);
        let mut context = Context::default();
        context.correlation_id = correlation_id;
        context.switches = switches.to_vec();
        context.caller = caller;
        context.calling_service = calling_service;
        context.extra = extra;
        #[cfg(feature = "otel")]
        crate::trace_context::inject(&mut context.extra);
        let mut control = Control::default();
        control.continue_on_error = options.continue_on_error;
        control.suppress_response = options.suppress_response;
        control.timeout = options
            .timeout
            .map(|t| t.as_secs() + u64::from(t.subsec_nanos() > 0));
        control.extra = options.control_extra.clone();
        let mut job = JobRequest::new(actions);
        job.control = control;
        job.context = context;
        job
    }

    /// Sends a job through the service's middleware and transport.
    pub(crate) async fn send_job(
        &self,
        svc: &Service,
        actions: Vec<ActionRequest>,
        options: &CallOptions,
    ) -> Result<(u64, Option<PendingResponse>), CallError> {
        let job = self.build_job(actions, options);
        let request_id = svc.next_request_id.fetch_add(1, Ordering::Relaxed);
        let mut request = ClientRequest::new(request_id, job);
        request.meta.push(
            "client_version",
            Value::Array(CLIENT_VERSION.iter().map(|&v| Value::from(v)).collect()),
        );
        request.expiry = options.timeout;
        let next = RequestNext {
            middleware: &svc.middleware,
            transport: &*svc.transport,
        };
        let pending = next.run(request).await?;
        Ok((request_id, pending))
    }

    /// Makes one call: sends the job and waits for its response within the timeout.
    pub(crate) async fn call_job(
        &self,
        service: &str,
        actions: Vec<ActionRequest>,
        options: &CallOptions,
    ) -> Result<Option<JobResponse>, CallError> {
        let svc = self.service(service)?;
        let (_, pending) = self.send_job(&svc, actions, options).await?;
        let Some(pending) = pending else {
            return Ok(None);
        };
        let timeout = options.timeout.unwrap_or(svc.timeout);
        match tokio::time::timeout(timeout, svc.receive(pending)).await {
            Ok(result) => result.map(|r| Some(r.job)),
            // Dropping the pending response tells the transport to discard the reply if it comes later.
            Err(_) => Err(CallError::Timeout {
                service: service.to_owned(),
                after: timeout,
            }),
        }
    }
}

impl Service {
    /// Awaits a pending response and runs it through the response middleware. A transport that gives up waiting
    /// on its own (the Redis transport waits as long as the call's timeout) reports the same
    /// [`CallError::Timeout`] as the client's own timer, whichever of the two ends first.
    async fn receive(&self, pending: PendingResponse) -> Result<ClientResponse, CallError> {
        let response = pending
            .await
            .map_err(|source| CallError::transport(&self.name, source))?;
        if self.middleware.is_empty() {
            return Ok(response);
        }
        ResponseNext {
            middleware: &self.middleware,
        }
        .run(response)
        .await
    }
}

/// A fresh correlation id: 32 lowercase hex digits, like PySOA's `uuid1().hex`.
///
/// The first half is random once per process, the second a counter, so ids are unique without asking the operating
/// system for randomness on every call (which costs more than the rest of a local call).
fn new_correlation_id() -> String {
    static PREFIX: OnceLock<u64> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = *PREFIX.get_or_init(|| uuid::Uuid::new_v4().as_u64_pair().0);
    // `{prefix:016x}{counter:016x}`, written by uuid's hex encoder rather than the formatting machinery.
    let id = uuid::Uuid::from_u64_pair(prefix, COUNTER.fetch_add(1, Ordering::Relaxed));
    id.simple()
        .encode_lower(&mut [0; uuid::fmt::Simple::LENGTH])
        .to_owned()
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding this lock cannot leave the list inconsistent, so a poisoned lock is still usable.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Builds a [`Client`].
///
/// ```
/// use rsoa_client::Client;
///
/// let client = Client::builder().caller("checkout-web").switch(3).build();
/// assert!(client.services().is_empty());
/// ```
#[derive(Default)]
#[must_use]
pub struct ClientBuilder {
    services: Vec<(Arc<dyn ClientTransport>, ServiceOptions)>,
    middleware: Vec<Arc<dyn ClientMiddleware>>,
    timeout: Option<Duration>,
    base: BaseContext,
    expansions: Option<ExpansionSettings>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("services", &self.services.len())
            .finish_non_exhaustive()
    }
}

/// Per-service client settings.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct ServiceOptions {
    /// Middleware for this service only, inside the client-wide middleware.
    pub middleware: Vec<Arc<dyn ClientMiddleware>>,
    /// The default timeout of calls to this service (else the client's, else [`DEFAULT_TIMEOUT`]).
    pub timeout: Option<Duration>,
}

impl fmt::Debug for ServiceOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceOptions")
            .field("middleware", &self.middleware.len())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl ServiceOptions {
    /// Default options.
    pub fn new() -> ServiceOptions {
        ServiceOptions::default()
    }

    /// Adds middleware for this service.
    #[must_use]
    pub fn middleware(mut self, middleware: impl ClientMiddleware) -> ServiceOptions {
        self.middleware.push(Arc::new(middleware));
        self
    }

    /// Sets this service's default timeout.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> ServiceOptions {
        self.timeout = Some(timeout);
        self
    }
}

impl ClientBuilder {
    /// Routes calls to the transport's service through it.
    pub fn service(self, transport: impl ClientTransport) -> ClientBuilder {
        self.service_with(transport, ServiceOptions::default())
    }

    /// Routes calls to the transport's service through it, with per-service options.
    pub fn service_with(
        mut self,
        transport: impl ClientTransport,
        options: ServiceOptions,
    ) -> ClientBuilder {
        self.services.push((Arc::new(transport), options));
        self
    }

    /// Routes calls through a shared transport.
    pub fn service_arc(
        mut self,
        transport: Arc<dyn ClientTransport>,
        options: ServiceOptions,
    ) -> ClientBuilder {
        self.services.push((transport, options));
        self
    }

    /// Adds middleware for every service (outside any per-service middleware; the first added is outermost).
    pub fn middleware(mut self, middleware: impl ClientMiddleware) -> ClientBuilder {
        self.middleware.push(Arc::new(middleware));
        self
    }

    /// Sets the default timeout for every service.
    pub fn timeout(mut self, timeout: Duration) -> ClientBuilder {
        self.timeout = Some(timeout);
        self
    }

    /// Sets the correlation id of every request (otherwise each call gets a fresh one).
    pub fn correlation_id(mut self, correlation_id: impl Into<String>) -> ClientBuilder {
        self.base.correlation_id = Some(correlation_id.into());
        self
    }

    /// Turns a switch on for every request.
    pub fn switch(mut self, switch: impl rsoa_switches::Switch) -> ClientBuilder {
        self.base.switches.insert(switch);
        self
    }

    /// Sets `context.caller` on every request.
    pub fn caller(mut self, caller: impl Into<String>) -> ClientBuilder {
        self.base.caller = Some(caller.into());
        self
    }

    /// Adds a custom key to every request's context.
    pub fn context(mut self, key: impl Into<String>, value: impl Into<Value>) -> ClientBuilder {
        self.base.extra.insert(key.into(), value);
        self
    }

    /// The types, routes and expansions this client can expand (see [`ExpansionSettings`]); check them with
    /// [`ExpansionSettings::validate`] first.
    pub fn expansions(mut self, settings: ExpansionSettings) -> ClientBuilder {
        self.expansions = Some(settings);
        self
    }

    /// Builds the client. A service configured twice keeps the last transport given.
    pub fn build(self) -> Client {
        let default_timeout = self.timeout.unwrap_or(DEFAULT_TIMEOUT);
        let mut services = HashMap::new();
        for (transport, options) in self.services {
            let name = transport.service_name().to_owned();
            let mut middleware = self.middleware.clone();
            middleware.extend(options.middleware);
            // Like PySOA, request ids start at a random point so that ids from restarted clients rarely collide.
            let first_id = (uuid::Uuid::new_v4().as_u128() % 1_000_000) as u64 + 1;
            let service = Service {
                name: name.clone(),
                transport,
                middleware,
                timeout: options.timeout.unwrap_or(default_timeout),
                next_request_id: Arc::new(AtomicU64::new(first_id)),
            };
            services.insert(name, Arc::new(service));
        }
        Client {
            inner: Arc::new(Inner {
                services,
                expansions: self.expansions,
                stubs: Stubs::default(),
            }),
            base: Arc::new(self.base),
            outstanding: Arc::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rsoa_protocol::Map;
    use rsoa_transport::{BoxFuture, ClientRequest, ClientTransport, Error, PendingResponse};

    use super::Client;
    use crate::CallError;

    /// A transport that gives up waiting for every reply after one second, on its own.
    #[derive(Debug)]
    struct GivesUp;

    impl ClientTransport for GivesUp {
        fn service_name(&self) -> &str {
            "svc"
        }

        fn send(&self, _: ClientRequest) -> BoxFuture<'_, Result<Option<PendingResponse>, Error>> {
            let gave_up = Err(Error::Timeout(Duration::from_secs(1)));
            Box::pin(async move { Ok(Some(PendingResponse::ready(gave_up))) })
        }
    }

    #[tokio::test]
    async fn a_transport_timeout_is_the_calls_timeout() {
        let client = Client::builder()
            .timeout(Duration::from_secs(30))
            .service(GivesUp)
            .build();
        let err = client
            .call_action("svc", "a", Map::new())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, CallError::Timeout { service, after } if service == "svc" && *after == Duration::from_secs(1)),
            "{err:?}"
        );
    }
}
