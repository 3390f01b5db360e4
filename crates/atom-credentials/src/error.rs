//! The crate's one error type, and the one place where database errors are
//! mapped into it.

use atom_audit::AuditError;
use atom_crypto::{CryptoError, ErrorClass};
use sea_orm::{DbErr, RuntimeErr, SqlErr};

use crate::url::redact_urls_in;

/// What went wrong in the credential store. No variant carries a token,
/// a key or a database password; user ids and provider names are
/// identifiers and are named so that the operator knows which row.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// There is no credential for this user and provider.
    #[error("no credential is stored for user {user} and provider {provider}")]
    NotFound {
        /// The user id.
        user: String,
        /// The provider.
        provider: String,
    },

    /// The stored value is ciphertext that does not open: wrong key, a value
    /// copied from another user's row, tampering, or a key missing from the
    /// keyring. It is never returned as plaintext.
    #[error("the credential of user {user} for provider {provider} cannot be opened: {source}")]
    DecryptionFailed {
        /// The user id.
        user: String,
        /// The provider.
        provider: String,
        /// Why, from atom-crypto (never the value).
        #[source]
        source: CryptoError,
    },

    /// A user's data key (envelope encryption) cannot be made or opened.
    #[error("the data key of user {user} cannot be used: {message}")]
    DataKey {
        /// The user id.
        user: String,
        /// The data key, when one is named.
        key_id: Option<atom_crypto::KeyId>,
        /// The class of failure, as audited.
        reason: atom_crypto::OpenFailure,
        /// What is wrong and what to do (never key material).
        message: String,
    },

    /// The row holds plaintext (from the no-key development mode) while a
    /// key is configured and the transition setting is off.
    #[error(
        "the credential of user {user} for provider {provider} is stored in plaintext while encryption is on; a rewrap seals it when asked to seal plaintext (or set {env}=1 to read plaintext rows during the transition)",
        env = crate::config::ENV_PLAINTEXT_TRANSITION
    )]
    PlaintextRefused {
        /// The user id.
        user: String,
        /// The provider.
        provider: String,
    },

    /// The operation needs an encryption key and none is configured
    /// (plaintext development mode).
    #[error("{what} needs an encryption key, and none is configured; set ENCRYPTION_KEY")]
    KeyRequired {
        /// What needed the key.
        what: String,
    },

    /// The database cannot be reached (connection refused, pool timeout,
    /// closed connection). Retrying later may help.
    #[error(
        "the credential database is unavailable: {message}; check DATABASE_URL and that the server is running"
    )]
    DatabaseUnavailable {
        /// What the driver said, with any URL password removed.
        message: String,
    },

    /// A statement failed for another reason.
    #[error("credential database error: {message}")]
    Database {
        /// What the driver said, with any URL password removed.
        message: String,
    },

    /// A uniqueness rule was violated (e.g. two rows for one user and
    /// provider).
    #[error("conflicting credential rows: {message}")]
    Conflict {
        /// What the database said.
        message: String,
    },

    /// Another writer changed what this operation read (a data key made
    /// or replaced, pending audit events chained) and it was stopped with
    /// nothing changed. Retrying soon is expected to succeed.
    #[error("{message}")]
    Contended {
        /// What changed, and that a retry is the next step.
        message: String,
    },

    /// The user has no data key yet, and this write may not make one in
    /// its own transaction (MySQL): the caller makes it first and tries
    /// again. Reaching a caller, it is a contention like the one above.
    #[error("the data key of user {user} is being made by another writer; retry the write")]
    NoDataKeyYet {
        /// The user id.
        user: String,
    },

    /// The operating system's random generator failed, so no key could be
    /// made. Nothing was stored.
    #[error("{what}: the operating system's random generator is unavailable")]
    RandomUnavailable {
        /// What needed a random key.
        what: String,
    },

    /// A migration of the credential tables failed.
    #[error("migrating the credential tables failed: {message}")]
    Migration {
        /// What went wrong.
        message: String,
    },

    /// The credential tables are missing or older than this version, and
    /// the caller asked not to change the database (e.g. a dry run).
    #[error(
        "the credential tables of this database are not migrated (pending: {}); nothing was changed",
        .pending.join(", ")
    )]
    NotMigrated {
        /// The migrations not yet applied.
        pending: Vec<String>,
    },

    /// An argument or a stored identifier does not parse.
    #[error("{0}")]
    InvalidInput(String),

    /// The configuration (e.g. `DATABASE_URL`) is not usable.
    #[error("{0}")]
    Config(String),

    /// The audit sink could not record the event, so the operation was
    /// refused (auditing is fail-closed).
    #[error(
        "the credential operation was refused because its audit event could not be recorded: {0}"
    )]
    AuditFailed(#[source] AuditError),
}

