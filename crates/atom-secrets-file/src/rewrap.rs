//! `rewrap`: every string value of `secrets.enc` under the primary key in
//! the current sealed form.

use std::collections::BTreeMap;
use std::path::PathBuf;

use atom_crypto::{Classification, KeyId, Keyring, classify};
use serde::Serialize;
use serde_json::Value;

use crate::dir::SecretsDir;
use crate::error::{Error, Result};
use crate::seal;
use atom_crypto::OpenFailure;

/// What `rewrap` did. Names, counts and key ids only.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct RewrapReport {
    /// `secrets.enc`.
    pub file: PathBuf,
    /// The key every string value is now sealed under.
    pub primary_key_id: KeyId,
    /// Values sealed again under the primary key.
    pub rewrapped_names: Vec<String>,
    /// Of those, how many were under each older key.
    pub from_key_id: BTreeMap<KeyId, usize>,
    /// Of those, how many were legacy tokens.
    pub from_legacy: usize,
    /// Of those, how many were plaintext.
    pub from_plaintext: usize,
    /// The names of the plaintext values sealed (only when asked to).
    pub sealed_plaintext_names: Vec<String>,
    /// Values already under the primary key (opened to prove it, kept as they were).
    pub already_current: usize,
    /// Non-string values, kept as they are.
    pub not_secret: usize,
    /// Whether the file was written.
    pub wrote: bool,
}

enum Outcome {
    Current,
    NotSecret,
    Rewrapped(Classification),
    Failed(OpenFailure),
}

impl SecretsDir {
    /// Opens every value and seals again under the primary key each one that
    /// is legacy or under an older key. Values already under the primary
    /// key are opened (so a run proves every value opens) and kept.
    /// Plaintext values are sealed only with `seal_plaintext`; without it
    /// they are refused by name ([`Error::PlaintextNotSealed`]), since a
    /// value that is not ciphertext may be a secret or damage the operator
    /// must look at first. If any value does not open, nothing is written.
    pub fn rewrap(&self, keyring: &Keyring, seal_plaintext: bool) -> Result<RewrapReport> {
        let _lock = self.lock()?;
        let path = self.encrypted_path();
        let mut entries = self.read_encrypted()?;
        let mut items: Vec<(&String, &mut Value)> = entries.iter_mut().collect();
        // Every string of an entry, nested ones included, with its path.
        let outcomes = seal::par_map(&mut items, |(name, value)| {
            if !value.is_string() && !seal::has_nested_strings(value) {
                return vec![(None, Outcome::NotSecret)];
            }
            let mut out = Vec::new();
            seal::leaves_mut(name, value, &mut |leaf, text| {
                let outcome = match classify(text) {
                    Err(e) => Outcome::Failed(OpenFailure::of(&e)),
                    Ok(class) => match keyring.rewrap(&leaf.context, text, seal_plaintext) {
                        Ok(None) => Outcome::Current,
                        Ok(Some(stored)) => {
                            *text = stored.into_string();
                            Outcome::Rewrapped(class)
                        }
                        Err(e) => Outcome::Failed(OpenFailure::of(&e)),
                    },
                };
                out.push((Some(leaf.path), outcome));
            });
            out
        });
        let mut report = RewrapReport {
            file: path.clone(),
            primary_key_id: keyring.primary_id(),
            rewrapped_names: Vec::new(),
            from_key_id: BTreeMap::new(),
            from_legacy: 0,
            from_plaintext: 0,
            sealed_plaintext_names: Vec::new(),
            already_current: 0,
            not_secret: 0,
            wrote: false,
        };
        let mut failures = Vec::new();
        let results = items.iter().zip(outcomes).flat_map(|((name, _), leaves)| {
            leaves
                .into_iter()
                .map(move |(path, outcome)| (path.unwrap_or_else(|| (*name).clone()), outcome))
        });
        for (name, outcome) in results {
            match outcome {
                Outcome::Current => report.already_current += 1,
                Outcome::NotSecret => report.not_secret += 1,
                Outcome::Failed(class) => failures.push((name, class)),
                Outcome::Rewrapped(class) => {
                    report.rewrapped_names.push(name.clone());
                    match class {
                        Classification::Sealed(id) => {
                            *report.from_key_id.entry(id).or_default() += 1;
                        }
                        Classification::Legacy => report.from_legacy += 1,
                        _ => {
                            report.from_plaintext += 1;
                            report.sealed_plaintext_names.push(name);
                        }
                    }
                }
            }
        }
        drop(items);
        let (plaintext, failures): (Vec<_>, Vec<_>) = failures
            .into_iter()
            .partition(|(_, class)| *class == OpenFailure::NotSealed);
        if !failures.is_empty() {
            return Err(Error::DoNotOpen { path, failures });
        }
        if !plaintext.is_empty() {
            return Err(Error::PlaintextNotSealed {
                path,
                names: plaintext.into_iter().map(|(name, _)| name).collect(),
            });
        }
        if !report.rewrapped_names.is_empty() {
            self.write_entries(&path, &entries)?;
            report.wrote = true;
        }
        tracing::info!(
            file = %report.file.display(),
            primary = %report.primary_key_id,
            rewrapped = report.rewrapped_names.len(),
            already_current = report.already_current,
            "rewrap"
        );
        Ok(report)
    }
}
