//! Broker settings and topic creation.

use std::{sync::Arc, time::Duration};

use rdkafka::{
    ClientConfig,
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::{ClientContext, DefaultClientContext},
    consumer::ConsumerContext,
    error::RDKafkaErrorCode,
    statistics::Statistics,
};

use opentelemetry::{
    KeyValue,
    trace::{SpanBuilder, SpanKind},
};
use service_runtime::spans::ExportedSpan;

use crate::{producer::EventProducer, security::KafkaSecurityArgs};

/// The default of `KAFKA_FETCH_WAIT_MS`: see [`KafkaArgs::kafka_fetch_wait_ms`]. Measured with
/// `cargo xtask bench` on the embedded broker: 50 ms and 100 ms settled the same orders/s, while
/// an idle broker used about twice the CPU at 50 ms (18 % against 10 % of a core, before the
/// gateway's feed stopped polling while idle); 100 ms costs each saga hop 100–200 ms.
pub const DEFAULT_FETCH_WAIT_MS: u32 = 100;

/// The default of `PROCESSED_EVENTS_RETENTION_SECS`: 8 days, a day past Kafka's default topic
/// retention.
pub const DEFAULT_PROCESSED_EVENTS_RETENTION_SECS: u64 = 8 * 24 * 3600;

/// How often librdkafka reports its counters (requests sent, rebalances) to [`StatsContext`].
const STATISTICS_INTERVAL_MS: u32 = 1000;

/// What a Kafka client of a service is for; the label of its metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The process's producer: the outbox relay and dead letters.
    Producer,
    /// The process's consumer group member.
    Consumer,
    /// The gateway's feed of events for subscriptions.
    Feed,
    /// The gateway's feed of changes for its caches.
    CacheFeed,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Producer => "producer",
            Self::Consumer => "consumer",
            Self::Feed => "feed",
            Self::CacheFeed => "cache-feed",
        }
    }
}

/// A client context that turns librdkafka's statistics into metrics: the requests sent to the
/// brokers by type (`kafka_client_requests_total`), the consumer group's rebalances
/// (`kafka_consumer_rebalances_total`) and its lag per partition (`kafka_consumer_lag_messages`).
/// They say what the broker's work is per unit of load, and whether consumers keep up.
#[derive(Debug, Clone, Copy)]
pub struct StatsContext {
    role: Role,
}

impl StatsContext {
    pub fn new(role: Role) -> Self {
        Self { role }
    }
}

impl ClientContext for StatsContext {
    fn stats(&self, statistics: Statistics) {
        let role = self.role.as_str();
        let mut requests: std::collections::BTreeMap<&str, i64> = std::collections::BTreeMap::new();
        // "internal" is librdkafka's own queue, not a connection; every other entry (learned,
        // configured, and the group coordinator's logical connection) sends real requests.
        for broker in statistics.brokers.values().filter(|broker| broker.source != "internal") {
            for (request, count) in &broker.req {
                *requests.entry(request.as_str()).or_default() += count;
            }
        }
        for (request, count) in requests.into_iter().filter(|(_, count)| *count > 0) {
            metrics::counter!("kafka_client_requests_total", "role" => role, "request" => request.to_owned())
                .absolute(u64::try_from(count).unwrap_or_default());
        }
        if let Some(group) = statistics.cgrp {
            metrics::counter!("kafka_consumer_rebalances_total", "role" => role)
                .absolute(u64::try_from(group.rebalance_cnt).unwrap_or_default());
        }
        // How far the group member is behind each partition it holds (librdkafka's estimate from
        // the high watermark and the committed offset; -1 while unknown, then not reported).
        // Only the group member reports it: the feed reads from the ends and commits nothing.
        if self.role == Role::Consumer {
            for (topic, stats) in &statistics.topics {
                for partition in stats.partitions.values().filter(|partition| partition.partition >= 0) {
                    if partition.consumer_lag >= 0 {
                        #[allow(clippy::cast_precision_loss, reason = "a message count, far below 2^52")]
                        metrics::gauge!(
                            "kafka_consumer_lag_messages",
                            "topic" => topic.clone(),
                            "partition" => partition.partition.to_string()
                        )
                        .set(partition.consumer_lag as f64);
                    }
                }
            }
        }
    }
}

impl ConsumerContext for StatsContext {}

