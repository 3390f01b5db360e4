//! The key-parsing table: every accepted and rejected form, with the message.

use atom_crypto::{CryptoError, Key, KeyId, KeyProblem};

const PADDED: &str = "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=";
const UNPADDED: &str = "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4";

#[test]
fn accepted_forms() {
    let padded = Key::parse(PADDED).unwrap();
    let unpadded = Key::parse(UNPADDED).unwrap();
    assert_eq!(padded, unpadded, "43 and 44 character forms are one key");
    assert_eq!(padded.id(), unpadded.id());
    // The seed's recipe, secrets.token_urlsafe(32).
    Key::parse("2Mw879KNAJfYXKc0JrZEYvBX8KTuLa_pEgkljUW02NU").unwrap();
    // A generated key round-trips through its text form.
    let k = Key::generate().unwrap();
    assert_eq!(Key::parse(&k.expose_base64()).unwrap(), k);
}

#[test]
fn rejected_forms_say_what_is_wrong() {
    let table: &[(&str, KeyProblem, &str)] = &[
        ("", KeyProblem::Empty, "is empty"),
        (
            " cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=",
            KeyProblem::Whitespace,
            "contains whitespace",
        ),
        (
            "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=\n",
            KeyProblem::Whitespace,
            "contains whitespace",
        ),
        (
            "a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6q7r8s9t0u1v2w3x4y5z6",
            KeyProblem::WrongLength { len: 52 },
            "is 52 characters",
        ),
        (
            "hunter2",
            KeyProblem::WrongLength { len: 7 },
            "is 7 characters",
        ),
        (
            "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e",
            KeyProblem::WrongLength { len: 42 },
            "is 42 characters",
        ),
        (
            "cw/0x689RpI+jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=",
            KeyProblem::StandardAlphabet,
            "standard base64 alphabet",
        ),
        (
            "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4!",
            KeyProblem::InvalidCharacter { position: 44 },
            "position 44",
        ),
        (
            "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4eé",
            KeyProblem::InvalidCharacter { position: 43 },
            "position 43",
        ),
        (
            "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e==",
            KeyProblem::InvalidCharacter { position: 43 },
            "position 43",
        ),
        (
            "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4a",
            KeyProblem::BadPadding,
            "does not end in a single '='",
        ),
    ];
    for (text, problem, fragment) in table {
        let got = Key::parse(text).expect_err(text);
        assert_eq!(&got, problem, "{text:?}");
        let message = CryptoError::BadKey {
            source_name: "ENCRYPTION_KEY".into(),
            problem: got,
        }
        .to_string();
        assert!(message.starts_with("ENCRYPTION_KEY "), "{message}");
        assert!(message.contains(fragment), "{message}");
        // The library names the variable and the problem; the binaries add
        // the command that makes a key.
        assert!(!message.contains("atom "), "{message}");
        assert!(message.contains("43 or 44 characters"), "{message}");
        if text.len() > 8 {
            assert!(
                !message.contains(&text[..8]),
                "the message must not echo the key: {message}"
            );
        }
    }
}

#[test]
fn the_issue_example_message() {
    let err = CryptoError::BadKey {
        source_name: "ENCRYPTION_KEY".into(),
        problem: Key::parse(&"x".repeat(52)).unwrap_err(),
    };
    assert_eq!(
        err.to_string(),
        "ENCRYPTION_KEY is 52 characters; a key is 32 bytes of url-safe base64 (43 or 44 characters)"
    );
}

#[test]
fn debug_never_shows_key_bytes() {
    let key = Key::parse(PADDED).unwrap();
    let shown = format!("{key:?}");
    assert!(shown.starts_with("Key { id: KeyId("), "{shown}");
    assert!(!shown.contains("cw_0x"));
    let ring = atom_crypto::Keyring::new(key, []).unwrap();
    let shown = format!("{ring:?}");
    assert!(!shown.contains("cw_0x"), "{shown}");
}

#[test]
fn key_ids_are_stable_short_and_distinct() {
    let a = Key::parse(PADDED).unwrap().id();
    // Pinned: a key id never changes across releases (stored values name it).
    assert_eq!(a.to_string(), "d3a85e52915f");
    assert_eq!(a.to_string().len(), KeyId::TEXT_LEN);
    assert_eq!(a.to_string().parse::<KeyId>().unwrap(), a);
    let b = Key::generate().unwrap().id();
    assert_ne!(a, b);
    for bad in [
        "",
        "d3a85e52915",
        "D3A85E52915F",
        "d3a85e52915g",
        "d3a85e52915fa",
    ] {
        assert!(bad.parse::<KeyId>().is_err(), "{bad}");
    }
}
