//! The one error type of the rotation library.

/// Why a command stopped with an error (as opposed to a report).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The command was called wrongly or the configuration cannot be used
    /// (exit code 2): the message says what to change.
    #[error("{0}")]
    Usage(String),
    /// Anything else (exit code 1): a database, file or audit failure.
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

impl Error {
    /// The documented exit code: 2 for usage, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => crate::exit::USAGE,
            Error::Failed(_) => crate::exit::FAILURE,
        }
    }
}

macro_rules! from_lib_error {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Error {
                Error::Failed(anyhow::Error::new(e))
            }
        }
    )*};
}

from_lib_error!(
    atom_credentials::CredentialError,
    atom_secrets_file::Error,
    atom_audit::AuditError,
    atom_crypto::CryptoError
);