/// Kafka settings, per the configuration contract.
#[derive(Debug, Clone, clap::Args)]
pub struct KafkaArgs {
    /// Comma-separated `host:port` list. Empty turns events off (the outbox still fills, and is
    /// published once a broker is configured).
    #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub kafka_brokers: String,
    /// Partitions for topics this service creates. One keeps the embedded broker's work (and
    /// the local run's) small; deployments with several replicas per service use more (Compose
    /// and Kubernetes set 3), since a partition is consumed by one replica at a time.
    #[arg(long, env = "KAFKA_TOPIC_PARTITIONS", default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..=1000))]
    pub kafka_topic_partitions: i32,
    /// Replication factor for topics this service creates.
    #[arg(long, env = "KAFKA_REPLICATION_FACTOR", default_value_t = 1)]
    pub kafka_replication_factor: i32,
    /// How long the broker may hold a consumer's fetch that finds nothing new
    /// (`fetch.wait.max.ms`). The embedded broker holds every fetch this long, found or not, so
    /// it bounds each saga hop from below; shorter costs the broker more polling when idle.
    #[arg(long, env = "KAFKA_FETCH_WAIT_MS", default_value_t = DEFAULT_FETCH_WAIT_MS, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub kafka_fetch_wait_ms: u32,
    /// How long a consumed event's id is kept to recognise a redelivery, in seconds. Longer
    /// than the topics keep messages (Kafka's default is 7 days), so that nothing the broker can
    /// still redeliver has been forgotten.
    #[arg(long, env = "PROCESSED_EVENTS_RETENTION_SECS", default_value_t = DEFAULT_PROCESSED_EVENTS_RETENTION_SECS, value_parser = clap::value_parser!(u64).range(1..))]
    pub processed_events_retention_secs: u64,
    /// How clients authenticate to the broker and encrypt their connections.
    #[command(flatten)]
    pub security: KafkaSecurityArgs,
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
            kafka_topic_partitions: 1,
            kafka_replication_factor: 1,
            kafka_fetch_wait_ms: DEFAULT_FETCH_WAIT_MS,
            processed_events_retention_secs: DEFAULT_PROCESSED_EVENTS_RETENTION_SECS,
            security: KafkaSecurityArgs::default(),
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

    /// Refuses settings that cannot work, naming the one to fix; every process calls it at start.
    pub fn check(&self) -> Result<(), service_runtime::startup::StartupError> {
        self.security.check()
    }

    pub fn enabled(&self) -> bool {
        !self.kafka_brokers.trim().is_empty()
    }

    /// The common client settings.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", self.kafka_brokers.trim())
            .set("client.id", "microservices")
            // KIP-714 client metrics: the embedded broker does not take them, and asking is one
            // more request it queues behind everything else.
            .set("enable.metrics.push", "false");
        self.security.apply(&mut config);
        config
    }

    /// The common client settings, with librdkafka's statistics on, for a client created with
    /// a [`StatsContext`] (any other context would log them).
    pub fn client_config_with_stats(&self) -> ClientConfig {
        let mut config = self.client_config();
        config.set("statistics.interval.ms", STATISTICS_INTERVAL_MS.to_string());
        config
    }

    /// A producer that waits for every in-sync replica (acks=all) and keeps each partition's
    /// order (one request in flight per connection, so a retry cannot overtake).
    ///
    /// Not librdkafka's idempotent producer: after a message times out (a broker frozen for
    /// longer than `message.timeout.ms`) it bumps its epoch on its own, and the embedded broker
    /// (tansu 0.6) has no record of that epoch and panics in its storage task, after which it
    /// refuses every produce until restarted. Without idempotence the broker skips that check. A
    /// retried send may then store an event twice; every consumer records the event ids it has
    /// applied, so the second copy does nothing. Checked by the saga test that freezes the broker.
    pub fn producer(&self) -> Result<EventProducer, rdkafka::error::KafkaError> {
        let config = self
            .client_config_with_stats()
            .set("enable.idempotence", "false")
            .set("acks", "all")
            .set("max.in.flight.requests.per.connection", "1")
            .set("linger.ms", "5")
            .set("message.timeout.ms", "10000")
            .clone();
        EventProducer::new(&config, StatsContext::new(Role::Producer))
    }
}

