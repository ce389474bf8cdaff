//! Every service at two replicas on PostgreSQL, behind two gateways whose clients spread calls
//! over both replicas: the saga sells exactly the stock, each event is published once, a
//! subscriber sees each change once, and losing one replica of each service mid-run loses and
//! strands nothing.

use std::{
    collections::{BTreeMap, HashSet},
    time::{Duration, Instant},
};

use serde_json::json;
use test_support::ScaledSystem;

use crate::{
    helpers::{Gateway, GatewayClient},
    saga::{CREATE_ORDER, UNLIMITED, assert_stock_settles, count, statuses, stock, wait_until_live},
    topics::{message_count, read_until},
    ws::subscribe,
};

const STOCK_CHANGES: &str =
    "subscription($id: ID!) { productStockChanged(productId: $id) { stock delta reason orderId } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_of_everything_sell_exactly_the_stock_and_survive_losing_one_of_each() {
    // The 200 orders below come at once on purpose: order-service's bound on orders in flight
    // would refuse most of them, and the race for the stock across replicas is under test.
    let no_admission_bound = [("MAX_ORDERS_IN_FLIGHT", "0")];
    let mut system = ScaledSystem::start(2, 2, &UNLIMITED, &no_admission_bound).await.expect("start two of everything");
    let gateways: Vec<Gateway> = system
        .gateways
        .iter()
        .map(|gateway| Gateway { http: reqwest::Client::new(), base_url: gateway.url() })
        .collect();
    let (front, back) = (&gateways[0], &gateways[1]);
    let admin = front.admin_token().await;
    let (user, token) = back.sign_up("replicas@example.com").await;
    let pass = front.product(&admin, "Festival pass", 120.0, 50).await;

    // A subscriber on the other gateway follows the pass's stock from before the first order.
    let mut stock_events = subscribe(&back.base_url, None, STOCK_CHANGES, json!({ "id": pass })).await;
    assert_eq!(wait_until_live(&mut stock_events).await, 50);

    // Reads through both gateways, so that every replica of every service has served calls.
    for gateway in &gateways {
        for _ in 0..10 {
            gateway.ok("query($id: ID!) { user(id: $id) { id } }", json!({ "id": user }), Some(&token)).await;
            // A list: product(id) may be served from the gateway's cache.
            gateway.ok("{ products(limit: 1) { id } }", json!({}), None).await;
            gateway.ok("{ ordersPage(limit: 1) { total } }", json!({}), Some(&admin)).await;
        }
    }
    for (service, replicas) in [("user", &system.users), ("product", &system.products), ("order", &system.orders)] {
        for (index, replica) in replicas.iter().enumerate() {
            let process = replica.process.as_ref().expect("running");
            let served = calls_served(&front.http, &process.metrics_url().expect("metrics")).await;
            assert!(served > 0, "{service}-service replica {index} served no call");
        }
    }

    // 200 orders at once, half through each gateway, for 50 passes; once reservations are under
    // way, one replica of each service dies (SIGKILL: no shutdown code runs).
    let attempts = (0..200).map(|attempt| {
        gateways[attempt % 2].graphql(CREATE_ORDER, json!({ "user": user, "p": pass, "q": 1 }), Some(&token))
    });
    let kill_one_of_each = async {
        let deadline = Instant::now() + Duration::from_secs(60);
        while stock(front, &pass).await == 50 {
            assert!(Instant::now() < deadline, "no reservation started");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        system.users[1].kill();
        system.products[1].kill();
        system.orders[1].kill();
        // A call sent into a connection the dead replica just dropped fails (it may have been
        // applied, so it is not sent again); the clients learn within moments.
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    let (answers, ()) = tokio::join!(futures::future::join_all(attempts), kill_one_of_each);
    let mut answered: BTreeMap<String, usize> = BTreeMap::new();
    for answer in &answers {
        let outcome = match answer["data"]["createOrder"]["id"].as_str() {
            Some(_) => "accepted".to_owned(),
            // Out of stock up front, or in flight to a replica as it died.
            None => answer["errors"][0]["extensions"]["code"].as_str().unwrap_or("no code").to_owned(),
        };
        *answered.entry(outcome).or_default() += 1;
    }
    eprintln!("answers to the 200 orders: {answered:?}");
    assert!(
        answered.keys().all(|outcome| ["accepted", "FAILED_PRECONDITION", "UNAVAILABLE"].contains(&outcome.as_str())),
        "{answered:?}"
    );

    // Every order stored (including one whose answer was lost with its replica) is decided by
    // the survivors: exactly the stock is sold. The partitions the dead replicas read pass to
    // the survivors once the broker has dropped them (45 s without a heartbeat) or, on the
    // embedded broker, which keeps them assigned to the dead, once the survivors see them
    // unread for a minute (`events::orphans`).
    let deadline = Instant::now() + Duration::from_secs(150);
    let orders = loop {
        let orders = statuses(back, &admin).await;
        if orders.values().all(|(status, _)| status != "PENDING") {
            break orders;
        }
        let pending = orders.values().filter(|(status, _)| status == "PENDING").count();
        assert!(Instant::now() < deadline, "{pending} of {} orders still pending", orders.len());
        eprintln!("{pending} of {} orders pending", orders.len());
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    let statuses: Vec<String> = orders.into_values().map(|(status, _)| status).collect();
    eprintln!("{} orders stored, {} confirmed", statuses.len(), count(&statuses, "CONFIRMED"));
    assert_eq!(count(&statuses, "CONFIRMED"), 50, "exactly the stock is sold");
    assert_eq!(count(&statuses, "CANCELLED"), statuses.len() - 50);
    for gateway in &gateways {
        assert_stock_settles(gateway, &pass, 0, "sold out").await;
    }

    // The subscriber saw each reservation once: 50 changes, every level from 49 down to 0.
    let mut levels = Vec::new();
    while let Some(event) = stock_events.next(Duration::from_secs(if levels.len() < 50 { 30 } else { 3 })).await {
        let change = &event["data"]["productStockChanged"];
        // A late echo of the edits that showed the subscription live.
        if change["reason"] == "set" {
            continue;
        }
        assert_eq!(change["reason"], "reserved", "{event}");
        levels.push(change["stock"].as_i64().expect("stock"));
    }
    levels.sort_unstable();
    assert_eq!(levels, (0..50).collect::<Vec<_>>(), "each stock change exactly once");

    assert_each_event_published_once(&system).await;
}

/// The gRPC calls a replica has served, other than health checks, from its own metrics.
async fn calls_served(http: &reqwest::Client, metrics_url: &str) -> u64 {
    let text = http.get(metrics_url).send().await.expect("metrics").text().await.expect("text");
    text.lines()
        .filter(|line| line.starts_with("grpc_server_handled_total{") && !line.contains("grpc.health"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// Once every outbox is empty, each topic holds every event written to the outboxes feeding it,
/// and copies only of the batch a killed relay had published but not yet marked sent (its
/// survivor publishes that batch again; consumers skip copies by event id): the replicas' relays
/// did not both publish the same rows.
async fn assert_each_event_published_once(system: &ScaledSystem) {
    let mut written: BTreeMap<String, i64> = BTreeMap::new();
    for database in &system.databases {
        let deadline = Instant::now() + Duration::from_secs(30);
        let outbox = loop {
            let outbox = database.outbox().await.expect("outbox");
            if outbox.values().all(|topic| topic.unsent == 0) {
                break outbox;
            }
            assert!(Instant::now() < deadline, "events left unsent: {outbox:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        for (topic, counts) in outbox {
            *written.entry(topic).or_default() += counts.events;
        }
    }
    assert!(written.contains_key("order.status.changed"), "{written:?}");
    for (topic, events) in written {
        let on_topic = message_count(&system.bootstrap(), &topic).await;
        assert!(
            (events..=events + events::outbox::BATCH).contains(&on_topic),
            "{topic}: {events} events written, {on_topic} messages published"
        );
        let expected = usize::try_from(events).expect("count");
        let distinct = |records: &[crate::topics::Record]| -> usize {
            records.iter().filter_map(|record| record.payload["id"].as_str()).collect::<HashSet<_>>().len()
        };
        let records = read_until(&system.bootstrap(), &topic, Duration::from_secs(30), move |records| {
            distinct(records) >= expected
        })
        .await;
        assert_eq!(distinct(&records), expected, "{topic}: every event written is on the topic");
    }
}
