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
}

impl Error {
    /// The class of this error, for the faces to answer by (see
    /// [`atom_credentials::ErrorClass`]); an exhaustive match.
    pub fn class(&self) -> atom_credentials::ErrorClass {
        use atom_credentials::ErrorClass;
        match self {
            Error::Credentials(e) => e.class(),
            // A key that does not parse, a KMS or audit key setting, a bad
            // variable: the operator acts.
            Error::Crypto(_) | Error::Config(_) => ErrorClass::Misconfigured,
            // The trail, the secrets file, KMS and the key files live
            // outside the process: they may answer again.
            Error::Audit(_) | Error::Secrets(_) | Error::Kms(_) | Error::Rotation(_) => {
                ErrorClass::Unavailable
            }
        }
    }
}
