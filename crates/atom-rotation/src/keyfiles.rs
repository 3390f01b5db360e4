//! The key files rotation manages, read and replaced atomically:
//! - the primary key file (`ENCRYPTION_KEY_FILE`), one key;
//! - the previous-keys file (`ENCRYPTION_PREVIOUS_KEYS_FILE`), decrypt-only
//!   keys, one a line, `#` comments kept;
//! - the retired-keys file ([`ENV_RETIRED_KEYS_FILE`], by default
//!   `retired.keys` beside the previous-keys file), same format, which no
//!   app loads: retiring moves a key there, never deletes it.
//!
//! Keys are files because a running app cannot have its environment
//! edited: an app that reloads (or restarts) reads the new files.

use std::path::{Path, PathBuf};

use atom_crypto::{ENV_KEY_FILE, ENV_PREVIOUS_KEYS_FILE, Key, KeyId};
use zeroize::Zeroizing;

use crate::error::Error;

/// The retired-keys file (for `atom keys` only; apps never read it).
pub const ENV_RETIRED_KEYS_FILE: &str = "ENCRYPTION_RETIRED_KEYS_FILE";
/// The retired-keys file's name when [`ENV_RETIRED_KEYS_FILE`] is unset,
/// in the directory of the previous-keys file.
pub const RETIRED_KEYS_FILE: &str = "retired.keys";

/// Where the keys live.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyFiles {
    /// The primary key: one key, one line.
    pub primary: PathBuf,
    /// Decrypt-only keys: one a line, blank lines and `#` comments kept.
    pub previous: PathBuf,
    /// Retired keys: kept, never loaded by an app.
    pub retired: PathBuf,
}

impl KeyFiles {
    /// Key files named explicitly; the retired-keys file goes beside the
    /// previous-keys file.
    pub fn new(primary: impl Into<PathBuf>, previous: impl Into<PathBuf>) -> KeyFiles {
        let previous = previous.into();
        let retired = parent_dir(&previous).join(RETIRED_KEYS_FILE);
        KeyFiles {
            primary: primary.into(),
            previous,
            retired,
        }
    }

    /// The same files with the retired keys kept in `retired`.
    pub fn with_retired(mut self, retired: impl Into<PathBuf>) -> KeyFiles {
        self.retired = retired.into();
        self
    }

    /// The key files from the flags, else from `ENCRYPTION_KEY_FILE`,
    /// `ENCRYPTION_PREVIOUS_KEYS_FILE` and [`ENV_RETIRED_KEYS_FILE`] through
    /// `lookup` (an environment). `None` when no primary key file is named
    /// either way (the keys may be in environment variables, see
    /// [`KeyFiles::move_to_files_instructions`]).
    pub fn resolve(
        primary: Option<PathBuf>,
        previous: Option<PathBuf>,
        retired: Option<PathBuf>,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<KeyFiles>, Error> {
        let set = |name: &str| {
            lookup(name)
                .filter(|v| !v.trim().is_empty())
                .map(PathBuf::from)
        };
        let Some(primary) = primary.or_else(|| set(ENV_KEY_FILE)) else {
            return Ok(None);
        };
        let Some(previous) = previous.or_else(|| set(ENV_PREVIOUS_KEYS_FILE)) else {
            return Err(Error::Usage(format!(
                "rotation adds the new key to the previous-keys file first, so the apps must read one: set {ENV_PREVIOUS_KEYS_FILE} (or pass --previous-keys-file) to the file the apps read with {ENV_PREVIOUS_KEYS_FILE} beside {ENV_KEY_FILE}={}; it may be empty or missing at first",
                primary.display()
            )));
        };
        let files = KeyFiles::new(primary, previous);
        Ok(Some(match retired.or_else(|| set(ENV_RETIRED_KEYS_FILE)) {
            Some(r) => files.with_retired(r),
            None => files,
        }))
    }

    /// Shell commands that move keys held in `ENCRYPTION_KEY` and
    /// `ENCRYPTION_PREVIOUS_KEYS` into key files in the folder `keys`
    /// (created, mode 0700) and point this shell at them; they run as
    /// printed.
    pub fn move_to_files_instructions() -> String {
        "mkdir -p -m 700 keys && (umask 077; printf '%s\\n' \"$ENCRYPTION_KEY\" > keys/encryption.key; printf '%s' \"${ENCRYPTION_PREVIOUS_KEYS:-}\" | tr ',' '\\n' > keys/previous.keys) && export ENCRYPTION_KEY_FILE=\"$PWD/keys/encryption.key\" ENCRYPTION_PREVIOUS_KEYS_FILE=\"$PWD/keys/previous.keys\" && unset ENCRYPTION_KEY ENCRYPTION_PREVIOUS_KEYS".to_owned()
    }

    /// The directory of the primary key file (where the state file goes).
    pub fn dir(&self) -> PathBuf {
        parent_dir(&self.primary)
    }

    /// The primary key.
    pub(crate) fn read_primary(&self) -> Result<Key, Error> {
        read_one_key(&self.primary)
    }

    /// The previous-keys file as lines; missing is empty.
    pub(crate) fn read_previous(&self) -> Result<KeyLines, Error> {
        KeyLines::read(&self.previous)
    }

    /// The retired-keys file as lines; missing is empty.
    pub(crate) fn read_retired(&self) -> Result<KeyLines, Error> {
        KeyLines::read(&self.retired)
    }

    /// Replaces the primary key file with `key`.
    pub(crate) fn write_primary(&self, key: &Key) -> Result<(), Error> {
        let mut text = Zeroizing::new(String::with_capacity(48));
        text.push_str(&key.expose_base64());
        text.push('\n');
        write_atomically(&self.primary, text.as_bytes())
    }

    /// Replaces the previous-keys file with `lines`.
    pub(crate) fn write_previous(&self, lines: &KeyLines) -> Result<(), Error> {
        write_atomically(&self.previous, lines.render().as_bytes())
    }

    /// Replaces the retired-keys file with `lines`.
    pub(crate) fn write_retired(&self, lines: &KeyLines) -> Result<(), Error> {
        write_atomically(&self.retired, lines.render().as_bytes())
    }

    /// Moves the decrypt-only key `key` from the previous-keys file to the
    /// retired-keys file. The retired file is written first, so a crash in
    /// between leaves the key in both files, never in neither.
    pub(crate) fn retire(&self, key: &Key, note: &str) -> Result<(), Error> {
        let mut retired = self.read_retired()?;
        retired.add(key, note);
        self.write_retired(&retired)?;
        let mut previous = self.read_previous()?;
        previous.remove(key.id());
        self.write_previous(&previous)
    }
}

/// Reads a file that holds exactly one key.
pub(crate) fn read_one_key(path: &Path) -> Result<Key, Error> {
    let text = read_text(path)?;
    let line = text.trim_end_matches(['\n', '\r']);
    Key::parse(line).map_err(|problem| {
        Error::Usage(format!(
            "{} {problem}; it must hold exactly one key, as made by key generation",
            path.display()
        ))
    })
}

/// A line of the previous-keys file.
pub(crate) enum Line {
    /// Blank or `#` comment, kept as it is.
    Other(String),
    /// A key.
    Key(Key),
}

/// The previous-keys file, line by line, so that comments survive edits.
#[derive(Default)]
pub(crate) struct KeyLines {
    pub(crate) lines: Vec<Line>,
}

impl KeyLines {
    /// Reads `path`; a missing file is empty.
    fn read(path: &Path) -> Result<KeyLines, Error> {
        if !path.exists() {
            return Ok(KeyLines::default());
        }
        KeyLines::parse(&read_text(path)?, path)
    }

