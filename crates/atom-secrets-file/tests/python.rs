//! A directory migrated by the Python original (tests/data/python, made by
//! tests/data/make_python_fixture.py) is read, verified, migrated again
//! without change, rewrapped and rolled back.

use std::path::{Path, PathBuf};

use atom_crypto::OpenFailure;
use atom_crypto::{Key, Keyring};
use atom_secrets_file::{Error, SealForm, SecretsDir};

use crate::common::{assert_same, opened, read_json, snapshot, temp};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/python")
}

fn fixture_keyring() -> Keyring {
    let text = std::fs::read_to_string(fixture().join("key.txt")).expect("key.txt");
    let key = Key::parse(text.trim_end()).expect("the fixture key parses");
    Keyring::new(key, []).expect("keyring")
}

fn copy_fixture(to: &Path) {
    for name in ["secrets.json", "secrets.enc", "secrets.json.backup"] {
        std::fs::copy(fixture().join(name), to.join(name)).expect("copy fixture");
    }
}

/// Top-level strings of the fixture (legacy tokens in its secrets.enc).
const STRINGS: usize = 5;
/// Strings inside its objects and arrays, which the Python original leaves
/// in clear in secrets.enc.
const NESTED: [&str; 2] = ["nested.inner", "list[0]"];

#[test]
fn python_original_files_are_read_verified_rewrapped_and_rolled_back() {
    let tmp = temp();
    copy_fixture(tmp.path());
    let ring = fixture_keyring();
    let dir = SecretsDir::new(tmp.path());
    let plaintext = read_json(&fixture().join("secrets.json"));

    let status = dir.status(Some(&ring)).expect("status");
    assert_eq!(status.legacy_secrets, STRINGS);
    assert_eq!(status.encrypted_secrets, STRINGS);
    assert_eq!(status.plaintext_secrets, 0);
    assert_eq!(status.total_secrets, plaintext.len());
    assert_eq!(status.nested_strings.plaintext, NESTED.len());
    assert_eq!(status.needs_rewrap, Some(STRINGS + NESTED.len()));

    // The nested strings the Python original left in clear are found by
    // name, never passed as sealed.
    let report = dir.verify(&ring).expect("verify");
    assert_eq!(report.ok_count(), STRINGS);
    let failed: Vec<(&str, OpenFailure)> = report.failures().collect();
    assert_eq!(
        failed,
        NESTED.map(|p| (p, OpenFailure::NotSealed)).to_vec(),
        "{report:?}"
    );

    // Rewrap seals them only when asked to, naming them otherwise; nothing
    // is written until then.
    let before = snapshot(tmp.path());
    match dir.rewrap(&ring, false) {
        Err(Error::PlaintextNotSealed { names, .. }) => assert_eq!(names, NESTED.to_vec()),
        other => panic!("{other:?}"),
    }
    assert_eq!(before, snapshot(tmp.path()));
    let report = dir.rewrap(&ring, true).expect("rewrap");
    assert_eq!(report.from_legacy, STRINGS);
    assert_eq!(report.sealed_plaintext_names, NESTED.to_vec());
    let status = dir.status(Some(&ring)).expect("status");
    assert_eq!(status.legacy_secrets, 0);
    assert_eq!(status.nested_strings.plaintext, 0);
    assert_eq!(
        atom_crypto::KeyCount::of(&status.by_key, ring.primary_id()),
        (STRINGS + NESTED.len()) as u64
    );
    assert!(dir.verify(&ring).expect("verify").is_ok());
    assert_same(&plaintext, &opened(&dir, &ring));
    // No string of the file is in clear any more.
    let text = std::fs::read_to_string(dir.encrypted_path()).unwrap();
    for leaf in ["inner", "list"] {
        let value = match leaf {
            "inner" => plaintext["nested"]["inner"].as_str().unwrap(),
            _ => plaintext["list"][0].as_str().unwrap(),
        };
        assert!(!text.contains(&format!("\"{value}\"")), "{leaf} in clear");
    }

    // Migrating again now changes nothing.
    let before = snapshot(tmp.path());
    let report = dir.migrate(&ring).expect("migrate again");
    assert!(
        !report.wrote_encrypted && !report.wrote_backup,
        "{report:?}"
    );
    assert!(report.sealed_names.is_empty());
    assert_eq!(before, snapshot(tmp.path()));

    let report = dir.rollback(&ring).expect("rollback");
    assert!(
        report.kept_plaintext.is_none(),
        "same content, nothing to keep"
    );
    assert_same(&plaintext, &read_json(&dir.plaintext_path()));
}

#[test]
fn legacy_form_is_written_only_on_request_and_reads_back() {
    let tmp = temp();
    std::fs::copy(
        fixture().join("secrets.json"),
        tmp.path().join("secrets.json"),
    )
    .expect("copy");
    let ring = fixture_keyring();
    let dir = SecretsDir::new(tmp.path()).with_seal_form(SealForm::Legacy);
    let report = dir.migrate(&ring).expect("migrate");
    assert_eq!(report.form, "legacy");
    assert_eq!(report.key_id, None);
    let status = dir.status(None).expect("status");
    assert_eq!(status.legacy_secrets, STRINGS + NESTED.len());
    assert_same(
        &read_json(&fixture().join("secrets.json")),
        &opened(&dir, &ring),
    );
}
