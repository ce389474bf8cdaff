//! The broker's supervisor (`local-broker supervise`), as `cargo xtask start` runs it: on the real broker, which is
//! killed and must come back by itself on the same port.

use std::{
    net::TcpListener,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// The supervisor process, stopped (SIGINT, as `cargo xtask stop` does) even if the test fails.
struct Supervisor {
    child: Child,
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = Command::new("kill").args(["-INT", &self.child.id().to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(15);
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The broker's pid and restart count, from the supervisor's state file.
fn state(path: &Path) -> Option<(u32, u32)> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut fields = text.split('\t');
    Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| stat.contains(") Z "))
}

/// True once the broker on `port` answers a real client's metadata request.
fn broker_answers(port: u16) -> bool {
    use rdkafka::{ClientConfig, consumer::BaseConsumer, consumer::Consumer as _};
    let consumer: Result<BaseConsumer, _> =
        ClientConfig::new().set("bootstrap.servers", format!("127.0.0.1:{port}")).create();
    consumer.is_ok_and(|consumer| consumer.fetch_metadata(None, Duration::from_secs(3)).is_ok())
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_killed_broker_comes_back_by_itself_on_the_same_port() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let state_file = dir.path().join("state");
    let log = dir.path().join("broker.log");
    let child = Command::new(env!("CARGO_BIN_EXE_local-broker"))
        .arg("supervise")
        .arg("--binary")
        .arg(test_support::tansu_binary().expect("the broker binary"))
        .args(["--port", &port.to_string()])
        .arg("--data-dir")
        .arg(dir.path())
        .arg("--log")
        .arg(&log)
        .arg("--state")
        .arg(&state_file)
        .stdin(Stdio::null())
        .spawn()
        .expect("start the supervisor");
    let supervisor = Supervisor { child };

    wait_for("the broker to answer", Duration::from_secs(30), || broker_answers(port));
    let storage = dir.path().join("broker").join("broker.db");
    // The supervisor adds it once the broker answers, so it may come a moment after.
    wait_for(&format!("{} in {}", test_support::HEADER_INDEX, storage.display()), Duration::from_secs(10), || {
        test_support::has_header_index(&storage).unwrap_or(false)
    });
    let (first, restarts) = state(&state_file).expect("the supervisor's state");
    assert_eq!(restarts, 0);

    let killed = Command::new("kill").args(["-KILL", &first.to_string()]).status().expect("kill");
    assert!(killed.success());
    wait_for("a new broker process", Duration::from_secs(30), || {
        state(&state_file).is_some_and(|(pid, restarts)| pid != first && restarts == 1)
    });
    wait_for("the new broker to answer", Duration::from_secs(30), || broker_answers(port));
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(log_text.contains("broker supervisor: the broker exited"), "the restart is logged: {log_text}");

    // Stopping the supervisor stops its broker too.
    let (second, _) = state(&state_file).expect("state");
    drop(supervisor);
    wait_for("the broker to stop with its supervisor", Duration::from_secs(15), || !alive(second));
}
