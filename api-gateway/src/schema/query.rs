//! Queries: the original's (`user`, `users`, `product`, `products`, `order`, `orders`,
//! `userOrders`) with the same arguments, plus `me` and `…Page` variants that carry totals.

use std::sync::Arc;

use async_graphql::{Context, ID, Object, Result};
use proto::{
    order::{GetOrderRequest, GetOrdersRequest, GetUserOrdersRequest},
    product::{GetProductRequest, GetProductsRequest},
    user::{GetUserRequest, GetUsersRequest},
};

use super::objects::{Order, Page, Product, User};
use crate::{
    auth,
    backends::{Backends, call, call_optional},
    errors,
};

/// The query root.
#[derive(Debug, Default)]
pub struct QueryRoot;

#[Object(name = "Query")]
impl QueryRoot {
    /// The caller's own account. Needs a token.
    #[graphql(complexity = "call_cost(child_complexity)")]
    async fn me(&self, ctx: &Context<'_>) -> Result<User> {
        let viewer = auth::viewer(ctx)?;
        // Always asked, never cached: a deleted account's token stops working at once.
        let user = get_user(ctx, viewer.user_id.clone()).await?;
        user.ok_or_else(|| errors::unauthenticated("the account of this token no longer exists"))
    }

    /// A user by id: yourself, or anyone for an admin.
    #[graphql(complexity = "BATCHED_LOAD + child_complexity")]
    async fn user(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Arc<User>>> {
        auth::self_or_admin(ctx, &id)?;
        super::load_user(ctx, &id).await
    }

    /// All users, oldest first. Admin only.
    #[graphql(complexity = "page_cost(limit, child_complexity)")]
    async fn users(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 1)] page: i32,
        #[graphql(default = 10)] limit: i32,
    ) -> Result<Vec<User>> {
        Ok(list_users(ctx, page, limit, false).await?.items)
    }

    /// `users` with the total count. Admin only.
    #[graphql(complexity = "page_cost(limit, child_complexity)")]
    async fn users_page(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 1)] page: i32,
        #[graphql(default = 10)] limit: i32,
    ) -> Result<Page<User>> {
        list_users(ctx, page, limit, wants_total(ctx)).await
    }

    /// A product by id. Public.
    #[graphql(complexity = "BATCHED_LOAD + child_complexity")]
    async fn product(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Arc<Product>>> {
        super::load_product(ctx, &id).await
    }

    /// Products, oldest first, optionally in one category. Public.
    #[graphql(complexity = "page_cost(limit, child_complexity)")]
    async fn products(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 1)] page: i32,
        #[graphql(default = 10)] limit: i32,
        category: Option<String>,
    ) -> Result<Vec<Product>> {
        Ok(list_products(ctx, page, limit, category, false).await?.items)
    }

    /// `products` with the total count. Public.
    #[graphql(complexity = "page_cost(limit, child_complexity)")]
    async fn products_page(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 1)] page: i32,
        #[graphql(default = 10)] limit: i32,
        category: Option<String>,
    ) -> Result<Page<Product>> {
        list_products(ctx, page, limit, category, wants_total(ctx)).await
    }

    /// An order by id: your own, or any for an admin.
    #[graphql(complexity = "call_cost(child_complexity)")]
    async fn order(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Order>> {
        let viewer = auth::viewer(ctx)?;
        let request = GetOrderRequest { id: id.0 };
        let order = call_optional("order-service", "GetOrder", backends(ctx).orders.clone().get_order(request)).await?;
        match order {
            Some(order) if !viewer.is_admin() && order.user_id != viewer.user_id => {
                Err(errors::forbidden("you may only see your own orders"))
            }
            order => Ok(order.map(Order::from)),
        }
    }

    /// Orders, newest first: all of them for an admin, your own otherwise.
    #[graphql(complexity = "page_cost(limit, child_complexity)")]
    async fn orders(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 1)] page: i32,
        #[graphql(default = 10)] limit: i32,
    ) -> Result<Vec<Order>> {
        Ok(list_orders(ctx, page, limit, false).await?.items)
    }

    /// `orders` with the total count.
    #[graphql(complexity = "page_cost(limit, child_complexity)")]
    async fn orders_page(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 1)] page: i32,
        #[graphql(default = 10)] limit: i32,
    ) -> Result<Page<Order>> {
        list_orders(ctx, page, limit, wants_total(ctx)).await
    }

    /// One user's orders, newest first: your own, or anyone's for an admin.
    #[graphql(complexity = "page_cost(limit, child_complexity)")]
    async fn user_orders(
        &self,
        ctx: &Context<'_>,
        user_id: ID,
        #[graphql(default = 1)] page: i32,
        #[graphql(default = 10)] limit: i32,
    ) -> Result<Vec<Order>> {
        Ok(list_user_orders(ctx, user_id, page, limit, false).await?.items)
    }

    /// `userOrders` with the total count.
    #[graphql(complexity = "page_cost(limit, child_complexity)")]
    async fn user_orders_page(
        &self,
        ctx: &Context<'_>,
        user_id: ID,
        #[graphql(default = 1)] page: i32,
        #[graphql(default = 10)] limit: i32,
    ) -> Result<Page<Order>> {
        list_user_orders(ctx, user_id, page, limit, wants_total(ctx)).await
    }
}

