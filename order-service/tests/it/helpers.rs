//! `spawn_order_system`: order-service with its two peers, each on its own storage.

use proto::{
    order::{CreateOrderRequest, Order, OrderItem, order_service_client::OrderServiceClient},
    product::{CreateProductRequest, product_service_client::ProductServiceClient},
    user::{CreateUserRequest, user_service_client::UserServiceClient},
};
use service_runtime::grpc::RunningServer;
use test_support::{DatabaseKind, TestStorage};
use tonic::transport::Channel;

/// The three services for one test. Each can be stopped and restarted on its own storage.
#[derive(Debug)]
pub struct TestOrderSystem {
    pub orders: OrderServiceClient<Channel>,
    pub users: UserServiceClient<Channel>,
    pub products: ProductServiceClient<Channel>,
    pub order_server: RunningServer,
    pub product_server: Option<RunningServer>,
    _user_server: RunningServer,
    order_storage: TestStorage,
    _peer_storage: [TestStorage; 2],
    peer_urls: (String, String),
}

/// Starts user-service, product-service and order-service on fresh storage of `backend`.
pub async fn spawn_order_system(backend: DatabaseKind) -> TestOrderSystem {
    let storage = || async { TestStorage::new(backend).await.expect("test storage") };
    let (user_storage, product_storage, order_storage) = (storage().await, storage().await, storage().await);
    let user_config = user_service::Config {
        database: user_storage.database_args(),
        ..user_service::Config::sqlite(any_port(), ".")
    };
    let user_server = user_service::build(user_config).await.expect("user-service starts").spawn();
    let product_config = product_service::Config::new(any_port(), product_storage.database_args());
    let product_server = product_service::build(product_config).await.expect("product-service starts").spawn();
    let peer_urls = (user_server.url(), product_server.url());
    let (order_server, orders) = start_orders(&order_storage, &peer_urls).await;
    TestOrderSystem {
        orders,
        users: UserServiceClient::connect(user_server.url()).await.expect("connect users"),
        products: ProductServiceClient::connect(product_server.url()).await.expect("connect products"),
        order_server,
        product_server: Some(product_server),
        _user_server: user_server,
        order_storage,
        _peer_storage: [user_storage, product_storage],
        peer_urls,
    }
}

async fn start_orders(
    storage: &TestStorage,
    (users, products): &(String, String),
) -> (RunningServer, OrderServiceClient<Channel>) {
    let config = order_service::Config::new(any_port(), storage.database_args(), users.clone(), products.clone());
    let server = order_service::build(config).await.expect("order-service starts").spawn();
    let client = OrderServiceClient::connect(server.url()).await.expect("connect orders");
    (server, client)
}

fn any_port() -> std::net::SocketAddr {
    "127.0.0.1:0".parse().expect("addr")
}

impl TestOrderSystem {
    /// Stops order-service and starts it again on the same storage.
    pub async fn restart_orders(mut self) -> Self {
        self.order_server.stop().await.expect("clean stop");
        (self.order_server, self.orders) = start_orders(&self.order_storage, &self.peer_urls).await;
        self
    }

    /// Stops product-service, to see order-service cope without it.
    pub async fn stop_products(&mut self) {
        if let Some(server) = self.product_server.take() {
            server.stop().await.expect("clean stop");
        }
    }

    /// Creates a user and returns its id.
    pub async fn user(&mut self, email: &str) -> String {
        let request = CreateUserRequest { name: "Buyer".into(), email: email.into(), password: "correct horse".into() };
        self.users.create_user(request).await.expect("create user").into_inner().id
    }

    /// Creates a product and returns its id.
    pub async fn product(&mut self, price: f64, stock: i32) -> String {
        let request = CreateProductRequest {
            name: format!("Product at {price}"),
            description: String::new(),
            price,
            stock,
            category: "Test".into(),
        };
        self.products.create_product(request).await.expect("create product").into_inner().id
    }

    /// Places an order that is expected to be valid, with no client prices.
    pub async fn order(&mut self, user_id: &str, items: &[(&str, i32)]) -> Order {
        let items = items.iter().map(|(product_id, quantity)| item(product_id, *quantity, None)).collect();
        let request = CreateOrderRequest { user_id: user_id.into(), items, total_amount: None };
        self.orders.create_order(request).await.expect("create order").into_inner()
    }
}

/// An order line.
pub fn item(product_id: &str, quantity: i32, price: Option<f64>) -> OrderItem {
    OrderItem { product_id: product_id.into(), quantity, price }
}
