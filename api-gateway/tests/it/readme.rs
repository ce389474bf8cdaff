//! The README's "Try it" block, run as printed against a live system, so it cannot go stale.

use test_support::readme_examples;

use crate::helpers::spawn_system_with_broker;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_examples_work_as_printed() {
    // With the broker, as `cargo xtask start` runs it: the block waits for the saga.
    let system = spawn_system_with_broker(&[]).await;
    // The README talks to the local run on :3000; this system listens on a free port instead.
    let script = readme_examples(&system.gateway.url()).expect("the README's examples");
    let output = tokio::process::Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .output()
        .await
        .expect("run bash");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "exit {}: {stdout}\n{}", output.status, String::from_utf8_lossy(&output.stderr));

    let responses: Vec<serde_json::Value> = stdout
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).expect("JSON"))
        .collect();
    assert_eq!(responses.len(), 5, "{stdout}");
    for response in &responses {
        assert!(response.get("errors").is_none() && response.get("data").is_some(), "{response}");
    }
    assert_eq!(responses[3]["data"]["createOrder"]["totalAmount"], 1999.98);
    assert_eq!(responses[4]["data"]["userOrders"][0]["items"][0]["product"]["name"], "Laptop");
    assert_eq!(responses[4]["data"]["userOrders"][0]["status"], "CONFIRMED", "the block waits for the saga");
}
