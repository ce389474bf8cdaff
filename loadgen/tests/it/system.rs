//! Every system scenario against the real system (broker, three services, gateway): each runs
//! clean, so a flow the generator cannot drive shows here, not in the middle of a benchmark.

use test_support::{DatabaseKind, SystemProcesses};

use crate::helpers::run_loadgen;

/// The system, with the per-client rate limit lifted as the benchmark does (all the load comes
/// from one address).
fn start_system(with_broker: bool) -> SystemProcesses {
    let limits = [("RATE_LIMIT_PER_SECOND", "1000000"), ("RATE_LIMIT_BURST", "1000000")];
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(SystemProcesses::start(DatabaseKind::Sqlite, &limits, with_broker)).expect("start the system")
}

#[test]
fn every_system_scenario_runs_clean_against_the_real_system() {
    let system = start_system(true);
    let gateway = system.gateway.url();
    for (scenario, load) in [
        ("product", ["--concurrency", "4"]),
        ("products", ["--concurrency", "4"]),
        ("user", ["--concurrency", "4"]),
        ("user-orders", ["--concurrency", "4"]),
        ("create-user", ["--concurrency", "2"]),
        ("create-order", ["--rate", "20"]),
        ("mixed", ["--concurrency", "4"]),
    ] {
        let mut args = vec!["--scenario", scenario, "--target", &gateway, "--products", "4", "--orders", "3"];
        args.extend(load);
        let run = run_loadgen(&args);
        assert_eq!(run.code, Some(0), "{scenario}: {}\n{}", run.stdout, run.stderr);
        let report = run.report.expect("a report");
        assert!(report.requests > 0 && report.errors == 0, "{scenario}: {report:?}");
    }
}

#[test]
fn the_overload_scenario_counts_orders_refused_by_backpressure_apart_from_errors() {
    // A bound low enough that an open loop of 200 orders/s passes it on any machine.
    let limits = [("RATE_LIMIT_PER_SECOND", "1000000"), ("RATE_LIMIT_BURST", "1000000")];
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let system = runtime
        .block_on(SystemProcesses::start_with(DatabaseKind::Sqlite, &limits, &[("SAGA_MAX_PENDING", "3")], true))
        .expect("start the system");
    let gateway = system.gateway.url();
    let args = |scenario: &'static str| {
        ["--scenario", scenario, "--target", &gateway, "--products", "4", "--orders", "3", "--rate", "200"]
    };
    let run = run_loadgen(&args("create-order-overload"));
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let report = run.report.expect("a report");
    assert_eq!(report.errors, 0, "{report:?}");
    assert!(report.refused > 0, "nothing was refused: {report:?}");
    assert!(report.requests > report.refused, "nothing was settled: {report:?}");
    assert!(run.stdout.contains("refused"), "the summary counts the refusals: {}", run.stdout);

    // Anywhere else a refusal is an error.
    let run = run_loadgen(&args("create-order"));
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("UNAVAILABLE"), "{}", run.stdout);
}

#[test]
fn a_run_against_a_gateway_whose_user_service_is_down_fails_naming_the_step() {
    let mut system = start_system(false);
    let gateway = system.gateway.url();
    system.users.stop();
    let run = run_loadgen(&["--scenario", "products", "--target", &gateway, "--products", "3", "--orders", "1"]);
    // The fixture logs the admin in through user-service first: a set-up error naming that step.
    assert_eq!(run.code, Some(2), "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("logging in as the admin"), "{}", run.stderr);
}
