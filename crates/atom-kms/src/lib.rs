//! Master keys held by AWS KMS (issue #13): the key material is kept only
//! as KMS ciphertext blobs in a file, decrypted through KMS at start-up with
//! an encryption context, and never written in clear. New master keys come
//! from KMS `GenerateDataKey`.
//!
//! The keys file ([`ENV_KMS_KEYS_FILE`]) holds one blob a line, in base64
//! (what `aws kms generate-data-key` prints as `CiphertextBlob`): the first
//! is the primary key, the others still open older values. Blank lines and
//! `#` comments are ignored. The encryption context
//! ([`ENV_KMS_CONTEXT`], default `purpose=atom-master-key`) must be the one
//! the blobs were made with: KMS refuses any other, and so does Atom (there
//! is no fallback to plaintext or to another key source).
//!
//! Connection: the region from `AWS_REGION` (or `AWS_DEFAULT_REGION`),
//! credentials from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and
//! `AWS_SESSION_TOKEN`, and the endpoint from `AWS_ENDPOINT_URL_KMS` or
//! `AWS_ENDPOINT_URL` when set (a VPC endpoint, or a local KMS in tests).
//!
//! The key source is one of several a keyring can come from (environment
//! and files in atom-crypto, AWS KMS here); docs/OPERATIONS.md says which
//! would come next.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use atom_crypto::Key;
use aws_sdk_kms::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_kms::error::SdkError;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

/// A file of KMS ciphertext blobs, one a line, the primary key first.
pub const ENV_KMS_KEYS_FILE: &str = "ATOM_KMS_KEYS_FILE";
/// The encryption context, `name=value` pairs separated by commas.
pub const ENV_KMS_CONTEXT: &str = "ATOM_KMS_CONTEXT";
/// The encryption context when [`ENV_KMS_CONTEXT`] is not set.
pub const DEFAULT_CONTEXT: &str = "purpose=atom-master-key";
/// How long one KMS request may take, retries included.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Why KMS-held keys could not be used. Messages name the file, the line
/// or the setting; they never hold key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KmsError {
    /// A setting is missing or malformed.
    #[error("{0}")]
    Config(String),
    /// The keys file cannot be read or holds no blob.
    #[error("cannot use the KMS keys file {path}: {problem}")]
    KeysFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// KMS did not answer.
    #[error(
        "KMS is unreachable ({problem}); no key was loaded and nothing falls back to another key source: check the network, AWS_REGION and AWS_ENDPOINT_URL_KMS"
    )]
    Unreachable {
        /// What happened.
        problem: String,
    },
    /// KMS answered with a refusal.
    #[error("KMS refused to {operation} {what}: {code}: {message}")]
    Refused {
        /// `decrypt` or `generate a data key`.
        operation: &'static str,
        /// Which blob or key.
        what: String,
        /// The AWS error code, e.g. `InvalidCiphertextException`.
        code: String,
        /// What it means and what to check.
        message: String,
    },
}

/// The encryption context: `name=value` pairs, sorted by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptionContext(BTreeMap<String, String>);

impl EncryptionContext {
    /// Parses `name=value,name=value`; names are unique and non-empty.
    pub fn parse(text: &str) -> Result<EncryptionContext, KmsError> {
        let bad = |why: &str| {
            KmsError::Config(format!(
                "{ENV_KMS_CONTEXT} {why}; write it as name=value pairs separated by commas, e.g. {DEFAULT_CONTEXT}"
            ))
        };
        let mut pairs = BTreeMap::new();
        for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (name, value) = item
                .split_once('=')
                .ok_or_else(|| bad("has an item without '='"))?;
            let (name, value) = (name.trim(), value.trim());
            if name.is_empty() {
                return Err(bad("has an item without a name"));
            }
            if pairs.insert(name.to_owned(), value.to_owned()).is_some() {
                return Err(bad(&format!("names {name} twice")));
            }
        }
        if pairs.is_empty() {
            return Err(bad(
                "is empty; an encryption context binds the keys to their use",
            ));
        }
        Ok(EncryptionContext(pairs))
    }

    /// From [`ENV_KMS_CONTEXT`] through `lookup`, or [`DEFAULT_CONTEXT`].
    pub fn from_lookup(lookup: &impl Fn(&str) -> Option<String>) -> Result<Self, KmsError> {
        EncryptionContext::parse(&lookup(ENV_KMS_CONTEXT).unwrap_or_else(|| DEFAULT_CONTEXT.into()))
    }

    fn to_map(&self) -> HashMap<String, String> {
        self.0.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

impl std::fmt::Display for EncryptionContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        for (k, v) in &self.0 {
            if !first {
                f.write_str(",")?;
            }
            first = false;
            write!(f, "{k}={v}")?;
        }
        Ok(())
    }
}

