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
    Ok(root.join("target").join(if release { "release" } else { "debug" }))
}
