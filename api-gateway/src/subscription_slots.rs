//! Caps on open subscriptions, per client address and in the whole gateway.
//!
//! A subscription holds memory for as long as it lives (its channel of events, its WebSocket's
//! buffers): without a cap one client could open thousands and keep them, and the gateway's
//! memory would be theirs. A subscription past a cap is refused with an error naming the
//! setting; one that ends (completed, or its connection closed) frees its slot at once.

use std::{
    collections::HashMap,
    net::IpAddr,
    num::NonZeroUsize,
    sync::{Arc, Mutex, PoisonError},
};

/// How many subscriptions are open, in total and per client.
#[derive(Debug)]
pub struct SubscriptionSlots {
    per_client: usize,
    total: usize,
    open: Mutex<OpenSubscriptions>,
}

#[derive(Debug, Default)]
struct OpenSubscriptions {
    total: usize,
    by_client: HashMap<IpAddr, usize>,
}

/// Why a subscription was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlotsFull {
    #[error(
        "too many subscriptions from this client: {limit} are open, the most allowed (MAX_SUBSCRIPTIONS_PER_CLIENT); end one first"
    )]
    Client { limit: usize },
    #[error(
        "too many subscriptions open in this gateway: {limit}, the most allowed (MAX_SUBSCRIPTIONS); try again later"
    )]
    Total { limit: usize },
}

impl SubscriptionSlots {
    pub fn new(per_client: NonZeroUsize, total: NonZeroUsize) -> Arc<Self> {
        Arc::new(Self { per_client: per_client.get(), total: total.get(), open: Mutex::default() })
    }

    /// The slots of one client's connection: what its subscriptions take from.
    pub fn for_client(self: &Arc<Self>, client: IpAddr) -> ClientSlots {
        ClientSlots { slots: Arc::clone(self), client }
    }

    fn open(&self) -> std::sync::MutexGuard<'_, OpenSubscriptions> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One client's share of the slots, kept with its WebSocket connection.
#[derive(Debug, Clone)]
pub struct ClientSlots {
    slots: Arc<SubscriptionSlots>,
    client: IpAddr,
}

impl ClientSlots {
    /// A slot for one more subscription, or why there is none.
    pub fn take(&self) -> Result<Slot, SlotsFull> {
        let slots = &self.slots;
        let mut open = slots.open();
        if open.total >= slots.total {
            return Err(SlotsFull::Total { limit: slots.total });
        }
        let client = open.by_client.entry(self.client).or_default();
        if *client >= slots.per_client {
            return Err(SlotsFull::Client { limit: slots.per_client });
        }
        *client += 1;
        open.total += 1;
        Ok(Slot(self.clone()))
    }
}

/// One open subscription's slot, freed when dropped (when the subscription's stream ends).
#[derive(Debug)]
pub struct Slot(ClientSlots);

impl Drop for Slot {
    fn drop(&mut self) {
        let ClientSlots { slots, client } = &self.0;
        let mut open = slots.open();
        open.total = open.total.saturating_sub(1);
        if let Some(count) = open.by_client.get_mut(client) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.by_client.remove(client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    fn slots(per_client: usize, total: usize) -> Arc<SubscriptionSlots> {
        SubscriptionSlots::new(NonZeroUsize::new(per_client).expect("> 0"), NonZeroUsize::new(total).expect("> 0"))
    }

    #[test]
    fn each_client_has_its_cap_and_an_ended_subscription_frees_its_slot() {
        let slots = slots(2, 100);
        let (alice, bob) = (slots.for_client(address(1)), slots.for_client(address(2)));
        let first = alice.take().expect("first");
        let _second = alice.take().expect("second");
        assert_eq!(alice.take().unwrap_err(), SlotsFull::Client { limit: 2 });
        let _bobs = bob.take().expect("another client has slots of its own");
        drop(first);
        let _third = alice.take().expect("a slot freed by an ended subscription");
    }

    #[test]
    fn the_gateway_wide_cap_holds_across_clients() {
        let slots = slots(10, 3);
        let held: Vec<_> = (1..=3).map(|client| slots.for_client(address(client)).take().expect("slot")).collect();
        let refused = slots.for_client(address(4)).take().unwrap_err();
        assert_eq!(refused, SlotsFull::Total { limit: 3 });
        assert!(refused.to_string().contains("MAX_SUBSCRIPTIONS"), "{refused}");
        drop(held);
        assert!(slots.open().by_client.is_empty(), "no client keeps an entry once its subscriptions ended");
        let _again = slots.for_client(address(4)).take().expect("slots freed");
    }
}
