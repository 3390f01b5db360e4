//! `SecretsEncryption`: a drop-in for the seed's class of the same name
//! (`backend/core/secrets_encryption.py`). Values are bare Fernet tokens
//! under the raw key, the seed's format, so the Python original and this
//! package read each other's values. It opens under the whole keyring
//! (`ENCRYPTION_PREVIOUS_KEYS` too) and `rotate` re-seals under the
//! primary key, as pyca's `MultiFernet.rotate` does.

use atom_crypto::{ExposeSecret as _, Protection};
use pyo3::prelude::*;

use crate::errors::{CannotOpen, ConfigError};

/// Requiring encryption: refuse the seed's no-key development fallback.
const ENV_REQUIRE: &str = "ATOM_REQUIRE_ENCRYPTION";

/// The seed's `SecretsEncryption`, on the Rust engine.
///
/// Reads ``ENCRYPTION_KEY`` (or ``ENCRYPTION_KEY_FILE``, or master keys
/// held by KMS, as the binaries do) when made: the seed's 43-character
/// ``secrets.token_urlsafe(32)`` recipe and padded 44-character Fernet keys
/// both work. ``ENCRYPTION_PREVIOUS_KEYS`` lists older keys that still
/// decrypt.
///
/// Without a key, it keeps the seed's development fallback (``encrypt``
/// and ``decrypt`` return their argument) and warns through ``logging``
/// every time it is made; ``require_encryption=True`` (or
/// ``ATOM_REQUIRE_ENCRYPTION=1``) raises ``ConfigError`` instead.
#[pyclass(frozen, module = "atom_protect")]
pub(crate) struct SecretsEncryption {
    protection: Protection,
}

#[pymethods]
impl SecretsEncryption {
    #[new]
    #[pyo3(signature = (*, require_encryption = None))]
    fn new(py: Python<'_>, require_encryption: Option<bool>) -> PyResult<SecretsEncryption> {
        let mut settings = atom_app::Settings::from_env().map_err(crate::errors::from_app)?;
        if let Some(required) = require_encryption {
            settings.require_encryption = required;
        }
        let refuse_fallback = settings.require_encryption || env_requires()?;
        // Reading KMS-held keys waits for KMS: without the GIL.
        let protection = py
            .detach(|| settings.protection())
            .map_err(crate::errors::from_app)?;
        match protection.keyring() {
            None if refuse_fallback => {
                return Err(ConfigError::new_err(format!(
                    "ENCRYPTION_KEY is not set and encryption is required ({}); set ENCRYPTION_KEY to a key from `atom keys generate`",
                    if require_encryption == Some(true) {
                        "require_encryption=True".to_owned()
                    } else {
                        format!("{ENV_REQUIRE}=1")
                    }
                )));
            }
            None => crate::log::warning(
                py,
                "ENCRYPTION_KEY is not set - secrets will be stored in PLAINTEXT (the seed's development fallback). Set ENCRYPTION_KEY (make one with `atom keys generate`), or pass require_encryption=True to refuse to run without it.",
            )?,
            Some(_) => {}
        }
        Ok(SecretsEncryption { protection })
    }

    /// Encrypts ``plaintext`` into a Fernet token (``gAAAAA...``) under the
    /// primary key; without a key (development fallback), returns it as is.
    fn encrypt(&self, plaintext: &str) -> String {
        // A microsecond of CPU: releasing the GIL would cost more than it
        // frees (pyca's Fernet holds it too).
        match self.protection.keyring() {
            Some(ring) => ring.seal_legacy(plaintext).into_string(),
            None => plaintext.to_owned(),
        }
    }

    /// Decrypts a Fernet token made under any configured key; without a key
    /// (development fallback), returns it as is. A value that does not open
    /// raises ``CannotOpen`` (a ``ValueError``) with the seed's message,
    /// ``Invalid encrypted data``.
    fn decrypt(&self, encrypted: &str) -> PyResult<String> {
        match self.protection.keyring() {
            Some(ring) => ring
                .open_legacy(encrypted)
                .map(|secret| secret.expose_secret().to_owned())
                .map_err(invalid),
            None => Ok(encrypted.to_owned()),
        }
    }

    /// Re-encrypts a token under the primary key, keeping its timestamp, as
    /// pyca's ``MultiFernet.rotate`` does. For values kept in your own
    /// tables: ``atom keys rotate`` rotates the secrets file and the
    /// credential store, and cannot reach them. Without a key, raises
    /// ``ConfigError``.
    fn rotate(&self, token: &str) -> PyResult<String> {
        let Some(ring) = self.protection.keyring() else {
            return Err(ConfigError::new_err(
                "rotate needs an encryption key, and ENCRYPTION_KEY is not set",
            ));
        };
        ring.rotate_legacy(token)
            .map(|v| v.into_string())
            .map_err(invalid)
    }

    /// Whether values are encrypted (a key is configured).
    #[getter]
    fn enabled(&self) -> bool {
        self.protection.keyring().is_some()
    }

    /// The seed's ``cipher`` attribute, for code that tests it: ``True``
    /// when a key is configured, ``None`` in the development fallback.
    #[getter]
    fn cipher(&self) -> Option<bool> {
        self.enabled().then_some(true)
    }

    /// The ids of the configured keys (12 hex digits each, never the keys),
    /// the primary first.
    #[getter]
    fn key_ids(&self) -> Vec<String> {
        self.protection.keyring().map_or_else(Vec::new, |ring| {
            ring.key_ids().map(|(id, _)| id.to_string()).collect()
        })
    }

    fn __repr__(&self) -> String {
        match self.protection.keyring() {
            Some(ring) => format!(
                "SecretsEncryption(enabled=True, primary_key_id='{}', keys={})",
                ring.primary_id(),
                ring.key_ids().count()
            ),
            None => "SecretsEncryption(enabled=False)".to_owned(),
        }
    }
}

fn env_requires() -> PyResult<bool> {
    atom_crypto::encryption_required_by_env().map_err(|e| ConfigError::new_err(e.to_string()))
}

/// The seed's error for a token that does not open; a setting that refuses
/// legacy tokens is a configuration error instead.
fn invalid(err: atom_crypto::CryptoError) -> PyErr {
    match err {
        atom_crypto::CryptoError::LegacyRefused => ConfigError::new_err(format!(
            "{err}; SecretsEncryption reads and writes the Python original's bare Fernet tokens"
        )),
        _ => CannotOpen::new_err("Invalid encrypted data"),
    }
}
