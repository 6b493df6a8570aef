//! Switched actions: one action name, several implementations, chosen by the request's switches.

use std::sync::Arc;

use rsoa_protocol::Map;
use rsoa_switches::Switch;
use rsoa_transport::BoxFuture;

use crate::action::Typed;
use crate::{Action, ActionContext, ActionDescription, ActionError, RawAction};

/// An action that delegates to the first implementation whose switch is active, else to the default, else to the
/// last one given (PySOA's `SwitchedAction`, except that switch 0 works too).
///
/// `introspect` lists it as `name[switch:N]` for each case and `name[DEFAULT]`.
///
/// ```
/// use rsoa_server::{ActionContext, ActionError, Server, SwitchedAction};
///
/// #[derive(serde::Deserialize)]
/// struct Empty {}
///
/// let greet = SwitchedAction::new()
///     .case(7, rsoa_server::action_fn(|_: Empty, _ctx: ActionContext| async {
///         Ok::<_, ActionError>(serde_json::json!({"greeting": "howdy"}))
///     }))
///     .default_action(rsoa_server::action_fn(|_: Empty, _ctx: ActionContext| async {
///         Ok::<_, ActionError>(serde_json::json!({"greeting": "hello"}))
///     }));
/// let server = Server::builder("example").raw_action("greet", greet).build().unwrap();
/// # drop(server);
/// ```
pub struct SwitchedAction {
    cases: Vec<(i64, Arc<dyn RawAction>)>,
    default: Option<Arc<dyn RawAction>>,
}

impl std::fmt::Debug for SwitchedAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let switches: Vec<i64> = self.cases.iter().map(|(s, _)| *s).collect();
        f.debug_struct("SwitchedAction")
            .field("switches", &switches)
            .field("has_default", &self.default.is_some())
            .finish()
    }
}

impl Default for SwitchedAction {
    fn default() -> SwitchedAction {
        SwitchedAction::new()
    }
}

impl SwitchedAction {
    /// No implementations yet.
    pub fn new() -> SwitchedAction {
        SwitchedAction {
            cases: Vec::new(),
            default: None,
        }
    }

    /// Runs `action` when `switch` is active (checked in the order the cases were added).
    #[must_use]
    pub fn case(mut self, switch: impl Switch, action: impl RawAction) -> SwitchedAction {
        self.cases.push((switch.value(), Arc::new(action)));
        self
    }

    /// Runs a typed `action` when `switch` is active.
    #[must_use]
    pub fn case_typed(self, switch: impl Switch, action: impl Action) -> SwitchedAction {
        self.case(switch, Typed::new(action))
    }

    /// Runs `action` when no case's switch is active.
    #[must_use]
    pub fn default_action(mut self, action: impl RawAction) -> SwitchedAction {
        self.default = Some(Arc::new(action));
        self
    }

    fn choose(&self, ctx: &ActionContext) -> Option<&Arc<dyn RawAction>> {
        self.cases
            .iter()
            .find(|(switch, _)| ctx.switches().is_active(*switch))
            .map(|(_, action)| action)
            .or(self.default.as_ref())
            .or_else(|| self.cases.last().map(|(_, action)| action))
    }
}

impl RawAction for SwitchedAction {
    fn call(&self, body: Map, ctx: ActionContext) -> BoxFuture<'_, Result<Map, ActionError>> {
        match self.choose(&ctx) {
            Some(action) => action.call(body, ctx),
            None => Box::pin(async {
                Err(ActionError::server_error(
                    "the switched action has no implementations",
                ))
            }),
        }
    }

    fn describe(&self) -> ActionDescription {
        self.default
            .as_ref()
            .or_else(|| self.cases.last().map(|(_, a)| a))
            .map(|a| a.describe())
            .unwrap_or_default()
    }

    fn switched_entries(&self) -> Vec<(String, ActionDescription)> {
        let mut entries: Vec<(String, ActionDescription)> = self
            .cases
            .iter()
            .map(|(switch, action)| (format!("switch:{switch}"), action.describe()))
            .collect();
        entries.push(("DEFAULT".to_owned(), self.describe()));
        entries
    }
}
