//! `atom doctor`: the seed's production checklist and its Troubleshooting
//! section, run against this configuration. Every check only reads: no
//! migration, no write, no file created (the database is opened read-only,
//! the audit trail is verified, never appended to; events go to the log
//! line only). The next step of each finding is a command, which the CLI
//! adds: library messages name no command.

use std::path::{Path, PathBuf};

use atom_audit::{Auditor, FanOut, TracingSink};
use atom_credentials::{CredentialStore, RewrapOptions};
use atom_crypto::{Classification, CryptoError, KeyId, Keyring, Protection};
use serde::Serialize;

use crate::setup::{AuditSinkKind, Settings, development_key_path};

/// One line of the checklist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CheckId {
    /// An encryption key is set, from a file or KMS.
    Key,
    /// `secrets.json` was migrated to `secrets.enc`.
    SecretsMigrated,
    /// No plaintext copy of the secrets is left beside `secrets.enc`.
    PlaintextCopies,
    /// Every stored value is sealed under a configured key.
    ValuesSealed,
    /// Key rotation is set up and the primary key is within the policy.
    Rotation,
    /// The audit key is configured and kept apart from the log.
    AuditKeyApart,
    /// The audit trail verifies.
    AuditTrail,
    /// The credential database is migrated.
    DatabaseMigrated,
    /// Credentials are sealed under per-user data keys.
    Envelope,
    /// atom-server's settings serve HTTPS.
    ServerTls,
    /// atom-server's settings accept an identity provider's tokens.
    IdentityProvider,
}

impl CheckId {
    /// The line's name in the checklist.
    pub fn title(self) -> &'static str {
        match self {
            CheckId::Key => "encryption key set (from a file or KMS)",
            CheckId::SecretsMigrated => "secrets migrated to secrets.enc",
            CheckId::PlaintextCopies => "plaintext copies deleted",
            CheckId::ValuesSealed => "every value sealed",
            CheckId::Rotation => "key rotation set up, key within its age",
            CheckId::AuditKeyApart => "audit key kept apart from the log",
            CheckId::AuditTrail => "audit trail verifies",
            CheckId::DatabaseMigrated => "credential database migrated",
            CheckId::Envelope => "per-user data keys (envelope encryption)",
            CheckId::ServerTls => "server: TLS",
            CheckId::IdentityProvider => "server: identity provider",
        }
    }
}

/// A line's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Verdict {
    /// As the checklist wants it.
    Pass,
    /// Works, but not as production should.
    Warn,
    /// Not as it must be.
    Fail,
}

impl Verdict {
    /// `pass`, `warn` or `fail`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Warn => "warn",
            Verdict::Fail => "fail",
        }
    }
}

/// A checked line.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Check {
    /// Which line.
    pub id: CheckId,
    /// Its outcome.
    pub verdict: Verdict,
    /// What was found (ids, counts, paths; never a key or a value).
    pub detail: String,
}

/// The seed's Troubleshooting symptoms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Symptom {
    /// "Encryption Not Working": secrets stored in plaintext.
    EncryptionNotWorking,
    /// "Decryption Failed": a value does not open.
    DecryptionFailed,
    /// "Migration Failed": secrets not migrated to the encrypted format.
    MigrationFailed,
}

impl Symptom {
    /// The seed's heading.
    pub fn title(self) -> &'static str {
        match self {
            Symptom::EncryptionNotWorking => "Encryption Not Working",
            Symptom::DecryptionFailed => "Decryption Failed",
            Symptom::MigrationFailed => "Migration Failed",
        }
    }
}

/// What a diagnosis found, for the CLI to add its next step to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "cause", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Cause {
    /// No key is configured in this environment.
    NoKey,
    /// Values stored before the key was set remain in plaintext.
    PlaintextValues,
    /// Sealed under a key that the key files keep as retired.
    RetiredKey {
        /// The key.
        key_id: KeyId,
    },
    /// Sealed under a key that no key file holds.
    UnknownKey {
        /// The key, when the value names it (legacy tokens do not).
        key_id: Option<KeyId>,
    },
    /// Does not authenticate under the key it names: altered, or moved
    /// from another row or name.
    NotAuthentic,
    /// Damaged ciphertext (near a token, not a well-formed one).
    Damaged,
    /// Another class of failure (expired, from the future, not text).
    Other,
    /// `secrets.json` does not parse, or cannot be read.
    UnreadablePlaintext,
    /// The folder cannot be written.
    ReadOnlyFolder,
    /// A migration would succeed now.
    WouldSucceed,
}

