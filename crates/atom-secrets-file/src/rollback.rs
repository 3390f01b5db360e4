//! `rollback`: back to plaintext from the current `secrets.enc` (not from an
//! older backup), keeping aside every file it replaces.

use std::path::PathBuf;

use atom_crypto::Keyring;
use serde::Serialize;
use serde_json::Value;

use crate::atomic;
use crate::dir::{self, SecretsDir};
use crate::error::{Error, Result};
use crate::keep::keep_aside;
use crate::parse::{self, Entries};
use crate::seal;

/// What `rollback` did. Names and counts only, never values.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct RollbackReport {
    /// `secrets.json`, now holding every value of `secrets.enc` in plaintext.
    pub plaintext_file: PathBuf,
    /// Where `secrets.enc` was kept (it no longer exists under its name).
    pub kept_encrypted: PathBuf,
    /// Where the previous `secrets.json` was kept, when it differed.
    pub kept_plaintext: Option<PathBuf>,
    /// Entries written.
    pub total: usize,
    /// String values opened.
    pub opened: usize,
    /// The names written.
    pub names: Vec<String>,
}

impl SecretsDir {
    /// Opens every value of `secrets.enc` and writes them in plaintext to
    /// `secrets.json`, so values added or changed after migration are kept.
    /// A previous `secrets.json` that differs is kept as
    /// `secrets.json.kept.<n>`; `secrets.enc` is kept as
    /// `secrets.enc.kept.<n>` and removed under its name, so the plaintext
    /// file is the one in use. If any value does not open, nothing changes.
    pub fn rollback(&self, keyring: &Keyring) -> Result<RollbackReport> {
        let _lock = self.lock()?;
        let enc_path = self.encrypted_path();
        let plain_path = self.plaintext_path();
        let entries = self.read_encrypted()?;

        let mut items: Vec<(&String, &Value)> = entries.iter().collect();
        // Every string, nested ones included, is opened (a plaintext one is
        // kept as it is), so secrets.json gets the exact JSON back.
        let opened = seal::par_map(&mut items, |(name, value)| {
            seal::open_value(keyring, name, value, true)
        });
        let mut out = Entries::with_capacity(entries.len());
        let mut failures = Vec::new();
        for ((name, _), result) in items.iter().zip(opened) {
            match result {
                Ok(value) => {
                    out.insert((*name).clone(), value);
                }
                Err(mut failed) => failures.append(&mut failed),
            }
        }
        if !failures.is_empty() {
            return Err(Error::DoNotOpen {
                path: enc_path,
                failures,
            });
        }

        let bytes = dir::render(&out).map_err(|e| Error::io(&plain_path, "render", e))?;
        let kept_plaintext = match parse::read_entries_if_exists(&plain_path, self.max_size()) {
            Ok(Some(current)) if same_entries(&current, &out) => None,
            Ok(None) => {
                self.write_bytes(&plain_path, &bytes)?;
                None
            }
            // Different, or unreadable as a secrets file: keep it either way.
            _ => {
                let kept = keep_aside(&plain_path)?;
                self.write_bytes(&plain_path, &bytes)?;
                Some(kept)
            }
        };
        let kept_encrypted = keep_aside(&enc_path)?;
        std::fs::remove_file(&enc_path).map_err(|e| Error::io(&enc_path, "remove", e))?;
        atomic::sync_dir(&atomic::parent_dir(&enc_path))
            .map_err(|e| Error::io(&enc_path, atomic::STEP_SYNC_DIR, e))?;

        let report = RollbackReport {
            plaintext_file: plain_path,
            kept_encrypted,
            kept_plaintext,
            total: out.len(),
            opened: out.values().filter(|v| v.is_string()).count(),
            names: out.keys().cloned().collect(),
        };
        tracing::info!(
            file = %report.plaintext_file.display(),
            total = report.total,
            kept_encrypted = %report.kept_encrypted.display(),
            "rollback"
        );
        Ok(report)
    }
}

/// Same names, same order, same values.
fn same_entries(a: &Entries, b: &Entries) -> bool {
    a.len() == b.len() && a.iter().zip(b.iter()).all(|(x, y)| x == y)
}
