//! Consuming a process's topics with one consumer group, exactly-once in effect, in batches.
//!
//! A process runs one consumer, subscribed to every topic it handles, in the group named after
//! the service: the broker's work (fetches, heartbeats, offset commits) then grows with the
//! number of processes, not with processes × topics.
//!
//! Every message one poll has ready (up to [`MAX_BATCH`]) is applied in one database
//! transaction: for each, in offset order, its event id is recorded (a duplicate stops there)
//! and its handler runs. One commit covers the batch; only then are the offsets marked for
//! commit (librdkafka commits marked offsets every [`OFFSET_COMMIT_INTERVAL_MS`], on rebalance
//! and on close — never an offset whose effect is not stored). A crash may redeliver the last
//! fraction of a second of messages; the event-id records make them no-ops.
//!
//! If anything in a batch fails, the batch is rolled back and its messages are applied again
//! one at a time: a message that cannot be decoded, has an unknown schema version, or still
//! fails after [`MAX_ATTEMPTS`] tries (with backoff) goes to `<topic>.dlq` with the reason in
//! headers, and the partition moves on.

use std::{future::Future, marker::PhantomData, sync::Arc, time::Duration};

use futures::{FutureExt as _, future::BoxFuture};
use rdkafka::{
    Message as _,
    consumer::{Consumer as _, StreamConsumer},
    message::{BorrowedMessage, Header, Headers as _, OwnedHeaders},
};
use service_runtime::database::Database;
use sqlx::AnyConnection;
use tokio_util::sync::CancellationToken;

use crate::{
    Envelope, Event, KafkaArgs,
    envelope::decode,
    kafka::{Role, StatsContext},
    orphans,
    outbox::OutboxSignal,
    producer::EventProducer,
    topics,
};

/// Tries per message before it is dead-lettered.
pub const MAX_ATTEMPTS: u32 = 4;

/// The most messages applied in one transaction. A batch holds SQLite's write lock while it
/// runs; a few hundred short effects keep that to tens of milliseconds.
pub const MAX_BATCH: usize = 256;

/// How often marked offsets are committed. One commit per message was one broker write per
/// message, the largest share of the broker's work under load (the embedded broker makes two
/// storage writes of each commit); a crash redelivers at most this much, which is harmless.
pub const OFFSET_COMMIT_INTERVAL_MS: u32 = 500;

/// How long the broker may go without a heartbeat before it drops a member. A broker busy with
/// a burst answers heartbeats late (the embedded one queues them behind every storage request);
/// at 10 s members were dropped and the group rebalanced again and again under load. Kafka's own
/// default is 45 s; with static membership a restarted member takes its place back at once.
const SESSION_TIMEOUT_MS: u32 = 45_000;

/// How long a member may go between polls before it is taken out of the group. A batch applied
/// one message at a time, each retried with backoff, takes at most a few seconds per message.
const MAX_POLL_INTERVAL_MS: u32 = 120_000;

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
    /// Whether `event` can have any effect here; `handle` is called only for those that can.
    /// One that cannot is not recorded as processed either: delivered again, it is as harmless
    /// as the first time, and the record was a write per event a consumer only skips
    /// (product-service reads every status change to act on cancellations alone).
    fn concerns(&self, _event: &E) -> bool {
        true
    }

    fn handle<'a>(
        &'a self,
        event: &'a Envelope<E>,
        transaction: &'a mut AnyConnection,
    ) -> impl Future<Output = Result<Effect, HandlerError>> + Send + 'a;
}

/// What a handler leaves to do once its transaction has committed: counting what it decided,
/// say. It runs exactly once per applied event, and never for an attempt that was rolled back
/// (a batch that failed and is applied again message by message).
#[derive(Default)]
pub struct Effect {
    after_commit: Option<Box<dyn FnOnce() + Send>>,
}

impl Effect {
    /// Nothing to do after the commit.
    pub fn none() -> Self {
        Self::default()
    }

    /// `run` once the transaction has committed.
    pub fn after_commit(run: impl FnOnce() + Send + 'static) -> Self {
        Self { after_commit: Some(Box::new(run)) }
    }

    fn committed(self) {
        if let Some(run) = self.after_commit {
            run();
        }
    }
}

impl std::fmt::Debug for Effect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Effect").field("after_commit", &self.after_commit.is_some()).finish()
    }
}

/// Why one message was not applied.
#[derive(Debug)]
enum Failure {
    /// Not an event of this topic's type and version: it never will be.
    Undecodable(String),
    Handler(HandlerError),
}

