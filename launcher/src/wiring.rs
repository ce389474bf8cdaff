//! The settings by which a process finds its peers, written once: the local run, the benchmark
//! and the tests all wire the processes through [`Peers`].

/// Where a service's main server listens (`host:port`; port 0 picks a free one).
pub const LISTEN_ADDR: &str = "LISTEN_ADDR";
/// Where a service keeps its SQLite files (and the local run its JWT secret).
pub const DATA_DIR: &str = "DATA_DIR";
/// Where a service serves its Prometheus metrics (its main port speaks gRPC).
pub const METRICS_ADDR: &str = "METRICS_ADDR";
/// The broker's bootstrap address; empty keeps events in each service's outbox.
pub const KAFKA_BROKERS: &str = "KAFKA_BROKERS";
/// How many partitions a topic is created with.
pub const KAFKA_TOPIC_PARTITIONS: &str = "KAFKA_TOPIC_PARTITIONS";
/// The peers' URLs (comma-separated replicas).
pub const USER_SERVICE_URL: &str = "USER_SERVICE_URL";
pub const PRODUCT_SERVICE_URL: &str = "PRODUCT_SERVICE_URL";
pub const ORDER_SERVICE_URL: &str = "ORDER_SERVICE_URL";
/// The admin account user-service creates at start.
pub const ADMIN_EMAIL: &str = "ADMIN_EMAIL";
pub const ADMIN_PASSWORD: &str = "ADMIN_PASSWORD";
/// The gateway's token signing secret.
pub const JWT_SECRET: &str = "JWT_SECRET";

/// Where each peer of a run is. A service started before a peer exists simply does not get
/// that peer's setting: the order of start (users, products, orders, gateway) makes every
/// process find the peers it calls.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Peers {
    /// The broker's bootstrap address (`host:port`); empty when the run has no broker.
    pub kafka: String,
    /// Each service's URLs, comma-separated when it runs as several replicas.
    pub users: String,
    pub products: String,
    pub orders: String,
}

impl Peers {
    /// The settings that point a process at these peers. `KAFKA_BROKERS` is always set (empty
    /// means "no broker"); a service URL only once it is known.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let urls =
            [(USER_SERVICE_URL, &self.users), (PRODUCT_SERVICE_URL, &self.products), (ORDER_SERVICE_URL, &self.orders)];
        std::iter::once((KAFKA_BROKERS, self.kafka.clone()))
            .chain(urls.into_iter().filter(|(_, url)| !url.is_empty()).map(|(name, url)| (name, url.clone())))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_peers_are_set_and_the_broker_always_is() {
        let peers = Peers { users: "http://127.0.0.1:1".into(), ..Peers::default() };
        assert_eq!(
            peers.env(),
            vec![(KAFKA_BROKERS, String::new()), (USER_SERVICE_URL, "http://127.0.0.1:1".to_owned())]
        );
    }
}
