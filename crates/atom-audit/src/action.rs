//! What happened: the [`Action`] of an event, one variant per kind of
//! security event, with its wire name and the seed's one-line form.

use std::fmt;

use atom_crypto::{KeyId, OpenFailure};
use serde::{Deserialize, Serialize};

use crate::event::{Outcome, Subject};
use crate::fingerprint::Fingerprint;

/// What happened. Every variant names its subject by identifiers; where a
/// value must be referred to, it is a keyed [`Fingerprint`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Action {
    /// A credential was stored (created or replaced).
    CredentialStored {
        /// The user id.
        user: String,
        /// The provider.
        provider: String,
        /// The key that sealed it; `None` in plaintext development mode.
        #[serde(default)]
        key_id: Option<KeyId>,
    },
    /// A credential was read and decrypted (the seed's `credential_accessed`).
    CredentialAccessed {
        /// The user id.
        user: String,
        /// The provider.
        provider: String,
        /// The key that had sealed it; `None` for a legacy or plaintext value.
        #[serde(default)]
        key_id: Option<KeyId>,
    },
    /// A credential was deleted.
    CredentialDeleted {
        /// The user id.
        user: String,
        /// The provider.
        provider: String,
    },
    /// A user's credentials were listed: providers, key ids and times,
    /// never tokens.
    CredentialsListed {
        /// The user id.
        user: String,
        /// How many credentials were listed.
        count: u64,
    },
    /// The credential store's counts (total, per key, legacy, plaintext)
    /// were read. No token is read or decrypted.
    CredentialStatusRead {
        /// Rows counted.
        total: u64,
        /// Rows not under the primary key.
        needs_rewrap: u64,
    },
    /// A start-up migration adopted an existing `user_credentials` table
    /// (e.g. the Python original's) and moved rows aside.
    CredentialTableAdopted {
        /// Rows kept in `user_credentials`.
        rows_kept: u64,
        /// Older rows of a duplicated (user, provider) moved to the archive.
        duplicates_archived: u64,
        /// Rows missing a user id, provider or token moved to the archive.
        incomplete_archived: u64,
    },
    /// All credentials of a user were erased (right to erasure).
    UserCredentialsErased {
        /// The user id.
        user: String,
        /// How many credentials were erased.
        count: u64,
    },
    /// A user's data key was made and stored wrapped under a master key
    /// (envelope encryption).
    DataKeyCreated {
        /// The user id.
        user: String,
        /// The data key's id.
        key_id: KeyId,
        /// The master key that wraps it.
        kek_id: KeyId,
    },
    /// A user's data key was unwrapped for the first time in this process
    /// (later uses come from the process's cache and are not recorded).
    DataKeyUnwrapped {
        /// The user id.
        user: String,
        /// The data key's id.
        key_id: KeyId,
        /// The master key that wrapped it.
        kek_id: KeyId,
    },
    /// A user's data key was replaced: the user's credentials were re-sealed
    /// under the new key and the old one destroyed.
    DataKeyRotated {
        /// The user id.
        user: String,
        /// The new data key.
        to: KeyId,
        /// Credentials re-sealed.
        resealed: u64,
    },
    /// A user's data keys were destroyed (crypto-shredding): every copy of
    /// that user's enveloped credentials, backups included, no longer opens.
    DataKeyDestroyed {
        /// The user id.
        user: String,
        /// How many data keys were destroyed.
        count: u64,
    },
    /// A secrets file was migrated (plaintext or legacy values sealed).
    SecretsMigrated {
        /// The file's path as configured.
        file: String,
        /// How many values were sealed.
        values: u64,
        /// The key that sealed them.
        key_id: KeyId,
    },
    /// A secrets file was rolled back to its backup.
    SecretsRolledBack {
        /// The file's path as configured.
        file: String,
        /// The backup it was restored from.
        backup: String,
    },
    /// Every value of a secrets file was checked to open.
    SecretsVerified {
        /// The file's path as configured.
        file: String,
        /// How many values were checked.
        values: u64,
        /// How many did not open.
        failures: u64,
    },
    /// A secret was read and decrypted.
    SecretRead {
        /// The entry's name.
        name: String,
        /// The key that had sealed it; `None` for a legacy or plaintext value.
        #[serde(default)]
        key_id: Option<KeyId>,
    },
    /// A secret was set or changed.
    SecretChanged {
        /// The entry's name.
        name: String,
        /// Keyed fingerprint of the new value, so that two events can be
        /// compared for "same value" without revealing it.
        fingerprint: Fingerprint,
        /// The key that sealed it; `None` in plaintext development mode.
        #[serde(default)]
        key_id: Option<KeyId>,
    },
    /// A secret was removed from a secrets file.
    SecretRemoved {
        /// The entry's name.
        name: String,
    },
    /// A plaintext secrets file (or its backup) was removed after the
    /// encrypted file verified.
    PlaintextShredded {
        /// The removed file's path as configured.
        file: String,
    },
    /// A key rotation began.
    KeyRotationStarted {
        /// What is rotated, e.g. `credentials` or a secrets file.
        scope: String,
        /// The key values are moved to.
        to: KeyId,
        /// How many values are to be rewrapped, if known.
        #[serde(default)]
        total: Option<u64>,
    },
    /// A key rotation made progress (one batch done).
    KeyRotationProgressed {
        /// What is rotated.
        scope: String,
        /// The key values are moved to.
        to: KeyId,
        /// Values rewrapped so far.
        done: u64,
        /// How many values are to be rewrapped, if known.
        #[serde(default)]
        total: Option<u64>,
    },
    /// A key rotation ended.
    KeyRotationFinished {
        /// What was rotated.
        scope: String,
        /// The key values were moved to.
        to: KeyId,
        /// Values rewrapped.
        rewrapped: u64,
        /// Values that could not be rewrapped.
        failed: u64,
    },
    /// A stored value did not decrypt.
    DecryptionFailed {
        /// What it belonged to.
        subject: Subject,
        /// The key the value names, if it names one.
        #[serde(default)]
        key_id: Option<KeyId>,
        /// Why, as a class; never the value.
        reason: OpenFailure,
    },
    /// An access was refused.
    AccessDenied {
        /// What was asked for.
        subject: Subject,
        /// Why it was refused.
        reason: DenialReason,
    },
    /// Further accesses refused from one source address within a window,
    /// recorded as one event with their count (after the first denial of
    /// the window, which is an [`Action::AccessDenied`] of its own), so a
    /// flood of bad requests costs neither disk nor the other callers'
    /// latency.
    AccessDeniedRepeatedly {
        /// The source address.
        source: String,
        /// Denials after the first, in the window.
        denials: u64,
        /// The window's length in seconds.
        window_secs: u64,
    },
}

