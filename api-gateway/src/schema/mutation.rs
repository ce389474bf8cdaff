//! Mutations: the original's, with the same arguments, plus `login`. Every mutation but
//! `createUser` and `login` needs a token; catalog changes need the admin role.

use async_graphql::{Context, ID, InputObject, Object, Result};
use proto::{
    order::{CreateOrderRequest, GetOrderRequest, OrderStatus, UpdateOrderStatusRequest},
    product::{CreateProductRequest, DeleteProductRequest, UpdateProductRequest},
    user::{AuthenticateUserRequest, CreateUserRequest, DeleteUserRequest, Role, UpdateUserRequest},
};

use super::{
    objects::{AuthPayload, DeleteResult, Order, Product, User},
    query::{backends, call_cost},
};
use crate::{
    auth::{self, Auth},
    backends::call,
    cache::{Cacheable, Caches, EntityCache},
    client_addr::ClientAddress,
    errors,
};

/// The mutation root.
#[derive(Debug, Default)]
pub struct MutationRoot;

/// One line of a new order. `price` is optional: the catalog decides, and a price that
/// disagrees with it is rejected.
#[derive(Debug, Clone, InputObject)]
pub struct OrderItemInput {
    pub product_id: ID,
    pub quantity: i32,
    pub price: Option<f64>,
}

/// The status a customer may set on their own order; every other change is an admin's.
const CUSTOMER_SETTABLE_STATUS: OrderStatus = OrderStatus::Cancelled;

#[Object(name = "Mutation")]
impl MutationRoot {
    /// Registers an account (role USER). Public.
    #[graphql(complexity = "call_cost(child_complexity)")]
    async fn create_user(&self, ctx: &Context<'_>, name: String, email: String, password: String) -> Result<User> {
        let request = CreateUserRequest { name, email, password };
        Ok(call("user-service", "CreateUser", backends(ctx).users.clone().create_user(request)).await?.into())
    }

    /// Checks an email and password and returns a token. Public.
    #[graphql(complexity = "call_cost(child_complexity)")]
    async fn login(&self, ctx: &Context<'_>, email: String, password: String) -> Result<AuthPayload> {
        let mut request = tonic::Request::new(AuthenticateUserRequest { email, password });
        // user-service counts failed logins per client, so it is told which client this is.
        if let Some(ClientAddress(client)) = ctx.data_opt::<ClientAddress>()
            && let Ok(value) = client.to_string().parse()
        {
            request.metadata_mut().insert(proto::user::CLIENT_ADDRESS_METADATA, value);
        }
        let user =
            call("user-service", "AuthenticateUser", backends(ctx).users.clone().authenticate_user(request)).await?;
        let issued = user.role.parse::<Role>().map_err(anyhow::Error::from).and_then(|role| {
            ctx.data_unchecked::<Auth>().issue(&user.id, role).map_err(|error| error.context("signing the token"))
        });
        let (token, expires) = issued.map_err(|error| {
            tracing::error!(error = format!("{error:#}"), user_role = user.role, "cannot issue a token");
            errors::with_code("internal error", errors::code::INTERNAL)
        })?;
        let expires_at = chrono::DateTime::from_timestamp(expires, 0).unwrap_or_default().to_rfc3339();
        Ok(AuthPayload { token, expires_at, user: user.into() })
    }

    /// Changes your own name or email (an admin: anyone's).
    #[graphql(complexity = "call_cost(child_complexity)")]
    async fn update_user(
        &self,
        ctx: &Context<'_>,
        id: ID,
        name: Option<String>,
        email: Option<String>,
    ) -> Result<User> {
        auth::self_or_admin(ctx, &id)?;
        let request = UpdateUserRequest { id: id.0.clone(), name, email };
        let result = call("user-service", "UpdateUser", backends(ctx).users.clone().update_user(request)).await;
        changed(&ctx.data_unchecked::<Caches>().users, &id);
        Ok(result?.into())
    }

    /// Deletes your own account (an admin: anyone's).
    #[graphql(complexity = "call_cost(child_complexity)")]
    async fn delete_user(&self, ctx: &Context<'_>, id: ID) -> Result<DeleteResult> {
        auth::self_or_admin(ctx, &id)?;
        let request = DeleteUserRequest { id: id.0.clone() };
        let response = call("user-service", "DeleteUser", backends(ctx).users.clone().delete_user(request)).await;
        changed(&ctx.data_unchecked::<Caches>().users, &id);
        let response = response?;
        Ok(DeleteResult { success: response.success, message: response.message })
    }

