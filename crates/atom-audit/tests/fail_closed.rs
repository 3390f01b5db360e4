//! Where an event cannot be recorded, the audited operation does not run.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use atom_audit::{
    Action, AuditError, AuditEvent, AuditSink, Auditor, FailureMode, FanOut, FileSink, MemorySink,
};
use atom_crypto::{Context, ExposeSecret as _, Key, Keyring, SecretString};

use crate::support::{audit_key, auditor, event};

/// A sink that cannot record anything.
struct BrokenSink;

#[async_trait]
impl AuditSink for BrokenSink {
    async fn record(&self, _event: &AuditEvent) -> Result<(), AuditError> {
        Err(AuditError::Sink {
            sink: "broken".into(),
            message: "the collector is unreachable".into(),
        })
    }
}

/// A credential read as a store would write it: record, then open.
async fn read_credential(
    auditor: &Auditor,
    keyring: &Keyring,
    stored: &str,
    opened: &AtomicUsize,
) -> Result<SecretString, AuditError> {
    auditor
        .record(Action::CredentialAccessed {
            user: "42".into(),
            provider: "github".into(),
            key_id: keyring.key_ids().next().map(|(id, _)| id),
        })
        .await?;
    opened.fetch_add(1, Ordering::SeqCst);
    Ok(keyring
        .open(&Context::credential("42", "github"), stored)
        .unwrap())
}

fn keyring_and_token() -> (Keyring, String) {
    let keyring = Keyring::new(Key::from_bytes([5; 32]), []).unwrap();
    let stored = keyring
        .seal(&Context::credential("42", "github"), "gho_token")
        .into_string();
    (keyring, stored)
}

#[tokio::test]
async fn a_failing_sink_makes_the_audited_read_fail() {
    let (keyring, stored) = keyring_and_token();
    let opened = AtomicUsize::new(0);

    let error = read_credential(&auditor(BrokenSink), &keyring, &stored, &opened)
        .await
        .unwrap_err();
    assert!(matches!(error, AuditError::Sink { .. }));
    assert!(error.to_string().contains("fail-closed"), "{error}");
    assert_eq!(opened.load(Ordering::SeqCst), 0, "the value was not read");

    // The same read goes ahead with a working sink.
    let memory = MemorySink::new();
    let secret = read_credential(&auditor(memory.clone()), &keyring, &stored, &opened)
        .await
        .unwrap();
    assert_eq!(secret.expose_secret(), "gho_token");
    assert_eq!(memory.events().len(), 1);
}

#[tokio::test]
async fn one_failing_sink_of_a_fan_out_fails_the_operation_but_the_others_still_record() {
    let memory = MemorySink::new();
    let fan_out = FanOut::new().with(BrokenSink).with(memory.clone());
    let error = auditor(fan_out)
        .record(Action::CredentialDeleted {
            user: "42".into(),
            provider: "github".into(),
        })
        .await
        .unwrap_err();
    assert!(matches!(error, AuditError::Sink { .. }));
    assert_eq!(memory.events().len(), 1);
}

#[tokio::test]
async fn fail_open_is_an_explicit_setting() {
    let (keyring, stored) = keyring_and_token();
    let opened = AtomicUsize::new(0);
    let auditor = auditor(BrokenSink);
    assert_eq!(auditor.failure_mode(), FailureMode::Closed);
    let auditor = auditor.with_failure_mode(FailureMode::Open);
    read_credential(&auditor, &keyring, &stored, &opened)
        .await
        .unwrap();
    assert_eq!(opened.load(Ordering::SeqCst), 1);

    let env = |value: &'static str| {
        move |name: &str| (name == "ATOM_AUDIT_FAIL_OPEN").then(|| value.to_owned())
    };
    assert_eq!(
        FailureMode::from_lookup(|_| None).unwrap(),
        FailureMode::Closed
    );
    assert_eq!(
        FailureMode::from_lookup(env("1")).unwrap(),
        FailureMode::Open
    );
    assert_eq!(
        FailureMode::from_lookup(env("false")).unwrap(),
        FailureMode::Closed
    );
    let error = FailureMode::from_lookup(env("yes")).unwrap_err();
    assert!(error.to_string().contains("ATOM_AUDIT_FAIL_OPEN"));
}

#[tokio::test]
async fn a_removed_log_directory_fails_the_operation_and_every_later_one() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let path = logs.join("audit.jsonl");
    let sink = Arc::new(FileSink::open(&path, &audit_key()).await.unwrap());
    let auditor = auditor(Arc::clone(&sink));
    auditor.record_event(event(0)).await.unwrap();

    std::fs::remove_dir_all(&logs).unwrap();
    let (keyring, stored) = keyring_and_token();
    let opened = AtomicUsize::new(0);
    let error = read_credential(&auditor, &keyring, &stored, &opened)
        .await
        .unwrap_err();
    assert!(matches!(error, AuditError::Replaced { .. }), "{error}");
    assert!(error.to_string().contains(&path.display().to_string()));
    assert_eq!(opened.load(Ordering::SeqCst), 0);

    // Restoring the directory does not make the sink trust the file again.
    std::fs::create_dir(&logs).unwrap();
    let error = auditor.record_event(event(1)).await.unwrap_err();
    assert!(matches!(error, AuditError::Poisoned { .. }), "{error}");
}

#[tokio::test]
async fn a_log_renamed_away_fails_the_operation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let sink = FileSink::open(&path, &audit_key()).await.unwrap();
    sink.record(&event(0)).await.unwrap();
    std::fs::rename(&path, dir.path().join("audit.jsonl.1")).unwrap();
    let error = sink.record(&event(1)).await.unwrap_err();
    assert!(matches!(error, AuditError::Replaced { .. }), "{error}");
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_full_disk_fails_the_operation() {
    // /dev/full accepts an open and fails every write with ENOSPC: the
    // log's creation checkpoint already fails, so no event is ever
    // accepted.
    let error = match FileSink::open("/dev/full", &audit_key()).await {
        Err(error) => error,
        Ok(sink) => auditor(sink).record_event(event(0)).await.unwrap_err(),
    };
    match &error {
        AuditError::Write { source, .. } => {
            assert_eq!(source.kind(), std::io::ErrorKind::StorageFull)
        }
        other => panic!("expected a write error, got {other}"),
    }
    assert!(error.to_string().contains("/dev/full"));
}
