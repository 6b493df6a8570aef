//! Reading `.pysoa` fixture files: PySOA's grammar, directive by directive, into test cases shaped as PySOA's
//! parser shapes them.

use std::fmt;
use std::path::{Path, PathBuf};

use rsoa_protocol::{DateTime, UtcDateTime, Value};

use super::directive::{CustomDirective, Scope};
use super::node::{ErrorSpec, Node};
use super::types::{typed_value, DATA_TYPES};

/// A fixture file that could not be read or parsed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// The file could not be read, or holds no test case.
    #[error("{file}: {message}")]
    Load {
        /// The fixture file.
        file: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A line is not valid plan syntax, or a value cannot be read as its type.
    #[error("{file}:{line}: {message}\n    {text}")]
    Syntax {
        /// The fixture file.
        file: PathBuf,
        /// The line (1-based).
        line: usize,
        /// The line's text.
        text: String,
        /// What went wrong.
        message: String,
    },
}

impl PlanError {
    /// The line of a syntax error.
    pub fn line(&self) -> Option<usize> {
        match self {
            PlanError::Syntax { line, .. } => Some(*line),
            PlanError::Load { .. } => None,
        }
    }
}

/// One fixture file: its test cases, in order.
#[derive(Debug, Clone)]
pub struct Fixture {
    /// The fixture's name: the file's name without `.pysoa`.
    pub name: String,
    /// The file.
    pub path: PathBuf,
    /// The test cases.
    pub cases: Vec<TestCase>,
}

/// One test case of a fixture.
#[derive(Debug, Clone)]
pub struct TestCase {
    /// The case's name (`test name:`).
    pub name: String,
    /// Its description (`test description:`).
    pub description: String,
    /// The line it starts on.
    pub line: usize,
    /// Why it is skipped (`test skip:`), if it is.
    pub skip: Option<String>,
    /// The fixture's name.
    pub fixture: String,
    /// The fixture file.
    pub file: PathBuf,
    /// The line of its first Python `mock:` directive, if it has one (rsoa cannot run those).
    pub mock_line: Option<usize>,
    /// PySOA's test case dict.
    pub(crate) tree: Node,
    /// The directive lines that made each part of the tree, for failure messages.
    pub(crate) lines: Vec<(String, usize, String)>,
}

impl TestCase {
    /// The action cases to run, as `action.index`, in order.
    pub fn actions(&self) -> Vec<String> {
        self.tree
            .get("actions")
            .map(Node::strings)
            .unwrap_or_default()
    }

    /// The directive that wrote `path` of the tree (or the closest one above it): its line and text.
    pub(crate) fn directive_for(&self, path: &str) -> Option<(usize, &str)> {
        let mut best: Option<&(String, usize, String)> = None;
        for entry in &self.lines {
            if path == entry.0
                || path.starts_with(&format!("{}.", entry.0))
                || entry.0.starts_with(&format!("{path}."))
            {
                best = Some(entry);
                if path == entry.0 {
                    break;
                }
            }
        }
        best.map(|(_, line, text)| (*line, text.as_str()))
    }
}

impl fmt::Display for TestCase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}::{}", self.fixture, self.name)
    }
}

