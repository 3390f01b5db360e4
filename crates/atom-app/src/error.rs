//! The one error type of the wiring: every library's error, plus
//! configuration that cannot be used.

/// What went wrong while assembling or running a part.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The key configuration.
    #[error(transparent)]
    Crypto(#[from] atom_crypto::CryptoError),
    /// The audit trail.
    #[error(transparent)]
    Audit(#[from] atom_audit::AuditError),
    /// The credential store.
    #[error(transparent)]
    Credentials(#[from] atom_credentials::CredentialError),
    /// The secrets file.
    #[error(transparent)]
    Secrets(#[from] atom_secrets_file::Error),
    /// Master keys held by KMS.
    #[error(transparent)]
    Kms(#[from] atom_kms::KmsError),
    /// Key rotation and the key files.
    #[error(transparent)]
    Rotation(#[from] atom_rotation::Error),
    /// Configuration that cannot be used: the message names the variable
    /// or file and the problem.
    #[error("{0}")]
    Config(String),
    /// `ATOM_AUDIT_KEY` is one of the encryption keys.
    #[error(
        "ATOM_AUDIT_KEY is one of the encryption keys (key {key_id}); the audit chain needs a key of its own, so that whoever holds one cannot forge the other. Generate another one for ATOM_AUDIT_KEY"
    )]
    AuditKeyShared {
        /// The id the two keys share.
        key_id: atom_crypto::KeyId,
    },
}

impl Error {
    /// The class of this error, for the faces to answer by (see
    /// [`atom_crypto::ErrorClass`]); an exhaustive match.
    pub fn class(&self) -> atom_crypto::ErrorClass {
        use atom_crypto::ErrorClass;
        match self {
            Error::Credentials(e) => e.class(),
            Error::Crypto(e) => e.class(),
            Error::Audit(e) => e.class(),
            Error::Secrets(e) => e.class(),
            Error::Config(_) | Error::AuditKeyShared { .. } => ErrorClass::Misconfigured,
            // KMS and the key files live outside the process: they may
            // answer again.
            Error::Kms(_) | Error::Rotation(_) => ErrorClass::Unavailable,
        }
    }
}
