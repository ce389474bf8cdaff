//! product-service integration tests: the real server on port 0, real SQLite files and a real
//! PostgreSQL database, called over real gRPC.

mod binary;
mod helpers;
mod products;
