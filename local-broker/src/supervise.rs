//! `local-broker supervise` (started by `cargo xtask start`, not by hand): keeps the
//! embedded broker running. The broker is this process's child; if it exits, or stops answering
//! Kafka's ApiVersions request for [`MISSES_BEFORE_RESTART`] checks in a row (frozen, wedged),
//! it is stopped and started again on the same port and data. SIGINT or SIGTERM stops the
//! broker and then the supervisor. What it is doing is written to a small state file that
//! `cargo xtask status` reads.

use std::{
    io::Write as _,
    path::{Path, PathBuf},
    process::ExitCode,
    time::Duration,
};

use anyhow::Context as _;
use launcher::{
    stop::{StopSignal, stop_pid},
    supervisor::SupervisorState,
};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    signal::unix::{SignalKind, signal},
};

/// How often the broker is asked whether it answers.
const CHECK_INTERVAL: Duration = Duration::from_secs(2);
/// How long one check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);
/// Failed checks in a row before the broker is restarted: 10 s or more without an answer,
/// far beyond any pause the broker takes when it is merely busy.
const MISSES_BEFORE_RESTART: u32 = 5;
/// The pause before a restart, doubled (up to [`MAX_RESTART_DELAY`]) while the broker keeps
/// failing within [`STABLE_AFTER`] of its start.
const RESTART_DELAY: Duration = Duration::from_secs(1);
const MAX_RESTART_DELAY: Duration = Duration::from_secs(30);
const STABLE_AFTER: Duration = Duration::from_secs(30);
/// How long the broker gets to stop on SIGINT before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a starting broker has to create its tables before its storage is indexed.
const INDEX_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, clap::Args)]
pub struct SuperviseArgs {
    /// The broker's binary (tansu).
    #[arg(long)]
    binary: PathBuf,
    /// The port it listens on (127.0.0.1).
    #[arg(long)]
    port: u16,
    /// Its data directory (the SQLite file goes in `broker/`).
    #[arg(long)]
    data_dir: PathBuf,
    /// Its log, appended to across restarts.
    #[arg(long)]
    log: PathBuf,
    /// Where the supervisor writes the broker's pid and its restarts.
    #[arg(long)]
    state: PathBuf,
}

pub fn run(args: &SuperviseArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(supervise(args))?;
    Ok(ExitCode::SUCCESS)
}

async fn supervise(args: &SuperviseArgs) -> anyhow::Result<()> {
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut state = SupervisorState { broker_pid: 0, restarts: 0, last_reason: String::new() };
    let mut delay = RESTART_DELAY;
    loop {
        let started = tokio::time::Instant::now();
        let mut broker = start_broker(args)?;
        state.broker_pid = broker.id().context("the broker exited at once")?;
        state.write(&args.state)?;
        // Once it listens (its schema is complete: writing while tansu still creates tables makes
        // it fail, as it sets no busy timeout) and as early as possible, while the services are
        // still starting. A broker without the index is slower but correct: a failure is noted.
        let deadline = tokio::time::Instant::now() + INDEX_TIMEOUT;
        while !answers(args.port).await && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let storage = launcher::broker::storage_file(&args.data_dir);
        if let Err(error) = test_support::index_broker_storage(&storage, INDEX_TIMEOUT) {
            note(&args.log, &format!("could not index the broker's storage: {error:#}"));
        }
        let mut misses = 0;
        let reason = loop {
            tokio::select! {
                _ = terminate.recv() => return stop(&mut broker, args).await,
                _ = interrupt.recv() => return stop(&mut broker, args).await,
                status = broker.wait() => break format!("the broker exited ({})", status?),
                () = tokio::time::sleep(CHECK_INTERVAL) => {
                    if answers(args.port).await {
                        misses = 0;
                    } else {
                        misses += 1;
                        if misses >= MISSES_BEFORE_RESTART {
                            let _ = broker.kill().await;
                            break format!("the broker did not answer for {misses} checks in a row");
                        }
                    }
                }
            }
        };
        state.restarts += 1;
        state.last_reason = reason;
        // A broker that cannot stay up (its port taken, its data unreadable) is retried less
        // and less often, so that its log stays readable.
        delay = if started.elapsed() < STABLE_AFTER { (delay * 2).min(MAX_RESTART_DELAY) } else { RESTART_DELAY };
        note(&args.log, &format!("{}; starting it again in {delay:?} (restart {})", state.last_reason, state.restarts));
        let stopped = tokio::select! {
            _ = terminate.recv() => true,
            _ = interrupt.recv() => true,
            () = tokio::time::sleep(delay) => false,
        };
        if stopped {
            let _ = std::fs::remove_file(&args.state);
            return Ok(());
        }
    }
}

fn start_broker(args: &SuperviseArgs) -> anyhow::Result<tokio::process::Child> {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(&args.log)?;
    let storage = launcher::broker::storage_file(&args.data_dir);
    std::fs::create_dir_all(storage.parent().context("the broker's storage folder")?)?;
    let mut command = launcher::broker::command(&args.binary, args.port, &storage);
    command.stdin(std::process::Stdio::null()).stdout(log.try_clone()?).stderr(log);
    Ok(tokio::process::Command::from(command).kill_on_drop(true).spawn()?)
}

/// Stops the broker the way it wants to be stopped (it exits on SIGINT, not SIGTERM).
async fn stop(broker: &mut tokio::process::Child, args: &SuperviseArgs) -> anyhow::Result<()> {
    if let Some(pid) = broker.id() {
        // Blocking: the supervisor has nothing else to do while its broker stops.
        stop_pid(pid, StopSignal::Int, STOP_TIMEOUT, || matches!(broker.try_wait(), Ok(Some(_))));
    }
    let _ = broker.wait().await;
    let _ = std::fs::remove_file(&args.state);
    Ok(())
}

fn note(log: &Path, line: &str) {
    if let Ok(mut file) = std::fs::OpenOptions::new().create(true).append(true).open(log) {
        let _ = writeln!(file, "broker supervisor: {line}");
    }
}

/// True when the broker at `port` answers a Kafka ApiVersions request (version 0) in time. It
/// needs nothing from the broker's storage, so it says whether the broker is alive, not busy.
pub async fn answers(port: u16) -> bool {
    tokio::time::timeout(CHECK_TIMEOUT, api_versions(port)).await.is_ok_and(|answer| answer.is_ok())
}

async fn api_versions(port: u16) -> anyhow::Result<()> {
    const API_VERSIONS: i16 = 18;
    const CORRELATION_ID: i32 = 0x5eed;
    const CLIENT_ID: &[u8] = b"xtask-supervisor";
    let mut request = Vec::new();
    request.extend_from_slice(&API_VERSIONS.to_be_bytes());
    request.extend_from_slice(&0_i16.to_be_bytes());
    request.extend_from_slice(&CORRELATION_ID.to_be_bytes());
    request.extend_from_slice(&i16::try_from(CLIENT_ID.len())?.to_be_bytes());
    request.extend_from_slice(CLIENT_ID);
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    stream.write_all(&i32::try_from(request.len())?.to_be_bytes()).await?;
    stream.write_all(&request).await?;
    let size = stream.read_i32().await?;
    anyhow::ensure!(size >= 4, "a response of {size} bytes");
    let correlation = stream.read_i32().await?;
    anyhow::ensure!(correlation == CORRELATION_ID, "the answer is to another request ({correlation})");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_port_without_a_broker_does_not_answer() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        assert!(!answers(port).await);
    }
}
