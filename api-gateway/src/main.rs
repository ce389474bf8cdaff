//! The api-gateway binary: parse configuration, start, serve until SIGTERM or Ctrl-C.

use clap::Parser as _;
use service_runtime::process::{Probe, run_service};

/// mimalloc hands freed memory back to the system (see the workspace manifest).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let config = api_gateway::Config::parse();
    let runtime = config.runtime.clone();
    let probe = Probe::Http { listen_addr: config.listen_addr, path: "/health" };
    service_runtime::process::block_on(run_service("api-gateway", &runtime, probe, api_gateway::build(config)))
}
