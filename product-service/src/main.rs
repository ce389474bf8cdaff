//! The product-service binary: parse configuration, start, run until SIGTERM or Ctrl-C.

use clap::Parser as _;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = product_service::Config::parse();
    let runtime = config.runtime.clone();
    service_runtime::process::run_service("product-service", &runtime, product_service::build(config)).await
}
