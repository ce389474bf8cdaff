//! Depth, complexity, alias, root-field, body-size and rate limits.

use std::time::Duration;

use serde_json::json;

use crate::{
    helpers::{GatewayClient as _, spawn_system, spawn_system_with, spawn_system_with_broker},
    saga::wait_until_live,
    ws::{self, subscribe},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_deep_too_complex_and_too_large_requests_are_refused() {
    let system = spawn_system().await;
    let deep = format!("{{ __schema {{ types {{ {}name{} }} }} }}", "ofType { ".repeat(20), " }".repeat(20));
    let body = system.graphql(&deep, json!({}), None).await;
    let error = &body["errors"][0];
    assert_eq!(
        (&error["extensions"]["code"], &error["extensions"]["limit"]),
        (&json!("LIMIT_EXCEEDED"), &json!("MAX_QUERY_DEPTH")),
        "{body}"
    );
    assert!(error["message"].as_str().unwrap_or_default().contains("deeper than 15 levels"), "{body}");

    let admin = system.admin_token().await;
    let wide: String = (0..25).map(|n| format!("p{n}: products(limit: 100) {{ id name description }} ")).collect();
    let body = system.graphql(&format!("{{ {wide} }}"), json!({}), Some(&admin)).await;
    assert_eq!(body["errors"][0]["extensions"]["limit"], "MAX_QUERY_COMPLEXITY", "{body}");
    assert!(body["errors"][0]["message"].as_str().unwrap_or_default().contains("complexity is over 5000"), "{body}");

    let huge = format!("{{ products {{ id }} }} # {}", "x".repeat(100 * 1024));
    let response = system.http.post(system.url("/graphql")).json(&json!({ "query": huge })).send().await.expect("post");
    assert_eq!(response.status(), reqwest::StatusCode::PAYLOAD_TOO_LARGE);
}

/// A field that calls a backend costs 10 beside its children, one resolved through the
/// request's batching loader 2 (`product(id)`, `user(id)`, nested ones): the complexity limit
/// bounds the backend work, not the field count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complexity_charges_each_backend_call() {
    let system = spawn_system_with(&[("MAX_QUERY_COMPLEXITY", "12")]).await;
    let admin = system.admin_token().await;
    let lamp = system.product(&admin, "Lamp", 10.0, 5).await;
    // `me` is a call of its own: 10, and 1 per scalar field.
    let within = system.ok("{ me { id name } }", json!({}), Some(&admin)).await;
    assert!(within["me"]["id"].is_string(), "{within}");
    let body = system.graphql("{ me { id name email } }", json!({}), Some(&admin)).await;
    assert_eq!(body["errors"][0]["extensions"]["limit"], "MAX_QUERY_COMPLEXITY", "{body}");
    assert!(body["errors"][0]["message"].as_str().unwrap_or_default().contains("complexity is over 12"), "{body}");
    // `product(id)` joins the request's batch: 2 and 1, so four of them fit where five do not.
    let batched = |count: usize| -> String {
        let fields: String = (0..count).map(|n| format!("p{n}: product(id: \"{lamp}\") {{ id }} ")).collect();
        format!("{{ {fields} }}")
    };
    let within = system.ok(&batched(4), json!({}), None).await;
    assert_eq!(within["p3"]["id"], lamp.as_str());
    let body = system.graphql(&batched(5), json!({}), None).await;
    assert_eq!(body["errors"][0]["extensions"]["limit"], "MAX_QUERY_COMPLEXITY", "{body}");
}

