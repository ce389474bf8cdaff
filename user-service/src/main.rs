//! The user-service binary: parse configuration, start, run until SIGTERM or Ctrl-C.

use clap::Parser as _;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = user_service::Config::parse();
    let runtime = config.runtime.clone();
    service_runtime::process::run_service("user-service", &runtime, user_service::build(config)).await
}
