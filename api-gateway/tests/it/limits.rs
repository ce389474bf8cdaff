//! Depth, complexity, body-size and rate limits.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{spawn_system, spawn_system_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_deep_too_complex_and_too_large_requests_are_refused() {
    let system = spawn_system().await;
    let deep = format!("{{ __schema {{ types {{ {}name{} }} }} }}", "ofType { ".repeat(20), " }".repeat(20));
    let body = system.graphql(&deep, json!({}), None).await;
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("nested too deep"), "{body}");

    let admin = system.admin_token().await;
    let wide: String = (0..60).map(|n| format!("p{n}: products(limit: 100) {{ id name }} ")).collect();
    let body = system.graphql(&format!("{{ {wide} }}"), json!({}), Some(&admin)).await;
    assert!(body["errors"][0]["message"].as_str().unwrap_or_default().contains("too complex"), "{body}");

    let huge = format!("{{ products {{ id }} }} # {}", "x".repeat(100 * 1024));
    let response = system.http.post(system.url("/graphql")).json(&json!({ "query": huge })).send().await.expect("post");
    assert_eq!(response.status(), reqwest::StatusCode::PAYLOAD_TOO_LARGE);
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
