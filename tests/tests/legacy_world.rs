//! A deployment leaving the Python original: its secrets.enc and its
//! user_credentials table (both committed fixtures made by the Python
//! code) are adopted, read, moved under a new key, the old keys retired,
//! with one audit log that verifies and no secret in any log line.

use std::sync::Arc;

use atom_audit::{Auditor, FanOut, FileSink, Fingerprinter, TracingSink};
use atom_credentials::{
    CredentialError, CredentialStore, DatabaseUrl, Provider, RewrapOptions, StoreConfig, UserId,
};
use atom_crypto::{ExposeSecret as _, Key, Keyring, Protection};
use atom_secrets_file::{AuditedSecrets, SecretValue, SecretsDir};
use atom_tests::{CapturedLog, capturing_subscriber, fixture};
use serde_json::Value;

fn fixture_key(path: &str, field: Option<&str>) -> Key {
    let text = std::fs::read_to_string(path).unwrap();
    let text = match field {
        Some(f) => serde_json::from_str::<Value>(&text).unwrap()[f]
            .as_str()
            .unwrap()
            .to_owned(),
        None => text.trim().to_owned(),
    };
    Key::parse(&text).unwrap()
}

#[test]
fn adopt_rotate_and_retire_the_python_world() {
    let log = CapturedLog::default();
    let _guard = tracing::subscriber::set_default(capturing_subscriber(&log));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(scenario(&log));
}

