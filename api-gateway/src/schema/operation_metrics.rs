//! Per-operation metrics of the GraphQL endpoint: `graphql_operations_total{type, field,
//! outcome}` and `graphql_operation_duration_seconds{type, field}`.
//!
//! An operation is labelled by its type (`query`, `mutation`) and its first root field
//! (`product`, `createOrder`): both come from the schema, so the labels stay few whatever clients
//! send. The client-chosen operation name is not a label (every distinct value would be a series
//! kept for ever). A request that never executes (it does not parse or validate) is labelled
//! `invalid`. The time covers parsing, validation and execution. When traces are exported, each
//! executed operation is a span named by the same type and field, with the operation's name.
//!
//! The same extension tells the document cache when a cached text passed validation
//! ([`crate::documents`]). It is the schema's only extension on purpose: every extension costs a
//! boxed future per hook, and the `resolve` hook runs for every field of every answer.

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::Instant,
};

use opentelemetry::{KeyValue, trace::SpanBuilder};
use service_runtime::spans::ExportedSpan;

use crate::documents::ValidationPending;

use async_graphql::{
    Response, ServerError, ServerResult, ValidationResult, Variables,
    extensions::{
        Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextRequest, NextValidation,
    },
    parser::types::{DocumentOperations, ExecutableDocument, OperationDefinition, OperationType, Selection},
};

/// The schema extension that measures every query and mutation.
#[derive(Debug, Clone, Copy, Default)]
pub struct OperationMetrics;

impl ExtensionFactory for OperationMetrics {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(Measurement::default())
    }
}

/// One request's labels, as they become known.
#[derive(Debug, Default)]
struct Measurement {
    /// Every operation of the parsed document: its name, type and first root field.
    operations: Mutex<Vec<(Option<String>, Labels)>>,
    /// The one that executed.
    executed: Mutex<Option<Labels>>,
}

/// The labels of one operation.
#[derive(Debug, Clone)]
struct Labels {
    kind: &'static str,
    field: String,
}

impl Labels {
    fn of(operation: &OperationDefinition) -> Self {
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
        Self { kind, field }
    }
}

#[async_trait::async_trait]
impl Extension for Measurement {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let started = Instant::now();
        let response = next.run(ctx).await;
        let labels = self
            .executed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .unwrap_or(Labels { kind: "invalid", field: "none".to_owned() });
        let outcome = if response.errors.is_empty() { "ok" } else { "error" };
        metrics::counter!(
            "graphql_operations_total",
            "type" => labels.kind,
            "field" => labels.field.clone(),
            "outcome" => outcome
        )
        .increment(1);
        metrics::histogram!("graphql_operation_duration_seconds", "type" => labels.kind, "field" => labels.field)
            .record(started.elapsed());
        response
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        let operations = match &document.operations {
            DocumentOperations::Single(operation) => vec![(None, Labels::of(&operation.node))],
            DocumentOperations::Multiple(operations) => operations
                .iter()
                .map(|(name, operation)| (Some(name.to_string()), Labels::of(&operation.node)))
                .collect(),
        };
        *self.operations.lock().unwrap_or_else(PoisonError::into_inner) = operations;
        Ok(document)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await;
        if result.is_ok()
            && let Some(pending) = ctx.data_opt::<ValidationPending>()
        {
            pending.passed();
        }
        result
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let labels = {
            let operations = self.operations.lock().unwrap_or_else(PoisonError::into_inner);
            match operation_name {
                Some(wanted) => operations.iter().find(|(name, _)| name.as_deref() == Some(wanted)),
                None => operations.first(),
            }
            .map(|(_, labels)| labels.clone())
        };
        let span = match &labels {
            Some(labels) => ExportedSpan::start_here(|| {
                SpanBuilder::from_name(format!("{} {}", labels.kind, labels.field)).with_attributes([
                    KeyValue::new("graphql.operation.type", labels.kind),
                    KeyValue::new("graphql.operation.name", operation_name.unwrap_or_default().to_owned()),
                ])
            }),
            None => ExportedSpan::NONE,
        };
        *self.executed.lock().unwrap_or_else(PoisonError::into_inner) = labels;
        span.run(next.run(ctx, operation_name)).await
    }
}
