//! `spawn_reference_server` and `run_loadgen`: the two real binaries, stopped when done.

use std::{
    io::{BufRead as _, BufReader},
    process::{Child, Command, Stdio},
};

use loadgen::Report;

/// The reference server, killed on drop so a failing test leaves nothing behind.
#[derive(Debug)]
pub struct ReferenceServer {
    child: Child,
    pub http: String,
    pub grpc: String,
}

impl Drop for ReferenceServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn spawn_reference_server() -> ReferenceServer {
    let mut child = Command::new(env!("CARGO_BIN_EXE_reference-server"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("start reference-server");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut address = |prefix: &str| {
        let line = lines.next().expect("an address line").expect("readable stdout");
        let address = line.strip_prefix(prefix).unwrap_or_else(|| panic!("{line:?} does not start with {prefix}"));
        format!("http://{address}")
    };
    let http = address("http=");
    let grpc = address("grpc=");
    ReferenceServer { child, http, grpc }
}

/// What one `loadgen` run printed and wrote.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub report: Option<Report>,
}

/// Runs `loadgen` to completion with `args` (plus a short duration and a JSON output).
pub fn run_loadgen(args: &[&str]) -> Run {
    let output_dir = tempfile::tempdir().expect("tempdir");
    let report_path = output_dir.path().join("report.json");
    let output = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["--duration", "1", "--warmup", "0.2", "--output"])
        .arg(&report_path)
        .args(args)
        .output()
        .expect("run loadgen");
    let report = std::fs::read(&report_path).ok().map(|bytes| serde_json::from_slice(&bytes).expect("a JSON report"));
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        report,
    }
}
