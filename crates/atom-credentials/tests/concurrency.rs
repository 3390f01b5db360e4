// Many tasks doing put/get/delete on overlapping credentials while a
// rewrap runs, included once per backend.

use super::KIND;
use std::sync::Arc;

use atom_credentials::{CredentialError, RewrapOptions};
use atom_crypto::{Key, Protection};

use super::rotation::{assert_all_open, seed, under};
use crate::common::{self, encrypted, open, provider, reveal, secret, user};

db_test!(concurrent_writers_and_rewrap_lose_nothing, |db| {
    use std::collections::HashMap;
    use tokio::sync::Mutex;

    let (old, new) = (Key::generate().unwrap(), Key::generate().unwrap());
    let (store, _) = open(&db, encrypted(&old, &[])).await;
    // 40 contended credentials plus filler, all under the old key.
    let keys: Vec<(String, String)> = (0..20)
        .flat_map(|u| ["github", "slack"].map(|p| (format!("hot_{u}"), p.to_owned())))
        .collect();
    for (u, p) in &keys {
        store
            .put(&user(u), &provider(p), &secret(&format!("seed-{u}-{p}")))
            .await
            .unwrap();
    }
    seed(&store, 300).await;

    let (store, _) = open(&db, encrypted(&new, &[&old])).await;
    // The expected value of each contended credential. A task holds the
    // credential's lock across its operation, so the expected value is
    // exact; the rewrap takes no such lock and must still lose nothing.
    type Expected = HashMap<(String, String), Mutex<Option<String>>>;
    let expected: Arc<Expected> = Arc::new(
        keys.iter()
            .map(|(u, p)| {
                (
                    (u.clone(), p.clone()),
                    Mutex::new(Some(format!("seed-{u}-{p}"))),
                )
            })
            .collect(),
    );

    let rewrap = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .rewrap(
                    &RewrapOptions::new().batch_size(std::num::NonZeroU32::new(16).unwrap()),
                    |_| {},
                )
                .await
                .unwrap()
        })
    };
    let mut tasks = Vec::new();
    for t in 0..8u64 {
        let (store, expected, keys) = (store.clone(), expected.clone(), keys.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ (t + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            for op in 0..40 {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let (u, p) = &keys[(rng % keys.len() as u64) as usize];
                let (u_id, p_id) = (user(u), provider(p));
                let mut slot = expected[&(u.clone(), p.clone())].lock().await;
                match (rng >> 32) % 4 {
                    0 | 1 => {
                        let value = format!("t{t}-op{op}");
                        store.put(&u_id, &p_id, &secret(&value)).await.unwrap();
                        *slot = Some(value);
                    }
                    2 => {
                        let removed = store.delete(&u_id, &p_id).await.unwrap();
                        assert_eq!(removed, slot.is_some());
                        *slot = None;
                    }
                    _ => match (store.get(&u_id, &p_id).await, slot.as_deref()) {
                        (Ok(v), Some(want)) => assert_eq!(reveal(&v), want),
                        (Err(CredentialError::NotFound { .. }), None) => {}
                        (got, want) => {
                            panic!("{u}/{p}: got {:?}, want {want:?}", got.map(|_| "a value"))
                        }
                    },
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let progress = rewrap.await.unwrap();
    assert_eq!(progress.failed, 0);

    // No row is left under the old key, and after retiring it every
    // credential holds exactly the last value written.
    let status = store.status().await.unwrap();
    assert_eq!(status.needs_rewrap, 0, "{status:?}");
    assert_eq!(under(&status, &old), 0);
    let retired = common::keyring(&new, &[&old]).retire(old.id()).unwrap();
    let store = store.with_protection(Protection::Encrypted(retired));
    for ((u, p), slot) in expected.iter() {
        let want = slot.lock().await.clone();
        match (store.get(&user(u), &provider(p)).await, want) {
            (Ok(v), Some(want)) => assert_eq!(reveal(&v), want, "{u}/{p}"),
            (Err(CredentialError::NotFound { .. }), None) => {}
            (got, want) => panic!("{u}/{p}: got {:?}, want {want:?}", got.map(|_| "a value")),
        }
    }
    assert_all_open(&store, 300).await;
});
