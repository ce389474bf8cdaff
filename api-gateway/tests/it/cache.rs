//! The gateway's caches: a product or user read again is served without asking the backend,
//! and a change made anywhere is served as soon as its event reaches the gateway, never the old
//! entity after that, even for reads that raced the change.

use std::time::Duration;

use proto::{
    product::{DeleteProductRequest, UpdateProductRequest, product_service_client::ProductServiceClient},
    user::{UpdateUserRequest, user_service_client::UserServiceClient},
};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::{
    helpers::{GatewayClient, TestSystem, spawn_system_with_broker},
    saga::{CREATE_ORDER, STATISTICS_DELAY, UNLIMITED, wait_until_decided},
};

const PRODUCT: &str = "query($id: ID!) { product(id: $id) { price stock } }";
const USER: &str = "query($id: ID!) { user(id: $id) { name } }";

/// Readers that keep reading while a change is made, to catch an old answer put back.
const READERS: usize = 4;

/// How long a change may take to reach the gateway through the broker; far below the time to
/// live, so only the event can be what refreshed the product.
const EVENT_DEADLINE: Duration = Duration::from_secs(15);

/// How long the readers go on once the change was first served.
const READ_AFTER: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_price_or_stock_is_never_served_stale_after_its_event_arrived() {
    let system = spawn_system_with_broker(&settings()).await;
    let admin = system.admin_token().await;
    let (user, token) = system.sign_up("cached@example.com").await;
    let lamp = system.product(&admin, "Lamp", 10.0, 5).await;
    let read = || async { system.ok(PRODUCT, json!({ "id": lamp }), None).await["product"].clone() };
    wait_until_cached(&system, read).await;

    // A change made past this gateway (another gateway, an operator's tool): only
    // product.updated can tell the cache.
    let mut products = ProductServiceClient::connect(system.products.url.clone()).await.expect("connect");
    let change = UpdateProductRequest { id: lamp.clone(), price: Some(12.5), ..Default::default() };
    let new_price = |product: &Value| product["price"] == 12.5;
    let reads = read_while(read, new_price, READ_AFTER, async {
        products.update_product(change).await.expect("UpdateProduct");
    })
    .await;
    assert_fresh_after_first_seen(&reads, new_price, "the new price");
    wait_until_cached(&system, read).await;

    // Stock taken by the saga: product.stock.updated tells the cache.
    let reserved = |product: &Value| product["stock"] == 3;
    let reads = read_while(read, reserved, READ_AFTER, async {
        let order = system.ok(CREATE_ORDER, json!({ "user": user, "p": lamp, "q": 2 }), Some(&token)).await;
        let id = order["createOrder"]["id"].as_str().expect("id").to_owned();
        let decided = wait_until_decided(&system, &admin, std::slice::from_ref(&id), EVENT_DEADLINE).await;
        assert_eq!(decided[&id], "CONFIRMED");
    })
    .await;
    assert_fresh_after_first_seen(&reads, reserved, "the reserved stock");
    wait_until_cached(&system, read).await;

    // A change through this gateway is served at once, without waiting for its event.
    let set_price = "mutation($id: ID!) { updateProduct(id: $id, price: 20.0) { price } }";
    system.ok(set_price, json!({ "id": lamp }), Some(&admin)).await;
    assert_eq!(read().await["price"], 20.0, "this gateway's own change");

    // A deletion past this gateway: product.deleted.
    wait_until_cached(&system, read).await;
    let reads = read_while(read, Value::is_null, READ_AFTER, async {
        products.delete_product(DeleteProductRequest { id: lamp.clone() }).await.expect("DeleteProduct");
    })
    .await;
    assert_fresh_after_first_seen(&reads, Value::is_null, "the deletion");
}

/// Rounds of [`a_deletion_served_once_is_served_to_every_later_request`]: the race it looks for
/// (an update's event dropping the entry just as the deletion commits) needs some luck to meet.
const DELETION_ROUNDS: u64 = 12;

