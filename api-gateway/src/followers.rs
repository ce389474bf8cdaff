//! Subscriptions by entity: an event reaches only the subscriptions that follow its entity.
//!
//! One broadcast channel for every subscription made each event cost one wake-up and one
//! comparison per subscription; under an order burst (thousands of subscriptions, one per
//! order) that was most of the gateway's CPU, and subscriptions that fell behind the shared
//! channel skipped events, their own order's confirmation among them. Here each followed entity
//! has a small channel of its own, found by its id.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use tokio::sync::broadcast;

/// The channels of the entities someone follows, by entity id.
#[derive(Debug)]
pub struct Followers<T> {
    channels: Mutex<HashMap<String, broadcast::Sender<Arc<T>>>>,
    /// How many events a subscription may fall behind on its entity before it misses some
    /// (each followed entity's channel holds this many slots while followed).
    capacity: usize,
}

impl<T> Followers<T> {
    /// Followers whose subscriptions may each fall `capacity` events behind.
    pub fn new(capacity: usize) -> Self {
        Self { channels: Mutex::new(HashMap::new()), capacity }
    }

    /// Events of entity `id` from now on.
    pub fn follow(&self, id: &str) -> broadcast::Receiver<Arc<T>> {
        let mut channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        match channels.get(id) {
            Some(sender) => sender.subscribe(),
            None => {
                let (sender, receiver) = broadcast::channel(self.capacity);
                channels.insert(id.to_owned(), sender);
                receiver
            }
        }
    }

    /// Sends `event` to the followers of entity `id`, if any; forgets the entity once nobody
    /// follows it any more.
    pub fn send(&self, id: &str, event: T) {
        let mut channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(sender) = channels.get(id)
            && sender.send(Arc::new(event)).is_err()
        {
            channels.remove(id);
        }
    }

    /// How many subscriptions are listening; drops the channels nobody listens to any more.
    pub fn listeners(&self) -> usize {
        let mut channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        channels.retain(|_, sender| sender.receiver_count() > 0);
        channels.values().map(broadcast::Sender::receiver_count).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_reaches_only_the_followers_of_its_entity() {
        let followers = Followers::new(16);
        let mut first = followers.follow("a");
        let mut second = followers.follow("a");
        let mut other = followers.follow("b");
        followers.send("a", 1);
        followers.send("c", 3);
        assert_eq!(*first.try_recv().expect("first"), 1);
        assert_eq!(*second.try_recv().expect("second"), 1);
        assert!(other.try_recv().is_err(), "b's follower got a's event");
        assert_eq!(followers.listeners(), 3);
    }

    #[test]
    fn entities_nobody_follows_are_forgotten() {
        let followers = Followers::new(16);
        let receiver = followers.follow("a");
        drop(followers.follow("b"));
        assert_eq!(followers.listeners(), 1);
        drop(receiver);
        followers.send("a", 1);
        assert!(followers.channels.lock().unwrap_or_else(PoisonError::into_inner).is_empty());
        assert_eq!(followers.listeners(), 0);
    }
}
