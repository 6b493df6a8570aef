//! Test plans: PySOA's own fixtures parse exactly as PySOA parses them, and run against Rust twins of the
//! services PySOA tests them with (`tests/integration/test/plan/test_001_fixtures_work.py` in eventbrite/pysoa)
//! with PySOA's outcomes; failures read well.

use std::path::{Path, PathBuf};

use rsoa_client::CallError;
use rsoa_protocol::{Error as WireError, Map, UtcDateTime, Value};
use rsoa_server::{ActionContext, ActionError, Server};
use rsoa_test::plan::{CaseOutcome, InProcess, Plan, Report, TestActionError};

fn here() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/plan")
}

/// The instant `dump_plans.py` froze time at while PySOA parsed the fixtures.
fn golden_now() -> UtcDateTime {
    "2026-01-02T03:04:05Z".parse().expect("a valid instant")
}

fn fixtures_below(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("a readable folder") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            fixtures_below(&path, out);
        } else if path.extension().is_some_and(|e| e == "pysoa") {
            out.push(path);
        }
    }
}

/// Every fixture PySOA's parser was run on (its 8 integration fixtures and the fixture texts of its parser unit
/// tests) parses into the same test cases, or fails at the same line for the same reason.
#[test]
fn fixtures_parse_as_pysoa_parses_them() {
    let mut files = Vec::new();
    fixtures_below(&here().join("pysoa"), &mut files);
    fixtures_below(&here().join("pysoa-unit"), &mut files);
    files.sort();
    assert!(
        files.len() >= 19,
        "the golden fixtures are missing: {files:?}"
    );
    for file in &files {
        let text = std::fs::read_to_string(file).expect("a readable fixture");
        let golden: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(file.with_extension("parsed.json")).expect("its golden parse"),
        )
        .expect("golden JSON");
        let ours = rsoa_test::plan::pysoa_json(&text, file, golden_now());
        if let Some(expected) = golden.get("$syntax_error") {
            let got = ours.get("$syntax_error").unwrap_or_else(|| {
                panic!("{}: expected a syntax error, parsed {ours}", file.display())
            });
            assert_eq!(
                got["line"],
                expected["line"],
                "{}: the error's line",
                file.display()
            );
            let wanted = expected["message_contains"].as_str().expect("a message");
            let message = got["message"].as_str().expect("a message");
            assert!(
                message.contains(wanted),
                "{}: {message:?} should say {wanted:?}",
                file.display()
            );
        } else {
            assert_eq!(
                ours,
                golden,
                "{}: parsed differently from PySOA",
                file.display()
            );
        }
    }
}

/// PySOA's `FirstStubServer`: the service `first_fixtures` runs against.
fn first_server() -> Server {
    #[derive(serde::Deserialize, schemars::JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct Root {
        number: i64,
        base: Option<i64>,
    }
    #[derive(serde::Deserialize, schemars::JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct Login {
        username: String,
    }
    Server::builder("stub")
        .validated_fn("root", |req: Root, _: ActionContext| async move {
            let base = req.base.unwrap_or(2) as f64;
            let root = (req.number as f64).powf(1.0 / base).round() as i64;
            Ok::<_, ActionError>(serde_json::json!({"number_root": root}))
        })
        .validated_fn("login", |req: Login, _: ActionContext| async move {
            let session = format!(
                "{:032x}",
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or(0)
            );
            Ok::<_, ActionError>(
                serde_json::json!({"session": {"session_id": session, "user": req.username}}),
            )
        })
        .action_fn("echo", echo)
        .action_fn("types_echo", types_echo)
        .action_fn("get_tiny_image", tiny_image)
        .action_fn("get_current_datetime", current_datetime)
        .build()
        .expect("a valid server")
}

