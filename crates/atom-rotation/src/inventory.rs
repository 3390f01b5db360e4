//! What the secrets file and the credential table hold (counts per key id,
//! legacy, plaintext; nothing decrypted), and the check that every value
//! opens under a keyring, naming the ones that do not.

use std::path::PathBuf;

use atom_audit::Auditor;
use atom_credentials::{CredentialStore, DataKeyFailure, DatabaseUrl, StoreConfig};
use atom_crypto::OpenFailure;
use atom_crypto::{Key, KeyCount, KeyId, Keyring, Protection};
use atom_secrets_file::SecretsDir;
use indicatif::ProgressBar;
use serde::Serialize;

use crate::engine::{self, EngineConfig};
use crate::error::Error;
use crate::options::RotateOptions;
use crate::report::RotationReport;

/// Counts of the secrets file, by structure.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct SecretsCounts {
    /// `secrets.enc`.
    pub file: PathBuf,
    /// Entries.
    pub total: usize,
    /// Sealed values per key, nested strings included.
    pub by_key: Vec<KeyCount>,
    /// Bare Fernet values of the Python original.
    pub legacy: usize,
    /// Plaintext string values.
    pub plaintext: usize,
    /// Values that claim to be sealed but are malformed.
    pub malformed: usize,
    /// Numbers, booleans, null, objects, arrays (kept as they are).
    pub not_secret: usize,
}

/// Counts of the credential table, by structure.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct CredentialCounts {
    /// The database, password redacted.
    pub database: String,
    /// Rows.
    pub total: u64,
    /// Rows per key.
    pub by_key: Vec<KeyCount>,
    /// Bare Fernet rows of the Python original.
    pub legacy: u64,
    /// Plaintext rows.
    pub plaintext: u64,
    /// Rows whose value or key id is malformed.
    pub malformed: u64,
    /// Rows sealed under their user's data key.
    pub enveloped: u64,
    /// Users' data keys.
    pub data_keys: u64,
    /// Data keys per master key that wraps them.
    pub data_keys_by_key: Vec<KeyCount>,
}

/// Both stores' counts.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct Inventory {
    /// The secrets file, when one is rotated.
    pub secrets: Option<SecretsCounts>,
    /// The credential table, when a database is rotated.
    pub credentials: Option<CredentialCounts>,
}

impl Inventory {
    /// Values anywhere that are not sealed under `key_id` (string values of
    /// the secrets file, rows, and data keys not wrapped under it).
    pub fn not_under(&self, key_id: KeyId) -> u64 {
        let other = |by_key: &[KeyCount]| {
            by_key
                .iter()
                .filter(|k| k.key_id != key_id)
                .map(|k| k.count)
                .sum::<u64>()
        };
        let secrets = self.secrets.as_ref().map_or(0, |s| {
            other(&s.by_key) + (s.legacy + s.plaintext + s.malformed) as u64
        });
        let rows = self.credentials.as_ref().map_or(0, |c| {
            let wrapped_elsewhere = c.data_keys
                - c.data_keys_by_key
                    .iter()
                    .filter(|k| k.key_id == key_id)
                    .map(|k| k.count)
                    .sum::<u64>();
            other(&c.by_key) + c.legacy + c.plaintext + c.malformed + wrapped_elsewhere
        });
        secrets + rows
    }
}

/// A value that does not open (never the value itself).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct BadValue {
    /// `secrets_file` or `credentials`.
    pub place: &'static str,
    /// The secrets-file entry's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The credential row's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    /// The credential's user id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The credential's provider.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Why it does not open.
    pub reason: String,
}

impl std::fmt::Display for BadValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.name, self.id) {
            (Some(name), _) => write!(f, "secrets file entry \"{name}\": {}", self.reason),
            (None, Some(id)) => write!(
                f,
                "credential row id {id} (user {}, provider {}): {}",
                self.user.as_deref().unwrap_or("?"),
                self.provider.as_deref().unwrap_or("?"),
                self.reason
            ),
            (None, None) => f.write_str(&self.reason),
        }
    }
}

