//! PySOA test plans: a service's `.pysoa` fixture files, unchanged, run against its rsoa rewrite in-process, or
//! against any running service (Python or Rust) through a client.
//!
//! The format is PySOA 1.4.9's (`pysoa.test.plan`), parsed directive by directive with its grammar and run with
//! its semantics: blocks and `test name:`/`test description:`, comments, `global` directives, action indexes,
//! `input`/`job context input`/`job control input` with every data type and date-time expression, the path
//! language with `{…}` escapes, `[[…]]` substitutions from model constants and earlier responses, every error and
//! value expectation, `stub action` (through the server's client [stubs](rsoa_client::Client::stubs)), `freeze
//! time` (through the server's [clock](rsoa_server::clock::Clock), which actions read with
//! [`ActionContext::now`](rsoa_server::ActionContext::now)) and skips. Python `mock:` directives name Python
//! objects: a case that uses them is skipped, with the file and line.
//!
//! Each fixture case becomes a named test under `cargo test` with [`Plan::run_tests`], in a test target with
//! `harness = false`:
//!
//! ```no_run
//! // tests/plans.rs, with `[[test]] name = "plans" harness = false` in Cargo.toml.
//! fn main() {
//!     rsoa_test::plan::Plan::new("tests/plans")
//!         .model_constants(serde_json::json!({"test_users": [{"username": "ada"}]}))
//!         .run_tests(|| my_service::server().expect("the server builds"));
//! }
//! # mod my_service {
//! #     pub fn server() -> Result<rsoa_server::Server, rsoa_server::Error> {
//! #         rsoa_server::Server::builder("my_service").build()
//! #     }
//! # }
//! ```
//!
//! `cargo test --test plans -- root_action` filters by name (`fixture::case`), as PySOA's `-k` does;
//! `SOA_PLAN_FIXTURE`, `SOA_PLAN_CASE` and `SOA_PLAN_CASE_REGEX` select as PySOA's `--pysoa-fixture`,
//! `--pysoa-test-case` and `--pysoa-test-case-regex` do. [`Plan::run`] runs the cases against any
//! [`PlanTarget`] and returns a [`Report`]; `rsoa plan run` does that over Redis.

mod assertions;
mod directive;
mod node;
mod parse;
mod run;
mod types;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rsoa_protocol::{Map, UtcDateTime, Value};
use rsoa_server::Server;

pub use regex::Regex;

pub use directive::{CustomDirective, PlanHooks, PlanRequest, Scope};
pub use parse::{Fixture, PlanError, TestCase};
pub use run::{CaseFailure, CaseOutcome, InProcess, PlanTarget, RemoteService, TestActionError};

use node::Node;
use run::{Context, TestActionFn};

/// Which cases to run: PySOA's `--pysoa-fixture`, `--pysoa-test-case` and `--pysoa-test-case-regex`.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only this fixture (file name without `.pysoa`).
    pub fixture: Option<String>,
    /// Only the case with this name.
    pub case: Option<String>,
    /// Only the cases whose name matches (anywhere in it).
    pub case_regex: Option<regex::Regex>,
}

impl Filter {
    /// The filter the environment asks for (`SOA_PLAN_FIXTURE`, `SOA_PLAN_CASE`, `SOA_PLAN_CASE_REGEX`).
    pub fn from_env() -> Result<Filter, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let case_regex = match var("SOA_PLAN_CASE_REGEX") {
            Some(re) => {
                Some(regex::Regex::new(&re).map_err(|e| format!("SOA_PLAN_CASE_REGEX: {e}"))?)
            }
            None => None,
        };
        let filter = Filter {
            fixture: var("SOA_PLAN_FIXTURE"),
            case: var("SOA_PLAN_CASE"),
            case_regex,
        };
        filter.check()?;
        Ok(filter)
    }

    fn check(&self) -> Result<(), String> {
        if self.case.is_some() && self.case_regex.is_some() {
            return Err("a case name and a case regex cannot be given together".to_owned());
        }
        Ok(())
    }

    /// Whether a case is selected.
    pub fn selects(&self, case: &TestCase) -> bool {
        self.fixture.as_ref().is_none_or(|f| *f == case.fixture)
            && self.case.as_ref().is_none_or(|c| *c == case.name)
            && self
                .case_regex
                .as_ref()
                .is_none_or(|re| re.is_match(&case.name))
    }
}

/// A set of fixture files and how to run them.
pub struct Plan {
    paths: Vec<PathBuf>,
    constants: Node,
    custom: Vec<Box<dyn CustomDirective>>,
    hooks: Option<Arc<dyn PlanHooks>>,
    test_actions: HashMap<String, Arc<TestActionFn>>,
    filter: Filter,
    now: Option<UtcDateTime>,
}

