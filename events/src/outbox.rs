//! The transactional outbox: [`enqueue`] writes an event in the caller's transaction; the
//! [`Relay`] publishes unsent events in order and marks each sent only after the broker
//! confirmed it. A broker outage therefore loses nothing: events wait in the table.

use std::{sync::Arc, time::Duration};

use rdkafka::message::{Header, OwnedHeaders};
use service_runtime::database::Database;
use sqlx::{AnyConnection, AnyPool};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::{
    Envelope, Event,
    envelope::{EVENT_TYPE_HEADER, TRACEPARENT_HEADER, new_traceparent},
    lease::RelayLease,
    producer::EventProducer,
};

/// The most events published per round. A relay that dies after the broker took a batch and
/// before it marked the batch sent leaves that batch to be published again (at least once:
/// consumers skip copies by event id), so at most this many copies follow one crash.
pub const BATCH: i64 = 256;
/// How often the relay looks for events even when nobody woke it.
const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// Sent events are kept this long (for inspection), then deleted.
const KEEP_SENT: Duration = Duration::from_secs(3600);

/// The trace the event joins: the current span's when traces are exported (the RPC or the
/// consumed event that caused it), so that the consumers of the event continue it; a fresh one
/// otherwise.
fn traceparent_here() -> String {
    service_runtime::trace_context::current_traceparent().unwrap_or_else(new_traceparent)
}

/// Writes `event` to the outbox within the caller's transaction (`connection` is the
/// transaction's). Call [`OutboxSignal::wake`] after committing for prompt publishing.
pub async fn enqueue<E: Event>(connection: &mut AnyConnection, event: E) -> sqlx::Result<()> {
    let key = event.key().to_owned();
    let envelope = Envelope::new(event);
    let payload = serde_json::to_string(&envelope).map_err(|error| sqlx::Error::Encode(Box::new(error)))?;
    sqlx::query(
        "INSERT INTO outbox (id, topic, event_key, payload, traceparent, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&envelope.id)
    .bind(E::TOPIC)
    .bind(key)
    .bind(payload)
    .bind(traceparent_here())
    .bind(chrono::Utc::now().timestamp_millis())
    .execute(connection)
    .await?;
    Ok(())
}

/// Wakes the relay after a transaction that wrote events has committed.
#[derive(Debug, Clone, Default)]
pub struct OutboxSignal(Arc<Notify>);

impl OutboxSignal {
    pub fn wake(&self) {
        self.0.notify_one();
    }

    /// Begins a write transaction on `database` whose events go out with it: write rows
    /// through it (it is a connection), add events with [`OutboxTransaction::enqueue`], and
    /// [`OutboxTransaction::commit`] wakes the relay once they are stored.
    pub async fn begin(&self, database: &Database) -> sqlx::Result<OutboxTransaction<'_>> {
        Ok(OutboxTransaction { transaction: database.writes().begin().await?, signal: self })
    }
}

/// A write transaction and the events it causes, committed together (see
/// [`OutboxSignal::begin`]). Dropped without a commit, it rolls back, events included.
#[derive(Debug)]
pub struct OutboxTransaction<'a> {
    transaction: sqlx::Transaction<'static, sqlx::Any>,
    signal: &'a OutboxSignal,
}

impl OutboxTransaction<'_> {
    /// Writes `event` to the outbox in this transaction.
    pub async fn enqueue<E: Event>(&mut self, event: E) -> sqlx::Result<()> {
        enqueue(&mut self.transaction, event).await
    }

    /// Commits, then wakes the relay to publish what was written. A transaction that wrote no
    /// event costs the relay one look at an empty outbox, which is why this does not count them
    /// (events written through the connection, as [`enqueue`] does, would be missed).
    pub async fn commit(self) -> sqlx::Result<()> {
        self.transaction.commit().await?;
        self.signal.wake();
        Ok(())
    }
}

impl std::ops::Deref for OutboxTransaction<'_> {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        &self.transaction
    }
}