/// A reader over one line: PySOA's grammar tokens, skipping spaces and tabs between them as pyparsing does.
struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(s: &'a str) -> Cursor<'a> {
        Cursor { s, pos: 0 }
    }

    fn skip_ws(&mut self) {
        while let Some(c) = self.s[self.pos..].chars().next() {
            if c == ' ' || c == '\t' || c == '\r' {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    fn peek_lit(&mut self, lit: &str) -> bool {
        let save = self.pos;
        let found = self.lit(lit);
        self.pos = save;
        found
    }

    fn lit(&mut self, lit: &str) -> bool {
        let save = self.pos;
        self.skip_ws();
        if self.s[self.pos..].starts_with(lit) {
            self.pos += lit.len();
            true
        } else {
            self.pos = save;
            false
        }
    }

    fn caseless(&mut self, lit: &str) -> bool {
        let save = self.pos;
        self.skip_ws();
        let rest = &self.s[self.pos..];
        if rest.len() >= lit.len()
            && rest.is_char_boundary(lit.len())
            && rest[..lit.len()].eq_ignore_ascii_case(lit)
        {
            self.pos += lit.len();
            true
        } else {
            self.pos = save;
            false
        }
    }

    fn word(&mut self, allowed: fn(char) -> bool) -> Option<&'a str> {
        let save = self.pos;
        self.skip_ws();
        let rest = &self.s[self.pos..];
        let len = rest.find(|c: char| !allowed(c)).unwrap_or(rest.len());
        if len == 0 {
            self.pos = save;
            return None;
        }
        self.pos += len;
        Some(&rest[..len])
    }

    /// pyparsing's `oneOf`: the longest option that matches here.
    fn one_of(&mut self, options: &[&'static str]) -> Option<&'static str> {
        let save = self.pos;
        self.skip_ws();
        let rest = &self.s[self.pos..];
        let best = options
            .iter()
            .filter(|o| rest.starts_with(**o))
            .max_by_key(|o| o.len())
            .copied();
        match best {
            Some(o) => self.pos += o.len(),
            None => self.pos = save,
        }
        best
    }

    /// pyparsing's `restOfLine`, stripped of spaces and tabs as PySOA's parse actions strip it.
    fn rest(&mut self) -> &'a str {
        let rest = &self.s[self.pos..];
        self.pos = self.s.len();
        rest.trim_matches([' ', '\t', '\r'])
    }

    fn at_end(&mut self) -> bool {
        self.skip_ws();
        self.pos == self.s.len()
    }
}

fn alphanum_underscore(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn var_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '{' | '}')
}

fn code_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_')
}

fn field_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '{' | '}' | '[' | ']')
}

fn stub_action_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.')
}

/// `<action>[.<index>]: [global]`, with PySOA's refusal of action names starting `input` or `expect`.
struct ActionPrefix<'a> {
    action: &'a str,
    index: Option<&'a str>,
    global: bool,
}

fn action_prefix<'a>(c: &mut Cursor<'a>) -> Option<ActionPrefix<'a>> {
    if c.peek_lit("input") || c.peek_lit("expect") {
        return None;
    }
    let action = c.word(alphanum_underscore)?;
    let save = c.pos;
    let index = if c.lit(".") {
        match c.word(|ch| ch.is_ascii_digit()) {
            Some(i) => Some(i),
            None => {
                c.pos = save;
                None
            }
        }
    } else {
        None
    };
    if !c.lit(":") {
        return None;
    }
    let global = c.lit("global");
    Some(ActionPrefix {
        action,
        index,
        global,
    })
}

/// An error expectation's `code=…[, field=…][, message=…]`, in one of PySOA's four forms.
struct ErrorForm<'a> {
    code: &'a str,
    field: Option<&'a str>,
    message: Option<&'a str>,
}

fn error_form<'a>(
    c: &mut Cursor<'a>,
    with_field: bool,
    with_message: bool,
) -> Option<ErrorForm<'a>> {
    if !(c.lit("code") && c.lit("=")) {
        return None;
    }
    let code = c.word(code_char)?;
    let field = if with_field {
        if !(c.lit(",") && c.lit("field") && c.lit("=")) {
            return None;
        }
        Some(c.word(field_char)?)
    } else {
        None
    };
    let message = if with_message {
        if !(c.lit(",") && c.lit("message") && c.lit("=")) {
            return None;
        }
        Some(c.rest())
    } else {
        None
    };
    Some(ErrorForm {
        code,
        field,
        message,
    })
}

