//! The [`Server`]: actions, middleware and settings, and how a job is run.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use rsoa_client::Client;
use rsoa_protocol::{
    ActionRequest, ActionResponse, Error as WireError, ErrorCode, JobRequest, JobResponse, Map,
    Value,
};
use rsoa_transport::{BoxFuture, IncomingJob, JobBody, JobHandler};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tracing::Instrument;

use crate::action::{FnAction, JobState, Typed};
use crate::builtin::{AsyncCheck, HealthCheck};
use crate::clock::Clock;
use crate::metric;
use crate::middleware::{ActionNext, JobNext, ServerMiddleware};
use crate::panic::{CatchPanic, Panicked};
use crate::request_log::{Censored, LogLevel};
use crate::{log_context, span};
use crate::{Action, ActionContext, ActionError, Error, HealthReport, RawAction, Watch};

/// Server settings, with PySOA's defaults where PySOA has the setting.
///
/// ```
/// use rsoa_server::ServerSettings;
///
/// let settings: ServerSettings = serde_json::from_str(r#"{"max_concurrent_jobs": 8}"#).unwrap();
/// assert_eq!(settings.max_concurrent_jobs, 8);
/// assert!(serde_json::from_str::<ServerSettings>(r#"{"max_jobs": 8}"#).is_err(), "unknown keys are refused");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ServerSettings {
    /// How many jobs this server runs at once (PySOA runs one per process). At least 1; default 64.
    pub max_concurrent_jobs: usize,
    /// PySOA's `harakiri.timeout`: a job still running after this many seconds is cancelled, and its caller gets
    /// `ACTION_TIMEOUT` (or `JOB_TIMEOUT` outside any action). A job whose request carries `control.timeout` is
    /// also cancelled a second after that, when its caller has stopped waiting, if that is sooner. 0, the default
    /// here, sets none (the standalone runner defaults to 300, as PySOA).
    /// Cancellation happens at the job's next `.await`: code that never yields is not stopped by it.
    pub harakiri_timeout_in_seconds: u64,
    /// The level at which each successful job's request and response are logged, censored (PySOA's
    /// `request_log_success_level`). Default `DEBUG`, where PySOA's is `INFO`: logging every body costs more than
    /// the call itself here; set `INFO` to log as PySOA does.
    pub request_log_success_level: LogLevel,
    /// The level at which a job's request and response are logged when the response has errors (PySOA's
    /// `request_log_error_level`, default `INFO`). When it is above the success level and that one is not
    /// recorded, the request is logged again at this level, as PySOA does.
    pub request_log_error_level: LogLevel,
    /// Keys whose values are censored in those logs, beside PySOA's list (PySOA's `extra_fields_to_redact`).
    pub extra_fields_to_redact: Vec<String>,
    /// The most actions one job may hold; a job with more is refused whole (`INVALID` on `actions`, "List is
    /// longer than N", as Conformity words it) before any is checked or run. PySOA sets none; default 10 000.
    pub max_actions_per_job: usize,
}

impl Default for ServerSettings {
    fn default() -> ServerSettings {
        ServerSettings {
            max_actions_per_job: 10_000,
            max_concurrent_jobs: 64,
            harakiri_timeout_in_seconds: 0,
            request_log_success_level: LogLevel::Debug,
            request_log_error_level: LogLevel::Info,
            extra_fields_to_redact: Vec::new(),
        }
    }
}

impl ServerSettings {
    /// Checks every value, naming the first bad one.
    pub fn validate(&self) -> Result<(), Error> {
        if self.max_concurrent_jobs == 0 {
            return Err(Error::InvalidSettings {
                field: "max_concurrent_jobs",
                reason: "must be at least 1".to_owned(),
            });
        }
        if self.max_actions_per_job == 0 {
            return Err(Error::InvalidSettings {
                field: "max_actions_per_job",
                reason: "must be at least 1".to_owned(),
            });
        }
        Ok(())
    }
}

