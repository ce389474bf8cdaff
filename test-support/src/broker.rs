//! The embedded Kafka-protocol broker (`tansu`) in a child process, for tests: on a free port
//! with SQLite storage in a directory that outlives restarts, stopped by pid.

use std::{
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use launcher::stop::StopSignal;

/// A running broker. Dropping it kills it; [`BrokerProcess::stop`] stops it cleanly.
#[derive(Debug)]
pub struct BrokerProcess {
    child: Child,
    port: u16,
}

/// Where the broker keeps its data across restarts in one test.
#[derive(Debug)]
pub struct BrokerStorage {
    dir: tempfile::TempDir,
    port: u16,
}

impl BrokerStorage {
    /// A fresh storage directory and a free port to keep using.
    pub fn new() -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("test-broker-").tempdir()?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        Ok(Self { dir, port })
    }

    /// `127.0.0.1:<port>`, for `KAFKA_BROKERS`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Starts the broker on this storage and port and waits until it accepts connections.
    pub fn start(&self) -> anyhow::Result<BrokerProcess> {
        BrokerProcess::start(self.dir.path(), self.port)
    }
}

impl BrokerProcess {
    fn start(dir: &Path, port: u16) -> anyhow::Result<Self> {
        let binary = tansu_binary()?;
        // TEST_BROKER_LOG=<file> keeps the broker's log at info level in that file, for a test
        // that needs explaining (the temporary directory goes with the test).
        let (log_path, level) = match std::env::var_os("TEST_BROKER_LOG") {
            Some(path) => (std::path::PathBuf::from(path), "warn,tansu_broker::coordinator=info"),
            None => (dir.join("broker.log"), "warn"),
        };
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&log_path)?;
        let child = launcher::broker::command(&binary, port, &dir.join("broker.db"))
            .env("RUST_LOG", level)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut broker = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = broker.child.try_wait()? {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                bail!("the broker exited with {status}: {log}");
            }
            if Instant::now() > deadline {
                bail!("the broker did not listen on {port} within 30 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // Before any client connects, while nothing else writes.
        crate::index_broker_storage(&dir.join("broker.db"), Duration::from_secs(30))?;
        Ok(broker)
    }

    /// `127.0.0.1:<port>`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The broker's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Freezes the broker (SIGSTOP): it keeps its connections but answers nothing, as a broker
    /// stuck in a long pause would. [`BrokerProcess::resume`] lets it go on.
    pub fn freeze(&self) -> anyhow::Result<()> {
        self.signal("-STOP")
    }

    /// Lets a frozen broker go on (SIGCONT).
    pub fn resume(&self) -> anyhow::Result<()> {
        self.signal("-CONT")
    }

    fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let status = Command::new("kill").args([signal, &self.child.id().to_string()]).status()?;
        anyhow::ensure!(status.success(), "kill {signal} {} failed: {status}", self.child.id());
        Ok(())
    }

    /// Stops the broker by pid. It shuts down on SIGINT (not SIGTERM).
    pub fn stop(mut self) -> anyhow::Result<()> {
        let child = &mut self.child;
        launcher::stop::stop_pid(child.id(), StopSignal::Int, Duration::from_secs(10), || {
            matches!(child.try_wait(), Ok(Some(_)))
        });
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `TANSU_BIN`, else the broker `cargo xtask` builds in the workspace.
pub fn tansu_binary() -> anyhow::Result<PathBuf> {
    launcher::broker::tansu_binary(&launcher::workspace_root())
}
