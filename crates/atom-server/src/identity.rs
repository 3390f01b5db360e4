//! Tokens from an identity provider: RS256, ES256 and EdDSA JWTs checked
//! against the provider's published keys (a JWKS, from a file or a URL),
//! with issuer and audience pinned and the user and admin claims named by
//! configuration.
//!
//! Keys. Each usable JWK gets its algorithm from its type and curve (RSA:
//! RS256, EC P-256: ES256, OKP Ed25519: EdDSA); a JWK whose `alg` says
//! otherwise, a symmetric (`oct`) key, a key for encryption (`use: enc`)
//! and a key without `kid` are skipped with a warning. A token must name
//! its key (`kid`) and carry that key's algorithm: the header cannot pick
//! another one, so neither `none` nor HS256 with a public key as the secret
//! gets through.
//!
//! Refresh. The set is fetched at start-up (the server does not start
//! without one usable key), again on a timer every `refresh` (so a key the
//! provider withdrew is refused from the first request after that fetch,
//! whether requests came meanwhile or not), and at once when a token names
//! a key the set does not hold (the provider rotated), but at most once
//! per `min_refetch`, so tokens with invented `kid`s cannot make the server
//! hammer the provider. A failed fetch keeps the keys already held and is
//! logged and counted.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use crate::auth::{
    AuthError, Principal, bearer, check_claim_types, check_issued_at, check_user, refusal,
};

/// The URL of the identity provider's JWKS (`https`, or `http` to a
/// loopback address).
pub const ENV_JWKS_URL: &str = "ATOM_JWKS_URL";
/// A file holding the identity provider's JWKS.
pub const ENV_JWKS_FILE: &str = "ATOM_JWKS_FILE";
/// The largest JWKS document read, in bytes.
pub const MAX_JWKS_BYTES: usize = 1024 * 1024;
/// How long a fetch of the JWKS URL may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// The algorithms accepted from an identity provider.
const ACCEPTED: &str = "RS256, ES256 or EdDSA";

/// Where the provider's keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    /// A JWKS document on disk, read again like a URL is fetched again.
    File(PathBuf),
    /// A JWKS URL.
    Url(reqwest::Url),
}

impl JwksSource {
    /// A URL source; `https` only, except to a loopback address.
    pub fn url(text: &str) -> Result<JwksSource, IdentityError> {
        let url = reqwest::Url::parse(text).map_err(|e| IdentityError::Config {
            message: format!("{ENV_JWKS_URL} is not a valid URL ({e})"),
        })?;
        let loopback = match url.host() {
            Some(url::Host::Domain(d)) => d == "localhost",
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        };
        match url.scheme() {
            "https" => Ok(JwksSource::Url(url)),
            "http" if loopback => Ok(JwksSource::Url(url)),
            scheme => Err(IdentityError::Config {
                message: format!(
                    "{ENV_JWKS_URL} uses {scheme}://; the provider's keys must come over https (http only to 127.0.0.1, ::1 or localhost)"
                ),
            }),
        }
    }
}

impl std::fmt::Display for JwksSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JwksSource::File(path) => write!(f, "{}", path.display()),
            // Without user info or query, which may carry credentials.
            JwksSource::Url(url) => {
                let mut shown = url.clone();
                let _ = shown.set_username("");
                let _ = shown.set_password(None);
                shown.set_query(None);
                shown.set_fragment(None);
                write!(f, "{shown}")
            }
        }
    }
}

/// What tokens from the identity provider must look like.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ProviderConfig {
    /// Where the signing keys are published.
    pub jwks: JwksSource,
    /// The `iss` every token must carry.
    pub issuer: String,
    /// A value the token's `aud` must hold.
    pub audience: String,
    /// The claim that names the user (default `sub`).
    pub user_claim: String,
    /// The claim that makes an administrator (default `admin`).
    pub admin_claim: String,
    /// With `None`, the admin claim must be `true`; with a value, the claim
    /// must be that string, a space-separated list holding it (as OAuth's
    /// `scope`) or an array holding it (as `groups` or `roles`).
    pub admin_value: Option<String>,
    /// How often the key set is fetched again, on a timer.
    pub refresh: Duration,
    /// The least time between two fetches caused by unknown `kid`s.
    pub min_refetch: Duration,
}

