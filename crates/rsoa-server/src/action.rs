//! Actions: typed by default, erased inside.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, OnceLock};

use rsoa_client::{CallError, Client, IntoBody};
use rsoa_protocol::{Context, Control, Error, ErrorCode, Map, Value, ValueError};
use rsoa_switches::SwitchSet;
use rsoa_transport::BoxFuture;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::conformity::Schema;
use crate::server::{panic_error, ServerInner};

/// An action with typed request and response bodies.
///
/// The server deserializes the request body into [`Action::Request`] (each failure becomes a caller error with the
/// field's pointer, as PySOA's request schemas do), calls [`Action::validate`], then [`Action::run`], and
/// serializes the response (a failure there is a `SERVER_ERROR`). Put `#[serde(deny_unknown_fields)]` on request
/// structs: PySOA rejects keys a schema does not declare.
///
/// ```
/// use rsoa_server::{Action, ActionContext, ActionError};
///
/// #[derive(serde::Deserialize)]
/// #[serde(deny_unknown_fields)]
/// struct SquareRequest { number: i64 }
///
/// #[derive(serde::Serialize)]
/// struct SquareResponse { square: i64 }
///
/// struct Square;
///
/// impl Action for Square {
///     type Request = SquareRequest;
///     type Response = SquareResponse;
///
///     fn description(&self) -> Option<&str> {
///         Some("Squares a number.")
///     }
///
///     async fn run(&self, req: SquareRequest, _ctx: ActionContext) -> Result<SquareResponse, ActionError> {
///         let square = req.number.checked_mul(req.number)
///             .ok_or_else(|| ActionError::new("OVERFLOW", "The square is too large").with_field("number"))?;
///         Ok(SquareResponse { square })
///     }
/// }
/// ```
pub trait Action: Send + Sync + 'static {
    /// The request body.
    type Request: DeserializeOwned + Send;
    /// The response body; it must serialize to a map (or to nothing, for an empty body).
    type Response: Serialize;

    /// Checks the request beyond its types; runs before [`Action::run`].
    fn validate(&self, _request: &Self::Request, _ctx: &ActionContext) -> Result<(), ActionError> {
        Ok(())
    }

    /// Runs the action.
    fn run(
        &self,
        request: Self::Request,
        ctx: ActionContext,
    ) -> impl Future<Output = Result<Self::Response, ActionError>> + Send;

    /// Documentation for `introspect`.
    fn description(&self) -> Option<&str> {
        None
    }

    /// The request schema `introspect` reports (a Conformity-style description or a JSON Schema).
    fn request_schema(&self) -> Option<Value> {
        None
    }

    /// The response schema `introspect` reports.
    fn response_schema(&self) -> Option<Value> {
        None
    }
}

/// What `introspect` says about an action.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct ActionDescription {
    /// The documentation.
    pub documentation: Option<String>,
    /// The request schema.
    pub request_schema: Option<Value>,
    /// The response schema.
    pub response_schema: Option<Value>,
}

/// An action on raw bodies: the form every action is stored in, and the escape hatch for actions that want the
/// body as a [`Map`].
pub trait RawAction: Send + Sync + 'static {
    /// Runs the action on a request body, resolving to the response body.
    fn call(&self, body: Map, ctx: ActionContext) -> BoxFuture<'_, Result<Map, ActionError>>;

    /// What `introspect` says about the action.
    fn describe(&self) -> ActionDescription {
        ActionDescription::default()
    }

    /// For actions that choose an implementation by switch: the `(label, action)` entries `introspect` lists
    /// (`name[switch:N]`, `name[DEFAULT]`); empty for ordinary actions.
    fn switched_entries(&self) -> Vec<(String, ActionDescription)> {
        Vec::new()
    }
}

/// Why an action failed: one or more wire errors, for the action (the usual case) or for the whole job.
///
/// Action errors are caller errors by default, as in PySOA; job errors are not.
///
/// ```
/// use rsoa_server::ActionError;
///
/// let err = ActionError::new("NOT_FOUND", "No such order").with_field("order_id");
/// assert_eq!(err.errors()[0].field.as_deref(), Some("order_id"));
/// assert!(err.errors()[0].is_caller_error);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ActionError {
    errors: Vec<Error>,
    aborts_job: bool,
}

impl ActionError {
    /// One caller error.
    pub fn new(code: impl Into<ErrorCode>, message: impl Into<String>) -> ActionError {
        ActionError {
            errors: vec![Error::new(code, message).caller_error(true)],
            aborts_job: false,
        }
    }

