use crate::key::{KeyId, KeyProblem};

/// What went wrong in atom-crypto. No variant carries key bytes or plaintext.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// A configured key does not parse. `source` names where it came from
    /// (an environment variable, a file, an argument), never its value.
    #[error("{source_name} {problem}")]
    BadKey {
        /// Where the key came from, e.g. `ENCRYPTION_KEY`.
        source_name: String,
        /// What is wrong with it.
        problem: KeyProblem,
    },

    /// Two keys of one keyring are the same key (or share an id).
    #[error(
        "key {id} is configured twice ({first} and {second}); remove one of them so that each key is listed once"
    )]
    DuplicateKey {
        /// The id both keys have.
        id: KeyId,
        /// Where the first copy came from.
        first: String,
        /// Where the second copy came from.
        second: String,
    },

    /// Key configuration is contradictory or unreadable.
    #[error("{0}")]
    Config(String),

    /// Encryption is required but no key is configured.
    #[error(
        "encryption is required but no key is configured; set ENCRYPTION_KEY (or ENCRYPTION_KEY_FILE) to a key of 32 random bytes in url-safe base64"
    )]
    NoKey,

    /// A sealed value names a key that is not in the keyring.
    #[error(
        "the value was sealed under key {id}, which is not in the keyring; add that key to ENCRYPTION_PREVIOUS_KEYS"
    )]
    UnknownKeyId {
        /// The id the value names.
        id: KeyId,
    },

    /// The value is structurally ciphertext but does not authenticate: wrong
    /// key, wrong context (copied from another row or name), or tampered.
    #[error(
        "{kind} does not authenticate: it was made under another key or for another context, or it was altered; it is not treated as plaintext"
    )]
    AuthenticationFailed {
        /// Which form of ciphertext failed.
        kind: ValueKind,
    },

    /// The token is older than the allowed maximum age.
    #[error("the token is {age_secs} s old, older than the allowed {max_age_secs} s")]
    Expired {
        /// Age of the token in seconds.
        age_secs: u64,
        /// The configured maximum age.
        max_age_secs: u64,
    },

    /// The token's timestamp lies more than 60 s in the future.
    #[error(
        "the token's timestamp is {ahead_secs} s in the future (more than the 60 s Fernet allows); check the clocks of the hosts that wrote it"
    )]
    FromTheFuture {
        /// How far ahead of the clock the token claims to be.
        ahead_secs: u64,
    },

    /// The value claims to be ciphertext but is not well formed.
    #[error("malformed sealed value: {0}")]
    Malformed(&'static str),

    /// The value is plaintext (from the seed's no-key development mode), not ciphertext.
    #[error(
        "the value is stored in plaintext, not sealed; a rewrap seals it when asked to seal plaintext"
    )]
    NotSealed,

    /// A legacy token (bare Fernet, not bound to its row or name) while
    /// legacy tokens are refused.
    #[error(
        "the value is a legacy Fernet token and legacy tokens are refused (ATOM_REFUSE_LEGACY=1); unset it, rewrap the value, then set it again"
    )]
    LegacyRefused,

    /// The value decrypted, but its plaintext is not UTF-8 text.
    #[error("the value decrypted, but its plaintext is not UTF-8 text")]
    NotUtf8,
}

/// What a face (HTTP, Python, the CLI) does with an error of any Atom
/// crate: one class per kind of answer, the one vocabulary every crate's
/// error is classified into (`class()` on each). Unlike the error, this enum is
/// deliberately exhaustive: a new class is a decision that every face's
/// `match` must make, so none of them falls back to "internal error".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::exhaustive_enums)]
pub enum ErrorClass {
    /// Nothing is stored there (HTTP 404).
    NotFound,
    /// The caller's input does not parse (HTTP 400).
    InvalidInput,
    /// Stored rows conflict (HTTP 409).
    Conflict,
    /// The stored value does not open: another row's ciphertext, a missing
    /// or destroyed key, tampering, plaintext where a key is set. The
    /// caller cannot fix it by retrying (HTTP 422).
    CannotOpen,
    /// Another writer got in the way; retrying soon succeeds (HTTP 503 with
    /// `Retry-After`).
    Contended,
    /// The database or the audit trail cannot serve now (HTTP 503).
    Unavailable,
    /// The configuration cannot serve this: no key, a bad setting, a
    /// database that is not migrated (HTTP 503; the operator acts).
    Misconfigured,
    /// Something that should not happen (HTTP 500).
    Internal,
}

impl CryptoError {
    /// The class of this error (an exhaustive match): a key setting that
    /// does not work is the operator's to fix; a value that does not open
    /// is the stored data's.
    pub fn class(&self) -> ErrorClass {
        match self {
            CryptoError::BadKey { .. }
            | CryptoError::DuplicateKey { .. }
            | CryptoError::Config(_)
            | CryptoError::NoKey
            | CryptoError::LegacyRefused => ErrorClass::Misconfigured,
            CryptoError::UnknownKeyId { .. }
            | CryptoError::AuthenticationFailed { .. }
            | CryptoError::Expired { .. }
            | CryptoError::FromTheFuture { .. }
            | CryptoError::Malformed(_)
            | CryptoError::NotSealed
            | CryptoError::NotUtf8 => ErrorClass::CannotOpen,
        }
    }
}

