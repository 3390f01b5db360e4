//! [`Settings`]: the configuration both binaries read (flags, each with its
//! environment variable), and the parts assembled from it.

use std::path::{Path, PathBuf};

use atom_audit::{
    Actor, Auditor, ENV_AUDIT_KEY, ENV_AUDIT_KEY_FILE, FailureMode, FanOut, FileSink,
    FileSinkOptions, Fingerprinter, TracingSink, audit_key_from, audit_key_or_development,
};
use atom_credentials::{
    CredentialStore, DatabaseAuditSink, DatabaseUrl, MigrationReport, StoreConfig,
};
use atom_crypto::{Keyring, Protection, protection_from_env};
use atom_secrets_file::SecretsDir;

use crate::error::Error;

/// The folder of the secrets files.
pub const ENV_SECRETS_DIR: &str = "ATOM_SECRETS_DIR";
/// The hash-chained audit log.
pub const ENV_AUDIT_LOG: &str = "ATOM_AUDIT_LOG";
/// The development folder.
pub const ENV_DATA_DIR: &str = "ATOM_DATA_DIR";
/// Where the audit chain's last checkpoint is copied, away from the log.
pub const ENV_AUDIT_ANCHOR: &str = "ATOM_AUDIT_ANCHOR";
/// Where audit events are chained: `file` (the default) or `database`.
pub const ENV_AUDIT_SINK: &str = "ATOM_AUDIT_SINK";
/// The server's listen address.
pub const ENV_BIND: &str = "ATOM_BIND";
/// The rotation policy, in days.
pub const ENV_KEY_MAX_AGE_DAYS: &str = "ATOM_KEY_MAX_AGE_DAYS";
/// The development folder unless [`ENV_DATA_DIR`] says otherwise: the
/// default database, audit log and development secrets live there.
pub const DEFAULT_DATA_DIR: &str = ".atom";
/// The default database, in the development folder.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://.atom/atom.db";
/// The default audit log, in the development folder.
pub const DEFAULT_AUDIT_LOG: &str = ".atom/audit.jsonl";

/// Where audit events are chained ([`ENV_AUDIT_SINK`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
#[non_exhaustive]
pub enum AuditSinkKind {
    /// The hash-chained file log at `--audit-log`.
    #[default]
    File,
    /// The `audit_events` table of the credential database.
    Database,
}

/// What a command may do to the credential database (the audit table in
/// it included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DatabaseAccess {
    /// Create or upgrade the tables: the server at start-up, `atom db
    /// migrate`, the commands that write credentials.
    Migrate,
    /// Use the tables as they are (rows and audit events are written, the
    /// schema never): missing tables are refused with a hint.
    Existing,
    /// Read only: status commands, verify and dry runs. An SQLite file is
    /// opened read-only and stays byte for byte as it was; with the audit
    /// trail in the database, such a command's own event goes to the log
    /// line alone, since recording it would write the database.
    ReadOnly,
}

