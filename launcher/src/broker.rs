//! The embedded Kafka-protocol broker (tansu): where its binary lives and the one command line
//! that runs it, for the local run, the benchmark and the tests alike.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

/// The broker's version, pinned: the one `cargo xtask` builds from crates.io, and the tag of the
/// image `cargo xtask images` makes of it (`compose.embedded-broker.yml`).
pub const TANSU_VERSION: &str = "0.6.0";

/// The variable naming another broker binary than the one `cargo xtask` builds.
pub const TANSU_BIN_ENV: &str = "TANSU_BIN";

/// Where `cargo xtask` builds the broker, in the workspace.
pub fn built_binary(root: &Path) -> PathBuf {
    root.join(".dev").join("tools").join("bin").join("tansu")
}

/// The broker to run: `TANSU_BIN` when set, else the one `cargo xtask` builds; an error says
/// how to get one when it is missing.
pub fn tansu_binary(root: &Path) -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os(TANSU_BIN_ENV) {
        return Ok(PathBuf::from(path));
    }
    let path = built_binary(root);
    anyhow::ensure!(
        path.exists(),
        "{} is missing: `cargo xtask test` or `cargo xtask start` builds the broker (or set {TANSU_BIN_ENV})",
        path.display()
    );
    Ok(path)
}

/// The broker's SQLite file in a run's data directory.
pub fn storage_file(data_dir: &Path) -> PathBuf {
    data_dir.join("broker").join("broker.db")
}

/// The command that runs the broker (tansu) on `127.0.0.1:port` with its SQLite storage in
/// `storage_file`, logging warnings and errors.
pub fn command(binary: &Path, port: u16, storage_file: &Path) -> Command {
    let listener = format!("tcp://127.0.0.1:{port}");
    let mut command = Command::new(binary);
    command
        .args(["broker", "--kafka-listener-url", &listener, "--kafka-advertised-listener-url", &listener])
        .arg("--storage-engine")
        // tansu reads the path after `sqlite:///` as relative: an absolute one needs a 4th slash.
        .arg(format!("sqlite:///{}", storage_file.display()))
        .env("RUST_LOG", "warn");
    command
}
