//! A stand-in OTLP/gRPC trace collector for local measurements: receives what the processes
//! export and prints how many spans arrived, once a second, until Ctrl-C.
//!
//! `cargo run --release -p test-support --example otlp_receiver` prints the endpoint to set as
//! `OTEL_EXPORTER_OTLP_ENDPOINT`.

use std::time::Duration;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let receiver = test_support::OtlpReceiver::start_counting().await?;
    println!("OTEL_EXPORTER_OTLP_ENDPOINT={}", receiver.endpoint());
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            _ = ticker.tick() => println!("{} spans received", receiver.span_count()),
        }
    }
}
