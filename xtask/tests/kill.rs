//! The rotation killed at random points (SIGKILL of the xtask binary),
//! again and again, then run to the end: it completes, nothing is lost,
//! nothing is sealed twice.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use atom_crypto::Key;

use crate::common::{Fixture, Kind, random_u64, write_key};

/// `xtask rotate-keys --yes` for the fixture, with a clean environment.
pub(crate) fn command(fx: &Fixture, new_key_file: Option<&Path>) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
    cmd.arg("rotate-keys")
        .arg("--yes")
        .arg("--key-file")
        .arg(&fx.files.primary)
        .arg("--previous-keys-file")
        .arg(&fx.files.previous)
        .arg("--secrets-dir")
        .arg(&fx.secrets_dir)
        .arg("--database-url")
        .arg(&fx.db.url)
        .args(["--workers", "2", "--batch-size", "25"])
        .env_remove("DATABASE_URL")
        .env_remove("ENCRYPTION_KEY")
        .env_remove("ENCRYPTION_KEY_FILE")
        .env_remove("ENCRYPTION_PREVIOUS_KEYS")
        .env_remove("ENCRYPTION_PREVIOUS_KEYS_FILE")
        .env("RUST_LOG", "error")
        .stdin(Stdio::null());
    if let Some(path) = new_key_file {
        cmd.arg("--new-key-file").arg(path);
    }
    cmd
}

async fn killed_at_random_points(kind: Kind) {
    let Some(fx) = Fixture::new(kind, "killed_at_random_points", 1500).await else {
        return;
    };
    let new = Key::generate().unwrap();
    let new_file = fx.dir.path().join("new.key");
    write_key(&new_file, &new);

    // How long an uninterrupted run would take is unknown (debug build,
    // backend); kill after random delays up to a bound that grows, so the
    // kills land everywhere from start-up to the end.
    let mut bound_ms = 150u64;
    let mut kills = 0;
    let mut finished = false;
    for _ in 0..40 {
        let mut child = command(&fx, Some(&new_file))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let delay = Duration::from_millis(random_u64() % bound_ms);
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if started.elapsed() >= delay {
                child.kill().unwrap();
                child.wait().unwrap();
                break None;
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        match status {
            Some(status) => {
                let mut err = String::new();
                use std::io::Read as _;
                child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut err)
                    .unwrap();
                assert!(status.success(), "run failed ({status}): {err}");
                finished = true;
                break;
            }
            None => {
                kills += 1;
                bound_ms = bound_ms * 5 / 4;
            }
        }
    }
    assert!(finished, "never finished after {kills} kills");
    assert!(
        kills >= 3,
        "only {kills} kills; the test did not interrupt the rotation"
    );
    eprintln!("{kind:?}: finished after {kills} kills");

    fx.assert_all_under(&new).await;
    fx.assert_retired(&new);

    // Nothing left to do: a further run seals nothing again.
    let tokens = fx.raw_tokens().await;
    let secrets = std::fs::read(fx.secrets_dir.join("secrets.enc")).unwrap();
    let out = command(&fx, Some(&new_file)).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing to do"));
    assert_eq!(fx.raw_tokens().await, tokens);
    assert_eq!(
        std::fs::read(fx.secrets_dir.join("secrets.enc")).unwrap(),
        secrets
    );
}
per_backend!(killed_at_random_points);
