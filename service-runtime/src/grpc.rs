//! Serving a service over gRPC with the standard health protocol and reflection, and stopping
//! it gracefully: on shutdown, health turns NOT_SERVING, new connections are refused, and
//! in-flight calls get a drain timeout to finish.

use std::{future::Future, net::SocketAddr, pin::Pin, time::Duration};

use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tokio_util::sync::CancellationToken;
use tonic::{service::Routes, transport::server::TcpIncoming};
use tonic_health::{ServingStatus, server::HealthReporter};

use crate::{drain::InFlight, rpc_metrics::RpcMetrics, startup::StartupError, tls::GrpcTls};

/// How long to keep connections open after the last call finished, so its response is sent.
const FLUSH_GRACE: Duration = Duration::from_millis(100);

/// Work that runs beside a server (an outbox relay, event consumers): started with it, told
/// to stop through the token once the server has drained.
pub type BackgroundTask = Box<dyn FnOnce(CancellationToken) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// How long background tasks get to finish after they are told to stop.
const BACKGROUND_STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// A bound gRPC server, ready to run. Binding happens in [`GrpcServer::bind`], so the address
/// (port 0 in tests) is known before serving starts.
pub struct GrpcServer {
    listener: TcpListener,
    local_addr: SocketAddr,
    routes: Routes,
    health: HealthReporter,
    service_names: Vec<&'static str>,
    drain_timeout: Duration,
    /// The server builder, with its TLS acceptor when it serves TLS (built once, at bind).
    builder: tonic::transport::Server,
    serves_tls: bool,
    background: Vec<BackgroundTask>,
}

impl std::fmt::Debug for GrpcServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcServer")
            .field("local_addr", &self.local_addr)
            .field("services", &self.service_names)
            .field("tls", &self.serves_tls)
            .field("background_tasks", &self.background.len())
            .finish_non_exhaustive()
    }
}

impl GrpcServer {
    /// Binds `addr` and prepares `routes` plus health and reflection, served over TLS when
    /// `tls` has a certificate. Every service in `service_names` reports SERVING from here on,
    /// since its database is already migrated.
    pub async fn bind(
        addr: SocketAddr,
        routes: Routes,
        service_names: &[&'static str],
        drain_timeout: Duration,
        tls: &GrpcTls,
    ) -> Result<Self, StartupError> {
        let serves_tls = tls.serves_tls();
        let mut builder = tonic::transport::Server::builder();
        if let Some(config) = tls.server_config() {
            // A key that does not match its certificate is found here, at start.
            builder = builder
                .tls_config(config)
                .map_err(|error| StartupError::config("GRPC_TLS_CERT", crate::error::with_causes(&error)))?;
        }
        let listener = TcpListener::bind(addr).await.map_err(|source| StartupError::Bind { addr, source })?;
        let local_addr = listener.local_addr().map_err(|source| StartupError::Bind { addr, source })?;

        let (health, health_service) = tonic_health::server::health_reporter();
        for name in service_names {
            health.set_service_status(*name, ServingStatus::Serving).await;
        }
        // Reflection in both versions: grpcurl and most tools speak `v1`, but Python's
        // grpcio-reflection, older grpcurl builds and several GUI clients still ask `v1alpha`.
        let reflection = || {
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        };
        let routes = routes
            .add_service(health_service)
            .add_service(reflection().build_v1()?)
            .add_service(reflection().build_v1alpha()?);
        Ok(Self {
            listener,
            local_addr,
            routes,
            health,
            service_names: service_names.to_vec(),
            drain_timeout,
            builder,
            serves_tls,
            background: Vec::new(),
        })
    }

    /// Adds work to run beside the server.
    pub fn with_background(mut self, task: BackgroundTask) -> Self {
        self.background.push(task);
        self
    }

    /// The address actually bound (the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` resolves, then drains for at most the drain timeout.
    pub async fn run(mut self, shutdown: impl Future<Output = ()> + Send) -> Result<(), tonic::transport::Error> {
        let stop_background = CancellationToken::new();
        let background: Vec<_> = std::mem::take(&mut self.background)
            .into_iter()
            .map(|task| tokio::spawn(task(stop_background.child_token())))
            .collect();
        let result = self.serve(shutdown).await;
        stop_background.cancel();
        if tokio::time::timeout(BACKGROUND_STOP_TIMEOUT, futures_join(background)).await.is_err() {
            tracing::warn!("background tasks did not stop in time");
        }
        result
    }

    async fn serve(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), tonic::transport::Error> {
        let stop_accepting = CancellationToken::new();
        let in_flight = InFlight::default();
        // The builder's `tcp_nodelay` applies only to listeners tonic binds itself; without it
        // on ours, Nagle's algorithm met delayed ACKs and larger answers waited 40 ms.
        let incoming = TcpIncoming::from(self.listener).with_nodelay(Some(true));
        let server = self
            .builder
            .layer(in_flight.clone())
            .layer(RpcMetrics)
            .add_routes(self.routes)
            .serve_with_incoming_shutdown(incoming, stop_accepting.clone().cancelled_owned());
        tokio::pin!(server);
        tracing::info!(addr = %self.local_addr, services = ?self.service_names, "gRPC server listening");

        tokio::select! {
            result = &mut server => return result,
            () = shutdown => {}
        }
        for name in &self.service_names {
            self.health.set_service_status(*name, ServingStatus::NotServing).await;
        }
        stop_accepting.cancel();
        // hyper's own graceful shutdown waits for every client to close its connection, and
        // an idle client (the gateway keeps one open) holds it until the timeout (hyper#4170).
        // What must not be lost are the calls in flight, so the drain ends when they are done.
        let drained = async {
            in_flight.wait_idle().await;
            // Give the connections a moment to flush the last responses.
            tokio::time::sleep(FLUSH_GRACE).await;
        };
        let result = tokio::time::timeout(self.drain_timeout, async {
            tokio::select! {
                result = &mut server => result,
                () = drained => Ok(()),
            }
        })
        .await;
        match result {
            Ok(result) => {
                tracing::info!("gRPC server stopped");
                result
            }
            Err(_) => {
                tracing::warn!(
                    timeout = ?self.drain_timeout,
                    calls = in_flight.count(),
                    "drain timeout reached, abandoning in-flight calls"
                );
                Ok(())
            }
        }
    }

    /// Runs the server on a task and returns a handle that stops it; for tests and embedding.
    pub fn spawn(self) -> RunningServer {
        let local_addr = self.local_addr;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(self.run(async {
            // A dropped sender also stops the server.
            let _ = stopped.await;
        }));
        RunningServer { local_addr, stop: Some(stop), task }
    }
}

/// A server running on a task. Dropping it stops the server too.
#[derive(Debug)]
pub struct RunningServer {
    local_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl RunningServer {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://<addr>`, as clients connect to it.
    pub fn url(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    /// Stops the server and waits until it has drained.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await??;
        Ok(())
    }
}

pub use crate::balance::{PeerChannel, client_channel};

async fn futures_join(handles: Vec<JoinHandle<()>>) {
    for handle in handles {
        let _ = handle.await;
    }
}
