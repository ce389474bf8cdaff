//! The services order-service asks before it accepts an order: user-service and product-service.

use std::{collections::HashMap, time::Duration};

use proto::{
    product::{GetProductsByIdsRequest, Product, product_service_client::ProductServiceClient},
    user::{GetUserRequest, user_service_client::UserServiceClient},
};
use service_runtime::{
    ServiceError, ServiceResult,
    grpc::{PeerChannel, client_channel},
    startup::StartupError,
    tls::GrpcTls,
};
use tonic::{Code, Status};

use crate::Config;

/// How long a peer call may take before the order is refused as `UNAVAILABLE`.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Clients for the peers; cheap to clone (channels are shared).
#[derive(Debug, Clone)]
pub struct Peers {
    users: UserServiceClient<PeerChannel>,
    products: ProductServiceClient<PeerChannel>,
}

impl Peers {
    /// Validates the peer URLs and prepares channels that connect on first use.
    pub fn connect_lazy(config: &Config, tls: &GrpcTls) -> Result<Self, StartupError> {
        let users = client_channel("USER_SERVICE_URL", &config.user_service_url, CALL_TIMEOUT, tls)?;
        let products = client_channel("PRODUCT_SERVICE_URL", &config.product_service_url, CALL_TIMEOUT, tls)?;
        Ok(Self { users: UserServiceClient::new(users), products: ProductServiceClient::new(products) })
    }

    /// True when user-service knows `user_id`.
    pub async fn user_exists(&self, user_id: &str) -> ServiceResult<bool> {
        let request = GetUserRequest { id: user_id.to_owned() };
        match self.users.clone().get_user(request).await {
            Ok(_) => Ok(true),
            Err(status) if status.code() == Code::NotFound => Ok(false),
            Err(status) => Err(peer_error("user-service", status)),
        }
    }

    /// The catalog entries for `ids` that exist, by id.
    pub async fn products(&self, ids: Vec<String>) -> ServiceResult<HashMap<String, Product>> {
        let response = self
            .products
            .clone()
            .get_products_by_ids(GetProductsByIdsRequest { ids })
            .await
            .map_err(|status| peer_error("product-service", status))?;
        Ok(response.into_inner().products.into_iter().map(|product| (product.id.clone(), product)).collect())
    }
}

/// A peer that cannot be reached is `UNAVAILABLE` (the client may retry); anything else the
/// peer says is our internal problem, logged but not passed on.
fn peer_error(peer: &str, status: Status) -> ServiceError {
    match status.code() {
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => {
            tracing::warn!(peer, %status, "peer unavailable");
            ServiceError::Unavailable(format!("{peer} is unavailable, try again later"))
        }
        _ => ServiceError::internal(anyhow::anyhow!("{peer} answered {status}")),
    }
}
