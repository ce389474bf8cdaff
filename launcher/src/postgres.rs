//! A throwaway PostgreSQL server, started from the installed binaries and stopped by its pid:
//! `cargo xtask test` runs one for the whole test run, and a test without it starts its own.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};

use crate::stop::StopSignal;

/// The variable through which the test command shares its server with every test process.
pub const POSTGRES_URL_ENV: &str = "TEST_POSTGRES_URL";

/// The OS account PostgreSQL runs under when we are root (it refuses to run as root).
const POSTGRES_OS_USER: &str = "postgres";

/// A PostgreSQL cluster in a temporary directory, listening on 127.0.0.1. Dropping it stops
/// the server (by its pid) and deletes the directory.
#[derive(Debug)]
pub struct PostgresServer {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl PostgresServer {
    /// Finds the installed binaries, creates a cluster, starts it and waits until it accepts
    /// connections.
    pub fn start() -> anyhow::Result<Self> {
        let bin_dir = find_bin_dir()?;
        let dir = tempfile::Builder::new().prefix("test-postgres-").tempdir()?;
        let data_dir = dir.path().join("data");
        let as_root = is_root()?;
        if as_root {
            chown_to_postgres(dir.path())?;
        }

        let status = postgres_command(&bin_dir.join("initdb"), as_root)
            .args(["--auth=trust", "--username=postgres", "--encoding=UTF8", "--no-sync", "-D"])
            .arg(&data_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .context("running initdb")?;
        if !status.status.success() {
            bail!("initdb failed: {}", String::from_utf8_lossy(&status.stderr));
        }

        let port = free_port()?;
        let log = std::fs::File::create(dir.path().join("postgres.log"))?;
        if as_root {
            chown_to_postgres(&dir.path().join("postgres.log"))?;
        }
        // Durability is pointless for a throwaway test cluster; turning it off saves seconds.
        let child = postgres_command(&bin_dir.join("postgres"), as_root)
            .arg("-D")
            .arg(&data_dir)
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-k"])
            .arg(dir.path())
            .args(["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"])
            .args(["-c", "max_connections=400", "-c", "shared_buffers=64MB"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting postgres")?;
        let mut server = Self { child, port, dir };
        server.wait_until_ready(&bin_dir)?;
        Ok(server)
    }

    /// The URL of the `postgres` database, for administration.
    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The process id, for whoever needs to stop it explicitly.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until the server accepts connections, asking its own `pg_isready`.
    fn wait_until_ready(&mut self, bin_dir: &Path) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait()? {
                let log = std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default();
                bail!("postgres exited with {status}: {log}");
            }
            let ready = Command::new(bin_dir.join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "postgres", "-d", "postgres"])
                .stdin(Stdio::null())
                .status()
                .is_ok_and(|status| status.success());
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("postgres did not accept connections within 60 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        // SIGINT is PostgreSQL's "fast shutdown": it ends sessions and exits cleanly.
        let child = &mut self.child;
        crate::stop::stop_pid(child.id(), StopSignal::Int, Duration::from_secs(10), || {
            matches!(child.try_wait(), Ok(Some(_)))
        });
        let _ = self.child.wait();
    }
}

/// The directory holding `initdb` and `postgres`: `PG_BIN_DIR`, else the newest
/// `/usr/lib/postgresql/<version>/bin`, else whatever `pg_config --bindir` says.
fn find_bin_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("PG_BIN_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("postgres").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    let output = Command::new("pg_config").arg("--bindir").output();
    match output {
        Ok(output) if output.status.success() => Ok(PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())),
        _ => {
            bail!("PostgreSQL server binaries not found: install PostgreSQL (the test command does) or set PG_BIN_DIR")
        }
    }
}

fn is_root() -> anyhow::Result<bool> {
    let output = Command::new("id").arg("-u").output().context("running id -u")?;
    Ok(String::from_utf8_lossy(&output.stdout).trim() == "0")
}

/// Runs `program` as the `postgres` OS user when we are root, as ourselves otherwise.
fn postgres_command(program: &Path, as_root: bool) -> Command {
    if as_root {
        let mut command = Command::new("setpriv");
        command.args(["--reuid", POSTGRES_OS_USER, "--regid", POSTGRES_OS_USER, "--init-groups", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn chown_to_postgres(path: &Path) -> anyhow::Result<()> {
    let id = |flag: &str| -> anyhow::Result<u32> {
        let output = Command::new("id").args([flag, POSTGRES_OS_USER]).output()?;
        if !output.status.success() {
            bail!("running as root needs an OS user named {POSTGRES_OS_USER} (the PostgreSQL package creates it)");
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().parse()?)
    };
    std::os::unix::fs::chown(path, Some(id("-u")?), Some(id("-g")?))
        .with_context(|| format!("giving {} to {POSTGRES_OS_USER}", path.display()))
}

/// A port that was free a moment ago. PostgreSQL binds it right after; the race is harmless
/// in practice, and a clash makes `start` fail loudly rather than silently.
fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
