//! A GraphQL-over-HTTP client that treats anything but a clean 200 with data as an error.

use std::time::Duration;

use serde_json::{Value, json};

use crate::RequestError;

/// How long one request may take before it counts as a transport error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct GraphqlClient {
    http: reqwest::Client,
    url: String,
}

impl GraphqlClient {
    /// A client for the gateway at `base_url` (e.g. `http://127.0.0.1:3000`), with a connection
    /// pool large enough that every concurrent request keeps its own connection.
    pub fn new(base_url: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .pool_max_idle_per_host(usize::MAX)
            .tcp_nodelay(true)
            .build()?;
        Ok(Self { http, url: format!("{}/graphql", base_url.trim_end_matches('/')) })
    }

    /// The HTTP client underneath, for requests that are not GraphQL.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Sends `query` and returns its `data`, or the first error.
    pub async fn request(&self, query: &str, variables: Value, token: Option<&str>) -> Result<Value, RequestError> {
        let mut request = self.http.post(&self.url).json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await?;
        let status = response.status();
        if status == reqwest::StatusCode::SERVICE_UNAVAILABLE {
            // The gateway sheds load with a GraphQL error body saying when to try again.
            let body: Value = response.json().await.map_err(|_| RequestError::Status(status.as_u16()))?;
            return Err(data_of(body).err().unwrap_or(RequestError::Status(status.as_u16())));
        }
        if status != reqwest::StatusCode::OK {
            return Err(RequestError::Status(status.as_u16()));
        }
        let body: Value = response.json().await?;
        data_of(body)
    }
}

/// The `data` of a GraphQL response body, or its first error.
pub fn data_of(mut body: Value) -> Result<Value, RequestError> {
    if let Some(error) = body.get("errors").and_then(Value::as_array).and_then(|errors| errors.first()) {
        let code = error["extensions"]["code"].as_str().unwrap_or("NO_CODE").to_owned();
        let message = error["message"].as_str().unwrap_or_default().to_owned();
        if code == "UNAVAILABLE" && error["extensions"].get("retryAfter").is_some() {
            return Err(RequestError::Refused(message));
        }
        return Err(RequestError::Graphql { code, message });
    }
    match body.get_mut("data").map(Value::take) {
        Some(data) if data.is_object() => Ok(data),
        _ => Err(RequestError::Unexpected("a response without data".to_owned())),
    }
}

/// The string at `pointer` (e.g. `/createOrder/id`) in `data`.
pub fn string_at(data: &Value, pointer: &str) -> Result<String, RequestError> {
    data.pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| RequestError::Unexpected(format!("no {pointer} in the response")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_in_the_body_is_an_error_even_with_data() {
        let body = json!({ "data": { "product": null }, "errors": [{ "message": "no", "extensions": { "code": "NOT_FOUND" } }] });
        let error = data_of(body).unwrap_err();
        assert_eq!(error.kind(), "graphql NOT_FOUND");
    }

    #[test]
    fn data_is_returned_when_there_are_no_errors() {
        let data = data_of(json!({ "data": { "product": { "id": "7" } } })).unwrap();
        assert_eq!(string_at(&data, "/product/id").unwrap(), "7");
        assert!(string_at(&data, "/product/name").is_err());
        assert!(data_of(json!({ "data": null })).is_err());
    }
}
