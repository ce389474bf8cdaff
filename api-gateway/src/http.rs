//! The HTTP surface: `/graphql` (POST, or GET for queries and GraphiQL; see
//! [`crate::graphql_http`]), `/health`, `/metrics`, with a
//! per-client rate limit and a body-size limit in front of GraphQL.

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql_axum::{GraphQLProtocol, GraphQLResponse, GraphQLWebSocket};
use axum::{
    Extension, Json, Router,
    body::Bytes,
    extract::{ConnectInfo, DefaultBodyLimit, Request, State, rejection::BytesRejection, ws::WebSocketUpgrade},
    http::{HeaderMap, HeaderValue, StatusCode, Uri, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use governor::{Quota, RateLimiter, clock::Clock as _, state::keyed::DefaultKeyedStateStore};
use opentelemetry::{
    KeyValue,
    trace::{SpanBuilder, SpanKind},
};
use service_runtime::spans::ExportedSpan;
use tokio::sync::Semaphore;

use crate::{
    auth::Auth,
    backends::{self, Backends},
    cache::Caches,
    client_addr::ClientAddress,
    config::Limits,
    documents::{DocumentCache, Validation},
    errors::{RETRY_AFTER_EXTENSION, code},
    graphiql, graphql_http,
    operation_shape::{CheckedSchema, ShapeLimits},
    schema::{self, Schemas},
    subscription_slots::SubscriptionSlots,
};

/// A token bucket per client address.
type ClientLimiter = RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, governor::clock::DefaultClock>;

/// What every handler can reach. The router shares one behind an `Arc`: axum clones the state
/// for every request, and cloning the schema, clients and keys each time cost more than the
/// gateway's own handling of a cheap read.
pub struct AppState {
    pub schemas: Schemas,
    pub backends: Backends,
    pub auth: Auth,
    pub documents: DocumentCache,
    /// Products and users read before, for the per-request loaders.
    pub caches: Caches,
    pub subscription_slots: Arc<SubscriptionSlots>,
    /// The largest WebSocket message (and frame) a client may send: `MAX_BODY_BYTES`, as for a
    /// request body. tungstenite's own limit is 64 MiB.
    pub max_message_bytes: usize,
    /// The limits on an operation's shape (aliases, root fields), and the depth and complexity
    /// limits its errors name.
    pub shape: ShapeLimits,
}

/// The router, with its limits applied.
pub fn router(state: AppState, limits: &Limits) -> Router {
    let limiter: Arc<ClientLimiter> = Arc::new(RateLimiter::keyed(
        Quota::per_second(limits.rate_limit_per_second).allow_burst(limits.rate_limit_burst),
    ));
    spawn_limiter_cleanup(Arc::clone(&limiter));
    let limiter = ClientLimit { limiter, trusted_proxies: limits.trusted_proxies.clone().into() };
    let in_flight = Arc::new(Semaphore::new(limits.max_requests_in_flight.get()));
    let graphql = Router::new()
        .route(
            "/graphql",
            get(graphql_get).post(graphql_post).route_layer(middleware::from_fn_with_state(in_flight, shed_load)),
        )
        .route("/graphql/ws", get(graphql_ws))
        .route_layer(middleware::from_fn_with_state(limiter, rate_limit))
        // The body is read whole, within this limit; past it the answer is a JSON 413.
        .layer(DefaultBodyLimit::max(limits.max_body_bytes));
    Router::new()
        .merge(graphql)
        .route("/graphiql/{file}", get(graphiql::asset))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .layer(middleware::from_fn(count_requests))
        .with_state(Arc::new(state))
}

/// How much a subscription's connection reads at a time. tungstenite's default, 128 KiB, is
/// allocated for every connection; a subscription's messages are a few hundred bytes (a
/// larger one still arrives whole: the buffer grows for it).
const WEBSOCKET_READ_BUFFER_BYTES: usize = 4 * 1024;

/// Subscriptions over WebSocket (graphql-transport-ws or graphql-ws). The token comes in the
/// `connection_init` payload as `{"Authorization": "Bearer <token>"}`.
///
/// Each subscription takes a slot of its client's (see [`crate::subscription_slots`]).
async fn graphql_ws(
    State(state): State<Arc<AppState>>,
    Extension(ClientAddress(client)): Extension<ClientAddress>,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    let upgrade = upgrade
        .read_buffer_size(WEBSOCKET_READ_BUFFER_BYTES)
        .max_message_size(state.max_message_bytes)
        .max_frame_size(state.max_message_bytes);
    upgrade.protocols(ALL_WEBSOCKET_PROTOCOLS).on_upgrade(move |socket| {
        let schema = CheckedSchema { schema: state.schemas.strict.clone(), limits: state.shape };
        let (backends, auth) = (state.backends.clone(), state.auth.clone());
        let caches = state.caches.clone();
        let slots = state.subscription_slots.for_client(client);
        GraphQLWebSocket::new(socket, schema, protocol)
            .on_connection_init(move |payload| async move {
                let header = ["Authorization", "authorization"].iter().find_map(|key| payload.get(*key)?.as_str());
                let mut data = async_graphql::Data::default();
                data.insert(auth.credentials(header));
                let (users, products) = schema::loaders(&backends, &caches);
                data.insert(users);
                data.insert(products);
                data.insert(slots);
                data.insert(ClientAddress(client));
                Ok(data)
            })
            .serve()
    })
}

/// A GraphQL request in a `POST` body.
async fn graphql_post(
    State(state): State<Arc<AppState>>,
    Extension(client): Extension<ClientAddress>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match graphql_http::from_post(&headers, body) {
        Ok(request) => execute(&state, &headers, request.data(client)).await.into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

/// A query in a `GET` query string, or the GraphiQL page for a browser.
async fn graphql_get(
    State(state): State<Arc<AppState>>,
    Extension(client): Extension<ClientAddress>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    if graphql_http::wants_graphiql(&headers, &uri) {
        return graphiql::page().await.into_response();
    }
    match graphql_http::from_get(&uri) {
        Ok(request) => execute(&state, &headers, request.data(client)).await.into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

/// Runs a request read from either method: its cached document, the limits on its shape, the
/// schema (the fast-validating one for a text that passed every rule before), and the
/// operation's metrics and span, which count a refused request as well.
async fn execute(state: &AppState, headers: &HeaderMap, mut request: async_graphql::Request) -> GraphQLResponse {
    let prepared = state.documents.prepare(&mut request);
    let operation = schema::Operation::of(&mut request);
    // The shape depends on the text alone, so a text that passed every check before (this one
    // included: a refusal is never recorded as passing) is not walked again.
    let refusal = match prepared.validation {
        Validation::Passed => None,
        Validation::Full => state.shape.refusal(&mut request),
    };
    let mut response = match refusal {
        Some(error) => {
            let refused = std::future::ready(async_graphql::Response::from_errors(vec![error]));
            schema::measure(operation, refused).await
        }
        None => {
            let authorization = headers.get(header::AUTHORIZATION).and_then(|value| value.to_str().ok());
            let credentials = state.auth.credentials(authorization);
            let (users, products) = schema::loaders(&state.backends, &state.caches);
            let schema = match prepared.validation {
                Validation::Passed => &state.schemas.fast,
                Validation::Full => &state.schemas.strict,
            };
            let request = request.data(credentials).data(users).data(products);
            let response = schema::measure(operation, schema.execute(request)).await;
            prepared.record(&response);
            response
        }
    };
    state.shape.name_the_limits(&mut response);
    if let Some(seconds) = crate::errors::retry_after(&response.errors) {
        response.http_headers.insert(header::RETRY_AFTER, seconds.into());
    }
    response.into()
}

/// 200 while the gateway runs; the body says whether every backend is SERVING.
async fn health(State(state): State<Arc<AppState>>) -> Json<serde_json::Value> {
    let backends = backends::health(&state.backends, Duration::from_secs(1)).await;
    let all_serving = backends.iter().all(|(_, status)| status == "SERVING");
    let services: serde_json::Map<_, _> =
        backends.into_iter().map(|(name, status)| (name.to_owned(), serde_json::Value::String(status))).collect();
    Json(serde_json::json!({
        "status": if all_serving { "ok" } else { "degraded" },
        "gateway": "SERVING",
        "services": services,
    }))
}

async fn metrics() -> String {
    prometheus().render()
}

pub use service_runtime::metrics::prometheus;

async fn count_requests(request: Request, next: Next) -> Response {
    let path: &'static str = match request.uri().path() {
        "/graphql" => "/graphql",
        "/health" => "/health",
        "/metrics" => "/metrics",
        _ => "other",
    };
    let started = std::time::Instant::now();
    let span = request_span(&request, path);
    let response = span.run(next.run(request)).await;
    span.set_attribute(|| KeyValue::new("http.response.status_code", i64::from(response.status().as_u16())));
    let status = response.status().as_u16().to_string();
    metrics::counter!("gateway_http_requests_total", "path" => path, "status" => status).increment(1);
    metrics::histogram!("gateway_http_request_duration_seconds", "path" => path).record(started.elapsed());
    response
}

/// The span of one HTTP request (continuing the client's trace when it sends one), when
/// traces are exported; none otherwise.
fn request_span(request: &Request, route: &'static str) -> ExportedSpan {
    ExportedSpan::start(
        || service_runtime::trace_context::extract_from_headers(request.headers()),
        || {
            let method = request.method().as_str();
            SpanBuilder::from_name(format!("{method} {route}")).with_kind(SpanKind::Server).with_attributes([
                KeyValue::new("http.request.method", method.to_owned()),
                KeyValue::new("http.route", route),
            ])
        },
    )
}

/// The per-client buckets, and whom to believe about who the client is.
#[derive(Clone)]
struct ClientLimit {
    limiter: Arc<ClientLimiter>,
    trusted_proxies: Arc<[ipnet::IpNet]>,
}

/// Answers 429 with `Retry-After` once a client address has used up its bucket.
///
/// The client's address goes with the request (a [`ClientAddress`] extension), for what else
/// is counted per client.
async fn rate_limit(
    State(limit): State<ClientLimit>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut request: Request,
    next: Next,
) -> Response {
    let client = crate::client_addr::client_addr(peer.ip(), request.headers(), &limit.trusted_proxies);
    match limit.limiter.check_key(&client) {
        Ok(()) => {
            request.extensions_mut().insert(ClientAddress(client));
            next.run(request).await
        }
        Err(not_until) => {
            let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let extensions = serde_json::json!({ "code": code::RATE_LIMITED });
            refusal(StatusCode::TOO_MANY_REQUESTS, "rate limit exceeded, slow down", extensions, seconds.max(1))
        }
    }
}

/// Refuses a GraphQL request at once, 503 with `Retry-After`, while the gateway already works
/// on as many as it may (`MAX_REQUESTS_IN_FLIGHT`).
///
/// Every request in flight holds its connection's buffers, its execution and its backend calls'
/// buffers (some 70 KiB in all for a `createOrder`), so without a bound a stream of requests
/// past capacity grows the gateway without limit. The default (1,024) is that bound, not a
/// tuning: at 256 the gateway peaked at 60 MiB instead of 85 in the overload benchmark, but it
/// refused orders order-service would have taken (confirmed 367-474/s instead of 538-572/s).
async fn shed_load(State(in_flight): State<Arc<Semaphore>>, request: Request, next: Next) -> Response {
    let Ok(_permit) = in_flight.try_acquire() else {
        metrics::counter!("gateway_requests_shed_total").increment(1);
        let extensions = serde_json::json!({ "code": code::UNAVAILABLE, RETRY_AFTER_EXTENSION: 1 });
        return refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            "the gateway is at capacity, try again shortly",
            extensions,
            1,
        );
    };
    next.run(request).await
}

/// A request refused before GraphQL runs: `status`, `Retry-After`, and a GraphQL error body.
fn refusal(status: StatusCode, message: &str, extensions: serde_json::Value, retry_after_secs: u64) -> Response {
    let mut response = graphql_http::error_response(status, message, extensions);
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    response
}

/// Forgets idle clients now and then, so the limiter's memory stays bounded.
fn spawn_limiter_cleanup(limiter: Arc<ClientLimiter>) {
    tokio::spawn(async move {
        let mut every_minute = tokio::time::interval(Duration::from_secs(60));
        loop {
            every_minute.tick().await;
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    });
}
