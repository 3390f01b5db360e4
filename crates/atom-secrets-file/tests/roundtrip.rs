//! Round trips: migrate -> read -> rollback gives back exactly what went in.

use atom_crypto::{Classification, Key, Keyring, classify};
use atom_secrets_file::{EntryCheck, SecretsDir};
use serde_json::{Map, Value, json};

use crate::common::{assert_same, keyring, opened, parse, read_json, temp, write};

const EVERY_TYPE: &str = r#"{
  "API_KEY": "sk-live-1234",
  "empty": "",
  "unicode": "pässwörd – 秘密 🔑 \u0000 nul and \" quote \\ slash",
  "名前 with spaces": "value under a unicode name",
  "": "the empty name",
  "int": 42,
  "negative": -7,
  "big": 18446744073709551615,
  "float": 3.5e-9,
  "true": true,
  "false": false,
  "null": null,
  "object": {"inner": "not sealed", "deeper": {"x": [1, "two", null]}},
  "array": ["a", 1, false, null, {"k": "v"}],
  "emptyobj": {},
  "emptyarr": []
}"#;

#[test]
fn every_json_value_type_round_trips() {
    let tmp = temp();
    write(tmp.path(), "secrets.json", EVERY_TYPE);
    let original = parse(EVERY_TYPE.as_bytes());
    let ring = keyring();
    let dir = SecretsDir::new(tmp.path());

    let report = dir.migrate(&ring).expect("migrate");
    // Five strings, and the object and array with strings inside.
    assert_eq!(report.sealed_names.len(), 7);
    assert_eq!(report.not_secret, original.len() - 7);

    let stored = read_json(&dir.encrypted_path());
    for (name, value) in &original {
        let now = &stored[name];
        match value {
            Value::String(_) => assert_eq!(
                classify(now.as_str().expect("a string")).expect("classifies"),
                Classification::Sealed(ring.primary_id()),
                "{name:?} is sealed under the primary key"
            ),
            Value::Object(_) | Value::Array(_) if name == "object" || name == "array" => {
                // The same shape, every string inside sealed under its path.
                assert_ne!(now, value, "{name:?} holds strings in clear");
                assert!(!now.to_string().contains("not sealed"));
            }
            _ => assert_eq!(now, value, "{name:?} is kept as it is"),
        }
    }
    assert_eq!(stored["object"]["deeper"]["x"][0], json!(1));
    assert_eq!(stored["array"][1], json!(1));
    assert_same(&original, &opened(&dir, &ring));

    // One check per string, nested ones by their path.
    let report = dir.verify(&ring).expect("verify");
    assert!(report.is_ok());
    assert_eq!(report.ok_count(), 9);
    let names: Vec<&str> = report.entries.iter().map(|e| e.name.as_str()).collect();
    for path in [
        "object.inner",
        "object.deeper.x[1]",
        "array[0]",
        "array[4].k",
    ] {
        assert!(names.contains(&path), "{path} not checked: {names:?}");
    }
    assert!(matches!(report.entries[5].check, EntryCheck::NotSecret));

    // A nested string moved to another place does not open there.
    let mut moved = stored.clone();
    moved["array"][0] = stored["object"]["inner"].clone();
    std::fs::write(dir.encrypted_path(), serde_json::to_vec(&moved).unwrap()).unwrap();
    let failures: Vec<_> = dir
        .verify(&ring)
        .expect("verify")
        .failures()
        .map(|(n, _)| n.to_owned())
        .collect();
    assert_eq!(failures, ["array[0]"]);
    std::fs::write(dir.encrypted_path(), serde_json::to_vec(&stored).unwrap()).unwrap();

    dir.rollback(&ring).expect("rollback");
    assert_same(&original, &read_json(&dir.plaintext_path()));
    assert!(!dir.encrypted_path().exists());
}

