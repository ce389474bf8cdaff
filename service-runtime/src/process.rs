//! The body of every service binary: log, build, serve until SIGTERM or Ctrl-C, report.

use std::{fmt::Display, future::Future, process::ExitCode};

use crate::{GrpcServer, config::RuntimeArgs, grpc::StartupError};

/// Something that serves until a shutdown future resolves: a gRPC service or the gateway.
pub trait Serve {
    type Error: Display;

    fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = Result<(), Self::Error>>;
}

impl Serve for GrpcServer {
    type Error = tonic::transport::Error;

    fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = Result<(), Self::Error>> {
        self.run(shutdown)
    }
}

/// Initialises logging, awaits `build`, and serves until a shutdown signal.
///
/// A startup failure is printed as one line naming the setting or resource at fault, and the
/// process exits with status 1; logs may be JSON, so the line goes to stderr directly.
pub async fn run_service<S: Serve>(
    name: &str,
    runtime: &RuntimeArgs,
    build: impl Future<Output = Result<S, StartupError>>,
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
    match server.serve(crate::shutdown::signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{name}: server failed: {error}");
            ExitCode::FAILURE
        }
    }
}