/// Aliases let one request ask a by-id field hundreds of times. Past `MAX_ALIASES` (30) the
/// request is refused before any backend call, naming the limit; within a raised limit, 500
/// aliases of one product are one backend call (the request's loader asks each id once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aliases_and_root_fields_past_their_limits_are_refused_and_aliases_of_one_id_are_one_call() {
    let aliases_of = |id: &str, count: usize| -> String {
        let fields: String = (0..count).map(|n| format!("p{n}: product(id: \"{id}\") {{ id }} ")).collect();
        format!("{{ {fields} }}")
    };
    let system = spawn_system().await;
    let admin = system.admin_token().await;
    let lamp = system.product(&admin, "Lamp", 10.0, 5).await;
    let before = system.backend_calls().await;
    let refused = r#"graphql_operations_total{type="invalid",field="none",outcome="error"}"#;
    let refused_before = system.metric_sum(refused).await;
    let body = system.graphql(&aliases_of(&lamp, 500), json!({}), None).await;
    let error = &body["errors"][0];
    assert_eq!(error["extensions"]["code"], "LIMIT_EXCEEDED", "{body}");
    assert_eq!(error["extensions"]["limit"], "MAX_ALIASES", "{body}");
    assert!(error["message"].as_str().unwrap_or_default().contains("500 aliases; at most 30"), "{body}");
    assert_eq!(system.backend_calls().await, before, "refused before any backend call");
    assert_eq!(system.metric_sum(refused).await, refused_before + 1, "counted as a refused operation");
    let within = system.ok(&aliases_of(&lamp, 30), json!({}), None).await;
    assert_eq!(within["p29"]["id"], lamp.as_str());

    // With aliases allowed, root fields still have their own bound (`MAX_ROOT_FIELDS`, 30).
    let system = spawn_system_with(&[("MAX_ALIASES", "1000")]).await;
    let body = system.graphql(&aliases_of(&lamp, 31), json!({}), None).await;
    assert_eq!(body["errors"][0]["extensions"]["limit"], "MAX_ROOT_FIELDS", "{body}");

    // Over WebSocket too.
    let mut over_ws = subscribe(&system.gateway.url(), None, &aliases_of(&lamp, 31), json!({})).await;
    let answer = over_ws.next(Duration::from_secs(5)).await.expect("an answer");
    assert_eq!(answer["errors"][0]["extensions"]["limit"], "MAX_ROOT_FIELDS", "{answer}");

    let system = spawn_system_with(&[("MAX_ALIASES", "1000"), ("MAX_ROOT_FIELDS", "1000")]).await;
    let admin = system.admin_token().await;
    let lamp = system.product(&admin, "Lamp", 10.0, 5).await;
    let before = system.backend_calls().await;
    let data = system.ok(&aliases_of(&lamp, 500), json!({}), None).await;
    assert_eq!(data["p499"]["id"], lamp.as_str());
    assert_eq!(system.backend_calls().await - before, 1, "500 aliases of one id, one GetProductsByIds");
}

/// A WebSocket message past `MAX_BODY_BYTES` ends its connection at once (tungstenite's own
/// limit is 64 MiB), as a body past it gets 413; one within it is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_message_past_the_body_limit_closes_its_connection() {
    use futures::{SinkExt as _, StreamExt as _};
    use tokio_tungstenite::tungstenite::Message;

    let system = spawn_system_with(&[("MAX_BODY_BYTES", "4096")]).await;
    let init = |padding: usize| {
        let message = json!({ "type": "connection_init", "payload": { "padding": "x".repeat(padding) } });
        Message::Text(message.to_string().into())
    };

    let mut socket = ws::connect(&system.gateway.url()).await;
    socket.send(init(8 * 1024)).await.expect("send");
    let answer = tokio::time::timeout(Duration::from_secs(5), socket.next()).await.expect("the gateway acts at once");
    assert!(
        matches!(answer, None | Some(Err(_) | Ok(Message::Close(_)))),
        "an 8 KiB message past a 4 KiB limit was read: {answer:?}"
    );

    let mut socket = ws::connect(&system.gateway.url()).await;
    socket.send(init(1024)).await.expect("send");
    let ack = ws::next_json(&mut socket, Duration::from_secs(5)).await.expect("an answer within the limit");
    assert_eq!(ack["type"], "connection_ack", "{ack}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_limiter_answers_429_with_retry_after() {
    let system = spawn_system_with(&[("RATE_LIMIT_PER_SECOND", "1"), ("RATE_LIMIT_BURST", "3")]).await;
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..6 {
        let response = system
            .http
            .post(system.url("/graphql"))
            .json(&json!({ "query": "{ products { id } }" }))
            .send()
            .await
            .expect("post");
        if response.status() == reqwest::StatusCode::TOO_MANY_REQUESTS {
            retry_after =
                response.headers().get("retry-after").and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
            let body: serde_json::Value = response.json().await.expect("json");
            assert_eq!(body["errors"][0]["extensions"]["code"], "RATE_LIMITED");
            statuses.push(429);
        } else {
            statuses.push(response.status().as_u16());
        }
    }
    assert_eq!(&statuses[..3], &[200, 200, 200], "the burst is allowed: {statuses:?}");
    assert!(statuses[3..].contains(&429), "then the limit applies: {statuses:?}");
    assert!(retry_after.is_some_and(|seconds| seconds >= 1), "Retry-After: {retry_after:?}");

    // Health checks are never limited; after the advertised wait, GraphQL works again.
    let health = system.http.get(system.url("/health")).send().await.expect("health");
    assert_eq!(health.status(), reqwest::StatusCode::OK);
    tokio::time::sleep(Duration::from_secs(retry_after.unwrap_or(1))).await;
    let body = system.graphql("{ products { id } }", json!({}), None).await;
    assert!(body.get("errors").is_none(), "{body}");
}

