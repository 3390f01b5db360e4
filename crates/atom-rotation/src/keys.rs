//! The key files outside a rotation: list the keys with their roles,
//! retire a decrypt-only key (it moves to the retired-keys file, which no
//! app loads), restore a retired key, and destroy a retired key once
//! nothing stored still needs it.

use std::path::PathBuf;

use atom_credentials::{CredentialStore, KeyRows};
use atom_crypto::{Key, KeyId};
use atom_secrets_file::{KeyUse, SecretsDir};
use serde::Serialize;

use crate::error::Error;
use crate::keyfiles::KeyFiles;
use crate::state::{Phase, RotationState};

/// Where a key stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum KeyStanding {
    /// Seals new values (the primary key file).
    Primary,
    /// Opens older values (the previous-keys file).
    DecryptOnly,
    /// Kept, loaded by no app (the retired-keys file).
    Retired,
}

impl KeyStanding {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStanding::Primary => "primary",
            KeyStanding::DecryptOnly => "decrypt_only",
            KeyStanding::Retired => "retired",
        }
    }
}

/// One key of the key files (its id, never the key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct KeyEntry {
    /// The key's id.
    pub key_id: KeyId,
    /// Where it stands.
    pub standing: KeyStanding,
    /// The file that holds it.
    pub file: PathBuf,
    /// When it was introduced by a rotation; `None`: age unknown (it
    /// predates the record, or came from outside a rotation).
    pub introduced_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Every key of the key files: the primary, the decrypt-only keys and the
/// retired keys, in file order.
pub fn list_keys(files: &KeyFiles) -> Result<Vec<KeyEntry>, Error> {
    let ages = crate::ages::KeyAges::load(&crate::ages::KeyAges::path_in(&files.dir()))?;
    let entry = |key: &Key, standing, file: &PathBuf| KeyEntry {
        key_id: key.id(),
        standing,
        file: file.clone(),
        introduced_at: ages.introduced(key.id()),
    };
    let mut out = vec![entry(
        &files.read_primary()?,
        KeyStanding::Primary,
        &files.primary,
    )];
    out.extend(
        files
            .read_previous()?
            .keys()
            .map(|k| entry(k, KeyStanding::DecryptOnly, &files.previous)),
    );
    out.extend(
        files
            .read_retired()?
            .keys()
            .map(|k| entry(k, KeyStanding::Retired, &files.retired)),
    );
    Ok(out)
}

/// The retired keys as a keyring that opens (its first key "primary" only
/// in name): for diagnosing values that no configured key opens. `None`
/// when the retired-keys file holds no key.
pub fn retired_keyring(files: &KeyFiles) -> Result<Option<atom_crypto::Keyring>, Error> {
    let retired = files.read_retired()?;
    let mut keys = retired.keys().cloned();
    let Some(first) = keys.next() else {
        return Ok(None);
    };
    Ok(Some(atom_crypto::Keyring::new(first, keys)?))
}

/// What a change to the key files did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct KeyChange {
    /// The key.
    pub key_id: KeyId,
    /// Where it was.
    pub from: PathBuf,
    /// Where it is now (`None` once destroyed).
    pub to: Option<PathBuf>,
    /// Whether anything changed (false: it already was there).
    pub changed: bool,
}

/// Parses a key id given by the operator.
pub fn parse_key_id(text: &str) -> Result<KeyId, Error> {
    text.trim().parse::<KeyId>().map_err(|_| {
        Error::Usage(format!(
            "\"{}\" is not a key id: key ids are 12 lower-case hex digits, as the key list shows them",
            text.trim()
        ))
    })
}

/// Refuses to touch a key that a rotation in progress still uses.
fn refuse_if_rotating(files: &KeyFiles, id: KeyId, what: &str) -> Result<(), Error> {
    let path = RotationState::path_in(&files.dir());
    if let Some(state) = RotationState::load(&path)?
        && state.phase != Phase::Finished
        && (state.old_key_id == id || state.new_key_id == id)
    {
        return Err(Error::Usage(format!(
            "key {id} is part of the rotation in progress ({}, phase {}); finish the rotation first, which retires the old key itself, then {what}",
            path.display(),
            state.phase.as_str()
        )));
    }
    Ok(())
}

/// Moves the decrypt-only key `id` from the previous-keys file to the
/// retired-keys file (mode 0600, written atomically before the key leaves
/// the previous-keys file). The primary key cannot be retired. Retiring a
/// retired key changes nothing.
pub fn retire_key(files: &KeyFiles, id: KeyId) -> Result<KeyChange, Error> {
    if files.read_primary()?.id() == id {
        return Err(Error::Usage(format!(
            "key {id} is the primary key ({}) and seals new values, so it cannot be retired; rotate to a new key first",
            files.primary.display()
        )));
    }
    refuse_if_rotating(files, id, "retire any other key")?;
    let previous = files.read_previous()?;
    let Some(key) = previous.find(id).cloned() else {
        if files.read_retired()?.contains(id) {
            return Ok(KeyChange {
                key_id: id,
                from: files.retired.clone(),
                to: Some(files.retired.clone()),
                changed: false,
            });
        }
        return Err(Error::Usage(format!(
            "key {id} is not in {}; the key list shows the keys and where they are",
            files.previous.display()
        )));
    };
    files.retire(&key, "retired")?;
    Ok(KeyChange {
        key_id: id,
        from: files.previous.clone(),
        to: Some(files.retired.clone()),
        changed: true,
    })
}

