//! Helpers for integration tests that need real infrastructure.
//!
//! - [`PostgresServer`]: a throwaway PostgreSQL cluster in a temporary directory. The test
//!   command starts one for the whole run and exports [`POSTGRES_URL_ENV`].
//! - [`TestStorage`]: a service's database for one test — SQLite files in a temporary
//!   directory, or a fresh PostgreSQL database — chosen by [`DatabaseKind`]; [`backend_tests!`]
//!   runs a test body once on each.
//! - [`ServiceProcess`]: a service's real binary, started with env settings and stopped by pid.
//! - [`grpc`]: the health and reflection checks every service must pass; [`OtlpReceiver`]: a
//!   real OTLP trace receiver, for the spans the processes export.
//! - [`BrokerStorage`] / [`BrokerProcess`]: the embedded Kafka-protocol broker, restartable on
//!   the same port and data; [`index_broker_storage`] adds the index its storage lacks.
//! - [`SystemProcesses`]: the three services and the gateway (and a broker) on free ports;
//!   [`ScaledSystem`]: several replicas of each on PostgreSQL, behind several gateways.
//! - [`TestCertificates`]: a CA and certificates made for one test, for TLS.
//! - [`readme_examples`]: the README's example block, aimed at a given gateway.

mod broker;
mod broker_index;
pub mod grpc;
mod otlp;
mod postgres;
mod process;
mod readme;
mod storage;
mod system;
mod tls;

pub use broker::{BrokerProcess, BrokerStorage, tansu_binary};
pub use broker_index::{HEADER_INDEX, has_header_index, index_broker_storage};
pub use launcher::{broker::TANSU_BIN_ENV, stop};
pub use otlp::{OtlpReceiver, ReceivedSpan};
pub use postgres::{OutboxCount, POSTGRES_URL_ENV, PostgresServer, TestDatabase, postgres_database};
pub use process::{
    ServiceProcess, assert_serves_until_sigterm, expect_startup_failure, run_health_check, workspace_binary,
};
pub use readme::{README_GATEWAY, readme_examples};
pub use storage::{DatabaseKind, TestStorage};
pub use system::{ADMIN_EMAIL, ADMIN_PASSWORD, ScaledSystem, SystemProcesses};
pub use tls::TestCertificates;
