//! The load generator's real binary against real servers over real sockets.

mod failures;
mod helpers;
mod reference;
mod system;
