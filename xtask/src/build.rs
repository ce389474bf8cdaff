//! Building the binaries: the one `cargo build` of the services that `start`, `test` and the
//! Dockerfile run (the arguments come from `deploy::build`, which a test holds the Dockerfile
//! to), plus what the local run needs beside them.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use deploy::build::{SERVICES, cargo_build_args};

use crate::run_checked;

/// What runs beside the services locally: the broker's supervisor and topic tool.
const LOCAL_TOOLS: [&str; 1] = ["local-broker"];

/// Builds the four services and the local tools (optimised when `release`) and returns the
/// folder holding them.
pub fn local_binaries(root: &Path, release: bool) -> anyhow::Result<PathBuf> {
    let binaries: Vec<&str> = SERVICES.iter().chain(&LOCAL_TOOLS).copied().collect();
    eprintln!(
        "building {} ({}); the first build on a machine takes minutes",
        binaries.join(", "),
        if release { "optimised" } else { "debug" }
    );
    run_checked(Command::new("cargo").current_dir(root).args(cargo_build_args(release, &binaries)))?;
    Ok(target_dir(root)?.join(if release { "release" } else { "debug" }))
}

/// Where cargo puts what it builds: `target/` in the workspace, unless `CARGO_TARGET_DIR` or a
/// cargo configuration says otherwise (so cargo is asked).
pub fn target_dir(root: &Path) -> anyhow::Result<PathBuf> {
    let output = Command::new("cargo")
        .current_dir(root)
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .stderr(std::process::Stdio::inherit())
        .output()?;
    anyhow::ensure!(output.status.success(), "`cargo metadata` failed with {}", output.status);
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let dir = metadata["target_directory"].as_str().ok_or_else(|| anyhow::anyhow!("no target_directory"))?;
    Ok(PathBuf::from(dir))
}
