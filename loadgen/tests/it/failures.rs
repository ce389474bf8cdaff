//! Errors fail the run: a server that answers badly, a server that is not there, bad flags.

use axum::{Json, Router, http::StatusCode, routing::get};
use serde_json::json;

use crate::helpers::run_loadgen;

/// A server on a free port whose `GET /` answers 503 and whose GraphQL answers with an error.
fn spawn_failing_server() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let address = listener.local_addr().expect("address");
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(async move {
            let app = Router::new()
                .route("/", get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "down") }))
                .route(
                    "/graphql",
                    axum::routing::post(|| async {
                        Json(json!({ "data": null, "errors": [{ "message": "boom", "extensions": { "code": "INTERNAL" } }] }))
                    }),
                );
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            axum::serve(listener, app).await.expect("serve");
        });
    });
    format!("http://{address}")
}

#[test]
fn non_200_answers_fail_the_run_and_are_counted() {
    let target = spawn_failing_server();
    let run = run_loadgen(&["--scenario", "hello", "--target", &target, "--concurrency", "2"]);
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    let report = run.report.expect("a report");
    assert!(report.errors > 0 && report.errors == report.requests, "{report:?}");
    assert!(report.error_kinds.contains_key("http 503"), "{report:?}");
    assert!(run.stdout.contains("errors: FAILED"), "{}", run.stdout);
}

#[test]
fn graphql_errors_in_a_200_answer_fail_the_run() {
    let target = spawn_failing_server();
    let run = run_loadgen(&["--scenario", "graphql-hello", "--target", &target, "--rate", "100"]);
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    let report = run.report.expect("a report");
    assert!(report.error_kinds.contains_key("graphql INTERNAL"), "{report:?}");
    assert_eq!(report.latency_ms.p99, 0.0, "no successful request to measure: {report:?}");
}

#[test]
fn a_target_that_is_not_there_fails_the_run() {
    // Bound and dropped: nothing listens there any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("address").port();
    let run = run_loadgen(&["--scenario", "hello", "--target", &format!("http://127.0.0.1:{port}")]);
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    assert!(run.report.expect("a report").error_kinds.contains_key("transport"));
}

#[test]
fn bad_flags_are_refused_naming_the_flag() {
    for (args, flag) in [
        (&["--scenario", "hello", "--rate", "0"][..], "--rate"),
        (&["--scenario", "hello", "--concurrency", "0"][..], "--concurrency"),
        (&["--scenario", "hello", "--duration=-1"][..], "--duration"),
        (&["--scenario", "hello", "--warmup", "soon"][..], "--warmup"),
        (&["--scenario", "nonsense"][..], "--scenario"),
    ] {
        let run = run_loadgen(args);
        assert_eq!(run.code, Some(2), "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(flag), "{args:?}: {}", run.stderr);
    }
}

#[test]
fn a_gateway_that_refuses_the_admin_login_is_a_clear_set_up_error() {
    let target = spawn_failing_server();
    let run = run_loadgen(&["--scenario", "product", "--target", &target]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("logging in as the admin"), "{}", run.stderr);
    assert!(run.report.is_none());
}
