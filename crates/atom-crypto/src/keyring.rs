use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE;
use fernet::Fernet;
use hkdf::Hkdf;
use secrecy::SecretString;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::clock::{Clock, SystemClock};
use crate::context::Context;
use crate::error::{CryptoError, ValueKind};
use crate::key::{KEY_LEN, Key, KeyId};
use crate::stored::{self, Parsed, StoredValue};
use crate::token::TokenHeader;

mod envelope;
pub use envelope::{DataKey, enveloped_key_id};

/// HKDF salt of the v1 format; fixed so that any HKDF library reproduces
/// the derivation (docs/COMPATIBILITY.md).
const HKDF_SALT: &[u8] = b"atom/v1";

/// Fernet's allowed clock skew: a token may claim to be at most this far in
/// the future.
const MAX_CLOCK_SKEW: u64 = 60;

/// Passed as "now" to the fernet crate so that its own time checks never
/// fire: we authenticate first and apply the time rules ourselves, with
/// overflow-free arithmetic, so a time error is reported only for a token
/// that is genuine.
const FERNET_NOW_DISABLED: u64 = u64::MAX - MAX_CLOCK_SKEW;

/// One key of a keyring with what is precomputed from it.
#[derive(Clone)]
struct Slot {
    id: KeyId,
    /// `atom:v1:<id>:`, the start of every value this key seals.
    prefix: String,
    origin: String,
    /// HKDF state after the extract step; expanding a context from it costs
    /// one HMAC.
    hkdf: Hkdf<Sha256>,
    /// The raw master key as a Fernet key, for legacy tokens.
    legacy: Fernet,
}

impl Slot {
    fn new(key: &Key, origin: String) -> Slot {
        Slot {
            id: key.id(),
            prefix: stored::sealed_prefix(key.id()),
            origin,
            hkdf: Hkdf::<Sha256>::new(Some(HKDF_SALT), key.bytes()),
            legacy: fernet_from_bytes(key.bytes()),
        }
    }

    fn derive(&self, context: &Context) -> Fernet {
        derive_fernet(&self.hkdf, context)
    }
}

/// The Fernet key for `context` from a key's HKDF state (master or data key).
fn derive_fernet(hkdf: &Hkdf<Sha256>, context: &Context) -> Fernet {
    let mut okm = Zeroizing::new([0u8; KEY_LEN]);
    // Invariant: 32 bytes is far below HKDF-SHA256's 8160-byte limit.
    #[allow(clippy::expect_used)]
    hkdf.expand(context.encoded(), okm.as_mut())
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    fernet_from_bytes(&okm)
}

fn fernet_from_bytes(bytes: &[u8; KEY_LEN]) -> Fernet {
    let mut text = Zeroizing::new([0u8; 44]);
    // Invariant: 32 bytes encode to exactly 44 base64 characters, and that
    // is a valid Fernet key.
    #[allow(clippy::expect_used)]
    let n = URL_SAFE
        .encode_slice(bytes, text.as_mut())
        .expect("32 bytes fit 44 base64 characters");
    #[allow(clippy::expect_used)]
    let text = std::str::from_utf8(&text[..n]).expect("base64 is ASCII");
    #[allow(clippy::expect_used)]
    Fernet::new(text).expect("32 url-safe base64 bytes are a Fernet key")
}

/// The role of a key in a keyring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum KeyRole {
    /// Seals new values and opens old ones.
    Primary,
    /// Only opens values sealed before a rotation.
    DecryptOnly,
}

/// How many stored values a key sealed, and its role in the keyring in use
/// (`None`: not in it, so those values do not open). The one shape of
/// "counts by key id" in every status report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct KeyCount {
    /// The key.
    pub key_id: KeyId,
    /// Its role in the keyring in use; `None` when it is not in it.
    pub role: Option<KeyRole>,
    /// How many values it sealed.
    pub count: u64,
}

impl KeyCount {
    /// Counts per key id, with their roles in `keyring`, most values first
    /// (then by key id).
    pub fn list(
        counts: impl IntoIterator<Item = (KeyId, u64)>,
        keyring: Option<&Keyring>,
    ) -> Vec<KeyCount> {
        let mut out: Vec<KeyCount> = counts
            .into_iter()
            .map(|(key_id, count)| KeyCount {
                key_id,
                role: keyring.and_then(|k| k.role_of(key_id)),
                count,
            })
            .collect();
        out.sort_by(|a, b| b.count.cmp(&a.count).then(a.key_id.cmp(&b.key_id)));
        out
    }

