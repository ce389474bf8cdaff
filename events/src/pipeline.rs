//! Everything event-related a service runs beside its gRPC server: topic creation, the outbox
//! relay and the process's consumer, started together once the broker answers.

use service_runtime::{database::Database, grpc::BackgroundTask};
use tokio_util::sync::CancellationToken;

use crate::{
    Event, KafkaArgs,
    consumer::{Handler, ProcessConsumer},
    kafka::ensure_topics_with_retry,
    outbox::{OutboxSignal, Relay},
};

/// A service's relay and consumer.
#[derive(Debug)]
pub struct EventPipeline {
    kafka: KafkaArgs,
    database: Database,
    signal: OutboxSignal,
    consumer: ProcessConsumer,
}

impl EventPipeline {
    /// The relay for `database`'s outbox, woken by `signal`, and a consumer in the group `service`
    /// (replicas of a service share its work) that handles nothing until [`Self::consume`].
    pub fn new(kafka: KafkaArgs, service: &str, database: Database, signal: OutboxSignal) -> Self {
        let consumer = ProcessConsumer::new(kafka.clone(), service, database.clone(), signal.clone());
        Self { kafka, database, signal, consumer }
    }

    /// Also consumes `E`'s topic with `handler`, in the same consumer as every other topic.
    pub fn consume<E: Event + 'static, H: Handler<E>>(mut self, handler: H) -> Self {
        self.consumer.route::<E, H>(handler);
        self
    }

    /// The task to run beside the server.
    pub fn into_background(self) -> BackgroundTask {
        Box::new(move |cancel| Box::pin(self.run(cancel)))
    }

    async fn run(self, cancel: CancellationToken) {
        if !self.kafka.enabled() {
            tracing::warn!("KAFKA_BROKERS is empty: events are kept in the outbox and not published");
            cancel.cancelled().await;
            return;
        }
        if !ensure_topics_with_retry(&self.kafka, &cancel).await {
            return;
        }
        let producer = match self.kafka.producer() {
            Ok(producer) => producer,
            Err(error) => {
                tracing::error!(%error, "cannot create the Kafka producer; events stay in the outbox");
                cancel.cancelled().await;
                return;
            }
        };
        // One producer for the relay and the dead letters: each producer is a connection
        // and a thread of librdkafka's.
        let retention = std::time::Duration::from_secs(self.kafka.processed_events_retention_secs);
        let relay =
            tokio::spawn(Relay::new(self.database, producer.clone(), self.signal, retention).run(cancel.clone()));
        if let Err(error) = self.consumer.run(producer, cancel).await {
            tracing::error!(error = format!("{error:#}"), "consumer stopped");
        }
        let _ = relay.await;
    }
}
