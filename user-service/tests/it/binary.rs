//! The real `user-service` binary: the configuration contract and graceful shutdown.

use std::time::Duration;

use sqlx::Connection as _;

use proto::user::{CreateUserRequest, user_service_client::UserServiceClient};
use test_support::ServiceProcess;
use tonic_health::pb::health_check_response::ServingStatus;

const BINARY: &str = env!("CARGO_BIN_EXE_user-service");

#[test]
fn malformed_settings_stop_the_binary_with_a_line_naming_them() {
    for (envs, name) in [
        (vec![("LISTEN_ADDR", "not-an-address")], "LISTEN_ADDR"),
        (vec![("DATABASE_URL", "mysql://app:hunter2@db/users")], "DATABASE_URL"),
        (vec![("LOG_FORMAT", "xml")], "LOG_FORMAT"),
        (vec![("RUST_LOG", "info,[=")], "RUST_LOG"),
        (vec![("ADMIN_EMAIL", "root@example.com")], "ADMIN_PASSWORD"),
        (vec![("ADMIN_EMAIL", "root"), ("ADMIN_PASSWORD", "long-enough")], "ADMIN_EMAIL"),
        (vec![("ADMIN_EMAIL", "root@example.com"), ("ADMIN_PASSWORD", "short")], "ADMIN_PASSWORD"),
    ] {
        let stderr = test_support::expect_startup_failure(BINARY, &envs);
        assert!(stderr.lines().next().is_some_and(|line| line.contains(name)), "{envs:?}: {stderr}");
        assert!(!stderr.contains("hunter2"), "a password leaked: {stderr}");
    }
}

