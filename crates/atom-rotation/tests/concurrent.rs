//! Application writers during the rewrap: they reload the key files before
//! every write (as apps do after a rollout) and keep writing while the
//! rotation promotes, rewraps and verifies. The final values are the
//! writers' last values, all under the new key.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use atom_audit::{Auditor, MemorySink};
use atom_credentials::{Provider, UserId};
use atom_crypto::Key;
use atom_rotation::{Outcome, Phase, rotate_keys};

use crate::common::{Fixture, Kind, PROVIDER, keyring_from_files, store, write_key};

const WRITERS: usize = 3;

async fn concurrent_writers(kind: Kind) {
    let Some(mut fx) = Fixture::new(kind, "concurrent_writers", 600).await else {
        return;
    };
    let new = Key::generate().unwrap();
    let new_file = fx.dir.path().join("new.key");
    write_key(&new_file, &new);
    let mut options = fx.options();
    options.new_key_file = Some(new_file);
    options.yes = false;
    options.batch_size = std::num::NonZeroU32::new(20).unwrap();

    // 1. Introduce, and "roll out": the writers read the key files.
    let r = rotate_keys(&options, &Auditor::new(MemorySink::new()))
        .await
        .unwrap();
    assert_eq!(r.phase, Some(Phase::Introduced), "{}", r.to_text());

    // 2. Promote, rewrap, verify while writers write.
    let stop = Arc::new(AtomicBool::new(false));
    let users: Vec<String> = (0..600).map(|i| format!("user_{i}")).collect();
    let mut handles = Vec::new();
    for w in 0..WRITERS {
        let stop = Arc::clone(&stop);
        let files = fx.files.clone();
        let url = fx.db.url.clone();
        let mine: Vec<String> = users.iter().skip(w).step_by(WRITERS).cloned().collect();
        handles.push(tokio::spawn(async move {
            let mut last: BTreeMap<String, String> = BTreeMap::new();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                // An app reloading its keys may catch the promote between
                // two file replacements; it retries.
                let Ok(keyring) = keyring_from_files(&files) else {
                    tokio::task::yield_now().await;
                    continue;
                };
                let app = store(&url, keyring).await;
                for _ in 0..10 {
                    let user = &mine[(n as usize * 7) % mine.len()];
                    let value = format!("written-by-{w}-{n}");
                    app.put(
                        &UserId::parse(user).unwrap(),
                        &Provider::parse(PROVIDER).unwrap(),
                        &value.clone().into(),
                    )
                    .await
                    .unwrap();
                    last.insert(user.clone(), value);
                    n += 1;
                }
                app.close().await.unwrap();
            }
            last
        }));
    }
    let r = rotate_keys(&options, &Auditor::new(MemorySink::new()))
        .await
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    let mut written = 0;
    for h in handles {
        let last = h.await.unwrap();
        written += last.len();
        for (user, value) in last {
            fx.credentials.insert((user, PROVIDER.to_owned()), value);
        }
    }
    assert!(written > 0, "the writers wrote nothing");
    // Verification may have caught a writer that still sealed with the
    // old key after the rewrap passed its row (exit 3, run again): either
    // way it is not retired yet.
    assert!(
        matches!(
            r.outcome,
            Outcome::WaitingForRollout | Outcome::VerificationFailed
        ),
        "{}",
        r.to_text()
    );

    // 3. The writers have stopped (the rollout is complete): sweep,
    //    verify, retire.
    let r = rotate_keys(&options, &Auditor::new(MemorySink::new()))
        .await
        .unwrap();
    let r = if r.outcome == Outcome::WaitingForRollout {
        rotate_keys(&options, &Auditor::new(MemorySink::new()))
            .await
            .unwrap()
    } else {
        r
    };
    assert_eq!(r.outcome, Outcome::Finished, "{}", r.to_text());
    fx.assert_all_under(&new).await;
    fx.assert_retired(&new);
}
per_backend!(concurrent_writers);