impl fmt::Debug for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plan")
            .field("paths", &self.paths)
            .field("filter", &self.filter)
            .finish_non_exhaustive()
    }
}

impl Plan {
    /// The fixture files in a folder (every `*.pysoa` below it not starting with a dot, in file name order), or
    /// one fixture file.
    pub fn new(path: impl AsRef<Path>) -> Plan {
        Plan {
            paths: vec![path.as_ref().to_owned()],
            constants: Node::empty_map(),
            custom: Vec::new(),
            hooks: None,
            test_actions: HashMap::new(),
            filter: Filter::default(),
            now: None,
        }
    }

    /// Adds another folder or file (PySOA's `custom_fixtures`).
    #[must_use]
    pub fn and(mut self, path: impl AsRef<Path>) -> Plan {
        self.paths.push(path.as_ref().to_owned());
        self
    }

    /// The values `[[name.path]]` substitutions read (PySOA's `model_constants`).
    ///
    /// # Panics
    /// If `constants` is not a JSON object.
    #[must_use]
    pub fn model_constants(mut self, constants: serde_json::Value) -> Plan {
        let value: Value =
            serde_json::from_value(constants).expect("model constants are plain JSON");
        assert!(
            matches!(value, Value::Map(_)),
            "model constants must be a JSON object"
        );
        self.constants = Node::from_value(&value);
        self
    }

    /// Adds a directive of your own.
    #[must_use]
    pub fn directive(mut self, directive: impl CustomDirective + 'static) -> Plan {
        self.custom.push(Box::new(directive));
        self
    }

    /// Sets the hooks run around fixtures, cases and actions.
    #[must_use]
    pub fn hooks(mut self, hooks: impl PlanHooks + 'static) -> Plan {
        self.hooks = Some(Arc::new(hooks));
        self
    }

    /// A test-only action, answered here when the service has no action of that name (PySOA's
    /// `_process_stub_action_<name>` methods on the test class).
    #[must_use]
    pub fn test_action(
        mut self,
        name: impl Into<String>,
        action: impl Fn(&Map) -> Result<Map, TestActionError> + Send + Sync + 'static,
    ) -> Plan {
        self.test_actions.insert(name.into(), Arc::new(action));
        self
    }

    /// Selects cases.
    #[must_use]
    pub fn filter(mut self, filter: Filter) -> Plan {
        self.filter = filter;
        self
    }

    /// Reads date expressions (`now`, `today`, …) at this instant instead of the current time.
    #[must_use]
    pub fn now(mut self, now: UtcDateTime) -> Plan {
        self.now = Some(now);
        self
    }

    /// The fixture files, in PySOA's order.
    pub fn files(&self) -> Result<Vec<PathBuf>, PlanError> {
        let mut out = Vec::new();
        for path in &self.paths {
            if path.is_file() {
                out.push(path.clone());
                continue;
            }
            if !path.is_dir() {
                return Err(PlanError::Load {
                    file: path.clone(),
                    message: "no such fixture file or folder".to_owned(),
                });
            }
            let mut found = Vec::new();
            collect_fixtures(path, &mut found).map_err(|e| PlanError::Load {
                file: path.clone(),
                message: e.to_string(),
            })?;
            if found.is_empty() {
                return Err(PlanError::Load {
                    file: path.clone(),
                    message: "no `*.pysoa` fixture files in this folder".to_owned(),
                });
            }
            found.sort();
            out.extend(found);
        }
        Ok(out)
    }

    /// Parses every fixture file.
    pub fn load(&self) -> Result<Vec<Fixture>, PlanError> {
        self.files()?.iter().map(|f| self.load_file(f)).collect()
    }

    fn load_file(&self, file: &Path) -> Result<Fixture, PlanError> {
        let text = std::fs::read_to_string(file).map_err(|e| PlanError::Load {
            file: file.to_owned(),
            message: e.to_string(),
        })?;
        parse::parse_fixture_text(
            &text,
            file,
            self.now.unwrap_or_else(UtcDateTime::now),
            &self.custom,
        )
    }

