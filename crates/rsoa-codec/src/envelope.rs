//! Envelopes written straight from the typed job request and response, with the bytes (and the error paths) that
//! encoding the envelope built as a [`Value`] gives, but without building and dropping that value for every
//! message.

use rsoa_protocol::{
    ActionRequest, ActionResponse, Context, Control, JobRequest, JobResponse, Map, Value,
};

use crate::Error;

/// A format's writer, one piece at a time. A container is opened with its length and closed with [`Sink::end`];
/// inside a map, each value follows its [`Sink::key`].
pub(crate) trait Sink {
    /// Opens a map of `len` entries.
    fn begin_map(&mut self, len: usize) -> Result<(), Error>;
    /// Opens an array of `len` items.
    fn begin_array(&mut self, len: usize) -> Result<(), Error>;
    /// Writes a map key.
    fn key(&mut self, key: &str) -> Result<(), Error>;
    /// Writes a text.
    fn text(&mut self, text: &str) -> Result<(), Error>;
    /// Writes a whole value.
    fn value(&mut self, value: &Value) -> Result<(), Error>;
    /// Writes a whole map.
    fn entries(&mut self, map: &Map) -> Result<(), Error>;
    /// Closes the innermost open map or array.
    fn end(&mut self);
}

/// `{request_id, meta, body}` with `job` as the body: the bytes of `JobRequest::to_value` in the envelope.
pub(crate) fn request(
    sink: &mut impl Sink,
    request_id: &Value,
    meta: &Map,
    job: &JobRequest,
) -> Result<(), Error> {
    head(sink, request_id, meta)?;
    sink.key("body")?;
    job_request(sink, job).map_err(|e| e.under("body"))?;
    sink.end();
    Ok(())
}

/// `{request_id, meta, body}` with `job` as the body: the bytes of `JobResponse::to_value` in the envelope.
pub(crate) fn response(
    sink: &mut impl Sink,
    request_id: &Value,
    meta: &Map,
    job: &JobResponse,
    with_is_caller_error: bool,
) -> Result<(), Error> {
    head(sink, request_id, meta)?;
    sink.key("body")?;
    job_response(sink, job, with_is_caller_error).map_err(|e| e.under("body"))?;
    sink.end();
    Ok(())
}

fn head(sink: &mut impl Sink, request_id: &Value, meta: &Map) -> Result<(), Error> {
    sink.begin_map(3)?;
    sink.key("request_id")?;
    sink.value(request_id).map_err(|e| e.under("request_id"))?;
    sink.key("meta")?;
    sink.entries(meta).map_err(|e| e.under("meta"))
}

fn job_request(sink: &mut impl Sink, job: &JobRequest) -> Result<(), Error> {
    sink.begin_map(3)?;
    sink.key("control")?;
    control(sink, &job.control).map_err(|e| e.under("control"))?;
    sink.key("context")?;
    context(sink, &job.context).map_err(|e| e.under("context"))?;
    sink.key("actions")?;
    sink.begin_array(job.actions.len())?;
    for (i, action) in job.actions.iter().enumerate() {
        action_request(sink, action).map_err(|e| e.under(&i.to_string()).under("actions"))?;
    }
    sink.end();
    sink.end();
    Ok(())
}

fn control(sink: &mut impl Sink, control: &Control) -> Result<(), Error> {
    // Extra keys may replace the standard ones in place: rare enough to go through the value.
    if !control.extra.is_empty() {
        return sink.value(&control.to_value());
    }
    sink.begin_map(2 + usize::from(control.timeout.is_some()))?;
    sink.key("continue_on_error")?;
    sink.value(&Value::Bool(control.continue_on_error))?;
    sink.key("suppress_response")?;
    sink.value(&Value::Bool(control.suppress_response))?;
    if let Some(timeout) = control.timeout {
        sink.key("timeout")?;
        sink.value(&Value::from(timeout))?;
    }
    sink.end();
    Ok(())
}

