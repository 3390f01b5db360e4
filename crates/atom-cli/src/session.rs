//! Global options and the parts commands are built from.

use std::path::PathBuf;

use anyhow::Context as _;
use atom_audit::{Actor, Auditor, Fingerprinter};
use atom_credentials::CredentialStore;
use atom_crypto::{Keyring, Protection, protection_from_env};
use atom_secrets_file::{AuditedSecrets, SecretsDir};
use atom_server::{
    DEFAULT_AUDIT_LOG, ENV_AUDIT_LOG, development_allowed, open_auditor, open_existing_store,
    open_store,
};

/// Options every command takes.
#[derive(clap::Args)]
pub(crate) struct GlobalArgs {
    /// Folder of secrets.json / secrets.enc.
    #[arg(long, global = true, env = "ATOM_SECRETS_DIR", default_value = ".")]
    pub(crate) secrets_dir: PathBuf,
    /// Credential database (SQLite, PostgreSQL or MariaDB/MySQL).
    #[arg(
        long,
        global = true,
        env = "DATABASE_URL",
        default_value = "sqlite://atom.db"
    )]
    pub(crate) database_url: String,
    /// The hash-chained audit log.
    #[arg(long, global = true, env = ENV_AUDIT_LOG, default_value = DEFAULT_AUDIT_LOG)]
    pub(crate) audit_log: PathBuf,
    /// Refuse to run without an encryption key (also ATOM_REQUIRE_ENCRYPTION=1).
    #[arg(long, global = true)]
    pub(crate) require_encryption: bool,
    /// Print JSON for scripts.
    #[arg(long, global = true)]
    pub(crate) json: bool,
}

impl GlobalArgs {
    pub(crate) fn protection(&self) -> anyhow::Result<Protection> {
        Ok(protection_from_env(self.require_encryption)?)
    }

    /// The keyring, or an error naming `what` needs it.
    pub(crate) fn keyring(&self, what: &str) -> anyhow::Result<Keyring> {
        match self.protection()? {
            Protection::Encrypted(ring) => Ok(ring),
            _ => anyhow::bail!(
                "{what} needs an encryption key; set ENCRYPTION_KEY to a key made with: atom key generate"
            ),
        }
    }

    pub(crate) async fn auditor(&self) -> anyhow::Result<(Auditor, Fingerprinter)> {
        let development = development_allowed(self.require_encryption)?;
        open_auditor(&self.audit_log, actor(), development)
            .await
            .with_context(|| format!("cannot open the audit log {}", self.audit_log.display()))
    }

    pub(crate) async fn secrets(&self) -> anyhow::Result<AuditedSecrets> {
        let (auditor, fingerprints) = self.auditor().await?;
        Ok(AuditedSecrets::new(
            SecretsDir::new(&self.secrets_dir),
            auditor,
            fingerprints,
        ))
    }

    pub(crate) async fn store(&self, protection: Protection) -> anyhow::Result<CredentialStore> {
        let (auditor, _) = self.auditor().await?;
        let (store, report) = open_store(Some(&self.database_url), protection, auditor).await?;
        tracing::info!(migrations = %report, "credential store ready");
        Ok(store)
    }

    /// The credential store, opened without changing the database (no
    /// migration, no new SQLite file): for dry runs.
    pub(crate) async fn existing_store(
        &self,
        protection: Protection,
    ) -> anyhow::Result<CredentialStore> {
        let (auditor, _) = self.auditor().await?;
        open_existing_store(Some(&self.database_url), protection, auditor).await
    }
}

/// Who runs the command, for audit events: the OS user.
fn actor() -> Actor {
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
