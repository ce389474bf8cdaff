//! Prometheus metrics: one recorder per process. The gateway renders it on its own `/metrics`;
//! any binary also serves it on `METRICS_ADDR` when that is set. This module only exposes
//! metrics; what to count is decided where the counting happens.

use std::{net::SocketAddr, sync::OnceLock};

use axum::{Router, routing::get};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::startup::StartupError;

/// The bucket bounds of every `*_seconds` histogram: 1 ms to 30 s.
const SECONDS_BUCKETS: [f64; 14] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// How often histogram samples are folded into their buckets when nobody scrapes: at 50,000
/// requests a second with two histograms each, a second's samples are under 1 MB.
const UPKEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

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
        // Histogram samples wait in a buffer until they are folded into the buckets; that
        // happens on a scrape or in this upkeep. Without it, a process nobody scrapes kept every
        // sample: the gateway grew by ~45 bytes a request (15 MiB per 350,000 reads).
        let upkeep = handle.clone();
        let spawned = std::thread::Builder::new().name("metrics-upkeep".to_owned()).spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_INTERVAL);
                upkeep.run_upkeep();
            }
        });
        if let Err(error) = spawned {
            tracing::warn!(%error, "could not start the metrics upkeep; histograms are folded only when scraped");
        }
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