    /// The count of `key_id` in `list` (0 when it is not there).
    pub fn of(list: &[KeyCount], key_id: KeyId) -> u64 {
        list.iter()
            .filter(|k| k.key_id == key_id)
            .map(|k| k.count)
            .sum()
    }

    /// The key ids of `list`, in its order.
    pub fn ids(list: &[KeyCount]) -> Vec<KeyId> {
        list.iter().map(|k| k.key_id).collect()
    }
}

impl fmt::Display for KeyRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyRole::Primary => "primary",
            KeyRole::DecryptOnly => "decrypt-only",
        })
    }
}

/// One primary key that seals, plus older keys that still open. Cheap to
/// clone (the keys are shared).
#[derive(Clone)]
pub struct Keyring {
    /// `slots[0]` is the primary.
    slots: Arc<[Slot]>,
    clock: Arc<dyn Clock>,
    max_age: Option<u64>,
    /// Whether bare Fernet tokens (the Python original's) still open.
    legacy: bool,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("primary", &self.primary_id())
            .field(
                "decrypt_only",
                &self.slots[1..].iter().map(|s| s.id).collect::<Vec<_>>(),
            )
            .field("max_age", &self.max_age)
            .finish()
    }
}

impl Keyring {
    /// A keyring with `primary` sealing and `previous` only opening.
    /// The same key twice is an error.
    pub fn new(
        primary: Key,
        previous: impl IntoIterator<Item = Key>,
    ) -> Result<Keyring, CryptoError> {
        let mut entries = vec![(primary, "the primary key".to_owned())];
        entries.extend(
            previous
                .into_iter()
                .enumerate()
                .map(|(i, k)| (k, format!("previous key #{}", i + 1))),
        );
        Keyring::from_entries(entries)
    }

    /// A keyring of one key, which seals and opens.
    pub fn single(key: Key) -> Keyring {
        Keyring {
            slots: vec![Slot::new(&key, "the key".to_owned())].into(),
            clock: Arc::new(SystemClock),
            max_age: None,
            legacy: true,
        }
    }

    /// Builds from keys with a description of where each came from (used in
    /// error messages). The first entry is the primary.
    pub(crate) fn from_entries(entries: Vec<(Key, String)>) -> Result<Keyring, CryptoError> {
        let mut slots: Vec<Slot> = Vec::with_capacity(entries.len());
        for (key, origin) in entries {
            let slot = Slot::new(&key, origin);
            if let Some(seen) = slots.iter().find(|s| s.id == slot.id) {
                return Err(CryptoError::DuplicateKey {
                    id: slot.id,
                    first: seen.origin.clone(),
                    second: slot.origin,
                });
            }
            slots.push(slot);
        }
        if slots.is_empty() {
            return Err(CryptoError::NoKey);
        }
        Ok(Keyring {
            slots: slots.into(),
            clock: Arc::new(SystemClock),
            max_age: None,
            legacy: true,
        })
    }

