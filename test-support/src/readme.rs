//! The README's "Try it" block (between its `examples:start` and `examples:end` markers), as a
//! bash script aimed at a given gateway, so that tests run it as printed.

/// The address the README's examples talk to: the local run's gateway.
pub const README_GATEWAY: &str = "http://localhost:3000";

/// The example block's commands, with [`README_GATEWAY`] replaced by `gateway_url`.
pub fn readme_examples(gateway_url: &str) -> anyhow::Result<String> {
    let path = launcher::workspace_root().join("README.md");
    let readme = std::fs::read_to_string(&path)?;
    let start = readme.find("<!-- examples:start -->").ok_or_else(|| anyhow::anyhow!("no examples:start marker"))?;
    let end = readme.find("<!-- examples:end -->").ok_or_else(|| anyhow::anyhow!("no examples:end marker"))?;
    let block: Vec<&str> = readme[start..end].lines().skip(1).filter(|line| !line.starts_with("```")).collect();
    Ok(block.join("\n").replace(README_GATEWAY, gateway_url))
}