    fn context(&self) -> Context<'_> {
        Context {
            constants: &self.constants,
            custom: &self.custom,
            hooks: self.hooks.as_deref(),
            test_actions: &self.test_actions,
        }
    }

    /// Runs every selected case, in order, against one target, and reports each outcome. Fixture hooks run
    /// around each fixture's cases.
    pub async fn run(&self, target: &dyn PlanTarget) -> Result<Report, PlanError> {
        Ok(self.run_fixtures(&self.load()?, target).await)
    }

    /// [`Plan::run`] on fixtures already loaded with [`Plan::load`] (to report a syntax error before connecting).
    pub async fn run_fixtures(&self, fixtures: &[Fixture], target: &dyn PlanTarget) -> Report {
        let ctx = self.context();
        let mut report = Report::default();
        for fixture in fixtures {
            let cases: Vec<&TestCase> = fixture
                .cases
                .iter()
                .filter(|c| self.filter.selects(c))
                .collect();
            if cases.is_empty() {
                continue;
            }
            report.fixtures += 1;
            if let Some(hooks) = &self.hooks {
                hooks.set_up_fixture(&fixture.name);
            }
            for case in cases {
                let outcome = run::run_case(case, target, &ctx).await;
                report.outcomes.push((case.to_string(), outcome));
            }
            if let Some(hooks) = &self.hooks {
                hooks.tear_down_fixture(&fixture.name);
            }
        }
        report
    }

    /// Runs the plan as a test binary's `main` (a test target with `harness = false`): each case is a test named
    /// `fixture::case`, against a fresh server from `server` (so that stubs and frozen time stay within their
    /// case, and cases can run in parallel). Takes libtest's arguments (name filters, `--list`, `--test-threads`,
    /// …) and exits with its status.
    pub fn run_tests(self, server: impl Fn() -> Server + Send + Sync + 'static) -> ! {
        let args = libtest_mimic::Arguments::from_args();
        let exit = self.run_tests_with(args, server);
        exit.exit()
    }

    /// [`Plan::run_tests`] with the arguments given rather than read from the command line.
    pub fn run_tests_with(
        mut self,
        args: libtest_mimic::Arguments,
        server: impl Fn() -> Server + Send + Sync + 'static,
    ) -> libtest_mimic::Conclusion {
        let fixtures = match Filter::from_env().map(|f| {
            if self.filter.fixture.is_none()
                && self.filter.case.is_none()
                && self.filter.case_regex.is_none()
            {
                self.filter = f;
            }
        }) {
            Ok(()) => self.load(),
            Err(message) => Err(PlanError::Load {
                file: PathBuf::new(),
                message,
            }),
        };
        let plan = Arc::new(self);
        let server: Arc<dyn Fn() -> Server + Send + Sync> = Arc::new(server);
        let fixtures = match fixtures {
            Ok(fixtures) => fixtures,
            Err(error) => {
                // A fixture that does not parse is one failing test, named after its file.
                let trial =
                    libtest_mimic::Trial::test("plan::load", move || Err(error.to_string().into()));
                return libtest_mimic::run(&args, vec![trial]);
            }
        };
        let set_up: Arc<Mutex<Vec<String>>> = Arc::default();
        let mut trials = Vec::new();
        for fixture in fixtures {
            let fixture = Arc::new(fixture);
            for index in 0..fixture.cases.len() {
                let case = &fixture.cases[index];
                if !plan.filter.selects(case) {
                    continue;
                }
                let name = case.to_string();
                let skipped = case.skip.is_some() || case.mock_line.is_some();
                let (plan, server, fixture, set_up) = (
                    plan.clone(),
                    server.clone(),
                    fixture.clone(),
                    set_up.clone(),
                );
                let trial = libtest_mimic::Trial::test(name, move || {
                    let case = &fixture.cases[index];
                    if let Some(hooks) = &plan.hooks {
                        let mut done = set_up
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                        if !done.contains(&fixture.name) {
                            hooks.set_up_fixture(&fixture.name);
                            done.push(fixture.name.clone());
                        }
                    }
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|e| format!("cannot start a runtime: {e}"))?;
                    let target = InProcess::new(server());
                    let ctx = plan.context();
                    match runtime.block_on(run::run_case(case, &target, &ctx)) {
                        CaseOutcome::Passed | CaseOutcome::Skipped(_) => Ok(()),
                        CaseOutcome::Failed(failure) => Err(failure.to_string().into()),
                    }
                })
                .with_kind("plan")
                .with_ignored_flag(skipped);
                trials.push(trial);
            }
        }
        let conclusion = libtest_mimic::run(&args, trials);
        if let Some(hooks) = &plan.hooks {
            for fixture in set_up
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .iter()
            {
                hooks.tear_down_fixture(fixture);
            }
        }
        conclusion
    }
}

fn collect_fixtures(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_fixtures(&path, out)?;
        } else if path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| !n.starts_with('.') && n.ends_with(".pysoa"))
        {
            out.push(path);
        }
    }
    Ok(())
}

/// The outcome of every case a plan ran.
#[derive(Debug, Default)]
pub struct Report {
    /// How many fixtures had a case selected.
    pub fixtures: usize,
    /// Each case (`fixture::case`) and how it ended, in order.
    pub outcomes: Vec<(String, CaseOutcome)>,
}

impl Report {
    /// How many cases passed.
    pub fn passed(&self) -> usize {
        self.count(|o| matches!(o, CaseOutcome::Passed))
    }