/// What one line says.
enum Parsed<'a> {
    Comment,
    Name(&'a str),
    Description(&'a str),
    Skip { global: bool, reason: &'a str },
    Action(ActionPrefix<'a>, ActionKind<'a>),
    Test(TestKind<'a>),
}

enum ActionKind<'a> {
    Input {
        slot: Option<&'static str>,
        data_type: Option<&'static str>,
        var: &'a str,
        value: &'a str,
    },
    ExpectError {
        not: bool,
        exact: bool,
        job: bool,
        form: ErrorForm<'a>,
    },
    ExpectNoErrors,
    ExpectValue {
        key: &'static str,
        data_type: Option<&'static str>,
        any: bool,
        var: &'a str,
        value: &'a str,
    },
    Stub(StubKind<'a>),
    Freeze(&'a str),
    Mock,
    Custom(usize, &'a str),
}

enum TestKind<'a> {
    Stub(StubKind<'a>),
    Freeze(&'a str),
    Mock,
    Custom(usize, &'a str),
}

enum StubKind<'a> {
    Body {
        service: &'a str,
        action: &'a str,
        data_type: Option<&'static str>,
        var: &'a str,
        value: &'a str,
    },
    Error {
        service: &'a str,
        action: &'a str,
        code: &'a str,
        field: &'a str,
        message: &'a str,
    },
    Called {
        service: &'a str,
        action: &'a str,
        not: bool,
        expect: Option<(Option<&'static str>, &'a str, &'a str)>,
    },
}

/// Tries each of PySOA's directives in its registration order; the first that matches the whole line wins.
fn parse_line<'a>(line: &'a str, custom: &[Box<dyn CustomDirective>]) -> Option<Parsed<'a>> {
    type Attempt = for<'b> fn(&mut Cursor<'b>) -> Option<Parsed<'b>>;
    let attempts: [Attempt; 16] = [
        |c| {
            c.lit("#").then(|| {
                c.rest();
                Parsed::Comment
            })
        },
        |c| {
            (c.lit("test name") && c.lit(":")).then_some(())?;
            c.word(alphanum_underscore).map(Parsed::Name)
        },
        |c| (c.lit("test description") && c.lit(":")).then(|| Parsed::Description(c.rest())),
        |c| {
            c.lit("test skip").then_some(())?;
            let global = c.lit("global");
            c.lit(":").then(|| Parsed::Skip {
                global,
                reason: c.rest(),
            })
        },
        |c| {
            let prefix = action_prefix(c)?;
            let slot = if c.lit("job") {
                Some(c.one_of(&["control", "context"])?)
            } else {
                None
            };
            c.lit("input").then_some(())?;
            let data_type = c.one_of(DATA_TYPES);
            c.lit(":").then_some(())?;
            let var = c.word(var_name_char)?;
            c.lit(":").then_some(())?;
            let value = c.rest();
            Some(Parsed::Action(
                prefix,
                ActionKind::Input {
                    slot,
                    data_type,
                    var,
                    value,
                },
            ))
        },
        |c| expect_error(c, true, true),
        |c| expect_error(c, false, true),
        |c| expect_error(c, true, false),
        |c| expect_error(c, false, false),
        |c| {
            let prefix = action_prefix(c)?;
            (c.lit("expect") && c.lit(":") && c.lit("no errors"))
                .then_some(Parsed::Action(prefix, ActionKind::ExpectNoErrors))
        },
        |c| {
            let prefix = action_prefix(c)?;
            c.lit("expect").then_some(())?;
            let data_type = c.one_of(DATA_TYPES);
            c.lit(":").then_some(())?;
            let not = c.lit("not");
            (c.lit("attribute value") && c.lit(":")).then_some(())?;
            let var = c.word(var_name_char)?;
            c.lit(":").then_some(())?;
            let value = c.rest();
            let key = if not { "not_expects" } else { "expects" };
            Some(Parsed::Action(
                prefix,
                ActionKind::ExpectValue {
                    key,
                    data_type,
                    any: false,
                    var,
                    value,
                },
            ))
        },
        |c| {
            let prefix = action_prefix(c)?;
            (c.lit("expect") && c.lit("any")).then_some(())?;
            let data_type = c.one_of(DATA_TYPES);
            let var = attribute_path(c)?;
            Some(Parsed::Action(
                prefix,
                expect_value("expects", data_type, true, var),
            ))
        },
        |c| {
            let prefix = action_prefix(c)?;
            (c.lit("expect") && c.caseless("None")).then_some(())?;
            let var = attribute_path(c)?;
            Some(Parsed::Action(
                prefix,
                expect_value("expects", Some("None"), false, var),
            ))
        },
        |c| {
            let prefix = action_prefix(c)?;
            c.lit("expect not present").then_some(())?;
            let var = attribute_path(c)?;
            Some(Parsed::Action(
                prefix,
                expect_value("expects_not_present", None, false, var),
            ))
        },
        |c| {
            // `mock:` at test level, or after an action prefix: it names Python objects.
            let save = c.pos;
            if c.lit("mock") && c.lit(":") {
                c.rest();
                return Some(Parsed::Test(TestKind::Mock));
            }
            c.pos = save;
            let prefix = action_prefix(c)?;
            (c.lit("mock") && c.lit(":")).then_some(())?;
            c.rest();
            Some(Parsed::Action(prefix, ActionKind::Mock))
        },
        |c| {
            // `stub action:` and `freeze time:`, at test level or after an action prefix.
            let save = c.pos;
            if let Some(stub) = stub_directive(c) {
                return Some(Parsed::Test(TestKind::Stub(stub)));
            }
            c.pos = save;
            if c.lit("freeze time") && c.lit(":") {
                return Some(Parsed::Test(TestKind::Freeze(c.rest())));
            }
            c.pos = save;
            let prefix = action_prefix(c)?;
            let after_prefix = c.pos;
            if let Some(stub) = stub_directive(c) {
                return Some(Parsed::Action(prefix, ActionKind::Stub(stub)));
            }
            c.pos = after_prefix;
            (c.lit("freeze time") && c.lit(":"))
                .then(|| Parsed::Action(prefix, ActionKind::Freeze(c.rest())))
        },
    ];
    for attempt in attempts {
        let mut c = Cursor::new(line);
        if let Some(parsed) = attempt(&mut c) {
            if c.at_end() {
                return Some(parsed);
            }
        }
    }
    for (i, directive) in custom.iter().enumerate() {
        let keyword = directive.keyword();
        match directive.scope() {
            Scope::Test => {
                let mut c = Cursor::new(line);
                if c.lit(keyword) && c.lit(":") {
                    return Some(Parsed::Test(TestKind::Custom(i, c.rest())));
                }
            }
            Scope::Action => {
                let mut c = Cursor::new(line);
                if let Some(prefix) = action_prefix(&mut c) {
                    if c.lit(keyword) && c.lit(":") {
                        let rest = c.rest();
                        return Some(Parsed::Action(prefix, ActionKind::Custom(i, rest)));
                    }
                }
            }
        }
    }
    None
}

/// `: attribute value: PATH[:]`, the end of the `expect any`, `expect None` and `expect not present` directives.
fn attribute_path<'a>(c: &mut Cursor<'a>) -> Option<&'a str> {
    (c.lit(":") && c.lit("attribute value") && c.lit(":")).then_some(())?;
    let var = c.word(var_name_char)?;
    c.lit(":");
    Some(var)
}

/// A value expectation without a value on its line (it is implied by the directive).
fn expect_value<'a>(
    key: &'static str,
    data_type: Option<&'static str>,
    any: bool,
    var: &'a str,
) -> ActionKind<'a> {
    ActionKind::ExpectValue {
        key,
        data_type,
        any,
        var,
        value: "",
    }
}

