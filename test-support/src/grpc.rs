//! gRPC checks: the standard health protocol, reflection, and error statuses.

use anyhow::Context as _;
use service_runtime::process::ServingStatus;

async fn channel(url: &str) -> anyhow::Result<tonic::transport::Channel> {
    Ok(tonic::transport::Endpoint::from_shared(url.to_owned())?.connect().await?)
}

/// The health status `url` reports for `service` (`""` for the server as a whole).
pub async fn health_status(url: &str, service: &str) -> anyhow::Result<ServingStatus> {
    service_runtime::process::grpc_health_status(url, service, &Default::default()).await.map_err(anyhow::Error::msg)
}

/// Asks the reflection service of one protocol version (the module of its generated types)
/// for the list of services.
macro_rules! list_services {
    ($version:path, $channel:expr) => {{
        use $version::{
            ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
            server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
        };
        let mut client = ServerReflectionClient::new($channel);
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut responses = client.server_reflection_info(tokio_stream::once(request)).await?.into_inner();
        let response = responses.message().await?.context("no reflection response")?;
        match response.message_response {
            Some(MessageResponse::ListServicesResponse(list)) => {
                list.service.into_iter().map(|service| service.name).collect::<Vec<String>>()
            }
            other => anyhow::bail!("unexpected reflection response: {other:?}"),
        }
    }};
}

/// The service names `url` lists through gRPC reflection, asked in both protocol versions the
/// servers speak: `v1`, then `v1alpha`.
pub async fn reflected_services(url: &str) -> anyhow::Result<[Vec<String>; 2]> {
    let channel = channel(url).await?;
    let v1 = list_services!(tonic_reflection::pb::v1, channel.clone());
    let v1alpha = list_services!(tonic_reflection::pb::v1alpha, channel);
    Ok([v1, v1alpha])
}

/// Asserts `result` failed with `code` and a message starting with `prefix` (the field name,
/// for `INVALID_ARGUMENT`).
#[track_caller]
pub fn assert_status<T: std::fmt::Debug>(result: Result<T, tonic::Status>, code: tonic::Code, prefix: &str) {
    let status = result.expect_err("expected an error");
    assert_eq!(status.code(), code, "{status:?}");
    assert!(status.message().starts_with(prefix), "message {:?} should start with {prefix:?}", status.message());
}

/// The SERVING status, for callers that compare against it.
pub const SERVING: ServingStatus = ServingStatus::Serving;

/// Asserts the server at `url` reports `service` SERVING over the health protocol and lists it,
/// and the health service, through reflection in both versions.
pub async fn assert_health_and_reflection(url: &str, service: &str) {
    assert_eq!(health_status(url, service).await.expect("health check"), SERVING);
    let [v1, v1alpha] = reflected_services(url).await.expect("reflection");
    for (version, services) in [("v1", v1), ("v1alpha", v1alpha)] {
        for expected in [service, "grpc.health.v1.Health"] {
            assert!(services.iter().any(|name| name == expected), "{version}: {expected} missing from {services:?}");
        }
    }
}
