//! Event latency: from `order.created` being written to the order's `CONFIRMED`, read from the
//! topics afterwards (the envelopes' `time`, in ms), split at product-service's reply (when its
//! `product.reservation.result` was written) so that the report says which hop the time is
//! spent on; and the orders that never settled (an `order.created` without a `CONFIRMED` or
//! `CANCELLED`).

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use events::{
    envelope::decode,
    payloads::{Event, OrderCreated, OrderStatusChanged, ReservationResult},
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
    /// The first hop: `order.created` written (order-service) → the reservation's reply written
    /// (product-service), over the orders with both.
    pub to_reply_ms: Option<Percentiles>,
    /// The second hop: the reply written → the order `CONFIRMED` (order-service).
    pub reply_to_confirmed_ms: Option<Percentiles>,
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

/// Reads the order topics and the reservation replies from the beginning to their ends and
/// pairs each order's creation with its confirmation, and each with the reply between them.
pub fn measure(brokers: &str) -> anyhow::Result<EventLatency> {
    let mut created = HashMap::new();
    read_events(brokers, |event: OrderCreated, at| {
        created.insert(event.order_id, at);
    })?;
    let mut confirmed = HashMap::new();
    let mut cancelled = HashSet::new();
    read_events(brokers, |event: OrderStatusChanged, at| match event.to {
        OrderStatus::Confirmed => {
            confirmed.insert(event.order_id, at);
        }
        OrderStatus::Cancelled => {
            cancelled.insert(event.order_id);
        }
        _ => {}
    })?;
    let mut replied = HashMap::new();
    read_events(brokers, |event: ReservationResult, at| {
        replied.insert(event.order_id, at);
    })?;
    let (orders, latency_ms) = durations(&created, &confirmed);
    let Some(latency_ms) = latency_ms else {
        anyhow::bail!(
            "no order was found both created ({}) and confirmed ({}) on the topics",
            created.len(),
            confirmed.len()
        );
    };
    let unsettled =
        created.keys().filter(|order| !confirmed.contains_key(*order) && !cancelled.contains(*order)).count() as u64;
    Ok(EventLatency {
        orders,
        latency_ms,
        to_reply_ms: durations(&created, &replied).1,
        reply_to_confirmed_ms: durations(&replied, &confirmed).1,
        unsettled,
    })
}

/// Reads `E`'s topic from the beginning to its end and hands each event of that type to `each`
/// with its envelope's time (ms since the epoch); other messages are skipped.
fn read_events<E: Event>(brokers: &str, mut each: impl FnMut(E, i64)) -> anyhow::Result<()> {
    read_to_end(brokers, E::TOPIC, |message| {
        if let Ok(event) = decode::<E>(message.payload().unwrap_or_default()) {
            each(event.payload, millis(&event.time)?);
        }
        Ok(())
    })
}

/// How many orders are in both maps, and the percentiles of `to - from` over them (`None` when
/// there are none). A negative difference (clocks of two processes) counts as 0.
fn durations(from: &HashMap<String, i64>, to: &HashMap<String, i64>) -> (u64, Option<Percentiles>) {
    let mut recorder = Recorder::new();
    let mut orders = 0;
    for (order, to_at) in to {
        if let Some(from_at) = from.get(order) {
            let millis = u64::try_from(to_at - from_at).unwrap_or_default();
            recorder.record(Duration::from_millis(millis), Ok(()));
            orders += 1;
        }
    }
    (orders, (orders > 0).then(|| recorder.percentiles()))
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
        let (orders, latency) = durations(&created, &confirmed);
        assert_eq!(orders, 2);
        let latency = latency.expect("two orders were paired");
        assert!((latency.max - 30.0).abs() < 0.1, "{latency:?}");
    }

    #[test]
    fn a_hop_is_measured_over_the_orders_that_made_it_and_none_is_none() {
        let created = HashMap::from([("a".to_owned(), 1_000), ("b".to_owned(), 2_000)]);
        let replied = HashMap::from([("a".to_owned(), 1_150), ("b".to_owned(), 1_990)]);
        let (orders, hop) = durations(&created, &replied);
        assert_eq!(orders, 2);
        let hop = hop.expect("two orders made the hop");
        // A reply stamped before its order (two processes' clocks) counts as no time, not as a
        // wrapped-around huge one.
        assert!(hop.max < 151.0 && hop.max > 149.0, "{hop:?}");
        assert!(hop.p50 < 1.0, "{hop:?}");
        assert_eq!(durations(&created, &HashMap::new()), (0, None));
    }

    #[test]
    fn envelope_times_parse_to_milliseconds() {
        assert_eq!(millis("1970-01-01T00:00:01.250Z").unwrap(), 1_250);
        assert!(millis("yesterday").is_err());
    }
}
