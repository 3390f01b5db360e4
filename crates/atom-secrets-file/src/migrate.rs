//! `migrate`: `secrets.json` -> `secrets.enc`, keeping `secrets.json.backup`.
//! Idempotent, and it never overwrites a value that only `secrets.enc` has.

use std::path::PathBuf;

use atom_crypto::{Classification, ExposeSecret as _, Keyring, classify};
use serde::Serialize;
use serde_json::Value;

use crate::dir::SecretsDir;
use crate::error::{Error, Result};
use crate::keep::keep_aside;
use crate::parse::{self, Entries};
use crate::seal::{self, SealForm};
use crate::verify::FailureClass;

/// What `migrate` did. Names and counts only, never values.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct MigrateReport {
    /// `secrets.json`.
    pub plaintext_file: PathBuf,
    /// `secrets.enc`.
    pub encrypted_file: PathBuf,
    /// `secrets.json.backup`.
    pub backup_file: PathBuf,
    /// Entries in the result.
    pub total: usize,
    /// Names whose value was sealed by this run.
    pub sealed_names: Vec<String>,
    /// String values already sealed (in `secrets.enc`, or sealed values found
    /// in `secrets.json`) and kept as they were: never sealed twice.
    pub already_sealed: usize,
    /// Non-string values, kept as they are.
    pub not_secret: usize,
    /// The key that sealed new values (`None` when written in legacy form).
    pub key_id: Option<String>,
    /// `sealed` or `legacy`.
    pub form: &'static str,
    /// Whether `secrets.enc` was written (false: it was already up to date).
    pub wrote_encrypted: bool,
    /// Whether `secrets.json.backup` was written.
    pub wrote_backup: bool,
    /// Where an older, different backup was kept before being replaced.
    pub kept_old_backup: Option<PathBuf>,
}

/// The decision for one entry of `secrets.json`.
enum Plan {
    /// Taken unchanged from the existing `secrets.enc`.
    Existing(Value),
    /// Already sealed in `secrets.json`, or not a string: copied as is.
    Copy { value: Value, sealed: bool },
    /// Newly sealed.
    Sealed(String),
    /// `secrets.enc` has another value under this name.
    Differs,
    /// A value of `secrets.json` that looks sealed does not open.
    PlainFails(FailureClass),
    /// A value of `secrets.enc` does not open.
    EncryptedFails(FailureClass),
}

