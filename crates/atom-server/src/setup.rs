//! Assembling the parts from configuration, shared by `atom-server` and the
//! `atom` CLI: the audit sinks and the credential store.

use std::path::{Path, PathBuf};

use atom_audit::{
    Actor, Auditor, FailureMode, FanOut, FileSink, Fingerprinter, TracingSink,
    audit_key_or_development,
};
use atom_credentials::{CredentialStore, DatabaseUrl, MigrationReport, StoreConfig};
use atom_crypto::Protection;

/// Whether development fallbacks (generated JWT secret and audit key files)
/// are allowed: not under production settings, i.e. when encryption is
/// required by `--require-encryption` or `ATOM_REQUIRE_ENCRYPTION=1`.
pub fn development_allowed(require_encryption_flag: bool) -> anyhow::Result<bool> {
    Ok(!(require_encryption_flag || atom_crypto::encryption_required_by_env()?))
}

/// Where the audit log goes unless `ATOM_AUDIT_LOG` or a flag says otherwise.
pub const DEFAULT_AUDIT_LOG: &str = "atom-audit.jsonl";
/// The audit log path variable.
pub const ENV_AUDIT_LOG: &str = "ATOM_AUDIT_LOG";

/// The auditor every binary uses: the seed's tracing line plus the
/// hash-chained file log at `log`, fail-closed unless `ATOM_AUDIT_FAIL_OPEN=1`.
/// The audit key comes from `ATOM_AUDIT_KEY(_FILE)`; with `development`
/// allowed and neither set, from a development key file next to the log
/// (`<log>.key`), created on first use and warned about on every start.
pub async fn open_auditor(
    log: &Path,
    actor: Actor,
    development: bool,
) -> anyhow::Result<(Auditor, Fingerprinter)> {
    let lookup = |name: &str| std::env::var(name).ok();
    let key = if development {
        let dev = development_key_path(log);
        let key = audit_key_or_development(lookup, &dev)?;
        if lookup(atom_audit::ENV_AUDIT_KEY).is_none()
            && lookup(atom_audit::ENV_AUDIT_KEY_FILE).is_none()
        {
            tracing::warn!(
                file = %dev.display(),
                "no ATOM_AUDIT_KEY set: the audit chain uses the development key file next to the log, so whoever can rewrite the log can also re-chain it. Set ATOM_AUDIT_KEY or ATOM_AUDIT_KEY_FILE (kept elsewhere) in production"
            );
        }
        key
    } else {
        atom_audit::audit_key_from(lookup)?
    };
    let file = FileSink::open(log.to_path_buf(), &key).await?;
    let mode = FailureMode::from_lookup(lookup)?;
    let sink = FanOut::new().with(TracingSink::new()).with(file);
    let auditor = Auditor::new(sink).with_failure_mode(mode).acting_as(actor);
    Ok((auditor, Fingerprinter::new(&key)))
}

/// `<log>.key`: the development audit key's file.
pub fn development_key_path(log: &Path) -> PathBuf {
    let mut name = log.as_os_str().to_owned();
    name.push(".key");
    PathBuf::from(name)
}

/// Opens the credential store at `database_url` (or `DATABASE_URL`, or the
/// SQLite default), running its migrations.
pub async fn open_store(
    database_url: Option<&str>,
    protection: Protection,
    auditor: Auditor,
) -> anyhow::Result<(CredentialStore, MigrationReport)> {
    let mut config = StoreConfig::from_env()?;
    if let Some(url) = database_url {
        config.database_url = DatabaseUrl::parse(url)?;
    }
    Ok(CredentialStore::open(&config, protection, auditor).await?)
}

/// Opens the credential store at `database_url` (or `DATABASE_URL`, or the
/// SQLite default) without changing the database: no migration, no new
/// SQLite file. For dry runs.
pub async fn open_existing_store(
    database_url: Option<&str>,
    protection: Protection,
    auditor: Auditor,
) -> anyhow::Result<CredentialStore> {
    let mut config = StoreConfig::from_env()?;
    if let Some(url) = database_url {
        config.database_url = DatabaseUrl::parse(url)?;
    }
    Ok(CredentialStore::open_existing(&config, protection, auditor).await?)
}
