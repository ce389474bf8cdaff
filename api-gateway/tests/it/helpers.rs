//! `spawn_system`: the four real binaries, and a small GraphQL client.

use serde_json::{Value, json};
use test_support::SystemProcesses;
pub use test_support::{ADMIN_EMAIL, ADMIN_PASSWORD};

/// The whole system for one test, and an HTTP client for it. Every process is stopped when it
/// drops; the processes are reachable through `Deref` (`system.products.kill()`).
#[derive(Debug)]
pub struct TestSystem {
    processes: SystemProcesses,
    pub http: reqwest::Client,
}

impl std::ops::Deref for TestSystem {
    type Target = SystemProcesses;

    fn deref(&self) -> &SystemProcesses {
        &self.processes
    }
}

impl std::ops::DerefMut for TestSystem {
    fn deref_mut(&mut self) -> &mut SystemProcesses {
        &mut self.processes
    }
}

/// Starts the system with default gateway settings.
pub async fn spawn_system() -> TestSystem {
    spawn_system_with(&[]).await
}

/// Starts the system with extra gateway settings (limits, timeouts), without a broker.
pub async fn spawn_system_with(gateway_envs: &[(&str, &str)]) -> TestSystem {
    start_system(test_support::DatabaseKind::Sqlite, gateway_envs, false).await
}

/// Starts the system with every service on `backend`'s databases, without a broker.
pub async fn spawn_system_on(backend: test_support::DatabaseKind) -> TestSystem {
    start_system(backend, &[], false).await
}

/// Starts a broker and the system on it: events flow and the saga runs.
pub async fn spawn_system_with_broker(gateway_envs: &[(&str, &str)]) -> TestSystem {
    spawn_system_with_broker_on(test_support::DatabaseKind::Sqlite, gateway_envs, &[]).await
}