/// The HTTPS client every KMS call goes through: rustls 0.23 on ring with
/// the system's root certificates, the same TLS stack as the server's (the
/// SDK's own default would add aws-lc-rs, or rustls 0.21 with hyper 0.14).
/// Plain `http://` endpoints (a local KMS in tests) work too.
pub fn https_client() -> aws_sdk_kms::config::SharedHttpClient {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// A KMS client configured from the environment.
#[derive(Debug, Clone)]
pub struct Kms {
    client: aws_sdk_kms::Client,
    context: EncryptionContext,
}

impl Kms {
    /// A client from the process environment (see the crate documentation).
    pub fn from_env() -> Result<Kms, KmsError> {
        Kms::from_lookup(&|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// A client from `lookup` (an environment).
    pub fn from_lookup(lookup: &impl Fn(&str) -> Option<String>) -> Result<Kms, KmsError> {
        let region = lookup("AWS_REGION")
            .or_else(|| lookup("AWS_DEFAULT_REGION"))
            .ok_or_else(|| {
                KmsError::Config(
                    "AWS_REGION (or AWS_DEFAULT_REGION) is not set; KMS-held keys need the region of the KMS key".into(),
                )
            })?;
        let (Some(id), Some(secret)) =
            (lookup("AWS_ACCESS_KEY_ID"), lookup("AWS_SECRET_ACCESS_KEY"))
        else {
            return Err(KmsError::Config(
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not both set; KMS-held keys need credentials allowed to call kms:Decrypt".into(),
            ));
        };
        let credentials =
            Credentials::new(id, secret, lookup("AWS_SESSION_TOKEN"), None, "environment");
        let mut config = aws_sdk_kms::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .http_client(https_client())
            .region(Region::new(region))
            .credentials_provider(credentials)
            .timeout_config(
                aws_sdk_kms::config::timeout::TimeoutConfig::builder()
                    .operation_timeout(TIMEOUT)
                    .connect_timeout(Duration::from_secs(3))
                    .build(),
            )
            .retry_config(aws_sdk_kms::config::retry::RetryConfig::standard().with_max_attempts(2));
        if let Some(endpoint) =
            lookup("AWS_ENDPOINT_URL_KMS").or_else(|| lookup("AWS_ENDPOINT_URL"))
        {
            config = config.endpoint_url(endpoint);
        }
        Ok(Kms {
            client: aws_sdk_kms::Client::from_conf(config.build()),
            context: EncryptionContext::from_lookup(lookup)?,
        })
    }

    /// The encryption context in use.
    pub fn context(&self) -> &EncryptionContext {
        &self.context
    }

    /// Decrypts every blob of `file`, in order (the first is the primary).
    /// Each key is named `<file> line <n>` for error messages.
    pub async fn decrypt_keys_file(&self, file: &Path) -> Result<Vec<(Key, String)>, KmsError> {
        let mut keys = Vec::new();
        for (origin, blob) in read_keys_file(file)? {
            keys.push((self.decrypt(&blob, &origin).await?, origin));
        }
        Ok(keys)
    }

    /// Decrypts one blob into a key.
    pub async fn decrypt(&self, blob: &[u8], what: &str) -> Result<Key, KmsError> {
        let mut answer = self
            .client
            .decrypt()
            .ciphertext_blob(Blob::new(blob))
            .set_encryption_context(Some(self.context.to_map()))
            .send()
            .await
            .map_err(|e| refusal(e, "decrypt", what, &self.context))?;
        let plaintext = answer.plaintext.take().ok_or_else(|| KmsError::Refused {
            operation: "decrypt",
            what: what.to_owned(),
            code: "NoPlaintext".into(),
            message: "KMS answered without a plaintext".into(),
        })?;
        key_from(zeroizing(plaintext), what)
    }

    /// A new master key from KMS `GenerateDataKey` under the KMS key
    /// `kms_key_id`: the key (for this process) and its ciphertext blob
    /// (what the keys file keeps).
    pub async fn generate(&self, kms_key_id: &str) -> Result<(Key, Vec<u8>), KmsError> {
        let mut answer = self
            .client
            .generate_data_key()
            .key_id(kms_key_id)
            .key_spec(DataKeySpec::Aes256)
            .set_encryption_context(Some(self.context.to_map()))
            .send()
            .await
            .map_err(|e| {
                refusal(
                    e,
                    "generate a data key",
                    &format!("under {kms_key_id}"),
                    &self.context,
                )
            })?;
        let missing = |part: &str| KmsError::Refused {
            operation: "generate a data key",
            what: format!("under {kms_key_id}"),
            code: "Incomplete".into(),
            message: format!("KMS answered without a {part}"),
        };
        let plaintext = answer
            .plaintext
            .take()
            .ok_or_else(|| missing("plaintext"))?;
        let key = key_from(zeroizing(plaintext), "the generated data key")?;
        let blob = answer
            .ciphertext_blob
            .take()
            .ok_or_else(|| missing("ciphertext blob"))?;
        Ok((key, blob.into_inner()))
    }
}

/// Runs `work` to completion on a runtime of its own, on a thread of its
/// own, so that synchronous start-up code (inside an async runtime or
/// not) can load KMS-held keys.
pub fn block_on<T: Send>(work: impl std::future::Future<Output = T> + Send) -> Result<T, KmsError> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| {
                        KmsError::Config(format!("cannot start a runtime for KMS: {e}"))
                    })?;
                Ok(runtime.block_on(work))
            })
            .join()
            .unwrap_or_else(|_| Err(KmsError::Config("the KMS call panicked".into())))
    })
}

