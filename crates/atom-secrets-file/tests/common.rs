//! Helpers shared by the test modules.

use std::collections::BTreeMap;
use std::path::Path;

use atom_crypto::ExposeSecret as _;
use atom_crypto::{Key, Keyring};
use atom_secrets_file::{SecretValue, SecretsDir};
use serde_json::{Map, Value};

pub(crate) fn key() -> Key {
    Key::generate().expect("a random key")
}

pub(crate) fn keyring() -> Keyring {
    Keyring::new(key(), []).expect("a keyring")
}

pub(crate) fn temp() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temp dir")
}

pub(crate) fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) {
    std::fs::write(dir.join(name), bytes).expect("write a test file");
}

pub(crate) fn parse(bytes: &[u8]) -> Map<String, Value> {
    serde_json::from_slice(bytes).expect("valid JSON")
}

pub(crate) fn read_json(path: &Path) -> Map<String, Value> {
    parse(&std::fs::read(path).expect("read"))
}

/// Every file of `dir` (except the lock file) with its bytes.
pub(crate) fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let entry = entry.expect("dir entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == atom_secrets_file::LOCK_FILE {
            continue;
        }
        let bytes = if entry.path().is_dir() {
            b"<dir>".to_vec()
        } else {
            std::fs::read(entry.path()).expect("read file")
        };
        files.insert(name, bytes);
    }
    files
}

/// Temp files a writer left behind.
pub(crate) fn temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.') && n.ends_with(".tmp"))
        .collect()
}

/// Every entry of secrets.enc opened, in file order.
pub(crate) fn opened(dir: &SecretsDir, keyring: &Keyring) -> Map<String, Value> {
    let mut out = Map::new();
    for name in dir.list().expect("list") {
        let value = match dir.get(keyring, &name).expect("every value opens") {
            SecretValue::Secret(s) => Value::String(s.expose_secret().to_owned()),
            SecretValue::Plain(v) => v,
            SecretValue::Structured(s) => serde_json::from_str(s.expose_secret()).expect("JSON"),
            _ => unreachable!("no other kind"),
        };
        out.insert(name, value);
    }
    out
}

/// Same names, same order, same values.
pub(crate) fn assert_same(a: &Map<String, Value>, b: &Map<String, Value>) {
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "names or their order differ"
    );
    for (name, value) in a {
        assert_eq!(Some(value), b.get(name), "value of {name:?} differs");
    }
}

#[cfg(unix)]
pub(crate) fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}
