//! The live event feed behind GraphQL subscriptions and the caches: the gateway reads
//! `order.status.changed` and `product.stock.updated` and hands each event to the
//! subscriptions that follow its order or product ([`Followers`]); every product and user
//! change (`product.stock.updated`, `product.updated`, `product.deleted`, `user.updated`,
//! `user.deleted`) drops its entity from the [`Caches`].
//!
//! Two consumers read them, each for one [`Purpose`] and only while it is needed: the
//! subscriptions' while someone listens, the caches' while cached entities are read. With
//! neither for `SUBSCRIPTION_FEED_IDLE_MS`, a consumer's partitions are unassigned, so an idle
//! gateway costs the broker no fetches (on the embedded broker each fetch is a round of storage
//! queries per partition, whether or not anything arrived). A subscription waits until its
//! consumer has taken the topics' current ends as its positions, so that nothing published
//! after the subscription started is missed; the caches keep nothing until theirs has.
//!
//! They are two because they need different paces. A subscriber waits for its event, so the
//! subscriptions' consumer asks the broker every `KAFKA_FETCH_WAIT_MS`. The caches only need a
//! change to arrive well within their time to live; their consumer lets the broker hold each
//! fetch for [`CACHE_FETCH_WAIT`]. Kafka answers a fetch as soon as anything arrives, so that
//! costs nothing there. The embedded broker looks again after half of what is left (about four
//! looks a second) and answers at the first that finds something. With one consumer at the
//! subscriptions' pace for all six topics, cached reads alone kept it at 17–19 % of a core;
//! with the caches' own, at 9–11 % (a 200 ms wait instead: 12–15 %).

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

/// How long the broker may hold a fetch of the caches' consumer (`fetch.wait.max.ms`): on the
/// embedded broker a change reaches the caches within about half of it, a quarter of the
/// default time to live; on Kafka, at once.
const CACHE_FETCH_WAIT: Duration = Duration::from_millis(1000);

/// What one of the feed's consumers reads for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// Events for the subscriptions that follow an order or a product's stock.
    Subscriptions,
    /// Changes that drop a product or a user from the caches.
    Caches,
}

impl Purpose {
    fn topics(self) -> &'static [&'static str] {
        match self {
            Self::Subscriptions => &[topics::ORDER_STATUS_CHANGED, topics::PRODUCT_STOCK_UPDATED],
            Self::Caches => &[
                topics::PRODUCT_STOCK_UPDATED,
                topics::PRODUCT_UPDATED,
                topics::PRODUCT_DELETED,
                topics::USER_UPDATED,
                topics::USER_DELETED,
            ],
        }
    }

    /// The label of its Kafka client's metrics.
    fn role(self) -> Role {
        match self {
            Self::Subscriptions => Role::Feed,
            Self::Caches => Role::CacheFeed,
        }
    }

    /// `fetch.wait.max.ms`: see [`CACHE_FETCH_WAIT`].
    fn fetch_wait_ms(self, kafka: &KafkaArgs) -> u32 {
        match self {
            Self::Subscriptions => kafka.kafka_fetch_wait_ms,
            Self::Caches => {
                let wait = u32::try_from(CACHE_FETCH_WAIT.as_millis()).unwrap_or(u32::MAX);
                wait.max(kafka.kafka_fetch_wait_ms)
            }
        }
    }
}

/// Where subscriptions get their events.
#[derive(Debug, Clone)]
pub struct EventFeed {
    orders: Arc<Followers<OrderStatusChanged>>,
    stock: Arc<Followers<ProductStockUpdated>>,
    caches: Caches,
    demand: Arc<Demand>,
    /// Wakes the caches' consumer when a cache is read while it is not reading.
    wake_caches: Arc<Notify>,
    /// How long a consumer keeps reading after the last subscription ended, or the last
    /// cached read.
    idle_after: Duration,
    /// False without a broker: subscriptions then fail with UNAVAILABLE.
    pub enabled: bool,
}

