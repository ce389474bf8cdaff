//! The real `product-service` binary: its configuration contract and graceful shutdown.

use std::time::Duration;

use test_support::ServiceProcess;

const BINARY: &str = env!("CARGO_BIN_EXE_product-service");

#[test]
fn malformed_settings_stop_the_binary_with_a_line_naming_them() {
    for (name, value) in [
        ("LISTEN_ADDR", "localhost"),
        ("DATABASE_URL", "redis://cache"),
        ("SHUTDOWN_TIMEOUT_SECS", "-1"),
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
async fn sigterm_exits_cleanly_and_data_lands_in_data_dir() {
    let data = tempfile::tempdir().expect("tempdir");
    let process = ServiceProcess::start(BINARY, &[("DATA_DIR", data.path().display().to_string())])
        .expect("start");
    let status =
        test_support::grpc::health_status(&process.url(), product_service::SERVICE_NAME).await;
    assert_eq!(
        status.expect("health"),
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );
    let (status, _) = process
        .terminate(Duration::from_secs(5))
        .expect("terminate");
    assert!(status.success(), "exit status {status}");
    assert!(data.path().join("products.db").exists());
}
