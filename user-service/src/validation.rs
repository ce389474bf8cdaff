//! Rules for user input. Each error names the field it is about.

use service_runtime::{ServiceError, ServiceResult, validate};

/// The longest name accepted.
pub const NAME_MAX_CHARS: usize = 100;
/// Passwords shorter than this are refused.
pub const PASSWORD_MIN_CHARS: usize = 8;
/// Passwords are capped so that hashing cannot be used to burn CPU.
pub const PASSWORD_MAX_CHARS: usize = 128;
/// The longest email address SMTP allows.
const EMAIL_MAX_CHARS: usize = 254;

/// A trimmed, non-empty name.
pub fn name(field: &str, value: &str) -> ServiceResult<String> {
    validate::required_text(field, value, NAME_MAX_CHARS)
}

/// A syntactically valid email address, trimmed and lower-cased so uniqueness ignores case.
/// Control characters are refused like in every text field, though a quoted local part may
/// hold a tab by the letter of RFC 5322 (the fuzzer found that one).
pub fn email(field: &str, value: &str) -> ServiceResult<String> {
    let email = validate::bounded_text(field, value, EMAIL_MAX_CHARS)?.to_lowercase();
    if email.is_empty() {
        return Err(ServiceError::invalid(field, "must not be empty"));
    }
    if email.chars().count() > EMAIL_MAX_CHARS || !email_address::EmailAddress::is_valid(&email) {
        return Err(ServiceError::invalid(field, "must be a valid email address"));
    }
    Ok(email)
}

/// A password of acceptable length. It is never trimmed: spaces are part of it.
pub fn password(field: &str, value: &str) -> ServiceResult<()> {
    let length = value.chars().count();
    if length < PASSWORD_MIN_CHARS {
        return Err(ServiceError::invalid(field, format!("must be at least {PASSWORD_MIN_CHARS} characters")));
    }
    if length > PASSWORD_MAX_CHARS {
        return Err(ServiceError::invalid(field, format!("must be at most {PASSWORD_MAX_CHARS} characters")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(email("email", " Ada@Example.COM ").ok().as_deref(), Some("ada@example.com"));
        for bad in ["", "ada", "ada@", "@example.com", "a b@example.com"] {
            assert!(email("email", bad).is_err(), "{bad:?} accepted");
        }
        // Valid by the letter of RFC 5322 (a tab in a quoted local part), but a control character.
        let error = email("email", "\"___.\tAAAC\"@A").expect_err("a tab in an email");
        assert_eq!(error.to_string(), "email: must not contain control character U+0009");
    }

    #[test]
    fn passwords_have_bounds() {
        assert!(password("password", "short").is_err());
        assert!(password("password", &"x".repeat(129)).is_err());
        assert!(password("password", "long enough").is_ok());
    }
}