/// Where things are, for both binaries: every flag has an environment
/// variable, and the defaults keep whatever a development run creates in
/// one folder (`.atom`, mode 0700, which ignores itself in git).
#[derive(Debug, Clone, clap::Args)]
#[non_exhaustive]
pub struct Settings {
    /// The development folder: the default database, audit log and
    /// development secrets (created mode 0700, with a .gitignore of its own).
    #[arg(long, global = true, env = ENV_DATA_DIR, default_value = DEFAULT_DATA_DIR, value_name = "DIR")]
    pub data_dir: PathBuf,
    /// The credential database: sqlite://PATH, postgres://... or mysql://...
    /// [default: sqlite://<data dir>/atom.db]
    #[arg(
        long,
        global = true,
        env = "DATABASE_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub database_url: Option<String>,
    /// The folder of secrets.json / secrets.enc.
    #[arg(long, global = true, env = ENV_SECRETS_DIR, default_value = ".", value_name = "DIR")]
    pub secrets_dir: PathBuf,
    /// The hash-chained audit log [default: <data dir>/audit.jsonl].
    #[arg(long, global = true, env = ENV_AUDIT_LOG, value_name = "PATH")]
    pub audit_log: Option<PathBuf>,
    /// A copy of the audit log's last checkpoint kept away from the log, so
    /// that a log emptied or deleted with its sidecar fails verify
    /// [default: beside the audit key file, <key file>.anchor; with the key
    /// in ATOM_AUDIT_KEY, <data dir>/audit-<hash of the log's path>.anchor].
    #[arg(long, global = true, env = ENV_AUDIT_ANCHOR, value_name = "PATH")]
    pub audit_anchor: Option<PathBuf>,
    /// Where audit events are chained: `file` (the log at --audit-log, for
    /// one host) or `database` (the `audit_events` table of the credential
    /// database: one trail for every instance, and a credential write
    /// commits with its event).
    #[arg(
        long,
        global = true,
        env = ENV_AUDIT_SINK,
        value_enum,
        default_value_t = AuditSinkKind::File,
        value_name = "SINK"
    )]
    pub audit_sink: AuditSinkKind,
    /// Production settings: refuse to run without an encryption key, and
    /// refuse the development secrets (also ATOM_REQUIRE_ENCRYPTION=1).
    #[arg(long, global = true)]
    pub require_encryption: bool,
    /// The rotation policy: a primary key older than this many days is due
    /// (`atom keys rotate --if-due`, `atom doctor`, the server's metrics).
    #[arg(
        long,
        global = true,
        env = ENV_KEY_MAX_AGE_DAYS,
        default_value_t = atom_rotation::DEFAULT_MAX_AGE_DAYS,
        value_name = "DAYS",
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub key_max_age_days: u32,
    /// The key configuration once read (one KMS call, one plaintext
    /// warning per process).
    #[arg(skip)]
    keys: std::sync::OnceLock<Protection>,
    /// An embedding host's choice over `ATOM_ENVELOPE_ENCRYPTION`.
    #[arg(skip)]
    pub envelope: Option<bool>,
    /// An embedding host's choice over `ATOM_KEYSTORE_URL`.
    #[arg(skip)]
    pub keystore_url: Option<String>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            database_url: None,
            secrets_dir: PathBuf::from("."),
            audit_log: None,
            audit_anchor: None,
            audit_sink: AuditSinkKind::File,
            require_encryption: false,
            key_max_age_days: atom_rotation::DEFAULT_MAX_AGE_DAYS,
            keys: std::sync::OnceLock::new(),
            envelope: None,
            keystore_url: None,
        }
    }
}

/// [`Settings`] read from the environment alone, as the binaries read them
/// with no flag given.
#[derive(clap::Parser)]
#[command(name = "atom")]
struct FromEnvironment {
    #[command(flatten)]
    settings: Settings,
}

impl Settings {
    /// The settings of a host embedding the engine (the Python package):
    /// every variable the binaries read, with their defaults, and no flag.
    pub fn from_env() -> Result<Settings, Error> {
        use clap::Parser as _;
        FromEnvironment::try_parse_from(["atom"])
            .map(|parsed| parsed.settings)
            .map_err(|e| Error::Config(e.to_string()))
    }

    /// The same settings with every relative path made absolute against
    /// the current folder (the data folder, the audit log and its anchor,
    /// the secrets folder, SQLite files): for a host that keeps them while
    /// its process changes folder (a Python service), where the binaries
    /// resolve them once at start.
    pub fn anchored(mut self) -> Result<Settings, Error> {
        let absolute = |path: PathBuf| {
            std::path::absolute(&path).map_err(|e| {
                Error::Config(format!(
                    "cannot make {} absolute: {e}; start from a folder that exists",
                    path.display()
                ))
            })
        };
        self.audit_log = Some(absolute(self.audit_log())?);
        self.audit_anchor = Some(absolute(self.audit_anchor())?);
        self.data_dir = absolute(self.data_dir.clone())?;
        self.secrets_dir = absolute(self.secrets_dir.clone())?;
        self.database_url = Some(anchored_sqlite_url(&self.database_url())?);
        self.keystore_url = match self.keystore_url.take() {
            Some(url) => Some(anchored_sqlite_url(&url)?),
            None => match std::env::var(atom_credentials::ENV_KEYSTORE_URL) {
                Ok(url) if !url.trim().is_empty() => Some(anchored_sqlite_url(&url)?),
                _ => None,
            },
        };
        Ok(self)
    }

