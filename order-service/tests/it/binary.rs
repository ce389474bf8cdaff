//! The real `order-service` binary: its configuration contract and graceful shutdown.

const BINARY: &str = env!("CARGO_BIN_EXE_order-service");

#[test]
fn malformed_settings_stop_the_binary_with_a_line_naming_them() {
    for (name, value) in
        [("USER_SERVICE_URL", "not a url"), ("PRODUCT_SERVICE_URL", "ftp://products"), ("DATABASE_URL", "postgres")]
    {
        let stderr = test_support::expect_startup_failure(BINARY, &[(name, value)]);
        assert!(stderr.lines().next().is_some_and(|line| line.contains(name)), "{name}: {stderr}");
    }
}

#[tokio::test]
async fn starts_without_its_peers_and_exits_cleanly_on_sigterm() {
    // Nothing listens on port 9: peers are needed per call, not to start.
    let peers =
        [("USER_SERVICE_URL", "http://127.0.0.1:9".into()), ("PRODUCT_SERVICE_URL", "http://127.0.0.1:9".into())];
    test_support::assert_serves_until_sigterm(BINARY, order_service::SERVICE_NAME, &peers, "orders.db").await;
}
