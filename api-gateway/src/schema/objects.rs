//! The GraphQL object types, converted from the backends' messages.

use std::sync::Arc;

use async_graphql::{ComplexObject, Context, ID, SimpleObject};

/// A user. The password never leaves user-service.
#[derive(Debug, Clone, SimpleObject)]
pub struct User {
    pub id: ID,
    pub name: String,
    pub email: String,
    /// USER or ADMIN.
    pub role: String,
    pub created_at: String,
    pub updated_at: String,
}

impl From<proto::user::User> for User {
    fn from(user: proto::user::User) -> Self {
        Self {
            id: ID(user.id),
            name: user.name,
            email: user.email,
            role: user.role,
            created_at: user.created_at,
            updated_at: user.updated_at,
        }
    }
}

/// A catalog product.
#[derive(Debug, Clone, SimpleObject)]
pub struct Product {
    pub id: ID,
    pub name: String,
    pub description: String,
    /// In currency units, at most 2 decimals.
    pub price: f64,
    pub stock: i32,
    pub category: String,
    pub created_at: String,
    pub updated_at: String,
}

impl From<proto::product::Product> for Product {
    fn from(product: proto::product::Product) -> Self {
        Self {
            id: ID(product.id),
            name: product.name,
            description: product.description,
            price: product.price,
            stock: product.stock,
            category: product.category,
            created_at: product.created_at,
            updated_at: product.updated_at,
        }
    }
}

/// An order. `user` is resolved through a batch loader.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(complex)]
pub struct Order {
    pub id: ID,
    pub user_id: ID,
    pub items: Vec<OrderItem>,
    pub total_amount: f64,
    /// PENDING, CONFIRMED, SHIPPED, DELIVERED or CANCELLED.
    pub status: String,
    /// Why the order has its status (e.g. why it was cancelled), when there is a reason.
    pub status_reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[ComplexObject]
impl Order {
    /// The user who placed the order (null if the account was deleted since).
    #[graphql(complexity = "super::query::BATCHED_LOAD + child_complexity")]
    async fn user(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Arc<User>>> {
        super::load_user(ctx, &self.user_id).await
    }
}

impl From<proto::order::Order> for Order {
    fn from(order: proto::order::Order) -> Self {
        Self {
            id: ID(order.id),
            user_id: ID(order.user_id),
            items: order.items.into_iter().map(OrderItem::from).collect(),
            total_amount: order.total_amount,
            status: order.status,
            status_reason: Some(order.status_reason).filter(|reason| !reason.is_empty()),
            created_at: order.created_at,
            updated_at: order.updated_at,
        }
    }
}

/// One line of an order, at the price the catalog had when it was placed.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(complex)]
pub struct OrderItem {
    pub product_id: ID,
    pub quantity: i32,
    pub price: f64,
}

#[ComplexObject]
impl OrderItem {
    /// The product as the catalog has it now (null if it was deleted since).
    #[graphql(complexity = "super::query::BATCHED_LOAD + child_complexity")]
    async fn product(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Arc<Product>>> {
        super::load_product(ctx, &self.product_id).await
    }
}

impl From<proto::order::OrderItem> for OrderItem {
    fn from(item: proto::order::OrderItem) -> Self {
        Self { product_id: ID(item.product_id), quantity: item.quantity, price: item.price.unwrap_or_default() }
    }
}

/// One page of a list, with the total across all pages.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(concrete(name = "UserPage", params(User)))]
#[graphql(concrete(name = "ProductPage", params(Product)))]
#[graphql(concrete(name = "OrderPage", params(Order)))]
pub struct Page<T: async_graphql::OutputType> {
    pub items: Vec<T>,
    pub total: i32,
    pub page: i32,
    pub limit: i32,
}

/// What `login` returns.
#[derive(Debug, Clone, SimpleObject)]
pub struct AuthPayload {
    /// Send as `Authorization: Bearer <token>`.
    pub token: String,
    /// When the token stops working (RFC 3339).
    pub expires_at: String,
    pub user: User,
}

/// What the delete mutations return, as in the original.
#[derive(Debug, Clone, SimpleObject)]
pub struct DeleteResult {
    pub success: bool,
    pub message: String,
}
