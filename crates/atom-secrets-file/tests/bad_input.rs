//! Every kind of bad input is a clear error naming the file, and leaves the
//! disk byte for byte as it was.

use atom_crypto::SecretString;
use atom_crypto::{Key, Keyring};
use atom_secrets_file::{Error, SecretsDir};

use crate::common::{keyring, snapshot, temp, write};

/// A secret that must never appear in a message.
const SECRET: &str = "hunter2-do-not-print";

/// An operation under test, named.
type Operation<'a> = (&'static str, Box<dyn Fn() -> Result<(), Error> + 'a>);

struct Case {
    what: &'static str,
    bytes: Vec<u8>,
    check: fn(&Error) -> bool,
    says: &'static str,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            what: "invalid JSON",
            bytes: format!("{{\n  \"a\": \"{SECRET}\",\n}}").into_bytes(),
            check: |e| {
                matches!(
                    e,
                    Error::InvalidJson {
                        line: 3,
                        column: 1,
                        ..
                    }
                )
            },
            says: "line 3, column 1",
        },
        Case {
            what: "truncated JSON",
            bytes: format!("{{\"a\": \"{SECRET}").into_bytes(),
            check: |e| matches!(e, Error::InvalidJson { line: 1, .. }),
            says: "not valid JSON",
        },
        Case {
            what: "trailing garbage",
            bytes: format!("{{\"a\": \"{SECRET}\"}} x").into_bytes(),
            check: |e| matches!(e, Error::InvalidJson { .. }),
            says: "not valid JSON",
        },
        Case {
            what: "root is an array",
            bytes: format!("[\"{SECRET}\"]").into_bytes(),
            check: |e| {
                matches!(
                    e,
                    Error::NotAnObject {
                        found: "an array",
                        ..
                    }
                )
            },
            says: "not a JSON object",
        },
        Case {
            what: "root is a string",
            bytes: format!("\"{SECRET}\"").into_bytes(),
            check: |e| {
                matches!(
                    e,
                    Error::NotAnObject {
                        found: "a string",
                        ..
                    }
                )
            },
            says: "not a JSON object",
        },
        Case {
            what: "duplicate name",
            bytes: format!("{{\"a\": \"{SECRET}\",\n \"a\": \"other\"}}").into_bytes(),
            check: |e| matches!(e, Error::DuplicateName { name, line: 2, .. } if name == "a"),
            says: "appears twice",
        },
        Case {
            what: "duplicate name in a nested object",
            bytes: format!("{{\"o\": {{\"k\": \"{SECRET}\", \"k\": 1}}}}").into_bytes(),
            check: |e| matches!(e, Error::DuplicateName { name, .. } if name == "k"),
            says: "appears twice",
        },
        Case {
            what: "non-UTF-8 bytes",
            bytes: [b"{\"a\": \"".as_slice(), b"\n\xff\xfe\"}".as_slice()].concat(),
            check: |e| {
                matches!(
                    e,
                    Error::NotUtf8 {
                        line: 2,
                        column: 1,
                        ..
                    }
                )
            },
            says: "not UTF-8",
        },
        Case {
            what: "empty file",
            bytes: Vec::new(),
            check: |e| matches!(e, Error::Empty { .. }),
            says: "is empty",
        },
        Case {
            what: "whitespace only",
            bytes: b" \n\t\n".to_vec(),
            check: |e| matches!(e, Error::Empty { .. }),
            says: "is empty",
        },
        Case {
            what: "value looks sealed but does not open",
            bytes: {
                let stranger = Keyring::new(Key::generate().expect("key"), []).expect("ring");
                format!("{{\"a\": \"{}\"}}", stranger.seal_legacy(SECRET).as_str()).into_bytes()
            },
            check: |e| matches!(e, Error::DoNotOpen { failures, .. } if failures.len() == 1),
            says: "do not open",
        },
    ]
}

fn assert_refused(
    case: &str,
    file: &str,
    dir: &SecretsDir,
    result: Result<(), Error>,
    check: fn(&Error) -> bool,
    says: &str,
) {
    let err = result.expect_err(case);
    assert!(check(&err), "{case}: unexpected error {err:?}");
    let text = err.to_string();
    assert!(text.contains(file), "{case}: names the file: {text}");
    assert!(text.contains(says), "{case}: says {says:?}: {text}");
    assert!(!text.contains(SECRET), "{case}: leaks the value: {text}");
    assert!(
        !format!("{err:?}").contains(SECRET),
        "{case}: Debug leaks the value"
    );
    let _ = dir;
}