/// One finding of a Troubleshooting diagnosis.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Diagnosis {
    /// The symptom it explains.
    pub symptom: Symptom,
    /// What it concerns: a secret's name, `user/provider`, a file.
    pub subject: String,
    /// The cause, by kind.
    #[serde(flatten)]
    pub cause: Cause,
    /// The finding in words.
    pub detail: String,
}

/// The checklist and the diagnoses.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct DoctorReport {
    /// Every line of the checklist, in the seed's order.
    pub checks: Vec<Check>,
    /// What the Troubleshooting diagnoses found.
    pub diagnoses: Vec<Diagnosis>,
}

impl DoctorReport {
    /// The worst verdict: the documented exit code follows it (0 pass, 1
    /// warn, 2 fail).
    pub fn worst(&self) -> Verdict {
        self.checks
            .iter()
            .map(|c| c.verdict)
            .max()
            .unwrap_or(Verdict::Pass)
    }
}

/// Most value-level findings listed.
const MAX_FINDINGS: usize = 20;

/// Runs the checklist and the diagnoses for `settings`, reading only.
pub async fn doctor(settings: &Settings) -> DoctorReport {
    let mut report = DoctorReport {
        checks: Vec::new(),
        diagnoses: Vec::new(),
    };
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let protection = settings.protection();
    let keyring = protection.as_ref().ok().and_then(Protection::keyring);
    let key_files = crate::KeyFileArgs::default().key_files().ok().flatten();

    // 1. The key.
    let check = match (&protection, keyring) {
        (Err(e), _) => (Verdict::Fail, format!("the key configuration does not work: {e}")),
        (Ok(_), None) => (
            Verdict::Fail,
            "no encryption key: secrets and credentials are stored in plaintext (the seed's development mode)".to_owned(),
        ),
        (Ok(_), Some(ring)) => {
            if let Some(file) = env(atom_kms::ENV_KMS_KEYS_FILE) {
                (Verdict::Pass, format!("{} keys held by KMS ({file}); primary {}", ring.key_ids().count(), ring.primary_id()))
            } else if let Some(file) = env(atom_crypto::ENV_KEY_FILE) {
                match readable_by_others(Path::new(&file)) {
                    true => (Verdict::Warn, format!("primary key {} from {file}, which group or others can read", ring.primary_id())),
                    false => (Verdict::Pass, format!("primary key {} from {file}", ring.primary_id())),
                }
            } else {
                (Verdict::Warn, format!("primary key {} from the environment variable {}: key files are what rotation manages and what stays out of process listings", ring.primary_id(), atom_crypto::ENV_KEY))
            }
        }
    };
    push(&mut report, CheckId::Key, check);
    if keyring.is_none() {
        report.diagnoses.push(Diagnosis {
            symptom: Symptom::EncryptionNotWorking,
            subject: atom_crypto::ENV_KEY.to_owned(),
            cause: Cause::NoKey,
            detail: match &protection {
                Err(e) => format!("the key is set but does not work: {e}"),
                Ok(_) => format!(
                    "neither {}, {} nor {} is set in this environment: values are stored in plaintext",
                    atom_crypto::ENV_KEY,
                    atom_crypto::ENV_KEY_FILE,
                    atom_kms::ENV_KMS_KEYS_FILE
                ),
            },
        });
    }

    // 2-4. The secrets file.
    let secrets = settings.secrets();
    let enc = secrets.encrypted_path();
    let plain = secrets.plaintext_path();
    let backup = secrets.backup_path();
    push(
        &mut report,
        CheckId::SecretsMigrated,
        match (enc.exists(), plain.exists()) {
            (true, _) => (Verdict::Pass, format!("{} exists", enc.display())),
            (false, true) => (
                Verdict::Fail,
                format!("{} exists and {} does not", plain.display(), enc.display()),
            ),
            (false, false) => (
                Verdict::Pass,
                format!(
                    "no secrets file in {}: nothing to migrate",
                    secrets.dir().display()
                ),
            ),
        },
    );
    let copies: Vec<String> = [&plain, &backup]
        .into_iter()
        .filter(|p| p.exists())
        .map(|p| p.display().to_string())
        .collect();
    push(
        &mut report,
        CheckId::PlaintextCopies,
        match (enc.exists(), copies.is_empty()) {
            (_, true) => (Verdict::Pass, "no plaintext secrets file left".to_owned()),
            (true, false) => (
                Verdict::Fail,
                format!(
                    "plaintext copies remain beside the encrypted file: {}",
                    copies.join(", ")
                ),
            ),
            (false, false) => (
                Verdict::Fail,
                format!("the secrets are only in plaintext: {}", copies.join(", ")),
            ),
        },
    );
    if !enc.exists() && plain.exists() {
        migration_diagnosis(&mut report, &secrets, keyring);
    }

    let mut sealed = Sealed::default();
    match secrets.status(keyring) {
        Ok(status) => {
            sealed.plaintext += status.plaintext_secrets as u64;
            sealed.damaged += status.malformed_secrets as u64;
            sealed.legacy += status.legacy_secrets as u64;
            sealed.old += status.needs_rewrap.unwrap_or(0) as u64;
            if status.encrypted_file && status.plaintext_secrets > 0 && keyring.is_some() {
                report.diagnoses.push(Diagnosis {
                    symptom: Symptom::EncryptionNotWorking,
                    subject: enc.display().to_string(),
                    cause: Cause::PlaintextValues,
                    detail: format!(
                        "{} values of {} are in plaintext (stored while no key was set)",
                        status.plaintext_secrets,
                        enc.display()
                    ),
                });
            }
        }
        Err(e) => sealed
            .errors
            .push(format!("{}: {e}", secrets.dir().display())),
    }
    if let (Some(ring), true) = (keyring, enc.exists()) {
        secrets_decryption(&mut report, &mut sealed, &secrets, ring, key_files.as_ref());
    }

    // 8, 9 and the credential rows of 4: the database, opened read-only.
    let database = database_checks(
        settings,
        &protection,
        keyring,
        key_files.as_ref(),
        &mut sealed,
        &mut report,
    )
    .await;

    push(&mut report, CheckId::ValuesSealed, sealed.verdict(keyring));

    // 5. Rotation.
    push(
        &mut report,
        CheckId::Rotation,
        rotation_check(settings, keyring, key_files.as_ref()),
    );

    // 6, 7. The audit trail.
    let (apart, trail) = audit_checks(settings).await;
    push(&mut report, CheckId::AuditKeyApart, apart);
    push(&mut report, CheckId::AuditTrail, trail);

    let (migrated, envelope) = database;
    push(&mut report, CheckId::DatabaseMigrated, migrated);
    push(&mut report, CheckId::Envelope, envelope);

    // 10. The server's settings.
    push(
        &mut report,
        CheckId::ServerTls,
        match (env("ATOM_TLS_CERT"), env("ATOM_TLS_KEY")) {
            (Some(cert), Some(key)) if Path::new(&cert).exists() && Path::new(&key).exists() => {
                (Verdict::Pass, format!("HTTPS with {cert}"))
            }
            (Some(cert), Some(key)) => (Verdict::Fail, format!("ATOM_TLS_CERT {cert} or ATOM_TLS_KEY {key} does not exist")),
            _ => (Verdict::Warn, "atom-server would serve plain HTTP: set ATOM_TLS_CERT and ATOM_TLS_KEY, or terminate TLS in front of it".to_owned()),
        },
    );
    push(
        &mut report,
        CheckId::IdentityProvider,
        match (
            env("ATOM_JWKS_URL").or_else(|| env("ATOM_JWKS_FILE")),
            env("ATOM_JWT_ISSUER"),
            env("ATOM_JWT_AUDIENCE"),
        ) {
            (Some(jwks), Some(_), Some(_)) => (Verdict::Pass, format!("tokens of the identity provider at {jwks}")),
            (Some(jwks), _, _) => (Verdict::Fail, format!("{jwks} is set without ATOM_JWT_ISSUER and ATOM_JWT_AUDIENCE: atom-server does not start")),
            (None, ..) if env("ATOM_JWT_SECRET").is_some() || env("ATOM_JWT_SECRET_FILE").is_some() => {
                (Verdict::Warn, "HS256 tokens signed with a shared secret: fine for one service, an identity provider for users".to_owned())
            }
            (None, ..) => (Verdict::Warn, "no identity provider and no ATOM_JWT_SECRET: atom-server would sign with a development secret file".to_owned()),
        },
    );
    report.checks.sort_by_key(|c| c.id as u8);
    report
}

