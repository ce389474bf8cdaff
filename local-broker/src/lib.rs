//! The embedded broker of the local run, around the `local-broker` binary that `cargo xtask`
//! calls: [`supervise`] keeps it running, [`topics`] creates the topics and reads them.

pub mod supervise;
pub mod topics;
