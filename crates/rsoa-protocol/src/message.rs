//! The records PySOA exchanges: job and action requests and responses, wire errors, context and control.
//!
//! Each record converts to a [`Value`] with PySOA's key order, and from a [`Value`] the way the receiving side of
//! PySOA reads it: a server validates a job request strictly (with PySOA's error codes, messages and pointers), a
//! client reads responses leniently (absent lists are empty, keys it does not know are ignored).

use std::borrow::Cow;
use std::fmt;

use crate::{Int, Map, Value, ValueError};

/// A machine-readable error code, such as `INVALID` or a service's own `OUT_OF_STOCK`.
///
/// ```
/// use rsoa_protocol::ErrorCode;
///
/// assert_eq!(ErrorCode::SERVER_ERROR.as_str(), "SERVER_ERROR");
/// assert_eq!(ErrorCode::new("OUT_OF_STOCK"), "OUT_OF_STOCK");
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ErrorCode(Cow<'static, str>);

impl ErrorCode {
    /// A value has the wrong type or fails a constraint.
    pub const INVALID: ErrorCode = ErrorCode::from_static("INVALID");
    /// A required key is absent.
    pub const MISSING: ErrorCode = ErrorCode::from_static("MISSING");
    /// Keys are present that are not allowed, or the action does not exist.
    pub const UNKNOWN: ErrorCode = ErrorCode::from_static("UNKNOWN");
    /// The server failed unexpectedly.
    pub const SERVER_ERROR: ErrorCode = ErrorCode::from_static("SERVER_ERROR");
    /// An action ran longer than the server allows.
    pub const ACTION_TIMEOUT: ErrorCode = ErrorCode::from_static("ACTION_TIMEOUT");
    /// A job (outside any action) ran longer than the server allows.
    pub const JOB_TIMEOUT: ErrorCode = ErrorCode::from_static("JOB_TIMEOUT");
    /// The response was larger than the transport may send.
    pub const RESPONSE_TOO_LARGE: ErrorCode = ErrorCode::from_static("RESPONSE_TOO_LARGE");
    /// The request was larger than the server reads (rsoa's: PySOA reads any).
    pub const REQUEST_TOO_LARGE: ErrorCode = ErrorCode::from_static("REQUEST_TOO_LARGE");
    /// The response could not be serialized.
    pub const RESPONSE_NOT_SERIALIZABLE: ErrorCode =
        ErrorCode::from_static("RESPONSE_NOT_SERIALIZABLE");
    /// For services: the caller may not do this.
    pub const ACCESS_DENIED: ErrorCode = ErrorCode::from_static("ACCESS_DENIED");
    /// For services: the caller is not authenticated.
    pub const NOT_AUTHORIZED: ErrorCode = ErrorCode::from_static("NOT_AUTHORIZED");
    /// For services: the object does not exist.
    pub const NOT_FOUND: ErrorCode = ErrorCode::from_static("NOT_FOUND");

    /// A code from a static string.
    pub const fn from_static(code: &'static str) -> ErrorCode {
        ErrorCode(Cow::Borrowed(code))
    }

    /// A code from any string.
    pub fn new(code: impl Into<String>) -> ErrorCode {
        ErrorCode(Cow::Owned(code.into()))
    }

    /// The code's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl From<&'static str> for ErrorCode {
    fn from(code: &'static str) -> ErrorCode {
        ErrorCode::from_static(code)
    }
}

impl From<String> for ErrorCode {
    fn from(code: String) -> ErrorCode {
        ErrorCode::new(code)
    }
}

/// An error as it travels in a job or action response.
///
/// ```
/// use rsoa_protocol::{Error, ErrorCode};
///
/// let err = Error::new("OUT_OF_STOCK", "No more widgets").with_field("items.0.sku").caller_error(true);
/// assert_eq!(err.code, ErrorCode::new("OUT_OF_STOCK"));
/// assert_eq!(err.field.as_deref(), Some("items.0.sku"));
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Error {
    /// The machine-readable code.
    pub code: ErrorCode,
    /// The human-readable message.
    pub message: String,
    /// A pointer into the request (`items.0.sku`) when one field is at fault.
    pub field: Option<String>,
    /// A stack trace, for unexpected server errors.
    pub traceback: Option<String>,
    /// Extra data about the error.
    pub variables: Option<Map>,
    /// The permissions the caller lacked.
    pub denied_permissions: Option<Vec<String>>,
    /// Whether the caller is at fault (and retrying the same request will fail again).
    pub is_caller_error: bool,
}

impl Error {
    /// An error with a code and a message; every other field empty.
    pub fn new(code: impl Into<ErrorCode>, message: impl Into<String>) -> Error {
        Error {
            code: code.into(),
            message: message.into(),
            field: None,
            traceback: None,
            variables: None,
            denied_permissions: None,
            is_caller_error: false,
        }
    }

    /// PySOA's error for an action a service does not have: `UNKNOWN`, on field `action`, the caller's fault.
    pub fn unknown_action(action: &str) -> Error {
        Error::new(
            ErrorCode::UNKNOWN,
            format!("The action \"{action}\" was not found on this server."),
        )
        .with_field("action")
        .caller_error(true)
    }

    /// The same error pointing at a field.
    #[must_use]
    pub fn with_field(mut self, field: impl Into<String>) -> Error {
        self.field = Some(field.into());
        self
    }

    /// The same error with a traceback.
    #[must_use]
    pub fn with_traceback(mut self, traceback: impl Into<String>) -> Error {
        self.traceback = Some(traceback.into());
        self
    }

    /// The same error with variables.
    #[must_use]
    pub fn with_variables(mut self, variables: Map) -> Error {
        self.variables = Some(variables);
        self
    }

    /// The same error with denied permissions.
    #[must_use]
    pub fn with_denied_permissions<S: Into<String>>(
        mut self,
        permissions: impl IntoIterator<Item = S>,
    ) -> Error {
        self.denied_permissions = Some(permissions.into_iter().map(Into::into).collect());
        self
    }

    /// The same error with `is_caller_error` set.
    #[must_use]
    pub fn caller_error(mut self, is_caller_error: bool) -> Error {
        self.is_caller_error = is_caller_error;
        self
    }

    /// The wire form: all seven keys in PySOA's order, nulls included. `is_caller_error` is left out for clients
    /// older than PySOA 0.70, exactly as a Python server does.
    pub fn to_value(&self, with_is_caller_error: bool) -> Value {
        let mut map = Map::with_capacity(7);
        map.push("code", self.code.as_str());
        map.push("message", self.message.as_str());
        map.push("field", self.field.clone());
        map.push("traceback", self.traceback.clone());
        map.push("variables", self.variables.clone().map(Value::Map));
        map.push(
            "denied_permissions",
            self.denied_permissions
                .as_ref()
                .map(|p| Value::Array(p.iter().map(|s| Value::from(s.as_str())).collect())),
        );
        if with_is_caller_error {
            map.push("is_caller_error", self.is_caller_error);
        }
        Value::Map(map)
    }

    /// Reads a wire error; `code` and `message` are required, everything else may be absent or null.
    pub fn from_value(value: &Value) -> Result<Error, ValueError> {
        let map = expect_map(value, "")?;
        let code = required_str(map, "code", "")?;
        let message = required_str(map, "message", "")?;
        let mut err = Error::new(ErrorCode::new(code), message);
        err.field = optional_str(map, "field", "")?;
        err.traceback = optional_str(map, "traceback", "")?;
        err.variables = match map.get("variables") {
            None | Some(Value::Null) => None,
            Some(Value::Map(m)) => Some(m.clone()),
            Some(other) => return Err(not_a("dict", other).with_field("variables")),
        };
        err.denied_permissions = match map.get("denied_permissions") {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) => Some(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        v.as_str().map(str::to_owned).ok_or_else(|| {
                            not_a("unicode string", v).with_field(format!("denied_permissions.{i}"))
                        })
                    })
                    .collect::<Result<_, _>>()?,
            ),
            Some(other) => return Err(not_a("list", other).with_field("denied_permissions")),
        };
        err.is_caller_error = match map.get("is_caller_error") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => return Err(not_a("boolean", other).with_field("is_caller_error")),
        };
        Ok(err)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)?;
        if let Some(field) = &self.field {
            write!(f, " (field {field})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

impl From<ValueError> for Error {
    /// A conversion error becomes a caller error with its code, message and field.
    fn from(err: ValueError) -> Error {
        let mut wire = Error::new(err.code(), err.message()).caller_error(true);
        wire.field = err.field().map(str::to_owned);
        wire
    }
}

/// One action to run: its name and its request body.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct ActionRequest {
    /// The action's name.
    pub action: String,
    /// The request body.
    pub body: Map,
}

impl ActionRequest {
    /// An action request.
    pub fn new(action: impl Into<String>, body: Map) -> ActionRequest {
        ActionRequest {
            action: action.into(),
            body,
        }
    }

    /// The wire form `{action, body}`.
    pub fn to_value(&self) -> Value {
        self.clone().into_value()
    }

    /// Like [`ActionRequest::to_value`], moving the body instead of copying it.
    pub fn into_value(self) -> Value {
        let mut map = Map::with_capacity(2);
        map.push("action", self.action);
        map.push("body", self.body);
        Value::Map(map)
    }
}

/// The `control` header of a job: how the server should run it.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Control {
    /// Keep running later actions after one fails.
    pub continue_on_error: bool,
    /// Run the job but send no response.
    pub suppress_response: bool,
    /// The caller's timeout in seconds (informational; servers ignore it).
    pub timeout: Option<u64>,
    /// Any other keys, in order.
    pub extra: Map,
}

