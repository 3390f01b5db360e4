//! The rotation state file, `.atom-rotation.json` next to the primary key
//! file: the phase reached, the key ids (never keys) and the rewrap
//! cursors, written atomically after every step so that a second run after
//! a crash continues where the first stopped. A lock file next to it keeps
//! two runs from rotating at once.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use atom_crypto::KeyId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::keyfiles::write_atomically;

/// The state file's name, in the directory of the primary key file.
pub const STATE_FILE: &str = ".atom-rotation.json";
/// The lock file held while a rotation runs.
pub const LOCK_FILE: &str = ".atom-rotation.lock";

/// How far a rotation has got. Each phase is recorded once it is complete
/// (`Promoting` before the key files are touched).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Phase {
    /// The new key is in the previous-keys file, decrypt-only.
    Introduced,
    /// The key files are being switched (resumed idempotently).
    Promoting,
    /// The new key is primary; the old primary is decrypt-only.
    Promoted,
    /// Every value was rewrapped under the new key.
    Rewrapped,
    /// Verification passed; waiting for the old key to be retired.
    Verified,
    /// The old key was retired; the rotation is over.
    Finished,
}

impl Phase {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Introduced => "introduced",
            Phase::Promoting => "promoting",
            Phase::Promoted => "promoted",
            Phase::Rewrapped => "rewrapped",
            Phase::Verified => "verified",
            Phase::Finished => "finished",
        }
    }
}

/// Where a credential rewrap worker is: its id range and the last id it
/// committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeCursor {
    /// Ids above this.
    pub after: i64,
    /// Ids up to this; `None` is unbounded.
    pub up_to: Option<i64>,
    /// The last id looked at by a committed batch.
    pub last_id: Option<i64>,
    /// The range is exhausted.
    pub finished: bool,
}

/// The content of the state file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RotationState {
    /// Format version (1).
    pub version: u32,
    /// The phase reached.
    pub phase: Phase,
    /// The key being rotated away from (the primary when it started).
    pub old_key_id: KeyId,
    /// The key being rotated to.
    pub new_key_id: KeyId,
    /// When the rotation started.
    pub started_at: DateTime<Utc>,
    /// When this file was last written.
    pub updated_at: DateTime<Utc>,
    /// The secrets file was rewrapped.
    #[serde(default)]
    pub secrets_rewrapped: bool,
    /// Credential rows rewrapped so far (over all runs).
    #[serde(default)]
    pub rows_rewrapped: u64,
    /// Rewrap cursors per worker range (empty before rewrap starts, or with
    /// SKIP LOCKED workers, which need none).
    #[serde(default)]
    pub cursors: Vec<RangeCursor>,
}

/// The largest rotation state file read: key ids and a cursor per range
/// take far less.
const MAX_STATE_BYTES: u64 = 1024 * 1024;

impl RotationState {
    pub(crate) fn new(old: KeyId, new: KeyId) -> RotationState {
        let now = Utc::now();
        RotationState {
            version: 1,
            phase: Phase::Introduced,
            old_key_id: old,
            new_key_id: new,
            started_at: now,
            updated_at: now,
            secrets_rewrapped: false,
            rows_rewrapped: 0,
            cursors: Vec::new(),
        }
    }

    /// The state file in `dir`.
    pub fn path_in(dir: &Path) -> PathBuf {
        dir.join(STATE_FILE)
    }

    /// Reads the state file; `None` when there is none.
    pub fn load(path: &Path) -> Result<Option<RotationState>, Error> {
        let bytes = match atom_io::read_bounded(path, MAX_STATE_BYTES) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(Error::Failed(format!(
                    "cannot read the rotation state {}: {e}",
                    path.display()
                )));
            }
        };
        serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            Error::Usage(format!(
                "the rotation state {} is not valid ({e}); it is written atomically, so it was edited by hand: restore it, or remove it to start over from the key files as they are",
                path.display()
            ))
        })
    }

    /// Writes the state file atomically.
    pub(crate) fn save(&mut self, path: &Path) -> Result<(), Error> {
        self.updated_at = Utc::now();
        let mut bytes = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::Failed(format!("cannot render the rotation state: {e}")))?;
        bytes.push(b'\n');
        write_atomically(path, &bytes)
    }
}

/// Held while a rotation runs; released on drop or when the process dies.
#[derive(Debug)]
pub(crate) struct RotationLock {
    _file: File,
}

impl RotationLock {
    pub(crate) fn acquire(dir: &Path) -> Result<RotationLock, Error> {
        let path = dir.join(LOCK_FILE);
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let file = options.open(&path).map_err(|e| {
            Error::Failed(format!(
                "cannot open the rotation lock {}: {e}; check that the key directory is writable",
                path.display()
            ))
        })?;
        match file.try_lock() {
            Ok(()) => Ok(RotationLock { _file: file }),
            Err(TryLockError::WouldBlock) => Err(Error::Usage(format!(
                "another rotate-keys run holds {}; wait for it to finish (only one rotation runs at a time)",
                path.display()
            ))),
            Err(TryLockError::Error(e)) => Err(Error::Failed(format!(
                "cannot lock {}: {e}",
                path.display()
            ))),
        }
    }
}
