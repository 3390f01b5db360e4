use std::io;
use std::path::PathBuf;

use atom_crypto::{KeyId, KeyProblem};

/// What went wrong in atom-audit. No variant carries a key or a secret
/// value; paths, key ids and sink names are named so the operator knows
/// where to look.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// Neither `ATOM_AUDIT_KEY` nor `ATOM_AUDIT_KEY_FILE` is set.
    #[error(
        "no audit key is configured; set ATOM_AUDIT_KEY (or ATOM_AUDIT_KEY_FILE) to a key of its own (never an encryption key)"
    )]
    NoAuditKey,

    /// The configured audit key does not parse.
    #[error("{source_name} {problem}")]
    BadAuditKey {
        /// Where the key came from, e.g. `ATOM_AUDIT_KEY`; never its value.
        source_name: String,
        /// What is wrong with it.
        problem: KeyProblem,
    },

    /// The audit configuration (key, fail-open setting) is contradictory
    /// or unreadable; the message names the variable.
    #[error("{0}")]
    Config(String),

    /// The log file cannot be opened or created.
    #[error(
        "cannot open audit log {path}: {source}; check that its directory exists and is writable"
    )]
    Open {
        /// The log file.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },

    /// An event could not be appended (disk full, I/O error). The audited
    /// operation must not proceed.
    #[error(
        "cannot append to audit log {path}: {source}; the operation was refused because auditing is fail-closed. Free disk space or repair the file system, then restart the service and verify the log"
    )]
    Write {
        /// The log file.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },

    /// The log file was removed, renamed or replaced while the sink had it
    /// open; records would go to a file nobody can see.
    #[error(
        "audit log {path} was removed or replaced while in use; the operation was refused because auditing is fail-closed. Restore the file (or its directory) and restart the service; rotate logs only while the service is stopped"
    )]
    Replaced {
        /// The log file.
        path: PathBuf,
    },

    /// An earlier append failed, so the end of the file is uncertain; the
    /// sink refuses every further event rather than extend a broken chain.
    #[error(
        "audit log {path} refuses events after an earlier write failed; restart the service after fixing the cause, and verify the log"
    )]
    Poisoned {
        /// The log file.
        path: PathBuf,
    },

    /// The existing log cannot be continued (its end is cut or damaged).
    #[error(
        "audit log {path} cannot be continued: {problem}. Keep the file as evidence, verify it, and start a new log file"
    )]
    Damaged {
        /// The log file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },

    /// The log was written under another audit key.
    #[error(
        "audit log {path} is chained under audit key {needed}, but the configured audit key is {configured}; set ATOM_AUDIT_KEY to key {needed}, or start a new log file"
    )]
    WrongKey {
        /// The log file.
        path: PathBuf,
        /// The key id the log names.
        needed: KeyId,
        /// The key id of the configured key.
        configured: KeyId,
    },

    /// The log (or its checkpoint file) cannot be read for verification.
    #[error("cannot read {path}: {source}; check the path and its permissions")]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },

    /// A sink other than the file sink could not record the event.
    #[error(
        "audit sink {sink} could not record the event: {message}; the operation was refused because auditing is fail-closed"
    )]
    Sink {
        /// The sink's name.
        sink: String,
        /// What went wrong.
        message: String,
    },
}

impl AuditError {
    /// The class of this error (an exhaustive match): a missing or bad
    /// audit key is the operator's to set; a log that cannot be written or
    /// read refuses the operation until it can.
    pub fn class(&self) -> atom_crypto::ErrorClass {
        use atom_crypto::ErrorClass;
        match self {
            AuditError::NoAuditKey | AuditError::BadAuditKey { .. } | AuditError::Config(_) => {
                ErrorClass::Misconfigured
            }
            AuditError::Open { .. }
            | AuditError::Write { .. }
            | AuditError::Replaced { .. }
            | AuditError::Poisoned { .. }
            | AuditError::Damaged { .. }
            | AuditError::WrongKey { .. }
            | AuditError::Read { .. }
            | AuditError::Sink { .. } => ErrorClass::Unavailable,
        }
    }
}
