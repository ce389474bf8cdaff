//! Consuming one topic with a consumer group, exactly-once in effect.
//!
//! For each message: decode and check the envelope; in one database transaction, skip it if
//! its event id was processed already, else run the handler and record the id; commit; only
//! then mark the Kafka offset for commit (librdkafka commits marked offsets every
//! [`OFFSET_COMMIT_INTERVAL_MS`], on rebalance and on close — never an offset whose effect is not
//! stored). A crash may redeliver the last fraction of a second of messages; the event-id
//! record makes them no-ops. A message that cannot be decoded, has an unknown schema
//! version, or still fails after [`MAX_ATTEMPTS`] tries (with backoff) goes to `<topic>.dlq`
//! with the reason in headers, and the partition moves on.

use std::{future::Future, marker::PhantomData, time::Duration};

use rdkafka::{
    Message as _,
    consumer::{Consumer as _, StreamConsumer},
    message::{BorrowedMessage, Header, Headers as _, OwnedHeaders},
    producer::{FutureProducer, FutureRecord},
};
use sqlx::{AnyConnection, AnyPool};
use tokio_util::sync::CancellationToken;

use crate::{Envelope, Event, KafkaArgs, envelope::decode, outbox::OutboxSignal, topics};

/// Tries per message before it is dead-lettered.
pub const MAX_ATTEMPTS: u32 = 4;

/// How often marked offsets are committed. One commit per message was one broker write per
/// message, the largest share of the broker's work under load; redelivery is harmless.
pub const OFFSET_COMMIT_INTERVAL_MS: u32 = 100;

/// Header names on dead-lettered messages.
pub mod dlq_headers {
    pub const REASON: &str = "dlq-reason";
    pub const SOURCE_TOPIC: &str = "dlq-source-topic";
    pub const SOURCE_PARTITION: &str = "dlq-source-partition";
    pub const SOURCE_OFFSET: &str = "dlq-source-offset";
}

/// Why a handler did not apply an event.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Worth trying again (the database was busy, say).
    #[error("{0:#}")]
    Retryable(anyhow::Error),
    /// Will never work; dead-letter it at once.
    #[error("{0}")]
    Permanent(String),
}

impl From<sqlx::Error> for HandlerError {
    fn from(error: sqlx::Error) -> Self {
        Self::Retryable(error.into())
    }
}

/// Applies one event's effect inside the given transaction (which also records the event as
/// processed, and may write outbox rows for the events this effect causes).
pub trait Handler<E: Event>: Send + Sync + 'static {
    /// How long the broker may hold a fetch that finds nothing new (`fetch.wait.max.ms`). The
    /// embedded broker answers every fetch only after this wait, so it bounds each saga hop; a
    /// handler nobody waits on can take longer and spare the broker the polling.
    const FETCH_WAIT_MS: u32 = 50;

    fn handle<'a>(
        &'a self,
        event: &'a Envelope<E>,
        transaction: &'a mut AnyConnection,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send + 'a;
}

/// One topic's consumer.
pub struct TopicConsumer<E, H> {
    kafka: KafkaArgs,
    group: String,
    pool: AnyPool,
    handler: H,
    outbox: OutboxSignal,
    _event: PhantomData<fn() -> E>,
}

impl<E, H> std::fmt::Debug for TopicConsumer<E, H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopicConsumer").field("group", &self.group).finish_non_exhaustive()
    }
}

/// What became of one message.
enum Outcome {
    Applied,
    Duplicate,
    DeadLettered(String),
}

