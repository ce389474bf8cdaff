//! `cargo xtask start | stop | status | logs`: the whole system on this machine, no Docker: the
//! embedded broker (tansu, SQLite storage in the data directory), the three services and the
//! gateway.
//!
//! `start` builds the binaries, starts each in the background with its log in
//! `<log-dir>/<name>.log` (`/tmp` by default, as the original did), waits until each is healthy
//! (gRPC health for the services, `/health` for the gateway; no fixed sleeps), and records
//! what it started in `.dev/processes`. `stop` stops exactly those processes, by pid.

use std::{
    fs,
    io::{Read as _, Write as _},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Command, ExitCode, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use test_support::stop::{StopSignal, Stopped, stop_pid};

use crate::workspace_root;

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

/// How a process proves it is ready.
#[derive(Debug, Clone, Copy)]
enum HealthCheck {
    /// Accepting TCP connections (the broker).
    Tcp,
    /// The gRPC health protocol, for this service name.
    Grpc(&'static str),
    /// `GET /health` answering 200 with every backend SERVING.
    Http,
}

/// A process the local run starts.
#[derive(Debug)]
pub struct Process {
    pub name: &'static str,
    check: HealthCheck,
}

/// In start order: the broker, every service, then the gateway that fronts them.
pub const PROCESSES: [Process; 5] = [
    Process { name: "broker", check: HealthCheck::Tcp },
    Process { name: "user-service", check: HealthCheck::Grpc(proto::user::user_service_server::SERVICE_NAME) },
    Process { name: "product-service", check: HealthCheck::Grpc(proto::product::product_service_server::SERVICE_NAME) },
    Process { name: "order-service", check: HealthCheck::Grpc(proto::order::order_service_server::SERVICE_NAME) },
    Process { name: "api-gateway", check: HealthCheck::Http },
];

/// The port of each of [`PROCESSES`], in the same order.
pub type Ports = [u16; 5];

/// The ports of the local run: the original's.
const LOCAL_PORTS: Ports = [9092, 50051, 50052, 50053, 3000];

/// Where the services of the local run serve their Prometheus metrics (`METRICS_ADDR`; their
/// main port speaks gRPC). The gateway serves its own on its HTTP port.
const LOCAL_METRICS_PORTS: [(&str, u16); 3] =
    [("user-service", 9101), ("product-service", 9102), ("order-service", 9103)];

/// What every process of one run is started with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub ports: Ports,
    pub data_dir: PathBuf,
    pub log_dir: PathBuf,
    pub jwt_secret: String,
    /// Extra environment for every process (the benchmark lifts the rate limit this way).
    pub extra_env: Vec<(&'static str, String)>,
    /// Where each named process serves Prometheus metrics (`METRICS_ADDR`), if anywhere.
    pub metrics_ports: Vec<(&'static str, u16)>,
}

impl Settings {
    fn port_of(&self, name: &str) -> u16 {
        PROCESSES.iter().zip(self.ports).find(|(process, _)| process.name == name).map_or(0, |(_, port)| port)
    }
}

/// The admin account the local run creates unless `ADMIN_EMAIL` / `ADMIN_PASSWORD` say otherwise.
const DEFAULT_ADMIN: (&str, &str) = ("admin@example.com", "admin-password");

/// The admin account for this run: from the environment when set, else the defaults.
fn local_admin() -> (String, String) {
    let setting = |name: &str, default: &str| {
        std::env::var(name).ok().filter(|value| !value.is_empty()).unwrap_or(default.to_owned())
    };
    (setting("ADMIN_EMAIL", DEFAULT_ADMIN.0), setting("ADMIN_PASSWORD", DEFAULT_ADMIN.1))
}

/// One line of `.dev/processes`: what was started, so `stop` can stop exactly that.
#[derive(Debug)]
pub struct Started {
    pub name: String,
    pub pid: u32,
    port: u16,
    log: PathBuf,
    binary: PathBuf,
}

impl Started {
    fn to_line(&self) -> String {
        format!("{}\t{}\t{}\t{}\t{}", self.name, self.pid, self.port, self.log.display(), self.binary.display())
    }

    fn from_line(line: &str) -> Option<Self> {
        let mut fields = line.split('\t');
        Some(Self {
            name: fields.next()?.to_owned(),
            pid: fields.next()?.parse().ok()?,
            port: fields.next()?.parse().ok()?,
            log: fields.next()?.into(),
            binary: fields.next()?.into(),
        })
    }

    /// True while the pid still runs the binary we started (pids get reused). A rebuild
    /// replaces the file, and Linux then shows the old one as "<path> (deleted)".
    pub fn is_running(&self) -> bool {
        fs::read_link(format!("/proc/{}/exe", self.pid)).is_ok_and(|exe| {
            let exe = exe.to_string_lossy();
            Path::new(exe.strip_suffix(" (deleted)").unwrap_or(&exe)) == self.binary
        })
    }
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
    let target = crate::build::service_binaries(&root, args.release)?;
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
    let broker = crate::setup::broker(&root)?;

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let mut started = Vec::new();
    for process in &PROCESSES {
        let spawned = if process.name == "broker" {
            spawn_supervised_broker(&broker, &settings)
        } else {
            spawn(process, &target.join(process.name), &settings)
        };
        let ready = spawned.and_then(|spawned| {
            started.push(spawned);
            write_record(&started)?;
            if process.name == "broker" {
                // The topics exist before any service starts: four processes creating them at
                // once would each be refused some, and the broker logs every refusal as an error.
                runtime.block_on(create_topics(LOCAL_PORTS[0]))?;
            }
            Ok(())
        });
        if let Err(error) = ready {
            // Everything started so far, the broker included, is stopped again.
            stop_all(&started);
            let _ = fs::remove_file(record_path());
            return Err(error);
        }
    }

    for (process, record) in PROCESSES.iter().zip(&started) {
        if let Err(error) = runtime.block_on(wait_until_healthy(process, record.port, Duration::from_millis(200))) {
            eprintln!("{} did not become healthy: {error:#}\n--- {} ---", process.name, record.log.display());
            eprintln!("{}", tail(&record.log, 30));
            stop_all(&started);
            let _ = fs::remove_file(record_path());
            return Ok(ExitCode::FAILURE);
        }
    }

    println!("The system is running (data in {}):\n", settings.data_dir.display());
    println!("  GraphQL   http://127.0.0.1:3000/graphql   (open it in a browser for GraphiQL)");
    println!("  Health    http://127.0.0.1:3000/health");
    println!("  Metrics   http://127.0.0.1:3000/metrics (gateway){}", metrics_list());
    match std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok().filter(|endpoint| !endpoint.is_empty()) {
        Some(endpoint) => println!("  Traces    exported over OTLP/gRPC to {endpoint}\n"),
        None => println!("  Traces    off (set OTEL_EXPORTER_OTLP_ENDPOINT to export them)\n"),
    }
    for record in &started {
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
    let (admin_email, admin_password) = local_admin();
    println!("\nWatch events:  cargo xtask events order.status.changed   (any topic; Ctrl-C to stop)");
    println!("Admin account: {admin_email} / {admin_password}   (set ADMIN_EMAIL / ADMIN_PASSWORD to choose)");
    println!("Status: cargo xtask status    Logs: cargo xtask logs    Stop: cargo xtask stop");
    Ok(ExitCode::SUCCESS)
}

/// The services' metrics URLs, one per line, aligned under the gateway's.
fn metrics_list() -> String {
    LOCAL_METRICS_PORTS
        .iter()
        .map(|(name, port)| format!("\n            http://127.0.0.1:{port}/metrics ({name})"))
        .collect()
}

/// A random JWT secret kept in the data directory, so tokens survive a restart of the local run.
pub fn local_jwt_secret(data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join("jwt-secret");
    if let Ok(secret) = fs::read_to_string(&path)
        && secret.trim().len() >= 32
    {
        return Ok(secret.trim().to_owned());
    }
    let mut bytes = [0_u8; 32];
    fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    let secret: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    fs::write(&path, &secret)?;
    Ok(secret)
}

/// Starts `process` from `binary` in the background, with its log in the log directory.
pub fn spawn(process: &Process, binary: &Path, settings: &Settings) -> anyhow::Result<Started> {
    use std::os::unix::process::CommandExt as _;

    let admin = local_admin();
    let port = settings.port_of(process.name);
    let url = |name: &str| format!("http://127.0.0.1:{}", settings.port_of(name));
    let log = settings.log_dir.join(format!("{}.log", process.name));
    let log_file = fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let mut command =
        if process.name == "broker" { broker_command(binary, port, &settings.data_dir)? } else { Command::new(binary) };
    let child = command
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("DATA_DIR", &settings.data_dir)
        .env("LOG_FORMAT", "pretty")
        .env("ADMIN_EMAIL", &admin.0)
        .env("ADMIN_PASSWORD", &admin.1)
        .env("JWT_SECRET", &settings.jwt_secret)
        .env("USER_SERVICE_URL", url("user-service"))
        .env("PRODUCT_SERVICE_URL", url("product-service"))
        .env("ORDER_SERVICE_URL", url("order-service"))
        .env("KAFKA_BROKERS", format!("127.0.0.1:{}", settings.port_of("broker")))
        .envs(settings.extra_env.iter().map(|(name, value)| (name, value)))
        .envs(
            settings
                .metrics_ports
                .iter()
                .filter(|(name, _)| *name == process.name)
                .map(|(_, port)| ("METRICS_ADDR", format!("127.0.0.1:{port}"))),
        )
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        // Its own process group: a Ctrl-C in this terminal later does not reach it.
        .process_group(0)
        .spawn()
        .with_context(|| format!("starting {}", process.name))?;
    Ok(Started { name: process.name.to_owned(), pid: child.id(), port, log, binary: binary.to_owned() })
}

/// The command that runs the broker (tansu) on `127.0.0.1:port`, its SQLite file in
/// `<data_dir>/broker/`.
pub fn broker_command(binary: &Path, port: u16, data_dir: &Path) -> anyhow::Result<Command> {
    let storage = broker_storage_file(data_dir);
    if let Some(dir) = storage.parent() {
        fs::create_dir_all(dir)?;
    }
    Ok(test_support::broker_command(binary, port, &storage))
}

/// The broker's SQLite file in the data directory.
pub fn broker_storage_file(data_dir: &Path) -> PathBuf {
    data_dir.join("broker").join("broker.db")
}

/// Starts the broker under `cargo xtask supervise-broker`, which restarts it if it exits or stops
/// answering. The record names the supervisor: stopping it stops the broker.
fn spawn_supervised_broker(broker: &Path, settings: &Settings) -> anyhow::Result<Started> {
    use std::os::unix::process::CommandExt as _;

    let supervisor = std::env::current_exe().context("finding the xtask binary")?;
    let port = settings.port_of("broker");
    let log = settings.log_dir.join("broker.log");
    // Truncated once here; the supervisor appends across restarts.
    fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let child = Command::new(&supervisor)
        .arg("supervise-broker")
        .arg("--binary")
        .arg(broker)
        .args(["--port", &port.to_string()])
        .arg("--data-dir")
        .arg(&settings.data_dir)
        .arg("--log")
        .arg(&log)
        .arg("--state")
        .arg(supervisor_state_path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::OpenOptions::new().append(true).open(&log)?)
        .process_group(0)
        .spawn()
        .context("starting the broker's supervisor")?;
    Ok(Started { name: "broker".to_owned(), pid: child.id(), port, log, binary: supervisor })
}

/// Where the broker's supervisor says what it is doing.
fn supervisor_state_path() -> PathBuf {
    workspace_root().join(".dev").join("broker-supervisor")
}

/// Waits for the broker on `port`, then creates the topics the services use.
async fn create_topics(port: u16) -> anyhow::Result<()> {
    wait_until_healthy(&PROCESSES[0], port, Duration::from_millis(100)).await?;
    let kafka = events::KafkaArgs::at(format!("127.0.0.1:{port}"));
    let cancel = tokio_util::sync::CancellationToken::new();
    let deadline = Duration::from_secs(60);
    match tokio::time::timeout(deadline, events::kafka::ensure_topics_with_retry(&kafka, &cancel)).await {
        Ok(true) => Ok(()),
        _ => anyhow::bail!("the broker did not create the topics within {} s", deadline.as_secs()),
    }
}

/// Checks `process` on `port` every `interval` until it is healthy (60 s at most).
pub async fn wait_until_healthy(process: &Process, port: u16, interval: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let result = check(process, port).await;
        match result {
            Ok(()) => return Ok(()),
            Err(error) if Instant::now() > deadline => return Err(error),
            Err(_) => tokio::time::sleep(interval).await,
        }
    }
}

async fn check(process: &Process, port: u16) -> anyhow::Result<()> {
    match process.check {
        HealthCheck::Tcp => {
            TcpStream::connect(("127.0.0.1", port))?;
        }
        HealthCheck::Grpc(service) => {
            let status = test_support::grpc::health_status(&format!("http://127.0.0.1:{port}"), service).await?;
            anyhow::ensure!(status == test_support::grpc::SERVING, "{status:?}");
        }
        HealthCheck::Http => {
            let body = http_get(port, "/health")?;
            anyhow::ensure!(body.starts_with("HTTP/1.1 200") && body.contains(r#""status":"ok""#), "{body}");
        }
    }
    Ok(())
}

/// A minimal HTTP/1.1 GET on loopback, enough for a health check or a metrics scrape.
pub fn http_get(port: u16, path: &str) -> anyhow::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}

pub fn stop() -> anyhow::Result<ExitCode> {
    let started = read_record();
    if started.is_empty() {
        println!("Nothing to stop: {} lists no processes.", record_path().display());
        return Ok(ExitCode::SUCCESS);
    }
    stop_all(&started);
    fs::remove_file(record_path())?;
    Ok(ExitCode::SUCCESS)
}

/// Stops the gateway first, then the services; each by pid, SIGTERM then SIGKILL after 15 s.
pub fn stop_all(started: &[Started]) {
    for process in started.iter().rev() {
        let pid = process.pid.to_string();
        if !process.is_running() {
            println!("  {:<16} pid {pid:<8} already stopped", process.name);
            continue;
        }
        // The broker shuts down on SIGINT; the services and the gateway on SIGTERM.
        let signal = if process.name == "broker" { StopSignal::Int } else { StopSignal::Term };
        match stop_pid(process.pid, signal, Duration::from_secs(15), || !process.is_running()) {
            Stopped::Killed => println!("  {:<16} pid {pid:<8} killed after 15 s", process.name),
            Stopped::Exited => println!("  {:<16} pid {pid:<8} stopped", process.name),
        }
    }
}

pub fn status() -> anyhow::Result<ExitCode> {
    let started = read_record();
    if started.is_empty() {
        println!("Not running (start it with `cargo xtask start`).");
        return Ok(ExitCode::SUCCESS);
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let mut all_healthy = true;
    for record in &started {
        let health = match PROCESSES.iter().find(|process| process.name == record.name) {
            _ if !record.is_running() => "not running".to_owned(),
            Some(process) => match runtime.block_on(check(process, record.port)) {
                Ok(()) => "healthy".to_owned(),
                Err(error) => format!("unhealthy: {}", error.to_string().lines().next().unwrap_or_default()),
            },
            None => "unknown".to_owned(),
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
            && let Some(state) = crate::supervise::SupervisorState::read(&supervisor_state_path())
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

fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<_> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
