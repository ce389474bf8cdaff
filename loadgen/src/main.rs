//! `loadgen`: drives one scenario against a running system and prints what it measured.
//! Exit status 0 when every request succeeded, 1 when any failed, 2 when it could not run.

use std::{path::PathBuf, process::ExitCode, sync::Arc, time::Duration};

use clap::Parser;
use loadgen::{Load, Mode, Scenario, driver, fixture::FixtureOptions, scenario::Prepared};

/// The services' allocator here too: with glibc's, a fifth of the generator's CPU under
/// `userOrders` went to `malloc` and `free`, CPU the measured system on the same cores lost.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "loadgen", version, about = "Load generator for the GraphQL gateway (and the reference servers)")]
struct Args {
    /// What to send.
    #[arg(long, value_enum)]
    scenario: Scenario,
    /// The gateway (or, for hello / graphql-hello / grpc-health, the reference server).
    #[arg(long, env = "LOADGEN_TARGET", default_value = "http://127.0.0.1:3000")]
    target: String,
    /// Closed loop: this many clients, each sending as soon as it has its answer.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    concurrency: u32,
    /// Open loop instead: start this many requests per second, whatever the system does.
    #[arg(long, value_parser = positive_number)]
    rate: Option<f64>,
    /// Open loop: the most requests waiting for answers at once.
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    max_in_flight: u32,
    /// Seconds to measure.
    #[arg(long, default_value = "10", value_parser = positive_number)]
    duration: f64,
    /// Seconds to run first without measuring.
    #[arg(long, default_value = "2", value_parser = non_negative_number)]
    warmup: f64,
    /// Also write the report as JSON here.
    #[arg(long)]
    output: Option<PathBuf>,
    /// The admin account that creates the fixture's products.
    #[arg(long, env = "ADMIN_EMAIL", default_value = "admin@example.com")]
    admin_email: String,
    #[arg(long, env = "ADMIN_PASSWORD", default_value = "admin-password", hide_env_values = true)]
    admin_password: String,
    /// Products the fixture creates.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(3..=1000))]
    products: u32,
    /// Orders (of 3 items) the fixture's customer has, for `user-orders`.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=100))]
    orders: u32,
}

fn positive_number(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() && value > 0.0 => Ok(value),
        _ => Err(format!("{text:?} is not a positive number")),
    }
}

fn non_negative_number(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() && value >= 0.0 => Ok(value),
        _ => Err(format!("{text:?} is not a number of seconds (0 or more)")),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            eprintln!("loadgen: {error:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(args: &Args) -> anyhow::Result<bool> {
    let mode = match args.rate {
        Some(rate) => Mode::Open { rate, max_in_flight: args.max_in_flight as usize },
        None => Mode::Closed { concurrency: args.concurrency as usize },
    };
    let load =
        Load { mode, duration: Duration::from_secs_f64(args.duration), warmup: Duration::from_secs_f64(args.warmup) };
    let options = FixtureOptions {
        admin_email: args.admin_email.clone(),
        admin_password: args.admin_password.clone(),
        products: args.products as usize,
        orders: args.orders as usize,
    };
    let name = args.scenario.name();
    eprintln!("loadgen: preparing {name} against {}", args.target);
    let prepared = Prepared::new(args.scenario, &args.target, &options).await?.spread_over(load.warmup + load.duration);
    let prepared = Arc::new(prepared);
    let (recorder, elapsed) = driver::run(prepared, &load, name).await;
    let began = std::time::SystemTime::now().checked_sub(elapsed).unwrap_or(std::time::SystemTime::UNIX_EPOCH);
    let report = recorder.report(name, &load, began, elapsed);
    println!("{}", report.summary());
    if let Some(path) = &args.output {
        if let Some(parent) = path.parent().filter(|parent| !parent.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
    }
    Ok(report.passed())
}
