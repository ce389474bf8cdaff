//! The data the scenarios read: products with ample stock, a customer, and orders of theirs.

use std::time::Duration;

use proto::order::OrderStatus;
use serde_json::{Value, json};

use crate::{
    RequestError,
    graphql::{GraphqlClient, string_at},
};

/// The category the fixture's products are in, so `products` pages through only them.
pub const CATEGORY: &str = "loadgen";
/// The password of every account the load generator creates.
pub const PASSWORD: &str = "loadgen-password";
/// Stock high enough that no run sells out (the largest `Int` a GraphQL client may send).
const AMPLE_STOCK: i64 = i32::MAX as i64;
/// How long setting up waits for the saga: to accept an order, and to settle it.
const SETTLE_DEADLINE: Duration = Duration::from_secs(60);

/// Ids and tokens the scenarios use.
#[derive(Debug, Clone)]
pub struct Fixture {
    pub products: Vec<String>,
    pub customer_id: String,
    pub customer_token: String,
}

/// What to create.
#[derive(Debug, Clone)]
pub struct FixtureOptions {
    pub admin_email: String,
    pub admin_password: String,
    pub products: usize,
    /// Orders the customer has, each for three products, all confirmed before the run.
    pub orders: usize,
}

impl Fixture {
    /// Creates the products, the customer and their orders, and waits until every order settled.
    pub async fn create(client: &GraphqlClient, options: &FixtureOptions) -> anyhow::Result<Self> {
        let login = "mutation($email: String!, $password: String!) { login(email: $email, password: $password) { token user { id } } }";
        let admin = client
            .request(login, json!({ "email": options.admin_email, "password": options.admin_password }), None)
            .await
            .map_err(|error| anyhow::anyhow!("logging in as the admin {}: {error}", options.admin_email))?;
        let admin_token = string_at(&admin, "/login/token")?;

        let create_product = "mutation($name: String!, $stock: Int!, $category: String!) { \
            createProduct(name: $name, description: \"made by the load generator\", price: 12.5, stock: $stock, category: $category) { id } }";
        let mut products = Vec::with_capacity(options.products);
        for index in 0..options.products.max(3) {
            let variables =
                json!({ "name": format!("Load product {index}"), "stock": AMPLE_STOCK, "category": CATEGORY });
            let data = client.request(create_product, variables, Some(&admin_token)).await?;
            products.push(string_at(&data, "/createProduct/id")?);
        }

        let email = format!("loadgen-{}@example.com", uuid::Uuid::now_v7().simple());
        let create_user = "mutation($email: String!, $password: String!) { createUser(name: \"Load Customer\", email: $email, password: $password) { id } }";
        client.request(create_user, json!({ "email": email, "password": PASSWORD }), None).await?;
        let customer = client.request(login, json!({ "email": email, "password": PASSWORD }), None).await?;
        let fixture = Self {
            products,
            customer_id: string_at(&customer, "/login/user/id")?,
            customer_token: string_at(&customer, "/login/token")?,
        };

        for index in 0..options.orders {
            let items: Vec<Value> = (0..3)
                .map(|offset| json!({ "productId": fixture.products[(index + offset) % fixture.products.len()], "quantity": 1 }))
                .collect();
            let order_id = fixture.place_order_patiently(client, items).await?;
            let status = fixture.wait_for_settled(client, &order_id).await?;
            anyhow::ensure!(status == OrderStatus::Confirmed, "fixture order {order_id} ended {status}");
        }
        Ok(fixture)
    }

    /// Places an order as the customer and returns its id.
    pub async fn place_order(&self, client: &GraphqlClient, items: Vec<Value>) -> Result<String, RequestError> {
        let create_order = "mutation($user: ID!, $items: [OrderItemInput!]!) { createOrder(userId: $user, items: $items) { id status } }";
        let data = client
            .request(create_order, json!({ "user": self.customer_id, "items": items }), Some(&self.customer_token))
            .await?;
        string_at(&data, "/createOrder/id")
    }

    /// Places an order, trying again while the system refuses it for backpressure: right after
    /// the services start, the saga's consumers may still be joining their groups, so the
    /// first order waits and the next ones are refused until it settles.
    async fn place_order_patiently(&self, client: &GraphqlClient, items: Vec<Value>) -> anyhow::Result<String> {
        let deadline = tokio::time::Instant::now() + SETTLE_DEADLINE;
        loop {
            match self.place_order(client, items.clone()).await {
                Err(RequestError::Refused(_)) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                result => return Ok(result?),
            }
        }
    }

    /// The order's status now.
    pub async fn order_status(&self, client: &GraphqlClient, order_id: &str) -> Result<OrderStatus, RequestError> {
        let query = "query($id: ID!) { order(id: $id) { status } }";
        let data = client.request(query, json!({ "id": order_id }), Some(&self.customer_token)).await?;
        let status = string_at(&data, "/order/status")?;
        status.parse().map_err(|unknown| RequestError::Unexpected(format!("order.status {unknown}")))
    }

    /// Polls until the order settles (only for setting up; runs use the subscription).
    async fn wait_for_settled(&self, client: &GraphqlClient, order_id: &str) -> anyhow::Result<OrderStatus> {
        let deadline = tokio::time::Instant::now() + SETTLE_DEADLINE;
        loop {
            let status = self.order_status(client, order_id).await?;
            if status.is_settled() {
                return Ok(status);
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "order {order_id} still {status} after {} s",
                SETTLE_DEADLINE.as_secs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
