//! The one mapping from backend gRPC statuses to GraphQL errors, with stable `extensions.code`
//! values clients can branch on. Internal detail never reaches the client.

use async_graphql::{Error, ErrorExtensions as _};
use tonic::{Code, Status};
use tonic_types::StatusExt as _;

/// `extensions.code` values.
pub mod code {
    pub const BAD_USER_INPUT: &str = "BAD_USER_INPUT";
    pub const NOT_FOUND: &str = "NOT_FOUND";
    pub const ALREADY_EXISTS: &str = "ALREADY_EXISTS";
    pub const FAILED_PRECONDITION: &str = "FAILED_PRECONDITION";
    pub const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
    pub const FORBIDDEN: &str = "FORBIDDEN";
    pub const UNAVAILABLE: &str = "UNAVAILABLE";
    /// A subscription past a cap on open subscriptions (per client or in total).
    pub const TOO_MANY_SUBSCRIPTIONS: &str = "TOO_MANY_SUBSCRIPTIONS";
    /// An operation past one of the gateway's limits on its shape (`extensions.limit` names it).
    pub const LIMIT_EXCEEDED: &str = "LIMIT_EXCEEDED";
    /// A client past its rate limit (HTTP 429).
    pub const RATE_LIMITED: &str = "RATE_LIMITED";
    pub const INTERNAL: &str = "INTERNAL_SERVER_ERROR";
}

/// Maps a backend's answer. The field an `INVALID_ARGUMENT` is about (`items[1].quantity`),
/// sent as a `google.rpc.BadRequest` detail, becomes `extensions.field`.
pub fn from_status(service: &str, status: Status) -> Error {
    match status.code() {
        Code::InvalidArgument => {
            let field = status
                .get_details_bad_request()
                .and_then(|details| details.field_violations.into_iter().next())
                .map(|violation| violation.field);
            let error = Error::new(status.message()).extend_with(|_, ext| ext.set("code", code::BAD_USER_INPUT));
            match field {
                Some(field) => error.extend_with(|_, ext| ext.set("field", field.as_str())),
                None => error,
            }
        }
        Code::NotFound => with_code(status.message(), code::NOT_FOUND),
        Code::AlreadyExists => with_code(status.message(), code::ALREADY_EXISTS),
        Code::FailedPrecondition => with_code(status.message(), code::FAILED_PRECONDITION),
        Code::Unauthenticated => with_code(status.message(), code::UNAUTHENTICATED),
        Code::PermissionDenied => with_code(status.message(), code::FORBIDDEN),
        // The backend is alive but shedding load (the order saga's backpressure): its message
        // says why, and the client is told when to try again (also as `Retry-After`).
        Code::ResourceExhausted => {
            let retry_after = status
                .metadata()
                .get(service_runtime::error::RETRY_AFTER_METADATA)
                .and_then(|value| value.to_str().ok()?.parse::<u64>().ok())
                .unwrap_or(1);
            tracing::debug!(service, %status, "backend overloaded");
            with_code(status.message(), code::UNAVAILABLE)
                .extend_with(|_, ext| ext.set(RETRY_AFTER_EXTENSION, retry_after))
        }
        // The connection broke during the call (the replica died, say): tonic reports that as
        // UNKNOWN with the transport error as its source. The backend may be back, or another
        // replica may answer, on the next try.
        Code::Unknown
            if std::error::Error::source(&status).is_some_and(|source| source.is::<tonic::transport::Error>()) =>
        {
            tracing::warn!(service, %status, "lost the connection to the backend during a call");
            unavailable(service)
        }
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => {
            tracing::warn!(service, %status, "backend unavailable");
            unavailable(service)
        }
        _ => {
            tracing::error!(service, %status, "backend error");
            with_code("internal error", code::INTERNAL)
        }
    }
}

/// The answer when `service` cannot be reached or answer now.
fn unavailable(service: &str) -> Error {
    with_code(&format!("{service} is unavailable, try again later"), code::UNAVAILABLE)
}

/// The extension, in seconds, on an error the client may retry later; the HTTP answer carries
/// it as `Retry-After` too.
pub const RETRY_AFTER_EXTENSION: &str = "retryAfter";

/// The largest `retryAfter` among `errors`, if any has one.
pub fn retry_after(errors: &[async_graphql::ServerError]) -> Option<u64> {
    errors
        .iter()
        .filter_map(|error| match error.extensions.as_ref()?.get(RETRY_AFTER_EXTENSION)? {
            async_graphql::Value::Number(seconds) => seconds.as_u64(),
            _ => None,
        })
        .max()
}

pub fn with_code(message: &str, code: &'static str) -> Error {
    Error::new(message).extend_with(|_, ext| ext.set("code", code))
}

pub fn unauthenticated(message: &str) -> Error {
    with_code(message, code::UNAUTHENTICATED)
}

pub fn forbidden(message: &str) -> Error {
    with_code(message, code::FORBIDDEN)
}

#[cfg(test)]
mod tests {
    use tonic_types::ErrorDetails;

    use super::*;

    fn extension(error: &Error, name: &str) -> Option<String> {
        let value = error.extensions.as_ref()?.get(name)?;
        match value {
            async_graphql::Value::String(text) => Some(text.clone()),
            other => Some(other.to_string()),
        }
    }

    #[test]
    fn the_field_of_an_invalid_argument_comes_from_its_bad_request_detail() {
        let details = ErrorDetails::with_bad_request_violation("items[1].quantity", "must be positive");
        let status = Status::with_error_details(Code::InvalidArgument, "quantity must be positive", details);
        let error = from_status("order-service", status);
        assert_eq!(error.message, "quantity must be positive");
        assert_eq!(extension(&error, "code").as_deref(), Some(code::BAD_USER_INPUT));
        assert_eq!(extension(&error, "field").as_deref(), Some("items[1].quantity"));
    }

    #[test]
    fn a_message_is_not_parsed_for_a_field() {
        let error = from_status("order-service", Status::invalid_argument("note: not a field name"));
        assert_eq!(extension(&error, "code").as_deref(), Some(code::BAD_USER_INPUT));
        assert_eq!(extension(&error, "field"), None);
    }
}