/// A service: its actions, middleware and settings. Cheap to clone; every clone is the same server.
///
/// A server has no listening port: a transport brings it jobs. [`Server`] implements
/// [`JobHandler`], which the in-process transport calls directly.
///
/// ```
/// use rsoa_server::{ActionContext, ActionError, Server};
///
/// #[derive(serde::Deserialize)]
/// struct Echo { text: String }
/// #[derive(serde::Serialize)]
/// struct Echoed { text: String }
///
/// let server = Server::builder("example")
///     .action_fn("echo", |req: Echo, _ctx: ActionContext| async move { Ok::<_, ActionError>(Echoed { text: req.text }) })
///     .version("1.2.3")
///     .build()
///     .unwrap();
/// assert_eq!(server.service_name(), "example");
/// assert_eq!(server.action_names(), ["echo", "introspect", "status"]);
/// ```
#[derive(Clone)]
pub struct Server {
    inner: Arc<ServerInner>,
}

pub(crate) struct ServerInner {
    pub(crate) name: Arc<str>,
    pub(crate) actions: HashMap<String, Arc<dyn RawAction>>,
    /// The actions' names in the order they were added, which `introspect` keeps (as PySOA keeps its map's).
    pub(crate) declared: Vec<String>,
    pub(crate) middleware: Vec<Arc<dyn ServerMiddleware>>,
    pub(crate) client: Client,
    pub(crate) clock: Clock,
    pub(crate) version: String,
    pub(crate) build: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) health_checks: Vec<Arc<dyn HealthCheck>>,
    pub(crate) settings: ServerSettings,
    pub(crate) watch: Option<Arc<Watch>>,
    pub(crate) hooks: Hooks,
    jobs: Semaphore,
    metrics: OnceLock<metric::Handles>,
}

/// An async hook that takes nothing and returns `T`.
type Hook<T> = Arc<dyn Fn() -> BoxFuture<'static, T> + Send + Sync>;

/// The lifecycle hooks, PySOA's `setup`, `teardown`, `perform_pre_request_actions`,
/// `perform_post_request_actions` and `perform_idle_actions`.
#[derive(Default)]
pub(crate) struct Hooks {
    setup: Vec<Hook<Result<(), String>>>,
    teardown: Vec<Hook<()>>,
    pre_request: Vec<Hook<()>>,
    post_request: Vec<Hook<()>>,
    idle: Vec<Hook<()>>,
}

fn hook<F, Fut, T>(f: F) -> Hook<T>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    Arc::new(move || -> BoxFuture<'static, T> { Box::pin(f()) })
}

async fn run_all(hooks: &[Hook<()>]) {
    for hook in hooks {
        hook().await;
    }
}

/// The envelope of the job being run.
pub(crate) struct JobEnvelope {
    pub(crate) request_id: Value,
    pub(crate) meta: Arc<Map>,
    /// When the job is cancelled, if ever (see [`ServerSettings::harakiri_timeout_in_seconds`]).
    pub(crate) deadline: Option<tokio::time::Instant>,
}

/// How long after a request's own `control.timeout` its job is cancelled.
const CALLER_GRACE: Duration = Duration::from_secs(1);

