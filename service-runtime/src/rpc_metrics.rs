//! Per-RPC metrics of a gRPC server: how many calls each method handled, by status code, and
//! how long they took (`grpc_server_handled_total`, `grpc_server_handling_seconds`, the names
//! Prometheus' own gRPC middleware uses, so existing dashboards fit); and, when traces are
//! exported, a server span per call that continues the caller's trace.
//!
//! The status is read from the response headers: tonic puts `grpc-status` there for a call that
//! fails before its first message (every error of a unary call), and in the trailers of a
//! successful one. So a response without it in the headers counts as `OK`; the servers here
//! have only unary methods, for which that is exact. The time is until the response headers,
//! which for a unary call is the handling time.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Instant,
};

use opentelemetry::{
    KeyValue,
    trace::{SpanBuilder, SpanKind},
};
use tonic::{Code, codegen::http};

use crate::spans::ExportedSpan;

/// The tower layer that records every call's metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct RpcMetrics;

impl<S> tower::Layer<S> for RpcMetrics {
    type Service = Measured<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Measured { inner }
    }
}

/// A service whose calls are counted and timed.
#[derive(Debug, Clone)]
pub struct Measured<S> {
    inner: S,
}

impl<S, RequestBody, ResponseBody> tower::Service<http::Request<RequestBody>> for Measured<S>
where
    S: tower::Service<http::Request<RequestBody>, Response = http::Response<ResponseBody>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<RequestBody>) -> Self::Future {
        let path = request.uri().path().to_owned();
        let started = Instant::now();
        let span = server_span(&path, request.headers());
        let call = span.in_scope(|| self.inner.call(request));
        let call = span.run(call);
        Box::pin(async move {
            let response = call.await;
            let code = match &response {
                Ok(response) => status_of(response.headers()),
                // The service itself failed (not a gRPC status): the connection breaks.
                Err(_) => Code::Internal,
            };
            span.set_attribute(|| KeyValue::new("rpc.grpc.status_code", i64::from(i32::from(code))));
            record(&path, code, started);
            response
        })
    }
}

/// The span of one call, a child of the caller's when its headers carry a trace context; none
/// at all when traces are not exported.
fn server_span(path: &str, headers: &http::HeaderMap) -> ExportedSpan {
    ExportedSpan::start(
        || crate::trace_context::extract_from_headers(headers),
        || {
            let name = path.trim_start_matches('/');
            let (service, method) = name.split_once('/').unwrap_or((name, ""));
            SpanBuilder::from_name(name.to_owned()).with_kind(SpanKind::Server).with_attributes([
                KeyValue::new("rpc.system", "grpc"),
                KeyValue::new("rpc.service", service.to_owned()),
                KeyValue::new("rpc.method", method.to_owned()),
            ])
        },
    )
}

/// The status a response's headers carry, `OK` when they carry none.
fn status_of(headers: &http::HeaderMap) -> Code {
    match headers.get("grpc-status") {
        None => Code::Ok,
        Some(value) => {
            value.to_str().ok().and_then(|value| value.parse::<i32>().ok()).map_or(Code::Unknown, Code::from_i32)
        }
    }
}

/// Counts one call of `path` (`/package.Service/Method`).
fn record(path: &str, code: Code, started: Instant) {
    // A path no route knows comes back UNIMPLEMENTED; its name is whatever the client sent, so
    // it is not used as a label (every distinct label value is a series kept forever).
    let (service, method) = match (code, path.trim_start_matches('/').split_once('/')) {
        (Code::Unimplemented, _) | (_, None) => ("unknown".to_owned(), "unknown".to_owned()),
        (_, Some((service, method))) => (service.to_owned(), method.to_owned()),
    };
    let code = code_name(code);
    metrics::counter!(
        "grpc_server_handled_total",
        "grpc_service" => service.clone(),
        "grpc_method" => method.clone(),
        "grpc_code" => code
    )
    .increment(1);
    metrics::histogram!("grpc_server_handling_seconds", "grpc_service" => service, "grpc_method" => method)
        .record(started.elapsed());
}

/// The canonical upper-case name of a code, as gRPC's own metrics spell it.
fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_comes_from_the_headers_and_defaults_to_ok() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(status_of(&headers), Code::Ok);
        headers.insert("grpc-status", http::HeaderValue::from_static("5"));
        assert_eq!(status_of(&headers), Code::NotFound);
        headers.insert("grpc-status", http::HeaderValue::from_static("garbage"));
        assert_eq!(status_of(&headers), Code::Unknown);
    }

    #[tokio::test]
    async fn a_real_server_counts_its_calls_by_method_and_code() {
        use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

        let metrics = crate::metrics::prometheus();
        let server = crate::grpc::GrpcServer::bind(
            "127.0.0.1:0".parse().expect("addr"),
            tonic::service::Routes::default(),
            &["counted"],
            std::time::Duration::from_secs(1),
            &crate::tls::GrpcTls::default(),
        )
        .await
        .expect("bind")
        .spawn();
        let channel = crate::grpc::client_channel(
            "URL",
            &server.url(),
            std::time::Duration::from_secs(5),
            &crate::tls::GrpcTls::default(),
        )
        .expect("channel");
        let mut client = HealthClient::new(channel);
        client.check(HealthCheckRequest { service: "counted".into() }).await.expect("serving");
        let unknown = client.check(HealthCheckRequest { service: "nobody".into() }).await.expect_err("unknown");
        assert_eq!(unknown.code(), Code::NotFound);

        let text = metrics.render();
        for code in ["OK", "NOT_FOUND"] {
            let line = format!(
                r#"grpc_server_handled_total{{grpc_service="grpc.health.v1.Health",grpc_method="Check",grpc_code="{code}"}} "#
            );
            assert!(text.contains(&line), "no {line:?} in\n{text}");
        }
        assert!(text.contains(
            r#"grpc_server_handling_seconds_count{grpc_service="grpc.health.v1.Health",grpc_method="Check"}"#
        ));
        server.stop().await.expect("stop");
    }

    #[test]
    fn every_code_has_its_canonical_name() {
        assert_eq!(code_name(Code::FailedPrecondition), "FAILED_PRECONDITION");
        assert_eq!(code_name(Code::Ok), "OK");
        assert_eq!(code_name(Code::Unauthenticated), "UNAUTHENTICATED");
    }
}
