//! migrate: idempotent, never seals twice, never overwrites newer values.

use atom_crypto::SecretString;
use atom_crypto::{Classification, classify};
use atom_secrets_file::{Error, SecretsDir};
use serde_json::Value;

use crate::common::{keyring, read_json, snapshot, temp, write};

#[test]
fn migrate_twice_changes_nothing() {
    let tmp = temp();
    write(
        tmp.path(),
        "secrets.json",
        r#"{"a": "1", "b": 2, "c": "three"}"#,
    );
    let ring = keyring();
    let dir = SecretsDir::new(tmp.path());
    let first = dir.migrate(&ring).expect("migrate");
    assert!(first.wrote_encrypted && first.wrote_backup);
    assert_eq!(first.sealed_names, ["a", "c"]);
    let before = snapshot(tmp.path());

    let second = dir.migrate(&ring).expect("migrate again");
    assert!(!second.wrote_encrypted && !second.wrote_backup);
    assert!(second.sealed_names.is_empty());
    assert_eq!(second.already_sealed, 2);
    assert_eq!(before, snapshot(tmp.path()), "byte for byte the same");
    assert_eq!(
        std::fs::read(dir.backup_path()).expect("backup"),
        std::fs::read(dir.plaintext_path()).expect("plaintext")
    );
}

#[test]
fn a_new_plaintext_name_is_sealed_and_old_tokens_stay() {
    let tmp = temp();
    write(tmp.path(), "secrets.json", r#"{"a": "1"}"#);
    let ring = keyring();
    let dir = SecretsDir::new(tmp.path());
    dir.migrate(&ring).expect("migrate");
    let old_a = read_json(&dir.encrypted_path())["a"].clone();

    write(tmp.path(), "secrets.json", r#"{"a": "1", "b": "2"}"#);
    let report = dir.migrate(&ring).expect("migrate");
    assert_eq!(report.sealed_names, ["b"]);
    assert_eq!(read_json(&dir.encrypted_path())["a"], old_a);
    // The older backup differed: kept, not lost.
    let kept = report.kept_old_backup.expect("old backup kept");
    assert_eq!(std::fs::read(kept).expect("kept"), br#"{"a": "1"}"#);
}

#[test]
fn refuses_to_overwrite_values_only_in_secrets_enc() {
    let tmp = temp();
    write(tmp.path(), "secrets.json", r#"{"a": "1", "b": "2"}"#);
    let ring = keyring();
    let dir = SecretsDir::new(tmp.path());
    dir.migrate(&ring).expect("migrate");
    dir.set(&ring, "added", &SecretString::from("v-later-7y"))
        .expect("set");
    dir.set(&ring, "a", &SecretString::from("v-new-9x"))
        .expect("set");
    let before = snapshot(tmp.path());

    let err = dir.migrate(&ring).expect_err("refused");
    match &err {
        Error::WouldLoseSecrets {
            only_encrypted,
            differing,
            ..
        } => {
            assert_eq!(only_encrypted, &["added"]);
            assert_eq!(differing, &["a"]);
        }
        other => panic!("unexpected error: {other}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("rollback") && !text.contains("v-new-9x") && !text.contains("v-later-7y")
    );
    assert_eq!(before, snapshot(tmp.path()));
}

#[test]
fn a_sealed_value_in_secrets_json_is_not_sealed_twice() {
    let tmp = temp();
    let ring = keyring();
    let sealed = ring
        .seal(&atom_crypto::Context::secret("a"), "inner")
        .into_string();
    write(
        tmp.path(),
        "secrets.json",
        serde_json::to_vec(&serde_json::json!({"a": sealed, "b": "plain"})).expect("json"),
    );
    let dir = SecretsDir::new(tmp.path());
    let report = dir.migrate(&ring).expect("migrate");
    assert_eq!(report.sealed_names, ["b"]);
    assert_eq!(report.already_sealed, 1);
    assert_eq!(read_json(&dir.encrypted_path())["a"], Value::String(sealed));
}

#[test]
fn new_values_are_sealed_under_the_primary_key_with_private_files() {
    let tmp = temp();
    write(tmp.path(), "secrets.json", r#"{"a": "1"}"#);
    let ring = keyring();
    let dir = SecretsDir::new(tmp.path());
    let report = dir.migrate(&ring).expect("migrate");
    assert_eq!(report.key_id, Some(ring.primary_id()));
    let a = read_json(&dir.encrypted_path())["a"].clone();
    assert_eq!(
        classify(a.as_str().expect("string")).expect("classify"),
        Classification::Sealed(ring.primary_id())
    );
    #[cfg(unix)]
    {
        assert_eq!(crate::common::mode(&dir.encrypted_path()), 0o600);
        assert_eq!(crate::common::mode(&dir.backup_path()), 0o600);
    }
}
