//! The common part of the configuration contract: settings every service takes.
//!
//! Each binary parses its own `clap` struct and flattens [`DatabaseArgs`] and [`RuntimeArgs`]
//! into it, so the env names (`DATABASE_URL`, `DATA_DIR`, `LOG_FORMAT`, ...) are the same
//! everywhere. A malformed value stops the binary at start with one line naming the setting.

use std::{fmt, path::PathBuf, str::FromStr, time::Duration};

use crate::{startup::StartupError, telemetry::LogFormat, tls::GrpcTlsArgs};

/// Where a service keeps its data: an explicit `DATABASE_URL`, or a SQLite file in `DATA_DIR`.
#[derive(Debug, Clone, clap::Args)]
pub struct DatabaseArgs {
    /// `sqlite://<path>` or `postgres://user:pass@host/db`. Defaults to a SQLite file in DATA_DIR.
    /// Kept as text and checked in [`DatabaseArgs::url_for`], so an error never echoes a password.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// The directory for the default SQLite files (created when missing).
    #[arg(long, env = "DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
}

impl DatabaseArgs {
    /// SQLite in `data_dir`, as tests and the local run use it.
    pub fn sqlite_in(data_dir: impl Into<PathBuf>) -> Self {
        Self { database_url: None, data_dir: data_dir.into() }
    }

    /// PostgreSQL (or SQLite) at `url`, as tests use it.
    pub fn url(url: impl Into<String>) -> Self {
        Self { database_url: Some(url.into()), data_dir: PathBuf::from("data") }
    }

    /// The URL to connect to: `DATABASE_URL` if given, else `sqlite://<DATA_DIR>/<file_name>`.
    pub fn url_for(&self, file_name: &str) -> Result<DatabaseUrl, StartupError> {
        match self.database_url.as_deref().filter(|url| !url.trim().is_empty()) {
            Some(url) => url.parse().map_err(|problem| StartupError::config("DATABASE_URL", problem)),
            None => Ok(DatabaseUrl::Sqlite { path: self.data_dir.join(file_name) }),
        }
    }
}

/// Settings of the process rather than of its domain.
#[derive(Debug, Clone, clap::Args)]
pub struct RuntimeArgs {
    /// Log output: `json` for machines, `pretty` for people. Filter with RUST_LOG.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,
    /// How long in-flight requests may take to finish after SIGTERM before the process exits.
    #[arg(long, env = "SHUTDOWN_TIMEOUT_SECS", default_value_t = 10)]
    pub shutdown_timeout_secs: u64,
    /// Where to serve Prometheus metrics (`GET /metrics`), e.g. `127.0.0.1:9100`. Off when unset.
    #[arg(long, env = "METRICS_ADDR")]
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Instead of serving: check the instance that runs with this configuration and exit 0 if it
    /// is healthy, 1 if not (for container health checks).
    #[arg(long)]
    pub health_check: bool,
    /// TLS for the gRPC server and the clients of peer services.
    #[command(flatten)]
    pub grpc_tls: GrpcTlsArgs,
}

impl RuntimeArgs {
    /// The drain timeout as a `Duration`.
    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.shutdown_timeout_secs)
    }
}

impl Default for RuntimeArgs {
    fn default() -> Self {
        Self {
            log_format: LogFormat::Pretty,
            shutdown_timeout_secs: 10,
            metrics_addr: None,
            health_check: false,
            grpc_tls: GrpcTlsArgs::default(),
        }
    }
}

/// A validated database location. Its `Debug` and `Display` never show a password.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// A SQLite file, created when missing.
    Sqlite { path: PathBuf },
    /// A PostgreSQL server; the URL is kept as given.
    Postgres { url: String },
}

impl DatabaseUrl {
    /// The URL in the form the driver wants.
    pub fn connection_string(&self) -> String {
        match self {
            // `mode=rwc` creates the file on first start.
            Self::Sqlite { path } => format!("sqlite://{}?mode=rwc", path.display()),
            Self::Postgres { url } => url.clone(),
        }
    }
}

impl FromStr for DatabaseUrl {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let value = value.trim();
        if let Some(rest) = value.strip_prefix("sqlite:") {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            let path = path.split('?').next().unwrap_or_default();
            if path.is_empty() {
                return Err("a sqlite URL needs a file path, e.g. sqlite://data/users.db".into());
            }
            return Ok(Self::Sqlite { path: PathBuf::from(path) });
        }
        if value.starts_with("postgres://") || value.starts_with("postgresql://") {
            return Ok(Self::Postgres { url: value.to_owned() });
        }
        Err("expected sqlite://<path> or postgres://user:password@host:port/database".into())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite { path } => write!(f, "sqlite://{}", path.display()),
            Self::Postgres { url } => {
                // Show scheme, host and database, never the credentials.
                let after_scheme = url.split_once("://").map_or("", |(_, rest)| rest);
                let host_and_db = after_scheme.rsplit_once('@').map_or(after_scheme, |(_, rest)| rest);
                let host_and_db = host_and_db.split('?').next().unwrap_or_default();
                write!(f, "postgres://{host_and_db}")
            }
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A secret setting (a password, a key). Its `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Ok(Self(value.to_owned()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_parse_to_paths() {
        let url: DatabaseUrl = "sqlite://data/users.db".parse().expect("valid");
        assert_eq!(url, DatabaseUrl::Sqlite { path: "data/users.db".into() });
        let url: DatabaseUrl = "sqlite:///var/lib/users.db?mode=rwc".parse().expect("valid");
        assert_eq!(url, DatabaseUrl::Sqlite { path: "/var/lib/users.db".into() });
    }

    #[test]
    fn other_schemes_are_rejected() {
        assert!("mysql://localhost/users".parse::<DatabaseUrl>().is_err());
        assert!("sqlite://".parse::<DatabaseUrl>().is_err());
    }

    #[test]
    fn postgres_credentials_are_never_shown() {
        let url: DatabaseUrl = "postgres://app:hunter2@db:5432/users?sslmode=disable".parse().expect("valid");
        assert_eq!(format!("{url} {url:?}"), "postgres://db:5432/users postgres://db:5432/users");
        assert_eq!(format!("{:?}", Secret::from("hunter2".to_owned())), "Secret(***)");
    }
}
