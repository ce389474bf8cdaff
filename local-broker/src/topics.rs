//! The topics of the local run: `create-topics` makes the missing ones before any service
//! starts; `events <topic>` (what `cargo xtask events` runs) prints a topic's events as they
//! arrive, from the beginning; and [`read_to_end`], which the benchmark's event-latency reader
//! shares.

use std::{
    collections::HashSet,
    process::ExitCode,
    time::{Duration, Instant},
};

use rdkafka::{
    ClientConfig, Message as _, Offset, consumer::BaseConsumer, error::KafkaError, message::BorrowedMessage,
};

/// The most reading a topic to its end may take: the embedded broker answers large fetches
/// slowly.
const READ_LIMIT: Duration = Duration::from_secs(180);

#[derive(Debug, clap::Args)]
pub struct EventsArgs {
    /// The topic, e.g. `order.status.changed` or `order.created.dlq`.
    topic: String,
    /// The broker.
    #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    brokers: String,
    /// Stop at the end of the topic instead of waiting for more.
    #[arg(long)]
    no_follow: bool,
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// The broker.
    #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    brokers: String,
    /// How long the broker may take to answer, in seconds.
    #[arg(long, default_value_t = 60)]
    timeout_secs: u64,
}

/// Creates every topic (and dead-letter topic) the services use that the broker lacks. The
/// local run does this once, before any service starts: four processes creating them at once
/// would each be refused some, and the broker logs every refusal as an error.
pub fn create(args: &CreateArgs) -> anyhow::Result<ExitCode> {
    let kafka = events::KafkaArgs::at(args.brokers.clone());
    let cancel = tokio_util::sync::CancellationToken::new();
    let deadline = Duration::from_secs(args.timeout_secs);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let created = runtime.block_on(async {
        tokio::time::timeout(deadline, events::kafka::ensure_topics_with_retry(&kafka, &cancel)).await
    });
    match created {
        Ok(true) => Ok(ExitCode::SUCCESS),
        _ => anyhow::bail!("the broker at {} did not create the topics within {} s", args.brokers, deadline.as_secs()),
    }
}

pub fn run(args: &EventsArgs) -> anyhow::Result<ExitCode> {
    if args.no_follow {
        read_to_end(&args.brokers, &args.topic, |message| {
            print(message);
            Ok(())
        })?;
        return Ok(ExitCode::SUCCESS);
    }
    let (consumer, _) = reader(&args.brokers, &args.topic, false)?;
    loop {
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(message)) => print(&message),
            Some(Err(error)) => eprintln!("{error}"),
            None => {}
        }
    }
}

/// Hands every message of `topic` to `each`, from the beginning until every partition reports
/// its end. The end is the broker's end-of-partition signal, not a quiet spell: the embedded
/// broker can take seconds to answer a fetch of a few thousand events.
pub fn read_to_end(
    brokers: &str,
    topic: &str,
    mut each: impl FnMut(&BorrowedMessage<'_>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let (consumer, partitions) = reader(brokers, topic, true)?;
    let mut at_end = HashSet::new();
    let started = Instant::now();
    while at_end.len() < partitions {
        anyhow::ensure!(started.elapsed() < READ_LIMIT, "{topic} was not read to its end within {READ_LIMIT:?}");
        match consumer.poll(Duration::from_millis(500)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                at_end.insert(partition);
            }
            Some(message) => {
                let message = message?;
                at_end.remove(&message.partition());
                each(&message)?;
            }
        }
    }
    Ok(())
}

/// A consumer of every partition of `topic` from the beginning, and how many partitions it has.
/// No consumer group: reading never moves anyone's offsets.
fn reader(brokers: &str, topic: &str, report_ends: bool) -> anyhow::Result<(BaseConsumer, usize)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "local-broker-events-reader")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", report_ends.to_string())
        .create()?;
    let partitions = events::kafka::assign_all_partitions(&consumer, &[topic], Offset::Beginning)?;
    anyhow::ensure!(partitions > 0, "topic {topic} not found on {brokers}");
    Ok((consumer, partitions))
}

fn print(message: &BorrowedMessage<'_>) {
    let key = String::from_utf8_lossy(message.key().unwrap_or_default());
    let payload = String::from_utf8_lossy(message.payload().unwrap_or_default());
    println!("{}[{}]@{} key={key} {payload}", message.topic(), message.partition(), message.offset());
}
