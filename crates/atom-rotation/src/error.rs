//! The one error type of the rotation library.

/// Why a rotation stopped with an error (as opposed to a report).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The command was called wrongly or the configuration cannot be used
    /// (exit code 2): the message says what to change.
    #[error("{0}")]
    Usage(String),
    /// A file, a key file or the state could not be used (exit code 1):
    /// the message names it and says what to do.
    #[error("{0}")]
    Failed(String),
    /// Refused because of what is stored (exit code 1), e.g. destroying a
    /// key that values are still sealed under; nothing was changed.
    #[error("{0}")]
    Refused(String),
    /// The credential store failed.
    #[error(transparent)]
    Credentials(#[from] atom_credentials::CredentialError),
    /// The secrets file could not be read or written.
    #[error(transparent)]
    Secrets(#[from] atom_secrets_file::Error),
    /// The audit trail refused to record.
    #[error(transparent)]
    Audit(#[from] atom_audit::AuditError),
    /// A key could not be made or used.
    #[error(transparent)]
    Crypto(#[from] atom_crypto::CryptoError),
}

impl Error {
    /// The documented exit code: 2 for usage, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => crate::exit::USAGE,
            _ => crate::exit::FAILURE,
        }
    }
}
