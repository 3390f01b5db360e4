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
        match self.auto_migration_due(protection, lookup)? {
            Ok(keyring) => {
                let done = AutoMigration::Migrated(self.migrate(keyring)?);
                tracing::warn!("{done}");
                Ok(done)
            }
            Err(skipped) => Ok(skipped),
        }
    }

    /// The keyring to migrate with when auto-migration should run now, or
    /// why it should not.
    pub(crate) fn auto_migration_due<'k>(
        &self,
        protection: &'k Protection,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<std::result::Result<&'k atom_crypto::Keyring, AutoMigration>> {
        // On unless set to 0 or false.
        let set = lookup(ENV_AUTO_MIGRATE).is_some_and(|v| !v.trim().is_empty());
        if set
            && !atom_io::flag_from_env(&lookup, ENV_AUTO_MIGRATE).map_err(|_| {
                Error::BadSetting {
                    variable: ENV_AUTO_MIGRATE,
                }
            })?
        {
            return Ok(Err(AutoMigration::Disabled));
        }
        let Some(keyring) = protection.keyring() else {
            return Ok(Err(AutoMigration::NoKey));
        };
        if !self.plaintext_path().exists() {
            return Ok(Err(AutoMigration::NoPlaintextFile));
        }
        if self.encrypted_path().exists() {
            return Ok(Err(AutoMigration::AlreadyMigrated));
        }
        Ok(Ok(keyring))
    }
}

impl std::fmt::Display for AutoMigration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AutoMigration::Disabled => write!(f, "auto-migration is off ({ENV_AUTO_MIGRATE}=0)"),
            AutoMigration::NoKey => {
                f.write_str("no key configured: secrets stay in plaintext (development mode)")
            }
            AutoMigration::NoPlaintextFile => f.write_str("no secrets.json to migrate"),
            AutoMigration::AlreadyMigrated => f.write_str("secrets.enc exists; nothing to migrate"),
            AutoMigration::Migrated(report) => write!(
                f,
                "migrated {} to {} at start-up, sealing {} values ({ENV_AUTO_MIGRATE}=0 turns this off); \
                 the plaintext secrets.json and secrets.json.backup remain: verify, then remove them with shred-plaintext",
                report.plaintext_file.display(),
                report.encrypted_file.display(),
                report.sealed_names.len()
            ),
        }
    }
}
