//! Keyed fingerprints and masking, for any crate that must refer to a value
//! in a log, an event or an error without revealing it.

use std::fmt;

use atom_crypto::{Key, KeyId, MacKey};
use serde::{Deserialize, Serialize};

/// HKDF purpose of the fingerprint MAC; distinct from the chain's, so a
/// fingerprint never equals a chain tag.
const FINGERPRINT_PURPOSE: &str = "audit-fingerprint";

/// Makes keyed fingerprints of values under the audit key. Without the key
/// a fingerprint does not help to guess the value (a short token or a
/// password cannot be found by hashing candidates); with it, equal values
/// have equal fingerprints. Debug shows only the key id.
#[derive(Clone, Debug)]
pub struct Fingerprinter {
    mac: MacKey,
}

impl Fingerprinter {
    /// A fingerprinter under `key` (the audit key).
    pub fn new(key: &Key) -> Fingerprinter {
        Fingerprinter {
            mac: MacKey::derive(key, FINGERPRINT_PURPOSE),
        }
    }

    /// The fingerprint of `value`.
    pub fn fingerprint(&self, value: &[u8]) -> Fingerprint {
        Fingerprint(self.mac.fingerprint(value))
    }

    /// The id of the key fingerprints are made under.
    pub fn key_id(&self) -> KeyId {
        self.mac.key_id()
    }
}

/// A keyed fingerprint: 16 hex digits made by a [`Fingerprinter`]. The only
/// way an event refers to a value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Fingerprint(String);

impl Fingerprint {
    /// The 16 hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A stand-in for a value in human-readable output: says that a value is
/// there and how long it is, and nothing of its content (not even a prefix
/// or suffix: the tail of a short token is a large part of it). Use a
/// [`Fingerprint`] where two values must be compared.
///
/// ```
/// assert_eq!(atom_audit::mask("hunter2"), "[redacted, 7 chars]");
/// assert_eq!(atom_audit::mask(""), "[empty]");
/// ```
pub fn mask(value: &str) -> String {
    match value.chars().count() {
        0 => "[empty]".to_owned(),
        1 => "[redacted, 1 char]".to_owned(),
        n => format!("[redacted, {n} chars]"),
    }
}