fn expect_error<'a>(
    c: &mut Cursor<'a>,
    with_field: bool,
    with_message: bool,
) -> Option<Parsed<'a>> {
    let prefix = action_prefix(c)?;
    (c.lit("expect") && c.lit(":")).then_some(())?;
    let not = c.lit("not");
    let exact = c.lit("exact");
    let job = c.lit("job");
    (c.lit("error") && c.lit(":")).then_some(())?;
    let form = error_form(c, with_field, with_message)?;
    Some(Parsed::Action(
        prefix,
        ActionKind::ExpectError {
            not,
            exact,
            job,
            form,
        },
    ))
}

fn stub_directive<'a>(c: &mut Cursor<'a>) -> Option<StubKind<'a>> {
    (c.lit("stub action") && c.lit(":")).then_some(())?;
    let service = c.word(alphanum_underscore)?;
    c.lit(":").then_some(())?;
    let action = c.word(stub_action_char)?;
    c.lit(":").then_some(())?;
    let save = c.pos;
    if c.lit("body") {
        let data_type = c.one_of(DATA_TYPES);
        c.lit(":").then_some(())?;
        let var = c.word(var_name_char)?;
        c.lit(":").then_some(())?;
        let value = c.rest();
        return Some(StubKind::Body {
            service,
            action,
            data_type,
            var,
            value,
        });
    }
    c.pos = save;
    if c.lit("error") {
        (c.lit(":") && c.lit("code") && c.lit("=")).then_some(())?;
        let code = c.word(code_char)?;
        (c.lit(",") && c.lit("field") && c.lit("=")).then_some(())?;
        let field = c.word(field_char)?;
        (c.lit(",") && c.lit("message") && c.lit("=")).then_some(())?;
        let message = c.rest();
        return Some(StubKind::Error {
            service,
            action,
            code,
            field,
            message,
        });
    }
    c.pos = save;
    c.lit("expect").then_some(())?;
    let not = c.lit("not");
    c.lit("called").then_some(())?;
    // pyparsing's MatchFirst: a bare `:` wins, and a line with more after it then fails as a whole.
    if c.lit(":") {
        return Some(StubKind::Called {
            service,
            action,
            not,
            expect: None,
        });
    }
    let data_type = c.one_of(DATA_TYPES);
    c.lit(":").then_some(())?;
    let var = c.word(var_name_char)?;
    c.lit(":").then_some(())?;
    let value = c.rest();
    Some(StubKind::Called {
        service,
        action,
        not,
        expect: Some((data_type, var, value)),
    })
}