/// How long past the deadline a job's middleware may take to finish after an action was cancelled, before the
/// whole job is (the action's `ACTION_TIMEOUT` is then still reported if the middleware returns in that time).
const MIDDLEWARE_GRACE: Duration = Duration::from_millis(100);

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("service", &self.inner.name)
            .field("actions", &self.action_names())
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Starts building a server for a service.
    pub fn builder(service_name: impl Into<String>) -> ServerBuilder {
        ServerBuilder {
            name: service_name.into(),
            actions: Vec::new(),
            middleware: Vec::new(),
            client: None,
            clock: Clock::default(),
            version: None,
            build: None,
            description: None,
            health_checks: Vec::new(),
            settings: ServerSettings::default(),
            watch: None,
            hooks: Hooks::default(),
        }
    }

    /// The service's name.
    pub fn service_name(&self) -> &str {
        &self.inner.name
    }

    /// Every action name the server answers, built-ins included, sorted.
    pub fn action_names(&self) -> Vec<String> {
        self.inner.action_names()
    }

    /// The settings.
    pub fn settings(&self) -> &ServerSettings {
        &self.inner.settings
    }

    /// The client its actions call other services with; stub a downstream action on it with
    /// [`Client::stubs`](rsoa_client::Client::stubs).
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    /// The clock its actions read ([`ActionContext::now`](crate::ActionContext::now)); a test freezes time here.
    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    /// The watch given to [`ServerBuilder::watch`], if any.
    pub fn watch(&self) -> Option<&Arc<Watch>> {
        self.inner.watch.as_ref()
    }

    /// Runs the setup hooks in the order they were added, stopping at the first that fails.
    /// [`serve`](crate::serve) calls it before it takes a request; call it yourself when you drive the server
    /// another way (the local transport).
    pub async fn setup(&self) -> Result<(), Error> {
        for hook in &self.inner.hooks.setup {
            hook().await.map_err(Error::Setup)?;
        }
        Ok(())
    }

    /// Runs the teardown hooks in the order they were added. [`serve`](crate::serve) calls it once every job has
    /// ended (or the grace period has).
    pub async fn teardown(&self) {
        run_all(&self.inner.hooks.teardown).await;
    }

    /// Runs the idle hooks. [`serve`](crate::serve) calls it whenever the transport's receive timeout passes
    /// with no request.
    pub async fn idle(&self) {
        run_all(&self.inner.hooks.idle).await;
    }

    /// Runs a job and returns its response (`None` when the job suppressed its response), exactly as it would run
    /// had it come over a transport.
    pub async fn handle(&self, job: IncomingJob) -> Option<JobResponse> {
        self.inner.handle(job).await
    }
}

impl JobHandler for Server {
    fn service_name(&self) -> &str {
        &self.inner.name
    }

    fn handle_job(&self, job: IncomingJob) -> BoxFuture<'_, Option<JobResponse>> {
        Box::pin(self.inner.handle(job))
    }
}

/// Runs `future` to its end, or until `deadline` if there is one: `None` when the deadline came first.
async fn within<F: std::future::Future>(
    deadline: Option<tokio::time::Instant>,
    future: F,
) -> Option<F::Output> {
    match deadline {
        None => Some(future.await),
        Some(deadline) => tokio::time::timeout_at(deadline, future).await.ok(),
    }
}

pub(crate) fn panic_error(panicked: Panicked) -> WireError {
    tracing::error!(message = %panicked.message, traceback = %panicked.traceback, "panic while running a job");
    WireError::new(
        ErrorCode::SERVER_ERROR,
        format!("Internal server error: {}", panicked.message),
    )
    .with_traceback(panicked.traceback)
}

/// A job's request as it came: the raw body, or a typed one written out.
fn as_it_came(job: &IncomingJob) -> Cow<'_, Value> {
    match &job.body {
        JobBody::Raw(value) => Cow::Borrowed(value),
        JobBody::Typed(job) => Cow::Owned(job.to_value()),
    }
}

/// What a job keeps to log its request again should it fail.
enum Kept {
    Nothing,
    Source(rsoa_transport::Source),
    Value(Value),
}

/// Whether a job as it came asks for no response: PySOA decides from the control header as it came, valid or not.
fn suppress_as_it_came(job: &Value) -> bool {
    job.get("control")
        .and_then(|control| control.get("suppress_response"))
        .is_some_and(python_truth)
}

/// Python's truth value of a decoded value: what `if value:` decides.
fn python_truth(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Int(n) => n.as_i64() != Some(0),
        Value::Float(f) => *f != 0.0,
        Value::String(s) => !s.is_empty(),
        Value::NonUtf8String(b) | Value::Bytes(b) => !b.is_empty(),
        Value::Array(items) => !items.is_empty(),
        Value::Map(map) => !map.is_empty(),
        Value::Decimal(d) => {
            // Zero in any form (`0`, `-0.00`, `0E+3`) is false; NaN is true.
            let text = d.as_str().trim_start_matches(['-', '+']);
            let mantissa = text.split(['e', 'E']).next().unwrap_or(text);
            !mantissa.chars().all(|c| c == '0' || c == '.')
        }
        _ => true,
    }
}

