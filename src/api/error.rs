//! API errors: one place maps every failure to an HTTP status and a JSON body.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

/// What an API call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A parameter or body is malformed (400).
    #[error("{0}")]
    BadRequest(String),
    /// The named thing does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the current state (409).
    #[error("{0}")]
    Conflict(String),
    /// The request body is larger than the route accepts (413).
    #[error("{0}")]
    TooLarge(String),
    /// Actors are not running in this process, or not ready (503).
    #[error("{0}")]
    Unavailable(String),
    /// The store failed (503; the detail is logged, not returned).
    #[error("the store is unavailable")]
    Store(#[source] events::StoreError),
    /// An actor failed (500).
    #[error("{0}")]
    Actor(String),
}

impl ApiError {
    fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::TooLarge(_) => "payload_too_large",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Store(_) => "unavailable",
            ApiError::Actor(_) => "actor_error",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unavailable(_) | ApiError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Actor(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if self.status_code().is_server_error() {
            tracing::warn!(status = self.status_code().as_u16(), error = %self, "request failed");
        }
        HttpResponse::build(self.status_code())
            .json(json!({"error": {"code": self.code(), "message": self.to_string()}}))
    }
}

impl From<events::StoreError> for ApiError {
    fn from(e: events::StoreError) -> Self {
        match e {
            events::StoreError::Conflict { .. } => ApiError::Conflict(e.to_string()),
            events::StoreError::Invalid(m) => ApiError::BadRequest(m),
            other => {
                tracing::error!(error = %other, "store error answered 503");
                ApiError::Store(other)
            }
        }
    }
}

impl From<actors::ActorError> for ApiError {
    fn from(e: actors::ActorError) -> Self {
        use actors::ActorError as A;
        match e {
            A::Rejected(m) | A::Conflict(m) => ApiError::Conflict(m),
            e @ A::Invalid { .. } => ApiError::BadRequest(e.to_string()),
            e @ A::NotReady(_) => ApiError::Unavailable(e.to_string()),
            A::Store(e) => e.into(),
            other => ApiError::Actor(other.to_string()),
        }
    }
}

impl From<actix::MailboxError> for ApiError {
    fn from(e: actix::MailboxError) -> Self {
        ApiError::Actor(format!("actor mailbox: {e}"))
    }
}
