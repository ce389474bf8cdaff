//! api-gateway: one GraphQL schema over the user, product and order services.
//!
//! [`build`] prepares the backend clients (connected lazily, so the gateway starts while a
//! backend is down), the schema with its limits and the HTTP router, and binds the port; the
//! returned [`Gateway`] serves until a shutdown future resolves.

mod auth;
mod backends;
mod cache;
mod client_addr;
mod config;
mod documents;
mod errors;
mod feed;
mod followers;
#[doc(hidden)]
pub mod fuzzing;
pub mod graphiql;
mod graphql_http;
mod http;
mod operation_shape;
pub mod schema;
mod subscription_slots;
#[cfg(test)]
mod toy_schema;

use std::{future::Future, net::SocketAddr, time::Duration};

use axum::serve::ListenerExt as _;
use service_runtime::{process::Serve, startup::StartupError};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::{Config, Limits};

/// A bound gateway, ready to serve.
#[derive(Debug)]
pub struct Gateway {
    listener: TcpListener,
    local_addr: SocketAddr,
    router: axum::Router,
    drain_timeout: Duration,
    feed: feed::EventFeed,
    kafka: events::KafkaArgs,
}

/// Checks the configuration, prepares everything and binds.
pub async fn build(config: Config) -> Result<Gateway, StartupError> {
    let secret = config.jwt_secret()?;
    config.kafka.check()?;
    let auth = auth::Auth::new(secret.expose().as_bytes(), Duration::from_secs(config.jwt_ttl_secs));
    let backends = backends::Backends::connect_lazy(&config)?;
    // Before anything registers a metric handle (the caches do).
    http::prometheus();
    let feed = feed::EventFeed::new(
        config.kafka.enabled(),
        Duration::from_millis(config.subscription_feed_idle_ms),
        Duration::from_millis(config.cache_ttl_ms),
    );
    let schemas = schema::build(backends.clone(), auth.clone(), feed.clone(), &config.limits);
    let router = http::router(
        http::AppState {
            schemas,
            backends,
            auth,
            documents: documents::DocumentCache::default(),
            caches: feed.caches().clone(),
            subscription_slots: subscription_slots::SubscriptionSlots::new(
                config.limits.max_subscriptions_per_client,
                config.limits.max_subscriptions,
            ),
            max_message_bytes: config.limits.max_body_bytes,
            shape: operation_shape::ShapeLimits {
                max_aliases: config.limits.max_aliases,
                max_root_fields: config.limits.max_root_fields,
                max_depth: config.limits.max_query_depth,
                max_complexity: config.limits.max_query_complexity,
            },
        },
        &config.limits,
    );
    let addr = config.listen_addr;
    let listener = TcpListener::bind(addr).await.map_err(|source| StartupError::Bind { addr, source })?;
    let local_addr = listener.local_addr().map_err(|source| StartupError::Bind { addr, source })?;
    Ok(Gateway {
        listener,
        local_addr,
        router,
        drain_timeout: config.runtime.shutdown_timeout(),
        feed,
        kafka: config.kafka,
    })
}

impl Gateway {
    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` resolves, then lets requests in flight finish, for at most the
    /// drain timeout.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        tracing::info!(addr = %self.local_addr, "HTTP server listening");
        let stop_feed = CancellationToken::new();
        let feed = tokio::spawn(feed::run(self.feed, self.kafka, stop_feed.clone()));
        let result = Self::serve(self.listener, self.router, self.drain_timeout, shutdown).await;
        stop_feed.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(5), feed).await;
        result
    }

    async fn serve(
        listener: TcpListener,
        router: axum::Router,
        drain_timeout: Duration,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let signalled = CancellationToken::new();
        let on_signal = signalled.clone();
        let app = router.into_make_service_with_connect_info::<SocketAddr>();
        // Answers go out as soon as they are written, not held back by Nagle's algorithm.
        let listener = listener.tap_io(|tcp| {
            if let Err(error) = tcp.set_nodelay(true) {
                tracing::warn!(%error, "cannot set TCP_NODELAY on a client connection");
            }
        });
        let server = axum::serve(listener, app).with_graceful_shutdown(async move {
            shutdown.await;
            on_signal.cancel();
        });
        let server = std::future::IntoFuture::into_future(server);
        tokio::pin!(server);
        tokio::select! {
            result = &mut server => return result,
            () = signalled.cancelled() => {}
        }
        match tokio::time::timeout(drain_timeout, server).await {
            Ok(result) => {
                tracing::info!("HTTP server stopped");
                result
            }
            Err(_) => {
                tracing::warn!(timeout = ?drain_timeout, "drain timeout reached, closing open connections");
                Ok(())
            }
        }
    }
}

impl Serve for Gateway {
    type Error = std::io::Error;

    fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = Result<(), Self::Error>> {
        self.run(shutdown)
    }
}
