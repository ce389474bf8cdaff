//! Receiving messages without keeping an idle broker busy.
//!
//! A consumer fetches all the time, and the embedded broker holds every fetch for the whole
//! `fetch.wait.max.ms`, found or not: a short wait makes each saga hop quick but keeps the
//! broker polling tens of times a second per consumer while nothing happens. [`IdleAware`]
//! keeps the short wait while messages flow; after [`DOZE_AFTER`] without one it pauses its
//! partitions and looks again only every [`DOZE_INTERVAL`] (a fetch or two per look), until a
//! message comes or the process signals that one is due (it has just published an event that
//! will be answered, or a client has just subscribed). Pausing never loses a message: librdkafka
//! fetches a paused partition again from the last position handed to the application.
//!
//! A partition is paused only while librdkafka fetches every assigned partition from a known
//! position (its statistics say so, see [`StatsContext::fetching_everywhere`]). Pausing one
//! whose starting offset is still being looked up discards the lookup's answer, and resuming
//! starts the lookup again: with looks shorter than a lookup against a busy broker, the
//! partition would never be read.

use std::{sync::Arc, time::Duration};

use rdkafka::{
    consumer::{Consumer as _, StreamConsumer},
    error::KafkaResult,
    message::BorrowedMessage,
};
use tokio::{sync::Notify, time::Instant};
use tokio_util::sync::CancellationToken;

use crate::kafka::StatsContext;

/// How long without a message before the consumer dozes.
pub const DOZE_AFTER: Duration = Duration::from_secs(1);
/// How long a dozing consumer leaves its partitions paused between two looks.
pub const DOZE_INTERVAL: Duration = Duration::from_millis(250);
/// How long a look lasts beyond two of the broker's fetch waits (a fetch in flight when the
/// partitions were resumed, then the fetch that reads them): time for the answer to come back.
const LOOK_MARGIN: Duration = Duration::from_millis(50);

/// A signal that a message is due soon: a dozing consumer wakes at once.
#[derive(Debug, Clone, Default)]
pub struct WakeSignal(Arc<Notify>);

impl WakeSignal {
    pub fn wake(&self) {
        // A permit is kept if the consumer is not waiting yet: the next doze ends at once.
        self.0.notify_one();
    }
}

/// A consumer that dozes while idle.
pub struct IdleAware<'c> {
    consumer: &'c StreamConsumer<StatsContext>,
    wake: WakeSignal,
    /// The broker's fetch wait: how long one look takes at least.
    fetch_wait: Duration,
    /// When a message last came (or the consumer was last woken).
    last_activity: Instant,
}

impl std::fmt::Debug for IdleAware<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdleAware").field("last_activity", &self.last_activity).finish_non_exhaustive()
    }
}

impl<'c> IdleAware<'c> {
    pub fn new(consumer: &'c StreamConsumer<StatsContext>, wake: WakeSignal, fetch_wait_ms: u32) -> Self {
        Self {
            consumer,
            wake,
            fetch_wait: Duration::from_millis(u64::from(fetch_wait_ms)),
            last_activity: Instant::now(),
        }
    }

    /// The next message, or `None` once `cancel` fires.
    pub async fn recv(&mut self, cancel: &CancellationToken) -> Option<KafkaResult<BorrowedMessage<'c>>> {
        loop {
            let awake_until = self.last_activity + DOZE_AFTER;
            let listen_until = if Instant::now() < awake_until {
                awake_until
            } else if !self.consumer.context().fetching_everywhere() {
                // Not safe to pause yet: stay awake a while longer.
                self.last_activity = Instant::now();
                continue;
            } else {
                if !self.doze(cancel).await {
                    return None;
                }
                Instant::now() + self.fetch_wait * 2 + LOOK_MARGIN
            };
            tokio::select! {
                () = cancel.cancelled() => return None,
                message = self.consumer.recv() => {
                    self.last_activity = Instant::now();
                    return Some(message);
                }
                () = tokio::time::sleep_until(listen_until) => {}
            }
        }
    }

    /// Pauses the assigned partitions for [`DOZE_INTERVAL`] or until woken, then resumes them
    /// for a look; false if cancelled.
    async fn doze(&mut self, cancel: &CancellationToken) -> bool {
        let assignment = match self.consumer.assignment() {
            Ok(assignment) => assignment,
            Err(error) => {
                tracing::debug!(%error, "no assignment to pause");
                rdkafka::TopicPartitionList::new()
            }
        };
        if assignment.count() > 0
            && let Err(error) = self.consumer.pause(&assignment)
        {
            tracing::debug!(%error, "pausing the partitions failed; looking without a pause");
        }
        let outcome = tokio::select! {
            () = cancel.cancelled() => None,
            () = self.wake.0.notified() => Some(true),
            () = tokio::time::sleep(DOZE_INTERVAL) => Some(false),
        };
        // Always resumed, whatever ended the doze: a partition left paused would be stuck.
        if assignment.count() > 0
            && let Err(error) = self.consumer.resume(&assignment)
        {
            tracing::warn!(%error, "resuming the partitions failed");
        }
        match outcome {
            None => false,
            Some(woken) => {
                if woken {
                    self.last_activity = Instant::now();
                }
                true
            }
        }
    }
}
