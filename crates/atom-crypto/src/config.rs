//! Building a keyring from the environment. This is atom-crypto's only I/O:
//! reading environment variables and key files at start-up.

use crate::error::CryptoError;
use crate::key::Key;
use crate::keyring::Keyring;

/// The primary key, as text.
pub const ENV_KEY: &str = "ENCRYPTION_KEY";
/// A file holding the primary key (instead of [`ENV_KEY`]).
pub const ENV_KEY_FILE: &str = "ENCRYPTION_KEY_FILE";
/// Older keys that still open values, comma-separated.
pub const ENV_PREVIOUS_KEYS: &str = "ENCRYPTION_PREVIOUS_KEYS";
/// A file of older keys, one a line (blank lines and `#` comments ignored).
pub const ENV_PREVIOUS_KEYS_FILE: &str = "ENCRYPTION_PREVIOUS_KEYS_FILE";
/// `1` or `true`: bare Fernet tokens (the Python original's) no longer
/// open; for after a rotation has upgraded every value.
pub const ENV_REFUSE_LEGACY: &str = "ATOM_REFUSE_LEGACY";
/// `1` or `true`: no key configured is an error instead of plaintext mode.
pub const ENV_REQUIRE_ENCRYPTION: &str = "ATOM_REQUIRE_ENCRYPTION";

/// What the configuration asks for.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Protection {
    /// No key: the seed's plaintext development mode.
    Plaintext,
    /// Values are sealed with this keyring.
    Encrypted(Keyring),
}

impl Protection {
    /// The keyring, if encryption is on.
    pub fn keyring(&self) -> Option<&Keyring> {
        match self {
            Protection::Encrypted(k) => Some(k),
            Protection::Plaintext => None,
        }
    }
}

/// Reads the key configuration from the process environment. See
/// [`protection_from`] for the rules.
pub fn protection_from_env(require_encryption: bool) -> Result<Protection, CryptoError> {
    protection_from(|name| std::env::var(name).ok(), require_encryption)
}

/// Whether [`ENV_REQUIRE_ENCRYPTION`] asks for encryption (and so for
/// production settings: no development fallbacks anywhere).
pub fn encryption_required_by_env() -> Result<bool, CryptoError> {
    flag(
        &|name: &str| std::env::var(name).ok(),
        ENV_REQUIRE_ENCRYPTION,
    )
}

/// Reads the key configuration through `lookup` (an environment).
///
/// - [`ENV_KEY`] or [`ENV_KEY_FILE`] (not both) is the primary key.
/// - [`ENV_PREVIOUS_KEYS`] or [`ENV_PREVIOUS_KEYS_FILE`] (not both) lists
///   decrypt-only keys; they need a primary key. The primary listed there
///   too is ignored (rotation swaps the files one at a time); any other
///   key listed twice is an error.
/// - A key that is set but does not parse is an error, never plaintext mode.
/// - No key at all is plaintext mode (warned) unless `require_encryption` or
///   [`ENV_REQUIRE_ENCRYPTION`] asks for encryption, which makes it an error.
pub fn protection_from(
    lookup: impl Fn(&str) -> Option<String>,
    require_encryption: bool,
) -> Result<Protection, CryptoError> {
    let require = require_encryption || flag(&lookup, ENV_REQUIRE_ENCRYPTION)?;
    let primary = match atom_io::secret_from_env(&lookup, ENV_KEY, ENV_KEY_FILE)
        .map_err(|e| CryptoError::Config(e.to_string()))?
    {
        Some(secret) => {
            // One rule for the key and the previous keys: a file's line
            // endings are not part of its key, and the variable's text is
            // the key exactly (43 or 44 characters, nothing around them).
            let text = if secret.origin == ENV_KEY {
                secret.text.as_str()
            } else {
                secret.text.trim_end_matches(['\n', '\r'])
            };
            Some((parse_key(text, secret.origin.clone())?, secret.origin))
        }
        None => None,
    };
    let previous = previous_keys(&lookup)?;
    let Some(primary) = primary else {
        if !previous.is_empty() {
            return Err(CryptoError::Config(format!(
                "previous keys are configured but no primary key; set {ENV_KEY} (or {ENV_KEY_FILE}) to the key that should seal new values"
            )));
        }
        if require {
            return Err(CryptoError::NoKey);
        }
        tracing::warn!(
            "{ENV_KEY} is not set: secrets and credentials are stored in PLAINTEXT (development mode). Set {ENV_KEY} for production."
        );
        return Ok(Protection::Plaintext);
    };
    // The primary may also be listed among the previous keys, as it is for
    // a moment while a rotation swaps the key files (cargo xtask
    // rotate-keys, promote); it is the same key, used once. Any other
    // repetition is an error (Keyring::from_entries).
    let primary_id = primary.0.id();
    let mut entries = vec![primary];
    entries.extend(
        previous
            .into_iter()
            .filter(|(key, _)| key.id() != primary_id),
    );
    let refuse_legacy = flag(&lookup, ENV_REFUSE_LEGACY)?;
    Ok(Protection::Encrypted(
        Keyring::from_entries(entries)?.with_legacy(!refuse_legacy),
    ))
}

/// A keyring of keys obtained from another key source (a KMS): the first
/// seals, the others only open; each is named by its origin in errors.
/// [`ENV_REFUSE_LEGACY`] applies as for keys from the environment.
pub fn protection_from_keys(
    keys: Vec<(Key, String)>,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Protection, CryptoError> {
    let refuse_legacy = flag(&lookup, ENV_REFUSE_LEGACY)?;
    Ok(Protection::Encrypted(
        Keyring::from_entries(keys)?.with_legacy(!refuse_legacy),
    ))
}

fn flag(lookup: &impl Fn(&str) -> Option<String>, name: &str) -> Result<bool, CryptoError> {
    atom_io::flag_from_env(lookup, name).map_err(|e| CryptoError::Config(e.to_string()))
}

fn parse_key(text: &str, origin: String) -> Result<Key, CryptoError> {
    Key::parse(text).map_err(|problem| CryptoError::BadKey {
        source_name: origin,
        problem,
    })
}

fn previous_keys(
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<Vec<(Key, String)>, CryptoError> {
    let Some(secret) = atom_io::secret_from_env(lookup, ENV_PREVIOUS_KEYS, ENV_PREVIOUS_KEYS_FILE)
        .map_err(|e| CryptoError::Config(e.to_string()))?
    else {
        return Ok(Vec::new());
    };
    // The variable lists keys by commas; the file one a line.
    let separator = if secret.origin == ENV_PREVIOUS_KEYS {
        ','
    } else {
        '\n'
    };
    let mut keys = Vec::new();
    for (i, item) in secret.text.split(separator).enumerate() {
        let item = if separator == '\n' {
            item.trim_end_matches('\r')
        } else {
            item
        };
        if item.is_empty() || (separator == '\n' && item.starts_with('#')) {
            continue;
        }
        let where_ = format!("{} entry {}", secret.origin, i + 1);
        keys.push((parse_key(item, where_.clone())?, where_));
    }
    Ok(keys)
}
