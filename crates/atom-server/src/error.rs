//! Errors as HTTP answers: a status and a JSON body
//! `{"error": {"code": "...", "message": "..."}}`. Messages name the problem
//! and the next step, never a token or a key.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    /// An answer with this status, machine-readable code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400: the request is malformed.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 401: no or bad credentials.
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403: authenticated, but not allowed.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404: nothing there.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 503: a dependency (database, audit log) is unavailable.
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    /// 500: something that should not happen; details go to the log only.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error": { "code": self.code, "message": self.message }
        });
        (self.status, Json(body)).into_response()
    }
}

impl From<atom_credentials::CredentialError> for ApiError {
    fn from(err: atom_credentials::CredentialError) -> ApiError {
        use atom_credentials::CredentialError as E;
        let message = err.to_string();
        match err {
            E::NotFound { .. } => ApiError::not_found(message),
            E::InvalidInput(_) => ApiError::bad_request(message),
            E::Conflict { .. } => ApiError::new(StatusCode::CONFLICT, "conflict", message),
            E::DecryptionFailed { .. } | E::PlaintextRefused { .. } => {
                // The stored value is unusable; the client cannot fix it.
                tracing::error!(error = %message, "credential cannot be opened");
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "cannot_open", message)
            }
            E::KeyRequired { .. } | E::Config(_) => ApiError::unavailable(message),
            E::DatabaseUnavailable { .. } | E::Database { .. } | E::Migration { .. } => {
                tracing::error!(error = %message, "credential database error");
                ApiError::unavailable("the credential database is unavailable; try again later")
            }
            E::AuditFailed(_) => {
                tracing::error!(error = %message, "audit refused the operation");
                ApiError::unavailable(
                    "the audit log cannot record this operation, so it was refused; try again later",
                )
            }
            _ => {
                tracing::error!(error = %message, "unexpected credential error");
                ApiError::internal("internal error")
            }
        }
    }
}

impl From<atom_app::Error> for ApiError {
    fn from(err: atom_app::Error) -> ApiError {
        match err {
            atom_app::Error::Credentials(e) => ApiError::from(e),
            other => {
                tracing::error!(error = %other, "cannot build the answer");
                ApiError::unavailable("a dependency of this answer is unavailable; try again later")
            }
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}
