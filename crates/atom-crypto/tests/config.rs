//! Building the keyring from the environment (through an injected lookup).

use std::collections::HashMap;

use atom_crypto::{CryptoError, Key, KeyRole, Protection, protection_from};

use crate::common::test_key;

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| map.get(name).cloned()
}

fn key_text(seed: u8) -> String {
    test_key(seed).expose_base64().to_string()
}

#[test]
fn no_key_is_plaintext_mode_unless_encryption_is_required() {
    assert!(matches!(
        protection_from(env(&[]), false).unwrap(),
        Protection::Plaintext
    ));
    assert!(matches!(
        protection_from(env(&[]), true),
        Err(CryptoError::NoKey)
    ));
    assert!(matches!(
        protection_from(env(&[("ATOM_REQUIRE_ENCRYPTION", "1")]), false),
        Err(CryptoError::NoKey)
    ));
    let err =
        protection_from(env(&[("ATOM_REQUIRE_ENCRYPTION", "yes please")]), false).unwrap_err();
    assert!(err.to_string().contains("ATOM_REQUIRE_ENCRYPTION must be"));
}

#[test]
fn a_bad_key_is_an_error_never_plaintext() {
    for bad in [
        "",
        "not-a-key",
        "a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6q7r8s9t0u1v2w3x4y5z6",
    ] {
        let err = protection_from(env(&[("ENCRYPTION_KEY", bad)]), false).unwrap_err();
        assert!(
            matches!(err, CryptoError::BadKey { .. }),
            "{bad:?}: {err:?}"
        );
        assert!(err.to_string().starts_with("ENCRYPTION_KEY "));
    }
}

#[test]
fn primary_and_previous_keys() {
    let p = key_text(1);
    let prev = format!("{},{}", key_text(2), key_text(3));
    let Protection::Encrypted(ring) = protection_from(
        env(&[("ENCRYPTION_KEY", &p), ("ENCRYPTION_PREVIOUS_KEYS", &prev)]),
        true,
    )
    .unwrap() else {
        panic!("expected a keyring")
    };
    let roles: Vec<_> = ring.key_ids().collect();
    assert_eq!(
        roles,
        vec![
            (test_key(1).id(), KeyRole::Primary),
            (test_key(2).id(), KeyRole::DecryptOnly),
            (test_key(3).id(), KeyRole::DecryptOnly),
        ]
    );
    // The seed's 43-character form works as the primary.
    let unpadded = p.trim_end_matches('=').to_owned();
    assert!(
        protection_from(env(&[("ENCRYPTION_KEY", &unpadded)]), false)
            .unwrap()
            .keyring()
            .is_some()
    );

    let err = protection_from(
        env(&[
            ("ENCRYPTION_KEY", &p),
            ("ENCRYPTION_PREVIOUS_KEYS", &format!("{},oops", key_text(2))),
        ]),
        false,
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("ENCRYPTION_PREVIOUS_KEYS entry 2 is 4 characters"),
        "{err}"
    );

    // The primary also listed as previous (mid-rotation) is the same key, once.
    let both = format!("{p},{}", key_text(2));
    let ring = protection_from(
        env(&[("ENCRYPTION_KEY", &p), ("ENCRYPTION_PREVIOUS_KEYS", &both)]),
        false,
    )
    .unwrap()
    .keyring()
    .cloned()
    .unwrap();
    assert_eq!(ring.key_ids().count(), 2);
    // Any other key twice is an error.
    let twice = format!("{},{}", key_text(2), key_text(2));
    let err = protection_from(
        env(&[("ENCRYPTION_KEY", &p), ("ENCRYPTION_PREVIOUS_KEYS", &twice)]),
        false,
    )
    .unwrap_err();
    assert!(matches!(err, CryptoError::DuplicateKey { .. }), "{err:?}");

    let err =
        protection_from(env(&[("ENCRYPTION_PREVIOUS_KEYS", &key_text(2))]), false).unwrap_err();
    assert!(err.to_string().contains("no primary key"), "{err}");
}

