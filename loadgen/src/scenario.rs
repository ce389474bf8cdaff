//! What one request of each scenario does, and the connections and data it needs.

use std::time::Duration;

use proto::order::OrderStatus;
use serde_json::{Value, json};
use tonic::transport::Channel;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};

use crate::{
    RequestError,
    answers::{ProductAnswer, ProductsAnswer, UserAnswer, UserOrdersAnswer},
    driver::Workload,
    failed_logins::FailedLogins,
    fixture::{CATEGORY, Fixture, FixtureOptions, PASSWORD},
    graphql::{GraphqlClient, data_as, string_at},
    watcher::OrderWatcher,
};

/// How long an order may take to settle before its request counts as an error.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Subscription connections shared by the clients that wait for orders.
const WATCHER_CONNECTIONS: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// `product(id)`: one product; served by the gateway's product cache once it holds it.
    Product,
    /// `products(page, limit: 10, category)`: a page of the catalog.
    Products,
    /// `product(id)` while one account gets 20 wrong passwords a second (200 in all) from the
    /// same address: the back-off must keep them from costing the reads.
    #[value(name = "product-failed-logins")]
    ProductUnderFailedLogins,
    /// `user(id)` as that user.
    User,
    /// `userOrders` (20 orders of 3 items) with `items { product }` and `user`, batched.
    UserOrders,
    /// `createUser`: a new account (an argon2 hash each).
    CreateUser,
    /// `createOrder`, then wait on the subscription until it is `CONFIRMED`.
    CreateOrder,
    /// `createOrder` as above, at a rate past what the saga settles: an order refused at once
    /// by backpressure is an answer here, counted apart; anything else is an error.
    CreateOrderOverload,
    /// 50 % product, 20 % products, 20 % userOrders, 10 % createOrder to CONFIRMED.
    Mixed,
    /// Reference: `GET /` on a bare axum handler.
    Hello,
    /// Reference: `{ hello }` on a trivial async-graphql schema with no backend.
    GraphqlHello,
    /// Reference: the gRPC health check on a server that does nothing else.
    GrpcHealth,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Self::Product => "product",
            Self::Products => "products",
            Self::ProductUnderFailedLogins => "product-failed-logins",
            Self::User => "user",
            Self::UserOrders => "user-orders",
            Self::CreateUser => "create-user",
            Self::CreateOrder => "create-order",
            Self::CreateOrderOverload => "create-order-overload",
            Self::Mixed => "mixed",
            Self::Hello => "hello",
            Self::GraphqlHello => "graphql-hello",
            Self::GrpcHealth => "grpc-health",
        }
    }

    /// True for the scenarios that run against the system (and need its data).
    pub fn needs_fixture(self) -> bool {
        !matches!(self, Self::Hello | Self::GraphqlHello | Self::GrpcHealth)
    }

    fn waits_for_orders(self) -> bool {
        matches!(self, Self::CreateOrder | Self::CreateOrderOverload | Self::Mixed)
    }

    /// True when a refusal by backpressure is an expected answer rather than an error.
    pub fn allows_refusals(self) -> bool {
        self == Self::CreateOrderOverload
    }
}

/// A scenario ready to run: its connections and data.
#[derive(Debug)]
pub struct Prepared {
    scenario: Scenario,
    target: String,
    client: GraphqlClient,
    fixture: Option<Fixture>,
    watchers: Vec<OrderWatcher>,
    grpc: Option<HealthClient<Channel>>,
    /// The attacker of `product-failed-logins`.
    failed_logins: Option<FailedLogins>,
    /// Makes the accounts `create-user` registers unique across runs.
    run_id: String,
}

