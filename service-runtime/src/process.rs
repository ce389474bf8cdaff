//! The body of every service binary: log, build, serve until SIGTERM or Ctrl-C, report.

use std::{
    fmt::Display,
    future::Future,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    process::ExitCode,
    time::Duration,
};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
pub use tonic_health::pb::health_check_response::ServingStatus;

use crate::{GrpcServer, config::RuntimeArgs, startup::StartupError, tls::GrpcTls};

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

/// How `--health-check` probes a running instance.
#[derive(Debug, Clone, Copy)]
pub enum Probe {
    /// The gRPC health protocol, for this service name, on the instance's `LISTEN_ADDR`.
    Grpc { listen_addr: SocketAddr, service: &'static str },
    /// `GET <path>` answering 200, on the instance's `LISTEN_ADDR`.
    Http { listen_addr: SocketAddr, path: &'static str },
}

/// How long a health check may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

impl Probe {
    /// Checks the instance; the error says what is wrong, in one line.
    pub async fn check(self, tls: &GrpcTls) -> Result<(), String> {
        let result = match self {
            Self::Grpc { listen_addr, service } => {
                tokio::time::timeout(PROBE_TIMEOUT, grpc_serving(reachable(listen_addr), service, tls)).await
            }
            Self::Http { listen_addr, path } => {
                tokio::time::timeout(PROBE_TIMEOUT, http_ok(reachable(listen_addr), path)).await
            }
        };
        result.unwrap_or_else(|_| Err(format!("no answer within {PROBE_TIMEOUT:?}")))
    }
}

/// A wildcard listen address (0.0.0.0, ::) is reached through loopback.
fn reachable(listen_addr: SocketAddr) -> SocketAddr {
    match listen_addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::new(Ipv4Addr::LOCALHOST.into(), listen_addr.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::new(Ipv6Addr::LOCALHOST.into(), listen_addr.port()),
        _ => listen_addr,
    }
}

async fn grpc_serving(addr: SocketAddr, service: &str, tls: &GrpcTls) -> Result<(), String> {
    match grpc_health_status(&tls.own_url(addr), service, tls).await? {
        ServingStatus::Serving => Ok(()),
        status => Err(format!("{service} is {}", status.as_str_name())),
    }
}

/// The status the gRPC server at `url` reports for `service` over the standard health
/// protocol (`""` for the server as a whole). The one health client everything here uses.
/// An `https://` URL is reached with `tls`, whose certificate must name `localhost`.
pub async fn grpc_health_status(url: &str, service: &str, tls: &GrpcTls) -> Result<ServingStatus, String> {
    let mut endpoint = tonic::transport::Endpoint::from_shared(url.to_owned()).map_err(|error| error.to_string())?;
    if url.starts_with("https://") {
        let config = tls.client_config("localhost").ok_or("an https:// URL needs GRPC_TLS_CA")?;
        endpoint = endpoint.tls_config(config).map_err(|error| format!("GRPC_TLS_CA: {error}"))?;
    }
    let channel = endpoint.connect().await.map_err(|error| format!("cannot connect to {url}: {error}"))?;
    let request = tonic_health::pb::HealthCheckRequest { service: service.to_owned() };
    let response = tonic_health::pb::health_client::HealthClient::new(channel)
        .check(request)
        .await
        .map_err(|status| format!("health check failed: {}", status.message()))?;
    Ok(response.into_inner().status())
}

async fn http_ok(addr: SocketAddr, path: &str) -> Result<(), String> {
    let mut stream =
        tokio::net::TcpStream::connect(addr).await.map_err(|error| format!("cannot connect to {addr}: {error}"))?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.map_err(|error| error.to_string())?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.map_err(|error| error.to_string())?;
    let status_line = String::from_utf8_lossy(&response).lines().next().unwrap_or_default().to_owned();
    if status_line.starts_with("HTTP/1.1 200") { Ok(()) } else { Err(format!("GET {path} answered {status_line:?}")) }
}

/// Runs `service` (a [`run_service`] future) on a multi-threaded runtime whose workers hand
/// memory they no longer use back to the system before they go idle.
pub fn block_on(service: impl Future<Output = ExitCode>) -> ExitCode {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_park(crate::allocator::collect_before_park)
        .build()
    {
        Ok(runtime) => runtime.block_on(service),
        Err(error) => {
            eprintln!("could not start the async runtime: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Initialises logging, awaits `build`, and serves until a shutdown signal. With
/// `--health-check`, probes the running instance instead and exits.
///
/// A startup failure is printed as one line naming the setting or resource at fault, and the
/// process exits with status 1; logs may be JSON, so the line goes to stderr directly.
pub async fn run_service<S: Serve>(
    name: &'static str,
    runtime: &RuntimeArgs,
    probe: Probe,
    build: impl Future<Output = Result<S, StartupError>>,
) -> ExitCode {
    // Set before main already on Linux (naming the constructor keeps it linked in); elsewhere
    // this is as early as it gets.
    #[cfg(target_os = "linux")]
    std::hint::black_box(&crate::allocator::CONFIGURE_BEFORE_MAIN);
    crate::allocator::return_freed_memory_promptly();
    if runtime.health_check {
        let checked = match runtime.grpc_tls.load() {
            Ok(tls) => probe.check(&tls).await,
            Err(error) => Err(error.to_string()),
        };
        return match checked {
            Ok(()) => ExitCode::SUCCESS,
            Err(problem) => {
                eprintln!("{name}: unhealthy: {problem}");
                ExitCode::FAILURE
            }
        };
    }
    // Listening for SIGTERM starts before anything is bound, so that no window exists in which
    // the service answers health checks but a SIGTERM would kill it outright.
    let shutdown = crate::shutdown::signal();
    let telemetry = match crate::telemetry::init(runtime.log_format, name) {
        Ok(telemetry) => telemetry,
        Err(error) => {
            eprintln!("{name}: {error}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(addr) = runtime.metrics_addr
        && let Err(error) = crate::metrics::serve(addr).await
    {
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
    let served = server.serve(shutdown).await;
    telemetry.shutdown().await;
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{name}: server failed: {error}");
            ExitCode::FAILURE
        }
    }
}
