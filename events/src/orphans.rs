//! Partitions that no member of a consumer group reads: noticed, and the group made to share
//! them out again.
//!
//! A replica killed outright (SIGKILL, a lost node) sends no goodbye; the broker drops it from
//! its group once it has missed heartbeats for the session timeout. Kafka then rebalances and
//! the survivors take over its partitions. tansu 0.6, the embedded broker, does not: its
//! coordinator removes the member but keeps the group's generation and assignment, and answers
//! the survivors' rejoin with their old partitions (tansu-broker 0.6.0,
//! `coordinator/group/administrator.rs`, the `Formed` state's `join` and `missed_heartbeat`),
//! so the dead member's partitions are read by nobody, for ever.
//!
//! So each consumer watches the partitions of its topics that it does not hold: one with unread
//! messages whose committed offset has not moved for [`ORPHANED_AFTER`] (longer than the
//! session timeout: the broker has had its chance) has no reader. Then a short-lived member joins
//! the group and leaves it again, which makes any broker start a new generation in which the
//! live members share every partition. On a broker that rebalances by itself this never fires.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use rdkafka::{
    Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer, ConsumerContext},
    error::KafkaResult,
};

use crate::KafkaArgs;

/// How often a consumer looks at the partitions it does not hold.
pub const CHECK_EVERY: Duration = Duration::from_secs(10);

/// How long a partition with unread messages may go without its committed offset moving before
/// it counts as having no reader: the session timeout (45 s) and a margin.
pub const ORPHANED_AFTER: Duration = Duration::from_secs(60);

/// How long the short-lived member stays in the group: long enough to have joined.
const NUDGE_MEMBERSHIP: Duration = Duration::from_secs(3);

/// How long a request to the broker may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// One partition as seen at one check.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartitionId {
    pub topic: String,
    pub partition: i32,
}

/// What a check saw of a partition the consumer does not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// The group's committed offset; `None` when it never committed one.
    pub committed: Option<i64>,
    /// The partition's low and high watermarks.
    pub low: i64,
    pub high: i64,
}

impl Progress {
    /// Whether the partition has messages the group has not read.
    fn unread(self) -> bool {
        self.committed.unwrap_or(self.low) < self.high
    }
}

/// The stalled partitions one consumer has seen, since when, and how to look again.
#[derive(Debug, Default)]
pub struct OrphanWatch {
    /// For each partition with unread messages: its committed offset and when it was first seen
    /// at that offset.
    stalled: HashMap<PartitionId, (Option<i64>, Instant)>,
}

impl OrphanWatch {
    /// Records what a check saw at `now`; true when some partition has gone unread for
    /// [`ORPHANED_AFTER`]. Partitions the consumer holds itself are not passed in.
    pub fn saw(&mut self, now: Instant, partitions: &[(PartitionId, Progress)]) -> bool {
        let mut stalled = HashMap::new();
        for (id, progress) in partitions.iter().filter(|(_, progress)| progress.unread()) {
            let since = match self.stalled.get(id) {
                Some((committed, since)) if *committed == progress.committed => *since,
                _ => now,
            };
            stalled.insert(id.clone(), (progress.committed, since));
        }
        self.stalled = stalled;
        self.stalled.values().any(|(_, since)| now.duration_since(*since) >= ORPHANED_AFTER)
    }

    /// Starts over, after the group was made to rebalance.
    pub fn forget(&mut self) {
        self.stalled.clear();
    }
}

/// Looks at the partitions of `topics` that `held` does not contain, through `watcher` (the
/// group member's own consumer, asked from a blocking thread). Blocking.
pub fn look<X: ConsumerContext, C: Consumer<X>>(
    watcher: &C,
    topics: &[&str],
    held: &TopicPartitionList,
) -> KafkaResult<Vec<(PartitionId, Progress)>> {
    let mut others = TopicPartitionList::new();
    for (topic, partition) in crate::kafka::partitions_of(watcher, topics)? {
        if held.find_partition(topic, partition).is_none() {
            others.add_partition(topic, partition);
        }
    }
    if others.count() == 0 {
        return Ok(Vec::new());
    }
    let committed = watcher.committed_offsets(others, REQUEST_TIMEOUT)?;
    let mut seen = Vec::new();
    for element in committed.elements() {
        let (low, high) = watcher.fetch_watermarks(element.topic(), element.partition(), REQUEST_TIMEOUT)?;
        let committed = match element.offset() {
            Offset::Offset(offset) => Some(offset),
            _ => None,
        };
        let id = PartitionId { topic: element.topic().to_owned(), partition: element.partition() };
        seen.push((id, Progress { committed, low, high }));
    }
    Ok(seen)
}

/// Makes `group` start a new generation: a member joins and, a moment later, leaves. It reads
/// nothing for the group (it commits no offset), and the live members then share every
/// partition among themselves. Blocking.
pub fn nudge(kafka: &KafkaArgs, group: &str, topics: &[&str]) -> KafkaResult<()> {
    let member: BaseConsumer = kafka
        .client_config()
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .create()?;
    member.subscribe(topics)?;
    let until = Instant::now() + NUDGE_MEMBERSHIP;
    while Instant::now() < until {
        // Whatever it is handed meanwhile is dropped unread; the group's offsets stay put.
        let _ = member.poll(Duration::from_millis(100));
    }
    // Dropping it closes it, which leaves the group.
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partition(number: i32) -> PartitionId {
        PartitionId { topic: "t".to_owned(), partition: number }
    }

    fn at(committed: Option<i64>, high: i64) -> Progress {
        Progress { committed, low: 0, high }
    }

    #[test]
    fn a_partition_unread_for_the_whole_time_is_orphaned() {
        let mut watch = OrphanWatch::default();
        let start = Instant::now();
        assert!(!watch.saw(start, &[(partition(0), at(Some(5), 9))]));
        assert!(!watch.saw(start + ORPHANED_AFTER / 2, &[(partition(0), at(Some(5), 12))]));
        assert!(watch.saw(start + ORPHANED_AFTER, &[(partition(0), at(Some(5), 12))]));
    }

    #[test]
    fn a_partition_that_moves_or_is_caught_up_is_not() {
        let mut watch = OrphanWatch::default();
        let start = Instant::now();
        watch.saw(start, &[(partition(0), at(Some(5), 9)), (partition(1), at(Some(9), 9))]);
        // Partition 0 moved on; partition 1 has nothing unread.
        assert!(!watch.saw(start + ORPHANED_AFTER, &[(partition(0), at(Some(6), 9)), (partition(1), at(Some(9), 9))]));
        assert!(!watch.saw(start + ORPHANED_AFTER * 2 - Duration::from_secs(1), &[(partition(0), at(Some(6), 9))]));
    }

    #[test]
    fn a_partition_never_committed_counts_from_its_first_message() {
        let mut watch = OrphanWatch::default();
        let start = Instant::now();
        assert!(!watch.saw(start, &[(partition(0), at(None, 0))]));
        assert!(!watch.saw(start + ORPHANED_AFTER, &[(partition(0), at(None, 0))]), "empty: nothing to read");
        watch.saw(start + ORPHANED_AFTER, &[(partition(0), at(None, 3))]);
        assert!(watch.saw(start + ORPHANED_AFTER * 2, &[(partition(0), at(None, 3))]));
        watch.forget();
        assert!(!watch.saw(start + ORPHANED_AFTER * 2, &[(partition(0), at(None, 3))]));
    }
}
