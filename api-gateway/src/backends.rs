//! The three backend services, their clients, and the one wrapper every call goes through: it
//! counts the call (`gateway_backend_calls_total`) and maps errors.

use std::{future::Future, sync::Arc, time::Duration};

use futures::future::BoxFuture;
use opentelemetry::{
    KeyValue,
    trace::{SpanBuilder, SpanKind},
};

use proto::{
    order::order_service_client::OrderServiceClient, product::product_service_client::ProductServiceClient,
    user::user_service_client::UserServiceClient,
};
use service_runtime::{
    grpc::{PeerChannel, client_channel},
    spans::ExportedSpan,
    startup::StartupError,
};

use crate::{config::Config, errors};

/// Clients for the backends, shared: a clone is one reference count (the per-request loaders
/// each hold one).
#[derive(Debug, Clone)]
pub struct Backends(Arc<Clients>);

/// The backends' clients.
#[derive(Debug)]
pub struct Clients {
    pub users: UserServiceClient<PeerChannel>,
    pub products: ProductServiceClient<PeerChannel>,
    pub orders: OrderServiceClient<PeerChannel>,
    /// For `/health`: each backend's name, gRPC service name and channel.
    pub health_targets: Vec<(&'static str, &'static str, PeerChannel)>,
}

impl Backends {
    /// Prepares lazily connecting channels: the gateway starts even while a backend is down.
    pub fn connect_lazy(config: &Config) -> Result<Self, StartupError> {
        let timeout = config.backend_timeout();
        let tls = config.runtime.grpc_tls.load()?;
        let users = client_channel("USER_SERVICE_URL", &config.user_service_url, timeout, &tls)?;
        let products = client_channel("PRODUCT_SERVICE_URL", &config.product_service_url, timeout, &tls)?;
        let orders = client_channel("ORDER_SERVICE_URL", &config.order_service_url, timeout, &tls)?;
        Ok(Self(Arc::new(Clients {
            users: UserServiceClient::new(users.clone()),
            products: ProductServiceClient::new(products.clone()),
            orders: OrderServiceClient::new(orders.clone()),
            health_targets: vec![
                ("user-service", proto::user::user_service_server::SERVICE_NAME, users),
                ("product-service", proto::product::product_service_server::SERVICE_NAME, products),
                ("order-service", proto::order::order_service_server::SERVICE_NAME, orders),
            ],
        })))
    }
}

impl std::ops::Deref for Backends {
    type Target = Clients;

    fn deref(&self) -> &Clients {
        &self.0
    }
}

/// One backend call: counts it, unwraps the response, maps a failure.
///
/// The call runs in a box of its own, freed when it is answered. A resolver's future holds
/// whatever it awaits inline, and the GraphQL execution keeps a subscription's resolver
/// future for as long as the subscription lasts: with the call inline, each subscription kept
/// some 6 KiB of a finished call, and each request in flight as much per call.
pub fn call<'a, T: Send + 'a>(
    service: &'static str,
    method: &'static str,
    response: impl Future<Output = Result<tonic::Response<T>, tonic::Status>> + Send + 'a,
) -> BoxFuture<'a, async_graphql::Result<T>> {
    Box::pin(async move {
        metrics::counter!("gateway_backend_calls_total", "service" => service, "method" => method).increment(1);
        let span = ExportedSpan::start_here(|| {
            SpanBuilder::from_name(format!("{service}/{method}")).with_kind(SpanKind::Client).with_attributes([
                KeyValue::new("rpc.system", "grpc"),
                KeyValue::new("peer.service", service),
                KeyValue::new("rpc.method", method),
            ])
        });
        match span.run(response).await {
            Ok(response) => Ok(response.into_inner()),
            Err(status) => Err(errors::from_status(service, status)),
        }
    })
}

/// The health of each backend, as `/health` reports it: SERVING, NOT_SERVING or UNREACHABLE.
pub async fn health(backends: &Backends, timeout: Duration) -> Vec<(&'static str, String)> {
    let checks = backends.health_targets.iter().map(|(name, service, channel)| {
        let mut client = tonic_health::pb::health_client::HealthClient::new(channel.clone());
        let request = tonic_health::pb::HealthCheckRequest { service: (*service).to_owned() };
        async move {
            let status = match tokio::time::timeout(timeout, client.check(request)).await {
                Ok(Ok(response)) => response.into_inner().status().as_str_name().to_owned(),
                _ => "UNREACHABLE".to_owned(),
            };
            (*name, status)
        }
    });
    futures::future::join_all(checks).await
}

/// Like [`call`], for lookups where "not found" is an answer (`null`), not an error.
pub fn call_optional<'a, T: Send + 'a>(
    service: &'static str,
    method: &'static str,
    response: impl Future<Output = Result<tonic::Response<T>, tonic::Status>> + Send + 'a,
) -> BoxFuture<'a, async_graphql::Result<Option<T>>> {
    call(service, method, async {
        match response.await {
            Err(status) if status.code() == tonic::Code::NotFound => Ok(tonic::Response::new(None)),
            other => other.map(|response| response.map(Some)),
        }
    })
}
