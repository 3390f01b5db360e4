//! Crash safety: a write that fails at any step, or a process killed at any
//! instant, leaves the old or the new file, whole, and loses nothing.

use std::io;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use atom_crypto::SecretString;
use atom_crypto::{Key, Keyring};
use atom_secrets_file::{SecretsDir, WriteHook, WriteStep};
use serde_json::{Map, json};

use crate::common::{assert_same, opened, parse, read_json, snapshot, temp, temp_files, write};

/// Fails `step` of the write of the file named `file`.
struct FailAt {
    step: WriteStep,
    file: &'static str,
}

impl WriteHook for FailAt {
    fn before(&self, step: WriteStep, target: &Path) -> io::Result<()> {
        let name = target.file_name().and_then(|n| n.to_str());
        if step == self.step && name == Some(self.file) {
            return Err(io::Error::other("injected failure"));
        }
        Ok(())
    }
}

type Setup = fn(&SecretsDir, &Keyring);
/// An operation given the keyring and a rotated one (whose decrypt-only key
/// is the first one's primary).
type Op = fn(&SecretsDir, &Keyring, &Keyring) -> Result<(), atom_secrets_file::Error>;

fn setup_plain(dir: &SecretsDir, _: &Keyring) {
    write(dir.dir(), "secrets.json", r#"{"a": "1", "b": "2", "n": 3}"#);
}

fn setup_migrated(dir: &SecretsDir, ring: &Keyring) {
    setup_plain(dir, ring);
    dir.migrate(ring).expect("migrate");
}

/// Operations that write, the file each writes, and how to set them up.
fn scenarios() -> Vec<(&'static str, &'static str, Setup, Op)> {
    vec![
        ("migrate", "secrets.json.backup", setup_plain, |d, k, _| {
            d.migrate(k).map(|_| ())
        }),
        ("migrate", "secrets.enc", setup_plain, |d, k, _| {
            d.migrate(k).map(|_| ())
        }),
        ("rewrap", "secrets.enc", setup_migrated, |d, _, rotated| {
            d.rewrap(rotated, false).map(|_| ())
        }),
        ("set", "secrets.enc", setup_migrated, |d, k, _| {
            d.set(k, "a", &SecretString::from("new")).map(|_| ())
        }),
        ("unset", "secrets.enc", setup_migrated, |d, _, _| {
            d.unset("b").map(|_| ())
        }),
        ("rollback", "secrets.json", setup_migrated, |d, k, _| {
            d.set(k, "c", &SecretString::from("added"))?;
            d.rollback(k).map(|_| ())
        }),
    ]
}

#[test]
fn a_write_failing_at_any_step_leaves_old_or_new_whole() {
    let expected = parse(br#"{"a": "1", "b": "2", "n": 3}"#);
    for (op_name, file, setup, op) in scenarios() {
        for step in WriteStep::ALL {
            let what = format!("{op_name} failing at {step} of {file}");
            let tmp = temp();
            let (a, b) = (Key::generate().expect("key"), Key::generate().expect("key"));
            let ring = Keyring::new(a, [b.clone()]).expect("keyring");
            let rotated = ring.promote(b).expect("promote");
            let plain_dir = SecretsDir::new(tmp.path());
            setup(&plain_dir, &ring);
            let before = snapshot(tmp.path());
            let failing =
                SecretsDir::new(tmp.path()).with_write_hook(Arc::new(FailAt { step, file }));
            let err = op(&failing, &ring, &rotated).expect_err(&what);
            assert!(err.to_string().contains(file), "{what}: {err}");
            assert!(temp_files(tmp.path()).is_empty(), "{what}: temp file left");

            let path = tmp.path().join(file);
            if step == WriteStep::SyncDir {
                // Renamed already: the new file is in place and whole.
                assert!(path.exists(), "{what}");
                read_json(&path);
            } else if op_name != "rollback" {
                // Before the rename: nothing the operation writes has changed
                // except files it wrote completely before this one.
                let after = snapshot(tmp.path());
                assert_eq!(before.get(file), after.get(file), "{what}: target changed");
            }
            // Whatever happened, nothing is lost: the state still reads.
            if tmp.path().join("secrets.enc").exists() {
                let values = opened(&plain_dir, &ring);
                for name in ["a", "n"] {
                    assert!(values.contains_key(name), "{what}: {name} lost");
                }
            }
            // secrets.json holds every original value (rollback may have
            // added "c" when its rename happened).
            let mut plain = read_json(&tmp.path().join("secrets.json"));
            plain.shift_remove("c");
            assert_same(&expected, &plain);
        }
    }
}

/// Set by the parent test: the directory the child works in.
const CHILD_DIR: &str = "ATOM_SECRETS_TEST_CHILD_DIR";
/// Set by the parent test: two test keys, comma-separated.
const CHILD_KEYS: &str = "ATOM_SECRETS_TEST_CHILD_KEYS";
/// Raises the number of kill rounds (default 12).
const KILL_ROUNDS: &str = "ATOM_SECRETS_KILL_ROUNDS";

fn keyrings(keys: &str) -> (Keyring, Keyring) {
    let mut it = keys.split(',').map(|k| Key::parse(k).expect("test key"));
    let (a, b) = (it.next().expect("key a"), it.next().expect("key b"));
    (
        Keyring::new(a.clone(), [b.clone()]).expect("ring a"),
        Keyring::new(b, [a]).expect("ring b"),
    )
}

/// Child mode: with `CHILD_DIR` set, loops migrate / rewrap / rollback on it
/// until killed. Without it (a normal test run) it does nothing.
#[test]
fn kill_child_mode() {
    let (Ok(dir), Ok(keys)) = (std::env::var(CHILD_DIR), std::env::var(CHILD_KEYS)) else {
        return;
    };
    let (a, b) = keyrings(&keys);
    let dir = SecretsDir::new(dir);
    for i in 0u64.. {
        dir.migrate(&a).expect("child migrate");
        dir.rewrap(&b, false).expect("child rewrap b");
        dir.rewrap(&a, false).expect("child rewrap a");
        if i % 3 == 0 {
            dir.rollback(&a).expect("child rollback");
        }
    }
}

#[test]
fn a_process_killed_at_random_points_loses_nothing() {
    let tmp = temp();
    let mut expected = Map::new();
    for i in 0..300 {
        let value = if i % 7 == 0 {
            json!(i)
        } else {
            json!(format!("value-{i}-ü"))
        };
        expected.insert(format!("name_{i}"), value);
    }
    write(
        tmp.path(),
        "secrets.json",
        serde_json::to_vec(&expected).expect("json"),
    );
    let a = Key::generate().expect("key");
    let b = Key::generate().expect("key");
    let keys = format!(
        "{},{}",
        a.expose_base64().as_str(),
        b.expose_base64().as_str()
    );
    let (ring, _) = keyrings(&keys);
    let dir = SecretsDir::new(tmp.path());

    let rounds: u64 = std::env::var(KILL_ROUNDS)
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(12);
    let mut rng = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_nanos() as u64
        | 1;
    let exe = std::env::current_exe().expect("test binary");
    for round in 0..rounds {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash::kill_child_mode",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR, tmp.path())
            .env(CHILD_KEYS, &keys)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the child");
        // xorshift: a kill point between 30 and 400 ms.
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_millis(30 + rng % 370));
        let _ = child.kill();
        let status = child.wait().expect("wait");
        assert!(
            !status.success(),
            "round {round}: the child stopped by itself: it failed"
        );

        // Nothing lost: secrets.json and, if present, secrets.enc are whole
        // and hold every value.
        assert_same(&expected, &read_json(&dir.plaintext_path()));
        if dir.encrypted_path().exists() {
            assert_same(&expected, &opened(&dir, &ring));
        }
        if dir.backup_path().exists() {
            assert_same(&expected, &read_json(&dir.backup_path()));
        }
    }
    // The next writer clears temp files of killed ones.
    dir.migrate(&ring).expect("migrate after the kills");
    assert!(temp_files(tmp.path()).is_empty());
    assert!(dir.verify(&ring).expect("verify").is_ok());
    assert_same(&expected, &opened(&dir, &ring));
}
