//! user-service's configuration: the common settings plus the admin account.

use std::net::SocketAddr;

use service_runtime::{
    config::{DatabaseArgs, RuntimeArgs, Secret},
    startup::StartupError,
};

use crate::validation;

/// Flags with env fallbacks, per the configuration contract.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "user-service", version, about = "Users, credentials and roles over gRPC")]
pub struct Config {
    /// The gRPC listen address.
    #[arg(long, env = "LISTEN_ADDR", default_value = "0.0.0.0:50051")]
    pub listen_addr: SocketAddr,
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
    #[command(flatten)]
    pub kafka: events::KafkaArgs,
    /// The admin account's email; the account is created (or promoted) at start.
    #[arg(long, env = "ADMIN_EMAIL")]
    pub admin_email: Option<String>,
    /// The admin account's password (at least 8 characters).
    #[arg(long, env = "ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<Secret>,
}

/// The admin account to ensure at start, validated.
#[derive(Debug, Clone)]
pub struct AdminAccount {
    pub email: String,
    pub password: Secret,
}

impl Config {
    /// A configuration for SQLite files in `data_dir`, listening on `listen_addr`, no admin.
    pub fn sqlite(listen_addr: SocketAddr, data_dir: impl Into<std::path::PathBuf>) -> Self {
        Self {
            listen_addr,
            database: DatabaseArgs::sqlite_in(data_dir),
            runtime: RuntimeArgs::default(),
            kafka: events::KafkaArgs::disabled(),
            admin_email: None,
            admin_password: None,
        }
    }

    /// The admin pair, when both halves are set. One half alone is a configuration error.
    pub fn admin_account(&self) -> Result<Option<AdminAccount>, StartupError> {
        match (&self.admin_email, &self.admin_password) {
            (None, None) => Ok(None),
            (Some(_), None) => Err(StartupError::config("ADMIN_PASSWORD", "must be set when ADMIN_EMAIL is")),
            (None, Some(_)) => Err(StartupError::config("ADMIN_EMAIL", "must be set when ADMIN_PASSWORD is")),
            (Some(email), Some(password)) => {
                let email = validation::email("email", email)
                    .map_err(|_| StartupError::config("ADMIN_EMAIL", "is not a valid email address"))?;
                validation::password("password", password.expose())
                    .map_err(|error| StartupError::config("ADMIN_PASSWORD", error.to_string()))?;
                Ok(Some(AdminAccount { email, password: password.clone() }))
            }
        }
    }
}
