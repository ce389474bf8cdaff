//! user-service: accounts, credentials and roles over gRPC, on its own database.
//!
//! [`build`] connects and migrates the database, makes sure the configured admin account
//! exists, and binds the gRPC server; the caller decides when it stops. Every change also
//! writes its event (`user.created`, `user.updated`, `user.deleted`) to the outbox in the same
//! transaction; the relay beside the server publishes them.

mod api;
mod config;
#[doc(hidden)]
pub mod fuzzing;
pub mod login_throttle;
mod password;
mod repository;
mod validation;

use service_runtime::{GrpcServer, database, startup::StartupError};

pub use config::Config;

/// The gRPC service name, as health checks ask for it.
pub const SERVICE_NAME: &str =
    <proto::user::user_service_server::UserServiceServer<api::UserApi> as tonic::server::NamedService>::NAME;

/// Connects, migrates, ensures the admin account and binds; the returned server is ready to run.
pub async fn build(config: Config) -> Result<GrpcServer, StartupError> {
    let admin = config.admin_account()?;
    let tls = config.runtime.grpc_tls.load()?;
    config.kafka.check()?;
    let migrators = [database::migrator(sqlx::migrate!()), events::migrator()];
    let database = database::connect(&config.database.url_for("users.db")?, &migrators).await?;
    let outbox = events::outbox::OutboxSignal::default();
    let users = repository::UserRepository::new(database.clone(), outbox.clone());
    let hasher = password::PasswordHasher::new()
        .map_err(|error| StartupError::Threads { purpose: "password hashing", problem: error.to_string() })?;
    if let Some(admin) = admin {
        api::ensure_admin(&users, &hasher, admin)
            .await
            .map_err(|error| StartupError::AdminAccount(service_runtime::error::with_causes(&error)))?;
    }
    let api = api::UserApi::new(users, hasher);
    let routes = tonic::service::Routes::new(proto::user::user_service_server::UserServiceServer::new(api));
    let events = events::EventPipeline::new(config.kafka, "user-service", database, outbox);
    Ok(GrpcServer::bind(config.listen_addr, routes, &[SERVICE_NAME], config.runtime.shutdown_timeout(), &tls)
        .await?
        .with_background(events.into_background()))
}
