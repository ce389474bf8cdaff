//! The body of every service binary: log, build, serve until SIGTERM or Ctrl-C, report.

use std::{future::Future, process::ExitCode};

use crate::{GrpcServer, config::RuntimeArgs, grpc::StartupError};

/// Initialises logging, awaits `build`, and serves until a shutdown signal.
///
/// A startup failure is printed as one line naming the setting or resource at fault, and the
/// process exits with status 1; logs may be JSON, so the line goes to stderr directly.
pub async fn run_service(
    name: &str,
    runtime: &RuntimeArgs,
    build: impl Future<Output = Result<GrpcServer, StartupError>>,
) -> ExitCode {
    if let Err(error) = crate::telemetry::init(runtime.log_format) {
        eprintln!("{name}: {error}");
        return ExitCode::FAILURE;
    }
    let server = match build.await {
        Ok(server) => server,
        Err(error) => {
            eprintln!("{name}: {error}");
            return ExitCode::FAILURE;
        }
    };
    match server.run(crate::shutdown::signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{name}: gRPC server failed: {error}");
            ExitCode::FAILURE
        }
    }
}