#[tokio::test]
async fn sigterm_drains_and_exits_cleanly_and_passwords_never_reach_the_logs() {
    let data = tempfile::tempdir().expect("tempdir");
    let process = ServiceProcess::start(
        BINARY,
        &[
            ("DATA_DIR", data.path().display().to_string()),
            ("ADMIN_EMAIL", "root@example.com".into()),
            ("ADMIN_PASSWORD", "admin-secret-1".into()),
        ],
    )
    .expect("start");
    let url = process.url();
    let status = test_support::grpc::health_status(&url, user_service::SERVICE_NAME).await.expect("health");
    assert_eq!(status, ServingStatus::Serving);

    let mut client = UserServiceClient::connect(url).await.expect("connect");
    let request =
        CreateUserRequest { name: "Ada".into(), email: "ada@example.com".into(), password: "user-secret-2".into() };
    client.create_user(request).await.expect("create");

    // The client stays connected: with no call in flight the drain must still end at once,
    // well inside the 10 s drain timeout, rather than wait for clients to hang up.
    let (status, logs) = process.terminate(Duration::from_secs(5)).expect("terminate");
    assert!(status.success(), "exit status {status}");
    let logs = logs.join("\n");
    assert!(logs.contains("SIGTERM received") && logs.contains("gRPC server stopped"), "{logs}");
    assert!(!logs.contains("admin-secret-1") && !logs.contains("user-secret-2"), "{logs}");
    assert!(!logs.contains("drain timeout reached"), "{logs}");
    assert!(data.path().join("users.db").exists(), "the default SQLite file is in DATA_DIR");
    drop(client);

    // WAL is recorded in the file itself, so it can be read back after the process is gone.
    let url = format!("sqlite://{}", data.path().join("users.db").display());
    let mut connection = sqlx::SqliteConnection::connect(&url).await.expect("open users.db");
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&mut connection).await.expect("pragma");
    assert_eq!(mode, "wal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_in_flight_at_sigterm_still_complete() {
    let data = tempfile::tempdir().expect("tempdir");
    let mut process = ServiceProcess::start(BINARY, &[("DATA_DIR", data.path().display().to_string())]).expect("start");
    let client = UserServiceClient::connect(process.url()).await.expect("connect");
    // Password hashing runs a couple at a time, so twenty sign-ups keep the server busy for a while.
    let calls: Vec<_> = (0..20)
        .map(|n| {
            let mut client = client.clone();
            let request = CreateUserRequest {
                name: format!("User {n}"),
                email: format!("user{n}@example.com"),
                password: "correct horse".into(),
            };
            tokio::spawn(async move { client.create_user(request).await })
        })
        .collect();
    let process = tokio::task::spawn_blocking(move || {
        process.wait_for_log("user created", Duration::from_secs(10)).map(|_| process)
    })
    .await
    .expect("join")
    .expect("the first sign-up completes");

    let terminated = tokio::task::spawn_blocking(move || process.terminate(Duration::from_secs(8)));
    let mut failures = Vec::new();
    for call in calls {
        if let Err(status) = call.await.expect("join") {
            failures.push(status);
        }
    }
    let (status, logs) = terminated.await.expect("join").expect("terminate");
    assert!(failures.is_empty(), "calls in flight at SIGTERM failed: {failures:?}");
    assert!(status.success(), "exit status {status}");
    assert!(!logs.join("\n").contains("drain timeout reached"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_health_check_mode_reports_on_the_running_instance() {
    let data = tempfile::tempdir().expect("tempdir");
    let process = ServiceProcess::start(BINARY, &[("DATA_DIR", data.path().display().to_string())]).expect("start");
    let addr = process.url().trim_start_matches("http://").to_owned();
    let check = |listen_addr: String| test_support::run_health_check(BINARY, &listen_addr, &[]);
    let healthy = tokio::task::spawn_blocking(move || check(addr)).await.expect("join");
    assert!(healthy.status.success(), "{}", String::from_utf8_lossy(&healthy.stderr));

    let nobody = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").to_string();
    let unhealthy = tokio::task::spawn_blocking(move || check(nobody)).await.expect("join");
    let stderr = String::from_utf8_lossy(&unhealthy.stderr);
    assert!(!unhealthy.status.success());
    assert!(stderr.starts_with("user-service: unhealthy: cannot connect"), "{stderr}");
    drop(process);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_the_health_check_mode_uses_the_instances_certificates() {
    let certificates = test_support::TestCertificates::generate().expect("certificates");
    let tls = certificates.grpc_envs(true);
    let data = tempfile::tempdir().expect("tempdir");
    let mut envs = tls.clone();
    envs.push(("DATA_DIR", data.path().display().to_string()));
    let process = ServiceProcess::start(BINARY, &envs).expect("start");
    let addr = process.url().trim_start_matches("http://").to_owned();
    let check = move |envs: Vec<(&'static str, String)>| {
        let addr = addr.clone();
        tokio::task::spawn_blocking(move || test_support::run_health_check(BINARY, &addr, &envs))
    };
    let healthy = check(tls).await.expect("join");
    assert!(healthy.status.success(), "{}", String::from_utf8_lossy(&healthy.stderr));
    let plaintext = check(Vec::new()).await.expect("join");
    assert!(!plaintext.status.success(), "a plaintext check of a TLS server fails");
    drop(process);
}

/// When the admin account cannot be written, the process stops saying why: the database's own
/// reason, not a blamed setting and not a bare "internal error".
#[tokio::test]
async fn an_admin_account_that_cannot_be_written_stops_the_binary_naming_the_cause() {
    let data = tempfile::tempdir().expect("tempdir");
    let data_dir = data.path().display().to_string();
    let process = ServiceProcess::start(BINARY, &[("DATA_DIR", data_dir.clone())]).expect("start");
    test_support::grpc::health_status(&process.url(), user_service::SERVICE_NAME).await.expect("health");
    let (status, _) = process.terminate(Duration::from_secs(5)).expect("terminate");
    assert!(status.success(), "exit status {status}");

    // The database now refuses every new user.
    let url = format!("sqlite://{}", data.path().join("users.db").display());
    let mut connection = sqlx::SqliteConnection::connect(&url).await.expect("open users.db");
    sqlx::query(
        "CREATE TRIGGER refuse_users BEFORE INSERT ON users BEGIN SELECT RAISE(ABORT, 'no new users today'); END",
    )
    .execute(&mut connection)
    .await
    .expect("create the trigger");
    connection.close().await.expect("close");

    let stderr = test_support::expect_startup_failure(
        BINARY,
        &[("DATA_DIR", &data_dir), ("ADMIN_EMAIL", "root@example.com"), ("ADMIN_PASSWORD", "admin-secret-1")],
    );
    let line = stderr.lines().find(|line| line.contains("admin account")).unwrap_or_default();
    assert!(line.contains("no new users today"), "the cause is named: {stderr}");
    assert!(!line.starts_with("ADMIN_EMAIL"), "no setting is blamed: {stderr}");
    assert!(!stderr.contains("admin-secret-1"), "a password leaked: {stderr}");
}
