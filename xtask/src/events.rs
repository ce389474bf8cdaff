//! `cargo xtask events <topic>`: prints a topic's events as they arrive, from the beginning.

use std::{process::ExitCode, time::Duration};

use rdkafka::{ClientConfig, Message as _, Offset, consumer::BaseConsumer};

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

pub fn run(args: &EventsArgs) -> anyhow::Result<ExitCode> {
    // No consumer group: reading never moves anyone's offsets.
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &args.brokers)
        .set("group.id", "xtask-events-viewer")
        .set("enable.auto.commit", "false")
        .create()?;
    let partitions = events::kafka::assign_all_partitions(&consumer, &[&args.topic], Offset::Beginning)?;
    anyhow::ensure!(partitions > 0, "topic {} not found on {}", args.topic, args.brokers);
    let mut idle = Duration::ZERO;
    loop {
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(message)) => {
                idle = Duration::ZERO;
                let key = String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned();
                let payload = String::from_utf8_lossy(message.payload().unwrap_or_default()).into_owned();
                println!("{}[{}]@{} key={key} {payload}", message.topic(), message.partition(), message.offset());
            }
            Some(Err(error)) => eprintln!("{error}"),
            None => {
                idle += Duration::from_millis(500);
                if args.no_follow && idle >= Duration::from_secs(2) {
                    return Ok(ExitCode::SUCCESS);
                }
            }
        }
    }
}
