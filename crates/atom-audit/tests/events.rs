//! Event types: names, outcomes, the seed's line, JSON, fingerprints.

use std::collections::HashSet;
use std::sync::Arc;

use atom_audit::{
    Action, Actor, AuditClock as _, AuditEvent, DenialReason, Fingerprinter, MemorySink, Outcome,
    Subject, mask,
};
use atom_crypto::OpenFailure;
use atom_crypto::{Context, FixedClock, Key, Keyring};

use crate::support::{audit_key, auditor, other_key};

fn all_actions() -> Vec<Action> {
    let fp = Fingerprinter::new(&audit_key()).fingerprint(b"value");
    let id = other_key().id();
    let credential = || Subject::Credential {
        user: "7".into(),
        provider: "google".into(),
    };
    vec![
        Action::CredentialStored {
            user: "7".into(),
            provider: "google".into(),
            key_id: Some(id),
        },
        Action::CredentialAccessed {
            user: "7".into(),
            provider: "google".into(),
            key_id: None,
        },
        Action::CredentialDeleted {
            user: "7".into(),
            provider: "google".into(),
        },
        Action::UserCredentialsErased {
            user: "7".into(),
            count: 3,
        },
        Action::CredentialsListed {
            user: "7".into(),
            count: 2,
        },
        Action::CredentialStatusRead {
            total: 10,
            needs_rewrap: 4,
        },
        Action::CredentialTableAdopted {
            rows_kept: 8,
            duplicates_archived: 2,
            incomplete_archived: 1,
        },
        Action::DataKeyCreated {
            user: "7".into(),
            key_id: id,
            kek_id: audit_key().id(),
        },
        Action::DataKeyUnwrapped {
            user: "7".into(),
            key_id: id,
            kek_id: audit_key().id(),
        },
        Action::DataKeyRotated {
            user: "7".into(),
            to: id,
            resealed: 3,
        },
        Action::DataKeyDestroyed {
            user: "7".into(),
            count: 1,
        },
        Action::SecretsMigrated {
            file: "secrets.json".into(),
            values: 4,
            key_id: id,
        },
        Action::SecretsRolledBack {
            file: "secrets.json".into(),
            backup: "secrets.json.backup".into(),
        },
        Action::SecretsVerified {
            file: "secrets.enc".into(),
            values: 4,
            failures: 0,
        },
        Action::SecretRead {
            name: "OPENAI_API_KEY".into(),
            key_id: Some(id),
        },
        Action::SecretChanged {
            name: "OPENAI_API_KEY".into(),
            fingerprint: fp,
            key_id: Some(id),
        },
        Action::SecretRemoved {
            name: "OLD_TOKEN".into(),
        },
        Action::PlaintextShredded {
            file: "secrets.json".into(),
        },
        Action::KeyRotationStarted {
            scope: "credentials".into(),
            to: id,
            total: Some(10),
        },
        Action::KeyRotationProgressed {
            scope: "credentials".into(),
            to: id,
            done: 5,
            total: None,
        },
        Action::KeyRotationFinished {
            scope: "credentials".into(),
            to: id,
            rewrapped: 10,
            failed: 0,
        },
        Action::DecryptionFailed {
            subject: credential(),
            key_id: Some(id),
            reason: OpenFailure::NotAuthentic,
        },
        Action::AccessDenied {
            subject: Subject::Secret {
                name: "DB_PASSWORD".into(),
            },
            reason: DenialReason::NotPermitted,
        },
        Action::AccessDeniedRepeatedly {
            source: "192.0.2.7".into(),
            denials: 41,
            window_secs: 10,
        },
    ]
}

#[test]
fn every_action_has_its_own_name_and_round_trips_through_json() {
    let at = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
    let mut names = HashSet::new();
    for action in all_actions() {
        assert!(names.insert(action.name()), "{} twice", action.name());
        let event = AuditEvent::new(at, action).by(Actor::new("operator:alice"));
        let json = serde_json::to_string(&event).unwrap();
        assert!(
            json.contains(&format!("\"event\":\"{}\"", event.name())),
            "{json}"
        );
        let back: AuditEvent = serde_json::from_str(&json).unwrap();
        assert_eq!(back, event);
    }
    assert_eq!(names.len(), 24);
    // The endpoint subject, named as such in the seed line.
    let action = Action::AccessDenied {
        subject: Subject::Endpoint {
            path: "/api/security/configuration".into(),
        },
        reason: DenialReason::NotAuthenticated,
    };
    assert_eq!(
        action.to_string(),
        "access_denied - endpoint=/api/security/configuration - reason=not_authenticated"
    );
    let event = AuditEvent::new(at, action);
    let back: AuditEvent = serde_json::from_str(&serde_json::to_string(&event).unwrap()).unwrap();
    assert_eq!(back, event);
}

#[test]
fn the_seed_line_is_kept_exactly() {
    let action = Action::CredentialAccessed {
        user: "42".into(),
        provider: "github".into(),
        key_id: None,
    };
    assert_eq!(
        action.to_string(),
        "credential_accessed - user=42 - provider=github"
    );
    let with_key = Action::CredentialAccessed {
        user: "42".into(),
        provider: "github".into(),
        key_id: Some(other_key().id()),
    };
    assert_eq!(
        with_key.to_string(),
        format!(
            "credential_accessed - user=42 - provider=github - key={}",
            other_key().id()
        )
    );
}

