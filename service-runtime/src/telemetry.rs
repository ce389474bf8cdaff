//! Structured logging (JSON for machines, pretty for people, filtered by `RUST_LOG`) and, when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set, OpenTelemetry traces exported over OTLP/gRPC.
//!
//! The standard OpenTelemetry variables apply: `OTEL_SERVICE_NAME` (default: the binary's
//! name), `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG`
//! (default: `parentbased_always_on`). Without an endpoint no OpenTelemetry tracer, propagator or
//! exporter exists at all, so tracing costs what the logs cost.

use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::{
    Resource,
    propagation::TraceContextPropagator,
    trace::{BatchSpanProcessor, Sampler, SdkTracerProvider},
};
use tracing_subscriber::{EnvFilter, filter::LevelFilter, layer::SubscriberExt as _, util::SubscriberInitExt as _};

use crate::startup::StartupError;

/// The log output format (`LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Json,
    Pretty,
}

/// How long the last spans may take to leave at shutdown.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// What [`init`] set up that must be flushed before the process exits.
#[derive(Debug, Default)]
#[must_use = "spans still buffered are lost unless `shutdown` is called"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Sends the spans still buffered (waiting at most a few seconds) and stops exporting.
    pub async fn shutdown(self) {
        if let Some(provider) = self.provider {
            // The provider's shutdown blocks until its exporting task is done: off the runtime.
            let flushed = tokio::task::spawn_blocking(move || provider.shutdown());
            if tokio::time::timeout(FLUSH_TIMEOUT, flushed).await.is_err() {
                tracing::warn!("spans still buffered at shutdown were not all exported");
            }
        }
    }
}

/// Installs the global subscriber: logs, plus trace export when configured. `service` names
/// the process in its traces unless `OTEL_SERVICE_NAME` does. A malformed `RUST_LOG` or `OTEL_*`
/// setting is an error naming it. Must run inside a Tokio runtime when exporting.
///
/// Calling it again (as tests that start several services in one process do) is harmless.
pub fn init(format: LogFormat, service: &'static str) -> Result<Telemetry, StartupError> {
    let directives = std::env::var("RUST_LOG").unwrap_or_default();
    let filter = EnvFilter::builder()
        .with_default_directive(LevelFilter::INFO.into())
        .parse(&directives)
        .map_err(|error| StartupError::config("RUST_LOG", error.to_string()))?;
    // Colours only for a terminal: in a log file they are noise, and writing them into every
    // span's formatted fields costs time on every request.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let provider = match env("OTEL_EXPORTER_OTLP_ENDPOINT") {
        Some(endpoint) => Some(tracer_provider(&endpoint, service)?),
        None => None,
    };
    if let Some(provider) = &provider {
        // For any library that propagates through the global propagator; ours use it directly.
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        // A static name: every span carries a copy of its tracer's scope, and copying a
        // borrowed name allocates nothing.
        crate::spans::install(provider.tracer(service));
    }
    // `try_init` fails only when a subscriber is already installed, which is fine.
    let registry = tracing_subscriber::registry().with(filter);
    let _already_installed = match format {
        LogFormat::Json => {
            let mut layer = json_subscriber::fmt::layer().with_target(true).flatten_event(true);
            // A line written while a traced span's work runs names that span and its trace, so
            // that a log line leads to its trace.
            layer.inner_layer_mut().add_dynamic_field("openTelemetry", |_, _| {
                crate::spans::current_ids().map(|(trace_id, span_id)| TraceIds { trace_id, span_id })
            });
            registry.with(layer).try_init()
        }
        LogFormat::Pretty => {
            registry.with(tracing_subscriber::fmt::layer().with_target(true).with_ansi(ansi)).try_init()
        }
    };
    Ok(Telemetry { provider })
}

/// The ids a JSON log line carries under `openTelemetry`.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct TraceIds {
    span_id: String,
    trace_id: String,
}

/// The provider that batches spans and sends them to `endpoint` over OTLP/gRPC.
fn tracer_provider(endpoint: &str, service: &str) -> Result<SdkTracerProvider, StartupError> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
        .map_err(|error| StartupError::config("OTEL_EXPORTER_OTLP_ENDPOINT", error.to_string()))?;
    // The SDK's batch processor runs on a thread of its own and is woken only when a batch is
    // full or its interval ends; the variant on the Tokio runtime woke its task for every span
    // that ended. The exporter's gRPC connection itself still runs on this runtime (tonic
    // spawns it here when the exporter is built), so the thread only hands batches to it.
    let processor = BatchSpanProcessor::builder(exporter).build();
    // The default resource reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
    let mut resource = Resource::builder();
    if env("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name(service.to_owned());
    }
    Ok(SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_sampler(sampler()?)
        .with_resource(resource.build())
        .build())
}

/// The sampler `OTEL_TRACES_SAMPLER` (and `OTEL_TRACES_SAMPLER_ARG`, a ratio) name.
fn sampler() -> Result<Sampler, StartupError> {
    let ratio = || -> Result<f64, StartupError> {
        let Some(text) = env("OTEL_TRACES_SAMPLER_ARG") else { return Ok(1.0) };
        match text.parse::<f64>() {
            Ok(ratio) if (0.0..=1.0).contains(&ratio) => Ok(ratio),
            _ => Err(StartupError::config("OTEL_TRACES_SAMPLER_ARG", format!("`{text}` is not a ratio from 0 to 1"))),
        }
    };
    let name = env("OTEL_TRACES_SAMPLER").unwrap_or_else(|| "parentbased_always_on".to_owned());
    Ok(match name.as_str() {
        "always_on" => Sampler::AlwaysOn,
        "always_off" => Sampler::AlwaysOff,
        "traceidratio" => Sampler::TraceIdRatioBased(ratio()?),
        "parentbased_always_on" => Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
        "parentbased_always_off" => Sampler::ParentBased(Box::new(Sampler::AlwaysOff)),
        "parentbased_traceidratio" => Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(ratio()?))),
        other => {
            return Err(StartupError::config(
                "OTEL_TRACES_SAMPLER",
                format!(
                    "`{other}` is not one of always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio"
                ),
            ));
        }
    })
}

/// A variable's value, `None` when unset or empty.
fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.trim().is_empty())
}
