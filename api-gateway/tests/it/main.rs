//! End-to-end tests: the four real binaries (user-, product-, order-service and the gateway)
//! on free ports with their own SQLite files, driven over HTTP with GraphQL.

mod auth;
mod browser;
mod cache;
mod config;
mod flows;
mod graphql_http;
mod helpers;
mod limits;
mod metrics;
mod readme;
mod replicas;
mod resilience;
mod saga;
mod schema;
mod tls;
mod topics;
mod traces;
mod ws;