fn push(report: &mut DoctorReport, id: CheckId, (verdict, detail): (Verdict, String)) {
    report.checks.push(Check {
        id,
        verdict,
        detail,
    });
}

/// What line 4 (every value sealed) saw, over the secrets file and the
/// credential rows.
#[derive(Default)]
struct Sealed {
    plaintext: u64,
    damaged: u64,
    failing: u64,
    legacy: u64,
    old: u64,
    errors: Vec<String>,
}

impl Sealed {
    fn verdict(&self, keyring: Option<&Keyring>) -> (Verdict, String) {
        if !self.errors.is_empty() {
            return (
                Verdict::Fail,
                format!("cannot be checked: {}", self.errors.join("; ")),
            );
        }
        if self.plaintext + self.damaged + self.failing > 0 {
            return (
                Verdict::Fail,
                format!(
                    "{} in plaintext, {} damaged, {} that do not open (see the diagnoses)",
                    self.plaintext, self.damaged, self.failing
                ),
            );
        }
        if keyring.is_none() {
            return (
                Verdict::Warn,
                "not checked: there is no key to open the values with".to_owned(),
            );
        }
        if self.old > 0 {
            return (
                Verdict::Warn,
                format!(
                    "every value opens; {} are under an older key or in the legacy form ({} legacy)",
                    self.old, self.legacy
                ),
            );
        }
        (
            Verdict::Pass,
            "every value is sealed under the primary key".to_owned(),
        )
    }
}

