//! The wiring both binaries share: what `atom` and `atom-server` assemble
//! from configuration.
//!
//! - [`Settings`]: the environment variables and flags of both binaries,
//!   named once (one clap `Args`), and the parts built from them: the key
//!   configuration, the auditor, the secrets folder, the credential store.
//! - [`init_tracing`]: logs to stderr.
//! - [`security_configuration`] and [`credential_list`]: the JSON documents
//!   the CLI prints and the server serves, in one shape.
//! - [`Error`]: one error type for all of it.
//!
//! Library messages say what is wrong and which variable or file; hints
//! that name a command are the binaries' to add.

mod configuration;
mod doctor;
mod documents;
mod error;
pub mod hints;
mod rotation;
mod setup;

pub use configuration::{
    CredentialCounts, KeyEntry, SecurityConfiguration, security_configuration,
};
pub use doctor::{Cause, Check, CheckId, Diagnosis, DoctorReport, Symptom, Verdict, doctor};
pub use documents::{credential_list, init_tracing};
pub use error::Error;
pub use rotation::{KeyFileArgs, RotateArgs};
pub use setup::{
    AuditSinkKind, DEFAULT_AUDIT_LOG, DEFAULT_DATA_DIR, DEFAULT_DATABASE_URL, DatabaseAccess,
    ENV_AUDIT_ANCHOR, ENV_AUDIT_LOG, ENV_AUDIT_SINK, ENV_BIND, ENV_DATA_DIR, ENV_KEY_MAX_AGE_DAYS,
    ENV_SECRETS_DIR, Settings, development_allowed, development_key_path,
};
