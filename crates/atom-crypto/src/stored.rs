use std::fmt;
use std::str::FromStr as _;

use crate::error::{CryptoError, ValueKind};
use crate::key::KeyId;
use crate::token::{self, TokenHeader};

/// How every Fernet token of our era begins.
const FERNET_START: &str = "gAAAAA";

/// Prefix of the current sealed form.
pub(crate) const SEALED_PREFIX: &str = "atom:v1:";

/// `atom:v1:<key id>:`, what every value sealed under `key_id` starts with.
pub(crate) fn sealed_prefix(key_id: KeyId) -> String {
    format!("{SEALED_PREFIX}{key_id}:")
}

/// A value as it is stored: either our sealed form,
/// `atom:v1:<key id>:<fernet token>`, or a legacy bare Fernet token.
/// Ciphertext only; plaintext never gets this type.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredValue {
    text: String,
    key_id: Option<KeyId>,
}

impl StoredValue {
    /// Parses a stored string. Plaintext is an error here; use [`classify`]
    /// to tell plaintext from ciphertext.
    pub fn parse(text: &str) -> Result<StoredValue, CryptoError> {
        match parse_parts(text)? {
            Parsed::Plaintext => Err(CryptoError::NotSealed),
            Parsed::Legacy(_) => Ok(StoredValue {
                text: text.to_owned(),
                key_id: None,
            }),
            Parsed::Sealed { key_id, .. } => Ok(StoredValue {
                text: text.to_owned(),
                key_id: Some(key_id),
            }),
        }
    }

    /// `prefix` is [`sealed_prefix`] of `key_id`, computed once per key.
    pub(crate) fn sealed(key_id: KeyId, prefix: &str, token: &str) -> StoredValue {
        let mut text = String::with_capacity(prefix.len() + token.len());
        text.push_str(prefix);
        text.push_str(token);
        StoredValue {
            text,
            key_id: Some(key_id),
        }
    }

    pub(crate) fn legacy(token: String) -> StoredValue {
        StoredValue {
            text: token,
            key_id: None,
        }
    }

    /// The stored text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The stored text, owned.
    pub fn into_string(self) -> String {
        self.text
    }

    /// The id of the key that sealed it; `None` for a legacy token, whose
    /// key is not recorded.
    pub fn key_id(&self) -> Option<KeyId> {
        self.key_id
    }

    /// Sealed or legacy.
    pub fn kind(&self) -> ValueKind {
        if self.key_id.is_some() {
            ValueKind::Sealed
        } else {
            ValueKind::Legacy
        }
    }
}

impl fmt::Debug for StoredValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredValue")
            .field("kind", &self.kind().as_str())
            .field("key_id", &self.key_id)
            .field("len", &self.text.len())
            .finish()
    }
}

/// What a stored string is, decided by structure alone (nothing is
/// decrypted, no key is needed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Classification {
    /// Not ciphertext.
    Plaintext,
    /// A bare Fernet token (no key id).
    Legacy,
    /// Our sealed form under the named key.
    Sealed(KeyId),
}

impl Classification {
    /// The kind without the key id.
    pub fn kind(self) -> ValueKind {
        match self {
            Classification::Plaintext => ValueKind::Plaintext,
            Classification::Legacy => ValueKind::Legacy,
            Classification::Sealed(_) => ValueKind::Sealed,
        }
    }
}

/// Classifies a stored string without decrypting it. A string that claims
/// our sealed form (`atom:v<n>:`) but is not well formed is an error, never
/// plaintext.
pub fn classify(text: &str) -> Result<Classification, CryptoError> {
    Ok(match parse_parts(text)? {
        Parsed::Plaintext => Classification::Plaintext,
        Parsed::Legacy(_) => Classification::Legacy,
        Parsed::Sealed { key_id, .. } => Classification::Sealed(key_id),
    })
}

pub(crate) enum Parsed<'a> {
    Plaintext,
    Legacy(TokenHeader),
    Sealed {
        key_id: KeyId,
        token: &'a str,
        header: TokenHeader,
    },
}