/// The parser's state between lines: PySOA's `ServiceTestPlanFixtureParser`.
struct Parser<'r> {
    file: PathBuf,
    fixture: String,
    custom: &'r [Box<dyn CustomDirective>],
    now: UtcDateTime,
    test_freeze: Option<UtcDateTime>,
    action_freeze: Option<UtcDateTime>,
    global: Node,
    global_lines: Vec<(String, usize, String)>,
    working: Node,
    working_lines: Vec<(String, usize, String)>,
    working_line: usize,
    mock_line: Option<usize>,
    line_number: usize,
    cases: Vec<TestCase>,
}

impl Parser<'_> {
    fn syntax(&self, line: usize, text: &str, message: impl Into<String>) -> PlanError {
        PlanError::Syntax {
            file: self.file.clone(),
            line,
            text: text.to_owned(),
            message: message.into(),
        }
    }

    fn current_now(&self) -> UtcDateTime {
        self.action_freeze.or(self.test_freeze).unwrap_or(self.now)
    }

    fn typed(
        &self,
        data_type: Option<&str>,
        any: bool,
        value: &str,
        text: &str,
    ) -> Result<Node, PlanError> {
        typed_value(data_type, any, value, self.current_now()).map_err(|e| {
            self.syntax(
                self.line_number,
                text,
                format!("Data type conversion error: {}", e.0),
            )
        })
    }

    fn freeze_value(&self, value: &str, text: &str) -> Result<(Node, UtcDateTime), PlanError> {
        if value == "now" {
            return Ok((Node::Value(Value::Null), self.current_now()));
        }
        let parsed = value
            .strip_suffix('Z')
            .filter(|v| v.len() == 19 && v.as_bytes().get(10) == Some(&b'T'))
            .and_then(|v| v.parse::<DateTime>().ok());
        match parsed {
            Some(dt) => Ok((
                Node::Value(Value::DateTime(dt)),
                UtcDateTime::from_epoch_micros(dt.epoch_micros()).expect("in range"),
            )),
            None => Err(self.syntax(
                self.line_number,
                text,
                "Could not parse datetime value for time freeze",
            )),
        }
    }

    fn line(&mut self, number: usize, text: &str) -> Result<(), PlanError> {
        self.line_number = number;
        let Some(parsed) = parse_line(text, self.custom) else {
            return Err(self.syntax(number, text, format!("Failed to parse line: {text}")));
        };
        if self.working.truthy() && self.working_line == 0 {
            self.working_line = number - 1;
        }
        let is_global = match &parsed {
            Parsed::Skip { global, .. } => *global,
            Parsed::Action(prefix, _) => prefix.global,
            _ => false,
        };
        // Where the directive writes: the action case (`action.index`) or the test case itself.
        let mut base = String::new();
        if let Parsed::Action(prefix, _) = &parsed {
            let key = format!("{}.{}", prefix.action, prefix.index.unwrap_or("0"));
            let target = if is_global {
                &mut self.global
            } else {
                &mut self.working
            };
            if target.get("actions").is_none() {
                target.set(Value::from("actions"), Node::List(Vec::new()));
            }
            if target.get(&key).is_none() {
                if !is_global {
                    if let Some(Node::List(actions)) = target.get_mut("actions") {
                        actions.push(Node::str(key.clone()));
                    }
                }
                // A new action case: the previous one is done.
                self.action_freeze = None;
                let target = if is_global {
                    &mut self.global
                } else {
                    &mut self.working
                };
                target.set(Value::from(key.clone()), Node::empty_map());
            }
            base = format!("{{{key}}}.");
        }
        let result = self.ingest(parsed, is_global, &base, number, text);
        result.map_err(|message| match message {
            IngestError::Plan(e) => e,
            IngestError::Message(m) => self.syntax(number, text, m),
        })
    }

    fn target(&mut self, is_global: bool) -> &mut Node {
        if is_global {
            &mut self.global
        } else {
            &mut self.working
        }
    }

    fn note(&mut self, is_global: bool, path: String, line: usize, text: &str) {
        let lines = if is_global {
            &mut self.global_lines
        } else {
            &mut self.working_lines
        };
        lines.push((path, line, text.to_owned()));
    }

    fn put(
        &mut self,
        is_global: bool,
        path: &str,
        value: Node,
        line: usize,
        text: &str,
    ) -> Result<(), IngestError> {
        self.target(is_global)
            .put(path, value)
            .map_err(|e| IngestError::Message(format!("Invalid path: {}", e.0)))?;
        self.note(is_global, path.to_owned(), line, text);
        Ok(())
    }

    fn ingest(
        &mut self,
        parsed: Parsed<'_>,
        is_global: bool,
        base: &str,
        line: usize,
        text: &str,
    ) -> Result<(), IngestError> {
        match parsed {
            Parsed::Comment => {}
            Parsed::Name(name) => {
                if self.working.get("name").is_some() {
                    return Err(IngestError::Message(
                        "Duplicate test name directive for test case".to_owned(),
                    ));
                }
                self.put(false, "name", Node::str(name), line, text)?;
            }
            Parsed::Description(description) => {
                if self.working.get("description").is_some() {
                    return Err(IngestError::Message(
                        "Duplicate test description directive for test case".to_owned(),
                    ));
                }
                self.put(false, "description", Node::str(description), line, text)?;
            }
            Parsed::Skip { reason, .. } => {
                self.put(is_global, "skip", Node::str(reason), line, text)?
            }
            Parsed::Action(_, kind) => self.ingest_action(kind, is_global, base, line, text)?,
            Parsed::Test(kind) => match kind {
                TestKind::Stub(stub) => self.ingest_stub(stub, false, "", line, text)?,
                TestKind::Freeze(value) => {
                    let (node, at) = self.freeze_value(value, text).map_err(IngestError::Plan)?;
                    self.put(false, "_freezegun_freeze_time", node, line, text)?;
                    self.test_freeze = Some(at);
                }
                TestKind::Mock => {
                    self.mock_line.get_or_insert(line);
                    self.put(false, "mock_patches", Node::Mock, line, text)?;
                }
                TestKind::Custom(i, rest) => self.ingest_custom(i, rest, false, "", line, text)?,
            },
        }
        Ok(())
    }

    /// A custom directive's line: checked by the directive, kept in its list under `custom.<keyword>`.
    fn ingest_custom(
        &mut self,
        index: usize,
        rest: &str,
        is_global: bool,
        base: &str,
        line: usize,
        text: &str,
    ) -> Result<(), IngestError> {
        let directive = &self.custom[index];
        let key = format!("{base}custom.{}", directive.keyword());
        let value = directive.parse(rest).map_err(IngestError::Message)?;
        self.append(is_global, &key, Node::str(value), line, text)
    }

    /// Appends to the list at `path`, creating it.
    fn append(
        &mut self,
        is_global: bool,
        path: &str,
        value: Node,
        line: usize,
        text: &str,
    ) -> Result<(), IngestError> {
        let target = self.target(is_global);
        match target.path_get(path) {
            Some(Node::List(mut items)) => {
                items.push(value);
                self.put(is_global, path, Node::List(items), line, text)
            }
            _ => self.put(is_global, path, Node::List(vec![value]), line, text),
        }
    }

    fn ingest_action(
        &mut self,
        kind: ActionKind<'_>,
        is_global: bool,
        base: &str,
        line: usize,
        text: &str,
    ) -> Result<(), IngestError> {
        match kind {
            ActionKind::Input {
                slot,
                data_type,
                var,
                value,
            } => {
                let node = self
                    .typed(data_type, false, value, text)
                    .map_err(IngestError::Plan)?;
                let key = match slot {
                    Some("control") => "job_control_inputs",
                    Some(_) => "job_context_inputs",
                    None => "inputs",
                };
                self.put(is_global, &format!("{base}{key}.{var}"), node, line, text)?;
            }
            ActionKind::ExpectError {
                not,
                exact,
                job,
                form,
            } => {
                let key = format!(
                    "expects_{}{}{}error",
                    if not { "not_" } else { "" },
                    if job { "job_" } else { "" },
                    if exact { "exact_" } else { "" }
                );
                let spec = ErrorSpec {
                    code: form.code.to_owned(),
                    field: form.field.map(str::to_owned),
                    message: form.message.filter(|m| !m.is_empty()).map(str::to_owned),
                    line,
                };
                self.append(
                    is_global,
                    &format!("{base}{key}"),
                    Node::Error(spec),
                    line,
                    text,
                )?;
            }
            ActionKind::ExpectNoErrors => {
                self.put(
                    is_global,
                    &format!("{base}expects_no_errors"),
                    Node::Value(Value::Bool(true)),
                    line,
                    text,
                )?;
            }
            ActionKind::ExpectValue {
                key,
                data_type,
                any,
                var,
                value,
            } => {
                let node = self
                    .typed(data_type, any, value, text)
                    .map_err(IngestError::Plan)?;
                self.put(is_global, &format!("{base}{key}.{var}"), node, line, text)?;
            }
            ActionKind::Stub(stub) => self.ingest_stub(stub, is_global, base, line, text)?,
            ActionKind::Freeze(value) => {
                let (node, at) = self.freeze_value(value, text).map_err(IngestError::Plan)?;
                self.put(
                    is_global,
                    &format!("{base}_freezegun_freeze_time"),
                    node,
                    line,
                    text,
                )?;
                self.action_freeze = Some(at);
            }
            ActionKind::Mock => {
                self.mock_line.get_or_insert(line);
                self.put(
                    is_global,
                    &format!("{base}mock_patches"),
                    Node::Mock,
                    line,
                    text,
                )?;
            }
            ActionKind::Custom(i, rest) => {
                self.ingest_custom(i, rest, is_global, base, line, text)?;
            }
        }
        Ok(())
    }

    fn ingest_stub(
        &mut self,
        stub: StubKind<'_>,
        is_global: bool,
        base: &str,
        line: usize,
        text: &str,
    ) -> Result<(), IngestError> {
        let (service, action) = match &stub {
            StubKind::Body {
                service, action, ..
            }
            | StubKind::Error {
                service, action, ..
            }
            | StubKind::Called {
                service, action, ..
            } => (*service, *action),
        };
        let config = format!("{base}stubbed_actions.{{{service}:{action}}}");
        let has = |parser: &mut Parser<'_>, key: &str| {
            parser
                .target(is_global)
                .path_get(&format!("{config}.{key}"))
                .is_some()
        };
        let body_and_errors = || {
            IngestError::Message(format!(
                "Cannot combine stub action body and errors (must choose one) for {service}.{action}"
            ))
        };
        match stub {
            StubKind::Body {
                data_type,
                var,
                value,
                ..
            } => {
                if has(self, "errors") {
                    return Err(body_and_errors());
                }
                let node = self
                    .typed(data_type, false, value, text)
                    .map_err(IngestError::Plan)?;
                if !has(self, "body") {
                    self.put(
                        is_global,
                        &format!("{config}.body"),
                        Node::empty_map(),
                        line,
                        text,
                    )?;
                }
                self.put(is_global, &format!("{config}.body.{var}"), node, line, text)?;
            }
            StubKind::Error {
                code,
                field,
                message,
                ..
            } => {
                if has(self, "body") {
                    return Err(body_and_errors());
                }
                let none_or = |s: &str| {
                    if s.trim().is_empty() || s.trim().eq_ignore_ascii_case("none") {
                        Node::Value(Value::Null)
                    } else {
                        Node::str(s)
                    }
                };
                let error = Node::Map(vec![
                    (Value::from("code"), Node::str(code)),
                    (Value::from("message"), none_or(message)),
                    (Value::from("field"), none_or(field)),
                ]);
                self.append(is_global, &format!("{config}.errors"), error, line, text)?;
            }
            StubKind::Called { not, expect, .. } => {
                let conflict = if not {
                    has(self, "expect_request")
                } else {
                    has(self, "expect_not_called")
                };
                if conflict {
                    return Err(IngestError::Message(format!(
                        "Cannot combine \"expect called\" and \"expect not called\" on the same stub action for {service}.{action}"
                    )));
                }
                if not {
                    self.put(
                        is_global,
                        &format!("{config}.expect_not_called"),
                        Node::Value(Value::Bool(true)),
                        line,
                        text,
                    )?;
                } else {
                    if !has(self, "expect_request") {
                        self.put(
                            is_global,
                            &format!("{config}.expect_request"),
                            Node::empty_map(),
                            line,
                            text,
                        )?;
                    }
                    if let Some((data_type, var, value)) = expect {
                        let node = self
                            .typed(data_type, false, value, text)
                            .map_err(IngestError::Plan)?;
                        self.put(
                            is_global,
                            &format!("{config}.expect_request.{var}"),
                            node,
                            line,
                            text,
                        )?;
                    }
                }
            }
        }
        Ok(())
    }

    /// A blank line (or the end of the file): the test case being read is complete.
    fn finalize(&mut self, line_number: usize) -> Result<(), PlanError> {
        self.action_freeze = None;
        if !self.working.truthy() {
            return Ok(());
        }
        let error_line = line_number.saturating_sub(1);
        let fail = |parser: &Parser<'_>, message: &str| PlanError::Syntax {
            file: parser.file.clone(),
            line: error_line,
            text: String::new(),
            message: message.to_owned(),
        };
        if self.working.get("name").is_none() {
            return Err(fail(self, "Test case without name"));
        }
        if self.working.get("description").is_none() {
            return Err(fail(self, "Test case without description"));
        }
        let has_actions = self.working.get("actions").is_some_and(Node::truthy);
        if !has_actions && !self.global.truthy() {
            return Err(fail(self, "Empty test case"));
        }
        let mut tree = Node::empty_map();
        let mut lines = Vec::new();
        if self.global.truthy() {
            // Globals first, then the case's own paths over them (lists overlay index by index).
            for source in [&self.global, &self.working] {
                for path in source.all_paths(true) {
                    let value = source
                        .path_get(&path)
                        .ok_or_else(|| fail(self, &format!("Invalid path: `{path}`")))?;
                    tree.put(&path, value)
                        .map_err(|_| fail(self, &format!("Invalid path: `{path}`")))?;
                }
            }
            lines.extend(self.global_lines.iter().cloned());
        } else {
            tree = self.working.clone();
        }
        lines.extend(self.working_lines.iter().cloned());
        let text = |key: &str| tree.get_str(key);
        let case = TestCase {
            name: text("name").unwrap_or_default(),
            description: text("description").unwrap_or_default(),
            line: self.working_line,
            skip: text("skip"),
            fixture: self.fixture.clone(),
            file: self.file.clone(),
            mock_line: self.mock_line.take(),
            lines,
            tree,
        };
        self.cases.push(case);
        self.working = Node::empty_map();
        self.working_lines.clear();
        self.working_line = 0;
        self.test_freeze = None;
        Ok(())
    }
}

