//! OpenTelemetry traces exported by the real binaries to a real OTLP receiver: one `createOrder`
//! is one trace, from the gateway through order-service, across Kafka to product-service, back
//! to order-service, and to the gateway's subscription feed.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use serde_json::json;
use test_support::{OtlpReceiver, ReceivedSpan, SystemProcesses};

use crate::{
    helpers::{GatewayClient as _, TestSystem},
    saga::{CREATE_ORDER, wait_until_decided, wait_until_live},
    ws::subscribe,
};

/// OTLP span kinds.
const SERVER: i32 = 2;
const CONSUMER: i32 = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_order_is_one_trace_across_every_service_and_every_kafka_hop() {
    let receiver = OtlpReceiver::start().await.expect("OTLP receiver");
    let tracing = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint()),
        // Export within a fraction of a second rather than the default five.
        ("OTEL_BSP_SCHEDULE_DELAY", "200".to_owned()),
    ];
    let processes = SystemProcesses::start_everywhere(test_support::DatabaseKind::Sqlite, &[], &[], &tracing, true)
        .await
        .expect("start the system");
    let mut system = TestSystem::from(processes);
    let admin = system.admin_token().await;
    let (user, token) = system.sign_up("traced@example.com").await;
    let lamp = system.product(&admin, "Lamp", 10.0, 5).await;
    // A subscriber keeps the gateway's feed reading, so the last hop is traced too.
    let mut stock = subscribe(
        &system.gateway.url(),
        None,
        "subscription($id: ID!) { productStockChanged(productId: $id) { stock reason } }",
        json!({ "id": lamp }),
    )
    .await;
    wait_until_live(&mut stock).await;

    let order = system
        .http
        .post(system.url("/graphql"))
        .bearer_auth(&token)
        .json(
            &json!({ "query": CREATE_ORDER, "variables": { "user": user, "p": lamp, "q": 1 }, "operationName": null }),
        )
        .send()
        .await
        .expect("POST /graphql")
        .json::<serde_json::Value>()
        .await
        .expect("JSON");
    let order = order["data"]["createOrder"]["id"].as_str().expect("id").to_owned();
    let decided = wait_until_decided(&system, &admin, &[order], Duration::from_secs(30)).await;
    assert!(decided.values().all(|status| status == "CONFIRMED"), "{decided:?}");

    // The trace of the createOrder operation, once every hop has arrived.
    let wanted: [(&str, i32, &str); 5] = [
        ("api-gateway", SERVER, "POST /graphql"),
        ("order-service", SERVER, "order.OrderService/CreateOrder"),
        ("product-service", CONSUMER, "order.created process"),
        ("order-service", CONSUMER, "product.reservation.result process"),
        ("api-gateway", CONSUMER, "order.status.changed process"),
    ];
    let deadline = Instant::now() + Duration::from_secs(20);
    let trace = loop {
        let spans = receiver.spans();
        let trace = spans.iter().find(|span| span.service == "api-gateway" && span.name == "mutation createOrder").map(
            |operation| spans.iter().filter(|span| span.trace_id == operation.trace_id).cloned().collect::<Vec<_>>(),
        );
        if let Some(trace) = &trace
            && wanted.iter().all(|hop| find(trace, *hop).is_some())
        {
            break trace.clone();
        }
        let summary: Vec<_> =
            trace.unwrap_or_default().iter().map(|span| format!("{} {:?}", span.service, span.name)).collect();
        assert!(Instant::now() < deadline, "the trace has not every hop: {summary:#?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };

    // One root (the gateway's request); every other span's parent is in the same trace.
    let by_id: HashMap<&str, &ReceivedSpan> = trace.iter().map(|span| (span.span_id.as_str(), span)).collect();
    let roots: Vec<_> = trace.iter().filter(|span| span.parent_span_id.is_empty()).collect();
    assert_eq!(roots.len(), 1, "one root: {roots:#?}");
    assert_eq!(roots[0].name, "POST /graphql");
    for span in &trace {
        assert!(
            span.parent_span_id.is_empty() || by_id.contains_key(span.parent_span_id.as_str()),
            "{span:#?}'s parent is not in the trace"
        );
    }
    // Each hop descends from the one before it.
    for pair in wanted.windows(2) {
        let (earlier, later) = (find(&trace, pair[0]).expect("hop"), find(&trace, pair[1]).expect("hop"));
        assert!(
            descends_from(later, earlier, &by_id),
            "{} {} does not descend from {} {}",
            later.service,
            later.name,
            earlier.service,
            earlier.name
        );
    }
    let call = find(&trace, wanted[1]).expect("the RPC");
    assert_eq!(call.attribute("rpc.grpc.status_code"), Some("0"), "{call:#?}");
    // A log line written while handling a hop names its trace and span (JSON logs).
    let decided_line = system
        .orders
        .process
        .as_mut()
        .expect("running")
        .wait_for_log("order decided", Duration::from_secs(5))
        .expect("the decision's log line");
    let trace_id = &trace[0].trace_id;
    let decision = find(&trace, wanted[3]).expect("the decision's hop");
    let ids = format!("\"openTelemetry\":{{\"spanId\":\"{}\",\"traceId\":\"{trace_id}\"}}", decision.span_id);
    assert!(decided_line.contains(&ids), "no {ids} in {decided_line}");
    // A nested read: the loaders' batched calls run on tasks of their own, in the same trace.
    let orders = "query($user: ID!) { userOrders(userId: $user, page: 1, limit: 10) { items { product { name } } user { name } } }";
    system.ok(orders, json!({ "user": user }), Some(&token)).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let spans = receiver.spans();
        let read = spans.iter().find(|span| span.name == "query userOrders");
        let batched: Vec<_> = read
            .map(|read| {
                spans
                    .iter()
                    .filter(|span| span.trace_id == read.trace_id && span.name.ends_with("ByIds"))
                    .map(|span| span.name.clone())
                    .collect()
            })
            .unwrap_or_default();
        let wanted = ["user-service/GetUsersByIds", "product-service/GetProductsByIds"];
        if wanted.iter().all(|call| batched.iter().any(|name| name == call)) {
            break;
        }
        assert!(Instant::now() < deadline, "the loaders' calls are not in the read's trace: {batched:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // The operation is named by type and field, never by its text or variables.
    let operation = trace.iter().find(|span| span.name == "mutation createOrder").expect("operation span");
    assert!(operation.attributes.iter().all(|(_, value)| !value.contains(&user)), "{operation:#?}");
}

/// The span of `service` with `kind` and `name` in `trace`.
fn find<'a>(trace: &'a [ReceivedSpan], (service, kind, name): (&str, i32, &str)) -> Option<&'a ReceivedSpan> {
    trace.iter().find(|span| span.service == service && span.kind == kind && span.name == name)
}

/// Whether `ancestor` is `span` or one of its ancestors.
fn descends_from(span: &ReceivedSpan, ancestor: &ReceivedSpan, by_id: &HashMap<&str, &ReceivedSpan>) -> bool {
    let mut current = Some(span);
    while let Some(span) = current {
        if span.span_id == ancestor.span_id {
            return true;
        }
        current = by_id.get(span.parent_span_id.as_str()).copied();
    }
    false
}
