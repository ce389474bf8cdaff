//! `cargo xtask fuzz`: every fuzz target in `fuzz/` for a bounded time, from the corpus kept in
//! the repository. `cargo xtask test` runs it before the tests, so CI fuzzes every run.
//!
//! Each target starts from `fuzz/corpus/<target>/` and writes what it finds to a temporary
//! corpus (libFuzzer adds new inputs to the first directory it is given), so a run leaves the
//! repository as it was. A crash stops the run and names the input that caused it, under
//! `fuzz/artifacts/<target>/`: add it to the corpus once it is fixed.

use std::process::Command;

use anyhow::bail;

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
/// libFuzzer reports every input that adds coverage, thousands of lines a run, so its output
/// goes to `.dev/fuzz/<target>.log` and only a summary is printed (or the log's end, on a crash).
pub fn fuzz(seconds: u32, only: Option<&str>) -> anyhow::Result<()> {
    let root = workspace_root();
    setup::cargo_fuzz()?;
    let flags = ["--sanitizer", "none", "--debug-assertions"];
    run_checked(cargo_fuzz(&root).arg("build").args(flags))?;
    let logs = root.join(".dev").join("fuzz");
    std::fs::create_dir_all(&logs)?;
    for target in TARGETS.iter().filter(|target| only.is_none_or(|only| only == **target)) {
        let found = tempfile::tempdir()?;
        let seeds = root.join("fuzz").join("corpus").join(target);
        let log_path = logs.join(format!("{target}.log"));
        let log = std::fs::File::create(&log_path)?;
        let mut command = cargo_fuzz(&root);
        command.arg("run").args(flags).arg(target).arg(found.path()).arg(&seeds).args([
            "--",
            &format!("-max_total_time={seconds}"),
            "-timeout=10",
            "-rss_limit_mb=2048",
            "-print_final_stats=1",
        ]);
        let status = command.stdout(log.try_clone()?).stderr(log).status()?;
        let output = std::fs::read_to_string(&log_path).unwrap_or_default();
        if !status.success() {
            let lines: Vec<&str> = output.lines().collect();
            eprintln!("{}", lines[lines.len().saturating_sub(60)..].join("\n"));
            bail!(
                "fuzz target {target} failed ({status}); the input that did it is under fuzz/artifacts/{target}/, \
                 the whole output in {}",
                log_path.display()
            );
        }
        let stat =
            |name: &str| output.lines().find_map(|line| line.strip_prefix(name)).map_or("?", str::trim).to_owned();
        eprintln!(
            "fuzzed {target} for {seconds} s: {} inputs run, {} added to the corpus, no crash",
            stat("stat::number_of_executed_units:"),
            stat("stat::new_units_added:")
        );
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
