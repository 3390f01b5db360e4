//! The seed's log line, through `tracing`.

use async_trait::async_trait;

use crate::error::AuditError;
use crate::event::{AuditEvent, Outcome};
use crate::sink::AuditSink;

/// Writes each event as the seed's line, e.g.
/// `Security Audit: credential_accessed - user=42 - provider=github`
/// (followed by ` - outcome=failure` or ` - outcome=denied` when it did not
/// succeed),
/// at target `atom_audit`, with structured fields `event`, `outcome`,
/// `at`, and where present `actor`, `user`, `provider`, `secret`, `key_id`.
/// Successes log at INFO, failures and denials at WARN. It never fails:
/// whether a line reaches a collector is the subscriber's business, so this
/// sink alone does not make auditing fail-closed; pair it with a
/// [`FileSink`](crate::FileSink) in a [`FanOut`](crate::FanOut).
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingSink;

impl TracingSink {
    /// The tracing sink.
    pub fn new() -> TracingSink {
        TracingSink
    }
}

#[async_trait]
impl AuditSink for TracingSink {
    async fn record(&self, event: &AuditEvent) -> Result<(), AuditError> {
        let action = &event.action;
        let actor = event.actor.as_ref().map(|a| a.as_str());
        let key_id = action.key_id().map(tracing::field::display);
        macro_rules! emit {
            ($level:expr) => {
                tracing::event!(
                    target: "atom_audit",
                    $level,
                    event = action.name(),
                    outcome = event.outcome.as_str(),
                    at = %event.at.to_rfc3339(),
                    actor,
                    user = action.user(),
                    provider = action.provider(),
                    secret = action.secret(),
                    key_id,
                    "Security Audit: {action}{}",
                    OutcomeSuffix(event.outcome)
                )
            };
        }
        match event.outcome {
            Outcome::Success | Outcome::Started => emit!(tracing::Level::INFO),
            _ => emit!(tracing::Level::WARN),
        }
        Ok(())
    }
}

/// Nothing for a success (the seed's line), ` - outcome=...` otherwise.
struct OutcomeSuffix(Outcome);

impl std::fmt::Display for OutcomeSuffix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Outcome::Success => Ok(()),
            other => write!(f, " - outcome={other}"),
        }
    }
}
