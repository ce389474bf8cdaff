//! GraphQL over HTTP: reading a request from a `POST` body or a `GET` query string, and the
//! answer to one that cannot be read, following the GraphQL-over-HTTP specification.
//!
//! A request that cannot be read gets a JSON body `{ "errors": [{ "message", "extensions":
//! { "code" } }] }` like every other error of this API, with the status that says why: 400 for
//! a body or query string that is not a GraphQL request (a batch included: one operation per
//! request), 413 for a body past `MAX_BODY_BYTES`, 415 for a body that is not
//! `application/json`, 405 for a mutation or subscription sent with `GET`. Internals (parser
//! types, Rust error names) never appear: the messages are written here.

use async_graphql::parser::types::OperationType;
use axum::{
    Json,
    body::Bytes,
    extract::{Query, rejection::BytesRejection},
    http::{HeaderMap, HeaderValue, StatusCode, Uri, header},
    response::{IntoResponse, Response},
};

/// `extensions.code` of a request that could not be read.
const BAD_REQUEST: &str = "BAD_REQUEST";

/// Why a request could not be read, and the answer it gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    status: StatusCode,
    message: String,
}

impl Refusal {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into() }
    }
}

/// A GraphQL error body `{ "errors": [{ message, extensions }] }` with `status`: how every
/// request refused before GraphQL runs is answered.
pub fn error_response(status: StatusCode, message: &str, extensions: serde_json::Value) -> Response {
    let body = serde_json::json!({ "errors": [{ "message": message, "extensions": extensions }] });
    (status, Json(body)).into_response()
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let extensions = serde_json::json!({ "code": BAD_REQUEST });
        let mut response = error_response(self.status, &self.message, extensions);
        if self.status == StatusCode::METHOD_NOT_ALLOWED {
            response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
        }
        response
    }
}

/// The GraphQL request in a `POST` body (`application/json`).
pub fn from_post(headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<async_graphql::Request, Refusal> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok()).unwrap_or_default();
    let media_type = content_type.split(';').next().unwrap_or_default().trim();
    if !media_type.eq_ignore_ascii_case("application/json") {
        return Err(Refusal::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("a request body must be application/json, not `{media_type}`"),
        ));
    }
    let body = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => {
            Refusal::new(StatusCode::PAYLOAD_TOO_LARGE, "the request body is larger than MAX_BODY_BYTES")
        }
        status => Refusal::new(status, "the request body could not be read"),
    })?;
    if body.iter().find(|byte| !byte.is_ascii_whitespace()) == Some(&b'[') {
        return Err(Refusal::new(StatusCode::BAD_REQUEST, "batches are not supported: send one operation per request"));
    }
    let body: PostBody = serde_json::from_slice(&body).map_err(|error| {
        Refusal::new(StatusCode::BAD_REQUEST, format!("the body is not a GraphQL request: {error}"))
    })?;
    let mut request = async_graphql::Request::new(body.query);
    request.operation_name = body.operation_name;
    if let Some(variables) = body.variables {
        request.variables = variables;
    }
    Ok(request)
}

/// A `POST` body. `query` is required (async-graphql's own request type takes a missing one as
/// empty); `extensions` are not used by this API and are ignored.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct PostBody {
    query: String,
    operation_name: Option<String>,
    variables: Option<async_graphql::Variables>,
}

/// The parameters of a `GET` request.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct GetParameters {
    query: String,
    operation_name: Option<String>,
    /// JSON text.
    variables: Option<String>,
}

/// The GraphQL request in a `GET` query string (`query`, `operationName`, `variables` as JSON
/// text). Only queries: a mutation or subscription is refused with 405, so that a link or a
/// prefetch never changes anything.
pub fn from_get(uri: &Uri) -> Result<async_graphql::Request, Refusal> {
    let Query(parameters) = Query::<GetParameters>::try_from_uri(uri).map_err(|_| {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            "a GET request needs a `query` parameter (and may have `operationName` and `variables`)",
        )
    })?;
    let mut request = async_graphql::Request::new(parameters.query);
    if let Some(name) = parameters.operation_name {
        request = request.operation_name(name);
    }
    if let Some(variables) = parameters.variables.filter(|text| !text.trim().is_empty()) {
        let variables: serde_json::Value = serde_json::from_str(&variables)
            .map_err(|error| Refusal::new(StatusCode::BAD_REQUEST, format!("`variables` is not JSON: {error}")))?;
        request = request.variables(async_graphql::Variables::from_json(variables));
    }
    if let Some(kind) = operation_type(&mut request).filter(|kind| *kind != OperationType::Query) {
        return Err(Refusal::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("a {kind} must be sent with POST; GET runs queries only"),
        ));
    }
    Ok(request)
}