    /// The credential store as atom-server opens it: the key configuration,
    /// the auditor acting as `actor` (the trail's tables created if need
    /// be), and the store migrated. What an embedding host calls once per
    /// process.
    pub async fn open_store(&self, actor: Actor) -> Result<CredentialStore, Error> {
        let protection = self.protection()?;
        let (auditor, _) = self.auditor(actor).await?;
        let (store, report) = self.store(protection, auditor).await?;
        tracing::debug!(migrations = %report, "credential store ready");
        Ok(store)
    }

    /// The database URL: the flag or `DATABASE_URL`, else an SQLite file in
    /// the development folder.
    pub fn database_url(&self) -> String {
        match self.database_url.as_deref().map(str::trim) {
            Some(url) if !url.is_empty() => url.to_owned(),
            _ => format!("sqlite://{}", self.data_dir.join("atom.db").display()),
        }
    }

    /// The audit log: the flag or `ATOM_AUDIT_LOG`, else `audit.jsonl` in
    /// the development folder.
    pub fn audit_log(&self) -> PathBuf {
        self.audit_log
            .clone()
            .unwrap_or_else(|| self.data_dir.join("audit.jsonl"))
    }

    /// Where the audit chain's last checkpoint is copied, away from the
    /// log: the flag or `ATOM_AUDIT_ANCHOR`; else beside the audit key file
    /// (`ATOM_AUDIT_KEY_FILE`, or the development key file); else, with the
    /// key in `ATOM_AUDIT_KEY`, `audit-<log>.anchor` in the data folder,
    /// where `<log>` names the log's absolute path by a short hash (so two
    /// logs never share an anchor).
    pub fn audit_anchor(&self) -> PathBuf {
        if let Some(path) = &self.audit_anchor {
            return path.clone();
        }
        let beside = |key_file: PathBuf| {
            let mut name = key_file.into_os_string();
            name.push(".anchor");
            PathBuf::from(name)
        };
        match (
            std::env::var_os(ENV_AUDIT_KEY).filter(|v| !v.is_empty()),
            std::env::var_os(ENV_AUDIT_KEY_FILE).filter(|v| !v.is_empty()),
        ) {
            (_, Some(file)) => beside(PathBuf::from(file)),
            (Some(_), None) => {
                use sha2::Digest as _;
                let log =
                    std::path::absolute(self.audit_log()).unwrap_or_else(|_| self.audit_log());
                let digest = sha2::Sha256::digest(log.as_os_str().as_encoded_bytes());
                let short = atom_io::hex(&digest[..6]);
                self.data_dir.join(format!("audit-{short}.anchor"))
            }
            (None, None) => beside(development_key_path(&self.audit_log())),
        }
    }

    /// The audit key for reading the log: `ATOM_AUDIT_KEY(_FILE)`, else the
    /// development key file next to the log if there is one. Never creates
    /// a key.
    pub fn audit_key_for_reading(&self) -> Result<atom_crypto::Key, Error> {
        let lookup = |name: &str| std::env::var(name).ok();
        match audit_key_from(lookup) {
            Err(atom_audit::AuditError::NoAuditKey) => {
                let dev = development_key_path(&self.audit_log());
                if !dev.exists() {
                    return Err(atom_audit::AuditError::NoAuditKey.into());
                }
                let shown = dev.display().to_string();
                Ok(audit_key_from(|name| {
                    (name == ENV_AUDIT_KEY_FILE).then(|| shown.clone())
                })?)
            }
            other => Ok(other?),
        }
    }

    /// The secrets folder.
    pub fn secrets(&self) -> SecretsDir {
        SecretsDir::new(&self.secrets_dir)
    }

    /// Whether development fallbacks (generated JWT secret and audit key
    /// files) are allowed: not under production settings.
    pub fn development(&self) -> Result<bool, Error> {
        development_allowed(self.require_encryption)
    }

