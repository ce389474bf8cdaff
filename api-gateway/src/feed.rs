//! The live event feed behind GraphQL subscriptions and the caches: the gateway reads
//! `order.status.changed` and `product.stock.updated` and hands each event to the
//! subscriptions that follow its order or product ([`Followers`]); every product and user
//! change (those and `product.updated`, `product.deleted`, `user.updated`, `user.deleted`)
//! drops its entity from the [`Caches`].
//!
//! It reads only while someone listens or reads cached entities. With neither for
//! `SUBSCRIPTION_FEED_IDLE_MS`, its partitions are unassigned, so an idle gateway costs the
//! broker no fetches (on the embedded broker each fetch is a round of storage queries, whether
//! or not anything arrived). The first subscription then waits until the feed has taken the
//! topics' current ends as its positions, so that nothing published after the subscription
//! started is missed; the caches keep nothing until then.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use events::{
    KafkaArgs,
    envelope::decode,
    kafka::{Role, StatsContext, assign_at_high_watermarks, ensure_topics_with_retry},
    payloads::{OrderStatusChanged, ProductStockUpdated},
    topics,
};
use rdkafka::{
    Message as _,
    consumer::{Consumer as _, StreamConsumer},
};
use tokio::sync::{Notify, broadcast, watch};
use tokio_util::sync::CancellationToken;

use crate::{
    cache::{Cacheable, Caches, EntityCache},
    followers::Followers,
};

/// How long a new subscription waits for the feed to start reading before it is refused.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// How many recent event ids the feed remembers to drop redelivered copies.
const REMEMBERED_EVENTS: usize = 16_384;

/// Status changes one order subscription may fall behind on before it misses some: an order
/// has a handful in its whole life.
const ORDER_BACKLOG: usize = 16;

/// Stock changes one product subscription may fall behind on. A popular product's stock
/// changes with every order, and the feed hands a whole fetched batch over at once: at 16, a
/// burst of 50 orders for one product left its subscribers with the last 16 changes. The
/// channel's slots (some 50 bytes each) exist once per followed product, not per subscription.
const STOCK_BACKLOG: usize = 1024;

/// The topics the feed reads.
const TOPICS: [&str; 6] = [
    topics::ORDER_STATUS_CHANGED,
    topics::PRODUCT_STOCK_UPDATED,
    topics::PRODUCT_UPDATED,
    topics::PRODUCT_DELETED,
    topics::USER_UPDATED,
    topics::USER_DELETED,
];

/// Where subscriptions get their events.
#[derive(Debug, Clone)]
pub struct EventFeed {
    orders: Arc<Followers<OrderStatusChanged>>,
    stock: Arc<Followers<ProductStockUpdated>>,
    caches: Caches,
    demand: Arc<Demand>,
    /// How long the feed keeps reading after the last subscription ended.
    idle_after: Duration,
    /// False without a broker: subscriptions then fail with UNAVAILABLE.
    pub enabled: bool,
}

/// Whether the feed is reading, and the subscriptions waiting for it to start.
#[derive(Debug)]
struct Demand {
    /// True while the partitions are assigned. Changed only with this lock held, so that the
    /// feed cannot stop reading between a subscription's check and its listening.
    reading: Mutex<bool>,
    /// Wakes the feed when a subscription or a cache read needs it reading.
    wanted: Arc<Notify>,
    /// Tells waiting subscriptions that reading started.
    started: watch::Sender<u64>,
}

impl Demand {
    /// Whether the feed reads, locked: the feed changes it and a subscription checks it under
    /// this lock.
    fn reading(&self) -> std::sync::MutexGuard<'_, bool> {
        self.reading.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The feed is not reading and could not start in time.
#[derive(Debug, thiserror::Error)]
#[error("the event feed is not reading from the broker")]
pub struct FeedUnavailable;

impl EventFeed {
    /// A feed that is not reading yet; `cache_ttl` is how long the caches serve an answer
    /// (zero: no caching).
    pub fn new(enabled: bool, idle_after: Duration, cache_ttl: Duration) -> Self {
        let wanted = Arc::new(Notify::new());
        Self {
            orders: Arc::new(Followers::new(ORDER_BACKLOG)),
            stock: Arc::new(Followers::new(STOCK_BACKLOG)),
            caches: Caches::new(cache_ttl, &wanted),
            demand: Arc::new(Demand { reading: Mutex::new(false), wanted, started: watch::channel(0).0 }),
            idle_after,
            enabled,
        }
    }

    /// Status changes of order `order_id` from now on.
    pub async fn follow_order(
        &self,
        order_id: &str,
    ) -> Result<broadcast::Receiver<Arc<OrderStatusChanged>>, FeedUnavailable> {
        self.follow(&self.orders, order_id).await
    }

