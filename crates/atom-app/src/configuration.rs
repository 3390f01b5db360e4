//! The seed's security configuration document
//! (`GET /api/security/configuration`, `atom status`), with key ids and
//! credential counts added. Never a key or a value.

use atom_credentials::CredentialStore;
use atom_crypto::{KeyCount, KeyId, KeyRole, Protection};
use atom_secrets_file::SecretsDir;
use serde::Serialize;

/// The document. The first six fields are the seed's, by name.
#[derive(Debug, Clone, Serialize)]
pub struct SecurityConfiguration {
    /// Whether values are sealed (a key is configured).
    pub encryption_enabled: bool,
    /// Whether `ENCRYPTION_KEY` (or its file) is configured.
    pub encryption_key_configured: bool,
    /// The secrets file in use (`secrets.enc`, or `secrets.json` before migration).
    pub secrets_file: Option<String>,
    /// Entries in the secrets file.
    pub total_secrets: usize,
    /// Entries that are ciphertext (sealed or legacy).
    pub encrypted_secrets: usize,
    /// String entries that are not encrypted.
    pub plaintext_secrets: usize,
    /// String entries that are damaged ciphertext (near a token, not one):
    /// neither encrypted nor plaintext.
    pub malformed_secrets: usize,
    /// The primary key's id and the decrypt-only ones: ids only.
    pub keys: Vec<KeyEntry>,
    /// Secrets-file values per key, with its role.
    pub secrets_by_key: Vec<KeyCount>,
    /// Legacy (bare Fernet) values of the secrets file.
    pub secrets_legacy: usize,
    /// Credential counts; `null` when the credential database does not
    /// exist yet.
    pub credentials: Option<CredentialCounts>,
    /// Whether new credentials are sealed under per-user data keys
    /// (`atom:v2`); `null` without a database.
    pub envelope_encryption: Option<bool>,
    /// What the operator should know and do (e.g. how to turn envelope
    /// encryption on for a store that holds older rows).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notices: Vec<String>,
}

/// A configured key, by id.
#[derive(Debug, Clone, Serialize)]
pub struct KeyEntry {
    /// The key id.
    pub id: KeyId,
    /// `primary` or `decrypt_only`.
    pub role: KeyRole,
}

/// Credential rows by form.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CredentialCounts {
    /// All rows.
    pub total: u64,
    /// Rows per key, with its role.
    pub by_key: Vec<KeyCount>,
    /// Bare Fernet rows (the Python original's).
    pub legacy: u64,
    /// Plaintext rows (development mode).
    pub plaintext: u64,
    /// Rows whose value or key id is malformed (damaged ciphertext).
    pub malformed: u64,
    /// Rows not yet under the primary key.
    pub needs_rewrap: u64,
}

/// Builds the document for this configuration. A secrets directory with no
/// file yet counts as empty; without a store (the database does not exist
/// yet) the credential counts are `null`.
pub async fn security_configuration(
    protection: &Protection,
    secrets: &SecretsDir,
    store: Option<&CredentialStore>,
) -> Result<SecurityConfiguration, crate::Error> {
    let keyring = protection.keyring();
    let status = secrets.status(keyring)?;
    let counts = match store {
        Some(store) => Some(store.status().await?),
        None => None,
    };
    Ok(SecurityConfiguration {
        encryption_enabled: keyring.is_some(),
        encryption_key_configured: keyring.is_some(),
        secrets_file: status
            .secrets_file
            .as_ref()
            .map(|p| p.display().to_string()),
        total_secrets: status.total_secrets,
        encrypted_secrets: status.encrypted_secrets,
        plaintext_secrets: status.plaintext_secrets,
        malformed_secrets: status.malformed_secrets,
        keys: keyring
            .map(|ring| {
                ring.key_ids()
                    .map(|(id, role)| KeyEntry { id, role })
                    .collect()
            })
            .unwrap_or_default(),
        secrets_by_key: status.by_key.clone(),
        secrets_legacy: status.legacy_secrets,
        credentials: counts.map(|counts| CredentialCounts {
            total: counts.total,
            by_key: counts.by_key.clone(),
            legacy: counts.legacy,
            plaintext: counts.plaintext,
            malformed: counts.malformed,
            needs_rewrap: counts.needs_rewrap,
        }),
        envelope_encryption: store.map(CredentialStore::envelope),
        notices: store
            .and_then(CredentialStore::envelope_notice)
            .map(str::to_owned)
            .into_iter()
            .collect(),
    })
}
