//! A load generator for the GraphQL gateway, and the reference servers it is compared with.
//!
//! A run drives one [`Scenario`] against a running system, either closed-loop (a fixed number
//! of clients, each sending its next request when the last one answered) or open-loop (requests
//! start at a fixed rate whatever the system does, and each latency counts from when the request
//! was due, so a slow system cannot hide its queueing). Latencies go into HDR histograms; any
//! non-200 answer, GraphQL error or unexpected result is an error, and a run with errors fails.
//!
//! - [`driver`]: the two loops, warm-up and progress.
//! - [`recorder`]: histograms, counts and the [`Report`] a run produces.
//! - [`scenario`]: what one request of each scenario does; [`fixture`] creates the data they read,
//!   [`answers`] the shapes their answers are checked against.
//! - [`graphql`] / [`watcher`]: the HTTP GraphQL client and the subscription that tells when an
//!   order is confirmed.
//! - [`reference`]: a bare axum handler, a trivial async-graphql resolver and a trivial gRPC call,
//!   to show what this machine can do at all.

mod answers;
pub mod driver;
pub mod error;
pub mod failed_logins;
pub mod fixture;
pub mod graphql;
pub mod recorder;
pub mod reference;
pub mod scenario;
pub mod watcher;

pub use driver::{Load, Mode};
pub use error::RequestError;
pub use recorder::{Recorder, Report};
pub use scenario::Scenario;