impl Prepared {
    /// Connects to `target` and creates what `scenario` reads.
    pub async fn new(scenario: Scenario, target: &str, options: &FixtureOptions) -> anyhow::Result<Self> {
        let client = GraphqlClient::new(target)?;
        let fixture = if scenario.needs_fixture() { Some(Fixture::create(&client, options).await?) } else { None };
        let mut watchers = Vec::new();
        if let Some(fixture) = fixture.as_ref().filter(|_| scenario.waits_for_orders()) {
            for _ in 0..WATCHER_CONNECTIONS {
                watchers.push(OrderWatcher::connect(target, &fixture.customer_token).await?);
            }
        }
        let grpc = if scenario == Scenario::GrpcHealth {
            let channel =
                tonic::transport::Endpoint::from_shared(target.to_owned())?.tcp_nodelay(true).connect().await?;
            Some(HealthClient::new(channel))
        } else {
            None
        };
        let run_id = uuid::Uuid::now_v7().simple().to_string();
        let failed_logins = if scenario == Scenario::ProductUnderFailedLogins {
            Some(FailedLogins::prepare(&client, &run_id).await?)
        } else {
            None
        };
        let target = target.trim_end_matches('/').to_owned();
        Ok(Self { scenario, target, client, fixture, watchers, grpc, failed_logins, run_id })
    }

    /// Paces what runs beside the measured requests (the failed logins) over `run_time`.
    #[must_use]
    pub fn spread_over(mut self, run_time: Duration) -> Self {
        if let Some(attacker) = &mut self.failed_logins {
            attacker.spread_over(run_time);
        }
        self
    }

    fn fixture(&self) -> Result<&Fixture, RequestError> {
        self.fixture.as_ref().ok_or_else(|| RequestError::Unexpected("no fixture for this scenario".to_owned()))
    }

    fn product_id(&self, sequence: u64) -> Result<&str, RequestError> {
        let products = &self.fixture()?.products;
        Ok(&products[usize::try_from(sequence).unwrap_or_default() % products.len()])
    }

    async fn product(&self, sequence: u64) -> Result<(), RequestError> {
        let query = "query($id: ID!) { product(id: $id) { id name price stock category } }";
        let body = self.client.request_body(query, json!({ "id": self.product_id(sequence)? }), None).await?;
        data_as::<ProductAnswer<'_>>(&body).map(drop)
    }