/// Whether the field being resolved (a page) has its `total` selected. Counting is a query of
/// its own in the backend, so it is asked for only then.
fn wants_total(ctx: &Context<'_>) -> bool {
    ctx.look_ahead().field("total").exists()
}

/// A page as the backends answer it. `total` is absent when it was not asked for, and then
/// not selected either, so its 0 is never shown.
fn page<T: async_graphql::OutputType>(items: Vec<T>, total: Option<i32>, page: i32, limit: i32) -> Page<T> {
    Page { items, total: total.unwrap_or_default(), page, limit }
}

async fn list_users(ctx: &Context<'_>, page_number: i32, limit: i32, count_total: bool) -> Result<Page<User>> {
    auth::admin(ctx)?;
    let request = GetUsersRequest { page: Some(page_number), limit: Some(limit), count_total: Some(count_total) };
    let response = call("user-service", "GetUsers", backends(ctx).users.clone().get_users(request)).await?;
    Ok(page(response.users.into_iter().map(User::from).collect(), response.total, response.page, response.limit))
}

async fn list_products(
    ctx: &Context<'_>,
    page_number: i32,
    limit: i32,
    category: Option<String>,
    count_total: bool,
) -> Result<Page<Product>> {
    let request =
        GetProductsRequest { page: Some(page_number), limit: Some(limit), category, count_total: Some(count_total) };
    let response = call("product-service", "GetProducts", backends(ctx).products.clone().get_products(request)).await?;
    let products = response.products.into_iter().map(Product::from).collect();
    Ok(page(products, response.total, response.page, response.limit))
}

/// Every order for an admin, the caller's own otherwise.
async fn list_orders(ctx: &Context<'_>, page_number: i32, limit: i32, count_total: bool) -> Result<Page<Order>> {
    let viewer = auth::viewer(ctx)?;
    if !viewer.is_admin() {
        return list_user_orders(ctx, ID(viewer.user_id.clone()), page_number, limit, count_total).await;
    }
    let request = GetOrdersRequest { page: Some(page_number), limit: Some(limit), count_total: Some(count_total) };
    let response = call("order-service", "GetOrders", backends(ctx).orders.clone().get_orders(request)).await?;
    Ok(order_page(response))
}

/// `user_id`'s orders: the caller's own, or anyone's for an admin.
async fn list_user_orders(
    ctx: &Context<'_>,
    user_id: ID,
    page_number: i32,
    limit: i32,
    count_total: bool,
) -> Result<Page<Order>> {
    auth::self_or_admin(ctx, &user_id)?;
    let request = GetUserOrdersRequest {
        user_id: user_id.0,
        page: Some(page_number),
        limit: Some(limit),
        count_total: Some(count_total),
    };
    let response =
        call("order-service", "GetUserOrders", backends(ctx).orders.clone().get_user_orders(request)).await?;
    Ok(order_page(response))
}

fn order_page(response: proto::order::GetOrdersResponse) -> Page<Order> {
    page(response.orders.into_iter().map(Order::from).collect(), response.total, response.page, response.limit)
}

pub(super) fn backends<'a>(ctx: &Context<'a>) -> &'a Backends {
    ctx.data_unchecked::<Backends>()
}

/// What a backend call adds to an operation's complexity, beside the fields it returns: the
/// limit (`MAX_QUERY_COMPLEXITY`) bounds the work an operation makes the services do, and a
/// field that calls one costs far more than a field read from an answer already fetched.
pub(super) const BACKEND_CALL: usize = 10;

/// What a field resolved through the request's loaders adds: its id joins one batched call
/// (or is served from the gateway's cache), so it costs less than a call of its own.
pub(super) const BATCHED_LOAD: usize = 2;

/// A field that makes one backend call, and its children.
pub(super) fn call_cost(child_complexity: usize) -> usize {
    BACKEND_CALL.saturating_add(child_complexity)
}

/// A list field: one backend call, and its children once per row it may return. Out-of-range
/// limits are clamped here; the backend rejects them with a clear error.
fn page_cost(limit: i32, child_complexity: usize) -> usize {
    let rows = usize::try_from(limit.clamp(1, service_runtime::paging::MAX_LIMIT)).unwrap_or(1);
    call_cost(rows.saturating_mul(child_complexity))
}

/// `GetUser` alone: for an id user-service should judge (see [`super::load_user`]).
pub(super) async fn get_user(ctx: &Context<'_>, id: String) -> Result<Option<User>> {
    let request = GetUserRequest { id };
    Ok(call_optional("user-service", "GetUser", backends(ctx).users.clone().get_user(request)).await?.map(User::from))
}

/// `GetProduct` alone: for an id product-service should judge (see [`super::load_product`]).
pub(super) async fn get_product(ctx: &Context<'_>, id: String) -> Result<Option<Product>> {
    let mut products = backends(ctx).products.clone();
    let request = GetProductRequest { id };
    Ok(call_optional("product-service", "GetProduct", products.get_product(request)).await?.map(Product::from))
}
