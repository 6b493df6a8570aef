//! Expansions: PySOA's automatic follow-up calls that replace ids in a response with the objects they name.
//!
//! A response object declares its type in a `_type` key. The client's [`ExpansionSettings`] say, for each type,
//! which expansions exist: the field holding the id (`source_field`), the route that fetches objects by id (a
//! service and action, the request field that takes a list of ids, and the response field that returns a map from
//! id to object), and the field to put the fetched object in (`destination_field`). A call asks for expansions by
//! type, with dots for nested ones (`"author.employer"` expands each author's employer too).
//!
//! After the call, the client finds every object of a requested type anywhere in the response bodies, batches the
//! ids of each route into one request (each id once, never an id already fetched), sends the requests in parallel
//! with the call's switches, correlation id, context and timeout, and fills in the destination fields; then it does
//! the same for nested expansions of the objects it just added. A route whose call fails leaves its fields unset,
//! unless the expansion says `raise_action_errors`, which makes the whole call fail.
//!
//! ```
//! use rsoa_client::{ExpansionSettings, TypeExpansion, TypeRoute};
//!
//! let settings = ExpansionSettings::default()
//!     .route("author_route", TypeRoute::new("authors", "get_authors", "ids", "authors"))
//!     .expansion("book", "author", TypeExpansion::new("author", "author_route", "author_id", "author"));
//! assert!(settings.validate().is_ok());
//! ```

use std::collections::HashMap;

use std::future::IntoFuture;

use futures::future::join_all;
use rsoa_protocol::{Map, Value};
use serde::{Deserialize, Serialize};

use crate::call::CallOptions;
use crate::{CallError, Client};

/// Where the objects of an expansion come from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TypeRoute {
    /// The service to call.
    pub service: String,
    /// The action to call.
    pub action: String,
    /// The request body field that takes the list of ids.
    pub request_field: String,
    /// The response body field holding a map from id to object.
    pub response_field: String,
}

impl TypeRoute {
    /// A route.
    pub fn new(
        service: &str,
        action: &str,
        request_field: &str,
        response_field: &str,
    ) -> TypeRoute {
        TypeRoute {
            service: service.to_owned(),
            action: action.to_owned(),
            request_field: request_field.to_owned(),
            response_field: response_field.to_owned(),
        }
    }
}

/// One expansion of a type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TypeExpansion {
    /// The type of the objects it adds (which may have expansions of their own).
    #[serde(rename = "type")]
    pub object_type: String,
    /// The name of the route that fetches them.
    pub route: String,
    /// The field of the expanded object that holds the id.
    pub source_field: String,
    /// The field that receives the fetched object.
    pub destination_field: String,
    /// Whether a failure of the route fails the whole call.
    #[serde(default)]
    pub raise_action_errors: bool,
}

impl TypeExpansion {
    /// An expansion that leaves its field unset when the route fails.
    pub fn new(
        object_type: &str,
        route: &str,
        source_field: &str,
        destination_field: &str,
    ) -> TypeExpansion {
        TypeExpansion {
            object_type: object_type.to_owned(),
            route: route.to_owned(),
            source_field: source_field.to_owned(),
            destination_field: destination_field.to_owned(),
            raise_action_errors: false,
        }
    }

    /// The same expansion, failing the whole call when its route fails.
    #[must_use]
    pub fn raising_errors(mut self) -> TypeExpansion {
        self.raise_action_errors = true;
        self
    }
}

/// Every route and expansion a client knows, as PySOA's `expansion_config` (`type_routes`, `type_expansions`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ExpansionSettings {
    /// Routes by name.
    #[serde(default)]
    pub type_routes: HashMap<String, TypeRoute>,
    /// For each type, its expansions by name.
    #[serde(default)]
    pub type_expansions: HashMap<String, HashMap<String, TypeExpansion>>,
}

impl ExpansionSettings {
    /// Adds a route.
    #[must_use]
    pub fn route(mut self, name: &str, route: TypeRoute) -> ExpansionSettings {
        self.type_routes.insert(name.to_owned(), route);
        self
    }

    /// Adds an expansion of a type.
    #[must_use]
    pub fn expansion(
        mut self,
        object_type: &str,
        name: &str,
        expansion: TypeExpansion,
    ) -> ExpansionSettings {
        self.type_expansions
            .entry(object_type.to_owned())
            .or_default()
            .insert(name.to_owned(), expansion);
        self
    }

