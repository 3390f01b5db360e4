//! Global options and the parts commands are built from (assembled by
//! atom-app, shared with atom-server).

use anyhow::Context as _;
use atom_app::{DatabaseAccess, Settings};
use atom_audit::{Actor, Auditor, Fingerprinter};
use atom_credentials::CredentialStore;
use atom_crypto::{Keyring, Protection};
use atom_secrets_file::AuditedSecrets;

/// Options every command takes.
#[derive(clap::Args)]
pub(crate) struct GlobalArgs {
    #[command(flatten)]
    pub(crate) settings: Settings,
    /// Print JSON for scripts.
    #[arg(long, global = true)]
    pub(crate) json: bool,
}

impl GlobalArgs {
    pub(crate) fn protection(&self) -> anyhow::Result<Protection> {
        Ok(self.settings.protection()?)
    }

    /// The keyring, or an error naming `what` needs it.
    pub(crate) fn keyring(&self, what: &str) -> anyhow::Result<Keyring> {
        self.settings
            .keyring(what)
            .map_err(|e| anyhow::anyhow!("{e}. Make a key with: atom key generate"))
    }

    /// The auditor of a command with `access` to the credential database
    /// (where the audit trail may be kept).
    pub(crate) async fn auditor(
        &self,
        access: DatabaseAccess,
    ) -> anyhow::Result<(Auditor, Fingerprinter)> {
        match self.settings.auditor_for(actor(), access).await {
            Err(atom_app::Error::Credentials(
                e @ atom_credentials::CredentialError::NotMigrated { .. },
            )) => Err(anyhow::anyhow!(
                "the audit trail is kept in the credential database (--audit-sink database), and {e}. Create its tables with: atom db migrate"
            )),
            other => other.with_context(|| match self.settings.audit_sink {
                atom_app::AuditSinkKind::Database => format!(
                    "cannot open the audit trail in {}",
                    atom_credentials::redact_url(&self.settings.database_url())
                ),
                _ => format!(
                    "cannot open the audit log {}",
                    self.settings.audit_log().display()
                ),
            }),
        }
    }

    pub(crate) async fn secrets(&self, access: DatabaseAccess) -> anyhow::Result<AuditedSecrets> {
        let (auditor, fingerprints) = self.auditor(access).await?;
        Ok(AuditedSecrets::new(
            self.settings.secrets(),
            auditor,
            fingerprints,
        ))
    }

    /// The credential store, migrated (created if need be).
    pub(crate) async fn store(&self, protection: Protection) -> anyhow::Result<CredentialStore> {
        // A database setting that cannot work is refused before the audit
        // log is opened (which may create files).
        self.settings.store_config()?;
        let (auditor, _) = self.auditor(DatabaseAccess::Migrate).await?;
        let (store, report) = self.settings.store(protection, auditor).await?;
        tracing::info!(migrations = %report, "credential store ready");
        Ok(store)
    }

    /// Whether the credential database exists (an SQLite file that does
    /// not does not; a server database is assumed to).
    pub(crate) fn database_exists(&self) -> anyhow::Result<bool> {
        Ok(!self
            .settings
            .store_config()?
            .database_url
            .sqlite_file_missing())
    }

    /// The credential store, opened without changing its schema (no
    /// migration, no new SQLite file): for commands that read credentials.
    pub(crate) async fn existing_store(
        &self,
        protection: Protection,
    ) -> anyhow::Result<CredentialStore> {
        self.unchanged_store(protection, DatabaseAccess::Existing)
            .await
    }

    /// The credential store opened for reading only (an SQLite file
    /// read-only, nothing recorded in the database): for status commands
    /// and dry runs.
    pub(crate) async fn read_only_store(
        &self,
        protection: Protection,
    ) -> anyhow::Result<CredentialStore> {
        self.unchanged_store(protection, DatabaseAccess::ReadOnly)
            .await
    }

    async fn unchanged_store(
        &self,
        protection: Protection,
        access: DatabaseAccess,
    ) -> anyhow::Result<CredentialStore> {
        if !self.database_exists()? {
            anyhow::bail!(
                "the credential database {} does not exist yet; create it with: atom db migrate",
                atom_credentials::redact_url(&self.settings.database_url())
            );
        }
        let (auditor, _) = self.auditor(access).await?;
        let opened = match access {
            DatabaseAccess::ReadOnly => self.settings.read_only_store(protection, auditor).await,
            _ => self.settings.existing_store(protection, auditor).await,
        };
        match opened {
            Err(atom_app::Error::Credentials(
                e @ atom_credentials::CredentialError::NotMigrated { .. },
            )) => Err(anyhow::anyhow!(
                "{e}. Bring it up to date with: atom db migrate"
            )),
            other => Ok(other?),
        }
    }
}

/// Who runs the command, for audit events: the OS user.
pub(crate) fn actor() -> Actor {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".to_owned());
    Actor::new(format!("atom-cli:{user}"))
}

/// Prints `value` as JSON on one line.
pub(crate) fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string(value)?);
    Ok(())
}