    /// Several errors, each marked a caller error (PySOA's default for `ActionError`).
    pub fn from_errors(errors: impl IntoIterator<Item = Error>) -> ActionError {
        ActionError {
            errors: errors.into_iter().map(|e| e.caller_error(true)).collect(),
            aborts_job: false,
        }
    }

    /// Several errors, keeping each one's `is_caller_error` as given.
    pub fn from_errors_as_given(errors: impl IntoIterator<Item = Error>) -> ActionError {
        ActionError {
            errors: errors.into_iter().collect(),
            aborts_job: false,
        }
    }

    /// An unexpected failure: a `SERVER_ERROR` that is not the caller's fault.
    pub fn server_error(message: impl fmt::Display) -> ActionError {
        ActionError {
            errors: vec![Error::new(
                ErrorCode::SERVER_ERROR,
                format!("Internal server error: {message}"),
            )],
            aborts_job: false,
        }
    }

    /// Errors that fail the whole job (PySOA's `JobError`): the job's response carries only these, and the
    /// responses of actions that already ran are discarded. Not caller errors.
    pub fn job(errors: impl IntoIterator<Item = Error>) -> ActionError {
        ActionError {
            errors: errors.into_iter().map(|e| e.caller_error(false)).collect(),
            aborts_job: true,
        }
    }

    /// Points the last error at a field of the request.
    #[must_use]
    pub fn with_field(mut self, field: impl Into<String>) -> ActionError {
        if let Some(last) = self.errors.last_mut() {
            last.field = Some(field.into());
        }
        self
    }

    /// Adds another caller error.
    #[must_use]
    pub fn and(mut self, code: impl Into<ErrorCode>, message: impl Into<String>) -> ActionError {
        self.errors
            .push(Error::new(code, message).caller_error(!self.aborts_job));
        self
    }

    /// The errors.
    pub fn errors(&self) -> &[Error] {
        &self.errors
    }

    /// Whether these errors fail the whole job.
    pub fn aborts_job(&self) -> bool {
        self.aborts_job
    }

    pub(crate) fn into_errors(self) -> Vec<Error> {
        self.errors
    }
}

impl fmt::Display for ActionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.errors.iter().map(ToString::to_string).collect();
        f.write_str(&parts.join("; "))
    }
}

impl std::error::Error for ActionError {}

impl From<ValueError> for ActionError {
    /// A body that does not fit: a caller error with PySOA's code and the field's pointer.
    fn from(err: ValueError) -> ActionError {
        ActionError {
            errors: vec![Error::from(err)],
            aborts_job: false,
        }
    }
}

impl From<CallError> for ActionError {
    /// A failed call to another service, propagated with `?`: a `SERVER_ERROR`, as PySOA reports the exception,
    /// with a traceback that says where the `?` was and what caused the failure (the error's sources). It is not
    /// a stack backtrace: capturing one would cost every failed call while a downstream service is down.
    #[track_caller]
    fn from(err: CallError) -> ActionError {
        let mut traceback = format!(
            "a call to another service failed at {}\nCallError: {err}",
            std::panic::Location::caller()
        );
        let mut source = std::error::Error::source(&err);
        while let Some(cause) = source {
            traceback.push_str(&format!("\ncaused by: {cause}"));
            source = cause.source();
        }
        let mut error = ActionError::server_error(err);
        if let Some(first) = error.errors.first_mut() {
            first.traceback = Some(traceback);
        }
        error
    }
}

/// What an action knows about the request it serves, and a client to call other services with.
///
/// Cloning is cheap (the job's data is shared).
#[derive(Clone)]
pub struct ActionContext {
    pub(crate) job: Arc<JobState>,
    pub(crate) action: Arc<str>,
}

pub(crate) struct JobState {
    pub(crate) server: Arc<ServerInner>,
    pub(crate) request_id: Value,
    pub(crate) meta: Arc<Map>,
    pub(crate) context: Context,
    pub(crate) control: Control,
    pub(crate) switches: SwitchSet,
    pub(crate) client: OnceLock<Client>,
    /// Set when an action asks to fail the whole job.
    pub(crate) abort: Mutex<Option<Vec<Error>>>,
}

impl fmt::Debug for ActionContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActionContext")
            .field("service", &self.job.server.name)
            .field("action", &self.action)
            .field("correlation_id", &self.job.context.correlation_id)
            .field("switches", &self.job.switches)
            .finish_non_exhaustive()
    }
}

