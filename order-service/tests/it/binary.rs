//! The real `order-service` binary: its configuration contract and graceful shutdown.

use std::time::Duration;

use test_support::ServiceProcess;

const BINARY: &str = env!("CARGO_BIN_EXE_order-service");

#[test]
fn malformed_settings_stop_the_binary_with_a_line_naming_them() {
    for (name, value) in [
        ("USER_SERVICE_URL", "not a url"),
        ("PRODUCT_SERVICE_URL", "ftp://products"),
        ("DATABASE_URL", "postgres"),
    ] {
        let stderr = test_support::expect_startup_failure(BINARY, &[(name, value)]);
        assert!(
            stderr
                .lines()
                .next()
                .is_some_and(|line| line.contains(name)),
            "{name}: {stderr}"
        );
    }
}

#[tokio::test]
async fn starts_without_its_peers_and_exits_cleanly_on_sigterm() {
    let data = tempfile::tempdir().expect("tempdir");
    // Nothing listens on these ports: peers are only needed per call, not to start.
    let process = ServiceProcess::start(
        BINARY,
        &[
            ("DATA_DIR", data.path().display().to_string()),
            ("USER_SERVICE_URL", "http://127.0.0.1:9".into()),
            ("PRODUCT_SERVICE_URL", "http://127.0.0.1:9".into()),
        ],
    )
    .expect("start");
    let status =
        test_support::grpc::health_status(&process.url(), order_service::SERVICE_NAME).await;
    assert_eq!(
        status.expect("health"),
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );
    let (status, _) = process
        .terminate(Duration::from_secs(5))
        .expect("terminate");
    assert!(status.success(), "exit status {status}");
    assert!(data.path().join("orders.db").exists());
}
