//! Values moved between names, altered, or under a missing key are detected,
//! and no operation writes over them.

use atom_crypto::Keyring;
use atom_secrets_file::{Error, FailureClass, SecretsDir};
use serde_json::Value;

use crate::common::{key, keyring, read_json, snapshot, temp, write};

fn migrated() -> (tempfile::TempDir, SecretsDir, Keyring) {
    let tmp = temp();
    write(
        tmp.path(),
        "secrets.json",
        r#"{"a": "alpha-secret", "b": "beta-secret", "n": 1}"#,
    );
    let ring = keyring();
    let dir = SecretsDir::new(tmp.path());
    dir.migrate(&ring).expect("migrate");
    (tmp, dir, ring)
}

fn edit_enc(dir: &SecretsDir, f: impl FnOnce(&mut serde_json::Map<String, Value>)) {
    let mut entries = read_json(&dir.encrypted_path());
    f(&mut entries);
    std::fs::write(
        dir.encrypted_path(),
        serde_json::to_vec(&entries).expect("render"),
    )
    .expect("write");
}

fn assert_every_operation_refuses(dir: &SecretsDir, ring: &Keyring, class: FailureClass) {
    let before = snapshot(dir.dir());
    let report = dir.verify(ring).expect("verify reads the file");
    assert!(!report.is_ok());
    assert!(report.failures().all(|(_, c)| c == class), "{report:?}");
    assert!(matches!(report.into_result(), Err(Error::DoNotOpen { .. })));
    for result in [
        dir.rewrap(ring).map(|_| ()),
        dir.rollback(ring).map(|_| ()),
        dir.migrate(ring).map(|_| ()),
        dir.exec_env(ring).map(|_| ()),
        dir.get(ring, "a").map(|_| ()),
    ] {
        let err = result.expect_err("refused");
        let text = err.to_string();
        assert!(
            !text.contains("alpha-secret") && !text.contains("beta-secret"),
            "{text}"
        );
    }
    assert_eq!(before, snapshot(dir.dir()), "nothing changed on disk");
}

#[test]
fn value_swapped_between_names_is_detected() {
    let (_tmp, dir, ring) = migrated();
    edit_enc(&dir, |e| {
        let a = e["a"].clone();
        let b = e["b"].clone();
        e["a"] = b;
        e["b"] = a;
    });
    assert_every_operation_refuses(&dir, &ring, FailureClass::AuthenticationFailed);
}

#[test]
fn value_copied_to_another_name_is_detected() {
    let (_tmp, dir, ring) = migrated();
    edit_enc(&dir, |e| {
        let a = e["a"].clone();
        e["b"] = a;
    });
    let report = dir.verify(&ring).expect("verify");
    let failed: Vec<_> = report.failures().map(|(n, _)| n.to_owned()).collect();
    assert_eq!(failed, ["b"]);
}

#[test]
fn tampered_value_is_detected() {
    let (_tmp, dir, ring) = migrated();
    edit_enc(&dir, |e| {
        let text = e["a"].as_str().expect("string").to_owned();
        let mut bytes = text.into_bytes();
        let i = bytes.len() / 2;
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        e["a"] = Value::String(String::from_utf8(bytes).expect("ascii"));
    });
    let report = dir.verify(&ring).expect("verify");
    let failed: Vec<_> = report.failures().collect();
    assert_eq!(failed, [("a", FailureClass::AuthenticationFailed)]);
}

#[test]
fn malformed_sealed_value_is_detected() {
    let (_tmp, dir, ring) = migrated();
    edit_enc(&dir, |e| {
        e["a"] = Value::String("atom:v1:nothex:xyz".into())
    });
    let report = dir.verify(&ring).expect("verify");
    let failed: Vec<_> = report.failures().collect();
    assert_eq!(failed, [("a", FailureClass::Malformed)]);
}

#[test]
fn missing_key_is_reported_as_unknown_key() {
    let (_tmp, dir, _ring) = migrated();
    let other = keyring();
    assert_every_operation_refuses(&dir, &other, FailureClass::UnknownKey);
}

#[test]
fn legacy_value_under_another_key_does_not_open() {
    let (_tmp, dir, ring) = migrated();
    let stranger = Keyring::new(key(), []).expect("keyring");
    let foreign = stranger.seal_legacy("x").into_string();
    edit_enc(&dir, |e| e["a"] = Value::String(foreign));
    let report = dir.verify(&ring).expect("verify");
    let failed: Vec<_> = report.failures().collect();
    assert_eq!(failed, [("a", FailureClass::AuthenticationFailed)]);
}

#[test]
fn plaintext_in_encrypted_file_fails_verify_and_rewrap_seals_it() {
    let (_tmp, dir, ring) = migrated();
    edit_enc(&dir, |e| {
        e.insert("p".into(), Value::String("typed by hand".into()));
    });
    let report = dir.verify(&ring).expect("verify");
    assert_eq!(
        report.failures().collect::<Vec<_>>(),
        [("p", FailureClass::Plaintext)]
    );
    let report = dir.rewrap(&ring).expect("rewrap");
    assert_eq!(report.from_plaintext, 1);
    assert!(dir.verify(&ring).expect("verify").is_ok());
}