impl ActionContext {
    /// The name of the action being run.
    pub fn action_name(&self) -> &str {
        &self.action
    }

    /// The name of this service.
    pub fn service_name(&self) -> &str {
        &self.job.server.name
    }

    /// The request's context: correlation id, switches, caller, calling service, custom keys.
    pub fn context(&self) -> &Context {
        &self.job.context
    }

    /// The request's control header.
    pub fn control(&self) -> &Control {
        &self.job.control
    }

    /// The active switches.
    pub fn switches(&self) -> &SwitchSet {
        &self.job.switches
    }

    /// The current time from the server's [`Clock`](crate::clock::Clock): the system's, unless a test froze it.
    /// Read time here rather than from the system, and tests can pin it (PySOA test plans' `freeze time`).
    pub fn now(&self) -> rsoa_protocol::UtcDateTime {
        self.job.server.clock.now()
    }

    /// The envelope's request id, as the client sent it.
    pub fn request_id(&self) -> &Value {
        &self.job.request_id
    }

    /// The envelope's meta.
    pub fn meta(&self) -> &Map {
        &self.job.meta
    }

    /// A client whose calls carry this request's correlation id, switches and custom context keys, with
    /// `calling_service` set to this service: PySOA's context chaining.
    pub fn client(&self) -> &Client {
        self.job.client.get_or_init(|| {
            let mut context = self.job.context.clone();
            context.calling_service = Some(self.job.server.name.to_string());
            self.job.server.client.with_context(&context)
        })
    }

    /// Runs another action of this service within the same job (PySOA's `call_local_action`): with this
    /// request's context, control, switches and client, directly, without the action middleware. The action's
    /// errors come back as an [`ActionError`], so `?` passes them on to this action's caller (PySOA's
    /// `raise_action_errors=True`); an action that does not exist is `UNKNOWN`.
    ///
    /// ```
    /// use rsoa_server::{ActionContext, ActionError, Server};
    ///
    /// #[derive(serde::Deserialize)]
    /// struct Number { number: i64 }
    /// #[derive(serde::Serialize)]
    /// struct Squared { square: i64 }
    ///
    /// let server = Server::builder("example")
    ///     .action_fn("square", |req: Number, _ctx: ActionContext| async move {
    ///         Ok::<_, ActionError>(Squared { square: req.number * req.number })
    ///     })
    ///     .action_fn("fourth_power", |req: Number, ctx: ActionContext| async move {
    ///         let square = ctx.call_local_action("square", &serde_json::json!({"number": req.number})).await?;
    ///         let square = square.get("square").and_then(|v| v.as_i64()).unwrap_or_default();
    ///         Ok::<_, ActionError>(Squared { square: square * square })
    ///     })
    ///     .build()
    ///     .unwrap();
    /// # drop(server);
    /// ```
    pub async fn call_local_action(
        &self,
        action: &str,
        body: impl IntoBody,
    ) -> Result<Map, ActionError> {
        let body = body.into_body().map_err(|e| {
            ActionError::server_error(format_args!("the body for local action {action:?}: {e}"))
        })?;
        let ctx = ActionContext {
            job: self.job.clone(),
            action: Arc::from(action),
        };
        let server = self.job.server.clone();
        match server.dispatch(action, body, ctx).await {
            Some(Ok(result)) => result,
            Some(Err(panicked)) => Err(ActionError::from_errors([panic_error(panicked)])),
            None => Err(ActionError::from_errors([Error::unknown_action(action)])),
        }
    }
}

/// Adapts a typed [`Action`] into a [`RawAction`]; its request schema, if it has one, is read once and checks
/// every request body before serde sees it.
pub(crate) struct Typed<A> {
    action: A,
    request_schema: Option<Value>,
    checker: Option<Schema>,
    /// PySOA checks a response against the action's response schema too: a mismatch is the server's bug.
    response_checker: Option<Schema>,
}

impl<A: Action> Typed<A> {
    pub(crate) fn new(action: A) -> Typed<A> {
        let request_schema = action.request_schema();
        Typed {
            checker: request_schema.as_ref().map(Schema::new),
            response_checker: action.response_schema().as_ref().map(Schema::new),
            action,
            request_schema,
        }
    }
}