/// The type of the operation `request` would run, when its text parses and names one.
fn operation_type(request: &mut async_graphql::Request) -> Option<OperationType> {
    let name = request.operation_name.clone();
    let document = request.parsed_query().ok()?;
    let mut operations = document.operations.iter();
    let (_, operation) = match name {
        Some(name) => {
            operations.find(|(candidate, _)| candidate.is_some_and(|candidate| candidate.as_str() == name))?
        }
        None => operations.next()?,
    };
    Some(operation.node.ty)
}

/// Whether a `GET` asks for the GraphiQL page rather than a result: a browser (its `Accept`
/// names HTML and no JSON), or a request with no query string at all.
pub fn wants_graphiql(headers: &HeaderMap, uri: &Uri) -> bool {
    let accept = headers.get(header::ACCEPT).and_then(|value| value.to_str().ok()).unwrap_or_default();
    let wants_json = accept.contains("application/json") || accept.contains("application/graphql-response+json");
    let wants_html = accept.contains("text/html");
    uri.query().is_none_or(str::is_empty) || (wants_html && !wants_json)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_headers() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
        headers
    }

    fn post(headers: &HeaderMap, body: &str) -> Result<async_graphql::Request, Refusal> {
        from_post(headers, Ok(Bytes::from(body.to_owned())))
    }

    #[test]
    fn a_post_body_is_read_or_refused_with_the_status_that_says_why() {
        let request = post(&json_headers(), r#"{"query":"{ me { id } }","variables":{"a":1}}"#).expect("read");
        assert_eq!(request.query, "{ me { id } }");

        let status = |result: Result<async_graphql::Request, Refusal>| result.expect_err("refused").status;
        assert_eq!(status(post(&json_headers(), r#"{"query":"#)), StatusCode::BAD_REQUEST);
        assert_eq!(status(post(&json_headers(), r#"{"variables":{}}"#)), StatusCode::BAD_REQUEST);
        assert_eq!(status(post(&json_headers(), r#" [{"query":"{ a }"}]"#)), StatusCode::BAD_REQUEST);
        assert_eq!(status(post(&HeaderMap::new(), r#"{"query":"{ a }"}"#)), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let missing = post(&json_headers(), r#"{"variables":{}}"#).expect_err("refused");
        assert!(missing.message.contains("missing field `query`"), "{missing:?}");
    }

    #[test]
    fn get_runs_queries_only_and_reads_its_variables() {
        let uri: Uri =
            "/graphql?query=query(%24n%3A%20Int)%20%7B%20a%20%7D&variables=%7B%22n%22%3A2%7D".parse().expect("uri");
        let request = from_get(&uri).expect("a query");
        assert_eq!(request.variables.into_value().into_json().expect("json")["n"], 2);

        let mutation: Uri = "/graphql?query=mutation%20%7B%20a%20%7D".parse().expect("uri");
        let refused = from_get(&mutation).expect_err("refused");
        assert_eq!(refused.status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(refused.into_response().headers()[header::ALLOW], "POST");

        let named: Uri = "/graphql?query=query%20Q%20%7B%20a%20%7D%20mutation%20M%20%7B%20b%20%7D&operationName=M"
            .parse()
            .expect("uri");
        assert_eq!(from_get(&named).expect_err("refused").status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(
            from_get(&"/graphql?variables=1".parse().expect("uri")).expect_err("no query").status,
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn graphiql_is_served_to_browsers_and_to_requests_without_a_query() {
        let with = |accept: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::ACCEPT, HeaderValue::from_str(accept).expect("header"));
            headers
        };
        let query: Uri = "/graphql?query=%7B%20a%20%7D".parse().expect("uri");
        assert!(wants_graphiql(&with("text/html,application/xhtml+xml"), &query));
        assert!(!wants_graphiql(&with("application/json"), &query));
        assert!(!wants_graphiql(&with("application/graphql-response+json, application/json;q=0.9"), &query));
        assert!(wants_graphiql(&with("application/json"), &"/graphql".parse().expect("uri")));
    }
}