/// Whether the subscriptions' consumer is reading, and the subscriptions waiting for it to
/// start.
#[derive(Debug)]
struct Demand {
    /// True while the partitions are assigned. Changed only with this lock held, so that the
    /// consumer cannot stop reading between a subscription's check and its listening.
    reading: Mutex<bool>,
    /// Wakes the consumer when a subscription needs it reading.
    wanted: Notify,
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
        let wake_caches = Arc::new(Notify::new());
        Self {
            orders: Arc::new(Followers::new(ORDER_BACKLOG)),
            stock: Arc::new(Followers::new(STOCK_BACKLOG)),
            caches: Caches::new(cache_ttl, &wake_caches),
            demand: Arc::new(Demand {
                reading: Mutex::new(false),
                wanted: Notify::new(),
                started: watch::channel(0).0,
            }),
            wake_caches,
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

/// Reads the topics until `cancel` fires, reconnecting after errors: both consumers, each
/// while its purpose needs it.
pub async fn run(feed: EventFeed, kafka: KafkaArgs, cancel: CancellationToken) {
    if !kafka.enabled() || !ensure_topics_with_retry(&kafka, &cancel).await {
        return;
    }
    tokio::join!(
        keep_reading(&feed, &kafka, Purpose::Subscriptions, &cancel),
        keep_reading(&feed, &kafka, Purpose::Caches, &cancel),
    );
}

async fn keep_reading(feed: &EventFeed, kafka: &KafkaArgs, purpose: Purpose, cancel: &CancellationToken) {
    let mut seen = SeenEvents::default();
    loop {
        if let Err(error) = read(feed, kafka, purpose, &mut seen, cancel).await {
            tracing::warn!(error = format!("{error:#}"), ?purpose, "event feed interrupted; reconnecting");
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
    purpose: Purpose,
    seen: &mut SeenEvents,
    cancel: &CancellationToken,
) -> anyhow::Result<()> {
    // Its own group id and no commits: each gateway replica sees every event.
    let consumer: StreamConsumer<StatsContext> = kafka
        .client_config_with_stats()
        .set("group.id", format!("api-gateway-feed-{}", uuid::Uuid::now_v7()))
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", purpose.fetch_wait_ms(kafka).to_string())
        .create_with_context(StatsContext::new(purpose.role()))?;
    let consumer = Arc::new(consumer);
    // After an interruption, whoever was listening still wants events.
    let result = serve(feed, purpose, &consumer, seen, cancel).await;
    match purpose {
        Purpose::Subscriptions => *feed.demand.reading() = false,
        Purpose::Caches => {
            feed.caches.reset(false);
            // Only reads from now on ask it to start again: with the broker gone for good,
            // reads that are over must not keep it reconnecting.
            feed.caches.take_used();
        }
    }
    result
}

async fn serve(
    feed: &EventFeed,
    purpose: Purpose,
    consumer: &Arc<StreamConsumer<StatsContext>>,
    seen: &mut SeenEvents,
    cancel: &CancellationToken,
) -> anyhow::Result<()> {
    let mut reading = false;
    let mut idle_since: Option<tokio::time::Instant> = None;
    // A timer of its own: a steady stream of events must not keep the check from running.
    let mut check = tokio::time::interval((feed.idle_after / 3).max(Duration::from_millis(10)));
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let wanted = match purpose {
        Purpose::Subscriptions => &feed.demand.wanted,
        Purpose::Caches => &*feed.wake_caches,
    };
    loop {
        let needed = match purpose {
            Purpose::Subscriptions => feed.listeners() > 0,
            Purpose::Caches => feed.caches.used(),
        };
        if !reading && needed {
            start(feed, purpose, consumer).await?;
            reading = true;
            idle_since = None;
            continue;
        }
        // `recv` is polled even while nothing is assigned: it also serves librdkafka's own
        // events (its statistics, once a second), which would otherwise pile up in its queue.
        tokio::select! {
            () = cancel.cancelled() => return Ok(()),
            () = wanted.notified(), if !reading => {}
            message = consumer.recv() => forward(feed, purpose, &message?, seen),
            _ = check.tick(), if reading => reading = !stop_if_idle(feed, purpose, consumer, &mut idle_since)?,
        }
    }
}

/// Assigns every partition at its current end, then lets the caches keep answers, or the
/// waiting subscriptions go.
async fn start(feed: &EventFeed, purpose: Purpose, consumer: &Arc<StreamConsumer<StatsContext>>) -> anyhow::Result<()> {
    let assigning = Arc::clone(consumer);
    let topics = purpose.topics();
    let partitions = tokio::task::spawn_blocking(move || assign_at_high_watermarks(&*assigning, topics)).await??;
    match purpose {
        Purpose::Subscriptions => {
            *feed.demand.reading() = true;
            feed.demand.started.send_modify(|generation| *generation += 1);
        }
        Purpose::Caches => feed.caches.reset(true),
    }
    tracing::info!(partitions, ?topics, ?purpose, "event feed reading");
    Ok(())
}

/// Stops reading once nobody has listened (or read a cache) for the feed's idle time; true
/// when it stopped.
fn stop_if_idle(
    feed: &EventFeed,
    purpose: Purpose,
    consumer: &StreamConsumer<StatsContext>,
    idle_since: &mut Option<tokio::time::Instant>,
) -> anyhow::Result<bool> {
    // For the subscriptions, held from the check to the change, so that a subscription cannot
    // start listening in between (see `Demand::reading`).
    let subscriptions_reading = (purpose == Purpose::Subscriptions).then(|| feed.demand.reading());
    let used = match purpose {
        Purpose::Subscriptions => feed.listeners() > 0,
        Purpose::Caches => feed.caches.take_used(),
    };
    if used {
        *idle_since = None;
        return Ok(false);
    }
    let since = *idle_since.get_or_insert_with(tokio::time::Instant::now);
    if since.elapsed() < feed.idle_after {
        return Ok(false);
    }
    consumer.unassign()?;
    match subscriptions_reading {
        Some(mut reading) => *reading = false,
        None => feed.caches.reset(false),
    }
    *idle_since = None;
    tracing::info!(?purpose, "event feed paused: nobody needs it");
    Ok(true)
}

/// Hands `message` to the caches, or to its subscribers unless it is a copy of an event sent
/// before (a redelivery, or a relay's retry).
fn forward(feed: &EventFeed, purpose: Purpose, message: &rdkafka::message::BorrowedMessage<'_>, seen: &mut SeenEvents) {
    match purpose {
        Purpose::Caches => match message.topic() {
            topics::USER_UPDATED | topics::USER_DELETED => changed(&feed.caches.users, message),
            _ => changed(&feed.caches.products, message),
        },
        Purpose::Subscriptions => {
            // The caches' consumer reads stock changes too, at its slower pace; dropped here
            // as well, a product read after its stock event reached a subscriber is never the
            // old one.
            if message.topic() == topics::PRODUCT_STOCK_UPDATED {
                changed(&feed.caches.products, message);
            }
            // The last hop of the event's trace (when traces are exported).
            events::kafka::consumer_span("api-gateway feed", message)
                .in_scope(|| forward_to_subscribers(feed, message, seen));
        }
    }
}

/// [`forward`] to subscribers, inside the event's span.
fn forward_to_subscribers(feed: &EventFeed, message: &rdkafka::message::BorrowedMessage<'_>, seen: &mut SeenEvents) {
    let payload = message.payload().unwrap_or_default();
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
