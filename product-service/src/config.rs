//! product-service's configuration: the common settings only.

use std::net::SocketAddr;

use service_runtime::config::{DatabaseArgs, RuntimeArgs};

/// Flags with env fallbacks, per the configuration contract.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "product-service", version, about = "The product catalog and its stock over gRPC")]
pub struct Config {
    /// The gRPC listen address.
    #[arg(long, env = "LISTEN_ADDR", default_value = "0.0.0.0:50052")]
    pub listen_addr: SocketAddr,
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
    #[command(flatten)]
    pub kafka: events::KafkaArgs,
}

impl Config {
    /// A configuration on `database`, listening on `listen_addr`.
    pub fn new(listen_addr: SocketAddr, database: DatabaseArgs) -> Self {
        Self { listen_addr, database, runtime: RuntimeArgs::default(), kafka: events::KafkaArgs::disabled() }
    }
}
