//! The audit key: its own [`Key`], configured separately from the
//! encryption keys so that whoever can read secrets cannot also rewrite the
//! audit chain.

use std::path::Path;

use atom_crypto::Key;
use zeroize::Zeroizing;

use crate::error::AuditError;

/// The audit key, as text (url-safe base64 of 32 bytes, from
/// `atom key generate`).
pub const ENV_AUDIT_KEY: &str = "ATOM_AUDIT_KEY";
/// A file holding the audit key (instead of [`ENV_AUDIT_KEY`]); one line,
/// a trailing line break is ignored.
pub const ENV_AUDIT_KEY_FILE: &str = "ATOM_AUDIT_KEY_FILE";

/// Reads the audit key from the process environment; see
/// [`audit_key_from`].
pub fn audit_key_from_env() -> Result<Key, AuditError> {
    audit_key_from(|name| std::env::var(name).ok())
}

/// Reads the audit key through `lookup` (an environment):
/// [`ENV_AUDIT_KEY`] or [`ENV_AUDIT_KEY_FILE`], not both. No key is
/// [`AuditError::NoAuditKey`]; a key that does not parse is
/// [`AuditError::BadAuditKey`]. There is no fallback to another key.
pub fn audit_key_from(lookup: impl Fn(&str) -> Option<String>) -> Result<Key, AuditError> {
    match (lookup(ENV_AUDIT_KEY), lookup(ENV_AUDIT_KEY_FILE)) {
        (Some(_), Some(_)) => Err(AuditError::Config(format!(
            "both {ENV_AUDIT_KEY} and {ENV_AUDIT_KEY_FILE} are set; set only one of them"
        ))),
        (Some(text), None) => {
            let text = Zeroizing::new(text);
            Key::parse(&text).map_err(|problem| AuditError::BadAuditKey {
                source_name: ENV_AUDIT_KEY.to_owned(),
                problem,
            })
        }
        (None, Some(path)) => {
            let bytes = Zeroizing::new(std::fs::read(Path::new(&path)).map_err(|e| {
                AuditError::Config(format!(
                    "cannot read {ENV_AUDIT_KEY_FILE} {path}: {}; check the path and its permissions",
                    e.kind()
                ))
            })?);
            let text = std::str::from_utf8(&bytes).map_err(|_| {
                AuditError::Config(format!(
                    "{ENV_AUDIT_KEY_FILE} {path} is not text; it should hold one key from: atom key generate"
                ))
            })?;
            Key::parse(text.trim_end_matches(['\n', '\r'])).map_err(|problem| {
                AuditError::BadAuditKey {
                    source_name: format!("{ENV_AUDIT_KEY_FILE} ({path})"),
                    problem,
                }
            })
        }
        (None, None) => Err(AuditError::NoAuditKey),
    }
}