/// "Decryption Failed" for the secrets file: each value that does not
/// open, and why (which key it names, whether a retired key opens it,
/// damaged, plaintext).
fn secrets_decryption(
    report: &mut DoctorReport,
    sealed: &mut Sealed,
    secrets: &atom_secrets_file::SecretsDir,
    ring: &Keyring,
    key_files: Option<&atom_rotation::KeyFiles>,
) {
    let verified = match secrets.verify(ring) {
        Ok(v) => v,
        Err(e) => {
            sealed.errors.push(e.to_string());
            return;
        }
    };
    let failing: Vec<(String, atom_crypto::OpenFailure)> = verified
        .failures()
        .map(|(name, reason)| (name.to_owned(), reason))
        .collect();
    sealed.failing += failing
        .iter()
        .filter(|(_, r)| {
            !matches!(
                r,
                atom_crypto::OpenFailure::NotSealed | atom_crypto::OpenFailure::Malformed
            )
        })
        .count() as u64;
    let classes = secrets.classify_values().unwrap_or_default();
    let retired = key_files.and_then(|f| atom_rotation::retired_keyring(f).ok().flatten());
    for (name, reason) in failing.iter().take(MAX_FINDINGS) {
        let class = classes.iter().find(|(n, _)| n == name).map(|(_, c)| c);
        let (cause, detail) = explain(class, *reason, ring, retired.as_ref(), &|retired| {
            secrets
                .verify(retired)
                .map(|v| v.failures().all(|(n, _)| n != name))
                .unwrap_or(false)
        });
        report.diagnoses.push(Diagnosis {
            symptom: Symptom::DecryptionFailed,
            subject: format!("secret {name}"),
            cause,
            detail,
        });
    }
}

