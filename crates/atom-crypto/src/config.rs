//! Building a keyring from the environment. This is atom-crypto's only I/O:
//! reading environment variables and key files at start-up.

use std::path::Path;

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
    let primary = match (lookup(ENV_KEY), lookup(ENV_KEY_FILE)) {
        (Some(_), Some(_)) => {
            return Err(CryptoError::Config(format!(
                "both {ENV_KEY} and {ENV_KEY_FILE} are set; set only one of them"
            )));
        }
        (Some(text), None) => Some((parse_key(&text, ENV_KEY.to_owned())?, ENV_KEY.to_owned())),
        (None, Some(path)) => {
            let origin = format!("{ENV_KEY_FILE} ({path})");
            let text = read_key_file(Path::new(&path), ENV_KEY_FILE)?;
            Some((
                parse_key(text.trim_end_matches(['\n', '\r']), origin.clone())?,
                origin,
            ))
        }
        (None, None) => None,
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
            "{ENV_KEY} is not set: secrets and credentials are stored in PLAINTEXT (development mode). Set {ENV_KEY} to a key from `atom key generate` for production."
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

fn flag(lookup: &impl Fn(&str) -> Option<String>, name: &str) -> Result<bool, CryptoError> {
    match lookup(name).as_deref().map(str::trim) {
        None | Some("") | Some("0") | Some("false") => Ok(false),
        Some("1") | Some("true") => Ok(true),
        Some(_) => Err(CryptoError::Config(format!(
            "{name} must be 1, true, 0 or false"
        ))),
    }
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
    let (text, origin, separator) = match (
        lookup(ENV_PREVIOUS_KEYS),
        lookup(ENV_PREVIOUS_KEYS_FILE),
    ) {
        (Some(_), Some(_)) => {
            return Err(CryptoError::Config(format!(
                "both {ENV_PREVIOUS_KEYS} and {ENV_PREVIOUS_KEYS_FILE} are set; set only one of them"
            )));
        }
        (Some(text), None) => (text, ENV_PREVIOUS_KEYS.to_owned(), ','),
        (None, Some(path)) => (
            read_key_file(Path::new(&path), ENV_PREVIOUS_KEYS_FILE)?.to_string(),
            format!("{ENV_PREVIOUS_KEYS_FILE} ({path})"),
            '\n',
        ),
        (None, None) => return Ok(Vec::new()),
    };
    let text = zeroize::Zeroizing::new(text);
    let mut keys = Vec::new();
    for (i, item) in text.split(separator).enumerate() {
        let item = if separator == '\n' {
            item.trim_end_matches('\r')
        } else {
            item
        };
        if item.is_empty() || (separator == '\n' && item.starts_with('#')) {
            continue;
        }
        let where_ = format!("{origin} entry {}", i + 1);
        keys.push((parse_key(item, where_.clone())?, where_));
    }
    Ok(keys)
}

fn read_key_file(path: &Path, variable: &str) -> Result<zeroize::Zeroizing<String>, CryptoError> {
    let bytes = zeroize::Zeroizing::new(std::fs::read(path).map_err(|e| {
        CryptoError::Config(format!(
            "cannot read {variable} {}: {}; check the path and its permissions",
            path.display(),
            e.kind()
        ))
    })?);
    warn_if_readable_by_others(path, variable);
    match std::str::from_utf8(&bytes) {
        Ok(text) => Ok(zeroize::Zeroizing::new(text.to_owned())),
        Err(_) => Err(CryptoError::Config(format!(
            "{variable} {} is not text; a key file holds url-safe base64 keys",
            path.display()
        ))),
    }
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path, variable: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            file = %path.display(),
            "{variable} is readable by group or others; restrict it with: chmod 600 {}",
            path.display()
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path, _variable: &str) {}
