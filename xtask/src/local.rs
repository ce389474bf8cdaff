//! `cargo xtask start | stop | status | logs`: the whole system on this machine, no Docker: the
//! embedded broker (tansu, SQLite storage in the data directory, kept running by
//! `local-broker supervise`), the three services and the gateway.
//!
//! `start` builds the binaries, starts each in the background with its log in
//! `<log-dir>/<name>.log` (`/tmp` by default, as the original did), waits until each is healthy
//! (no fixed sleeps), and records what it started in `.dev/processes`. `stop` stops exactly
//! those processes, by pid. How the processes are wired and started is the launcher's
//! ([`launcher::system`]), shared with the benchmark.

use std::{
    fs,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Command, ExitCode, Stdio},
    time::Duration,
};

use anyhow::{Context as _, bail};
use launcher::{
    supervisor::SupervisorState,
    system::{
        self, LOCAL_METRICS_PORTS, LOCAL_PORTS, PROCESSES, Settings, Started, admin_account, local_jwt_secret, tail,
    },
};

use crate::{run_checked, workspace_root};

#[derive(Debug, clap::Args)]
pub struct StartArgs {
    /// Where each process writes `<name>.log`.
    #[arg(long, default_value = "/tmp")]
    log_dir: PathBuf,
    /// Where the SQLite databases (and the local JWT secret) live, relative to the workspace root.
    #[arg(long, default_value = "data")]
    data_dir: PathBuf,
    /// Build with optimisations (slower to build, faster to run).
    #[arg(long)]
    release: bool,
}

#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// Only this process (e.g. `order-service`); all of them when left out.
    name: Option<String>,
    /// How many lines from the end of each log.
    #[arg(long, short = 'n', default_value_t = 40)]
    lines: usize,
}

fn record_path() -> PathBuf {
    workspace_root().join(".dev").join("processes")
}

fn read_record() -> Vec<Started> {
    fs::read_to_string(record_path()).unwrap_or_default().lines().filter_map(Started::from_line).collect()
}

fn write_record(started: &[Started]) -> anyhow::Result<()> {
    let path = record_path();
    fs::create_dir_all(path.parent().context("record path")?)?;
    Ok(fs::write(path, started.iter().map(|process| process.to_line() + "\n").collect::<String>())?)
}

pub fn start(args: &StartArgs) -> anyhow::Result<ExitCode> {
    let root = workspace_root();
    let running: Vec<_> = read_record().into_iter().filter(Started::is_running).collect();
    if !running.is_empty() {
        let pids: Vec<_> = running.iter().map(|process| format!("{} (pid {})", process.name, process.pid)).collect();
        bail!("the system is already running: {}; `cargo xtask stop` first", pids.join(", "));
    }
    let wanted_ports = PROCESSES.iter().map(|process| process.name).zip(LOCAL_PORTS).chain(LOCAL_METRICS_PORTS);
    for (name, port) in wanted_ports {
        if TcpListener::bind(("127.0.0.1", port)).is_err() {
            bail!("port {port} (for {name}) is already in use by another program; free it and try again");
        }
    }

    crate::setup::graphiql_assets(&root)?;
    crate::setup::build_packages()?;
    let broker = crate::setup::broker(&root)?;
    let target = crate::build::local_binaries(&root, args.release)?;
    let data_dir = root.join(&args.data_dir);
    fs::create_dir_all(&data_dir)?;
    fs::create_dir_all(&args.log_dir)?;
    let settings = Settings {
        ports: LOCAL_PORTS,
        jwt_secret: local_jwt_secret(&data_dir)?,
        data_dir,
        log_dir: args.log_dir.clone(),
        extra_env: Vec::new(),
        metrics_ports: LOCAL_METRICS_PORTS.to_vec(),
    };

    let local_broker = target.join("local-broker");
    let mut started = Vec::new();
    for process in &PROCESSES {
        let ready = if process.name == "broker" {
            spawn_supervised_broker(&local_broker, &broker, &settings).and_then(|supervisor| {
                started.push(supervisor);
                write_record(&started)?;
                // The topics exist before any service starts: four processes creating them at
                // once would each be refused some, and the broker logs every refusal as an error.
                system::wait_until_healthy(&started[0], Duration::from_millis(100))?;
                eprintln!("creating the topics the services use");
                run_checked(
                    Command::new(&local_broker).arg("create-topics").args(["--brokers", &settings.peers().kafka]),
                )
            })
        } else {
            system::spawn(process, &target.join(process.name), &settings).and_then(|spawned| {
                started.push(spawned);
                write_record(&started)
            })
        };
        if let Err(error) = ready {
            // Everything started so far, the broker included, is stopped again.
            system::stop_all(&started);
            let _ = fs::remove_file(record_path());
            return Err(error);
        }
    }

    for record in &started {
        if let Err(error) = system::wait_until_healthy(record, Duration::from_millis(200)) {
            eprintln!("{} did not become healthy: {error:#}\n--- {} ---", record.name, record.log.display());
            eprintln!("{}", tail(&record.log, 30));
            system::stop_all(&started);
            let _ = fs::remove_file(record_path());
            return Ok(ExitCode::FAILURE);
        }
    }
    print_running(&settings, &started);
    Ok(ExitCode::SUCCESS)
}