fn context(sink: &mut impl Sink, context: &Context) -> Result<(), Error> {
    if !context.extra.is_empty() {
        return sink.value(&context.to_value());
    }
    let optional =
        usize::from(context.caller.is_some()) + usize::from(context.calling_service.is_some());
    sink.begin_map(2 + optional)?;
    sink.key("correlation_id")?;
    sink.text(&context.correlation_id)?;
    sink.key("switches")?;
    sink.begin_array(context.switches.len())?;
    for &switch in &context.switches {
        sink.value(&Value::from(switch))?;
    }
    sink.end();
    if let Some(caller) = &context.caller {
        sink.key("caller")?;
        sink.text(caller)?;
    }
    if let Some(calling_service) = &context.calling_service {
        sink.key("calling_service")?;
        sink.text(calling_service)?;
    }
    sink.end();
    Ok(())
}

fn action_request(sink: &mut impl Sink, action: &ActionRequest) -> Result<(), Error> {
    sink.begin_map(2)?;
    sink.key("action")?;
    sink.text(&action.action)?;
    sink.key("body")?;
    sink.entries(&action.body).map_err(|e| e.under("body"))?;
    sink.end();
    Ok(())
}

fn job_response(sink: &mut impl Sink, job: &JobResponse, flag: bool) -> Result<(), Error> {
    sink.begin_map(3)?;
    sink.key("errors")?;
    errors(sink, &job.errors, flag).map_err(|e| e.under("errors"))?;
    sink.key("context")?;
    sink.entries(&job.context).map_err(|e| e.under("context"))?;
    sink.key("actions")?;
    sink.begin_array(job.actions.len())?;
    for (i, action) in job.actions.iter().enumerate() {
        action_response(sink, action, flag)
            .map_err(|e| e.under(&i.to_string()).under("actions"))?;
    }
    sink.end();
    sink.end();
    Ok(())
}

fn action_response(sink: &mut impl Sink, action: &ActionResponse, flag: bool) -> Result<(), Error> {
    sink.begin_map(3)?;
    sink.key("action")?;
    sink.text(&action.action)?;
    sink.key("errors")?;
    errors(sink, &action.errors, flag).map_err(|e| e.under("errors"))?;
    sink.key("body")?;
    sink.entries(&action.body).map_err(|e| e.under("body"))?;
    sink.end();
    Ok(())
}

/// Errors are rare and have optional parts: each goes through its value.
fn errors(sink: &mut impl Sink, errors: &[rsoa_protocol::Error], flag: bool) -> Result<(), Error> {
    sink.begin_array(errors.len())?;
    for (i, error) in errors.iter().enumerate() {
        sink.value(&error.to_value(flag))
            .map_err(|e| e.under(&i.to_string()))?;
    }
    sink.end();
    Ok(())
}

#[cfg(test)]
mod tests {
    use rsoa_protocol::{Date, ErrorCode};

    use super::*;
    use crate::{JsonSerializer, MsgpackSerializer, Serializer};

    fn tree(request_id: &Value, meta: &Map, body: Value) -> Value {
        [
            ("request_id", request_id.clone()),
            ("meta", Value::Map(meta.clone())),
            ("body", body),
        ]
        .into_iter()
        .collect()
    }

    fn body(extra: Option<Value>) -> Map {
        let mut body: Map = [
            ("n", Value::from(7)),
            ("text", Value::from("x".repeat(40))),
            (
                "list",
                Value::Array(vec![Value::from(1), Value::from("two")]),
            ),
            ("nested", [("a", Value::Null)].into_iter().collect()),
        ]
        .into_iter()
        .collect();
        if let Some(extra) = extra {
            body.insert("extra", extra);
        }
        body
    }

