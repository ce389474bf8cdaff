//! `spawn_system`: the four real binaries, and a small GraphQL client.

use std::time::Duration;

use serde_json::{Value, json};
use test_support::{BrokerProcess, BrokerStorage, ServiceProcess, workspace_binary};

pub const ADMIN_EMAIL: &str = "admin@example.com";
pub const ADMIN_PASSWORD: &str = "admin-password";
const JWT_SECRET: &str = "test-secret-test-secret-test-secret!";

/// A backend service process with the storage it keeps across restarts.
#[derive(Debug)]
pub struct Backend {
    pub name: &'static str,
    pub process: Option<ServiceProcess>,
    pub data: tempfile::TempDir,
    pub url: String,
    /// Settings it was started with besides DATA_DIR, reused on restart.
    envs: Vec<(&'static str, String)>,
}

/// The whole system for one test. Every process is stopped when it drops.
#[derive(Debug)]
pub struct TestSystem {
    pub gateway: ServiceProcess,
    /// Kept to keep the process alive; stopped on drop.
    pub _users: Backend,
    pub products: Backend,
    pub _orders: Backend,
    pub http: reqwest::Client,
    /// The broker, when the system was started with one; `None` inside while it is stopped.
    pub broker: Option<(BrokerStorage, Option<BrokerProcess>)>,
    /// PostgreSQL databases the services use, when they use PostgreSQL.
    _databases: Vec<test_support::TestDatabase>,
}

fn start_backend(name: &'static str, extra: &[(&'static str, String)]) -> Backend {
    let data = tempfile::tempdir().expect("tempdir");
    let mut envs = vec![("DATA_DIR", data.path().display().to_string())];
    envs.extend(extra.iter().cloned());
    let process = ServiceProcess::start(&workspace_binary(name), &envs).expect("start backend");
    let url = process.url();
    Backend { name, process: Some(process), data, url, envs: extra.to_vec() }
}

impl Backend {
    /// Stops the process (SIGTERM), keeping its data.
    pub fn stop(&mut self) {
        if let Some(process) = self.process.take() {
            process.terminate(Duration::from_secs(10)).expect("terminate");
        }
    }

    /// Kills the process with SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(process) = self.process.take() {
            process.kill().expect("kill");
        }
    }

    /// Starts it again on the same port, data and settings.
    pub fn restart(&mut self) {
        let addr = self.url.trim_start_matches("http://").to_owned();
        let mut envs = vec![("DATA_DIR", self.data.path().display().to_string()), ("LISTEN_ADDR", addr)];
        envs.extend(self.envs.iter().cloned());
        self.process = Some(ServiceProcess::start(&workspace_binary(self.name), &envs).expect("restart backend"));
    }
}

/// A service's database on `backend`: a fresh PostgreSQL database (kept alive by the returned
/// guard), or an empty `DATABASE_URL`, which means SQLite in the service's `DATA_DIR`.
async fn database_for(backend: test_support::Backend) -> (Option<test_support::TestDatabase>, String) {
    match backend {
        test_support::Backend::Sqlite => (None, String::new()),
        test_support::Backend::Postgres => {
            let database = test_support::postgres_database().await.expect("a PostgreSQL database");
            let url = database.url.clone();
            (Some(database), url)
        }
    }
}

/// Starts the system with default gateway settings.
pub async fn spawn_system() -> TestSystem {
    spawn_system_with(&[]).await
}

/// Starts the system with extra gateway settings (limits, timeouts), without a broker.
pub async fn spawn_system_with(gateway_envs: &[(&str, &str)]) -> TestSystem {
    start_system(gateway_envs, None).await
}

/// Starts a broker and the system on it: events flow and the saga runs.
pub async fn spawn_system_with_broker(gateway_envs: &[(&str, &str)]) -> TestSystem {
    spawn_system_with_broker_on(test_support::Backend::Sqlite, gateway_envs).await
}

/// Like [`spawn_system_with_broker`], with every service on `backend`'s databases.
pub async fn spawn_system_with_broker_on(backend: test_support::Backend, gateway_envs: &[(&str, &str)]) -> TestSystem {
    let storage = BrokerStorage::new().expect("broker storage");
    let broker = storage.start().expect("start the broker");
    start_system_on(backend, gateway_envs, Some((storage, Some(broker)))).await
}

