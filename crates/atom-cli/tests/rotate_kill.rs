//! `atom keys rotate` as a process: killed at random points (SIGKILL),
//! again and again, then run to the end, it completes, nothing is lost,
//! nothing is sealed twice; a value that does not open stops it with exit 3.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use atom_crypto::Key;

use crate::rotation_common::{Fixture, Kind, random_u64, set_token, write_key};

/// `atom keys rotate --yes --seal-plaintext` for the fixture, with a clean
/// environment.
pub(crate) fn command(fx: &Fixture, new_key_file: Option<&Path>) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_atom"));
    cmd.current_dir(fx.dir.path())
        .args(["keys", "rotate", "--yes", "--seal-plaintext"])
        .arg("--audit-log")
        .arg(fx.dir.path().join("audit.jsonl"))
        .env("ATOM_AUDIT_KEY", fx.audit_key())
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
    let Some(fx) = Fixture::new(kind, "killed_at_random_points", 3000).await else {
        return;
    };
    let new = Key::generate().unwrap();
    let new_file = fx.dir.path().join("new.key");
    write_key(&new_file, &new);

    // A dry run (the plan: open everything) takes about a third of a full
    // run (plan, rewrap, verify). Kill after growing random delays, from
    // a quarter of the plan on, so that kills land in the plan, then ever
    // later in the resumed runs, until a run finishes.
    let started = Instant::now();
    let out = command(&fx, Some(&new_file))
        .arg("--dry-run")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan_ms = (started.elapsed().as_millis() as u64).max(20);
    let mut kills = 0;
    let mut finished = false;
    let mut phases = Vec::new();
    for _ in 0..40 {
        let mut child = command(&fx, Some(&new_file))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let step = plan_ms * (25 + 35 * kills) / 100;
        let delay = Duration::from_millis(step * 3 / 4 + random_u64() % (step / 2 + 1));
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
                phases.push(phase_of(&fx));
            }
        }
    }
    assert!(finished, "never finished after {kills} kills");
    eprintln!(
        "{kind:?}: plan {plan_ms} ms; finished after {kills} kills, killed in phases {phases:?}"
    );
    assert!(
        kills >= 2,
        "only {kills} kills; the test did not interrupt the rotation"
    );
    phases.dedup();
    assert!(
        phases.len() >= 2,
        "every kill landed in one phase ({phases:?}); the test did not cover the rotation"
    );

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

/// The phase the state file records ("none" before introduce).
fn phase_of(fx: &Fixture) -> String {
    match std::fs::read(fx.state_path()) {
        Ok(bytes) => {
            let state: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            let rows = state["rows_rewrapped"].as_u64().unwrap_or(0);
            format!("{}:{rows}", state["phase"].as_str().unwrap_or("?"))
        }
        Err(_) => "none".to_owned(),
    }
}

/// The binary prints the bad values and exits 3.
#[test]
fn the_binary_exits_3_naming_the_bad_row() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fx = rt
        .block_on(Fixture::new(Kind::Sqlite, "binary_exit_3", 3))
        .unwrap();
    let tokens = rt.block_on(fx.raw_tokens());
    let ids: Vec<i64> = tokens.keys().copied().collect();
    rt.block_on(async {
        let conn = fx.db.connect().await;
        set_token(&conn, ids[0], &tokens[&ids[1]]).await;
        conn.close().await.unwrap();
    });
    let out = command(&fx, None).arg("--json").output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["outcome"], "values_do_not_open");
    assert_eq!(json["bad_values"][0]["id"], ids[0]);
}