impl ServerInner {
    pub(crate) fn action_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.actions.keys().cloned().collect();
        for builtin in ["status", "introspect"] {
            if !self.actions.contains_key(builtin) {
                names.push(builtin.to_owned());
            }
        }
        names.sort_unstable();
        names
    }

    /// The server's metric handles, registered with the recorder installed when it runs its first job.
    fn metrics(&self) -> &metric::Handles {
        self.metrics.get_or_init(|| {
            let builtins = ["status", "introspect"].into_iter();
            metric::Handles::new(self.actions.keys().map(String::as_str).chain(builtins))
        })
    }

    async fn handle(self: &Arc<Self>, job: IncomingJob) -> Option<JobResponse> {
        let span = span::job(&self.name, &job);
        let fields = log_context::JobFields::of(&self.name, &job);
        log_context::in_job(fields, self.handle_in_span(job).instrument(span)).await
    }

    async fn handle_in_span(self: &Arc<Self>, job: IncomingJob) -> Option<JobResponse> {
        // The semaphore is never closed, so acquiring only waits.
        let _permit = self.jobs.acquire().await.ok();
        if self.hooks.pre_request.is_empty() && self.hooks.post_request.is_empty() {
            return self.run_job(job).await;
        }
        run_all(&self.hooks.pre_request).await;
        let response = self.run_job(job).await;
        run_all(&self.hooks.post_request).await;
        response
    }

    async fn run_job(self: &Arc<Self>, job: IncomingJob) -> Option<JobResponse> {
        let settings = &self.settings;
        let (success, error) = (
            settings.request_log_success_level,
            settings.request_log_error_level,
        );
        if !success.enabled() && !error.enabled() {
            return self.process(job).await;
        }
        let extra = &settings.extra_fields_to_redact;
        // PySOA logs the request as it came, before it is checked.
        if success.enabled() {
            let value = &as_it_came(&job);
            success.log("Job request", "request", &Censored { value, extra });
        }
        // A failed job's request is logged again at the error level when the success level hid it: from the
        // message it came in, decoded again then (no copy of every request that succeeds), or else a copy.
        let relog = error.enabled() && error > success && !success.enabled();
        let kept = match (relog, &job.source) {
            (false, _) => Kept::Nothing,
            (true, Some(source)) => Kept::Source(source.clone()),
            (true, None) => Kept::Value(as_it_came(&job).into_owned()),
        };
        let response = self.process(job).await;
        if let Some(response) = &response {
            let failed = !response.errors.is_empty()
                || response.actions.iter().any(|a| !a.errors.is_empty());
            let level = if failed { error } else { success };
            if level.enabled() {
                if failed {
                    let request = match kept {
                        Kept::Nothing => None,
                        Kept::Source(source) => source.body(),
                        Kept::Value(value) => Some(value),
                    };
                    if let Some(value) = &request {
                        error.log("Job request", "request", &Censored { value, extra });
                    }
                }
                let value = &response.to_value(true);
                level.log("Job response", "response", &Censored { value, extra });
            }
        }
        response
    }

    async fn process(self: &Arc<Self>, job: IncomingJob) -> Option<JobResponse> {
        let started = Instant::now();
        let IncomingJob {
            request_id,
            meta,
            body,
            ..
        } = job;
        let (actions, suppress) = match &body {
            JobBody::Typed(job) => (job.actions.len(), job.control.suppress_response),
            JobBody::Raw(value) => (
                value
                    .get("actions")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len),
                suppress_as_it_came(value),
            ),
        };
        let most = self.settings.max_actions_per_job;
        if actions > most {
            // Refused before a single action is checked: a job of a million actions costs what a small one does.
            tracing::warn!(service = %self.name, actions, most, "refusing a job with too many actions");
            let response = JobResponse::from_errors(vec![WireError::new(
                ErrorCode::INVALID,
                format!("List is longer than {most}"),
            )
            .with_field("actions")]);
            self.metrics().job_done(&response, started);
            return (!suppress).then_some(response);
        }
        let request = match body {
            JobBody::Typed(job) if job.actions.is_empty() => {
                let response = JobResponse::from_errors(vec![WireError::new(
                    ErrorCode::INVALID,
                    "List is shorter than 1",
                )
                .with_field("actions")]);
                self.metrics().job_done(&response, started);
                return (!suppress).then_some(response);
            }
            JobBody::Typed(job) => job,
            JobBody::Raw(value) => match JobRequest::validate(value) {
                Ok(job) => job,
                Err(errors) => {
                    tracing::debug!(service = %self.name, ?errors, "invalid job request");
                    let response = JobResponse::from_errors(errors);
                    self.metrics().job_done(&response, started);
                    return (!suppress).then_some(response);
                }
            },
        };
        let suppress = request.control.suppress_response;
        let harakiri = Some(self.settings.harakiri_timeout_in_seconds)
            .filter(|&s| s > 0)
            .map(Duration::from_secs);
        // The caller stops waiting at its own timeout; a moment later the job is of use to nobody. Cancelling it
        // then (not at the same instant, which would race the caller's timer) frees its slot while the caller
        // still sees what a PySOA server gives it: its own timeout.
        let caller = request
            .control
            .timeout
            .filter(|&s| s > 0)
            .map(|s| Duration::from_secs(s) + CALLER_GRACE);
        let deadline = [harakiri, caller]
            .into_iter()
            .flatten()
            .min()
            .map(|limit| tokio::time::Instant::now() + limit);
        let envelope = JobEnvelope {
            request_id,
            meta,
            deadline,
        };
        let next = JobNext {
            server: self,
            middleware: &self.middleware,
            envelope: &envelope,
        };
        let run = CatchPanic::new(next.run(request));
        let response = match within(deadline.map(|d| d + MIDDLEWARE_GRACE), run).await {
            Some(Ok(response)) => response,
            Some(Err(panicked)) => JobResponse::from_errors(vec![panic_error(panicked)]),
            None => {
                tracing::error!(service = %self.name, "a job ran past its deadline and was cancelled");
                JobResponse::from_errors(vec![WireError::new(
                    ErrorCode::JOB_TIMEOUT,
                    "The service job ran for too long and had to be interrupted (probably a middleware issue).",
                )])
            }
        };
        self.metrics().job_done(&response, started);
        (!suppress).then_some(response)
    }

    /// The innermost step of the job chain: run the actions in order.
    pub(crate) async fn run_actions(
        self: &Arc<Self>,
        job: JobRequest,
        envelope: &JobEnvelope,
    ) -> JobResponse {
        let JobRequest {
            control,
            context,
            actions,
            ..
        } = job;
        let continue_on_error = control.continue_on_error;
        let mut response_context = Map::with_capacity(1);
        response_context.push("correlation_id", context.correlation_id.as_str());
        let state = Arc::new(JobState {
            server: self.clone(),
            request_id: envelope.request_id.clone(),
            meta: envelope.meta.clone(),
            switches: rsoa_switches::SwitchSet::from_values(context.switches.iter().copied()),
            context,
            control,
            client: OnceLock::new(),
            abort: Mutex::new(None),
        });
        let mut responses = Vec::with_capacity(actions.len());
        for request in actions {
            let ctx = ActionContext {
                job: state.clone(),
                action: Arc::from(request.action.as_str()),
            };
            if let Some(watch) = &self.watch {
                watch.running(&ctx.action);
            }
            let next = ActionNext {
                server: self,
                middleware: &self.middleware,
            };
            let run = CatchPanic::new(next.run(request, &ctx));
            let started = Instant::now();
            let run = within(envelope.deadline, run).instrument(span::action(&ctx.action));
            let outcome = log_context::in_action(ctx.action.clone(), run).await;
            let failed = !matches!(&outcome, Some(Ok(response)) if response.errors.is_empty());
            self.metrics().action_done(&ctx.action, started, failed);
            let response = match outcome {
                Some(Ok(response)) => response,
                Some(Err(panicked)) => ActionResponse::with_errors(
                    ctx.action_name().to_owned(),
                    vec![panic_error(panicked)],
                ),
                None => {
                    // PySOA's harakiri: the action is interrupted, and the job stops with it.
                    tracing::error!(service = %self.name, action = ctx.action_name(), "an action ran past its deadline and was cancelled");
                    responses.push(ActionResponse::with_errors(
                        ctx.action_name().to_owned(),
                        vec![WireError::new(
                            ErrorCode::ACTION_TIMEOUT,
                            format!(
                                "The action \"{}\" ran for too long and had to be interrupted.",
                                ctx.action_name()
                            ),
                        )],
                    ));
                    break;
                }
            };
            if let Some(errors) = state
                .abort
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take()
            {
                // An action failed the whole job: only its errors are reported.
                metric::job_error();
                return JobResponse::from_errors(errors);
            }
            let failed = !response.errors.is_empty();
            responses.push(response);
            if failed && !continue_on_error {
                break;
            }
        }
        let mut response = JobResponse::default();
        response.context = response_context;
        response.actions = responses;
        response
    }

    /// Finds the action `name` (a built-in when the service defines none of that name) and runs it, catching a
    /// panic; `None` when there is no such action.
    pub(crate) async fn dispatch(
        &self,
        name: &str,
        body: Map,
        ctx: ActionContext,
    ) -> Option<Result<Result<Map, ActionError>, Panicked>> {
        Some(match self.actions.get(name) {
            Some(action) => CatchPanic::new(action.call(body, ctx)).await,
            None => match name {
                "status" => Ok(self.status(body).await),
                "introspect" => Ok(self.introspect(body)),
                _ => return None,
            },
        })
    }

    /// The innermost step of the action chain: find the action and run it.
    pub(crate) async fn invoke_action(
        &self,
        request: ActionRequest,
        ctx: &ActionContext,
    ) -> ActionResponse {
        let ActionRequest {
            action: name, body, ..
        } = request;
        let result = match self.dispatch(&name, body, ctx.clone()).await {
            Some(result) => result,
            None => {
                let error = WireError::unknown_action(&name);
                return ActionResponse::with_errors(name, vec![error]);
            }
        };
        match result {
            Ok(Ok(body)) => ActionResponse::new(name, body),
            Ok(Err(err)) if err.aborts_job() => {
                let errors = err.into_errors();
                *ctx.job
                    .abort
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(errors.clone());
                ActionResponse::with_errors(name, errors)
            }
            Ok(Err(err)) => ActionResponse::with_errors(name, err.into_errors()),
            Err(panicked) => ActionResponse::with_errors(name, vec![panic_error(panicked)]),
        }
    }
}

