//! Running a test case: PySOA's `ServicePlanTestCase._run_test_case` and the directives' hooks, in their order.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use rsoa_client::stub::{ActionStub, StubResponse, Stubs};
use rsoa_client::{CallError, Client};
use rsoa_protocol::{
    ActionRequest, ActionResponse, Error as WireError, JobResponse, Map, UtcDateTime, Value,
};
use rsoa_server::clock::Clock;
use rsoa_server::Server;
use rsoa_transport::BoxFuture;

use super::assertions::{self, ErrorCheck, Failure};
use super::directive::{CustomDirective, PlanHooks, PlanRequest, Scope};
use super::node::Node;
use super::parse::TestCase;
use super::types::substitute;

/// A service a plan runs against: in-process ([`Server`]) or over a client's transport ([`RemoteService`]).
pub trait PlanTarget: Send + Sync {
    /// The service's name.
    fn service_name(&self) -> &str;

    /// Calls one action in a job of its own, with extra job context and control; errors stay in the response.
    fn call<'a>(
        &'a self,
        action: &'a str,
        request: PlanRequest,
    ) -> BoxFuture<'a, Result<JobResponse, CallError>>;

    /// Whether the service has this action, when that can be known (test-only actions stand in for the others).
    fn has_action(&self, action: &str) -> Option<bool> {
        let _ = action;
        None
    }

    /// Where the service's downstream calls can be stubbed, if they can (in-process only).
    fn stubs(&self) -> Option<&Stubs> {
        None
    }

    /// The clock the service's actions read, if it can be frozen (in-process only).
    fn clock(&self) -> Option<&Clock> {
        None
    }
}

fn call_with(
    client: &Client,
    service: &str,
    action: &str,
    request: PlanRequest,
) -> BoxFuture<'static, Result<JobResponse, CallError>> {
    let client = client.clone();
    let service = service.to_owned();
    let action = ActionRequest::new(action, request.body);
    Box::pin(async move {
        let mut call = client
            .call_actions(&service, [action])
            .raise_action_errors(false)
            .raise_job_errors(false);
        for (key, value) in request.context.iter() {
            if let Some(key) = key.as_str() {
                call = call.context(key, value.clone());
            }
        }
        for (key, value) in request.control.iter() {
            if let Some(key) = key.as_str() {
                call = call.control_extra(key, value.clone());
            }
        }
        call.await
    })
}

/// A server under test, in-process behind the local transport (through MessagePack and back), its downstream
/// calls stubbable and its clock freezable.
#[derive(Debug, Clone)]
pub struct InProcess {
    harness: crate::TestServer,
}

impl InProcess {
    /// Runs plans against this server.
    pub fn new(server: Server) -> InProcess {
        InProcess {
            harness: crate::TestServer::new(server),
        }
    }
}

impl PlanTarget for InProcess {
    fn service_name(&self) -> &str {
        self.harness.server().service_name()
    }

    fn call<'a>(
        &'a self,
        action: &'a str,
        request: PlanRequest,
    ) -> BoxFuture<'a, Result<JobResponse, CallError>> {
        call_with(self.harness.client(), self.service_name(), action, request)
    }

    fn has_action(&self, action: &str) -> Option<bool> {
        Some(
            self.harness
                .server()
                .action_names()
                .iter()
                .any(|a| a == action),
        )
    }

    fn stubs(&self) -> Option<&Stubs> {
        Some(self.harness.server().client().stubs())
    }

    fn clock(&self) -> Option<&Clock> {
        Some(self.harness.server().clock())
    }
}

/// A running service reached through a client (over Redis, say): stubs and frozen time are out of reach, so the
/// cases that need them are skipped.
#[derive(Debug, Clone)]
pub struct RemoteService {
    client: Client,
    service: String,
}

impl RemoteService {
    /// Runs plans against `service` through `client`.
    pub fn new(client: Client, service: impl Into<String>) -> RemoteService {
        RemoteService {
            client,
            service: service.into(),
        }
    }
}

impl PlanTarget for RemoteService {
    fn service_name(&self) -> &str {
        &self.service
    }

    fn call<'a>(
        &'a self,
        action: &'a str,
        request: PlanRequest,
    ) -> BoxFuture<'a, Result<JobResponse, CallError>> {
        call_with(&self.client, &self.service, action, request)
    }
}

