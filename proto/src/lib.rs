//! The gRPC contracts shared by every service and client, generated from `proto/*.proto`.
//!
//! Packages keep the original template's names (`user`, `product`, `order`); fields keep its
//! camelCase names on the wire. Everything added since is additive, so old clients still work.

mod vocabulary;
pub use vocabulary::UnknownName;

/// `package user;` — accounts, credentials and roles.
pub mod user {
    tonic::include_proto!("user");

    pub use crate::vocabulary::Role;

    /// The metadata in which a caller acting for a client (the gateway) names that client's
    /// address, so that `AuthenticateUser` counts failed logins per client and not per caller.
    pub const CLIENT_ADDRESS_METADATA: &str = "x-client-address";
}

/// `package product;` — the catalog and its stock.
pub mod product {
    tonic::include_proto!("product");
}

/// `package order;` — orders and their status machine.
pub mod order {
    tonic::include_proto!("order");

    pub use crate::vocabulary::OrderStatus;
}

/// The encoded `FileDescriptorSet` of all three packages, served by gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptor.bin"));