/// PySOA's `EchoAction`: the request's body, context, sorted switches and control.
async fn echo(body: Map, ctx: ActionContext) -> Result<Map, ActionError> {
    let mut out = Map::new();
    out.insert("request_body", Value::Map(body));
    let mut context = match ctx.context().to_value() {
        Value::Map(map) => map,
        _ => Map::new(),
    };
    context.remove("switches");
    out.insert("request_context", Value::Map(context));
    let mut switches: Vec<i64> = ctx.switches().iter().filter_map(|s| s.as_i64()).collect();
    switches.sort_unstable();
    out.insert(
        "request_switches",
        Value::Array(switches.into_iter().map(Value::from).collect()),
    );
    out.insert("request_control", ctx.control().to_value());
    Ok(out)
}

/// PySOA's `TypesEchoAction`: each key back as `r_<key>`.
async fn types_echo(body: Map, _: ActionContext) -> Result<Map, ActionError> {
    Ok(body
        .into_iter()
        .filter_map(|(k, v)| k.as_str().map(|k| (format!("r_{k}"), v)))
        .collect())
}

/// PySOA's `GetTinyImageAction`: the bytes of its `tiny-image.gif`.
async fn tiny_image(_: Map, _: ActionContext) -> Result<Map, ActionError> {
    let gif = [
        0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x01, 0x00, 0xff, 0xff,
        0xff, 0x00, 0x00, 0x00, 0x21, 0xf9, 0x04, 0x01, 0x0a, 0x00, 0x01, 0x00, 0x2c, 0x00, 0x00,
        0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x4c, 0x01, 0x00, 0x3b,
    ];
    Ok([("tiny_image", Value::Bytes(gif.to_vec()))]
        .into_iter()
        .collect())
}

/// PySOA's `GetDatetimeAction`: Python's naive `datetime.now()`, which rsoa takes to be UTC.
async fn current_datetime(_: Map, ctx: ActionContext) -> Result<Map, ActionError> {
    Ok([("current_datetime", Value::DateTime(ctx.now().naive()))]
        .into_iter()
        .collect())
}

/// PySOA's `SecondStubServer`.
fn second_server() -> Server {
    #[derive(serde::Deserialize, schemars::JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct Walk {
        value: i64,
    }
    Server::builder("flub")
        .validated_fn("walk", |req: Walk, _: ActionContext| async move {
            Ok::<_, ActionError>(serde_json::json!({"value": req.value + 1}))
        })
        .validated_fn("run", |req: Walk, _: ActionContext| async move {
            Ok::<_, ActionError>(serde_json::json!({"value": req.value + 5}))
        })
        .build()
        .expect("a valid server")
}

/// A downstream call whose action errors become this action's errors, as PySOA's `except CallActionError` does;
/// any other failure is a `SERVER_ERROR`.
async fn forward(
    ctx: &ActionContext,
    service: &str,
    action: &str,
    body: Map,
) -> Result<Map, ActionError> {
    match ctx
        .client()
        .call_action(service, action, Value::Map(body))
        .await
    {
        Ok(response) => Ok(response.body),
        Err(err @ CallError::Action { .. }) => Err(ActionError::from_errors_as_given(
            err.wire_errors().into_iter().cloned(),
        )),
        Err(other) => Err(other.into()),
    }
}

/// PySOA's `StubbingOneCallTestAction`.
async fn stubbing_one_call(body: Map, ctx: ActionContext) -> Result<Map, ActionError> {
    let forwarded = forward(&ctx, "examiner", "magnify", body).await?;
    Ok([("forwarded_response", Value::Map(forwarded))]
        .into_iter()
        .collect())
}

/// PySOA's `StubbingTwoCallsTestAction`.
async fn stubbing_two_calls(body: Map, ctx: ActionContext) -> Result<Map, ActionError> {
    let part = |key: &str| match body.get(key) {
        Some(Value::Map(map)) => map.clone(),
        _ => Map::new(),
    };
    let one = forward(&ctx, "examiner", "roll", part("one")).await?;
    let two = forward(&ctx, "player", "pitch", part("two")).await?;
    Ok([("one", Value::Map(one)), ("two", Value::Map(two))]
        .into_iter()
        .collect())
}