/// What a test-only action (PySOA's `_process_stub_action_<name>`) answers instead of the service.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum TestActionError {
    /// The action fails with these errors.
    Action(Vec<WireError>),
    /// The whole job fails with these errors.
    Job(Vec<WireError>),
}

pub(crate) type TestActionFn = dyn Fn(&Map) -> Result<Map, TestActionError> + Send + Sync;

/// How one case ended.
#[derive(Debug)]
#[non_exhaustive]
pub enum CaseOutcome {
    /// Every expectation held.
    Passed,
    /// It was not run, for this reason.
    Skipped(String),
    /// An expectation failed, or the case could not run.
    Failed(Box<CaseFailure>),
}

/// Why a case failed: where, which directive, and expected against actual.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CaseFailure {
    /// The fixture file.
    pub file: PathBuf,
    /// The case, as `fixture::name`.
    pub case: String,
    /// The line of the failing directive (or of the case).
    pub line: usize,
    /// The failing directive's text, when one is to blame.
    pub directive: Option<String>,
    /// The action case (`action.index`), when one is to blame.
    pub action: Option<String>,
    /// What went wrong.
    pub message: String,
    /// Expected against actual, as a line diff of the two bodies.
    pub diff: Option<String>,
}

impl fmt::Display for CaseFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: case {}",
            self.file.display(),
            self.line,
            self.case
        )?;
        if let Some(action) = &self.action {
            write!(f, ", action {action}")?;
        }
        writeln!(f)?;
        if let Some(directive) = &self.directive {
            writeln!(f, "  directive: {directive}")?;
        }
        for line in self.message.trim_end().lines() {
            writeln!(f, "  {line}")?;
        }
        if let Some(diff) = &self.diff {
            writeln!(f, "  body (- expected, + actual):")?;
            for line in diff.lines() {
                writeln!(f, "    {line}")?;
            }
        }
        Ok(())
    }
}

/// Everything a case run needs besides the case and the target.
pub(crate) struct Context<'a> {
    pub(crate) constants: &'a Node,
    pub(crate) custom: &'a [Box<dyn CustomDirective>],
    pub(crate) hooks: Option<&'a dyn PlanHooks>,
    pub(crate) test_actions: &'a HashMap<String, Arc<TestActionFn>>,
}

/// A multi-line pretty rendering of a structure, one entry per line, for diffs.
fn pretty(node: &Node, indent: usize, out: &mut String) {
    let pad = "  ".repeat(indent);
    match node {
        Node::Map(entries) if !entries.is_empty() => {
            out.push_str("{\n");
            for (k, v) in entries {
                out.push_str(&format!("{pad}  {}: ", super::node::python_repr(k)));
                pretty(v, indent + 1, out);
                out.push_str(",\n");
            }
            out.push_str(&format!("{pad}}}"));
        }
        Node::List(items) if !items.is_empty() => {
            out.push_str("[\n");
            for v in items {
                out.push_str(&format!("{pad}  "));
                pretty(v, indent + 1, out);
                out.push_str(",\n");
            }
            out.push_str(&format!("{pad}]"));
        }
        other => out.push_str(&other.render()),
    }
}

/// `expected` with its dict keys in `actual`'s order (its own keys last), so that a diff shows values, not order.
fn aligned(expected: &Node, actual: &Node) -> Node {
    match (expected, actual) {
        (Node::Map(e), Node::Map(a)) => {
            let mut out = Vec::with_capacity(e.len());
            for (key, actual_value) in a {
                if let Some((k, v)) = e.iter().find(|(k, _)| super::node::values_equal(k, key)) {
                    out.push((k.clone(), aligned(v, actual_value)));
                }
            }
            for (k, v) in e {
                if !a.iter().any(|(key, _)| super::node::values_equal(k, key)) {
                    out.push((k.clone(), v.clone()));
                }
            }
            Node::Map(out)
        }
        (Node::List(e), Node::List(a)) => Node::List(
            e.iter()
                .enumerate()
                .map(|(i, v)| a.get(i).map_or_else(|| v.clone(), |av| aligned(v, av)))
                .collect(),
        ),
        _ => expected.clone(),
    }
}

fn diff(expected: &Node, actual: &Node) -> String {
    let (mut e, mut a) = (String::new(), String::new());
    pretty(&aligned(expected, actual), 0, &mut e);
    pretty(actual, 0, &mut a);
    e.push('\n');
    a.push('\n');
    similar::TextDiff::from_lines(&e, &a)
        .unified_diff()
        .context_radius(3)
        .to_string()
        .lines()
        .filter(|l| !l.starts_with("@@"))
        .collect::<Vec<_>>()
        .join("\n")
}

