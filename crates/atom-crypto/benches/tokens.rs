//! seal/open of an 85-byte OAuth-like token: our API against the raw fernet
//! crate. `cargo bench -p atom-crypto --bench tokens`.

#![allow(missing_docs, clippy::expect_used)]

use std::hint::black_box;

use atom_crypto::{Context, Key, Keyring};
use criterion::{Criterion, criterion_group, criterion_main};

/// As in the shipped binaries (see docs/PERFORMANCE.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn token() -> String {
    // "xoxb-" + 80 hex characters: 85 bytes, like bench_tokens.py.
    format!("xoxb-{}", "0123456789abcdef".repeat(5))
}

fn bench(c: &mut Criterion) {
    let key = Key::generate().expect("random key");
    let ring = Keyring::new(key.clone(), []).expect("keyring");
    let raw = fernet::Fernet::new(&key.expose_base64()).expect("fernet key");
    let msg = token();
    let ctx = Context::credential("user_123", "slack");
    let sealed = ring.seal(&ctx, &msg);
    let raw_token = raw.encrypt(msg.as_bytes());

    let mut g = c.benchmark_group("85-byte token");
    g.bench_function("atom seal", |b| {
        b.iter(|| ring.seal(black_box(&ctx), black_box(&msg)))
    });
    g.bench_function("atom open", |b| {
        b.iter(|| ring.open(black_box(&ctx), black_box(sealed.as_str())))
    });
    g.bench_function("fernet encrypt", |b| {
        b.iter(|| raw.encrypt(black_box(msg.as_bytes())))
    });
    g.bench_function("fernet decrypt", |b| {
        b.iter(|| raw.decrypt(black_box(&raw_token)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
