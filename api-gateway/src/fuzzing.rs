//! Entry points for the fuzz targets (`fuzz/`): what the gateway does with a request's bytes
//! before any resolver runs. Not part of the gateway's API.

use axum::{
    body::Bytes,
    http::{HeaderMap, HeaderValue, Uri, header},
};

use crate::{graphql_http, operation_shape::ShapeLimits};

/// The default limits, as the gateway runs with them.
const LIMITS: ShapeLimits = ShapeLimits { max_aliases: 30, max_root_fields: 30, max_depth: 15, max_complexity: 5000 };

/// A `POST /graphql` body: read as a request, then its operation's shape checked.
pub fn graphql_post(body: &[u8]) {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(mut request) = graphql_http::from_post(&headers, Ok(Bytes::copy_from_slice(body))) {
        let _ = LIMITS.refusal(&mut request);
    }
}

/// A `GET /graphql?<query string>`: read as a request (refused unless a query), then checked.
pub fn graphql_get(query_string: &[u8]) {
    let Ok(text) = std::str::from_utf8(query_string) else { return };
    let Ok(uri) = format!("/graphql?{text}").parse::<Uri>() else { return };
    if let Ok(mut request) = graphql_http::from_get(&uri) {
        let _ = LIMITS.refusal(&mut request);
    }
}
