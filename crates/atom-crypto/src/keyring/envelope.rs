//! Envelope encryption, the key hierarchy of issue #13: each owner (a
//! user) gets a [`DataKey`] of 32 random bytes; the master keyring only
//! wraps data keys, and values are sealed under their owner's data key.
//!
//! - A wrapped data key is an ordinary v1 sealed value of the key's base64
//!   text under the master keyring, for the context `data-key`, owner
//!   ([`Context::data_key`]). Rotating the master key rewraps these (one
//!   per owner) with [`Keyring::rewrap`]; the values stay as they are.
//! - A value sealed under a data key is `atom:v2:<data key id>:<fernet
//!   token>`, where the Fernet key is derived from the data key and the
//!   value's context exactly as v1 derives it from a master key (HKDF-SHA256,
//!   salt `atom/v1`). Context binding holds as in v1.
//! - Destroying an owner's wrapped data key makes every v2 value of that
//!   owner unreadable, in every copy of the data (crypto-shredding).
//!
//! docs/COMPATIBILITY.md gives the format and a Python snippet that opens a
//! v2 value from the master key and the wrapped data key alone.

use std::fmt;
use std::str::FromStr as _;

use hkdf::Hkdf;
use secrecy::{ExposeSecret as _, SecretString};
use sha2::Sha256;

use super::{FERNET_NOW_DISABLED, HKDF_SALT, Keyring, derive_fernet};
use crate::context::Context;
use crate::error::{CryptoError, ValueKind};
use crate::key::{Key, KeyId};
use crate::stored::StoredValue;
use crate::token::{self, TokenHeader};

/// Prefix of a value sealed under a data key.
pub(crate) const ENVELOPE_PREFIX: &str = "atom:v2:";

/// A per-owner data key. The bytes zeroize on drop and never appear in
/// `Debug` output; only the id is shown. Cheap to clone.
#[derive(Clone)]
pub struct DataKey {
    key: Key,
    /// HKDF state after the extract step.
    hkdf: Hkdf<Sha256>,
    /// `atom:v2:<id>:`.
    prefix: String,
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataKey")
            .field("id", &self.id())
            .finish_non_exhaustive()
    }
}

impl DataKey {
    /// A new random data key from the operating system's generator.
    pub fn generate() -> Result<DataKey, CryptoError> {
        Ok(DataKey::from_key(Key::generate()?))
    }

    fn from_key(key: Key) -> DataKey {
        DataKey {
            hkdf: Hkdf::<Sha256>::new(Some(HKDF_SALT), key.bytes()),
            prefix: format!("{ENVELOPE_PREFIX}{}:", key.id()),
            key,
        }
    }

    /// The data key's id (computed as a master key's), which every value
    /// it seals carries.
    pub fn id(&self) -> KeyId {
        self.key.id()
    }
}

/// The data key id of an enveloped value (`atom:v2:<id>:<token>`); `None`
/// for any other form. A value that claims the v2 form but is not well
/// formed is an error, never another form.
pub fn enveloped_key_id(stored: &str) -> Result<Option<KeyId>, CryptoError> {
    Ok(parse_enveloped(stored)?.map(|(id, _, _)| id))
}

/// The data key id, the token and its header of a v2 value.
fn parse_enveloped(stored: &str) -> Result<Option<(KeyId, &str, TokenHeader)>, CryptoError> {
    let Some(rest) = stored.strip_prefix(ENVELOPE_PREFIX) else {
        return Ok(None);
    };
    let (id, token) = rest
        .split_once(':')
        .ok_or(CryptoError::Malformed("no ':' after the data key id"))?;
    let id = KeyId::from_str(id)?;
    let header = token::parse_header(token).ok_or(CryptoError::Malformed(
        "the part after the data key id is not a Fernet token",
    ))?;
    Ok(Some((id, token, header)))
}

impl Keyring {
    /// Wraps `data_key` for `owner` under the primary key (a v1 sealed
    /// value for [`Context::data_key`]). Store it beside the data key's id.
    pub fn wrap_data_key(&self, owner: &str, data_key: &DataKey) -> StoredValue {
        self.seal(
            &Context::data_key(owner),
            data_key.key.expose_base64().as_str(),
        )
    }

