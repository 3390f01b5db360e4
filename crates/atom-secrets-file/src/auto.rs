//! Auto-migration at start-up, as the seed does: with a key configured, a
//! `secrets.json` and no `secrets.enc`, migrate and say so. Turned off by
//! `ATOM_AUTO_MIGRATE=0` (or `false`).

use atom_crypto::Protection;

use crate::dir::SecretsDir;
use crate::error::{Error, Result};
use crate::migrate::MigrateReport;

/// `0`/`false` turns start-up auto-migration off; unset, empty, `1` or
/// `true` leaves it on.
pub const ENV_AUTO_MIGRATE: &str = "ATOM_AUTO_MIGRATE";

/// What [`SecretsDir::auto_migrate`] did.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AutoMigration {
    /// Turned off by [`ENV_AUTO_MIGRATE`].
    Disabled,
    /// No key is configured (plaintext development mode).
    NoKey,
    /// There is no `secrets.json`.
    NoPlaintextFile,
    /// `secrets.enc` exists already.
    AlreadyMigrated,
    /// Migrated now.
    Migrated(MigrateReport),
}

impl SecretsDir {
    /// The start-up step, reading [`ENV_AUTO_MIGRATE`] from the process
    /// environment.
    pub fn auto_migrate(&self, protection: &Protection) -> Result<AutoMigration> {
        self.auto_migrate_with(protection, |name| std::env::var(name).ok())
    }

    /// The start-up step with settings read through `lookup`.
    pub fn auto_migrate_with(
        &self,
        protection: &Protection,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<AutoMigration> {
        match lookup(ENV_AUTO_MIGRATE).as_deref().map(str::trim) {
            None | Some("") | Some("1") | Some("true") => {}
            Some("0") | Some("false") => return Ok(AutoMigration::Disabled),
            Some(_) => {
                return Err(Error::BadSetting {
                    variable: ENV_AUTO_MIGRATE,
                });
            }
        }
        let Some(keyring) = protection.keyring() else {
            return Ok(AutoMigration::NoKey);
        };
        if !self.plaintext_path().exists() {
            return Ok(AutoMigration::NoPlaintextFile);
        }
        if self.encrypted_path().exists() {
            return Ok(AutoMigration::AlreadyMigrated);
        }
        let report = self.migrate(keyring)?;
        tracing::warn!(
            from = %report.plaintext_file.display(),
            to = %report.encrypted_file.display(),
            sealed = report.sealed_names.len(),
            "migrated secrets.json to secrets.enc at start-up ({ENV_AUTO_MIGRATE}=0 turns this off); \
             the plaintext secrets.json and secrets.json.backup remain: verify, then remove them with shred-plaintext"
        );
        Ok(AutoMigration::Migrated(report))
    }
}
