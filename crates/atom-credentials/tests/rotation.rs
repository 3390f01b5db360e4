// Rewrap and status, included once per backend.

use super::KIND;
use atom_audit::{Action, Outcome, Subject};
use atom_credentials::CredentialStore;
use atom_crypto::OpenFailure;
use atom_crypto::{Key, Protection};
use std::num::NonZeroU32;

use crate::common::RawAccess as _;
use crate::common::{self, encrypted, open, provider, reveal, secret, user};

use atom_credentials::{IdRange, RewrapOptions, StoreStatus};

/// Seeds `n` credentials (user_<i>, github) through `store`.
pub(super) async fn seed(store: &CredentialStore, n: usize) {
    for i in 0..n {
        store
            .put(
                &user(&format!("user_{i}")),
                &provider("github"),
                &secret(&format!("token-{i}")),
            )
            .await
            .unwrap();
    }
}

pub(super) async fn assert_all_open(store: &CredentialStore, n: usize) {
    for i in 0..n {
        let t = store
            .get(&user(&format!("user_{i}")), &provider("github"))
            .await
            .unwrap();
        assert_eq!(reveal(&t), format!("token-{i}"));
    }
}

pub(super) fn under(status: &StoreStatus, key: &Key) -> u64 {
    status
        .by_key
        .iter()
        .filter(|k| k.key_id == key.id())
        .map(|k| k.count)
        .sum()
}

db_test!(rewrap_moves_every_row_to_the_new_key, |db| {
    let (old, new) = (Key::generate().unwrap(), Key::generate().unwrap());
    let (store, _) = open(&db, encrypted(&old, &[])).await;
    seed(&store, 50).await;
    let (store, sink) = open(&db, encrypted(&new, &[&old])).await;
    let before = store.status().await.unwrap();
    assert_eq!((before.total, before.needs_rewrap), (50, 50));
    assert_eq!(under(&before, &old), 50);

    let mut seen = Vec::new();
    let progress = store
        .rewrap(
            &RewrapOptions::new().batch_size(std::num::NonZeroU32::new(7).unwrap()),
            |p| seen.push(p.done),
        )
        .await
        .unwrap();
    assert_eq!(
        (progress.done, progress.skipped, progress.failed),
        (50, 0, 0)
    );
    assert!(progress.finished);
    assert_eq!(seen.len(), 8, "ceil(50 / 7) batches: {seen:?}");
    assert!(seen.windows(2).all(|w| w[0] <= w[1]));

    let after = store.status().await.unwrap();
    assert_eq!((after.total, after.needs_rewrap), (50, 0));
    assert_eq!(under(&after, &new), 50);
    // Retire the old key: everything still opens.
    let retired = common::keyring(&new, &[&old]).retire(old.id()).unwrap();
    let store = store.with_protection(Protection::Encrypted(retired));
    assert_all_open(&store, 50).await;
    let names = sink.names();
    // The status read before the run is recorded too.
    assert_eq!(
        &names[..2],
        ["credential_status_read", "key_rotation_started"]
    );
    assert!(names.contains(&"key_rotation_finished"));
    assert_eq!(
        names
            .iter()
            .filter(|n| **n == "key_rotation_progressed")
            .count(),
        8
    );
    // Nothing left: a second run does nothing.
    let again = store.rewrap(&RewrapOptions::new(), |_| {}).await.unwrap();
    assert_eq!(again.done, 0);
});

db_test!(
    rewrap_resumes_from_last_id_and_dry_run_writes_nothing,
    |db| {
        let (old, new) = (Key::generate().unwrap(), Key::generate().unwrap());
        let (store, _) = open(&db, encrypted(&old, &[])).await;
        seed(&store, 30).await;
        let (store, _) = open(&db, encrypted(&new, &[&old])).await;

        let dry = store
            .rewrap(
                &RewrapOptions::new()
                    .dry_run(true)
                    .batch_size(std::num::NonZeroU32::new(8).unwrap()),
                |_| {},
            )
            .await
            .unwrap();
        assert_eq!(dry.done, 30);
        assert_eq!(store.status().await.unwrap().needs_rewrap, 30);

        // Two batches, as if the process stopped; then resume from last_id.
        let options = RewrapOptions::new().batch_size(std::num::NonZeroU32::new(10).unwrap());
        let first = store.rewrap_batch(i64::MIN, &options).await.unwrap();
        let second = store
            .rewrap_batch(first.last_id.unwrap(), &options)
            .await
            .unwrap();
        assert_eq!((first.done, second.done), (10, 10));
        assert!(!second.finished);
        let resumed = store
            .rewrap(
                &options
                    .clone()
                    .range(IdRange::ALL.resume_after(second.last_id.unwrap())),
                |_| {},
            )
            .await
            .unwrap();
        assert_eq!(resumed.done, 10);
        assert_eq!(store.status().await.unwrap().needs_rewrap, 0);
        assert_all_open(&store, 30).await;
    }
);