pub(crate) fn parse_parts(text: &str) -> Result<Parsed<'_>, CryptoError> {
    if let Some(rest) = text.strip_prefix(SEALED_PREFIX) {
        let (id, token) = rest
            .split_once(':')
            .ok_or(CryptoError::Malformed("no ':' after the key id"))?;
        let key_id = KeyId::from_str(id)?;
        let header = token::parse_header(token).ok_or(CryptoError::Malformed(
            "the part after the key id is not a Fernet token",
        ))?;
        return Ok(Parsed::Sealed {
            key_id,
            token,
            header,
        });
    }
    if text.starts_with("atom:v2:") {
        return Err(CryptoError::Malformed(
            "an enveloped value (atom:v2:<data key id>:...) opens with its owner's data key, not with a master key",
        ));
    }
    if claims_other_version(text) {
        return Err(CryptoError::Malformed(
            "unsupported format version (this build reads atom:v1 and atom:v2); upgrade atom to read it",
        ));
    }
    if let Some(header) = token::parse_header(text) {
        return Ok(Parsed::Legacy(header));
    }
    match near_token(text) {
        Some(problem) => Err(CryptoError::Malformed(problem)),
        None => Ok(Parsed::Plaintext),
    }
}

/// Characters trimmed from around a value before it is compared with a
/// token: whitespace and the quotes a copy and paste or a shell adds.
fn is_wrapping(c: char) -> bool {
    c.is_whitespace() || matches!(c, '"' | '\'' | '`')
}

/// Why `text`, which is neither a sealed value nor a well-formed Fernet
/// token, is still damaged ciphertext rather than plaintext; `None` when
/// it is plaintext. The rule (docs/COMPATIBILITY.md, "Damaged ciphertext"):
/// after trimming whitespace and quotes around it, the value
/// 1. starts with `atom:` (any case), or
/// 2. starts with `gAAAAA`, as every Fernet token of our era does, or
/// 3. decodes as base64 of either alphabet, padded or not, whitespace
///    ignored, to a Fernet-shaped byte string (57 + 16n bytes, n >= 1,
///    whose timestamp's three high bytes are zero; any version byte), or
/// 4. has a Fernet token's length, padded or not, and at least four in
///    five of its characters, but not all, are base64 characters, or
/// 5. holds `gAAAAA` anywhere (a token among other characters), or
/// 6. is one repair away from rules 2 and 3: with the few characters that
///    no base64 alphabet has (at most one in five) removed, or each
///    replaced by `A`, it starts with `gAAAAA` or decodes to bytes that
///    begin like a Fernet token (at least 73 bytes, the timestamp's three
///    high bytes zero): a token with characters inserted or overwritten,
///    such as the Fernet spec's invalid vectors with `*` or `%`.
///
/// A plaintext secret meets none of these unless it was made to look like
/// a token; one that does is refused (never sealed as if it were a secret)
/// and the operator decides.
pub(crate) fn near_token(text: &str) -> Option<&'static str> {
    let core = text.trim_matches(is_wrapping);
    let wrapped = core.len() != text.len();
    if core.len() >= 5 && core.as_bytes()[..5].eq_ignore_ascii_case(b"atom:") {
        return Some(if wrapped {
            "a sealed value (atom:...) with whitespace or quotes around it; remove them"
        } else {
            "it starts with atom: but is not a well-formed sealed value (atom:v1:<key id>:<token>)"
        });
    }
    if core.starts_with(FERNET_START) {
        return Some(if wrapped {
            "a Fernet token with whitespace or quotes around it; remove them"
        } else {
            "it starts like a Fernet token but is not a well-formed one (truncated, re-encoded or with extra characters)"
        });
    }
    if let Some(problem) = decodes_to_token(core) {
        return Some(problem);
    }
    if core.contains(FERNET_START) {
        return Some(
            "it holds a Fernet token among other characters (pasted together, or damaged)",
        );
    }
    if one_repair_from_a_token(core) {
        return Some(
            "it is a Fernet token with characters inserted or overwritten by ones no token has (damaged)",
        );
    }
    if has_token_length(core.len()) {
        let b64 = core
            .bytes()
            .filter(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'+' | b'/' | b'='))
            .count();
        // All base64 and not token-shaped when decoded (rule 3) is a
        // random string of that length, not a token.
        if b64 < core.len() && b64 * 5 >= core.len() * 4 {
            return Some(
                "it has a Fernet token's length and is mostly base64, but holds characters a token cannot (a damaged token)",
            );
        }
    }
    None
}