    /// Uses `clock` for token timestamps (tests inject a fixed clock).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Keyring {
        self.clock = clock;
        self
    }

    /// Refuses tokens older than `max_age` when opening (Fernet's TTL).
    pub fn with_max_age(mut self, max_age: Option<Duration>) -> Keyring {
        self.max_age = max_age.map(|d| d.as_secs());
        self
    }

    /// Whether legacy tokens (bare Fernet under a raw master key, not bound
    /// to any row or name) still open. On by default, so the Python
    /// original's data keeps working; turn it off once a rotation has
    /// upgraded every value (`ATOM_REFUSE_LEGACY=1`), so that a legacy token
    /// copied into another row can no longer be read there.
    pub fn with_legacy(mut self, accepted: bool) -> Keyring {
        self.legacy = accepted;
        self
    }

    /// The id of the key that seals.
    pub fn primary_id(&self) -> KeyId {
        self.slots[0].id
    }

    /// Every key id with its role, primary first.
    pub fn key_ids(&self) -> impl Iterator<Item = (KeyId, KeyRole)> + '_ {
        self.slots.iter().enumerate().map(|(i, s)| {
            let role = if i == 0 {
                KeyRole::Primary
            } else {
                KeyRole::DecryptOnly
            };
            (s.id, role)
        })
    }

    /// The role of the key `id` in this keyring, if it is in it.
    pub fn role_of(&self, id: KeyId) -> Option<KeyRole> {
        self.key_ids().find(|(k, _)| *k == id).map(|(_, role)| role)
    }

    /// Whether a key with this id is in the keyring.
    pub fn contains(&self, id: KeyId) -> bool {
        self.slot(id).is_some()
    }

    /// A keyring in which `new_primary` seals and every current key only
    /// opens (the "promote" step of a rotation).
    pub fn promote(&self, new_primary: Key) -> Result<Keyring, CryptoError> {
        let mut slots = vec![Slot::new(&new_primary, "the new primary key".to_owned())];
        // A key that was decrypt-only moves up rather than appearing twice.
        let new_id = slots[0].id;
        slots.extend(self.slots.iter().filter(|s| s.id != new_id).cloned());
        Ok(Keyring {
            slots: slots.into(),
            clock: Arc::clone(&self.clock),
            max_age: self.max_age,
            legacy: self.legacy,
        })
    }

    /// A keyring without the decrypt-only key `id` (the "retire" step).
    /// The primary cannot be retired.
    pub fn retire(&self, id: KeyId) -> Result<Keyring, CryptoError> {
        if id == self.primary_id() {
            return Err(CryptoError::Config(format!(
                "key {id} is the primary key and cannot be retired; promote another key first"
            )));
        }
        if !self.contains(id) {
            return Err(CryptoError::UnknownKeyId { id });
        }
        let slots: Vec<Slot> = self.slots.iter().filter(|s| s.id != id).cloned().collect();
        Ok(Keyring {
            slots: slots.into(),
            clock: Arc::clone(&self.clock),
            max_age: self.max_age,
            legacy: self.legacy,
        })
    }

    /// Seals `plaintext` for `context` under the primary key.
    pub fn seal(&self, context: &Context, plaintext: &str) -> StoredValue {
        let primary = &self.slots[0];
        let token = primary
            .derive(context)
            .encrypt_at_time(plaintext.as_bytes(), self.clock.now_unix());
        StoredValue::sealed(primary.id, &primary.prefix, &token)
    }

    /// Writes the legacy form: a bare Fernet token under the raw primary key
    /// with no context, as the Python original does. Only for deployments
    /// that still run the Python original side by side; a legacy value is not
    /// bound to its row or name.
    pub fn seal_legacy(&self, plaintext: &str) -> StoredValue {
        let token = self.slots[0]
            .legacy
            .encrypt_at_time(plaintext.as_bytes(), self.clock.now_unix());
        StoredValue::legacy(token)
    }

    /// Opens a legacy token (a bare Fernet token, as the Python original's
    /// `SecretsEncryption` writes them) under any key of the ring. Anything
    /// else is refused: a sealed value needs its context
    /// ([`Keyring::open`]), plaintext is [`CryptoError::NotSealed`].
    pub fn open_legacy(&self, stored: &str) -> Result<SecretString, CryptoError> {
        match stored::parse_parts(stored)? {
            Parsed::Legacy(_) => self.open(&Context::secret(""), stored),
            Parsed::Plaintext => Err(CryptoError::NotSealed),
            Parsed::Sealed { .. } => Err(CryptoError::Malformed(
                "a sealed value (atom:v1:...) is bound to where it is stored and opens only there, not as a bare Fernet token",
            )),
        }
    }

    /// Re-seals a legacy token under the primary key, still in the legacy
    /// form and with its timestamp kept, as pyca's `MultiFernet.rotate`
    /// does: for values a host keeps in its own tables, which no Atom
    /// rotation reaches.
    pub fn rotate_legacy(&self, stored: &str) -> Result<StoredValue, CryptoError> {
        use secrecy::ExposeSecret as _;
        let plaintext = self.open_legacy(stored)?;
        // It opened as a legacy token, so its header parses.
        let timestamp = crate::token::parse_header(stored)
            .map_or_else(|| self.clock.now_unix(), |header| header.timestamp);
        let token = self.slots[0]
            .legacy
            .encrypt_at_time(plaintext.expose_secret().as_bytes(), timestamp);
        Ok(StoredValue::legacy(token))
    }

    /// Opens a stored value (sealed or legacy) for `context`. Plaintext is
    /// refused with [`CryptoError::NotSealed`]; a value that looks like
    /// ciphertext but does not authenticate is
    /// [`CryptoError::AuthenticationFailed`], never plaintext.
    pub fn open(&self, context: &Context, stored: &str) -> Result<SecretString, CryptoError> {
        self.open_with_max_age(context, stored, self.max_age)
    }

    /// [`Keyring::open`] with another maximum age.
    fn open_with_max_age(
        &self,
        context: &Context,
        stored: &str,
        max_age: Option<u64>,
    ) -> Result<SecretString, CryptoError> {
        match stored::parse_parts(stored)? {
            Parsed::Plaintext => Err(CryptoError::NotSealed),
            Parsed::Sealed {
                key_id,
                token,
                header,
            } => {
                let slot = self
                    .slot(key_id)
                    .ok_or(CryptoError::UnknownKeyId { id: key_id })?;
                let plaintext = slot
                    .derive(context)
                    .decrypt_at_time(token, None, FERNET_NOW_DISABLED)
                    .map_err(|_| CryptoError::AuthenticationFailed {
                        kind: ValueKind::Sealed,
                    })?;
                self.finish_open(header, plaintext, max_age)
            }
            Parsed::Legacy(_) if !self.legacy => Err(CryptoError::LegacyRefused),
            Parsed::Legacy(header) => {
                let plaintext = self
                    .slots
                    .iter()
                    .find_map(|s| {
                        s.legacy
                            .decrypt_at_time(stored, None, FERNET_NOW_DISABLED)
                            .ok()
                    })
                    .ok_or(CryptoError::AuthenticationFailed {
                        kind: ValueKind::Legacy,
                    })?;
                self.finish_open(header, plaintext, max_age)
            }
        }
    }

    /// Whether `stored` should be re-sealed to be under the primary key in
    /// the current form (legacy, plaintext, or sealed under an older key).
    /// Structural only; nothing is decrypted.
    pub fn needs_rewrap(&self, stored: &str) -> Result<bool, CryptoError> {
        Ok(match stored::classify(stored)? {
            stored::Classification::Sealed(id) => id != self.primary_id(),
            _ => true,
        })
    }

    /// Opens `stored` and seals it again under the primary key for the same
    /// context. `Ok(None)` when it is already sealed under the primary key.
    /// Plaintext is sealed only when `seal_plaintext` is true (an explicit
    /// upgrade of values from the no-key development mode).
    pub fn rewrap(
        &self,
        context: &Context,
        stored: &str,
        seal_plaintext: bool,
    ) -> Result<Option<StoredValue>, CryptoError> {
        use secrecy::ExposeSecret as _;
        match stored::classify(stored)? {
            stored::Classification::Sealed(id) if id == self.primary_id() => {
                // Still authenticate, so a rewrap run proves every value opens.
                self.open(context, stored)?;
                Ok(None)
            }
            stored::Classification::Plaintext if seal_plaintext => {
                Ok(Some(self.seal(context, stored)))
            }
            stored::Classification::Plaintext => Err(CryptoError::NotSealed),
            _ => {
                let plaintext = self.open(context, stored)?;
                Ok(Some(self.seal(context, plaintext.expose_secret())))
            }
        }
    }

    fn slot(&self, id: KeyId) -> Option<&Slot> {
        self.slots.iter().find(|s| s.id == id)
    }

    /// Applies the time rules to an authenticated token and turns its
    /// plaintext into a secret string.
    fn finish_open(
        &self,
        header: TokenHeader,
        plaintext: Vec<u8>,
        max_age: Option<u64>,
    ) -> Result<SecretString, CryptoError> {
        let now = self.clock.now_unix();
        let refused = if header.timestamp > now.saturating_add(MAX_CLOCK_SKEW) {
            Some(CryptoError::FromTheFuture {
                ahead_secs: header.timestamp - now,
            })
        } else {
            let age = now.saturating_sub(header.timestamp);
            max_age
                .filter(|&max| age > max)
                .map(|max| CryptoError::Expired {
                    age_secs: age,
                    max_age_secs: max,
                })
        };
        if let Some(err) = refused {
            drop(Zeroizing::new(plaintext));
            return Err(err);
        }
        // Moves the buffer into the secret without a copy; on failure the
        // bytes are handed back and wiped.
        match String::from_utf8(plaintext) {
            Ok(text) => Ok(SecretString::from(text)),
            Err(err) => {
                drop(Zeroizing::new(err.into_bytes()));
                Err(CryptoError::NotUtf8)
            }
        }
    }
}
