//! GraphQL over HTTP: a request the gateway cannot read gets a JSON error with the status that
//! says why; `GET` runs queries for a JSON client, refuses mutations, and shows GraphiQL to a
//! browser.

use reqwest::{StatusCode, header};
use serde_json::{Value, json};

use crate::helpers::{GatewayClient as _, spawn_system_with};

/// The status, and the first error's message of a JSON body (which every answer must be).
async fn refusal(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    let content_type = response.headers().get(header::CONTENT_TYPE).cloned();
    let body: Value = response.json().await.unwrap_or_else(|error| panic!("{status}: not JSON ({error})"));
    assert_eq!(content_type.as_ref().and_then(|value| value.to_str().ok()), Some("application/json"), "{body}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_REQUEST", "{body}");
    (status, body["errors"][0]["message"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_that_cannot_be_read_get_json_errors_with_their_status() {
    let system = spawn_system_with(&[("MAX_BODY_BYTES", "4096")]).await;
    let post = |body: &str, content_type: &str| {
        system.http.post(system.url("/graphql")).header(header::CONTENT_TYPE, content_type).body(body.to_owned()).send()
    };

    let (status, message) = refusal(post(r#"{"query": "#, "application/json").await.expect("post")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message.contains("not a GraphQL request") && message.contains("EOF"), "{message}");

    let (status, message) = refusal(post(r#"{"variables": {}}"#, "application/json").await.expect("post")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message.contains("missing field `query`"), "{message}");

    let batch = r#"[{"query": "{ __typename }"}, {"query": "{ __typename }"}]"#;
    let (status, message) = refusal(post(batch, "application/json").await.expect("post")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message.contains("batches are not supported"), "{message}");

    let form = "query=%7B__typename%7D";
    let (status, message) = refusal(post(form, "application/x-www-form-urlencoded").await.expect("post")).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(message.contains("application/json"), "{message}");

    let huge = json!({ "query": format!("{{ __typename }} # {}", "x".repeat(8 * 1024)) }).to_string();
    let (status, message) = refusal(post(&huge, "application/json").await.expect("post")).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(message.contains("MAX_BODY_BYTES"), "{message}");

    // Nothing leaks the server's types or debug text.
    for body in [r#"{"query": "#, "[]", r#"{"query": 5}"#] {
        let text = post(body, "application/json").await.expect("post").text().await.expect("text");
        assert!(!text.contains("InvalidRequest") && !text.contains("Error("), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_runs_queries_for_json_clients_refuses_mutations_and_shows_graphiql_to_browsers() {
    let system = spawn_system_with(&[]).await;
    let get = |query: &str, accept: &str| {
        system
            .http
            .get(system.url("/graphql"))
            .query(&[("query", query), ("variables", r#"{"limit": 1}"#)])
            .header(header::ACCEPT, accept)
            .send()
    };

    for accept in ["application/json", "application/graphql-response+json"] {
        let response = get("query($limit: Int) { products(limit: $limit) { id } }", accept).await.expect("get");
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.expect("JSON");
        assert!(body["errors"].is_null() && body["data"]["products"].is_array(), "{body}");
    }

    let response =
        get("mutation { login(email: \"a@b.c\", password: \"x\") { token } }", "application/json").await.expect("get");
    assert_eq!(response.headers().get(header::ALLOW).map(|value| value.to_str().ok()), Some(Some("POST")));
    let (status, message) = refusal(response).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(message.contains("mutation must be sent with POST"), "{message}");

    let page = get("{ __typename }", "text/html,application/xhtml+xml").await.expect("get");
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.expect("text").to_lowercase().contains("graphiql"));
}
