//! Batch loaders: every `Order.user` and `OrderItem.product` in one request becomes one
//! `GetUsersByIds` / `GetProductsByIds` call per 100 ids, never one call per item. What they
//! read, and which ids they found absent, the gateway's caches are told.

use std::{collections::HashMap, sync::Arc};

use async_graphql::dataloader::Loader;
use proto::{product::GetProductsByIdsRequest, user::GetUsersByIdsRequest};

use super::objects::{Product, User};
use crate::{
    backends::{Backends, call},
    cache::{ProductCache, UserCache},
};

/// The most ids the batch RPCs accept.
pub const MAX_BATCH: usize = service_runtime::validate::MAX_ID_BATCH;

/// Loads users by id and offers them to the cache.
#[derive(Debug)]
pub struct UserLoader {
    pub backends: Backends,
    pub cache: Arc<UserCache>,
}

impl Loader<String> for UserLoader {
    type Value = Arc<User>;
    type Error = Arc<async_graphql::Error>;

    async fn load(&self, ids: &[String]) -> Result<HashMap<String, Arc<User>>, Self::Error> {
        let request = GetUsersByIdsRequest { ids: ids.to_vec() };
        // Taken before asking: a change that arrives meanwhile keeps this answer out.
        let ticket = self.cache.ticket();
        let response = call("user-service", "GetUsersByIds", self.backends.users.clone().get_users_by_ids(request))
            .await
            .map_err(Arc::new)?;
        Ok(self.cache.keep_answer(ticket, ids, response.users.into_iter().map(User::from).collect()))
    }
}

/// Loads products by id and offers them to the cache.
#[derive(Debug)]
pub struct ProductLoader {
    pub backends: Backends,
    pub cache: Arc<ProductCache>,
}

impl Loader<String> for ProductLoader {
    type Value = Arc<Product>;
    type Error = Arc<async_graphql::Error>;

    async fn load(&self, ids: &[String]) -> Result<HashMap<String, Arc<Product>>, Self::Error> {
        let request = GetProductsByIdsRequest { ids: ids.to_vec() };
        // Taken before asking: a change that arrives meanwhile keeps this answer out.
        let ticket = self.cache.ticket();
        let response =
            call("product-service", "GetProductsByIds", self.backends.products.clone().get_products_by_ids(request))
                .await
                .map_err(Arc::new)?;
        Ok(self.cache.keep_answer(ticket, ids, response.products.into_iter().map(Product::from).collect()))
    }
}