impl ProviderConfig {
    /// A configuration with the default claims (`sub`, `admin: true`), a
    /// refresh every 5 minutes and at most one fetch for unknown keys
    /// every 10 seconds.
    pub fn new(jwks: JwksSource, issuer: &str, audience: &str) -> ProviderConfig {
        ProviderConfig {
            jwks,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            user_claim: "sub".to_owned(),
            admin_claim: "admin".to_owned(),
            admin_value: None,
            refresh: Duration::from_secs(300),
            min_refetch: Duration::from_secs(10),
        }
    }
}

/// Why the identity provider's keys cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The configuration is incomplete or contradictory.
    #[error("{message}")]
    Config {
        /// What is wrong and which setting.
        message: String,
    },
    /// The key set could not be read or fetched.
    #[error("cannot read the identity provider's keys from {source_name}: {problem}")]
    Unavailable {
        /// The file or URL.
        source_name: String,
        /// What happened.
        problem: String,
    },
    /// The document holds no key this server can use.
    #[error(
        "the identity provider's key set at {source_name} holds no usable signing key ({ACCEPTED} with a `kid`){skipped}"
    )]
    NoUsableKey {
        /// The file or URL.
        source_name: String,
        /// Why keys were skipped, if any were.
        skipped: String,
    },
}

/// A verification key and the one algorithm it checks.
#[derive(Clone)]
struct VerifyKey {
    algorithm: Algorithm,
    key: DecodingKey,
}

impl std::fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyKey")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

struct Cached {
    keys: HashMap<String, VerifyKey>,
}

/// Checks bearer tokens issued by an identity provider. Cheap to share
/// behind an `Arc`; the key set is refreshed as the module says.
pub struct ProviderVerifier {
    config: ProviderConfig,
    /// The checks of each accepted algorithm, built once: issuer, audience,
    /// `exp`/`iss`/`aud` required, `nbf`, the leeway.
    validations: [(Algorithm, Validation); 3],
    client: reqwest::Client,
    cache: RwLock<Cached>,
    /// Held while a fetch runs; holds the time of the last attempt.
    fetching: tokio::sync::Mutex<Instant>,
    /// Fetches completed since start-up (the set replaced).
    refreshes: AtomicU64,
}

impl std::fmt::Debug for ProviderVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderVerifier")
            .field("jwks", &self.config.jwks)
            .field("issuer", &self.config.issuer)
            .field("audience", &self.config.audience)
            .finish_non_exhaustive()
    }
}

