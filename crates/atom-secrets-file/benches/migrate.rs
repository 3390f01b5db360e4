//! Migrate and rewrap of 100,000 secrets, for comparison with the Python
//! original's `shared/anchors/atom_py/bench_migrate.py 100000 DIR` (same
//! input shape: `secret_<i>` -> `"sk-" + 48 url-safe characters`).
//!
//! Run: `cargo bench -p atom-secrets-file --bench migrate`. Criterion prints
//! the throughput in elements (secrets) per second. Each measured migrate
//! includes what the Python timing includes (read and parse secrets.json,
//! seal every value, write secrets.enc and the backup) plus our fsyncs and
//! duplicate-name checks.

// A benchmark that cannot set up its files has nothing to measure.
#![allow(clippy::expect_used)]
// criterion_group! defines an undocumented public function.
#![allow(missing_docs)]

use std::path::Path;
use std::time::Duration;

use atom_crypto::{Key, Keyring};
use atom_secrets_file::SecretsDir;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

/// As in the shipped binaries (see docs/PERFORMANCE.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const N: usize = 100_000;

fn plaintext_file() -> Vec<u8> {
    let mut map = serde_json::Map::new();
    let mut key = Key::generate().expect("key").expose_base64().to_string();
    for i in 0..N {
        // 48 url-safe characters that differ per secret, like token_urlsafe(36).
        if i % 1000 == 0 {
            key = Key::generate().expect("key").expose_base64().to_string();
        }
        let body = format!("{}{:06}", &key[..42], i);
        map.insert(
            format!("secret_{i}"),
            serde_json::Value::String(format!("sk-{body}")),
        );
    }
    serde_json::to_vec(&map).expect("render")
}

fn fresh_dir(plain: &[u8], enc: Option<&Path>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("secrets.json"), plain).expect("write");
    if let Some(enc) = enc {
        std::fs::copy(enc, dir.path().join("secrets.enc")).expect("copy");
    }
    dir
}

fn bench(c: &mut Criterion) {
    let plain = plaintext_file();
    let old = Keyring::new(Key::generate().expect("key"), []).expect("keyring");
    let new = old.promote(Key::generate().expect("key")).expect("promote");

    let mut group = c.benchmark_group("secrets_file_100k");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(15))
        .throughput(Throughput::Elements(N as u64));

    group.bench_function("migrate", |b| {
        b.iter_batched(
            || fresh_dir(&plain, None),
            |dir| {
                let report = SecretsDir::new(dir.path()).migrate(&old).expect("migrate");
                assert_eq!(report.sealed_names.len(), N);
                dir
            },
            BatchSize::PerIteration,
        );
    });

    let migrated = fresh_dir(&plain, None);
    SecretsDir::new(migrated.path())
        .migrate(&old)
        .expect("migrate");
    let enc = migrated.path().join("secrets.enc");
    group.bench_function("rewrap", |b| {
        b.iter_batched(
            || fresh_dir(&plain, Some(&enc)),
            |dir| {
                let report = SecretsDir::new(dir.path())
                    .rewrap(&new, false)
                    .expect("rewrap");
                assert_eq!(report.rewrapped_names.len(), N);
                dir
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
