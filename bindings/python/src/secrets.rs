//! `Secrets`: the secrets file (`secrets.enc`) as a dict, by the rules of
//! `atom secrets get`, and the seed's auto-migration as one call.

use std::path::PathBuf;

use atom_app::{DatabaseAccess, Settings};
use atom_crypto::{ExposeSecret as _, Protection};
use atom_secrets_file::{AuditedSecrets, AutoMigration, SecretValue};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::{ConfigError, from_app};
use crate::runtime::runtime;

/// The secrets folder's values.
#[pyclass(frozen, module = "atom_protect")]
pub(crate) struct Secrets;

/// What the reading thread hands back to the one holding the GIL.
enum Loaded {
    Opened(Vec<(String, SecretValue)>),
    Plaintext(Vec<(String, serde_json::Value)>),
}

#[pymethods]
impl Secrets {
    /// The values of ``secrets.enc`` in ``dir`` as a dict: each string
    /// opened under its name (values sealed by ``atom`` are bound to their
    /// name; the Python original's bare tokens open too), objects and
    /// arrays with their strings opened, numbers, booleans and null as
    /// they are. One value that does not open raises ``CannotOpen`` and
    /// nothing is returned. Each read is audited before any value is.
    ///
    /// Without a key (the seed's development fallback) the values of
    /// ``secrets.json`` come back as they are, with a warning;
    /// ``require_encryption=True`` raises ``ConfigError`` instead.
    #[staticmethod]
    #[pyo3(signature = (dir = PathBuf::from("."), *, require_encryption = None))]
    fn load<'py>(
        py: Python<'py>,
        dir: PathBuf,
        require_encryption: Option<bool>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let settings = settings_for(dir, require_encryption)?;
        let rt = runtime().map_err(crate::errors::no_runtime)?;
        let loaded = py.detach(|| {
            rt.block_on(async {
                let protection = settings.protection()?;
                match protection.keyring() {
                    None => Ok(Loaded::Plaintext(settings.secrets().plaintext_values()?)),
                    Some(ring) => {
                        let secrets = audited(&settings).await?;
                        let values = secrets.get_all(ring).await?;
                        secrets.flush().await?;
                        Ok::<_, atom_app::Error>(Loaded::Opened(values))
                    }
                }
            })
        });
        let dict = PyDict::new(py);
        match loaded.map_err(from_app)? {
            Loaded::Plaintext(values) => {
                crate::log::warning(
                    py,
                    "ENCRYPTION_KEY is not set: secrets.json is read in PLAINTEXT (the seed's development fallback)",
                )?;
                for (name, value) in &values {
                    dict.set_item(name, crate::convert::json(py, value)?)?;
                }
            }
            Loaded::Opened(values) => {
                for (name, value) in &values {
                    dict.set_item(name, value_to_py(py, value)?)?;
                }
            }
        }
        Ok(dict)
    }

    /// The seed's auto-migration, as one call: with a key configured, a
    /// ``secrets.json`` and no ``secrets.enc`` in ``dir``, migrates (keeping
    /// ``secrets.json.backup``) and says what it did; otherwise says why
    /// not. ``ATOM_AUTO_MIGRATE=0`` turns it off, as at the server's
    /// start. Returns ``{"outcome": ..., "sealed": [...], ...}``.
    #[staticmethod]
    #[pyo3(signature = (dir = PathBuf::from(".")))]
    fn auto_migrate<'py>(py: Python<'py>, dir: PathBuf) -> PyResult<Bound<'py, PyDict>> {
        let settings = settings_for(dir, None)?;
        let rt = runtime().map_err(crate::errors::no_runtime)?;
        let done = py
            .detach(|| {
                rt.block_on(async {
                    let protection: Protection = settings.protection()?;
                    let secrets = audited(&settings).await?;
                    let done = secrets.auto_migrate(&protection).await?;
                    secrets.flush().await?;
                    Ok::<_, atom_app::Error>(done)
                })
            })
            .map_err(from_app)?;
        let dict = PyDict::new(py);
        let outcome = match &done {
            AutoMigration::Migrated(report) => {
                dict.set_item("sealed", report.sealed_names.clone())?;
                dict.set_item(
                    "encrypted_file",
                    report.encrypted_file.display().to_string(),
                )?;
                dict.set_item("backup_file", report.backup_file.display().to_string())?;
                "migrated"
            }
            AutoMigration::Disabled => "disabled",
            AutoMigration::NoKey => "no_key",
            AutoMigration::NoPlaintextFile => "no_plaintext_file",
            AutoMigration::AlreadyMigrated => "already_migrated",
            _ => "skipped",
        };
        dict.set_item("outcome", outcome)?;
        dict.set_item("message", done.to_string())?;
        Ok(dict)
    }
}

fn settings_for(dir: PathBuf, require_encryption: Option<bool>) -> PyResult<Settings> {
    let mut settings = Settings::from_env().map_err(from_app)?;
    settings.secrets_dir = dir;
    if let Some(required) = require_encryption {
        settings.require_encryption = required;
    }
    if require_encryption == Some(true)
        && settings.protection().map_err(from_app)?.keyring().is_none()
    {
        return Err(ConfigError::new_err(
            "ENCRYPTION_KEY is not set and require_encryption=True; set ENCRYPTION_KEY to a key from `atom keys generate`",
        ));
    }
    Ok(settings)
}

/// The secrets folder with the trail of every other face (the audit
/// settings of the environment); the trail's tables are never created
/// from here.
async fn audited(settings: &Settings) -> Result<AuditedSecrets, atom_app::Error> {
    let (auditor, fingerprints) = settings
        .auditor_for(crate::actor(), DatabaseAccess::Existing)
        .await?;
    Ok(AuditedSecrets::new(
        settings.secrets(),
        auditor,
        fingerprints,
    ))
}

fn value_to_py<'py>(py: Python<'py>, value: &SecretValue) -> PyResult<Bound<'py, PyAny>> {
    match value {
        SecretValue::Secret(secret) => Ok(secret.expose_secret().into_pyobject(py)?.into_any()),
        SecretValue::Plain(plain) => crate::convert::json(py, plain),
        SecretValue::Structured(text) => {
            let parsed: serde_json::Value = serde_json::from_str(text.expose_secret())
                .map_err(|e| ConfigError::new_err(format!("an opened value is not JSON: {e}")))?;
            crate::convert::json(py, &parsed)
        }
        _ => Err(ConfigError::new_err(
            "a value of a kind this version of atom_protect does not know",
        )),
    }
}
