//! product-service: the product catalog and its stock over gRPC, on its own database.
//!
//! Prices are integer cents inside and at most 2 decimals at the API; stock is never negative
//! (validated here and enforced by a CHECK constraint). Every change writes its event to the
//! outbox in the same transaction. In the order saga it consumes `order.created` to reserve
//! stock all-or-nothing, and `order.status.changed` to release a cancelled order's stock
//! (see [`saga`]).

mod api;
mod config;
mod repository;
mod saga;
mod validation;

use service_runtime::{GrpcServer, database, startup::StartupError};

pub use config::Config;

/// The gRPC service name, as health checks ask for it.
pub const SERVICE_NAME: &str = <proto::product::product_service_server::ProductServiceServer<
    api::ProductApi,
> as tonic::server::NamedService>::NAME;

/// Connects and migrates the database and binds; the returned server is ready to run.
pub async fn build(config: Config) -> Result<GrpcServer, StartupError> {
    let tls = config.runtime.grpc_tls.load()?;
    config.kafka.check()?;
    let migrators = [database::migrator(sqlx::migrate!()), events::migrator()];
    let database = database::connect(&config.database.url_for("products.db")?, &migrators).await?;
    let outbox = events::outbox::OutboxSignal::default();
    let api = api::ProductApi::new(repository::ProductRepository::new(database.clone(), outbox.clone()));
    let routes = tonic::service::Routes::new(proto::product::product_service_server::ProductServiceServer::new(api));
    let server =
        GrpcServer::bind(config.listen_addr, routes, &[SERVICE_NAME], config.runtime.shutdown_timeout(), &tls).await?;
    let kafka = config.kafka.for_instance(server.local_addr());
    let events = events::EventPipeline::new(kafka, CONSUMER_GROUP, database, outbox)
        .consume(saga::ReserveStock)
        .consume(saga::ReleaseStock);
    Ok(server.with_background(events.into_background()))
}

/// product-service's consumer group; replicas share the work.
const CONSUMER_GROUP: &str = "product-service";