impl Action {
    /// The snake_case name used in the log line and in JSON, e.g.
    /// `credential_accessed`.
    pub fn name(&self) -> &'static str {
        match self {
            Action::CredentialStored { .. } => "credential_stored",
            Action::CredentialAccessed { .. } => "credential_accessed",
            Action::CredentialDeleted { .. } => "credential_deleted",
            Action::CredentialsListed { .. } => "credentials_listed",
            Action::CredentialStatusRead { .. } => "credential_status_read",
            Action::CredentialTableAdopted { .. } => "credential_table_adopted",
            Action::UserCredentialsErased { .. } => "user_credentials_erased",
            Action::DataKeyCreated { .. } => "data_key_created",
            Action::DataKeyUnwrapped { .. } => "data_key_unwrapped",
            Action::DataKeyRotated { .. } => "data_key_rotated",
            Action::DataKeyDestroyed { .. } => "data_key_destroyed",
            Action::SecretsMigrated { .. } => "secrets_migrated",
            Action::SecretsRolledBack { .. } => "secrets_rolled_back",
            Action::SecretsVerified { .. } => "secrets_verified",
            Action::SecretRead { .. } => "secret_read",
            Action::SecretChanged { .. } => "secret_changed",
            Action::SecretRemoved { .. } => "secret_removed",
            Action::PlaintextShredded { .. } => "plaintext_shredded",
            Action::KeyRotationStarted { .. } => "key_rotation_started",
            Action::KeyRotationProgressed { .. } => "key_rotation_progressed",
            Action::KeyRotationFinished { .. } => "key_rotation_finished",
            Action::DecryptionFailed { .. } => "decryption_failed",
            Action::AccessDenied { .. } => "access_denied",
            Action::AccessDeniedRepeatedly { .. } => "access_denied_repeatedly",
        }
    }

    /// The outcome an event of this action has unless said otherwise:
    /// [`Outcome::Failure`] for a failed decryption and for a verification
    /// or rotation with failures, [`Outcome::Denied`] for a denied access,
    /// [`Outcome::Success`] otherwise.
    pub fn default_outcome(&self) -> Outcome {
        match self {
            Action::DecryptionFailed { .. } => Outcome::Failure,
            Action::SecretsVerified { failures, .. } if *failures > 0 => Outcome::Failure,
            Action::KeyRotationFinished { failed, .. } if *failed > 0 => Outcome::Failure,
            Action::AccessDenied { .. } | Action::AccessDeniedRepeatedly { .. } => Outcome::Denied,
            _ => Outcome::Success,
        }
    }

    /// The user the event concerns, if any.
    pub fn user(&self) -> Option<&str> {
        match self {
            Action::CredentialStored { user, .. }
            | Action::CredentialAccessed { user, .. }
            | Action::CredentialDeleted { user, .. }
            | Action::CredentialsListed { user, .. }
            | Action::UserCredentialsErased { user, .. }
            | Action::DataKeyCreated { user, .. }
            | Action::DataKeyUnwrapped { user, .. }
            | Action::DataKeyRotated { user, .. }
            | Action::DataKeyDestroyed { user, .. } => Some(user),
            Action::DecryptionFailed { subject, .. } | Action::AccessDenied { subject, .. } => {
                match subject {
                    Subject::Credential { user, .. } | Subject::User { user } => Some(user),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// The provider the event concerns, if any.
    pub fn provider(&self) -> Option<&str> {
        match self {
            Action::CredentialStored { provider, .. }
            | Action::CredentialAccessed { provider, .. }
            | Action::CredentialDeleted { provider, .. } => Some(provider),
            Action::DecryptionFailed { subject, .. } | Action::AccessDenied { subject, .. } => {
                match subject {
                    Subject::Credential { provider, .. } => Some(provider),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// The secret name the event concerns, if any.
    pub fn secret(&self) -> Option<&str> {
        match self {
            Action::SecretRead { name, .. }
            | Action::SecretChanged { name, .. }
            | Action::SecretRemoved { name } => Some(name),
            Action::DecryptionFailed { subject, .. } | Action::AccessDenied { subject, .. } => {
                match subject {
                    Subject::Secret { name } => Some(name),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// The key id the event names, if any (for a rotation, the new key).
    pub fn key_id(&self) -> Option<KeyId> {
        match self {
            Action::CredentialStored { key_id, .. }
            | Action::CredentialAccessed { key_id, .. }
            | Action::SecretRead { key_id, .. }
            | Action::SecretChanged { key_id, .. }
            | Action::DecryptionFailed { key_id, .. } => *key_id,
            Action::SecretsMigrated { key_id, .. }
            | Action::DataKeyCreated { key_id, .. }
            | Action::DataKeyUnwrapped { key_id, .. } => Some(*key_id),
            Action::DataKeyRotated { to, .. } => Some(*to),
            Action::KeyRotationStarted { to, .. }
            | Action::KeyRotationProgressed { to, .. }
            | Action::KeyRotationFinished { to, .. } => Some(*to),
            _ => None,
        }
    }

    /// Writes the subject and details as ` - name=value` pairs, after the
    /// seed's `credential_accessed - user=... - provider=...` form. A value
    /// made only of letters, digits and `._@:/+-` is written as it is;
    /// any other (spaces, `=`, quotes, control characters, empty) is
    /// written in double quotes with `"`, `\` and control characters
    /// escaped, so that no identifier can forge or blur a field: the user
    /// `eve - provider=github` is `user="eve - provider=github"`.
    fn write_details(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn pair(f: &mut fmt::Formatter<'_>, name: &str, value: &dyn fmt::Display) -> fmt::Result {
            use fmt::Write as _;
            write!(f, " - {name}=")?;
            let text = value.to_string();
            let bare = !text.is_empty()
                && text
                    .chars()
                    .all(|c| c.is_alphanumeric() || "._@:/+-".contains(c));
            if bare {
                return f.write_str(&text);
            }
            f.write_char('"')?;
            for c in text.chars() {
                match c {
                    '"' => f.write_str("\\\"")?,
                    '\\' => f.write_str("\\\\")?,
                    c if c.is_control() => write!(f, "{}", c.escape_default())?,
                    c => f.write_char(c)?,
                }
            }
            f.write_char('"')
        }
        fn key(f: &mut fmt::Formatter<'_>, name: &str, id: &Option<KeyId>) -> fmt::Result {
            match id {
                Some(id) => pair(f, name, id),
                None => Ok(()),
            }
        }
        fn subject(f: &mut fmt::Formatter<'_>, subject: &Subject) -> fmt::Result {
            match subject {
                Subject::Credential { user, provider } => {
                    pair(f, "user", user)?;
                    pair(f, "provider", provider)
                }
                Subject::User { user } => pair(f, "user", user),
                Subject::Secret { name } => pair(f, "secret", name),
                Subject::SecretsFile { file } => pair(f, "file", file),
                Subject::Endpoint { path } => pair(f, "endpoint", path),
            }
        }
        match self {
            Action::CredentialStored {
                user,
                provider,
                key_id,
            }
            | Action::CredentialAccessed {
                user,
                provider,
                key_id,
            } => {
                pair(f, "user", user)?;
                pair(f, "provider", provider)?;
                key(f, "key", key_id)
            }
            Action::CredentialDeleted { user, provider } => {
                pair(f, "user", user)?;
                pair(f, "provider", provider)
            }
            Action::UserCredentialsErased { user, count }
            | Action::CredentialsListed { user, count } => {
                pair(f, "user", user)?;
                pair(f, "count", count)
            }
            Action::CredentialStatusRead {
                total,
                needs_rewrap,
            } => {
                pair(f, "total", total)?;
                pair(f, "needs_rewrap", needs_rewrap)
            }
            Action::CredentialTableAdopted {
                rows_kept,
                duplicates_archived,
                incomplete_archived,
            } => {
                pair(f, "rows_kept", rows_kept)?;
                pair(f, "duplicates_archived", duplicates_archived)?;
                pair(f, "incomplete_archived", incomplete_archived)
            }
            Action::DataKeyCreated {
                user,
                key_id,
                kek_id,
            }
            | Action::DataKeyUnwrapped {
                user,
                key_id,
                kek_id,
            } => {
                pair(f, "user", user)?;
                pair(f, "data_key", key_id)?;
                pair(f, "kek", kek_id)
            }
            Action::DataKeyRotated { user, to, resealed } => {
                pair(f, "user", user)?;
                pair(f, "to", to)?;
                pair(f, "resealed", resealed)
            }
            Action::DataKeyDestroyed { user, count } => {
                pair(f, "user", user)?;
                pair(f, "count", count)
            }
            Action::SecretsMigrated {
                file,
                values,
                key_id,
            } => {
                pair(f, "file", file)?;
                pair(f, "values", values)?;
                pair(f, "key", key_id)
            }
            Action::SecretsRolledBack { file, backup } => {
                pair(f, "file", file)?;
                pair(f, "backup", backup)
            }
            Action::SecretsVerified {
                file,
                values,
                failures,
            } => {
                pair(f, "file", file)?;
                pair(f, "values", values)?;
                pair(f, "failures", failures)
            }
            Action::SecretRead { name, key_id } => {
                pair(f, "secret", name)?;
                key(f, "key", key_id)
            }
            Action::SecretChanged {
                name,
                fingerprint,
                key_id,
            } => {
                pair(f, "secret", name)?;
                pair(f, "fingerprint", fingerprint)?;
                key(f, "key", key_id)
            }
            Action::SecretRemoved { name } => pair(f, "secret", name),
            Action::PlaintextShredded { file } => pair(f, "file", file),
            Action::KeyRotationStarted { scope, to, total } => {
                pair(f, "scope", scope)?;
                pair(f, "to", to)?;
                match total {
                    Some(total) => pair(f, "total", total),
                    None => Ok(()),
                }
            }
            Action::KeyRotationProgressed {
                scope,
                to,
                done,
                total,
            } => {
                pair(f, "scope", scope)?;
                pair(f, "to", to)?;
                pair(f, "done", done)?;
                match total {
                    Some(total) => pair(f, "total", total),
                    None => Ok(()),
                }
            }
            Action::KeyRotationFinished {
                scope,
                to,
                rewrapped,
                failed,
            } => {
                pair(f, "scope", scope)?;
                pair(f, "to", to)?;
                pair(f, "rewrapped", rewrapped)?;
                pair(f, "failed", failed)
            }
            Action::DecryptionFailed {
                subject: s,
                key_id,
                reason,
            } => {
                subject(f, s)?;
                key(f, "key", key_id)?;
                pair(f, "reason", &reason.as_str())
            }
            Action::AccessDenied { subject: s, reason } => {
                subject(f, s)?;
                pair(f, "reason", &reason.as_str())
            }
            Action::AccessDeniedRepeatedly {
                source,
                denials,
                window_secs,
            } => {
                pair(f, "source", source)?;
                pair(f, "denials", denials)?;
                pair(f, "window_secs", window_secs)
            }
        }
    }
}

/// The seed's log line without its `Security Audit: ` prefix:
/// `credential_accessed - user=... - provider=...`.
impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())?;
        self.write_details(f)
    }
}

/// Why an access was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DenialReason {
    /// The caller did not prove who it is.
    NotAuthenticated,
    /// The caller is known but not allowed.
    NotPermitted,
    /// Encryption is required and no key is configured.
    EncryptionRequired,
}

impl DenialReason {
    /// Every reason, in order (metrics pre-register one series each).
    pub const ALL: [DenialReason; 3] = [
        DenialReason::NotAuthenticated,
        DenialReason::NotPermitted,
        DenialReason::EncryptionRequired,
    ];

    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            DenialReason::NotAuthenticated => "not_authenticated",
            DenialReason::NotPermitted => "not_permitted",
            DenialReason::EncryptionRequired => "encryption_required",
        }
    }
}
