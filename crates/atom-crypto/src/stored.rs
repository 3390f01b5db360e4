use std::fmt;
use std::str::FromStr as _;

use crate::error::{CryptoError, ValueKind};
use crate::key::KeyId;
use crate::token::{self, TokenHeader};

/// How every Fernet token of our era begins.
const FERNET_START: &str = "gAAAAA";

/// Prefix of the current sealed form.
pub(crate) const SEALED_PREFIX: &str = "atom:v1:";

/// `atom:v1:<key id>:`, what every value sealed under `key_id` starts with.
pub(crate) fn sealed_prefix(key_id: KeyId) -> String {
    format!("{SEALED_PREFIX}{key_id}:")
}

/// A value as it is stored: either our sealed form,
/// `atom:v1:<key id>:<fernet token>`, or a legacy bare Fernet token.
/// Ciphertext only; plaintext never gets this type.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredValue {
    text: String,
    key_id: Option<KeyId>,
}

impl StoredValue {
    /// Parses a stored string. Plaintext is an error here; use [`classify`]
    /// to tell plaintext from ciphertext.
    pub fn parse(text: &str) -> Result<StoredValue, CryptoError> {
        match parse_parts(text)? {
            Parsed::Plaintext => Err(CryptoError::NotSealed),
            Parsed::Legacy(_) => Ok(StoredValue {
                text: text.to_owned(),
                key_id: None,
            }),
            Parsed::Sealed { key_id, .. } => Ok(StoredValue {
                text: text.to_owned(),
                key_id: Some(key_id),
            }),
        }
    }

    /// `prefix` is [`sealed_prefix`] of `key_id`, computed once per key.
    pub(crate) fn sealed(key_id: KeyId, prefix: &str, token: &str) -> StoredValue {
        let mut text = String::with_capacity(prefix.len() + token.len());
        text.push_str(prefix);
        text.push_str(token);
        StoredValue {
            text,
            key_id: Some(key_id),
        }
    }

    pub(crate) fn legacy(token: String) -> StoredValue {
        StoredValue {
            text: token,
            key_id: None,
        }
    }

    /// The stored text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The stored text, owned.
    pub fn into_string(self) -> String {
        self.text
    }

    /// The id of the key that sealed it; `None` for a legacy token, whose
    /// key is not recorded.
    pub fn key_id(&self) -> Option<KeyId> {
        self.key_id
    }

    /// Sealed or legacy.
    pub fn kind(&self) -> ValueKind {
        if self.key_id.is_some() {
            ValueKind::Sealed
        } else {
            ValueKind::Legacy
        }
    }
}

impl fmt::Debug for StoredValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredValue")
            .field("kind", &self.kind().as_str())
            .field("key_id", &self.key_id)
            .field("len", &self.text.len())
            .finish()
    }
}

/// What a stored string is, decided by structure alone (nothing is
/// decrypted, no key is needed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Classification {
    /// Not ciphertext.
    Plaintext,
    /// A bare Fernet token (no key id).
    Legacy,
    /// Our sealed form under the named key.
    Sealed(KeyId),
}

impl Classification {
    /// The kind without the key id.
    pub fn kind(self) -> ValueKind {
        match self {
            Classification::Plaintext => ValueKind::Plaintext,
            Classification::Legacy => ValueKind::Legacy,
            Classification::Sealed(_) => ValueKind::Sealed,
        }
    }
}

/// Classifies a stored string without decrypting it. A string that claims
/// our sealed form (`atom:v<n>:`) but is not well formed is an error, never
/// plaintext.
pub fn classify(text: &str) -> Result<Classification, CryptoError> {
    Ok(match parse_parts(text)? {
        Parsed::Plaintext => Classification::Plaintext,
        Parsed::Legacy(_) => Classification::Legacy,
        Parsed::Sealed { key_id, .. } => Classification::Sealed(key_id),
    })
}

pub(crate) enum Parsed<'a> {
    Plaintext,
    Legacy(TokenHeader),
    Sealed {
        key_id: KeyId,
        token: &'a str,
        header: TokenHeader,
    },
}

pub(crate) fn parse_parts(text: &str) -> Result<Parsed<'_>, CryptoError> {
    if let Some(rest) = text.strip_prefix(SEALED_PREFIX) {
        let (id, token) = rest
            .split_once(':')
            .ok_or(CryptoError::Malformed("no ':' after the key id"))?;
        let key_id = KeyId::from_str(id)?;
        let header = token::parse_header(token).ok_or(CryptoError::Malformed(
            "the part after the key id is not a Fernet token",
        ))?;
        return Ok(Parsed::Sealed {
            key_id,
            token,
            header,
        });
    }
    if claims_other_version(text) {
        return Err(CryptoError::Malformed(
            "unsupported format version (this build reads atom:v1); upgrade atom to read it",
        ));
    }
    match token::parse_header(text) {
        Some(header) => Ok(Parsed::Legacy(header)),
        // Every Fernet token made before the year 36812 starts with these
        // six characters (version 0x80 and the high timestamp bytes). One
        // that fails the structural check was damaged (cut short, a line
        // break appended, re-encoded): an error, never plaintext to seal.
        None if text.starts_with(FERNET_START) => Err(CryptoError::Malformed(
            "it starts like a Fernet token but is not a well-formed one (truncated, re-encoded or with extra characters)",
        )),
        None => Ok(Parsed::Plaintext),
    }
}

/// `atom:v<digits>:` with a version other than 1.
fn claims_other_version(text: &str) -> bool {
    let Some(rest) = text.strip_prefix("atom:v") else {
        return false;
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    digits > 0 && rest.as_bytes().get(digits) == Some(&b':')
}
