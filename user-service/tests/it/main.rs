//! user-service integration tests: the real server on port 0, real SQLite files and a real
//! PostgreSQL database, called over real gRPC.

mod admin;
mod binary;
mod helpers;
mod login;
mod users;