impl SecretsDir {
    /// Seals every string value of `secrets.json` into `secrets.enc` under
    /// its name, keeps a byte-for-byte `secrets.json.backup`, and leaves
    /// `secrets.json` untouched.
    ///
    /// Running it again changes nothing: values already in `secrets.enc`
    /// with the same content are kept, not sealed again. It refuses (and
    /// changes nothing) when `secrets.enc` has names `secrets.json` lacks or
    /// different values, or when a value does not open.
    pub fn migrate(&self, keyring: &Keyring) -> Result<MigrateReport> {
        let _lock = self.lock()?;
        let plain_path = self.plaintext_path();
        let enc_path = self.encrypted_path();
        let plain_bytes = parse::read_bytes(
            &plain_path,
            self.max_size(),
            "nothing to migrate; create it or point to the directory that holds it",
        )?;
        let plain = parse::parse_entries(&plain_path, &plain_bytes)?;
        let existing = parse::read_entries_if_exists(&enc_path, self.max_size())?;
        let form = self.form();

        let mut items: Vec<(&String, &Value)> = plain.iter().collect();
        let plans = seal::par_map(&mut items, |(name, value)| {
            plan_entry(keyring, form, name, value, existing.as_ref())
        });

        let mut out = Entries::with_capacity(plain.len());
        let mut sealed_names = Vec::new();
        let (mut already_sealed, mut not_secret, mut from_existing) = (0, 0, 0);
        let (mut plain_failures, mut enc_failures, mut differing) = (vec![], vec![], vec![]);
        for ((name, _), plan) in items.into_iter().zip(plans) {
            match plan {
                Plan::Existing(value) => {
                    from_existing += 1;
                    if value.is_string() {
                        already_sealed += 1;
                    } else {
                        not_secret += 1;
                    }
                    out.insert(name.clone(), value);
                }
                Plan::Copy { value, sealed } => {
                    if sealed {
                        already_sealed += 1;
                    } else {
                        not_secret += 1;
                    }
                    out.insert(name.clone(), value);
                }
                Plan::Sealed(text) => {
                    sealed_names.push(name.clone());
                    out.insert(name.clone(), Value::String(text));
                }
                Plan::Differs => differing.push(name.clone()),
                Plan::PlainFails(class) => plain_failures.push((name.clone(), class)),
                Plan::EncryptedFails(class) => enc_failures.push((name.clone(), class)),
            }
        }
        if !plain_failures.is_empty() {
            return Err(Error::DoNotOpen {
                path: plain_path,
                failures: plain_failures,
            });
        }
        if !enc_failures.is_empty() {
            return Err(Error::DoNotOpen {
                path: enc_path,
                failures: enc_failures,
            });
        }
        let only_encrypted: Vec<String> = existing
            .iter()
            .flat_map(|e| e.keys())
            .filter(|name| !plain.contains_key(*name))
            .cloned()
            .collect();
        if !only_encrypted.is_empty() || !differing.is_empty() {
            return Err(Error::WouldLoseSecrets {
                encrypted: enc_path,
                plaintext: plain_path,
                only_encrypted,
                differing,
            });
        }

        // Checked: nothing can fail for a reason in the files any more. The
        // backup (I/O bound) is written while secrets.enc is rendered.
        let wrote_encrypted = existing.is_none() || from_existing != out.len();
        let (backup, encrypted) = std::thread::scope(|scope| {
            let backup = scope.spawn(|| self.write_backup(&plain_bytes));
            let encrypted = if wrote_encrypted {
                self.write_entries(&enc_path, &out)
            } else {
                Ok(())
            };
            (backup.join(), encrypted)
        });
        let (wrote_backup, kept_old_backup) = match backup {
            Ok(result) => result?,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        encrypted?;
        let report = MigrateReport {
            plaintext_file: plain_path,
            encrypted_file: enc_path,
            backup_file: self.backup_path(),
            total: out.len(),
            already_sealed,
            not_secret,
            key_id: match form {
                SealForm::Sealed => Some(keyring.primary_id().to_string()),
                SealForm::Legacy => None,
            },
            form: match form {
                SealForm::Sealed => "sealed",
                SealForm::Legacy => "legacy",
            },
            sealed_names,
            wrote_encrypted,
            wrote_backup,
            kept_old_backup,
        };
        tracing::info!(
            file = %report.encrypted_file.display(),
            sealed = report.sealed_names.len(),
            already_sealed = report.already_sealed,
            not_secret = report.not_secret,
            wrote = report.wrote_encrypted,
            "migrate"
        );
        Ok(report)
    }

    /// Writes `secrets.json.backup` unless it already holds these bytes; an
    /// older different backup is kept aside first.
    fn write_backup(&self, plain_bytes: &[u8]) -> Result<(bool, Option<PathBuf>)> {
        let backup = self.backup_path();
        let kept = match std::fs::read(&backup) {
            Ok(old) if old == plain_bytes => return Ok((false, None)),
            Ok(_) => Some(keep_aside(&backup)?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::io(&backup, "read", e)),
        };
        self.write_bytes(&backup, plain_bytes)?;
        Ok((true, kept))
    }
}

fn plan_entry(
    keyring: &Keyring,
    form: SealForm,
    name: &str,
    value: &Value,
    existing: Option<&Entries>,
) -> Plan {
    let existing = existing.and_then(|e| e.get(name));
    let Some(text) = seal::as_string(value) else {
        return match existing {
            Some(old) if old != value => Plan::Differs,
            Some(old) => Plan::Existing(old.clone()),
            None => Plan::Copy {
                value: value.clone(),
                sealed: false,
            },
        };
    };
    // A value of secrets.json that is already ciphertext is opened to
    // compare, and kept as it is: never sealed twice.
    let looks_sealed = !matches!(classify(text), Ok(Classification::Plaintext));
    let opened_plain;
    let plaintext: &str = if looks_sealed {
        match seal::open(keyring, name, text) {
            Ok(secret) => {
                opened_plain = secret;
                opened_plain.expose_secret()
            }
            Err(class) => return Plan::PlainFails(class),
        }
    } else {
        text
    };
    match existing {
        None => {}
        Some(Value::String(old)) => {
            let same = match classify(old) {
                Ok(Classification::Plaintext) => old == plaintext,
                _ => match seal::open(keyring, name, old) {
                    Ok(secret) => secret.expose_secret() == plaintext,
                    Err(class) => return Plan::EncryptedFails(class),
                },
            };
            if !same {
                return Plan::Differs;
            }
            if !matches!(classify(old), Ok(Classification::Plaintext)) {
                return Plan::Existing(Value::String(old.clone()));
            }
        }
        Some(_) => return Plan::Differs,
    }
    if looks_sealed {
        Plan::Copy {
            value: value.clone(),
            sealed: true,
        }
    } else {
        Plan::Sealed(seal::seal(keyring, form, name, plaintext))
    }
}