impl<E: Event + 'static, H: Handler<E>> TopicConsumer<E, H> {
    /// A consumer of `E`'s topic in the group `<service>.<topic>`: one group per service and
    /// topic, so that each group holds one kind of member and a crash or restart rebalances only
    /// the groups of the process concerned, each on its own.
    pub fn new(kafka: KafkaArgs, service: &str, pool: AnyPool, handler: H, outbox: OutboxSignal) -> Self {
        let group = format!("{service}.{}", E::TOPIC);
        Self { kafka, group, pool, handler, outbox, _event: PhantomData }
    }

    /// Consumes until `cancel` fires.
    pub async fn run(self, cancel: CancellationToken) -> anyhow::Result<()> {
        let mut config = self.kafka.client_config();
        if let Some(instance) = &self.kafka.group_instance {
            config.set("group.instance.id", instance);
        }
        let consumer: StreamConsumer = config
            .set("group.id", &self.group)
            // Commit only what `store_offset_from_message` marked, after its effect is stored.
            .set("enable.auto.commit", "true")
            .set("enable.auto.offset.store", "false")
            .set("auto.commit.interval.ms", OFFSET_COMMIT_INTERVAL_MS.to_string())
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "10000")
            // Handling one message takes at most a few seconds, retries included; a member
            // stuck for longer than this is taken out of the group (the default is 5 minutes).
            .set("max.poll.interval.ms", "30000")
            .set("fetch.wait.max.ms", H::FETCH_WAIT_MS.to_string())
            .create()?;
        consumer.subscribe(&[E::TOPIC])?;
        let dead_letters = self.kafka.producer()?;
        tracing::info!(topic = E::TOPIC, group = %self.group, "consuming");
        loop {
            let message = tokio::select! {
                () = cancel.cancelled() => return Ok(()),
                message = consumer.recv() => message,
            };
            let message = match message {
                Ok(message) => message,
                Err(error) => {
                    tracing::warn!(topic = E::TOPIC, %error, "consumer error");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            let outcome = self.process(&message, &cancel).await;
            match outcome {
                Some(Outcome::DeadLettered(reason)) => {
                    // Never drop a message: keep trying until the dead-letter topic has it.
                    if !send_to_dead_letter(&dead_letters, &message, &reason, &cancel).await {
                        return Ok(());
                    }
                }
                Some(Outcome::Applied | Outcome::Duplicate) => {}
                // Cancelled mid-way: leave the offset alone, the message comes back after restart.
                None => return Ok(()),
            }
            if let Err(error) = consumer.store_offset_from_message(&message) {
                tracing::warn!(topic = E::TOPIC, %error, "offset not stored; the message may be redelivered");
            }
        }
    }

    async fn process(&self, message: &BorrowedMessage<'_>, cancel: &CancellationToken) -> Option<Outcome> {
        let envelope = match decode::<E>(message.payload().unwrap_or_default()) {
            Ok(envelope) => envelope,
            Err(error) => return Some(Outcome::DeadLettered(error.to_string())),
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.apply(&envelope).await {
                Ok(applied) => {
                    if applied {
                        self.outbox.wake();
                        return Some(Outcome::Applied);
                    }
                    return Some(Outcome::Duplicate);
                }
                Err(HandlerError::Permanent(reason)) => return Some(Outcome::DeadLettered(reason)),
                Err(HandlerError::Retryable(error)) if attempt >= MAX_ATTEMPTS => {
                    return Some(Outcome::DeadLettered(format!("failed {attempt} times; last error: {error:#}")));
                }
                Err(HandlerError::Retryable(error)) => {
                    let delay = Duration::from_millis(100 * 4_u64.pow(attempt - 1));
                    tracing::warn!(topic = E::TOPIC, event_id = %envelope.id, attempt, error = format!("{error:#}"), "retrying");
                    tokio::select! {
                        () = cancel.cancelled() => return None,
                        () = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }

    /// Applies the event once: false when it had been processed before.
    async fn apply(&self, envelope: &Envelope<E>) -> Result<bool, HandlerError> {
        let mut transaction = self.pool.begin().await?;
        // Record first: the write takes SQLite's lock at once, and a duplicate stops here.
        let recorded = sqlx::query(
            "INSERT INTO processed_events (event_id, topic, processed_at) VALUES ($1, $2, $3) ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(&envelope.id)
        .bind(E::TOPIC)
        .bind(chrono::Utc::now().timestamp_millis())
        .execute(&mut *transaction)
        .await?;
        if recorded.rows_affected() == 0 {
            transaction.rollback().await?;
            return Ok(false);
        }
        self.handler.handle(envelope, &mut transaction).await?;
        transaction.commit().await?;
        Ok(true)
    }
}

/// Publishes `message` to its topic's dead-letter topic with the reason; false if cancelled
/// before it got there.
async fn send_to_dead_letter(
    producer: &FutureProducer,
    message: &BorrowedMessage<'_>,
    reason: &str,
    cancel: &CancellationToken,
) -> bool {
    let topic = topics::dead_letter(message.topic());
    let partition = message.partition().to_string();
    let offset = message.offset().to_string();
    tracing::error!(source = message.topic(), %partition, %offset, reason, "dead-lettering a message");
    let mut delay = Duration::from_millis(200);
    loop {
        let mut headers = OwnedHeaders::new()
            .insert(Header { key: dlq_headers::REASON, value: Some(reason.as_bytes()) })
            .insert(Header { key: dlq_headers::SOURCE_TOPIC, value: Some(message.topic().as_bytes()) })
            .insert(Header { key: dlq_headers::SOURCE_PARTITION, value: Some(partition.as_bytes()) })
            .insert(Header { key: dlq_headers::SOURCE_OFFSET, value: Some(offset.as_bytes()) });
        if let Some(original) = message.headers() {
            for header in original.iter() {
                headers = headers.insert(Header { key: header.key, value: header.value });
            }
        }
        let mut record = FutureRecord::to(&topic).headers(headers);
        if let Some(key) = message.key() {
            record = record.key(key);
        }
        if let Some(payload) = message.payload() {
            record = record.payload(payload);
        }
        match producer.send(record, Duration::from_secs(10)).await {
            Ok(_) => return true,
            Err((error, _)) => tracing::warn!(%topic, %error, "dead-letter publish failed; retrying"),
        }
        tokio::select! {
            () = cancel.cancelled() => return false,
            () = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}