impl From<sqlx::Error> for Failure {
    fn from(error: sqlx::Error) -> Self {
        Self::Handler(error.into())
    }
}

/// One topic's handler with the event type erased, so that one consumer can route every topic
/// of its process.
trait Route: Send + Sync {
    fn topic(&self) -> &'static str;

    /// Decodes `payload` and applies it in `transaction`, recording its event id first; `None`
    /// when the event had been processed before. An event its handler is not concerned with is
    /// neither recorded nor handled.
    fn apply<'a>(
        &'a self,
        payload: &'a [u8],
        transaction: &'a mut AnyConnection,
    ) -> BoxFuture<'a, Result<Option<Effect>, Failure>>;
}

struct Typed<E, H> {
    handler: H,
    _event: PhantomData<fn() -> E>,
}

impl<E: Event + 'static, H: Handler<E>> Route for Typed<E, H> {
    fn topic(&self) -> &'static str {
        E::TOPIC
    }

    fn apply<'a>(
        &'a self,
        payload: &'a [u8],
        transaction: &'a mut AnyConnection,
    ) -> BoxFuture<'a, Result<Option<Effect>, Failure>> {
        Box::pin(async move {
            let envelope = decode::<E>(payload).map_err(|error| Failure::Undecodable(error.to_string()))?;
            if !self.handler.concerns(&envelope.payload) {
                return Ok(Some(Effect::none()));
            }
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
                return Ok(None);
            }
            self.handler.handle(&envelope, transaction).await.map(Some).map_err(Failure::Handler)
        })
    }
}

/// What became of one message applied on its own.
enum Outcome {
    Applied,
    Duplicate,
    DeadLettered(String),
}

/// Every [`orphans::CHECK_EVERY`], looks at the partitions of `topics` that `consumer` does not
/// hold, and makes the group share them out again when one has gone unread for
/// [`orphans::ORPHANED_AFTER`] (see [`orphans`]).
async fn watch_for_orphans(
    consumer: Arc<StreamConsumer<StatsContext>>,
    kafka: KafkaArgs,
    group: String,
    topics: Vec<&'static str>,
    cancel: CancellationToken,
) {
    let mut watch = orphans::OrphanWatch::default();
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(orphans::CHECK_EVERY) => {}
        }
        let Ok(held) = consumer.assignment() else { continue };
        // The consumer itself asks (from a blocking thread: librdkafka allows it beside the
        // polling); a client of its own for this cost a librdkafka client's threads and memory.
        let (looking, watched) = (Arc::clone(&consumer), topics.clone());
        let seen = match tokio::task::spawn_blocking(move || orphans::look(&*looking, &watched, &held)).await {
            Ok(Ok(seen)) => seen,
            Ok(Err(error)) => {
                tracing::debug!(%error, "could not look at the group's partitions");
                continue;
            }
            Err(_) => continue,
        };
        if watch.saw(std::time::Instant::now(), &seen) {
            tracing::warn!(
                %group,
                after = ?orphans::ORPHANED_AFTER,
                "partitions with unread events have no reader; making the group share them out again"
            );
            metrics::counter!("kafka_consumer_group_nudges_total", "group" => group.clone()).increment(1);
            let (kafka, group, topics) = (kafka.clone(), group.clone(), topics.clone());
            if let Ok(Err(error)) = tokio::task::spawn_blocking(move || orphans::nudge(&kafka, &group, &topics)).await {
                tracing::warn!(%error, "could not make the group rebalance");
            }
            watch.forget();
        }
    }
}

/// The consumer of one process: every topic it handles, in one group.
pub struct ProcessConsumer {
    kafka: KafkaArgs,
    group: String,
    database: Database,
    outbox: OutboxSignal,
    routes: Vec<Box<dyn Route>>,
}

impl std::fmt::Debug for ProcessConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessConsumer")
            .field("group", &self.group)
            .field("topics", &self.topics())
            .finish_non_exhaustive()
    }
}

impl ProcessConsumer {
    /// A consumer in the group `service` (replicas of a service share the work), handling no
    /// topic yet.
    pub fn new(kafka: KafkaArgs, service: &str, database: Database, outbox: OutboxSignal) -> Self {
        Self { kafka, group: service.to_owned(), database, outbox, routes: Vec::new() }
    }