/// Moves the retired key `id` back to the previous-keys file, so that apps
/// open values under it again once they reload their keys. The
/// previous-keys file is written first, so a crash leaves the key in both
/// files, never in neither.
pub fn restore_key(files: &KeyFiles, id: KeyId) -> Result<KeyChange, Error> {
    let mut retired = files.read_retired()?;
    let mut previous = files.read_previous()?;
    let Some(key) = retired.find(id).cloned() else {
        if previous.contains(id) || files.read_primary()?.id() == id {
            return Ok(KeyChange {
                key_id: id,
                from: files.previous.clone(),
                to: Some(files.previous.clone()),
                changed: false,
            });
        }
        return Err(Error::Usage(format!(
            "key {id} is not in the retired-keys file {}; the key list shows the keys and where they are",
            files.retired.display()
        )));
    };
    previous.add(&key, "decrypt-only, restored from the retired keys");
    files.write_previous(&previous)?;
    retired.remove(id);
    files.write_retired(&retired)?;
    Ok(KeyChange {
        key_id: id,
        from: files.retired.clone(),
        to: Some(files.previous.clone()),
        changed: true,
    })
}

/// What still needs a key, found before destroying it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct KeyUsage {
    /// Secrets files (and copies kept aside) with values under the key.
    pub secrets: Vec<KeyUse>,
    /// Credential rows under the key.
    pub rows: u64,
    /// Archived credential rows under the key.
    pub archived_rows: u64,
    /// Users' data keys wrapped under the key (each opens that user's
    /// enveloped credentials).
    pub data_keys: u64,
}

impl KeyUsage {
    /// Whether nothing found needs the key.
    pub fn is_unused(&self) -> bool {
        self.secrets.is_empty() && self.rows == 0 && self.archived_rows == 0 && self.data_keys == 0
    }

    fn describe(&self) -> String {
        let mut parts: Vec<String> = self
            .secrets
            .iter()
            .map(|u| format!("{} value(s) of {}", u.names.len(), u.file.display()))
            .collect();
        if self.rows > 0 {
            parts.push(format!("{} credential row(s)", self.rows));
        }
        if self.archived_rows > 0 {
            parts.push(format!("{} archived credential row(s)", self.archived_rows));
        }
        if self.data_keys > 0 {
            parts.push(format!(
                "{} user data key(s) wrapped under it (and every credential they seal)",
                self.data_keys
            ));
        }
        parts.join(", ")
    }
}

/// What still needs the key `key` in `secrets` and `store`.
pub async fn key_usage(
    key: &Key,
    secrets: Option<&SecretsDir>,
    store: Option<&CredentialStore>,
) -> Result<KeyUsage, Error> {
    let mut usage = KeyUsage::default();
    if let Some(dir) = secrets {
        usage.secrets = dir.values_under_key(key)?;
    }
    if let Some(store) = store {
        let KeyRows {
            rows,
            archived_rows,
            data_keys,
            ..
        } = store.rows_under_key(key).await?;
        usage.rows = rows;
        usage.archived_rows = archived_rows;
        usage.data_keys = data_keys;
    }
    Ok(usage)
}

/// Destroys the retired key `id`: it leaves the retired-keys file for good.
/// Refused unless the key is retired, and while anything in `secrets` (the
/// file and the copies kept aside) or `store` (rows and archived rows) is
/// still under it; backups made elsewhere are the operator's to check, so
/// `confirm` is asked once the checks pass (`Ok(None)`: not confirmed,
/// nothing changed).
pub async fn destroy_key(
    files: &KeyFiles,
    id: KeyId,
    secrets: Option<&SecretsDir>,
    store: Option<&CredentialStore>,
    confirm: impl FnOnce(KeyId) -> std::io::Result<bool>,
) -> Result<Option<(KeyChange, KeyUsage)>, Error> {
    let mut retired = files.read_retired()?;
    let Some(key) = retired.find(id).cloned() else {
        let standing = if files.read_primary()?.id() == id {
            "it is the primary key"
        } else if files.read_previous()?.contains(id) {
            "it is a decrypt-only key that apps still load; retire it first"
        } else {
            "it is in none of the key files (already destroyed?)"
        };
        return Err(Error::Usage(format!(
            "key {id} cannot be destroyed: only retired keys can, and {standing}"
        )));
    };
    refuse_if_rotating(files, id, "destroy it")?;
    let usage = key_usage(&key, secrets, store).await?;
    if !usage.is_unused() {
        return Err(Error::Refused(format!(
            "key {id} is still needed by {}; destroying it would make them unreadable for good, so nothing was changed. Rotate (or rewrap) so that nothing is under it, then destroy it",
            usage.describe()
        )));
    }
    let confirmed =
        confirm(id).map_err(|e| Error::Failed(format!("cannot read the confirmation: {e}")))?;
    if !confirmed {
        return Ok(None);
    }
    retired.remove(id);
    files.write_retired(&retired)?;
    Ok(Some((
        KeyChange {
            key_id: id,
            from: files.retired.clone(),
            to: None,
            changed: true,
        },
        usage,
    )))
}
