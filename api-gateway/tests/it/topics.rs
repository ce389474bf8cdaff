//! Reading what is on a topic, from the beginning, as tests check events.

use std::time::{Duration, Instant};

use rdkafka::{
    ClientConfig, Message as _, Offset,
    consumer::{BaseConsumer, Consumer as _},
    message::Headers as _,
    producer::{BaseRecord, DefaultProducerContext, Producer as _, ThreadedProducer},
};

/// One message.
#[derive(Debug, Clone)]
pub struct Record {
    pub key: String,
    pub payload: serde_json::Value,
    pub raw: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

/// Reads `topic` from the beginning until `done` says so or `timeout` passes; returns all it saw.
pub async fn read_until(
    bootstrap: &str,
    topic: &str,
    timeout: Duration,
    done: impl Fn(&[Record]) -> bool + Send + 'static,
) -> Vec<Record> {
    let bootstrap = bootstrap.to_owned();
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("group.id", format!("test-reader-{}", uuid_like()))
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer");
        events::kafka::assign_all_partitions(&consumer, &[&topic], Offset::Beginning).expect("assign");
        let deadline = Instant::now() + timeout;
        let mut records = Vec::new();
        while Instant::now() < deadline && !done(&records) {
            if let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) {
                let raw = message.payload().unwrap_or_default().to_vec();
                let headers = message
                    .headers()
                    .map(|headers| {
                        headers
                            .iter()
                            .map(|header| {
                                (
                                    header.key.to_owned(),
                                    String::from_utf8_lossy(header.value.unwrap_or_default()).into_owned(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                records.push(Record {
                    key: String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned(),
                    payload: serde_json::from_slice(&raw).unwrap_or(serde_json::Value::Null),
                    raw,
                    headers,
                });
            }
        }
        records
    })
    .await
    .expect("join")
}

/// How many messages `topic` holds, over all its partitions (from the broker's watermarks).
pub async fn message_count(bootstrap: &str, topic: &str) -> i64 {
    let bootstrap = bootstrap.to_owned();
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer =
            ClientConfig::new().set("bootstrap.servers", &bootstrap).create().expect("consumer");
        events::kafka::partitions_of(&consumer, &[topic.as_str()])
            .expect("metadata")
            .into_iter()
            .map(|(topic, partition)| {
                let (low, high) =
                    consumer.fetch_watermarks(topic, partition, Duration::from_secs(10)).expect("watermarks");
                high - low
            })
            .sum()
    })
    .await
    .expect("join")
}

/// Produces raw bytes to `topic`, bypassing the services (for poison messages).
pub fn produce_raw(bootstrap: &str, topic: &str, key: &str, payload: &[u8]) {
    let producer: ThreadedProducer<DefaultProducerContext> =
        ClientConfig::new().set("bootstrap.servers", bootstrap).create().expect("producer");
    producer.send(BaseRecord::to(topic).key(key).payload(payload)).map_err(|(error, _)| error).expect("send");
    producer.flush(Duration::from_secs(10)).expect("flush");
}

fn uuid_like() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|elapsed| elapsed.as_nanos()).unwrap_or(0)
}
