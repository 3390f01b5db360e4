use std::fmt;

use hkdf::Hkdf;
use hmac::{Hmac, Mac as _};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::key::{KEY_LEN, Key, KeyId};

/// A keyed MAC (HMAC-SHA256) for one purpose, derived from a [`Key`] with
/// HKDF so that it never equals a sealing key. Used for the audit chain and
/// for keyed fingerprints of values. The key bytes stay inside.
#[derive(Clone)]
pub struct MacKey {
    mac: Hmac<Sha256>,
    key_id: KeyId,
}

/// Length of a full tag.
pub const TAG_LEN: usize = 32;

impl MacKey {
    /// The MAC key for `purpose` (e.g. "audit-chain", "fingerprint").
    pub fn derive(key: &Key, purpose: &str) -> MacKey {
        let mut okm = Zeroizing::new([0u8; KEY_LEN]);
        let mut info = Vec::with_capacity(8 + purpose.len());
        info.extend_from_slice(b"atom/mac/");
        info.extend_from_slice(purpose.as_bytes());
        // Invariant: 32 bytes is a valid HKDF-SHA256 output length.
        #[allow(clippy::expect_used)]
        Hkdf::<Sha256>::new(Some(b"atom/v1"), key.bytes())
            .expand(&info, okm.as_mut())
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        // Invariant: HMAC takes keys of any length.
        #[allow(clippy::expect_used)]
        let mac = Hmac::<Sha256>::new_from_slice(okm.as_ref()).expect("HMAC takes any key length");
        MacKey {
            mac,
            key_id: key.id(),
        }
    }

    /// The id of the key this MAC key was derived from.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// HMAC over `parts`, each length-prefixed so that part boundaries count.
    pub fn tag(&self, parts: &[&[u8]]) -> [u8; TAG_LEN] {
        let mut mac = self.mac.clone();
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    /// Constant-time check of a tag made by [`MacKey::tag`].
    pub fn verify(&self, parts: &[&[u8]], tag: &[u8]) -> bool {
        use subtle::ConstantTimeEq as _;
        let expected = self.tag(parts);
        tag.len() == TAG_LEN && bool::from(expected.ct_eq(tag))
    }

    /// A keyed fingerprint of a value: 16 hex digits, equal for equal values
    /// under one key, useless for guessing the value without the key.
    pub fn fingerprint(&self, value: &[u8]) -> String {
        let tag = self.tag(&[b"fingerprint", value]);
        atom_io::hex(&tag[..8])
    }
}

impl fmt::Debug for MacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MacKey")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}
