//! The runtime every service shares, so that the three services differ only in their domain.
//!
//! - [`config`]: the configuration contract's common settings (flags with env fallbacks).
//! - [`telemetry`]: structured logs, JSON or pretty, and OpenTelemetry traces over OTLP when
//!   configured; [`spans`]: the spans a trace follows across processes; [`trace_context`]: the
//!   W3C trace context in gRPC and Kafka headers;
//!   [`metrics`]: the Prometheus recorder and its `METRICS_ADDR` listener.
//! - [`database`]: SQLite (default, WAL) or PostgreSQL by URL, with embedded migrations.
//! - [`grpc`]: binding, health, reflection and graceful shutdown with a drain timeout;
//!   [`balance`]: client channels spread over every replica of a peer, [`peer_channel`]:
//!   which send a call again when its replica refused the connection;
//!   [`drain`] counts the calls in flight that a shutdown waits for; [`rpc_metrics`] counts
//!   and times every call by method and status; [`tls`]: TLS for servers and clients, by
//!   configuration.
//! - [`error`]: the one error type services return, and its one mapping to `tonic::Status`.
//! - [`paging`], [`validate`], [`time`]: small rules every RPC follows the same way.
//! - [`shutdown`]: the future that resolves on SIGTERM or Ctrl-C; [`process`]: a binary's `main`;
//!   [`startup`]: why a process could not start.

pub mod allocator;
pub mod balance;
pub mod config;
pub mod database;
pub mod drain;
pub mod error;
pub mod grpc;
pub mod metrics;
pub mod paging;
pub mod peer_channel;
pub mod process;
pub mod rpc_metrics;
pub mod shutdown;
pub mod spans;
pub mod startup;
pub mod telemetry;
pub mod time;
pub mod tls;
pub mod trace_context;
pub mod validate;

pub use error::{ServiceError, ServiceResult};
pub use grpc::GrpcServer;
