//! Classifying and opening a stored value given as text: never a panic,
//! and never plaintext for anything near a token.
#![no_main]

use atom_crypto::{Classification, Context, CryptoError, Key, Keyring, classify};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let ring = Keyring::new(Key::from_bytes([7; 32]), [Key::from_bytes([9; 32])]).unwrap();
    let context = Context::secret("name");
    let opened = ring.open(&context, text);
    match classify(text) {
        Ok(Classification::Plaintext) => {
            assert!(matches!(opened, Err(CryptoError::NotSealed)), "plaintext opened: {opened:?}");
            // Trimmed of spaces and quotes, plaintext still is not near a token.
            let core = text.trim_matches(|c: char| c.is_whitespace() || "\"'`".contains(c));
            assert!(!core.starts_with("gAAAAA"), "a token prefix classified as plaintext");
            assert!(
                !(core.len() >= 5 && core.as_bytes()[..5].eq_ignore_ascii_case(b"atom:")),
                "an atom: prefix classified as plaintext"
            );
        }
        Ok(_) => {
            if opened.is_err() {
                // A value that claims to be ciphertext and does not open is
                // never sealed as if it were plaintext.
                assert!(ring.rewrap(&context, text, true).is_err());
            }
        }
        Err(e) => {
            assert!(matches!(e, CryptoError::Malformed(_)), "{e:?}");
            assert!(opened.is_err());
            assert!(ring.rewrap(&context, text, true).is_err());
        }
    }
});