/// The blobs of a keys file with their origins.
pub fn read_keys_file(file: &Path) -> Result<Vec<(String, Vec<u8>)>, KmsError> {
    let problem = |problem: String| KmsError::KeysFile {
        path: file.to_owned(),
        problem,
    };
    let bytes = atom_io::read_bounded(file, atom_io::MAX_SECRET_FILE_BYTES).map_err(|e| {
        problem(match e.kind() {
            std::io::ErrorKind::FileTooLarge => e.to_string(),
            kind => kind.to_string(),
        })
    })?;
    let text = String::from_utf8(bytes)
        .map_err(|_| problem("it is not text; it holds one KMS blob (base64) a line".into()))?;
    let mut blobs = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let blob = STANDARD.decode(line).map_err(|_| {
            problem(format!(
                "line {} is not base64 of a KMS ciphertext blob (as `aws kms generate-data-key` prints CiphertextBlob)",
                i + 1
            ))
        })?;
        blobs.push((format!("{} line {}", file.display(), i + 1), blob));
    }
    if blobs.is_empty() {
        return Err(problem(
            "it holds no key; make one with `atom key generate --kms-key-id <KMS key> --add-to <file>`".into(),
        ));
    }
    Ok(blobs)
}

/// The line a keys file keeps for `blob`.
pub fn keys_file_line(blob: &[u8]) -> String {
    STANDARD.encode(blob)
}

