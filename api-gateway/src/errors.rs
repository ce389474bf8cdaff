//! The one mapping from backend gRPC statuses to GraphQL errors, with stable `extensions.code`
//! values clients can branch on. Internal detail never reaches the client.

use async_graphql::{Error, ErrorExtensions as _};
use tonic::{Code, Status};

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

/// Maps a backend's answer. `INVALID_ARGUMENT` messages start with the field name
/// (`items[1].quantity: must be positive`), which becomes `extensions.field`.
pub fn from_status(service: &str, status: Status) -> Error {
    match status.code() {
        Code::InvalidArgument => {
            let message = status.message();
            let field = message.split_once(": ").map(|(field, _)| field.to_owned());
            let error = Error::new(message).extend_with(|_, ext| ext.set("code", code::BAD_USER_INPUT));
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
