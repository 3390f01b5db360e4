use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::alphabet::URL_SAFE;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use hmac::{Hmac, Mac as _};
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Length of a master key in bytes (Fernet's 16-byte signing plus 16-byte encryption key).
pub(crate) const KEY_LEN: usize = 32;

/// Url-safe base64 that takes padded and unpadded input and, like Python's
/// `base64.urlsafe_b64decode` (which reads the keys the Python original
/// used), does not insist that unused trailing bits are zero.
const KEY_B64: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// A 32-byte master key. The bytes zeroize on drop and never appear in
/// `Debug` output; only [`Key::id`] is shown.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Key {
    bytes: [u8; KEY_LEN],
}

impl Key {
    /// Parses a key written as url-safe base64 of 32 bytes: 44 characters
    /// with one `=` of padding (Fernet's own form) or 43 without (the seed's
    /// `secrets.token_urlsafe(32)` recipe).
    pub fn parse(text: &str) -> Result<Key, KeyProblem> {
        if text.is_empty() {
            return Err(KeyProblem::Empty);
        }
        if text.chars().any(char::is_whitespace) {
            return Err(KeyProblem::Whitespace);
        }
        if text.contains(['+', '/']) {
            return Err(KeyProblem::StandardAlphabet);
        }
        let len = text.chars().count();
        if len != 43 && len != 44 {
            return Err(KeyProblem::WrongLength { len });
        }
        // '=' may only be the 44th character, as padding.
        if let Some(position) = text.bytes().enumerate().position(|(i, b)| {
            !(b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || (b == b'=' && i == 43))
        }) {
            return Err(KeyProblem::InvalidCharacter {
                position: position + 1,
            });
        }
        let body = match text.strip_suffix('=') {
            Some(body) => body,
            None if len == 44 => return Err(KeyProblem::BadPadding),
            None => text,
        };
        let decoded = Zeroizing::new(KEY_B64.decode(body).map_err(|_| KeyProblem::BadPadding)?);
        let mut bytes = [0u8; KEY_LEN];
        if decoded.len() != KEY_LEN {
            return Err(KeyProblem::WrongLength { len });
        }
        bytes.copy_from_slice(&decoded);
        Ok(Key { bytes })
    }

    /// A new random key from the operating system's generator.
    pub fn generate() -> Result<Key, crate::CryptoError> {
        let mut bytes = [0u8; KEY_LEN];
        getrandom::getrandom(&mut bytes).map_err(|_| {
            crate::CryptoError::Config(
                "the operating system's random number generator is unavailable; a key cannot be generated".into(),
            )
        })?;
        Ok(Key { bytes })
    }

    /// Builds a key from raw bytes (used by tests and by key derivation).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Key {
        Key { bytes }
    }

    /// The key in Fernet's padded url-safe base64 form, for `atom key
    /// generate` and key files. The buffer zeroizes on drop.
    pub fn expose_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(base64::engine::general_purpose::URL_SAFE.encode(self.bytes))
    }

    /// The key's stable short id.
    pub fn id(&self) -> KeyId {
        KeyId::of(&self.bytes)
    }

    pub(crate) fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.bytes
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("id", &self.id())
            .finish_non_exhaustive()
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        use subtle::ConstantTimeEq as _;
        self.bytes.ct_eq(&other.bytes).into()
    }
}

impl Eq for Key {}

/// Why a text is not a key. Says what is wrong, never what the text was.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyProblem {
    /// Nothing was given.
    Empty,
    /// Spaces, tabs or line breaks inside or around the key.
    Whitespace,
    /// Not 43 or 44 characters (a password, a hex key, a truncated copy...).
    WrongLength {
        /// The number of characters given.
        len: usize,
    },
    /// `+` or `/`: standard base64 instead of url-safe.
    StandardAlphabet,
    /// A character outside url-safe base64, at this 1-based position.
    InvalidCharacter {
        /// 1-based position of the first offending character.
        position: usize,
    },
    /// 44 characters that do not end in exactly one `=`.
    BadPadding,
}

const KEY_SHAPE: &str = "a key is 32 bytes of url-safe base64 (43 or 44 characters)";

impl fmt::Display for KeyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyProblem::Empty => write!(f, "is empty; {KEY_SHAPE}"),
            KeyProblem::Whitespace => write!(
                f,
                "contains whitespace; {KEY_SHAPE}, with no spaces or line breaks"
            ),
            KeyProblem::WrongLength { len } => {
                write!(f, "is {len} characters; {KEY_SHAPE}")
            }
            KeyProblem::StandardAlphabet => write!(
                f,
                "uses the standard base64 alphabet ('+' or '/'); {KEY_SHAPE} with '-' and '_'"
            ),
            KeyProblem::InvalidCharacter { position } => write!(
                f,
                "has a character that is not url-safe base64 at position {position}; {KEY_SHAPE}"
            ),
            KeyProblem::BadPadding => write!(
                f,
                "is 44 characters but does not end in a single '='; {KEY_SHAPE}"
            ),
        }
    }
}

/// Number of bytes of HMAC kept in a key id.
const KEY_ID_LEN: usize = 6;

/// A short stable id of a key: the first 6 bytes of
/// HMAC-SHA256(key, "atom key id v1"), written as 12 lower-case hex digits.
/// It names the key in stored values and reports without revealing it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId([u8; KEY_ID_LEN]);

impl KeyId {
    /// Length of the text form.
    pub const TEXT_LEN: usize = KEY_ID_LEN * 2;

    fn of(key: &[u8; KEY_LEN]) -> KeyId {
        // Invariant: HMAC-SHA256 accepts keys of any length.
        #[allow(clippy::expect_used)]
        let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
        mac.update(b"atom key id v1");
        let tag = mac.finalize().into_bytes();
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&tag[..KEY_ID_LEN]);
        KeyId(id)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for KeyId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for KeyId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<KeyId, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl FromStr for KeyId {
    type Err = crate::CryptoError;

    fn from_str(text: &str) -> Result<KeyId, crate::CryptoError> {
        let bad = || crate::CryptoError::Malformed("a key id is 12 lower-case hex digits");
        if text.len() != KeyId::TEXT_LEN {
            return Err(bad());
        }
        let mut id = [0u8; KEY_ID_LEN];
        for (i, pair) in text.as_bytes().chunks(2).enumerate() {
            let hi = hex_digit(pair[0]).ok_or_else(bad)?;
            let lo = hex_digit(pair[1]).ok_or_else(bad)?;
            id[i] = hi << 4 | lo;
        }
        Ok(KeyId(id))
    }
}

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}
