//! `cargo xtask test`: the one command that checks everything, as CI runs it.

use std::process::{Command, ExitCode};

use launcher::{
    broker::TANSU_BIN_ENV,
    postgres::{POSTGRES_URL_ENV, PostgresServer},
};

use crate::{run_checked, setup, workspace_root};

#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// Skip `cargo fmt --check` and clippy (quicker while iterating).
    #[arg(long)]
    no_lint: bool,
    /// Seconds each fuzz target runs before the tests; 0 skips fuzzing.
    #[arg(long, default_value_t = 30)]
    fuzz_seconds: u32,
    /// Extra arguments for `cargo nextest run`, e.g. `-- -p order-service status`.
    #[arg(last = true)]
    nextest_args: Vec<String>,
}

pub fn run(args: &TestArgs) -> anyhow::Result<ExitCode> {
    let root = workspace_root();
    setup::nextest()?;
    setup::build_packages()?;
    setup::test_packages()?;
    setup::graphiql_assets(&root)?;
    // The slowest step on a fresh machine (minutes, once): the tests run on the real broker.
    let broker = setup::broker(&root)?;
    let (dclint, kubernetes_validate) = setup::deploy_validators(&root)?;
    // The container test builds and runs the images in a real Docker engine.
    setup::container_engine()?;
    if !args.no_lint {
        setup::rust_components()?;
        run_checked(Command::new("cargo").current_dir(&root).args(["fmt", "--all", "--check"]))?;
        run_checked(Command::new("cargo").current_dir(&root).args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--quiet",
            "--",
            "-D",
            "warnings",
        ]))?;
    }

    // Every decoder of outside bytes, fuzzed for a bounded time; a crash stops the run here.
    if args.fuzz_seconds > 0 {
        crate::fuzz::fuzz(args.fuzz_seconds, None)?;
    }

    // The binaries, built as `start` and the Dockerfile build them; the tests run them.
    crate::build::local_binaries(&root, false)?;

    // One throwaway PostgreSQL for the whole run; every test makes its own database on it.
    // It is stopped (by pid) when `postgres` drops, whatever the tests did.
    let postgres = PostgresServer::start()?;
    eprintln!("test PostgreSQL running as pid {} at {}", postgres.pid(), postgres.admin_url());

    let mut nextest = Command::new("cargo");
    nextest.current_dir(&root).args(["nextest", "run", "--workspace", "--no-tests=fail"]);
    if std::env::var("CI").is_ok_and(|value| value == "true") {
        nextest.args(["--profile", "ci"]);
    }
    nextest
        .args(&args.nextest_args)
        .env(POSTGRES_URL_ENV, postgres.admin_url())
        .env(TANSU_BIN_ENV, &broker)
        .env("DCLINT_BIN", &dclint)
        .env("KUBERNETES_VALIDATE_BIN", &kubernetes_validate);
    eprintln!("+ {}", crate::describe(&nextest));
    let status = nextest.status()?;
    drop(postgres);
    Ok(if status.success() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
