//! Limits on an operation's shape that depth and complexity do not see: how many fields it
//! renames (aliases) and how many fields it asks at its root.
//!
//! Aliases let one request ask the same field many times: 500 aliases of `product(id: …)` cost
//! a complexity of 500 and fit in the body limit, and before the caches and loaders each was a
//! backend call. Root fields are where every backend call of a request starts. Both are counted
//! as the operation would run, with fragments expanded (a fragment spread five times counts
//! five times), so a fragment cannot hide them; a fragment's count is taken once however often
//! it is spread, so a document of fragments spreading each other cannot make the count slow.
//!
//! A refusal, like the schema's own depth and complexity refusals (given the same form here),
//! is `LIMIT_EXCEEDED` with `extensions.limit` naming the setting. The check runs beside the
//! schema rather than as an async-graphql extension: with any extension installed, every field
//! of every request takes async-graphql's slower resolve path.

use std::{collections::HashMap, sync::Arc};

use async_graphql::{
    Data, ErrorExtensions as _, Executor, Name, Positioned, Response, ServerError,
    parser::types::{ExecutableDocument, FragmentDefinition, Selection, SelectionSet},
};
use futures::{StreamExt as _, stream::BoxStream};

use crate::{errors::code, schema::GatewaySchema};

/// The most aliases and root fields one operation may have, and the depth and complexity limits
/// the schema checks (for naming them in its errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShapeLimits {
    /// `MAX_ALIASES`.
    pub max_aliases: usize,
    /// `MAX_ROOT_FIELDS`.
    pub max_root_fields: usize,
    /// `MAX_QUERY_DEPTH`.
    pub max_depth: usize,
    /// `MAX_QUERY_COMPLEXITY`.
    pub max_complexity: usize,
}

/// async-graphql's messages for its depth and complexity checks, which carry no code of their
/// own (a test pins them, so an upgrade that changes them shows).
const TOO_DEEP: &str = "Query is nested too deep.";
const TOO_COMPLEX: &str = "Query is too complex.";

impl ShapeLimits {
    /// Gives the schema's depth and complexity refusals the same form as this module's own:
    /// `LIMIT_EXCEEDED`, with the setting named.
    pub fn name_the_limits(&self, response: &mut Response) {
        for error in &mut response.errors {
            let named = match error.message.as_str() {
                TOO_DEEP => too_large(
                    format!("the operation is nested deeper than {} levels", self.max_depth),
                    "MAX_QUERY_DEPTH",
                ),
                TOO_COMPLEX => too_large(
                    format!("the operation's complexity is over {}", self.max_complexity),
                    "MAX_QUERY_COMPLEXITY",
                ),
                _ => continue,
            };
            *error = named;
        }
    }

    /// Checks every operation of `document`; the error names the operation, the count and the
    /// setting that bounds it.
    pub fn check(&self, document: &ExecutableDocument) -> Result<(), ServerError> {
        let mut counts = Counts { fragments: &document.fragments, memo: HashMap::new() };
        for (name, operation) in document.operations.iter() {
            let selection = &operation.node.selection_set.node;
            let what = || name.map_or_else(|| "the operation".to_owned(), |name| format!("operation `{name}`"));
            let aliases = counts.count(selection, Kind::Aliases, &mut Vec::new());
            if aliases > self.max_aliases {
                return Err(too_large(
                    format!("{} has {aliases} aliases; at most {} are allowed", what(), self.max_aliases),
                    "MAX_ALIASES",
                ));
            }
            let roots = counts.count(selection, Kind::RootFields, &mut Vec::new());
            if roots > self.max_root_fields {
                return Err(too_large(
                    format!("{} asks {roots} fields at its root; at most {} are allowed", what(), self.max_root_fields),
                    "MAX_ROOT_FIELDS",
                ));
            }
        }
        Ok(())
    }

    /// The shape error of `request`, if its text parses and breaks a limit. A text that does
    /// not parse is left to the schema, which reports where.
    pub fn refusal(&self, request: &mut async_graphql::Request) -> Option<ServerError> {
        request.parsed_query().ok().and_then(|document| self.check(document).err())
    }
}

/// The gateway's schema behind the shape check, for WebSocket connections (their queries,
/// mutations and subscriptions); the HTTP handler checks its requests itself, beside the
/// document cache.
#[derive(Clone)]
pub struct CheckedSchema {
    pub schema: GatewaySchema,
    pub limits: ShapeLimits,
}

impl Executor for CheckedSchema {
    async fn execute(&self, mut request: async_graphql::Request) -> Response {
        match self.limits.refusal(&mut request) {
            Some(error) => Response::from_errors(vec![error]),
            None => {
                let mut response = self.schema.execute(request).await;
                self.limits.name_the_limits(&mut response);
                response
            }
        }
    }

