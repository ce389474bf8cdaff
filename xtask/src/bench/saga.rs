//! Event latency: from `order.created` being written to the order's `CONFIRMED`, read from the
//! topics afterwards (both times are the envelopes' `time`, set by order-service, in ms).

use std::{collections::HashMap, time::Duration};

use events::{
    envelope::decode,
    payloads::{OrderCreated, OrderStatusChanged},
    topics,
};
use loadgen::{Recorder, recorder::Percentiles};
use rdkafka::{ClientConfig, Message as _, Offset, consumer::BaseConsumer};
use serde::Serialize;

/// How long the topics must stay quiet, once reading has begun, before it stops.
const QUIET: Duration = Duration::from_secs(3);
/// How long to wait for the first message (the broker may be slow to answer the first fetch).
const FIRST_MESSAGE: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Serialize)]
pub struct EventLatency {
    /// Orders whose creation and confirmation were both found.
    pub orders: u64,
    pub latency_ms: Percentiles,
}

/// Reads both topics from the beginning and pairs each order's creation with its confirmation.
pub fn measure(brokers: &str) -> anyhow::Result<EventLatency> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "xtask-bench-event-latency")
        .set("enable.auto.commit", "false")
        .create()?;
    events::kafka::assign_all_partitions(
        &consumer,
        &[topics::ORDER_CREATED, topics::ORDER_STATUS_CHANGED],
        Offset::Beginning,
    )?;
    let mut created = HashMap::new();
    let mut confirmed = HashMap::new();
    let mut quiet = Duration::ZERO;
    let mut started = false;
    while quiet < if started { QUIET } else { FIRST_MESSAGE } {
        let Some(message) = consumer.poll(Duration::from_millis(500)) else {
            quiet += Duration::from_millis(500);
            continue;
        };
        (quiet, started) = (Duration::ZERO, true);
        let message = message?;
        let payload = message.payload().unwrap_or_default();
        match message.topic() {
            topics::ORDER_CREATED => {
                if let Ok(event) = decode::<OrderCreated>(payload) {
                    created.insert(event.payload.order_id, millis(&event.time)?);
                }
            }
            _ => {
                if let Ok(event) = decode::<OrderStatusChanged>(payload)
                    && event.payload.to == "CONFIRMED"
                {
                    confirmed.insert(event.payload.order_id, millis(&event.time)?);
                }
            }
        }
    }
    Ok(pair(&created, &confirmed))
}

/// The latency of every order found in both maps (times in ms since the epoch).
fn pair(created: &HashMap<String, i64>, confirmed: &HashMap<String, i64>) -> EventLatency {
    let mut recorder = Recorder::new();
    let mut orders = 0;
    for (order, confirmed_at) in confirmed {
        if let Some(created_at) = created.get(order) {
            let millis = u64::try_from(confirmed_at - created_at).unwrap_or_default();
            recorder.record(Duration::from_millis(millis), Ok(()));
            orders += 1;
        }
    }
    EventLatency { orders, latency_ms: recorder.percentiles() }
}

fn millis(time: &str) -> anyhow::Result<i64> {
    Ok(chrono::DateTime::parse_from_rfc3339(time)?.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_pair_by_id_and_unmatched_ones_are_left_out() {
        let created = HashMap::from([("a".to_owned(), 1_000), ("b".to_owned(), 2_000), ("c".to_owned(), 3_000)]);
        let confirmed = HashMap::from([("a".to_owned(), 1_010), ("b".to_owned(), 2_030), ("z".to_owned(), 9_000)]);
        let latency = pair(&created, &confirmed);
        assert_eq!(latency.orders, 2);
        assert!((latency.latency_ms.max - 30.0).abs() < 0.1, "{latency:?}");
    }

    #[test]
    fn envelope_times_parse_to_milliseconds() {
        assert_eq!(millis("1970-01-01T00:00:01.250Z").unwrap(), 1_250);
        assert!(millis("yesterday").is_err());
    }
}
