//! Relays of several replicas on one database: each event is published once, in order per
//! entity; and the maintenance pass prunes what it should.

use std::{collections::HashMap, time::Duration};

use events::{
    KafkaArgs,
    kafka::{assign_all_partitions, ensure_topics},
    outbox::{OutboxSignal, Relay, enqueue, prune},
    payloads::ProductStockUpdated,
    topics,
};
use rdkafka::{Message as _, Offset, consumer::BaseConsumer};
use service_runtime::{config::DatabaseUrl, database::Database};
use tokio_util::sync::CancellationToken;

const PRODUCTS: usize = 5;
const CHANGES: i64 = 40;

async fn database(url: &DatabaseUrl) -> Database {
    service_runtime::database::connect(url, &[events::migrator()]).await.expect("connect and migrate")
}

/// A relay as a replica runs it, stopped by its own token.
fn spawn_relay(database: &Database, kafka: &KafkaArgs) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let cancel = CancellationToken::new();
    let producer = kafka.producer().expect("producer");
    let relay = Relay::new(database.clone(), producer, OutboxSignal::default(), Duration::from_secs(3600));
    (cancel.clone(), tokio::spawn(relay.run(cancel)))
}

async fn write_change(database: &Database, product: usize, stock: i64) {
    let mut transaction = database.writes().begin().await.expect("begin");
    let change = ProductStockUpdated {
        product_id: format!("product-{product}"),
        stock,
        delta: None,
        reason: "set".into(),
        order_id: None,
    };
    enqueue(&mut transaction, change).await.expect("enqueue");
    transaction.commit().await.expect("commit");
}

async fn unsent(database: &Database) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL")
        .fetch_one(database.reads())
        .await
        .expect("count")
}

/// Every record on `topic`, read from the beginning until `count` arrived and then a little
/// longer (so that a duplicate would be seen too), as (key, event id, stock).
fn read_topic(bootstrap: &str, topic: &str, count: usize) -> Vec<(String, String, i64)> {
    let consumer: BaseConsumer = KafkaArgs::at(bootstrap)
        .client_config()
        .set("group.id", format!("relay-test-{}", uuid::Uuid::now_v7()))
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    assign_all_partitions(&consumer, &[topic], Offset::Beginning).expect("assign");
    let mut records = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut quiet_until = None;
    while std::time::Instant::now() < deadline && quiet_until.is_none_or(|until| std::time::Instant::now() < until) {
        let Some(message) = consumer.poll(Duration::from_millis(200)) else { continue };
        let message = message.expect("a record");
        let envelope: serde_json::Value = serde_json::from_slice(message.payload().unwrap_or_default()).expect("JSON");
        let key = String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned();
        let id = envelope["id"].as_str().expect("id").to_owned();
        records.push((key, id, envelope["payload"]["stock"].as_i64().expect("stock")));
        if records.len() >= count && quiet_until.is_none() {
            quiet_until = Some(std::time::Instant::now() + Duration::from_secs(2));
        }
    }
    records
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_relays_on_one_postgres_database_publish_each_event_once_and_in_order() {
    let storage = test_support::BrokerStorage::new().expect("broker storage");
    let _broker = storage.start().expect("broker");
    let kafka = KafkaArgs::at(storage.bootstrap());
    ensure_topics(&kafka).await.expect("topics");
    let postgres = test_support::postgres_database().await.expect("database");
    let url: DatabaseUrl = postgres.url.parse().expect("URL");
    let replicas = [database(&url).await, database(&url).await];
    let mut relays = vec![spawn_relay(&replicas[0], &kafka), spawn_relay(&replicas[1], &kafka)];

    // Both replicas write; halfway through, the first replica's relay stops (a replica going
    // away), and if it was the one publishing, the other takes over.
    for stock in 0..CHANGES {
        for product in 0..PRODUCTS {
            write_change(&replicas[product % 2], product, stock).await;
        }
        if stock == CHANGES / 2 {
            let (cancel, task) = relays.remove(0);
            cancel.cancel();
            task.await.expect("relay stopped");
        }
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while unsent(&replicas[1]).await > 0 {
        assert!(std::time::Instant::now() < deadline, "{} events still unsent", unsent(&replicas[1]).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let expected = PRODUCTS * usize::try_from(CHANGES).expect("count");
    let bootstrap = storage.bootstrap();
    let records = tokio::task::spawn_blocking(move || read_topic(&bootstrap, topics::PRODUCT_STOCK_UPDATED, expected))
        .await
        .expect("reader");
    let outbox_rows: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM outbox").fetch_one(replicas[1].reads()).await.expect("rows");
    assert_eq!(records.len(), expected, "records on the topic");
    assert_eq!(outbox_rows, i64::try_from(expected).expect("count"), "outbox rows");
    let mut ids: Vec<&str> = records.iter().map(|(_, id, _)| id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), expected, "an event was published twice");
    let mut by_product: HashMap<&str, Vec<i64>> = HashMap::new();
    for (key, _, stock) in &records {
        by_product.entry(key).or_default().push(*stock);
    }
    for (product, stocks) in by_product {
        assert_eq!(stocks, (0..CHANGES).collect::<Vec<_>>(), "{product}'s changes out of order");
    }
    for (cancel, task) in relays {
        cancel.cancel();
        task.await.expect("relay stopped");
    }
}

#[tokio::test]
async fn the_maintenance_pass_prunes_sent_events_and_old_processed_ids_only() {
    let dir = tempfile::tempdir().expect("dir");
    let url: DatabaseUrl = format!("sqlite://{}", dir.path().join("events.db").display()).parse().expect("URL");
    let database = database(&url).await;
    let now = chrono::Utc::now().timestamp_millis();
    let hour = 3_600_000;
    for (id, sent_at) in [("sent-long-ago", Some(now - 2 * hour)), ("sent-just-now", Some(now)), ("unsent", None)] {
        sqlx::query(
            "INSERT INTO outbox (id, topic, event_key, payload, traceparent, created_at, sent_at) VALUES ($1, 't', 'k', '{}', '', $2, $3)",
        )
        .bind(id)
        .bind(now - 3 * hour)
        .bind(sent_at)
        .execute(database.writes())
        .await
        .expect("outbox row");
    }
    for (id, processed_at) in [("old", now - 10_000), ("recent", now - 1_000)] {
        sqlx::query("INSERT INTO processed_events (event_id, topic, processed_at) VALUES ($1, 't', $2)")
            .bind(id)
            .bind(processed_at)
            .execute(database.writes())
            .await
            .expect("processed row");
    }

    let pruned = prune(database.writes(), Duration::from_secs(3600), Duration::from_secs(5)).await.expect("prune");
    assert_eq!(pruned, (1, 1));
    let outbox: Vec<String> =
        sqlx::query_scalar("SELECT id FROM outbox ORDER BY id").fetch_all(database.reads()).await.expect("outbox");
    assert_eq!(outbox, ["sent-just-now", "unsent"]);
    let processed: Vec<String> = sqlx::query_scalar("SELECT event_id FROM processed_events")
        .fetch_all(database.reads())
        .await
        .expect("processed");
    assert_eq!(processed, ["recent"]);
}