    /// How many cases failed.
    pub fn failed(&self) -> usize {
        self.count(|o| matches!(o, CaseOutcome::Failed(_)))
    }

    /// How many cases were skipped.
    pub fn skipped(&self) -> usize {
        self.count(|o| matches!(o, CaseOutcome::Skipped(_)))
    }

    fn count(&self, f: impl Fn(&CaseOutcome) -> bool) -> usize {
        self.outcomes.iter().filter(|(_, o)| f(o)).count()
    }
}

impl fmt::Display for Report {
    /// One line per case (`PASS`, `FAIL`, `SKIP`), each failure in full, then the counts.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, outcome) in &self.outcomes {
            match outcome {
                CaseOutcome::Passed => writeln!(f, "PASS {name}")?,
                CaseOutcome::Skipped(reason) => writeln!(f, "SKIP {name}: {reason}")?,
                CaseOutcome::Failed(_) => writeln!(f, "FAIL {name}")?,
            }
        }
        for (_, outcome) in &self.outcomes {
            if let CaseOutcome::Failed(failure) = outcome {
                writeln!(f, "\n{failure}")?;
            }
        }
        write!(
            f,
            "plans: {} passed, {} failed, {} skipped ({} fixtures)",
            self.passed(),
            self.failed(),
            self.skipped(),
            self.fixtures
        )
    }
}

/// PySOA's parse of a fixture, normalized as `tests/plan/dump_plans.py` writes it, for the conformance test.
#[doc(hidden)]
pub fn pysoa_json(fixture_text: &str, path: &Path, now: UtcDateTime) -> serde_json::Value {
    match parse::parse_fixture_text(fixture_text, path, now, &[]) {
        Ok(fixture) => serde_json::Value::Array(
            fixture
                .cases
                .iter()
                .map(|case| {
                    let mut json = node_json(&case.tree);
                    if let serde_json::Value::Object(map) = &mut json {
                        map.insert("line_number".into(), case.line.into());
                        map.insert("fixture_name".into(), case.fixture.clone().into());
                    }
                    json
                })
                .collect(),
        ),
        Err(PlanError::Syntax { line, message, .. }) => {
            serde_json::json!({"$syntax_error": {"line": line, "message": message}})
        }
        Err(PlanError::Load { .. }) => serde_json::json!({"$load_error": true}),
    }
}

fn node_json(node: &Node) -> serde_json::Value {
    use serde_json::{json, Value as J};
    match node {
        Node::Map(entries) => J::Object(
            entries
                .iter()
                .map(|(k, v)| {
                    let key = match k {
                        Value::String(s) => s.to_string(),
                        other => node::python_str(other),
                    };
                    (key, node_json(v))
                })
                .collect(),
        ),
        Node::List(items) => J::Array(items.iter().map(node_json).collect()),
        Node::BigInt(digits) => json!({"$bigint": digits}),
        Node::Any {
            data_type,
            permit_none,
        } => json!({"$any": data_type, "permit_none": permit_none}),
        Node::Regex {
            pattern, negate, ..
        } => json!({"$regex": pattern, "negate": negate}),
        Node::Error(spec) => json!({"$error": {
            "code": spec.code,
            "field": spec.field.as_ref().map_or(json!({"$any": "str", "permit_none": true}), |f| json!(f)),
            "message": spec.message.as_ref().map_or(json!({"$any": "str", "permit_none": false}), |m| json!(m)),
        }}),
        Node::Mock => json!("$mock"),
        Node::Value(v) => value_json(v),
    }
}

fn value_json(v: &Value) -> serde_json::Value {
    use base64::Engine as _;
    use serde_json::{json, Value as J};
    match v {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => match (i.as_i64(), i.as_u64()) {
            (Some(v), _) => json!(v),
            (None, Some(v)) => json!({"$bigint": v.to_string()}),
            _ => J::Null,
        },
        Value::Float(f) => json!({"$float": node::python_float(*f)}),
        Value::String(s) => J::String(s.to_string()),
        Value::Bytes(b) => json!({"$bytes": base64::engine::general_purpose::STANDARD.encode(b)}),
        Value::DateTime(dt) => json!({"$datetime": node::iso_datetime(dt.epoch_micros(), false)}),
        Value::UtcDateTime(dt) => json!({"$datetime": node::iso_datetime(dt.epoch_micros(), true)}),
        Value::Date(d) => json!({"$date": d.to_string()}),
        Value::Time(t) => json!({"$time": node::iso_time(t)}),
        Value::Decimal(d) => json!({"$decimal": d.as_str()}),
        other => J::String(format!("{other:?}")),
    }
}

#[cfg(test)]
mod tests;
