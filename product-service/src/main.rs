//! The product-service binary: parse configuration, start, run until SIGTERM or Ctrl-C.

use clap::Parser as _;
use service_runtime::process::{Probe, run_service};

/// mimalloc hands freed memory back to the system (see the workspace manifest).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let config = product_service::Config::parse();
    let runtime = config.runtime.clone();
    let probe = Probe::Grpc { listen_addr: config.listen_addr, service: product_service::SERVICE_NAME };
    service_runtime::process::block_on(run_service("product-service", &runtime, probe, product_service::build(config)))
}
