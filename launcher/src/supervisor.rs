//! What the broker's supervisor (`local-broker supervise`, which `cargo xtask start` runs) says
//! about itself in a small state file: the broker's pid, how often it was restarted, and why
//! last. The supervisor writes it; `cargo xtask status` reads it.

use std::path::Path;

/// The supervisor's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupervisorState {
    pub broker_pid: u32,
    pub restarts: u32,
    pub last_reason: String,
}

impl SupervisorState {
    /// The state at `path`; `None` when there is none (no supervisor, or it has stopped).
    pub fn read(path: &Path) -> Option<Self> {
        let text = std::fs::read_to_string(path).ok()?;
        let mut fields = text.trim_end().splitn(3, '\t');
        Some(Self {
            broker_pid: fields.next()?.parse().ok()?,
            restarts: fields.next()?.parse().ok()?,
            last_reason: fields.next().unwrap_or_default().to_owned(),
        })
    }

    /// Writes the state to `path`: aside first, then renamed, so a reader never sees half a line.
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let partial = path.with_extension("partial");
        std::fs::write(&partial, format!("{}\t{}\t{}\n", self.broker_pid, self.restarts, self.last_reason))?;
        Ok(std::fs::rename(partial, path)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_file_round_trips() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("state");
        let state =
            SupervisorState { broker_pid: 42, restarts: 3, last_reason: "the broker exited (signal: 9)".into() };
        state.write(&path).expect("write");
        assert_eq!(SupervisorState::read(&path), Some(state));
        assert_eq!(SupervisorState::read(&dir.path().join("missing")), None);
    }
}
