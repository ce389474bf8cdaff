//! Developer commands, in one place: `cargo xtask <command>`.
//!
//! - `test`: everything CI checks. Installs what a fresh machine lacks (cargo-nextest,
//!   PostgreSQL, rustfmt/clippy), starts a throwaway PostgreSQL for the run, checks formatting
//!   and lints, and runs every test with nextest.
//! - `start` / `stop` / `status` / `logs`: run the whole system locally in the background,
//!   see how it is doing, and stop exactly the processes `start` started (by process id).
//! - `events <topic>`: watch a topic's events (runs `local-broker events`).
//! - `images`: the images Compose needs, made on the machine when none can be pulled.
//! - `bench`: build optimised binaries, run every load scenario against the whole system and
//!   write the figures to `bench/results/` (runs the `bench` binary).
//!
//! xtask itself stays small (it builds in seconds on a fresh clone): what needs a Kafka client
//! or the load generator lives in binaries of its own, which it builds and runs.

mod build;
mod fuzz;
mod images;
mod local;
mod setup;
mod test;

use std::process::{Command as Process, ExitCode};

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
    /// Print a topic's events, from the beginning, as they arrive (`events --help` for more).
    #[command(disable_help_flag = true)]
    Events {
        /// The topic and `local-broker events`'s options.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        args: Vec<String>,
    },
    /// Benchmark the whole system (release build) and write the figures to bench/results/
    /// (`bench --help` for its options).
    #[command(disable_help_flag = true)]
    Bench {
        /// The benchmark's options.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Run every fuzz target in fuzz/ for a bounded time (`test` runs it too).
    Fuzz(fuzz::FuzzArgs),
    /// Make the images Compose needs when none can be pulled (offline): the Dockerfile's base
    /// images and the embedded broker's, for compose.embedded-broker.yml.
    Images,
    /// Fetch GraphiQL's files for the gateway to embed (`start` and `test` do; the Dockerfile
    /// runs this).
    #[command(hide = true)]
    GraphiqlAssets,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Test(args) => test::run(&args),
        Command::Start(args) => local::start(&args),
        Command::Stop => local::stop(),
        Command::Status => local::status(),
        Command::Logs(args) => local::logs(&args),
        Command::Events { args } => events(&args),
        Command::Bench { args } => bench(&args),
        Command::Fuzz(args) => fuzz::run(&args),
        Command::Images => images::run(),
        Command::GraphiqlAssets => setup::graphiql_assets(&workspace_root()).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("xtask: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// `local-broker events <args>`, built first.
fn events(args: &[String]) -> anyhow::Result<ExitCode> {
    let root = workspace_root();
    run_checked(Process::new("cargo").current_dir(&root).args(["build", "--locked", "--bin", "local-broker"]))?;
    let binary = build::target_dir(&root)?.join("debug").join("local-broker");
    exit_code(Process::new(binary).arg("events").args(args).status()?)
}

/// The `bench` binary with `args`, built (optimised) with everything it runs, on the broker
/// `start` uses.
fn bench(args: &[String]) -> anyhow::Result<ExitCode> {
    let root = workspace_root();
    if args.iter().any(|arg| arg == "--help" || arg == "-h") {
        // Its options, without the optimised build of the whole system first.
        let mut help = Process::new("cargo");
        help.current_dir(&root).args(["run", "--locked", "--quiet", "--bin", "bench", "--"]).args(args);
        return exit_code(help.status()?);
    }
    setup::build_packages()?;
    let broker = setup::broker(&root)?;
    let binaries =
        ["user-service", "product-service", "order-service", "api-gateway", "loadgen", "reference-server", "bench"];
    let mut build = deploy::build::cargo_build_args(true, &binaries);
    // The OTLP receiver the traced scenarios export to.
    build.extend(["--example".to_owned(), "otlp_receiver".to_owned()]);
    run_checked(Process::new("cargo").current_dir(&root).args(&build))?;
    let binary = build::target_dir(&root)?.join("release").join("bench");
    exit_code(Process::new(binary).current_dir(&root).env(launcher::broker::TANSU_BIN_ENV, broker).args(args).status()?)
}

/// The exit status of a command xtask ran on the user's behalf, as xtask's own.
fn exit_code(status: std::process::ExitStatus) -> anyhow::Result<ExitCode> {
    Ok(if status.success() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// The workspace root.
fn workspace_root() -> std::path::PathBuf {
    deploy::workspace_root()
}

/// Runs `command`, echoing it first; fails unless it succeeds.
fn run_checked(command: &mut Process) -> anyhow::Result<()> {
    eprintln!("+ {}", describe(command));
    let status = command.status()?;
    anyhow::ensure!(status.success(), "`{}` failed with {status}", describe(command));
    Ok(())
}

fn describe(command: &Process) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|part| part.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}
