//! Across a whole scenario, no secret value reaches any trace: not the
//! tracing output (captured at TRACE, from every thread), not the log, not
//! the checkpoint file, not Debug output of events and sinks.

use std::io::Write;
use std::sync::{Arc, Mutex};

use atom_audit::{
    Action, Actor, AuditError, DenialReason, FanOut, FileSink, Fingerprinter, MemorySink, Subject,
    TracingSink, checkpoint_path, mask, verify,
};
use atom_crypto::OpenFailure;
use atom_crypto::{Context, ExposeSecret as _, Key, Keyring};

/// Everything any subscriber writes, shared.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;

    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

/// An 85-character OAuth-like token.
const TOKEN: &str =
    "gho_SeCrEtToKeN0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_-987654";
const API_KEY: &str = "sk-live-DoNotLogMe-4f2a9c";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_value_reaches_any_trace() {
    assert_eq!(TOKEN.len(), 85);
    let capture = Capture::default();
    // Global, so the blocking pool's threads (where the file sink writes
    // and logs checkpoints) are captured too. The only global subscriber
    // of this test binary.
    tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(capture.clone())
            .finish(),
    )
    .unwrap();

    let encryption_key = Key::generate().unwrap();
    let audit_key = Key::generate().unwrap();
    let keyring = Keyring::new(encryption_key.clone(), []).unwrap();
    let fingerprints = Fingerprinter::new(&audit_key);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let file = Arc::new(FileSink::open(&log, &audit_key).await.unwrap());
    let memory = MemorySink::new();
    let auditor = atom_audit::Auditor::new(
        FanOut::new()
            .with(TracingSink::new())
            .with(Arc::clone(&file))
            .with(memory.clone()),
    )
    .acting_as(Actor::new("service:test"));

    // Store, read, fail to read, change a secret, deny, rotate.
    let context = Context::credential("u-1", "github");
    let stored = keyring.seal(&context, TOKEN);
    auditor
        .record(Action::CredentialStored {
            user: "u-1".into(),
            provider: "github".into(),
            key_id: stored.key_id(),
        })
        .await
        .unwrap();
    auditor
        .record(Action::CredentialAccessed {
            user: "u-1".into(),
            provider: "github".into(),
            key_id: stored.key_id(),
        })
        .await
        .unwrap();
    let opened = keyring.open(&context, stored.as_str()).unwrap();
    assert_eq!(opened.expose_secret(), TOKEN);
    tracing::debug!(secret = ?opened, stored = ?stored, keyring = ?keyring, "read a credential");

    let copied = keyring
        .open(&Context::credential("u-2", "github"), stored.as_str())
        .unwrap_err();
    tracing::warn!(error = %copied, "a copied value did not open");
    auditor
        .record(Action::DecryptionFailed {
            subject: Subject::Credential {
                user: "u-2".into(),
                provider: "github".into(),
            },
            key_id: stored.key_id(),
            reason: OpenFailure::of(&copied),
        })
        .await
        .unwrap();

    let fingerprint = fingerprints.fingerprint(API_KEY.as_bytes());
    tracing::info!(value = %mask(API_KEY), %fingerprint, "changing a secret");
    auditor
        .record(Action::SecretChanged {
            name: "OPENAI_API_KEY".into(),
            fingerprint,
            key_id: Some(keyring.primary_id()),
        })
        .await
        .unwrap();
    auditor
        .record(Action::AccessDenied {
            subject: Subject::Secret {
                name: "OPENAI_API_KEY".into(),
            },
            reason: DenialReason::NotPermitted,
        })
        .await
        .unwrap();
    for action in [
        Action::KeyRotationStarted {
            scope: "credentials".into(),
            to: keyring.primary_id(),
            total: Some(1),
        },
        Action::KeyRotationFinished {
            scope: "credentials".into(),
            to: keyring.primary_id(),
            rewrapped: 1,
            failed: 0,
        },
    ] {
        auditor.record(action).await.unwrap();
    }
    auditor.flush().await.unwrap();

    // Errors and Debug output of everything that holds a key.
    let config_error = atom_audit::audit_key_from(|name| {
        (name == "ATOM_AUDIT_KEY").then(|| format!("{}!", &*audit_key.expose_base64()))
    })
    .unwrap_err();
    tracing::error!(error = %config_error, ?audit_key, ?encryption_key, ?file, ?fingerprints, ?auditor, "diagnostics");
    let report = verify(&log, &audit_key).unwrap();
    assert!(report.is_intact(), "{report}");
    tracing::info!(%report, "verified");
    for event in memory.events() {
        tracing::trace!(?event, "recorded");
    }
    let removed: AuditError = AuditError::Replaced { path: log.clone() };
    tracing::error!(%removed, "example error");

    let output = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(
        output.contains("Security Audit: credential_accessed - user=u-1 - provider=github"),
        "{output}"
    );
    assert!(
        output.contains("audit log checkpoint"),
        "blocking pool captured"
    );
    assert!(output.contains("sealed value does not authenticate"));

    let log_text = std::fs::read_to_string(&log).unwrap();
    let anchor_text = std::fs::read_to_string(checkpoint_path(&log)).unwrap();
    let events_debug = format!("{:?}", memory.events());
    let secrets = [
        TOKEN.to_owned(),
        API_KEY.to_owned(),
        encryption_key.expose_base64().to_string(),
        encryption_key
            .expose_base64()
            .trim_end_matches('=')
            .to_owned(),
        audit_key.expose_base64().to_string(),
        audit_key.expose_base64().trim_end_matches('=').to_owned(),
    ];
    for (name, text) in [
        ("tracing output", &output),
        ("audit log", &log_text),
        ("checkpoint file", &anchor_text),
        ("events' Debug", &events_debug),
    ] {
        for secret in &secrets {
            assert!(!text.contains(secret.as_str()), "a secret is in the {name}");
            // Not even a recognisable piece of it.
            assert!(
                !text.contains(&secret[..20]),
                "part of a secret is in the {name}"
            );
        }
    }
}