impl Control {
    /// The wire form, in the Python client's key order.
    pub fn to_value(&self) -> Value {
        let mut map = Map::with_capacity(2 + self.extra.len());
        map.push("continue_on_error", self.continue_on_error);
        map.push("suppress_response", self.suppress_response);
        if let Some(timeout) = self.timeout {
            map.push("timeout", timeout);
        }
        for (k, v) in self.extra.iter() {
            map.insert(k.clone(), v.clone());
        }
        Value::Map(map)
    }
}

/// The `context` header of a job: who is calling and why, carried into every downstream call.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Context {
    /// The id that ties together every call made for one original request.
    pub correlation_id: String,
    /// The active switches (integer feature flags), as on the wire: any integer MessagePack carries, as PySOA
    /// accepts any integer.
    pub switches: Vec<Int>,
    /// Who made the call, if the application says.
    pub caller: Option<String>,
    /// The service that made the call, when a server's action calls another service.
    pub calling_service: Option<String>,
    /// Any other keys (auth tokens, locale, …), in order.
    pub extra: Map,
}

impl Context {
    /// The wire form, in the Python client's key order.
    pub fn to_value(&self) -> Value {
        let mut map = Map::with_capacity(4 + self.extra.len());
        map.push("correlation_id", self.correlation_id.as_str());
        map.push(
            "switches",
            Value::Array(self.switches.iter().map(|&s| Value::Int(s)).collect()),
        );
        if let Some(caller) = &self.caller {
            map.push("caller", caller.as_str());
        }
        if let Some(calling_service) = &self.calling_service {
            map.push("calling_service", calling_service.as_str());
        }
        for (k, v) in self.extra.iter() {
            map.insert(k.clone(), v.clone());
        }
        Value::Map(map)
    }
}

