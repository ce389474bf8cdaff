//! Per-operation metrics of the GraphQL endpoint: `graphql_operations_total{type, field,
//! outcome}` and `graphql_operation_duration_seconds{type, field}`.
//!
//! An operation is labelled by its type (`query`, `mutation`) and its first root field
//! (`product`, `createOrder`): both come from the schema, so the labels stay few whatever clients
//! send. The client-chosen operation name is not a label (every distinct value would be a series
//! kept for ever). A request answered with a request error (no data, and errors without a path:
//! it did not parse or validate, or named no operation of its document) is labelled `invalid`.
//! The time covers parsing, validation and execution. When traces are exported, each operation
//! is a span named by the same type and field, with the operation's name.
//!
//! This is done around the schema's `execute` rather than as a schema extension on purpose: with
//! any extension installed, async-graphql resolves every field of every answer through the
//! extension chain (a registry lookup and boxed futures per field, about 7 % of the gateway's
//! instructions for `userOrders`).

use std::{future::Future, time::Instant};

use async_graphql::{
    Request, Response, Value,
    parser::types::{DocumentOperations, OperationDefinition, OperationType, Selection},
};
use opentelemetry::{KeyValue, trace::SpanBuilder};
use service_runtime::spans::ExportedSpan;

/// The labels of one operation.
#[derive(Debug, Clone)]
pub struct Operation {
    kind: &'static str,
    field: String,
    /// The client's name for it, for the span only.
    name: Option<String>,
}

impl Operation {
    /// The operation `request` asks to run, read from its document (parsing it now unless it
    /// was parsed already; the schema then uses that document). `None` when the text does not
    /// parse or names no operation of it.
    pub fn of(request: &mut Request) -> Option<Self> {
        let wanted = request.operation_name.clone();
        let document = request.parsed_query().ok()?;
        let operation = match (&document.operations, wanted.as_deref()) {
            (DocumentOperations::Single(operation), _) => &operation.node,
            (DocumentOperations::Multiple(operations), Some(wanted)) => &operations.get(wanted)?.node,
            (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => {
                &operations.values().next()?.node
            }
            (DocumentOperations::Multiple(_), None) => return None,
        };
        Some(Self::labels(operation, wanted))
    }

    fn labels(operation: &OperationDefinition, name: Option<String>) -> Self {
        let kind = match operation.ty {
            OperationType::Query => "query",
            OperationType::Mutation => "mutation",
            OperationType::Subscription => "subscription",
        };
        let field = match operation.selection_set.node.items.first().map(|selection| &selection.node) {
            Some(Selection::Field(field)) => field.node.name.node.to_string(),
            Some(Selection::FragmentSpread(_) | Selection::InlineFragment(_)) => "fragment".to_owned(),
            None => "none".to_owned(),
        };
        Self { kind, field, name }
    }
}

/// Runs `execution` (the schema executing the request of `operation`) in the operation's span,
/// and counts and times it.
pub async fn measure(operation: Option<Operation>, execution: impl Future<Output = Response>) -> Response {
    let started = Instant::now();
    let span = match &operation {
        Some(operation) => ExportedSpan::start_here(|| {
            SpanBuilder::from_name(format!("{} {}", operation.kind, operation.field)).with_attributes([
                KeyValue::new("graphql.operation.type", operation.kind),
                KeyValue::new("graphql.operation.name", operation.name.clone().unwrap_or_default()),
            ])
        }),
        None => ExportedSpan::NONE,
    };
    let response = span.run(execution).await;
    let (kind, field) = match operation {
        Some(operation) if !is_request_error(&response) => (operation.kind, operation.field),
        _ => ("invalid", "none".to_owned()),
    };
    let outcome = if response.errors.is_empty() { "ok" } else { "error" };
    metrics::counter!("graphql_operations_total", "type" => kind, "field" => field.clone(), "outcome" => outcome)
        .increment(1);
    metrics::histogram!("graphql_operation_duration_seconds", "type" => kind, "field" => field)
        .record(started.elapsed());
    response
}

/// Whether `response` answers a request that was refused before execution (the GraphQL
/// specification's request error: no data, and errors that point at no field).
pub fn is_request_error(response: &Response) -> bool {
    !response.errors.is_empty()
        && matches!(response.data, Value::Null)
        && response.errors.iter().all(|error| error.path.is_empty())
}

#[cfg(test)]
mod tests {
    use async_graphql::{EmptyMutation, EmptySubscription, Schema};

    use super::*;
    use crate::toy_schema::ToyQuery;

    async fn run(query: &str, operation_name: Option<&str>) -> (Option<Operation>, Response) {
        let schema = Schema::new(ToyQuery, EmptyMutation, EmptySubscription);
        let mut request = Request::new(query);
        if let Some(name) = operation_name {
            request = request.operation_name(name);
        }
        let operation = Operation::of(&mut request);
        (operation, schema.execute(request).await)
    }

    #[tokio::test]
    async fn an_operation_is_labelled_by_type_and_first_field_and_a_refused_request_is_a_request_error() {
        let (operation, response) = run("query A { double(value: 1) } query B { fails }", Some("B")).await;
        let operation = operation.expect("named operation");
        assert_eq!(
            (operation.kind, operation.field.as_str(), operation.name.as_deref()),
            ("query", "fails", Some("B"))
        );
        assert!(!is_request_error(&response), "a field error is not a request error: {response:?}");

        for (query, name) in [("{ double(value: ", None), ("query A { double(value: 1) } query B { fails }", None)] {
            let (operation, response) = run(query, name).await;
            assert!(operation.is_none(), "{query}");
            assert!(is_request_error(&response), "{query}: {response:?}");
        }
        let (operation, response) = run("{ triple }", None).await;
        assert_eq!(operation.map(|operation| operation.field), Some("triple".to_owned()));
        assert!(is_request_error(&response), "a validation error: {response:?}");
    }
}