/// Builds a [`Server`]; [`ServerBuilder::build`] checks everything.
#[must_use]
pub struct ServerBuilder {
    name: String,
    actions: Vec<(String, Arc<dyn RawAction>)>,
    middleware: Vec<Arc<dyn ServerMiddleware>>,
    client: Option<Client>,
    clock: Clock,
    version: Option<String>,
    build: Option<String>,
    description: Option<String>,
    health_checks: Vec<Arc<dyn HealthCheck>>,
    settings: ServerSettings,
    watch: Option<Arc<Watch>>,
    hooks: Hooks,
}

impl fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.actions.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("ServerBuilder")
            .field("service", &self.name)
            .field("actions", &names)
            .finish_non_exhaustive()
    }
}

impl ServerBuilder {
    /// Adds a typed action.
    pub fn action(self, name: impl Into<String>, action: impl Action) -> ServerBuilder {
        self.raw_action(name, Typed::new(action))
    }

    /// Adds an action from an async closure taking a typed request and the [`ActionContext`].
    pub fn action_fn<F, Fut, Req, Resp>(self, name: impl Into<String>, f: F) -> ServerBuilder
    where
        F: Fn(Req, ActionContext) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<Resp, ActionError>> + Send + 'static,
        Req: DeserializeOwned + Send + 'static,
        Resp: Serialize + 'static,
    {
        self.raw_action(name, FnAction::new(f))
    }

