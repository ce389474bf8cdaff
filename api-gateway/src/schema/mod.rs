//! The GraphQL schema: the original's queries and mutations, plus `login`, `me`, paged
//! variants with totals, `Order.user` / `OrderItem.product` resolved through DataLoaders, and
//! subscriptions to order status and stock changes fed from the broker.

mod loaders;
mod mutation;
mod objects;
mod operation_metrics;
mod query;
mod subscription;

use async_graphql::{Schema, ValidationMode, dataloader::DataLoader};

pub use loaders::{ProductLoader, UserLoader};
pub use mutation::MutationRoot;
pub use operation_metrics::{Operation, is_request_error, measure};
pub use query::QueryRoot;
pub use subscription::SubscriptionRoot;

use crate::{auth::Auth, backends::Backends, config::Limits, feed::EventFeed};

/// The gateway's schema type.
pub type GatewaySchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// The schema twice, the same but for validation: `strict` runs every rule, `fast` only those
/// that depend on the request, for query texts that passed `strict` before (see
/// [`crate::documents`]).
#[derive(Clone)]
pub struct Schemas {
    pub strict: GatewaySchema,
    pub fast: GatewaySchema,
}

impl std::fmt::Debug for Schemas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schemas").finish_non_exhaustive()
    }
}

/// Builds the schemas with their depth and complexity limits. Per-request data (credentials,
/// loaders) is added by the HTTP handler.
pub fn build(backends: Backends, auth: Auth, feed: EventFeed, limits: &Limits) -> Schemas {
    let build = |mode| {
        Schema::build(QueryRoot, MutationRoot, SubscriptionRoot)
            .data(backends.clone())
            .data(auth.clone())
            .data(feed.clone())
            .limit_depth(limits.max_query_depth)
            .limit_complexity(limits.max_query_complexity)
            .validation_mode(mode)
            .finish()
    };
    Schemas { strict: build(ValidationMode::Strict), fast: build(ValidationMode::Fast) }
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
