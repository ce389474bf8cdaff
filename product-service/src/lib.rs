//! product-service: the product catalog and its stock over gRPC, on its own database.
//!
//! Prices are integer cents inside and at most 2 decimals at the API; stock is never negative
//! (validated here and enforced by a CHECK constraint).

mod api;
mod config;
mod repository;
mod validation;

use service_runtime::{GrpcServer, database, grpc::StartupError};

pub use config::Config;

/// The gRPC service name, as health checks ask for it.
pub const SERVICE_NAME: &str = <proto::product::product_service_server::ProductServiceServer<
    api::ProductApi,
> as tonic::server::NamedService>::NAME;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// Connects and migrates the database and binds; the returned server is ready to run.
pub async fn build(config: Config) -> Result<GrpcServer, StartupError> {
    let pool = database::connect(&config.database.url_for("products.db")?, &MIGRATOR).await?;
    let api = api::ProductApi::new(repository::ProductRepository::new(pool));
    let routes = tonic::service::Routes::new(proto::product::product_service_server::ProductServiceServer::new(api));
    GrpcServer::bind(config.listen_addr, routes, &[SERVICE_NAME], config.runtime.shutdown_timeout()).await
}