/// A job: actions to run in order on one server, with its control and context headers.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct JobRequest {
    /// How to run the job.
    pub control: Control,
    /// Who is calling.
    pub context: Context,
    /// The actions, at least one.
    pub actions: Vec<ActionRequest>,
}

impl JobRequest {
    /// A job of these actions with default control and context.
    pub fn new(actions: Vec<ActionRequest>) -> JobRequest {
        JobRequest {
            actions,
            ..JobRequest::default()
        }
    }

    /// The wire form `{control, context, actions}`.
    pub fn to_value(&self) -> Value {
        self.clone().into_value()
    }

    /// Like [`JobRequest::to_value`], moving the action bodies instead of copying them.
    pub fn into_value(self) -> Value {
        let mut map = Map::with_capacity(3);
        map.push("control", self.control.to_value());
        map.push("context", self.context.to_value());
        map.push(
            "actions",
            Value::Array(
                self.actions
                    .into_iter()
                    .map(ActionRequest::into_value)
                    .collect(),
            ),
        );
        Value::Map(map)
    }

    /// Validates a job request the way a PySOA server does, returning every problem as a job-level error with
    /// PySOA's code, message and pointer, in PySOA's order.
    ///
    /// ```
    /// use rsoa_protocol::{JobRequest, Map, Value};
    ///
    /// let job: Value = [("control", Value::Map(Map::new())), ("context", Value::Map(Map::new()))]
    ///     .into_iter()
    ///     .collect();
    /// let errors = JobRequest::validate(job).unwrap_err();
    /// let fields: Vec<_> = errors.iter().map(|e| e.field.as_deref().unwrap_or("")).collect();
    /// assert_eq!(fields, ["control.continue_on_error", "context.correlation_id", "context.switches", "actions"]);
    /// ```
    pub fn validate(value: Value) -> Result<JobRequest, Vec<Error>> {
        JobValidator::default().job(value)
    }
}

