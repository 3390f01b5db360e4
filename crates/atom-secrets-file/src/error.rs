//! The one error type of this crate. No variant carries a secret value: only
//! paths, names, positions, counts and reason classes.

use std::fmt::Write as _;
use std::io;
use std::path::PathBuf;

use atom_crypto::CryptoError;

use atom_crypto::OpenFailure;

/// What went wrong with a secrets file. Every message names the file (or
/// the entry), the problem and the next step.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file an operation needs does not exist.
    #[error("{} does not exist; {hint}", path.display())]
    Missing {
        /// The missing file.
        path: PathBuf,
        /// What to do about it.
        hint: &'static str,
    },

    /// The file exists but cannot be read (permissions, a directory, ...).
    #[error("cannot read {}: {kind}; check the path and its permissions", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        kind: io::ErrorKind,
    },

    /// The file is empty or only whitespace.
    #[error(
        "{} is empty; a secrets file is a JSON object such as {{\"NAME\": \"value\"}}. Restore it from a backup or delete it",
        path.display()
    )]
    Empty {
        /// The file.
        path: PathBuf,
    },

    /// The file is larger than the configured limit.
    #[error(
        "{} is {size} bytes, more than the limit of {limit} bytes; if the file is genuine, raise the limit (SecretsDir::with_max_size)",
        path.display()
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size in bytes.
        size: u64,
        /// The configured limit in bytes.
        limit: u64,
    },

    /// The file is not UTF-8 text.
    #[error(
        "{} is not UTF-8 text: invalid byte at line {line}, column {column}; save the file as UTF-8",
        path.display()
    )]
    NotUtf8 {
        /// The file.
        path: PathBuf,
        /// 1-based line of the first invalid byte.
        line: usize,
        /// 1-based column (in bytes) of the first invalid byte.
        column: usize,
    },

    /// The file starts with a UTF-8 byte order mark, which JSON does not
    /// allow (editors on Windows add one).
    #[error(
        "{} starts with a UTF-8 BOM (byte order mark, bytes EF BB BF), which JSON does not allow; save the file as UTF-8 without BOM",
        path.display()
    )]
    Bom {
        /// The file.
        path: PathBuf,
    },

    /// The file is not valid JSON.
    #[error(
        "{} is not valid JSON: {problem} at line {line}, column {column}; fix the file and run the command again",
        path.display()
    )]
    InvalidJson {
        /// The file.
        path: PathBuf,
        /// The parser's description (never contains file content).
        problem: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
    },

    /// The top-level JSON value is not an object.
    #[error(
        "{}: the top level is {found}, not a JSON object; a secrets file maps names to values: {{\"NAME\": \"value\"}}",
        path.display()
    )]
    NotAnObject {
        /// The file.
        path: PathBuf,
        /// What it is instead ("an array", "a string", ...).
        found: &'static str,
    },

    /// The same name appears twice in one object.
    #[error(
        "{}: the name \"{name}\" appears twice (second at line {line}, column {column}); JSON readers silently keep only one, so remove the wrong one",
        path.display()
    )]
    DuplicateName {
        /// The file.
        path: PathBuf,
        /// The repeated name.
        name: String,
        /// 1-based line of the second occurrence.
        line: usize,
        /// 1-based column of the second occurrence.
        column: usize,
    },

    /// A number that cannot be kept exactly: an integer beyond 64 bits (or
    /// a whole number written with an exponent past 2^64), which JSON readers
    /// turn into the nearest double.
    #[error(
        "{}: the number at line {line}, column {column} is too large to keep exactly (beyond 64 bits, readers round it to other digits); write it as a string (in quotes) and run the command again",
        path.display()
    )]
    InexactNumber {
        /// The file.
        path: PathBuf,
        /// 1-based line just after the number.
        line: usize,
        /// 1-based column just after the number.
        column: usize,
    },

    /// Values that look encrypted (or must be) do not open. Nothing was changed.
    #[error("{}: {}", path.display(), describe_failures(failures))]
    DoNotOpen {
        /// The file.
        path: PathBuf,
        /// Each failing name with its reason class.
        failures: Vec<(String, OpenFailure)>,
    },

    /// A rewrap found plaintext values while sealing plaintext was not
    /// asked for. Nothing was changed.
    #[error(
        "{}: {} value(s) are stored in plaintext ({}); a rewrap seals plaintext only when asked to: check that each is the secret itself and not a damaged ciphertext, then ask for plaintext to be sealed",
        path.display(), names.len(), list_names(names)
    )]
    PlaintextNotSealed {
        /// The file.
        path: PathBuf,
        /// The names of the plaintext values.
        names: Vec<String>,
    },

    /// Migrating would overwrite values that exist only in `secrets.enc`.
    #[error(
        "{} holds values that {} lacks ({}); migrating would overwrite them, so nothing was changed. Run rollback to bring {} up to date first, or move {} away if it is stale",
        encrypted.display(), plaintext.display(), describe_lost(only_encrypted, differing),
        plaintext.display(), encrypted.display()
    )]
    WouldLoseSecrets {
        /// The encrypted file.
        encrypted: PathBuf,
        /// The plaintext file.
        plaintext: PathBuf,
        /// Names present only in the encrypted file.
        only_encrypted: Vec<String>,
        /// Names whose value differs between the two files.
        differing: Vec<String>,
    },

    /// Removing plaintext copies would lose values not in `secrets.enc`.
    #[error(
        "{} has values that {} lacks or holds differently ({}); nothing was removed. Run migrate (or set those names) first{}",
        plaintext.display(), encrypted.display(), list_names(names),
        if *backup { ", or pass the option that drops a stale backup" } else { "" }
    )]
    PlaintextNotCovered {
        /// The plaintext file (secrets.json or its backup).
        plaintext: PathBuf,
        /// The encrypted file.
        encrypted: PathBuf,
        /// Names missing from, or different in, the encrypted file.
        names: Vec<String>,
        /// Whether `plaintext` is the backup (which may be dropped by option).
        backup: bool,
    },

    /// `secrets.json` exists but `secrets.enc` does not: the files are not migrated.
    #[error(
        "{} does not exist but {} does; run migrate first so that edits go to the encrypted file",
        encrypted.display(), plaintext.display()
    )]
    NotMigrated {
        /// The encrypted file.
        encrypted: PathBuf,
        /// The plaintext file.
        plaintext: PathBuf,
    },

    /// No entry has this name.
    #[error("{} has no entry named \"{name}\"; list shows the names", path.display())]
    NoSuchName {
        /// The file.
        path: PathBuf,
        /// The name asked for.
        name: String,
    },

    /// A name that cannot be used.
    #[error("the name \"{name}\" cannot be used: {problem}")]
    InvalidName {
        /// The name.
        name: String,
        /// Why.
        problem: &'static str,
    },

    /// Two names map to the same environment variable.
    #[error(
        "the names \"{first}\" and \"{second}\" both map to the environment variable {variable}; rename one of them"
    )]
    EnvCollision {
        /// The first name.
        first: String,
        /// The second name.
        second: String,
        /// The variable both map to.
        variable: String,
    },

    /// A value cannot be put in an environment variable.
    #[error(
        "the value of \"{name}\" cannot be passed as {variable}: {problem}; change the value or run without exec"
    )]
    EnvValue {
        /// The name.
        name: String,
        /// Its environment variable.
        variable: String,
        /// Why (never the value).
        problem: &'static str,
    },

    /// An environment setting has a value this crate does not understand.
    #[error("{variable} must be 1, true, 0 or false; unset it for the default")]
    BadSetting {
        /// The variable.
        variable: &'static str,
    },

    /// The child command could not be started.
    #[error("could not start {program}: {kind}; check that it is installed and on PATH")]
    Spawn {
        /// The program.
        program: String,
        /// The operating system's reason.
        kind: io::ErrorKind,
    },

    /// An I/O step failed. Files are replaced only by atomic rename, so the
    /// previous file is intact unless `step` says the rename happened.
    #[error("could not {step} {}: {source}; {}", path.display(), after(step))]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The step that failed.
        step: &'static str,
        /// The operating system's error.
        source: io::Error,
    },

    /// The audit log could not record the operation, so it was not done
    /// (or, for an event recorded after a change, the change is reported
    /// as not audited).
    #[error("{0}")]
    Audit(#[from] atom_audit::AuditError),

    /// A key or value error from atom-crypto outside a per-name check.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The class of this error (an exhaustive match), for the faces to
    /// answer by.
    pub fn class(&self) -> atom_crypto::ErrorClass {
        use atom_crypto::ErrorClass;
        match self {
            Error::NoSuchName { .. } => ErrorClass::NotFound,
            // The files' content, or an argument, is not what it must be.
            Error::Empty { .. }
            | Error::TooLarge { .. }
            | Error::NotUtf8 { .. }
            | Error::Bom { .. }
            | Error::InvalidJson { .. }
            | Error::NotAnObject { .. }
            | Error::DuplicateName { .. }
            | Error::InexactNumber { .. }
            | Error::InvalidName { .. }
            | Error::EnvCollision { .. }
            | Error::EnvValue { .. } => ErrorClass::InvalidInput,
            Error::DoNotOpen { .. } | Error::PlaintextNotSealed { .. } => ErrorClass::CannotOpen,
            // Refused so that nothing is lost: the state conflicts with
            // the operation.
            Error::WouldLoseSecrets { .. } | Error::PlaintextNotCovered { .. } => {
                ErrorClass::Conflict
            }
            Error::Missing { .. } | Error::NotMigrated { .. } | Error::BadSetting { .. } => {
                ErrorClass::Misconfigured
            }
            Error::Unreadable { .. } | Error::Spawn { .. } | Error::Io { .. } => {
                ErrorClass::Unavailable
            }
            Error::Audit(e) => e.class(),
            Error::Crypto(e) => e.class(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, step: &'static str, source: io::Error) -> Error {
        Error::Io {
            path: path.into(),
            step,
            source,
        }
    }
}

fn after(step: &str) -> &'static str {
    if step == crate::atomic::STEP_SYNC_DIR {
        "the new file is in place but may not survive a power loss; run the command again"
    } else {
        "the previous file is unchanged; fix the cause and run the command again"
    }
}

const SHOWN: usize = 5;

fn list_names(names: &[String]) -> String {
    let mut out = String::new();
    for (i, name) in names.iter().take(SHOWN).enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "\"{name}\"");
    }
    if names.len() > SHOWN {
        let _ = write!(out, " and {} more", names.len() - SHOWN);
    }
    out
}

fn describe_lost(only: &[String], differing: &[String]) -> String {
    match (only.is_empty(), differing.is_empty()) {
        (false, true) => format!("only there: {}", list_names(only)),
        (true, false) => format!("changed there: {}", list_names(differing)),
        _ => format!(
            "only there: {}; changed there: {}",
            list_names(only),
            list_names(differing)
        ),
    }
}

fn describe_failures(failures: &[(String, OpenFailure)]) -> String {
    let mut out = format!("{} value(s) do not open: ", failures.len());
    for (i, (name, class)) in failures.iter().take(SHOWN).enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "\"{name}\" ({class})");
    }
    if failures.len() > SHOWN {
        let _ = write!(out, " and {} more", failures.len() - SHOWN);
    }
    out.push_str(
        "; nothing was changed. A value sealed under a key not configured needs that key in ENCRYPTION_PREVIOUS_KEYS; a value altered or moved to another name must be restored from a backup; run verify for the full list",
    );
    out
}