    fn execute_stream(
        &self,
        mut request: async_graphql::Request,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, Response> {
        match self.limits.refusal(&mut request) {
            Some(error) => futures::stream::once(std::future::ready(Response::from_errors(vec![error]))).boxed(),
            None => {
                let limits = self.limits;
                Executor::execute_stream(&self.schema, request, session_data)
                    .map(move |mut response| {
                        limits.name_the_limits(&mut response);
                        response
                    })
                    .boxed()
            }
        }
    }
}

/// A request error naming the limit that was hit.
fn too_large(message: String, limit: &'static str) -> ServerError {
    let error = async_graphql::Error::new(format!("{message} ({limit})")).extend_with(|_, extensions| {
        extensions.set("code", code::LIMIT_EXCEEDED);
        extensions.set("limit", limit);
    });
    error.into_server_error(async_graphql::Pos::default())
}

/// The counts of a document's fragments, each taken once.
struct Counts<'a> {
    fragments: &'a HashMap<Name, Positioned<FragmentDefinition>>,
    memo: HashMap<(&'a str, Kind), usize>,
}

impl<'a> Counts<'a> {
    /// What `kind` counts in `set`, fragments expanded: aliased fields in it and everything
    /// below, or the fields at its own level. `path` holds the fragments being expanded: a
    /// fragment that spreads itself counts nothing more (validation refuses the document anyway).
    fn count(&mut self, set: &'a SelectionSet, kind: Kind, path: &mut Vec<&'a str>) -> usize {
        set.items.iter().fold(0, |total, item| {
            let count = match &item.node {
                Selection::Field(field) => match kind {
                    Kind::Aliases => usize::from(field.node.alias.is_some()).saturating_add(self.count(
                        &field.node.selection_set.node,
                        kind,
                        path,
                    )),
                    Kind::RootFields => 1,
                },
                Selection::InlineFragment(fragment) => self.count(&fragment.node.selection_set.node, kind, path),
                Selection::FragmentSpread(spread) => self.fragment(spread.node.fragment_name.node.as_str(), kind, path),
            };
            total.saturating_add(count)
        })
    }

    /// The count of fragment `name`, from the memo or counted now. An unknown fragment counts
    /// nothing (validation reports it).
    fn fragment(&mut self, name: &str, kind: Kind, path: &mut Vec<&'a str>) -> usize {
        let Some((name, fragment)) = self.fragments.get_key_value(name) else { return 0 };
        let name = name.as_str();
        if let Some(count) = self.memo.get(&(name, kind)) {
            return *count;
        }
        if path.contains(&name) {
            return 0;
        }
        path.push(name);
        let count = self.count(&fragment.node.selection_set.node, kind, path);
        path.pop();
        self.memo.insert((name, kind), count);
        count
    }
}

/// What is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    /// Aliased fields, at every level.
    Aliases,
    /// Fields at the operation's own level.
    RootFields,
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ShapeLimits = ShapeLimits { max_aliases: 3, max_root_fields: 2, max_depth: 2, max_complexity: 3 };

    #[tokio::test]
    async fn the_schemas_depth_and_complexity_refusals_name_their_settings() {
        use async_graphql::{EmptyMutation, EmptySubscription, Schema};

        let schema = Schema::build(crate::toy_schema::ToyQuery, EmptyMutation, EmptySubscription)
            .limit_depth(LIMITS.max_depth)
            .limit_complexity(LIMITS.max_complexity)
            .finish();
        let mut wide =
            schema.execute("{ a: double(value: 1) b: double(value: 2) c: double(value: 3) d: double(value: 4) }").await;
        LIMITS.name_the_limits(&mut wide);
        let extensions = wide.errors[0].extensions.as_ref().expect("extensions");
        assert_eq!(
            extensions.get("limit"),
            Some(&async_graphql::Value::from("MAX_QUERY_COMPLEXITY")),
            "{:?}",
            wide.errors
        );
        assert!(wide.errors[0].message.contains("complexity is over 3"), "{:?}", wide.errors);
    }

    fn check(query: &str) -> Result<(), String> {
        let document = async_graphql::parser::parse_query(query).expect("parses");
        LIMITS.check(&document).map_err(|error| {
            let limit = error.extensions.as_ref().and_then(|extensions| extensions.get("limit").cloned());
            format!("{} [{limit:?}]", error.message)
        })
    }

    #[test]
    fn aliases_and_root_fields_up_to_the_limits_pass() {
        assert_eq!(check("{ a: product(id: 1) { id } b: product(id: 2) { n: name } }"), Ok(()));
        assert_eq!(check("{ me { id } products { id } }"), Ok(()));
    }

    #[test]
    fn one_alias_past_the_limit_is_refused_naming_it() {
        let error = check("{ a: product(id: 1) { id } b: product(id: 2) { id } c: me { x: id } }").unwrap_err();
        assert!(error.contains("4 aliases; at most 3") && error.contains("MAX_ALIASES"), "{error}");
    }

    #[test]
    fn fragments_count_each_time_they_are_spread() {
        let query = "query Q { product(id: 1) { ...F } me { ...F } } fragment F on Product { a: id b: name }";
        let error = check(query).unwrap_err();
        assert!(error.contains("operation `Q` has 4 aliases"), "{error}");
        let roots = "{ ...R ... on Query { me { id } } } fragment R on Query { products { id } user(id: 1) { id } }";
        let error = check(roots).unwrap_err();
        assert!(error.contains("3 fields at its root") && error.contains("MAX_ROOT_FIELDS"), "{error}");
    }

    #[test]
    fn fragments_that_spread_each_other_are_counted_quickly_and_cycles_end() {
        // Each fragment spreads the next twice: 2^40 aliases when expanded, counted once each.
        let mut query = String::from("{ ...F0 }");
        for level in 0..40 {
            query.push_str(&format!(" fragment F{level} on Query {{ ...F{next} ...F{next} }}", next = level + 1));
        }
        query.push_str(" fragment F40 on Query { a: me { id } }");
        assert!(check(&query).unwrap_err().contains("MAX_ALIASES"));
        assert_eq!(check("{ ...A } fragment A on Query { ...B } fragment B on Query { ...A me { id } }"), Ok(()));
    }
}
