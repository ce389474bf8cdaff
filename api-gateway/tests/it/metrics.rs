//! Every process's Prometheus metrics, scraped around one order: the RPC, event and saga series
//! move by exactly what the order did.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::{
    helpers::{GatewayClient as _, TestSystem, spawn_system_with_broker},
    saga::{CREATE_ORDER, wait_until_decided},
};

/// The processes whose metrics a test reads.
#[derive(Debug, Clone, Copy)]
enum Process {
    Gateway,
    Users,
    Products,
    Orders,
}

/// One series: a metric name and the labels it must carry (others may be present too).
#[derive(Debug, Clone, Copy)]
struct Series {
    process: Process,
    name: &'static str,
    labels: &'static [(&'static str, &'static str)],
}

const fn series(process: Process, name: &'static str, labels: &'static [(&'static str, &'static str)]) -> Series {
    Series { process, name, labels }
}

/// What one confirmed order must add to each series.
const ONE_ORDER: &[(Series, f64)] = &[
    (
        series(
            Process::Gateway,
            "graphql_operations_total",
            &[("type", "mutation"), ("field", "createOrder"), ("outcome", "ok")],
        ),
        1.0,
    ),
    (
        series(
            Process::Gateway,
            "graphql_operation_duration_seconds_count",
            &[("type", "mutation"), ("field", "createOrder")],
        ),
        1.0,
    ),
    (
        series(
            Process::Orders,
            "grpc_server_handled_total",
            &[("grpc_service", "order.OrderService"), ("grpc_method", "CreateOrder"), ("grpc_code", "OK")],
        ),
        1.0,
    ),
    (
        series(
            Process::Orders,
            "grpc_server_handling_seconds_count",
            &[("grpc_service", "order.OrderService"), ("grpc_method", "CreateOrder")],
        ),
        1.0,
    ),
    (series(Process::Orders, "events_published_total", &[("topic", "order.created")]), 1.0),
    (series(Process::Orders, "events_published_total", &[("topic", "order.status.changed")]), 1.0),
    (
        series(
            Process::Orders,
            "events_consumed_total",
            &[("topic", "product.reservation.result"), ("outcome", "applied")],
        ),
        1.0,
    ),
    (series(Process::Orders, "saga_orders_settled_total", &[("status", "CONFIRMED"), ("reason", "none")]), 1.0),
    (series(Process::Orders, "saga_settle_seconds_count", &[("status", "CONFIRMED")]), 1.0),
    (series(Process::Products, "events_consumed_total", &[("topic", "order.created"), ("outcome", "applied")]), 1.0),
    (
        series(
            Process::Products,
            "events_consumed_total",
            &[("topic", "order.status.changed"), ("outcome", "applied")],
        ),
        1.0,
    ),
    (series(Process::Products, "events_published_total", &[("topic", "product.reservation.result")]), 1.0),
    (series(Process::Products, "events_published_total", &[("topic", "product.stock.updated")]), 1.0),
];

impl TestSystem {
    fn metrics_url(&self, process: Process) -> String {
        let backend = match process {
            Process::Gateway => return self.url("/metrics"),
            Process::Users => &self.users,
            Process::Products => &self.products,
            Process::Orders => &self.orders,
        };
        backend.process.as_ref().expect("running").metrics_url().expect("started with METRICS_ADDR")
    }

    async fn scrape(&self, process: Process) -> String {
        let response = self.http.get(self.metrics_url(process)).send().await.expect("GET /metrics");
        response.text().await.expect("text")
    }

    /// The sum of the lines of `series` in its process's metrics now.
    async fn value(&self, series: Series) -> f64 {
        value_in(&self.scrape(series.process).await, series)
    }
}

