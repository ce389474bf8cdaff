//! The order status machine, as order-service reads it from its clients. The statuses and the
//! machine itself are the contract's ([`proto::order::OrderStatus`]).

use service_runtime::{ServiceError, ServiceResult};

pub use proto::order::OrderStatus;

/// Parses a client's status; unknown names are `INVALID_ARGUMENT` on `field`.
pub fn parse(field: &str, value: &str) -> ServiceResult<OrderStatus> {
    value.parse().map_err(|unknown: proto::UnknownName| ServiceError::invalid(field, unknown.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsing_names_the_field() {
        assert_eq!(parse("status", " shipped ").ok(), Some(OrderStatus::Shipped));
        let error = parse("status", "LOST").expect_err("unknown");
        assert!(error.to_string().starts_with("status: must be one of PENDING"), "{error}");
    }
}
