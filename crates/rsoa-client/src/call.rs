//! The call builders: each client call returns one, with methods for its options, and awaiting it makes the call.

use std::future::IntoFuture;
use std::time::Duration;

use futures::future::join_all;
use rsoa_protocol::{ActionRequest, ActionResponse, JobResponse, Map, Value, ValueError};
use rsoa_switches::{Switch, SwitchSet};
use rsoa_transport::BoxFuture;

use crate::expansion::Requested;
use crate::{CallError, Client};

/// A request body: a [`Map`], a map [`Value`], `()` for an empty body, or `&T` for any serializable `T`.
pub trait IntoBody {
    /// The body as a map.
    fn into_body(self) -> Result<Map, ValueError>;
}

impl IntoBody for Map {
    fn into_body(self) -> Result<Map, ValueError> {
        Ok(self)
    }
}

impl IntoBody for Value {
    fn into_body(self) -> Result<Map, ValueError> {
        match self {
            Value::Map(map) => Ok(map),
            other => Err(ValueError::invalid(format!(
                "a request body must be a map, not a {}",
                other.kind()
            ))),
        }
    }
}

impl IntoBody for () {
    fn into_body(self) -> Result<Map, ValueError> {
        Ok(Map::new())
    }
}

impl<T: serde::Serialize + ?Sized> IntoBody for &T {
    fn into_body(self) -> Result<Map, ValueError> {
        rsoa_protocol::to_value(self)?.into_body()
    }
}

/// An action request built from a name and any [`IntoBody`].
///
/// ```
/// let request = rsoa_client::action("square", &serde_json::json!({"number": 3})).unwrap();
/// assert_eq!(request.action, "square");
/// ```
pub fn action(name: &str, body: impl IntoBody) -> Result<ActionRequest, CallError> {
    Ok(ActionRequest::new(
        name,
        body.into_body().map_err(CallError::InvalidRequest)?,
    ))
}

/// One job of [`Client::call_jobs_parallel`]: a service and the actions to run there.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Job {
    /// The service.
    pub service: String,
    /// The actions, run in order.
    pub actions: Vec<ActionRequest>,
}

impl Job {
    /// A job for a service.
    pub fn new(
        service: impl Into<String>,
        actions: impl IntoIterator<Item = ActionRequest>,
    ) -> Job {
        Job {
            service: service.into(),
            actions: actions.into_iter().collect(),
        }
    }
}

/// The options of a call, with PySOA's defaults: errors are raised, the job stops on the first error, a response
/// is expected, and the service's timeout applies.
#[derive(Clone, Debug)]
#[non_exhaustive]
#[must_use]
pub struct CallOptions {
    /// How long to wait for the response; it also becomes the request's expiry and `control.timeout`.
    pub timeout: Option<Duration>,
    /// Switches to turn on for this call, on top of the client's.
    pub switches: SwitchSet,
    /// The correlation id (otherwise the client's, or a fresh one).
    pub correlation_id: Option<String>,
    /// Context keys for this call, on top of the client's.
    pub context: Map,
    /// Extra control keys for this call.
    pub control_extra: Map,
    /// Keep running a job's later actions after one fails.
    pub continue_on_error: bool,
    /// Ask the server to send no response.
    pub suppress_response: bool,
    /// Return job errors as [`CallError::Job`] (otherwise inside the response, where the call returns one).
    pub raise_job_errors: bool,
    /// Return action errors as [`CallError::Action`] (otherwise inside the responses).
    pub raise_action_errors: bool,
}

impl Default for CallOptions {
    fn default() -> CallOptions {
        CallOptions {
            timeout: None,
            switches: SwitchSet::new(),
            correlation_id: None,
            context: Map::new(),
            control_extra: Map::new(),
            continue_on_error: false,
            suppress_response: false,
            raise_job_errors: true,
            raise_action_errors: true,
        }
    }
}