/// PySOA's `MockingAndStubbingServer` (its `mocking_test` action is Python mocks only, so it is absent).
fn third_server() -> Server {
    Server::builder("grub")
        .action_fn("stubbing_test_one_action", stubbing_one_call)
        .action_fn("stubbing_test_two_actions", stubbing_two_calls)
        .build()
        .expect("a valid server")
}

/// The first fixtures' plan: PySOA's `TestFirstFixtures`, with its model constants and test-only actions.
fn first_plan() -> Plan {
    Plan::new(here().join("pysoa/first_fixtures"))
        .model_constants(serde_json::json!({
            "test_first_user": {"username": "beamerblvd"},
            "test_users": [{"username": "guitar-king"}, {"username": "allison.agd"}],
        }))
        .test_action("stubbed_out", |body| {
            let id = body.get("user_id").cloned().unwrap_or_default();
            let name = format!("user_{}", id.as_i64().unwrap_or_default());
            let mut user = Map::new();
            user.insert("id", id);
            user.insert("username", name);
            Ok([("user", Value::Map(user))].into_iter().collect())
        })
        .test_action("stub_job_error", |_| {
            Err(TestActionError::Job(vec![
                WireError::new("CAT_ERROR", "Your cat broke the vase"),
                WireError::new("DOG_ERROR", "Your dog ate the couch"),
            ]))
        })
}

async fn run(plan: Plan, server: Server) -> Report {
    plan.run(&InProcess::new(server))
        .await
        .expect("the plan loads")
}

fn outcomes(report: &Report) -> Vec<(String, &'static str)> {
    report
        .outcomes
        .iter()
        .map(|(name, outcome)| {
            let kind = match outcome {
                CaseOutcome::Passed => "pass",
                CaseOutcome::Skipped(_) => "skip",
                CaseOutcome::Failed(_) => "fail",
                _ => "other",
            };
            (name.clone(), kind)
        })
        .collect()
}

/// Every PySOA fixture case ends as it ends under PySOA's own `ServicePlanTestCase` (where all of them pass or
/// are skipped), except the two this crate names: the Python `mock:` cases, skipped here with their line, and one
/// integer wider than MessagePack can carry.
#[tokio::test]
async fn pysoa_fixtures_run_with_pysoa_outcomes() {
    let first = run(first_plan(), first_server()).await;
    let second = run(
        Plan::new(here().join("pysoa/second_fixtures")).and(here().join("pysoa/skipped_fixtures")),
        second_server(),
    )
    .await;
    let third = run(
        Plan::new(here().join("pysoa/mocking_and_stubbing")),
        third_server(),
    )
    .await;
    let mut passed = 0;
    let mut skipped_by_plan = 0;
    let mut skipped_for_mocks = 0;
    let mut diverged = Vec::new();
    for report in [&first, &second, &third] {
        for ((name, kind), (_, outcome)) in outcomes(report).into_iter().zip(&report.outcomes) {
            match (kind, outcome) {
                ("pass", _) => passed += 1,
                ("skip", CaseOutcome::Skipped(reason)) if reason.contains("`mock:`") => {
                    assert!(reason.contains("mocking_test.pysoa:"), "{reason}");
                    skipped_for_mocks += 1;
                }
                ("skip", _) => skipped_by_plan += 1,
                _ => diverged.push(name),
            }
        }
    }
    for report in [&first, &second, &third] {
        for (name, outcome) in &report.outcomes {
            if let CaseOutcome::Failed(failure) = outcome {
                if name == "004_types::big_integer" {
                    assert!(
                        failure.message.contains("does not fit in 64 bits"),
                        "{failure}"
                    );
                } else {
                    panic!("{failure}");
                }
            }
        }
    }
    assert_eq!(diverged, ["004_types::big_integer"]);
    // PySOA's fixtures: 52 cases; 3 skipped by the plans themselves, 5 for Python mocks.
    assert_eq!((passed, skipped_by_plan, skipped_for_mocks), (43, 3, 5));
    println!(
        "PySOA fixtures: {} cases, {passed} passed, {skipped_by_plan} skipped by the plan, {skipped_for_mocks} skipped (Python mocks), {} diverged by design",
        passed + skipped_by_plan + skipped_for_mocks + diverged.len(),
        diverged.len()
    );
}

