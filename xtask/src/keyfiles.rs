//! The key files rotation manages: the primary key file
//! (`ENCRYPTION_KEY_FILE`) and the previous-keys file
//! (`ENCRYPTION_PREVIOUS_KEYS_FILE`, one key a line, `#` comments), read
//! and replaced atomically.
//!
//! Keys are files because a running app cannot have its environment
//! edited: an app that reloads (or restarts) reads the new files.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use atom_crypto::{ENV_KEY, ENV_KEY_FILE, ENV_PREVIOUS_KEYS, ENV_PREVIOUS_KEYS_FILE, Key, KeyId};
use zeroize::Zeroizing;

use crate::error::Error;

/// Where the keys live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFiles {
    /// The primary key: one key, one line.
    pub primary: PathBuf,
    /// Decrypt-only keys: one a line, blank lines and `#` comments kept.
    pub previous: PathBuf,
}

impl KeyFiles {
    /// Key files named explicitly.
    pub fn new(primary: impl Into<PathBuf>, previous: impl Into<PathBuf>) -> KeyFiles {
        KeyFiles {
            primary: primary.into(),
            previous: previous.into(),
        }
    }

    /// The key files from the flags, else from `ENCRYPTION_KEY_FILE` and
    /// `ENCRYPTION_PREVIOUS_KEYS_FILE` through `lookup` (an environment).
    /// Keys held only in environment variables are refused with the steps
    /// to move them to files.
    pub fn resolve(
        primary: Option<PathBuf>,
        previous: Option<PathBuf>,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<KeyFiles, Error> {
        let set = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let primary = match primary.or_else(|| set(ENV_KEY_FILE).map(PathBuf::from)) {
            Some(p) => p,
            None if set(ENV_KEY).is_some() => {
                return Err(Error::Usage(format!(
                    "{ENV_KEY} holds the key in the environment, which a running app cannot have edited, so rotation manages keys as files. \
                     Move it to files: `umask 077; printf '%s\\n' \"${ENV_KEY}\" > /etc/atom/encryption.key; touch /etc/atom/previous.keys`, \
                     configure every app instance with {ENV_KEY_FILE}=/etc/atom/encryption.key and {ENV_PREVIOUS_KEYS_FILE}=/etc/atom/previous.keys \
                     instead of {ENV_KEY}/{ENV_PREVIOUS_KEYS}, restart them, then run: \
                     cargo xtask rotate-keys --key-file /etc/atom/encryption.key --previous-keys-file /etc/atom/previous.keys"
                )));
            }
            None => {
                return Err(Error::Usage(format!(
                    "no key file: pass --key-file (or set {ENV_KEY_FILE}) naming the file that holds the primary key, as the apps are configured"
                )));
            }
        };
        let previous = match previous.or_else(|| set(ENV_PREVIOUS_KEYS_FILE).map(PathBuf::from)) {
            Some(p) => p,
            None => {
                let why = if set(ENV_PREVIOUS_KEYS).is_some() {
                    format!(
                        "{ENV_PREVIOUS_KEYS} holds previous keys in the environment, which a running app cannot have edited; write them one a line to a file, configure the apps with {ENV_PREVIOUS_KEYS_FILE} instead, and "
                    )
                } else {
                    String::new()
                };
                return Err(Error::Usage(format!(
                    "rotation adds the new key to the previous-keys file first, so the apps must read one: {why}pass --previous-keys-file (or set {ENV_PREVIOUS_KEYS_FILE}) naming the file the apps read with {ENV_PREVIOUS_KEYS_FILE} (it may be empty or missing at first)"
                )));
            }
        };
        Ok(KeyFiles { primary, previous })
    }

    /// The directory of the primary key file (where the state file goes).
    pub fn dir(&self) -> PathBuf {
        parent_dir(&self.primary)
    }

    /// The primary key.
    pub(crate) fn read_primary(&self) -> Result<Key, Error> {
        let text = read_text(&self.primary)?;
        let line = text.trim_end_matches(['\n', '\r']);
        Key::parse(line).map_err(|problem| {
            Error::Usage(format!(
                "{} {problem}; it must hold exactly one key from: atom key generate",
                self.primary.display()
            ))
        })
    }

    /// The previous-keys file as lines; missing is empty.
    pub(crate) fn read_previous(&self) -> Result<KeyLines, Error> {
        if !self.previous.exists() {
            return Ok(KeyLines::default());
        }
        KeyLines::parse(&read_text(&self.previous)?, &self.previous)
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
        let text = lines.render();
        write_atomically(&self.previous, text.as_bytes())
    }
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
    fn parse(text: &str, path: &Path) -> Result<KeyLines, Error> {
        let mut lines = Vec::new();
        for (i, line) in text.split('\n').enumerate() {
            let line = line.trim_end_matches('\r');
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

    /// Appends `key` with a comment naming its id, unless it is there.
    pub(crate) fn add(&mut self, key: &Key, note: &str) {
        if self.contains(key.id()) {
            return;
        }
        self.lines.push(Line::Other(format!(
            "# {} {note} by cargo xtask rotate-keys at {}",
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

    fn render(&self) -> Zeroizing<String> {
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
    let bytes = std::fs::read(path).map_err(|e| {
        Error::Usage(format!(
            "cannot read the key file {}: {}; check the path and its permissions",
            path.display(),
            e.kind()
        ))
    })?;
    match String::from_utf8(bytes) {
        Ok(text) => Ok(Zeroizing::new(text)),
        Err(e) => {
            drop(Zeroizing::new(e.into_bytes()));
            Err(Error::Usage(format!(
                "the key file {} is not text; it holds url-safe base64 keys, one a line",
                path.display()
            )))
        }
    }
}

pub(crate) fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// Replaces `target` with `bytes`: a temp file in the same directory (mode
/// 0600), fsync, rename, fsync of the directory. A crash leaves the old or
/// the new file, never a torn one.
pub(crate) fn write_atomically(target: &Path, bytes: &[u8]) -> Result<(), Error> {
    let dir = parent_dir(target);
    let failed = |step: &str, e: std::io::Error| {
        Error::Failed(anyhow::anyhow!(
            "could not {step} for {}: {e}; the previous file is unchanged",
            target.display()
        ))
    };
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let prefix = format!(".{name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        builder.permissions(std::fs::Permissions::from_mode(0o600));
    }
    let mut temp = builder
        .tempfile_in(&dir)
        .map_err(|e| failed("create a temp file", e))?;
    temp.write_all(bytes).map_err(|e| failed("write", e))?;
    temp.as_file().sync_all().map_err(|e| failed("fsync", e))?;
    temp.persist(target)
        .map_err(|e| failed("rename the temp file", e.error))?;
    #[cfg(unix)]
    File::open(&dir).and_then(|d| d.sync_all()).map_err(|e| {
        Error::Failed(anyhow::anyhow!(
            "{} was replaced but its directory could not be synced ({e}); run the command again",
            target.display()
        ))
    })?;
    Ok(())
}
