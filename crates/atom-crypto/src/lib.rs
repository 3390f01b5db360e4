//! Keys, keyrings and context-bound Fernet tokens for Atom data protection.
//!
//! - A [`Key`] is 32 bytes of url-safe base64; its [`KeyId`] names it in
//!   every stored value.
//! - A [`Keyring`] holds one primary key that seals and older keys that
//!   still open. [`Keyring::seal`] derives a per-[`Context`] key with
//!   HKDF-SHA256 and wraps a standard Fernet token as
//!   `atom:v1:<key id>:<token>` ([`StoredValue`]).
//! - Bare Fernet tokens written by the Python original (legacy) always open;
//!   writing them is the explicit [`Keyring::seal_legacy`].
//! - [`classify`] tells plaintext, legacy and sealed values apart without a
//!   key. A value that looks like ciphertext and fails to open is an error,
//!   never plaintext.
//!
//! The only I/O here is reading key configuration ([`protection_from_env`]).

mod clock;
mod config;
mod context;
mod error;
mod key;
mod keyring;
mod mac;
mod stored;
mod token;

#[cfg(feature = "test-util")]
pub use clock::FixedClock;
pub use clock::{Clock, SystemClock};
pub use config::{
    ENV_KEY, ENV_KEY_FILE, ENV_PREVIOUS_KEYS, ENV_PREVIOUS_KEYS_FILE, ENV_REFUSE_LEGACY,
    ENV_REQUIRE_ENCRYPTION, Protection, encryption_required_by_env, protection_from,
    protection_from_env, protection_from_keys,
};
pub use context::Context;
pub use error::{CryptoError, ErrorClass, OpenFailure, ValueKind};
pub use key::{Key, KeyId, KeyProblem};
pub use keyring::{DataKey, KeyCount, KeyRole, Keyring, enveloped_key_id};
pub use mac::{MacKey, TAG_LEN};
pub use stored::{Classification, StoredValue, classify};

/// Re-exported so callers name the same secret type this crate returns.
pub use secrecy::{ExposeSecret, SecretString};
