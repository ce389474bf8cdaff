//! Structured logging: JSON for machines, pretty for people, filtered by `RUST_LOG`.

use tracing_subscriber::{EnvFilter, filter::LevelFilter};

/// The log output format (`LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Json,
    Pretty,
}

/// Installs the global subscriber. A malformed `RUST_LOG` is an error naming it.
///
/// Calling it again (as tests that start several services in one process do) is harmless.
pub fn init(format: LogFormat) -> Result<(), crate::grpc::StartupError> {
    let directives = std::env::var("RUST_LOG").unwrap_or_default();
    let filter = EnvFilter::builder()
        .with_default_directive(LevelFilter::INFO.into())
        .parse(&directives)
        .map_err(|error| crate::grpc::StartupError::config("RUST_LOG", error.to_string()))?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(true);
    // `try_init` fails only when a subscriber is already installed, which is fine.
    let _already_installed = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
    Ok(())
}
