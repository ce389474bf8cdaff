//! Every reference scenario, closed and open loop, against the real reference server.

use crate::helpers::{run_loadgen, spawn_reference_server};

#[test]
fn every_reference_scenario_runs_clean_in_both_modes() {
    let server = spawn_reference_server();
    for (scenario, target) in [("hello", &server.http), ("graphql-hello", &server.http), ("grpc-health", &server.grpc)]
    {
        for mode in [&["--concurrency", "4"][..], &["--rate", "200"][..]] {
            let mut args = vec!["--scenario", scenario, "--target", target.as_str()];
            args.extend_from_slice(mode);
            let run = run_loadgen(&args);
            assert_eq!(run.code, Some(0), "{scenario} {mode:?}: {}\n{}", run.stdout, run.stderr);
            let report = run.report.expect("a report");
            assert_eq!(report.errors, 0, "{report:?}");
            assert!(report.requests > 0, "{report:?}");
            assert!(report.latency_ms.p50 > 0.0 && report.latency_ms.p50 <= report.latency_ms.p99, "{report:?}");
            assert!(run.stdout.contains("0 errors: PASSED"), "{}", run.stdout);
        }
    }
}

#[test]
fn an_open_loop_run_sends_at_the_rate_asked() {
    let server = spawn_reference_server();
    let run = run_loadgen(&["--scenario", "hello", "--target", &server.http, "--rate", "300"]);
    let report = run.report.expect("a report");
    assert!((290..=310).contains(&report.requests), "{report:?}");
    assert_eq!(report.mode, "open");
    assert_eq!(report.rate_per_sec, Some(300.0));
}
