//! The auditor of a rotation, from the environment: the tracing sink
//! always, plus the hash-chained file log at `--audit-log` (which needs the
//! audit key, `ATOM_AUDIT_KEY` or `ATOM_AUDIT_KEY_FILE`).

use std::path::Path;

use atom_audit::{
    Actor, AuditError, Auditor, ENV_AUDIT_KEY, ENV_AUDIT_KEY_FILE, FailureMode, FanOut, FileSink,
    TracingSink, audit_key_from,
};

use crate::error::Error;

/// The auditor for a rotation run, acting as `operator:rotate-keys`.
/// `lookup` is the environment (audit key and `ATOM_AUDIT_FAIL_OPEN`).
pub async fn auditor_from_env(
    audit_log: Option<&Path>,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Auditor, Error> {
    let mode = FailureMode::from_lookup(&lookup).map_err(|e| Error::Usage(e.to_string()))?;
    let mut sinks = FanOut::new().with(TracingSink::new());
    if let Some(path) = audit_log {
        let key = match audit_key_from(&lookup) {
            Ok(key) => key,
            Err(AuditError::NoAuditKey) => {
                return Err(Error::Usage(format!(
                    "--audit-log {} needs the audit key: set {ENV_AUDIT_KEY_FILE} (or {ENV_AUDIT_KEY}) to the key the log is chained under",
                    path.display()
                )));
            }
            Err(e) => return Err(Error::Usage(e.to_string())),
        };
        sinks = sinks.with(FileSink::open(path, &key).await?);
    }
    Ok(Auditor::new(sinks)
        .with_failure_mode(mode)
        .acting_as(Actor::new("operator:rotate-keys")))
}