/// The option setters of [`CallOptions`] and of every call builder, each reaching the options through `opts()`.
macro_rules! option_setters {
    () => {
        /// Waits at most this long for the response (it also becomes the request's expiry).
        pub fn timeout(mut self, timeout: Duration) -> Self {
            self.opts().timeout = Some(timeout);
            self
        }

        /// Turns a switch on for this call.
        pub fn switch(mut self, switch: impl Switch) -> Self {
            self.opts().switches.insert(switch);
            self
        }

        /// Turns switches on for this call.
        pub fn switches<S: Switch>(mut self, switches: impl IntoIterator<Item = S>) -> Self {
            self.opts().switches.extend(switches);
            self
        }

        /// Sets the correlation id.
        pub fn correlation_id(mut self, correlation_id: impl Into<String>) -> Self {
            self.opts().correlation_id = Some(correlation_id.into());
            self
        }

        /// Adds a context key for this call.
        pub fn context(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
            self.opts().context.insert(key.into(), value);
            self
        }

        /// Adds a control key for this call.
        pub fn control_extra(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
            self.opts().control_extra.insert(key.into(), value);
            self
        }

        /// Whether action errors are returned as [`CallError::Action`] (the default) or inside the response.
        pub fn raise_action_errors(mut self, raise: bool) -> Self {
            self.opts().raise_action_errors = raise;
            self
        }
    };
}

/// What every call builder has beyond [`CallOptions`]'s setters: replacing them all at once.
macro_rules! builder_setters {
    () => {
        option_setters!();

        /// Replaces every option at once, including any set before on this builder.
        pub fn options(mut self, options: CallOptions) -> Self {
            self.options = options;
            self
        }

        fn opts(&mut self) -> &mut CallOptions {
            &mut self.options
        }
    };
}

/// Options built once and used for many calls, with the same setters as a call.
///
/// ```
/// use std::time::Duration;
/// use rsoa_client::CallOptions;
///
/// let options = CallOptions::new()
///     .timeout(Duration::from_secs(2))
///     .switch(5)
///     .correlation_id("abc")
///     .continue_on_error(true)
///     .raise_action_errors(false);
/// assert_eq!(options.timeout, Some(Duration::from_secs(2)));
/// assert!(options.switches.is_active(5));
/// # async fn demo(client: rsoa_client::Client, options: CallOptions) -> Result<(), rsoa_client::CallError> {
/// let job = client.call_actions("orders", []).options(options).await?;
/// # Ok(()) }
/// ```
impl CallOptions {
    /// PySOA's defaults.
    pub fn new() -> CallOptions {
        CallOptions::default()
    }

    option_setters!();

    /// Whether a job's later actions still run after one fails (jobs of several actions).
    pub fn continue_on_error(mut self, continue_on_error: bool) -> Self {
        self.continue_on_error = continue_on_error;
        self
    }

    /// Whether job errors are returned as [`CallError::Job`] (the default) or inside the response.
    pub fn raise_job_errors(mut self, raise: bool) -> Self {
        self.raise_job_errors = raise;
        self
    }

    /// Whether the server is asked to send no response.
    pub fn suppress_response(mut self, suppress: bool) -> Self {
        self.suppress_response = suppress;
        self
    }

    fn opts(&mut self) -> &mut CallOptions {
        self
    }
}

/// Failing actions of a response, if any and if they are to be raised.
fn action_errors(
    service: &str,
    responses: &[ActionResponse],
    options: &CallOptions,
) -> Result<(), CallError> {
    if !options.raise_action_errors {
        return Ok(());
    }
    let failed: Vec<ActionResponse> = responses
        .iter()
        .filter(|a| !a.errors.is_empty())
        .cloned()
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(CallError::Action {
            service: service.to_owned(),
            actions: failed,
        })
    }
}

fn job_errors(service: &str, response: &JobResponse, raise: bool) -> Result<(), CallError> {
    if raise && !response.errors.is_empty() {
        return Err(CallError::Job {
            service: service.to_owned(),
            errors: response.errors.clone(),
        });
    }
    Ok(())
}

/// One action in a job of its own; see [`Client::call_action`].
///
/// Resolves to the action's response. Job errors are always [`CallError::Job`] (there is no action response to
/// return); action errors are [`CallError::Action`] unless [`raise_action_errors(false)`](Self::raise_action_errors).
#[must_use = "a call does nothing unless awaited"]
#[derive(Debug)]
pub struct CallAction<'c> {
    client: &'c Client,
    service: String,
    request: ActionRequest,
    body: Result<Map, ValueError>,
    options: CallOptions,
    expansions: Requested,
}