impl ProviderVerifier {
    /// Fetches the key set once; an error when it cannot be read or holds
    /// no usable key (the server does not start half-configured).
    pub async fn load(config: ProviderConfig) -> Result<ProviderVerifier, IdentityError> {
        for (value, name) in [
            (&config.issuer, "the issuer (ATOM_JWT_ISSUER)"),
            (&config.audience, "the audience (ATOM_JWT_AUDIENCE)"),
            (&config.user_claim, "the user claim (ATOM_JWT_USER_CLAIM)"),
            (
                &config.admin_claim,
                "the admin claim (ATOM_JWT_ADMIN_CLAIM)",
            ),
        ] {
            if value.trim().is_empty() {
                return Err(IdentityError::Config {
                    message: format!(
                        "{name} is empty; tokens from an identity provider are checked against it"
                    ),
                });
            }
        }
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| IdentityError::Config {
                message: format!("cannot set up the HTTP client for the JWKS: {e}"),
            })?;
        let keys = fetch(&client, &config.jwks).await?;
        let now = Instant::now();
        let validation = |algorithm| {
            let mut v = Validation::new(algorithm);
            v.set_issuer(&[&config.issuer]);
            v.set_audience(&[&config.audience]);
            v.set_required_spec_claims(&["exp", "iss", "aud"]);
            v.validate_nbf = true;
            v.leeway = crate::auth::LEEWAY_SECS;
            (algorithm, v)
        };
        let validations = [
            validation(Algorithm::RS256),
            validation(Algorithm::ES256),
            validation(Algorithm::EdDSA),
        ];
        Ok(ProviderVerifier {
            validations,
            config,
            client,
            cache: RwLock::new(Cached { keys }),
            fetching: tokio::sync::Mutex::new(now),
            refreshes: AtomicU64::new(0),
        })
    }

    /// Refreshes the key set every `refresh`, on a task of the current
    /// runtime, for as long as the verifier lives (the task holds it
    /// weakly). Without a runtime (no server) nothing is scheduled.
    pub(crate) fn refresh_on_a_timer(self: &Arc<Self>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(
                "no async runtime: the identity provider's keys are not refreshed on a timer"
            );
            return;
        };
        let weak: Weak<Self> = Arc::downgrade(self);
        let every = self.config.refresh;
        runtime.spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(this) = weak.upgrade() else { return };
                this.refetch(Duration::ZERO).await;
            }
        });
    }

    /// How many fetches of the key set have completed since start-up
    /// (the start-up fetch not counted): tests and monitoring wait on it.
    pub fn refreshes(&self) -> u64 {
        self.refreshes.load(Ordering::Acquire)
    }

    /// The configuration in use.
    pub fn config(&self) -> &ProviderConfig {
        &self.config
    }

    /// The ids of the keys held now, sorted.
    pub fn key_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.read_cache().keys.keys().cloned().collect();
        ids.sort();
        ids
    }

    /// Checks an `Authorization` header value.
    pub async fn authenticate(
        self: &Arc<Self>,
        header: Option<&str>,
    ) -> Result<Principal, AuthError> {
        let token = bearer(header)?;
        let head = jsonwebtoken::decode_header(token)
            .map_err(|_| AuthError::Invalid("the token is malformed".into()))?;
        if !matches!(
            head.alg,
            Algorithm::RS256 | Algorithm::ES256 | Algorithm::EdDSA
        ) {
            return Err(AuthError::Invalid(format!(
                "its algorithm {:?} is not accepted; tokens from the identity provider are {ACCEPTED}",
                head.alg
            )));
        }
        let kid = head.kid.ok_or_else(|| {
            AuthError::Invalid("it names no signing key (`kid` in its header)".into())
        })?;
        let key = self.key_for(&kid).await.ok_or_else(|| {
            AuthError::Invalid(format!(
                "it is signed by a key the identity provider does not publish (kid {})",
                printable(&kid)
            ))
        })?;
        if key.algorithm != head.alg {
            return Err(AuthError::Invalid(format!(
                "its algorithm {:?} is not that of its key {} ({:?})",
                head.alg,
                printable(&kid),
                key.algorithm
            )));
        }
        let (_, validation) = self
            .validations
            .iter()
            .find(|(algorithm, _)| *algorithm == key.algorithm)
            .ok_or_else(|| AuthError::Invalid(format!("only {ACCEPTED} tokens are accepted")))?;
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, validation)
            .map_err(|e| refusal(token, e.kind(), ACCEPTED))?;
        let claims = data.claims;
        check_claim_types(&claims)?;
        check_issued_at(claims.get("iat").and_then(Value::as_u64))?;
        let user = match claims.get(&self.config.user_claim) {
            Some(Value::String(user)) => user.clone(),
            Some(_) => {
                return Err(AuthError::Invalid(format!(
                    "its `{}` claim (the user id) is not a string",
                    self.config.user_claim
                )));
            }
            None => {
                return Err(AuthError::Invalid(format!(
                    "the token has no `{}` claim (the user id)",
                    self.config.user_claim
                )));
            }
        };
        check_user(&user, &self.config.user_claim)?;
        let admin = self.is_admin(claims.get(&self.config.admin_claim));
        Ok(Principal { user, admin })
    }

    fn is_admin(&self, claim: Option<&Value>) -> bool {
        match (&self.config.admin_value, claim) {
            (None, Some(Value::Bool(true))) => true,
            (Some(want), Some(Value::String(s))) => s.split_whitespace().any(|v| v == want),
            (Some(want), Some(Value::Array(items))) => {
                items.iter().any(|v| v.as_str() == Some(want.as_str()))
            }
            _ => false,
        }
    }

    fn read_cache(&self) -> std::sync::RwLockReadGuard<'_, Cached> {
        // A panic while the lock was held left a whole map behind (it is
        // only ever replaced), so the poison carries no torn state.
        self.cache.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The key named `kid`: from the set held (refreshed on a timer), or
    /// fetched again at once when the set lacks it.
    async fn key_for(self: &Arc<Self>, kid: &str) -> Option<VerifyKey> {
        let found = self.read_cache().keys.get(kid).cloned();
        if let Some(key) = found {
            return Some(key);
        }
        self.refetch(self.config.min_refetch).await;
        self.read_cache().keys.get(kid).cloned()
    }

    /// Fetches the set again unless the last attempt is younger than
    /// `min_gap`; concurrent callers share one fetch.
    async fn refetch(&self, min_gap: Duration) {
        let started = Instant::now();
        let mut last = self.fetching.lock().await;
        // Someone fetched while this caller waited for the lock.
        if *last >= started || last.elapsed() < min_gap {
            return;
        }
        *last = Instant::now();
        match fetch(&self.client, &self.config.jwks).await {
            Ok(keys) => {
                metrics::counter!("atom_jwks_fetches_total", "result" => "ok").increment(1);
                tracing::info!(jwks = %self.config.jwks, keys = keys.len(), "identity provider keys refreshed");
                let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
                *cache = Cached { keys };
                drop(cache);
                self.refreshes.fetch_add(1, Ordering::Release);
            }
            Err(e) => {
                metrics::counter!("atom_jwks_fetches_total", "result" => "failed").increment(1);
                tracing::warn!(error = %e, "identity provider keys NOT refreshed; the keys held stay in use");
            }
        }
    }
}