    /// Adds a product to the catalog. Admin only.
    #[graphql(complexity = "call_cost(child_complexity)")]
    async fn create_product(
        &self,
        ctx: &Context<'_>,
        name: String,
        #[graphql(default)] description: String,
        price: f64,
        stock: i32,
        category: String,
    ) -> Result<Product> {
        auth::admin(ctx)?;
        let request = CreateProductRequest { name, description, price, stock, category };
        Ok(call("product-service", "CreateProduct", backends(ctx).products.clone().create_product(request))
            .await?
            .into())
    }

    /// Changes the given fields of a product. Admin only.
    #[allow(clippy::too_many_arguments)]
    #[graphql(complexity = "call_cost(child_complexity)")]
    async fn update_product(
        &self,
        ctx: &Context<'_>,
        id: ID,
        name: Option<String>,
        description: Option<String>,
        price: Option<f64>,
        stock: Option<i32>,
        category: Option<String>,
    ) -> Result<Product> {
        auth::admin(ctx)?;
        let request = UpdateProductRequest { id: id.0.clone(), name, description, price, stock, category };
        let result =
            call("product-service", "UpdateProduct", backends(ctx).products.clone().update_product(request)).await;
        changed(&ctx.data_unchecked::<Caches>().products, &id);
        Ok(result?.into())
    }

    /// Removes a product from the catalog. Admin only.
    #[graphql(complexity = "call_cost(child_complexity)")]
    async fn delete_product(&self, ctx: &Context<'_>, id: ID) -> Result<DeleteResult> {
        auth::admin(ctx)?;
        let request = DeleteProductRequest { id: id.0.clone() };
        let mut products = backends(ctx).products.clone();
        let response = call("product-service", "DeleteProduct", products.delete_product(request)).await;
        changed(&ctx.data_unchecked::<Caches>().products, &id);
        let response = response?;
        Ok(DeleteResult { success: response.success, message: response.message })
    }

    /// Places an order for yourself (an admin: for anyone). Prices come from the catalog.
    // order-service asks user-service and product-service in turn: three calls in all.
    #[graphql(complexity = "call_cost(call_cost(call_cost(child_complexity)))")]
    async fn create_order(
        &self,
        ctx: &Context<'_>,
        user_id: ID,
        items: Vec<OrderItemInput>,
        total_amount: Option<f64>,
    ) -> Result<Order> {
        auth::self_or_admin(ctx, &user_id)?;
        let items = items
            .into_iter()
            .map(|item| proto::order::OrderItem {
                product_id: item.product_id.0,
                quantity: item.quantity,
                price: item.price,
            })
            .collect();
        let request = CreateOrderRequest { user_id: user_id.0, items, total_amount };
        Ok(call("order-service", "CreateOrder", backends(ctx).orders.clone().create_order(request)).await?.into())
    }

    /// Moves an order along its status machine. Admins may make any legal change; a customer
    /// may only cancel their own order.
    #[graphql(complexity = "call_cost(child_complexity)")]
    async fn update_order_status(&self, ctx: &Context<'_>, id: ID, status: String) -> Result<Order> {
        let viewer = auth::viewer(ctx)?;
        if !viewer.is_admin() {
            if status.parse::<OrderStatus>().ok() != Some(CUSTOMER_SETTABLE_STATUS) {
                return Err(errors::forbidden("only an admin may set this status; you may cancel your own order"));
            }
            let request = GetOrderRequest { id: id.0.clone() };
            let order = call("order-service", "GetOrder", backends(ctx).orders.clone().get_order(request)).await?;
            if order.user_id != viewer.user_id {
                return Err(errors::forbidden("you may only change your own orders"));
            }
        }
        let request = UpdateOrderStatusRequest { id: id.0, status };
        let mut orders = backends(ctx).orders.clone();
        Ok(call("order-service", "UpdateOrderStatus", orders.update_order_status(request)).await?.into())
    }
}

/// This gateway changed entity `id` (or may have: a call that failed may still have been
/// done): its next read asks the backend, whatever the event feed has seen yet.
fn changed<T: Cacheable>(cache: &EntityCache<T>, id: &str) {
    if let Ok(key) = service_runtime::validate::id("id", id) {
        cache.changed(&key);
    }
}