/// Like [`spawn_system_with_broker_and`], with every service on `backend`'s databases.
pub async fn spawn_system_with_broker_on(
    backend: test_support::DatabaseKind,
    gateway_envs: &[(&str, &str)],
    order_envs: &[(&'static str, &str)],
) -> TestSystem {
    let processes =
        SystemProcesses::start_with(backend, gateway_envs, order_envs, true).await.expect("start the system");
    TestSystem { processes, http: reqwest::Client::new() }
}

/// Like [`spawn_system_with_broker`], with extra settings for order-service as well.
pub async fn spawn_system_with_broker_and(
    gateway_envs: &[(&str, &str)],
    order_envs: &[(&'static str, &str)],
) -> TestSystem {
    spawn_system_with_broker_on(test_support::DatabaseKind::Sqlite, gateway_envs, order_envs).await
}

async fn start_system(
    backend: test_support::DatabaseKind,
    gateway_envs: &[(&str, &str)],
    with_broker: bool,
) -> TestSystem {
    let processes = SystemProcesses::start(backend, gateway_envs, with_broker).await.expect("start the system");
    TestSystem { processes, http: reqwest::Client::new() }
}

impl From<SystemProcesses> for TestSystem {
    fn from(processes: SystemProcesses) -> Self {
        Self { processes, http: reqwest::Client::new() }
    }
}

impl TestSystem {
    /// Stops the broker (a broker outage); its data stays.
    pub fn stop_broker(&mut self) {
        let (_, process) = self.broker.as_mut().expect("a system with a broker");
        process.take().expect("running").stop().expect("stop the broker");
    }

    /// Starts the broker again on the same port and data.
    pub fn start_broker(&mut self) {
        let (storage, process) = self.broker.as_mut().expect("a system with a broker");
        *process = Some(storage.start().expect("restart the broker"));
    }

    /// Freezes the running broker (SIGSTOP) until [`TestSystem::resume_broker`].
    pub fn freeze_broker(&self) {
        let (_, process) = self.broker.as_ref().expect("a system with a broker");
        process.as_ref().expect("running").freeze().expect("freeze the broker");
    }

    /// Lets a frozen broker go on (SIGCONT).
    pub fn resume_broker(&self) {
        let (_, process) = self.broker.as_ref().expect("a system with a broker");
        process.as_ref().expect("running").resume().expect("resume the broker");
    }

    /// `KAFKA_BROKERS` for this system's broker.
    pub fn bootstrap(&self) -> String {
        self.broker.as_ref().expect("a system with a broker").0.bootstrap()
    }
}

/// A GraphQL client of one gateway: the test system's, or one of several.
#[allow(async_fn_in_trait, reason = "used only inside this test crate, never across a Send bound")]
pub trait GatewayClient {
    /// The HTTP client requests go through.
    fn http(&self) -> &reqwest::Client;

    /// `http://<gateway addr>`.
    fn base_url(&self) -> String;

    /// `path` on this gateway.
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url())
    }

    /// Posts a GraphQL request and returns the whole response body.
    async fn graphql(&self, query: &str, variables: Value, token: Option<&str>) -> Value {
        let mut request =
            self.http().post(self.url("/graphql")).json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("POST /graphql");
        response.json().await.expect("JSON body")
    }

    /// Runs a query that must succeed and returns its `data`.
    async fn ok(&self, query: &str, variables: Value, token: Option<&str>) -> Value {
        let body = self.graphql(query, variables, token).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body:#}");
        body["data"].clone()
    }

    /// Runs a query that must fail and returns its first error's `extensions.code`.
    async fn error_code(&self, query: &str, variables: Value, token: Option<&str>) -> (String, Value) {
        let body = self.graphql(query, variables, token).await;
        let error = body["errors"][0].clone();
        assert!(!error.is_null(), "expected an error: {body:#}");
        (error["extensions"]["code"].as_str().unwrap_or_default().to_owned(), error)
    }

    /// Registers a user and logs in; returns (id, token).
    async fn sign_up(&self, email: &str) -> (String, String) {
        let created = self
            .ok(
                "mutation($email: String!) { createUser(name: \"Test User\", email: $email, password: \"password123\") { id } }",
                json!({ "email": email }),
                None,
            )
            .await;
        let token = self.login(email, "password123").await;
        (created["createUser"]["id"].as_str().expect("id").to_owned(), token)
    }

    /// Logs in and returns the token.
    async fn login(&self, email: &str, password: &str) -> String {
        let data = self
            .ok(
                "mutation($email: String!, $password: String!) { login(email: $email, password: $password) { token } }",
                json!({ "email": email, "password": password }),
                None,
            )
            .await;
        data["login"]["token"].as_str().expect("token").to_owned()
    }

    async fn admin_token(&self) -> String {
        self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await
    }

    /// Creates a product as admin and returns its id.
    async fn product(&self, admin: &str, name: &str, price: f64, stock: i32) -> String {
        let data = self
            .ok(
                "mutation($name: String!, $price: Float!, $stock: Int!) {
                   createProduct(name: $name, description: \"d\", price: $price, stock: $stock, category: \"Test\") { id }
                 }",
                json!({ "name": name, "price": price, "stock": stock }),
                Some(admin),
            )
            .await;
        data["createProduct"]["id"].as_str().expect("id").to_owned()
    }

    /// The gateway's count of backend gRPC calls so far, from `/metrics`.
    async fn backend_calls(&self) -> u64 {
        self.metric_sum("gateway_backend_calls_total").await
    }

    /// The fetch requests the subscriptions' event feed has sent the broker so far (librdkafka's
    /// count, reported once a second).
    async fn feed_fetches(&self) -> u64 {
        self.metric_sum(r#"kafka_client_requests_total{role="feed",request="Fetch"}"#).await
    }

    /// The same for the caches' event feed.
    async fn cache_feed_fetches(&self) -> u64 {
        self.metric_sum(r#"kafka_client_requests_total{role="cache-feed",request="Fetch"}"#).await
    }

    /// The sum of the gateway's metric lines that start with `prefix`.
    async fn metric_sum(&self, prefix: &str) -> u64 {
        let text = self.http().get(self.url("/metrics")).send().await.expect("metrics").text().await.expect("text");
        text.lines()
            .filter(|line| line.starts_with(prefix))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    }
}

impl GatewayClient for TestSystem {
    fn http(&self) -> &reqwest::Client {
        &self.http
    }

    fn base_url(&self) -> String {
        self.gateway.url()
    }
}

/// A client of one gateway of several.
#[derive(Debug, Clone)]
pub struct Gateway {
    pub http: reqwest::Client,
    pub base_url: String,
}

impl GatewayClient for Gateway {
    fn http(&self) -> &reqwest::Client {
        &self.http
    }

    fn base_url(&self) -> String {
        self.base_url.clone()
    }
}
