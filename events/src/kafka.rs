//! Broker settings and topic creation.

use std::time::Duration;

use rdkafka::{
    ClientConfig,
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
    error::RDKafkaErrorCode,
    producer::FutureProducer,
};

/// Kafka settings, per the configuration contract.
#[derive(Debug, Clone, clap::Args)]
pub struct KafkaArgs {
    /// Comma-separated `host:port` list. Empty turns events off (the outbox still fills, and is
    /// published once a broker is configured).
    #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub kafka_brokers: String,
    /// Partitions for topics this service creates.
    #[arg(long, env = "KAFKA_TOPIC_PARTITIONS", default_value_t = 3)]
    pub kafka_topic_partitions: i32,
    /// Replication factor for topics this service creates.
    #[arg(long, env = "KAFKA_REPLICATION_FACTOR", default_value_t = 1)]
    pub kafka_replication_factor: i32,
    /// This process's identity in its consumer groups (static membership), set by the service
    /// from where it listens; see [`KafkaArgs::for_instance`].
    #[arg(skip)]
    pub group_instance: Option<String>,
}

impl KafkaArgs {
    /// Events off: for tests of one service alone.
    pub fn disabled() -> Self {
        Self {
            kafka_brokers: String::new(),
            kafka_topic_partitions: 3,
            kafka_replication_factor: 1,
            group_instance: None,
        }
    }

    /// The same settings, with consumers that are static members of their groups, known by
    /// this host's name and the port the service listens on. A process that restarts on the
    /// same host and port (after a crash, say) takes over its old membership at once; without
    /// it the broker keeps the dead member, and the partitions it held, until the group
    /// rebalances around it (tansu 0.6 does not always get there).
    pub fn for_instance(mut self, listen_addr: std::net::SocketAddr) -> Self {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|name| name.trim().to_owned())
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| "localhost".to_owned());
        self.group_instance = Some(format!("{host}-{}", listen_addr.port()));
        self
    }

    /// At `brokers`, with one partition per topic (tests that count messages in order).
    pub fn at(brokers: impl Into<String>) -> Self {
        Self { kafka_brokers: brokers.into(), ..Self::disabled() }
    }

    pub fn enabled(&self) -> bool {
        !self.kafka_brokers.trim().is_empty()
    }

    /// The common client settings.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", self.kafka_brokers.trim()).set("client.id", "microservices");
        config
    }

    /// An idempotent producer that waits for every in-sync replica (acks=all).
    pub fn producer(&self) -> Result<FutureProducer, rdkafka::error::KafkaError> {
        self.client_config()
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .set("message.timeout.ms", "10000")
            .create()
    }
}

/// Creates every topic (and its dead-letter topic) that does not exist yet. The embedded broker
/// does not create topics on first use, so every service does this at start.
pub async fn ensure_topics(kafka: &KafkaArgs) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = kafka.client_config().create()?;
    let names = crate::topics::all_with_dead_letters();
    let topics: Vec<NewTopic<'_>> = names
        .iter()
        .map(|name| {
            NewTopic::new(name, kafka.kafka_topic_partitions, TopicReplication::Fixed(kafka.kafka_replication_factor))
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for result in admin.create_topics(&topics, &options).await? {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => anyhow::bail!("creating topic {topic}: {code}"),
        }
    }
    Ok(())
}

/// Retries [`ensure_topics`] until the broker answers or `cancel` fires; true when done.
pub async fn ensure_topics_with_retry(kafka: &KafkaArgs, cancel: &tokio_util::sync::CancellationToken) -> bool {
    let mut delay = Duration::from_millis(200);
    loop {
        let attempt = tokio::select! {
            () = cancel.cancelled() => return false,
            attempt = ensure_topics(kafka) => attempt,
        };
        match attempt {
            Ok(()) => return true,
            Err(error) => tracing::warn!(error = format!("{error:#}"), "broker not ready; retrying topic creation"),
        }
        tokio::select! {
            () = cancel.cancelled() => return false,
            () = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

/// Assigns every partition of `topics` to `consumer`, starting at `offset`, and returns how many
/// partitions that was. No consumer group join: reading starts at once, and no group's offsets
/// move. Blocking (it asks the broker for metadata), so async callers run it off the runtime.
pub fn assign_all_partitions<C: rdkafka::consumer::Consumer>(
    consumer: &C,
    topics: &[&str],
    offset: rdkafka::Offset,
) -> rdkafka::error::KafkaResult<usize> {
    let mut assignment = rdkafka::TopicPartitionList::new();
    for topic in topics {
        let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
        for partition in metadata.topics().iter().flat_map(|topic| topic.partitions()) {
            assignment.add_partition_offset(topic, partition.id(), offset)?;
        }
    }
    consumer.assign(&assignment)?;
    Ok(assignment.count())
}