    /// Stock changes of product `product_id` from now on.
    pub async fn follow_stock(
        &self,
        product_id: &str,
    ) -> Result<broadcast::Receiver<Arc<ProductStockUpdated>>, FeedUnavailable> {
        self.follow(&self.stock, product_id).await
    }

    /// Events of entity `id` among `followers` from now on, once the feed reads.
    async fn follow<T>(
        &self,
        followers: &Followers<T>,
        id: &str,
    ) -> Result<broadcast::Receiver<Arc<T>>, FeedUnavailable> {
        // Listen first: from here on the feed does not stop while this receiver lives.
        let receiver = followers.follow(id);
        self.reading().await?;
        Ok(receiver)
    }

    /// Returns once the feed reads from positions taken after this call began.
    async fn reading(&self) -> Result<(), FeedUnavailable> {
        let mut started = self.demand.started.subscribe();
        let seen = *started.borrow_and_update();
        if *self.demand.reading() {
            return Ok(());
        }
        self.demand.wanted.notify_one();
        tokio::time::timeout(START_TIMEOUT, started.wait_for(|generation| *generation > seen))
            .await
            .map_err(|_| FeedUnavailable)?
            .map_err(|_| FeedUnavailable)?;
        Ok(())
    }

    /// The caches this feed keeps current.
    pub fn caches(&self) -> &Caches {
        &self.caches
    }

