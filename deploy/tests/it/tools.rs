//! The validators the test set-up installs (`cargo xtask test`), found through the variables
//! it sets or in `.dev/tools/`.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use deploy::workspace_root;

/// Where the set-up installs the Compose linter and validator (dclint, from npm).
pub const DCLINT_ENV: &str = "DCLINT_BIN";
/// Where the set-up installs the Kubernetes schema validator (kubernetes-validate, from PyPI).
pub const KUBERNETES_VALIDATE_ENV: &str = "KUBERNETES_VALIDATE_BIN";

fn tool(env: &str, installed: &str) -> PathBuf {
    let path = std::env::var_os(env).map_or_else(|| workspace_root().join(".dev/tools").join(installed), PathBuf::from);
    assert!(path.exists(), "{} is missing: `cargo xtask test` installs it (or set {env})", path.display());
    path
}

pub fn dclint() -> PathBuf {
    tool(DCLINT_ENV, "node/node_modules/.bin/dclint")
}

pub fn kubernetes_validate() -> PathBuf {
    tool(KUBERNETES_VALIDATE_ENV, "venv/bin/kubernetes-validate")
}

/// Runs `program` with `args` in `dir` and returns whether it succeeded and what it printed.
pub fn run(program: &Path, args: &[&str], dir: &Path) -> (bool, String) {
    let output = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|error| panic!("running {}: {error}", program.display()));
    let printed = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), printed)
}

/// The databases `k8s/postgres-init.sql` creates (Compose's `postgres` profile runs it too).
pub fn initialised_databases() -> Vec<String> {
    let sql = std::fs::read_to_string(workspace_root().join("k8s/postgres-init.sql")).expect("postgres-init.sql");
    sql.lines()
        .filter_map(|line| line.trim().strip_prefix("CREATE DATABASE "))
        .map(|name| name.trim_end_matches(';').trim().to_owned())
        .collect()
}
