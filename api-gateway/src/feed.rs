//! The live event feed behind GraphQL subscriptions: the gateway reads `order.status.changed`
//! and `product.stock.updated` from their current end and fans each event out to every
//! subscription over a broadcast channel.

use std::{sync::Arc, time::Duration};

use events::{
    KafkaArgs,
    envelope::decode,
    kafka::{Role, StatsContext, assign_all_partitions, ensure_topics_with_retry},
    payloads::{OrderStatusChanged, ProductStockUpdated},
    topics,
};
use rdkafka::{Message as _, Offset, consumer::StreamConsumer};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// How many events a slow subscriber may fall behind before it skips some.
const CHANNEL_CAPACITY: usize = 1024;

/// Where subscriptions get their events.
#[derive(Debug, Clone)]
pub struct EventFeed {
    orders: broadcast::Sender<Arc<OrderStatusChanged>>,
    stock: broadcast::Sender<Arc<ProductStockUpdated>>,
    /// False without a broker: subscriptions then fail with UNAVAILABLE.
    pub enabled: bool,
}

impl EventFeed {
    pub fn new(enabled: bool) -> Self {
        Self { orders: broadcast::channel(CHANNEL_CAPACITY).0, stock: broadcast::channel(CHANNEL_CAPACITY).0, enabled }
    }

    /// Order status changes from now on.
    pub fn subscribe_orders(&self) -> broadcast::Receiver<Arc<OrderStatusChanged>> {
        self.orders.subscribe()
    }

    /// Stock changes from now on.
    pub fn subscribe_stock(&self) -> broadcast::Receiver<Arc<ProductStockUpdated>> {
        self.stock.subscribe()
    }
}

/// Reads the topics until `cancel` fires, reconnecting after errors.
pub async fn run(feed: EventFeed, kafka: KafkaArgs, cancel: CancellationToken) {
    if !kafka.enabled() || !ensure_topics_with_retry(&kafka, &cancel).await {
        return;
    }
    loop {
        if let Err(error) = read(&feed, &kafka, &cancel).await {
            tracing::warn!(error = format!("{error:#}"), "subscription feed interrupted; reconnecting");
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

async fn read(feed: &EventFeed, kafka: &KafkaArgs, cancel: &CancellationToken) -> anyhow::Result<()> {
    // Its own group id and no commits: each gateway replica sees every event, from now on.
    let consumer: StreamConsumer<StatsContext> = kafka
        .client_config_with_stats()
        .set("group.id", format!("api-gateway-feed-{}", uuid::Uuid::now_v7()))
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", kafka.kafka_fetch_wait_ms.to_string())
        .create_with_context(StatsContext::new(Role::Feed))?;
    let consumer = Arc::new(consumer);
    {
        let consumer = Arc::clone(&consumer);
        let topics = [topics::ORDER_STATUS_CHANGED, topics::PRODUCT_STOCK_UPDATED];
        tokio::task::spawn_blocking(move || assign_all_partitions(&*consumer, &topics, Offset::End)).await??;
    }
    tracing::info!("subscription feed reading order.status.changed and product.stock.updated");
    loop {
        let message = tokio::select! {
            () = cancel.cancelled() => return Ok(()),
            message = consumer.recv() => message?,
        };
        let payload = message.payload().unwrap_or_default();
        // A message the gateway cannot read is the owning consumers' concern (they dead-letter
        // it); subscribers simply do not see it.
        match message.topic() {
            topics::ORDER_STATUS_CHANGED => match decode::<OrderStatusChanged>(payload) {
                Ok(envelope) => {
                    let _ = feed.orders.send(Arc::new(envelope.payload));
                }
                Err(error) => tracing::debug!(%error, "skipping an unreadable order.status.changed"),
            },
            _ => match decode::<ProductStockUpdated>(payload) {
                Ok(envelope) => {
                    let _ = feed.stock.send(Arc::new(envelope.payload));
                }
                Err(error) => tracing::debug!(%error, "skipping an unreadable product.stock.updated"),
            },
        }
    }
}
