//! Domain events between the services.
//!
//! - [`payloads`]: one typed payload per topic, each knowing its topic, type name, schema
//!   version and aggregate id (the Kafka key, so one entity's events stay in order).
//! - [`envelope`]: what goes on the wire: event id, type, time, version, payload (JSON), plus
//!   headers (event type, trace context).
//! - [`outbox`]: events are written to an outbox table in the same transaction as the state
//!   change; a relay publishes them in batches and marks them sent once the broker has confirmed.
//! - [`consumer`]: one consumer group member per process, batches applied in one transaction
//!   and committed after the effect is stored; effects are made idempotent by a processed-event
//!   record in the same transaction; poison messages go to `<topic>.dlq` with the reason;
//!   [`orphans`]: partitions no member reads (a replica killed outright, on a broker that does
//!   not rebalance around it) are noticed and the group made to share them out again.
//! - [`producer`]: the process's one producer, whose deliveries are awaited.
//! - `lease`: on PostgreSQL, one replica's relay publishes at a time (an advisory lock).
//! - [`kafka`]: broker settings (`KAFKA_BROKERS`) and topic creation at start.

pub mod consumer;
pub mod envelope;
pub mod kafka;
mod lease;
pub mod orphans;
pub mod outbox;
pub mod payloads;
mod pipeline;
pub mod producer;
pub mod security;
pub mod topics;

pub use envelope::Envelope;
pub use kafka::KafkaArgs;
pub use payloads::Event;
pub use pipeline::EventPipeline;

/// The outbox and processed-event tables, for every service's database.
pub fn migrator() -> sqlx::migrate::Migrator {
    service_runtime::database::migrator(sqlx::migrate!())
}