    fn parse(text: &str, path: &Path) -> Result<KeyLines, Error> {
        let mut lines = Vec::new();
        for (i, line) in text.split('\n').enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                lines.push(Line::Other(line.to_owned()));
                continue;
            }
            let key = Key::parse(line).map_err(|problem| {
                Error::Usage(format!(
                    "{} line {}: the key {problem}; fix or remove that line",
                    path.display(),
                    i + 1
                ))
            })?;
            lines.push(Line::Key(key));
        }
        // The final newline makes an empty last "line"; it is re-added by render.
        if matches!(lines.last(), Some(Line::Other(l)) if l.is_empty()) {
            lines.pop();
        }
        Ok(KeyLines { lines })
    }

    /// The keys, in file order.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &Key> {
        self.lines.iter().filter_map(|l| match l {
            Line::Key(k) => Some(k),
            Line::Other(_) => None,
        })
    }

    pub(crate) fn contains(&self, id: KeyId) -> bool {
        self.keys().any(|k| k.id() == id)
    }

    /// The key with this id.
    pub(crate) fn find(&self, id: KeyId) -> Option<&Key> {
        self.keys().find(|k| k.id() == id)
    }

    /// Appends `key` with a comment naming its id, unless it is there.
    pub(crate) fn add(&mut self, key: &Key, note: &str) {
        if self.contains(key.id()) {
            return;
        }
        self.lines.push(Line::Other(format!(
            "# {} {note} at {}",
            key.id(),
            chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ")
        )));
        self.lines.push(Line::Key(key.clone()));
    }

    /// Removes the key `id` and the comment lines that name it.
    pub(crate) fn remove(&mut self, id: KeyId) {
        let id_text = id.to_string();
        self.lines.retain(|l| match l {
            Line::Key(k) => k.id() != id,
            Line::Other(text) => !(text.starts_with('#') && text.contains(&id_text)),
        });
    }

    pub(crate) fn render(&self) -> Zeroizing<String> {
        let mut out = Zeroizing::new(String::new());
        for line in &self.lines {
            match line {
                Line::Other(text) => out.push_str(text),
                Line::Key(key) => out.push_str(&key.expose_base64()),
            }
            out.push('\n');
        }
        out
    }
}

fn read_text(path: &Path) -> Result<Zeroizing<String>, Error> {
    let bytes =
        atom_io::read_bounded_secret(path, atom_io::MAX_SECRET_FILE_BYTES).map_err(|e| {
            Error::Usage(format!(
                "cannot read the key file {}: {}; check the path and its permissions",
                path.display(),
                match e.kind() {
                    std::io::ErrorKind::FileTooLarge => e.to_string(),
                    kind => kind.to_string(),
                }
            ))
        })?;
    match std::str::from_utf8(&bytes) {
        Ok(text) => Ok(Zeroizing::new(text.to_owned())),
        Err(_) => Err(Error::Usage(format!(
            "the key file {} is not text; it holds url-safe base64 keys, one a line",
            path.display()
        ))),
    }
}

pub(crate) fn parent_dir(path: &Path) -> PathBuf {
    atom_io::parent_dir(path)
}

/// Replaces `target` with `bytes` atomically (atom-io: temp file of mode
/// 0600 in the same directory, fsync, rename, fsync of the directory). A
/// crash leaves the old or the new file, never a torn one.
pub(crate) fn write_atomically(target: &Path, bytes: &[u8]) -> Result<(), Error> {
    atom_io::write_atomically(target, bytes).map_err(|e| {
        Error::Failed(format!(
            "{e}; {}",
            if e.step == atom_io::WriteStep::SyncDir {
                "the file was replaced but may not survive a power loss; run the command again"
            } else {
                "the previous file is unchanged"
            }
        ))
    })
}