impl From<DataKeyFailure> for BadValue {
    fn from(f: DataKeyFailure) -> BadValue {
        BadValue {
            place: "data_keys",
            name: None,
            id: None,
            user: Some(f.user),
            provider: None,
            reason: format!(
                "data key {} (wrapped under {}): {}",
                f.key_id, f.kek_id, f.message
            ),
        }
    }
}

/// What the plan found by opening every value.
#[derive(Debug, Default)]
pub(crate) struct Planned {
    /// Values that do not open (the first 1000 per store).
    pub(crate) bad: Vec<BadValue>,
    /// How many do not open in all.
    pub(crate) bad_total: u64,
    /// How many open (plaintext included when it is to be sealed).
    pub(crate) opened: u64,
    /// Plaintext values, by name or row id.
    pub(crate) plaintext: Vec<BadValue>,
}

/// What is rotated.
pub(crate) struct Sources {
    pub(crate) secrets: Option<SecretsDir>,
    pub(crate) store: Option<CredentialStore>,
    pub(crate) database: String,
}

impl Sources {
    /// What `options` asks to rotate, opened under `keyring`. A secrets
    /// folder with neither file and an SQLite database that does not exist
    /// are skipped, with a note in `report`; `secrets.json` without
    /// `secrets.enc` is an error (migrate first). A dry run opens the
    /// database without changing it.
    pub(crate) async fn open(
        options: &RotateOptions,
        engine: &EngineConfig,
        keyring: &Keyring,
        auditor: &Auditor,
        report: &mut RotationReport,
    ) -> Result<Sources, Error> {
        let secrets = match &options.secrets_dir {
            None => None,
            Some(dir) => {
                let dir = SecretsDir::new(dir);
                if dir.encrypted_path().exists() {
                    Some(dir)
                } else if dir.plaintext_path().exists() {
                    return Err(Error::Usage(format!(
                        "{} does not exist but {} does: rotation rewraps secrets.enc, so migrate secrets.json first",
                        dir.encrypted_path().display(),
                        dir.plaintext_path().display()
                    )));
                } else {
                    report.notes.push(format!(
                        "no secrets file in {} (neither secrets.enc nor secrets.json): only the credential database is rotated",
                        dir.dir().display()
                    ));
                    None
                }
            }
        };
        let mut database = String::new();
        let store = match &options.database_url {
            None => None,
            Some(url) => {
                let parsed = DatabaseUrl::parse(url).map_err(|e| Error::Usage(e.to_string()))?;
                database = parsed.to_string();
                // Where the data keys are, and whether rows are upgraded to
                // the enveloped form, are the apps' own settings.
                let env = StoreConfig::from_env().map_err(|e| Error::Usage(e.to_string()))?;
                let mut config = StoreConfig::new(parsed.clone())
                    .with_max_connections(engine.workers.saturating_add(2))
                    .with_envelope(env.envelope);
                // The store's recorded mode decides, as for the apps.
                if let Some(setting) = env.envelope_setting {
                    config = config.with_envelope_setting(setting);
                }
                if let Some(keystore) = env.keystore_url {
                    config = config.with_keystore(keystore);
                }
                let protection = Protection::Encrypted(keyring.clone());
                if parsed.sqlite_file_missing() {
                    report.notes.push(format!(
                        "no database at {database} (the SQLite file does not exist): only the secrets file is rotated"
                    ));
                    None
                } else if options.dry_run {
                    // A dry run changes nothing, not even the schema: an
                    // SQLite file is opened read-only.
                    Some(
                        CredentialStore::open_read_only(&config, protection, auditor.clone())
                            .await?,
                    )
                } else {
                    Some(
                        CredentialStore::open(&config, protection, auditor.clone())
                            .await?
                            .0,
                    )
                }
            }
        };
        if secrets.is_none() && store.is_none() {
            return Err(Error::Usage(format!(
                "nothing to rotate: {}",
                report.notes.join("; ")
            )));
        }
        Ok(Sources {
            secrets,
            store,
            database,
        })
    }

