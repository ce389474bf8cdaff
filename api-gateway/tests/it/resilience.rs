//! A backend that goes away: a clear UNAVAILABLE error, the gateway stays up, and it recovers.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{GatewayClient as _, spawn_system};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_backend_gives_unavailable_and_recovers_when_it_returns() {
    let mut system = spawn_system().await;
    let admin = system.admin_token().await;
    system.product(&admin, "Pen", 2.0, 10).await;
    let health: serde_json::Value =
        system.http.get(system.url("/health")).send().await.expect("health").json().await.expect("json");
    assert_eq!(health["status"], "ok", "{health}");

    system.products.stop();
    let started = Instant::now();
    let (code, error) = system.error_code("{ products { id } }", json!({}), None).await;
    assert_eq!(code, "UNAVAILABLE", "{error}");
    assert!(error["message"].as_str().unwrap_or_default().contains("product-service"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(5), "no hang: {:?}", started.elapsed());

    // The gateway itself is fine: health says which backend is missing, other data still flows.
    let health: serde_json::Value =
        system.http.get(system.url("/health")).send().await.expect("health").json().await.expect("json");
    assert_eq!(
        (health["status"].as_str(), health["services"]["product-service"].as_str()),
        (Some("degraded"), Some("UNREACHABLE"))
    );
    assert_eq!(system.ok("{ me { email } }", json!({}), Some(&admin)).await["me"]["email"], "admin@example.com");

    system.products.restart();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let body = system.graphql("{ products { name } }", json!({}), None).await;
        if body.get("errors").is_none() {
            assert_eq!(body["data"]["products"][0]["name"], "Pen", "the data survived the restart");
            break;
        }
        assert!(Instant::now() < deadline, "no recovery: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphiql_health_and_metrics_are_served() {
    let system = spawn_system().await;
    let page = system.http.get(system.url("/graphql")).send().await.expect("graphiql");
    assert_eq!(page.status(), reqwest::StatusCode::OK);
    assert!(page.text().await.expect("html").to_lowercase().contains("graphiql"));
    system.ok("{ products { id } }", json!({}), None).await;
    let metrics = system.http.get(system.url("/metrics")).send().await.expect("metrics").text().await.expect("text");
    assert!(metrics.contains("gateway_http_requests_total"), "{metrics}");
    assert!(
        metrics.contains(r#"gateway_backend_calls_total{service="product-service",method="GetProducts"}"#),
        "{metrics}"
    );
}
