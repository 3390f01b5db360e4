//! A secrets.json of any bytes: parsing never panics, and any file that
//! parses migrates, verifies, reads back and rolls back to exactly the same
//! JSON (strings inside objects and arrays included).
#![no_main]

use std::path::Path;

use atom_crypto::{ExposeSecret as _, Key, Keyring};
use atom_secrets_file::{SecretValue, SecretsDir, parse_secrets};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let Ok(entries) = parse_secrets(Path::new("secrets.json"), bytes) else {
        return;
    };
    if entries.len() > 64 {
        return;
    }
    let base = if Path::new("/dev/shm").is_dir() { "/dev/shm" } else { "/tmp" };
    let dir = tempfile::tempdir_in(base).unwrap();
    std::fs::write(dir.path().join("secrets.json"), bytes).unwrap();
    let ring = Keyring::new(Key::from_bytes([3; 32]), []).unwrap();
    let secrets = SecretsDir::new(dir.path());
    let migrated = secrets.migrate(&ring);
    let Ok(report) = migrated else {
        // Refused (a value that looks sealed and does not open): nothing
        // may have been written.
        assert!(!secrets.encrypted_path().exists());
        return;
    };
    assert_eq!(report.total, entries.len());
    let status = secrets.status(Some(&ring)).unwrap();
    assert_eq!(status.total_secrets, entries.len());
    assert_eq!(status.plaintext_secrets, 0);
    assert_eq!(status.nested_strings.plaintext, 0);
    assert!(secrets.verify(&ring).unwrap().is_ok());
    for (name, value) in &entries {
        let back = match secrets.get(&ring, name).unwrap() {
            SecretValue::Secret(s) => serde_json::Value::String(s.expose_secret().to_owned()),
            SecretValue::Plain(v) => v,
            SecretValue::Structured(s) => serde_json::from_str(s.expose_secret()).unwrap(),
            _ => unreachable!(),
        };
        assert_eq!(&back, value, "{name}");
    }
    std::fs::remove_file(secrets.plaintext_path()).unwrap();
    secrets.rollback(&ring).unwrap();
    let restored = std::fs::read(secrets.plaintext_path()).unwrap();
    let again = parse_secrets(Path::new("secrets.json"), &restored).unwrap();
    assert_eq!(again, entries);
});
