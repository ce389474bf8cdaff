//! Queries: the original's (`user`, `users`, `product`, `products`, `order`, `orders`,
//! `userOrders`) with the same arguments, plus `me` and `…Page` variants that carry totals.

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
    async fn me(&self, ctx: &Context<'_>) -> Result<User> {
        let viewer = auth::viewer(ctx)?;
        let request = GetUserRequest { id: viewer.user_id.clone() };
        let user = call_optional("user-service", "GetUser", backends(ctx).users.clone().get_user(request)).await?;
        user.map(User::from).ok_or_else(|| errors::unauthenticated("the account of this token no longer exists"))
    }

    /// A user by id: yourself, or anyone for an admin.
    async fn user(&self, ctx: &Context<'_>, id: ID) -> Result<Option<User>> {
        auth::self_or_admin(ctx, &id)?;
        let request = GetUserRequest { id: id.0 };
        Ok(call_optional("user-service", "GetUser", backends(ctx).users.clone().get_user(request))
            .await?
            .map(User::from))
    }

    /// All users, oldest first. Admin only.
    #[graphql(complexity = "page_cost(limit, child_complexity)")]
    async fn users(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 1)] page: i32,
        #[graphql(default = 10)] limit: i32,
    ) -> Result<Vec<User>> {
        Ok(self.users_page(ctx, page, limit).await?.items)
    }

    /// `users` with the total count. Admin only.
    #[graphql(complexity = "page_cost(limit, child_complexity)")]
    async fn users_page(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 1)] page: i32,
        #[graphql(default = 10)] limit: i32,
    ) -> Result<Page<User>> {
        auth::admin(ctx)?;
        let request = GetUsersRequest { page: Some(page), limit: Some(limit) };
        let response = call("user-service", "GetUsers", backends(ctx).users.clone().get_users(request)).await?;
        Ok(Page {
            items: response.users.into_iter().map(User::from).collect(),
            total: response.total,
            page: response.page,
            limit: response.limit,
        })
    }

    /// A product by id. Public.
    async fn product(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Product>> {
        let request = GetProductRequest { id: id.0 };
        let mut products = backends(ctx).products.clone();
        Ok(call_optional("product-service", "GetProduct", products.get_product(request)).await?.map(Product::from))
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
        Ok(self.products_page(ctx, page, limit, category).await?.items)
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
        let request = GetProductsRequest { page: Some(page), limit: Some(limit), category };
        let response =
            call("product-service", "GetProducts", backends(ctx).products.clone().get_products(request)).await?;
        Ok(Page {
            items: response.products.into_iter().map(Product::from).collect(),
            total: response.total,
            page: response.page,
            limit: response.limit,
        })
    }

    /// An order by id: your own, or any for an admin.
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
        Ok(self.orders_page(ctx, page, limit).await?.items)
    }

    /// `orders` with the total count.
    #[graphql(complexity = "page_cost(limit, child_complexity)")]
    async fn orders_page(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 1)] page: i32,
        #[graphql(default = 10)] limit: i32,
    ) -> Result<Page<Order>> {
        let viewer = auth::viewer(ctx)?;
        if viewer.is_admin() {
            let request = GetOrdersRequest { page: Some(page), limit: Some(limit) };
            let response = call("order-service", "GetOrders", backends(ctx).orders.clone().get_orders(request)).await?;
            Ok(order_page(response))
        } else {
            user_orders_page(ctx, viewer.user_id.clone(), page, limit).await
        }
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
        Ok(self.user_orders_page(ctx, user_id, page, limit).await?.items)
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
        auth::self_or_admin(ctx, &user_id)?;
        user_orders_page(ctx, user_id.0, page, limit).await
    }
}

async fn user_orders_page(ctx: &Context<'_>, user_id: String, page: i32, limit: i32) -> Result<Page<Order>> {
    let request = GetUserOrdersRequest { user_id, page: Some(page), limit: Some(limit) };
    let response =
        call("order-service", "GetUserOrders", backends(ctx).orders.clone().get_user_orders(request)).await?;
    Ok(order_page(response))
}

fn order_page(response: proto::order::GetOrdersResponse) -> Page<Order> {
    Page {
        items: response.orders.into_iter().map(Order::from).collect(),
        total: response.total,
        page: response.page,
        limit: response.limit,
    }
}

pub(super) fn backends<'a>(ctx: &Context<'a>) -> &'a Backends {
    ctx.data_unchecked::<Backends>()
}

/// A list field costs its children once per row it may return. Out-of-range limits are
/// clamped here; the backend rejects them with a clear error.
fn page_cost(limit: i32, child_complexity: usize) -> usize {
    usize::try_from(limit.clamp(1, 100)).unwrap_or(1) * child_complexity
}