/// Why a value of structure `class` does not open with `ring`.
fn explain(
    class: Option<&Result<Classification, CryptoError>>,
    reason: atom_crypto::OpenFailure,
    ring: &Keyring,
    retired: Option<&Keyring>,
    opens_with: &dyn Fn(&Keyring) -> bool,
) -> (Cause, String) {
    use atom_crypto::OpenFailure as F;
    match class {
        Some(Ok(Classification::Plaintext)) | None if reason == F::NotSealed => (
            Cause::PlaintextValues,
            "it is stored in plaintext (written while no key was set)".to_owned(),
        ),
        Some(Err(e)) => (Cause::Damaged, format!("it is damaged ciphertext: {e}")),
        Some(Ok(Classification::Sealed(id))) if !ring.contains(*id) => {
            if retired.is_some_and(|r| r.contains(*id)) {
                (Cause::RetiredKey { key_id: *id }, format!("it is sealed under key {id}, which is retired (kept, loaded by no app)"))
            } else {
                (Cause::UnknownKey { key_id: Some(*id) }, format!("it is sealed under key {id}, which no key file holds: another deployment's key, or one destroyed"))
            }
        }
        Some(Ok(Classification::Legacy)) if retired.is_some_and(opens_with) => (
            Cause::UnknownKey { key_id: None },
            "a legacy token that a retired key opens, and no configured key does".to_owned(),
        ),
        Some(Ok(Classification::Legacy)) => (
            Cause::UnknownKey { key_id: None },
            "a legacy token that no configured or retired key opens (made under another ENCRYPTION_KEY)".to_owned(),
        ),
        _ if reason == F::NotAuthentic => (
            Cause::NotAuthentic,
            "it does not authenticate under the key it names: altered, or moved from another name or row".to_owned(),
        ),
        _ => (Cause::Other, format!("it does not open ({})", reason.as_str())),
    }
}

/// "Migration Failed": why a migration of `secrets.json` would fail now,
/// or that it would succeed.
fn migration_diagnosis(
    report: &mut DoctorReport,
    secrets: &atom_secrets_file::SecretsDir,
    keyring: Option<&Keyring>,
) {
    let plain = secrets.plaintext_path();
    let mut found = |cause: Cause, detail: String| {
        report.diagnoses.push(Diagnosis {
            symptom: Symptom::MigrationFailed,
            subject: plain.display().to_string(),
            cause,
            detail,
        });
    };
    let mut blocked = false;
    if keyring.is_none() {
        found(
            Cause::NoKey,
            "no encryption key is set, so nothing can be sealed".to_owned(),
        );
        blocked = true;
    }
    if let Err(e) = secrets.plaintext_values() {
        found(Cause::UnreadablePlaintext, e.to_string());
        blocked = true;
    }
    if std::fs::metadata(secrets.dir()).is_ok_and(|m| m.permissions().readonly()) {
        found(
            Cause::ReadOnlyFolder,
            format!(
                "{} is read-only: secrets.enc and the backup cannot be written",
                secrets.dir().display()
            ),
        );
        blocked = true;
    }
    if !blocked {
        found(
            Cause::WouldSucceed,
            "secrets.json parses and a key is set: a migration would succeed".to_owned(),
        );
    }
}

