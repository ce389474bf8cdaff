//! The reference points: what this machine does with no application behind the request. A bare
//! axum handler (`GET /`), a trivial async-graphql resolver (`{ hello }` on `POST /graphql`), and
//! the gRPC health check on a tonic server that serves nothing else.

use std::{future::Future, net::SocketAddr};

use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema};
use axum::{Router, routing::get, serve::ListenerExt as _};
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;

/// The trivial GraphQL query type.
#[derive(Debug)]
struct Query;

#[Object]
impl Query {
    /// A constant: what GraphQL parsing, validation and execution cost on their own.
    async fn hello(&self) -> &'static str {
        "Hello, World!"
    }
}

/// The bound listeners, so callers learn the ports before serving starts.
#[derive(Debug)]
pub struct ReferenceServers {
    http: TcpListener,
    grpc: TcpListener,
}

impl ReferenceServers {
    pub async fn bind(http: SocketAddr, grpc: SocketAddr) -> std::io::Result<Self> {
        Ok(Self { http: TcpListener::bind(http).await?, grpc: TcpListener::bind(grpc).await? })
    }

    pub fn http_addr(&self) -> std::io::Result<SocketAddr> {
        self.http.local_addr()
    }

    pub fn grpc_addr(&self) -> std::io::Result<SocketAddr> {
        self.grpc.local_addr()
    }

    /// Serves both until `shutdown` resolves.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let schema = Schema::new(Query, EmptyMutation, EmptySubscription);
        let app = Router::new()
            .route("/", get(|| async { "Hello, World!" }))
            .route_service("/graphql", async_graphql_axum::GraphQL::new(schema));
        let (stop_grpc, grpc_stopped) = tokio::sync::oneshot::channel::<()>();
        let http = axum::serve(
            self.http.tap_io(|tcp| {
                // A socket that refuses it still works, only slower.
                let _ = tcp.set_nodelay(true);
            }),
            app,
        )
        .with_graceful_shutdown(async move {
            shutdown.await;
            let _ = stop_grpc.send(());
        });

        let (_reporter, health) = tonic_health::server::health_reporter();
        // As in the services: nodelay on the accepted sockets, which the builder would not set.
        let incoming = TcpIncoming::from(self.grpc).with_nodelay(Some(true));
        let grpc = tonic::transport::Server::builder().add_service(health).serve_with_incoming_shutdown(
            incoming,
            async move {
                let _ = grpc_stopped.await;
            },
        );
        let (http, grpc) = tokio::join!(http, grpc);
        http?;
        grpc?;
        Ok(())
    }
}