    /// Adds an action from an async closure whose request type derives [`schemars::JsonSchema`]: every request
    /// body is checked against the type's Conformity schema before it is deserialized, with every error reported
    /// at once in Conformity's words, and `introspect` reports the schema, and the type's doc comment as the
    /// action's documentation. See [`conformity`](crate::conformity).
    ///
    /// ```
    /// use rsoa_server::{ActionContext, ActionError, Server};
    ///
    /// /// Squares a number.
    /// #[derive(serde::Deserialize, schemars::JsonSchema)]
    /// #[serde(deny_unknown_fields)]
    /// struct Square {
    ///     /// The number to square
    ///     #[schemars(range(min = 0))]
    ///     number: i64,
    /// }
    ///
    /// #[derive(serde::Serialize)]
    /// struct Squared { square: i64 }
    ///
    /// let server = Server::builder("example")
    ///     .validated_fn("square", |req: Square, _ctx: ActionContext| async move {
    ///         Ok::<_, ActionError>(Squared { square: req.number * req.number })
    ///     })
    ///     .build()
    ///     .expect("a valid server");
    /// # drop(server);
    /// ```
    pub fn validated_fn<F, Fut, Req, Resp>(self, name: impl Into<String>, f: F) -> ServerBuilder
    where
        F: Fn(Req, ActionContext) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<Resp, ActionError>> + Send + 'static,
        Req: DeserializeOwned + schemars::JsonSchema + Send + 'static,
        Resp: Serialize + 'static,
    {
        self.raw_action(name, FnAction::validated(f))
    }