/// Lines 8 and 9 (database migrated, envelopes) and the credential rows of
/// line 4, from the database opened read-only.
async fn database_checks(
    settings: &Settings,
    protection: &Result<Protection, crate::Error>,
    keyring: Option<&Keyring>,
    key_files: Option<&atom_rotation::KeyFiles>,
    sealed: &mut Sealed,
    report: &mut DoctorReport,
) -> ((Verdict, String), (Verdict, String)) {
    let config = match settings.store_config() {
        Ok(config) => config,
        Err(e) => {
            let why = (
                Verdict::Fail,
                format!("the database setting does not work: {e}"),
            );
            return (why.clone(), why);
        }
    };
    let state = match atom_credentials::schema_state(&config).await {
        Ok(state) => state,
        Err(e) => {
            let why = (Verdict::Fail, format!("{}: {e}", config.database_url));
            return (why.clone(), why);
        }
    };
    if !state.exists {
        return (
            (
                Verdict::Warn,
                format!("{} does not exist yet (nothing is stored)", state.database),
            ),
            (
                Verdict::Pass,
                "a new store starts with per-user data keys".to_owned(),
            ),
        );
    }
    if !state.pending.is_empty() {
        return (
            (
                Verdict::Fail,
                format!(
                    "{}: {} migration(s) pending ({})",
                    state.database,
                    state.pending.len(),
                    state.pending.join(", ")
                ),
            ),
            (
                Verdict::Warn,
                "not known until the database is migrated".to_owned(),
            ),
        );
    }
    let migrated = (
        Verdict::Pass,
        format!(
            "{}: {} migrations applied",
            state.database,
            state.applied.len()
        ),
    );
    let Some(protection) = protection.as_ref().ok().cloned() else {
        return (
            migrated,
            (
                Verdict::Warn,
                "not known without a working key configuration".to_owned(),
            ),
        );
    };
    // Events go to the log line only: the doctor writes nothing.
    let auditor = Auditor::new(FanOut::new().with(TracingSink::new()));
    let store = match CredentialStore::open_read_only(&config, protection, auditor).await {
        Ok(store) => store,
        Err(e) => return (migrated, (Verdict::Fail, e.to_string())),
    };
    let envelope = match (store.envelope(), store.envelope_notice()) {
        (true, _) => (
            Verdict::Pass,
            "new credentials are sealed under their user's data key".to_owned(),
        ),
        (false, Some(notice)) => (Verdict::Warn, notice.to_owned()),
        (false, None) => (Verdict::Warn, "envelope encryption is off".to_owned()),
    };
    match store.status().await {
        Ok(status) => {
            sealed.plaintext += status.plaintext;
            sealed.damaged += status.malformed;
            sealed.legacy += status.legacy;
            sealed.old += status.needs_rewrap;
            let retired = key_files.and_then(|f| atom_rotation::retired_keyring(f).ok().flatten());
            for count in status
                .by_key
                .iter()
                .filter(|k| k.role.is_none())
                .take(MAX_FINDINGS)
            {
                let id = count.key_id;
                let retired_holds = retired.as_ref().is_some_and(|r| r.contains(id));
                report.diagnoses.push(Diagnosis {
                    symptom: Symptom::DecryptionFailed,
                    subject: format!("{} credential row(s)", count.count),
                    cause: if retired_holds { Cause::RetiredKey { key_id: id } } else { Cause::UnknownKey { key_id: Some(id) } },
                    detail: if retired_holds {
                        format!("{} credential rows are sealed under key {id}, which is retired (kept, loaded by no app)", count.count)
                    } else {
                        format!("{} credential rows are sealed under key {id}, which no key file holds", count.count)
                    },
                });
                sealed.failing += count.count;
            }
        }
        Err(e) => sealed.errors.push(e.to_string()),
    }
    if keyring.is_some() {
        // Every row not under the primary key is opened (nothing written).
        let mut options = RewrapOptions::new();
        options.dry_run = true;
        match store.rewrap(&options, |_| {}).await {
            Ok(progress) => {
                for failure in progress.failures.iter().take(MAX_FINDINGS) {
                    if matches!(
                        failure.reason,
                        atom_crypto::OpenFailure::UnknownKey
                            | atom_crypto::OpenFailure::NotSealed
                            | atom_crypto::OpenFailure::Malformed
                    ) {
                        // Counted above by key id, plaintext and damaged.
                        continue;
                    }
                    sealed.failing += 1;
                    report.diagnoses.push(Diagnosis {
                        symptom: Symptom::DecryptionFailed,
                        subject: format!(
                            "credential {}/{} (row {})",
                            failure.user, failure.provider, failure.id
                        ),
                        cause: match failure.reason {
                            atom_crypto::OpenFailure::NotAuthentic => Cause::NotAuthentic,
                            _ => Cause::Other,
                        },
                        detail: failure.message.clone(),
                    });
                }
            }
            Err(e) => sealed.errors.push(e.to_string()),
        }
    }
    let _ = store.close().await;
    (migrated, envelope)
}

