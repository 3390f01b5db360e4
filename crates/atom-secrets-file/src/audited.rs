//! The operations of [`SecretsDir`] with an audit trail, fail-closed.
//!
//! - Reads (`get`, `exec_env`, `verify`) record their event after the values
//!   are opened in memory and before anything is returned: when the event
//!   cannot be recorded, nothing is revealed.
//! - Changes (`migrate`, `rollback`, `set`, `unset`, `rewrap`,
//!   `shred_plaintext`) first record the action with outcome `started`; if
//!   that fails the change is not made. After the change, the same action is
//!   recorded with `success` (with the final counts) or `failure`.
//!
//! Secret values never enter an event: names, counts, key ids and keyed
//! fingerprints only.

use std::path::Path;
use std::process::Command;

use atom_audit::{Action, Auditor, Fingerprinter, Outcome, Subject};
use atom_crypto::OpenFailure;
use atom_crypto::{ExposeSecret as _, KeyId, Keyring, SecretString};

use crate::dir::SecretsDir;
use crate::edit::{EditReport, SecretValue};
use crate::error::{Error, Result};
use crate::exec::SecretEnv;
use crate::migrate::MigrateReport;
use crate::rewrap::RewrapReport;
use crate::rollback::RollbackReport;
use crate::shred::{ShredOptions, ShredReport};

use crate::verify::VerifyReport;

/// A [`SecretsDir`] whose every access is audited.
#[derive(Debug, Clone)]
pub struct AuditedSecrets {
    dir: SecretsDir,
    auditor: Auditor,
    fingerprints: Fingerprinter,
}

impl AuditedSecrets {
    /// Audits the operations on `dir` through `auditor`; `fingerprints`
    /// (made from the audit key) refers to changed values in events.
    pub fn new(dir: SecretsDir, auditor: Auditor, fingerprints: Fingerprinter) -> AuditedSecrets {
        AuditedSecrets {
            dir,
            auditor,
            fingerprints,
        }
    }

    /// The directory, for unaudited operations that reveal nothing
    /// (`status`, `list`).
    pub fn dir(&self) -> &SecretsDir {
        &self.dir
    }

    /// Makes the recorded events durable and anchored (a checkpoint of the
    /// file log); call it before the process exits.
    pub async fn flush(&self) -> Result<()> {
        Ok(self.auditor.flush().await?)
    }

    /// [`SecretsDir::migrate`], audited as `secrets_migrated`.
    pub async fn migrate(&self, keyring: &Keyring) -> Result<MigrateReport> {
        let file = shown(&self.dir.encrypted_path());
        let action = |values: usize| Action::SecretsMigrated {
            file: file.clone(),
            values: values as u64,
            key_id: keyring.primary_id(),
        };
        self.change(
            action(0),
            || self.dir.migrate(keyring),
            |r| action(r.sealed_names.len()),
        )
        .await
    }

    /// The start-up auto-migration ([`SecretsDir::auto_migrate`]), audited
    /// as `secrets_migrated` when it migrates.
    pub async fn auto_migrate(
        &self,
        protection: &atom_crypto::Protection,
    ) -> Result<crate::AutoMigration> {
        match self
            .dir
            .auto_migration_due(protection, |name| std::env::var(name).ok())?
        {
            Ok(keyring) => {
                let done = crate::AutoMigration::Migrated(self.migrate(keyring).await?);
                tracing::warn!("{done}");
                Ok(done)
            }
            Err(skipped) => Ok(skipped),
        }
    }

    /// [`SecretsDir::rollback`], audited as `secrets_rolled_back`.
    pub async fn rollback(&self, keyring: &Keyring) -> Result<RollbackReport> {
        let file = shown(&self.dir.plaintext_path());
        let action = |backup: String| Action::SecretsRolledBack {
            file: file.clone(),
            backup,
        };
        self.change(
            action(shown(&self.dir.encrypted_path())),
            || self.dir.rollback(keyring),
            |r| action(shown(&r.kept_encrypted)),
        )
        .await
    }

    /// [`SecretsDir::rewrap`], audited as a key rotation of the file.
    pub async fn rewrap(&self, keyring: &Keyring, seal_plaintext: bool) -> Result<RewrapReport> {
        let scope = shown(&self.dir.encrypted_path());
        let to = keyring.primary_id();
        self.change(
            Action::KeyRotationStarted {
                scope: scope.clone(),
                to,
                total: None,
            },
            || self.dir.rewrap(keyring, seal_plaintext),
            |r| Action::KeyRotationFinished {
                scope: scope.clone(),
                to,
                rewrapped: r.rewrapped_names.len() as u64,
                failed: 0,
            },
        )
        .await
    }

    /// [`SecretsDir::set`], audited as `secret_changed` with a keyed
    /// fingerprint of the new value.
    pub async fn set(
        &self,
        keyring: &Keyring,
        name: &str,
        value: &SecretString,
    ) -> Result<EditReport> {
        let action = Action::SecretChanged {
            name: name.to_owned(),
            fingerprint: self
                .fingerprints
                .fingerprint(value.expose_secret().as_bytes()),
            key_id: Some(keyring.primary_id()),
        };
        self.change(
            action.clone(),
            || self.dir.set(keyring, name, value),
            |_| action.clone(),
        )
        .await
    }

