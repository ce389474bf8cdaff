//! order-service: orders and their status machine over gRPC, on its own database.
//!
//! `CreateOrder` checks the user and the products with their owning services over gRPC, takes
//! every price from the catalog, and stores the order `PENDING`. Status changes follow the
//! machine in [`status`], applied atomically so concurrent updates cannot both win.

mod api;
mod config;
mod peers;
mod pricing;
mod repository;
pub mod status;

use service_runtime::{GrpcServer, database, grpc::StartupError};

pub use config::Config;

/// The gRPC service name, as health checks ask for it.
pub const SERVICE_NAME: &str =
    <proto::order::order_service_server::OrderServiceServer<api::OrderApi> as tonic::server::NamedService>::NAME;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// Connects and migrates the database, prepares the peer clients and binds.
///
/// Peers are connected lazily: order-service starts even while user-service or
/// product-service is down, and answers `UNAVAILABLE` for calls that need them.
pub async fn build(config: Config) -> Result<GrpcServer, StartupError> {
    let peers = peers::Peers::connect_lazy(&config)?;
    let pool = database::connect(&config.database.url_for("orders.db")?, &MIGRATOR).await?;
    let api = api::OrderApi::new(repository::OrderRepository::new(pool), peers);
    let routes = tonic::service::Routes::new(proto::order::order_service_server::OrderServiceServer::new(api));
    GrpcServer::bind(config.listen_addr, routes, &[SERVICE_NAME], config.runtime.shutdown_timeout()).await
}
