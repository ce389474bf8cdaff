//! The local-broker binary's behaviour, run as `cargo xtask start` runs it.

mod supervisor;