    /// [`SecretsDir::unset`], audited as `secret_removed`.
    pub async fn unset(&self, name: &str) -> Result<EditReport> {
        let action = Action::SecretRemoved {
            name: name.to_owned(),
        };
        self.change(action.clone(), || self.dir.unset(name), |_| action.clone())
            .await
    }

    /// [`SecretsDir::shred_plaintext`], audited as `plaintext_shredded`.
    pub async fn shred_plaintext(
        &self,
        keyring: &Keyring,
        options: ShredOptions,
    ) -> Result<ShredReport> {
        let file = shown(&self.dir.plaintext_path());
        let action = Action::PlaintextShredded { file };
        self.change(
            action.clone(),
            || self.dir.shred_plaintext(keyring, options),
            |_| action.clone(),
        )
        .await
    }

    /// [`SecretsDir::get`]: the value is returned only once `secret_read`
    /// is recorded; a value that does not open is recorded as
    /// `decryption_failed`.
    pub async fn get(&self, keyring: &Keyring, name: &str) -> Result<SecretValue> {
        match self.dir.get(keyring, name) {
            Ok(value) => {
                self.auditor
                    .record(Action::SecretRead {
                        name: name.to_owned(),
                        key_id: None,
                    })
                    .await?;
                Ok(value)
            }
            Err(err) => {
                self.record_failures(&err).await?;
                Err(err)
            }
        }
    }

    /// [`SecretsDir::get_all`]: one `secret_read` per entry, recorded before
    /// any value is returned.
    pub async fn get_all(&self, keyring: &Keyring) -> Result<Vec<(String, SecretValue)>> {
        match self.dir.get_all(keyring) {
            Ok(values) => {
                for (name, _) in &values {
                    self.auditor
                        .record(Action::SecretRead {
                            name: name.clone(),
                            key_id: None,
                        })
                        .await?;
                }
                Ok(values)
            }
            Err(err) => {
                self.record_failures(&err).await?;
                Err(err)
            }
        }
    }

    /// [`SecretsDir::exec_env`]: one `secret_read` per variable, recorded
    /// before the environment is handed out.
    pub async fn exec_env(&self, keyring: &Keyring) -> Result<SecretEnv> {
        match self.dir.exec_env(keyring) {
            Ok(env) => {
                for name in self.dir.list()? {
                    self.auditor
                        .record(Action::SecretRead { name, key_id: None })
                        .await?;
                }
                Ok(env)
            }
            Err(err) => {
                self.record_failures(&err).await?;
                Err(err)
            }
        }
    }

    /// Runs `command` with the secrets in its environment (see
    /// [`SecretsDir::exec`]), after the reads are recorded.
    pub async fn exec(
        &self,
        keyring: &Keyring,
        command: &mut Command,
    ) -> Result<std::process::ExitStatus> {
        let env = self.exec_env(keyring).await?;
        env.apply_to(command);
        command.status().map_err(|source| Error::Spawn {
            program: command.get_program().to_string_lossy().into_owned(),
            kind: source.kind(),
        })
    }

    /// [`SecretsDir::verify`], recorded as `secrets_verified` before the
    /// report is returned.
    pub async fn verify(&self, keyring: &Keyring) -> Result<VerifyReport> {
        let report = self.dir.verify(keyring)?;
        let failures = report.failures().count() as u64;
        self.auditor
            .record(Action::SecretsVerified {
                file: shown(&report.file),
                values: report.entries.len() as u64,
                failures,
            })
            .await?;
        Ok(report)
    }

    /// Records `started`, runs `op`, then records the outcome.
    async fn change<T>(
        &self,
        started: Action,
        op: impl FnOnce() -> Result<T>,
        done: impl FnOnce(&T) -> Action,
    ) -> Result<T> {
        self.auditor
            .record_event(
                self.auditor
                    .event(started.clone())
                    .with_outcome(Outcome::Started),
            )
            .await?;
        match op() {
            Ok(report) => {
                let action = done(&report);
                self.auditor.record(action).await?;
                Ok(report)
            }
            Err(err) => {
                // The change failed; say so. If even that cannot be
                // recorded, the original error is the one to report.
                if let Err(audit) = self
                    .auditor
                    .record_event(self.auditor.event(started).with_outcome(Outcome::Failure))
                    .await
                {
                    tracing::error!(error = %audit, "could not record that a secrets operation failed");
                }
                Err(err)
            }
        }
    }

    async fn record_failures(&self, err: &Error) -> Result<()> {
        if let Error::DoNotOpen { failures, .. } = err {
            for (name, class) in failures {
                self.auditor
                    .record(Action::DecryptionFailed {
                        subject: Subject::Secret { name: name.clone() },
                        key_id: None::<KeyId>,
                        reason: decrypt_failure(*class),
                    })
                    .await?;
            }
        }
        Ok(())
    }
}

fn shown(path: &Path) -> String {
    path.display().to_string()
}

fn decrypt_failure(class: OpenFailure) -> OpenFailure {
    match class {
        OpenFailure::NotSealed => OpenFailure::NotSealed,
        OpenFailure::Malformed => OpenFailure::Malformed,
        OpenFailure::UnknownKey => OpenFailure::UnknownKey,
        OpenFailure::NotAuthentic => OpenFailure::NotAuthentic,
        OpenFailure::Expired => OpenFailure::Expired,
        OpenFailure::FromTheFuture => OpenFailure::FromTheFuture,
        OpenFailure::NotUtf8 => OpenFailure::NotUtf8,
        _ => OpenFailure::Other,
    }
}