/// Collects job validation errors the way Conformity reports them for PySOA's job schema.
#[derive(Default)]
struct JobValidator {
    errors: Vec<Error>,
}

impl JobValidator {
    fn fail(&mut self, err: ValueError) {
        let mut wire = Error::new(err.code(), err.message());
        wire.field = err.field().map(str::to_owned);
        self.errors.push(wire);
    }

    fn job(mut self, value: Value) -> Result<JobRequest, Vec<Error>> {
        let Value::Map(mut map) = value else {
            self.fail(not_a("dict", &value));
            return Err(self.errors);
        };
        let extra = extra_keys(&map, &["control", "context", "actions"]);
        let mut job = JobRequest::default();
        match map.get("control") {
            None => self.fail(ValueError::missing("control").with_field("control")),
            Some(v) => {
                if let Some(control) = self.control(v) {
                    job.control = control;
                }
            }
        }
        match map.get("context") {
            None => self.fail(ValueError::missing("context").with_field("context")),
            Some(v) => {
                if let Some(context) = self.context(v) {
                    job.context = context;
                }
            }
        }
        match map.get_mut("actions") {
            None => self.fail(ValueError::missing("actions").with_field("actions")),
            Some(Value::Array(items)) if items.is_empty() => {
                self.fail(ValueError::invalid("List is shorter than 1").with_field("actions"));
            }
            Some(Value::Array(items)) => {
                for (i, item) in items.iter_mut().enumerate() {
                    if let Some(action) = self.action(i, item) {
                        job.actions.push(action);
                    }
                }
            }
            Some(other) => {
                let error = not_a("list", other).with_field("actions");
                self.fail(error);
            }
        }
        if !extra.is_empty() {
            self.fail(ValueError::unknown(&extra));
        }
        if self.errors.is_empty() {
            Ok(job)
        } else {
            Err(self.errors)
        }
    }

    fn control(&mut self, value: &Value) -> Option<Control> {
        let Value::Map(map) = value else {
            self.fail(not_a("dict", value).with_field("control"));
            return None;
        };
        let before = self.errors.len();
        let mut control = Control::default();
        match map.get("continue_on_error") {
            None => self.fail(
                ValueError::missing("continue_on_error").with_field("control.continue_on_error"),
            ),
            Some(Value::Bool(b)) => control.continue_on_error = *b,
            Some(other) => {
                self.fail(not_a("boolean", other).with_field("control.continue_on_error"))
            }
        }
        match map.get("suppress_response") {
            None => {}
            Some(Value::Bool(b)) => control.suppress_response = *b,
            Some(other) => {
                self.fail(not_a("boolean", other).with_field("control.suppress_response"))
            }
        }
        for (k, v) in map.iter() {
            match k.as_str() {
                Some("continue_on_error" | "suppress_response") => {}
                // The timeout is informational; a malformed one is kept among the extras rather than refused.
                Some("timeout") if v.as_u64().is_some() => control.timeout = v.as_u64(),
                _ => control.extra.push(k.clone(), v.clone()),
            }
        }
        (self.errors.len() == before).then_some(control)
    }

