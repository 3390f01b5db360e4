//! How a stored value becomes a secret: the rules for plaintext, legacy and
//! sealed values under the configured protection. Pure; no I/O.

use atom_crypto::OpenFailure;
use atom_crypto::{Classification, Context, KeyId, Protection, SecretString, classify};

use crate::error::CredentialError;
use crate::provider::Provider;
use crate::user_id::UserId;

/// A value that could not be revealed: the class for the audit event, the
/// key it names, and the error for the caller.
pub(crate) struct Refusal {
    pub(crate) reason: OpenFailure,
    pub(crate) key_id: Option<KeyId>,
    pub(crate) error: CredentialError,
}

/// Opens `stored`, the token of `user`'s credential for `provider`.
///
/// - Sealed and legacy values open with the keyring, for this user and
///   provider only; a failure is an error, never plaintext.
/// - Plaintext is returned as it is only in plaintext mode (no key) or
///   while `plaintext_transition` is on.
/// - Without a key, ciphertext cannot be opened.
pub(crate) fn reveal(
    protection: &Protection,
    plaintext_transition: bool,
    user: &UserId,
    provider: &Provider,
    stored: &str,
) -> Result<(SecretString, Option<KeyId>), Refusal> {
    let names = || (user.as_str().to_owned(), provider.as_str().to_owned());
    let class = classify(stored).map_err(|source| Refusal {
        reason: OpenFailure::of(&source),
        key_id: None,
        error: CredentialError::DecryptionFailed {
            user: names().0,
            provider: names().1,
            source,
        },
    })?;
    let key_id = match class {
        Classification::Sealed(id) => Some(id),
        _ => None,
    };
    match (class, protection) {
        (Classification::Plaintext, Protection::Encrypted(_)) if !plaintext_transition => {
            Err(Refusal {
                reason: OpenFailure::NotSealed,
                key_id: None,
                error: CredentialError::PlaintextRefused {
                    user: names().0,
                    provider: names().1,
                },
            })
        }
        (Classification::Plaintext, _) => Ok((SecretString::from(stored.to_owned()), None)),
        (_, Protection::Encrypted(keyring)) => {
            let context = Context::credential(user.as_str(), provider.as_str());
            keyring
                .open(&context, stored)
                .map(|secret| (secret, key_id))
                .map_err(|source| Refusal {
                    reason: OpenFailure::of(&source),
                    key_id,
                    error: CredentialError::DecryptionFailed {
                        user: names().0,
                        provider: names().1,
                        source,
                    },
                })
        }
        (_, _) => Err(Refusal {
            reason: OpenFailure::UnknownKey,
            key_id,
            error: CredentialError::KeyRequired {
                what: format!(
                    "reading the encrypted credential of user {user} for provider {provider}"
                ),
            },
        }),
    }
}

/// What `put` stores for `token`: the sealed value and its key id, or in
/// plaintext mode the token itself. A plaintext-mode token that looks like
/// ciphertext is refused: it could never be read back unambiguously.
pub(crate) fn conceal(
    protection: &Protection,
    user: &UserId,
    provider: &Provider,
    token: &str,
) -> Result<(String, Option<KeyId>), CredentialError> {
    match protection {
        Protection::Encrypted(keyring) => {
            let sealed = keyring.seal(
                &Context::credential(user.as_str(), provider.as_str()),
                token,
            );
            let key_id = sealed.key_id();
            Ok((sealed.into_string(), key_id))
        }
        _ => match classify(token) {
            Ok(Classification::Plaintext) => Ok((token.to_owned(), None)),
            _ => Err(CredentialError::InvalidInput(format!(
                "the token for user {user} and provider {provider} looks like ciphertext, so in plaintext mode it could not be told apart from an encrypted value; configure ENCRYPTION_KEY to store it"
            ))),
        },
    }
}