/// Reads and parses the key set.
async fn fetch(
    client: &reqwest::Client,
    source: &JwksSource,
) -> Result<HashMap<String, VerifyKey>, IdentityError> {
    let unavailable = |problem: String| IdentityError::Unavailable {
        source_name: source.to_string(),
        problem,
    };
    let bytes = match source {
        JwksSource::File(path) => {
            // Read to the limit and no further: the file may be a FIFO or
            // a device that never ends.
            let path = path.clone();
            tokio::task::spawn_blocking(move || atom_io::read_bounded(&path, MAX_JWKS_BYTES as u64))
                .await
                .map_err(|e| unavailable(format!("the read stopped: {e}")))?
                .map_err(|e| match e.kind() {
                    std::io::ErrorKind::FileTooLarge => {
                        unavailable(format!("it is larger than {MAX_JWKS_BYTES} bytes"))
                    }
                    kind => unavailable(kind.to_string()),
                })?
        }
        JwksSource::Url(url) => {
            let mut response = client
                .get(url.clone())
                .header(reqwest::header::ACCEPT, "application/json")
                .send()
                .await
                .map_err(|e| unavailable(request_problem(&e)))?;
            if !response.status().is_success() {
                return Err(unavailable(format!(
                    "it answered {} (a redirect is not followed: give the final URL)",
                    response.status()
                )));
            }
            let mut bytes = Vec::new();
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|e| unavailable(request_problem(&e)))?
            {
                if bytes.len() + chunk.len() > MAX_JWKS_BYTES {
                    return Err(unavailable(format!(
                        "its answer is larger than {MAX_JWKS_BYTES} bytes"
                    )));
                }
                bytes.extend_from_slice(&chunk);
            }
            bytes
        }
    };
    let (keys, skipped) = parse_set(&bytes).map_err(unavailable)?;
    for reason in &skipped {
        tracing::warn!(jwks = %source, "identity provider key skipped: {reason}");
    }
    if keys.is_empty() {
        return Err(IdentityError::NoUsableKey {
            source_name: source.to_string(),
            skipped: if skipped.is_empty() {
                String::new()
            } else {
                format!("; skipped: {}", skipped.join("; "))
            },
        });
    }
    Ok(keys)
}

/// What went wrong with a request, without the URL's query (which may
/// carry a token of the provider's).
fn request_problem(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        format!("no answer within {} s", FETCH_TIMEOUT.as_secs())
    } else if e.is_connect() {
        "cannot connect (is the identity provider reachable from here?)".to_owned()
    } else {
        "the request failed".to_owned()
    }
}

/// The usable keys of a JWKS document by `kid`, and why others were skipped.
fn parse_set(bytes: &[u8]) -> Result<(HashMap<String, VerifyKey>, Vec<String>), String> {
    #[derive(serde::Deserialize)]
    struct Document {
        keys: Vec<Value>,
    }
    let document: Document = serde_json::from_slice(bytes)
        .map_err(|e| format!("it is not a JWKS document ({{\"keys\": [...]}}): {e}"))?;
    let mut keys = HashMap::new();
    let mut skipped = Vec::new();
    for (index, entry) in document.keys.into_iter().enumerate() {
        let jwk: Jwk = match serde_json::from_value(entry) {
            Ok(jwk) => jwk,
            Err(e) => {
                skipped.push(format!("key {index} is not a JWK this server reads ({e})"));
                continue;
            }
        };
        let name = jwk.common.key_id.clone().map_or_else(
            || format!("key {index}"),
            |kid| format!("key {}", printable(&kid)),
        );
        match usable(&jwk) {
            Ok((kid, key)) => {
                if let std::collections::hash_map::Entry::Vacant(slot) = keys.entry(kid) {
                    slot.insert(key);
                } else {
                    skipped.push(format!("{name} appears twice; the first is used"));
                }
            }
            Err(why) => skipped.push(format!("{name}: {why}")),
        }
    }
    Ok((keys, skipped))
}