enum IngestError {
    Plan(PlanError),
    Message(String),
}

/// Parses a fixture's text. `now` is the time date expressions (`now`, `today`, …) are read at, unless the
/// fixture freezes time.
pub(crate) fn parse_fixture_text(
    text: &str,
    path: &Path,
    now: UtcDateTime,
    custom: &[Box<dyn CustomDirective>],
) -> Result<Fixture, PlanError> {
    let fixture = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut parser = Parser {
        file: path.to_owned(),
        fixture: fixture.clone(),
        custom,
        now,
        test_freeze: None,
        action_freeze: None,
        global: Node::empty_map(),
        global_lines: Vec::new(),
        working: Node::empty_map(),
        working_lines: Vec::new(),
        working_line: 0,
        mock_line: None,
        line_number: 0,
        cases: Vec::new(),
    };
    let ends_with_newline = text.ends_with('\n');
    let lines: Vec<&str> = text.split('\n').collect();
    let count = if ends_with_newline {
        lines.len() - 1
    } else {
        lines.len()
    };
    for (i, line) in lines.iter().take(count).enumerate() {
        let number = i + 1;
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim_matches([' ', '\t']).is_empty() {
            parser.finalize(number)?;
        } else {
            parser.line(number, line)?;
        }
    }
    // pyparsing matches a last line end at the end of the text, and PySOA finalizes once more after that.
    parser.finalize(if ends_with_newline { count + 1 } else { 1 })?;
    if parser.cases.is_empty() {
        return Err(PlanError::Load {
            file: path.to_owned(),
            message: "Failed to find any test cases in file".to_owned(),
        });
    }
    Ok(Fixture {
        name: fixture,
        path: path.to_owned(),
        cases: parser.cases,
    })
}