/// Creates every topic (and its dead-letter topic) that does not exist yet. The embedded broker
/// does not create topics on first use, so every service does this at start. It asks for the
/// topics that exist first and creates only the others: a broker logs each refused creation as
/// an error, and a normal start should not greet its operator with a screen of them.
pub async fn ensure_topics(kafka: &KafkaArgs) -> anyhow::Result<()> {
    let admin: Arc<AdminClient<DefaultClientContext>> = Arc::new(kafka.client_config().create()?);
    let existing = existing_topics(Arc::clone(&admin)).await?;
    let names: Vec<String> =
        crate::topics::all_with_dead_letters().into_iter().filter(|name| !existing.contains(name)).collect();
    if names.is_empty() {
        return Ok(());
    }
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

/// The names of the topics the broker has, asked through `admin`.
async fn existing_topics(admin: Arc<AdminClient<DefaultClientContext>>) -> anyhow::Result<Vec<String>> {
    // librdkafka's metadata request blocks its caller for up to the timeout when the broker is
    // down. On a thread of its own, not the runtime's blocking pool: a shutdown meanwhile stops
    // waiting for the answer at once, while the runtime would wait for a pool thread to finish.
    let (answer, answered) = tokio::sync::oneshot::channel();
    std::thread::Builder::new().name("topic-metadata".to_owned()).spawn(move || {
        let names = admin
            .inner()
            .fetch_metadata(None, METADATA_TIMEOUT)
            .map(|metadata| metadata.topics().iter().map(|topic| topic.name().to_owned()).collect());
        let _receiver_gone = answer.send(names);
    })?;
    Ok(answered.await??)
}

/// How long asking the broker which topics exist may take.
const METADATA_TIMEOUT: Duration = Duration::from_secs(5);

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
pub fn assign_all_partitions<X: ConsumerContext, C: rdkafka::consumer::Consumer<X>>(
    consumer: &C,
    topics: &[&str],
    offset: rdkafka::Offset,
) -> rdkafka::error::KafkaResult<usize> {
    assign_each_partition(consumer, topics, |_, _| Ok(offset))
}

/// Like [`assign_all_partitions`], each partition at its high watermark read now: unlike
/// [`rdkafka::Offset::End`], which librdkafka resolves later, whatever is published after this
/// returns is read.
pub fn assign_at_high_watermarks<X: ConsumerContext, C: rdkafka::consumer::Consumer<X>>(
    consumer: &C,
    topics: &[&str],
) -> rdkafka::error::KafkaResult<usize> {
    assign_each_partition(consumer, topics, |topic, partition| {
        let (_, high) = consumer.fetch_watermarks(topic, partition, Duration::from_secs(10))?;
        Ok(rdkafka::Offset::Offset(high))
    })
}

/// Assigns every partition of `topics`, each at the offset `offset_of(topic, partition)` says.
fn assign_each_partition<X: ConsumerContext, C: rdkafka::consumer::Consumer<X>>(
    consumer: &C,
    topics: &[&str],
    offset_of: impl Fn(&str, i32) -> rdkafka::error::KafkaResult<rdkafka::Offset>,
) -> rdkafka::error::KafkaResult<usize> {
    let mut assignment = rdkafka::TopicPartitionList::new();
    for (topic, partition) in partitions_of(consumer, topics)? {
        assignment.add_partition_offset(topic, partition, offset_of(topic, partition)?)?;
    }
    consumer.assign(&assignment)?;
    Ok(assignment.count())
}

/// Every partition of `topics`, as the broker's metadata lists them now. Blocking.
pub fn partitions_of<'t, X: ConsumerContext, C: rdkafka::consumer::Consumer<X>>(
    consumer: &C,
    topics: &[&'t str],
) -> rdkafka::error::KafkaResult<Vec<(&'t str, i32)>> {
    let mut partitions = Vec::new();
    for topic in topics {
        let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
        partitions.extend(
            metadata.topics().iter().flat_map(|listed| listed.partitions()).map(|partition| (*topic, partition.id())),
        );
    }
    Ok(partitions)
}

/// The span of handling one consumed message, continuing the trace its `traceparent` header
/// names, when traces are exported; none otherwise. `consumer` names who handles it (a
/// service's group, the gateway's feed).
pub fn consumer_span(consumer: &str, message: &rdkafka::message::BorrowedMessage<'_>) -> ExportedSpan {
    use rdkafka::{Message as _, message::Headers as _};

    let parent = || {
        let traceparent = message.headers().and_then(|headers| {
            headers
                .iter()
                .find(|header| header.key == crate::envelope::TRACEPARENT_HEADER)
                .and_then(|header| std::str::from_utf8(header.value?).ok())
        });
        service_runtime::trace_context::extract_from_traceparent(traceparent)
    };
    ExportedSpan::start(parent, || {
        SpanBuilder::from_name(format!("{} process", message.topic())).with_kind(SpanKind::Consumer).with_attributes([
            KeyValue::new("messaging.system", "kafka"),
            KeyValue::new("messaging.destination.name", message.topic().to_owned()),
            KeyValue::new("messaging.consumer.group.name", consumer.to_owned()),
            KeyValue::new("messaging.kafka.offset", message.offset()),
        ])
    })
}
