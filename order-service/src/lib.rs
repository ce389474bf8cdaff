//! order-service: orders and their status machine over gRPC, on its own database.
//!
//! `CreateOrder` checks the user and the products with their owning services over gRPC, takes
//! every price from the catalog, and stores the order `PENDING` with its `order.created` event
//! (the transactional outbox). product-service reserves the stock and answers; [`saga`] turns
//! the answer into `CONFIRMED` or `CANCELLED`. Status changes follow the machine in [`status`],
//! applied atomically (with their `order.status.changed` event) so concurrent updates cannot
//! both win.

mod api;
mod backlog;
mod config;
#[doc(hidden)]
pub mod fuzzing;
mod peers;
mod pricing;
mod repository;
mod saga;
pub mod status;

use service_runtime::{GrpcServer, database, startup::StartupError};

pub use config::Config;

/// The gRPC service name, as health checks ask for it.
pub const SERVICE_NAME: &str =
    <proto::order::order_service_server::OrderServiceServer<api::OrderApi> as tonic::server::NamedService>::NAME;

/// Connects and migrates the database, prepares the peer clients and binds.
///
/// Peers are connected lazily: order-service starts even while user-service or
/// product-service is down, and answers `UNAVAILABLE` for calls that need them.
pub async fn build(config: Config) -> Result<GrpcServer, StartupError> {
    let tls = config.runtime.grpc_tls.load()?;
    config.kafka.check()?;
    let peers = peers::Peers::connect_lazy(&config, &tls)?;
    let migrators = [database::migrator(sqlx::migrate!()), events::migrator()];
    let database = database::connect(&config.database.url_for("orders.db")?, &migrators).await?;
    let outbox = events::outbox::OutboxSignal::default();
    let backlog = backlog::Backlog::new(config.backlog.clone());
    let api =
        api::OrderApi::new(repository::OrderRepository::new(database.clone(), outbox.clone()), peers, backlog.clone());
    let routes = tonic::service::Routes::new(proto::order::order_service_server::OrderServiceServer::new(api));
    let server =
        GrpcServer::bind(config.listen_addr, routes, &[SERVICE_NAME], config.runtime.shutdown_timeout(), &tls).await?;
    let kafka = config.kafka.for_instance(server.local_addr());
    let watch = {
        let pool = database.reads().clone();
        Box::new(move |cancel| Box::pin(backlog.watch(pool, cancel)) as _)
    };
    let events = events::EventPipeline::new(kafka, "order-service", database, outbox).consume(saga::ApplyReservation);
    Ok(server.with_background(events.into_background()).with_background(watch))
}
