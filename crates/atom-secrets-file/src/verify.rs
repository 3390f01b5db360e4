//! `verify`: open every value of `secrets.enc` and report per name, without
//! values.

use std::path::PathBuf;

use atom_crypto::{Classification, KeyId, Keyring, OpenFailure, classify};
use serde::Serialize;

use crate::dir::SecretsDir;
use crate::error::{Error, Result};
use crate::seal;

/// The result of checking one entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EntryCheck {
    /// The value opens.
    Ok {
        /// `sealed` or `legacy`.
        kind: &'static str,
        /// The key that sealed it (`None` for legacy).
        key_id: Option<KeyId>,
    },
    /// The value does not open.
    Failed {
        /// Why.
        reason: OpenFailure,
    },
    /// Not a string (numbers, booleans, null, objects, arrays are stored as
    /// they are and not checked).
    NotSecret,
}

/// One entry of a [`VerifyReport`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct NameCheck {
    /// The entry's name.
    pub name: String,
    /// What was found.
    #[serde(flatten)]
    pub check: EntryCheck,
}

/// What `verify` found: per name, never a value.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct VerifyReport {
    /// The file checked.
    pub file: PathBuf,
    /// Every entry in file order.
    pub entries: Vec<NameCheck>,
}

impl VerifyReport {
    /// Whether every string value opens.
    pub fn is_ok(&self) -> bool {
        self.failures().next().is_none()
    }

    /// Number of values that open.
    pub fn ok_count(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| matches!(e.check, EntryCheck::Ok { .. }))
            .count()
    }

    /// The names that fail, with why.
    pub fn failures(&self) -> impl Iterator<Item = (&str, OpenFailure)> {
        self.entries.iter().filter_map(|e| match e.check {
            EntryCheck::Failed { reason } => Some((e.name.as_str(), reason)),
            _ => None,
        })
    }

    /// `Err(Error::DoNotOpen)` when any value fails, for a non-zero exit.
    pub fn into_result(self) -> Result<VerifyReport> {
        if self.is_ok() {
            return Ok(self);
        }
        Err(Error::DoNotOpen {
            path: self.file.clone(),
            failures: self.failures().map(|(n, c)| (n.to_owned(), c)).collect(),
        })
    }
}

impl SecretsDir {
    /// What each string of `secrets.enc` (nested ones named by their path)
    /// is by structure, with no key needed, nothing decrypted and no value
    /// returned: for diagnosing the values that do not open (sealed under
    /// which key, damaged, plaintext).
    pub fn classify_values(
        &self,
    ) -> Result<
        Vec<(
            String,
            std::result::Result<Classification, atom_crypto::CryptoError>,
        )>,
    > {
        let mut out = Vec::new();
        for (name, value) in &self.read_encrypted()? {
            seal::leaves(name, value, &mut |leaf, stored| {
                out.push((leaf.path, classify(stored)));
            });
        }
        Ok(out)
    }

    /// Opens every value of `secrets.enc` with `keyring` and reports per
    /// name. A file that cannot be read or parsed is an error; values that
    /// do not open are reported (see [`VerifyReport::into_result`]).
    pub fn verify(&self, keyring: &Keyring) -> Result<VerifyReport> {
        let entries = self.read_encrypted()?;
        // One check per string: an entry's own, or each one inside its
        // objects and arrays (named by its path, e.g. `db.hosts[0]`).
        let mut items: Vec<_> = entries.iter().collect();
        let checks = seal::par_map(&mut items, |(name, value)| {
            if !value.is_string() && !seal::has_nested_strings(value) {
                return vec![NameCheck {
                    name: (*name).clone(),
                    check: EntryCheck::NotSecret,
                }];
            }
            let mut out = Vec::new();
            seal::leaves(name, value, &mut |leaf, stored| {
                out.push(NameCheck {
                    check: check_value(keyring, &leaf.context, stored),
                    name: leaf.path,
                });
            });
            out
        });
        let checks = checks.into_iter().flatten().collect();
        Ok(VerifyReport {
            file: self.encrypted_path(),
            entries: checks,
        })
    }
}

fn check_value(keyring: &Keyring, context: &atom_crypto::Context, stored: &str) -> EntryCheck {
    if let Err(e) = keyring.open(context, stored) {
        return EntryCheck::Failed {
            reason: OpenFailure::of(&e),
        };
    }
    match classify(stored) {
        Ok(Classification::Sealed(id)) => EntryCheck::Ok {
            kind: "sealed",
            key_id: Some(id),
        },
        _ => EntryCheck::Ok {
            kind: "legacy",
            key_id: None,
        },
    }
}
