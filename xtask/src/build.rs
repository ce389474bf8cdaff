//! Building the service binaries: the one `cargo build` that `start`, `test` and the
//! Dockerfile run (the arguments come from `deploy::build`, which a test holds the Dockerfile to).

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use deploy::build::{SERVICES, cargo_build_args};

use crate::run_checked;

/// Builds the four services (optimised when `release`) and returns the folder holding them.
pub fn service_binaries(root: &Path, release: bool) -> anyhow::Result<PathBuf> {
    run_checked(Command::new("cargo").current_dir(root).args(cargo_build_args(release, &SERVICES)))?;
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
