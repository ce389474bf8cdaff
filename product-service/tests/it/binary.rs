//! The real `product-service` binary: its configuration contract and graceful shutdown.

const BINARY: &str = env!("CARGO_BIN_EXE_product-service");

#[test]
fn malformed_settings_stop_the_binary_with_a_line_naming_them() {
    for (name, value) in
        [("LISTEN_ADDR", "localhost"), ("DATABASE_URL", "redis://cache"), ("SHUTDOWN_TIMEOUT_SECS", "-1")]
    {
        let stderr = test_support::expect_startup_failure(BINARY, &[(name, value)]);
        assert!(stderr.lines().next().is_some_and(|line| line.contains(name)), "{name}: {stderr}");
    }
}

#[tokio::test]
async fn sigterm_exits_cleanly_and_data_lands_in_data_dir() {
    test_support::assert_serves_until_sigterm(BINARY, product_service::SERVICE_NAME, &[], "products.db").await;
}
