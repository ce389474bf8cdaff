//! Rules for catalog input. Each error names the field it is about.

use service_runtime::{ServiceError, ServiceResult, validate};

/// The longest product name accepted.
pub const NAME_MAX_CHARS: usize = 200;
/// The longest description accepted.
pub const DESCRIPTION_MAX_CHARS: usize = 5_000;
/// The longest category name accepted.
pub const CATEGORY_MAX_CHARS: usize = 100;
/// The highest price accepted: 10,000,000.00.
pub const MAX_PRICE_CENTS: i64 = 1_000_000_000;

pub fn name(value: &str) -> ServiceResult<String> {
    validate::required_text("name", value, NAME_MAX_CHARS)
}

pub fn description(value: &str) -> ServiceResult<String> {
    validate::multiline_text("description", value, DESCRIPTION_MAX_CHARS)
}

pub fn category(value: &str) -> ServiceResult<String> {
    validate::required_text("category", value, CATEGORY_MAX_CHARS)
}

/// A price with at most 2 decimals, as cents.
pub fn price(value: f64) -> ServiceResult<i64> {
    validate::money_to_cents("price", value, MAX_PRICE_CENTS)
}

/// A stock level: zero or more.
pub fn stock(value: i32) -> ServiceResult<i64> {
    if value < 0 {
        return Err(ServiceError::invalid("stock", "must not be negative"));
    }
    Ok(i64::from(value))
}
