//! The typed security events. An event holds identifiers (user ids,
//! provider and secret names, key ids) and keyed fingerprints, never a
//! secret value: there is no field a value could be put in.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::action::Action;

/// One security event: when, who, what and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuditEvent {
    /// When it happened (from the injected clock).
    pub at: DateTime<Utc>,
    /// Who caused it, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<Actor>,
    /// What happened, and to what.
    pub action: Action,
    /// How it ended.
    pub outcome: Outcome,
}

impl AuditEvent {
    /// An event at `at` with the action's usual outcome
    /// ([`Action::default_outcome`]) and no actor.
    pub fn new(at: DateTime<Utc>, action: Action) -> AuditEvent {
        let outcome = action.default_outcome();
        AuditEvent {
            at,
            actor: None,
            action,
            outcome,
        }
    }

    /// The same event, caused by `actor`.
    pub fn by(mut self, actor: Actor) -> AuditEvent {
        self.actor = Some(actor);
        self
    }

    /// The same event with another outcome.
    pub fn with_outcome(mut self, outcome: Outcome) -> AuditEvent {
        self.outcome = outcome;
        self
    }

    /// The event's snake_case name, e.g. `credential_accessed`.
    pub fn name(&self) -> &'static str {
        self.action.name()
    }
}

/// Who caused an event: an operator, a service, an end user. An identifier,
/// never a credential (e.g. `operator:alice`, `service:atom-server`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Actor(String);

impl Actor {
    /// An actor named `name`.
    pub fn new(name: impl Into<String>) -> Actor {
        Actor(name.into())
    }

    /// The actor's name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How an event ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Outcome {
    /// The operation went ahead.
    Success,
    /// The operation was attempted and failed.
    Failure,
    /// The operation was refused before it started.
    Denied,
    /// The operation was allowed and is about to change state; an event
    /// for the same action with `success` or `failure` follows. Recorded
    /// first so that a change that cannot be audited is never made.
    Started,
}

impl Outcome {
    /// `success`, `failure` or `denied`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Denied => "denied",
            Outcome::Started => "started",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an event is about, for the events that can concern several kinds
/// of thing (a failed decryption, a denied access).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Subject {
    /// A user's credential for a provider.
    Credential {
        /// The user id.
        user: String,
        /// The provider, e.g. `github`.
        provider: String,
    },
    /// All credentials of a user.
    User {
        /// The user id.
        user: String,
    },
    /// A named value of a secrets file.
    Secret {
        /// The entry's name (never its value).
        name: String,
    },
    /// A secrets file as a whole.
    SecretsFile {
        /// The file's path as configured.
        file: String,
    },
    /// An HTTP endpoint (e.g. the security configuration document).
    Endpoint {
        /// The endpoint's path.
        path: String,
    },
}
