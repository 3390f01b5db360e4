//! Typed security events, fail-closed sinks and a tamper-evident log.
//!
//! Every access to a secret leaves a trace that cannot be quietly edited,
//! and no secret appears in any trace.
//!
//! - [`AuditEvent`]s are typed: an [`Action`] naming its subject by ids,
//!   key ids and keyed [`Fingerprint`]s only (there is no field for a
//!   value), an [`Outcome`], a time from an injected [`AuditClock`] and an
//!   [`Actor`] where known.
//! - [`Auditor::record`] is the call an audited operation makes before it
//!   proceeds; with the default [`FailureMode::Closed`] a sink error is
//!   returned and the operation must not go ahead.
//! - Sinks ([`AuditSink`]): [`TracingSink`] (the seed's line
//!   `Security Audit: credential_accessed - user=... - provider=...`),
//!   [`FileSink`] (append-only JSON Lines, each record MAC-chained under the
//!   audit key, with checkpoints that expose a cut tail), [`MemorySink`]
//!   for tests, [`FanOut`] to several.
//! - [`verify`] walks a log and reports the first record modified,
//!   inserted, removed or reordered, and a tail cut before the last
//!   checkpoint.
//! - [`Fingerprinter`] and [`mask`] let other crates refer to a value
//!   without revealing it.
//!
//! The audit key is an [`atom_crypto::Key`] of its own, configured with
//! [`ENV_AUDIT_KEY`] (`ATOM_AUDIT_KEY`) or [`ENV_AUDIT_KEY_FILE`]
//! (`ATOM_AUDIT_KEY_FILE`) and read with [`audit_key_from_env`]. Only
//! atom-crypto touches its bytes: the chain and the fingerprints use
//! [`atom_crypto::MacKey`]s derived from it for separate purposes.

mod action;
mod auditor;
mod chain;
mod clock;
mod error;
mod event;
mod file_sink;
mod fingerprint;
mod key;
mod record;
mod sink;
mod tracing_sink;
mod verify;

pub use action::{Action, DenialReason};
pub use auditor::{Auditor, ENV_AUDIT_FAIL_OPEN, FailureMode};
pub use chain::{ChainHead, ChainKey, Ledger, PendingEvent};
pub use clock::AuditClock;
pub use error::AuditError;
pub use event::{Actor, AuditEvent, Outcome, Subject};
pub use file_sink::{Durability, FileSink, FileSinkOptions, checkpoint_path};
pub use fingerprint::{Fingerprint, Fingerprinter, mask};
pub use key::{
    ENV_AUDIT_KEY, ENV_AUDIT_KEY_FILE, audit_key_from, audit_key_from_env, audit_key_or_development,
};
#[cfg(feature = "test-util")]
pub use sink::MemorySink;
pub use sink::{AuditSink, FanOut};
pub use tracing_sink::TracingSink;
pub use verify::{
    Problem, ProblemKind, RecordVerifier, VerifyReport, verify, verify_anchored, verify_records,
    verify_stream,
};