struct Running<'a> {
    case: &'a TestCase,
    target: &'a dyn PlanTarget,
    ctx: &'a Context<'a>,
}

type CaseResult<T> = Result<T, Box<CaseFailure>>;

/// The clock's frozen instant (if any) before a `freeze time` froze it, to put back afterwards.
struct Saved(Option<UtcDateTime>);

impl Running<'_> {
    fn fail(
        &self,
        action: Option<&str>,
        tree_path: Option<&str>,
        message: impl Into<String>,
    ) -> Box<CaseFailure> {
        let (line, directive) = tree_path
            .and_then(|p| self.case.directive_for(p))
            .map(|(l, t)| (l, Some(t.to_owned())))
            .unwrap_or((self.case.line, None));
        Box::new(CaseFailure {
            file: self.case.file.clone(),
            case: self.case.to_string(),
            line,
            directive,
            action: action.map(str::to_owned),
            message: message.into(),
            diff: None,
        })
    }

    fn failure(
        &self,
        action: &str,
        base: &str,
        failure: Failure,
        expected: Option<&Node>,
        actual: Option<&Node>,
    ) -> Box<CaseFailure> {
        let path = failure
            .paths
            .first()
            .map(|p| format!("{base}.{p}"))
            .unwrap_or_else(|| base.to_owned());
        let mut out = self.fail(Some(action), Some(&path), failure.message);
        if let (Some(e), Some(a)) = (expected, actual) {
            out.diff = Some(diff(e, a));
        }
        out
    }

    fn start_stubs(
        &self,
        config: Option<&Node>,
        scope: &str,
    ) -> CaseResult<Vec<(String, ActionStub)>> {
        let Some(Node::Map(entries)) = config else {
            return Ok(Vec::new());
        };
        let Some(stubs) = self.target.stubs() else {
            return Err(self.fail(None, None, "stub action needs the service in-process"));
        };
        let mut sorted: Vec<&(Value, Node)> = entries.iter().collect();
        sorted.sort_by(|a, b| a.0.as_str().cmp(&b.0.as_str()));
        let mut started = Vec::new();
        for (key, stub) in sorted {
            let key = key.as_str().unwrap_or_default().to_owned();
            let (service, action) = key.split_once(':').unwrap_or((key.as_str(), ""));
            let response = if let Some(Node::List(errors)) = stub.get("errors") {
                let errors = errors
                    .iter()
                    .map(|e| {
                        let text = |k: &str| e.get_str(k);
                        let mut error = WireError::new(
                            text("code").unwrap_or_default(),
                            text("message").unwrap_or_default(),
                        );
                        error.field = text("field");
                        error
                    })
                    .collect();
                StubResponse::Errors(errors)
            } else {
                let body = match stub.get("body") {
                    Some(body) => body.to_map().map_err(|e| {
                        self.fail(None, Some(&format!("{scope}stubbed_actions")), e)
                    })?,
                    None => Map::new(),
                };
                StubResponse::Body(body)
            };
            started.push((key.clone(), stubs.stub(service, action, response)));
        }
        Ok(started)
    }

    fn check_stubs(
        &self,
        config: Option<&Node>,
        started: &[(String, ActionStub)],
        scope: &str,
        action: Option<&str>,
    ) -> CaseResult<()> {
        for (key, handle) in started {
            let Some(stub) = config.and_then(|c| c.get(key)) else {
                continue;
            };
            let path = format!("{scope}stubbed_actions.{{{key}}}");
            if let Some(expected) = stub.get("expect_request") {
                let calls: Vec<Node> = handle
                    .call_bodies()
                    .iter()
                    .map(|b| Node::from_value(&Value::Map(b.clone())))
                    .collect();
                if !calls.iter().any(|c| expected.matches(c)) {
                    let got = if calls.is_empty() {
                        "it was not called".to_owned()
                    } else {
                        format!(
                            "it was called with:\n{}",
                            calls
                                .iter()
                                .map(|c| format!("  {}", c.render()))
                                .collect::<Vec<_>>()
                                .join("\n")
                        )
                    };
                    let mut failure = self.fail(
                        action,
                        Some(&format!("{path}.expect_request")),
                        format!(
                            "Expected stubbed action {} to be called with {}, but {got}",
                            key.replace(':', "."),
                            expected.render()
                        ),
                    );
                    if let Some(last) = calls.last() {
                        failure.diff = Some(diff(expected, last));
                    }
                    return Err(failure);
                }
            } else if stub.get("expect_not_called").is_some() && handle.call_count() > 0 {
                return Err(self.fail(
                    action,
                    Some(&format!("{path}.expect_not_called")),
                    format!(
                        "Expected stubbed action {} not to be called, but it was called {} time(s)",
                        key.replace(':', "."),
                        handle.call_count()
                    ),
                ));
            }
        }
        Ok(())
    }

    fn freeze(&self, value: Option<&Node>) -> CaseResult<Option<Saved>> {
        let Some(value) = value else {
            return Ok(None);
        };
        let Some(clock) = self.target.clock() else {
            return Err(self.fail(None, None, "freeze time needs the service in-process"));
        };
        let previous = clock.frozen();
        let at = match value {
            Node::Value(Value::DateTime(dt)) => {
                UtcDateTime::from_epoch_micros(dt.epoch_micros()).expect("in range")
            }
            _ => clock.now(),
        };
        clock.freeze(at);
        Ok(Some(Saved(previous)))
    }

    fn unfreeze(&self, saved: Option<Saved>) {
        if let (Some(Saved(previous)), Some(clock)) = (saved, self.target.clock()) {
            match previous {
                Some(at) => clock.freeze(at),
                None => clock.unfreeze(),
            }
        }
    }

    fn custom_args(node: &Node, keyword: &str) -> Vec<String> {
        node.get("custom")
            .and_then(|c| c.get(keyword))
            .map(Node::strings)
            .unwrap_or_default()
    }

    async fn run(&self) -> CaseResult<()> {
        let tree = &self.case.tree;
        let test_directives = || {
            self.ctx
                .custom
                .iter()
                .filter(|d| d.scope() == Scope::Test)
                .map(|d| (d, Self::custom_args(tree, d.keyword())))
                .filter(|(_, args)| !args.is_empty())
        };
        let result = async {
            for (directive, args) in test_directives() {
                directive
                    .set_up_case(&args)
                    .map_err(|m| self.fail(None, Some("custom"), m))?;
            }
            let stubs = self.start_stubs(tree.get("stubbed_actions"), "")?;
            let frozen = self.freeze(tree.get("_freezegun_freeze_time"))?;
            let result = self.run_actions(&stubs).await;
            self.unfreeze(frozen);
            drop(stubs);
            result
        }
        .await;
        // Torn down whatever happened, as PySOA's `tear_down_test_case` hooks are.
        for (directive, args) in test_directives() {
            directive.tear_down_case(&args);
        }
        result
    }

    async fn run_actions(&self, test_stubs: &[(String, ActionStub)]) -> CaseResult<()> {
        let mut responses = Node::empty_map();
        let mut results: Vec<(String, Option<ActionResponse>)> = Vec::new();
        for path in self.case.actions() {
            let Some(original) = self.case.tree.get(&path) else {
                continue;
            };
            let mut action_case = original.clone();
            let base = format!("{{{path}}}");
            let (name, _) = path.rsplit_once('.').unwrap_or((path.as_str(), "0"));
            for key in ["inputs", "job_control_inputs", "job_context_inputs"] {
                if let Some(part) = action_case.get_mut(key) {
                    substitute(part, &[&responses, self.ctx.constants])
                        .map_err(|e| self.fail(Some(&path), Some(&format!("{base}.{key}")), e.0))?;
                }
            }
            let map_of = |key: &str| -> CaseResult<Map> {
                match action_case.get(key) {
                    Some(node) => node
                        .to_map()
                        .map_err(|e| self.fail(Some(&path), Some(&format!("{base}.{key}")), e)),
                    None => Ok(Map::new()),
                }
            };
            let mut request = PlanRequest {
                body: map_of("inputs")?,
                context: map_of("job_context_inputs")?,
                control: map_of("job_control_inputs")?,
            };
            if let Some(hooks) = self.ctx.hooks {
                hooks.set_up_action(&self.case.name, name, &mut request);
            }
            for directive in self
                .ctx
                .custom
                .iter()
                .filter(|d| d.scope() == Scope::Action)
            {
                let args = Self::custom_args(&action_case, directive.keyword());
                if !args.is_empty() {
                    directive
                        .set_up_action(&args, &mut request)
                        .map_err(|m| self.fail(Some(&path), Some(&format!("{base}.custom")), m))?;
                }
            }
            let action_stubs =
                self.start_stubs(action_case.get("stubbed_actions"), &format!("{base}."))?;
            let frozen = self.freeze(action_case.get("_freezegun_freeze_time"))?;
            let outcome = self.call(name, request).await;
            let checked = match outcome {
                Ok(job) => {
                    let action = job.actions.first().cloned();
                    let body = action
                        .as_ref()
                        .map(|a| Node::from_value(&Value::Map(a.body.clone())));
                    responses.set(
                        Value::from(path.as_str()),
                        body.unwrap_or(Node::Value(Value::Null)),
                    );
                    let snapshot = responses.clone();
                    let substituted = substitute(&mut responses, &[&snapshot, self.ctx.constants])
                        .and_then(|()| {
                            substitute(&mut action_case, &[&responses, self.ctx.constants])
                        });
                    match substituted {
                        Err(e) => Err(self.fail(Some(&path), Some(&base), e.0)),
                        Ok(()) => {
                            let checked = self.check_action(
                                &path,
                                &base,
                                &action_case,
                                action.as_ref(),
                                &job,
                            );
                            let checked = checked.and_then(|()| {
                                self.check_stubs(
                                    action_case.get("stubbed_actions"),
                                    &action_stubs,
                                    &format!("{base}."),
                                    Some(&path),
                                )
                            });
                            results.push((path.clone(), action));
                            checked
                        }
                    }
                }
                Err(e) => Err(self.fail(Some(&path), Some(&base), format!("The call failed: {e}"))),
            };
            self.unfreeze(frozen);
            drop(action_stubs);
            if let Some(hooks) = self.ctx.hooks {
                hooks.tear_down_action(&self.case.name, name);
            }
            checked?;
        }
        self.check_stubs(self.case.tree.get("stubbed_actions"), test_stubs, "", None)?;
        for directive in self.ctx.custom.iter().filter(|d| d.scope() == Scope::Test) {
            let args = Self::custom_args(&self.case.tree, directive.keyword());
            if !args.is_empty() {
                directive
                    .check_case(&args, &results)
                    .map_err(|m| self.fail(None, Some("custom"), m))?;
            }
        }
        Ok(())
    }

    async fn call(&self, name: &str, request: PlanRequest) -> Result<JobResponse, CallError> {
        if let Some(test_action) = self.ctx.test_actions.get(name) {
            if self.target.has_action(name) != Some(true) {
                let mut job = JobResponse::default();
                match test_action(&request.body) {
                    Ok(body) => job.actions.push(ActionResponse::new(name, body)),
                    Err(TestActionError::Action(errors)) => {
                        job.actions.push(ActionResponse::with_errors(name, errors))
                    }
                    Err(TestActionError::Job(errors)) => job.errors = errors,
                }
                return Ok(job);
            }
        }
        self.target.call(name, request).await
    }

    fn check_action(
        &self,
        path: &str,
        base: &str,
        action_case: &Node,
        action: Option<&ActionResponse>,
        job: &JobResponse,
    ) -> CaseResult<()> {
        let no_errors: Vec<WireError> = Vec::new();
        if let Node::Map(entries) = action_case {
            for (key, expected) in entries {
                let Some(key) = key.as_str() else { continue };
                if !(key.starts_with("expects_") && key.ends_with("_error")) {
                    continue;
                }
                let errors = if key.contains("_job_") {
                    &job.errors
                } else {
                    action.map_or(&no_errors, |a| &a.errors)
                };
                let check = if key.contains("_not_") {
                    ErrorCheck::Not
                } else if key.contains("_exact_") {
                    ErrorCheck::Exact
                } else {
                    ErrorCheck::Subset
                };
                let expected: Vec<Node> = match expected {
                    Node::List(items) => items.clone(),
                    other => vec![other.clone()],
                };
                if let Err(failure) = assertions::assert_errors(&expected, errors, check) {
                    let line_of = expected.iter().find_map(|e| match e {
                        Node::Error(spec) => Some(spec.line),
                        _ => None,
                    });
                    let mut out = self.failure(path, &format!("{base}.{key}"), failure, None, None);
                    if let Some(line) = line_of {
                        out.line = line;
                        out.directive = self
                            .case
                            .lines
                            .iter()
                            .find(|l| l.1 == line)
                            .map(|l| l.2.clone());
                    }
                    return Err(out);
                }
            }
        }
        if action_case.get("expects_no_errors").is_some() {
            let found = if !job.errors.is_empty() {
                Some(("job", &job.errors))
            } else {
                action
                    .filter(|a| !a.errors.is_empty())
                    .map(|a| ("action", &a.errors))
            };
            if let Some((kind, errors)) = found {
                let listed = errors
                    .iter()
                    .map(|e| {
                        format!(
                            "  code={}, field={}, message={}",
                            e.code,
                            e.field.as_deref().unwrap_or("None"),
                            e.message
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n");
                return Err(self.fail(
                    Some(path),
                    Some(&format!("{base}.expects_no_errors")),
                    format!("Expected no {kind} errors, but got:\n{listed}"),
                ));
            }
        }
        let needs_body = ["expects", "not_expects", "expects_not_present"]
            .iter()
            .any(|k| action_case.get(k).is_some());
        if needs_body {
            let Some(action) = action else {
                let errors = job
                    .errors
                    .iter()
                    .map(|e| format!("{}: {}", e.code, e.message))
                    .collect::<Vec<_>>()
                    .join("; ");
                return Err(self.fail(
                    Some(path),
                    Some(&format!("{base}.expects")),
                    format!("The job has no action response to check (job errors: {errors})"),
                ));
            };
            let actual = Node::from_value(&Value::Map(action.body.clone()));
            if let Some(expected) = action_case.get("expects") {
                assertions::assert_subset_structure(expected, &actual).map_err(|f| {
                    self.failure(
                        path,
                        &format!("{base}.expects"),
                        f,
                        Some(expected),
                        Some(&actual),
                    )
                })?;
            }
            if let Some(not_expected) = action_case.get("not_expects") {
                assertions::assert_not_expected(not_expected, &actual).map_err(|f| {
                    self.failure(path, &format!("{base}.not_expects"), f, None, None)
                })?;
            }
            if let Some(not_present) = action_case.get("expects_not_present") {
                assertions::assert_not_present(not_present, &actual).map_err(|f| {
                    self.failure(path, &format!("{base}.expects_not_present"), f, None, None)
                })?;
            }
        }
        for directive in self
            .ctx
            .custom
            .iter()
            .filter(|d| d.scope() == Scope::Action)
        {
            let args = Self::custom_args(action_case, directive.keyword());
            if !args.is_empty() {
                directive
                    .check_action(&args, action, job)
                    .map_err(|m| self.fail(Some(path), Some(&format!("{base}.custom")), m))?;
            }
        }
        Ok(())
    }
}

/// Why a case cannot run against this target, if it cannot.
pub(crate) fn cannot_run(case: &TestCase, target: &dyn PlanTarget) -> Option<String> {
    if let Some(reason) = &case.skip {
        return Some(reason.clone());
    }
    if let Some(line) = case.mock_line {
        return Some(format!(
            "{}:{line}: `mock:` directives patch Python objects, which rsoa cannot do (PySOA runs this case)",
            case.file.display()
        ));
    }
    let mut needs_stubs = false;
    let mut needs_clock = false;
    // With the empty containers: a bare `expect called:` stub holds only an empty dict.
    for path in case.tree.all_paths(true) {
        needs_stubs |= path.contains("stubbed_actions");
        needs_clock |= path.contains("_freezegun_freeze_time");
    }
    if needs_stubs && target.stubs().is_none() {
        return Some("`stub action` needs the service in-process".to_owned());
    }
    if needs_clock && target.clock().is_none() {
        return Some("`freeze time` needs the service in-process".to_owned());
    }
    None
}

/// Runs one case against a target.
pub(crate) async fn run_case(
    case: &TestCase,
    target: &dyn PlanTarget,
    ctx: &Context<'_>,
) -> CaseOutcome {
    if let Some(reason) = cannot_run(case, target) {
        return CaseOutcome::Skipped(reason);
    }
    if let Some(hooks) = ctx.hooks {
        hooks.set_up_case(&case.fixture, &case.name);
    }
    let running = Running { case, target, ctx };
    let result = running.run().await;
    if let Some(hooks) = ctx.hooks {
        hooks.tear_down_case(&case.fixture, &case.name);
    }
    match result {
        Ok(()) => CaseOutcome::Passed,
        Err(failure) => CaseOutcome::Failed(failure),
    }
}