    /// Checks that every expansion names a known route and has distinct source and destination fields.
    pub fn validate(&self) -> Result<(), CallError> {
        for (object_type, expansions) in &self.type_expansions {
            for (name, expansion) in expansions {
                let bad = |why: String| {
                    CallError::InvalidExpansion(format!("{object_type}.{name}: {why}"))
                };
                if !self.type_routes.contains_key(&expansion.route) {
                    return Err(bad(format!("unknown route {:?}", expansion.route)));
                }
                if expansion.source_field == expansion.destination_field {
                    return Err(bad(
                        "source_field and destination_field must differ".to_owned()
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The expansions a call asks for: each type with its dotted paths.
#[derive(Clone, Debug, Default)]
pub(crate) struct Requested(Vec<(String, Vec<String>)>);

impl Requested {
    /// Asks for more expansions of a type.
    pub(crate) fn add<S: Into<String>>(
        &mut self,
        object_type: &str,
        paths: impl IntoIterator<Item = S>,
    ) {
        let paths = paths.into_iter().map(Into::into);
        match self.0.iter_mut().find(|(t, _)| t == object_type) {
            Some((_, existing)) => existing.extend(paths),
            None => self.0.push((object_type.to_owned(), paths.collect())),
        }
    }

    /// Whether nothing was asked for.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A requested expansion and the nested ones below it, by name.
#[derive(Debug)]
struct Node<'s> {
    expansion: &'s TypeExpansion,
    route_name: &'s str,
    route: &'s TypeRoute,
    children: Vec<(String, Node<'s>)>,
}

/// Builds the expansion trees of one type from dotted paths (`["author", "author.employer"]`).
fn trees<'s>(
    settings: &'s ExpansionSettings,
    object_type: &str,
    paths: &[String],
) -> Result<Vec<(String, Node<'s>)>, CallError> {
    let mut roots: Vec<(String, Node<'s>)> = Vec::new();
    for path in paths {
        let mut level = &mut roots;
        let mut current_type = object_type.to_owned();
        for name in path.split('.') {
            let expansion = settings
                .type_expansions
                .get(&current_type)
                .and_then(|e| e.get(name))
                .ok_or_else(|| {
                    CallError::InvalidExpansion(format!(
                        "type {current_type:?} has no expansion {name:?}"
                    ))
                })?;
            let (route_name, route) = settings
                .type_routes
                .get_key_value(&expansion.route)
                .ok_or_else(|| {
                    CallError::InvalidExpansion(format!("unknown route {:?}", expansion.route))
                })?;
            if expansion.source_field == expansion.destination_field {
                return Err(CallError::InvalidExpansion(format!(
                    "{current_type}.{name}: source_field and destination_field must differ"
                )));
            }
            let index = match level.iter().position(|(n, _)| n == name) {
                Some(i) => i,
                None => {
                    let node = Node {
                        expansion,
                        route_name: route_name.as_str(),
                        route,
                        children: Vec::new(),
                    };
                    level.push((name.to_owned(), node));
                    level.len() - 1
                }
            };
            current_type.clone_from(&expansion.object_type);
            level = &mut level[index].1.children;
        }
    }
    Ok(roots)
}

/// A step from a value to one inside it.
#[derive(Clone, Debug)]
enum Step {
    Key(Value),
    Index(usize),
}

fn at_mut<'v>(mut value: &'v mut Value, path: &[Step]) -> Option<&'v mut Value> {
    for step in path {
        value = match (step, value) {
            (Step::Key(k), Value::Map(m)) => m.get_value_mut(k)?,
            (Step::Index(i), Value::Array(a)) => a.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(value)
}

/// Every object in `value` whose `_type` has requested expansions, with the path to it.
fn find_typed<'t, 's>(
    value: &Value,
    path: &mut Vec<Step>,
    requested: &'t HashMap<String, Vec<(String, Node<'s>)>>,
    found: &mut Vec<(Vec<Step>, &'t Node<'s>)>,
) {
    match value {
        Value::Map(map) => {
            if let Some(nodes) = map
                .get("_type")
                .and_then(Value::as_str)
                .and_then(|t| requested.get(t))
            {
                found.extend(nodes.iter().map(|(_, node)| (path.clone(), node)));
            }
            for (k, v) in map.iter() {
                path.push(Step::Key(k.clone()));
                find_typed(v, path, requested, found);
                path.pop();
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                path.push(Step::Index(i));
                find_typed(v, path, requested, found);
                path.pop();
            }
        }
        _ => {}
    }
}

impl Client {
    /// Expands the requested types in `bodies`, in place. `requested` maps a type to its dotted expansion paths.
    pub(crate) async fn expand(
        &self,
        bodies: Vec<&mut Map>,
        requested: &Requested,
        options: &CallOptions,
    ) -> Result<(), CallError> {
        if requested.is_empty() {
            return Ok(());
        }
        let settings = self.expansion_settings().ok_or_else(|| {
            CallError::InvalidExpansion("this client has no expansion settings".to_owned())
        })?;
        let mut forest = HashMap::new();
        for (object_type, paths) in &requested.0 {
            forest.insert(object_type.clone(), trees(settings, object_type, paths)?);
        }
        // Work on the bodies as one array so that a single path reaches any object.
        let mut bodies = bodies;
        let mut root = Value::Array(
            bodies
                .iter_mut()
                .map(|b| Value::Map(std::mem::take(&mut **b)))
                .collect(),
        );
        let mut pending = Vec::new();
        find_typed(&root, &mut Vec::new(), &forest, &mut pending);
        let result = self.expand_pending(&mut root, pending, options).await;
        if let Value::Array(items) = root {
            for (body, item) in bodies.into_iter().zip(items) {
                if let Value::Map(map) = item {
                    *body = map;
                }
            }
        }
        result
    }

    async fn expand_pending<'t, 's>(
        &self,
        root: &mut Value,
        mut pending: Vec<(Vec<Step>, &'t Node<'s>)>,
        options: &CallOptions,
    ) -> Result<(), CallError> {
        // What each route has returned so far: id -> object.
        let mut fetched: HashMap<&str, Map> = HashMap::new();
        while !pending.is_empty() {
            // Batch the ids each route still has to fetch.
            let mut batches: Vec<(&'s str, &'s TypeRoute, bool, Vec<Value>)> = Vec::new();
            for (path, node) in &pending {
                let Some(Value::Map(object)) = at_mut(root, path) else {
                    continue;
                };
                let Some(id) = object
                    .get(&node.expansion.source_field)
                    .filter(|v| !v.is_null())
                else {
                    continue;
                };
                if fetched
                    .get(node.route_name)
                    .is_some_and(|m| m.get_value(id).is_some())
                {
                    continue;
                }
                let raise = node.expansion.raise_action_errors;
                match batches.iter_mut().find(|b| b.0 == node.route_name) {
                    Some(batch) => {
                        batch.2 |= raise;
                        if !batch.3.contains(id) {
                            batch.3.push(id.clone());
                        }
                    }
                    None => batches.push((node.route_name, node.route, raise, vec![id.clone()])),
                }
            }
            let calls = batches.iter().map(|(_, route, _, ids)| {
                let mut body = Map::with_capacity(1);
                body.push(route.request_field.as_str(), Value::Array(ids.clone()));
                let mut call_options = options.clone();
                call_options.raise_action_errors = true;
                self.call_action(&route.service, &route.action, body)
                    .options(call_options)
                    .into_future()
            });
            let outcomes = join_all(calls).await;
            for ((route_name, route, raise, _), outcome) in batches.iter().zip(outcomes) {
                match outcome {
                    Ok(response) => {
                        if let Some(Value::Map(objects)) = response.body.get(&route.response_field)
                        {
                            let known = fetched.entry(route_name).or_default();
                            for (id, object) in objects.iter() {
                                known.insert(id.clone(), object.clone());
                            }
                        }
                    }
                    Err(err @ CallError::Action { .. }) if *raise => return Err(err),
                    Err(CallError::Action { .. }) => {}
                    Err(other) => return Err(other),
                }
            }
            // Fill in what was fetched, and queue the nested expansions of the new objects.
            let mut next = Vec::new();
            for (path, node) in pending {
                let Some(Value::Map(object)) = at_mut(root, &path) else {
                    continue;
                };
                let Some(id) = object.get(&node.expansion.source_field).cloned() else {
                    continue;
                };
                let Some(found) = fetched
                    .get(node.route_name)
                    .and_then(|m| m.get_value(&id))
                    .cloned()
                else {
                    continue;
                };
                object.insert(node.expansion.destination_field.as_str(), found);
                let mut child_path = path;
                child_path.push(Step::Key(Value::from(
                    node.expansion.destination_field.as_str(),
                )));
                next.extend(
                    node.children
                        .iter()
                        .map(|(_, child)| (child_path.clone(), child)),
                );
            }
            pending = next;
        }
        Ok(())
    }
}