#[test]
fn set_unset_keep_order_and_types() {
    let tmp = temp();
    let ring = keyring();
    let dir = SecretsDir::new(tmp.path());
    for (name, value) in [
        ("z", json!("last letter")),
        ("a", json!(1)),
        ("m", json!({"nested": ["x"]})),
        ("ü", json!("")),
    ] {
        dir.set_value(&ring, name, value).expect("set");
    }
    dir.set_value(&ring, "a", json!("now a string"))
        .expect("replace");
    dir.unset("m").expect("unset");
    let want: Map<String, Value> =
        parse(br#"{"z": "last letter", "a": "now a string", "\u00fc": ""}"#);
    assert_same(&want, &opened(&dir, &ring));
    assert_eq!(dir.list().expect("list"), ["z", "a", "ü"]);
}

#[test]
fn hundred_thousand_entries_round_trip() {
    let tmp = temp();
    let mut original = Map::new();
    for i in 0..100_000u32 {
        let value = if i % 10 == 0 {
            json!(i)
        } else {
            json!(format!("sk-{i:06}-ünï-{}", "x".repeat((i % 50) as usize)))
        };
        original.insert(format!("secret_{i}"), value);
    }
    write(
        tmp.path(),
        "secrets.json",
        serde_json::to_vec(&original).expect("render"),
    );
    let old = Key::generate().expect("key");
    let new = Key::generate().expect("key");
    let ring = Keyring::new(old, []).expect("keyring");
    let dir = SecretsDir::new(tmp.path());

    let report = dir.migrate(&ring).expect("migrate");
    assert_eq!(report.sealed_names.len(), 90_000);
    assert_eq!(report.not_secret, 10_000);

    let rotated = ring.promote(new).expect("promote");
    let report = dir.rewrap(&rotated, false).expect("rewrap");
    assert_eq!(report.rewrapped_names.len(), 90_000);
    assert_eq!(report.from_key_id[&ring.primary_id()], 90_000);
    let status = dir.status(Some(&rotated)).expect("status");
    assert_eq!(
        atom_crypto::KeyCount::of(&status.by_key, rotated.primary_id()),
        90_000
    );
    assert_eq!(status.needs_rewrap, Some(0));

    assert!(dir.verify(&rotated).expect("verify").is_ok());
    dir.rollback(&rotated).expect("rollback");
    assert_same(&original, &read_json(&dir.plaintext_path()));
}

/// Found by `cargo fuzz run secrets_file`: serde_json's default float reader
/// is not always the nearest double, so a number could come back from a
/// migrate and rollback as a different value. Numbers now come back equal,
/// and an integer literal beyond 64 bits (which no double keeps exactly) is
/// refused before anything is written.
#[test]
fn numbers_come_back_as_the_same_value() {
    let text = r#"{"tiny": 5e-324, "max": 1.7976931348623157e308, "near_one": 1.0000000000000002,
        "long": 3.3333333333333334e78, "digits": 0.30000000000000004, "neg": -2.5e-300,
        "in_object": {"x": [1e-7, 123456.789e3]}, "u64": 18446744073709551615,
        "i64": -9223372036854775808, "big_float": 1.5e300, "whole_exponent": 1e20,
        "not_a_number": "123456789012345678901234567890"}"#;
    assert_migrate_and_rollback_keep(text);
}

/// Migrating `text`, reading every value and rolling back (from the
/// encrypted file alone) give back the same values.
fn assert_migrate_and_rollback_keep(text: &str) {
    let tmp = temp();
    write(tmp.path(), "secrets.json", text);
    let original = parse(text.as_bytes());
    let ring = keyring();
    let dir = SecretsDir::new(tmp.path());
    dir.migrate(&ring).expect("migrate");
    assert_same(&original, &opened(&dir, &ring));
    std::fs::remove_file(dir.plaintext_path()).unwrap();
    dir.rollback(&ring).expect("rollback");
    assert_same(&original, &read_json(&dir.plaintext_path()));
}

#[test]
fn an_integer_beyond_64_bits_is_refused_before_anything_is_written() {
    // The fuzzer's input, shortened: an 81-digit integer.
    let number = format!("3{}0", "3".repeat(79));
    for text in [
        format!(r#"{{"n": {number}}}"#),
        format!(r#"{{"ok": "sealed?", "deep": {{"list": [1, {number}]}}}}"#),
        r#"{"n": 18446744073709551616}"#.to_owned(),
        r#"{"n": -9223372036854775809000}"#.to_owned(),
    ] {
        let tmp = temp();
        write(tmp.path(), "secrets.json", &text);
        let dir = SecretsDir::new(tmp.path());
        let err = dir.migrate(&keyring()).expect_err(&text).to_string();
        assert!(err.contains("too large to keep exactly"), "{err}");
        assert!(err.contains("write it as a string"), "{err}");
        assert!(err.contains("line 1"), "{err}");
        assert!(!err.contains("333"), "the number is not repeated: {err}");
        assert!(!dir.encrypted_path().exists());
        assert_eq!(std::fs::read_to_string(dir.plaintext_path()).unwrap(), text);
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// Any finite double, written the way serde_json writes it, comes back
    /// from migrate, read and rollback as the same double.
    #[test]
    fn any_finite_double_round_trips(bits in proptest::prelude::any::<u64>()) {
        let v = f64::from_bits(bits);
        proptest::prop_assume!(v.is_finite());
        assert_migrate_and_rollback_keep(&format!(r#"{{"n": {}, "nested": [{}]}}"#, json!(v), json!(v)));
    }
}