impl std::ops::DerefMut for OutboxTransaction<'_> {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.transaction
    }
}

#[derive(Debug, sqlx::FromRow)]
struct PendingEvent {
    id: String,
    topic: String,
    event_key: String,
    payload: String,
    traceparent: String,
}

/// Publishes the outbox, and prunes it and the processed-event record.
pub struct Relay {
    database: Database,
    producer: EventProducer,
    signal: OutboxSignal,
    processed_retention: Duration,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay").finish_non_exhaustive()
    }
}

/// How often the outbox's depth and oldest unsent event are measured.
const MEASURE_EVERY: Duration = Duration::from_secs(5);

/// How often a relay that does not publish (another replica does) asks for the lease again.
const FOLLOWER_RETRY: Duration = Duration::from_secs(1);

/// How often sent events and old processed-event ids are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

impl Relay {
    /// A relay for `database`'s outbox that keeps consumed event ids for `processed_retention`.
    pub fn new(
        database: Database,
        producer: EventProducer,
        signal: OutboxSignal,
        processed_retention: Duration,
    ) -> Self {
        Self { database, producer, signal, processed_retention }
    }

    /// Publishes until `cancel` fires, while this replica holds the lease (always on SQLite).
    pub async fn run(self, cancel: CancellationToken) {
        let mut lease = loop {
            match RelayLease::for_pool(self.database.reads()).await {
                Ok(lease) => break lease,
                Err(error) => tracing::warn!(%error, "outbox relay cannot reach its database; will retry"),
            }
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(FOLLOWER_RETRY) => {}
            }
        };
        let mut failures: u32 = 0;
        let mut last_prune = std::time::Instant::now();
        let mut last_measure: Option<std::time::Instant> = None;
        loop {
            if last_measure.is_none_or(|at| at.elapsed() >= MEASURE_EVERY) {
                last_measure = Some(std::time::Instant::now());
                if let Err(error) = measure(&self.database).await {
                    tracing::debug!(%error, "could not measure the outbox");
                }
            }
            if !lease.holds(self.database.reads()).await {
                // Another replica publishes; its own writes do not wake this one.
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(FOLLOWER_RETRY) => continue,
                }
            }
            let outcome = self.publish_batch().await;
            let wait = match outcome {
                Ok(0) => {
                    failures = 0;
                    POLL_INTERVAL
                }
                // More may be waiting: go again at once.
                Ok(_) => {
                    failures = 0;
                    Duration::ZERO
                }
                Err(error) => {
                    failures += 1;
                    tracing::warn!(
                        error = format!("{error:#}"),
                        failures,
                        "outbox relay could not publish; will retry"
                    );
                    Duration::from_millis(200 * 2_u64.pow(failures.min(5)))
                }
            };
            if last_prune.elapsed() > PRUNE_EVERY {
                last_prune = std::time::Instant::now();
                if let Err(error) = prune(self.database.writes(), KEEP_SENT, self.processed_retention).await {
                    tracing::warn!(%error, "pruning the outbox and processed events failed");
                }
            }
            if wait.is_zero() {
                continue;
            }
            tokio::select! {
                () = cancel.cancelled() => return,
                () = self.signal.0.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Publishes up to one batch; returns how many were sent. Stops at the first failure so
    /// that later events of the same entity never overtake an earlier one.
    async fn publish_batch(&self) -> anyhow::Result<usize> {
        let pending: Vec<PendingEvent> = sqlx::query_as(
            "SELECT id, topic, event_key, payload, traceparent FROM outbox WHERE sent_at IS NULL ORDER BY id LIMIT $1",
        )
        .bind(BATCH)
        .fetch_all(self.database.reads())
        .await?;
        if pending.is_empty() {
            return Ok(0);
        }
        // Hand them all to the producer at once (it keeps per-partition order), then await.
        let deliveries = pending.iter().map(|event| {
            let event_type = event_type_of(&event.payload);
            let headers = OwnedHeaders::new()
                .insert(Header { key: EVENT_TYPE_HEADER, value: Some(event_type.as_bytes()) })
                .insert(Header { key: TRACEPARENT_HEADER, value: Some(event.traceparent.as_bytes()) });
            self.producer.send(&event.topic, Some(event.event_key.as_bytes()), Some(event.payload.as_bytes()), headers)
        });
        let results = futures::future::join_all(deliveries).await;
        let delivered: Vec<&str> = pending
            .iter()
            .zip(&results)
            .take_while(|(_, result)| result.is_ok())
            .map(|(event, _)| event.id.as_str())
            .collect();
        if let Some(padded) = service_runtime::database::padded_in_list(&delivered) {
            let query = format!(
                "UPDATE outbox SET sent_at = $1 WHERE id IN ({})",
                service_runtime::database::placeholders(2, padded.len())
            );
            let mut mark = sqlx::query(&query).bind(chrono::Utc::now().timestamp_millis());
            for id in padded {
                mark = mark.bind(*id);
            }
            mark.execute(self.database.writes()).await?;
            for event in &pending[..delivered.len()] {
                metrics::counter!("events_published_total", "topic" => event.topic.clone()).increment(1);
            }
        }
        if let Some(error) = results.into_iter().find_map(Result::err) {
            anyhow::bail!("{} of {} events published; then: {error}", delivered.len(), pending.len());
        }
        Ok(delivered.len())
    }
}

/// Reports the outbox's depth (`outbox_unsent_events`) and the age of its oldest unsent event
/// (`outbox_oldest_unsent_age_seconds`, 0 when none waits): a relay that cannot publish shows as
/// both growing. Also the pool's connections in use and idle (`db_pool_connections{state}`).
async fn measure(database: &Database) -> sqlx::Result<()> {
    let (unsent, oldest): (i64, Option<i64>) =
        sqlx::query_as("SELECT COUNT(*), MIN(created_at) FROM outbox WHERE sent_at IS NULL")
            .fetch_one(database.reads())
            .await?;
    let age_millis = oldest.map_or(0, |created| chrono::Utc::now().timestamp_millis().saturating_sub(created).max(0));
    #[allow(clippy::cast_precision_loss, reason = "a count and milliseconds, far below 2^52")]
    {
        metrics::gauge!("outbox_unsent_events").set(unsent as f64);
        metrics::gauge!("outbox_oldest_unsent_age_seconds").set(age_millis as f64 / 1000.0);
    }
    // The service's database connections, sampled at the same pace (sqlx counts no waiters).
    let connections = database.connections();
    metrics::gauge!("db_pool_connections", "state" => "idle").set(f64::from(connections.idle));
    metrics::gauge!("db_pool_connections", "state" => "in_use").set(f64::from(connections.in_use));
    Ok(())
}

/// Deletes events sent more than `keep_sent` ago and processed-event ids older than
/// `processed_retention`; returns how many of each.
pub async fn prune(pool: &AnyPool, keep_sent: Duration, processed_retention: Duration) -> sqlx::Result<(u64, u64)> {
    let now = chrono::Utc::now().timestamp_millis();
    let millis = |duration: Duration| i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
    let sent = sqlx::query("DELETE FROM outbox WHERE sent_at IS NOT NULL AND sent_at < $1")
        .bind(now.saturating_sub(millis(keep_sent)))
        .execute(pool)
        .await?
        .rows_affected();
    let processed = sqlx::query("DELETE FROM processed_events WHERE processed_at < $1")
        .bind(now.saturating_sub(millis(processed_retention)))
        .execute(pool)
        .await?
        .rows_affected();
    Ok((sent, processed))
}

fn event_type_of(payload: &str) -> String {
    serde_json::from_str::<serde_json::Value>(payload)
        .ok()
        .and_then(|value| value.get("type")?.as_str().map(str::to_owned))
        .unwrap_or_default()
}
