use atom_crypto::Key;

use crate::common::{atom, text};

#[test]
fn generate_prints_a_key_that_check_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let out = atom(dir.path(), &["key", "generate", "--quiet"], &[]);
    assert!(out.status.success());
    let key_text = text(&out.stdout).trim().to_owned();
    let key = Key::parse(&key_text).unwrap();

    let out = atom(
        dir.path(),
        &["key", "check", "--json"],
        &[("ENCRYPTION_KEY", &key_text)],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["encryption_enabled"], true);
    assert_eq!(doc["keys"][0]["id"], key.id().to_string());
    assert_eq!(doc["keys"][0]["role"], "primary");
    // check prints ids, never keys.
    assert!(!text(&out.stdout).contains(&key_text));
    assert!(!text(&out.stderr).contains(&key_text));
}

#[test]
fn check_refuses_a_bad_key_without_echoing_it() {
    let dir = tempfile::tempdir().unwrap();
    let bad = "correct-horse-battery-staple";
    let out = atom(dir.path(), &["key", "check"], &[("ENCRYPTION_KEY", bad)]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("ENCRYPTION_KEY is 28 characters"), "{err}");
    assert!(
        err.contains("hint: make a key with: atom keys generate"),
        "{err}"
    );
    assert!(!err.contains(bad), "{err}");
}

#[test]
fn check_without_a_key_is_plaintext_mode_or_an_error_when_required() {
    let dir = tempfile::tempdir().unwrap();
    let out = atom(dir.path(), &["key", "check"], &[]);
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("plaintext development mode"));
    assert!(
        text(&out.stderr).contains("PLAINTEXT"),
        "the no-key mode is warned"
    );

    let out = atom(dir.path(), &["--require-encryption", "key", "check"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("encryption is required"));
}
