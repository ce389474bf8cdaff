//! Why a process could not start: one error for configuration, database, listening sockets,
//! TLS files and the like, so every binary prints one line naming what to fix and exits 1.

use std::net::SocketAddr;

/// Why a service could not start. Each variant names what to fix.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("{name}: {problem}")]
    Config { name: &'static str, problem: String },
    #[error("database {url}: {source}")]
    Database { url: String, source: sqlx::Error },
    #[error("database {url}: migration failed: {source}")]
    Migration { url: String, source: sqlx::migrate::MigrateError },
    #[error("LISTEN_ADDR: cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("gRPC reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("cannot start the threads for {purpose}: {problem}")]
    Threads { purpose: &'static str, problem: String },
    /// The account `ADMIN_EMAIL` names could not be created or updated (the database refused,
    /// say); the message carries the cause.
    #[error("cannot create or update the admin account: {0}")]
    AdminAccount(String),
}

impl StartupError {
    /// A configuration problem with the setting `name`.
    pub fn config(name: &'static str, problem: impl Into<String>) -> Self {
        Self::Config { name, problem: problem.into() }
    }

    /// Reads the file a setting names; the error names the setting, the path and why.
    pub fn read_setting_file(name: &'static str, path: &std::path::Path) -> Result<Vec<u8>, Self> {
        std::fs::read(path).map_err(|error| Self::config(name, format!("cannot read {}: {error}", path.display())))
    }
}