    fn context(&mut self, value: &Value) -> Option<Context> {
        let Value::Map(map) = value else {
            self.fail(not_a("dict", value).with_field("context"));
            return None;
        };
        let before = self.errors.len();
        let mut context = Context::default();
        for key in ["caller", "calling_service"] {
            match map.get(key) {
                None => {}
                Some(Value::String(s)) => {
                    let slot = if key == "caller" {
                        &mut context.caller
                    } else {
                        &mut context.calling_service
                    };
                    *slot = Some(s.as_str().to_owned());
                }
                Some(other) => {
                    self.fail(not_a("unicode string", other).with_field(format!("context.{key}")))
                }
            }
        }
        match map.get("correlation_id") {
            None => self
                .fail(ValueError::missing("correlation_id").with_field("context.correlation_id")),
            Some(Value::String(s)) => context.correlation_id = s.as_str().to_owned(),
            Some(other) => {
                self.fail(not_a("unicode string", other).with_field("context.correlation_id"))
            }
        }
        match map.get("switches") {
            None => self.fail(ValueError::missing("switches").with_field("context.switches")),
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Value::Int(n) => context.switches.push(*n),
                        _ => self.fail(
                            not_a("integer", item).with_field(format!("context.switches.{i}")),
                        ),
                    }
                }
            }
            Some(other) => self.fail(not_a("list", other).with_field("context.switches")),
        }
        for (k, v) in map.iter() {
            match k.as_str() {
                Some("caller" | "calling_service" | "correlation_id" | "switches") => {}
                _ => context.extra.push(k.clone(), v.clone()),
            }
        }
        (self.errors.len() == before).then_some(context)
    }

    /// Reads one action, moving its body out of `value` rather than copying it.
    fn action(&mut self, index: usize, value: &mut Value) -> Option<ActionRequest> {
        let pointer = format!("actions.{index}");
        let Value::Map(map) = value else {
            self.fail(not_a("dict", value).with_field(pointer));
            return None;
        };
        let before = self.errors.len();
        let mut action = ActionRequest::default();
        match map.get("action") {
            None => {
                self.fail(ValueError::missing("action").with_field(format!("{pointer}.action")))
            }
            Some(Value::String(s)) => action.action = s.as_str().to_owned(),
            Some(other) => {
                self.fail(not_a("unicode string", other).with_field(format!("{pointer}.action")))
            }
        }
        match map.get_mut("body") {
            None => {}
            Some(Value::Map(body)) => {
                for k in body.keys() {
                    if k.as_str().is_none() {
                        let key = crate::Value::clone(k);
                        self.fail(
                            not_a("unicode string", &key)
                                .with_field(format!("{pointer}.body.{}", key_text(&key))),
                        );
                    }
                }
                action.body = std::mem::take(body);
            }
            Some(other) => {
                let error = not_a("dict", other).with_field(format!("{pointer}.body"));
                self.fail(error);
            }
        }
        let extra = extra_keys(map, &["action", "body"]);
        if !extra.is_empty() {
            self.fail(ValueError::unknown(&extra).with_field(pointer));
        }
        (self.errors.len() == before).then_some(action)
    }
}

/// How a map key reads in a pointer.
fn key_text(key: &Value) -> String {
    match key {
        Value::String(s) => s.as_str().to_owned(),
        Value::Int(i) => i.to_string(),
        Value::Bool(b) => if *b { "True" } else { "False" }.to_owned(),
        Value::Null => "None".to_owned(),
        other => other.kind().to_owned(),
    }
}

fn extra_keys(map: &Map, allowed: &[&str]) -> Vec<String> {
    let mut extra: Vec<String> = map
        .keys()
        .filter(|k| !k.as_str().is_some_and(|k| allowed.contains(&k)))
        .map(key_text)
        .collect();
    extra.dedup();
    extra
}

/// Conformity's `Not a <type>` error.
fn not_a(what: &str, _found: &Value) -> ValueError {
    // Conformity's wording: "Not an integer", but "Not a unicode string".
    let article = if what.starts_with(['a', 'e', 'i', 'o']) {
        "an"
    } else {
        "a"
    };
    ValueError::invalid(format!("Not {article} {what}"))
}

fn expect_map<'a>(value: &'a Value, field: &str) -> Result<&'a Map, ValueError> {
    value
        .as_map()
        .ok_or_else(|| not_a("dict", value).with_field(field))
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

fn required_str(map: &Map, key: &str, prefix: &str) -> Result<String, ValueError> {
    match map.get(key) {
        Some(Value::String(s)) => Ok(s.as_str().to_owned()),
        Some(other) => Err(not_a("unicode string", other).with_field(join(prefix, key))),
        None => Err(ValueError::missing(key).with_field(join(prefix, key))),
    }
}

fn optional_str(map: &Map, key: &str, prefix: &str) -> Result<Option<String>, ValueError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str().to_owned())),
        Some(other) => Err(not_a("unicode string", other).with_field(join(prefix, key))),
    }
}

fn errors_from(map: &Map, prefix: &str) -> Result<Vec<Error>, ValueError> {
    match map.get("errors") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                Error::from_value(v).map_err(|e| {
                    let inner = e.field().map(str::to_owned);
                    let at = join(&join(prefix, "errors"), &i.to_string());
                    e.with_field(match inner {
                        Some(inner) => join(&at, &inner),
                        None => at,
                    })
                })
            })
            .collect(),
        Some(other) => Err(not_a("list", other).with_field(join(prefix, "errors"))),
    }
}