async fn scenario(log: &CapturedLog) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The Python world: secrets.enc with bare Fernet values, and a
    // user_credentials table with duplicates and no key id column.
    let py_secrets = fixture("atom-secrets-file", "tests/data/python");
    for f in ["secrets.enc", "secrets.json"] {
        std::fs::copy(py_secrets.join(f), d.join(f)).unwrap();
    }
    let plaintext: serde_json::Map<String, Value> =
        serde_json::from_str(&std::fs::read_to_string(d.join("secrets.json")).unwrap()).unwrap();
    std::fs::remove_file(d.join("secrets.json")).unwrap();
    std::fs::copy(
        fixture("atom-credentials", "tests/data/python_legacy.db"),
        d.join("atom.db"),
    )
    .unwrap();
    let rows: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("atom-credentials", "tests/data/python_legacy.json"))
            .unwrap(),
    )
    .unwrap();

    let secrets_key = fixture_key(py_secrets.join("key.txt").to_str().unwrap(), None);
    let creds_key = fixture_key(
        fixture("atom-credentials", "tests/data/python_legacy.json")
            .to_str()
            .unwrap(),
        Some("key"),
    );
    let new_key = Key::generate().unwrap();
    let ring = Keyring::new(new_key.clone(), [secrets_key.clone(), creds_key.clone()]).unwrap();

    // One audit trail for both stores.
    let audit_key = Key::generate().unwrap();
    let audit_log = d.join("audit.jsonl");
    let sink = FanOut::new()
        .with(TracingSink::new())
        .with(FileSink::open(audit_log.clone(), &audit_key).await.unwrap());
    let auditor = Auditor::new(Arc::new(sink));
    let secrets = AuditedSecrets::new(
        SecretsDir::new(d),
        auditor.clone(),
        Fingerprinter::new(&audit_key),
    );
    let config = StoreConfig::new(
        DatabaseUrl::parse(&format!("sqlite://{}", d.join("atom.db").display())).unwrap(),
    );
    let (store, report) = CredentialStore::open(
        &config,
        Protection::Encrypted(ring.clone()),
        auditor.clone(),
    )
    .await
    .unwrap();
    assert!(
        report.to_string().contains("archiv"),
        "duplicates were archived: {report}"
    );

    // Everything the Python original wrote reads back; the strings it left
    // in clear inside objects and arrays are named as plaintext.
    let report = secrets.verify(&ring).await.unwrap();
    assert!(
        report
            .failures()
            .all(|(name, class)| class == atom_crypto::OpenFailure::NotSealed
                && (name.contains('.') || name.contains('['))),
        "{report:?}"
    );
    let mut secret_values = Vec::new();
    for (name, value) in &plaintext {
        if let Value::String(expected) = value {
            match secrets.get(&ring, name).await.unwrap() {
                SecretValue::Secret(s) => assert_eq!(s.expose_secret(), expected),
                other => panic!("{name}: {other:?}"),
            }
            if expected.len() > 3 {
                secret_values.push(expected.clone());
            }
        }
    }
    let kept: Vec<&Value> = rows["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["fate"] == "kept")
        .collect();
    assert!(kept.len() >= 10);
    let mut plaintext_rows = 0;
    for row in &kept {
        let user = UserId::parse(row["user_id"].as_str().unwrap()).unwrap();
        let provider = Provider::parse(row["provider"].as_str().unwrap()).unwrap();
        let token = row["token"].as_str().unwrap();
        match store.get(&user, &provider).await {
            Ok(value) => assert_eq!(value.expose_secret(), token),
            // A row from the no-key development mode: refused while a key is
            // configured, until rewrap seals it.
            Err(err @ CredentialError::PlaintextRefused { .. }) => {
                assert!(err.to_string().contains("asked to seal plaintext"), "{err}");
                plaintext_rows += 1;
            }
            Err(other) => panic!("{user}/{provider}: {other}"),
        }
        if token.len() > 6 {
            secret_values.push(token.to_owned());
        }
    }

    assert_eq!(
        plaintext_rows, 1,
        "the fixture has one development-mode row"
    );

    // Rewrap both under the new key, then retire the old keys.
    let rewrapped = secrets.rewrap(&ring, true).await.unwrap();
    assert!(rewrapped.from_legacy > 0);
    let progress = store
        .rewrap(&RewrapOptions::new().seal_plaintext(true), |_| {})
        .await
        .unwrap();
    assert_eq!(progress.failed, 0);
    assert!(progress.done >= kept.len() as u64);

    let retired = ring
        .retire(secrets_key.id())
        .unwrap()
        .retire(creds_key.id())
        .unwrap();
    assert_eq!(retired.key_ids().count(), 1);
    let store = store.with_protection(Protection::Encrypted(retired.clone()));
    assert!(secrets.verify(&retired).await.unwrap().is_ok());
    let status = secrets.dir().status(Some(&retired)).unwrap();
    assert_eq!(status.legacy_secrets, 0);
    assert_eq!(
        atom_crypto::KeyCount::ids(&status.by_key),
        vec![new_key.id()]
    );
    let counts = store.status().await.unwrap();
    assert_eq!((counts.legacy, counts.needs_rewrap), (0, 0));
    for row in &kept {
        let user = UserId::parse(row["user_id"].as_str().unwrap()).unwrap();
        let provider = Provider::parse(row["provider"].as_str().unwrap()).unwrap();
        assert_eq!(
            store.get(&user, &provider).await.unwrap().expose_secret(),
            row["token"].as_str().unwrap()
        );
    }

    // A credential's ciphertext pasted into the secrets file under any name
    // does not open there: the contexts of the two crates never meet.
    let user = UserId::parse(kept[0]["user_id"].as_str().unwrap()).unwrap();
    let provider = Provider::parse(kept[0]["provider"].as_str().unwrap()).unwrap();
    let stolen = retired.seal(
        &atom_crypto::Context::credential(user.as_str(), provider.as_str()),
        kept[0]["token"].as_str().unwrap(),
    );
    let mut doc: serde_json::Map<String, Value> =
        serde_json::from_str(&std::fs::read_to_string(d.join("secrets.enc")).unwrap()).unwrap();
    doc.insert(
        user.as_str().to_owned(),
        Value::String(stolen.into_string()),
    );
    std::fs::write(d.join("secrets.enc"), serde_json::to_string(&doc).unwrap()).unwrap();
    let report = secrets.verify(&retired).await.unwrap();
    assert_eq!(report.failures().count(), 1);

    // The trail is intact and no log line holds a secret.
    auditor.flush().await.unwrap();
    let verified = atom_audit::verify(&audit_log, &audit_key).unwrap();
    assert!(verified.is_intact(), "{verified}");
    assert!(verified.events > 20, "{verified}");
    let text = log.text();
    assert!(
        text.contains("Security Audit: credential_accessed"),
        "the seed's line is logged"
    );
    for secret in &secret_values {
        assert!(!text.contains(secret.as_str()), "a secret reached the log");
    }
    let audit_text = std::fs::read_to_string(&audit_log).unwrap();
    for secret in &secret_values {
        assert!(
            !audit_text.contains(secret.as_str()),
            "a secret reached the audit log"
        );
    }
}