impl<'c> CallAction<'c> {
    pub(crate) fn new(
        client: &'c Client,
        service: &str,
        request: ActionRequest,
        body: Result<Map, ValueError>,
    ) -> Self {
        CallAction {
            client,
            service: service.to_owned(),
            request,
            body,
            options: CallOptions::default(),
            expansions: Requested::default(),
        }
    }

    builder_setters!();

    /// Expands objects of `object_type` in the response with these expansions (dotted for nested ones), using the
    /// client's [`ExpansionSettings`](crate::ExpansionSettings).
    pub fn expand<S: Into<String>>(
        mut self,
        object_type: &str,
        expansions: impl IntoIterator<Item = S>,
    ) -> Self {
        self.expansions.add(object_type, expansions);
        self
    }

    /// Makes the call and converts the response body into `T` (a body that does not fit is
    /// [`CallError::InvalidResponse`]).
    pub async fn typed<T: serde::de::DeserializeOwned>(self) -> Result<T, CallError> {
        self.await?
            .into_body_as()
            .map_err(CallError::InvalidResponse)
    }

    /// Sends the action without waiting for (or getting) a response.
    pub async fn suppress_response(mut self) -> Result<(), CallError> {
        self.options.suppress_response = true;
        self.request.body = self.body.map_err(CallError::InvalidRequest)?;
        self.client
            .call_job(&self.service, vec![self.request], &self.options)
            .await?;
        Ok(())
    }
}

impl<'c> IntoFuture for CallAction<'c> {
    type Output = Result<ActionResponse, CallError>;
    type IntoFuture = BoxFuture<'c, Self::Output>;

    fn into_future(mut self) -> Self::IntoFuture {
        Box::pin(async move {
            // An awaited call wants its response; `suppress_response()` is the way to send without one.
            self.options.suppress_response = false;
            self.request.body = self.body.map_err(CallError::InvalidRequest)?;
            let action = self.request.action.clone();
            let response = self
                .client
                .call_job(&self.service, vec![self.request], &self.options)
                .await?;
            let mut response = response.unwrap_or_default();
            job_errors(&self.service, &response, true)?;
            action_errors(&self.service, &response.actions, &self.options)?;
            if !self.expansions.is_empty() {
                let bodies = response.actions.iter_mut().map(|a| &mut a.body).collect();
                self.client
                    .expand(bodies, &self.expansions, &self.options)
                    .await?;
            }
            if response.actions.is_empty() {
                // A server always answers a one-action job with one action response or a job error.
                return Err(CallError::Transport {
                    service: self.service,
                    source: rsoa_transport::Error::InvalidMessage {
                        message: format!(
                            "the response to action {action:?} has no action response"
                        ),
                        source: None,
                    },
                });
            }
            Ok(response.actions.swap_remove(0))
        })
    }
}

/// Several actions in one job; see [`Client::call_actions`]. Resolves to the job's response.
#[must_use = "a call does nothing unless awaited"]
#[derive(Debug)]
pub struct CallActions<'c> {
    client: &'c Client,
    service: String,
    actions: Vec<ActionRequest>,
    options: CallOptions,
    expansions: Requested,
}

impl<'c> CallActions<'c> {
    pub(crate) fn new(client: &'c Client, service: &str, actions: Vec<ActionRequest>) -> Self {
        CallActions {
            client,
            service: service.to_owned(),
            actions,
            options: CallOptions::default(),
            expansions: Requested::default(),
        }
    }

    builder_setters!();

    /// Expands objects of `object_type` in the response with these expansions (dotted for nested ones), using the
    /// client's [`ExpansionSettings`](crate::ExpansionSettings).
    pub fn expand<S: Into<String>>(
        mut self,
        object_type: &str,
        expansions: impl IntoIterator<Item = S>,
    ) -> Self {
        self.expansions.add(object_type, expansions);
        self
    }

    /// Keeps running later actions after one fails.
    pub fn continue_on_error(mut self, continue_on_error: bool) -> Self {
        self.options.continue_on_error = continue_on_error;
        self
    }

    /// Whether job errors are returned as [`CallError::Job`] (the default) or inside the response.
    pub fn raise_job_errors(mut self, raise: bool) -> Self {
        self.options.raise_job_errors = raise;
        self
    }