    async fn products(&self, sequence: u64) -> Result<(), RequestError> {
        let query = "query($page: Int!, $category: String) { products(page: $page, limit: 10, category: $category) { id name price stock } }";
        let pages = self.fixture()?.products.len().div_ceil(10).max(1) as u64;
        let body = self
            .client
            .request_body(query, json!({ "page": 1 + sequence % pages, "category": CATEGORY }), None)
            .await?;
        non_empty("/products", &data_as::<ProductsAnswer<'_>>(&body)?.products)
    }

    async fn user(&self) -> Result<(), RequestError> {
        let fixture = self.fixture()?;
        let query = "query($id: ID!) { user(id: $id) { id name email role } }";
        let body = self
            .client
            .request_body(query, json!({ "id": fixture.customer_id }), Some(&fixture.customer_token))
            .await?;
        data_as::<UserAnswer<'_>>(&body).map(drop)
    }

    async fn user_orders(&self) -> Result<(), RequestError> {
        let fixture = self.fixture()?;
        let query = "query($id: ID!) { userOrders(userId: $id, limit: 20) { id status totalAmount \
            items { quantity price product { name price } } user { name email } } }";
        let body = self
            .client
            .request_body(query, json!({ "id": fixture.customer_id }), Some(&fixture.customer_token))
            .await?;
        non_empty("/userOrders", &data_as::<UserOrdersAnswer<'_>>(&body)?.user_orders)
    }

    async fn create_user(&self, sequence: u64) -> Result<(), RequestError> {
        let query = "mutation($email: String!, $password: String!) { createUser(name: \"Load User\", email: $email, password: $password) { id } }";
        let email = format!("loadgen-{}-{sequence}@example.com", self.run_id);
        let data = self.client.request(query, json!({ "email": email, "password": PASSWORD }), None).await?;
        string_at(&data, "/createUser/id").map(drop)
    }

    /// Places an order and waits until the saga confirmed it.
    async fn create_order(&self, sequence: u64) -> Result<(), RequestError> {
        let fixture = self.fixture()?;
        let items = vec![json!({ "productId": self.product_id(sequence)?, "quantity": 1 })];
        let order_id = fixture.place_order(&self.client, items).await?;
        let watcher = &self.watchers[usize::try_from(sequence).unwrap_or_default() % self.watchers.len()];
        let watch = watcher.watch(&order_id)?;
        match watcher.settled(watch, SETTLE_TIMEOUT).await? {
            OrderStatus::Confirmed => Ok(()),
            other => Err(RequestError::Unexpected(format!("order {other}"))),
        }
    }

    async fn hello(&self) -> Result<(), RequestError> {
        let response = self.client.http().get(format!("{}/", self.target)).send().await?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(RequestError::Status(response.status().as_u16()));
        }
        response.bytes().await?;
        Ok(())
    }

    async fn graphql_hello(&self) -> Result<(), RequestError> {
        let data = self.client.request("{ hello }", Value::Null, None).await?;
        string_at(&data, "/hello").map(drop)
    }

    async fn grpc_health(&self) -> Result<(), RequestError> {
        let mut client = self.grpc.clone().ok_or_else(|| RequestError::Unexpected("no gRPC channel".to_owned()))?;
        let response = client
            .check(HealthCheckRequest { service: String::new() })
            .await
            .map_err(|status| RequestError::Grpc(format!("{:?}", status.code())))?;
        match response.into_inner().status() {
            ServingStatus::Serving => Ok(()),
            other => Err(RequestError::Unexpected(format!("health {}", other.as_str_name()))),
        }
    }
}

fn non_empty<T>(pointer: &str, items: &[T]) -> Result<(), RequestError> {
    if items.is_empty() { Err(RequestError::Unexpected(format!("{pointer} is empty"))) } else { Ok(()) }
}

impl Workload for Prepared {
    async fn call(&self, sequence: u64) -> Result<(), RequestError> {
        let outcome = self.call_scenario(sequence).await;
        match outcome {
            Err(RequestError::Refused(message)) if !self.scenario.allows_refusals() => {
                Err(RequestError::Graphql { code: "UNAVAILABLE".to_owned(), message })
            }
            outcome => outcome,
        }
    }
}

impl Prepared {
    async fn call_scenario(&self, sequence: u64) -> Result<(), RequestError> {
        match self.scenario {
            Scenario::Product => self.product(sequence).await,
            Scenario::Products => self.products(sequence).await,
            Scenario::ProductUnderFailedLogins => {
                if let Some(attacker) = &self.failed_logins {
                    attacker.start_once();
                }
                self.product(sequence).await
            }
            Scenario::User => self.user().await,
            Scenario::UserOrders => self.user_orders().await,
            Scenario::CreateUser => self.create_user(sequence).await,
            Scenario::CreateOrder | Scenario::CreateOrderOverload => self.create_order(sequence).await,
            Scenario::Mixed => match sequence % 20 {
                0..=9 => self.product(sequence).await,
                10..=13 => self.products(sequence).await,
                14..=17 => self.user_orders().await,
                _ => self.create_order(sequence).await,
            },
            Scenario::Hello => self.hello().await,
            Scenario::GraphqlHello => self.graphql_hello().await,
            Scenario::GrpcHealth => self.grpc_health().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::ValueEnum as _;

    use super::Scenario;

    /// The name in reports is the name the command line takes (the bench passes one for the other).
    #[test]
    fn every_scenario_is_named_alike_in_reports_and_on_the_command_line() {
        for scenario in Scenario::value_variants() {
            let flag = scenario.to_possible_value().expect("a value");
            assert_eq!(flag.get_name(), scenario.name());
        }
    }
}
