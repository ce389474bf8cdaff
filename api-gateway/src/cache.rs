//! Products and users the gateway has read, served again until an event says they changed.
//!
//! `product(id)`, `OrderItem.product`, `user(id)` and `Order.user` read the same few entities
//! over and over; each read is a call to a backend. An [`EntityCache`] keeps what the backend
//! answered and drops an entity when the event feed ([`crate::feed`]) reads a change of it
//! (`product.updated`, `product.deleted`, `product.stock.updated`; `user.updated`,
//! `user.deleted`), or when this gateway changed it itself.
//!
//! Entries are kept only while the feed reads those topics: the first read wakes the feed, and
//! the caches start keeping answers once the feed has taken the topics' current ends as its
//! positions, so every later change reaches them. When the feed stops (idle, or interrupted)
//! the caches empty. A time to live bounds what a stall the feed cannot see (a broker that
//! stopped delivering) can cost.
//!
//! A read that raced a change must not put the old entity back. Every read takes a [`Ticket`]
//! (the number of changes seen so far) before it asks the backend, and its answer is kept only
//! if no change to that entity, and no reset of the cache, came after it. An entity the backend
//! answered absent counts as changed then, so that a deletion served once is served from then
//! on, even before its event arrives.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::sync::Notify;

use crate::schema::{Product, User};

/// The most entries (changed markers included) one cache keeps; past it the cache starts
/// over. Some 10,000 entities of ~300 bytes are a few MB.
const CAPACITY: usize = 10_000;

/// What a cache holds: an entity with an id, cloned out for each request.
pub trait Cacheable: Clone {
    /// The `entity` label of the cache's metrics.
    const ENTITY: &'static str;

    /// Its id, as the backend and its events spell it.
    fn id(&self) -> &str;
}

impl Cacheable for Product {
    const ENTITY: &'static str = "product";

    fn id(&self) -> &str {
        &self.id
    }
}

impl Cacheable for User {
    const ENTITY: &'static str = "user";

    fn id(&self) -> &str {
        &self.id
    }
}

/// Products read from product-service.
pub type ProductCache = EntityCache<Product>;
/// Users read from user-service.
pub type UserCache = EntityCache<User>;

/// The gateway's caches, kept current by the one event feed.
#[derive(Debug, Clone)]
pub struct Caches {
    pub products: Arc<ProductCache>,
    pub users: Arc<UserCache>,
}

impl Caches {
    /// Empty caches serving answers for `ttl` (zero: none), off until the feed reads.
    pub fn new(ttl: Duration, wake_feed: &Arc<Notify>) -> Self {
        Self {
            products: Arc::new(EntityCache::new(ttl, Arc::clone(wake_feed))),
            users: Arc::new(EntityCache::new(ttl, Arc::clone(wake_feed))),
        }
    }

    /// See [`EntityCache::reset`].
    pub fn reset(&self, enabled: bool) {
        self.products.reset(enabled);
        self.users.reset(enabled);
    }

    /// Whether either cache was read since the feed last checked.
    pub fn used(&self) -> bool {
        self.products.used() || self.users.used()
    }

    /// Whether either cache was read since the last call.
    pub fn take_used(&self) -> bool {
        let products = self.products.take_used();
        let users = self.users.take_used();
        products || users
    }
}

/// Entities read from a backend, shared by every request.
#[derive(Debug)]
pub struct EntityCache<T> {
    /// How long an answer is served; zero turns the cache off.
    ttl: Duration,
    /// Set by every read, cleared by the feed's idle check: whether the cache is in use.
    used: AtomicBool,
    /// Wakes the event feed when a read finds the cache off.
    wake_feed: Arc<Notify>,
    /// `gateway_cache_lookups_total` for this entity's hits and misses, registered once: a
    /// lookup by name hashes the labels on every call.
    hits: metrics::Counter,
    misses: metrics::Counter,
    state: Mutex<State<T>>,
}

#[derive(Debug)]
struct State<T> {
    /// False while the feed does not read: nothing is served or kept.
    enabled: bool,
    /// How many changes (and resets) the cache has seen; a ticket is a value of it.
    changes: u64,
    /// Answers to reads that took their ticket before this were read before the last reset.
    floor: u64,
    entries: HashMap<String, Entry<T>>,
}

#[derive(Debug)]
enum Entry<T> {
    Kept {
        entity: Arc<T>,
        until: Instant,
    },
    /// Changed when the cache had seen this many changes: an answer to a read that started
    /// before may hold the old entity.
    Changed(u64),
}

impl<T> State<T> {
    /// Forgets every entry and change marker when the cache is full; answers to reads that took
    /// their ticket before the last change can then no longer be checked, so none is kept.
    fn start_over(&mut self) {
        self.floor = self.changes;
        self.entries.clear();
    }
}

/// A read's place among the changes, taken before it asks the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket(u64);

