//! order-service integration tests: order-service, user-service and product-service each on
//! port 0 with their own real database (SQLite files or PostgreSQL), talking real gRPC.

mod binary;
mod helpers;
mod orders;
mod status;