/// Why a stored value did not open, as a class a caller can act on: the
/// one vocabulary of every crate (audit events, secrets-file reports,
/// credential errors). Built from the crypto error, so that callers never
/// pass its text (or the value) along.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum OpenFailure {
    /// Plaintext where ciphertext was required.
    NotSealed,
    /// Damaged ciphertext: near a token, not a well-formed one.
    Malformed,
    /// Sealed under a key that is not in the keyring.
    UnknownKey,
    /// Does not authenticate: another key, another context (copied from
    /// another row or name), or altered.
    NotAuthentic,
    /// Older than the allowed maximum age.
    Expired,
    /// Its timestamp lies too far in the future.
    FromTheFuture,
    /// Decrypts, but not to UTF-8 text.
    NotUtf8,
    /// A legacy token while legacy tokens are refused (`ATOM_REFUSE_LEGACY`).
    LegacyRefused,
    /// Any other failure.
    Other,
}

impl OpenFailure {
    /// The class of a crypto error.
    pub fn of(error: &CryptoError) -> OpenFailure {
        match error {
            CryptoError::NotSealed => OpenFailure::NotSealed,
            CryptoError::Malformed(_) => OpenFailure::Malformed,
            CryptoError::UnknownKeyId { .. } => OpenFailure::UnknownKey,
            CryptoError::AuthenticationFailed { .. } => OpenFailure::NotAuthentic,
            CryptoError::Expired { .. } => OpenFailure::Expired,
            CryptoError::FromTheFuture { .. } => OpenFailure::FromTheFuture,
            CryptoError::NotUtf8 => OpenFailure::NotUtf8,
            CryptoError::LegacyRefused => OpenFailure::LegacyRefused,
            _ => OpenFailure::Other,
        }
    }

    /// Every class, in order (metrics pre-register one series each).
    pub const ALL: [OpenFailure; 9] = [
        OpenFailure::NotSealed,
        OpenFailure::Malformed,
        OpenFailure::UnknownKey,
        OpenFailure::NotAuthentic,
        OpenFailure::Expired,
        OpenFailure::FromTheFuture,
        OpenFailure::NotUtf8,
        OpenFailure::LegacyRefused,
        OpenFailure::Other,
    ];

    /// The snake_case name (as in audit events and JSON reports).
    pub fn as_str(self) -> &'static str {
        match self {
            OpenFailure::NotSealed => "not_sealed",
            OpenFailure::Malformed => "malformed",
            OpenFailure::UnknownKey => "unknown_key",
            OpenFailure::NotAuthentic => "not_authentic",
            OpenFailure::Expired => "expired",
            OpenFailure::FromTheFuture => "from_the_future",
            OpenFailure::NotUtf8 => "not_utf8",
            OpenFailure::LegacyRefused => "legacy_refused",
            OpenFailure::Other => "other",
        }
    }
}

/// What the failure means, for people.
impl std::fmt::Display for OpenFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OpenFailure::NotSealed => {
                "stored in plaintext; it is sealed only on request (rewrap, sealing plaintext)"
            }
            OpenFailure::Malformed => {
                "malformed: damaged ciphertext, near a token but not a well-formed one"
            }
            OpenFailure::UnknownKey => "sealed under a key that is not configured",
            OpenFailure::NotAuthentic => {
                "does not authenticate: another key, moved from another place, or altered"
            }
            OpenFailure::Expired => "older than the allowed maximum age",
            OpenFailure::FromTheFuture => "timestamp too far in the future",
            OpenFailure::NotUtf8 => "decrypts but is not UTF-8 text",
            OpenFailure::LegacyRefused => {
                "a legacy Fernet token, and legacy tokens are refused (ATOM_REFUSE_LEGACY=1)"
            }
            OpenFailure::Other => "does not open",
        })
    }
}

/// The structural class of a stored value, found without decrypting it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ValueKind {
    /// Not ciphertext: a value from plaintext development mode.
    Plaintext,
    /// A bare Fernet token under the raw master key, as the Python original writes.
    Legacy,
    /// Our sealed form, `atom:v1:<key id>:<fernet token>`.
    Sealed,
}

impl ValueKind {
    /// A short lower-case name for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            ValueKind::Plaintext => "plaintext",
            ValueKind::Legacy => "legacy",
            ValueKind::Sealed => "sealed",
        }
    }
}

impl std::fmt::Display for ValueKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ValueKind::Plaintext => "the plaintext value",
            ValueKind::Legacy => "the legacy Fernet token",
            ValueKind::Sealed => "the sealed value",
        })
    }
}
