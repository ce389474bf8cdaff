//! Entry points for the fuzz targets (`fuzz/`): the rules user-service applies to an account's
//! fields. Not part of the service's API.

use crate::validation;

/// Checks `text` as an email address and as a name. Panics when an accepted value is not
/// accepted unchanged a second time (normalising must be idempotent, or the uniqueness check
/// could see one address two ways) or still holds a control character.
pub fn account_fields(text: &str) {
    if let Ok(email) = validation::email("email", text) {
        assert_eq!(validation::email("email", &email).ok().as_deref(), Some(email.as_str()), "email {text:?}");
        assert!(!email.chars().any(char::is_control), "email {email:?}");
    }
    if let Ok(name) = validation::name("name", text) {
        assert_eq!(validation::name("name", &name).ok().as_deref(), Some(name.as_str()), "name {text:?}");
        assert!(!name.chars().any(char::is_control), "name {name:?}");
    }
}
