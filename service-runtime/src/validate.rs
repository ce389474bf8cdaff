//! Input rules used by more than one service. Each returns an `INVALID_ARGUMENT` naming the field.

use crate::{ServiceError, ServiceResult};

/// Checks that `value` is a UUID (the form every id in this system takes) and returns it normalised.
pub fn id(field: &str, value: &str) -> ServiceResult<String> {
    uuid::Uuid::parse_str(value.trim())
        .map(|id| id.hyphenated().to_string())
        .map_err(|_| ServiceError::invalid(field, "must be a UUID"))
}

/// Trims `value` and checks it is neither empty nor longer than `max_chars` characters, on one
/// line with no control character.
pub fn required_text(field: &str, value: &str, max_chars: usize) -> ServiceResult<String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(ServiceError::invalid(field, "must not be empty"));
    }
    bounded_text(field, trimmed, max_chars)
}

/// Trims `value` and checks it is at most `max_chars` characters (empty allowed), on one line
/// with no control character.
pub fn bounded_text(field: &str, value: &str, max_chars: usize) -> ServiceResult<String> {
    text(field, value, max_chars, Lines::One)
}

/// Like [`bounded_text`], but line breaks and tabs are allowed: for free text such as a
/// description.
pub fn multiline_text(field: &str, value: &str, max_chars: usize) -> ServiceResult<String> {
    text(field, value, max_chars, Lines::Many)
}

/// Whether a text may span lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lines {
    One,
    Many,
}

/// Control characters are refused: NUL cannot be stored in PostgreSQL's text at all (the same
/// request would be an internal error there and stored on SQLite), and the others (escape
/// sequences, backspaces, line breaks in a name) only ever serve to disguise text where it is
/// shown. The rule is checked here, so both databases answer alike.
fn text(field: &str, value: &str, max_chars: usize, lines: Lines) -> ServiceResult<String> {
    let trimmed = value.trim();
    let allowed = |c: char| lines == Lines::Many && matches!(c, '\n' | '\r' | '\t');
    if let Some(control) = trimmed.chars().find(|c| c.is_control() && !allowed(*c)) {
        let what = if matches!(control, '\n' | '\r') {
            "a line break".to_owned()
        } else {
            format!("control character U+{:04X}", u32::from(control))
        };
        return Err(ServiceError::invalid(field, format!("must not contain {what}")));
    }
    if trimmed.chars().count() > max_chars {
        return Err(ServiceError::invalid(field, format!("must be at most {max_chars} characters")));
    }
    Ok(trimmed.to_owned())
}

/// The most ids one batch read (`GetUsersByIds`, `GetProductsByIds`) accepts, and so the most
/// the gateway's loaders put in one call.
pub const MAX_ID_BATCH: usize = 100;

/// Checks a batch of ids: at most [`MAX_ID_BATCH`] of them, each a UUID. Duplicates are removed.
pub fn id_batch(field: &str, ids: &[String]) -> ServiceResult<Vec<String>> {
    if ids.len() > MAX_ID_BATCH {
        return Err(ServiceError::invalid(field, format!("at most {MAX_ID_BATCH} ids per request")));
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
    fn control_characters_are_refused_and_line_breaks_only_in_multiline_text() {
        for bad in ["Zo\u{0}e", "a\u{1b}[31mred", "a\u{7f}", "a\u{85}b"] {
            let error = bounded_text("name", bad, 100).expect_err("refused");
            assert!(error.to_string().starts_with("name: must not contain control character U+"), "{error}");
        }
        let error = required_text("name", "two\nlines", 100).expect_err("refused");
        assert_eq!(error.to_string(), "name: must not contain a line break");
        assert_eq!(
            multiline_text("description", " one\r\ntwo\tthree ", 100).ok().as_deref(),
            Some("one\r\ntwo\tthree")
        );
        assert!(multiline_text("description", "nul\u{0}", 100).is_err());
        assert_eq!(bounded_text("name", "Zoë 🚀", 100).ok().as_deref(), Some("Zoë 🚀"));
    }

    #[test]
    fn text_is_trimmed_and_bounded() {
        assert!(required_text("name", "   ", 10).is_err());
        assert!(required_text("name", "abcdefghijk", 10).is_err());
        assert_eq!(required_text("name", " Ada ", 10).ok().as_deref(), Some("Ada"));
    }
}