    /// Opens `owner`'s wrapped data key. A key wrapped for another owner
    /// does not authenticate; one that opens but is not the key `expected`
    /// names (a row whose id was changed) is refused. The keyring's maximum
    /// age does not apply: data keys live as long as their owner's values.
    pub fn unwrap_data_key(
        &self,
        owner: &str,
        expected: KeyId,
        wrapped: &str,
    ) -> Result<DataKey, CryptoError> {
        let (_, key) = self.open_data_key(&Context::data_key(owner), expected, wrapped)?;
        Ok(DataKey::from_key(key))
    }

    /// Rewraps `owner`'s wrapped data key under the primary key, with the
    /// checks of [`Keyring::unwrap_data_key`] but without building the
    /// key's derivation state: the master rotation's step, once per owner.
    pub fn rewrap_data_key(
        &self,
        owner: &str,
        expected: KeyId,
        wrapped: &str,
    ) -> Result<StoredValue, CryptoError> {
        let context = Context::data_key(owner);
        let (text, _) = self.open_data_key(&context, expected, wrapped)?;
        Ok(self.seal(&context, text.expose_secret()))
    }

    /// The text and key of a wrapped data key, checked as
    /// [`Keyring::unwrap_data_key`] says.
    fn open_data_key(
        &self,
        context: &Context,
        expected: KeyId,
        wrapped: &str,
    ) -> Result<(SecretString, Key), CryptoError> {
        let text = self.open_with_max_age(context, wrapped, None)?;
        let key = Key::parse(text.expose_secret()).map_err(|_| {
            CryptoError::Malformed("a wrapped data key opened, but it does not hold a key")
        })?;
        if key.id() != expected {
            return Err(CryptoError::Malformed(
                "the wrapped data key is not the key its id names",
            ));
        }
        Ok((text, key))
    }

    /// Seals `plaintext` for `context` under `data_key` (the v2 form), with
    /// this keyring's clock.
    pub fn seal_enveloped(&self, data_key: &DataKey, context: &Context, plaintext: &str) -> String {
        let token = derive_fernet(&data_key.hkdf, context)
            .encrypt_at_time(plaintext.as_bytes(), self.clock.now_unix());
        let mut out = String::with_capacity(data_key.prefix.len() + token.len());
        out.push_str(&data_key.prefix);
        out.push_str(&token);
        out
    }

    /// Opens a v2 value for `context` with `data_key`, under this keyring's
    /// time rules (clock skew, maximum age). A value of another data key is
    /// [`CryptoError::UnknownKeyId`]; one of another context, or altered,
    /// does not authenticate.
    pub fn open_enveloped(
        &self,
        data_key: &DataKey,
        context: &Context,
        stored: &str,
    ) -> Result<SecretString, CryptoError> {
        let (id, token, header) = parse_enveloped(stored)?.ok_or(CryptoError::Malformed(
            "not an enveloped value (atom:v2:<data key id>:<token>)",
        ))?;
        if id != data_key.id() {
            return Err(CryptoError::UnknownKeyId { id });
        }
        let plaintext = derive_fernet(&data_key.hkdf, context)
            .decrypt_at_time(token, None, FERNET_NOW_DISABLED)
            .map_err(|_| CryptoError::AuthenticationFailed {
                kind: ValueKind::Sealed,
            })?;
        self.finish_open(header, plaintext, self.max_age)
    }

    /// Opens `stored` (sealed or enveloped) and seals it under `data_key`
    /// for the same context: the upgrade of a v1 or legacy value to v2, or
    /// the re-seal of an owner's values under a new data key (`old`, for a
    /// suspected compromise of one owner's key). `Ok(None)` when `stored`
    /// is already under `data_key` (it still has to open).
    pub fn reseal_enveloped(
        &self,
        old: Option<&DataKey>,
        data_key: &DataKey,
        context: &Context,
        stored: &str,
    ) -> Result<Option<String>, CryptoError> {
        let plaintext = match parse_enveloped(stored)? {
            Some((id, _, _)) if id == data_key.id() => {
                self.open_enveloped(data_key, context, stored)?;
                return Ok(None);
            }
            Some((id, _, _)) => {
                let old = old
                    .filter(|k| k.id() == id)
                    .ok_or(CryptoError::UnknownKeyId { id })?;
                self.open_enveloped(old, context, stored)?
            }
            None => self.open(context, stored)?,
        };
        Ok(Some(self.seal_enveloped(
            data_key,
            context,
            plaintext.expose_secret(),
        )))
    }
}
