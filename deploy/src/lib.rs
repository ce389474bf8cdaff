//! The deployment artefacts read as data: the Dockerfile, `docker-compose.yml` and the
//! rendered Kubernetes manifests, plus what each binary reads from its environment. The tests
//! in `tests/it/` use them to hold the artefacts to the binaries; `cargo xtask` uses
//! [`build::cargo_build_args`] so that it builds the way the Dockerfile does.

pub mod build;
pub mod compose;
pub mod contract;
pub mod dockerfile;
pub mod engine;
pub mod kubernetes;

/// The workspace root (the folder holding the Dockerfile and docker-compose.yml).
pub use launcher::workspace_root;