/// PySOA's `ResponseValidationError`, which becomes a `SERVER_ERROR` with its text.
fn invalid_response(action: &str, errors: &[Error]) -> ActionError {
    let lines: Vec<String> = errors
        .iter()
        .map(|e| {
            let pointer = e.field.as_deref().unwrap_or("None");
            format!("{pointer} {}: {}", e.code, e.message)
        })
        .collect();
    ActionError::server_error(format!(
        "{action} had an invalid response:\n\t{}",
        lines.join("\n\t")
    ))
}

/// Conformity's check of a request body against an action's schema: every error at once, before serde.
fn checked(schema: Option<&Schema>, body: Map) -> Result<Value, ActionError> {
    let body = Value::Map(body);
    if let Some(schema) = schema {
        let errors = schema.check(&body);
        if !errors.is_empty() {
            return Err(ActionError::from_errors(errors));
        }
    }
    Ok(body)
}

/// The non-generic half of response handling: a response body must be a map (or nothing).
fn response_body(value: Result<Value, ValueError>) -> Result<Map, ActionError> {
    match value {
        Ok(Value::Map(map)) => Ok(map),
        Ok(Value::Null) => Ok(Map::new()),
        Ok(other) => Err(ActionError::server_error(format!(
            "the action's response must be a map, not a {}",
            other.kind()
        ))),
        Err(err) => Err(ActionError::server_error(format!(
            "the action's response could not be serialized: {err}"
        ))),
    }
}

impl<A: Action> RawAction for Typed<A> {
    fn call(&self, body: Map, ctx: ActionContext) -> BoxFuture<'_, Result<Map, ActionError>> {
        Box::pin(async move {
            let body = checked(self.checker.as_ref(), body)?;
            let request: A::Request = rsoa_protocol::from_value(body)?;
            self.action.validate(&request, &ctx)?;
            let name = ctx.action.clone();
            let response = rsoa_protocol::to_value(&self.action.run(request, ctx).await?);
            if let (Some(schema), Ok(body)) = (&self.response_checker, &response) {
                // An empty response (`()`) is the empty map PySOA checks.
                let errors = match body {
                    Value::Null => schema.check(&Value::Map(Map::new())),
                    body => schema.check(body),
                };
                if !errors.is_empty() {
                    return Err(invalid_response(&name, &errors));
                }
            }
            response_body(response)
        })
    }

    fn describe(&self) -> ActionDescription {
        ActionDescription {
            documentation: self.action.description().map(str::to_owned),
            request_schema: self.request_schema.clone(),
            response_schema: self.action.response_schema(),
        }
    }
}

/// An action from an async closure taking a typed request; see [`ServerBuilder::action_fn`](crate::ServerBuilder::action_fn)
/// and [`ServerBuilder::validated_fn`](crate::ServerBuilder::validated_fn).
pub(crate) struct FnAction<F, Req, Resp> {
    f: F,
    description: ActionDescription,
    checker: Option<Schema>,
    _types: PhantomData<fn(Req) -> Resp>,
}

impl<F, Req, Resp> FnAction<F, Req, Resp> {
    pub(crate) fn new(f: F) -> Self {
        FnAction {
            f,
            description: ActionDescription::default(),
            checker: None,
            _types: PhantomData,
        }
    }

    /// Checked and described by the Conformity schema of its request type, whose doc comment documents the
    /// action.
    pub(crate) fn validated(f: F) -> Self
    where
        Req: schemars::JsonSchema,
    {
        let mut request = crate::conformity::describe::<Req>();
        let documentation = request
            .as_map_mut()
            .and_then(|schema| schema.remove("description"))
            .and_then(|d| d.as_str().map(str::to_owned));
        FnAction {
            f,
            checker: Some(Schema::new(&request)),
            description: ActionDescription {
                documentation,
                request_schema: Some(request),
                response_schema: None,
            },
            _types: PhantomData,
        }
    }
}

impl<F, Fut, Req, Resp> RawAction for FnAction<F, Req, Resp>
where
    F: Fn(Req, ActionContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Resp, ActionError>> + Send + 'static,
    Req: DeserializeOwned + Send + 'static,
    Resp: Serialize + 'static,
{
    fn call(&self, body: Map, ctx: ActionContext) -> BoxFuture<'_, Result<Map, ActionError>> {
        let request = checked(self.checker.as_ref(), body)
            .and_then(|body| Ok(rsoa_protocol::from_value::<Req>(body)?));
        let future = request.map(|request| (self.f)(request, ctx));
        Box::pin(async move {
            let response = future?.await?;
            response_body(rsoa_protocol::to_value(&response))
        })
    }

    fn describe(&self) -> ActionDescription {
        self.description.clone()
    }
}
