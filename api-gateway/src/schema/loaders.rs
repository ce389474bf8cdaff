//! Batch loaders: every `Order.user` and `OrderItem.product` in one request becomes one
//! `GetUsersByIds` / `GetProductsByIds` call per 100 ids, never one call per item.

use std::{collections::HashMap, sync::Arc};

use async_graphql::dataloader::Loader;
use proto::{product::GetProductsByIdsRequest, user::GetUsersByIdsRequest};

use super::objects::{Product, User};
use crate::backends::{Backends, call};

/// The most ids the batch RPCs accept.
pub const MAX_BATCH: usize = 100;

/// Loads users by id.
#[derive(Debug)]
pub struct UserLoader(pub Backends);

impl Loader<String> for UserLoader {
    type Value = User;
    type Error = Arc<async_graphql::Error>;

    async fn load(&self, ids: &[String]) -> Result<HashMap<String, User>, Self::Error> {
        let request = GetUsersByIdsRequest { ids: ids.to_vec() };
        let response = call("user-service", "GetUsersByIds", self.0.users.clone().get_users_by_ids(request))
            .await
            .map_err(Arc::new)?;
        Ok(response.users.into_iter().map(|user| (user.id.clone(), User::from(user))).collect())
    }
}

/// Loads products by id.
#[derive(Debug)]
pub struct ProductLoader(pub Backends);

impl Loader<String> for ProductLoader {
    type Value = Product;
    type Error = Arc<async_graphql::Error>;

    async fn load(&self, ids: &[String]) -> Result<HashMap<String, Product>, Self::Error> {
        let request = GetProductsByIdsRequest { ids: ids.to_vec() };
        let response =
            call("product-service", "GetProductsByIds", self.0.products.clone().get_products_by_ids(request))
                .await
                .map_err(Arc::new)?;
        Ok(response.products.into_iter().map(|product| (product.id.clone(), Product::from(product))).collect())
    }
}