    /// The key configuration (`ENCRYPTION_KEY` and friends), checked
    /// against the audit key when one is configured: the audit chain needs
    /// a key of its own.
    ///
    /// The keys are read once per `Settings` (later calls reuse them), so a
    /// process decrypts KMS-held keys once and warns about plaintext mode
    /// once.
    pub fn protection(&self) -> Result<Protection, Error> {
        let lookup = |name: &str| std::env::var(name).ok();
        let protection = match self.keys.get() {
            Some(cached) => cached.clone(),
            None => {
                let read = match lookup(atom_kms::ENV_KMS_KEYS_FILE).filter(|f| !f.is_empty()) {
                    Some(file) => self.kms_protection(Path::new(&file))?,
                    None => protection_from_env(self.require_encryption)?,
                };
                self.keys.get_or_init(|| read).clone()
            }
        };
        if lookup(ENV_AUDIT_KEY).is_some() || lookup(ENV_AUDIT_KEY_FILE).is_some() {
            distinct_audit_key(&protection, &audit_key_from(lookup)?)?;
        }
        Ok(protection)
    }

    /// The keyring of the KMS-held keys in `file`, decrypted through KMS.
    /// Keys in the environment as well are refused: one key source at a
    /// time.
    fn kms_protection(&self, file: &Path) -> Result<Protection, Error> {
        let lookup = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        for name in [
            atom_crypto::ENV_KEY,
            atom_crypto::ENV_KEY_FILE,
            atom_crypto::ENV_PREVIOUS_KEYS,
            atom_crypto::ENV_PREVIOUS_KEYS_FILE,
        ] {
            if lookup(name).is_some() {
                return Err(Error::Config(format!(
                    "both {} and {name} are set; keys come from one source: unset {name}, or unset {} to use keys from the environment",
                    atom_kms::ENV_KMS_KEYS_FILE,
                    atom_kms::ENV_KMS_KEYS_FILE
                )));
            }
        }
        let kms = atom_kms::Kms::from_lookup(&lookup)?;
        let keys = atom_kms::block_on(kms.decrypt_keys_file(file))??;
        let protection = atom_crypto::protection_from_keys(keys, lookup)?;
        tracing::info!(
            file = %file.display(),
            context = %kms.context(),
            "master keys decrypted through KMS"
        );
        Ok(protection)
    }

    /// The keyring; an error naming `what` needs it when no key is set.
    pub fn keyring(&self, what: &str) -> Result<Keyring, Error> {
        match self.protection()? {
            Protection::Encrypted(ring) => Ok(ring),
            _ => Err(Error::Config(format!(
                "{what} needs an encryption key; ENCRYPTION_KEY (or ENCRYPTION_KEY_FILE) is not set"
            ))),
        }
    }

