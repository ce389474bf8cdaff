//! Prometheus metrics: one recorder per process. The gateway renders it on its own `/metrics`;
//! any binary also serves it on `METRICS_ADDR` when that is set. This module only exposes
//! metrics; what to count is decided where the counting happens.

use std::{net::SocketAddr, sync::OnceLock};

use axum::{Router, routing::get};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::grpc::StartupError;

/// The bucket bounds of every `*_seconds` histogram: 1 ms to 30 s.
const SECONDS_BUCKETS: [f64; 14] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// The process-wide Prometheus recorder, installed on first use.
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        // Durations as histograms with buckets (not summaries), so that replicas can be added up
        // and quantiles taken over any set of them (`histogram_quantile`).
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), &SECONDS_BUCKETS)
            .expect("the buckets are not empty")
            .build_recorder();
        let handle = recorder.handle();
        // Fails only if another recorder is installed already; then ours just stays empty.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// Binds `addr` and serves `GET /metrics` there in the background, for the life of the process.
pub async fn serve(addr: SocketAddr) -> Result<SocketAddr, StartupError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|error| StartupError::config("METRICS_ADDR", format!("cannot listen on {addr}: {error}")))?;
    let bound = listener.local_addr().map_err(|error| StartupError::config("METRICS_ADDR", error.to_string()))?;
    let handle = prometheus();
    let app = Router::new().route("/metrics", get(move || async move { handle.render() }));
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::warn!(%error, "the metrics listener stopped");
        }
    });
    tracing::info!(%bound, "metrics listening on /metrics");
    Ok(bound)
}
