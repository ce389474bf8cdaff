//! Everything event-related a service runs beside its gRPC server: topic creation, the outbox
//! relay and its consumers, started together once the broker answers.

use std::{future::Future, pin::Pin};

use service_runtime::grpc::BackgroundTask;
use sqlx::AnyPool;
use tokio_util::sync::CancellationToken;

use crate::{
    Event, KafkaArgs,
    consumer::{Handler, TopicConsumer},
    kafka::ensure_topics_with_retry,
    outbox::{OutboxSignal, Relay},
};

type ConsumerTask =
    Box<dyn FnOnce(CancellationToken) -> Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>> + Send>;

/// A service's relay and consumers.
pub struct EventPipeline {
    kafka: KafkaArgs,
    pool: AnyPool,
    signal: OutboxSignal,
    consumers: Vec<(&'static str, ConsumerTask)>,
}

impl std::fmt::Debug for EventPipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let topics: Vec<_> = self.consumers.iter().map(|(topic, _)| *topic).collect();
        f.debug_struct("EventPipeline").field("consumes", &topics).finish_non_exhaustive()
    }
}

impl EventPipeline {
    /// The relay for `pool`'s outbox, woken by `signal`.
    pub fn new(kafka: KafkaArgs, pool: AnyPool, signal: OutboxSignal) -> Self {
        Self { kafka, pool, signal, consumers: Vec::new() }
    }

    /// Also consumes `E`'s topic with `handler`, in the consumer group `<service>.<topic>`.
    pub fn consume<E: Event + 'static, H: Handler<E>>(mut self, service: &str, handler: H) -> Self {
        let consumer =
            TopicConsumer::<E, H>::new(self.kafka.clone(), service, self.pool.clone(), handler, self.signal.clone());
        self.consumers.push((E::TOPIC, Box::new(move |cancel| Box::pin(consumer.run(cancel)))));
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
        let mut tasks = vec![tokio::spawn(Relay::new(self.pool, producer, self.signal).run(cancel.clone()))];
        for (topic, consumer) in self.consumers {
            let cancel = cancel.clone();
            tasks.push(tokio::spawn(async move {
                if let Err(error) = consumer(cancel).await {
                    tracing::error!(topic, error = format!("{error:#}"), "consumer stopped");
                }
            }));
        }
        for task in tasks {
            let _ = task.await;
        }
    }
}
