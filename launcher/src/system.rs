//! The five processes of a run (the broker, the three services, the gateway) on fixed ports,
//! each with its log in a file: started in order with their peers wired through
//! [`Peers`](crate::wiring::Peers), awaited until healthy (no fixed sleeps), and stopped by pid.
//! `cargo xtask start` runs it on the original's ports; the benchmark on its own.

use std::{
    fs,
    io::{Read as _, Write as _},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::Context as _;

use crate::{
    stop::{StopSignal, Stopped, stop_pid},
    wiring::{self, Peers},
};

/// How a process proves it is ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthCheck {
    /// Accepting TCP connections (the broker).
    Tcp,
    /// Its own `--health-check` (the gRPC health protocol), run against its port.
    Probe,
    /// `GET /health` answering 200 with every backend SERVING (the gateway).
    Http,
}

/// A process of the run.
#[derive(Debug)]
pub struct Process {
    pub name: &'static str,
    pub check: HealthCheck,
}

/// In start order: the broker, every service (each after the peers it calls), then the gateway
/// that fronts them.
pub const PROCESSES: [Process; 5] = [
    Process { name: "broker", check: HealthCheck::Tcp },
    Process { name: "user-service", check: HealthCheck::Probe },
    Process { name: "product-service", check: HealthCheck::Probe },
    Process { name: "order-service", check: HealthCheck::Probe },
    Process { name: "api-gateway", check: HealthCheck::Http },
];

/// The port of each of [`PROCESSES`], in the same order.
pub type Ports = [u16; 5];

/// The ports of the local run: the original's.
pub const LOCAL_PORTS: Ports = [9092, 50051, 50052, 50053, 3000];

/// Where the services of the local run serve their Prometheus metrics (`METRICS_ADDR`; their
/// main port speaks gRPC). The gateway serves its own on its HTTP port.
pub const LOCAL_METRICS_PORTS: [(&str, u16); 3] =
    [("user-service", 9101), ("product-service", 9102), ("order-service", 9103)];

/// The admin account a run creates unless `ADMIN_EMAIL` / `ADMIN_PASSWORD` say otherwise.
pub const DEFAULT_ADMIN: (&str, &str) = ("admin@example.com", "admin-password");

/// The admin account for this run: from the environment when set, else [`DEFAULT_ADMIN`].
pub fn admin_account() -> (String, String) {
    let setting = |name: &str, default: &str| {
        std::env::var(name).ok().filter(|value| !value.is_empty()).unwrap_or(default.to_owned())
    };
    (setting(wiring::ADMIN_EMAIL, DEFAULT_ADMIN.0), setting(wiring::ADMIN_PASSWORD, DEFAULT_ADMIN.1))
}

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
    /// The port of the process called `name`.
    pub fn port_of(&self, name: &str) -> u16 {
        PROCESSES.iter().zip(self.ports).find(|(process, _)| process.name == name).map_or(0, |(_, port)| port)
    }

    /// Where every peer of this run is.
    pub fn peers(&self) -> Peers {
        let url = |name: &str| format!("http://127.0.0.1:{}", self.port_of(name));
        Peers {
            kafka: format!("127.0.0.1:{}", self.port_of("broker")),
            users: url("user-service"),
            products: url("product-service"),
            orders: url("order-service"),
        }
    }
}

/// A process this launcher started: what `cargo xtask` records, so that it can later stop
/// exactly that process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    pub name: String,
    pub pid: u32,
    pub port: u16,
    pub log: PathBuf,
    /// The file it runs, to tell it from a later process given the same pid.
    pub binary: PathBuf,
}

impl Started {
    /// One tab-separated line.
    pub fn to_line(&self) -> String {
        format!("{}\t{}\t{}\t{}\t{}", self.name, self.pid, self.port, self.log.display(), self.binary.display())
    }