    /// Also handles `E`'s topic with `handler`.
    ///
    /// # Panics
    /// When `E`'s topic has a handler already: one topic, one handler.
    pub fn route<E: Event + 'static, H: Handler<E>>(&mut self, handler: H) {
        assert!(!self.topics().contains(&E::TOPIC), "{} is handled twice", E::TOPIC);
        self.routes.push(Box::new(Typed::<E, H> { handler, _event: PhantomData }));
    }

    /// The topics this consumer reads.
    pub fn topics(&self) -> Vec<&'static str> {
        self.routes.iter().map(|route| route.topic()).collect()
    }

    /// Consumes until `cancel` fires.
    pub async fn run(self, dead_letters: EventProducer, cancel: CancellationToken) -> anyhow::Result<()> {
        let topics = self.topics();
        if topics.is_empty() {
            return Ok(());
        }
        let mut config = self.kafka.client_config_with_stats();
        if let Some(instance) = &self.kafka.group_instance {
            config.set("group.instance.id", instance);
        }
        let consumer: StreamConsumer<StatsContext> = config
            .set("group.id", &self.group)
            // Commit only what `store_offset_from_message` marked, after its effect is stored.
            .set("enable.auto.commit", "true")
            .set("enable.auto.offset.store", "false")
            .set("auto.commit.interval.ms", OFFSET_COMMIT_INTERVAL_MS.to_string())
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", SESSION_TIMEOUT_MS.to_string())
            .set("max.poll.interval.ms", MAX_POLL_INTERVAL_MS.to_string())
            .set("fetch.wait.max.ms", self.kafka.kafka_fetch_wait_ms.to_string())
            .create_with_context(StatsContext::new(Role::Consumer))?;
        consumer.subscribe(&topics)?;
        tracing::info!(?topics, group = %self.group, "consuming");
        let consumer = Arc::new(consumer);
        let watching = cancel.child_token();
        tokio::spawn(watch_for_orphans(
            Arc::clone(&consumer),
            self.kafka.clone(),
            self.group.clone(),
            topics.clone(),
            watching.clone(),
        ));
        // The watch ends with this loop, however it ends.
        let _stop_watching = watching.drop_guard();
        loop {
            let first = tokio::select! {
                () = cancel.cancelled() => return Ok(()),
                message = consumer.recv() => message,
            };
            let first = match first {
                Ok(message) => message,
                Err(error) => {
                    tracing::warn!(%error, "consumer error");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            // Everything else the last fetch brought is already queued: take it without waiting.
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match consumer.recv().now_or_never() {
                    Some(Ok(message)) => batch.push(message),
                    Some(Err(error)) => {
                        tracing::warn!(%error, "consumer error");
                        break;
                    }
                    None => break,
                }
            }
            match self.apply_batch(&batch).await {
                Ok(applied) => {
                    if applied {
                        self.outbox.wake();
                    }
                }
                Err(reason) => {
                    tracing::debug!(
                        messages = batch.len(),
                        reason,
                        "batch rolled back; applying its messages one by one"
                    );
                    for message in &batch {
                        if !self.apply_alone(message, &dead_letters, &cancel).await {
                            // Cancelled mid-way: leave the offsets alone, the messages come back.
                            return Ok(());
                        }
                        mark_done(&consumer, message);
                    }
                    continue;
                }
            }
            for message in &batch {
                mark_done(&consumer, message);
            }
        }
    }

    fn route_of(&self, topic: &str) -> Option<&dyn Route> {
        self.routes.iter().find(|route| route.topic() == topic).map(|route| &**route)
    }

    /// Applies every message of `batch` in one transaction; true when any had an effect. Any
    /// failure rolls the whole batch back and says why (in words, for the log).
    async fn apply_batch(&self, batch: &[BorrowedMessage<'_>]) -> Result<bool, String> {
        let mut transaction = self.database.writes().begin().await.map_err(|error| error.to_string())?;
        let mut effects = Vec::with_capacity(batch.len());
        for message in batch {
            let route = self.route_of(message.topic()).ok_or("a message from a topic without a handler")?;
            let span = crate::kafka::consumer_span(&self.group, message);
            match span.run(route.apply(message.payload().unwrap_or_default(), &mut transaction)).await {
                Ok(effect) => effects.push((message.topic(), effect)),
                Err(failure) => return Err(format!("{failure:?}")),
            }
        }
        transaction.commit().await.map_err(|error| error.to_string())?;
        let mut applied = false;
        for (topic, effect) in effects {
            applied |= effect.is_some();
            count_consumed(topic, effect.as_ref().map_or(CONSUMED_DUPLICATE, |_| CONSUMED_APPLIED));
            if let Some(effect) = effect {
                effect.committed();
            }
        }
        Ok(applied)
    }

    /// Applies one message in its own transaction, trying again after retryable failures and
    /// dead-lettering it when it cannot be applied; false if cancelled before it was settled.
    async fn apply_alone(
        &self,
        message: &BorrowedMessage<'_>,
        dead_letters: &EventProducer,
        cancel: &CancellationToken,
    ) -> bool {
        let outcome = match self.route_of(message.topic()) {
            Some(route) => self.apply_with_retries(route, message, cancel).await,
            None => Some(Outcome::DeadLettered(format!("no handler for topic {}", message.topic()))),
        };
        match outcome {
            None => false,
            Some(Outcome::Applied) => {
                count_consumed(message.topic(), CONSUMED_APPLIED);
                self.outbox.wake();
                true
            }
            Some(Outcome::Duplicate) => {
                count_consumed(message.topic(), CONSUMED_DUPLICATE);
                true
            }
            // Never drop a message: keep trying until the dead-letter topic has it.
            Some(Outcome::DeadLettered(reason)) => {
                let sent = send_to_dead_letter(dead_letters, message, &reason, cancel).await;
                if sent {
                    count_consumed(message.topic(), CONSUMED_DEAD_LETTERED);
                }
                sent
            }
        }
    }

    async fn apply_with_retries(
        &self,
        route: &dyn Route,
        message: &BorrowedMessage<'_>,
        cancel: &CancellationToken,
    ) -> Option<Outcome> {
        let payload = message.payload().unwrap_or_default();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let span = crate::kafka::consumer_span(&self.group, message);
            let error = match span.run(self.apply_one(route, payload)).await {
                Ok(true) => return Some(Outcome::Applied),
                Ok(false) => return Some(Outcome::Duplicate),
                Err(Failure::Undecodable(reason) | Failure::Handler(HandlerError::Permanent(reason))) => {
                    return Some(Outcome::DeadLettered(reason));
                }
                Err(Failure::Handler(HandlerError::Retryable(error))) => error,
            };
            if attempt >= MAX_ATTEMPTS {
                return Some(Outcome::DeadLettered(format!("failed {attempt} times; last error: {error:#}")));
            }
            let delay = Duration::from_millis(100 * 4_u64.pow(attempt - 1));
            tracing::warn!(
                topic = route.topic(),
                offset = message.offset(),
                attempt,
                error = format!("{error:#}"),
                "retrying"
            );
            tokio::select! {
                () = cancel.cancelled() => return None,
                () = tokio::time::sleep(delay) => {}
            }
        }
    }

    /// Applies `payload` in a transaction of its own; true if it had an effect (false: a
    /// duplicate).
    async fn apply_one(&self, route: &dyn Route, payload: &[u8]) -> Result<bool, Failure> {
        let mut transaction = self.database.writes().begin().await?;
        match route.apply(payload, &mut transaction).await? {
            Some(effect) => {
                transaction.commit().await?;
                effect.committed();
                Ok(true)
            }
            None => {
                transaction.rollback().await?;
                Ok(false)
            }
        }
    }
}