/// Where everything is, once it runs.
fn print_running(settings: &Settings, started: &[Started]) {
    println!("The system is running (data in {}):\n", settings.data_dir.display());
    println!("  GraphQL   http://127.0.0.1:3000/graphql   (open it in a browser for GraphiQL)");
    println!("  Health    http://127.0.0.1:3000/health");
    println!("  Metrics   http://127.0.0.1:3000/metrics (gateway){}", metrics_list());
    match std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok().filter(|endpoint| !endpoint.is_empty()) {
        Some(endpoint) => println!("  Traces    exported over OTLP/gRPC to {endpoint}\n"),
        None => println!("  Traces    off (set OTEL_EXPORTER_OTLP_ENDPOINT to export them)\n"),
    }
    for record in started {
        let scheme = match record.name.as_str() {
            "api-gateway" => "http",
            "broker" => "kafka",
            _ => "grpc",
        };
        println!(
            "  {:<16} {scheme}://127.0.0.1:{:<6} pid {:<8} log {}",
            record.name,
            record.port,
            record.pid,
            record.log.display()
        );
    }
    let (admin_email, admin_password) = admin_account();
    println!("\nWatch events:  cargo xtask events order.status.changed   (any topic; Ctrl-C to stop)");
    println!("Admin account: {admin_email} / {admin_password}   (set ADMIN_EMAIL / ADMIN_PASSWORD to choose)");
    println!("Status: cargo xtask status    Logs: cargo xtask logs    Stop: cargo xtask stop");
}

/// The services' metrics URLs, one per line, aligned under the gateway's.
fn metrics_list() -> String {
    LOCAL_METRICS_PORTS
        .iter()
        .map(|(name, port)| format!("\n            http://127.0.0.1:{port}/metrics ({name})"))
        .collect()
}

/// Starts the broker under `local-broker supervise`, which restarts it if it exits or stops
/// answering. The record names the supervisor: stopping it stops the broker.
fn spawn_supervised_broker(local_broker: &Path, broker: &Path, settings: &Settings) -> anyhow::Result<Started> {
    let port = settings.port_of("broker");
    let log = settings.log_dir.join("broker.log");
    // Truncated once here; the supervisor appends across restarts.
    fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let child = system::detached(
        Command::new(local_broker)
            .arg("supervise")
            .arg("--binary")
            .arg(broker)
            .args(["--port", &port.to_string()])
            .arg("--data-dir")
            .arg(&settings.data_dir)
            .arg("--log")
            .arg(&log)
            .arg("--state")
            .arg(supervisor_state_path())
            .stdout(Stdio::null())
            .stderr(fs::OpenOptions::new().append(true).open(&log)?),
    )
    .spawn()
    .context("starting the broker's supervisor")?;
    Ok(Started { name: "broker".to_owned(), pid: child.id(), port, log, binary: local_broker.to_owned() })
}

/// Where the broker's supervisor says what it is doing.
fn supervisor_state_path() -> PathBuf {
    workspace_root().join(".dev").join("broker-supervisor")
}

pub fn stop() -> anyhow::Result<ExitCode> {
    let started = read_record();
    if started.is_empty() {
        println!("Nothing to stop: {} lists no processes.", record_path().display());
        return Ok(ExitCode::SUCCESS);
    }
    system::stop_all(&started);
    fs::remove_file(record_path())?;
    Ok(ExitCode::SUCCESS)
}

pub fn status() -> anyhow::Result<ExitCode> {
    let started = read_record();
    if started.is_empty() {
        println!("Not running (start it with `cargo xtask start`).");
        return Ok(ExitCode::SUCCESS);
    }
    let mut all_healthy = true;
    for record in &started {
        let health = if !record.is_running() {
            "not running".to_owned()
        } else {
            match system::check(record) {
                Ok(()) => "healthy".to_owned(),
                Err(error) => format!("unhealthy: {}", error.to_string().lines().next().unwrap_or_default()),
            }
        };
        all_healthy &= health == "healthy";
        println!(
            "  {:<16} pid {:<8} port {:<6} {health:<12} log {}",
            record.name,
            record.pid,
            record.port,
            record.log.display()
        );
        if record.name == "broker"
            && let Some(state) = SupervisorState::read(&supervisor_state_path())
        {
            let restarts = match state.restarts {
                0 => "never restarted".to_owned(),
                count => format!("restarted {count} time(s), last because {}", state.last_reason),
            };
            println!("  {:<16} the broker runs as pid {} under that supervisor; {restarts}", "", state.broker_pid);
        }
    }
    Ok(if all_healthy { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

pub fn logs(args: &LogsArgs) -> anyhow::Result<ExitCode> {
    let started = read_record();
    if started.is_empty() {
        bail!("not running: no logs recorded (start it with `cargo xtask start`)");
    }
    let selected: Vec<_> =
        started.iter().filter(|record| args.name.as_deref().is_none_or(|name| record.name == name)).collect();
    if selected.is_empty() {
        let names: Vec<_> = started.iter().map(|record| record.name.as_str()).collect();
        bail!("no process named {:?}; choose one of {}", args.name.as_deref().unwrap_or_default(), names.join(", "));
    }
    for record in selected {
        println!("==> {} ({}) <==", record.name, record.log.display());
        println!("{}", tail(&record.log, args.lines));
    }
    Ok(ExitCode::SUCCESS)
}
