//! `local-broker`: what `cargo xtask` does with the embedded broker, in a binary of its own so
//! that xtask itself needs no Kafka client. `cargo xtask start` runs `supervise` and
//! `create-topics`; `cargo xtask events` runs `events`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use local_broker::{supervise, topics};

#[derive(Debug, Parser)]
#[command(name = "local-broker", about = "The embedded broker of the local run")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the broker and restart it when it exits or stops answering.
    Supervise(supervise::SuperviseArgs),
    /// Create every topic the services use that the broker does not have yet.
    CreateTopics(topics::CreateArgs),
    /// Print a topic's events, from the beginning, as they arrive.
    Events(topics::EventsArgs),
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Supervise(args) => supervise::run(&args),
        Command::CreateTopics(args) => topics::create(&args),
        Command::Events(args) => topics::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("local-broker: {error:#}");
            ExitCode::FAILURE
        }
    }
}
