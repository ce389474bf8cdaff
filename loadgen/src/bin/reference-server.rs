//! `reference-server`: a bare axum handler, a trivial GraphQL resolver and a trivial gRPC call,
//! for the benchmark's reference figures. Prints `http=<addr>` and `grpc=<addr>` once bound, and
//! stops on SIGTERM or Ctrl-C.

use std::net::SocketAddr;

use clap::Parser;
use loadgen::reference::ReferenceServers;

#[derive(Debug, Parser)]
#[command(name = "reference-server", version, about = "Trivial HTTP, GraphQL and gRPC endpoints to compare against")]
struct Args {
    /// Where `GET /` and `POST /graphql` listen (port 0: any free port).
    #[arg(long, env = "REFERENCE_HTTP_ADDR", default_value = "127.0.0.1:0")]
    http_addr: SocketAddr,
    /// Where the gRPC health service listens (port 0: any free port).
    #[arg(long, env = "REFERENCE_GRPC_ADDR", default_value = "127.0.0.1:0")]
    grpc_addr: SocketAddr,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let shutdown = service_runtime::shutdown::signal();
    let servers = ReferenceServers::bind(args.http_addr, args.grpc_addr).await?;
    println!("http={}", servers.http_addr()?);
    println!("grpc={}", servers.grpc_addr()?);
    servers.serve(shutdown).await
}