impl<T: Cacheable> EntityCache<T> {
    /// An empty cache, off until the feed reads; `wake_feed` is the feed's wake-up call. Its
    /// counters go to the metrics recorder installed by then.
    pub fn new(ttl: Duration, wake_feed: Arc<Notify>) -> Self {
        let state = State { enabled: false, changes: 0, floor: 0, entries: HashMap::new() };
        let lookups = |result: &'static str| metrics::counter!("gateway_cache_lookups_total", "entity" => T::ENTITY, "result" => result);
        Self {
            ttl,
            used: AtomicBool::new(false),
            wake_feed,
            hits: lookups("hit"),
            misses: lookups("miss"),
            state: Mutex::new(state),
        }
    }

    /// The entity with id `id`, if the cache holds a current answer. Shared, not copied: a
    /// `userOrders` page names 60 products, and copying each (seven strings) cost more than
    /// finding it.
    pub fn get(&self, id: &str) -> Option<Arc<T>> {
        if self.ttl.is_zero() {
            return None;
        }
        self.used.store(true, Ordering::Relaxed);
        let mut state = self.state();
        if !state.enabled {
            drop(state);
            self.wake_feed.notify_one();
            return None;
        }
        let entity = match state.entries.get(id) {
            Some(Entry::Kept { entity, until }) if *until > Instant::now() => Some(Arc::clone(entity)),
            Some(Entry::Kept { .. }) => {
                state.entries.remove(id);
                None
            }
            _ => None,
        };
        drop(state);
        if entity.is_some() { &self.hits } else { &self.misses }.increment(1);
        entity
    }

    /// A ticket for a read about to ask the backend.
    pub fn ticket(&self) -> Ticket {
        Ticket(self.state().changes)
    }