    /// Adds an action that works on raw bodies.
    pub fn raw_action(mut self, name: impl Into<String>, action: impl RawAction) -> ServerBuilder {
        self.actions.push((name.into(), Arc::new(action)));
        self
    }

    /// Adds middleware; the first added is the outermost.
    pub fn middleware(mut self, middleware: impl ServerMiddleware) -> ServerBuilder {
        self.middleware.push(Arc::new(middleware));
        self
    }

    /// The client actions use to call other services (PySOA's `client_routing`); each job gets a copy that
    /// carries the job's context.
    pub fn client(mut self, client: Client) -> ServerBuilder {
        self.client = Some(client);
        self
    }

    /// The clock actions read (the system's by default); share one with a test to freeze time.
    pub fn clock(mut self, clock: Clock) -> ServerBuilder {
        self.clock = clock;
        self
    }

    /// The service's version, reported by `status` (default `unknown`).
    pub fn version(mut self, version: impl Into<String>) -> ServerBuilder {
        self.version = Some(version.into());
        self
    }

    /// The service's build, reported by `status` when set.
    pub fn build_info(mut self, build: impl Into<String>) -> ServerBuilder {
        self.build = Some(build.into());
        self
    }

    /// The service's documentation, reported by `introspect`.
    pub fn description(mut self, description: impl Into<String>) -> ServerBuilder {
        self.description = Some(description.into());
        self
    }

    /// Adds a health check run by the `status` action.
    pub fn health_check<F>(mut self, check: F) -> ServerBuilder
    where
        F: Fn(&mut HealthReport) + Send + Sync + 'static,
    {
        self.health_checks.push(Arc::new(check));
        self
    }

    /// Adds a health check that runs asynchronously (a database ping, a downstream `status`), run by `status`
    /// beside the others; its report is merged into theirs.
    pub fn async_health_check<F, Fut>(mut self, check: F) -> ServerBuilder
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = HealthReport> + Send + 'static,
    {
        self.health_checks.push(Arc::new(AsyncCheck(hook(check))));
        self
    }

