//! The one way a process started here is stopped: by its pid, with the signal it shuts down
//! on, a grace period to do so, then SIGKILL.

use std::{
    process::Command,
    time::{Duration, Instant},
};

/// The signal a process shuts down cleanly on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    /// The services and the gateway.
    Term,
    /// The broker and PostgreSQL ("fast shutdown").
    Int,
}

impl StopSignal {
    fn flag(self) -> &'static str {
        match self {
            Self::Term => "-TERM",
            Self::Int => "-INT",
        }
    }
}

/// How a stop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// It exited within the grace period.
    Exited,
    /// It was still running after the grace period and got SIGKILL.
    Killed,
}

/// Sends `signal` to `pid`, waits up to `grace` for `exited` to say it is gone, and sends
/// SIGKILL if it is not. A parent still has to reap its child (`Child::wait`) afterwards.
pub fn stop_pid(pid: u32, signal: StopSignal, grace: Duration, mut exited: impl FnMut() -> bool) -> Stopped {
    let pid = pid.to_string();
    let signalled = Command::new("kill").args([signal.flag(), &pid]).status().is_ok_and(|status| status.success());
    let deadline = Instant::now() + grace;
    while signalled && Instant::now() < deadline {
        if exited() {
            return Stopped::Exited;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if exited() {
        return Stopped::Exited;
    }
    let _ = Command::new("kill").args(["-KILL", &pid]).status();
    Stopped::Killed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_that_ignores_the_signal_is_killed_after_the_grace_period() {
        // `exec`: the sleep itself ignores the signal (an ignored signal stays ignored across
        // exec), so SIGKILL ends it; a shell's child would outlive the shell, holding the pipes.
        let mut child = Command::new("sh")
            .args(["-c", "trap '' TERM; exec sleep 30"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("sh");
        std::thread::sleep(Duration::from_millis(100));
        let stopped = stop_pid(child.id(), StopSignal::Term, Duration::from_millis(300), || {
            matches!(child.try_wait(), Ok(Some(_)))
        });
        assert_eq!(stopped, Stopped::Killed);
        assert!(child.wait().is_ok());
    }

    #[test]
    fn a_process_that_obeys_the_signal_exits() {
        let mut child = Command::new("sleep").arg("30").spawn().expect("sleep");
        let stopped =
            stop_pid(child.id(), StopSignal::Term, Duration::from_secs(5), || matches!(child.try_wait(), Ok(Some(_))));
        assert_eq!(stopped, Stopped::Exited);
    }
}