    /// Keeps the backend's answers to a read that took `ticket`, except entities that changed
    /// since.
    pub fn keep<'a>(&self, ticket: Ticket, entities: impl IntoIterator<Item = &'a Arc<T>>)
    where
        T: 'a,
    {
        if self.ttl.is_zero() {
            return;
        }
        let until = Instant::now() + self.ttl;
        let mut state = self.state();
        if !state.enabled || ticket.0 < state.floor {
            return;
        }
        for entity in entities {
            if state.entries.len() >= CAPACITY {
                state.start_over();
                // The markers of changes after this read's ticket went with the rest.
                if ticket.0 < state.floor {
                    return;
                }
            }
            let id = entity.id();
            if let Some(Entry::Changed(at)) = state.entries.get(id)
                && *at > ticket.0
            {
                continue;
            }
            state.entries.insert(id.to_owned(), Entry::Kept { entity: Arc::clone(entity), until });
        }
    }

    /// Entity `id` changed: it is read from the backend again, and reads that started before
    /// now are not kept for it.
    pub fn changed(&self, id: &str) {
        let mut state = self.state();
        if !state.enabled {
            return;
        }
        state.changes += 1;
        let at = state.changes;
        if state.entries.len() >= CAPACITY && !state.entries.contains_key(id) {
            state.start_over();
            return;
        }
        state.entries.insert(id.to_owned(), Entry::Changed(at));
    }

    /// Keeps a batch lookup's answer, the entities `found` among the ids `asked`, and returns it
    /// keyed by id (as the loaders hand it on); the ids not found count as changed.
    ///
    /// A read that asked before a deletion may still bring the entity back, and until the
    /// deletion's event arrives nothing else would keep that old answer out: one request would
    /// be told the entity is gone and a later one served it again. Counting an absence as a
    /// change drops a kept copy and keeps such answers out, so that once a deletion has been
    /// served, it is served to every request that follows.
    pub fn keep_answer(&self, ticket: Ticket, asked: &[String], found: Vec<T>) -> HashMap<String, Arc<T>> {
        let found: HashMap<String, Arc<T>> =
            found.into_iter().map(|entity| (entity.id().to_owned(), Arc::new(entity))).collect();
        self.keep(ticket, found.values());
        for id in asked.iter().filter(|id| !found.contains_key(*id)) {
            self.changed(id);
        }
        found
    }

    /// Some entity changed and which one is unknown: forgets everything.
    pub fn all_changed(&self) {
        let enabled = self.state().enabled;
        self.reset(enabled);
    }

    /// Empties the cache, and from now on keeps answers (`enabled`) or not. Reads that started
    /// before are not kept: they may predate a change the feed never saw.
    pub fn reset(&self, enabled: bool) {
        let mut state = self.state();
        state.changes += 1;
        state.floor = state.changes;
        state.enabled = enabled;
        // A new map: clearing would keep the old one's memory.
        state.entries = HashMap::new();
    }

    /// Whether an entity was read since the last call: the feed keeps reading while so.
    pub fn take_used(&self) -> bool {
        self.used.swap(false, Ordering::Relaxed)
    }

    /// Whether an entity was read since the feed last checked, without clearing it.
    pub fn used(&self) -> bool {
        self.used.load(Ordering::Relaxed)
    }

    fn state(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::ID;

    use super::*;

    fn product(id: &str, price: f64) -> Arc<Product> {
        Arc::new(Product {
            id: ID(id.to_owned()),
            name: "Lamp".to_owned(),
            description: String::new(),
            price,
            stock: 1,
            category: "home".to_owned(),
            created_at: String::new(),
            updated_at: String::new(),
        })
    }

    fn enabled_cache(ttl: Duration) -> ProductCache {
        let cache = ProductCache::new(ttl, Arc::new(Notify::new()));
        cache.reset(true);
        cache
    }

    #[test]
    fn an_answer_is_served_until_its_product_changes() {
        let cache = enabled_cache(Duration::from_secs(60));
        let ticket = cache.ticket();
        cache.keep(ticket, &[product("a", 1.0), product("b", 2.0)]);
        assert_eq!(cache.get("a").map(|p| p.price), Some(1.0));
        cache.changed("a");
        assert!(cache.get("a").is_none(), "a changed product is read again");
        assert_eq!(cache.get("b").map(|p| p.price), Some(2.0), "other products stay");
    }

    #[test]
    fn an_answer_to_a_read_that_raced_a_change_is_not_kept() {
        let cache = enabled_cache(Duration::from_secs(60));
        let before_change = cache.ticket();
        cache.changed("a");
        cache.keep(before_change, &[product("a", 1.0), product("b", 2.0)]);
        assert!(cache.get("a").is_none(), "the answer may predate the change");
        assert!(cache.get("b").is_some(), "an unchanged product of the same answer is kept");

        let after_change = cache.ticket();
        cache.keep(after_change, &[product("a", 3.0)]);
        assert_eq!(cache.get("a").map(|p| p.price), Some(3.0), "a read that began after the change is kept");
    }

    #[test]
    fn nothing_is_kept_while_off_nor_from_reads_that_began_before_it_was_on() {
        let woken = Arc::new(Notify::new());
        let cache = ProductCache::new(Duration::from_secs(60), Arc::clone(&woken));
        let before = cache.ticket();
        cache.keep(before, &[product("a", 1.0)]);
        assert!(cache.get("a").is_none(), "off until the feed reads");
        assert!(cache.take_used(), "the read is noted, so that the feed starts");
        assert!(!cache.take_used());

        cache.reset(true);
        cache.keep(before, &[product("a", 1.0)]);
        assert!(cache.get("a").is_none(), "read before the feed started: a change may be missed");

        cache.keep(cache.ticket(), &[product("a", 1.0)]);
        assert!(cache.get("a").is_some());
        cache.reset(false);
        assert!(cache.get("a").is_none(), "a stopped feed empties the cache");
    }

    #[test]
    fn once_an_entity_was_answered_absent_an_older_answer_is_neither_served_nor_kept() {
        let cache = enabled_cache(Duration::from_secs(60));
        let before_deletion = cache.ticket();
        cache.keep(before_deletion, &[product("a", 1.0)]);
        let asked = ["a".to_owned(), "b".to_owned()];
        let answer = cache.keep_answer(cache.ticket(), &asked, vec![Product::clone(&product("b", 2.0))]);
        assert_eq!(answer.keys().collect::<Vec<_>>(), ["b"]);
        assert!(cache.get("a").is_none(), "a kept copy goes");
        assert!(cache.get("b").is_some(), "what was found is kept");
        cache.keep(before_deletion, &[product("a", 1.0)]);
        assert!(cache.get("a").is_none(), "a read that asked before the absence is not kept");
    }

    #[test]
    fn an_unknown_change_forgets_everything() {
        let cache = enabled_cache(Duration::from_secs(60));
        let ticket = cache.ticket();
        cache.keep(ticket, &[product("a", 1.0)]);
        cache.all_changed();
        assert!(cache.get("a").is_none());
        cache.keep(ticket, &[product("a", 1.0)]);
        assert!(cache.get("a").is_none(), "a read from before is not kept either");
    }

    #[test]
    fn answers_expire_and_a_zero_ttl_keeps_nothing() {
        let cache = enabled_cache(Duration::from_millis(1));
        cache.keep(cache.ticket(), &[product("a", 1.0)]);
        std::thread::sleep(Duration::from_millis(5));
        assert!(cache.get("a").is_none());

        let off = enabled_cache(Duration::ZERO);
        off.keep(off.ticket(), &[product("a", 1.0)]);
        assert!(off.get("a").is_none());
        assert!(!off.take_used(), "a cache that is off never wakes the feed");
    }

    #[test]
    fn the_cache_stays_bounded() {
        let cache = enabled_cache(Duration::from_secs(60));
        let products: Vec<Arc<Product>> = (0..CAPACITY + 10).map(|i| product(&format!("p{i}"), 1.0)).collect();
        cache.keep(cache.ticket(), &products);
        assert!(cache.state().entries.len() <= CAPACITY);
        assert!(cache.get(&format!("p{}", CAPACITY + 9)).is_some(), "the newest answers are kept");
    }
}