#[test]
fn an_identifier_cannot_forge_a_log_line() {
    let action = Action::CredentialDeleted {
        user: "42\nSecurity Audit: credential_deleted - user=admin".into(),
        provider: "github".into(),
    };
    let line = action.to_string();
    assert!(!line.contains('\n'));
    assert!(
        line.contains(r#"user="42\nSecurity Audit: credential_deleted - user=admin""#),
        "{line}"
    );
    // An id that looks like more fields is quoted, so it reads as one.
    let action = Action::CredentialDeleted {
        user: "eve - provider=github".into(),
        provider: "gitlab".into(),
    };
    assert_eq!(
        action.to_string(),
        r#"credential_deleted - user="eve - provider=github" - provider=gitlab"#
    );
    let action = Action::CredentialDeleted {
        user: r#"q"uote\"#.into(),
        provider: String::new(),
    };
    assert_eq!(
        action.to_string(),
        r#"credential_deleted - user="q\"uote\\" - provider="""#
    );
}

#[test]
fn outcomes_follow_the_action_unless_set() {
    let at = chrono::DateTime::from_timestamp(0, 0).unwrap();
    let outcomes: Vec<Outcome> = all_actions()
        .into_iter()
        .map(|a| AuditEvent::new(at, a).outcome)
        .collect();
    assert_eq!(
        outcomes.iter().filter(|o| **o == Outcome::Failure).count(),
        1
    );
    assert_eq!(
        outcomes.iter().filter(|o| **o == Outcome::Denied).count(),
        2
    );
    let failed_rotation = Action::KeyRotationFinished {
        scope: "credentials".into(),
        to: other_key().id(),
        rewrapped: 9,
        failed: 1,
    };
    assert_eq!(failed_rotation.default_outcome(), Outcome::Failure);
    let event = AuditEvent::new(at, all_actions().remove(0)).with_outcome(Outcome::Failure);
    assert_eq!(event.outcome, Outcome::Failure);
}

#[test]
fn a_decryption_failure_is_classified_from_the_crypto_error() {
    let keyring = Keyring::new(Key::from_bytes([3; 32]), []).unwrap();
    let stored = keyring.seal(&Context::credential("1", "github"), "tok");
    let copied = keyring
        .open(&Context::credential("2", "github"), stored.as_str())
        .unwrap_err();
    assert_eq!(OpenFailure::of(&copied), OpenFailure::NotAuthentic);
    let other = Keyring::new(Key::from_bytes([4; 32]), []).unwrap();
    let unknown = other
        .open(&Context::credential("1", "github"), stored.as_str())
        .unwrap_err();
    assert_eq!(OpenFailure::of(&unknown), OpenFailure::UnknownKey);
    let plain = keyring
        .open(&Context::credential("1", "github"), "plain")
        .unwrap_err();
    assert_eq!(OpenFailure::of(&plain), OpenFailure::NotSealed);
}

#[test]
fn fingerprints_are_keyed_and_masks_reveal_nothing_but_length() {
    let a = Fingerprinter::new(&audit_key());
    let b = Fingerprinter::new(&other_key());
    let fp = a.fingerprint(b"sk-live-123");
    assert_eq!(fp.as_str().len(), 16);
    assert!(fp.as_str().bytes().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(fp, a.fingerprint(b"sk-live-123"));
    assert_ne!(fp, a.fingerprint(b"sk-live-124"));
    assert_ne!(fp, b.fingerprint(b"sk-live-123"));
    assert_eq!(a.key_id(), audit_key().id());
    assert!(!format!("{a:?}").contains(audit_key().expose_base64().trim_end_matches('=')));

    assert_eq!(mask("sk-live-123"), "[redacted, 11 chars]");
    assert_eq!(mask("x"), "[redacted, 1 char]");
    assert_eq!(mask(""), "[empty]");
}

#[tokio::test]
async fn the_auditor_stamps_events_with_the_injected_clock_and_its_actor() {
    let clock = Arc::new(FixedClock::at(1_700_000_000));
    let memory = MemorySink::new();
    let auditor = auditor(memory.clone())
        .with_clock(clock.clone())
        .acting_as(Actor::new("service:atom-server"));
    auditor
        .record(Action::CredentialDeleted {
            user: "1".into(),
            provider: "github".into(),
        })
        .await
        .unwrap();
    clock.advance(60);
    let explicit = auditor
        .event(Action::CredentialDeleted {
            user: "2".into(),
            provider: "github".into(),
        })
        .by(Actor::new("operator:bob"));
    auditor.record_event(explicit).await.unwrap();

    let events = memory.events();
    assert_eq!(events[0].at.timestamp(), 1_700_000_000);
    assert_eq!(events[1].at, clock.now());
    assert_eq!(
        events[0].actor.as_ref().unwrap().as_str(),
        "service:atom-server"
    );
    assert_eq!(events[1].actor.as_ref().unwrap().as_str(), "operator:bob");
}
