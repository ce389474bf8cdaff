//! Developer commands, in one place: `cargo xtask <command>`.
//!
//! - `test`: everything CI checks. Installs what a fresh machine lacks (cargo-nextest,
//!   PostgreSQL, rustfmt/clippy), starts a throwaway PostgreSQL for the run, checks formatting
//!   and lints, and runs every test with nextest.
//! - `start` / `stop` / `status` / `logs`: run the whole system locally in the background,
//!   see how it is doing, and stop exactly the processes `start` started (by process id).
//! - `events <topic>`: watch a topic's events.
//! - `supervise-broker` (hidden): what `start` runs the broker under, to restart it when it
//!   exits or stops answering.
//! - `bench`: build optimised binaries, run every load scenario against the whole system and
//!   write the figures to `bench/results/`.

mod bench;
mod build;
mod events;
mod fuzz;
mod local;
mod setup;
mod supervise;
mod test;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "cargo xtask", about = "Developer commands for this workspace")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Set up what is missing, then lint and run the whole test suite.
    Test(test::TestArgs),
    /// Build and start every service in the background, wait until healthy, print URLs and pids.
    Start(local::StartArgs),
    /// Stop what `start` started, by process id, and free its ports.
    Stop,
    /// Show what `start` started: pid, port, health, log.
    Status,
    /// Print the end of each process's log.
    Logs(local::LogsArgs),
    /// Print a topic's events, from the beginning, as they arrive.
    Events(events::EventsArgs),
    /// Benchmark the whole system (release build) and write the figures to bench/results/.
    Bench(bench::BenchArgs),
    /// Run every fuzz target in fuzz/ for a bounded time (`test` runs it too).
    Fuzz(fuzz::FuzzArgs),
    /// Run the broker and restart it when it exits or stops answering (`start` runs this).
    #[command(hide = true)]
    SuperviseBroker(supervise::SuperviseArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Test(args) => test::run(&args),
        Command::Start(args) => local::start(&args),
        Command::Stop => local::stop(),
        Command::Status => local::status(),
        Command::Logs(args) => local::logs(&args),
        Command::Events(args) => events::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Fuzz(args) => fuzz::run(&args),
        Command::SuperviseBroker(args) => supervise::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("xtask: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The workspace root.
fn workspace_root() -> std::path::PathBuf {
    deploy::workspace_root()
}

/// Runs `command`, echoing it first; fails unless it succeeds.
fn run_checked(command: &mut std::process::Command) -> anyhow::Result<()> {
    eprintln!("+ {}", describe(command));
    let status = command.status()?;
    anyhow::ensure!(status.success(), "`{}` failed with {status}", describe(command));
    Ok(())
}

fn describe(command: &std::process::Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|part| part.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}