    /// The line [`Started::to_line`] wrote; `None` for anything else.
    pub fn from_line(line: &str) -> Option<Self> {
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

    /// How it proves it is ready.
    fn check(&self) -> HealthCheck {
        PROCESSES.iter().find(|process| process.name == self.name).map_or(HealthCheck::Tcp, |process| process.check)
    }
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

/// Starts `process` from `binary` in the background, with its log in the log directory, in a
/// process group of its own (a Ctrl-C in the terminal that started it does not reach it).
pub fn spawn(process: &Process, binary: &Path, settings: &Settings) -> anyhow::Result<Started> {
    let port = settings.port_of(process.name);
    let log = settings.log_dir.join(format!("{}.log", process.name));
    let log_file = fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let mut command = if process.name == "broker" {
        let storage = crate::broker::storage_file(&settings.data_dir);
        fs::create_dir_all(storage.parent().context("the broker's storage folder")?)?;
        crate::broker::command(binary, port, &storage)
    } else {
        service_command(process.name, binary, settings)
    };
    let child = detached(command.stdout(log_file.try_clone()?).stderr(log_file))
        .spawn()
        .with_context(|| format!("starting {}", process.name))?;
    Ok(Started { name: process.name.to_owned(), pid: child.id(), port, log, binary: binary.to_owned() })
}

/// The command for service `name`: its port, data directory, peers, the admin account, the
/// JWT secret and readable logs, then the run's extra settings.
fn service_command(name: &str, binary: &Path, settings: &Settings) -> Command {
    let (admin_email, admin_password) = admin_account();
    let mut command = Command::new(binary);
    command
        .env(wiring::LISTEN_ADDR, format!("127.0.0.1:{}", settings.port_of(name)))
        .env(wiring::DATA_DIR, &settings.data_dir)
        .env("LOG_FORMAT", "pretty")
        .env(wiring::ADMIN_EMAIL, admin_email)
        .env(wiring::ADMIN_PASSWORD, admin_password)
        .env(wiring::JWT_SECRET, &settings.jwt_secret)
        .envs(settings.peers().env())
        .envs(settings.extra_env.iter().map(|(name, value)| (name, value)))
        .envs(
            settings
                .metrics_ports
                .iter()
                .filter(|(process, _)| *process == name)
                .map(|(_, port)| (wiring::METRICS_ADDR, format!("127.0.0.1:{port}"))),
        );
    command
}

/// `command` with no input, in a process group of its own.
pub fn detached(command: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt as _;
    command.stdin(Stdio::null()).process_group(0)
}

/// Checks `started` every `interval` until it is healthy (60 s at most).
pub fn wait_until_healthy(started: &Started, interval: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match check(started) {
            Ok(()) => return Ok(()),
            Err(error) if Instant::now() > deadline => return Err(error),
            Err(_) => std::thread::sleep(interval),
        }
    }
}

/// Whether `started` is healthy now; the error says why not.
pub fn check(started: &Started) -> anyhow::Result<()> {
    match started.check() {
        HealthCheck::Tcp => {
            TcpStream::connect(("127.0.0.1", started.port))?;
        }
        HealthCheck::Probe => {
            let output = Command::new(&started.binary)
                .arg("--health-check")
                .env_clear()
                .env(wiring::LISTEN_ADDR, format!("127.0.0.1:{}", started.port))
                .stdin(Stdio::null())
                .output()
                .with_context(|| format!("running {} --health-check", started.binary.display()))?;
            anyhow::ensure!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr).trim());
        }
        HealthCheck::Http => {
            let body = http_get(started.port, "/health")?;
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

/// Stops the processes in the reverse order of their start (the gateway first), each by pid:
/// its shutdown signal, then SIGKILL after 15 s. Prints a line for each.
pub fn stop_all(started: &[Started]) {
    for process in started.iter().rev() {
        let pid = process.pid.to_string();
        if !process.is_running() {
            println!("  {:<16} pid {pid:<8} already stopped", process.name);
            continue;
        }
        // The broker (and its supervisor) shut down on SIGINT; the services and the gateway on
        // SIGTERM.
        let signal = if process.name == "broker" { StopSignal::Int } else { StopSignal::Term };
        match stop_pid(process.pid, signal, Duration::from_secs(15), || !process.is_running()) {
            Stopped::Killed => println!("  {:<16} pid {pid:<8} killed after 15 s", process.name),
            Stopped::Exited => println!("  {:<16} pid {pid:<8} stopped", process.name),
        }
    }
}

/// The last `lines` lines of the file at `path` (nothing when it cannot be read).
pub fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<_> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_line_round_trips() {
        let started = Started {
            name: "order-service".into(),
            pid: 42,
            port: 50053,
            log: "/tmp/order-service.log".into(),
            binary: "/work/target/debug/order-service".into(),
        };
        assert_eq!(Started::from_line(&started.to_line()), Some(started));
        assert_eq!(Started::from_line("order-service\tnot-a-pid"), None);
    }

    #[test]
    fn every_service_is_pointed_at_every_peer() {
        let settings = Settings {
            ports: LOCAL_PORTS,
            data_dir: "/data".into(),
            log_dir: "/logs".into(),
            jwt_secret: "secret".into(),
            extra_env: Vec::new(),
            metrics_ports: LOCAL_METRICS_PORTS.to_vec(),
        };
        let command = service_command("order-service", Path::new("/bin/order-service"), &settings);
        let env: Vec<_> = command
            .get_envs()
            .map(|(name, value)| {
                (name.to_string_lossy().into_owned(), value.map(|value| value.to_string_lossy().into_owned()))
            })
            .collect();
        let has = |name: &str, value: &str| env.contains(&(name.to_owned(), Some(value.to_owned())));
        assert!(has("LISTEN_ADDR", "127.0.0.1:50053"));
        assert!(has("KAFKA_BROKERS", "127.0.0.1:9092"));
        assert!(has("USER_SERVICE_URL", "http://127.0.0.1:50051"));
        assert!(has("PRODUCT_SERVICE_URL", "http://127.0.0.1:50052"));
        assert!(has("METRICS_ADDR", "127.0.0.1:9103"));
    }
}