    /// Creates the development folder if `path` lies in it: mode 0700, with
    /// a `.gitignore` that ignores the whole folder, so nothing in it is
    /// committed by a `git add` from any folder.
    pub fn prepare_parent(&self, path: &Path) -> Result<(), Error> {
        let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) else {
            return Ok(());
        };
        if parent != self.data_dir.as_path() || parent.exists() {
            return Ok(());
        }
        let failed = |e: std::io::Error| {
            Error::Config(format!(
                "cannot create the development folder {}: {e}; set {ENV_DATA_DIR} to a writable folder",
                parent.display()
            ))
        };
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt as _;
            builder.mode(0o700);
        }
        builder.create(parent).map_err(failed)?;
        std::fs::write(
            parent.join(".gitignore"),
            "# Atom's development folder: a database, an audit log and development secrets. Never commit it.\n*\n",
        )
        .map_err(failed)
    }

    /// The auditor every binary uses: the seed's tracing line plus the
    /// hash-chained trail (the file log, or with `--audit-sink database`
    /// the credential database's `audit_events` table), fail-closed unless
    /// `ATOM_AUDIT_FAIL_OPEN=1`.
    /// The audit key comes from `ATOM_AUDIT_KEY(_FILE)`; in development
    /// with neither set, from a development key file next to the log
    /// (`<log>.key`), created on first use and warned about on every start.
    ///
    /// The key configuration is checked first, so a run refused for a bad
    /// key creates no file; an audit key equal to the encryption key is
    /// refused.
    pub async fn auditor(&self, actor: Actor) -> Result<(Auditor, Fingerprinter), Error> {
        self.auditor_for(actor, DatabaseAccess::Migrate).await
    }

    /// [`Settings::auditor`] for a command with `access` to the database:
    /// with the trail in the database, [`DatabaseAccess::Migrate`] creates
    /// its tables, [`DatabaseAccess::Existing`] refuses a database without
    /// them, and [`DatabaseAccess::ReadOnly`] writes nothing there (the
    /// command's events go to the log line). The file log is the same for
    /// every access.
    pub async fn auditor_for(
        &self,
        actor: Actor,
        access: DatabaseAccess,
    ) -> Result<(Auditor, Fingerprinter), Error> {
        let protection = self.protection()?;
        if self.audit_sink == AuditSinkKind::Database && access == DatabaseAccess::ReadOnly {
            let lookup = |name: &str| std::env::var(name).ok();
            let mode = FailureMode::from_lookup(lookup)?;
            tracing::info!(
                "a read-only command: its audit event goes to the log line only, so that nothing is written to the database"
            );
            let auditor = Auditor::new(FanOut::new().with(TracingSink::new()))
                .with_failure_mode(mode)
                .acting_as(actor);
            // Fingerprints are made by commands that reveal values, never
            // by read-only ones; this key is not the audit key.
            let fingerprints = Fingerprinter::new(&atom_crypto::Key::generate()?);
            return Ok((auditor, fingerprints));
        }
        let log = self.audit_log();
        let lookup = |name: &str| std::env::var(name).ok();
        let mode = FailureMode::from_lookup(lookup)?;
        let configured = lookup(ENV_AUDIT_KEY).is_some() || lookup(ENV_AUDIT_KEY_FILE).is_some();
        let key = if configured || !self.development()? {
            audit_key_from(lookup)?
        } else {
            let dev = development_key_path(&log);
            self.prepare_parent(&dev)?;
            // A key file made now is warned about where it is made; one
            // that was there is warned about here: one warning a start.
            let existed = dev.exists();
            let key = audit_key_or_development(lookup, &dev)?;
            if existed {
                tracing::warn!(
                    file = %dev.display(),
                    "no ATOM_AUDIT_KEY set: the audit chain uses the development key file next to the log, so whoever can rewrite the log can also re-chain it. Set ATOM_AUDIT_KEY or ATOM_AUDIT_KEY_FILE (kept elsewhere) in production"
                );
            }
            key
        };
        distinct_audit_key(&protection, &key)?;
        let sink = FanOut::new().with(TracingSink::new());
        let sink = match self.audit_sink {
            AuditSinkKind::Database => {
                let config = self.store_config()?;
                let table = match access {
                    DatabaseAccess::Migrate => {
                        self.prepare_database_folder()?;
                        DatabaseAuditSink::open(&config, &key).await?
                    }
                    _ => DatabaseAuditSink::open_existing(&config, &key).await?,
                };
                sink.with(table)
            }
            AuditSinkKind::File => {
                self.prepare_parent(&log)?;
                let anchor = self.audit_anchor();
                self.prepare_parent(&anchor)?;
                let options = FileSinkOptions::default().anchor(anchor);
                sink.with(FileSink::open_with(log, &key, options).await?)
            }
        };
        let auditor = Auditor::new(sink).with_failure_mode(mode).acting_as(actor);
        Ok((auditor, Fingerprinter::new(&key)))
    }

    /// The store settings: `DATABASE_URL` (or the flag, or the default)
    /// and the pool variables. An SQLite file in a folder that does not
    /// exist (other than the development folder, made on first use) is an
    /// error here, before anything else is opened.
    pub fn store_config(&self) -> Result<StoreConfig, Error> {
        let mut config = StoreConfig::from_env()?;
        config.database_url = DatabaseUrl::parse(&self.database_url())?;
        if let Some(on) = self.envelope {
            config = config.with_envelope_setting(if on {
                atom_credentials::EnvelopeSetting::On
            } else {
                atom_credentials::EnvelopeSetting::Off
            });
        }
        if let Some(url) = self
            .keystore_url
            .as_deref()
            .filter(|u| !u.trim().is_empty())
        {
            config.keystore_url = Some(
                DatabaseUrl::parse(url)
                    .map_err(|e| Error::Config(format!("the key store URL: {e}")))?,
            );
        }
        if let Some(folder) = config.database_url.sqlite_folder()
            && folder != self.data_dir
            && !folder.is_dir()
        {
            return Err(Error::Config(format!(
                "the folder of the SQLite database {} does not exist: {}; create it, or point DATABASE_URL elsewhere",
                config.database_url,
                folder.display()
            )));
        }
        Ok(config)
    }

    /// Opens the credential store, running its migrations (and creating
    /// the default SQLite file in the development folder).
    pub async fn store(
        &self,
        protection: Protection,
        auditor: Auditor,
    ) -> Result<(CredentialStore, MigrationReport), Error> {
        let config = self.store_config()?;
        self.prepare_database_folder()?;
        Ok(CredentialStore::open(&config, protection, auditor).await?)
    }

    /// Creates the development folder if the SQLite database is in it.
    fn prepare_database_folder(&self) -> Result<(), Error> {
        match self.database_url().strip_prefix("sqlite://") {
            Some(file) => self.prepare_parent(Path::new(file.split('?').next().unwrap_or(file))),
            None => Ok(()),
        }
    }

    /// Opens the credential store without changing its schema: no
    /// migration, no new SQLite file. For commands that read credentials
    /// (and record that they did).
    pub async fn existing_store(
        &self,
        protection: Protection,
        auditor: Auditor,
    ) -> Result<CredentialStore, Error> {
        Ok(CredentialStore::open_existing(&self.store_config()?, protection, auditor).await?)
    }

    /// Opens the credential store for reading only (an SQLite file
    /// read-only): status commands and dry runs, with an auditor of
    /// [`DatabaseAccess::ReadOnly`].
    pub async fn read_only_store(
        &self,
        protection: Protection,
        auditor: Auditor,
    ) -> Result<CredentialStore, Error> {
        Ok(CredentialStore::open_read_only(&self.store_config()?, protection, auditor).await?)
    }
}

