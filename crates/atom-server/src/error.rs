//! Errors as HTTP answers: a status and a JSON body
//! `{"error": {"code": "...", "message": "..."}}`. Messages name the problem
//! and the next step, never a token or a key.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use atom_crypto::ErrorClass;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// Seconds for a `Retry-After` header, when retrying is the answer.
    retry_after: Option<u32>,
}

impl ApiError {
    /// An answer with this status, machine-readable code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The same answer asking the client to retry after `secs` seconds.
    pub fn retry_after(mut self, secs: u32) -> ApiError {
        self.retry_after = Some(secs);
        self
    }

    /// The machine-readable code.
    pub fn code(&self) -> &'static str {
        self.code
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
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}

impl ApiError {
    /// The answer for an error of `class` whose text is `message` (logged
    /// where the client is told less). One exhaustive match, no catch-all:
    /// every class has its status in the README's table.
    fn of_class(class: ErrorClass, message: String) -> ApiError {
        match class {
            ErrorClass::NotFound => ApiError::not_found(message),
            ErrorClass::InvalidInput => ApiError::bad_request(message),
            ErrorClass::Conflict => ApiError::new(StatusCode::CONFLICT, "conflict", message),
            ErrorClass::CannotOpen => {
                // The stored value is unusable; the client cannot fix it.
                tracing::error!(error = %message, "credential cannot be opened");
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "cannot_open", message)
            }
            ErrorClass::Contended => {
                tracing::info!(error = %message, "a write met another writer; the client retries");
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", message)
                    .retry_after(RETRY_AFTER_SECS)
            }
            ErrorClass::Unavailable => {
                tracing::error!(error = %message, "a dependency is unavailable");
                ApiError::unavailable(
                    "the credential database or the audit trail cannot serve this now, so nothing was done; try again later",
                )
            }
            ErrorClass::Misconfigured => {
                tracing::error!(error = %message, "the configuration cannot serve this request");
                ApiError::unavailable(
                    "the server's configuration cannot serve this request; the server log says why",
                )
            }
            ErrorClass::Internal => {
                tracing::error!(error = %message, "internal error");
                ApiError::internal("internal error")
            }
        }
    }
}

/// Seconds a client is asked to wait before retrying a contended write.
pub(crate) const RETRY_AFTER_SECS: u32 = 1;

impl From<atom_credentials::CredentialError> for ApiError {
    fn from(err: atom_credentials::CredentialError) -> ApiError {
        ApiError::of_class(err.class(), err.to_string())
    }
}

impl From<atom_app::Error> for ApiError {
    fn from(err: atom_app::Error) -> ApiError {
        ApiError::of_class(err.class(), err.to_string())
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use atom_credentials::CredentialError as E;

    /// Every variant of the store's error, with the status and code the
    /// README's table gives it. A variant added to the store is classified
    /// there by an exhaustive match; this table pins the answer.
    #[test]
    fn every_credential_error_has_its_documented_answer() {
        let s = || "x".to_owned();
        let cases: Vec<(E, u16, &str)> = vec![
            (
                E::NotFound {
                    user: s(),
                    provider: s(),
                },
                404,
                "not_found",
            ),
            (
                E::DecryptionFailed {
                    user: s(),
                    provider: s(),
                    source: atom_crypto::CryptoError::NotSealed,
                },
                422,
                "cannot_open",
            ),
            (
                E::DataKey {
                    user: s(),
                    key_id: None,
                    reason: atom_crypto::OpenFailure::UnknownKey,
                    message: s(),
                },
                422,
                "cannot_open",
            ),
            (
                E::PlaintextRefused {
                    user: s(),
                    provider: s(),
                },
                422,
                "cannot_open",
            ),
            (E::KeyRequired { what: s() }, 503, "unavailable"),
            (E::DatabaseUnavailable { message: s() }, 503, "unavailable"),
            (E::Database { message: s() }, 503, "unavailable"),
            (E::Conflict { message: s() }, 409, "conflict"),
            (E::Contended { message: s() }, 503, "busy"),
            (E::NoDataKeyYet { user: s() }, 503, "busy"),
            (E::RandomUnavailable { what: s() }, 500, "internal"),
            (E::Migration { message: s() }, 503, "unavailable"),
            (E::NotMigrated { pending: vec![s()] }, 503, "unavailable"),
            (E::InvalidInput(s()), 400, "bad_request"),
            (E::Config(s()), 503, "unavailable"),
            (
                E::AuditFailed(atom_audit::AuditError::NoAuditKey),
                503,
                "unavailable",
            ),
        ];
        for (err, status, code) in cases {
            let shown = format!("{err:?}");
            let api = ApiError::from(err);
            assert_eq!(api.status().as_u16(), status, "{shown}");
            assert_eq!(api.code(), code, "{shown}");
            let response = api.into_response();
            assert_eq!(
                response
                    .headers()
                    .contains_key(axum::http::header::RETRY_AFTER),
                code == "busy",
                "{shown}"
            );
        }
    }

    #[test]
    fn every_wiring_error_has_an_answer_and_none_is_internal() {
        let cases = [
            atom_app::Error::Config("x".to_owned()),
            atom_app::Error::Crypto(atom_crypto::CryptoError::NoKey),
            atom_app::Error::Audit(atom_audit::AuditError::NoAuditKey),
            atom_app::Error::Credentials(E::NotFound {
                user: "u".to_owned(),
                provider: "p".to_owned(),
            }),
        ];
        let statuses: Vec<u16> = cases
            .into_iter()
            .map(|e| ApiError::from(e).status().as_u16())
            .collect();
        assert_eq!(statuses, [503, 503, 503, 404]);
    }
}
