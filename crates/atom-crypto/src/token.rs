//! The structure of a Fernet token, read without a key.
//!
//! A token is url-safe base64 (padded) of
//! `0x80 | timestamp (u64 BE) | IV (16) | AES-128-CBC ciphertext (n*16, n>=1) | HMAC-SHA256 (32)`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

const VERSION: u8 = 0x80;
/// Bytes around the ciphertext: version, timestamp, IV, HMAC.
const OVERHEAD: usize = 1 + 8 + 16 + 32;
const BLOCK: usize = 16;

/// `URL_SAFE_ALPHABET[b]`: whether byte `b` is in url-safe base64 (a table,
/// because this check runs on every value classified or opened).
const URL_SAFE_ALPHABET: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || c == b'-' || c == b'_';
        b += 1;
    }
    table
};

/// Facts about a well-formed Fernet token, read from its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TokenHeader {
    /// The token's creation time, seconds since the Unix epoch (not yet authenticated).
    pub(crate) timestamp: u64,
}

/// Reads the header of `token` if it is structurally a Fernet token: the
/// url-safe alphabet, correct padding, version byte 0x80 and a length that
/// holds at least one cipher block. No key is needed and nothing is decrypted.
pub(crate) fn parse_header(token: &str) -> Option<TokenHeader> {
    let bytes = token.as_bytes();
    if !bytes.len().is_multiple_of(4) || bytes.len() < 4 {
        return None;
    }
    let pad = bytes.iter().rev().take_while(|&&b| b == b'=').count();
    if pad > 2 {
        return None;
    }
    let body = &bytes[..bytes.len() - pad];
    if !body.iter().all(|&b| URL_SAFE_ALPHABET[usize::from(b)]) {
        return None;
    }
    let decoded_len = bytes.len() / 4 * 3 - pad;
    if decoded_len < OVERHEAD + BLOCK || !(decoded_len - OVERHEAD).is_multiple_of(BLOCK) {
        return None;
    }
    // The first 12 characters decode to exactly the 9 header bytes.
    let mut head = [0u8; 9];
    let n = URL_SAFE_NO_PAD.decode_slice(&body[..12], &mut head).ok()?;
    if n != head.len() || head[0] != VERSION {
        return None;
    }
    let mut ts = [0u8; 8];
    ts.copy_from_slice(&head[1..]);
    Some(TokenHeader {
        timestamp: u64::from_be_bytes(ts),
    })
}
