use std::sync::Arc;

use atom_crypto::{FixedClock, Key, Keyring};

/// A fixed, deterministic key for tests (never a real secret).
pub(crate) fn test_key(seed: u8) -> Key {
    let mut bytes = [0u8; 32];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = seed.wrapping_mul(31).wrapping_add(i as u8);
    }
    Key::from_bytes(bytes)
}

pub(crate) fn keyring(seed: u8) -> Keyring {
    Keyring::new(test_key(seed), []).unwrap()
}

pub(crate) fn clock_at(unix: u64) -> Arc<FixedClock> {
    Arc::new(FixedClock::at(unix))
}

pub(crate) fn data_path(rel: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(rel)
}
