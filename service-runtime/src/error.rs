//! The error every RPC handler returns, and its single mapping to `tonic::Status`.
//!
//! Messages are written for the client: they name the field and the problem. Anything internal
//! (SQL text, driver errors) is logged here and replaced by a generic message, so it never
//! reaches a client.

use tonic::Status;
use tonic_types::{ErrorDetails, StatusExt as _};

/// `error` and every cause under it, joined by `: `, for a one-line message that does not hide
/// what went wrong (a [`ServiceError::Internal`] shows only "internal error" on its own).
pub fn with_causes(error: &dyn std::error::Error) -> String {
    let mut parts = vec![error.to_string()];
    let mut next = error.source();
    while let Some(cause) = next {
        parts.push(cause.to_string());
        next = cause.source();
    }
    parts.join(": ")
}

/// The result type of service and repository functions.
pub type ServiceResult<T> = Result<T, ServiceError>;

/// What went wrong, in terms a client can act on.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The request is malformed; `field` names the offending field (e.g. `items[1].quantity`).
    #[error("{field}: {problem}")]
    InvalidArgument { field: String, problem: String },
    /// The entity does not exist.
    #[error("{entity} {id} not found")]
    NotFound { entity: &'static str, id: String },
    /// A unique value is taken.
    #[error("{0}")]
    AlreadyExists(String),
    /// The request is valid but the current state does not allow it.
    #[error("{0}")]
    FailedPrecondition(String),
    /// Credentials were wrong.
    #[error("{0}")]
    Unauthenticated(String),
    /// A service this one depends on could not be reached.
    #[error("{0}")]
    Unavailable(String),
    /// Too busy to take this request now; the client may try again after `retry_after_secs`.
    #[error("{message}")]
    Overloaded { message: String, retry_after_secs: u64 },
    /// A bug or an infrastructure failure; details are logged, never returned.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ServiceError {
    /// An `INVALID_ARGUMENT` naming `field`.
    pub fn invalid(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self::InvalidArgument { field: field.into(), problem: problem.into() }
    }

    /// A `NOT_FOUND` for `entity` with `id`.
    pub fn not_found(entity: &'static str, id: impl Into<String>) -> Self {
        Self::NotFound { entity, id: id.into() }
    }

    /// Wraps anything unexpected as an internal error.
    pub fn internal(error: impl Into<anyhow::Error>) -> Self {
        Self::Internal(error.into())
    }
}

impl From<sqlx::Error> for ServiceError {
    fn from(error: sqlx::Error) -> Self {
        Self::Internal(error.into())
    }
}

impl From<ServiceError> for Status {
    fn from(error: ServiceError) -> Self {
        match error {
            // The field also travels as a `google.rpc.BadRequest` detail, for callers (the
            // gateway) to read without parsing the message written for people.
            ServiceError::InvalidArgument { ref field, ref problem } => {
                let details = ErrorDetails::with_bad_request_violation(field.as_str(), problem.as_str());
                Status::with_error_details(tonic::Code::InvalidArgument, error.to_string(), details)
            }
            ServiceError::NotFound { .. } => Status::not_found(error.to_string()),
            ServiceError::AlreadyExists(message) => Status::already_exists(message),
            ServiceError::FailedPrecondition(message) => Status::failed_precondition(message),
            ServiceError::Unauthenticated(message) => Status::unauthenticated(message),
            ServiceError::Unavailable(message) => Status::unavailable(message),
            ServiceError::Overloaded { message, retry_after_secs } => {
                let mut status = Status::resource_exhausted(message);
                status.metadata_mut().insert(RETRY_AFTER_METADATA, retry_after_secs.into());
                status
            }
            ServiceError::Internal(source) => {
                tracing::error!(error = format!("{source:#}"), "internal error");
                Status::internal("internal error")
            }
        }
    }
}

/// The metadata key of a `RESOURCE_EXHAUSTED` status that says how many seconds to wait
/// before trying again.
pub const RETRY_AFTER_METADATA: &str = "retry-after";

/// Turns a handler's result into what tonic expects, mapping the error in the one way above.
pub fn reply<T>(result: ServiceResult<T>) -> Result<tonic::Response<T>, Status> {
    result.map(tonic::Response::new).map_err(Status::from)
}

/// True when `error` is a unique-constraint violation (on SQLite and PostgreSQL alike).
pub fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_with_causes_shows_what_an_internal_error_hides() {
        let error = ServiceError::internal(anyhow::anyhow!("no such table: users").context("inserting the admin"));
        assert_eq!(error.to_string(), "internal error");
        assert_eq!(with_causes(&error), "internal error: inserting the admin: no such table: users");
    }

    #[test]
    fn internal_errors_hide_their_details() {
        let status = Status::from(ServiceError::internal(anyhow::anyhow!("SELECT * FROM users")));
        assert_eq!(status.code(), tonic::Code::Internal);
        assert_eq!(status.message(), "internal error");
    }

    #[test]
    fn overload_says_when_to_try_again() {
        let status = Status::from(ServiceError::Overloaded { message: "busy".into(), retry_after_secs: 2 });
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert_eq!(status.metadata().get(RETRY_AFTER_METADATA).and_then(|value| value.to_str().ok()), Some("2"));
    }

    #[test]
    fn invalid_argument_names_the_field() {
        let status = Status::from(ServiceError::invalid("items[1].quantity", "must be positive"));
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert_eq!(status.message(), "items[1].quantity: must be positive");
        let violations = status.get_details_bad_request().expect("a BadRequest detail").field_violations;
        assert_eq!(violations.len(), 1);
        assert_eq!(
            (violations[0].field.as_str(), violations[0].description.as_str()),
            ("items[1].quantity", "must be positive")
        );
    }
}