    /// Adds a setup hook (PySOA's `Server.setup`): run before the server takes its first request, in the order
    /// added. An error stops the server from starting; [`serve`](crate::serve) then returns
    /// [`ServeOutcome::SetupFailed`](crate::ServeOutcome::SetupFailed).
    ///
    /// ```
    /// # use rsoa_server::Server;
    /// let pool_size = 4; // from the service's settings
    /// let server = Server::builder("example")
    ///     .setup(move || async move {
    ///         if pool_size == 0 {
    ///             return Err("the pool needs at least one connection");
    ///         }
    ///         Ok(())
    ///     })
    ///     .teardown(|| async { /* close the pool */ })
    ///     .build()
    ///     .unwrap();
    /// # drop(server);
    /// ```
    pub fn setup<F, Fut, E>(mut self, setup: F) -> ServerBuilder
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<(), E>> + Send + 'static,
        E: fmt::Display,
    {
        let setup = Arc::new(setup);
        self.hooks.setup.push(hook(move || {
            let run = setup();
            async move { run.await.map_err(|e| e.to_string()) }
        }));
        self
    }

    /// Adds a teardown hook (PySOA's `Server.teardown`): run once the server has stopped and its jobs have
    /// ended, in the order added.
    pub fn teardown<F, Fut>(mut self, teardown: F) -> ServerBuilder
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        self.hooks.teardown.push(hook(teardown));
        self
    }

    /// Adds a hook run before each job (PySOA's `perform_pre_request_actions`), before any middleware.
    pub fn pre_request<F, Fut>(mut self, pre_request: F) -> ServerBuilder
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        self.hooks.pre_request.push(hook(pre_request));
        self
    }

    /// Adds a hook run after each job (PySOA's `perform_post_request_actions`), after all middleware, before
    /// the response is sent.
    pub fn post_request<F, Fut>(mut self, post_request: F) -> ServerBuilder
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        self.hooks.post_request.push(hook(post_request));
        self
    }

    /// Adds a hook run when the server is idle (PySOA's `perform_idle_actions`): each time the transport's
    /// receive timeout passes with no request. It runs on the receive loop, so keep it short.
    pub fn idle<F, Fut>(mut self, idle: F) -> ServerBuilder
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        self.hooks.idle.push(hook(idle));
        self
    }

    /// Replaces the settings.
    pub fn settings(mut self, settings: ServerSettings) -> ServerBuilder {
        self.settings = settings;
        self
    }

    /// Lets a watchdog thread see this server's runtime: [`serve`](crate::serve) records each job it takes and
    /// which one it is polling, and the runtime must run [`Watch::tick`]. The standalone runner does this.
    pub fn watch(mut self, watch: Arc<Watch>) -> ServerBuilder {
        self.watch = Some(watch);
        self
    }

    /// Checks the configuration and builds the server.
    pub fn build(self) -> Result<Server, Error> {
        if self.name.is_empty() {
            return Err(Error::InvalidServiceName(self.name));
        }
        self.settings.validate()?;
        let mut actions = HashMap::with_capacity(self.actions.len());
        let mut declared = Vec::with_capacity(self.actions.len());
        for (name, action) in self.actions {
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
            {
                return Err(Error::InvalidActionName(name));
            }
            if actions.insert(name.clone(), action).is_some() {
                return Err(Error::DuplicateAction(name));
            }
            declared.push(name);
        }
        let max_jobs = self.settings.max_concurrent_jobs;
        Ok(Server {
            inner: Arc::new(ServerInner {
                name: Arc::from(self.name.as_str()),
                actions,
                declared,
                middleware: self.middleware,
                client: self.client.unwrap_or_else(|| Client::builder().build()),
                clock: self.clock,
                version: self.version.unwrap_or_else(|| "unknown".to_owned()),
                build: self.build,
                description: self.description,
                health_checks: self.health_checks,
                settings: self.settings,
                watch: self.watch,
                hooks: self.hooks,
                jobs: Semaphore::new(max_jobs),
                metrics: OnceLock::new(),
            }),
        })
    }
}
