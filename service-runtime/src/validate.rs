//! Input rules used by more than one service. Each returns an `INVALID_ARGUMENT` naming the field.

use crate::{ServiceError, ServiceResult};

/// Checks that `value` is a UUID (the form every id in this system takes) and returns it normalised.
pub fn id(field: &str, value: &str) -> ServiceResult<String> {
    uuid::Uuid::parse_str(value.trim())
        .map(|id| id.hyphenated().to_string())
        .map_err(|_| ServiceError::invalid(field, "must be a UUID"))
}

/// Trims `value` and checks it is neither empty nor longer than `max_chars` characters.
pub fn required_text(field: &str, value: &str, max_chars: usize) -> ServiceResult<String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(ServiceError::invalid(field, "must not be empty"));
    }
    bounded_text(field, trimmed, max_chars)
}

/// Trims `value` and checks it is at most `max_chars` characters (empty allowed).
pub fn bounded_text(field: &str, value: &str, max_chars: usize) -> ServiceResult<String> {
    let trimmed = value.trim();
    if trimmed.chars().count() > max_chars {
        return Err(ServiceError::invalid(field, format!("must be at most {max_chars} characters")));
    }
    Ok(trimmed.to_owned())
}

/// Checks a batch of ids: at most `max` of them, each a UUID. Duplicates are removed.
pub fn id_batch(field: &str, ids: &[String], max: usize) -> ServiceResult<Vec<String>> {
    if ids.len() > max {
        return Err(ServiceError::invalid(field, format!("at most {max} ids per request")));
    }
    let mut valid = Vec::with_capacity(ids.len());
    for (index, value) in ids.iter().enumerate() {
        let id = id(&format!("{field}[{index}]"), value)?;
        if !valid.contains(&id) {
            valid.push(id);
        }
    }
    Ok(valid)
}

/// Money: a unit amount with at most 2 decimals, turned into integer cents.
pub fn money_to_cents(field: &str, amount: f64, max_cents: i64) -> ServiceResult<i64> {
    if !amount.is_finite() || amount < 0.0 {
        return Err(ServiceError::invalid(field, "must be a non-negative number"));
    }
    let cents = (amount * 100.0).round();
    if (amount * 100.0 - cents).abs() > 1e-6 {
        return Err(ServiceError::invalid(field, "must have at most 2 decimal places"));
    }
    if cents > max_cents as f64 {
        return Err(ServiceError::invalid(field, format!("must be at most {}", cents_to_money(max_cents))));
    }
    // In range by the check above, so the cast is exact.
    Ok(cents as i64)
}

/// Integer cents back to the unit amount the API shows.
pub fn cents_to_money(cents: i64) -> f64 {
    cents as f64 / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_round_trips_two_decimals() {
        for (amount, cents) in [(0.0, 0), (0.1, 10), (19.99, 1999), (999.99, 99_999), (29.99 * 2.0, 5998)] {
            assert_eq!(money_to_cents("price", amount, i64::MAX / 4).ok(), Some(cents), "{amount}");
            assert_eq!(cents_to_money(cents), (cents as f64) / 100.0);
        }
    }

    #[test]
    fn money_rejects_bad_amounts() {
        for amount in [-1.0, 0.001, 1.005, f64::NAN, f64::INFINITY, 1e12] {
            let error = money_to_cents("price", amount, 10_000_000_000).expect_err("rejected");
            assert!(error.to_string().starts_with("price: "), "{error}");
        }
    }

    #[test]
    fn ids_must_be_uuids() {
        assert!(id("id", "not-a-uuid").is_err());
        let uuid = uuid::Uuid::now_v7().to_string();
        assert_eq!(id("id", &format!(" {} ", uuid.to_uppercase())).ok(), Some(uuid));
    }

    #[test]
    fn text_is_trimmed_and_bounded() {
        assert!(required_text("name", "   ", 10).is_err());
        assert!(required_text("name", "abcdefghijk", 10).is_err());
        assert_eq!(required_text("name", " Ada ", 10).ok().as_deref(), Some("Ada"));
    }
}
