//! Structure-aware: Fernet tokens built from their parts (version,
//! timestamp, IV, blocks, a MAC that is right or not), in every wrapping a
//! damaged copy takes, opened under hostile clocks and maximum ages. The
//! time rules run after authentication with overflow-free arithmetic;
//! wrapped tokens are malformed, never plaintext.
#![no_main]

use std::sync::Arc;
use std::time::Duration;

use arbitrary::Arbitrary;
use atom_crypto::{Classification, Context, CryptoError, FixedClock, Key, Keyring, classify};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac as _};
use libfuzzer_sys::fuzz_target;
use sha2::Sha256;

#[derive(Arbitrary, Debug)]
enum Wrap {
    None,
    LeadingSpace,
    TrailingNewline,
    Quotes,
    StandardAlphabet,
    Unpadded,
    Sealed,
}

#[derive(Arbitrary, Debug)]
struct Input {
    version: u8,
    timestamp: u64,
    iv: [u8; 16],
    blocks: Vec<[u8; 16]>,
    right_mac: bool,
    wrap: Wrap,
    now: u64,
    max_age: Option<u64>,
}

const MASTER: [u8; 32] = [5; 32];

fuzz_target!(|input: Input| {
    let blocks = input.blocks.len().clamp(0, 8);
    let mut bytes = vec![input.version];
    bytes.extend_from_slice(&input.timestamp.to_be_bytes());
    bytes.extend_from_slice(&input.iv);
    for block in &input.blocks[..blocks] {
        bytes.extend_from_slice(block);
    }
    let mac = if input.right_mac {
        // The legacy key: the master key as a Fernet key (its first half signs).
        let mut m = Hmac::<Sha256>::new_from_slice(&MASTER[..16]).unwrap();
        m.update(&bytes);
        m.finalize().into_bytes().to_vec()
    } else {
        vec![0xA5; 32]
    };
    bytes.extend_from_slice(&mac);
    let token = URL_SAFE.encode(&bytes);
    let text = match input.wrap {
        Wrap::None => token.clone(),
        Wrap::LeadingSpace => format!(" {token}"),
        Wrap::TrailingNewline => format!("{token}\n"),
        Wrap::Quotes => format!("\"{token}\""),
        Wrap::StandardAlphabet => STANDARD.encode(&bytes),
        Wrap::Unpadded => URL_SAFE_NO_PAD.encode(&bytes),
        Wrap::Sealed => format!("atom:v1:{}:{token}", Key::from_bytes(MASTER).id()),
    };
    let ring = Keyring::new(Key::from_bytes(MASTER), [])
        .unwrap()
        .with_clock(Arc::new(FixedClock::at(input.now)))
        .with_max_age(input.max_age.map(Duration::from_secs));
    let context = Context::credential("user", "provider");
    let opened = ring.open(&context, &text);
    let class = classify(&text);
    let wrapped = matches!(
        input.wrap,
        Wrap::LeadingSpace | Wrap::TrailingNewline | Wrap::Quotes
    );
    if wrapped && class.is_ok() {
        // Damaged in transit: near a token, so malformed (unless the bytes
        // never were token-shaped, when it may be plaintext).
        let shaped = blocks >= 1 && input.version == 0x80 && input.timestamp >> 40 == 0;
        assert!(!shaped, "a wrapped token classified {class:?}");
    }
    if let Ok(Classification::Plaintext) = class {
        assert!(matches!(opened, Err(CryptoError::NotSealed)));
    }
    if let Ok(secret) = &opened {
        let _ = secret;
        assert!(matches!(class, Ok(Classification::Legacy)), "{class:?}");
        assert!(input.right_mac && input.version == 0x80 && blocks >= 1);
    }
});