/// Line 5: key files (rotation manages files), the primary key's age
/// against the policy, a rotation left half-way.
fn rotation_check(
    settings: &Settings,
    keyring: Option<&Keyring>,
    key_files: Option<&atom_rotation::KeyFiles>,
) -> (Verdict, String) {
    let Some(ring) = keyring else {
        return (Verdict::Fail, "no key to rotate".to_owned());
    };
    let Some(files) = key_files else {
        return (
            Verdict::Warn,
            format!(
                "the keys are not in key files ({} / {}), which is what `keys rotate` manages",
                atom_crypto::ENV_KEY_FILE,
                atom_crypto::ENV_PREVIOUS_KEYS_FILE
            ),
        );
    };
    let dir = files.dir();
    if let Ok(Some(state)) =
        atom_rotation::RotationState::load(&atom_rotation::RotationState::path_in(&dir))
        && state.phase != atom_rotation::Phase::Finished
    {
        return (
            Verdict::Warn,
            format!(
                "a rotation from {} to {} stopped at phase {}",
                state.old_key_id,
                state.new_key_id,
                state.phase.as_str()
            ),
        );
    }
    let policy = settings.key_max_age_days;
    let ages = match atom_rotation::KeyAges::load(&atom_rotation::KeyAges::path_in(&dir)) {
        Ok(ages) => ages,
        Err(e) => return (Verdict::Warn, e.to_string()),
    };
    let primary = ring.primary_id();
    match ages.age(primary, chrono::Utc::now()) {
        None => (
            Verdict::Warn,
            format!(
                "key {primary} is of unknown age (introduced before ages were recorded); the policy is {policy} days"
            ),
        ),
        Some(age) if atom_rotation::is_due(Some(age), policy) => (
            Verdict::Warn,
            format!(
                "key {primary} is {} days old, past the policy of {policy} days",
                age.num_days()
            ),
        ),
        Some(age) => (
            Verdict::Pass,
            format!(
                "key {primary} is {} days old, within the policy of {policy} days",
                age.num_days()
            ),
        ),
    }
}

/// Lines 6 and 7: the audit key kept apart from the log, the trail
/// verifying (the file log with its anchor, or the table).
async fn audit_checks(settings: &Settings) -> ((Verdict, String), (Verdict, String)) {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let log = settings.audit_log();
    let dev_key = development_key_path(&log);
    let apart = match (
        env(atom_audit::ENV_AUDIT_KEY),
        env(atom_audit::ENV_AUDIT_KEY_FILE),
    ) {
        (Some(_), _) => (
            Verdict::Pass,
            format!("the audit key comes from {}", atom_audit::ENV_AUDIT_KEY),
        ),
        (None, Some(file)) if same_folder(Path::new(&file), &log) => (
            Verdict::Warn,
            format!(
                "the audit key file {file} is in the folder of the log {}: whoever can rewrite the log can re-chain it",
                log.display()
            ),
        ),
        (None, Some(file)) => (
            Verdict::Pass,
            format!("the audit key file {file} is kept apart from the log"),
        ),
        (None, None) if dev_key.exists() => (
            Verdict::Fail,
            format!(
                "the audit chain uses the development key file {} next to the log",
                dev_key.display()
            ),
        ),
        (None, None) => (Verdict::Warn, "no audit key is configured".to_owned()),
    };
    let key = match settings.audit_key_for_reading() {
        Ok(key) => key,
        Err(e) => {
            return (
                apart,
                (Verdict::Warn, format!("the trail cannot be checked: {e}")),
            );
        }
    };
    let trail = match settings.audit_sink {
        AuditSinkKind::Database => match settings.store_config() {
            Ok(config) => match atom_credentials::verify_audit_table(&config, &key).await {
                Ok(report) if report.is_intact() => (
                    Verdict::Pass,
                    format!("the table in {}: {report}", config.database_url),
                ),
                Ok(report) => (
                    Verdict::Fail,
                    format!("the table in {}: {report}", config.database_url),
                ),
                Err(e) => (Verdict::Fail, e.to_string()),
            },
            Err(e) => (Verdict::Fail, e.to_string()),
        },
        _ => {
            if !log.exists() && !atom_audit::checkpoint_path(&log).exists() {
                (
                    Verdict::Warn,
                    format!("{} does not exist yet", log.display()),
                )
            } else {
                match atom_audit::verify_anchored(&log, &key, Some(&settings.audit_anchor())) {
                    Ok(report) if report.is_intact() => {
                        (Verdict::Pass, format!("{}: {report}", log.display()))
                    }
                    Ok(report) => (Verdict::Fail, format!("{}: {report}", log.display())),
                    Err(e) => (Verdict::Fail, e.to_string()),
                }
            }
        }
    };
    (apart, trail)
}

fn same_folder(a: &Path, b: &Path) -> bool {
    let folder = |p: &Path| -> PathBuf {
        std::path::absolute(atom_io::parent_dir(p)).unwrap_or_else(|_| atom_io::parent_dir(p))
    };
    folder(a) == folder(b)
}

#[cfg(unix)]
fn readable_by_others(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 != 0)
}

#[cfg(not(unix))]
fn readable_by_others(_: &Path) -> bool {
    false
}
