//! The README's "Try it" block, run as printed against a live system, so it cannot go stale.

use std::path::Path;

use crate::helpers::spawn_system_with_broker;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_examples_work_as_printed() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md")).expect("README.md");
    let start = readme.find("<!-- examples:start -->").expect("examples:start marker");
    let end = readme.find("<!-- examples:end -->").expect("examples:end marker");
    let block: Vec<&str> = readme[start..end].lines().skip(1).filter(|line| !line.starts_with("```")).collect();

    // With the broker, as `cargo xtask start` runs it: the block waits for the saga.
    let system = spawn_system_with_broker(&[]).await;
    // The README talks to the local run on :3000; this system listens on a free port instead.
    let script = block.join("\n").replace("http://localhost:3000", &system.gateway.url());
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
