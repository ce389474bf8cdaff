//! The GraphQL schema: the original's queries and mutations, plus `login`, `me`, paged
//! variants with totals, and `Order.user` / `OrderItem.product` resolved through DataLoaders.

mod loaders;
mod mutation;
mod objects;
mod query;

use async_graphql::{EmptySubscription, Schema, dataloader::DataLoader};

pub use loaders::{ProductLoader, UserLoader};
pub use mutation::MutationRoot;
pub use query::QueryRoot;

use crate::{auth::Auth, backends::Backends, config::Limits};

/// The gateway's schema type.
pub type GatewaySchema = Schema<QueryRoot, MutationRoot, EmptySubscription>;

/// Builds the schema with its depth and complexity limits. Per-request data (credentials,
/// loaders) is added by the HTTP handler.
pub fn build(backends: Backends, auth: Auth, limits: &Limits) -> GatewaySchema {
    Schema::build(QueryRoot, MutationRoot, EmptySubscription)
        .data(backends)
        .data(auth)
        .limit_depth(limits.max_query_depth)
        .limit_complexity(limits.max_query_complexity)
        .finish()
}

/// The schema without backends, for printing its SDL (the snapshot test and `--print-schema`).
pub fn sdl() -> String {
    Schema::build(QueryRoot, MutationRoot, EmptySubscription).finish().sdl()
}

/// Fresh loaders for one request: batching happens within a request, and nothing is cached
/// across requests (another user's request must not see stale or foreign data).
pub fn loaders(backends: &Backends) -> (DataLoader<UserLoader>, DataLoader<ProductLoader>) {
    (
        DataLoader::new(UserLoader(backends.clone()), tokio::spawn).max_batch_size(loaders::MAX_BATCH),
        DataLoader::new(ProductLoader(backends.clone()), tokio::spawn).max_batch_size(loaders::MAX_BATCH),
    )
}
