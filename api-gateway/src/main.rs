//! The api-gateway binary: parse configuration, start, serve until SIGTERM or Ctrl-C.

use clap::Parser as _;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = api_gateway::Config::parse();
    let runtime = config.runtime.clone();
    service_runtime::process::run_service("api-gateway", &runtime, api_gateway::build(config)).await
}
