//! Atomic writes (atom-io's [`AtomicWriter`]) with this crate's errors.

pub(crate) use atom_io::{AtomicWriter, parent_dir, remove_stale_temps, sync_dir};

use crate::error::Error;

/// The step an fsync of a folder is named by in errors.
pub(crate) const STEP_SYNC_DIR: &str = "fsync the directory of";

impl From<atom_io::AtomicWriteError> for Error {
    fn from(e: atom_io::AtomicWriteError) -> Error {
        Error::io(e.target, e.step.describe(), e.source)
    }
}