    /// The same sources under `keyring`.
    pub(crate) fn with_keyring(&self, keyring: &Keyring) -> Sources {
        Sources {
            secrets: self.secrets.clone(),
            store: self
                .store
                .clone()
                .map(|s| s.with_protection(Protection::Encrypted(keyring.clone()))),
            database: self.database.clone(),
        }
    }

    /// Counts by structure.
    pub(crate) async fn inventory(&self) -> Result<Inventory, Error> {
        let mut inventory = Inventory::default();
        if let Some(dir) = &self.secrets {
            let status = dir.status(None)?;
            inventory.secrets = Some(SecretsCounts {
                file: dir.encrypted_path(),
                total: status.total_secrets,
                by_key: status.by_key,
                legacy: status.legacy_secrets,
                plaintext: status.plaintext_secrets,
                malformed: status.malformed_secrets,
                not_secret: status.other_values,
            });
        }
        if let Some(store) = &self.store {
            let status = store.status().await?;
            inventory.credentials = Some(CredentialCounts {
                database: self.database.clone(),
                total: status.total,
                by_key: status.by_key.clone(),
                legacy: status.legacy,
                plaintext: status.plaintext,
                malformed: status.malformed,
                enveloped: status.enveloped,
                data_keys: status.data_keys.total,
                data_keys_by_key: status.data_keys.by_kek.clone(),
            });
        }
        Ok(inventory)
    }

    /// Opens every value with `keyring` (nothing is written): the values
    /// that do not open, how many open, and the plaintext values. Plaintext
    /// counts as opening only with `seal_plaintext` (rewrap then seals it);
    /// either way each plaintext value is listed by name or row id.
    pub(crate) async fn check_open(
        &self,
        keyring: &Keyring,
        seal_plaintext: bool,
        config: &EngineConfig,
        bar: &ProgressBar,
    ) -> Result<Planned, Error> {
        let mut planned = Planned::default();
        if let Some(dir) = &self.secrets {
            let report = dir.verify(keyring)?;
            planned.opened += report.ok_count() as u64;
            for (name, class) in report.failures() {
                let value = BadValue {
                    place: "secrets_file",
                    name: Some(name.to_owned()),
                    id: None,
                    user: None,
                    provider: None,
                    reason: class.to_string(),
                };
                if class == OpenFailure::NotSealed {
                    planned.plaintext.push(value.clone());
                    if seal_plaintext {
                        planned.opened += 1;
                        continue;
                    }
                }
                planned.bad_total += 1;
                planned.bad.push(value);
            }
        }
        if let Some(store) = &self.store {
            // Under a throwaway primary every row is "not under the
            // primary", so a dry-run rewrap opens every row.
            let throwaway = Key::generate()?;
            let probe = store
                .clone()
                .with_protection(Protection::Encrypted(keyring.promote(throwaway)?));
            // Dry runs take no row locks, so workers need disjoint ranges.
            let config = EngineConfig {
                skip_locked: false,
                ..*config
            };
            let cursors = engine::plan_ranges(&probe, &config, &[]).await?;
            let (totals, _) = engine::run(&probe, &config, cursors, true, bar, None).await?;
            planned.opened += totals.done;
            planned.bad_total += totals.failed;
            for f in totals.failures {
                let value = BadValue {
                    place: "credentials",
                    name: None,
                    id: Some(f.id),
                    user: Some(f.user),
                    provider: Some(f.provider),
                    reason: f.message,
                };
                if f.reason == atom_crypto::OpenFailure::NotSealed {
                    planned.plaintext.push(value.clone());
                }
                planned.bad.push(value);
            }
            // Enveloped rows hang off their data keys: the master key opens
            // those, and every one must.
            let keys = store.check_data_keys().await?;
            planned.opened += keys.done;
            planned.bad_total += keys.failed;
            planned
                .bad
                .extend(keys.failures.into_iter().map(BadValue::from));
            if seal_plaintext {
                for row in store.status().await?.plaintext_rows {
                    planned.plaintext.push(BadValue {
                        place: "credentials",
                        name: None,
                        id: Some(row.id),
                        user: Some(row.user),
                        provider: Some(row.provider),
                        reason: "stored in plaintext; sealed by this rotation".to_owned(),
                    });
                }
            }
        }
        Ok(planned)
    }
}
