//! Extending plans: directives of your own, and hooks around fixtures, cases and actions.

use rsoa_protocol::{ActionResponse, JobResponse, Map};

/// Where a custom directive is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Scope {
    /// `keyword: …`, for a whole test case.
    Test,
    /// `action[.index]: [global] keyword: …`, for one action case.
    Action,
}

/// The request of an action case, before it is sent: a custom directive may change it.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct PlanRequest {
    /// The action's request body.
    pub body: Map,
    /// Extra job context (`job context input`).
    pub context: Map,
    /// Extra job control (`job control input`).
    pub control: Map,
}

/// A directive of your own (PySOA's `register_directive`), tried after the built-in ones.
///
/// A line `keyword: rest` (test scope) or `action: keyword: rest` (action scope) is handed to
/// [`parse`](CustomDirective::parse), which checks it and returns what to keep; each of the directive's lines in a
/// case is then passed, as that list, to the hooks.
///
/// ```
/// use rsoa_protocol::{ActionResponse, JobResponse, Value};
/// use rsoa_test::plan::{CustomDirective, PlanRequest, Scope};
///
/// /// `get_user: auth token: <token>` puts the token in the job context.
/// struct AuthToken;
///
/// impl CustomDirective for AuthToken {
///     fn keyword(&self) -> &str {
///         "auth token"
///     }
///     fn scope(&self) -> Scope {
///         Scope::Action
///     }
///     fn set_up_action(&self, args: &[String], request: &mut PlanRequest) -> Result<(), String> {
///         let token = args.last().ok_or("no token")?;
///         request.context.insert("auth_token", Value::from(token.as_str()));
///         Ok(())
///     }
/// }
/// ```
pub trait CustomDirective: Send + Sync {
    /// The words after the action prefix (or at the start of the line) that select this directive.
    fn keyword(&self) -> &str;

    /// Whether it is written for a test case or for an action case.
    fn scope(&self) -> Scope;

    /// Checks the rest of the line at parse time; an error is a syntax error at that line.
    fn parse(&self, rest: &str) -> Result<String, String> {
        Ok(rest.to_owned())
    }

    /// Before an action case's request is sent (action scope).
    fn set_up_action(&self, args: &[String], request: &mut PlanRequest) -> Result<(), String> {
        let _ = (args, request);
        Ok(())
    }

    /// Checks an action case's outcome (action scope); an error fails the case.
    fn check_action(
        &self,
        args: &[String],
        action: Option<&ActionResponse>,
        job: &JobResponse,
    ) -> Result<(), String> {
        let _ = (args, action, job);
        Ok(())
    }

    /// Before the first action case (test scope).
    fn set_up_case(&self, args: &[String]) -> Result<(), String> {
        let _ = args;
        Ok(())
    }

    /// After the last action case, with every action's response (test scope); an error fails the case.
    fn check_case(
        &self,
        args: &[String],
        responses: &[(String, Option<ActionResponse>)],
    ) -> Result<(), String> {
        let _ = (args, responses);
        Ok(())
    }

    /// After the case, whatever its outcome (test scope).
    fn tear_down_case(&self, args: &[String]) {
        let _ = args;
    }
}

/// Hooks around a plan's run (PySOA's `set_up_test_fixture`, `set_up_test_case`, `set_up_test_case_action` and
/// their tear-downs). Every method does nothing by default.
pub trait PlanHooks: Send + Sync {
    /// Before the first case of a fixture runs.
    fn set_up_fixture(&self, fixture: &str) {
        let _ = fixture;
    }

    /// After the last case of a fixture ran.
    fn tear_down_fixture(&self, fixture: &str) {
        let _ = fixture;
    }

    /// Before a case.
    fn set_up_case(&self, fixture: &str, case: &str) {
        let _ = (fixture, case);
    }

    /// After a case, whatever its outcome.
    fn tear_down_case(&self, fixture: &str, case: &str) {
        let _ = (fixture, case);
    }

    /// Before an action case's request is sent, with the request to change if need be.
    fn set_up_action(&self, case: &str, action: &str, request: &mut PlanRequest) {
        let _ = (case, action, request);
    }

    /// After an action case, whatever its outcome.
    fn tear_down_action(&self, case: &str, action: &str) {
        let _ = (case, action);
    }
}
