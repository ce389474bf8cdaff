//! The GraphQL schema: the original's queries and mutations, plus `login`, `me`, paged
//! variants with totals, `Order.user` / `OrderItem.product` resolved through DataLoaders, and
//! subscriptions to order status and stock changes fed from the broker.

mod loaders;
mod mutation;
mod objects;
mod operation_metrics;
mod query;
mod subscription;

use async_graphql::{Schema, dataloader::DataLoader};

pub use loaders::{ProductLoader, UserLoader};
pub use mutation::MutationRoot;
pub use query::QueryRoot;
pub use subscription::SubscriptionRoot;

use crate::{auth::Auth, backends::Backends, config::Limits, feed::EventFeed};

/// The gateway's schema type.
pub type GatewaySchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// Builds the schema with its depth and complexity limits. Per-request data (credentials,
/// loaders) is added by the HTTP handler.
pub fn build(backends: Backends, auth: Auth, feed: EventFeed, limits: &Limits) -> GatewaySchema {
    Schema::build(QueryRoot, MutationRoot, SubscriptionRoot)
        .data(backends)
        .data(auth)
        .data(feed)
        .limit_depth(limits.max_query_depth)
        .limit_complexity(limits.max_query_complexity)
        .extension(operation_metrics::OperationMetrics)
        .finish()
}

/// The schema without backends, for printing its SDL (the snapshot test and `--print-schema`).
pub fn sdl() -> String {
    Schema::build(QueryRoot, MutationRoot, SubscriptionRoot).finish().sdl()
}

/// Fresh loaders for one request: batching happens within a request, and nothing is cached
/// across requests (another user's request must not see stale or foreign data).
///
/// A batch runs on a task of its own; it stays in the trace of the operation that started it.
pub fn loaders(backends: &Backends) -> (DataLoader<UserLoader>, DataLoader<ProductLoader>) {
    let spawn = |batch| tokio::spawn(service_runtime::spans::in_current_span(batch));
    (
        DataLoader::new(UserLoader(backends.clone()), spawn).max_batch_size(loaders::MAX_BATCH),
        DataLoader::new(ProductLoader(backends.clone()), spawn).max_batch_size(loaders::MAX_BATCH),
    )
}
