//! The hints the binaries add to an error: the `atom` command that helps
//! next. Library messages say what is wrong and which variable or file;
//! naming commands is the binaries' part, and this is where they find it.

use std::error::Error as StdError;

use atom_audit::AuditError;
use atom_credentials::CredentialError;
use atom_crypto::CryptoError;

/// The command that helps with `err` (any error in its chain), if one does.
pub fn hint(err: &(dyn StdError + 'static)) -> Option<&'static str> {
    causes(err).into_iter().find_map(one)
}

/// `err` and every error behind it, transparent wrappers included:
/// `#[error(transparent)]` forwards `source()` to the inner error's source,
/// so the inner error itself never shows up in `source()` chains. Use this
/// to find a library error inside [`crate::Error`] and friends.
pub fn causes<'a>(err: &'a (dyn StdError + 'static)) -> Vec<&'a (dyn StdError + 'static)> {
    let mut out = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        out.push(e);
        next = transparent_inner(e).or_else(|| e.source());
    }
    out
}

/// The error a transparent wrapper stands for.
fn transparent_inner<'a>(e: &'a (dyn StdError + 'static)) -> Option<&'a (dyn StdError + 'static)> {
    if let Some(app) = e.downcast_ref::<crate::Error>() {
        return match app {
            crate::Error::Crypto(inner) => Some(inner),
            crate::Error::Audit(inner) => Some(inner),
            crate::Error::Credentials(inner) => Some(inner),
            crate::Error::Secrets(inner) => Some(inner),
            crate::Error::Rotation(inner) => Some(inner),
            _ => None,
        };
    }
    if let Some(rotation) = e.downcast_ref::<atom_rotation::Error>() {
        return match rotation {
            atom_rotation::Error::Credentials(inner) => Some(inner),
            atom_rotation::Error::Secrets(inner) => Some(inner),
            atom_rotation::Error::Audit(inner) => Some(inner),
            atom_rotation::Error::Crypto(inner) => Some(inner),
            _ => None,
        };
    }
    match e.downcast_ref::<atom_secrets_file::Error>() {
        Some(atom_secrets_file::Error::Crypto(inner)) => Some(inner),
        _ => None,
    }
}

fn one(e: &(dyn StdError + 'static)) -> Option<&'static str> {
    if let Some(e) = e.downcast_ref::<CryptoError>() {
        return match e {
            CryptoError::BadKey { .. } | CryptoError::NoKey => {
                Some("make a key with: atom keys generate")
            }
            CryptoError::UnknownKeyId { .. } => {
                Some("see the configured keys with: atom keys list")
            }
            CryptoError::NotSealed => Some(
                "check the plaintext values, then seal them with: atom secrets rewrap --seal-plaintext (or atom credentials rewrap --seal-plaintext)",
            ),
            _ => None,
        };
    }
    if let Some(e) = e.downcast_ref::<AuditError>() {
        return match e {
            AuditError::NoAuditKey | AuditError::BadAuditKey { .. } => {
                Some("make an audit key (not an encryption key) with: atom keys generate")
            }
            AuditError::Write { .. } | AuditError::Poisoned { .. } | AuditError::Damaged { .. } => {
                Some("check the audit log with: atom audit verify")
            }
            _ => None,
        };
    }
    if let Some(e) = e.downcast_ref::<CredentialError>() {
        return match e {
            CredentialError::KeyRequired { .. } => Some("make a key with: atom keys generate"),
            CredentialError::PlaintextRefused { .. } => Some(
                "check the plaintext rows, then seal them with: atom credentials rewrap --seal-plaintext",
            ),
            CredentialError::NotMigrated { .. } => {
                Some("create or upgrade the tables with: atom db migrate")
            }
            _ => None,
        };
    }
    if let Some(crate::Error::AuditKeyShared { .. }) = e.downcast_ref::<crate::Error>() {
        return Some("make an audit key (not an encryption key) with: atom keys generate");
    }
    None
}