async fn start_system(
    gateway_envs: &[(&str, &str)],
    broker: Option<(BrokerStorage, Option<BrokerProcess>)>,
) -> TestSystem {
    start_system_on(test_support::Backend::Sqlite, gateway_envs, broker).await
}

async fn start_system_on(
    backend: test_support::Backend,
    gateway_envs: &[(&str, &str)],
    broker: Option<(BrokerStorage, Option<BrokerProcess>)>,
) -> TestSystem {
    // Without a broker, events stay in each service's outbox.
    let kafka = ("KAFKA_BROKERS", broker.as_ref().map(|(storage, _)| storage.bootstrap()).unwrap_or_default());
    let mut databases = Vec::new();
    let mut database_urls = Vec::new();
    for _ in 0..3 {
        let (database, url) = database_for(backend).await;
        databases.extend(database);
        database_urls.push(("DATABASE_URL", url));
    }
    let [users_db, products_db, orders_db]: [(&'static str, String); 3] =
        database_urls.try_into().expect("three databases");
    let admin = [
        ("ADMIN_EMAIL", ADMIN_EMAIL.to_owned()),
        ("ADMIN_PASSWORD", ADMIN_PASSWORD.to_owned()),
        kafka.clone(),
        users_db,
    ];
    let users = start_backend("user-service", &admin);
    let products = start_backend("product-service", &[kafka.clone(), products_db]);
    let peers = [
        ("USER_SERVICE_URL", users.url.clone()),
        ("PRODUCT_SERVICE_URL", products.url.clone()),
        kafka.clone(),
        orders_db,
    ];
    let orders = start_backend("order-service", &peers);
    let mut envs = vec![
        ("USER_SERVICE_URL", users.url.clone()),
        ("PRODUCT_SERVICE_URL", products.url.clone()),
        ("ORDER_SERVICE_URL", orders.url.clone()),
        ("JWT_SECRET", JWT_SECRET.to_owned()),
        ("BACKEND_TIMEOUT_MS", "2000".to_owned()),
        kafka,
    ];
    envs.extend(gateway_envs.iter().map(|(key, value)| (*key, (*value).to_owned())));
    let gateway = ServiceProcess::start(env!("CARGO_BIN_EXE_api-gateway"), &envs).expect("start gateway");
    TestSystem {
        gateway,
        _users: users,
        products,
        _orders: orders,
        http: reqwest::Client::new(),
        broker,
        _databases: databases,
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

    /// `KAFKA_BROKERS` for this system's broker.
    pub fn bootstrap(&self) -> String {
        self.broker.as_ref().expect("a system with a broker").0.bootstrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.gateway.url())
    }

    /// Posts a GraphQL request and returns the whole response body.
    pub async fn graphql(&self, query: &str, variables: Value, token: Option<&str>) -> Value {
        let mut request = self.http.post(self.url("/graphql")).json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("POST /graphql");
        response.json().await.expect("JSON body")
    }

    /// Runs a query that must succeed and returns its `data`.
    pub async fn ok(&self, query: &str, variables: Value, token: Option<&str>) -> Value {
        let body = self.graphql(query, variables, token).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body:#}");
        body["data"].clone()
    }

    /// Runs a query that must fail and returns its first error's `extensions.code`.
    pub async fn error_code(&self, query: &str, variables: Value, token: Option<&str>) -> (String, Value) {
        let body = self.graphql(query, variables, token).await;
        let error = body["errors"][0].clone();
        assert!(!error.is_null(), "expected an error: {body:#}");
        (error["extensions"]["code"].as_str().unwrap_or_default().to_owned(), error)
    }

    /// Registers a user and logs in; returns (id, token).
    pub async fn sign_up(&self, email: &str) -> (String, String) {
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
    pub async fn login(&self, email: &str, password: &str) -> String {
        let data = self
            .ok(
                "mutation($email: String!, $password: String!) { login(email: $email, password: $password) { token } }",
                json!({ "email": email, "password": password }),
                None,
            )
            .await;
        data["login"]["token"].as_str().expect("token").to_owned()
    }

    pub async fn admin_token(&self) -> String {
        self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await
    }

    /// Creates a product as admin and returns its id.
    pub async fn product(&self, admin: &str, name: &str, price: f64, stock: i32) -> String {
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
    pub async fn backend_calls(&self) -> u64 {
        let text = self.http.get(self.url("/metrics")).send().await.expect("metrics").text().await.expect("text");
        text.lines()
            .filter(|line| line.starts_with("gateway_backend_calls_total"))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    }
}
