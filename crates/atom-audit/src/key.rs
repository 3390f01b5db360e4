//! The audit key: its own [`Key`], configured separately from the
//! encryption keys so that whoever can read secrets cannot also rewrite the
//! audit chain.

use std::path::Path;

use atom_crypto::Key;

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
    let secret = atom_io::secret_from_env(&lookup, ENV_AUDIT_KEY, ENV_AUDIT_KEY_FILE)
        .map_err(|e| AuditError::Config(e.to_string()))?
        .ok_or(AuditError::NoAuditKey)?;
    Key::parse(secret.text.trim_end_matches(['\n', '\r'])).map_err(|problem| {
        AuditError::BadAuditKey {
            source_name: secret.origin,
            problem,
        }
    })
}

/// Like [`audit_key_from`], but with neither variable set it uses the
/// development key file `default_file`, creating it (mode 0600) on first
/// use and warning that production should configure a key. This lets a
/// fresh checkout record a verifiable log with no setup; a configured key
/// that does not parse is still an error.
pub fn audit_key_or_development(
    lookup: impl Fn(&str) -> Option<String>,
    default_file: &Path,
) -> Result<Key, AuditError> {
    match audit_key_from(lookup) {
        Err(AuditError::NoAuditKey) => {}
        other => return other,
    }
    let shown = default_file.display().to_string();
    if !default_file.exists() {
        let key = Key::generate().map_err(|e| AuditError::Config(e.to_string()))?;
        write_new_key_file(default_file, &key).map_err(|e| {
            AuditError::Config(format!(
                "cannot create the development audit key {shown}: {}; set {ENV_AUDIT_KEY_FILE} instead",
                e.kind()
            ))
        })?;
        tracing::warn!(
            file = %shown,
            "no {ENV_AUDIT_KEY} set: created a development audit key next to the log, so whoever can rewrite the log can also re-chain it; configure {ENV_AUDIT_KEY} or {ENV_AUDIT_KEY_FILE} (kept elsewhere) in production"
        );
    }
    audit_key_from(|name| (name == ENV_AUDIT_KEY_FILE).then(|| shown.clone()))
}

fn write_new_key_file(path: &Path, key: &Key) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(key.expose_base64().as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}