db_test!(rewrap_reports_rows_that_do_not_open_and_continues, |db| {
    let (old, new) = (Key::generate().unwrap(), Key::generate().unwrap());
    let (store, _) = open(&db, encrypted(&old, &[])).await;
    seed(&store, 10).await;
    let raw = db.raw().await;
    // user_3's row now holds user_4's ciphertext.
    let stolen = raw.token("user_4", "github").await;
    raw.exec(
        "UPDATE user_credentials SET encrypted_token = ? WHERE user_id = ?",
        vec![stolen.into(), "user_3".into()],
    )
    .await
    .unwrap();
    let (store, sink) = open(&db, encrypted(&new, &[&old])).await;
    let progress = store
        .rewrap(
            &RewrapOptions::new().batch_size(std::num::NonZeroU32::new(4).unwrap()),
            |_| {},
        )
        .await
        .unwrap();
    assert_eq!((progress.done, progress.failed), (9, 1));
    let failure = &progress.failures[0];
    assert_eq!(
        (failure.user.as_str(), failure.reason),
        ("user_3", OpenFailure::NotAuthentic)
    );
    assert!(sink.actions().contains(&Action::DecryptionFailed {
        subject: Subject::Credential {
            user: "user_3".into(),
            provider: "github".into()
        },
        key_id: Some(old.id()),
        reason: OpenFailure::NotAuthentic,
    }));
    let finished = sink.events().pop().unwrap();
    assert_eq!(finished.name(), "key_rotation_finished");
    assert_eq!(finished.outcome, Outcome::Failure);
});

db_test!(status_and_rewrap_cover_legacy_and_plaintext_rows, |db| {
    let key = Key::generate().unwrap();
    // The Python original's rows: bare Fernet under the raw key, and
    // plaintext from its no-key mode; key_id NULL.
    let (store, _) = open(&db, encrypted(&key, &[])).await;
    let raw = db.raw().await;
    let legacy = common::keyring(&key, &[]).seal_legacy("legacy-token");
    let now = chrono::Utc::now().naive_utc();
    for (u, v) in [("lena", legacy.as_str()), ("paul", "plain-token")] {
        raw.exec(
            "INSERT INTO user_credentials (user_id, provider, encrypted_token, created_at, updated_at) VALUES (?, 'github', ?, ?, ?)",
            vec![u.into(), v.into(), now.into(), now.into()],
        )
        .await
        .unwrap();
    }
    store
        .put(&user("sam"), &provider("github"), &secret("sealed"))
        .await
        .unwrap();
    let status = store.status().await.unwrap();
    assert_eq!(
        (
            status.total,
            status.legacy,
            status.plaintext,
            status.needs_rewrap
        ),
        (3, 1, 1, 2)
    );
    assert_eq!(status.primary, Some(key.id()));
    assert_eq!(
        reveal(&store.get(&user("lena"), &provider("github")).await.unwrap()),
        "legacy-token"
    );

    let progress = store.rewrap(&RewrapOptions::new(), |_| {}).await.unwrap();
    assert_eq!((progress.done, progress.failed), (1, 1));
    assert_eq!(progress.failures[0].reason, OpenFailure::NotSealed);
    let progress = store
        .rewrap(&RewrapOptions::new().seal_plaintext(true), |_| {})
        .await
        .unwrap();
    assert_eq!((progress.done, progress.failed), (1, 0));
    let status = store.status().await.unwrap();
    assert_eq!(
        (status.legacy, status.plaintext, status.needs_rewrap),
        (0, 0, 0)
    );
    assert_eq!(
        reveal(&store.get(&user("paul"), &provider("github")).await.unwrap()),
        "plain-token"
    );
    assert!(raw.token("lena", "github").await.starts_with("atom:v1:"));
});

db_test!(parallel_workers_on_split_ranges_and_shared_range, |db| {
    let (old, new) = (Key::generate().unwrap(), Key::generate().unwrap());
    let (store, _) = open(&db, encrypted(&old, &[])).await;
    seed(&store, 120).await;
    let (store, _) = open(&db, encrypted(&new, &[&old])).await;

    // Disjoint ranges: each row belongs to exactly one worker.
    let ranges = store.split_ids(NonZeroU32::new(3).unwrap()).await.unwrap();
    assert_eq!(ranges.len(), 3);
    let mut workers = Vec::new();
    for (i, range) in ranges.into_iter().enumerate() {
        let store = store.clone();
        // Half the rows: only the first two workers run now.
        if i == 2 {
            continue;
        }
        workers.push(tokio::spawn(async move {
            store
                .rewrap(
                    &RewrapOptions::new()
                        .batch_size(std::num::NonZeroU32::new(9).unwrap())
                        .range(range),
                    |_| {},
                )
                .await
                .unwrap()
        }));
    }
    let mut done = 0;
    for w in workers {
        done += w.await.unwrap().done;
    }
    assert_eq!(done, 80);

    // The rest by three workers sharing every id (SKIP LOCKED on
    // PostgreSQL; elsewhere compare-and-swap makes the losers skip).
    let mut workers = Vec::new();
    for _ in 0..3 {
        let store = store.clone();
        workers.push(tokio::spawn(async move {
            store
                .rewrap(
                    &RewrapOptions::new()
                        .batch_size(std::num::NonZeroU32::new(5).unwrap())
                        .skip_locked(true),
                    |_| {},
                )
                .await
                .unwrap()
        }));
    }
    let mut done = 0;
    for w in workers {
        let p = w.await.unwrap();
        assert_eq!(p.failed, 0);
        done += p.done;
    }
    assert_eq!(done, 40, "each row rewrapped exactly once");
    assert_eq!(store.status().await.unwrap().needs_rewrap, 0);
    assert_all_open(&store, 120).await;
});
