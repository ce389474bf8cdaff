//! The process's one Kafka producer: sends whose delivery is awaited, served by a thread that
//! sleeps while there is nothing to do.
//!
//! rdkafka's `FutureProducer` runs a thread that polls librdkafka every 100 ms, and each poll
//! ends by spinning through the last fraction of a millisecond (the remaining time is truncated
//! to whole milliseconds, so the final waits are 0 ms). Measured with `perf` on an idle
//! order-service: that thread was 78 % of the process's CPU, about 1 % of a core per producer.
//! This producer polls once a second instead: a delivery report wakes the poll at once, so
//! only how soon the thread notices a shutdown depends on the interval.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use rdkafka::{
    ClientConfig,
    error::{KafkaError, RDKafkaErrorCode},
    message::OwnedHeaders,
    producer::{BaseProducer, BaseRecord, DeliveryResult, Producer as _, ProducerContext},
};
use tokio::sync::oneshot;

use crate::kafka::StatsContext;

/// How long the polling thread waits for a delivery report before it checks for a shutdown.
const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// How long a send waits for room in librdkafka's queue before it fails.
const QUEUE_FULL_TIMEOUT: Duration = Duration::from_secs(15);

/// A cheap handle to the process's producer; the last one dropped stops its thread.
#[derive(Clone)]
pub struct EventProducer {
    inner: Arc<Inner>,
}

struct Inner {
    producer: Arc<BaseProducer<StatsContext>>,
    stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for EventProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventProducer").finish_non_exhaustive()
    }
}

/// What a delivery report carries back to the send that is waiting for it.
type DeliveryReport = oneshot::Sender<Result<(), KafkaError>>;

impl ProducerContext for StatsContext {
    type DeliveryOpaque = Box<DeliveryReport>;

    fn delivery(&self, result: &DeliveryResult<'_>, report: Self::DeliveryOpaque) {
        // The send may have been given up (its future dropped); nobody is left to tell.
        let _ = report.send(result.as_ref().map(|_| ()).map_err(|(error, _)| error.clone()));
    }
}

impl EventProducer {
    /// A producer with `config`, reporting its statistics through `context`.
    pub fn new(config: &ClientConfig, context: StatsContext) -> Result<Self, KafkaError> {
        let producer: Arc<BaseProducer<StatsContext>> = Arc::new(config.create_with_context(context)?);
        let stop = Arc::new(AtomicBool::new(false));
        let polled = Arc::clone(&producer);
        let stopped = Arc::clone(&stop);
        std::thread::Builder::new()
            .name("kafka-producer".into())
            .spawn(move || {
                while !stopped.load(Ordering::Relaxed) {
                    polled.poll(POLL_INTERVAL);
                }
            })
            .map_err(|error| KafkaError::ClientCreation(format!("starting the producer's thread: {error}")))?;
        Ok(Self { inner: Arc::new(Inner { producer, stop }) })
    }

    /// Sends one record and waits until the broker has it (or it failed for good).
    pub async fn send(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        payload: Option<&[u8]>,
        headers: OwnedHeaders,
    ) -> Result<(), KafkaError> {
        let (report, delivered) = oneshot::channel();
        let mut record = BaseRecord::with_opaque_to(topic, Box::new(report)).headers(headers);
        if let Some(key) = key {
            record = record.key(key);
        }
        if let Some(payload) = payload {
            record = record.payload(payload);
        }
        let deadline = Instant::now() + QUEUE_FULL_TIMEOUT;
        loop {
            match self.inner.producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned))
                    if Instant::now() < deadline =>
                {
                    record = returned;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err((error, _)) => return Err(error),
            }
        }
        delivered.await.unwrap_or_else(|_| Err(KafkaError::Canceled))
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The thread sees this within one poll interval and exits; not joined, so a shutdown
        // does not wait for it. Whatever was not delivered by now is reported as failed when
        // librdkafka is closed, and stays in the outbox.
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.producer.flush(Duration::from_secs(1));
    }
}
