//! Rotation on several hosts, as docs/ROTATION.md describes it: once the
//! new key is promoted, two `atom credentials rewrap --skip-locked`
//! processes (two hosts) share the rewrap of one PostgreSQL database while
//! an app keeps writing. Both do part of the work, no row is done twice, no
//! write is lost, and each says how many rows it did.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};

use atom_credentials::{Provider, UserId};
use atom_crypto::{ExposeSecret as _, Key, Keyring, Protection};
use serde_json::Value;

use crate::rotation_common::{Fixture, Kind, PROVIDER, store, write_key};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_rewrap_processes_share_one_postgres_database() {
    let Some(fx) = Fixture::new(Kind::Postgres, "two_rewrap_processes", 3000).await else {
        return;
    };
    // Promote a new key by hand, as the rotation's promote phase leaves
    // the key files: the new key seals, the old ones open.
    let new = Key::generate().unwrap();
    write_key(&fx.files.primary, &new);
    std::fs::write(
        &fx.files.previous,
        format!(
            "{}\n{}\n",
            &*fx.old.expose_base64(),
            &*fx.older.expose_base64()
        ),
    )
    .unwrap();
    let keyring = Keyring::new(new.clone(), [fx.old.clone(), fx.older.clone()]).unwrap();
    let app = store(&fx.db.url, keyring.clone()).await;
    let pending = app.status().await.unwrap().needs_rewrap;
    assert!(pending >= 3000);

    let audit_key = fx.audit_key();
    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_atom"))
            .current_dir(fx.dir.path())
            .args(["--json", "--database-url", &fx.db.url, "--audit-log"])
            .arg(fx.dir.path().join("audit.jsonl"))
            .args([
                "credentials",
                "rewrap",
                "--skip-locked",
                "--seal-plaintext",
                "--batch-size",
                "25",
            ])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("ENCRYPTION_KEY_FILE", &fx.files.primary)
            .env("ENCRYPTION_PREVIOUS_KEYS_FILE", &fx.files.previous)
            .env("ATOM_AUDIT_KEY", &audit_key)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (host_a, host_b) = (spawn(), spawn());

    // The app writes meanwhile, under the new key.
    let mut written: BTreeMap<String, String> = BTreeMap::new();
    for round in 0..300 {
        let user = format!("user_{}", (round * 7) % 3000);
        let token = format!("rewritten-{round}");
        app.put(
            &UserId::parse(&user).unwrap(),
            &Provider::parse(PROVIDER).unwrap(),
            &token.clone().into(),
        )
        .await
        .unwrap();
        written.insert(user, token);
    }

    let mut done = Vec::new();
    let mut skipped = 0;
    for child in [host_a, host_b] {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "exit {:?}: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["failed"], 0, "{report}");
        done.push(report["done"].as_u64().unwrap());
        skipped += report["skipped"].as_u64().unwrap();
    }
    // Both hosts did part of the work, and no row twice: together they did
    // at most what was pending, and at least what the app did not rewrite.
    assert!(
        done.iter().all(|d| *d > 0),
        "one host did nothing: {done:?}"
    );
    let total: u64 = done.iter().sum();
    assert!(
        total + skipped <= pending,
        "{done:?} + {skipped} > {pending}"
    );
    assert!(
        total + written.len() as u64 >= pending,
        "{done:?} of {pending}"
    );

    // Everything is under the new key, and every value is the last written.
    let status = app.status().await.unwrap();
    assert_eq!(status.needs_rewrap, 0);
    let only_new = app
        .clone()
        .with_protection(Protection::Encrypted(Keyring::new(new, []).unwrap()));
    for ((user, provider), token) in &fx.credentials {
        let expected = written.get(user).unwrap_or(token);
        let got = only_new
            .get(
                &UserId::parse(user).unwrap(),
                &Provider::parse(provider).unwrap(),
            )
            .await
            .unwrap_or_else(|e| panic!("{user}: {e}"));
        assert_eq!(got.expose_secret(), expected, "{user}");
    }
}
