//! Why one request counts as an error.

/// A request that did not do what the scenario expects.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RequestError {
    /// No answer: the connection failed or the request timed out.
    #[error("transport: {0}")]
    Transport(String),
    /// An HTTP status other than 200.
    #[error("HTTP status {0}")]
    Status(u16),
    /// Refused at once by the system's backpressure (`UNAVAILABLE` with `retryAfter`): an
    /// answer, not a failure, in a scenario that overloads the system on purpose; an error in
    /// any other.
    #[error("refused: {0}")]
    Refused(String),
    /// A GraphQL response with `errors`.
    #[error("GraphQL error {code}: {message}")]
    Graphql { code: String, message: String },
    /// A gRPC call that failed.
    #[error("gRPC status {0}")]
    Grpc(String),
    /// An answer that is not what the scenario expects (missing data, a cancelled order, ...).
    #[error("unexpected: {0}")]
    Unexpected(String),
}

impl RequestError {
    /// A short label that groups errors of the same kind in a report.
    pub fn kind(&self) -> String {
        match self {
            Self::Transport(_) => "transport".to_owned(),
            Self::Status(status) => format!("http {status}"),
            Self::Refused(_) => "refused (backpressure)".to_owned(),
            Self::Graphql { code, .. } => format!("graphql {code}"),
            Self::Grpc(code) => format!("grpc {code}"),
            Self::Unexpected(what) => format!("unexpected: {what}"),
        }
    }
}

impl From<reqwest::Error> for RequestError {
    fn from(error: reqwest::Error) -> Self {
        Self::Transport(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_group_by_cause_not_by_message() {
        let first = RequestError::Graphql { code: "NOT_FOUND".into(), message: "product 1".into() };
        let second = RequestError::Graphql { code: "NOT_FOUND".into(), message: "product 2".into() };
        assert_eq!(first.kind(), second.kind());
        assert_eq!(RequestError::Status(429).kind(), "http 429");
        assert_ne!(RequestError::Status(429).kind(), RequestError::Status(500).kind());
    }
}