#[test]
fn key_files() {
    let dir = tempfile::tempdir().unwrap();
    let primary = dir.path().join("primary.key");
    std::fs::write(&primary, format!("{}\n", key_text(1))).unwrap();
    let previous = dir.path().join("previous.keys");
    std::fs::write(
        &previous,
        format!("# retired 2026-01\n{}\r\n\n{}\n", key_text(2), key_text(3)),
    )
    .unwrap();
    let p = primary.to_str().unwrap();
    let q = previous.to_str().unwrap();
    let ring = protection_from(
        env(&[
            ("ENCRYPTION_KEY_FILE", p),
            ("ENCRYPTION_PREVIOUS_KEYS_FILE", q),
        ]),
        true,
    )
    .unwrap()
    .keyring()
    .cloned()
    .unwrap();
    assert_eq!(ring.primary_id(), test_key(1).id());
    assert_eq!(ring.key_ids().count(), 3);

    let err = protection_from(
        env(&[("ENCRYPTION_KEY_FILE", p), ("ENCRYPTION_KEY", &key_text(1))]),
        false,
    )
    .unwrap_err();
    assert!(err.to_string().contains("set only one"), "{err}");

    let missing = dir.path().join("nope");
    let err = protection_from(
        env(&[("ENCRYPTION_KEY_FILE", missing.to_str().unwrap())]),
        false,
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("cannot read ENCRYPTION_KEY_FILE"),
        "{err}"
    );
    assert!(
        err.to_string().contains("not found") || err.to_string().contains("NotFound"),
        "{err}"
    );

    std::fs::write(&primary, "correct horse battery staple\n").unwrap();
    let err = protection_from(env(&[("ENCRYPTION_KEY_FILE", p)]), false).unwrap_err();
    assert!(err.to_string().contains("contains whitespace"), "{err}");
    assert!(!err.to_string().contains("horse"), "{err}");
    let _ = Key::generate();
}

#[test]
fn refusing_legacy_tokens_is_a_setting() {
    let p = key_text(1);
    let ring = protection_from(
        env(&[("ENCRYPTION_KEY", &p), ("ATOM_REFUSE_LEGACY", "1")]),
        false,
    )
    .unwrap()
    .keyring()
    .cloned()
    .unwrap();
    let legacy = crate::common::keyring(1).seal_legacy("v");
    let err = ring
        .open(&atom_crypto::Context::secret("n"), legacy.as_str())
        .unwrap_err();
    assert!(err.to_string().contains("ATOM_REFUSE_LEGACY"), "{err}");
    let err = protection_from(
        env(&[("ENCRYPTION_KEY", &p), ("ATOM_REFUSE_LEGACY", "maybe")]),
        false,
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("ATOM_REFUSE_LEGACY must be"),
        "{err}"
    );
}

/// One rule for the key and the previous keys, as the README says: the
/// variable holds 43 or 44 characters and nothing else (a trailing CR or
/// LF is refused, naming whitespace), while a key file's line ending is
/// not part of its key.
#[test]
fn a_key_variable_with_a_line_ending_is_refused_like_the_previous_keys() {
    for ending in ["\n", "\r\n", "\r", " "] {
        let with = format!("{}{ending}", key_text(1));
        let err = protection_from(env(&[("ENCRYPTION_KEY", &with)]), false).unwrap_err();
        assert!(
            matches!(err, CryptoError::BadKey { .. }),
            "{ending:?}: {err:?}"
        );
        assert!(err.to_string().contains("ENCRYPTION_KEY"), "{err}");
        let previous = format!("{},{}", key_text(2), with);
        let err = protection_from(
            env(&[
                ("ENCRYPTION_KEY", &key_text(3)),
                ("ENCRYPTION_PREVIOUS_KEYS", &previous),
            ]),
            false,
        )
        .unwrap_err();
        assert!(
            matches!(err, CryptoError::BadKey { .. }),
            "{ending:?}: {err:?}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("encryption.key");
    std::fs::write(&file, format!("{}\r\n", key_text(1))).unwrap();
    let path = file.display().to_string();
    assert!(matches!(
        protection_from(env(&[("ENCRYPTION_KEY_FILE", &path)]), false).unwrap(),
        Protection::Encrypted(_)
    ));
}