/// The status of one `{ __typename }` request sent with `headers`.
async fn status_with(system: &crate::helpers::TestSystem, headers: &[(&str, &str)]) -> u16 {
    let mut request = system.http.post(system.url("/graphql")).json(&json!({ "query": "{ __typename }" }));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("post").status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_each_client_has_its_bucket_and_forged_headers_are_ignored() {
    let limits = [("RATE_LIMIT_PER_SECOND", "1"), ("RATE_LIMIT_BURST", "2")];
    // The test connects from 127.0.0.1: here that is a trusted proxy.
    let behind_proxy = spawn_system_with(&[limits[0], limits[1], ("TRUSTED_PROXIES", "127.0.0.1/32,10.0.0.0/8")]).await;
    let first = [("x-forwarded-for", "203.0.113.1")];
    let statuses = [
        status_with(&behind_proxy, &first).await,
        status_with(&behind_proxy, &first).await,
        status_with(&behind_proxy, &first).await,
    ];
    assert_eq!(statuses, [200, 200, 429], "the first client's bucket");
    assert_eq!(status_with(&behind_proxy, &[("x-forwarded-for", "203.0.113.2")]).await, 200, "a second client");
    assert_eq!(status_with(&behind_proxy, &[("forwarded", "for=203.0.113.3")]).await, 200, "a third, by Forwarded");
    // A client naming someone else before its own address does not escape its bucket.
    let spoofed = [("x-forwarded-for", "198.51.100.77, 203.0.113.1")];
    assert_eq!(status_with(&behind_proxy, &spoofed).await, 429, "the first client again");

    // Without trusted proxies, a forged header changes nothing: the peer is the client.
    let direct = spawn_system_with(&limits).await;
    let mut statuses = Vec::new();
    for n in 0..3 {
        let forged = format!("198.51.100.{n}");
        statuses.push(status_with(&direct, &[("x-forwarded-for", forged.as_str())]).await);
    }
    assert_eq!(statuses, [200, 200, 429], "forged X-Forwarded-For from an untrusted peer");
}

/// Open subscriptions are capped per client address: one past the cap is refused at once,
/// naming the setting, and one that ends (its connection closed) frees its slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_past_a_clients_cap_are_refused_and_a_closed_one_frees_its_slot() {
    let system = spawn_system_with_broker(&[("MAX_SUBSCRIPTIONS_PER_CLIENT", "2")]).await;
    let admin = system.admin_token().await;
    let lamp = system.product(&admin, "Lamp", 10.0, 5).await;
    let query = "subscription($id: ID!) { productStockChanged(productId: $id) { stock reason } }";
    let url = system.gateway.url();
    let follow = || subscribe(&url, None, query, json!({ "id": lamp }));

    let mut first = follow().await;
    wait_until_live(&mut first).await;
    let mut second = follow().await;
    wait_until_live(&mut second).await;
    let refused = follow().await.next(Duration::from_secs(5)).await.expect("an answer to the third subscription");
    assert_eq!(refused["errors"][0]["extensions"]["code"], "TOO_MANY_SUBSCRIPTIONS", "{refused}");
    let message = refused["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("MAX_SUBSCRIPTIONS_PER_CLIENT"), "{refused}");

    // Closing a connection ends its subscription; once the gateway has noticed, its slot is free.
    drop(first);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut again = follow().await;
        let answer = again.next(Duration::from_secs(10)).await.expect("an answer to the subscription");
        if answer["errors"].is_null() {
            assert_eq!(answer["data"]["productStockChanged"]["reason"], "current", "{answer}");
            break;
        }
        assert_eq!(answer["errors"][0]["extensions"]["code"], "TOO_MANY_SUBSCRIPTIONS", "{answer}");
        assert!(std::time::Instant::now() < deadline, "the closed subscription's slot was never freed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_requests_in_flight_the_gateway_answers_503_with_retry_after_and_recovers() {
    let system = spawn_system_with(&[("MAX_REQUESTS_IN_FLIGHT", "2")]).await;
    // Logins hash a password (tens of milliseconds each), so ten sent at once overlap.
    let login = "mutation($email: String!, $password: String!) { login(email: $email, password: $password) { token } }";
    let variables = json!({ "email": "nobody@example.com", "password": "wrong-password" });
    let attempts = (0..10).map(|_| {
        system.http.post(system.url("/graphql")).json(&json!({ "query": login, "variables": variables })).send()
    });
    let mut shed = 0;
    for response in futures::future::join_all(attempts).await {
        let response = response.expect("post");
        match response.status() {
            reqwest::StatusCode::OK => {
                let body: serde_json::Value = response.json().await.expect("json");
                assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{body}");
            }
            reqwest::StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(response.headers().get("retry-after").and_then(|value| value.to_str().ok()), Some("1"));
                let body: serde_json::Value = response.json().await.expect("json");
                assert_eq!(body["errors"][0]["extensions"]["code"], "UNAVAILABLE", "{body}");
                assert_eq!(body["errors"][0]["extensions"]["retryAfter"], 1, "{body}");
                shed += 1;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!((1..=8).contains(&shed), "with 2 in flight, some of 10 logins are shed: {shed}");
    assert!(system.metric_sum("gateway_requests_shed_total").await >= shed);
    // Each finished request gave its place back.
    for _ in 0..3 {
        let body = system.graphql("{ __typename }", json!({}), None).await;
        assert!(body.get("errors").is_none(), "{body}");
    }
}