/// What one action returned: its errors, or its response body.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct ActionResponse {
    /// The action's name.
    pub action: String,
    /// The errors; empty when the action succeeded.
    pub errors: Vec<Error>,
    /// The response body; empty when the action failed.
    pub body: Map,
}

impl ActionResponse {
    /// A successful response.
    pub fn new(action: impl Into<String>, body: Map) -> ActionResponse {
        ActionResponse {
            action: action.into(),
            errors: Vec::new(),
            body,
        }
    }

    /// A failed response.
    pub fn with_errors(action: impl Into<String>, errors: Vec<Error>) -> ActionResponse {
        ActionResponse {
            action: action.into(),
            errors,
            body: Map::new(),
        }
    }

    /// The body converted into a typed response; a failure names the field.
    ///
    /// ```
    /// use rsoa_protocol::ActionResponse;
    ///
    /// #[derive(serde::Deserialize)]
    /// struct Square { square: i64 }
    ///
    /// let response = ActionResponse::new("square", [("square", 49)].into_iter().collect());
    /// assert_eq!(response.body_as::<Square>().unwrap().square, 49);
    /// ```
    pub fn body_as<T: serde::de::DeserializeOwned>(&self) -> Result<T, ValueError> {
        crate::from_value(Value::Map(self.body.clone()))
    }

    /// Like [`ActionResponse::body_as`], consuming the response to avoid a copy.
    pub fn into_body_as<T: serde::de::DeserializeOwned>(self) -> Result<T, ValueError> {
        crate::from_value(Value::Map(self.body))
    }

    /// The wire form `{action, errors, body}`.
    pub fn to_value(&self, with_is_caller_error: bool) -> Value {
        self.clone().into_value(with_is_caller_error)
    }

    /// Like [`ActionResponse::to_value`], moving the body instead of copying it.
    pub fn into_value(self, with_is_caller_error: bool) -> Value {
        let mut map = Map::with_capacity(3);
        map.push("action", self.action);
        map.push(
            "errors",
            Value::Array(
                self.errors
                    .iter()
                    .map(|e| e.to_value(with_is_caller_error))
                    .collect(),
            ),
        );
        map.push("body", self.body);
        Value::Map(map)
    }

    /// Reads an action response the way a client should: `action` is required, absent lists and bodies are empty.
    pub fn from_value(value: &Value) -> Result<ActionResponse, ValueError> {
        let map = expect_map(value, "")?;
        Ok(ActionResponse {
            action: required_str(map, "action", "")?,
            errors: errors_from(map, "")?,
            body: match map.get("body") {
                None | Some(Value::Null) => Map::new(),
                Some(Value::Map(m)) => m.clone(),
                Some(other) => return Err(not_a("dict", other).with_field("body")),
            },
        })
    }
}

/// What a job returned: job-level errors, the response context, and one response per action that ran.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct JobResponse {
    /// Errors that stopped the whole job (validation, middleware failures, oversized responses).
    pub errors: Vec<Error>,
    /// The response context (normally just the correlation id).
    pub context: Map,
    /// The actions' responses, in order; shorter than the request when the job stopped on an error.
    pub actions: Vec<ActionResponse>,
}

impl JobResponse {
    /// A response made only of job-level errors, as PySOA sends for a job that could not run.
    pub fn from_errors(errors: Vec<Error>) -> JobResponse {
        JobResponse {
            errors,
            ..JobResponse::default()
        }
    }

    /// The wire form `{errors, context, actions}`.
    pub fn to_value(&self, with_is_caller_error: bool) -> Value {
        self.clone().into_value(with_is_caller_error)
    }

    /// Like [`JobResponse::to_value`], moving the action bodies instead of copying them.
    pub fn into_value(self, with_is_caller_error: bool) -> Value {
        let mut map = Map::with_capacity(3);
        map.push(
            "errors",
            Value::Array(
                self.errors
                    .iter()
                    .map(|e| e.to_value(with_is_caller_error))
                    .collect(),
            ),
        );
        map.push("context", self.context);
        map.push(
            "actions",
            Value::Array(
                self.actions
                    .into_iter()
                    .map(|a| a.into_value(with_is_caller_error))
                    .collect(),
            ),
        );
        Value::Map(map)
    }