/// An SQLite URL with a relative file made absolute; any other URL as it is.
fn anchored_sqlite_url(url: &str) -> Result<String, Error> {
    let trimmed = url.trim();
    let Some(rest) = trimmed
        .strip_prefix("sqlite://")
        .or_else(|| trimmed.strip_prefix("sqlite:"))
    else {
        return Ok(trimmed.to_owned());
    };
    let (file, query) = match rest.split_once('?') {
        Some((file, query)) => (file, Some(query)),
        None => (rest, None),
    };
    if file.is_empty() || file.starts_with('/') || file.contains(":memory:") {
        return Ok(trimmed.to_owned());
    }
    let absolute = std::path::absolute(file).map_err(|e| {
        Error::Config(format!(
            "cannot make the SQLite file {file} absolute: {e}; start from a folder that exists"
        ))
    })?;
    Ok(match query {
        Some(query) => format!("sqlite://{}?{query}", absolute.display()),
        None => format!("sqlite://{}", absolute.display()),
    })
}

/// Refuses an audit key that is one of the encryption keys.
fn distinct_audit_key(protection: &Protection, key: &atom_crypto::Key) -> Result<(), Error> {
    match protection.keyring() {
        Some(ring) if ring.contains(key.id()) => Err(Error::AuditKeyShared { key_id: key.id() }),
        _ => Ok(()),
    }
}

/// Whether development fallbacks (generated JWT secret and audit key files)
/// are allowed: not under production settings, i.e. when encryption is
/// required by `--require-encryption` or `ATOM_REQUIRE_ENCRYPTION=1`.
pub fn development_allowed(require_encryption_flag: bool) -> Result<bool, Error> {
    Ok(!(require_encryption_flag || atom_crypto::encryption_required_by_env()?))
}

/// `<log>.key`: the development audit key's file.
pub fn development_key_path(log: &Path) -> PathBuf {
    let mut name = log.as_os_str().to_owned();
    name.push(".key");
    PathBuf::from(name)
}