impl CredentialError {
    /// The class of this error, for the faces to answer by. An exhaustive
    /// match: a new variant must be classified here.
    pub fn class(&self) -> ErrorClass {
        match self {
            CredentialError::NotFound { .. } => ErrorClass::NotFound,
            CredentialError::InvalidInput(_) => ErrorClass::InvalidInput,
            CredentialError::Conflict { .. } => ErrorClass::Conflict,
            CredentialError::DecryptionFailed { .. }
            | CredentialError::DataKey { .. }
            | CredentialError::PlaintextRefused { .. } => ErrorClass::CannotOpen,
            CredentialError::Contended { .. } | CredentialError::NoDataKeyYet { .. } => {
                ErrorClass::Contended
            }
            CredentialError::DatabaseUnavailable { .. }
            | CredentialError::Database { .. }
            | CredentialError::Migration { .. }
            | CredentialError::AuditFailed(_) => ErrorClass::Unavailable,
            CredentialError::KeyRequired { .. }
            | CredentialError::Config(_)
            | CredentialError::NotMigrated { .. } => ErrorClass::Misconfigured,
            CredentialError::RandomUnavailable { .. } => ErrorClass::Internal,
        }
    }
}

impl From<DbErr> for CredentialError {
    fn from(err: DbErr) -> CredentialError {
        // Drivers do not put the connection URL in their messages, but a
        // future one might: scrub anything URL-shaped on the way out.
        let message = redact_urls_in(&err.to_string());
        if let Some(SqlErr::UniqueConstraintViolation(_)) = err.sql_err() {
            return CredentialError::Conflict { message };
        }
        match &err {
            DbErr::Conn(_) | DbErr::ConnectionAcquire(_) => {
                CredentialError::DatabaseUnavailable { message }
            }
            DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e))
                if is_connection_problem(e) =>
            {
                CredentialError::DatabaseUnavailable { message }
            }
            DbErr::Migration(_) => CredentialError::Migration { message },
            _ => CredentialError::Database { message },
        }
    }
}

fn is_connection_problem(err: &sea_orm::sqlx::Error) -> bool {
    use sea_orm::sqlx::Error as E;
    matches!(
        err,
        E::Io(_) | E::Tls(_) | E::PoolTimedOut | E::PoolClosed | E::WorkerCrashed
    )
}

impl From<AuditError> for CredentialError {
    fn from(err: AuditError) -> CredentialError {
        CredentialError::AuditFailed(err)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn connection_errors_are_unavailable_and_redacted() {
        let err = CredentialError::from(DbErr::Conn(RuntimeErr::Internal(
            "cannot reach postgres://atom:hunter2@db.example:5432/atom".into(),
        )));
        let text = err.to_string();
        assert!(matches!(err, CredentialError::DatabaseUnavailable { .. }));
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("db.example"), "{text}");
    }

    #[test]
    fn other_errors_are_database_errors() {
        let err = CredentialError::from(DbErr::Custom("boom".into()));
        assert!(matches!(err, CredentialError::Database { .. }));
    }
}