/// How long its readers go on once the deletion was first served.
const READ_AFTER_DELETION: Duration = Duration::from_millis(400);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deletion_served_once_is_served_to_every_later_request() {
    let system = spawn_system_with_broker(&settings()).await;
    let admin = system.admin_token().await;
    let mut products = ProductServiceClient::connect(system.products.url.clone()).await.expect("connect");
    let set_price = "mutation($id: ID!) { updateProduct(id: $id, price: 20.0) { price } }";
    for round in 0..DELETION_ROUNDS {
        let lamp = system.product(&admin, &format!("Lamp {round}"), 10.0, 5).await;
        let read = || async { system.ok(PRODUCT, json!({ "id": lamp }), None).await["product"].clone() };
        // The update's event is still on its way when the deletion commits, at a different
        // moment each round: when it drops the entry, readers ask product-service, some just
        // before the deletion and some just after. Before the deletion's own event arrives,
        // an answer from before must not be kept once another request was told "gone".
        system.ok(set_price, json!({ "id": lamp }), Some(&admin)).await;
        wait_until_cached(&system, read).await;
        let delay = Duration::from_millis(round * 37 % 400);
        let reads = read_while(read, Value::is_null, READ_AFTER_DELETION, async {
            tokio::time::sleep(delay).await;
            products.delete_product(DeleteProductRequest { id: lamp.clone() }).await.expect("DeleteProduct");
        })
        .await;
        assert_fresh_after_first_seen(&reads, Value::is_null, &format!("the deletion in round {round}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_user_is_never_served_stale_after_its_event_arrived() {
    let system = spawn_system_with_broker(&settings()).await;
    let (user, token) = system.sign_up("renamed@example.com").await;
    let read = || async { system.ok(USER, json!({ "id": user }), Some(&token)).await["user"].clone() };
    wait_until_cached(&system, read).await;

    let mut users = UserServiceClient::connect(system.users.url.clone()).await.expect("connect");
    let change = UpdateUserRequest { id: user.clone(), name: Some("Renamed".to_owned()), email: None };
    let renamed = |user: &Value| user["name"] == "Renamed";
    let reads = read_while(read, renamed, READ_AFTER, async {
        users.update_user(change).await.expect("UpdateUser");
    })
    .await;
    assert_fresh_after_first_seen(&reads, renamed, "the new name");

    // Who may see a user is checked on every request, cached or not.
    wait_until_cached(&system, read).await;
    let (_, stranger) = system.sign_up("stranger@example.com").await;
    let (code, _) = system.error_code(USER, json!({ "id": user }), Some(&stranger)).await;
    assert_eq!(code, "FORBIDDEN");
}

/// Cached reads start the caches' own consumer, not the subscriptions': it reads the broker
/// while entities are read and stops once reads stopped for the idle time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_reads_make_only_the_caches_feed_read_the_broker_and_only_while_they_last() {
    let system = spawn_system_with_broker(&[("SUBSCRIPTION_FEED_IDLE_MS", "300")]).await;
    let admin = system.admin_token().await;
    let lamp = system.product(&admin, "Lamp", 10.0, 5).await;
    tokio::time::sleep(STATISTICS_DELAY).await;
    assert_eq!(system.cache_feed_fetches().await, 0, "the caches' feed fetched before any read");

    let read = || async { system.ok(PRODUCT, json!({ "id": lamp }), None).await["product"].clone() };
    wait_until_cached(&system, read).await;
    // Reading on for a while: the feed fetches at its own pace meanwhile.
    let until = Instant::now() + STATISTICS_DELAY;
    while Instant::now() < until {
        read().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(STATISTICS_DELAY * 2).await;
    let before = system.cache_feed_fetches().await;
    assert!(before > 0, "the caches' feed never fetched");
    assert_eq!(system.feed_fetches().await, 0, "reads started the subscriptions' feed");
    tokio::time::sleep(STATISTICS_DELAY * 2).await;
    let after = system.cache_feed_fetches().await;
    assert!(after <= before + 1, "the caches' feed went on fetching with no reads ({before} -> {after})");
}

/// No rate limit (the readers go as fast as they can), and a time to live far past the test:
/// only events (and the gateway's own changes) can refresh an entry.
fn settings() -> Vec<(&'static str, &'static str)> {
    UNLIMITED.into_iter().chain([("CACHE_TTL_MS", "600000")]).collect()
}

/// Reads until a read costs no backend call: it is served from the cache.
async fn wait_until_cached<F: Future<Output = Value>>(system: &TestSystem, read: impl Fn() -> F) {
    let deadline = Instant::now() + EVENT_DEADLINE;
    loop {
        let before = system.backend_calls().await;
        read().await;
        if system.backend_calls().await == before {
            return;
        }
        assert!(Instant::now() < deadline, "never served from the cache");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One read: when it started and ended, and what it got.
struct Read {
    started: Instant,
    ended: Instant,
    entity: Value,
}

/// Runs `change` with readers calling `read` all along, and on until the change (`is_new`)
/// has been served for `read_after`, or for at most [`EVENT_DEADLINE`].
async fn read_while<F: Future<Output = Value>>(
    read: impl Fn() -> F,
    is_new: impl Fn(&Value) -> bool,
    read_after: Duration,
    change: impl Future<Output = ()>,
) -> Vec<Read> {
    let stop = tokio_util::sync::CancellationToken::new();
    let first_seen = std::sync::Mutex::new(None::<Instant>);
    let readers = (0..READERS).map(|_| async {
        let mut reads = Vec::new();
        while !stop.is_cancelled() {
            let started = Instant::now();
            let entity = read().await;
            let ended = Instant::now();
            if is_new(&entity) {
                first_seen.lock().expect("lock").get_or_insert(ended);
            }
            reads.push(Read { started, ended, entity });
        }
        reads
    });
    let changing = async {
        change.await;
        let deadline = Instant::now() + EVENT_DEADLINE;
        while Instant::now() < deadline
            && first_seen.lock().expect("lock").is_none_or(|seen| seen.elapsed() < read_after)
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        stop.cancel();
    };
    let (all, ()) = tokio::join!(futures::future::join_all(readers), changing);
    all.into_iter().flatten().collect()
}

/// Some read saw the change (`is_new`), within the deadline; every read that started after the
/// first such read ended saw it too.
fn assert_fresh_after_first_seen(reads: &[Read], is_new: impl Fn(&Value) -> bool, what: &str) {
    let first_seen = reads
        .iter()
        .filter(|read| is_new(&read.entity))
        .map(|read| read.ended)
        .min()
        .unwrap_or_else(|| panic!("{what} was never served in {} reads", reads.len()));
    let stale: Vec<&Value> =
        reads.iter().filter(|read| read.started > first_seen && !is_new(&read.entity)).map(|r| &r.entity).collect();
    let after = reads.iter().filter(|read| read.started > first_seen).count();
    assert!(after > 0, "no read after {what} was first served");
    assert!(
        stale.is_empty(),
        "{} of {after} reads after {what} was first served got the old entity: {stale:?}",
        stale.len()
    );
}
