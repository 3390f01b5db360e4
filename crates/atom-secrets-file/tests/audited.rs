//! AuditedSecrets: every access leaves an event, nothing secret enters one,
//! and a sink that cannot record stops the operation.

use std::sync::Arc;

use async_trait::async_trait;
use atom_audit::{
    Action, AuditError, AuditEvent, AuditSink, Auditor, Fingerprinter, MemorySink, Outcome,
};
use atom_crypto::{ExposeSecret as _, Key, SecretString};
use atom_secrets_file::{AuditedSecrets, Error, SecretValue, SecretsDir};

use crate::common::{keyring, snapshot, temp, write};

struct BrokenSink;

#[async_trait]
impl AuditSink for BrokenSink {
    async fn record(&self, _: &AuditEvent) -> Result<(), AuditError> {
        Err(AuditError::Config("the audit disk is full".into()))
    }
}

fn fingerprints() -> Fingerprinter {
    Fingerprinter::new(&Key::from_bytes([7; 32]))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

const SECRET: &str = "sk-live-0123456789abcdefghijklmnop";

#[test]
fn every_operation_is_recorded_without_values() {
    runtime().block_on(async {
        let dir = temp();
        write(
            dir.path(),
            "secrets.json",
            format!(r#"{{"openai_api_key": "{SECRET}", "port": 8080}}"#),
        );
        let memory = MemorySink::new();
        let secrets = AuditedSecrets::new(
            SecretsDir::new(dir.path()),
            Auditor::new(memory.clone()),
            fingerprints(),
        );
        let ring = keyring();
        secrets.migrate(&ring).await.unwrap();
        match secrets.get(&ring, "openai_api_key").await.unwrap() {
            SecretValue::Secret(s) => assert_eq!(s.expose_secret(), SECRET),
            _ => panic!("expected a secret"),
        }
        secrets
            .set(
                &ring,
                "slack_token",
                &SecretString::from("xoxb-new".to_owned()),
            )
            .await
            .unwrap();
        secrets.unset("slack_token").await.unwrap();
        assert!(secrets.verify(&ring).await.unwrap().is_ok());
        secrets.rewrap(&ring, false).await.unwrap();

        let events = memory.events();
        let names: Vec<(&str, Outcome)> = events.iter().map(|e| (e.name(), e.outcome)).collect();
        assert_eq!(
            names,
            vec![
                ("secrets_migrated", Outcome::Started),
                ("secrets_migrated", Outcome::Success),
                ("secret_read", Outcome::Success),
                ("secret_changed", Outcome::Started),
                ("secret_changed", Outcome::Success),
                ("secret_removed", Outcome::Started),
                ("secret_removed", Outcome::Success),
                ("secrets_verified", Outcome::Success),
                ("key_rotation_started", Outcome::Started),
                ("key_rotation_finished", Outcome::Success),
            ]
        );
        match &events[1].action {
            Action::SecretsMigrated { values, key_id, .. } => {
                assert_eq!(*values, 1);
                assert_eq!(*key_id, ring.primary_id());
            }
            other => panic!("{other:?}"),
        }
        let all = format!("{events:?}");
        for secret in [SECRET, "xoxb-new"] {
            assert!(!all.contains(secret), "a value reached an event");
        }
    });
}

#[test]
fn a_sink_that_cannot_record_stops_reads_and_changes() {
    runtime().block_on(async {
        let dir = temp();
        write(
            dir.path(),
            "secrets.json",
            format!(r#"{{"openai_api_key": "{SECRET}"}}"#),
        );
        let ring = keyring();
        SecretsDir::new(dir.path()).migrate(&ring).unwrap();
        let before = snapshot(dir.path());

        let secrets = AuditedSecrets::new(
            SecretsDir::new(dir.path()),
            Auditor::new(Arc::new(BrokenSink)),
            fingerprints(),
        );
        let err = secrets.get(&ring, "openai_api_key").await.unwrap_err();
        assert!(matches!(err, Error::Audit(_)), "{err:?}");
        assert!(!err.to_string().contains(SECRET));
        let err = secrets
            .set(&ring, "new", &SecretString::from("v".to_owned()))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Audit(_)), "{err:?}");
        assert!(secrets.rollback(&ring).await.is_err());
        assert!(secrets.rewrap(&ring, false).await.is_err());
        assert_eq!(snapshot(dir.path()), before, "nothing changed on disk");
    });
}

#[test]
fn a_value_that_does_not_open_is_recorded_as_a_failed_decryption() {
    runtime().block_on(async {
        let dir = temp();
        let ring = keyring();
        let a = ring.seal(&atom_crypto::Context::secret("a"), "value-a");
        // The value of "a" moved under the name "b": it must not open.
        write(
            dir.path(),
            "secrets.enc",
            format!(r#"{{"b": "{}"}}"#, a.as_str()),
        );
        let memory = MemorySink::new();
        let secrets = AuditedSecrets::new(
            SecretsDir::new(dir.path()),
            Auditor::new(memory.clone()),
            fingerprints(),
        );
        assert!(secrets.get(&ring, "b").await.is_err());
        let events = memory.events();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].name(), "decryption_failed");
        assert_eq!(events[0].action.secret(), Some("b"));
    });
}
