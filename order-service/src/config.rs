//! order-service's configuration: the common settings plus where its peers are.

use std::net::SocketAddr;

use service_runtime::config::{DatabaseArgs, RuntimeArgs};

/// Flags with env fallbacks, per the configuration contract.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "order-service", version, about = "Orders and their status machine over gRPC")]
pub struct Config {
    /// The gRPC listen address.
    #[arg(long, env = "LISTEN_ADDR", default_value = "0.0.0.0:50053")]
    pub listen_addr: SocketAddr,
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
    #[command(flatten)]
    pub kafka: events::KafkaArgs,
    #[command(flatten)]
    pub backlog: crate::backlog::BacklogArgs,
    /// user-service, to check that an order's user exists.
    #[arg(long, env = "USER_SERVICE_URL", default_value = "http://127.0.0.1:50051")]
    pub user_service_url: String,
    /// product-service, for prices and stock.
    #[arg(long, env = "PRODUCT_SERVICE_URL", default_value = "http://127.0.0.1:50052")]
    pub product_service_url: String,
}

impl Config {
    /// A configuration on `database`, listening on `listen_addr`, with its peers at the URLs.
    pub fn new(
        listen_addr: SocketAddr,
        database: DatabaseArgs,
        user_service_url: String,
        product_service_url: String,
    ) -> Self {
        Self {
            listen_addr,
            database,
            runtime: RuntimeArgs::default(),
            kafka: events::KafkaArgs::disabled(),
            backlog: crate::backlog::BacklogArgs::default(),
            user_service_url,
            product_service_url,
        }
    }
}
