//! When each key was introduced: `.atom-keys.json` beside the key files
//! (and the rotation state), written when a rotation introduces a key. Key
//! ids and times only. A key introduced before this file existed has no
//! time: its age is unknown, never taken as new, and a rotation policy
//! treats it as due.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use atom_crypto::KeyId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::keyfiles::write_atomically;

/// The file's name, in the directory of the primary key file.
pub const AGES_FILE: &str = ".atom-keys.json";
/// The default rotation policy: a primary key older than this many days is
/// due (`ATOM_KEY_MAX_AGE_DAYS`).
pub const DEFAULT_MAX_AGE_DAYS: u32 = 90;
/// The largest file read.
const MAX_BYTES: u64 = 1024 * 1024;

/// The introduction times of the keys, by id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyAges {
    /// Format version (1).
    version: u32,
    /// Key id -> when it was introduced.
    keys: BTreeMap<String, DateTime<Utc>>,
}

impl KeyAges {
    /// The file in `dir`.
    pub fn path_in(dir: &Path) -> PathBuf {
        dir.join(AGES_FILE)
    }

    /// Reads the file; empty when there is none.
    pub fn load(path: &Path) -> Result<KeyAges, Error> {
        let bytes = match atom_io::read_bounded(path, MAX_BYTES) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(KeyAges::default()),
            Err(e) => {
                return Err(Error::Failed(format!(
                    "cannot read the key ages {}: {e}",
                    path.display()
                )));
            }
        };
        serde_json::from_slice(&bytes).map_err(|e| {
            Error::Failed(format!(
                "the key ages {} are not valid ({e}); move the file aside (keys are then of unknown age) and run the command again",
                path.display()
            ))
        })
    }

    /// When `id` was introduced, if recorded.
    pub fn introduced(&self, id: KeyId) -> Option<DateTime<Utc>> {
        self.keys.get(&id.to_string()).copied()
    }

    /// The age of `id` at `now`, if its introduction was recorded.
    pub fn age(&self, id: KeyId, now: DateTime<Utc>) -> Option<chrono::Duration> {
        self.introduced(id).map(|t| now.signed_duration_since(t))
    }

    /// Records that `id` was introduced at `at`, unless it already is
    /// (atomically, mode 0600).
    pub(crate) fn record(path: &Path, id: KeyId, at: DateTime<Utc>) -> Result<(), Error> {
        let mut ages = KeyAges::load(path)?;
        if ages.introduced(id).is_some() {
            return Ok(());
        }
        ages.version = 1;
        ages.keys.insert(id.to_string(), at);
        let text = serde_json::to_vec_pretty(&ages)
            .map_err(|e| Error::Failed(format!("cannot encode the key ages: {e}")))?;
        write_atomically(path, &text)
    }
}

/// Whether a primary key of this age is due for rotation under a policy of
/// `max_age_days`: older than the policy, or of unknown age.
pub fn is_due(age: Option<chrono::Duration>, max_age_days: u32) -> bool {
    age.is_none_or(|age| age > chrono::Duration::days(i64::from(max_age_days)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ages_are_recorded_once_and_unknown_ages_are_due() {
        let dir = tempfile::tempdir().unwrap();
        let path = KeyAges::path_in(dir.path());
        let id = atom_crypto::Key::from_bytes([4; 32]).id();
        assert_eq!(KeyAges::load(&path).unwrap().introduced(id), None);
        let t0 = DateTime::from_timestamp(1_790_000_000, 0).unwrap();
        KeyAges::record(&path, id, t0).unwrap();
        KeyAges::record(&path, id, t0 + chrono::Duration::days(5)).unwrap();
        let ages = KeyAges::load(&path).unwrap();
        assert_eq!(ages.introduced(id), Some(t0));
        let now = t0 + chrono::Duration::days(30);
        assert_eq!(ages.age(id, now), Some(chrono::Duration::days(30)));
        assert!(!is_due(ages.age(id, now), 90));
        assert!(is_due(ages.age(id, t0 + chrono::Duration::days(91)), 90));
        assert!(is_due(None, 90), "an unknown age is never taken as new");
        std::fs::write(&path, "{not json").unwrap();
        assert!(KeyAges::load(&path).is_err());
    }
}
