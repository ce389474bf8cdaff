//! The xtask binary's own behaviour, run as a user runs it.

mod supervisor;