    fn listeners(&self) -> usize {
        self.orders.listeners() + self.stock.listeners()
    }
}

/// Reads the topics until `cancel` fires, reconnecting after errors.
pub async fn run(feed: EventFeed, kafka: KafkaArgs, cancel: CancellationToken) {
    if !kafka.enabled() || !ensure_topics_with_retry(&kafka, &cancel).await {
        return;
    }
    let mut seen = SeenEvents::default();
    loop {
        if let Err(error) = read(&feed, &kafka, &mut seen, &cancel).await {
            tracing::warn!(error = format!("{error:#}"), "subscription feed interrupted; reconnecting");
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

async fn read(
    feed: &EventFeed,
    kafka: &KafkaArgs,
    seen: &mut SeenEvents,
    cancel: &CancellationToken,
) -> anyhow::Result<()> {
    // Its own group id and no commits: each gateway replica sees every event.
    let consumer: StreamConsumer<StatsContext> = kafka
        .client_config_with_stats()
        .set("group.id", format!("api-gateway-feed-{}", uuid::Uuid::now_v7()))
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", kafka.kafka_fetch_wait_ms.to_string())
        .create_with_context(StatsContext::new(Role::Feed))?;
    let consumer = Arc::new(consumer);
    // After an interruption, whoever was listening still wants events.
    let result = serve(feed, &consumer, seen, cancel).await;
    *feed.demand.reading() = false;
    feed.caches.reset(false);
    // Only reads from now on ask it to start again: with the broker gone for good, reads that
    // are over must not keep it reconnecting.
    feed.caches.take_used();
    result
}

async fn serve(
    feed: &EventFeed,
    consumer: &Arc<StreamConsumer<StatsContext>>,
    seen: &mut SeenEvents,
    cancel: &CancellationToken,
) -> anyhow::Result<()> {
    let mut idle_since: Option<tokio::time::Instant> = None;
    // A timer of its own: a steady stream of events must not keep the check from running.
    let mut check = tokio::time::interval((feed.idle_after / 3).max(Duration::from_millis(10)));
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let reading = *feed.demand.reading();
        if !reading && (feed.listeners() > 0 || feed.caches.used()) {
            start(feed, consumer).await?;
            idle_since = None;
            continue;
        }
        // `recv` is polled even while nothing is assigned: it also serves librdkafka's own
        // events (its statistics, once a second), which would otherwise pile up in its queue.
        tokio::select! {
            () = cancel.cancelled() => return Ok(()),
            () = feed.demand.wanted.notified(), if !reading => {}
            message = consumer.recv() => forward(feed, &message?, seen),
            _ = check.tick(), if reading => stop_if_idle(feed, consumer, &mut idle_since)?,
        }
    }
}

/// Assigns every partition at its current end, then lets the waiting subscriptions go.
async fn start(feed: &EventFeed, consumer: &Arc<StreamConsumer<StatsContext>>) -> anyhow::Result<()> {
    let assigning = Arc::clone(consumer);
    let partitions = tokio::task::spawn_blocking(move || assign_at_high_watermarks(&*assigning, &TOPICS)).await??;
    *feed.demand.reading() = true;
    feed.caches.reset(true);
    feed.demand.started.send_modify(|generation| *generation += 1);
    tracing::info!(partitions, topics = ?TOPICS, "event feed reading");
    Ok(())
}

/// Stops reading once nobody has listened or read a cache for the feed's idle time.
fn stop_if_idle(
    feed: &EventFeed,
    consumer: &StreamConsumer<StatsContext>,
    idle_since: &mut Option<tokio::time::Instant>,
) -> anyhow::Result<()> {
    let mut reading = feed.demand.reading();
    if feed.listeners() > 0 || feed.caches.take_used() {
        *idle_since = None;
        return Ok(());
    }
    let since = *idle_since.get_or_insert_with(tokio::time::Instant::now);
    if since.elapsed() >= feed.idle_after {
        consumer.unassign()?;
        *reading = false;
        feed.caches.reset(false);
        *idle_since = None;
        tracing::info!("event feed paused: no subscriptions and no cached reads");
    }
    Ok(())
}

/// Sends `message` to its subscribers, unless it is a copy of an event sent before (a
/// redelivery, or a relay's retry).
fn forward(feed: &EventFeed, message: &rdkafka::message::BorrowedMessage<'_>, seen: &mut SeenEvents) {
    // The last hop of the event's trace (when traces are exported).
    events::kafka::consumer_span("api-gateway feed", message).in_scope(|| forward_once(feed, message, seen));
}

/// [`forward`], inside the event's span.
fn forward_once(feed: &EventFeed, message: &rdkafka::message::BorrowedMessage<'_>, seen: &mut SeenEvents) {
    let payload = message.payload().unwrap_or_default();
    match message.topic() {
        topics::ORDER_STATUS_CHANGED => {}
        topics::USER_UPDATED | topics::USER_DELETED => changed(&feed.caches.users, message),
        _ => changed(&feed.caches.products, message),
    }
    // A message the gateway cannot read is the owning consumers' concern (they dead-letter
    // it); subscribers simply do not see it.
    match message.topic() {
        topics::ORDER_STATUS_CHANGED => match decode::<OrderStatusChanged>(payload) {
            Ok(envelope) => {
                if seen.first_time(&envelope.id) {
                    feed.orders.send(&envelope.payload.order_id.clone(), envelope.payload);
                }
            }
            Err(error) => tracing::debug!(%error, "skipping an unreadable order.status.changed"),
        },
        topics::PRODUCT_STOCK_UPDATED => match decode::<ProductStockUpdated>(payload) {
            Ok(envelope) => {
                if seen.first_time(&envelope.id) {
                    feed.stock.send(&envelope.payload.product_id.clone(), envelope.payload);
                }
            }
            Err(error) => tracing::debug!(%error, "skipping an unreadable product.stock.updated"),
        },
        _ => {}
    }
}

/// Drops the entity `message` is about from `cache`. Every event is keyed by its entity's id;
/// without one, which entity changed is unknown.
fn changed<T: Cacheable>(cache: &EntityCache<T>, message: &rdkafka::message::BorrowedMessage<'_>) {
    match message.key().and_then(|key| std::str::from_utf8(key).ok()) {
        Some(id) => cache.changed(id),
        None => cache.all_changed(),
    }
}

/// The ids of the last [`REMEMBERED_EVENTS`] events forwarded: a copy arrives close to its
/// original (a retried publish, a redelivery after a reconnect), so a bounded memory suffices.
///
/// Each id is kept as a 64-bit hash, not as its text: 16,384 ids as `String`s, in the set and
/// in the queue, held ~2.7 MB for as long as the gateway ran (every busy run fills it), against
/// ~0.4 MB as hashes. Two different ids share a hash with a chance of about 16,384 in 2^64, and
/// the cost of that would be one notification not sent.
#[derive(Debug, Default)]
struct SeenEvents {
    hasher: std::hash::RandomState,
    ids: std::collections::HashSet<u64>,
    order: std::collections::VecDeque<u64>,
}

impl SeenEvents {
    /// True the first time `id` is offered; false for a copy still remembered.
    fn first_time(&mut self, id: &str) -> bool {
        let hash = std::hash::BuildHasher::hash_one(&self.hasher, id);
        if !self.ids.insert(hash) {
            return false;
        }
        if self.order.len() == REMEMBERED_EVENTS
            && let Some(oldest) = self.order.pop_front()
        {
            self.ids.remove(&oldest);
        }
        self.order.push_back(hash);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_is_dropped_and_memory_stays_bounded() {
        let mut seen = SeenEvents::default();
        assert!(seen.first_time("a"));
        assert!(!seen.first_time("a"), "a copy");
        for i in 0..REMEMBERED_EVENTS {
            assert!(seen.first_time(&format!("e{i}")));
        }
        assert_eq!(seen.ids.len(), REMEMBERED_EVENTS);
        assert_eq!(seen.order.len(), REMEMBERED_EVENTS);
        assert!(seen.first_time("a"), "forgotten once enough newer events came");
    }
}