/// Rule 6 of [`near_token`]: the value, with its few characters outside
/// every base64 alphabet removed or replaced by `A`, is token-like.
fn one_repair_from_a_token(core: &str) -> bool {
    let is_b64 = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+' | '/' | '=');
    let foreign = core
        .chars()
        .filter(|&c| !is_b64(c) && !c.is_whitespace())
        .count();
    // No foreign character: rules 2 to 4 have decided. Many: not a token
    // that was damaged, but text.
    if foreign == 0 || foreign * 5 > core.chars().count() {
        return false;
    }
    // A token's start is telling at any length; its bytes only once there
    // are nearly a token's worth of them.
    let token_like = |text: &str| {
        text.starts_with(FERNET_START) || (text.len() >= 90 && begins_like_a_token(text))
    };
    let removed: String = core.chars().filter(|&c| is_b64(c)).collect();
    let replaced: String = core
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| if is_b64(c) { c } else { 'A' })
        .collect();
    token_like(&removed) || token_like(&replaced)
}

/// Whether `text` decodes (either alphabet, padding optional) to about a
/// token's worth of bytes laid out like one at the start: the repaired
/// text of rule 6 may carry a few characters too many or too few.
fn begins_like_a_token(text: &str) -> bool {
    use base64::Engine as _;
    use base64::alphabet::{STANDARD, URL_SAFE};
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    if text.len() > 96 * 1024 {
        return false;
    }
    // Whole quads only: the decoder refuses a dangling character.
    let usable = text.trim_end_matches('=');
    let usable = &usable[..usable.len() / 4 * 4];
    let config = GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true);
    [&URL_SAFE, &STANDARD].into_iter().any(|alphabet| {
        GeneralPurpose::new(alphabet, config)
            .decode(usable)
            // A repair may shift the text by a character, and whole quads
            // drop up to three more bytes.
            .is_ok_and(|bytes| bytes.len() + 3 >= MIN_TOKEN_BYTES && bytes[1..4] == [0, 0, 0])
    })
}

/// The smallest Fernet token: version, timestamp, IV, one block, HMAC.
const MIN_TOKEN_BYTES: usize = 1 + 8 + 16 + 16 + 32;

/// Whether `bytes` is laid out like a Fernet token of our era, whatever
/// its version byte.
fn fernet_shaped(bytes: &[u8]) -> bool {
    bytes.len() >= MIN_TOKEN_BYTES
        && (bytes.len() - (MIN_TOKEN_BYTES - 16)).is_multiple_of(16)
        && bytes[1..4] == [0, 0, 0]
}

/// Whether `len` characters are a Fernet token's length, padded or not.
fn has_token_length(len: usize) -> bool {
    if len < 97 {
        return false;
    }
    // Padded: 4 * ceil(bytes / 3); unpadded: ceil(bytes * 4 / 3).
    let blocks = |bytes: usize| bytes >= MIN_TOKEN_BYTES && (bytes - 57).is_multiple_of(16);
    let padded = len.is_multiple_of(4) && (0..3).any(|short| blocks(len / 4 * 3 - short));
    let unpadded = (len * 3 / 4..=len * 3 / 4 + 1)
        .any(|bytes| blocks(bytes) && (bytes * 4).div_ceil(3) == len);
    padded || unpadded
}

/// Decodes `core` (whitespace removed) as base64 of the url-safe or the
/// standard alphabet, padding optional; `Some` when the bytes are a
/// Fernet-shaped token that the strict parse refused.
fn decodes_to_token(core: &str) -> Option<&'static str> {
    use base64::Engine as _;
    use base64::alphabet::{STANDARD, URL_SAFE};
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

    // A token's text is at least 97 characters; a value much larger than
    // any credential is not worth decoding (a token of 64 KiB of payload).
    if core.len() < 97 || core.len() > 96 * 1024 {
        return None;
    }
    let compact: Vec<u8> = core.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let config = GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true);
    for (alphabet, problem) in [
        (
            &URL_SAFE,
            "it decodes as url-safe base64 to a Fernet-shaped token, but not one Fernet accepts (a changed version byte, padding, line breaks)",
        ),
        (
            &STANDARD,
            "it is a Fernet-shaped token in the standard base64 alphabet ('+' and '/'); Fernet tokens use the url-safe one ('-' and '_')",
        ),
    ] {
        let engine = GeneralPurpose::new(alphabet, config);
        if let Ok(bytes) = engine.decode(&compact)
            && fernet_shaped(&bytes)
        {
            return Some(problem);
        }
    }
    None
}

/// `atom:v<digits>:` with a version other than 1.
fn claims_other_version(text: &str) -> bool {
    let Some(rest) = text.strip_prefix("atom:v") else {
        return false;
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    digits > 0 && rest.as_bytes().get(digits) == Some(&b':')
}
