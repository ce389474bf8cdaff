//! TLS between the processes: with certificates made for the test, every gRPC call (gateway to
//! services, order-service to its peers) goes over mutual TLS and the saga runs as before, while
//! each server refuses a plaintext client, a client without a certificate and a client whose
//! certificate another CA signed.

use std::time::Duration;

use serde_json::json;
use service_runtime::{
    process::{ServingStatus, grpc_health_status},
    tls::{GrpcTls, GrpcTlsArgs},
};
use test_support::{SystemProcesses, TestCertificates};

use crate::{
    helpers::{GatewayClient as _, TestSystem},
    saga::{CREATE_ORDER, wait_until_decided},
};

/// A client's TLS settings: trusting `ca`, presenting `cert`/`key` when given.
fn client(certificates: &TestCertificates, ca: &str, identity: Option<(&str, &str)>) -> GrpcTls {
    GrpcTlsArgs {
        ca: Some(certificates.path(ca)),
        cert: identity.map(|(cert, _)| certificates.path(cert)),
        key: identity.map(|(_, key)| certificates.path(key)),
        require_client_cert: false,
    }
    .load()
    .expect("client TLS settings")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_system_runs_over_mutual_tls_and_every_server_refuses_other_clients() {
    let certificates = TestCertificates::generate().expect("certificates");
    let processes = SystemProcesses::start_everywhere(
        test_support::DatabaseKind::Sqlite,
        &[],
        &[],
        &certificates.grpc_envs(true),
        true,
    )
    .await
    .expect("start the system");
    let system = TestSystem::from(processes);

    // Logging in, creating a product and placing an order call every service; the order's
    // creation checks the user and the products from order-service, over TLS too.
    let admin = system.admin_token().await;
    let (user, token) = system.sign_up("tls@example.com").await;
    let lamp = system.product(&admin, "Lamp", 10.0, 5).await;
    let order = system.ok(CREATE_ORDER, json!({ "user": user, "p": lamp, "q": 1 }), Some(&token)).await;
    let order = order["createOrder"]["id"].as_str().expect("order id").to_owned();
    let decided = wait_until_decided(&system, &admin, &[order], Duration::from_secs(30)).await;
    assert!(decided.values().all(|status| status == "CONFIRMED"), "{decided:?}");

    let trusted = client(&certificates, "ca.pem", Some(("cert.pem", "key.pem")));
    let without_certificate = client(&certificates, "ca.pem", None);
    let stranger = client(&certificates, "ca.pem", Some(("stranger-cert.pem", "stranger-key.pem")));
    let distrusting = client(&certificates, "stranger-cert.pem", Some(("cert.pem", "key.pem")));
    for backend in [&system.users, &system.products, &system.orders] {
        let address = backend.url.trim_start_matches("http://");
        let (plain, secure) = (format!("http://{address}"), format!("https://{address}"));
        let status = grpc_health_status(&secure, "", &trusted).await;
        assert_eq!(status, Ok(ServingStatus::Serving), "{}: a client of the CA is served", backend.name);
        for (client, url, who) in [
            (&GrpcTls::default(), &plain, "a plaintext client"),
            (&without_certificate, &secure, "a client without a certificate"),
            (&stranger, &secure, "a client whose certificate another CA signed"),
            (&distrusting, &secure, "a client that does not trust the server's CA"),
        ] {
            let refused = grpc_health_status(url, "", client).await;
            assert!(refused.is_err(), "{}: {who} got {refused:?}", backend.name);
        }
    }
}