/// The `outcome` label of `events_consumed_total`: what became of a message.
const CONSUMED_APPLIED: &str = "applied";
const CONSUMED_DUPLICATE: &str = "duplicate";
const CONSUMED_DEAD_LETTERED: &str = "dead_lettered";

/// Counts one message a consumer is done with (`events_consumed_total{topic, outcome}`).
fn count_consumed(topic: &str, outcome: &'static str) {
    metrics::counter!("events_consumed_total", "topic" => topic.to_owned(), "outcome" => outcome).increment(1);
}

/// Marks `message`'s offset for the next commit: its effect is stored (or it was dead-lettered).
fn mark_done(consumer: &StreamConsumer<StatsContext>, message: &BorrowedMessage<'_>) {
    if let Err(error) = consumer.store_offset_from_message(message) {
        tracing::warn!(%error, "offset not stored; the message may be redelivered");
    }
}

/// Publishes `message` to its topic's dead-letter topic with the reason; false if cancelled
/// before it got there.
async fn send_to_dead_letter(
    producer: &EventProducer,
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
        match producer.send(&topic, message.key(), message.payload(), headers).await {
            Ok(()) => return true,
            Err(error) => tracing::warn!(%topic, %error, "dead-letter publish failed; retrying"),
        }
        tokio::select! {
            () = cancel.cancelled() => return false,
            () = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}
