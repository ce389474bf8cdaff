//! The real `api-gateway` binary refuses a missing or malformed setting with one line naming it.

const BINARY: &str = env!("CARGO_BIN_EXE_api-gateway");
const SECRET: &str = "a-secret-that-is-long-enough-for-hs256";

#[test]
fn malformed_settings_stop_the_gateway_with_a_line_naming_them() {
    for (envs, name) in [
        (vec![], "JWT_SECRET"),
        (vec![("JWT_SECRET", "short")], "JWT_SECRET"),
        (vec![("JWT_SECRET", SECRET), ("USER_SERVICE_URL", "users:50051")], "USER_SERVICE_URL"),
        (vec![("JWT_SECRET", SECRET), ("ORDER_SERVICE_URL", "ftp://orders")], "ORDER_SERVICE_URL"),
        (vec![("JWT_SECRET", SECRET), ("RATE_LIMIT_PER_SECOND", "0")], "RATE_LIMIT_PER_SECOND"),
        (vec![("JWT_SECRET", SECRET), ("MAX_QUERY_DEPTH", "deep")], "MAX_QUERY_DEPTH"),
        (
            vec![
                ("JWT_SECRET", SECRET),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317"),
                ("OTEL_TRACES_SAMPLER", "sometimes"),
            ],
            "OTEL_TRACES_SAMPLER",
        ),
        (
            vec![
                ("JWT_SECRET", SECRET),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317"),
                ("OTEL_TRACES_SAMPLER", "traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", "2"),
            ],
            "OTEL_TRACES_SAMPLER_ARG",
        ),
    ] {
        let stderr = test_support::expect_startup_failure(BINARY, &envs);
        assert!(stderr.lines().next().is_some_and(|line| line.contains(name)), "{envs:?}: {stderr}");
        for (_, secret) in envs.iter().filter(|(key, _)| *key == "JWT_SECRET") {
            assert!(!stderr.contains(secret), "the secret was echoed: {stderr}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_health_check_mode_reports_on_the_running_gateway() {
    let system = crate::helpers::spawn_system().await;
    let addr = system.gateway.url().trim_start_matches("http://").to_owned();
    let check = |listen_addr: String| test_support::run_health_check(BINARY, &listen_addr, &[]);
    let healthy = tokio::task::spawn_blocking(move || check(addr)).await.expect("join");
    assert!(healthy.status.success(), "{}", String::from_utf8_lossy(&healthy.stderr));
    let nobody = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").to_string();
    let unhealthy = tokio::task::spawn_blocking(move || check(nobody)).await.expect("join");
    assert!(!unhealthy.status.success());
    assert!(String::from_utf8_lossy(&unhealthy.stderr).starts_with("api-gateway: unhealthy: cannot connect"));
}