/// The key's id and verification key, or why it is not used.
fn usable(jwk: &Jwk) -> Result<(String, VerifyKey), String> {
    let kid = jwk
        .common
        .key_id
        .clone()
        .filter(|k| !k.is_empty())
        .ok_or("it has no `kid`, so no token can name it")?;
    if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
        return Err("it is not a signing key (`use` is not `sig`)".to_owned());
    }
    let stated = jwk.common.key_algorithm;
    let algorithm = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => Algorithm::ES256,
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            Algorithm::EdDSA
        }
        AlgorithmParameters::OctetKey(_) => {
            return Err("a symmetric key is never accepted from a key set".to_owned());
        }
        _ => return Err(format!("its curve is not accepted ({ACCEPTED})")),
    };
    let expected = match algorithm {
        Algorithm::RS256 => KeyAlgorithm::RS256,
        Algorithm::ES256 => KeyAlgorithm::ES256,
        _ => KeyAlgorithm::EdDSA,
    };
    if stated.is_some_and(|s| s != expected) {
        return Err(format!(
            "its `alg` is {stated:?}, and only {ACCEPTED} keys are accepted",
            stated = stated.unwrap_or(expected)
        ));
    }
    let key = DecodingKey::from_jwk(jwk).map_err(|_| "its key material is malformed".to_owned())?;
    Ok((kid, VerifyKey { algorithm, key }))
}

/// A `kid` as it may appear in a message: at most 64 characters, control
/// characters escaped.
fn printable(kid: &str) -> String {
    let mut out: String = kid.chars().take(64).flat_map(char::escape_debug).collect();
    if kid.chars().count() > 64 {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn a_jwks_url_must_be_https_except_to_loopback() {
        assert!(JwksSource::url("https://idp.example/.well-known/jwks.json").is_ok());
        assert!(JwksSource::url("http://127.0.0.1:9000/jwks").is_ok());
        assert!(JwksSource::url("http://localhost/jwks").is_ok());
        assert!(JwksSource::url("http://[::1]:80/jwks").is_ok());
        let err = JwksSource::url("http://idp.example/jwks").unwrap_err();
        assert!(err.to_string().contains("https"), "{err}");
        assert!(JwksSource::url("not a url").is_err());
        assert!(JwksSource::url("file:///etc/jwks.json").is_err());
        let shown = JwksSource::url("https://u:pw@idp.example/jwks?token=t0k3n#x")
            .unwrap()
            .to_string();
        assert_eq!(shown, "https://idp.example/jwks");
    }

    #[test]
    fn symmetric_unnamed_encryption_and_foreign_curve_keys_are_skipped() {
        let doc = serde_json::json!({"keys": [
            {"kty": "oct", "kid": "shared", "k": "c2VjcmV0"},
            {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty": "OKP", "crv": "Ed25519", "kid": "enc", "use": "enc", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty": "EC", "crv": "P-384", "kid": "p384", "x": "AA", "y": "AA"},
            {"kty": "OKP", "crv": "Ed25519", "kid": "rs-alg", "alg": "RS256", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty": "XYZ", "kid": "unknown"},
            {"kty": "OKP", "crv": "Ed25519", "kid": "good", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty": "OKP", "crv": "Ed25519", "kid": "good", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
        ]});
        let (keys, skipped) = parse_set(doc.to_string().as_bytes()).unwrap();
        assert_eq!(keys.keys().collect::<Vec<_>>(), ["good"]);
        assert_eq!(keys["good"].algorithm, Algorithm::EdDSA);
        assert_eq!(skipped.len(), 7, "{skipped:#?}");
        for needle in [
            "symmetric",
            "no `kid`",
            "not a signing key",
            "curve",
            "`alg`",
            "not a JWK",
            "twice",
        ] {
            assert!(
                skipped.iter().any(|s| s.contains(needle)),
                "{needle}: {skipped:#?}"
            );
        }
        assert!(
            parse_set(b"[1, 2]")
                .unwrap_err()
                .contains("not a JWKS document")
        );
    }
}
