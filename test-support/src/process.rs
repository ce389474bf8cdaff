//! A service's real binary in a child process: started with env settings on port 0, its
//! address read from its JSON log ("… server listening", `addr`), stopped with SIGTERM by pid
//! (killed when dropped).

use std::{
    io::{BufRead as _, BufReader},
    net::SocketAddr,
    process::{Child, Command, ExitStatus, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};

/// A running service binary.
#[derive(Debug)]
pub struct ServiceProcess {
    child: Child,
    addr: SocketAddr,
    /// Where it serves Prometheus metrics, when it was started with `METRICS_ADDR`.
    metrics_addr: Option<SocketAddr>,
    /// Every log line after the "listening" one, for assertions.
    lines: mpsc::Receiver<String>,
}

impl ServiceProcess {
    /// Starts `binary` with `envs` (plus `LISTEN_ADDR=127.0.0.1:0` and JSON logs) and waits for
    /// the line that reports the bound address.
    pub fn start(binary: &str, envs: &[(&str, String)]) -> anyhow::Result<Self> {
        let mut child = Command::new(binary)
            .env_clear()
            .env("LISTEN_ADDR", "127.0.0.1:0")
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .envs(envs.iter().map(|(key, value)| (*key, value.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {binary}"))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let (sender, lines) = mpsc::channel();
        // TEST_SERVICE_LOGS=1 copies every line to stderr, for a test that needs explaining.
        let mirror =
            std::env::var_os("TEST_SERVICE_LOGS").is_some().then(|| binary.rsplit('/').next().map(str::to_owned));
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(name) = mirror.as_ref() {
                    eprintln!("[{}] {line}", name.as_deref().unwrap_or_default());
                }
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut process = Self { child, addr: SocketAddr::from(([0, 0, 0, 0], 0)), metrics_addr: None, lines };
        // The metrics listener, when asked for, is bound before the server and says where.
        let mut listening = process.wait_for_log("listening", Duration::from_secs(30))?;
        if listening.contains("metrics listening") {
            process.metrics_addr = Some(json_field(&listening, "bound").context("no bound address")?.parse()?);
            listening = process.wait_for_log("server listening", Duration::from_secs(30))?;
        }
        process.addr = json_field(&listening, "addr").context("no addr in the listening line")?.parse()?;
        Ok(process)
    }

    /// Waits until a log line contains `needle` and returns it.
    pub fn wait_for_log(&mut self, needle: &str, timeout: Duration) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.lines.recv_timeout(Duration::from_millis(100)) {
                Ok(line) if line.contains(needle) => return Ok(line),
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {}
                Err(_) => bail!("no log line with {needle:?} (exit: {:?})", self.child.try_wait()?),
            }
        }
    }

    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://<metrics addr>/metrics`, when it was started with `METRICS_ADDR`.
    pub fn metrics_url(&self) -> Option<String> {
        self.metrics_addr.map(|addr| format!("http://{addr}/metrics"))
    }

    /// Sends SIGTERM and waits up to `timeout` for the process to exit on its own.
    pub fn terminate(mut self, timeout: Duration) -> anyhow::Result<(ExitStatus, Vec<String>)> {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status()?;
        if !status.success() {
            bail!("kill -TERM {pid} failed");
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                let lines = self.lines.try_iter().collect();
                return Ok((status, lines));
            }
            if Instant::now() > deadline {
                bail!("process {pid} still running {timeout:?} after SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl ServiceProcess {
    /// Kills the process with SIGKILL (a crash: no shutdown code runs) and waits for it.
    pub fn kill(mut self) -> anyhow::Result<()> {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-KILL", &pid]).status()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        // Only when a test failed before `terminate`: never leave the process behind.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The string value of `"key":"value"` in a flat JSON log line.
fn json_field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let start = line.find(&format!("\"{key}\":\""))? + key.len() + 4;
    let rest = &line[start..];
    Some(&rest[..rest.find('"')?])
}

/// Runs `binary` with `envs` (plus a fresh `DATA_DIR` and `LISTEN_ADDR=127.0.0.1:0`), expects
/// it to exit with a failure status, and returns what it printed to stderr.
#[track_caller]
pub fn expect_startup_failure(binary: &str, envs: &[(&str, &str)]) -> String {
    let data = tempfile::tempdir().expect("tempdir");
    let output = Command::new(binary)
        .env_clear()
        .env("DATA_DIR", data.path())
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run the binary");
    assert!(!output.status.success(), "{envs:?} should stop {binary}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Starts `binary` with `envs` plus a fresh `DATA_DIR`, checks it reports `service` SERVING,
/// sends SIGTERM and checks it exits successfully within 5 s with `db_file` in `DATA_DIR`.
/// Returns its log lines.
pub async fn assert_serves_until_sigterm(
    binary: &str,
    service: &str,
    envs: &[(&str, String)],
    db_file: &str,
) -> Vec<String> {
    let data = tempfile::tempdir().expect("tempdir");
    let mut envs = envs.to_vec();
    envs.push(("DATA_DIR", data.path().display().to_string()));
    let process = ServiceProcess::start(binary, &envs).expect("start");
    let status = crate::grpc::health_status(&process.url(), service).await.expect("health check");
    assert_eq!(status, crate::grpc::SERVING);
    let (status, logs) = process.terminate(Duration::from_secs(5)).expect("terminate");
    assert!(status.success(), "exit status {status}");
    assert!(data.path().join(db_file).exists(), "{db_file} should be in DATA_DIR");
    logs
}

/// The path of a workspace binary: every package's binaries sit in the target directory, one
/// level above the test executable's `deps/` folder (`cargo xtask test` builds them all).
pub fn workspace_binary(name: &str) -> String {
    let exe = std::env::current_exe().expect("test executable");
    let dir = exe.parent().and_then(|deps| deps.parent()).expect("target directory");
    let path = dir.join(name);
    assert!(path.exists(), "{} is missing: build the workspace first (`cargo xtask test` does)", path.display());
    path.display().to_string()
}

/// Runs `binary --health-check` against an instance listening on `listen_addr`, with `envs`
/// (its TLS settings, say).
pub fn run_health_check(binary: &str, listen_addr: &str, envs: &[(&str, String)]) -> std::process::Output {
    Command::new(binary)
        .env_clear()
        .arg("--health-check")
        .env("LISTEN_ADDR", listen_addr)
        .envs(envs.iter().map(|(key, value)| (*key, value.as_str())))
        .output()
        .expect("run the health check")
}
