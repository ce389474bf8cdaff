//! Money amounts and text fields as every service checks them: no panic; accepted money turns
//! into cents and back without change; accepted text is accepted unchanged a second time and
//! holds no control character (but the line breaks a description may have).
#![no_main]

use libfuzzer_sys::fuzz_target;
use service_runtime::validate;

const MAX_CENTS: i64 = 1_000_000_000;

fuzz_target!(|bytes: &[u8]| {
    if let Some(amount) = bytes.get(..8) {
        let amount = f64::from_le_bytes(amount.try_into().expect("8 bytes"));
        if let Ok(cents) = validate::money_to_cents("price", amount, MAX_CENTS) {
            assert!((0..=MAX_CENTS).contains(&cents), "{amount} -> {cents}");
            let back = validate::cents_to_money(cents);
            assert_eq!(validate::money_to_cents("price", back, MAX_CENTS).ok(), Some(cents), "{amount}");
        }
    }
    let Ok(text) = std::str::from_utf8(bytes) else { return };
    let single_line = [
        validate::id("id", text),
        validate::required_text("name", text, 100),
        validate::bounded_text("category", text, 50),
    ];
    for accepted in single_line.into_iter().flatten() {
        assert!(!accepted.chars().any(char::is_control), "{accepted:?}");
        assert_eq!(validate::bounded_text("again", &accepted, usize::MAX).ok().as_deref(), Some(accepted.as_str()));
    }
    if let Ok(description) = validate::multiline_text("description", text, 1000) {
        assert!(!description.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')), "{description:?}");
        let again = validate::multiline_text("description", &description, 1000);
        assert_eq!(again.ok().as_deref(), Some(description.as_str()));
    }
    user_service::fuzzing::account_fields(text);
});