    /// Like [`JobResponse::from_value`], moving the context and the action bodies out of `value` instead of
    /// copying them.
    pub fn from_owned_value(mut value: Value) -> Result<JobResponse, ValueError> {
        let mut bodies = Vec::new();
        let mut context = None;
        if let Some(map) = value.as_map_mut() {
            if let Some(Value::Array(actions)) = map.get_mut("actions") {
                bodies = actions
                    .iter_mut()
                    .map(|action| match action.as_map_mut()?.get_mut("body")? {
                        Value::Map(body) => Some(std::mem::take(body)),
                        _ => None,
                    })
                    .collect();
            }
            if let Some(Value::Map(taken)) = map.get_mut("context") {
                context = Some(std::mem::take(taken));
            }
        }
        let mut job = JobResponse::from_value(&value)?;
        for (action, body) in job.actions.iter_mut().zip(bodies) {
            if let Some(body) = body {
                action.body = body;
            }
        }
        if let Some(context) = context {
            job.context = context;
        }
        Ok(job)
    }

    /// Reads a job response the way a client should: absent or null lists are empty, unknown keys are ignored.
    pub fn from_value(value: &Value) -> Result<JobResponse, ValueError> {
        let map = expect_map(value, "")?;
        let actions = match map.get("actions") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    ActionResponse::from_value(v).map_err(|e| {
                        let at = format!("actions.{i}");
                        let field = e.field().map_or(at.clone(), |inner| join(&at, inner));
                        e.with_field(field)
                    })
                })
                .collect::<Result<_, _>>()?,
            Some(other) => return Err(not_a("list", other).with_field("actions")),
        };
        Ok(JobResponse {
            errors: errors_from(map, "")?,
            context: match map.get("context") {
                None | Some(Value::Null) => Map::new(),
                Some(Value::Map(m)) => m.clone(),
                Some(other) => return Err(not_a("dict", other).with_field("context")),
            },
            actions,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: Vec<(&str, Value)>) -> Value {
        entries.into_iter().collect()
    }

    #[test]
    fn moving_conversions_match_the_copying_ones() {
        let body: Map = [("data", Value::from("x".repeat(64))), ("n", Value::from(7))]
            .into_iter()
            .collect();
        let mut failed = ActionResponse::new("second", Map::new());
        failed
            .errors
            .push(Error::new(ErrorCode::INVALID, "bad").with_field("n"));
        let mut response = JobResponse::default();
        response.context.push("correlation_id", "abc");
        response.actions = vec![ActionResponse::new("first", body.clone()), failed];
        for flag in [false, true] {
            let wire = response.to_value(flag);
            assert_eq!(response.clone().into_value(flag), wire);
            assert_eq!(
                JobResponse::from_owned_value(wire.clone()).unwrap(),
                JobResponse::from_value(&wire).unwrap()
            );
        }
        // A body that is not a map is reported the same way by both.
        let mut bad = response.to_value(false);
        bad.as_map_mut()
            .unwrap()
            .get_mut("actions")
            .unwrap()
            .as_array_mut()
            .unwrap()[1]
            .as_map_mut()
            .unwrap()
            .insert("body", 3);
        assert_eq!(
            JobResponse::from_owned_value(bad.clone())
                .unwrap_err()
                .field(),
            JobResponse::from_value(&bad).unwrap_err().field()
        );
        let mut job = JobRequest::new(vec![ActionRequest::new("first", body)]);
        job.context.correlation_id = "abc".to_owned();
        let wire = job.to_value();
        assert_eq!(job.clone().into_value(), wire);
        assert_eq!(JobRequest::validate(wire).unwrap(), job);
    }

    fn good_job() -> Value {
        map(vec![
            (
                "control",
                map(vec![
                    ("continue_on_error", Value::Bool(false)),
                    ("suppress_response", Value::Bool(false)),
                ]),
            ),
            (
                "context",
                map(vec![
                    ("correlation_id", "c1".into()),
                    ("switches", Value::Array(vec![2.into(), 5.into()])),
                    ("caller", "me".into()),
                    ("locale", "fr".into()),
                ]),
            ),
            (
                "actions",
                Value::Array(vec![map(vec![
                    ("action", "square".into()),
                    ("body", map(vec![("number", 7.into())])),
                ])]),
            ),
        ])
    }

    #[test]
    fn valid_job_round_trips() {
        let job = JobRequest::validate(good_job()).unwrap();
        assert_eq!(job.context.switches, [2, 5]);
        assert_eq!(job.context.caller.as_deref(), Some("me"));
        assert_eq!(job.context.extra.get("locale"), Some(&Value::from("fr")));
        assert_eq!(job.to_value(), good_job());
    }

    #[test]
    fn invalid_job_reports_like_pysoa() {
        // The case from wire-spec §20.3: control {}, context {switches: [1]}, an extra top-level key.
        let job = map(vec![
            ("control", Value::Map(Map::new())),
            (
                "context",
                map(vec![("switches", Value::Array(vec![1.into()]))]),
            ),
            (
                "actions",
                Value::Array(vec![map(vec![("action", "a".into())])]),
            ),
            ("extra", Value::Null),
        ]);
        let errors = JobRequest::validate(job).unwrap_err();
        let got: Vec<(String, String, Option<String>)> = errors
            .iter()
            .map(|e| (e.code.to_string(), e.message.clone(), e.field.clone()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "MISSING".into(),
                    "Missing key: continue_on_error".into(),
                    Some("control.continue_on_error".into())
                ),
                (
                    "MISSING".into(),
                    "Missing key: correlation_id".into(),
                    Some("context.correlation_id".into())
                ),
                ("UNKNOWN".into(), "Extra keys present: extra".into(), None),
            ]
        );
        assert!(errors.iter().all(|e| !e.is_caller_error));
    }

    #[test]
    fn element_errors_point_into_lists() {
        let mut job = good_job();
        let ctx = job
            .as_map_mut()
            .unwrap()
            .get_mut("context")
            .unwrap()
            .as_map_mut()
            .unwrap();
        ctx.insert("switches", Value::Array(vec![1.into(), true.into()]));
        let actions = job
            .as_map_mut()
            .unwrap()
            .get_mut("actions")
            .unwrap()
            .as_array_mut()
            .unwrap();
        actions.push(map(vec![
            ("action", "x".into()),
            ("body", Value::Null),
            ("bad", 1.into()),
        ]));
        let errors = JobRequest::validate(job).unwrap_err();
        let got: Vec<(&str, Option<&str>)> = errors
            .iter()
            .map(|e| (e.message.as_str(), e.field.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                ("Not an integer", Some("context.switches.1")),
                ("Not a dict", Some("actions.1.body")),
                ("Extra keys present: bad", Some("actions.1")),
            ]
        );
    }

    #[test]
    fn empty_actions_is_invalid() {
        let mut job = good_job();
        job.as_map_mut()
            .unwrap()
            .insert("actions", Value::Array(vec![]));
        let errors = JobRequest::validate(job).unwrap_err();
        assert_eq!(errors[0].message, "List is shorter than 1");
        assert_eq!(errors[0].field.as_deref(), Some("actions"));
    }

    #[test]
    fn error_wire_form_has_every_key() {
        let err = Error::new("X", "y").caller_error(true);
        let v = err.to_value(true);
        let keys: Vec<&str> = v
            .as_map()
            .unwrap()
            .keys()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "code",
                "message",
                "field",
                "traceback",
                "variables",
                "denied_permissions",
                "is_caller_error"
            ]
        );
        assert_eq!(err.to_value(false).as_map().unwrap().len(), 6);
        assert_eq!(Error::from_value(&v).unwrap(), err);
    }

    #[test]
    fn job_response_reading_is_lenient_but_typed() {
        let resp = JobResponse {
            errors: vec![],
            context: [("correlation_id", "c")].into_iter().collect(),
            actions: vec![
                ActionResponse::new("a", [("x", 1)].into_iter().collect()),
                ActionResponse::with_errors("b", vec![Error::new("E", "m")]),
            ],
        };
        assert_eq!(JobResponse::from_value(&resp.to_value(true)).unwrap(), resp);
        let sparse = map(vec![(
            "actions",
            Value::Array(vec![map(vec![("action", "a".into()), ("extra", 1.into())])]),
        )]);
        let parsed = JobResponse::from_value(&sparse).unwrap();
        assert_eq!(parsed.actions[0].action, "a");
        let bad = map(vec![(
            "actions",
            Value::Array(vec![map(vec![
                ("action", "a".into()),
                ("errors", Value::Array(vec![map(vec![("code", 1.into())])])),
            ])]),
        )]);
        let err = JobResponse::from_value(&bad).unwrap_err();
        assert_eq!(err.field(), Some("actions.0.errors.0.code"));
    }
}
