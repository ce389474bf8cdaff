//! Timestamps: stored as Unix milliseconds (portable across SQLite and PostgreSQL), shown as RFC 3339.

use chrono::{DateTime, SecondsFormat, Utc};

/// Now, in Unix milliseconds.
pub fn now_millis() -> i64 {
    Utc::now().timestamp_millis()
}

/// Formats Unix milliseconds as RFC 3339 in UTC with millisecond precision.
pub fn to_rfc3339(millis: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(millis).unwrap_or_default().to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_utc_with_millis() {
        assert_eq!(super::to_rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }
}
