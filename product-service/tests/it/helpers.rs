//! `spawn_product_service` and friends.

use product_service::Config;
use proto::product::{CreateProductRequest, Product, product_service_client::ProductServiceClient};
use service_runtime::grpc::RunningServer;
use test_support::{DatabaseKind, TestStorage};
use tonic::transport::Channel;

/// A product-service running on port 0, with a client connected to it.
#[derive(Debug)]
pub struct TestProductService {
    pub server: RunningServer,
    pub client: ProductServiceClient<Channel>,
    pub storage: TestStorage,
}

/// Starts product-service on fresh storage of `backend`.
pub async fn spawn_product_service(backend: DatabaseKind) -> TestProductService {
    start(TestStorage::new(backend).await.expect("test storage")).await
}

async fn start(storage: TestStorage) -> TestProductService {
    let config = Config::new("127.0.0.1:0".parse().expect("addr"), storage.database_args());
    let server = product_service::build(config).await.expect("product-service starts").spawn();
    let client = ProductServiceClient::connect(server.url()).await.expect("connect");
    TestProductService { server, client, storage }
}

impl TestProductService {
    /// Stops the service and starts it again on the same storage.
    pub async fn restart(self) -> Self {
        self.server.stop().await.expect("clean stop");
        start(self.storage).await
    }

    /// Creates a product that is expected to be valid.
    pub async fn create(&mut self, name: &str, price: f64, stock: i32, category: &str) -> Product {
        self.client.create_product(product(name, price, stock, category)).await.expect("create product").into_inner()
    }
}

/// A create request with a description derived from the name.
pub fn product(name: &str, price: f64, stock: i32, category: &str) -> CreateProductRequest {
    CreateProductRequest {
        name: name.into(),
        description: format!("{name}, described"),
        price,
        stock,
        category: category.into(),
    }
}
