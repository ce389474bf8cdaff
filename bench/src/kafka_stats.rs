//! The broker's work during a scenario, as the services' own Kafka clients count it: every
//! service serves `kafka_client_requests_total` (requests sent to the broker, by type) and
//! `kafka_consumer_rebalances_total` on its metrics address; the bench reads them before and
//! after a scenario and reports the difference.

use std::collections::BTreeMap;

use serde::Serialize;

/// Counter totals summed over every process, by series (`requests:Fetch`, `rebalances`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counters(BTreeMap<String, f64>);

/// What the broker was asked to do during one scenario.
#[derive(Debug, Clone, Serialize)]
pub struct BrokerWork {
    /// Requests sent to the broker by every service, by request type.
    pub requests_by_type: BTreeMap<String, u64>,
    pub requests: u64,
    /// Requests per successful (confirmed) order, when the scenario places orders.
    pub requests_per_confirmed_order: Option<f64>,
    /// Consumer group rebalances, summed over the members.
    pub rebalances: u64,
}

impl Counters {
    /// Scrapes every `(name, port)` and sums the Kafka counters; a process that does not answer
    /// counts nothing (its absence shows in the report as zeros, not as a failed run).
    pub fn scrape(ports: &[(&str, u16)]) -> Self {
        let mut totals = Self::default();
        for (_, port) in ports {
            if let Ok(response) = launcher::system::http_get(*port, "/metrics") {
                totals.add(&response);
            }
        }
        totals
    }

    /// Adds the Kafka counters of one Prometheus text exposition.
    fn add(&mut self, text: &str) {
        for line in text.lines().filter(|line| !line.starts_with('#')) {
            let Some((series, value)) = line.rsplit_once(' ') else { continue };
            let Ok(value) = value.trim().parse::<f64>() else { continue };
            let key = if series.starts_with("kafka_client_requests_total") {
                match label(series, "request") {
                    Some(request) => format!("requests:{request}"),
                    None => continue,
                }
            } else if series.starts_with("kafka_consumer_rebalances_total") {
                "rebalances".to_owned()
            } else {
                continue;
            };
            *self.0.entry(key).or_default() += value;
        }
    }

    /// What happened between `before` and `self`, for a scenario that confirmed `confirmed` orders.
    pub fn since(&self, before: &Self, confirmed: Option<u64>) -> BrokerWork {
        let delta = |key: &str| {
            let now = self.0.get(key).copied().unwrap_or_default();
            let then = before.0.get(key).copied().unwrap_or_default();
            // A client recreated meanwhile starts from zero again: count what it did since.
            if now >= then { now - then } else { now }
        };
        let requests_by_type: BTreeMap<String, u64> = self
            .0
            .keys()
            .filter_map(|key| Some((key.strip_prefix("requests:")?.to_owned(), delta(key) as u64)))
            .filter(|(_, count)| *count > 0)
            .collect();
        let requests = requests_by_type.values().sum();
        BrokerWork {
            requests_per_confirmed_order: confirmed
                .filter(|confirmed| *confirmed > 0)
                .map(|confirmed| (requests as f64 / confirmed as f64 * 100.0).round() / 100.0),
            requests_by_type,
            requests,
            rebalances: delta("rebalances") as u64,
        }
    }
}

/// The value of `name` in a series' labels (`metric{a="x",name="y"}`).
fn label<'a>(series: &'a str, name: &str) -> Option<&'a str> {
    let labels = series.split_once('{')?.1.strip_suffix('}')?;
    labels.split(',').find_map(|pair| pair.strip_prefix(name)?.strip_prefix("=\"")?.strip_suffix('"'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = "# TYPE kafka_client_requests_total counter\n\
        kafka_client_requests_total{role=\"consumer\",request=\"Fetch\"} 100\n\
        kafka_client_requests_total{role=\"producer\",request=\"Produce\"} 10\n\
        kafka_consumer_rebalances_total{role=\"consumer\"} 1\n\
        gateway_http_requests_total{path=\"/graphql\",status=\"200\"} 5\n";
    const AFTER: &str = "kafka_client_requests_total{role=\"consumer\",request=\"Fetch\"} 160\n\
        kafka_client_requests_total{role=\"producer\",request=\"Produce\"} 50\n\
        kafka_client_requests_total{role=\"consumer\",request=\"Heartbeat\"} 3\n\
        kafka_consumer_rebalances_total{role=\"consumer\"} 1\n";

    #[test]
    fn the_difference_is_counted_by_request_type_and_per_order() {
        let mut before = Counters::default();
        before.add(BEFORE);
        let mut after = Counters::default();
        after.add(AFTER);
        let work = after.since(&before, Some(20));
        assert_eq!(work.requests, 60 + 40 + 3);
        assert_eq!(work.requests_by_type["Produce"], 40);
        assert_eq!(work.requests_per_confirmed_order, Some(5.15));
        assert_eq!(work.rebalances, 0);
        assert_eq!(after.since(&before, None).requests_per_confirmed_order, None);
    }

    #[test]
    fn labels_are_read_by_name() {
        assert_eq!(label("m{role=\"a\",request=\"Fetch\"}", "request"), Some("Fetch"));
        assert_eq!(label("m{role=\"a\"}", "request"), None);
        assert_eq!(label("m", "request"), None);
    }
}
