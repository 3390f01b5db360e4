//! rollback: back to plaintext from the current secrets.enc, keeping
//! everything it replaces.

use atom_crypto::SecretString;
use atom_secrets_file::SecretsDir;

use crate::common::{assert_same, keyring, parse, read_json, temp, write};

#[test]
fn rollback_after_later_edits_keeps_them() {
    let tmp = temp();
    let original = r#"{"keep": "k", "change": "old", "drop": "d", "n": 1}"#;
    write(tmp.path(), "secrets.json", original);
    let ring = keyring();
    let dir = SecretsDir::new(tmp.path());
    dir.migrate(&ring).expect("migrate");
    dir.set(&ring, "change", &SecretString::from("new"))
        .expect("set");
    dir.set(&ring, "added", &SecretString::from("a"))
        .expect("set");
    dir.unset("drop").expect("unset");
    let enc_final = std::fs::read(dir.encrypted_path()).expect("enc");

    let report = dir.rollback(&ring).expect("rollback");
    let want = parse(br#"{"keep": "k", "change": "new", "n": 1, "added": "a"}"#);
    assert_same(&want, &read_json(&dir.plaintext_path()));
    assert_eq!(report.names, ["keep", "change", "n", "added"]);

    // What it replaced is kept, byte for byte.
    let kept_plain = report.kept_plaintext.expect("old secrets.json kept");
    assert_eq!(
        std::fs::read(kept_plain).expect("kept"),
        original.as_bytes()
    );
    assert_eq!(
        std::fs::read(&report.kept_encrypted).expect("kept enc"),
        enc_final
    );
    assert!(!dir.encrypted_path().exists());
    // The backup of the first migration is untouched.
    assert_eq!(
        std::fs::read(dir.backup_path()).expect("backup"),
        original.as_bytes()
    );

    // And migrating again works from the rolled-back file.
    dir.migrate(&ring).expect("migrate again");
    assert_eq!(dir.list().expect("list"), ["keep", "change", "n", "added"]);
}
