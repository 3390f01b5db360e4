//! `status`: the seed's figures about the secrets file in use, found by
//! structure alone (nothing is decrypted).

use std::collections::BTreeMap;
use std::path::PathBuf;

use atom_crypto::{Classification, Keyring, classify};
use serde::Serialize;

use crate::dir::SecretsDir;
use crate::error::Result;
use crate::parse::{self, Entries};

/// The state of a secrets directory. Serializes with the seed's field names
/// (`secrets_file`, `total_secrets`, `encrypted_secrets`,
/// `plaintext_secrets`) plus counts per key id.
///
/// `total_secrets` counts every entry: `encrypted_secrets` (sealed and
/// legacy strings) + `plaintext_secrets` (plaintext strings) +
/// `malformed_secrets` + `other_values` (numbers, booleans, null, objects,
/// arrays).
#[derive(Debug, Clone, Default, Serialize)]
#[non_exhaustive]
pub struct Status {
    /// The file in use: `secrets.enc` if it exists, else `secrets.json` if
    /// it exists, else `None`.
    pub secrets_file: Option<PathBuf>,
    /// Whether the file in use is `secrets.enc`.
    pub encrypted_file: bool,
    /// Every entry of the file in use.
    pub total_secrets: usize,
    /// Sealed and legacy string values.
    pub encrypted_secrets: usize,
    /// String values stored in plaintext.
    pub plaintext_secrets: usize,
    /// String values that claim to be sealed but are malformed.
    pub malformed_secrets: usize,
    /// Non-string values.
    pub other_values: usize,
    /// Legacy (bare Fernet) values.
    pub legacy_secrets: usize,
    /// Sealed values per key id.
    pub by_key_id: BTreeMap<String, usize>,
    /// With a keyring: the primary key's id.
    pub primary_key_id: Option<String>,
    /// With a keyring: values a rewrap would change (legacy, plaintext, or
    /// under an older key).
    pub needs_rewrap: Option<usize>,
    /// With a keyring: key ids values name that the keyring lacks.
    pub unknown_key_ids: Vec<String>,
    /// Whether `secrets.json` exists (a plaintext copy).
    pub plaintext_file_present: bool,
    /// Whether `secrets.json.backup` exists (a plaintext copy).
    pub backup_present: bool,
}

impl SecretsDir {
    /// Counts the entries of the file in use by kind and key id. `keyring`
    /// adds what a rewrap would do; nothing is decrypted either way.
    pub fn status(&self, keyring: Option<&Keyring>) -> Result<Status> {
        let enc = self.encrypted_path();
        let plain = self.plaintext_path();
        let mut status = Status {
            plaintext_file_present: plain.exists(),
            backup_present: self.backup_path().exists(),
            primary_key_id: keyring.map(|k| k.primary_id().to_string()),
            ..Status::default()
        };
        let (path, entries) = if enc.exists() {
            status.encrypted_file = true;
            let entries = self.read_encrypted()?;
            (enc, entries)
        } else if status.plaintext_file_present {
            let entries = parse::read_entries(&plain, self.max_size(), "")?;
            (plain, entries)
        } else {
            return Ok(status);
        };
        count(&mut status, &entries, keyring);
        status.secrets_file = Some(path);
        Ok(status)
    }
}

fn count(status: &mut Status, entries: &Entries, keyring: Option<&Keyring>) {
    let mut needs_rewrap = 0;
    let mut unknown = std::collections::BTreeSet::new();
    status.total_secrets = entries.len();
    for value in entries.values() {
        let Some(text) = value.as_str() else {
            status.other_values += 1;
            continue;
        };
        match classify(text) {
            Ok(Classification::Sealed(id)) => {
                status.encrypted_secrets += 1;
                *status.by_key_id.entry(id.to_string()).or_default() += 1;
                if let Some(keyring) = keyring {
                    if id != keyring.primary_id() {
                        needs_rewrap += 1;
                    }
                    if !keyring.contains(id) {
                        unknown.insert(id.to_string());
                    }
                }
            }
            Ok(Classification::Legacy) => {
                status.encrypted_secrets += 1;
                status.legacy_secrets += 1;
                needs_rewrap += 1;
            }
            Ok(_) => {
                status.plaintext_secrets += 1;
                needs_rewrap += 1;
            }
            Err(_) => status.malformed_secrets += 1,
        }
    }
    if keyring.is_some() {
        status.needs_rewrap = Some(needs_rewrap);
        status.unknown_key_ids = unknown.into_iter().collect();
    }
}
