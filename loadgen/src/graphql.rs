//! A GraphQL-over-HTTP client that treats anything but a clean 200 with data as an error.

use std::time::Duration;

use serde::{Deserialize, de::IgnoredAny};
use serde_json::{Value, json};

use crate::RequestError;

/// How long one request may take before it counts as a transport error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct GraphqlClient {
    http: reqwest::Client,
    /// Parsed once: reqwest parses a URL given as text on every request.
    url: reqwest::Url,
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
        let url = format!("{}/graphql", base_url.trim_end_matches('/')).parse()?;
        Ok(Self { http, url })
    }

    /// The HTTP client underneath, for requests that are not GraphQL.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Sends `query` and returns its `data`, or the first error.
    pub async fn request(&self, query: &str, variables: Value, token: Option<&str>) -> Result<Value, RequestError> {
        let body = self.request_body(query, variables, token).await?;
        data_of(serde_json::from_slice(&body).map_err(|error| unreadable(&error))?)
    }

    /// Sends `query` and returns the body of a 200 answer, for [`data_as`] to read.
    pub async fn request_body(
        &self,
        query: &str,
        variables: Value,
        token: Option<&str>,
    ) -> Result<bytes::Bytes, RequestError> {
        let mut request = self.http.post(self.url.clone()).json(&json!({ "query": query, "variables": variables }));
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
        Ok(response.bytes().await?)
    }
}

/// The `data` of the GraphQL response `body` read as `T`, or its first error.
///
/// Reading the answer into the shape a scenario checks, borrowing its strings, costs the
/// generator a fraction of building a [`Value`] of it: a `userOrders` page is some 600 values,
/// and the generator's CPU is CPU the measured system does not get. Anything but data of that
/// shape without errors is read again as a [`Value`], to report it as [`request`] does.
///
/// [`request`]: GraphqlClient::request
pub fn data_as<'body, T: Deserialize<'body>>(body: &'body [u8]) -> Result<T, RequestError> {
    #[derive(Deserialize)]
    struct Response<T> {
        data: Option<T>,
        errors: Option<IgnoredAny>,
    }
    if let Ok(Response { data: Some(data), errors: None }) = serde_json::from_slice::<Response<T>>(body) {
        return Ok(data);
    }
    data_of(serde_json::from_slice(body).map_err(|error| unreadable(&error))?)?;
    Err(RequestError::Unexpected("data of another shape than asked for".to_owned()))
}

fn unreadable(error: &serde_json::Error) -> RequestError {
    RequestError::Unexpected(format!("a body that is not JSON: {error}"))
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

    #[derive(Debug, Deserialize)]
    struct ProductData<'a> {
        #[serde(borrow)]
        product: Named<'a>,
    }

    #[derive(Debug, Deserialize)]
    struct Named<'a> {
        #[serde(borrow)]
        name: std::borrow::Cow<'a, str>,
    }

    #[test]
    fn data_as_reads_the_shape_asked_for_and_reports_anything_else() {
        let read = |body: Value| {
            data_as::<ProductData<'_>>(&serde_json::to_vec(&body).unwrap()).map(|data| data.product.name.into_owned())
        };
        assert_eq!(read(json!({ "data": { "product": { "name": "Lamp \"L\"", "price": 2 } } })).unwrap(), "Lamp \"L\"");
        let error = read(
            json!({ "data": { "product": null }, "errors": [{ "message": "no", "extensions": { "code": "NOT_FOUND" } }] }),
        );
        assert_eq!(error.unwrap_err().kind(), "graphql NOT_FOUND");
        assert_eq!(
            read(json!({ "data": { "product": null } })).unwrap_err().kind(),
            "unexpected: data of another shape than asked for"
        );
        assert_eq!(read(json!({ "data": null })).unwrap_err().kind(), "unexpected: a response without data");
        assert!(
            data_as::<ProductData<'_>>(b"<html>")
                .unwrap_err()
                .kind()
                .starts_with("unexpected: a body that is not JSON")
        );
    }

    #[test]
    fn data_is_returned_when_there_are_no_errors() {
        let data = data_of(json!({ "data": { "product": { "id": "7" } } })).unwrap();
        assert_eq!(string_at(&data, "/product/id").unwrap(), "7");
        assert!(string_at(&data, "/product/name").is_err());
        assert!(data_of(json!({ "data": null })).is_err());
    }
}
