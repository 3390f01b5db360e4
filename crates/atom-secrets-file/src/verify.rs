//! `verify`: open every value of `secrets.enc` and report per name, without
//! values.

use std::fmt;
use std::path::PathBuf;

use atom_crypto::{Classification, CryptoError, Keyring, classify};
use serde::Serialize;

use crate::dir::SecretsDir;
use crate::error::{Error, Result};
use crate::seal;

/// Why a value does not open, as a class a caller can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FailureClass {
    /// A string value of `secrets.enc` is not sealed (rewrap seals it).
    Plaintext,
    /// It claims to be sealed but is not well formed.
    Malformed,
    /// Sealed under a key that is not configured.
    UnknownKey,
    /// Does not authenticate: another key, another name (moved), or altered.
    AuthenticationFailed,
    /// Older than the configured maximum age.
    Expired,
    /// Timestamp too far in the future.
    FromTheFuture,
    /// Decrypts, but not to UTF-8 text.
    NotUtf8,
    /// A legacy Fernet token while legacy tokens are refused
    /// (`ATOM_REFUSE_LEGACY=1`).
    LegacyRefused,
    /// Another problem reported by atom-crypto.
    Other,
}

impl FailureClass {
    /// The class of an error from opening a value.
    pub fn of(error: &CryptoError) -> FailureClass {
        match error {
            CryptoError::NotSealed => FailureClass::Plaintext,
            CryptoError::Malformed(_) => FailureClass::Malformed,
            CryptoError::UnknownKeyId { .. } => FailureClass::UnknownKey,
            CryptoError::AuthenticationFailed { .. } => FailureClass::AuthenticationFailed,
            CryptoError::Expired { .. } => FailureClass::Expired,
            CryptoError::FromTheFuture { .. } => FailureClass::FromTheFuture,
            CryptoError::NotUtf8 => FailureClass::NotUtf8,
            CryptoError::LegacyRefused => FailureClass::LegacyRefused,
            _ => FailureClass::Other,
        }
    }

    /// A short snake_case name for machine-readable output.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::Plaintext => "plaintext",
            FailureClass::Malformed => "malformed",
            FailureClass::UnknownKey => "unknown_key",
            FailureClass::AuthenticationFailed => "authentication_failed",
            FailureClass::Expired => "expired",
            FailureClass::FromTheFuture => "from_the_future",
            FailureClass::NotUtf8 => "not_utf8",
            FailureClass::LegacyRefused => "legacy_refused",
            FailureClass::Other => "other",
        }
    }
}

impl fmt::Display for FailureClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FailureClass::Plaintext => "stored in plaintext; rewrap seals it",
            FailureClass::Malformed => "looks sealed but is malformed",
            FailureClass::UnknownKey => "sealed under a key that is not configured",
            FailureClass::AuthenticationFailed => {
                "does not authenticate: another key, moved from another name, or altered"
            }
            FailureClass::Expired => "older than the allowed maximum age",
            FailureClass::FromTheFuture => "timestamp too far in the future",
            FailureClass::NotUtf8 => "decrypts but is not UTF-8 text",
            FailureClass::LegacyRefused => {
                "a legacy Fernet token, and legacy tokens are refused (ATOM_REFUSE_LEGACY=1); rewrap it with that setting off"
            }
            FailureClass::Other => "does not open",
        })
    }
}

/// The result of checking one entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EntryCheck {
    /// The value opens.
    Ok {
        /// `sealed` or `legacy`.
        kind: &'static str,
        /// The key that sealed it (`None` for legacy).
        key_id: Option<String>,
    },
    /// The value does not open.
    Failed {
        /// Why.
        reason: FailureClass,
    },
    /// Not a string (numbers, booleans, null, objects, arrays are stored as
    /// they are and not checked).
    NotSecret,
}

/// One entry of a [`VerifyReport`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct NameCheck {
    /// The entry's name.
    pub name: String,
    /// What was found.
    #[serde(flatten)]
    pub check: EntryCheck,
}

/// What `verify` found: per name, never a value.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct VerifyReport {
    /// The file checked.
    pub file: PathBuf,
    /// Every entry in file order.
    pub entries: Vec<NameCheck>,
}

impl VerifyReport {
    /// Whether every string value opens.
    pub fn is_ok(&self) -> bool {
        self.failures().next().is_none()
    }

    /// Number of values that open.
    pub fn ok_count(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| matches!(e.check, EntryCheck::Ok { .. }))
            .count()
    }

    /// The names that fail, with why.
    pub fn failures(&self) -> impl Iterator<Item = (&str, FailureClass)> {
        self.entries.iter().filter_map(|e| match e.check {
            EntryCheck::Failed { reason } => Some((e.name.as_str(), reason)),
            _ => None,
        })
    }

    /// `Err(Error::DoNotOpen)` when any value fails, for a non-zero exit.
    pub fn into_result(self) -> Result<VerifyReport> {
        if self.is_ok() {
            return Ok(self);
        }
        Err(Error::DoNotOpen {
            path: self.file.clone(),
            failures: self.failures().map(|(n, c)| (n.to_owned(), c)).collect(),
        })
    }
}

impl SecretsDir {
    /// Opens every value of `secrets.enc` with `keyring` and reports per
    /// name. A file that cannot be read or parsed is an error; values that
    /// do not open are reported (see [`VerifyReport::into_result`]).
    pub fn verify(&self, keyring: &Keyring) -> Result<VerifyReport> {
        let entries = self.read_encrypted()?;
        // One check per string: an entry's own, or each one inside its
        // objects and arrays (named by its path, e.g. `db.hosts[0]`).
        let mut items: Vec<_> = entries.iter().collect();
        let checks = seal::par_map(&mut items, |(name, value)| {
            if !value.is_string() && !seal::has_nested_strings(value) {
                return vec![NameCheck {
                    name: (*name).clone(),
                    check: EntryCheck::NotSecret,
                }];
            }
            let mut out = Vec::new();
            seal::leaves(name, value, &mut |leaf, stored| {
                out.push(NameCheck {
                    check: check_value(keyring, &leaf.context, stored),
                    name: leaf.path,
                });
            });
            out
        });
        let checks = checks.into_iter().flatten().collect();
        Ok(VerifyReport {
            file: self.encrypted_path(),
            entries: checks,
        })
    }
}

fn check_value(keyring: &Keyring, context: &atom_crypto::Context, stored: &str) -> EntryCheck {
    if let Err(e) = keyring.open(context, stored) {
        return EntryCheck::Failed {
            reason: FailureClass::of(&e),
        };
    }
    match classify(stored) {
        Ok(Classification::Sealed(id)) => EntryCheck::Ok {
            kind: "sealed",
            key_id: Some(id.to_string()),
        },
        _ => EntryCheck::Ok {
            kind: "legacy",
            key_id: None,
        },
    }
}
