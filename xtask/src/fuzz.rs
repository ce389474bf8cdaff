//! `cargo xtask fuzz`: every fuzz target in `fuzz/` for a bounded time, from the corpus kept in
//! the repository. `cargo xtask test` runs it before the tests, so CI fuzzes every run.
//!
//! Each target starts from `fuzz/corpus/<target>/` and writes what it finds to a temporary
//! corpus (libFuzzer adds new inputs to the first directory it is given), so a run leaves the
//! repository as it was. A crash stops the run and names the input that caused it, under
//! `fuzz/artifacts/<target>/`: add it to the corpus once it is fixed.

use std::process::Command;

use anyhow::{Context as _, bail};

use crate::{run_checked, setup, workspace_root};

/// Every target, as `fuzz/Cargo.toml` names them.
pub const TARGETS: [&str; 4] = ["event_envelope", "money_and_text", "create_order_request", "graphql_request"];

#[derive(Debug, clap::Args)]
pub struct FuzzArgs {
    /// Seconds each target runs.
    #[arg(long, default_value_t = 30)]
    pub seconds: u32,
    /// Only this target (all of them when left out).
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(TARGETS))]
    pub target: Option<String>,
}

pub fn run(args: &FuzzArgs) -> anyhow::Result<std::process::ExitCode> {
    fuzz(args.seconds, args.target.as_deref())?;
    Ok(std::process::ExitCode::SUCCESS)
}

/// Runs `only` (or every target) for `seconds` each; an error names the target that crashed.
pub fn fuzz(seconds: u32, only: Option<&str>) -> anyhow::Result<()> {
    let root = workspace_root();
    setup::cargo_fuzz()?;
    let fuzz_dir = root.join("fuzz");
    for target in TARGETS.iter().filter(|target| only.is_none_or(|only| only == **target)) {
        let found = tempfile::tempdir()?;
        let seeds = fuzz_dir.join("corpus").join(target);
        eprintln!("fuzzing {target} for {seconds} s");
        let mut command = cargo_fuzz(&root);
        command.args(["run", "--sanitizer", "none", "--debug-assertions", target]).arg(found.path()).arg(&seeds).args(
            ["--", &format!("-max_total_time={seconds}"), "-timeout=10", "-rss_limit_mb=2048", "-print_final_stats=1"],
        );
        run_checked(&mut command).with_context(|| {
            format!("fuzz target {target} failed: the input that did it is under fuzz/artifacts/{target}/")
        })?;
    }
    if only.is_some_and(|only| !TARGETS.contains(&only)) {
        bail!("no fuzz target {only:?}");
    }
    Ok(())
}

/// `cargo fuzz` on the machine's stable toolchain: without a sanitizer (safe Rust needs none
/// to find panics and hangs) it passes rustc no unstable flag. Debug assertions stay on, so an
/// arithmetic overflow is a crash too.
fn cargo_fuzz(root: &std::path::Path) -> Command {
    let mut command = Command::new("cargo");
    command.current_dir(root).arg("fuzz");
    command
}
