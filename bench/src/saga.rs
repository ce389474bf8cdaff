//! Event latency: from `order.created` being written to the order's `CONFIRMED`, read from the
//! topics afterwards (both times are the envelopes' `time`, set by order-service, in ms); and
//! the orders that never settled (an `order.created` without a `CONFIRMED` or `CANCELLED`).

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use events::{
    envelope::decode,
    payloads::{OrderCreated, OrderStatusChanged},
    topics,
};
use loadgen::{Recorder, recorder::Percentiles};
use proto::order::OrderStatus;
use rdkafka::Message as _;
use serde::Serialize;

use local_broker::topics::read_to_end;

#[derive(Debug, Clone, Serialize)]
pub struct EventLatency {
    /// Orders whose creation and confirmation were both found.
    pub orders: u64,
    pub latency_ms: Percentiles,
    /// Orders created that had neither been confirmed nor cancelled when last read.
    pub unsettled: u64,
}

/// Reads the topics (see [`measure`]) until every order created has settled or `deadline`
/// passes, and returns the last reading.
pub fn measure_settled(brokers: &str, deadline: Instant) -> anyhow::Result<EventLatency> {
    loop {
        let latency = measure(brokers)?;
        if latency.unsettled == 0 || Instant::now() >= deadline {
            return Ok(latency);
        }
        eprintln!("bench: {} orders not settled yet; reading again", latency.unsettled);
        std::thread::sleep(Duration::from_secs(5).min(deadline.saturating_duration_since(Instant::now())));
    }
}

/// Reads both topics from the beginning to their ends and pairs each order's creation with
/// its confirmation.
pub fn measure(brokers: &str) -> anyhow::Result<EventLatency> {
    let mut created = HashMap::new();
    read_to_end(brokers, topics::ORDER_CREATED, |message| {
        if let Ok(event) = decode::<OrderCreated>(message.payload().unwrap_or_default()) {
            created.insert(event.payload.order_id, millis(&event.time)?);
        }
        Ok(())
    })?;
    let mut confirmed = HashMap::new();
    let mut cancelled = HashSet::new();
    read_to_end(brokers, topics::ORDER_STATUS_CHANGED, |message| {
        if let Ok(event) = decode::<OrderStatusChanged>(message.payload().unwrap_or_default()) {
            match event.payload.to {
                OrderStatus::Confirmed => {
                    confirmed.insert(event.payload.order_id, millis(&event.time)?);
                }
                OrderStatus::Cancelled => {
                    cancelled.insert(event.payload.order_id);
                }
                _ => {}
            }
        }
        Ok(())
    })?;
    let mut latency = pair(&created, &confirmed);
    latency.unsettled =
        created.keys().filter(|order| !confirmed.contains_key(*order) && !cancelled.contains(*order)).count() as u64;
    anyhow::ensure!(
        latency.orders > 0,
        "no order was found both created ({}) and confirmed ({}) on the topics",
        created.len(),
        confirmed.len()
    );
    Ok(latency)
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
    EventLatency { orders, latency_ms: recorder.percentiles(), unsettled: 0 }
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