#[test]
fn bad_secrets_json_changes_nothing() {
    let ring = keyring();
    // Seen with --nocapture; docs/RELIABILITY.md counts the cases this way.
    eprintln!(
        "bad-input table: {} secrets.json cases (each also as secrets.enc)",
        cases().len()
    );
    for case in cases() {
        let tmp = temp();
        write(tmp.path(), "secrets.json", &case.bytes);
        let dir = SecretsDir::new(tmp.path());
        let before = snapshot(tmp.path());
        let result = dir.migrate(&ring).map(|_| ());
        assert_refused(
            case.what,
            "secrets.json",
            &dir,
            result,
            case.check,
            case.says,
        );
        assert_eq!(before, snapshot(tmp.path()), "{}: disk changed", case.what);
    }
}

#[test]
fn bad_secrets_enc_changes_nothing() {
    let ring = keyring();
    for case in cases() {
        let tmp = temp();
        write(tmp.path(), "secrets.json", br#"{"a": "plain"}"#);
        write(tmp.path(), "secrets.enc", &case.bytes);
        let dir = SecretsDir::new(tmp.path());
        let before = snapshot(tmp.path());
        let value = SecretString::from("v");
        let operations: [Operation<'_>; 6] = [
            ("rewrap", Box::new(|| dir.rewrap(&ring, false).map(|_| ()))),
            ("rollback", Box::new(|| dir.rollback(&ring).map(|_| ()))),
            ("set", Box::new(|| dir.set(&ring, "b", &value).map(|_| ()))),
            ("unset", Box::new(|| dir.unset("a").map(|_| ()))),
            ("migrate", Box::new(|| dir.migrate(&ring).map(|_| ()))),
            ("exec", Box::new(|| dir.exec_env(&ring).map(|_| ()))),
        ];
        for (op, run) in operations {
            let what = format!("{} ({op})", case.what);
            if case.what.contains("does not open") && op == "migrate" {
                // secrets.enc's value differs from secrets.json's and does not open.
                assert!(run().is_err(), "{what}");
            } else if case.what.contains("does not open") && (op == "unset" || op == "set") {
                // set and unset do not open the other values; editing one is allowed.
                continue;
            } else {
                assert_refused(&what, "secrets.enc", &dir, run(), case.check, case.says);
            }
            assert_eq!(before, snapshot(tmp.path()), "{what}: disk changed");
        }
    }
}

#[test]
fn too_large_missing_and_unreadable_files_change_nothing() {
    let ring = keyring();
    let tmp = temp();
    let dir = SecretsDir::new(tmp.path()).with_max_size(16);
    // Missing.
    let err = dir.migrate(&ring).expect_err("missing");
    assert!(matches!(err, Error::Missing { .. }), "{err}");
    assert!(err.to_string().contains("secrets.json does not exist"));
    let err = dir.verify(&ring).expect_err("missing");
    assert!(
        err.to_string().contains("secrets.enc does not exist"),
        "{err}"
    );

    // Too large.
    write(
        tmp.path(),
        "secrets.json",
        format!("{{\"a\": \"{SECRET}\"}}"),
    );
    let before = snapshot(tmp.path());
    let err = dir.migrate(&ring).expect_err("too large");
    assert!(matches!(err, Error::TooLarge { limit: 16, .. }), "{err}");
    assert!(err.to_string().contains("secrets.json") && !err.to_string().contains(SECRET));
    assert_eq!(before, snapshot(tmp.path()));

    // Unreadable: a directory where the file should be (root reads any
    // file, so permissions cannot stand in for this).
    let tmp = temp();
    std::fs::create_dir(tmp.path().join("secrets.json")).expect("mkdir");
    let dir = SecretsDir::new(tmp.path());
    let before = snapshot(tmp.path());
    let err = dir.migrate(&ring).expect_err("unreadable");
    assert!(matches!(err, Error::Unreadable { .. }), "{err}");
    assert!(err.to_string().contains("cannot read"));
    assert_eq!(before, snapshot(tmp.path()));
}