    /// Sends the job without waiting for (or getting) a response.
    pub async fn suppress_response(mut self) -> Result<(), CallError> {
        self.options.suppress_response = true;
        self.client
            .call_job(&self.service, self.actions, &self.options)
            .await?;
        Ok(())
    }
}

impl<'c> IntoFuture for CallActions<'c> {
    type Output = Result<JobResponse, CallError>;
    type IntoFuture = BoxFuture<'c, Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let response = self
                .client
                .call_job(&self.service, self.actions, &self.options)
                .await?;
            let mut response = response.unwrap_or_default();
            job_errors(&self.service, &response, self.options.raise_job_errors)?;
            action_errors(&self.service, &response.actions, &self.options)?;
            if !self.expansions.is_empty() {
                let bodies = response.actions.iter_mut().map(|a| &mut a.body).collect();
                self.client
                    .expand(bodies, &self.expansions, &self.options)
                    .await?;
            }
            Ok(response)
        })
    }
}

/// Several actions, each in its own job, sent at once; see [`Client::call_actions_parallel`].
///
/// Awaiting it resolves to every response in the order given, or to the first error (in that order);
/// [`CallActionsParallel::each`] returns every outcome instead (PySOA's `catch_transport_errors`).
#[must_use = "a call does nothing unless awaited"]
#[derive(Debug)]
pub struct CallActionsParallel<'c> {
    client: &'c Client,
    service: String,
    actions: Vec<ActionRequest>,
    options: CallOptions,
}

impl<'c> CallActionsParallel<'c> {
    pub(crate) fn new(client: &'c Client, service: &str, actions: Vec<ActionRequest>) -> Self {
        CallActionsParallel {
            client,
            service: service.to_owned(),
            actions,
            options: CallOptions::default(),
        }
    }

    builder_setters!();

    /// Every outcome, one per action in the order given, whatever the others did.
    pub async fn each(self) -> Vec<Result<ActionResponse, CallError>> {
        let client = self.client;
        let options = &self.options;
        let service = self.service.as_str();
        join_all(self.actions.into_iter().map(|request| async move {
            let body = request.body;
            CallAction::new(
                client,
                service,
                ActionRequest::new(request.action, Map::new()),
                Ok(body),
            )
            .options(options.clone())
            .await
        }))
        .await
    }
}

impl<'c> IntoFuture for CallActionsParallel<'c> {
    type Output = Result<Vec<ActionResponse>, CallError>;
    type IntoFuture = BoxFuture<'c, Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move { self.each().await.into_iter().collect() })
    }
}

/// Several jobs, possibly to different services, sent at once; see [`Client::call_jobs_parallel`].
///
/// Awaiting it resolves to every job response in the order given, or to the first error (in that order);
/// [`CallJobsParallel::each`] returns every outcome instead.
#[must_use = "a call does nothing unless awaited"]
#[derive(Debug)]
pub struct CallJobsParallel<'c> {
    client: &'c Client,
    jobs: Vec<Job>,
    options: CallOptions,
}

impl<'c> CallJobsParallel<'c> {
    pub(crate) fn new(client: &'c Client, jobs: Vec<Job>) -> Self {
        CallJobsParallel {
            client,
            jobs,
            options: CallOptions::default(),
        }
    }

    builder_setters!();

    /// Keeps running each job's later actions after one fails.
    pub fn continue_on_error(mut self, continue_on_error: bool) -> Self {
        self.options.continue_on_error = continue_on_error;
        self
    }

    /// Whether job errors are returned as [`CallError::Job`] (the default) or inside the responses.
    pub fn raise_job_errors(mut self, raise: bool) -> Self {
        self.options.raise_job_errors = raise;
        self
    }

    /// Every outcome, one per job in the order given, whatever the others did.
    pub async fn each(self) -> Vec<Result<JobResponse, CallError>> {
        let client = self.client;
        let options = &self.options;
        join_all(self.jobs.into_iter().map(|job| async move {
            CallActions::new(client, &job.service, job.actions)
                .options(options.clone())
                .await
        }))
        .await
    }
}

impl<'c> IntoFuture for CallJobsParallel<'c> {
    type Output = Result<Vec<JobResponse>, CallError>;
    type IntoFuture = BoxFuture<'c, Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move { self.each().await.into_iter().collect() })
    }
}
