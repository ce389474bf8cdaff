//! How the system's processes are started, wired to each other, checked and stopped.
//!
//! One launcher for `cargo xtask start`, the benchmark and the integration tests:
//! - [`wiring`]: the settings by which a process finds its peers (`KAFKA_BROKERS`,
//!   `*_SERVICE_URL`, …), written once;
//! - [`broker`]: the one tansu command line and where its binary lives;
//! - [`system`]: the five processes of a run on fixed or free ports, with a data directory and
//!   a log file each, started in order and awaited until healthy;
//! - [`supervisor`]: what the broker's supervisor says about itself;
//! - [`postgres`]: a throwaway PostgreSQL server for the tests;
//! - [`stop`]: the one way a process is stopped (its signal, a grace period, then SIGKILL).
//!
//! It uses the standard library only: `cargo xtask` depends on it and should build in seconds.

pub mod broker;
pub mod postgres;
pub mod stop;
pub mod supervisor;
pub mod system;
pub mod wiring;

use std::path::PathBuf;

/// The workspace root (this crate's parent folder).
pub fn workspace_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().map_or(manifest_dir.clone(), std::path::Path::to_path_buf)
}