/// The SDK's plaintext `Blob` (which does not zeroize) moved at once into a
/// buffer that does: the bytes are not copied, and are wiped on drop.
fn zeroizing(plaintext: Blob) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(plaintext.into_inner())
}

fn key_from(plaintext: Zeroizing<Vec<u8>>, what: &str) -> Result<Key, KmsError> {
    let bytes: Zeroizing<[u8; 32]> = Zeroizing::new(plaintext.as_slice().try_into().map_err(|_| KmsError::Refused {
        operation: "decrypt",
        what: what.to_owned(),
        code: "NotAKey".into(),
        message: format!(
            "the plaintext is {} bytes, not the 32 of an Atom key (was the blob made with KeySpec AES_256?)",
            plaintext.len()
        ),
    })?);
    Ok(Key::from_bytes(*bytes))
}

fn refusal<E: aws_sdk_kms::error::ProvideErrorMetadata + std::fmt::Debug, R>(
    error: SdkError<E, R>,
    operation: &'static str,
    what: &str,
    context: &EncryptionContext,
) -> KmsError {
    match &error {
        SdkError::ServiceError(service) => {
            let err = service.err();
            let code = err.code().unwrap_or("Unknown").to_owned();
            let message = match code.as_str() {
                "InvalidCiphertextException" => format!(
                    "the blob was not made under this encryption context ({context}, from {ENV_KMS_CONTEXT}), or it is damaged"
                ),
                "NotFoundException" => "no such KMS key in this account and region".into(),
                "DisabledException" | "KMSInvalidStateException" => {
                    "the KMS key is disabled or pending deletion".into()
                }
                "AccessDeniedException" => "these credentials may not use the KMS key".into(),
                _ => err.message().unwrap_or("no message").to_owned(),
            };
            KmsError::Refused {
                operation,
                what: what.to_owned(),
                code,
                message,
            }
        }
        SdkError::TimeoutError(_) => KmsError::Unreachable {
            problem: format!("no answer within {} s", TIMEOUT.as_secs()),
        },
        SdkError::DispatchFailure(_) => KmsError::Unreachable {
            problem: "cannot connect".into(),
        },
        _ => KmsError::Unreachable {
            problem: "the request failed".into(),
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn contexts_parse_sorted_and_refuse_what_is_ambiguous() {
        let c = EncryptionContext::parse(" b=2 , a=1").unwrap();
        assert_eq!(c.to_string(), "a=1,b=2");
        for bad in ["", " , ", "a", "=1", "a=1,a=2"] {
            let err = EncryptionContext::parse(bad).unwrap_err().to_string();
            assert!(err.contains(ENV_KMS_CONTEXT), "{bad}: {err}");
        }
        let none = |_: &str| None;
        assert_eq!(
            EncryptionContext::from_lookup(&none).unwrap().to_string(),
            DEFAULT_CONTEXT
        );
    }

    #[test]
    fn settings_are_required_and_named() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        let err = Kms::from_lookup(&env(&[])).unwrap_err().to_string();
        assert!(err.contains("AWS_REGION"), "{err}");
        let err = Kms::from_lookup(&env(&[("AWS_REGION", "eu-west-1")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("AWS_ACCESS_KEY_ID"), "{err}");
    }

    #[test]
    fn keys_files_name_the_bad_line() {
        let dir = std::env::temp_dir().join(format!("atom-kms-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("keys");
        std::fs::write(&file, "# primary first\n\nAQID\nnot base64!\n").unwrap();
        let err = read_keys_file(&file).unwrap_err().to_string();
        assert!(err.contains("line 4"), "{err}");
        std::fs::write(&file, "# nothing\n").unwrap();
        assert!(
            read_keys_file(&file)
                .unwrap_err()
                .to_string()
                .contains("holds no key")
        );
        std::fs::write(&file, "AQID\n").unwrap();
        let blobs = read_keys_file(&file).unwrap();
        assert_eq!(blobs[0].1, vec![1, 2, 3]);
        assert!(blobs[0].0.ends_with("line 1"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
