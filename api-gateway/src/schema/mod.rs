//! The GraphQL schema: the original's queries and mutations, plus `login`, `me`, paged
//! variants with totals, `Order.user` / `OrderItem.product` resolved through DataLoaders
//! (both through the gateway's [`Caches`] first), and subscriptions to order status and stock
//! changes fed from the broker.

mod loaders;
mod mutation;
mod objects;
mod operation_metrics;
mod query;
mod subscription;

use std::sync::Arc;

use async_graphql::{Schema, ValidationMode, dataloader::DataLoader};

pub use loaders::{ProductLoader, UserLoader};
pub use mutation::MutationRoot;
pub use objects::{Product, User};
pub use operation_metrics::{Operation, is_request_error, measure};
pub use query::QueryRoot;
pub use subscription::SubscriptionRoot;

use crate::{
    auth::Auth,
    backends::Backends,
    cache::{Cacheable, Caches, EntityCache},
    config::Limits,
    feed::EventFeed,
};

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
            .data(feed.caches().clone())
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

/// Fresh loaders for one request: batching happens within a request; what they read is
/// offered to the `caches`, which events keep current across requests.
///
/// A batch runs on a task of its own; it stays in the trace of the operation that started it.
pub fn loaders(backends: &Backends, caches: &Caches) -> (DataLoader<UserLoader>, DataLoader<ProductLoader>) {
    let spawn = |batch| tokio::spawn(service_runtime::spans::in_current_span(batch));
    let users = UserLoader { backends: backends.clone(), cache: Arc::clone(&caches.users) };
    let products = ProductLoader { backends: backends.clone(), cache: Arc::clone(&caches.products) };
    (
        DataLoader::new(users, spawn).max_batch_size(loaders::MAX_BATCH),
        DataLoader::new(products, spawn).max_batch_size(loaders::MAX_BATCH),
    )
}

/// Product `id`: from the cache, else through the request's loader.
pub async fn load_product(ctx: &async_graphql::Context<'_>, id: &str) -> async_graphql::Result<Option<Arc<Product>>> {
    let cache = &ctx.data_unchecked::<Caches>().products;
    load_cached::<_, ProductLoader, _>(ctx, id, cache, |id| query::get_product(ctx, id)).await
}

/// User `id`: from the cache, else through the request's loader. Who may see it is the
/// caller's check.
pub async fn load_user(ctx: &async_graphql::Context<'_>, id: &str) -> async_graphql::Result<Option<Arc<User>>> {
    let cache = &ctx.data_unchecked::<Caches>().users;
    load_cached::<_, UserLoader, _>(ctx, id, cache, |id| query::get_user(ctx, id)).await
}

/// Entity `id` from `cache`, else through loader `L`. An id that is not a UUID (which the
/// backends refuse, naming the field) is asked `alone`, so that it cannot fail a batch of
/// other ids; ids are spelled as the backends spell them, which is how the caches key them.
async fn load_cached<T, L, F>(
    ctx: &async_graphql::Context<'_>,
    id: &str,
    cache: &EntityCache<T>,
    alone: impl FnOnce(String) -> F,
) -> async_graphql::Result<Option<Arc<T>>>
where
    T: Cacheable + Send + Sync + 'static,
    L: async_graphql::dataloader::Loader<String, Value = Arc<T>, Error = Arc<async_graphql::Error>>,
    F: Future<Output = async_graphql::Result<Option<T>>>,
{
    let Ok(key) = service_runtime::validate::id("id", id) else {
        return Ok(alone(id.to_owned()).await?.map(Arc::new));
    };
    if let Some(entity) = cache.get(&key) {
        return Ok(Some(entity));
    }
    let loader = ctx.data_unchecked::<DataLoader<L>>();
    loader.load_one(key).await.map_err(|error| (*error).clone())
}