/// The sum of the lines of `series` in a Prometheus text exposition.
fn value_in(text: &str, series: Series) -> f64 {
    text.lines()
        .filter(|line| {
            line.strip_prefix(series.name).is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
                && series.labels.iter().all(|(key, value)| line.contains(&format!("{key}=\"{value}\"")))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_order_moves_the_rpc_event_and_saga_series_by_one() {
    let system = spawn_system_with_broker(&[]).await;
    let admin = system.admin_token().await;
    let (user, token) = system.sign_up("measured@example.com").await;
    let lamp = system.product(&admin, "Lamp", 10.0, 5).await;
    // A first order settles while the consumers join their groups; the one measured comes after.
    let first = system.ok(CREATE_ORDER, json!({ "user": user, "p": lamp, "q": 1 }), Some(&token)).await;
    let first = first["createOrder"]["id"].as_str().expect("id").to_owned();
    wait_until_decided(&system, &admin, &[first], Duration::from_secs(30)).await;
    // Its events (the status change, the stock update) are published and consumed by now.
    wait_until_quiet(&system).await;

    let mut before = Vec::new();
    for (series, _) in ONE_ORDER {
        before.push(system.value(*series).await);
    }
    let order = system.ok(CREATE_ORDER, json!({ "user": user, "p": lamp, "q": 1 }), Some(&token)).await;
    let order = order["createOrder"]["id"].as_str().expect("id").to_owned();
    let decided = wait_until_decided(&system, &admin, &[order], Duration::from_secs(30)).await;
    assert!(decided.values().all(|status| status == "CONFIRMED"), "{decided:?}");

    // The last events of the saga are published and consumed a moment after the decision.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let mut moved = Vec::new();
        for ((series, _), before) in ONE_ORDER.iter().zip(&before) {
            moved.push(system.value(*series).await - before);
        }
        let expected: Vec<f64> = ONE_ORDER.iter().map(|(_, by)| *by).collect();
        if moved == expected {
            break;
        }
        let report: Vec<_> = ONE_ORDER
            .iter()
            .zip(&moved)
            .filter(|((_, by), moved)| by != *moved)
            .map(|((series, by), moved)| {
                format!("{:?} {} {:?}: moved {moved}, expected {by}", series.process, series.name, series.labels)
            })
            .collect();
        assert!(Instant::now() < deadline, "{}", report.join("\n"));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Every metric the shipped dashboard queries is one the processes export. Some are sampled
    // (consumer lag comes with librdkafka's statistics, once a second, once a consumer has
    // positions), so they may appear a few seconds after the order.
    let queried = dashboard_metrics();
    assert!(queried.len() >= 10, "the dashboard queries {queried:?}");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let mut exported = String::new();
        for process in [Process::Gateway, Process::Users, Process::Products, Process::Orders] {
            exported.push_str(&system.scrape(process).await);
        }
        let missing: Vec<_> = queried
            .iter()
            .filter(|name| {
                !exported
                    .lines()
                    .any(|line| line.starts_with(&format!("{name}{{")) || line.starts_with(&format!("{name} ")))
            })
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "the dashboard queries metrics no process exports: {missing:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // The gauges, sampled every few seconds, exist on every service: the outbox drains, the
    // pool is sampled.
    for process in [Process::Users, Process::Products, Process::Orders] {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let text = system.scrape(process).await;
            let unsent = text.lines().find(|line| line.starts_with("outbox_unsent_events "));
            if unsent == Some("outbox_unsent_events 0") {
                assert!(text.contains("db_pool_connections{state=\"idle\"}"), "{process:?}: {text}");
                break;
            }
            assert!(Instant::now() < deadline, "{process:?}: outbox never drained: {unsent:?}");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// The metric names the shipped Grafana dashboard queries: every name written right before a
/// label matcher or a range (`name{…}`, `name[…]`), as the dashboard writes each one.
fn dashboard_metrics() -> std::collections::BTreeSet<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../observability/grafana/dashboards/system.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("the dashboard")).expect("JSON");
    let mut names = std::collections::BTreeSet::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().expect("expr");
            let mut word = String::new();
            for character in expr.chars() {
                if character.is_ascii_alphanumeric() || character == '_' || character == ':' {
                    word.push(character);
                    continue;
                }
                if matches!(character, '{' | '[') && !word.is_empty() {
                    names.insert(std::mem::take(&mut word));
                }
                word.clear();
            }
        }
    }
    names
}

/// Waits until the first order's events have all been published and consumed: the published
/// and consumed counts stop moving.
async fn wait_until_quiet(system: &TestSystem) {
    let mut last = Vec::new();
    for _ in 0..50 {
        let mut now = Vec::new();
        for (series, _) in ONE_ORDER {
            now.push(system.value(*series).await);
        }
        if now == last {
            return;
        }
        last = now;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
