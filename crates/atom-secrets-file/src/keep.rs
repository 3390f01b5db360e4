//! Keeping a file aside instead of losing it: `secrets.json` ->
//! `secrets.json.kept.1` (the first free number).

use std::io;
use std::path::{Path, PathBuf};

use crate::atomic;
use crate::error::{Error, Result};

/// Gives the current content of `path` a second name `<path>.kept.<n>` and
/// returns it. `path` itself is left in place; the caller then replaces or
/// removes it. Hard-linked where possible, copied otherwise.
pub(crate) fn keep_aside(path: &Path) -> Result<PathBuf> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    for n in 1u32.. {
        let kept = path.with_file_name(format!("{name}.kept.{n}"));
        match std::fs::hard_link(path, &kept) {
            Ok(()) => {
                atomic::sync_dir(&atomic::parent_dir(path))
                    .map_err(|e| Error::io(&kept, atomic::STEP_SYNC_DIR, e))?;
                return Ok(kept);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(_) => return copy_aside(path, &kept),
        }
    }
    Err(Error::io(
        path,
        "find a free name to keep a copy of",
        io::Error::other("every numbered name is taken"),
    ))
}

fn copy_aside(path: &Path, kept: &Path) -> Result<PathBuf> {
    // Only our own files are kept aside, and none is larger than a
    // secrets file may be.
    let bytes = atom_io::read_bounded(path, crate::DEFAULT_MAX_SIZE)
        .map_err(|e| Error::io(path, "read", e))?;
    atom_io::write_atomically(kept, &bytes)?;
    Ok(kept.to_owned())
}