    fn requests(extra: Option<Value>) -> Vec<JobRequest> {
        let mut plain = JobRequest::new(vec![ActionRequest::new("one", body(extra.clone()))]);
        plain.context.correlation_id = "0123456789abcdef0123456789abcdef".to_owned();
        let mut full = plain.clone();
        full.actions.push(ActionRequest::new("two", Map::new()));
        full.control.continue_on_error = true;
        full.control.timeout = Some(30);
        full.context.switches = vec![1.into(), 5.into(), (-3).into()];
        full.context.caller = Some("caller.py".to_owned());
        full.context.calling_service = Some("other".to_owned());
        let mut extras = full.clone();
        extras.control.extra.insert("suppress_response", true);
        extras.control.extra.insert("custom", "c");
        extras.context.extra.insert("locale", "fr");
        extras.context.extra.insert("correlation_id", "replaced");
        vec![JobRequest::new(Vec::new()), plain, full, extras]
    }

    fn responses(extra: Option<Value>) -> Vec<JobResponse> {
        let mut ok = JobResponse::default();
        ok.context.insert("correlation_id", "abc");
        ok.actions = vec![ActionResponse::new("one", body(extra))];
        let mut failed = ok.clone();
        let mut action = ActionResponse::new("two", Map::new());
        action.errors.push(
            rsoa_protocol::Error::new(ErrorCode::INVALID, "bad")
                .with_field("n")
                .caller_error(true),
        );
        failed.actions.push(action);
        let job_error = JobResponse::from_errors(vec![rsoa_protocol::Error::new(
            ErrorCode::SERVER_ERROR,
            "boom",
        )]);
        vec![JobResponse::default(), ok, failed, job_error]
    }

    fn serializers() -> [&'static dyn Serializer; 2] {
        static MSGPACK: MsgpackSerializer = MsgpackSerializer {
            datetime_encoding: crate::DateTimeEncoding::PySoa,
            allow_python_incompatible: false,
            limits: crate::Limits::DEFAULT,
        };
        static JSON: JsonSerializer = JsonSerializer {
            limits: crate::Limits::DEFAULT,
        };
        [&MSGPACK, &JSON]
    }

    /// Same bytes, or the same error, as encoding the envelope built as a value.
    #[test]
    fn typed_envelopes_encode_like_their_values() {
        let meta: Map = [
            (
                "reply_to",
                Value::from("service.s.0123456789abcdef!000000000001"),
            ),
            ("__expiry__", Value::from(1_700_000_000.5)),
            (
                "client_version",
                Value::Array(vec![Value::from(1), Value::from(4)]),
            ),
        ]
        .into_iter()
        .collect();
        // A date has no JSON form, bytes that are not UTF-8 no msgpack form PySOA reads: both fail somewhere.
        let extras = [
            None,
            Some(Value::Date(Date::new(2020, 1, 2).unwrap())),
            Some(Value::NonUtf8String(vec![0xed, 0xa0, 0x80])),
        ];
        let mut failures = 0;
        for serializer in serializers() {
            for extra in &extras {
                for request_id in [Value::from(1), Value::from("id")] {
                    for job in requests(extra.clone()) {
                        let mut direct = Vec::new();
                        let direct = serializer
                            .encode_request_into(&request_id, &meta, &job, &mut direct)
                            .map(|()| direct);
                        let value = serializer.encode(&tree(&request_id, &meta, job.to_value()));
                        failures += usize::from(value.is_err());
                        assert_eq!(direct, value, "{} {job:?}", serializer.mime_type());
                    }
                    for job in responses(extra.clone()) {
                        for flag in [false, true] {
                            let mut direct = Vec::new();
                            let direct = serializer
                                .encode_response_into(&request_id, &meta, &job, flag, &mut direct)
                                .map(|()| direct);
                            let value =
                                serializer.encode(&tree(&request_id, &meta, job.to_value(flag)));
                            assert_eq!(direct, value, "{} {job:?}", serializer.mime_type());
                        }
                    }
                }
            }
        }
        // Every serializer met a value it cannot encode, deep in a body, and reported the same path.
        assert!(failures >= 6, "{failures}");
    }
}
