//! Prints seal/open throughput of an 85-byte token, our API beside the raw
//! fernet crate, on one core. Run by `cargo xtask bench-tokens`, which puts
//! the Python original's figures beside it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use atom_crypto::{Context, Key, Keyring};

/// As in the shipped binaries (see docs/PERFORMANCE.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const N: u32 = 200_000;

fn rate(n: u32, f: impl FnMut(u32)) -> f64 {
    let mut f = f;
    let t = Instant::now();
    for i in 0..n {
        f(i);
    }
    f64::from(n) / t.elapsed().as_secs_f64()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let key = Key::generate()?;
    let ring = Keyring::new(key.clone(), [])?;
    let raw = fernet::Fernet::new(&key.expose_base64()).ok_or("fernet key")?;
    let msg = format!("xoxb-{}", "0123456789abcdef".repeat(5));
    assert_eq!(msg.len(), 85);

    // Distinct contexts, as a credential store sees them: every seal derives.
    let contexts: Vec<Context> = (0..1024)
        .map(|i| Context::credential(&format!("user_{i}"), "slack"))
        .collect();
    let ctx = |i: u32| &contexts[i as usize % contexts.len()];
    let sealed: Vec<String> = (0..1024u32)
        .map(|i| ring.seal(ctx(i), &msg).into_string())
        .collect();
    let raw_tokens: Vec<String> = (0..1024).map(|_| raw.encrypt(msg.as_bytes())).collect();

    let seal = rate(N, |i| {
        std::hint::black_box(ring.seal(ctx(i), &msg));
    });
    let open = rate(N, |i| {
        std::hint::black_box(ring.open(ctx(i), &sealed[i as usize % 1024]).ok());
    });
    let enc = rate(N, |_| {
        std::hint::black_box(raw.encrypt(msg.as_bytes()));
    });
    let dec = rate(N, |i| {
        std::hint::black_box(raw.decrypt(&raw_tokens[i as usize % 1024]).ok());
    });
    println!(
        "rust atom-crypto: seal {seal:.0}/s open {open:.0}/s | raw fernet crate: encrypt {enc:.0}/s decrypt {dec:.0}/s | atom/raw: seal {:.2}x open {:.2}x",
        seal / enc,
        open / dec
    );
    Ok(())
}
