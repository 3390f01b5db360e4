//! Values moved between names, altered, or under a missing key are detected,
//! and no operation writes over them.

use atom_crypto::Keyring;
use atom_crypto::OpenFailure;
use atom_secrets_file::{Error, SecretsDir};
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

fn assert_every_operation_refuses(dir: &SecretsDir, ring: &Keyring, class: OpenFailure) {
    let before = snapshot(dir.dir());
    let report = dir.verify(ring).expect("verify reads the file");
    assert!(!report.is_ok());
    assert!(report.failures().all(|(_, c)| c == class), "{report:?}");
    assert!(matches!(report.into_result(), Err(Error::DoNotOpen { .. })));
    for result in [
        dir.rewrap(ring, false).map(|_| ()),
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
    assert_every_operation_refuses(&dir, &ring, OpenFailure::NotAuthentic);
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
    assert_eq!(failed, [("a", OpenFailure::NotAuthentic)]);
}

#[test]
fn malformed_sealed_value_is_detected() {
    let (_tmp, dir, ring) = migrated();
    edit_enc(&dir, |e| {
        e["a"] = Value::String("atom:v1:nothex:xyz".into())
    });
    let report = dir.verify(&ring).expect("verify");
    let failed: Vec<_> = report.failures().collect();
    assert_eq!(failed, [("a", OpenFailure::Malformed)]);
}

#[test]
fn missing_key_is_reported_as_unknown_key() {
    let (_tmp, dir, _ring) = migrated();
    let other = keyring();
    assert_every_operation_refuses(&dir, &other, OpenFailure::UnknownKey);
}

#[test]
fn legacy_value_under_another_key_does_not_open() {
    let (_tmp, dir, ring) = migrated();
    let stranger = Keyring::new(key(), []).expect("keyring");
    let foreign = stranger.seal_legacy("x").into_string();
    edit_enc(&dir, |e| e["a"] = Value::String(foreign));
    let report = dir.verify(&ring).expect("verify");
    let failed: Vec<_> = report.failures().collect();
    assert_eq!(failed, [("a", OpenFailure::NotAuthentic)]);
}

#[test]
fn plaintext_in_encrypted_file_fails_verify_and_rewrap_seals_it_only_when_asked() {
    let (_tmp, dir, ring) = migrated();
    edit_enc(&dir, |e| {
        e.insert("p".into(), Value::String("typed by hand".into()));
    });
    let report = dir.verify(&ring).expect("verify");
    assert_eq!(
        report.failures().collect::<Vec<_>>(),
        [("p", OpenFailure::NotSealed)]
    );
    let before = std::fs::read(dir.encrypted_path()).unwrap();
    match dir.rewrap(&ring, false) {
        Err(atom_secrets_file::Error::PlaintextNotSealed { names, .. }) => {
            assert_eq!(names, ["p"]);
        }
        other => panic!("plaintext sealed without being asked: {other:?}"),
    }
    assert_eq!(std::fs::read(dir.encrypted_path()).unwrap(), before);
    let report = dir.rewrap(&ring, true).expect("rewrap");
    assert_eq!(report.from_plaintext, 1);
    assert_eq!(report.sealed_plaintext_names, ["p"]);
    assert!(dir.verify(&ring).expect("verify").is_ok());
}

/// A damaged token is never laundered into a secret: with a stray space,
/// in quotes, with another version byte or alphabet, verify fails it as
/// malformed, rewrap (even asked to seal plaintext) refuses and writes
/// nothing, status counts it as malformed, and the original value is
/// still there to repair by hand.
#[test]
fn damaged_tokens_are_malformed_and_never_sealed() {
    use base64::Engine as _;
    let (_tmp, dir, ring) = migrated();
    // A token whose standard-alphabet encoding differs from its own (one in
    // about 25 has neither '-' nor '_', and would be the same text).
    let token = loop {
        let t = ring.seal_legacy("real-db-password").into_string();
        if t.contains(['-', '_']) {
            break t;
        }
    };
    let raw = base64::engine::general_purpose::URL_SAFE
        .decode(&token)
        .unwrap();
    let mut v81 = raw.clone();
    v81[0] = 0x81;
    let damaged = [
        format!(" {token}"),
        format!("\"{token}\""),
        base64::engine::general_purpose::URL_SAFE.encode(&v81),
        base64::engine::general_purpose::STANDARD.encode(&raw),
    ];
    for (i, text) in damaged.iter().enumerate() {
        let name = format!("damaged_{i}");
        edit_enc(&dir, |e| {
            e.insert(name.clone(), Value::String(text.clone()));
        });
        let report = dir.verify(&ring).expect("verify");
        assert_eq!(
            report.failures().collect::<Vec<_>>(),
            [(name.as_str(), OpenFailure::Malformed)]
        );
        let status = dir.status(Some(&ring)).expect("status");
        assert_eq!((status.malformed_secrets, status.plaintext_secrets), (1, 0));
        let before = std::fs::read(dir.encrypted_path()).unwrap();
        for seal_plaintext in [false, true] {
            match dir.rewrap(&ring, seal_plaintext) {
                Err(atom_secrets_file::Error::DoNotOpen { failures, .. }) => {
                    assert_eq!(failures, [(name.clone(), OpenFailure::Malformed)]);
                }
                other => panic!("{name}: {other:?}"),
            }
            assert_eq!(std::fs::read(dir.encrypted_path()).unwrap(), before);
        }
        // The damage is still there to repair: trimmed, the legacy token
        // opens to the original value.
        if i < 2 {
            let repaired = text.trim().trim_matches('"');
            assert_eq!(
                atom_crypto::ExposeSecret::expose_secret(
                    &ring
                        .open(&atom_crypto::Context::secret(&name), repaired)
                        .unwrap()
                ),
                "real-db-password"
            );
        }
        edit_enc(&dir, |e| {
            e.shift_remove(&name);
        });
    }
}