fn write_fixture(dir: &Path, name: &str, text: &str) -> PathBuf {
    std::fs::create_dir_all(dir).expect("a folder");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("a fixture");
    path
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rsoa-plan-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A failing case names the file, the failing directive's line and text, the action, and shows expected against
/// actual with a diff of the bodies.
#[tokio::test]
async fn failures_name_file_line_directive_and_diff() {
    let dir = scratch("failures");
    write_fixture(
        &dir,
        "roots.pysoa",
        "test name: wrong_root\n\
         test description: Expects the wrong root\n\
         root: input int: number: 49\n\
         root: expect: no errors\n\
         root: expect int: attribute value: number_root: 8\n\
         \n\
         test name: wrong_error\n\
         test description: Expects an error that does not come\n\
         root: input float: number: 7.9\n\
         root: expect: error: code = INVALID, field = base\n\
         \n\
         test name: unsent\n\
         test description: Refers to a response that does not exist\n\
         root: input int: number: [[NOTHING.0.here]]\n",
    );
    let report = run(Plan::new(&dir), first_server()).await;
    assert_eq!((report.passed(), report.failed()), (0, 3), "{report}");
    let failure = |i: usize| match &report.outcomes[i].1 {
        CaseOutcome::Failed(f) => f.clone(),
        other => panic!("{other:?}"),
    };
    let wrong_root = failure(0);
    assert_eq!(wrong_root.line, 5);
    assert_eq!(wrong_root.case, "roots::wrong_root");
    assert_eq!(wrong_root.action.as_deref(), Some("root.0"));
    assert_eq!(
        wrong_root.directive.as_deref(),
        Some("root: expect int: attribute value: number_root: 8")
    );
    assert!(
        wrong_root.message.contains("`number_root` is incorrect"),
        "{wrong_root}"
    );
    let diff = wrong_root.diff.as_deref().expect("a diff");
    assert!(
        diff.contains("-  'number_root': 8,") && diff.contains("+  'number_root': 7,"),
        "{diff}"
    );
    let shown = wrong_root.to_string();
    assert!(
        shown.starts_with(&format!(
            "{}:5: case roots::wrong_root, action root.0",
            dir.join("roots.pysoa").display()
        )),
        "{shown}"
    );

    let wrong_error = failure(1);
    assert_eq!(wrong_error.line, 10);
    assert!(
        wrong_error.message.contains("code=INVALID, field=base"),
        "{wrong_error}"
    );
    assert!(
        wrong_error.message.contains("field=number"),
        "the actual errors are listed: {wrong_error}"
    );

    let unsent = failure(2);
    assert!(unsent.message.contains("Could not find value"), "{unsent}");
    assert!(
        report
            .to_string()
            .ends_with("plans: 0 passed, 3 failed, 0 skipped (1 fixtures)"),
        "{report}"
    );
}

/// A fixture that does not parse is an error naming its file and line; the plan does not run half of it.
#[tokio::test]
async fn a_bad_fixture_is_a_syntax_error() {
    let dir = scratch("syntax");
    let file = write_fixture(
        &dir,
        "bad.pysoa",
        "test name: x\ntest description: y\nroot: expect no errors\n",
    );
    let err = Plan::new(&dir)
        .run(&InProcess::new(first_server()))
        .await
        .expect_err("a syntax error");
    assert_eq!(err.line(), Some(3));
    assert!(
        err.to_string()
            .starts_with(&format!("{}:3: Failed to parse line", file.display())),
        "{err}"
    );
    let missing = Plan::new(dir.join("nowhere"))
        .load()
        .expect_err("no such folder");
    assert!(
        missing
            .to_string()
            .contains("no such fixture file or folder"),
        "{missing}"
    );
}

/// Stubs and frozen time last exactly as long as their case or action case: after the run, the server's client
/// has no stub and its clock follows the system again; stubbed calls are on record.
#[tokio::test]
async fn stubs_and_frozen_time_are_scoped() {
    let server = third_server();
    let report = run(
        Plan::new(here().join("pysoa/mocking_and_stubbing/stubbing_test.pysoa")),
        server.clone(),
    )
    .await;
    assert_eq!(report.passed(), 7, "{report}");
    assert!(
        server.client().stubs().is_empty(),
        "{:?}",
        server.client().stubs()
    );
    let calls = server.client().stubs().calls();
    assert!(
        calls
            .iter()
            .any(|c| c.service == "examiner" && c.action == "magnify"),
        "{calls:?}"
    );

    let server = first_server();
    let dir = scratch("freeze");
    write_fixture(
        &dir,
        "frozen.pysoa",
        "test name: frozen\ntest description: Freezes the clock\nfreeze time: 2018-04-20T04:20:20Z\n\
         get_current_datetime: expect datetime: attribute value: current_datetime: 2018,4,20,4,20,20\n",
    );
    assert_eq!(run(Plan::new(&dir), server.clone()).await.passed(), 1);
    assert_eq!(server.clock().frozen(), None);
}

/// Over a client (a running service), cases that stub downstream calls or freeze time are skipped with the reason,
/// and the rest run.
#[tokio::test]
async fn remote_runs_skip_what_needs_the_service_in_process() {
    let server = first_server();
    let client = rsoa_client::Client::builder()
        .service(rsoa_transport_local::LocalTransport::new(server))
        .build();
    let remote = rsoa_test::plan::RemoteService::new(client, "stub");
    let report = first_plan().run(&remote).await.expect("the plan loads");
    let skipped: Vec<&str> = report
        .outcomes
        .iter()
        .filter_map(|(name, o)| match o {
            CaseOutcome::Skipped(reason) if reason.contains("freeze time") => Some(name.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        skipped,
        [
            "004_types::different_date_times",
            "004_types::date_times_with_deltas",
            "004_types::different_times",
            "004_types::times_with_deltas",
            "004_types::freeze_actions_together",
            "004_types::freeze_actions_individually",
            "004_types::freeze_non_interference",
        ]
    );
    assert_eq!(report.failed(), 1, "only the wide integer: {report}");

    // Every stubbing case stubs something, if only an `expect called:` with nothing else.
    let dir = scratch("remote-stub");
    write_fixture(
        &dir,
        "bare.pysoa",
        "test name: bare_stub\ntest description: A stub with no body\n\
         stubbing_test_one_action: stub action: examiner: magnify: expect called:\n\
         stubbing_test_one_action: expect: no errors\n",
    );
    let client = rsoa_client::Client::builder()
        .service(rsoa_transport_local::LocalTransport::new(third_server()))
        .build();
    let remote = rsoa_test::plan::RemoteService::new(client, "grub");
    for plan in [
        Plan::new(&dir),
        Plan::new(here().join("pysoa/mocking_and_stubbing/stubbing_test.pysoa")),
    ] {
        let report = plan.run(&remote).await.expect("the plan loads");
        assert_eq!(report.skipped(), report.outcomes.len(), "{report}");
    }
}

/// Filters select by fixture, by case name and by regex, as PySOA's `--pysoa-*` options do.
#[tokio::test]
async fn filters_select_cases() {
    use rsoa_test::plan::Filter;
    let select = |filter: Filter| async move {
        let report = first_plan()
            .filter(filter)
            .run(&InProcess::new(first_server()))
            .await
            .expect("loads");
        report
            .outcomes
            .into_iter()
            .map(|(n, _)| n)
            .collect::<Vec<_>>()
    };
    let by_fixture = select(Filter {
        fixture: Some("003_globals".into()),
        ..Filter::default()
    })
    .await;
    assert_eq!(
        by_fixture,
        ["003_globals::unaltered", "003_globals::with_changes"]
    );
    let by_case = select(Filter {
        case: Some("carry_overs_work".into()),
        ..Filter::default()
    })
    .await;
    assert_eq!(by_case, ["002_advanced_features::carry_overs_work"]);
    let by_regex = select(Filter {
        case_regex: Some(regex::Regex::new("^root_action_does_not").expect("a regex")),
        ..Filter::default()
    })
    .await;
    assert_eq!(by_regex.len(), 4, "{by_regex:?}");
}

/// A directive of one's own, and hooks around fixtures, cases and actions, in PySOA's order.
#[tokio::test]
async fn custom_directives_and_hooks() {
    use std::sync::{Arc, Mutex};

    use rsoa_test::plan::{CustomDirective, PlanHooks, PlanRequest, Scope};

    /// `echo: locale: xx` puts a locale in the job context; `echo: expect locale: xx` checks it came back.
    struct Locale;
    impl CustomDirective for Locale {
        fn keyword(&self) -> &str {
            "locale"
        }
        fn scope(&self) -> Scope {
            Scope::Action
        }
        fn parse(&self, rest: &str) -> Result<String, String> {
            if rest.len() == 5 && rest.as_bytes()[2] == b'_' {
                Ok(rest.to_owned())
            } else {
                Err(format!("{rest:?} is not a locale like en_US"))
            }
        }
        fn set_up_action(&self, args: &[String], request: &mut PlanRequest) -> Result<(), String> {
            request
                .context
                .insert("locale", Value::from(args[0].as_str()));
            Ok(())
        }
        fn check_action(
            &self,
            args: &[String],
            action: Option<&rsoa_protocol::ActionResponse>,
            _: &rsoa_protocol::JobResponse,
        ) -> Result<(), String> {
            let body = &action.ok_or("no response")?.body;
            let got = body
                .get("request_context")
                .and_then(|c| c.get("locale"))
                .and_then(Value::as_str);
            (got == Some(args[0].as_str()))
                .then_some(())
                .ok_or(format!("locale came back as {got:?}"))
        }
    }

    #[derive(Default, Clone)]
    struct Recorder(Arc<Mutex<Vec<String>>>);
    impl PlanHooks for Recorder {
        fn set_up_fixture(&self, fixture: &str) {
            self.0
                .lock()
                .unwrap()
                .push(format!("set_up_fixture {fixture}"));
        }
        fn tear_down_fixture(&self, fixture: &str) {
            self.0
                .lock()
                .unwrap()
                .push(format!("tear_down_fixture {fixture}"));
        }
        fn set_up_case(&self, _: &str, case: &str) {
            self.0.lock().unwrap().push(format!("set_up_case {case}"));
        }
        fn tear_down_case(&self, _: &str, case: &str) {
            self.0
                .lock()
                .unwrap()
                .push(format!("tear_down_case {case}"));
        }
        fn set_up_action(&self, _: &str, action: &str, _: &mut PlanRequest) {
            self.0
                .lock()
                .unwrap()
                .push(format!("set_up_action {action}"));
        }
        fn tear_down_action(&self, _: &str, action: &str) {
            self.0
                .lock()
                .unwrap()
                .push(format!("tear_down_action {action}"));
        }
    }

    let dir = scratch("custom");
    write_fixture(
        &dir,
        "locale.pysoa",
        "test name: locale_round_trip\ntest description: The custom directive sets and checks a locale\n\
         echo: locale: fr_FR\necho: expect: no errors\n",
    );
    let recorder = Recorder::default();
    let report = Plan::new(&dir)
        .directive(Locale)
        .hooks(recorder.clone())
        .run(&InProcess::new(first_server()))
        .await
        .expect("loads");
    assert_eq!(report.passed(), 1, "{report}");
    assert_eq!(
        *recorder.0.lock().unwrap(),
        [
            "set_up_fixture locale",
            "set_up_case locale_round_trip",
            "set_up_action echo",
            "tear_down_action echo",
            "tear_down_case locale_round_trip",
            "tear_down_fixture locale",
        ]
    );
    write_fixture(
        &dir,
        "locale.pysoa",
        "test name: bad\ntest description: d\necho: locale: french\n",
    );
    let err = Plan::new(&dir)
        .directive(Locale)
        .load()
        .expect_err("the directive refuses it");
    assert!(
        err.to_string()
            .contains("\"french\" is not a locale like en_US"),
        "{err}"
    );
}

/// `run_tests_with`, the harness=false entry point: one named test per case, skipped cases ignored, failures
/// counted.
#[test]
fn the_harness_runs_each_case_as_a_named_test() {
    let args = libtest_mimic::Arguments {
        test_threads: Some(2),
        quiet: true,
        ..libtest_mimic::Arguments::default()
    };
    let conclusion = Plan::new(here().join("pysoa/second_fixtures"))
        .and(here().join("pysoa/skipped_fixtures"))
        .run_tests_with(args, second_server);
    assert_eq!(
        (
            conclusion.num_passed,
            conclusion.num_failed,
            conclusion.num_ignored
        ),
        (1, 0, 2)
    );

    // libtest's name filter: `cargo test --test plans -- 002_advanced_features::`.
    let args = libtest_mimic::Arguments {
        quiet: true,
        filter: Some("002_advanced_features::".to_owned()),
        ..libtest_mimic::Arguments::default()
    };
    let conclusion = first_plan().run_tests_with(args, first_server);
    assert_eq!(
        (
            conclusion.num_passed,
            conclusion.num_failed,
            conclusion.num_ignored
        ),
        (6, 0, 1)
    );
    assert_eq!(conclusion.num_filtered_out, 30);
}

/// A test-scope directive is torn down even when its own set-up fails the case.
#[tokio::test]
async fn test_scope_directives_are_torn_down_whatever_happens() {
    use std::sync::{Arc, Mutex};

    use rsoa_test::plan::{CustomDirective, Scope};

    struct Resource(Arc<Mutex<Vec<String>>>);
    impl CustomDirective for Resource {
        fn keyword(&self) -> &str {
            "resource"
        }
        fn scope(&self) -> Scope {
            Scope::Test
        }
        fn set_up_case(&self, args: &[String]) -> Result<(), String> {
            self.0.lock().unwrap().push(format!("set up {args:?}"));
            if args.iter().any(|a| a == "broken") {
                return Err("the resource is broken".to_owned());
            }
            Ok(())
        }
        fn tear_down_case(&self, args: &[String]) {
            self.0.lock().unwrap().push(format!("torn down {args:?}"));
        }
    }

    let dir = scratch("teardown");
    write_fixture(
        &dir,
        "resources.pysoa",
        "test name: fine\ntest description: d\nresource: db\nroot: input int: number: 4\nroot: expect: no errors\n\n\
         test name: broken\ntest description: d\nresource: broken\nroot: input int: number: 4\n",
    );
    let log = Arc::new(Mutex::new(Vec::new()));
    let report = Plan::new(&dir)
        .directive(Resource(log.clone()))
        .run(&InProcess::new(first_server()))
        .await
        .expect("loads");
    assert_eq!((report.passed(), report.failed()), (1, 1), "{report}");
    assert!(
        report.to_string().contains("the resource is broken"),
        "{report}"
    );
    assert_eq!(
        *log.lock().unwrap(),
        [
            "set up [\"db\"]",
            "torn down [\"db\"]",
            "set up [\"broken\"]",
            "torn down [\"broken\"]",
        ]
    );
}
