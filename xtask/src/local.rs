//! `cargo xtask start` / `stop`: the whole system on this machine, no Docker.
//!
//! `start` builds the services, starts each in the background with its log in
//! `<log-dir>/<service>.log` (`/tmp` by default, as the original did), waits until each
//! reports SERVING over the gRPC health protocol, and records what it started in
//! `.dev/processes`. `stop` reads that file and stops exactly those processes, by pid.

use std::{
    fs,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Command, ExitCode, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};

use crate::{run_checked, workspace_root};

#[derive(Debug, clap::Args)]
pub struct StartArgs {
    /// Where each service writes `<service>.log`.
    #[arg(long, default_value = "/tmp")]
    log_dir: PathBuf,
    /// Where the SQLite databases live (relative paths are from the workspace root).
    #[arg(long, default_value = "data")]
    data_dir: PathBuf,
    /// Build with optimisations (slower to build, faster to run).
    #[arg(long)]
    release: bool,
}

/// A service the local run starts, and the port it gets.
struct Service {
    name: &'static str,
    port: u16,
    grpc_name: &'static str,
}

const SERVICES: [Service; 3] = [
    Service { name: "user-service", port: 50051, grpc_name: "user.UserService" },
    Service { name: "product-service", port: 50052, grpc_name: "product.ProductService" },
    Service { name: "order-service", port: 50053, grpc_name: "order.OrderService" },
];

/// The admin account the local run creates, so there is someone to log in as.
const LOCAL_ADMIN: (&str, &str) = ("admin@example.com", "admin-password");

fn processes_file(root: &Path) -> PathBuf {
    root.join(".dev").join("processes")
}

pub fn start(args: &StartArgs) -> anyhow::Result<ExitCode> {
    let root = workspace_root();
    let record = processes_file(&root);
    if record.exists() {
        bail!("{} exists: the system seems to be running; `cargo xtask stop` first", record.display());
    }
    for service in &SERVICES {
        if TcpListener::bind(("127.0.0.1", service.port)).is_err() {
            bail!("port {} ({}) is in use; free it or stop what holds it", service.port, service.name);
        }
    }

    let mut build = Command::new("cargo");
    build.current_dir(&root).args(["build", "--quiet"]);
    if args.release {
        build.arg("--release");
    }
    for service in &SERVICES {
        build.args(["--bin", service.name]);
    }
    run_checked(&mut build)?;

    let target = root.join("target").join(if args.release { "release" } else { "debug" });
    let data_dir = root.join(&args.data_dir);
    fs::create_dir_all(&args.log_dir)?;
    fs::create_dir_all(record.parent().context("record path")?)?;

    let mut started = Vec::new();
    for service in &SERVICES {
        match spawn(service, &target, &data_dir, &args.log_dir) {
            Ok(pid) => started.push(format!("{} {pid} {}", service.name, target.join(service.name).display())),
            Err(error) => {
                fs::write(&record, started.join("\n"))?;
                let _ = stop();
                return Err(error);
            }
        }
    }
    fs::write(&record, started.join("\n") + "\n")?;

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    for service in &SERVICES {
        if let Err(error) = runtime.block_on(wait_until_serving(service)) {
            let log = args.log_dir.join(format!("{}.log", service.name));
            eprintln!("{} did not become healthy: {error:#}\n--- {} ---", service.name, log.display());
            eprintln!("{}", fs::read_to_string(&log).unwrap_or_default());
            let _ = stop();
            return Ok(ExitCode::FAILURE);
        }
    }

    println!("The system is running (data in {}):", data_dir.display());
    for (service, line) in SERVICES.iter().zip(&started) {
        let pid = line.split(' ').nth(1).unwrap_or("?");
        let log = args.log_dir.join(format!("{}.log", service.name));
        println!("  {:<16} grpc://127.0.0.1:{}  pid {pid:<8} log {}", service.name, service.port, log.display());
    }
    println!("Admin account: {} / {}", LOCAL_ADMIN.0, LOCAL_ADMIN.1);
    println!("Stop it with: cargo xtask stop   (or scripts/dev-stop.sh)");
    Ok(ExitCode::SUCCESS)
}

fn spawn(service: &Service, target: &Path, data_dir: &Path, log_dir: &Path) -> anyhow::Result<u32> {
    use std::os::unix::process::CommandExt as _;

    let log_path = log_dir.join(format!("{}.log", service.name));
    let log = fs::File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
    let child = Command::new(target.join(service.name))
        .env("LISTEN_ADDR", format!("127.0.0.1:{}", service.port))
        .env("DATA_DIR", data_dir)
        .env("LOG_FORMAT", "pretty")
        .env("ADMIN_EMAIL", LOCAL_ADMIN.0)
        .env("ADMIN_PASSWORD", LOCAL_ADMIN.1)
        .env("USER_SERVICE_URL", "http://127.0.0.1:50051")
        .env("PRODUCT_SERVICE_URL", "http://127.0.0.1:50052")
        .env("ORDER_SERVICE_URL", "http://127.0.0.1:50053")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // Its own process group: a Ctrl-C in this terminal later does not reach it.
        .process_group(0)
        .spawn()
        .with_context(|| format!("starting {}", service.name))?;
    Ok(child.id())
}

async fn wait_until_serving(service: &Service) -> anyhow::Result<()> {
    let url = format!("http://127.0.0.1:{}", service.port);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match test_support::grpc::health_status(&url, service.grpc_name).await {
            Ok(status) if status == test_support::grpc::SERVING => return Ok(()),
            Ok(status) if Instant::now() > deadline => bail!("still {status:?} after 60 s"),
            Err(error) if Instant::now() > deadline => return Err(error),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

pub fn stop() -> anyhow::Result<ExitCode> {
    let record = processes_file(&workspace_root());
    let Ok(contents) = fs::read_to_string(&record) else {
        println!("Nothing to stop: {} does not exist.", record.display());
        return Ok(ExitCode::SUCCESS);
    };
    for line in contents.lines().filter(|line| !line.trim().is_empty()) {
        let mut fields = line.splitn(3, ' ');
        let (Some(name), Some(pid), Some(binary)) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        // The pid is only ours while it still runs the binary we started; pids get reused.
        // A rebuild replaces the file, and Linux then shows the old one as "<path> (deleted)".
        let running = fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|exe| {
            let exe = exe.to_string_lossy();
            exe.strip_suffix(" (deleted)").unwrap_or(&exe) == binary
        });
        if !running {
            println!("  {name:<16} pid {pid:<8} already stopped");
            continue;
        }
        let _ = Command::new("kill").args(["-TERM", pid]).status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if Path::new(&format!("/proc/{pid}")).exists() {
            let _ = Command::new("kill").args(["-KILL", pid]).status();
            println!("  {name:<16} pid {pid:<8} killed after 15 s");
        } else {
            println!("  {name:<16} pid {pid:<8} stopped");
        }
    }
    fs::remove_file(&record)?;
    Ok(ExitCode::SUCCESS)
}
