//! `status`: the seed's figures about the secrets file in use, found by
//! structure alone (nothing is decrypted).

use std::collections::BTreeMap;
use std::path::PathBuf;

use atom_crypto::{Classification, KeyCount, KeyId, Keyring, classify};
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
    /// The strings inside objects and arrays (of the `other_values`), each
    /// sealed under its path: how many are in each form. Their key ids
    /// count in `by_key`, their legacy tokens in `legacy_secrets`.
    pub nested_strings: NestedCounts,
    /// Legacy (bare Fernet) values.
    pub legacy_secrets: usize,
    /// Sealed values per key, nested strings included, with each key's
    /// role in the keyring (the shape every status report shares).
    pub by_key: Vec<KeyCount>,
    /// With a keyring: the primary key's id.
    pub primary_key_id: Option<KeyId>,
    /// With a keyring: values a rewrap would change (legacy, plaintext, or
    /// under an older key).
    pub needs_rewrap: Option<usize>,
    /// With a keyring: key ids values name that the keyring lacks.
    pub unknown_key_ids: Vec<KeyId>,
    /// Whether `secrets.json` exists (a plaintext copy).
    pub plaintext_file_present: bool,
    /// Whether `secrets.json.backup` exists (a plaintext copy).
    pub backup_present: bool,
}

/// Strings inside objects and arrays, by form.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct NestedCounts {
    /// Sealed or legacy.
    pub encrypted: usize,
    /// Plaintext (written before nested strings were sealed, or by the
    /// Python original).
    pub plaintext: usize,
    /// Damaged ciphertext.
    pub malformed: usize,
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
            primary_key_id: keyring.map(|k| k.primary_id()),
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

/// The form of one string, for counting.
enum Form {
    Encrypted,
    Plaintext,
    Malformed,
}

fn count(status: &mut Status, entries: &Entries, keyring: Option<&Keyring>) {
    let mut needs_rewrap = 0;
    let mut unknown = std::collections::BTreeSet::new();
    let mut by_key: BTreeMap<KeyId, u64> = BTreeMap::new();
    status.total_secrets = entries.len();
    // Counts one string (top-level or nested) by key id and what a rewrap
    // would do with it; returns its form for the caller's own counters.
    let mut tally = |status: &mut Status, text: &str| match classify(text) {
        Ok(Classification::Sealed(id)) => {
            *by_key.entry(id).or_default() += 1;
            if let Some(keyring) = keyring {
                if id != keyring.primary_id() {
                    needs_rewrap += 1;
                }
                if !keyring.contains(id) {
                    unknown.insert(id);
                }
            }
            Form::Encrypted
        }
        Ok(Classification::Legacy) => {
            status.legacy_secrets += 1;
            needs_rewrap += 1;
            Form::Encrypted
        }
        Ok(_) => {
            needs_rewrap += 1;
            Form::Plaintext
        }
        Err(_) => Form::Malformed,
    };
    for value in entries.values() {
        if let Some(text) = value.as_str() {
            match tally(status, text) {
                Form::Encrypted => status.encrypted_secrets += 1,
                Form::Plaintext => status.plaintext_secrets += 1,
                Form::Malformed => status.malformed_secrets += 1,
            }
            continue;
        }
        status.other_values += 1;
        let mut nested = status.nested_strings;
        crate::seal::leaves("", value, &mut |_, text| match tally(status, text) {
            Form::Encrypted => nested.encrypted += 1,
            Form::Plaintext => nested.plaintext += 1,
            Form::Malformed => nested.malformed += 1,
        });
        status.nested_strings = nested;
    }
    status.by_key = KeyCount::list(by_key, keyring);
    if keyring.is_some() {
        status.needs_rewrap = Some(needs_rewrap);
        status.unknown_key_ids = unknown.into_iter().collect();
    }
}

/// The values of one file that a key still opens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct KeyUse {
    /// `secrets.enc`, or a copy of it kept aside (`secrets.enc.kept.<n>`).
    pub file: PathBuf,
    /// The names of its values sealed under the key, or legacy tokens the
    /// key opens.
    pub names: Vec<String>,
}

impl SecretsDir {
    /// Which values of `secrets.enc` and of the copies of it kept aside
    /// (`secrets.enc.kept.<n>`, left by rollback) still need `key`: sealed
    /// under its id, or legacy tokens it opens. Only files that have such
    /// values are listed. For refusing to destroy a key that something
    /// still needs.
    pub fn values_under_key(&self, key: &atom_crypto::Key) -> Result<Vec<KeyUse>> {
        let probe = Keyring::single(key.clone());
        let mut files = Vec::new();
        let enc = self.encrypted_path();
        if enc.exists() {
            files.push(enc.clone());
        }
        let kept_prefix = format!("{}.kept.", crate::dir::ENCRYPTED_FILE);
        if let Ok(read) = std::fs::read_dir(self.dir()) {
            let mut kept: Vec<PathBuf> = read
                .filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().starts_with(&kept_prefix))
                .map(|e| e.path())
                .collect();
            kept.sort();
            files.extend(kept);
        }
        let mut uses = Vec::new();
        for file in files {
            let entries = parse::read_entries(&file, self.max_size(), "")?;
            let mut names = Vec::new();
            for (name, value) in &entries {
                crate::seal::leaves(name, value, &mut |leaf, text| {
                    let needs = match classify(text) {
                        Ok(Classification::Sealed(id)) => id == key.id(),
                        Ok(Classification::Legacy) => probe.open(&leaf.context, text).is_ok(),
                        _ => false,
                    };
                    if needs {
                        names.push(leaf.path);
                    }
                });
            }
            if !names.is_empty() {
                uses.push(KeyUse { file, names });
            }
        }
        Ok(uses)
    }
}
